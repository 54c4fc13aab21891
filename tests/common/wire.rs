//! What a switchboard process put on the wire, read back from its `--sip-capture` file and
//! checked when the test ends: every message it sent meets the RFC header tables
//! (`switchboard::sip::conformance`), every 2xx to an INVITE it received was ACKed, and every
//! 2xx to an INVITE it sent got its ACK (RFC 3261 §13.2.2.4, §13.3.1.4) — lenient lab peers
//! forgive what a strict PBX does not, so the lab checks for them.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard::driver::capture::{self, Captured};
use switchboard::front::TraceDirection;
use switchboard::sip::conformance;
use switchboard::sip::msg::{Message, Method};

/// How long a peer has to ACK our 2xx before the test's end counts against it: the first
/// retransmission of the 2xx goes at T1 (0.5 s), so a live peer has ACKed well within this.
const ACK_GRACE_MS: u64 = 2_000;

/// The problems found in the capture at `path`, one line each (empty if none, or if there is
/// no capture, as with the selftest's fake binary). `ended` is when the process was stopped.
/// `peer_may_skip_ack`: the test's peer deliberately never ACKs (a scenario that tests that).
pub fn problems(path: &Path, ended: SystemTime, peer_may_skip_ack: bool) -> Vec<String> {
    let Ok(data) = std::fs::read(path) else {
        return Vec::new();
    };
    let records = capture::parse(&data);
    let ended_ms = ended
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut out = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.direction == TraceDirection::Out)
    {
        for v in conformance::check(&r.bytes) {
            out.push(format!(
                "sent to {}: {v}\n    {}",
                r.peer,
                first_line(&r.bytes)
            ));
        }
    }
    let parsed: Vec<(&Captured, Message)> = records
        .iter()
        .filter_map(|r| Message::parse(&r.bytes).ok().map(|m| (r, m)))
        .collect();
    for (i, (r, m)) in parsed.iter().enumerate() {
        let is_invite_2xx = m.cseq.1 == Method::Invite && m.code().is_some_and(|c| c / 100 == 2);
        if !is_invite_2xx {
            continue;
        }
        let acked = parsed[i + 1..].iter().any(|(later, ack)| {
            later.direction != r.direction
                && ack.code().is_none()
                && ack.method() == Method::Ack
                && ack.call_id == m.call_id
                && ack.cseq.0 == m.cseq.0
        });
        if acked {
            continue;
        }
        match r.direction {
            TraceDirection::In => out.push(format!(
                "received a 2xx to INVITE (Call-ID {}, CSeq {}) from {} and never ACKed it",
                m.call_id, m.cseq.0, r.peer
            )),
            TraceDirection::Out if !peer_may_skip_ack && r.at_ms + ACK_GRACE_MS < ended_ms => out
                .push(format!(
                    "sent a 2xx to INVITE (Call-ID {}, CSeq {}) to {} that was never ACKed",
                    m.call_id, m.cseq.0, r.peer
                )),
            TraceDirection::Out => {}
        }
    }
    // A 2xx retransmitted is reported once.
    out.dedup();
    out
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
