//! The operator's screen end to end: the real binary in tmux against the lab. The SIP trace
//! pane is opened; a real phone (linphonec, bob) calls the operator and the trace shows the
//! INVITE; a key answers; `T` opens the picker, typing part of a
//! surname finds the target among look-alikes, Enter consults her (a second switchboard,
//! carol, who answers); `c` completes, bob is joined to carol by REFER with Replaces, and the
//! screen says so in words.

mod common;

use common::{
    audio, hosts, secs, Baresip, BaresipOptions, Kamailio, Linphonec, LinphonecOptions, Net, Sipp,
    Switchboard, SwitchboardConfig, TmuxScreen,
};

/// Host number of carol's switchboard in the test's /24.
const SB_CAROL: u8 = 8;

#[test]
fn incoming_call_answered_by_key_then_attended_transfer_picked_by_name() {
    let net = Net::for_test("tui_e2e::attended_by_keys");
    let kam = Kamailio::start(
        &net,
        &[("200", "pw200"), ("201", "pw201"), ("202", "pw202")],
    );
    let directory = "[directory]\nextensions = [\
        { number = \"201\", name = \"Bob Builder\" }, \
        { number = \"202\", name = \"Carol Jansen\" }, \
        { number = \"203\", name = \"Jan Svensson\" }, \
        { number = \"204\", name = \"Carl Jensen\" }]\n";
    let operator = SwitchboardConfig::registering(&net, "200", "pw200").with_extra(directory);
    let screen = TmuxScreen::start(&operator.to_toml(), 100, 30);
    screen.wait_for("registered", secs(10));

    let mut carol_cfg = SwitchboardConfig::registering(&net, "202", "pw202");
    carol_cfg.bind = (net.ip(SB_CAROL), 5060).into();
    let mut carol = Switchboard::start(&carol_cfg.to_toml());
    carol.wait_for(secs(10), "registered");
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = audio::tone_wav(dir.path(), "bob-1k.wav", 1000, 60);
    let bob = Linphonec::start(
        &net,
        "201",
        "pw201",
        kam.ip(),
        LinphonecOptions {
            play_file: Some(tone),
            ..LinphonecOptions::default()
        },
    );
    bob.wait_registered(secs(10));

    // The SIP trace pane opens under the lines; Esc gives the keys back to the lines.
    screen.keys(&["s"]);
    screen.wait_for("SIP trace", secs(5));
    screen.keys(&["Escape"]);

    // The call rings on the screen with the caller's name from the directory, and the trace
    // shows the INVITE that came in and our 180.
    bob.command(&format!("call sip:200@{}", kam.ip()));
    screen.wait_for("Bob Builder", secs(10));
    let traced = screen.wait_for("SIP/2.0 180 Ringing", secs(5));
    assert!(traced.contains("← "), "a received message:\n{traced}");
    assert!(traced.contains("INVITE sip:200@"), "the INVITE:\n{traced}");
    screen.keys(&["Enter"]);
    screen.wait_for("CONNECTED", secs(10));

    // Attended transfer: T, a few letters of the surname, Enter.
    screen.keys(&["T"]);
    screen.type_text("jansen");
    let picker = screen.wait_for("Carol Jansen", secs(5));
    assert!(
        picker.contains("202"),
        "the row shows the number:\n{picker}"
    );
    screen.keys(&["Enter"]);
    let incoming = carol.wait_for(secs(10), "incoming");
    assert_eq!(incoming["from"], format!("sip:200@{}", kam.ip()));
    carol.send("answer");
    let consult_call = incoming["call_id"].clone();
    carol.wait_call_state(secs(5), 1, "connected");
    screen.wait_for("complete or cancel", secs(10));

    // c completes: bob's phone calls carol with Replaces and the operator is free.
    screen.keys(&["c"]);
    let done = screen.wait_for("transferred to Carol Jansen (202)", secs(20));
    assert!(
        done.contains("Bob Builder (201) transferred to Carol Jansen (202)"),
        "the outcome names both parties:\n{done}"
    );
    let replaced = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == consult_call
    });
    assert_eq!(replaced["from"], format!("sip:201@{}", kam.ip()));
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "connected"
    });

    // No call left on the operator's screen: q quits at once (it would ask during a call).
    screen.keys(&["q"]);
    assert!(
        screen.wait_exit(secs(10)),
        "switchboard did not quit:\n{}",
        screen.capture()
    );
    carol.send("hangup");
    carol.wait_call_state(secs(5), 1, "ended");
    assert!(carol.quit_and_wait(secs(10)).success());
}

/// A headless switchboard at host `n` as `user`, peer to peer, playing a `hz` tone and
/// recording what it hears to `dir/<user>_out.wav` (returned), RTP from `rtp`.
fn tone_party(
    net: &Net,
    dir: &std::path::Path,
    n: u8,
    user: &str,
    hz: f64,
    rtp: u16,
) -> (Switchboard, std::path::PathBuf) {
    let ip = net.ip(n);
    let file_in = audio::sine_wav48(dir, &format!("{user}.wav"), hz);
    let out = dir.join(format!("{user}_out.wav"));
    let mut cfg = SwitchboardConfig::peer_to_peer(net).with_codecs(&["pcmu"]);
    cfg.bind = (ip, 5060).into();
    cfg.accounts[0].user = user.into();
    cfg.accounts[0].domain = ip.to_string();
    let toml = cfg
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            file_in.display(),
            out.display()
        ))
        .with_network(&format!(
            "rtp_port_min = {rtp}\nrtp_port_max = {}\n",
            rtp + 9
        ))
        .to_toml();
    let mut sb = Switchboard::start(&toml);
    sb.wait_for(secs(10), "started");
    (sb, out)
}

/// Three switchboards peer to peer: bob calls the operator, who answers on the screen
/// (Enter), consults carol with `T` (her address typed in the picker), and completes with `c`.
/// The operator is the one who answered, so every re-INVITE of hers is a callee's: her hold
/// must be ACKed in her own dialog for `complete` to go ahead. Bob then talks with carol.
#[test]
fn the_operator_who_answered_completes_an_attended_transfer_from_the_screen() {
    let net = Net::for_test("tui_e2e::answered_then_attended_p2p");
    let dir = tempfile::tempdir().expect("temp dir");
    let screen = TmuxScreen::start(&SwitchboardConfig::peer_to_peer(&net).to_toml(), 100, 30);
    screen.wait_for("Line 1", secs(10));
    let (mut bob, bob_out) = tone_party(&net, dir.path(), 6, "bob", 800.0, 31_000);
    let (mut carol, carol_out) = tone_party(&net, dir.path(), SB_CAROL, "carol", 1300.0, 32_000);

    bob.send(&format!(
        "dial sip:alice@{}:5060",
        net.ip(hosts::SWITCHBOARD)
    ));
    screen.wait_for("INCOMING", secs(10));
    screen.keys(&["Enter"]);
    screen.wait_for("CONNECTED", secs(10));
    bob.wait_call_state(secs(5), 1, "connected");

    screen.keys(&["T"]);
    screen.type_text(&format!("carol@{}", net.ip(SB_CAROL)));
    screen.keys(&["Enter"]);
    let incoming = carol.wait_for(secs(10), "incoming");
    let consult_call = incoming["call_id"].clone();
    carol.send("answer");
    carol.wait_call_state(secs(5), 1, "connected");
    bob.wait_call_state(secs(5), 1, "remote_held");
    screen.wait_for("Consulting carol on the other line", secs(10));

    screen.keys(&["c"]);
    let replaced = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == consult_call
    });
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "connected"
    });
    bob.wait_event(secs(10), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] == "connected"
    });
    let screen_text = screen.wait_for("transferred to", secs(10));
    assert!(
        !screen_text.contains("already under way"),
        "complete went ahead:\n{screen_text}"
    );

    // Bob and carol hear each other: marks now, a window 1.5–3.5 s later.
    std::thread::sleep(common::millis(300));
    let (mb, mc) = (
        audio::recorded_samples(&bob_out),
        audio::recorded_samples(&carol_out),
    );
    std::thread::sleep(common::millis(5_500));
    bob.send("hangup");
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "ended"
    });
    screen.keys(&["q"]);
    assert!(
        screen.wait_exit(secs(10)),
        "switchboard did not quit:\n{}",
        screen.capture()
    );
    assert!(bob.quit_and_wait(secs(10)).success());
    assert!(carol.quit_and_wait(secs(10)).success());
    for (who, out, mark, hz) in [
        ("bob", &bob_out, mb, 1300.0),
        ("carol", &carol_out, mc, 800.0),
    ] {
        let (heard, rate) = common::signal::read_wav(out);
        let window = &heard[mark + 72_000..(mark + 168_000).min(heard.len())];
        let level = audio::tone_level(window, rate, hz);
        println!("{who} hears {hz} Hz at {level:.3}");
        assert!(
            level > 0.1,
            "{who} does not hear the other party ({level:.3})"
        );
    }
}

/// The favourites panel at 80×24 and its one key: bob (baresip) calls the operator, who
/// answers with `a` and presses F2 (carol's favourite key): the call is transferred blind to
/// carol (another baresip), who answers; the panel shows both favourites with their keys.
#[test]
fn favourites_panel_and_one_key_blind_transfer() {
    let net = Net::for_test("tui_e2e::favourite_key");
    let kam = Kamailio::start(
        &net,
        &[("200", "pw200"), ("201", "pw201"), ("202", "pw202")],
    );
    let favourites = "[transfer]\nblind = \"notify\"\n\n\
        [[favourite]]\nlabel = \"Reception\"\nnumber = \"205\"\n\n\
        [[favourite]]\nlabel = \"Carol Jansen\"\nnumber = \"202\"\n";
    let operator = SwitchboardConfig::registering(&net, "200", "pw200").with_extra(favourites);
    let screen = TmuxScreen::start(&operator.to_toml(), 80, 24);
    screen.wait_for("registered", secs(10));
    let panel = screen.wait_for("Carol Jansen", secs(5));
    assert!(
        panel.contains("F1") && panel.contains("Reception"),
        "{panel}"
    );
    assert!(panel.contains("F2"), "{panel}");

    let bob = Baresip::start(&net, "201", "pw201", kam.ip(), BaresipOptions::default());
    let carol = Baresip::start(
        &net,
        "202",
        "pw202",
        kam.ip(),
        BaresipOptions {
            host: 6,
            ..BaresipOptions::default()
        },
    );
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));
    bob.dial(&format!("sip:200@{}", kam.ip()));
    screen.wait_for("INCOMING", secs(10));
    screen.keys(&["a"]);
    screen.wait_for("CONNECTED", secs(10));
    screen.keys(&["F2"]);
    // The favourite's label names the target.
    screen.wait_for("transferred to Carol Jansen (202)", secs(20));
    carol.wait_log("Call established", secs(5));
    // The panel is still there, and `f` hides it.
    screen.keys(&["f"]);
    let hidden = (0..50).find_map(|_| {
        let text = screen.capture();
        if text.contains("Reception") {
            std::thread::sleep(std::time::Duration::from_millis(100));
            None
        } else {
            Some(text)
        }
    });
    assert!(hidden.is_some(), "f hides the panel:\n{}", screen.capture());
    screen.keys(&["q"]);
    assert!(screen.wait_exit(secs(10)), "{}", screen.log_tail(40));
}

/// Park from the screen: the operator calls sipp (playing a PBX's park, `uas_park`) with the
/// `:` line, presses `P`, and the outcome line tells the slot the PBX's NOTIFY named.
#[test]
fn the_park_key_parks_the_call_and_tells_the_slot() {
    let net = Net::for_test("tui_e2e::park_key");
    let mut pbx = common::Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_park",
        &["-key", "slot_header", "Park-Slot: 701"],
    );
    let mut config = SwitchboardConfig::peer_to_peer(&net);
    if let Some(account) = config.accounts.first_mut() {
        account.domain = pbx.ip().to_string();
        account.extra = "park = \"700\"\n".to_owned();
    }
    let screen = TmuxScreen::start(&config.to_toml(), 80, 24);
    screen.wait_for("Line 1", secs(10));
    screen.keys(&[":"]);
    screen.type_text(&format!("dial {}", pbx.uri("sipp")));
    screen.keys(&["Enter"]);
    screen.wait_for("CONNECTED", secs(10));
    screen.keys(&["P"]);
    screen.wait_for("in slot 701 (unpark 701)", secs(10));
    pbx.expect_pass(secs(10));
    screen.keys(&["q"]);
    assert!(screen.wait_exit(secs(10)), "{}", screen.log_tail(40));
}

/// Do not disturb and wrap-up from the keyboard, with sipp calling: `D` puts DND in the status
/// bar and a call is answered busy without ringing; `D` again, a call rings, Enter answers;
/// when the caller hangs up the wrap-up modal opens, ↓ picks a code, the note is typed, Enter
/// saves it into the history file.
#[test]
fn dnd_and_wrap_up_from_the_keyboard() {
    let net = Net::for_test("tui_e2e::dnd_wrapup");
    let operator = SwitchboardConfig::peer_to_peer(&net)
        .with_extra("[wrapup]\ncodes = [\"sale\", \"callback\"]\nseconds = 0\n");
    let screen = TmuxScreen::start(&operator.to_toml(), 80, 24);
    let me = net.ip(hosts::SWITCHBOARD);
    screen.wait_for(&format!("alice@{me}"), secs(10));
    screen.keys(&["D"]);
    screen.wait_for("DND", secs(5));
    let mut busy = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_expect_busy",
        (me, 5060).into(),
        "alice",
        &[],
    );
    busy.expect_pass(secs(10));
    screen.wait_for("answered busy: do not disturb", secs(5));
    screen.keys(&["D"]);
    screen.wait_for("do not disturb is off", secs(5));

    let mut caller = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_invite",
        (me, 5060).into(),
        "alice",
        &[],
    );
    screen.wait_for("INCOMING", secs(10));
    screen.keys(&["Enter"]);
    caller.expect_pass(secs(10));
    screen.wait_for("Wrap-up: sipp", secs(5));
    screen.keys(&["Down", "Down"]);
    screen.type_text("ring back at 5");
    screen.keys(&["Enter"]);
    screen.wait_for("wrap-up saved: callback", secs(5));
    let history = screen
        .run_dir()
        .join("home/.local/share/switchboard/history.jsonl");
    let text = common::wait_for_file(&history);
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains(r#""wrapup":{"status":"saved","code":"callback","note":"ring back at 5"}"#),
        "{text}"
    );
}

/// First start: no `--config` and no file at the default path. The screen offers the form;
/// an address without a domain is refused in the form with check-config's words; the fixed
/// answers are written to `$XDG_CONFIG_HOME/switchboard/config.toml` (the example's comments
/// kept, mode 0600) and switchboard starts with them and registers to kamailio.
#[test]
fn first_start_writes_the_config_from_the_form_and_registers() {
    use std::os::unix::fs::PermissionsExt;

    let net = Net::for_test("tui_e2e::first_start");
    let kam = Kamailio::start(&net, &[("300", "pw300")]);
    let screen = TmuxScreen::first_start(100, 30);
    screen.wait_for("first start", secs(10));
    let path = screen.config_home().join("switchboard/config.toml");
    assert!(!path.exists(), "nothing written before Enter");

    // No domain: check-config's rule, shown under the address, and nothing written.
    screen.type_text("300");
    screen.keys(&["Tab"]);
    screen.type_text("pw300");
    screen.keys(&["Enter"]);
    let refused = screen.wait_for("domain part: must not be empty", secs(5));
    assert!(refused.contains("SIP address"), "{refused}");
    assert!(!path.exists(), "a refused form writes nothing");

    // The address in focus again: complete it; the registrar as host:port gets `sip:`.
    screen.type_text(&format!("@{}", kam.ip()));
    screen.keys(&["Tab", "Tab", "Tab"]);
    screen.type_text(&format!("{}:5060", kam.ip()));
    screen.keys(&["Enter"]);
    screen.wait_for("registered", secs(15));

    let written = std::fs::read_to_string(&path).expect("the config file is written");
    assert!(
        written.contains("# switchboard — example configuration"),
        "{written}"
    );
    assert!(written.contains("\nuser = \"300\"\n"), "{written}");
    assert!(
        written.contains(&format!("\nregistrar = \"sip:{}:5060\"\n", kam.ip())),
        "{written}"
    );
    let mode = std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "it holds the password");
    assert!(switchboard::config::Config::load(&path).is_ok());

    screen.keys(&["q"]);
    assert!(
        screen.wait_exit(secs(10)),
        "switchboard did not quit:\n{}",
        screen.capture()
    );
}
