//! Unit tests of [`App::update`]: keys → commands per state, event sequences → line state,
//! outcome messages, the picker, paste cleaning, quit confirmation, the SIP trace pane, the
//! history view and adding a contact. The state is built by
//! feeding the events the driver sends.

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{clean_paste, number_of, Effect, Input, Mode, Purpose, Registration};
use super::finder::{Finder, ListFinder, PickerRow};
use super::history_view::HistoryList;
use super::{App, Keymap};
use crate::config::Keys;
use crate::front::{Command, Event, TraceDirection, TraceMode};
use crate::sip::{
    BlfState, CallState, Command as SipCommand, Event as SipEvent, TransferKind, TransferStatus,
    WrapupChoice, WrapupStatus,
};

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn row(name: &str, number: &str, source: &'static str, internal: bool) -> PickerRow {
    PickerRow {
        name: name.into(),
        number: number.into(),
        detail: String::new(),
        source,
        internal,
        name_hits: vec![],
        number_hits: vec![],
        detail_hits: vec![],
    }
}

/// An app with a small directory, at a fixed time.
struct Rig {
    app: App,
    finder: ListFinder,
    now: Instant,
    /// The [`Command::Sip(SipCommand::Watch)`] effects, kept apart from the others.
    watched: Vec<Vec<String>>,
}

impl Rig {
    fn new() -> Self {
        Self::with_keys(&Keys::default())
    }

    fn with_keys(keys: &Keys) -> Self {
        Rig {
            app: App::new(Keymap::new(keys).expect("valid keys"), true, Vec::new()),
            finder: ListFinder::new(vec![
                row("Anna Virtanen", "201", "corporate", true),
                row("Bob Builder", "202", "extension", true),
                row("Carol Smith", "+358401234567", "personal", false),
            ]),
            now: epoch(),
            watched: Vec::new(),
        }
    }

    /// The effects of `input`, the picker's `watch` set apart in [`Rig::watched`]; searches
    /// and picks are carried out on the finder as the run loop does (their rows fed back).
    fn feed(&mut self, input: Input) -> Vec<Effect> {
        let mut inputs = vec![input];
        let mut out = Vec::new();
        while let Some(input) = inputs.pop() {
            for effect in self.app.update(input, self.now, &self.finder) {
                match effect {
                    Effect::Send(Command::Sip(SipCommand::Watch(exts))) => self.watched.push(exts),
                    Effect::Search { query, limit, .. } => {
                        let rows = self.finder.find(&query, limit);
                        inputs.push(Input::Found { query, rows });
                    }
                    Effect::Picked(number) => self.finder.picked(&number, SystemTime::UNIX_EPOCH),
                    other => out.push(other),
                }
            }
        }
        out
    }

    fn event(&mut self, event: Event) -> Vec<Effect> {
        self.feed(Input::Event(event))
    }

    fn key(&mut self, code: KeyCode) -> Vec<Effect> {
        self.feed(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn char(&mut self, c: char) -> Vec<Effect> {
        let modifiers = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        self.feed(Input::Key(KeyEvent::new(KeyCode::Char(c), modifiers)))
    }

    fn typed(&mut self, text: &str) {
        for c in text.chars() {
            self.char(c);
        }
    }

    fn later(&mut self, seconds: u64) {
        self.now += Duration::from_secs(seconds);
    }

    fn incoming(&mut self, line: u8, id: &str, from: &str) -> Vec<Effect> {
        let effects = self.event(Event::Sip(SipEvent::Incoming {
            line,
            call_id: id.into(),
            from: from.into(),
            display_name: Some("Display".into()),
            referred_by: None,
            replaces: None,
            account: "desk".into(),
        }));
        self.call_state(line, id, from, CallState::Ringing);
        effects
    }

    fn call_state(&mut self, line: u8, id: &str, peer: &str, state: CallState) {
        self.event(Event::Sip(SipEvent::Call {
            line,
            call_id: id.into(),
            state,
            peer: peer.into(),
            status: None,
            reason: None,
            account: None,
        }));
    }

    fn ended(&mut self, line: u8, id: &str, peer: &str, reason: &str) {
        self.event(Event::Sip(SipEvent::Call {
            line,
            call_id: id.into(),
            state: CallState::Ended,
            peer: peer.into(),
            status: None,
            reason: Some(reason.into()),
            account: None,
        }));
    }

    fn transfer(&mut self, line: u8, id: &str, status: TransferStatus, reason: Option<&str>) {
        self.event(Event::Sip(SipEvent::Transfer {
            line,
            call_id: id.into(),
            kind: TransferKind::Blind,
            mechanism: None,
            status,
            target: "sip:202@pbx".into(),
            status_code: None,
            reason: reason.map(str::to_owned),
        }));
    }

    /// Line 1 connected with Anna (201).
    fn connected(&mut self) {
        self.incoming(1, "c1", "sip:201@pbx");
        self.call_state(1, "c1", "sip:201@pbx", CallState::Connected);
    }

    fn word(&self, line: u8) -> &'static str {
        self.app.call(line).map_or("idle", |c| c.state_word())
    }
}

fn send(command: Command) -> Vec<Effect> {
    vec![Effect::Send(command)]
}

#[test]
fn started_and_registration_show_in_the_model() {
    let mut rig = Rig::new();
    assert_eq!(rig.app.registration, Registration::Starting);
    rig.event(Event::Started {
        local: "127.0.0.1:5060".into(),
        transport: "udp".into(),
        account: "1001@pbx".into(),
        accounts: vec!["desk".into()],
        note: String::new(),
        lines: 2,
    });
    assert_eq!(rig.app.account.as_deref(), Some("1001@pbx"));
    rig.event(Event::Sip(SipEvent::RegistrationFailed {
        account: "desk".into(),
        aor: "1001@pbx".into(),
        status: Some(403),
        reason: "forbidden".into(),
        retry_in: 30,
    }));
    assert_eq!(
        rig.app.registration,
        Registration::Failed {
            reason: "forbidden".into(),
            retry_in: 30
        }
    );
    rig.event(Event::Sip(SipEvent::Registered {
        account: "desk".into(),
        aor: "1001@pbx".into(),
        expires: 600,
    }));
    assert_eq!(rig.app.registration, Registration::Registered);
}

#[test]
fn incoming_call_rings_shows_the_caller_and_answers() {
    let mut rig = Rig::new();
    let effects = rig.incoming(1, "c1", "sip:201@pbx");
    assert_eq!(effects, [Effect::Bell]);
    let call = rig.app.call(1).expect("ringing");
    assert_eq!(
        call.name.as_deref(),
        Some("Anna Virtanen"),
        "directory name wins"
    );
    assert_eq!(call.number, "201");
    assert_eq!(rig.word(1), "incoming");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Answer(Some(1))))
    );
    assert_eq!(
        rig.char('a'),
        send(Command::Sip(SipCommand::Answer(Some(1))))
    );
    // An unknown caller keeps the display name.
    rig.incoming(2, "c2", "sip:999@pbx");
    assert_eq!(
        rig.app.call(2).and_then(|c| c.name.as_deref()),
        Some("Display")
    );
}

#[test]
fn no_bell_when_switched_off() {
    let mut app = App::new(Keymap::default(), false, Vec::new());
    let finder = ListFinder::default();
    let effects = app.update(
        Input::Event(Event::Sip(SipEvent::Incoming {
            line: 1,
            call_id: "c".into(),
            from: "sip:1@h".into(),
            display_name: None,
            referred_by: None,
            replaces: None,
            account: "desk".into(),
        })),
        epoch(),
        &finder,
    );
    assert!(effects.is_empty());
}

#[test]
fn keys_map_to_commands_when_connected() {
    let mut rig = Rig::new();
    rig.connected();
    assert_eq!(rig.word(1), "connected");
    assert_eq!(
        rig.char('h'),
        send(Command::Sip(SipCommand::Hangup(Some(1))))
    );
    assert_eq!(
        rig.key(KeyCode::Char(' ')),
        send(Command::Sip(SipCommand::Hold(Some(1))))
    );
    assert_eq!(rig.key(KeyCode::Tab), send(Command::Sip(SipCommand::Swap)));
    assert_eq!(rig.char('m'), send(Command::Sip(SipCommand::Mute)));
    assert_eq!(
        rig.char('r'),
        send(Command::Sip(SipCommand::Record(true, None)))
    );
    assert_eq!(
        rig.char('5'),
        send(Command::Sip(SipCommand::Dtmf("5".into())))
    );
    assert_eq!(
        rig.char('#'),
        send(Command::Sip(SipCommand::Dtmf("#".into())))
    );
    // Only one line busy: no complete, cancel or conference; Enter does nothing.
    assert!(rig.char('c').is_empty());
    assert!(rig.char('k').is_empty());
    assert!(rig.key(KeyCode::Enter).is_empty());
    assert!(rig.key(KeyCode::Esc).is_empty());
    // Held: space resumes, digits are not sent.
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Held);
    assert_eq!(rig.word(1), "on hold");
    assert_eq!(
        rig.key(KeyCode::Char(' ')),
        send(Command::Sip(SipCommand::Resume(Some(1))))
    );
    assert!(rig.char('5').is_empty());
    rig.call_state(1, "c1", "sip:201@pbx", CallState::RemoteHeld);
    assert_eq!(rig.word(1), "held by peer");
}

#[test]
fn idle_keys_do_nothing_but_open_things() {
    let mut rig = Rig::new();
    for c in ['h', ' ', 'm', 'r', 'k', 'c', 't', 'T', '5'] {
        assert!(rig.char(c).is_empty(), "{c:?} with no call");
        assert_eq!(rig.app.mode, Mode::Normal, "{c:?}");
    }
    rig.char('?');
    assert_eq!(rig.app.mode, Mode::Help);
    rig.char('x');
    assert_eq!(rig.app.mode, Mode::Normal, "any key closes help");
    rig.char('o');
    assert_eq!(rig.app.mode, Mode::RoutePrompt(String::new()));
    rig.typed("intl");
    assert_eq!(rig.key(KeyCode::Enter), send(Command::Route("intl".into())));
    assert_eq!(rig.app.route.as_deref(), Some("intl"));
}

#[test]
fn started_sizes_the_lines_and_conference_events_show_on_the_members() {
    let mut rig = Rig::new();
    assert_eq!(rig.app.line_count(), 2);
    rig.event(Event::Started {
        local: "127.0.0.1:5060".into(),
        transport: "udp".into(),
        account: "1001@pbx".into(),
        accounts: vec!["desk".into()],
        note: String::new(),
        lines: 4,
    });
    assert_eq!(rig.app.line_count(), 4);
    for (line, id) in [(1, "c1"), (3, "c3"), (4, "c4")] {
        rig.call_state(line, id, "sip:201@pbx", CallState::Connected);
    }
    assert_eq!(rig.word(4), "connected", "line 4 exists now");
    rig.event(Event::Sip(SipEvent::Conference {
        lines: vec![1, 3],
        active: true,
    }));
    assert_eq!(rig.word(1), "conference");
    assert_eq!(rig.word(3), "conference");
    assert_eq!(rig.word(4), "connected", "not a member");
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Held);
    assert_eq!(rig.word(1), "conference on hold");
    rig.event(Event::Sip(SipEvent::Conference {
        lines: vec![1, 3],
        active: false,
    }));
    assert_eq!(rig.word(3), "connected");
    assert_eq!(rig.word(1), "on hold");
    // Two answered calls among four lines are enough to join.
    assert_eq!(rig.char('k'), send(Command::Sip(SipCommand::Conference)));
}

#[test]
fn two_lines_allow_complete_cancel_and_conference() {
    let mut rig = Rig::new();
    rig.connected();
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Held);
    rig.call_state(2, "c2", "sip:202@pbx", CallState::Dialing);
    assert_eq!(rig.word(2), "dialing");
    assert_eq!(
        rig.app.call(2).and_then(|c| c.name.as_deref()),
        Some("Bob Builder")
    );
    rig.event(Event::Sip(SipEvent::Line { line: 2 }));
    assert_eq!(rig.app.selected, 2);
    assert!(rig.char('c').is_empty(), "line 2 not answered yet");
    rig.call_state(2, "c2", "sip:202@pbx", CallState::Connected);
    assert_eq!(rig.char('c'), send(Command::Sip(SipCommand::Complete)));
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Complete))
    );
    assert_eq!(
        rig.key(KeyCode::Esc),
        send(Command::Sip(SipCommand::Cancel))
    );
    assert_eq!(rig.char('k'), send(Command::Sip(SipCommand::Conference)));
    // No free line: no dial, no consult, no pickup.
    assert!(rig.char('d').is_empty() && rig.char('T').is_empty() && rig.char('p').is_empty());
    assert_eq!(rig.app.mode, Mode::Normal);
}

#[test]
fn second_call_while_busy_waits_on_the_free_line() {
    let mut rig = Rig::new();
    rig.connected();
    rig.incoming(2, "c2", "sip:202@pbx");
    assert_eq!((rig.word(1), rig.word(2)), ("connected", "incoming"));
    // Selected line 1 is not ringing: answer goes to line 2.
    assert_eq!(
        rig.char('a'),
        send(Command::Sip(SipCommand::Answer(Some(2))))
    );
    // The caller gives up.
    rig.ended(2, "c2", "sip:202@pbx", "the caller hung up");
    assert!(rig.app.call(2).is_none());
    let outcome = rig.app.outcome.clone().expect("told");
    assert_eq!(outcome.text, "Missed call from Bob Builder (202) on Line 2");
}

#[test]
fn the_far_end_hanging_up_is_told() {
    let mut rig = Rig::new();
    rig.connected();
    rig.ended(1, "c1", "sip:201@pbx", "the caller hung up");
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some("Line 1: the caller hung up — Anna Virtanen (201)")
    );
    // Our own hangup is no failure.
    rig.connected();
    rig.char('h');
    rig.ended(1, "c1", "sip:201@pbx", "the far end hung up");
    let outcome = rig.app.outcome.clone().expect("told");
    assert_eq!(outcome.text, "Line 1: call with Anna Virtanen (201) ended");
    assert!(!outcome.failure);
    // A busy callee is.
    rig.call_state(1, "c3", "sip:555@pbx", CallState::Dialing);
    rig.ended(1, "c3", "sip:555@pbx", "the far end is busy");
    let outcome = rig.app.outcome.clone().expect("told");
    assert_eq!(outcome.text, "Line 1: the far end is busy — 555");
    assert!(outcome.failure);
}

#[test]
fn the_timer_counts_from_the_answer() {
    let mut rig = Rig::new();
    let start = rig.now;
    rig.incoming(1, "c1", "sip:201@pbx");
    rig.later(5);
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Connected);
    let call = rig.app.call(1).expect("up");
    assert_eq!(call.started, start);
    assert_eq!(call.connected_at, Some(start + Duration::from_secs(5)));
    rig.later(5);
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Held);
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Connected);
    assert_eq!(
        rig.app.call(1).and_then(|c| c.connected_at),
        Some(start + Duration::from_secs(5)),
        "a resume does not restart the timer"
    );
}

#[test]
fn media_quality_and_mute_reach_the_line() {
    let mut rig = Rig::new();
    rig.connected();
    rig.event(Event::Quality {
        line: 1,
        call_id: "c1".into(),
        codec: "opus".into(),
        loss_pct: 1.5,
        jitter_ms: 4.0,
        rtt_ms: None,
        buffer_ms: 40,
    });
    rig.event(Event::Sip(SipEvent::Mute {
        line: 1,
        call_id: "c1".into(),
        muted: true,
    }));
    // An event for another call on the line is ignored.
    rig.event(Event::Sip(SipEvent::Mute {
        line: 1,
        call_id: "other".into(),
        muted: false,
    }));
    let call = rig.app.call(1).expect("up");
    assert_eq!(call.codec.as_deref(), Some("opus"));
    assert_eq!(call.quality, Some((1.5, 4.0)));
    assert!(call.muted);
}

#[test]
fn blind_transfer_from_the_picker_then_failure_brings_the_call_back() {
    let mut rig = Rig::new();
    rig.connected();
    rig.char('t');
    let Mode::Picker(picker) = &rig.app.mode else {
        panic!("t opens the picker: {:?}", rig.app.mode);
    };
    assert_eq!(picker.purpose, Purpose::Transfer);
    assert_eq!(picker.rows.len(), 3, "an empty query lists rows");
    rig.typed("bob");
    let Mode::Picker(picker) = &rig.app.mode else {
        panic!("still open");
    };
    assert_eq!(picker.rows.len(), 1);
    assert_eq!(picker.rows[0].name_hits, [0, 1, 2]);
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Transfer("202".into())))
    );
    assert_eq!(rig.app.mode, Mode::Normal);
    assert_eq!(rig.finder.picked_numbers(), ["202"]);

    rig.transfer(1, "c1", TransferStatus::Requested, None);
    assert_eq!(rig.word(1), "transferring");
    assert!(
        rig.char('t').is_empty(),
        "no second transfer while one runs"
    );
    rig.transfer(1, "c1", TransferStatus::Ringing, None);
    let t = rig
        .app
        .call(1)
        .and_then(|c| c.transfer.clone())
        .expect("shown");
    assert_eq!(
        (t.target.as_str(), t.target_name.as_deref()),
        ("202", Some("Bob Builder"))
    );
    rig.transfer(1, "c1", TransferStatus::Failed, Some("the target is busy"));
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some("Transfer failed: the target is busy")
    );
    rig.transfer(
        1,
        "c1",
        TransferStatus::Recalled,
        Some("reconnecting: the call is back on line 1"),
    );
    let outcome = rig.app.outcome.clone().expect("told");
    assert_eq!(
        outcome.text,
        "Transfer failed: the target is busy — the call is back on Line 1"
    );
    assert!(outcome.failure);
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Connected);
    assert_eq!(rig.word(1), "connected");
}

#[test]
fn a_successful_transfer_ends_quietly_with_one_message() {
    let mut rig = Rig::new();
    rig.connected();
    rig.transfer(1, "c1", TransferStatus::Accepted, None);
    rig.transfer(
        1,
        "c1",
        TransferStatus::Succeeded,
        Some("transferred to sip:202@pbx"),
    );
    rig.ended(1, "c1", "sip:201@pbx", "transferred to sip:202@pbx");
    assert!(rig.app.call(1).is_none());
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some("Line 1: Anna Virtanen (201) transferred to Bob Builder (202)")
    );
}

#[test]
fn being_transferred_is_shown() {
    let mut rig = Rig::new();
    rig.connected();
    rig.event(Event::Sip(SipEvent::Transfer {
        line: 1,
        call_id: "c1".into(),
        kind: TransferKind::Incoming,
        mechanism: None,
        status: TransferStatus::Requested,
        target: "sip:202@pbx".into(),
        status_code: None,
        reason: Some("the far end transfers this call to sip:202@pbx".into()),
    }));
    assert_eq!(rig.word(1), "being transferred");
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some("Line 1: Anna Virtanen (201) is transferring this call to Bob Builder (202)")
    );
}

#[test]
fn a_transfer_that_asks_is_accepted_with_enter_or_refused_with_esc() {
    let asking = || {
        Event::Sip(SipEvent::Transfer {
            line: 1,
            call_id: "c1".into(),
            kind: TransferKind::Incoming,
            mechanism: None,
            status: TransferStatus::Asking,
            target: "sip:202@pbx".into(),
            status_code: None,
            reason: Some("the far end asks to transfer you to sip:202@pbx".into()),
        })
    };
    let mut rig = Rig::new();
    rig.connected();
    rig.event(asking());
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some(
            "Line 1: Anna Virtanen (201) asks to transfer you to Bob Builder (202) — Enter to \
             go, Esc to stay"
        )
    );
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Answer(Some(1))))
    );

    let mut rig = Rig::new();
    rig.connected();
    assert_eq!(rig.key(KeyCode::Esc), Vec::new(), "nothing to cancel yet");
    rig.event(asking());
    assert_eq!(
        rig.key(KeyCode::Esc),
        send(Command::Sip(SipCommand::Decline(Some(1))))
    );
}

#[test]
fn picker_purposes_send_their_commands_and_typed_text_is_used_as_is() {
    let mut rig = Rig::new();
    rig.char('d');
    rig.typed("sip:zed@example.org");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("sip:zed@example.org".into())))
    );
    rig.char('p');
    rig.typed("2");
    rig.key(KeyCode::Down);
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Pickup("202".into())))
    );
    rig.char('/');
    rig.typed("carol");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("+358401234567".into())))
    );
    // Esc closes without sending; an empty query with no rows does nothing.
    rig.char('d');
    rig.typed("zzz");
    rig.key(KeyCode::Backspace);
    assert_eq!(rig.key(KeyCode::Esc), []);
    assert_eq!(rig.app.mode, Mode::Normal);
    rig.connected();
    rig.char('T');
    assert!(matches!(&rig.app.mode, Mode::Picker(p) if p.purpose == Purpose::Consult));
    rig.typed("201");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Consult("201".into())))
    );
}

#[test]
fn paste_is_cleaned_into_the_picker() {
    let mut rig = Rig::new();
    rig.feed(Input::Paste("+358 (40) 123-4567\n".into()));
    let Mode::Picker(picker) = &rig.app.mode else {
        panic!("a paste opens the dial picker");
    };
    assert_eq!(picker.query, "+358401234567");
    assert_eq!(picker.rows.len(), 1);
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("+358401234567".into())))
    );
}

#[test]
fn paste_cleaning() {
    assert_eq!(clean_paste("040 123 45 67"), "0401234567");
    assert_eq!(clean_paste("(09) 555-0100"), "095550100");
    assert_eq!(clean_paste("+44 20 7946.0958"), "+442079460958");
    assert_eq!(
        clean_paste(" sip:Bob@pbx.example.com;transport=tcp \n"),
        "sip:Bob@pbx.example.com;transport=tcp"
    );
    assert_eq!(clean_paste("bob @ example.com"), "sip:bob@example.com");
    assert_eq!(clean_paste("Anna\nVirtanen"), "Anna Virtanen");
    assert_eq!(clean_paste("*72#"), "*72#");
    assert_eq!(clean_paste("+44 (0)20 7946 0958"), "+442079460958");
    assert_eq!(clean_paste("\"Carol\" <sip:carol@pbx>\n"), "sip:carol@pbx");
    assert_eq!(clean_paste(" <tel:+1-555-0100> "), "tel:+15550100");
}

#[test]
fn picker_enter_parses_the_typed_target_and_says_what_cannot_be_called() {
    let mut rig = Rig::new();
    rig.char('d');
    rig.typed("<zzz@h");
    assert_eq!(rig.key(KeyCode::Enter), []);
    assert!(matches!(&rig.app.mode, Mode::Picker(p) if p.query == "<zzz@h"));
    let outcome = rig.app.outcome.clone().expect("an outcome");
    assert!(
        outcome.failure && outcome.text.contains("'<zzz@h'"),
        "{outcome:?}"
    );
    rig.key(KeyCode::Esc);
    rig.char('d');
    rig.typed("tel:+1-555-0100");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("tel:+15550100".into())))
    );
}

#[test]
fn numbers_come_from_uris() {
    assert_eq!(number_of("sip:200@pbx.example.com;user=phone"), "200");
    assert_eq!(number_of("<sips:+358401234567@sbc>"), "+358401234567");
    assert_eq!(number_of("sip:pbx.example.com"), "pbx.example.com");
    assert_eq!(number_of("tel:+44123"), "+44123");
}

#[test]
fn command_line_takes_every_headless_word() {
    let mut rig = Rig::new();
    rig.char(':');
    rig.typed("dial 200");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("200".into())))
    );
    rig.char(':');
    rig.typed("route local");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Route("local".into()))
    );
    assert_eq!(rig.app.route.as_deref(), Some("local"));
    rig.char(':');
    rig.typed("hold 3 4");
    assert!(rig.key(KeyCode::Enter).is_empty());
    let outcome = rig.app.outcome.clone().expect("told");
    assert!(outcome.failure);
    assert_eq!(
        outcome.text,
        "Hold: expected at most a line number, got `3 4`"
    );
    // Esc closes; the command line survives arrow keys.
    rig.char(':');
    rig.key(KeyCode::Left);
    assert_eq!(rig.app.mode, Mode::CommandLine(String::new()));
    rig.key(KeyCode::Esc);
    assert_eq!(rig.app.mode, Mode::Normal);
}

#[test]
fn quit_asks_while_a_call_is_up() {
    let mut rig = Rig::new();
    rig.connected();
    assert!(rig.char('q').is_empty());
    assert_eq!(rig.app.mode, Mode::ConfirmQuit);
    assert!(rig.char('n').is_empty());
    assert_eq!(rig.app.mode, Mode::Normal);
    assert!(!rig.app.quitting);
    rig.char('q');
    assert_eq!(rig.char('y'), send(Command::Sip(SipCommand::Quit)));
    assert!(rig.app.quitting);
    assert!(rig.char('q').is_empty(), "quit is sent once");

    let mut idle = Rig::new();
    assert_eq!(
        idle.char('q'),
        send(Command::Sip(SipCommand::Quit)),
        "no call: no question"
    );
    let mut ctrl_c = Rig::new();
    let effects = ctrl_c.feed(Input::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(effects, send(Command::Sip(SipCommand::Quit)));
}

#[test]
fn rebound_keys_work_and_old_ones_do_not() {
    let keys = Keys {
        hangup: Some("x ctrl-h".into()),
        hold: Some("f2".into()),
        ..Keys::default()
    };
    let mut rig = Rig::with_keys(&keys);
    rig.connected();
    assert!(rig.char('h').is_empty());
    assert!(rig.key(KeyCode::Char(' ')).is_empty());
    assert_eq!(
        rig.key(KeyCode::F(2)),
        send(Command::Sip(SipCommand::Hold(Some(1))))
    );
    assert_eq!(
        rig.char('x'),
        send(Command::Sip(SipCommand::Hangup(Some(1))))
    );
    let effects = rig.feed(Input::Key(KeyEvent::new(
        KeyCode::Char('h'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(effects, send(Command::Sip(SipCommand::Hangup(Some(1)))));
}

#[test]
fn errors_and_audio_messages_become_the_outcome() {
    let mut rig = Rig::new();
    rig.event(Event::Sip(SipEvent::Error {
        message: "both lines are busy: hang up or transfer a call first".into(),
    }));
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some("Both lines are busy: hang up or transfer a call first")
    );
    rig.event(Event::Sip(SipEvent::Stopped));
    assert!(rig.app.stopped);
}

#[test]
fn footer_actions_follow_the_state() {
    use super::Action;
    let mut rig = Rig::new();
    let idle = rig.app.available();
    assert!(idle.contains(&Action::Dial) && !idle.contains(&Action::Hangup));
    rig.incoming(1, "c1", "sip:201@pbx");
    let ringing = rig.app.available();
    assert!(ringing.contains(&Action::Answer) && ringing.contains(&Action::Hangup));
    assert!(!ringing.contains(&Action::Hold));
    rig.call_state(1, "c1", "sip:201@pbx", CallState::Connected);
    let talking = rig.app.available();
    assert!(talking.contains(&Action::Transfer) && talking.contains(&Action::Consult));
    assert!(!talking.contains(&Action::Answer) && !talking.contains(&Action::Complete));
}

fn sip(direction: TraceDirection, first: &str) -> Event {
    Event::SipMessage {
        direction,
        peer: "127.0.0.1:5060".into(),
        message: format!("{first}\r\nCSeq: 1 X\r\n\r\n"),
        raw: false,
    }
}

#[test]
fn the_trace_pane_shows_messages_only_while_open_and_hands_keys_back() {
    let mut rig = Rig::new();
    rig.event(sip(TraceDirection::Out, "REGISTER sip:pbx SIP/2.0"));
    assert!(rig.app.trace.entries.is_empty(), "closed: nothing kept");
    assert_eq!(rig.char('s'), send(Command::Trace(TraceMode::On)));
    assert!(matches!(rig.app.mode, Mode::Trace));
    rig.event(sip(TraceDirection::Out, "INVITE sip:201@pbx SIP/2.0"));
    rig.event(sip(TraceDirection::In, "SIP/2.0 180 Ringing"));
    assert_eq!(rig.app.trace.entries.len(), 2);
    rig.key(KeyCode::Up);
    assert_eq!(rig.app.trace.current(), Some(0));
    assert_eq!(
        rig.key(KeyCode::Enter),
        Vec::new(),
        "Enter opens, not answers"
    );
    assert!(rig.app.trace.detail);
    rig.key(KeyCode::Esc);
    assert!(!rig.app.trace.detail && matches!(rig.app.mode, Mode::Trace));
    // Other keys still work while the pane has the focus.
    assert!(matches!(rig.char('d').as_slice(), []));
    assert!(matches!(rig.app.mode, Mode::Picker(_)));
    rig.key(KeyCode::Esc);
    rig.key(KeyCode::Esc);
    assert!(
        matches!(rig.app.mode, Mode::Normal),
        "Esc gives the keys back"
    );
    assert!(rig.app.trace.visible, "the pane stays");
    assert_eq!(rig.char('s'), Vec::new(), "s focuses the open pane");
    assert_eq!(rig.char('s'), send(Command::Trace(TraceMode::Off)));
    assert!(!rig.app.trace.visible && matches!(rig.app.mode, Mode::Normal));
}

#[test]
fn raw_tracing_is_asked_for_on_the_command_line_and_said_on_screen() {
    let mut rig = Rig::new();
    rig.char(':');
    for c in "trace on raw".chars() {
        rig.char(c);
    }
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Trace(TraceMode::Raw))
    );
    assert!(rig.app.trace.visible);
    rig.event(Event::Trace {
        mode: TraceMode::Raw,
        shows: TraceMode::Raw.shows().to_owned(),
    });
    assert!(rig.app.trace.raw, "the pane's title says RAW");
    let told = rig.app.outcome.as_ref().expect("a notice");
    assert!(told.text.contains("UNREDACTED"), "{}", told.text);
    rig.event(Event::Trace {
        mode: TraceMode::On,
        shows: TraceMode::On.shows().to_owned(),
    });
    assert!(!rig.app.trace.raw);
}

#[test]
fn the_history_view_is_read_on_demand_and_enter_calls_back() {
    use crate::history::{Direction as CallDirection, Outcome as CallOutcome, Record};
    let mut rig = Rig::new();
    assert_eq!(rig.char('H'), vec![Effect::LoadHistory]);
    let start = std::time::SystemTime::UNIX_EPOCH;
    let record = Record {
        started: start,
        direction: CallDirection::In,
        number: "201".into(),
        uri: "sip:201@pbx".into(),
        name: None,
        line: 1,
        call_id: "c1".into(),
        duration_s: 5,
        outcome: CallOutcome::Missed,
        reason: None,
        wrapup: None,
    };
    let list = HistoryList::new(&[record], start, |n| rig.finder.name_for(n));
    rig.feed(Input::History(Ok(list)));
    let Mode::History(view) = &rig.app.mode else {
        panic!("the history view is open");
    };
    assert_eq!(view.rows[0].who, "Anna Virtanen (201)");
    assert_eq!(
        rig.key(KeyCode::Enter),
        send(Command::Sip(SipCommand::Dial("201".into())))
    );
    assert!(matches!(rig.app.mode, Mode::Normal));

    rig.feed(Input::History(Err("no call history file".into())));
    assert!(matches!(&rig.app.mode, Mode::History(v) if v.problem.is_some()));
    assert_eq!(rig.key(KeyCode::Enter), Vec::new(), "nothing to call");
    rig.key(KeyCode::Esc);
    assert!(matches!(rig.app.mode, Mode::Normal));
}

#[test]
fn the_caller_is_added_to_the_personal_book_under_the_name_typed() {
    let mut rig = Rig::new();
    assert_eq!(rig.char('b'), Vec::new(), "no call, no contact to add");
    assert!(matches!(rig.app.mode, Mode::Normal));
    rig.incoming(1, "c1", "sip:+3581234@pbx");
    rig.call_state(1, "c1", "sip:+3581234@pbx", CallState::Connected);
    rig.char('b');
    assert!(
        matches!(
            &rig.app.mode,
            Mode::AddContact { number, name } if number == "+3581234" && name == "Display"
        ),
        "the caller's display name is offered"
    );
    for _ in 0.."Display".len() {
        rig.key(KeyCode::Backspace);
    }
    rig.typed("Dana Scully");
    assert_eq!(
        rig.key(KeyCode::Enter),
        vec![Effect::AddContact {
            name: "Dana Scully".into(),
            number: "+3581234".into()
        }]
    );
    rig.feed(Input::ContactAdded(Ok(
        "Dana Scully (+3581234) is in your personal book now".into(),
    )));
    assert_eq!(
        rig.app
            .outcome
            .as_ref()
            .map(|o| (o.text.as_str(), o.failure)),
        Some(("Dana Scully (+3581234) is in your personal book now", false))
    );
}

#[test]
fn the_picker_watches_the_extensions_in_view_and_shows_their_lamps() {
    let mut rig = Rig::new();
    rig.app = App::new(Keymap::default(), true, vec!["202".into()]);
    assert_eq!(
        rig.app.blf,
        vec![("202".to_string(), BlfState::Unknown)],
        "configured lamps show from the start"
    );
    rig.finder = ListFinder::new(vec![
        row("Anna Virtanen", "201", "corporate", true),
        row("Bob Builder", "202", "extension", true),
        row("Carol Smith", "+358401234567", "personal", false),
        row("Reception", "sip:desk@pbx", "extension", true),
        row("Dan Dare", "203", "extension", true),
    ]);
    rig.char('d'); // opens the dial picker with every row
    assert_eq!(
        rig.watched,
        vec![vec!["201".to_string(), "203".to_string()]],
        "internal, digits only, not configured"
    );
    rig.event(Event::Sip(SipEvent::Blf {
        ext: "201".into(),
        state: BlfState::Busy,
    }));
    rig.event(Event::Sip(SipEvent::Blf {
        ext: "202".into(),
        state: BlfState::Ringing,
    }));
    assert_eq!(rig.app.lamp("201"), Some(BlfState::Busy));
    assert_eq!(rig.app.lamp("202"), Some(BlfState::Ringing));
    assert_eq!(rig.app.lamp("203"), None);
    assert_eq!(rig.app.blf, vec![("202".to_string(), BlfState::Ringing)]);
    assert_eq!(rig.watched.len(), 1, "events do not change the view");

    rig.typed("dan");
    assert_eq!(rig.watched.len(), 2);
    assert_eq!(rig.watched.last(), Some(&vec!["203".to_string()]));
    let count = rig.watched.len();
    rig.key(KeyCode::Down);
    assert_eq!(rig.watched.len(), count, "same rows, nothing sent");
    rig.key(KeyCode::Esc);
    assert_eq!(
        rig.watched.last(),
        Some(&Vec::new()),
        "closing empties the view"
    );
    rig.key(KeyCode::Esc);
    assert_eq!(rig.watched.len(), count + 1);

    // A lamp from the view that is no longer watched is forgotten; configured ones stay.
    rig.event(Event::Sip(SipEvent::Blf {
        ext: "201".into(),
        state: BlfState::Unknown,
    }));
    assert_eq!(rig.app.lamp("201"), None);
    rig.event(Event::Sip(SipEvent::Blf {
        ext: "202".into(),
        state: BlfState::Unknown,
    }));
    assert_eq!(rig.app.lamp("202"), Some(BlfState::Unknown));
}

#[test]
fn a_ring_first_transfer_says_the_target_rings_first_and_a_dropped_caller_in_one_line() {
    let mut rig = Rig::new();
    rig.connected();
    let ring_first = |status, reason: &str| {
        Event::Sip(SipEvent::Transfer {
            line: 1,
            call_id: "c1".into(),
            kind: TransferKind::Blind,
            mechanism: Some(crate::sip::TransferMechanism::RingFirst),
            status,
            target: "sip:202@pbx".into(),
            status_code: None,
            reason: Some(reason.into()),
        })
    };
    rig.event(ring_first(
        TransferStatus::Requested,
        "ringing sip:202@pbx on line 2 first; the caller hears music on hold",
    ));
    assert_eq!(rig.word(1), "transferring");
    let words = |rig: &Rig| {
        let t = rig
            .app
            .call(1)
            .and_then(|c| c.transfer.clone())
            .expect("shown");
        crate::tui::widgets::line_pane::transfer_words(&t)
    };
    assert_eq!(
        words(&rig),
        "Transfer to Bob Builder (202): ringing the target first on the other line, the caller \
         is on hold"
    );
    assert_eq!(
        rig.key(KeyCode::Esc),
        send(Command::Sip(SipCommand::Cancel)),
        "Esc takes the caller back while the target rings"
    );
    rig.event(ring_first(TransferStatus::Trying, "the target answered"));
    assert_eq!(
        words(&rig),
        "Transfer to Bob Builder (202): target answered: joining them"
    );

    // The notify mechanism behind a PBX that dropped the caller: one plain outcome.
    rig.transfer(
        1,
        "c1",
        TransferStatus::Failed,
        Some("the PBX could not reach 202 (busy) and ended the caller's call"),
    );
    rig.ended(1, "c1", "sip:201@pbx", "the far end hung up");
    assert_eq!(
        rig.app.outcome.as_ref().map(|o| o.text.as_str()),
        Some(
            "Transfer failed: the PBX could not reach 202 (busy) and ended the caller's call — \
             Anna Virtanen (201)"
        )
    );
}

/// `update` searches nothing itself: opening the picker and typing ask the run loop for a
/// search (the first one rereading changed files), the rows come back as `Found` and only
/// count while the picker still shows their query; a pick is an effect too.
#[test]
fn search_reload_and_pick_are_effects_of_the_run_loop() {
    let mut app = App::new(Keymap::default(), false, Vec::new());
    let finder = ListFinder::new(vec![row("Bob Builder", "202", "extension", true)]);
    let now = epoch();
    let key = |c| Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    let search = |query: &str, fresh| Effect::Search {
        query: query.into(),
        limit: 16,
        fresh,
    };
    assert_eq!(app.update(key('d'), now, &finder), [search("", true)]);
    assert_eq!(app.update(key('b'), now, &finder), [search("b", false)]);
    let picker_rows = |app: &App| match &app.mode {
        Mode::Picker(p) => p.rows.clone(),
        other => panic!("the picker is open: {other:?}"),
    };
    assert!(
        picker_rows(&app).is_empty(),
        "no rows until the search is done"
    );
    let stale = Input::Found {
        query: String::new(),
        rows: vec![row("Stale", "1", "corporate", false)],
    };
    assert!(app.update(stale, now, &finder).is_empty());
    assert!(
        picker_rows(&app).is_empty(),
        "rows of an older query are dropped"
    );
    let found = Input::Found {
        query: "b".into(),
        rows: vec![row("Bob Builder", "202", "extension", true)],
    };
    assert_eq!(
        app.update(found, now, &finder),
        [Effect::Send(Command::Sip(SipCommand::Watch(vec![
            "202".into()
        ])))],
        "the extension in view gets a lamp"
    );
    assert_eq!(picker_rows(&app).len(), 1);
    let enter = Input::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(
        app.update(enter, now, &finder),
        [
            Effect::Picked("202".into()),
            Effect::Send(Command::Sip(SipCommand::Dial("202".into()))),
            Effect::Send(Command::Sip(SipCommand::Watch(Vec::new()))),
        ]
    );
}

/// The sound check: `v` lists the devices and starts the meter; the keys choose a device for
/// a role it can play, play the tone and switch the echo; Esc stops the meter and the echo.
#[test]
fn the_sound_check_chooses_devices_and_switches_meter_tone_and_echo() {
    use crate::sound::{AudioDevice, DeviceRole, SoundCommand};
    let sound = |c| Effect::Send(Command::Sound(c));
    let mut rig = Rig::new();
    assert_eq!(
        rig.char('v'),
        [Effect::ListDevices, sound(SoundCommand::Level(true))]
    );
    let device = |name: &str, input, output| AudioDevice {
        name: name.into(),
        input,
        output,
    };
    rig.feed(Input::DevicesListed(Ok(vec![
        device("Desk Speaker", false, true),
        device("USB Headset", true, true),
    ])));
    assert!(
        rig.char('m').is_empty(),
        "a speaker cannot be the microphone"
    );
    assert_eq!(
        rig.char('r'),
        [sound(SoundCommand::UseDevice(
            DeviceRole::Ring,
            "Desk Speaker".into()
        ))]
    );
    rig.key(KeyCode::Down);
    assert_eq!(
        rig.char('h'),
        [sound(SoundCommand::UseDevice(
            DeviceRole::Output,
            "USB Headset".into()
        ))]
    );
    rig.event(Event::Level { dbfs: -20.0 });
    assert_eq!(rig.app.level, Some(-20.0));
    assert_eq!(rig.char('t'), [sound(SoundCommand::Tone)]);
    assert_eq!(rig.char('e'), [sound(SoundCommand::Echo(true))]);
    assert_eq!(
        rig.key(KeyCode::Esc),
        [
            sound(SoundCommand::Level(false)),
            sound(SoundCommand::Echo(false))
        ]
    );
    assert_eq!(rig.app.mode, Mode::Normal);
    assert_eq!(rig.app.level, None);
}

/// A rig with favourites Anna (F1), Bob (`alt-1`) and Park 701 (F3), and a park extension.
fn with_favourites() -> Rig {
    let mut rig = Rig::new();
    let favourites: Vec<crate::config::Favourite> = [
        ("Anna", "201", None),
        ("Bob", "202", Some("alt-1")),
        ("Park 701", "701", None),
    ]
    .into_iter()
    .map(|(label, number, key)| crate::config::Favourite {
        label: label.into(),
        number: number.into(),
        key: key.map(Into::into),
    })
    .collect();
    rig.app = rig.app.clone().with_favourites(
        super::favourites::Favourites::from_config(&favourites),
        true,
    );
    rig
}

#[test]
fn a_favourites_key_sends_its_favourite_and_wins_over_help() {
    let mut rig = with_favourites();
    assert_eq!(
        rig.key(KeyCode::F(1)),
        [Effect::Send(Command::Sip(SipCommand::Favourite(
            "201".into()
        )))]
    );
    assert_eq!(rig.app.mode, Mode::Normal, "F1 is Anna's, not help");
    let alt_1 = rig.feed(Input::Key(KeyEvent::new(
        KeyCode::Char('1'),
        KeyModifiers::ALT,
    )));
    assert_eq!(
        alt_1,
        [Effect::Send(Command::Sip(SipCommand::Favourite(
            "202".into()
        )))]
    );
    assert_eq!(
        rig.key(KeyCode::F(3)),
        [Effect::Send(Command::Sip(SipCommand::Favourite(
            "701".into()
        )))]
    );
    // Only the first twelve by position get a key; Bob has his own, so F2 is nobody's.
    assert_eq!(rig.key(KeyCode::F(2)), []);
    // Without favourites F1 is help again.
    let mut plain = Rig::new();
    plain.key(KeyCode::F(1));
    assert_eq!(plain.app.mode, Mode::Help);
}

#[test]
fn f_toggles_the_panel_and_park_needs_an_answered_call() {
    let mut rig = with_favourites();
    assert!(rig.app.favourites.shown);
    rig.char('f');
    assert!(!rig.app.favourites.shown);
    rig.char('f');
    assert!(rig.app.favourites.shown);
    assert_eq!(rig.char('P'), [], "no call: nothing to park");
    rig.connected();
    assert_eq!(
        rig.char('P'),
        [Effect::Send(Command::Sip(SipCommand::Park(Some(1))))]
    );
    let mut no_park = Rig::new();
    no_park.connected();
    assert_eq!(no_park.char('P'), [], "no park extension configured");
}

#[test]
fn the_picker_lists_favourites_first_with_a_star() {
    let mut rig = with_favourites();
    rig.char('d');
    rig.typed("b");
    let Mode::Picker(picker) = &rig.app.mode else {
        panic!("picker open: {:?}", rig.app.mode);
    };
    let rows: Vec<(&str, &str)> = picker
        .rows
        .iter()
        .map(|r| (r.name.as_str(), r.number.as_str()))
        .collect();
    // Bob is a directory row too: one row, marked; Anna matches "b" nowhere.
    assert_eq!(rows[0], ("★ Bob Builder", "202"), "{rows:?}");
    assert!(!rows.iter().any(|(n, _)| *n == "★ Bob"), "{rows:?}");
    rig.key(KeyCode::Esc);
    rig.char('d');
    rig.typed("park");
    let Mode::Picker(picker) = &rig.app.mode else {
        panic!("picker open");
    };
    assert_eq!(picker.rows[0].name, "★ Park 701");
    assert_eq!(picker.rows[0].source, "favourite");
    assert_eq!(picker.rows[0].name_hits, [2, 3, 4, 5]);
}

#[test]
fn parked_and_returned_calls_are_told() {
    let mut rig = with_favourites();
    rig.connected();
    rig.event(Event::Sip(SipEvent::Parked {
        line: 1,
        call_id: "c1".into(),
        peer: "sip:201@pbx".into(),
        slot: Some("701".into()),
    }));
    let outcome = rig.app.outcome.clone().expect("told");
    assert_eq!(
        outcome.text,
        "Parked Anna Virtanen in slot 701 (unpark 701)"
    );
    rig.incoming(2, "back", "sip:201@pbx");
    rig.event(Event::Sip(SipEvent::ParkReturned {
        line: 2,
        call_id: "back".into(),
        from: "sip:201@pbx".into(),
        slot: Some("701".into()),
    }));
    assert_eq!(
        rig.app
            .call(2)
            .and_then(|c| c.park_return.clone())
            .as_deref(),
        Some("parked call returned from slot 701")
    );
}

#[test]
fn a_favourites_label_names_a_number_the_directory_does_not_know() {
    let mut rig = with_favourites();
    rig.incoming(1, "c9", "sip:701@pbx");
    assert_eq!(
        rig.app.call(1).and_then(|c| c.name.clone()).as_deref(),
        Some("Park 701")
    );
    rig.incoming(2, "c8", "sip:202@pbx");
    assert_eq!(
        rig.app.call(2).and_then(|c| c.name.clone()).as_deref(),
        Some("Bob Builder"),
        "the directory's name first"
    );
}

fn wrapup_started(call_id: &str, required: bool) -> Event {
    Event::Sip(SipEvent::Wrapup {
        line: 1,
        call_id: call_id.into(),
        peer: "sip:201@pbx".into(),
        status: WrapupStatus::Started,
        codes: vec!["sale".into(), "callback".into()],
        seconds: Some(30),
        required,
        code: None,
        note: None,
    })
}

#[test]
fn d_switches_do_not_disturb_and_the_event_sets_the_status() {
    let mut rig = Rig::new();
    assert_eq!(
        rig.char('D'),
        vec![Effect::Send(Command::Sip(SipCommand::Dnd(None)))]
    );
    assert!(!rig.app.dnd, "the screen waits for the core's word");
    rig.event(Event::Sip(SipEvent::Dnd {
        on: true,
        code: None,
    }));
    assert!(rig.app.dnd);
}

#[test]
fn the_wrap_up_modal_takes_the_keys_and_saves_a_code_and_note() {
    let mut rig = Rig::new();
    rig.event(wrapup_started("c1", false));
    assert!(
        rig.char('a').is_empty(),
        "typing goes to the note, not to answer"
    );
    rig.key(KeyCode::Backspace);
    rig.key(KeyCode::Down);
    rig.key(KeyCode::Down);
    rig.typed("ring at 5");
    assert_eq!(
        rig.key(KeyCode::Enter),
        vec![Effect::Send(Command::Sip(SipCommand::Wrapup(
            WrapupChoice::Save {
                code: Some("callback".into()),
                note: "ring at 5".into(),
            }
        )))]
    );
    rig.event(Event::Sip(SipEvent::Wrapup {
        line: 1,
        call_id: "c1".into(),
        peer: "sip:201@pbx".into(),
        status: WrapupStatus::Saved,
        codes: Vec::new(),
        seconds: None,
        required: false,
        code: Some("callback".into()),
        note: Some("ring at 5".into()),
    }));
    assert!(rig.app.wrapups.is_empty());
    assert_eq!(
        rig.char('D'),
        vec![Effect::Send(Command::Sip(SipCommand::Dnd(None)))],
        "keys are back"
    );
}

#[test]
fn a_required_wrap_up_cannot_be_skipped_and_esc_skips_otherwise() {
    let mut rig = Rig::new();
    rig.event(wrapup_started("c1", true));
    assert!(rig.key(KeyCode::Esc).is_empty());
    assert!(rig.app.outcome.as_ref().is_some_and(|o| o.failure));
    assert_eq!(
        rig.key(KeyCode::Enter),
        vec![Effect::Send(Command::Sip(SipCommand::Wrapup(
            WrapupChoice::Save {
                code: Some("sale".into()),
                note: String::new(),
            }
        )))],
        "a required wrap-up starts on the first code"
    );
    let mut rig = Rig::new();
    rig.event(wrapup_started("c2", false));
    assert_eq!(
        rig.key(KeyCode::Esc),
        vec![Effect::Send(Command::Sip(SipCommand::Wrapup(
            WrapupChoice::Skip
        )))]
    );
}
