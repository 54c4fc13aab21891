//! After a recall the operator and a real phone hear each other again (issue 14): baresip and
//! linphonec, each playing a tone through kamailio, call the operator (a switchboard playing
//! its own tone and recording what it hears), who transfers them blind with `blind = "notify"`
//! to a busy target, one that declines, one that does not answer, to nobody, and consults a
//! target then cancels, and a busy one. After each recall a window of the operator's
//! recording (and linphonec's) taken after the recall must hold the other side's tone.
//! linphonec skips the blind transfers to a busy and to an absent target: it keeps the operator
//! on hold after them.

mod common;

use std::path::{Path, PathBuf};
use std::thread;

use common::signal::read_wav;
use common::{
    audio, hosts, millis, secs, AudioSource, Baresip, BaresipOptions, Kamailio, Linphonec,
    LinphonecOptions, Net, Sipp, Switchboard, SwitchboardConfig,
};

/// Host number of carol's switchboard (the target) in the test's /24.
const CAROL: u8 = 7;
/// The operator's tone and the phone's (Hz).
const OPERATOR_HZ: f64 = 500.0;
const PHONE_HZ: u32 = 800;

/// The operator: switchboard registering as alice, playing [`OPERATOR_HZ`], recording to
/// `dir/alice_out.wav` (returned); a safe blind transfer waits 5 s for its target.
fn operator(net: &Net, dir: &Path) -> (Switchboard, PathBuf) {
    let file_in = audio::sine_wav48(dir, "alice.wav", OPERATOR_HZ);
    let out = dir.join("alice_out.wav");
    let toml = SwitchboardConfig::registering(net, "alice", "alicepw")
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            file_in.display(),
            out.display()
        ))
        .with_extra("[transfer]\nblind = \"notify\"\nblind_timeout = 5\n")
        .to_toml();
    let mut sb = Switchboard::start(&toml);
    sb.wait_for(secs(10), "registered");
    (sb, out)
}

/// carol, the target: a switchboard registering at [`CAROL`], no audio.
fn carol(net: &Net) -> Switchboard {
    let mut cfg = SwitchboardConfig::registering(net, "carol", "carolpw");
    cfg.bind = (net.ip(CAROL), 5060).into();
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    sb
}

/// Waits (at most 15 s) until the operator's line 1 is connected with media both ways and
/// stays so for a second (a glare between two resumes may pass through held states first).
fn talking_again(sb: &mut Switchboard) {
    let settled = |sb: &mut Switchboard| {
        let events = sb.events();
        let last = |kind: &str| {
            events
                .iter()
                .rfind(|e| e["event"] == kind && e["line"] == 1)
                .cloned()
                .unwrap_or_default()
        };
        last("call")["state"] == "connected" && last("media")["direction"] == "sendrecv"
    };
    for _ in 0..15 {
        if settled(sb) {
            thread::sleep(secs(1));
            if settled(sb) {
                return;
            }
        }
        thread::sleep(secs(1));
    }
    panic!(
        "the operator's call did not come back to connected, sendrecv\n{}",
        sb.failure_report()
    );
}

/// The operator's `failed` transfer event for a target `user`.
fn failed_for(alice: &mut Switchboard, user: &str) -> serde_json::Value {
    let prefix = format!("sip:{user}@");
    alice.wait_event(secs(15), |e| {
        e["event"] == "transfer"
            && e["status"] == "failed"
            && e["target"].as_str().is_some_and(|t| t.starts_with(&prefix))
    })
}

/// A recording's length on disk now, in bytes (see [`audio::recorded_samples`]).
fn mark(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Samples `1.5 s .. 3.5 s` after a mark of `bytes`, read once the file is complete.
fn window(path: &Path, bytes: u64) -> (Vec<f32>, u32) {
    let spec = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .spec();
    let frame = u64::from(spec.bits_per_sample / 8) * u64::from(spec.channels);
    let at = usize::try_from(bytes.saturating_sub(44) / frame.max(1)).unwrap_or(usize::MAX);
    let rate = spec.sample_rate as usize;
    let (x, _) = read_wav(path);
    let (from, to) = (at + rate * 3 / 2, at + rate * 7 / 2);
    assert!(to <= x.len(), "{} ends too soon", path.display());
    (x[from..to].to_vec(), spec.sample_rate)
}

/// The recalls, played on an answered call between the operator and a phone; returns the
/// marks `(what, operator's mark, phone's mark)` taken after each.
fn recalls(
    alice: &mut Switchboard,
    alice_out: &Path,
    carol: &mut Switchboard,
    phone_out: Option<&Path>,
    (net, kam): (&Net, &Kamailio),
    blind_busy_and_absent: bool,
) -> Vec<(&'static str, u64, u64)> {
    let mut marks = Vec::new();
    let mut take = |what: &'static str, alice: &mut Switchboard| {
        talking_again(alice);
        thread::sleep(millis(300));
        marks.push((what, mark(alice_out), phone_out.map_or(0, mark)));
        thread::sleep(secs(4));
    };

    talking_again(alice);
    alice.send("transfer carol");
    carol.wait_for(secs(10), "incoming");
    carol.send("decline");
    let failed = failed_for(alice, "carol");
    assert_eq!(failed["status_code"], 603, "{failed}");
    take("blind, target declines", alice);

    if blind_busy_and_absent {
        let mut busy = busy_target(net, kam, hosts::SIPP, "erin");
        alice.send("transfer erin");
        let failed = failed_for(alice, "erin");
        assert_eq!(failed["status_code"], 486, "{failed}");
        take("blind, target busy", alice);
        busy.expect_pass(secs(5));

        alice.send("transfer nobody");
        failed_for(alice, "nobody");
        take("blind, target absent", alice);
    }

    alice.send("transfer carol");
    carol.wait_for(secs(10), "incoming");
    let failed = failed_for(alice, "carol");
    assert_eq!(failed["reason"], "target did not answer", "{failed}");
    // The phone goes on calling carol after the recall (it cannot know), and linphonec keeps
    // the operator on hold meanwhile (she says so: `remote_held`): carol declines it.
    carol.send("decline");
    take("blind, no answer", alice);

    alice.send("consult carol");
    let consulted = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming"
            && e["from"]
                .as_str()
                .is_some_and(|f| f.starts_with("sip:alice@"))
    });
    carol.send(&format!("answer {}", consulted["line"]));
    alice.wait_call_state(secs(10), 2, "connected");
    alice.send("cancel");
    take("attended, cancelled", alice);

    let mut busy = busy_target(net, kam, hosts::SIPP + 1, "frank");
    alice.send("consult frank");
    let failed = failed_for(alice, "frank");
    assert_eq!(failed["status_code"], 486, "{failed}");
    take("attended, target busy", alice);
    busy.expect_pass(secs(5));
    marks
}

/// Checks every window: the operator heard the phone's tone and, given its recording, the
/// phone the operator's.
fn assert_heard(alice_out: &Path, phone_out: Option<&Path>, marks: &[(&str, u64, u64)]) {
    for (what, at_alice, at_phone) in marks {
        let (a, a_rate) = window(alice_out, *at_alice);
        let alice_hears = audio::tone_level(&a, a_rate, f64::from(PHONE_HZ));
        println!("{what}: the operator hears the phone at {alice_hears:.3}");
        assert!(
            alice_hears > 0.05,
            "{what}: the operator does not hear the phone ({alice_hears:.3})"
        );
        if let Some(phone_out) = phone_out {
            let (p, p_rate) = window(phone_out, *at_phone);
            let phone_hears = audio::tone_level(&p, p_rate, OPERATOR_HZ);
            println!("{what}: the phone hears the operator at {phone_hears:.3}");
            assert!(
                phone_hears > 0.05,
                "{what}: the phone does not hear the operator ({phone_hears:.3})"
            );
        }
    }
}

/// A sipp UAS at host `n` registered as `user`, answering one call 486 Busy Here (sipp gives
/// up after 30 s: start it just before use).
fn busy_target(net: &Net, kam: &Kamailio, n: u8, user: &str) -> Sipp {
    let sipp = Sipp::uas(net, n, "uas_busy", &[]);
    sipp.register_at(kam, user, &format!("{user}pw"));
    sipp
}

/// kamailio with alice, bob, carol, and erin and frank (for [`busy_target`]).
fn lab(name: &str) -> (Net, Kamailio) {
    let net = Net::for_test(name);
    let kam = Kamailio::start(
        &net,
        &[
            ("alice", "alicepw"),
            ("bob", "bobpw"),
            ("carol", "carolpw"),
            ("erin", "erinpw"),
            ("frank", "frankpw"),
        ],
    );
    (net, kam)
}

#[test]
fn baresip_calling_the_operator_is_heard_after_every_recall() {
    let (net, kam) = lab("recalls_phones::baresip");
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, alice_out) = operator(&net, dir.path());
    let mut carol = carol(&net);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(PHONE_HZ),
            ..BaresipOptions::default()
        },
    );
    bob.wait_registered(secs(10));
    bob.dial(&format!("sip:alice@{}", kam.ip()));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    // baresip's sndfile stops writing what it hears at the first re-INVITE (its audio
    // pipeline is rebuilt; the file is not reopened), so only the operator's ear is checked
    // here; the switchboard caller (tests/p2p.rs) and linphonec are checked both ways.
    let marks = recalls(&mut alice, &alice_out, &mut carol, None, (&net, &kam), true);
    thread::sleep(millis(1_500)); // the last window on disk
    alice.send("hangup");
    bob.wait_log("session closed", secs(10));
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(carol.quit_and_wait(secs(10)).success());
    assert_heard(&alice_out, None, &marks);
}

#[test]
fn linphonec_calling_the_operator_is_heard_both_ways_after_each_recall() {
    let (net, kam) = lab("recalls_phones::linphonec");
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut alice, alice_out) = operator(&net, dir.path());
    let mut carol = carol(&net);
    let tone = audio::tone_wav(dir.path(), "bob.wav", PHONE_HZ, 120);
    let bob_out = dir.path().join("bob_out.wav");
    let bob = Linphonec::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        LinphonecOptions {
            play_file: Some(tone),
            record_file: Some(bob_out.clone()),
            ..LinphonecOptions::default()
        },
    );
    bob.wait_registered(secs(10));
    bob.command(&format!("call sip:alice@{}", kam.ip()));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    let marks = recalls(
        &mut alice,
        &alice_out,
        &mut carol,
        Some(&bob_out),
        (&net, &kam),
        // linphonec 5.1 keeps the operator on hold after its call to a busy target (always)
        // or to an absent one (about one run in two; it then refuses to resume: "There is
        // already a call in process"): the operator shows `remote_held` for good, so those
        // recalls cannot be talked through. baresip and switchboard callers cover them.
        false,
    );
    thread::sleep(millis(1_500)); // the last window on disk
    alice.send("hangup");
    alice.wait_call_state(secs(5), 1, "ended");
    thread::sleep(secs(1));
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(carol.quit_and_wait(secs(10)).success());
    assert_heard(&alice_out, Some(&bob_out), &marks);
}
