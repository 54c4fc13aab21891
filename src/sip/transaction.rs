//! RFC 3261 §17 transactions: the four state machines that retransmit over
//! UDP, absorb retransmissions and time out. They own bytes and deadlines
//! only; what a response *means* is up to the call and registration usages.
//!
//! ```text
//! INVITE client (§17.1.1)              non-INVITE client (§17.1.2)
//!   Calling --1xx--> Proceeding           Trying --1xx--> Proceeding
//!     |  A: resend, B: timeout (Calling)    |  E: resend, F: timeout
//!     +--2xx--> Terminated (TU ACKs)        +--final--> Completed --K--> Terminated
//!     +--300-699 (ACK)--> Completed --D--> Terminated
//!
//! INVITE server (§17.2.1)              non-INVITE server (§17.2.2)
//!   Proceeding --2xx--> Terminated        Trying/Proceeding --final--> Completed
//!     +--300-699--> Completed                (request again: resend final)
//!          G: resend, H: give up             --J--> Terminated
//!          --ACK--> Confirmed --I--> Terminated
//! ```
//!
//! Transactions are keyed by the top Via branch and the method (an ACK for
//! a non-2xx final response matches its INVITE server transaction).

use std::time::{Duration, Instant};

use super::msg::{Builder, Message, Method, NameAddr};
use super::timer::{due, earliest, TimerValues};
use super::Transmit;

/// Identifies a transaction: branch and method (ACK maps to INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxKey {
    /// The Via branch.
    pub branch: String,
    /// The method name; ACK is stored as INVITE.
    pub method: String,
}

impl TxKey {
    /// The key of a message (request or response) from its top Via and CSeq.
    pub fn of(msg: &Message) -> Option<TxKey> {
        let method = match msg.method() {
            Method::Ack => Method::Invite,
            m => m,
        };
        Some(TxKey {
            branch: msg.via.branch()?.to_string(),
            method: method.to_string(),
        })
    }
}

/// A request in the INVITE's own transaction: CANCEL (§9.1) or the ACK of a
/// non-2xx final (§17.1.1.3). Both copy the INVITE's Request-URI, top Via,
/// From, Call-ID, CSeq number and Route; `to` is the To to use.
pub fn invite_sibling(invite: &Message, method: Method, to: &NameAddr) -> Builder {
    let mut b = Builder::request(method, invite.request_uri().unwrap_or_default())
        .header("Via", invite.via.to_string())
        .header("Max-Forwards", "70")
        .header("From", invite.from.to_string())
        .header("To", to.to_string())
        .header("Call-ID", &invite.call_id)
        .header("CSeq", format!("{} {method}", invite.cseq.0));
    for route in invite.headers("Route") {
        b = b.header("Route", route);
    }
    b
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// What a client transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutcome {
    /// A response to pass up (first copy of each).
    Deliver,
    /// A retransmission or a late response: ignore.
    Absorb,
}

/// A client transaction (INVITE or non-INVITE).
#[derive(Debug, Clone)]
pub struct ClientTx {
    request: Message,
    wire: Transmit,
    invite: bool,
    state: ClientState,
    values: TimerValues,
    interval: Duration,
    resend_at: Option<Instant>,
    timeout_at: Option<Instant>,
    linger_until: Option<Instant>,
    ack: Option<Transmit>,
    timed_out: bool,
}

impl ClientTx {
    /// Starts a transaction for `request`, already sent as `wire` at `now`.
    pub fn new(request: Message, wire: Transmit, values: TimerValues, now: Instant) -> ClientTx {
        let invite = request.method() == Method::Invite;
        let reliable = wire.transport.is_reliable();
        ClientTx {
            request,
            invite,
            state: ClientState::Calling,
            values,
            interval: values.t1,
            resend_at: (!reliable).then(|| now + values.t1),
            timeout_at: Some(now + values.timeout()),
            linger_until: None,
            ack: None,
            wire,
            timed_out: false,
        }
    }

    /// The request this transaction carries.
    pub fn request(&self) -> &Message {
        &self.request
    }

    /// Where the request went.
    pub fn destination(&self) -> std::net::SocketAddr {
        self.wire.dst
    }

    /// True once the transaction can be forgotten.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// True if it ended because no final response came (timer B or F).
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// Takes a response for this transaction; may queue an ACK (non-2xx INVITE).
    pub fn on_response(
        &mut self,
        resp: &Message,
        now: Instant,
        out: &mut Vec<Transmit>,
    ) -> ClientOutcome {
        let Some(code) = resp.code() else {
            return ClientOutcome::Absorb;
        };
        let reliable = self.wire.transport.is_reliable();
        match (self.state, code) {
            (ClientState::Calling | ClientState::Proceeding, 100..=199) => {
                self.state = ClientState::Proceeding;
                if self.invite {
                    // Timer A stops once a provisional arrives, and timer B only matters
                    // while Calling (§17.1.1.2): a call may ring as long as it likes.
                    self.resend_at = None;
                    self.timeout_at = None;
                } else if !reliable {
                    self.interval = self.values.t2;
                }
                ClientOutcome::Deliver
            }
            (ClientState::Calling | ClientState::Proceeding, 200..=299) if self.invite => {
                // The TU ACKs 2xx itself, end to end (§13.2.2.4).
                self.state = ClientState::Terminated;
                ClientOutcome::Deliver
            }
            (ClientState::Calling | ClientState::Proceeding, _) => {
                self.resend_at = None;
                self.timeout_at = None;
                self.state = ClientState::Completed;
                if self.invite {
                    let ack = Transmit {
                        payload: self.ack_for(resp),
                        ..self.wire.clone()
                    };
                    out.push(ack.clone());
                    self.ack = Some(ack);
                    self.linger_until = Some(now + self.values.timer_d(reliable));
                } else {
                    self.linger_until = Some(now + self.values.timer_k(reliable));
                }
                ClientOutcome::Deliver
            }
            (ClientState::Completed, 300..) if self.invite => {
                // A retransmitted final response: ACK again.
                out.extend(self.ack.clone());
                ClientOutcome::Absorb
            }
            _ => ClientOutcome::Absorb,
        }
    }

    /// The ACK for a non-2xx final response (§17.1.1.3): same branch, R-URI and Route.
    fn ack_for(&self, resp: &Message) -> Vec<u8> {
        invite_sibling(&self.request, Method::Ack, &resp.to).build()
    }

    /// The next deadline of this transaction.
    pub fn deadline(&self) -> Option<Instant> {
        earliest([self.resend_at, self.timeout_at, self.linger_until])
    }

    /// Runs due timers: retransmits into `out`; returns true when the
    /// transaction just timed out (timer B or F).
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<Transmit>) -> bool {
        if due(self.linger_until, now) {
            self.state = ClientState::Terminated;
            self.linger_until = None;
            return false;
        }
        if due(self.timeout_at, now) {
            self.state = ClientState::Terminated;
            self.resend_at = None;
            self.timeout_at = None;
            self.timed_out = true;
            return true;
        }
        if due(self.resend_at, now) {
            out.push(self.wire.clone());
            self.interval = if self.invite {
                self.interval * 2
            } else {
                (self.interval * 2).min(self.values.t2)
            };
            self.resend_at = Some(now + self.interval);
        }
        false
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Proceeding,
    Completed,
    Confirmed,
    Terminated,
}

/// A server transaction (INVITE or non-INVITE).
#[derive(Debug, Clone)]
pub struct ServerTx {
    invite: bool,
    reliable: bool,
    state: ServerState,
    values: TimerValues,
    last: Option<Transmit>,
    interval: Duration,
    resend_at: Option<Instant>,
    give_up_at: Option<Instant>,
    linger_until: Option<Instant>,
}

impl ServerTx {
    /// A transaction for a request that just arrived.
    pub fn new(method: Method, reliable: bool, values: TimerValues) -> ServerTx {
        ServerTx {
            invite: method == Method::Invite,
            reliable,
            state: ServerState::Proceeding,
            values,
            last: None,
            interval: values.t1,
            resend_at: None,
            give_up_at: None,
            linger_until: None,
        }
    }

    /// True once the transaction can be forgotten.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// True while no final response has been sent.
    pub fn is_pending(&self) -> bool {
        self.state == ServerState::Proceeding
    }

    /// A retransmitted request arrived: resend the latest response, if any.
    pub fn on_retransmission(&self, out: &mut Vec<Transmit>) {
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed) {
            out.extend(self.last.clone());
        }
    }

    /// The ACK for our non-2xx final response arrived.
    pub fn on_ack(&mut self, now: Instant) {
        if self.invite && self.state == ServerState::Completed {
            self.state = ServerState::Confirmed;
            self.resend_at = None;
            self.give_up_at = None;
            self.linger_until = Some(now + self.values.timer_k(self.reliable));
        }
    }

    /// Sends a response through this transaction.
    pub fn respond(&mut self, code: u16, wire: Transmit, now: Instant, out: &mut Vec<Transmit>) {
        if self.state != ServerState::Proceeding {
            return;
        }
        out.push(wire.clone());
        self.last = Some(wire);
        match code {
            100..=199 => {}
            200..=299 if self.invite => {
                // 2xx retransmission belongs to the INVITE usage (§13.3.1.4).
                self.state = ServerState::Terminated;
            }
            _ if self.invite => {
                self.state = ServerState::Completed;
                self.resend_at = (!self.reliable).then(|| now + self.values.t1);
                self.give_up_at = Some(now + self.values.timeout());
            }
            _ => {
                self.state = ServerState::Completed;
                let linger = if self.reliable {
                    Duration::ZERO
                } else {
                    self.values.timeout()
                };
                self.linger_until = Some(now + linger);
            }
        }
    }

    /// The next deadline of this transaction.
    pub fn deadline(&self) -> Option<Instant> {
        earliest([self.resend_at, self.give_up_at, self.linger_until])
    }

    /// Runs due timers (G, H, I, J).
    pub fn on_timeout(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        if due(self.linger_until, now) || due(self.give_up_at, now) {
            self.state = ServerState::Terminated;
            self.resend_at = None;
            self.give_up_at = None;
            self.linger_until = None;
            return;
        }
        if due(self.resend_at, now) {
            out.extend(self.last.clone());
            self.interval = (self.interval * 2).min(self.values.t2);
            self.resend_at = Some(now + self.interval);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Transport;

    fn request(method: &str) -> Message {
        let text = format!(
            "{method} sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKabc\r\n\
From: <sip:alice@127.0.0.2>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("test request parses")
    }

    fn response(code: u16, method: &str) -> Message {
        let text = format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKabc\r\n\
From: <sip:alice@127.0.0.2>;tag=a\r\nTo: <sip:bob@127.0.0.1>;tag=b\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\n\r\n"
        );
        Message::parse(text.as_bytes()).expect("test response parses")
    }

    fn wire(transport: Transport) -> Transmit {
        Transmit {
            transport,
            dst: "127.0.0.1:5060".parse().expect("addr"),
            payload: b"x".to_vec(),
        }
    }

    /// Steps simulated time until `until`, counting retransmissions.
    fn run(tx: &mut ClientTx, start: Instant, until: Duration) -> (Vec<Duration>, bool) {
        let mut sent = Vec::new();
        let mut timed_out = false;
        while let Some(d) = tx.deadline() {
            if d > start + until {
                break;
            }
            let mut out = Vec::new();
            timed_out |= tx.on_timeout(d, &mut out);
            sent.extend(out.iter().map(|_| d - start));
        }
        (sent, timed_out)
    }

    #[test]
    fn invite_client_retransmits_doubling_then_times_out_at_64_t1() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ClientTx::new(
            request("INVITE"),
            wire(Transport::Udp),
            TimerValues::default(),
            t0,
        );
        let (sent, timed_out) = run(&mut tx, t0, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert!(timed_out && tx.timed_out() && tx.is_terminated());
    }

    #[test]
    fn non_invite_client_caps_interval_at_t2() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ClientTx::new(
            request("OPTIONS"),
            wire(Transport::Udp),
            TimerValues::default(),
            t0,
        );
        let (sent, timed_out) = run(&mut tx, t0, Duration::from_secs(40));
        let ms: Vec<u128> = sent.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..6], &[500, 1500, 3500, 7500, 11500, 15500]);
        assert!(timed_out);
    }

    #[test]
    fn tcp_client_never_retransmits() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ClientTx::new(
            request("INVITE"),
            wire(Transport::Tcp),
            TimerValues::default(),
            t0,
        );
        let (sent, timed_out) = run(&mut tx, t0, Duration::from_secs(40));
        assert!(sent.is_empty());
        assert!(timed_out);
    }

    #[test]
    fn invite_failure_is_acked_once_per_copy_and_lingers_timer_d() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ClientTx::new(
            request("INVITE"),
            wire(Transport::Udp),
            TimerValues::default(),
            t0,
        );
        let mut out = Vec::new();
        assert_eq!(
            tx.on_response(&response(180, "INVITE"), t0, &mut out),
            ClientOutcome::Deliver
        );
        assert_eq!(
            tx.on_response(&response(486, "INVITE"), t0, &mut out),
            ClientOutcome::Deliver
        );
        assert_eq!(out.len(), 1);
        let ack = Message::parse(&out[0].payload).expect("ack parses");
        assert_eq!(ack.method(), Method::Ack);
        assert_eq!(ack.via.branch(), Some("z9hG4bKabc"));
        assert_eq!(ack.to.tag(), Some("b"));
        assert_eq!(
            tx.on_response(&response(486, "INVITE"), t0, &mut out),
            ClientOutcome::Absorb
        );
        assert_eq!(out.len(), 2, "retransmitted 486 is ACKed again");
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(32)));
        let (_, timed_out) = run(&mut tx, t0, Duration::from_secs(40));
        assert!(!timed_out && tx.is_terminated());
    }

    #[test]
    fn provisional_stops_invite_retransmission() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ClientTx::new(
            request("INVITE"),
            wire(Transport::Udp),
            TimerValues::default(),
            t0,
        );
        let mut out = Vec::new();
        tx.on_response(&response(100, "INVITE"), t0, &mut out);
        let (sent, timed_out) = run(&mut tx, t0, Duration::from_secs(120));
        assert!(sent.is_empty());
        assert!(
            !timed_out,
            "timer B only runs in Calling: a ringing call does not time out"
        );
    }

    #[test]
    fn invite_server_resends_failure_until_ack() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ServerTx::new(Method::Invite, false, TimerValues::default());
        let mut out = Vec::new();
        tx.respond(486, wire(Transport::Udp), t0, &mut out);
        assert_eq!(out.len(), 1);
        let mut resent = 0;
        let mut now = t0;
        while let Some(d) = tx.deadline() {
            if d > t0 + Duration::from_secs(3) {
                break;
            }
            now = d;
            let mut o = Vec::new();
            tx.on_timeout(now, &mut o);
            resent += o.len();
        }
        assert_eq!(resent, 2, "timer G at 0.5 s and 1.5 s");
        tx.on_ack(now);
        assert_eq!(
            tx.deadline(),
            Some(now + Duration::from_secs(5)),
            "timer I = T4"
        );
        tx.on_timeout(now + Duration::from_secs(5), &mut out);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_server_absorbs_retransmissions_for_timer_j() {
        let t0 = crate::sip::timer::epoch();
        let mut tx = ServerTx::new(Method::Options, false, TimerValues::default());
        let mut out = Vec::new();
        tx.respond(200, wire(Transport::Udp), t0, &mut out);
        tx.on_retransmission(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(tx.deadline(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32), &mut out);
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_client_absorbs_response_copies_for_timer_k() {
        let t0 = crate::sip::timer::epoch();
        let req = request("OPTIONS");
        let mut tx = ClientTx::new(
            req.clone(),
            wire(Transport::Udp),
            TimerValues::default(),
            t0,
        );
        let text = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=x\r\nCall-ID: {}\r\nCSeq: {} OPTIONS\r\n\r\n",
            req.via, req.from, req.to, req.call_id, req.cseq.0
        );
        let ok = Message::parse(text.as_bytes()).expect("200 parses");
        let mut out = Vec::new();
        assert_eq!(tx.on_response(&ok, t0, &mut out), ClientOutcome::Deliver);
        assert_eq!(tx.on_response(&ok, t0, &mut out), ClientOutcome::Absorb);
        assert!(out.is_empty());
        assert_eq!(
            tx.deadline(),
            Some(t0 + Duration::from_secs(5)),
            "timer K = T4"
        );
        assert!(!tx.on_timeout(t0 + Duration::from_secs(5), &mut out));
        assert!(tx.is_terminated() && !tx.timed_out());
    }
}
