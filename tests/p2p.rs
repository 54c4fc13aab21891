//! Switchboard against switchboard, peer to peer (no proxy), as two operators would use it
//! (issue 14): the callee holds and resumes over two minutes and the call stays up with both
//! sides agreeing on its state; and after every kind of recall (blind `safe`: target busy,
//! declining, absent, not answering; attended: cancelled, target busy) the operator and a
//! switchboard caller hear each other again. Every switchboard plays its own tone from a file
//! and records what it hears; audio is checked in windows taken after each resume.
//!
//! Configs say `blind = "notify"`: the REFER-watching blind transfer, which puts the caller's
//! switchboard in the transferee's seat (ring-first is proven in tests/transfer_pbx.rs).

mod common;

use std::path::{Path, PathBuf};
use std::thread;

use common::signal::read_wav;
use common::{audio, hosts, millis, secs, Net, Sipp, Switchboard, SwitchboardConfig};

/// Host numbers in the test's /24: the operator is [`hosts::SWITCHBOARD`].
const CALLER: u8 = 6;
const TARGET: u8 = 7;
/// Nothing listens here.
const ABSENT: u8 = 8;
const SIPP_BUSY: u8 = hosts::SIPP;
const SIPP_SILENT: u8 = hosts::SIPP + 1;
const SIPP_BUSY_2: u8 = hosts::SIPP + 2;
/// Each switchboard's tone (Hz).
const OPERATOR_HZ: f64 = 500.0;
const CALLER_HZ: f64 = 800.0;
const TARGET_HZ: f64 = 1300.0;

/// A switchboard that plays a tone and records what it hears.
struct Party {
    sb: Switchboard,
    out: PathBuf,
    uri: String,
}

/// A switchboard at host `n` as `user`, playing `hz`, recording to `dir/<user>_out.wav`,
/// RTP from `rtp`; a safe blind transfer waits 5 s for its target.
fn party(net: &Net, dir: &Path, n: u8, user: &str, hz: f64, rtp: u16) -> Party {
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
        .with_extra("[transfer]\nblind = \"notify\"\nblind_timeout = 5\n")
        .to_toml();
    let mut sb = Switchboard::start(&toml);
    sb.wait_for(secs(10), "started");
    Party {
        sb,
        out,
        uri: format!("sip:{user}@{ip}:5060"),
    }
}

/// `from` calls `to`, who answers; both wait until connected with media both ways.
fn connect(from: &mut Party, to: &mut Party) {
    from.sb.send(&format!("dial {}", to.uri));
    to.sb.wait_for(secs(5), "incoming");
    to.sb.send("answer");
    for p in [from, to] {
        p.sb.wait_call_state(secs(5), 1, "connected");
        wait_media(&mut p.sb, "sendrecv");
    }
    // Let the ACK of the answer arrive: until then a transfer is refused as renegotiating.
    thread::sleep(millis(500));
}

/// The next `media` event on line 1 with `direction`.
fn wait_media(sb: &mut Switchboard, direction: &str) {
    sb.wait_event(secs(10), |e| {
        e["event"] == "media" && e["line"] == 1 && e["direction"] == direction
    });
}

/// A stretch of two recordings, both heard after a resume: (what, operator's range, caller's
/// range) in samples.
type Window = (String, std::ops::Range<usize>, std::ops::Range<usize>);

/// Marks both recordings now and lets 4 s of talk go by: the returned window (1.5 s to 3.5 s
/// after the marks) was heard after this call began.
fn talk(what: &str, a: &Party, b: &Party) -> Window {
    thread::sleep(millis(300));
    let (ma, mb) = (
        audio::recorded_samples(&a.out),
        audio::recorded_samples(&b.out),
    );
    thread::sleep(secs(4));
    let range = |m: usize| m + 72_000..m + 168_000;
    (what.to_owned(), range(ma), range(mb))
}

/// After both switchboards quit: in every window the operator heard the caller's tone and the
/// caller the operator's.
fn assert_heard_both_ways(operator_out: &Path, caller_out: &Path, windows: &[Window]) {
    let (op, op_rate) = read_wav(operator_out);
    let (caller, caller_rate) = read_wav(caller_out);
    for (what, op_range, caller_range) in windows {
        let slice = |x: &[f32], r: &std::ops::Range<usize>| {
            assert!(r.end <= x.len(), "{what}: the recording ends too soon");
            x[r.clone()].to_vec()
        };
        let op_hears = audio::tone_level(&slice(&op, op_range), op_rate, CALLER_HZ);
        let caller_hears =
            audio::tone_level(&slice(&caller, caller_range), caller_rate, OPERATOR_HZ);
        println!("{what}: operator hears the caller at {op_hears:.3}, caller hears the operator at {caller_hears:.3}");
        assert!(
            op_hears > 0.1,
            "{what}: the operator does not hear the caller ({op_hears:.3})"
        );
        assert!(
            caller_hears > 0.1,
            "{what}: the caller does not hear the operator ({caller_hears:.3})"
        );
    }
}

/// Hangs the call up from `a`, waits for `b` to see it end, and quits both.
fn finish(a: &mut Party, b: &mut Party) {
    // The last window must be on disk (written on the media clock, flushed every second).
    thread::sleep(millis(1_500));
    a.sb.send("hangup");
    b.sb.wait_call_state(secs(5), 1, "ended");
    assert!(a.sb.quit_and_wait(secs(10)).success());
    assert!(b.sb.quit_and_wait(secs(10)).success());
}

#[test]
fn the_callee_holds_resumes_and_holds_again_over_two_minutes_and_the_call_stays_up() {
    let net = Net::for_test("p2p::callee_holds_for_two_minutes");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = party(
        &net,
        dir.path(),
        hosts::SWITCHBOARD,
        "alice",
        OPERATOR_HZ,
        30_000,
    );
    let mut bob = party(&net, dir.path(), CALLER, "bob", CALLER_HZ, 31_000);
    connect(&mut alice, &mut bob);
    let mut windows = vec![talk("answered", &alice, &bob)];
    for round in 1..=2 {
        // Bob (who answered) holds: both agree, and stay so past the 32 s an unACKed 2xx lives.
        bob.sb.send("hold");
        bob.sb.wait_call_state(secs(5), 1, "held");
        alice.sb.wait_call_state(secs(5), 1, "remote_held");
        wait_media(&mut bob.sb, "sendonly");
        wait_media(&mut alice.sb, "recvonly");
        let ended = |e: &serde_json::Value| e["event"] == "call" && e["state"] == "ended";
        alice.sb.expect_no_event(secs(34), ended);
        bob.sb.expect_no_event(millis(10), ended);
        bob.sb.send("resume");
        bob.sb.wait_call_state(secs(5), 1, "connected");
        alice.sb.wait_call_state(secs(5), 1, "connected");
        wait_media(&mut bob.sb, "sendrecv");
        wait_media(&mut alice.sb, "sendrecv");
        windows.push(talk(&format!("resume {round}"), &alice, &bob));
        alice.sb.expect_no_event(secs(20), ended);
        bob.sb.expect_no_event(millis(10), ended);
    }
    // Alice's BYE reaches Bob's call (200, not 481).
    finish(&mut alice, &mut bob);
    let ended = bob
        .sb
        .events()
        .into_iter()
        .rfind(|e| e["event"] == "call" && e["state"] == "ended")
        .expect("bob's call ended");
    assert_eq!(ended["reason"], "the far end hung up");
    assert!(
        !bob.sb.log().contains("sending: SIP/2.0 481"),
        "Bob answered a request with 481"
    );
    assert_heard_both_ways(&alice.out, &bob.out, &windows);
}

/// Waits for the operator's `recalled` and for both sides to talk again.
fn recalled(alice: &mut Party, bob: &mut Party) {
    alice.sb.wait_transfer(secs(15), "recalled");
    for p in [alice, bob] {
        p.sb.wait_event(secs(15), |e| {
            e["event"] == "call" && e["line"] == 1 && e["state"] == "connected"
        });
        wait_media(&mut p.sb, "sendrecv");
    }
}

#[test]
fn every_blind_recall_brings_a_switchboard_caller_back_with_audio_both_ways() {
    let net = Net::for_test("p2p::blind_recalls");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = party(
        &net,
        dir.path(),
        hosts::SWITCHBOARD,
        "alice",
        OPERATOR_HZ,
        30_000,
    );
    let mut bob = party(&net, dir.path(), CALLER, "bob", CALLER_HZ, 31_000);
    let mut carol = party(&net, dir.path(), TARGET, "carol", TARGET_HZ, 32_000);
    // Bob calls the operator, who answers. (Each sipp gives up after 30 s: started just
    // before use.)
    connect(&mut bob, &mut alice);
    let mut windows = Vec::new();

    let mut busy = Sipp::uas(&net, SIPP_BUSY, "uas_busy", &[]);

    alice.sb.send(&format!("transfer {}", busy.uri("carol")));
    let failed = alice.sb.wait_transfer(secs(10), "failed");
    assert_eq!(failed["status_code"], 486, "{failed}");
    recalled(&mut alice, &mut bob);
    windows.push(talk("blind, target busy", &alice, &bob));
    busy.expect_pass(secs(5));

    alice.sb.send(&format!("transfer {}", carol.uri));
    carol.sb.wait_for(secs(5), "incoming");
    carol.sb.send("decline");
    let failed = alice.sb.wait_transfer(secs(10), "failed");
    assert_eq!(failed["status_code"], 603, "{failed}");
    recalled(&mut alice, &mut bob);
    windows.push(talk("blind, target declines", &alice, &bob));

    alice
        .sb
        .send(&format!("transfer sip:dave@{}:5060", net.ip(ABSENT)));
    recalled(&mut alice, &mut bob);
    windows.push(talk("blind, target absent", &alice, &bob));

    let mut silent = Sipp::uas(&net, SIPP_SILENT, "uas_no_answer", &[]);
    alice.sb.send(&format!("transfer {}", silent.uri("carol")));
    recalled(&mut alice, &mut bob);
    windows.push(talk("blind, no answer", &alice, &bob));
    silent.expect_pass(secs(5));

    finish(&mut alice, &mut bob);
    assert!(carol.sb.quit_and_wait(secs(10)).success());
    assert_heard_both_ways(&alice.out, &bob.out, &windows);
}

#[test]
fn every_attended_recall_brings_a_switchboard_caller_back_with_audio_both_ways() {
    let net = Net::for_test("p2p::attended_recalls");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = party(
        &net,
        dir.path(),
        hosts::SWITCHBOARD,
        "alice",
        OPERATOR_HZ,
        30_000,
    );
    let mut bob = party(&net, dir.path(), CALLER, "bob", CALLER_HZ, 31_000);
    let mut carol = party(&net, dir.path(), TARGET, "carol", TARGET_HZ, 32_000);
    connect(&mut bob, &mut alice);
    let mut windows = Vec::new();

    // The operator consults Carol, who answers, then cancels: Bob is back.
    alice.sb.send(&format!("consult {}", carol.uri));
    bob.sb.wait_call_state(secs(10), 1, "remote_held");
    carol.sb.wait_for(secs(5), "incoming");
    carol.sb.send("answer");
    alice.sb.wait_call_state(secs(5), 2, "connected");
    alice.sb.send("cancel");
    carol.sb.wait_call_state(secs(5), 1, "ended");
    recalled(&mut alice, &mut bob);
    windows.push(talk("attended, cancelled", &alice, &bob));

    let mut busy = Sipp::uas(&net, SIPP_BUSY_2, "uas_busy", &[]);
    alice.sb.send(&format!("consult {}", busy.uri("carol")));
    let failed = alice.sb.wait_transfer(secs(10), "failed");
    assert_eq!(failed["status_code"], 486, "{failed}");
    recalled(&mut alice, &mut bob);
    windows.push(talk("attended, target busy", &alice, &bob));
    busy.expect_pass(secs(5));

    finish(&mut alice, &mut bob);
    assert!(carol.sb.quit_and_wait(secs(10)).success());
    assert_heard_both_ways(&alice.out, &bob.out, &windows);
}
