//! The local conference on simulated time: joining (held calls resumed, events, media
//! sources), hold and resume of every member, selecting lines, split, members hanging up,
//! the operator leaving (REFER with Replaces), and the refusals.

use super::api::{Command, Direction, Event};
use super::media_order::{MediaOrder, Source};
use super::msg::{Message, Method};
use super::refer;
use super::ua_tests::{config, phone_sdp, reply, sdp_direction, Bench};
use super::LineNo;

/// The phones: name, address, To tag.
const BOB: (&str, &str, &str) = ("bob", "127.0.0.3:5060", "bobtag");
const CAROL: (&str, &str, &str) = ("carol", "127.0.0.4:5060", "caroltag");
const DAVE: (&str, &str, &str) = ("dave", "127.0.0.5:5060", "davetag");

/// A user agent with `lines` lines.
fn bench(lines: usize) -> Bench {
    let mut cfg = config(false);
    cfg.rtp_ports = (0..lines).map(|i| 40_000 + 2 * i as u16).collect();
    Bench::with_config(cfg)
}

/// What each phone was sent and answered: our INVITE creating its call.
struct Phone {
    invite: Message,
    addr: &'static str,
    tag: &'static str,
}

/// Answers every re-INVITE in `sent` (hold or resume) from the phone it went to, as phones
/// do: recvonly to our sendonly, sendrecv to our sendrecv.
fn answer_reinvites(b: &mut Bench, sent: &[Message], phones: &[&Phone]) {
    for m in sent
        .iter()
        .filter(|m| m.code().is_none() && m.method() == Method::Invite)
    {
        let Some(p) = phones.iter().find(|p| p.invite.call_id == m.call_id) else {
            continue;
        };
        let dir = match sdp_direction(m) {
            Direction::SendOnly => "recvonly",
            Direction::Inactive => "inactive",
            _ => "sendrecv",
        };
        b.recv(p.addr, &reply(m, 200, "", "", &phone_sdp(dir)));
    }
}

/// Dials `who`; the calls already up are held (their phones agree); `who` answers.
fn dial(b: &mut Bench, who: (&'static str, &'static str, &'static str), up: &[&Phone]) -> Phone {
    let (name, addr, tag) = who;
    b.cmd(Command::Dial(name.into()));
    let sent = b.sent();
    let invite = sent
        .iter()
        .find(|m| {
            m.code().is_none()
                && m.method() == Method::Invite
                && m.request_uri() == Some(&format!("sip:{name}@127.0.0.1"))
        })
        .cloned()
        .expect("an INVITE for the new call");
    answer_reinvites(b, &sent, up);
    let contact = format!("Contact: <sip:{name}@{addr}>\r\nSupported: replaces\r\n");
    b.recv(
        addr,
        &reply(&invite, 200, tag, &contact, &phone_sdp("sendrecv")),
    );
    b.sent();
    Phone { invite, addr, tag }
}

/// A BYE from the phone on its call.
fn bye_from(p: &Phone) -> String {
    format!(
        "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKbye{}\r\n\
         From: <{}>;tag={}\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n",
        p.addr,
        p.tag,
        p.invite.request_uri().expect("uri"),
        p.tag,
        p.invite.from.tag().expect("our tag"),
        p.invite.call_id
    )
}

/// The sent INVITEs (re-INVITEs here) with their SDP direction, by Call-ID.
fn reinvites(sent: &[Message]) -> Vec<(String, Direction)> {
    sent.iter()
        .filter(|m| m.code().is_none() && m.method() == Method::Invite)
        .map(|m| (m.call_id.clone(), sdp_direction(m)))
        .collect()
}

/// The media sources ordered since the last look, as (line, source).
fn sources(b: &mut Bench) -> Vec<(LineNo, Option<Source>)> {
    b.media_orders()
        .into_iter()
        .filter_map(|o| match o {
            MediaOrder::Line { line, stream, .. } => Some((line, stream.map(|s| s.source))),
            _ => None,
        })
        .collect()
}

/// The conference events since the last look.
fn conference_events(events: &[Event]) -> Vec<(Vec<LineNo>, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Conference { lines, active } => Some((lines.clone(), *active)),
            _ => None,
        })
        .collect()
}

fn errors(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// bob on line 1 (held), carol on line 2 (talking), then `conference` and bob's resume.
fn joined(b: &mut Bench) -> (Phone, Phone) {
    let bob = dial(b, BOB, &[]);
    let carol = dial(b, CAROL, &[&bob]);
    sources(b);
    b.events();
    b.cmd(Command::Conference);
    let sent = b.sent();
    assert_eq!(
        reinvites(&sent),
        [(bob.invite.call_id.clone(), Direction::SendRecv)],
        "the held call is resumed, the talking one left alone"
    );
    let events = b.events();
    assert_eq!(conference_events(&events), [(vec![1, 2], true)]);
    assert_eq!(
        sources(b),
        [(2, Some(Source::Conference))],
        "carol joins at once; bob still hears music until his resume is answered"
    );
    answer_reinvites(b, &sent, &[&bob]);
    assert_eq!(sources(b), [(1, Some(Source::Conference))]);
    assert_eq!(
        b.ua.selected_line(),
        2,
        "the selected member stays selected"
    );
    b.sent();
    b.events();
    (bob, carol)
}

#[test]
fn conference_resumes_the_held_call_and_joins_both() {
    let mut b = bench(2);
    joined(&mut b);
}

#[test]
fn hold_and_resume_act_on_every_member() {
    let mut b = bench(2);
    let (bob, carol) = joined(&mut b);
    b.cmd(Command::Hold(None));
    let sent = b.sent();
    let mut held = reinvites(&sent);
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (bob.invite.call_id.clone(), Direction::SendOnly),
        (carol.invite.call_id.clone(), Direction::SendOnly),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(held, want, "both members are held");
    answer_reinvites(&mut b, &sent, &[&bob, &carol]);
    let mut s = sources(&mut b);
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        [
            (1, Some(Source::MusicOnHold)),
            (2, Some(Source::MusicOnHold))
        ]
    );
    // Resuming from either member's line brings everyone back.
    b.cmd(Command::Resume(Some(1)));
    let sent = b.sent();
    assert_eq!(reinvites(&sent).len(), 2);
    assert!(reinvites(&sent)
        .iter()
        .all(|(_, d)| *d == Direction::SendRecv));
    answer_reinvites(&mut b, &sent, &[&bob, &carol]);
    let mut s = sources(&mut b);
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        [(1, Some(Source::Conference)), (2, Some(Source::Conference))]
    );
    assert_eq!(b.ua.selected_line(), 1);
    assert!(
        conference_events(&b.events()).is_empty(),
        "still the same conference"
    );
}

#[test]
fn selecting_a_member_line_keeps_the_conference_together() {
    let mut b = bench(2);
    joined(&mut b);
    b.cmd(Command::Line(1));
    assert!(reinvites(&b.sent()).is_empty(), "nobody is held");
    assert_eq!(b.ua.selected_line(), 1);
    b.cmd(Command::Swap);
    assert!(reinvites(&b.sent()).is_empty());
    assert_eq!(b.ua.selected_line(), 2);
}

#[test]
fn a_new_call_holds_the_conference_and_selecting_a_member_resumes_it() {
    let mut b = bench(3);
    let (bob, carol) = joined(&mut b);
    let dave = dial(&mut b, DAVE, &[&bob, &carol]);
    let mut s = sources(&mut b);
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        [
            (1, Some(Source::MusicOnHold)),
            (2, Some(Source::MusicOnHold)),
            (3, Some(Source::Microphone)),
        ],
        "the members hear music while the operator talks to dave"
    );
    b.cmd(Command::Line(2));
    let sent = b.sent();
    let mut r = reinvites(&sent);
    r.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = vec![
        (bob.invite.call_id.clone(), Direction::SendRecv),
        (carol.invite.call_id.clone(), Direction::SendRecv),
        (dave.invite.call_id.clone(), Direction::SendOnly),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(r, want, "the members come back, dave is held");
    answer_reinvites(&mut b, &sent, &[&bob, &carol, &dave]);
    let mut s = sources(&mut b);
    s.sort_by_key(|x| x.0);
    assert_eq!(
        s,
        [
            (1, Some(Source::Conference)),
            (2, Some(Source::Conference)),
            (3, Some(Source::MusicOnHold)),
        ]
    );
}

#[test]
fn conference_again_splits_the_selected_line_talking_the_other_held() {
    let mut b = bench(2);
    let (bob, _carol) = joined(&mut b);
    b.cmd(Command::Conference);
    let sent = b.sent();
    assert_eq!(
        reinvites(&sent),
        [(bob.invite.call_id.clone(), Direction::SendOnly)],
        "line 2 is selected: bob on line 1 is held"
    );
    assert_eq!(conference_events(&b.events()), [(vec![1, 2], false)]);
    // Each is an ordinary call again; bob's music starts when his phone accepts the hold.
    assert_eq!(
        sources(&mut b),
        [(1, Some(Source::Microphone)), (2, Some(Source::Microphone))]
    );
    answer_reinvites(&mut b, &sent, &[&bob]);
    assert_eq!(sources(&mut b), [(1, Some(Source::MusicOnHold))]);
    assert_eq!(b.ua.selected_line(), 2);
    // Back to ordinary lines: swapping holds and resumes as usual.
    b.cmd(Command::Swap);
    assert_eq!(reinvites(&b.sent()).len(), 2);
}

#[test]
fn members_hanging_up_leave_the_others_joined_until_one_is_left() {
    let mut b = bench(3);
    let bob = dial(&mut b, BOB, &[]);
    let carol = dial(&mut b, CAROL, &[&bob]);
    let dave = dial(&mut b, DAVE, &[&bob, &carol]);
    b.cmd(Command::Conference);
    let sent = b.sent();
    assert_eq!(reinvites(&sent).len(), 2, "bob and carol are resumed");
    answer_reinvites(&mut b, &sent, &[&bob, &carol]);
    assert_eq!(conference_events(&b.events()), [(vec![1, 2, 3], true)]);
    sources(&mut b);

    b.recv(CAROL.1, &bye_from(&carol));
    b.sent();
    assert_eq!(conference_events(&b.events()), [(vec![1, 3], true)]);
    assert_eq!(sources(&mut b), [(2, None)], "only carol's media stops");

    // The operator hangs up dave (selected, line 3): bob is a normal call again.
    assert_eq!(b.ua.selected_line(), 3);
    b.cmd(Command::Hangup(None));
    assert_eq!(b.sent_request(Method::Bye).call_id, dave.invite.call_id);
    let events = b.events();
    assert_eq!(conference_events(&events), [(vec![1], false)]);
    assert!(
        events.contains(&Event::Line { line: 1 }),
        "bob's line is selected"
    );
    let s = sources(&mut b);
    assert!(s.contains(&(3, None)));
    assert!(
        s.contains(&(1, Some(Source::Microphone))),
        "bob hears the operator alone: {s:?}"
    );
    // Hold is an ordinary hold again.
    b.cmd(Command::Hold(None));
    assert_eq!(
        reinvites(&b.sent()),
        [(bob.invite.call_id.clone(), Direction::SendOnly)]
    );
}

#[test]
fn complete_leaves_the_two_parties_joined_by_refer_with_replaces() {
    let mut b = bench(2);
    let (bob, carol) = joined(&mut b);
    b.cmd(Command::Complete);
    let sent = b.sent();
    assert_eq!(conference_events(&b.events()), [(vec![1, 2], false)]);
    // bob is held first (the transfer machine's rule), then referred.
    assert_eq!(
        reinvites(&sent),
        [(bob.invite.call_id.clone(), Direction::SendOnly)]
    );
    answer_reinvites(&mut b, &sent, &[&bob]);
    let refer = b.sent_request(Method::Refer);
    assert_eq!(refer.call_id, bob.invite.call_id, "bob is referred");
    let parsed = refer::parse_refer_to(refer.header("Refer-To").expect("Refer-To"))
        .expect("a Refer-To we can read back");
    assert_eq!(parsed.uri, "sip:carol@127.0.0.4:5060", "carol's contact");
    let replaces = parsed.replaces.expect("Replaces carol's dialog");
    assert_eq!(replaces.call_id, carol.invite.call_id);
    assert_eq!(replaces.to_tag, carol.tag);
    assert_eq!(replaces.from_tag, carol.invite.from.tag().expect("our tag"));
}

#[test]
fn conference_needs_two_answered_calls_and_leaving_needs_two_parties() {
    let mut b = bench(3);
    b.cmd(Command::Conference);
    assert_eq!(
        errors(&b.events()),
        ["conference needs answered calls on at least two lines (0 now)"]
    );
    let bob = dial(&mut b, BOB, &[]);
    // A call still ringing on another line does not count.
    b.cmd(Command::Dial("carol".into()));
    let sent = b.sent();
    answer_reinvites(&mut b, &sent, &[&bob]);
    b.events();
    b.cmd(Command::Conference);
    assert_eq!(
        errors(&b.events()),
        ["conference needs answered calls on at least two lines (1 now)"]
    );
    b.cmd(Command::Hangup(None));
    b.sent();
    let carol = dial(&mut b, CAROL, &[&bob]);
    let _dave = dial(&mut b, DAVE, &[&bob, &carol]);
    b.cmd(Command::Conference);
    let sent = b.sent();
    answer_reinvites(&mut b, &sent, &[&bob, &carol]);
    b.events();
    b.sent();
    b.cmd(Command::Complete);
    let events = b.events();
    assert!(errors(&events)[0].starts_with("complete: leaving works with two parties"));
    assert!(
        conference_events(&events).is_empty(),
        "the conference goes on"
    );
    assert!(b.sent().is_empty());
}

#[test]
fn mute_in_a_conference_mutes_the_operator_for_every_member() {
    let mut b = bench(2);
    joined(&mut b);
    b.cmd(Command::Mute);
    let muted: Vec<(LineNo, bool)> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Mute { line, muted, .. } => Some((line, muted)),
            _ => None,
        })
        .collect();
    assert_eq!(muted, [(1, true), (2, true)]);
    let orders: Vec<MediaOrder> = b.media_orders();
    assert_eq!(orders.len(), 2);
    assert!(orders.iter().all(|o| matches!(
        o,
        MediaOrder::Line { stream: Some(s), .. } if s.muted && s.source == Source::Conference
    )));
}

#[test]
fn conference_asked_while_a_hold_is_in_flight_joins_once_it_is_done() {
    let mut b = bench(2);
    let bob = dial(&mut b, BOB, &[]);
    // carol is called and answers; bob's hold is not answered yet.
    b.cmd(Command::Dial("carol".into()));
    let sent = b.sent();
    let invite = sent
        .iter()
        .find(|m| {
            m.code().is_none() && m.method() == Method::Invite && m.call_id != bob.invite.call_id
        })
        .cloned()
        .expect("carol's INVITE");
    let contact = "Contact: <sip:carol@127.0.0.4:5060>\r\n";
    b.recv(
        CAROL.1,
        &reply(&invite, 200, CAROL.2, contact, &phone_sdp("sendrecv")),
    );
    b.sent();
    b.events();
    b.cmd(Command::Conference);
    let events = b.events();
    assert!(errors(&events).is_empty(), "no error: {events:?}");
    assert!(conference_events(&events).is_empty(), "not yet joined");
    assert!(
        reinvites(&b.sent()).is_empty(),
        "nothing while bob's hold is pending"
    );
    // bob's phone accepts the hold: the conference goes ahead and resumes him.
    answer_reinvites(&mut b, &sent, &[&bob]);
    assert_eq!(
        reinvites(&b.sent()),
        [(bob.invite.call_id.clone(), Direction::SendRecv)]
    );
    assert_eq!(conference_events(&b.events()), [(vec![1, 2], true)]);
}
