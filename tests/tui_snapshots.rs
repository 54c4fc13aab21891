//! Snapshots of the operator's screen drawn on ratatui's `TestBackend`, with the state built
//! from the events the driver sends. Review changes with `cargo insta review` (or accept by
//! renaming the `.snap.new` files) after checking them by eye.

use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;
use ratatui::Terminal;

use switchboard::front::{Event, TraceDirection};
use switchboard::history::{Direction as CallDirection, Outcome as CallOutcome, Record};
use switchboard::sip::{
    BlfState, CallState, Event as SipEvent, TransferKind, TransferMechanism, TransferStatus,
    WrapupStatus,
};
use switchboard::sound::AudioDevice;
use switchboard::tui::history_view::HistoryList;
use switchboard::tui::view::view;
use switchboard::tui::{App, Effect, Finder, Input, Keymap, ListFinder, PickerRow};

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn row(name: &str, number: &str, detail: &str, source: &'static str, internal: bool) -> PickerRow {
    PickerRow {
        name: name.into(),
        number: number.into(),
        detail: detail.into(),
        source,
        internal,
        name_hits: vec![],
        number_hits: vec![],
        detail_hits: vec![],
    }
}

struct Screen {
    app: App,
    finder: ListFinder,
    start: Instant,
    now: Instant,
}

impl Screen {
    fn new(width: u16, height: u16) -> Self {
        Screen::with_lines(width, height, 2)
    }

    /// A screen for a phone with `lines` lines (`[ui] lines`).
    fn with_lines(width: u16, height: u16, lines: u8) -> Self {
        Screen::build(width, height, lines, &[])
    }

    /// A two-line screen for an account with these busy lamps (`[[account]] blf`).
    fn with_blf(width: u16, height: u16, blf: &[&str]) -> Self {
        Screen::build(width, height, 2, blf)
    }

    fn build(width: u16, height: u16, lines: u8, blf: &[&str]) -> Self {
        let start = epoch();
        let blf = blf.iter().map(|e| e.to_string()).collect();
        let mut screen = Screen {
            app: App::new(Keymap::default(), true, blf),
            finder: ListFinder::new(vec![
                row(
                    "Anna Virtanen",
                    "201",
                    "Sales · Helsinki",
                    "corporate",
                    true,
                ),
                row("Bob Builder", "202", "Support", "extension", true),
                row("Annika Berg", "+46701234567", "Acme AB", "personal", false),
                row(
                    "Hannu Lehto",
                    "0401234567",
                    "missed yesterday",
                    "history",
                    false,
                ),
            ]),
            start,
            now: start,
        };
        screen.feed(Input::Resize(width, height));
        screen.event(Event::Started {
            local: "192.0.2.10:5060".into(),
            transport: "udp".into(),
            account: "1001@pbx.example.com".into(),
            accounts: vec!["office".into()],
            note: String::new(),
            lines,
        });
        screen.event(Event::Sip(SipEvent::Registered {
            account: "office".into(),
            aor: "1001@pbx.example.com".into(),
            expires: 600,
        }));
        screen
    }

    /// Feeds `input`, carrying out the searches it asks for as the run loop does.
    fn feed(&mut self, input: Input) {
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            for effect in self.app.update(input, self.now, &self.finder) {
                if let Effect::Search { query, limit, .. } = effect {
                    let rows = self.finder.find(&query, limit);
                    inputs.push(Input::Found { query, rows });
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        self.feed(Input::Event(event));
    }

    fn key(&mut self, code: KeyCode) {
        self.feed(Input::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    fn typed(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    fn at(&mut self, seconds: u64) {
        self.now = self.start + Duration::from_secs(seconds);
    }

    fn call(&mut self, line: u8, id: &str, peer: &str, state: CallState) {
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

    fn incoming(&mut self, line: u8, id: &str, from: &str) {
        self.incoming_for(line, id, from, "office");
    }

    /// A call ringing on `line` that came in for the account named `account`.
    fn incoming_for(&mut self, line: u8, id: &str, from: &str, account: &str) {
        self.event(Event::Sip(SipEvent::Incoming {
            line,
            call_id: id.into(),
            from: from.into(),
            display_name: None,
            referred_by: None,
            replaces: None,
            account: account.into(),
        }));
        self.call(line, id, from, CallState::Ringing);
    }

    fn media(&mut self, line: u8, id: &str) {
        self.event(Event::Quality {
            line,
            call_id: id.into(),
            codec: "opus".into(),
            loss_pct: 0.4,
            jitter_ms: 3.2,
            rtt_ms: Some(21.0),
            buffer_ms: 40,
        });
    }

    fn transfer(&mut self, status: TransferStatus, reason: Option<&str>) {
        self.transfer_by(TransferMechanism::Notify, status, reason);
    }

    fn transfer_by(
        &mut self,
        mechanism: TransferMechanism,
        status: TransferStatus,
        reason: Option<&str>,
    ) {
        self.event(Event::Sip(SipEvent::Transfer {
            line: 1,
            call_id: "c1".into(),
            kind: TransferKind::Blind,
            mechanism: Some(mechanism),
            status,
            target: "sip:202@pbx.example.com".into(),
            status_code: None,
            reason: reason.map(str::to_owned),
        }));
    }

    /// Line 1 answered at 0 s, talking; drawn at 65 s.
    fn connected_call(&mut self) {
        self.incoming(1, "c1", "sip:201@pbx.example.com");
        self.call(1, "c1", "sip:201@pbx.example.com", CallState::Connected);
        self.media(1, "c1");
        self.at(65);
    }

    fn draw(&self, width: u16, height: u16) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
        terminal
            .draw(|frame| view(&self.app, self.now, frame))
            .expect("drawn");
        terminal
    }
}

#[test]
fn four_lines_in_a_three_way_conference_with_a_call_waiting() {
    let mut screen = Screen::with_lines(120, 30, 4);
    screen.incoming(1, "c1", "sip:201@pbx.example.com");
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Connected);
    screen.at(20);
    screen.call(
        2,
        "c2",
        "sip:0401234567@pbx.example.com",
        CallState::Connected,
    );
    screen.call(3, "c3", "sip:202@pbx.example.com", CallState::Connected);
    screen.event(Event::Sip(SipEvent::Conference {
        lines: vec![1, 2, 3],
        active: true,
    }));
    screen.event(Event::Sip(SipEvent::Line { line: 2 }));
    screen.incoming(4, "c4", "sip:+46701234567@pbx.example.com");
    screen.at(95);
    let drawn = screen.draw(120, 30);
    let text = format!("{:?}", drawn.backend());
    assert!(text.contains("CONFERENCE"), "members say conference");
    assert!(text.contains("Line 4"), "the other lines are listed");
    insta::assert_snapshot!(drawn.backend());
}

#[test]
fn two_accounts_at_80x24_show_each_state_the_default_and_the_line_they_ring_on() {
    let mut screen = Screen::new(80, 24);
    screen.app = screen
        .app
        .clone()
        .with_accounts(vec!["desk".into(), "queue".into()]);
    screen.event(Event::Sip(SipEvent::Registered {
        account: "desk".into(),
        aor: "1001@pbx.example.com".into(),
        expires: 600,
    }));
    screen.event(Event::Sip(SipEvent::RegistrationFailed {
        account: "queue".into(),
        aor: "2001@queue.example.net".into(),
        status: None,
        reason: "the registrar did not answer".into(),
        retry_in: 30,
    }));
    screen.incoming_for(1, "c1", "sip:201@pbx.example.com", "queue");
    screen.at(2);
    let drawn = screen.draw(80, 24);
    let text = format!("{:?}", drawn.backend());
    assert!(text.contains("desk ✓ queue ✗"), "each account's mark");
    assert!(
        text.contains("for queue"),
        "the line says which account rings"
    );
    assert!(
        text.contains("queue: registration failed"),
        "the reason is told on the outcome line"
    );
    insta::assert_snapshot!(drawn.backend());
    // The default account for new calls is underlined: desk, then queue once selected.
    let underlined = |screen: &Screen, x: u16| {
        screen.draw(80, 24).backend().buffer()[(x, 0)]
            .modifier
            .contains(Modifier::UNDERLINED)
    };
    let (desk, queue) = (16, 23);
    assert!(underlined(&screen, desk) && !underlined(&screen, queue));
    screen.event(Event::Sip(SipEvent::AccountSelected {
        account: "queue".into(),
    }));
    assert!(!underlined(&screen, desk) && underlined(&screen, queue));
}

#[test]
fn idle_wide() {
    let screen = Screen::new(120, 30);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn idle_narrow_80x24_stacks_the_panes() {
    let screen = Screen::new(80, 24);
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}

#[test]
fn incoming_call() {
    let mut screen = Screen::new(120, 30);
    screen.event(Event::Devices {
        input: "Jabra Evolve 65".into(),
        output: "Jabra Evolve 65".into(),
        ring: "Built-in speakers".into(),
    });
    screen.incoming(1, "c1", "sip:201@pbx.example.com");
    screen.at(3);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn connected_on_line_1_with_line_2_held() {
    let mut screen = Screen::new(120, 30);
    screen.incoming(2, "c2", "sip:0401234567@pbx.example.com");
    screen.call(
        2,
        "c2",
        "sip:0401234567@pbx.example.com",
        CallState::Connected,
    );
    screen.at(30);
    screen.call(2, "c2", "sip:0401234567@pbx.example.com", CallState::Held);
    screen.incoming(1, "c1", "sip:201@pbx.example.com");
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Connected);
    screen.event(Event::Sip(SipEvent::Line { line: 1 }));
    screen.media(1, "c1");
    screen.event(Event::Sip(SipEvent::Mute {
        line: 1,
        call_id: "c1".into(),
        muted: true,
    }));
    screen.at(95);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn connected_80x24() {
    let mut screen = Screen::new(80, 24);
    screen.connected_call();
    screen.incoming(2, "c2", "sip:555@pbx.example.com");
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}

#[test]
fn transfer_in_progress() {
    let mut screen = Screen::new(120, 30);
    screen.connected_call();
    screen.transfer(TransferStatus::Requested, None);
    screen.transfer(TransferStatus::Accepted, None);
    screen.transfer(TransferStatus::Ringing, None);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn consulting_with_the_caller_on_hold() {
    let mut screen = Screen::new(120, 30);
    screen.connected_call();
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Held);
    screen.event(Event::Sip(SipEvent::Transfer {
        line: 1,
        call_id: "c1".into(),
        kind: TransferKind::Attended,
        mechanism: None,
        status: TransferStatus::Requested,
        target: "sip:202@pbx.example.com".into(),
        status_code: None,
        reason: Some("consulting sip:202@pbx.example.com on line 2".into()),
    }));
    screen.event(Event::Sip(SipEvent::Line { line: 2 }));
    screen.call(2, "c2", "sip:202@pbx.example.com", CallState::Connected);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn ring_first_transfer_with_the_target_ringing_on_line_2() {
    let mut screen = Screen::new(120, 30);
    screen.connected_call();
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Held);
    screen.transfer_by(
        TransferMechanism::RingFirst,
        TransferStatus::Requested,
        Some("ringing sip:202@pbx.example.com on line 2 first; the caller hears music on hold"),
    );
    screen.event(Event::Sip(SipEvent::Line { line: 2 }));
    screen.call(2, "c2", "sip:202@pbx.example.com", CallState::Ringing);
    screen.transfer_by(
        TransferMechanism::RingFirst,
        TransferStatus::Ringing,
        Some("sip:202@pbx.example.com rings on line 2"),
    );
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn transfer_failed_with_the_call_back() {
    let mut screen = Screen::new(120, 30);
    screen.connected_call();
    screen.transfer(TransferStatus::Requested, None);
    screen.transfer(TransferStatus::Failed, Some("the target is busy"));
    screen.transfer(
        TransferStatus::Recalled,
        Some("reconnecting: the call is back on line 1"),
    );
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Connected);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn picker_with_results_and_highlights() {
    let mut screen = Screen::new(120, 30);
    screen.connected_call();
    screen.key(KeyCode::Char('t'));
    screen.typed("ann");
    let terminal = screen.draw(120, 30);
    insta::assert_snapshot!(terminal.backend());
    // The matched letters are highlighted: find the picker's "▶ Anna" row and check the style.
    let buffer = terminal.backend().buffer();
    let area = buffer.area;
    let found = (0..area.height).find_map(|y| {
        (0..area.width.saturating_sub(6)).find_map(|x| {
            let text: String = (0..6).map(|i| buffer[(x + i, y)].symbol()).collect();
            (text == "▶ Anna").then_some((x + 2, y))
        })
    });
    let (x, y) = found.expect("Anna is listed and highlighted");
    for i in 0..3 {
        assert!(
            buffer[(x + i, y)].modifier.contains(Modifier::UNDERLINED),
            "matched letter {i} highlighted"
        );
    }
    assert!(
        !buffer[(x + 3, y)].modifier.contains(Modifier::UNDERLINED),
        "the fourth letter did not match"
    );
}

#[test]
fn picker_80x24_with_no_match() {
    let mut screen = Screen::new(80, 24);
    screen.key(KeyCode::Char('d'));
    screen.typed("sip:zed@example.org");
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}

#[test]
fn help_overlay() {
    let mut screen = Screen::new(120, 30);
    screen.key(KeyCode::Char('?'));
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

/// The sound check: devices in use, the level bar, the devices found with the highlighted one.
#[test]
fn sound_check_screen() {
    let mut screen = Screen::new(100, 24);
    screen.event(Event::Devices {
        input: "default".into(),
        output: "default".into(),
        ring: "headset".into(),
    });
    screen.key(KeyCode::Char('v'));
    let device = |name: &str, input, output| AudioDevice {
        name: name.into(),
        input,
        output,
    };
    screen.feed(Input::DevicesListed(Ok(vec![
        device("USB Headset Mono", true, false),
        device("USB Headset Stereo", false, true),
        device("Built-in Audio Analog Stereo", true, true),
    ])));
    screen.key(KeyCode::Down);
    screen.event(Event::Level { dbfs: -21.0 });
    insta::assert_snapshot!(screen.draw(100, 24).backend());
}

#[test]
fn quit_confirmation_and_registration_failure() {
    let mut screen = Screen::new(80, 24);
    screen.event(Event::Sip(SipEvent::RegistrationFailed {
        account: "office".into(),
        aor: "1001@pbx.example.com".into(),
        status: Some(403),
        reason: "403 Forbidden: check the password".into(),
        retry_in: 60,
    }));
    screen.connected_call();
    screen.key(KeyCode::Char('q'));
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}

#[test]
fn sip_trace_pane_under_a_ringing_call() {
    let mut screen = Screen::new(120, 30);
    screen.key(KeyCode::Char('s'));
    let messages = [
        (TraceDirection::In, "INVITE sip:1001@192.0.2.10 SIP/2.0"),
        (TraceDirection::Out, "SIP/2.0 100 Trying"),
        (TraceDirection::Out, "SIP/2.0 180 Ringing"),
    ];
    for (i, (direction, first)) in messages.into_iter().enumerate() {
        screen.at(i as u64);
        screen.event(Event::SipMessage {
            direction,
            peer: "192.0.2.1:5060".into(),
            message: format!("{first}\r\nCall-ID: c1@pbx\r\nCSeq: 1 INVITE\r\n\r\n"),
            raw: false,
        });
    }
    screen.incoming(1, "c1", "sip:201@pbx.example.com");
    screen.at(3);
    insta::assert_snapshot!("trace_list", screen.draw(120, 30).backend());
    screen.key(KeyCode::Up);
    screen.key(KeyCode::Up);
    screen.key(KeyCode::Enter);
    insta::assert_snapshot!("trace_full_message", screen.draw(120, 30).backend());
}

#[test]
fn call_history_view() {
    let mut screen = Screen::new(120, 30);
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let record = |ago: u64, number: &str, direction, duration_s, outcome| Record {
        started: base - Duration::from_secs(ago),
        direction,
        number: number.into(),
        uri: format!("sip:{number}@pbx.example.com"),
        name: None,
        line: 1,
        call_id: format!("{number}-{ago}"),
        duration_s,
        outcome,
        reason: None,
        wrapup: None,
    };
    let records = vec![
        record(30, "201", CallDirection::In, 95, CallOutcome::Answered),
        record(600, "0401234567", CallDirection::In, 0, CallOutcome::Missed),
        record(
            7_200,
            "202",
            CallDirection::Out,
            40,
            CallOutcome::Transferred {
                to: "sip:300@pbx.example.com".into(),
            },
        ),
        record(
            90_000,
            "+46701234567",
            CallDirection::Out,
            0,
            CallOutcome::Busy { status: 486 },
        ),
    ];
    let finder = &screen.finder;
    let list = HistoryList::new(&records, base, |n| finder.name_for(n));
    screen.feed(Input::History(Ok(list)));
    screen.key(KeyCode::Down);
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn busy_lamps_row_with_a_call() {
    let mut screen = Screen::with_blf(120, 30, &["201", "202", "203", "204"]);
    for (ext, state) in [
        ("201", BlfState::Idle),
        ("202", BlfState::Ringing),
        ("203", BlfState::Busy),
    ] {
        screen.event(Event::Sip(SipEvent::Blf {
            ext: ext.into(),
            state,
        }));
    }
    screen.event(Event::Sip(SipEvent::Blf {
        ext: "201".into(),
        state: BlfState::Busy,
    }));
    screen.connected_call();
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

#[test]
fn picker_with_busy_lamps() {
    let mut screen = Screen::with_blf(120, 30, &["201"]);
    screen.connected_call();
    screen.key(KeyCode::Char('t'));
    // 201 is configured; 202 is watched because it is in view.
    for (ext, state) in [("201", BlfState::Busy), ("202", BlfState::Ringing)] {
        screen.event(Event::Sip(SipEvent::Blf {
            ext: ext.into(),
            state,
        }));
    }
    insta::assert_snapshot!(screen.draw(120, 30).backend());
}

/// A screen with twelve favourites (F1–F12), their numbers watched as lamps.
fn with_favourites(width: u16, height: u16) -> Screen {
    let favourites: Vec<switchboard::config::Favourite> = [
        ("Reception", "200"),
        ("Anna Virtanen", "201"),
        ("Bob Builder", "202"),
        ("Sales queue", "203"),
        ("Support queue", "204"),
        ("Night service", "205"),
        ("Facilities and maintenance", "206"),
        ("CEO office", "207"),
        ("Park 701", "701"),
        ("Park 702", "702"),
        ("Security", "208"),
        ("Taxi", "+35891234567"),
    ]
    .into_iter()
    .map(|(label, number)| switchboard::config::Favourite {
        label: label.into(),
        number: number.into(),
        key: None,
    })
    .collect();
    let numbers: Vec<&str> = favourites.iter().map(|f| f.number.as_str()).collect();
    let mut screen = Screen::with_blf(width, height, &numbers);
    screen.app = screen.app.clone().with_favourites(
        switchboard::tui::favourites::Favourites::from_config(&favourites),
        true,
    );
    for (ext, state) in [
        ("200", BlfState::Idle),
        ("201", BlfState::Busy),
        ("202", BlfState::Ringing),
        ("203", BlfState::Idle),
        ("701", BlfState::Busy),
        ("702", BlfState::Idle),
    ] {
        screen.event(Event::Sip(SipEvent::Blf {
            ext: ext.into(),
            state,
        }));
    }
    screen
}

#[test]
fn favourites_panel_80x24_with_two_lines() {
    let mut screen = with_favourites(80, 24);
    screen.connected_call();
    screen.incoming(2, "c2", "sip:555@pbx.example.com");
    let terminal = screen.draw(80, 24);
    let text: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    // Both panes and all twelve favourites fit.
    assert!(text.contains("Line 1") && text.contains("Line 2"), "{text}");
    assert!(text.contains("F12") && text.contains("Taxi"), "{text}");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn favourites_panel_hidden_with_f() {
    let mut screen = with_favourites(80, 24);
    screen.key(KeyCode::Char('f'));
    assert!(!screen.app.favourites.shown);
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}

#[test]
fn picker_puts_favourites_first_marked() {
    let mut screen = with_favourites(100, 30);
    screen.key(KeyCode::Char('d'));
    screen.typed("b");
    insta::assert_snapshot!(screen.draw(100, 30).backend());
}

#[test]
fn a_parked_call_coming_back_says_so() {
    let mut screen = with_favourites(80, 24);
    screen.incoming(1, "back", "sip:555@pbx.example.com");
    screen.event(Event::Sip(SipEvent::ParkReturned {
        line: 1,
        call_id: "back".into(),
        from: "sip:555@pbx.example.com".into(),
        slot: Some("701".into()),
    }));
    let terminal = screen.draw(80, 24);
    insta::assert_snapshot!(terminal.backend());
}
/// After a call: the wrap-up modal at 80×24, a code chosen and a note being typed, the time
/// left in its corner, another wrap-up waiting; do not disturb shown in the status bar.
#[test]
fn wrap_up_modal_80x24_with_dnd() {
    let mut screen = Screen::new(80, 24);
    screen.event(Event::Sip(SipEvent::Dnd {
        on: true,
        code: None,
    }));
    screen.connected_call();
    for (id, peer) in [
        ("c1", "sip:201@pbx.example.com"),
        ("c9", "sip:555@pbx.example.com"),
    ] {
        screen.event(Event::Sip(SipEvent::Wrapup {
            line: 1,
            call_id: id.into(),
            peer: peer.into(),
            status: WrapupStatus::Started,
            codes: vec!["sale".into(), "callback".into(), "complaint".into()],
            seconds: Some(30),
            required: false,
            code: None,
            note: None,
        }));
    }
    screen.call(1, "c1", "sip:201@pbx.example.com", CallState::Ended);
    screen.key(KeyCode::Down);
    screen.key(KeyCode::Down);
    screen.typed("call back Monday");
    screen.at(65 + 4);
    insta::assert_snapshot!(screen.draw(80, 24).backend());
}
