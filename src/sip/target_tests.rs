//! The one target parser seen through every command, on simulated time: the same text gives
//! the same URI in a dial's INVITE, a blind transfer's Refer-To, a consultation's INVITE and a
//! pickup's SUBSCRIBE; what cannot be called is refused in the same words by each.

use super::api::{Command, Event};
use super::msg::{Message, Method};
use super::target::tests::FORMS;
use super::transfer::BlindMode;
use super::ua_tests::{config, connected_call, phone_sdp, reply, Bench, PHONE};

/// The account domain of [`config`], in place of the table's `pbx.example`.
fn want_here(want: &str) -> String {
    want.replace("pbx.example", "127.0.0.1")
}

/// A bench whose requests all go to an outbound proxy, so that any host can be a target;
/// blind transfers REFER and watch the NOTIFYs.
fn bench() -> Bench {
    let mut cfg = config(false);
    cfg.account.outbound_proxy = Some((
        "sip:127.0.0.1".into(),
        "127.0.0.1:5060".parse().expect("addr"),
    ));
    cfg.account.policy.transfer.blind = BlindMode::Notify;
    Bench::with_config(cfg)
}

fn requests(sent: &[Message], method: Method) -> Vec<Message> {
    sent.iter()
        .filter(|m| m.code().is_none() && m.method() == method)
        .cloned()
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

/// The Request-URI of the INVITE `dial typed` sends.
fn dialled(typed: &str) -> Option<String> {
    let mut b = bench();
    b.cmd(Command::Dial(typed.into()));
    let invites = requests(&b.sent(), Method::Invite);
    invites
        .first()
        .and_then(|m| m.request_uri().map(str::to_string))
}

/// The Refer-To of the REFER `transfer typed` sends on a connected call, brackets removed.
fn transferred(typed: &str) -> Option<String> {
    let mut b = bench();
    connected_call(&mut b);
    b.sent();
    b.cmd(Command::Transfer(typed.into()));
    let hold = requests(&b.sent(), Method::Invite).into_iter().next()?;
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    let refer = requests(&b.sent(), Method::Refer).into_iter().next()?;
    let refer_to = refer.header("Refer-To")?;
    Some(
        refer_to
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    )
}

/// The Request-URI of the consultation INVITE `consult typed` sends on a connected call.
fn consulted(typed: &str) -> Option<String> {
    let mut b = bench();
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.cmd(Command::Consult(typed.into()));
    let sent = requests(&b.sent(), Method::Invite);
    let consult = sent.iter().find(|m| m.call_id != invite.call_id)?;
    consult.request_uri().map(str::to_string)
}

/// The Request-URI of the SUBSCRIBE `pickup typed` sends (pickup by dialog).
fn picked_up(typed: &str) -> Option<String> {
    let mut b = bench();
    b.cmd(Command::Pickup(typed.into()));
    let subscribes = requests(&b.sent(), Method::Subscribe);
    subscribes
        .first()
        .and_then(|m| m.request_uri().map(str::to_string))
}

#[test]
fn the_same_text_gives_the_same_target_for_dial_transfer_consult_and_pickup() {
    for (typed, want) in FORMS {
        let want = want_here(want);
        assert_eq!(dialled(typed).as_deref(), Some(&*want), "dial {typed:?}");
        assert_eq!(
            transferred(typed).as_deref(),
            Some(&*want),
            "transfer {typed:?}"
        );
        assert_eq!(
            consulted(typed).as_deref(),
            Some(&*want),
            "consult {typed:?}"
        );
        assert_eq!(
            picked_up(typed).as_deref(),
            Some(&*want),
            "pickup {typed:?}"
        );
    }
}

#[test]
fn what_cannot_be_called_is_refused_by_every_command_without_a_message() {
    for typed in ["alice smith", "<sip:carol@pbx", "bob@ho st", "()"] {
        assert_eq!(dialled(typed), None, "dial {typed:?}");
        assert_eq!(transferred(typed), None, "transfer {typed:?}");
        assert_eq!(consulted(typed), None, "consult {typed:?}");
        assert_eq!(picked_up(typed), None, "pickup {typed:?}");
        let mut b = bench();
        b.cmd(Command::Dial(typed.into()));
        let words = errors(&mut b);
        assert!(
            words.len() == 1 && words[0].contains(&format!("'{typed}'")),
            "{typed:?}: {words:?}"
        );
    }
}
