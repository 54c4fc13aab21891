//! Recording decisions on simulated time: `record start|stop`, errors for lines without a
//! call, the stop when a call ends, and `[recording] auto`.

use std::time::Duration;

use super::api::{Command, Event};
use super::media_order::MediaOrder;
use super::msg::Method;
use super::ua_tests::{connected_call, Bench, PHONE};

fn orders(b: &mut Bench) -> Vec<MediaOrder> {
    b.media_orders()
}

fn recording_orders(b: &mut Bench) -> Vec<MediaOrder> {
    orders(b)
        .into_iter()
        .filter(|o| {
            matches!(
                o,
                MediaOrder::StartRecording { .. } | MediaOrder::StopRecording { .. }
            )
        })
        .collect()
}

fn errors(b: &mut Bench) -> Vec<String> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message),
            _ => None,
        })
        .collect()
}

fn start(call_id: &str, incoming: bool, peer: &str) -> MediaOrder {
    MediaOrder::StartRecording {
        line: 1,
        call_id: call_id.into(),
        incoming,
        peer: peer.into(),
    }
}

fn stop(call_id: &str, reason: &str) -> MediaOrder {
    MediaOrder::StopRecording {
        line: 1,
        call_id: call_id.into(),
        reason: reason.into(),
    }
}

/// Dials and connects bob on line 1; returns the call's Call-ID, with every output drained.
fn connected(b: &mut Bench) -> String {
    let (invite, _) = connected_call(b);
    b.sent();
    b.events();
    orders(b);
    invite.call_id.clone()
}

#[test]
fn recording_an_idle_or_missing_line_is_an_error() {
    let mut b = Bench::new(false);
    b.cmd(Command::Record(true, None));
    b.cmd(Command::Record(false, Some(2)));
    b.cmd(Command::Record(true, Some(5)));
    assert_eq!(
        errors(&mut b),
        vec![
            "record: no connected call on line 1".to_string(),
            "record: no connected call on line 2".to_string(),
            "record: there is no line 5 (lines 1 to 2)".to_string(),
        ]
    );
    assert!(recording_orders(&mut b).is_empty());
}

#[test]
fn a_ringing_call_cannot_be_recorded_yet() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    b.sent();
    b.events();
    b.cmd(Command::Record(true, None));
    assert_eq!(errors(&mut b), vec!["record: no connected call on line 1"]);
    assert!(recording_orders(&mut b).is_empty());
}

#[test]
fn start_and_stop_order_the_engine_and_repeats_are_errors() {
    let mut b = Bench::new(false);
    let call_id = connected(&mut b);
    b.cmd(Command::Record(true, None));
    assert_eq!(
        recording_orders(&mut b),
        vec![start(&call_id, false, "sip:bob@127.0.0.1")]
    );
    b.cmd(Command::Record(true, Some(1)));
    assert_eq!(
        errors(&mut b),
        vec!["record: line 1 is already being recorded"]
    );
    b.cmd(Command::Record(false, Some(1)));
    assert_eq!(
        recording_orders(&mut b),
        vec![stop(&call_id, "stopped by the operator")]
    );
    b.cmd(Command::Record(false, None));
    assert_eq!(errors(&mut b), vec!["record: line 1 is not being recorded"]);
    assert!(recording_orders(&mut b).is_empty());
}

#[test]
fn hanging_up_stops_the_recording_once() {
    let mut b = Bench::new(false);
    let call_id = connected(&mut b);
    b.cmd(Command::Record(true, None));
    orders(&mut b);
    b.cmd(Command::Hangup(None));
    b.sent_request(Method::Bye);
    assert_eq!(
        recording_orders(&mut b),
        vec![stop(&call_id, "the call ended")]
    );
    b.advance(Duration::from_secs(40));
    assert!(recording_orders(&mut b).is_empty());
}

#[test]
fn the_far_end_hanging_up_stops_the_recording() {
    let mut b = Bench::new(false);
    let (invite, ok) = connected_call(&mut b);
    b.sent();
    b.cmd(Command::Record(true, None));
    orders(&mut b);
    let to_tag = "bobtag";
    let from = invite.header("From").expect("From").to_string();
    let bye = format!(
        "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bKbye1\r\n\
         From: <sip:bob@127.0.0.1>;tag={to_tag}\r\nTo: {from}\r\nCall-ID: {}\r\n\
         CSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        invite.call_id
    );
    assert!(ok.contains(to_tag));
    b.recv(PHONE, &bye);
    assert_eq!(
        recording_orders(&mut b),
        vec![stop(&invite.call_id, "the call ended")]
    );
}

#[test]
fn auto_records_every_answered_call_once() {
    let mut b = Bench::new(false);
    b.ua.set_record_auto(true);
    let (invite, _) = connected_call(&mut b);
    assert_eq!(
        recording_orders(&mut b),
        vec![start(&invite.call_id, false, "sip:bob@127.0.0.1")]
    );
    // After an operator stop, later changes of the call (hold) do not start it again.
    b.cmd(Command::Record(false, None));
    b.cmd(Command::Hold(None));
    assert_eq!(
        recording_orders(&mut b),
        vec![stop(&invite.call_id, "stopped by the operator")]
    );
}

#[test]
fn without_auto_nothing_is_recorded() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    assert!(recording_orders(&mut b).is_empty());
}

#[test]
fn a_failed_recording_can_be_started_again() {
    let mut b = Bench::new(false);
    let call_id = connected(&mut b);
    b.cmd(Command::Record(true, None));
    orders(&mut b);
    b.ua.handle_recording_failed(&call_id);
    b.cmd(Command::Record(true, None));
    assert!(errors(&mut b).is_empty());
    assert_eq!(
        recording_orders(&mut b),
        vec![start(&call_id, false, "sip:bob@127.0.0.1")]
    );
}
