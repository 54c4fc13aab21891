//! RFC 3261 §12 dialogs: identity (Call-ID and tags), the route set from
//! Record-Route, the remote target from Contact, and CSeq bookkeeping for
//! in-dialog requests. A dialog builds requests; it never sends them.

use std::net::SocketAddr;

use super::msg::{Builder, Message, Method, NameAddr, SipUri};

/// Which side of the dialog-creating INVITE we were.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the INVITE.
    Caller,
    /// We received it.
    Callee,
}

/// The state RFC 3261 §12 keeps per dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Our role in the initial INVITE.
    pub role: Role,
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag (empty until known).
    pub remote_tag: String,
    /// Our address-of-record, as put in From (caller) or To (callee).
    pub local_uri: NameAddr,
    /// The peer's address-of-record.
    pub remote_uri: NameAddr,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: String,
    /// Route set, in the order requests must carry it.
    pub route_set: Vec<String>,
    /// The last CSeq number we used.
    pub local_cseq: u32,
    /// The highest CSeq number the peer used.
    pub remote_cseq: Option<u32>,
}

impl Dialog {
    /// The caller's view, from our INVITE and a response carrying a To tag
    /// (§12.1.2: route set is Record-Route reversed).
    pub fn from_response(invite: &Message, resp: &Message) -> Option<Dialog> {
        let remote_tag = resp.to.tag()?.to_string();
        let mut route_set: Vec<String> = resp.headers("Record-Route").map(str::to_string).collect();
        route_set.reverse();
        Some(Dialog {
            role: Role::Caller,
            call_id: invite.call_id.clone(),
            local_tag: invite.from.tag().unwrap_or_default().to_string(),
            remote_tag,
            local_uri: without_params(&invite.from),
            remote_uri: without_params(&invite.to),
            remote_target: resp
                .contact()
                .map_or_else(|| invite.to.uri.clone(), |c| c.uri),
            route_set,
            local_cseq: invite.cseq.0,
            remote_cseq: None,
        })
    }

    /// The callee's view, from a received INVITE and our To tag (§12.1.1:
    /// route set is Record-Route in order).
    pub fn from_request(invite: &Message, local_tag: &str) -> Dialog {
        Dialog {
            role: Role::Callee,
            call_id: invite.call_id.clone(),
            local_tag: local_tag.to_string(),
            remote_tag: invite.from.tag().unwrap_or_default().to_string(),
            local_uri: without_params(&invite.to),
            remote_uri: without_params(&invite.from),
            remote_target: invite
                .contact()
                .map_or_else(|| invite.from.uri.clone(), |c| c.uri),
            route_set: invite.headers("Record-Route").map(str::to_string).collect(),
            local_cseq: 0,
            remote_cseq: Some(invite.cseq.0),
        }
    }

    /// The ACK for a 2xx to our `invite` (RFC 3261 §13.2.2.4), built from that request and
    /// the response alone, so it can go whatever became of the call. For the initial INVITE
    /// the dialog is the one the 2xx creates (To tag, reversed Record-Route, Contact); for a
    /// re-INVITE it is the INVITE's own: its From, To, Call-ID and Route, sent to the remote
    /// target the 2xx refreshes. Returns the ACK and where it goes (`None`: where the INVITE
    /// went).
    pub fn ack_for_2xx(
        invite: &Message,
        resp: &Message,
        via: &str,
        max_forwards: u8,
    ) -> Option<(Builder, Option<SocketAddr>)> {
        if invite.to.tag().is_none() {
            let mut dialog = Dialog::from_response(invite, resp)?;
            let hop = dialog.next_hop();
            return Some((dialog.request(Method::Ack, via, max_forwards), hop));
        }
        let target = resp
            .contact()
            .map(|c| c.uri)
            .or_else(|| invite.request_uri().map(str::to_string))?;
        let routes: Vec<&str> = invite.headers("Route").collect();
        let hop = match routes.first() {
            Some(route) => {
                NameAddr::parse(route).and_then(|r| SipUri::parse(&r.uri)?.socket_addr())
            }
            None => SipUri::parse(&target).and_then(|u| u.socket_addr()),
        };
        let mut b = Builder::request(Method::Ack, &target)
            .header("Via", via)
            .header("Max-Forwards", max_forwards.to_string())
            .header("From", invite.header("From")?)
            .header("To", invite.header("To")?)
            .header("Call-ID", &invite.call_id)
            .header("CSeq", format!("{} ACK", invite.cseq.0));
        for route in routes {
            b = b.header("Route", route);
        }
        Some((b, hop))
    }

    /// True if `msg` (a request or response) belongs to this dialog.
    pub fn matches(&self, msg: &Message) -> bool {
        let (local, remote) = if msg.code().is_some() {
            (msg.from.tag(), msg.to.tag())
        } else {
            (msg.to.tag(), msg.from.tag())
        };
        msg.call_id == self.call_id
            && local == Some(self.local_tag.as_str())
            && (self.remote_tag.is_empty() || remote == Some(self.remote_tag.as_str()))
    }

    /// Updates the remote target from a target-refresh request or response.
    pub fn refresh_target(&mut self, msg: &Message) {
        if let Some(c) = msg.contact() {
            self.remote_target = c.uri;
        }
    }

    /// Accepts a request's CSeq: false if it is older than one already seen
    /// (the caller answers 500, §12.2.2).
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        match self.remote_cseq {
            Some(seen) if cseq < seen => false,
            _ => {
                self.remote_cseq = Some(cseq);
                true
            }
        }
    }

    /// Starts an in-dialog request. CSeq advances except for ACK and CANCEL,
    /// which reuse `cseq` of the request they belong to.
    pub fn request(&mut self, method: Method, via: &str, max_forwards: u8) -> Builder {
        let cseq = if matches!(method, Method::Ack | Method::Cancel) {
            self.local_cseq
        } else {
            self.local_cseq += 1;
            self.local_cseq
        };
        let mut from = self.local_uri.clone();
        from.params.set("tag", Some(&self.local_tag));
        let mut to = self.remote_uri.clone();
        if !self.remote_tag.is_empty() {
            to.params.set("tag", Some(&self.remote_tag));
        }
        let mut b = Builder::request(method, &self.remote_target)
            .header("Via", via)
            .header("Max-Forwards", max_forwards.to_string())
            .header("From", from.to_string())
            .header("To", to.to_string())
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{cseq} {method}"));
        for route in &self.route_set {
            b = b.header("Route", route);
        }
        b
    }

    /// Where the next in-dialog request goes: the first route, else the
    /// remote target (None when that is a host name we cannot resolve).
    pub fn next_hop(&self) -> Option<SocketAddr> {
        let uri = match self.route_set.first() {
            Some(route) => NameAddr::parse(route)?.uri,
            None => self.remote_target.clone(),
        };
        SipUri::parse(&uri)?.socket_addr()
    }
}

/// The URI and display name of a From/To, without its tag.
fn without_params(na: &NameAddr) -> NameAddr {
    NameAddr {
        display: na.display.clone(),
        uri: na.uri.clone(),
        params: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        Message::parse(s.as_bytes()).expect("test message parses")
    }

    const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=aaa\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: cid\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@127.0.0.2:5060>\r\n\
Record-Route: <sip:127.0.0.1;lr>\r\nRecord-Route: <sip:10.0.0.9;lr>\r\n\r\n";

    const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK1\r\n\
From: \"Alice\" <sip:alice@127.0.0.1>;tag=aaa\r\nTo: <sip:bob@127.0.0.1>;tag=bbb\r\n\
Call-ID: cid\r\nCSeq: 7 INVITE\r\nContact: <sip:bob@127.0.0.3:5062;transport=udp>\r\n\
Record-Route: <sip:10.0.0.9;lr>, <sip:127.0.0.1;lr>\r\n\r\n";

    #[test]
    fn caller_dialog_reverses_record_route() {
        let d = Dialog::from_response(&parse(INVITE), &parse(OK)).expect("dialog");
        assert_eq!(d.route_set, vec!["<sip:127.0.0.1;lr>", "<sip:10.0.0.9;lr>"]);
        assert_eq!(d.remote_target, "sip:bob@127.0.0.3:5062;transport=udp");
        assert_eq!(d.next_hop(), Some("127.0.0.1:5060".parse().expect("addr")));
        assert!(d.matches(&parse(OK)));
    }

    #[test]
    fn callee_dialog_keeps_record_route_order_and_rejects_old_cseq() {
        let mut d = Dialog::from_request(&parse(INVITE), "ccc");
        assert_eq!(d.route_set, vec!["<sip:127.0.0.1;lr>", "<sip:10.0.0.9;lr>"]);
        assert_eq!(d.remote_target, "sip:alice@127.0.0.2:5060");
        assert!(!d.accept_remote_cseq(6));
        assert!(d.accept_remote_cseq(8));
    }

    #[test]
    fn ack_of_a_reinvite_copies_its_from_to_call_id_and_routes_and_follows_the_new_contact() {
        // A callee's re-INVITE: From is the callee, To the caller; CSeq 1 like the caller's
        // INVITE.
        let reinvite = parse(
            "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bKre\r\n\
From: <sip:bob@127.0.0.1>;tag=bbb\r\nTo: \"Alice\" <sip:alice@127.0.0.1>;tag=aaa\r\n\
Call-ID: cid\r\nCSeq: 1 INVITE\r\nRoute: <sip:127.0.0.1;lr>\r\n\r\n",
        );
        let ok = parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bKre\r\n\
From: <sip:bob@127.0.0.1>;tag=bbb\r\nTo: \"Alice\" <sip:alice@127.0.0.1>;tag=aaa\r\n\
Call-ID: cid\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.9:5070>\r\n\r\n",
        );
        let (b, hop) = Dialog::ack_for_2xx(
            &reinvite,
            &ok,
            "SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bKa",
            70,
        )
        .expect("an ACK");
        let ack = Message::parse(&b.build()).expect("the ACK parses");
        assert_eq!(ack.method(), Method::Ack);
        assert_eq!(ack.header("From"), reinvite.header("From"));
        assert_eq!(ack.header("To"), reinvite.header("To"));
        assert_eq!(ack.call_id, "cid");
        assert_eq!(ack.cseq, (1, Method::Ack));
        assert_eq!(ack.request_uri(), Some("sip:alice@127.0.0.9:5070"));
        assert_eq!(ack.header("Route"), Some("<sip:127.0.0.1;lr>"));
        assert_eq!(hop, Some("127.0.0.1:5060".parse().expect("addr")));
    }

    #[test]
    fn ack_of_an_initial_invite_takes_the_dialog_of_its_2xx() {
        let (b, hop) = Dialog::ack_for_2xx(
            &parse(INVITE),
            &parse(OK),
            "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKa",
            70,
        )
        .expect("an ACK");
        let ack = Message::parse(&b.build()).expect("the ACK parses");
        assert_eq!(ack.from.tag(), Some("aaa"));
        assert_eq!(ack.to.tag(), Some("bbb"));
        assert_eq!(ack.cseq, (7, Method::Ack));
        assert_eq!(
            ack.request_uri(),
            Some("sip:bob@127.0.0.3:5062;transport=udp")
        );
        assert_eq!(ack.headers("Route").count(), 2);
        assert_eq!(hop, Some("127.0.0.1:5060".parse().expect("addr")));
    }

    #[test]
    fn in_dialog_request_carries_tags_routes_and_next_cseq() {
        let mut d = Dialog::from_response(&parse(INVITE), &parse(OK)).expect("dialog");
        let bye = d
            .request(
                Method::Bye,
                "SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK2",
                70,
            )
            .build();
        let bye = Message::parse(&bye).expect("bye parses");
        assert_eq!(
            bye.request_uri(),
            Some("sip:bob@127.0.0.3:5062;transport=udp")
        );
        assert_eq!(bye.from.tag(), Some("aaa"));
        assert_eq!(bye.to.tag(), Some("bbb"));
        assert_eq!(bye.cseq, (8, Method::Bye));
        assert_eq!(bye.headers("Route").count(), 2);
    }
}
