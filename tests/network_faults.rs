//! switchboard on a bad network: 30 % of SIP datagrams lost in every direction (register,
//! call, hold, resume and blind transfer complete through retransmission), a 2-second cut of
//! the media path mid-call, and a flood of foreign RTP at our RTP port. (A registrar that
//! restarts is in `resilience.rs`.)

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::relay::{Ends, Impairment, Relay};
use common::sip_relay::{Party, SipRelay};
use common::{hosts, secs, Kamailio, Net, Switchboard, SwitchboardConfig};
use serde_json::Value;

/// bob's host in the test subnets.
const BOB: u8 = 6;
/// carol's host.
const CAROL: u8 = 7;
/// The SIP relay's aliases are the real host number plus this (.1 → .31, .2 → .32, ...), so
/// no address is a text prefix of another.
const ALIAS: u8 = 30;

/// The test's wall clock (integration tests watch real processes).
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

/// The next `transfer` event with `status`, within `timeout`.
fn transfer_status(sb: &mut Switchboard, timeout: Duration, status: &str) -> Value {
    sb.wait_event(timeout, |e| {
        e["event"] == "transfer" && e["status"] == status
    })
}

/// The relay party for host `n`: real `127.X.Y.n:5060`, alias `127.X.Y.(n+30):5060`.
fn party(net: &Net, n: u8) -> Party {
    Party {
        real: net.sip_addr(n),
        alias: net.sip_addr(n + ALIAS),
    }
}

/// A switchboard at host `n` registering `user` at kamailio's relay alias; its blind
/// transfers REFER and watch the NOTIFYs (`blind = "notify"`: the transferee calls the target).
fn behind_relay(net: &Net, n: u8, user: &str) -> Switchboard {
    let kamailio = net.ip(hosts::KAMAILIO + ALIAS);
    let mut cfg = SwitchboardConfig::registering(net, user, &format!("{user}pw"))
        .with_extra("[transfer]\nblind = \"notify\"");
    cfg.bind = net.sip_addr(n);
    cfg.accounts[0].domain = kamailio.to_string();
    cfg.accounts[0].registrar = Some(format!("sip:{kamailio}:5060"));
    let mut sb = Switchboard::start(&cfg.to_toml());
    // 30 % loss each way may drop every ACK of a 2xx until the caller's BYE.
    sb.expect_unacked_2xx();
    sb
}

#[test]
fn register_call_hold_resume_and_blind_transfer_survive_30_percent_sip_loss() {
    let net = Net::for_test("network_faults::sip_loss");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let parties = [
        party(&net, hosts::KAMAILIO),
        party(&net, hosts::SWITCHBOARD),
        party(&net, BOB),
        party(&net, CAROL),
    ];
    let relay = SipRelay::start(&parties, 0.30, 0x7e57_5eed);
    let start = clock();
    let mut alice = behind_relay(&net, hosts::SWITCHBOARD, "alice");
    let mut bob = behind_relay(&net, BOB, "bob");
    let mut carol = behind_relay(&net, CAROL, "carol");
    // One non-INVITE transaction lasts at most 32 s (timer F); a lost 401 or 200 costs a
    // retransmission, not the registration.
    for sb in [&mut alice, &mut bob, &mut carol] {
        sb.wait_for(secs(40), "registered");
    }
    let registered = start.elapsed();
    for (user, n) in [
        ("alice", hosts::SWITCHBOARD),
        ("bob", BOB),
        ("carol", CAROL),
    ] {
        let contacts = kam.wait_registered(user, secs(5));
        let alias = net.sip_addr(n + ALIAS).to_string();
        assert!(
            contacts.iter().all(|c| c.contains(&alias)),
            "{user}'s contact points at the relay ({alias}): {contacts:?}"
        );
    }

    alice.send("dial bob");
    bob.wait_for(secs(40), "incoming");
    bob.send("answer");
    let old = bob.wait_call_state(secs(40), 1, "connected");
    alice.wait_call_state(secs(40), 1, "connected");
    let connected = start.elapsed();

    alice.send("hold");
    alice.wait_call_state(secs(40), 1, "held");
    alice.send("resume");
    alice.wait_call_state(secs(40), 1, "connected");
    let resumed = start.elapsed();

    // Blind transfer: alice REFERs bob to carol; bob calls carol on line 2.
    alice.send("transfer carol");
    transfer_status(&mut alice, secs(5), "requested");
    // Two transactions in a row before carol rings (alice's REFER to bob, then bob's INVITE),
    // each of which may take up to timer F/B (32 s) through this loss.
    carol.wait_for(secs(64), "incoming");
    carol.send("answer");
    let new = bob.wait_call_state(secs(40), 2, "connected");
    assert_ne!(new["call_id"], old["call_id"]);
    carol.wait_call_state(secs(40), 1, "connected");
    transfer_status(&mut alice, secs(40), "succeeded");
    alice.wait_call_state(secs(40), 1, "ended");
    bob.wait_event(secs(40), |e| {
        e["event"] == "call" && e["state"] == "ended" && e["call_id"] == old["call_id"]
    });
    let transferred = start.elapsed();

    bob.send("hangup 2");
    carol.wait_call_state(secs(40), 1, "ended");
    bob.wait_call_state(secs(40), 2, "ended");
    let (seen, dropped, forwarded, repeats) = relay.stats.snapshot();
    println!(
        "SIP relay: {seen} datagrams seen, {dropped} dropped ({:.1} %), {forwarded} forwarded, \
         {repeats} retransmissions; registered after {registered:?}, connected after \
         {connected:?}, held and resumed after {resumed:?}, transferred after {transferred:?}, \
         all done after {:?}",
        100.0 * dropped as f64 / seen.max(1) as f64,
        start.elapsed()
    );
    assert!(
        dropped * 5 >= seen,
        "the loss was real: {dropped} of {seen} dropped"
    );
    assert!(repeats > 0, "retransmissions carried the day");
    assert_eq!(relay.stats.strangers.load(Ordering::Relaxed), 0);
    for sb in [&mut alice, &mut bob, &mut carol] {
        assert!(sb.quit_and_wait(secs(40)).success());
    }
}

/// The impairment relay's host (RTP).
const RTP_RELAY: u8 = 8;
/// RTP ports of the caller (line 1: 30000/30001).
const CALLER_RTP: u16 = 30_000;
/// RTP ports of the callee (line 1: 31000/31001).
const CALLEE_RTP: u16 = 31_000;
/// The tone the sending side plays, in Hz.
const TONE_HZ: f32 = 1_000.0;
/// The tone the foreign RTP flood carries, in Hz: not a harmonic of `TONE_HZ`, which PCMU's
/// quantisation of a steady tone produces.
const FOREIGN_HZ: f32 = 2_500.0;
/// The rate of the tone file and of the recordings.
const RATE: u32 = 48_000;
/// Analysis window: 100 ms, a whole number of tone periods.
const WINDOW: usize = 4_800;

/// Writes one second of a `TONE_HZ` sine at half scale (48 kHz mono 16-bit): it loops
/// without a seam.
fn write_tone(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating the tone");
    for i in 0..RATE {
        let t = i as f32 / RATE as f32;
        let s = 0.5 * (2.0 * std::f32::consts::PI * TONE_HZ * t).sin();
        w.write_sample((s * 32_767.0) as i16)
            .expect("writing the tone");
    }
    w.finalize().expect("finishing the tone");
}

/// One 100 ms window of a recording: its level and how much of it is the tone.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Its RMS level (full scale 1.0).
    rms: f32,
    /// The RMS of what is left once the best-fitting `TONE_HZ` sine is taken out.
    residual: f32,
    /// The RMS of its `FOREIGN_HZ` component: the flood's tone.
    foreign: f32,
}

/// The recording cut in 100 ms windows, each fitted with a `TONE_HZ` sine (least squares
/// over a whole number of periods: the in-phase and quadrature amplitudes) and measured at
/// `FOREIGN_HZ`.
fn windows(samples: &[f32]) -> Vec<Window> {
    samples
        .chunks_exact(WINDOW)
        .map(|w| {
            let n = WINDOW as f64;
            let energy = w.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / n;
            let tone = sine_power(w, TONE_HZ);
            Window {
                rms: energy.sqrt() as f32,
                residual: (energy - tone).max(0.0).sqrt() as f32,
                foreign: sine_power(w, FOREIGN_HZ).sqrt() as f32,
            }
        })
        .collect()
}

/// The power of the best-fitting sine at `hz` in `w` (a whole number of its periods).
fn sine_power(w: &[f32], hz: f32) -> f64 {
    let (mut c, mut s) = (0.0f64, 0.0f64);
    for (n, x) in w.iter().enumerate() {
        let phase = 2.0 * std::f64::consts::PI * f64::from(hz) * n as f64 / f64::from(RATE);
        c += f64::from(*x) * phase.cos();
        s += f64::from(*x) * phase.sin();
    }
    let n = w.len() as f64;
    let (a, b) = (2.0 * c / n, 2.0 * s / n);
    (a * a + b * b) / 2.0
}

/// The `[audio]` lines: the file backend playing `file_in` (if any), recording `file_out`.
fn file_audio(file_in: Option<&Path>, file_out: &Path) -> String {
    let mut s = String::from("backend = \"file\"\nfile_loop = true\n");
    if let Some(f) = file_in {
        s.push_str(&format!("file_in = \"{}\"\n", f.display()));
    }
    s.push_str(&format!("file_out = \"{}\"\n", file_out.display()));
    s
}

/// A PCMU call from the caller (.2, RTP port 30000) to the callee (.6, RTP port 31000),
/// both with file audio; with `media_address`, both advertise it for RTP.
fn tone_call(
    net: &Net,
    caller_audio: &str,
    callee_audio: &str,
    media_address: Option<&str>,
    extra: &str,
) -> (Switchboard, Switchboard) {
    let network = |first: u16| {
        let mut lines = format!("rtp_port_min = {first}\nrtp_port_max = {}\n", first + 9);
        if let Some(addr) = media_address {
            lines.push_str(&format!("media_address = \"{addr}\"\n"));
        }
        lines
    };
    let caller_cfg = SwitchboardConfig::peer_to_peer(net)
        .with_codecs(&["pcmu"])
        .with_audio(caller_audio)
        .with_network(&network(CALLER_RTP))
        .with_extra(extra);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(net)
        .with_codecs(&["pcmu"])
        .with_audio(callee_audio)
        .with_network(&network(CALLEE_RTP))
        .with_extra(extra);
    let ip = net.ip(BOB);
    callee_cfg = callee_cfg.at(ip, "bob");
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    (caller, callee)
}

/// Hangs up from the caller and stops both, so the recordings are final.
fn hang_up(caller: &mut Switchboard, callee: &mut Switchboard) {
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());
}

/// The recording at `path` as 48 kHz samples.
fn recording(path: &Path) -> Vec<f32> {
    let (samples, rate) = common::signal::read_wav(path);
    assert_eq!(rate, RATE, "recordings are 48 kHz");
    samples
}

#[test]
fn a_two_second_network_cut_leaves_the_call_up_and_the_tone_comes_back() {
    let net = Net::for_test("network_faults::cut");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone.wav");
    write_tone(&tone);
    let heard = dir.path().join("callee_heard.wav");
    let relay_ip = net.ip(RTP_RELAY);
    let relay = Relay::start(
        relay_ip,
        Ends {
            caller: (net.ip(hosts::SWITCHBOARD), CALLER_RTP).into(),
            callee: (net.ip(BOB), CALLEE_RTP).into(),
        },
        Impairment {
            loss: 0.0,
            jitter: Duration::ZERO,
        },
        1,
    );
    // An RTP timeout longer than the cut but short enough that a wrong one would fire.
    let (mut caller, mut callee) = tone_call(
        &net,
        &file_audio(Some(&tone), &dir.path().join("caller_heard.wav")),
        &file_audio(None, &heard),
        Some(&relay_ip.to_string()),
        "[media]\nrtp_timeout = 3\n",
    );
    thread::sleep(Duration::from_secs(3));
    relay.cut(true);
    thread::sleep(Duration::from_secs(2));
    relay.cut(false);
    let lost = relay.stats.cut.load(Ordering::Relaxed);
    // The call stays up through the cut and for a while after it.
    let ended = |e: &Value| e["event"] == "call" && e["state"] == "ended";
    caller.expect_no_event(secs(3), ended);
    callee.expect_no_event(Duration::ZERO, ended);
    hang_up(&mut caller, &mut callee);

    let windows = windows(&recording(&heard));
    let toned = |w: &Window| w.rms > 0.1 && w.residual < 0.25 * w.rms;
    let first = windows
        .iter()
        .position(toned)
        .expect("the callee heard the tone");
    // The longest run of silent windows after the tone started: the cut.
    let (mut run, mut longest, mut end_of_gap) = (0, 0, 0);
    for (i, w) in windows.iter().enumerate().skip(first) {
        if w.rms < 0.01 {
            run += 1;
            if run > longest {
                longest = run;
                end_of_gap = i + 1;
            }
        } else {
            run = 0;
        }
    }
    let after: Vec<&Window> = windows[end_of_gap..].iter().collect();
    let toned_after = after.iter().filter(|w| toned(w)).count();
    println!(
        "relay lost {lost} packets to the cut; the callee heard silence for {} ms, then \
         {toned_after} of {} windows of tone",
        longest * 100,
        after.len()
    );
    assert!(lost > 150, "the cut was real: {lost} packets lost");
    assert!(
        (15..=30).contains(&longest),
        "about 2 s of silence: {} ms",
        longest * 100
    );
    // Tone again after the cut, for at least 2 s (the 3 s watch, less the jitter buffer
    // refilling and the end of the call).
    assert!(
        toned_after >= 20,
        "{toned_after} windows of tone after the cut"
    );
}

#[test]
fn a_flood_of_foreign_rtp_leaves_the_tone_clean() {
    let net = Net::for_test("network_faults::rtp_flood");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone.wav");
    write_tone(&tone);
    let heard = dir.path().join("caller_heard.wav");
    let (mut caller, mut callee) = tone_call(
        &net,
        &file_audio(None, &heard),
        &file_audio(Some(&tone), &dir.path().join("callee_heard.wav")),
        None,
        "",
    );
    thread::sleep(Duration::from_secs(2));
    let target: SocketAddr = (net.ip(hosts::SWITCHBOARD), CALLER_RTP).into();
    let flood_start = clock();
    let sent = flood(&net, target, Duration::from_secs(2));
    let flood_secs = flood_start.elapsed().as_secs_f32();
    thread::sleep(Duration::from_secs(2));
    let ended = |e: &Value| e["event"] == "call" && e["state"] == "ended";
    caller.expect_no_event(Duration::ZERO, ended);
    hang_up(&mut caller, &mut callee);

    let windows = windows(&recording(&heard));
    let first = windows
        .iter()
        .position(|w| w.rms > 0.1)
        .expect("the caller heard the tone");
    // From 0.5 s after the tone began to 0.5 s before the end: the flood is in there.
    let judged = &windows[first + 5..windows.len().saturating_sub(5)];
    let residuals: Vec<f32> = judged
        .iter()
        .map(|w| w.residual / w.rms.max(1e-6))
        .collect();
    let mut sorted = residuals.clone();
    sorted.sort_by(f32::total_cmp);
    let median_residual = sorted[sorted.len() / 2];
    let noisy = residuals.iter().filter(|r| **r > 0.08).count();
    let worst_foreign = judged
        .iter()
        .map(|w| w.foreign / w.rms.max(1e-6))
        .fold(0.0f32, f32::max);
    let (min_rms, max_rms) = judged.iter().fold((f32::MAX, 0.0f32), |(lo, hi), w| {
        (lo.min(w.rms), hi.max(w.rms))
    });
    println!(
        "{sent} foreign packets in {flood_secs:.1} s; over {} windows the tone's level stayed \
         {min_rms:.3}..{max_rms:.3} RMS, the flood's 2.5 kHz was at most {:.2} % of it, what is \
         not the tone was {:.1} % in the median window and over 8 % in {noisy} (worst {:.1} %)",
        judged.len(),
        100.0 * worst_foreign,
        100.0 * median_residual,
        100.0 * sorted[sorted.len() - 1]
    );
    assert!(sent >= 1_500, "the flood was real: {sent} packets");
    assert!(judged.len() >= 40, "{} windows judged", judged.len());
    // The tone is at 0.5 peak (0.354 RMS); PCMU keeps it within a few per cent.
    assert!(min_rms > 0.3 && max_rms < 0.4, "{min_rms}..{max_rms}");
    // One foreign frame (20 ms of a near full-scale 2.5 kHz square wave) in a 100 ms window
    // would put its 2.5 kHz part near the tone's own level; a concealed frame or a jitter
    // buffer step of our own stream puts none there.
    assert!(
        worst_foreign < 0.02,
        "the flood's tone was heard: {worst_foreign}"
    );
    // Foreign noise would stay through the 2 s flood (20 windows); PCMU's quantisation noise
    // is ~2 %. A busy machine may conceal a frame of our own stream, whose phase step fails
    // one window's sine fit: one or two such windows are allowed, not the flood's twenty.
    assert!(
        median_residual < 0.03,
        "median non-tone part {median_residual}"
    );
    assert!(noisy <= 2, "{noisy} windows with over 8 % non-tone");
}

/// Sends 1000 packets a second to `target` for `duration` from the tools host: odd ones
/// junk, even ones well-formed PCMU RTP with another SSRC carrying a loud `FOREIGN_HZ` tone.
/// Returns how many were sent.
fn flood(net: &Net, target: SocketAddr, duration: Duration) -> u64 {
    let socket = std::net::UdpSocket::bind((net.ip(hosts::TOOLS), 0)).expect("flood socket");
    let start = clock();
    let (mut sent, mut seq, mut junk) = (0u64, 0u16, 0x9e37_79b9u32);
    while start.elapsed() < duration {
        let mut packet = Vec::with_capacity(172);
        if sent % 2 == 0 {
            packet.extend_from_slice(&[0x80, 0x00]);
            packet.extend_from_slice(&seq.to_be_bytes());
            packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            // u-law of a 2.5 kHz square wave near full scale (5 periods in 16 samples at
            // 8 kHz): 0x80 is +max, 0x00 -max.
            packet.extend((0..160).map(|i| if (i * 5 / 8) % 2 == 0 { 0x80 } else { 0x00 }));
            seq = seq.wrapping_add(1);
        } else {
            packet.extend((0..172).map(|_| {
                junk ^= junk << 13;
                junk ^= junk >> 17;
                junk ^= junk << 5;
                junk as u8
            }));
        }
        let _ = socket.send_to(&packet, target);
        sent += 1;
        // 1 ms apart, on a schedule (catching up if a sleep ran long).
        let next = Duration::from_millis(sent);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
    sent
}
