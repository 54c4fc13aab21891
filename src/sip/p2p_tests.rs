//! Switchboard against switchboard, peer to peer, on simulated time: two or three user
//! agents wired together by a lossless in-memory network whose deliveries a test can hold
//! back or reorder. Covers the ACK of every re-INVITE from both sides of a dialog, the 2xx
//! that crosses a BYE, the state each side reports when held, a transferee taking its
//! call back after a failed transfer, and the races an operator hits (re-INVITE glare, BYE
//! crossing a re-INVITE, a call arriving while consulting, `complete` twice, the caller
//! hanging up between the REFER's 202 and its NOTIFY, a transfer to the caller itself);
//! each ends with nothing left in any user agent.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::api::{CallState, Command, Direction, Event, TransferKind, TransferStatus};
use super::msg::{Message, Method};
use super::timer::epoch;
use super::transfer::BlindMode;
use super::ua_tests::config;
use super::{Output, Transport, UaConfig, UserAgent};

/// Alice, Bob, Carol and Dave: switchboards at 127.0.0.2, .3, .4 and .5 (port 5060), no
/// registrar.
const NAMES: [&str; 4] = ["alice", "bob", "carol", "dave"];

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2 + i as u8], 5060))
}

fn uri(i: usize) -> String {
    format!("sip:{}@{}", NAMES[i], addr(i))
}

/// A peer-to-peer switchboard (no registration) with its own seed, so tags differ.
fn peer_config(i: usize) -> UaConfig {
    let mut cfg = config(false);
    cfg.account.user = NAMES[i].into();
    cfg.account.auth_user = NAMES[i].into();
    cfg.account.display_name = None;
    cfg.account.domain = addr(i).ip().to_string();
    cfg.account.registrar_addr = None;
    cfg.account.registrar = format!("sip:{}", addr(i).ip());
    cfg.local = addr(i);
    cfg.media_ip = addr(i).ip();
    cfg.seed = super::Seed::fixed(1_000 + i as u64);
    cfg.account.policy.transfer.blind = BlindMode::Notify;
    cfg
}

/// One message on the wire.
#[derive(Debug, Clone)]
struct Sent {
    from: usize,
    to: usize,
    msg: Message,
}

/// User agents on one simulated clock and an in-memory network.
struct Lab {
    now: Instant,
    uas: Vec<UserAgent>,
    /// Messages sent and not yet delivered, in order.
    queue: VecDeque<(usize, Vec<u8>, SocketAddr)>,
    /// Every message sent, in order.
    wire: Vec<Sent>,
    /// Every event of each user agent since the last look.
    events: Vec<Vec<Event>>,
    /// Links (from, to) whose messages are lost.
    cut: Vec<(usize, usize)>,
    /// Each user agent's next deadline, as its last output said.
    deadlines: Vec<Option<Instant>>,
}

impl Lab {
    fn new(n: usize) -> Lab {
        let now = epoch();
        Lab {
            now,
            uas: (0..n)
                .map(|i| UserAgent::new(peer_config(i), now))
                .collect(),
            queue: VecDeque::new(),
            wire: Vec::new(),
            events: vec![Vec::new(); n],
            deadlines: vec![None; n],
            cut: Vec::new(),
        }
    }

    /// Moves what each user agent sent into the network and its events into `events`.
    fn collect(&mut self) {
        for (i, ua) in self.uas.iter_mut().enumerate() {
            self.deadlines[i] = None;
            while let Some(output) = ua.poll_output() {
                match output {
                    Output::Transmit(t) => {
                        let to = (0..NAMES.len()).find(|j| addr(*j) == t.dst);
                        let msg = Message::parse(&t.payload)
                            .expect("switchboard sends parsable messages");
                        if let Some(to) = to {
                            self.wire.push(Sent { from: i, to, msg });
                        }
                        self.queue.push_back((i, t.payload, t.dst));
                    }
                    Output::Event(event) => self.events[i].push(event),
                    // Peers are addressed by IP: nothing to look up.
                    Output::Media(_) | Output::Resolve(_) => {}
                    Output::Timeout(t) => {
                        self.deadlines[i] = Some(t);
                        break;
                    }
                }
            }
        }
    }

    /// Delivers everything until the network is quiet, except what `hold` keeps back
    /// (returned, in order, for a later [`Lab::deliver`]).
    fn run_holding(
        &mut self,
        hold: impl Fn(usize, &Message) -> bool,
    ) -> Vec<(usize, Vec<u8>, SocketAddr)> {
        let mut kept = Vec::new();
        for _ in 0..10_000 {
            self.collect();
            let Some((from, payload, dst)) = self.queue.pop_front() else {
                return kept;
            };
            let msg = Message::parse(&payload).expect("parsable");
            if hold(from, &msg) {
                kept.push((from, payload, dst));
                continue;
            }
            self.deliver(vec![(from, payload, dst)]);
        }
        panic!("the network never went quiet");
    }

    fn run(&mut self) {
        let kept = self.run_holding(|_, _| false);
        assert!(kept.is_empty());
    }

    /// Hands `items` to their receivers (messages to nobody are lost).
    fn deliver(&mut self, items: Vec<(usize, Vec<u8>, SocketAddr)>) {
        for (from, payload, dst) in items {
            let to = (0..self.uas.len()).find(|j| addr(*j) == dst);
            if let Some(to) = to.filter(|to| !self.cut.contains(&(from, *to))) {
                self.uas[to].handle_datagram(self.now, Transport::Udp, addr(from), &payload);
            }
        }
        self.collect();
    }

    fn cmd(&mut self, i: usize, c: Command) {
        self.uas[i].command(self.now, c);
        self.collect();
    }

    /// Advances the clock by `d`, running every timer and delivering everything on the way.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.run();
        for _ in 0..1_000_000 {
            let next = self.deadlines.iter().flatten().min().copied();
            match next.filter(|t| *t <= end) {
                Some(t) => {
                    self.now = t.max(self.now);
                    for ua in &mut self.uas {
                        ua.handle_timeout(self.now);
                    }
                    self.run();
                }
                None => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("timers never settled");
    }

    fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// The call states user agent `i` reported since the last look.
    fn states(&mut self, i: usize) -> Vec<CallState> {
        self.take_events(i)
            .into_iter()
            .filter_map(|e| match e {
                Event::Call { state, .. } => Some(state),
                _ => None,
            })
            .collect()
    }

    /// The state and media direction user agent `i` last reported for `call_id`.
    fn last_state(&self, i: usize, call_id: &str) -> (Option<CallState>, Option<Direction>) {
        let state = self.events[i].iter().rev().find_map(|e| match e {
            Event::Call {
                state, call_id: c, ..
            } if c == call_id => Some(*state),
            _ => None,
        });
        let dir = self.events[i].iter().rev().find_map(|e| match e {
            Event::Media {
                direction,
                call_id: c,
                ..
            } if c == call_id => Some(*direction),
            _ => None,
        });
        (state, dir)
    }

    /// `from` dials `to`, which answers: the Call-ID.
    fn connect(&mut self, from: usize, to: usize) -> String {
        self.cmd(from, Command::Dial(uri(to)));
        self.run();
        self.cmd(to, Command::Answer(None));
        self.run();
        let call_id = self
            .wire
            .iter()
            .rev()
            .find(|s| s.from == from && s.to == to && s.msg.method() == Method::Invite)
            .expect("an INVITE")
            .msg
            .call_id
            .clone();
        assert_eq!(
            self.last_state(from, &call_id).0,
            Some(CallState::Connected)
        );
        assert_eq!(self.last_state(to, &call_id).0, Some(CallState::Connected));
        call_id
    }

    /// Every 2xx to an INVITE on the wire has its ACK from the INVITE's sender, carrying
    /// the INVITE's From, To (the 2xx's for an initial INVITE) and Call-ID; returns how
    /// many re-INVITE ACKs were checked.
    fn assert_every_2xx_acked(&self) -> usize {
        let mut reinvites = 0;
        for ok in self.wire.iter().filter(|s| {
            s.msg.method() == Method::Invite
                && s.msg.code().is_some_and(|c| (200..300).contains(&c))
        }) {
            let invite = self
                .wire
                .iter()
                .find(|s| {
                    s.from == ok.to
                        && s.msg.code().is_none()
                        && s.msg.method() == Method::Invite
                        && s.msg.call_id == ok.msg.call_id
                        && s.msg.cseq == ok.msg.cseq
                        && s.msg.via.branch() == ok.msg.via.branch()
                })
                .expect("the INVITE of every 2xx");
            let ack = self
                .wire
                .iter()
                .find(|s| {
                    s.from == ok.to
                        && s.msg.method() == Method::Ack
                        && s.msg.call_id == ok.msg.call_id
                        && s.msg.cseq.0 == ok.msg.cseq.0
                })
                .unwrap_or_else(|| panic!("no ACK for {:#?}", ok.msg));
            assert_eq!(ack.to, ok.from, "the ACK goes to who answered");
            assert_eq!(ack.msg.header("From"), invite.msg.header("From"));
            assert_eq!(ack.msg.call_id, invite.msg.call_id);
            assert_eq!(ack.msg.from.tag(), invite.msg.from.tag());
            if invite.msg.to.tag().is_some() {
                reinvites += 1;
                assert_eq!(ack.msg.header("To"), invite.msg.header("To"));
            } else {
                assert_eq!(ack.msg.to.tag(), ok.msg.to.tag());
            }
        }
        reinvites
    }

    /// The requests of `method` that `from` sent.
    fn requests(&self, from: usize, method: Method) -> Vec<Message> {
        self.wire
            .iter()
            .filter(|s| s.from == from && s.msg.code().is_none() && s.msg.method() == method)
            .map(|s| s.msg.clone())
            .collect()
    }

    /// The responses `from` sent to requests of `method`.
    fn responses(&self, from: usize, method: Method) -> Vec<Message> {
        self.wire
            .iter()
            .filter(|s| s.from == from && s.msg.code().is_some() && s.msg.method() == method)
            .map(|s| s.msg.clone())
            .collect()
    }
}

#[test]
fn callee_hold_and_resume_are_acked_in_the_dialog_and_the_call_stays_up() {
    let mut lab = Lab::new(2);
    let call_id = lab.connect(0, 1);
    lab.states(0);
    lab.states(1);

    // Bob answered; his first re-INVITE has CSeq 1, like Alice's INVITE.
    lab.cmd(1, Command::Hold(None));
    lab.run();
    let hold = lab.requests(1, Method::Invite).remove(0);
    assert_eq!(hold.cseq.0, lab.requests(0, Method::Invite)[0].cseq.0);
    let ack = lab.requests(1, Method::Ack).remove(0);
    assert_eq!(lab.uas[1].census().acks, 1, "Bob keeps his ACK for a while");
    assert_eq!(ack.from.tag(), hold.from.tag(), "Bob's own tag in From");
    assert_eq!(ack.to.tag(), hold.to.tag(), "Alice's tag in To");
    assert_ne!(ack.from.tag(), ack.to.tag());
    assert_eq!(lab.states(1), vec![CallState::Held]);
    assert_eq!(lab.states(0), vec![CallState::RemoteHeld]);

    // Long past 64·T1: nobody ends the call for want of an ACK.
    lab.advance(Duration::from_secs(40));
    assert!(lab.states(0).is_empty() && lab.states(1).is_empty());

    lab.cmd(1, Command::Resume(None));
    lab.run();
    assert_eq!(lab.states(1), vec![CallState::Connected]);
    assert_eq!(lab.states(0), vec![CallState::Connected]);
    lab.cmd(1, Command::Hold(None));
    lab.advance(Duration::from_secs(40));
    assert_eq!(lab.states(1), vec![CallState::Held]);
    assert_eq!(lab.states(0), vec![CallState::RemoteHeld]);

    // Alice's BYE is Bob's call's: 200, not 481.
    lab.cmd(0, Command::Hangup(None));
    lab.run();
    let bye_answers: Vec<u16> = lab
        .responses(1, Method::Bye)
        .iter()
        .filter_map(Message::code)
        .collect();
    assert_eq!(bye_answers, vec![200]);
    assert_eq!(lab.states(1), vec![CallState::Ended]);
    assert_eq!(lab.assert_every_2xx_acked(), 3, "hold, resume, hold");
    assert!(lab.wire.iter().all(|s| s.msg.call_id == call_id));

    // Once the wait states have run out, neither side keeps anything of the call: no
    // transaction, and no ACK kept for a retransmitted 2xx (they once stayed until the next).
    lab.advance(Duration::from_secs(40));
    for ua in &lab.uas {
        assert_eq!(ua.census(), super::Census::default());
    }
}

#[test]
fn caller_and_callee_reinvites_are_acked_with_their_own_from_to_and_call_id() {
    let mut lab = Lab::new(2);
    lab.connect(0, 1);
    for (who, hold) in [(0, true), (0, false), (1, true), (1, false), (0, true)] {
        let cmd = if hold {
            Command::Hold(None)
        } else {
            Command::Resume(None)
        };
        lab.cmd(who, cmd);
        lab.advance(Duration::from_secs(1));
    }
    assert_eq!(lab.assert_every_2xx_acked(), 5);
    for who in [0, 1] {
        for ack in lab.requests(who, Method::Ack) {
            let invite = lab
                .requests(who, Method::Invite)
                .into_iter()
                .find(|i| i.cseq.0 == ack.cseq.0)
                .expect("the ACK's INVITE");
            assert_eq!(ack.call_id, invite.call_id);
            assert_eq!(ack.from.tag(), invite.from.tag());
            assert_eq!(ack.from.uri, invite.from.uri);
            assert_eq!(ack.to.uri, invite.to.uri);
        }
    }
}

#[test]
fn a_2xx_to_a_reinvite_that_crosses_the_bye_is_acked_and_so_is_its_retransmission() {
    for caller_holds in [true, false] {
        let mut lab = Lab::new(2);
        lab.connect(0, 1);
        let (holder, other) = if caller_holds { (0, 1) } else { (1, 0) };
        lab.cmd(holder, Command::Hold(None));
        // The re-INVITE reaches the other side, whose 200 is held back while it hangs up.
        let kept = lab.run_holding(|from, m| from == other && m.code() == Some(200));
        assert_eq!(kept.len(), 1);
        lab.cmd(other, Command::Hangup(None));
        lab.run();
        assert!(lab.take_events(holder).iter().any(|e| matches!(
            e,
            Event::Call {
                state: CallState::Ended,
                ..
            }
        )));
        // The 200 arrives after the call ended (and was forgotten): ACKed all the same.
        let hold_cseq = lab
            .requests(holder, Method::Invite)
            .last()
            .expect("hold")
            .cseq
            .0;
        let acks = |lab: &Lab| {
            lab.requests(holder, Method::Ack)
                .iter()
                .filter(|a| a.cseq.0 == hold_cseq && a.to.tag().is_some())
                .count()
        };
        assert_eq!(acks(&lab), 0);
        lab.deliver(kept.clone());
        lab.run();
        assert_eq!(acks(&lab), 1);
        lab.assert_every_2xx_acked();
        // A retransmission of it (its transaction is gone) gets the ACK again.
        lab.advance(Duration::from_secs(1));
        lab.deliver(kept);
        lab.run();
        assert_eq!(acks(&lab), 2);
    }
}

#[test]
fn resuming_a_call_the_far_end_still_holds_reports_remote_held() {
    let mut lab = Lab::new(2);
    let call_id = lab.connect(0, 1);
    lab.cmd(0, Command::Hold(None));
    lab.run();
    lab.cmd(1, Command::Hold(None));
    lab.run();
    assert_eq!(lab.last_state(0, &call_id).0, Some(CallState::Held));
    lab.take_events(0);
    // Alice resumes; Bob still holds her: his answer is sendonly.
    lab.cmd(0, Command::Resume(None));
    lab.run();
    assert_eq!(
        lab.last_state(0, &call_id),
        (Some(CallState::RemoteHeld), Some(Direction::RecvOnly))
    );
    lab.take_events(1);
    lab.cmd(1, Command::Resume(None));
    lab.run();
    assert_eq!(
        lab.last_state(0, &call_id),
        (Some(CallState::Connected), Some(Direction::SendRecv))
    );
    assert_eq!(
        lab.last_state(1, &call_id),
        (Some(CallState::Connected), Some(Direction::SendRecv))
    );
}

/// The transfer events user agent `i` reported: (kind, status).
fn transfer_events(events: &[Event]) -> Vec<(TransferKind, TransferStatus)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer { kind, status, .. } => Some((*kind, *status)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_transferee_whose_transfer_failed_resumes_the_call_it_held() {
    for operator_dialled in [true, false] {
        let mut lab = Lab::new(3);
        // Alice is the operator, Bob the caller's switchboard, Carol declines.
        let call_id = if operator_dialled {
            lab.connect(0, 1)
        } else {
            lab.connect(1, 0)
        };
        lab.cmd(0, Command::Transfer(uri(2)));
        lab.run();
        assert!(lab
            .take_events(2)
            .iter()
            .any(|e| matches!(e, Event::Incoming { .. })));
        lab.cmd(2, Command::Decline(None));
        // Glare between the two resumes is settled within 4 s.
        lab.advance(Duration::from_secs(10));
        let bob = transfer_events(&lab.events[1]);
        assert!(bob.contains(&(TransferKind::Incoming, TransferStatus::Failed)));
        let alice = transfer_events(&lab.events[0]);
        assert!(
            alice.contains(&(TransferKind::Blind, TransferStatus::Failed)),
            "{alice:?}"
        );
        for who in [0, 1] {
            assert_eq!(
                lab.last_state(who, &call_id),
                (Some(CallState::Connected), Some(Direction::SendRecv)),
                "{} after the recall (operator dialled: {operator_dialled})",
                NAMES[who]
            );
        }
        lab.assert_every_2xx_acked();
    }
}

#[test]
fn a_transferred_switchboard_acks_the_hold_answered_after_its_bye() {
    let mut lab = Lab::new(3);
    lab.connect(0, 1);
    lab.cmd(0, Command::Transfer(uri(2)));
    // Alice's 200 to Bob's hold re-INVITE is late: Bob calls Carol, she answers, Bob's BYE
    // to Alice goes first.
    let kept = lab
        .run_holding(|from, m| from == 0 && m.method() == Method::Invite && m.code() == Some(200));
    assert_eq!(kept.len(), 1);
    lab.cmd(2, Command::Answer(None));
    let kept_more = lab
        .run_holding(|from, m| from == 0 && m.method() == Method::Invite && m.code() == Some(200));
    assert!(kept_more.is_empty());
    assert_eq!(lab.requests(1, Method::Bye).len(), 1);
    lab.deliver(kept);
    lab.advance(Duration::from_secs(40));
    lab.assert_every_2xx_acked();
    let retransmitted_200s = lab
        .responses(0, Method::Invite)
        .iter()
        .filter(|m| m.code() == Some(200))
        .count();
    assert!(retransmitted_200s <= 2, "Alice got her ACK at once");
}

#[test]
fn the_operator_who_answered_completes_an_attended_transfer() {
    let mut lab = Lab::new(3);
    // Bob calls Alice (the operator), who consults Carol and completes.
    let held = lab.connect(1, 0);
    lab.cmd(0, Command::Consult(uri(2)));
    lab.run();
    lab.cmd(2, Command::Answer(None));
    lab.run();
    lab.take_events(0);
    lab.cmd(0, Command::Complete);
    lab.advance(Duration::from_secs(5));
    let alice = lab.take_events(0);
    assert!(
        transfer_events(&alice).contains(&(TransferKind::Attended, TransferStatus::Succeeded)),
        "{alice:#?}"
    );
    assert!(!alice
        .iter()
        .any(|e| matches!(e, Event::Error { message } if message.contains("already under way"))));
    let refer = lab.requests(0, Method::Refer).remove(0);
    assert_eq!(refer.call_id, held);
    // Bob now talks with Carol; Alice has nothing left.
    let bob_carol = lab
        .requests(1, Method::Invite)
        .into_iter()
        .find(|i| i.header("Replaces").is_some())
        .expect("Bob's INVITE with Replaces");
    assert_eq!(
        lab.last_state(1, &bob_carol.call_id),
        (Some(CallState::Connected), Some(Direction::SendRecv))
    );
    assert_eq!(
        lab.last_state(2, &bob_carol.call_id),
        (Some(CallState::Connected), Some(Direction::SendRecv))
    );
    lab.cmd(0, Command::Complete);
    assert!(lab.take_events(0).iter().any(
        |e| matches!(e, Event::Error { message } if message.starts_with("nothing to complete"))
    ));
    lab.assert_every_2xx_acked();
}

#[test]
fn a_hold_that_never_settles_does_not_wedge_complete() {
    let mut lab = Lab::new(3);
    lab.connect(1, 0);
    // Bob never answers the hold: everything Alice sends him from now on is lost.
    lab.cut.push((0, 1));
    lab.cmd(0, Command::Consult(uri(2)));
    lab.run();
    lab.cmd(2, Command::Answer(None));
    lab.run();
    lab.cmd(0, Command::Complete);
    lab.take_events(0);
    // Within the re-INVITE's 64·T1 the hold is given up: the call is lost, the transfer ends.
    lab.advance(Duration::from_secs(40));
    let alice = lab.take_events(0);
    assert!(
        transfer_events(&alice).contains(&(TransferKind::Attended, TransferStatus::Failed)),
        "{alice:#?}"
    );
    // The consultation with Carol is an ordinary call now.
    lab.cmd(0, Command::Complete);
    assert!(lab.take_events(0).iter().any(
        |e| matches!(e, Event::Error { message } if message.starts_with("nothing to complete"))
    ));
}

#[test]
fn a_transferee_recalled_while_the_target_rings_cancels_it_and_resumes() {
    let mut lab = Lab::new(3);
    lab.uas[0] = UserAgent::new(
        {
            let mut cfg = peer_config(0);
            cfg.account.policy.transfer.timeout = Duration::from_secs(5);
            cfg
        },
        lab.now,
    );
    let call_id = lab.connect(0, 1);
    lab.cmd(0, Command::Transfer(uri(2)));
    lab.run();
    // Carol rings and nobody answers: Alice's safe blind transfer recalls Bob after 5 s.
    lab.advance(Duration::from_secs(10));
    let alice = transfer_events(&lab.events[0]);
    assert!(
        alice.contains(&(TransferKind::Blind, TransferStatus::Recalled)),
        "{alice:?}"
    );
    assert!(lab.events[2].iter().any(|e| matches!(
        e,
        Event::Call {
            state: CallState::Ended,
            ..
        }
    )));
    assert_eq!(
        lab.requests(1, Method::Cancel).len(),
        1,
        "Bob cancels Carol"
    );
    for who in [0, 1] {
        assert_eq!(
            lab.last_state(who, &call_id),
            (Some(CallState::Connected), Some(Direction::SendRecv)),
            "{}",
            NAMES[who]
        );
    }
    lab.assert_every_2xx_acked();
}

// ───────────────────────────── races ─────────────────────────────

impl Lab {
    /// Lets every wait state run out, then checks that no user agent holds anything.
    fn assert_nothing_left(&mut self) {
        self.advance(Duration::from_secs(40));
        for (i, ua) in self.uas.iter().enumerate() {
            assert_eq!(
                ua.census(),
                super::Census::default(),
                "{} keeps state",
                NAMES[i]
            );
        }
    }
}

#[test]
fn reinvite_glare_is_491_both_ways_and_both_holds_succeed_on_retry() {
    let mut lab = Lab::new(2);
    let call_id = lab.connect(0, 1);
    lab.states(0);
    lab.states(1);
    // Both hold at once: each re-INVITE is in flight when the other arrives.
    lab.cmd(0, Command::Hold(None));
    lab.cmd(1, Command::Hold(None));
    lab.run();
    for side in [0, 1] {
        let codes: Vec<u16> = lab
            .responses(side, Method::Invite)
            .iter()
            .filter_map(Message::code)
            .collect();
        assert!(codes.contains(&491), "{} answered {codes:?}", NAMES[side]);
    }
    // §14.1: the Call-ID's owner (Alice) retries after 2.1–4 s, Bob after 0–2 s.
    lab.advance(Duration::from_secs(5));
    let reinvites = |lab: &Lab, side: usize| {
        lab.requests(side, Method::Invite)
            .iter()
            .filter(|m| m.to.tag().is_some())
            .count()
    };
    assert_eq!(reinvites(&lab, 1), 2, "Bob's hold was retried once");
    assert_eq!(reinvites(&lab, 0), 2, "Alice's hold was retried once");
    for side in [0, 1] {
        assert_eq!(
            lab.last_state(side, &call_id),
            (Some(CallState::Held), Some(Direction::Inactive)),
            "{}",
            NAMES[side]
        );
    }
    lab.assert_every_2xx_acked();
    lab.cmd(0, Command::Hangup(None));
    lab.assert_nothing_left();
}

#[test]
fn a_bye_crossing_our_reinvite_ends_the_call_on_both_sides_cleanly() {
    for holder in [0, 1] {
        let mut lab = Lab::new(2);
        let call_id = lab.connect(0, 1);
        let other = 1 - holder;
        lab.cmd(holder, Command::Hold(None));
        lab.cmd(other, Command::Hangup(None));
        lab.run();
        lab.advance(Duration::from_secs(1));
        for side in [0, 1] {
            assert_eq!(
                lab.last_state(side, &call_id).0,
                Some(CallState::Ended),
                "{}",
                NAMES[side]
            );
        }
        lab.assert_every_2xx_acked();
        lab.assert_nothing_left();
    }
}

#[test]
fn a_call_arriving_while_consulting_is_refused_busy() {
    let mut lab = Lab::new(4);
    lab.connect(1, 0);
    lab.cmd(0, Command::Consult(uri(2)));
    lab.run();
    lab.cmd(2, Command::Answer(None));
    lab.run();
    lab.take_events(0);
    // Both of Alice's lines are taken: Dave's call gets 486 and Alice is not disturbed.
    lab.cmd(3, Command::Dial(uri(0)));
    lab.run();
    let answers: Vec<u16> = lab
        .responses(0, Method::Invite)
        .iter()
        .filter(|m| m.call_id != lab.requests(1, Method::Invite)[0].call_id)
        .filter_map(Message::code)
        .filter(|c| *c >= 200)
        .collect();
    assert!(answers.contains(&486), "{answers:?}");
    let alice = lab.take_events(0);
    assert!(
        !alice.iter().any(|e| matches!(e, Event::Incoming { .. })),
        "{alice:#?}"
    );
    assert_eq!(
        lab.states(3).last(),
        Some(&CallState::Ended),
        "Dave's call ended"
    );
    // The consultation goes on: complete joins Bob and Carol.
    lab.cmd(0, Command::Complete);
    lab.advance(Duration::from_secs(5));
    assert!(transfer_events(&lab.take_events(0))
        .contains(&(TransferKind::Attended, TransferStatus::Succeeded)));
    for side in [1, 2] {
        lab.cmd(side, Command::Hangup(None));
    }
    lab.assert_nothing_left();
}

#[test]
fn complete_pressed_twice_sends_one_refer() {
    let mut lab = Lab::new(3);
    lab.connect(1, 0);
    lab.cmd(0, Command::Consult(uri(2)));
    lab.run();
    lab.cmd(2, Command::Answer(None));
    lab.run();
    lab.take_events(0);
    lab.cmd(0, Command::Complete);
    lab.cmd(0, Command::Complete);
    lab.advance(Duration::from_secs(5));
    assert_eq!(lab.requests(0, Method::Refer).len(), 1);
    let alice = lab.take_events(0);
    assert!(
        transfer_events(&alice).contains(&(TransferKind::Attended, TransferStatus::Succeeded)),
        "{alice:#?}"
    );
    lab.assert_every_2xx_acked();
    for side in [1, 2] {
        lab.cmd(side, Command::Hangup(None));
    }
    lab.assert_nothing_left();
}

#[test]
fn the_caller_hanging_up_between_the_202_and_the_notify_is_reported_once() {
    let mut lab = Lab::new(3);
    lab.connect(1, 0);
    lab.take_events(0);
    lab.cmd(0, Command::Transfer(uri(2)));
    // Bob accepts the REFER (202) but his NOTIFY is held back while he hangs up.
    let kept = lab.run_holding(|from, m| from == 1 && m.method() == Method::Notify);
    assert_eq!(
        lab.responses(1, Method::Refer)
            .iter()
            .filter_map(Message::code)
            .collect::<Vec<_>>(),
        vec![202]
    );
    let bob_alice = lab.requests(0, Method::Refer)[0].call_id.clone();
    lab.cmd(1, Command::Line(1));
    lab.cmd(1, Command::Hangup(None));
    lab.run();
    lab.deliver(kept);
    lab.advance(Duration::from_secs(20));
    let alice = lab.take_events(0);
    let ended: Vec<&Event> = alice
        .iter()
        .filter(|e| {
            matches!(e, Event::Call { state: CallState::Ended, call_id, .. } if *call_id == bob_alice)
        })
        .collect();
    assert_eq!(ended.len(), 1, "{alice:#?}");
    let finals: Vec<TransferStatus> = transfer_events(&alice)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| {
            matches!(
                s,
                TransferStatus::Succeeded | TransferStatus::Failed | TransferStatus::Recalled
            )
        })
        .collect();
    assert!(finals.len() <= 1, "one outcome at most: {finals:?}");
    for side in [1, 2] {
        lab.cmd(side, Command::Hangup(None));
    }
    lab.assert_every_2xx_acked();
    lab.assert_nothing_left();
}

#[test]
fn a_transfer_to_the_callers_own_address_fails_and_the_call_comes_back() {
    let mut lab = Lab::new(2);
    let call_id = lab.connect(1, 0);
    lab.take_events(0);
    lab.cmd(0, Command::Transfer(uri(1)));
    lab.advance(Duration::from_secs(60));
    let alice = lab.take_events(0);
    let outcomes: Vec<TransferStatus> = transfer_events(&alice)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert!(
        outcomes
            .iter()
            .any(|s| matches!(s, TransferStatus::Failed | TransferStatus::Recalled)),
        "{alice:#?}"
    );
    // Bob's INVITE to himself is refused as a loop (482); the call is back with Alice, both
    // talking.
    assert!(lab
        .responses(1, Method::Invite)
        .iter()
        .any(|m| m.code() == Some(482)));
    let last = alice.iter().rev().find_map(|e| match e {
        Event::Call {
            state, call_id: c, ..
        } if *c == call_id => Some(*state),
        _ => None,
    });
    assert_eq!(last, Some(CallState::Connected), "{alice:#?}");
    assert_eq!(
        lab.last_state(1, &call_id),
        (Some(CallState::Connected), Some(Direction::SendRecv)),
        "Bob talks with Alice again"
    );
    lab.assert_every_2xx_acked();
    lab.cmd(0, Command::Hangup(None));
    lab.assert_nothing_left();
}

#[test]
fn a_session_refresh_crossing_a_hold_ends_with_both_done_and_the_call_up() {
    let mut lab = Lab::new(2);
    let call_id = lab.connect(0, 1);
    lab.states(0);
    lab.states(1);
    // Bob holds a moment before the session refresh is due at half the 1800 s interval; his
    // re-INVITE is still on its way when the refresh goes out.
    lab.advance(Duration::from_millis(899_900));
    lab.cmd(1, Command::Hold(None));
    let kept = lab.run_holding(|from, m| from == 1 && m.method() == Method::Invite);
    assert_eq!(kept.len(), 1, "Bob's hold");
    lab.advance(Duration::from_millis(200));
    let refreshes = lab
        .requests(0, Method::Invite)
        .iter()
        .chain(&lab.requests(1, Method::Invite))
        .filter(|m| m.to.tag().is_some())
        .count();
    assert!(
        refreshes >= 1,
        "the refresh went out while the hold was on its way"
    );
    lab.deliver(kept);
    lab.advance(Duration::from_secs(10));
    let glare: Vec<u16> = [0, 1]
        .iter()
        .flat_map(|side| lab.responses(*side, Method::Invite))
        .filter_map(|m| m.code())
        .filter(|c| *c == 491)
        .collect();
    assert!(!glare.is_empty(), "the crossing re-INVITEs met with 491");
    assert_eq!(
        lab.last_state(1, &call_id),
        (Some(CallState::Held), Some(Direction::SendOnly))
    );
    assert_eq!(lab.last_state(0, &call_id).0, Some(CallState::RemoteHeld));
    // Two more session intervals: the refreshes go on while held; nobody's timer expires.
    lab.advance(Duration::from_secs(3_700));
    for side in [0, 1] {
        assert!(
            !lab.take_events(side).iter().any(|e| matches!(
                e,
                Event::Call {
                    state: CallState::Ended,
                    ..
                }
            )),
            "{} ended the call",
            NAMES[side]
        );
    }
    lab.assert_every_2xx_acked();
    lab.cmd(1, Command::Hangup(None));
    lab.assert_nothing_left();
}
