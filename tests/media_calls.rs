//! Voice end to end: two switchboard processes on loopback with file audio
//! (Opus and PCMU, clean and through an impairment relay), DTMF, music on
//! hold, and a call to a real phone (baresip) with audio both ways.

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::relay::{Ends, Impairment, Relay};
use common::signal::{
    after_onset, longest_gap_ms, median_ncc, mouth_to_ear_ms, read_wav, windows_heard,
    write_test_signal,
};
use common::{
    hosts, secs, Baresip, BaresipOptions, Capture, Kamailio, Net, Switchboard, SwitchboardConfig,
};

/// The host number of the second switchboard in the test's /24.
const CALLEE: u8 = 6;
/// The host number of the impairment relay.
const RELAY: u8 = 7;
/// RTP ports of the caller (line 1: 30000/30001, line 2: 30002/30003).
const CALLER_RTP: u16 = 30_000;
/// RTP ports of the callee (line 1: 31000/31001, line 2: 31002/31003).
const CALLEE_RTP: u16 = 31_000;

struct Pair {
    caller: Switchboard,
    callee: Switchboard,
    reference: Vec<f32>,
    callee_out: PathBuf,
    _dir: tempfile::TempDir,
}

/// The lines of an `[audio]` section for the file backend.
fn audio_toml(file_in: Option<&Path>, file_out: &Path, extra: &str) -> String {
    let mut s = String::from("backend = \"file\"\nfile_loop = true\n");
    if let Some(f) = file_in {
        s.push_str(&format!("file_in = \"{}\"\n", f.display()));
    }
    s.push_str(&format!("file_out = \"{}\"\n{extra}", file_out.display()));
    s
}

/// The `[network]` lines fixing RTP ports at `first` and, with a relay, advertising it.
fn media_network(first: u16, relay: Option<&str>) -> String {
    let mut lines = format!("rtp_port_min = {first}\nrtp_port_max = {}\n", first + 9);
    if let Some(addr) = relay {
        lines.push_str(&format!("media_address = \"{addr}\"\n"));
    }
    lines
}

/// Caller at .2 plays the test signal; callee at .6 records what it hears. With `relay`,
/// both advertise that address for RTP (the relay stands in for each towards the other).
fn call_pair(net: &Net, codec: &str, relay: Option<&str>, caller_extra: &str) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    let reference = write_test_signal(&signal, 3.0);
    let callee_out = dir.path().join("callee_out.wav");
    let caller_cfg = SwitchboardConfig::peer_to_peer(net)
        .with_codecs(&[codec])
        .with_audio(&audio_toml(
            Some(&signal),
            &dir.path().join("caller_out.wav"),
            caller_extra,
        ))
        .with_network(&media_network(CALLER_RTP, relay));
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(net).with_codecs(&[codec]);
    let ip = net.ip(CALLEE);
    callee_cfg = callee_cfg.at(ip, "bob");
    callee_cfg = callee_cfg
        .with_audio(&audio_toml(None, &callee_out, ""))
        .with_network(&media_network(CALLEE_RTP, relay));
    let callee_toml = callee_cfg.to_toml();
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_toml);
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    Pair {
        caller,
        callee,
        reference,
        callee_out,
        _dir: dir,
    }
}

/// Ends the call from the caller and stops both (the WAV is final then).
fn finish(pair: &mut Pair) {
    pair.caller.send("hangup");
    pair.callee.wait_call_state(secs(5), 1, "ended");
    assert!(pair.caller.quit_and_wait(secs(10)).success());
    assert!(pair.callee.quit_and_wait(secs(10)).success());
}

/// The callee's recording from 1 s after the first sound to its end, and where that
/// excerpt starts in the recording (samples).
fn heard(pair: &Pair) -> (Vec<f32>, usize) {
    let (out, rate) = read_wav(&pair.callee_out);
    assert_eq!(rate, 48_000);
    let (excerpt, start) = after_onset(&out).expect("the callee heard something");
    (excerpt.to_vec(), start)
}

/// How well the callee's recording matches the looping reference: the median over 0.5 s windows
/// ([`windows_heard`]). Prints the mouth-to-ear delay too (file in to file out, see
/// [`mouth_to_ear_ms`]).
fn correlation(pair: &Pair) -> f32 {
    let (heard, start) = heard(pair);
    let (lag_ms, windows) = windows_heard(&heard, &pair.reference);
    if let (Some(caller), Some(callee)) = (
        pair.caller.media_clock_start(),
        pair.callee.media_clock_start(),
    ) {
        let delay = mouth_to_ear_ms(caller, callee, start, lag_ms, pair.reference.len());
        println!("mouth-to-ear delay (file to file, jitter buffer included): {delay:.0} ms");
    }
    median_ncc("the callee heard the signal", &windows, 6)
}

#[test]
fn opus_call_between_two_switchboards_carries_the_signal() {
    let net = Net::for_test("media_calls::opus");
    let mut pair = call_pair(&net, "opus", None, "");
    let media = pair.caller.wait_for(secs(2), "media");
    assert_eq!(media["codec"], "opus");
    thread::sleep(Duration::from_secs(5));
    let quality = pair.callee.wait_for(secs(3), "quality");
    println!("callee quality: {quality}");
    assert_eq!(quality["loss_pct"], 0.0);
    finish(&mut pair);
    let ncc = correlation(&pair);
    assert!(ncc >= 0.9, "ncc {ncc}");
}

#[test]
fn pcmu_call_between_two_switchboards_carries_the_signal() {
    let net = Net::for_test("media_calls::pcmu");
    let mut pair = call_pair(&net, "pcmu", None, "");
    assert_eq!(pair.caller.wait_for(secs(2), "media")["codec"], "PCMU");
    thread::sleep(Duration::from_secs(5));
    finish(&mut pair);
    let ncc = correlation(&pair);
    assert!(ncc >= 0.9, "ncc {ncc}");
}

#[test]
fn opus_through_loss_and_jitter_stays_continuous_and_intelligible() {
    let net = Net::for_test("media_calls::impaired");
    let relay_ip = net.ip(RELAY);
    let relay = Relay::start(
        relay_ip,
        Ends {
            caller: (net.ip(hosts::SWITCHBOARD), CALLER_RTP).into(),
            callee: (net.ip(CALLEE), CALLEE_RTP).into(),
        },
        Impairment {
            loss: 0.05,
            jitter: Duration::from_millis(40),
        },
        0x5eed,
    );
    let mut pair = call_pair(&net, "opus", Some(&relay_ip.to_string()), "");
    thread::sleep(Duration::from_secs(8));
    finish(&mut pair);
    let stats = &relay.stats;
    let (fwd, dropped, back) = (
        stats.forwarded.load(std::sync::atomic::Ordering::Relaxed),
        stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        stats.returned.load(std::sync::atomic::Ordering::Relaxed),
    );
    println!("relay: {fwd} forwarded, {dropped} dropped, {back} returned");
    assert!(fwd > 300 && dropped > 5, "the relay carried the call");
    let (heard, _) = heard(&pair);
    let gap = longest_gap_ms(&heard, 0.0, heard.len() as f32 / 48_000.0 - 0.5, 0.003);
    println!("longest silent gap {gap:.1} ms");
    assert!(gap <= 100.0, "gap {gap} ms");
    let ncc = correlation(&pair);
    assert!(ncc >= 0.7, "ncc {ncc}");
}

#[test]
fn dtmf_digits_arrive_as_events_at_the_other_switchboard() {
    let net = Net::for_test("media_calls::dtmf");
    let mut pair = call_pair(&net, "pcmu", None, "");
    pair.caller.send("dtmf *1#");
    for digit in ["*", "1", "#"] {
        let ev = pair.callee.wait_event(secs(5), |e| e["event"] == "dtmf");
        assert_eq!(ev["digit"], digit, "{ev}");
    }
    pair.callee
        .expect_no_event(Duration::from_millis(500), |e| e["event"] == "dtmf");
    finish(&mut pair);
}

#[test]
fn the_held_party_hears_music_on_hold() {
    let net = Net::for_test("media_calls::moh");
    let moh = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/music_on_hold.wav");
    let extra = format!("music_on_hold = \"{}\"\n", moh.display());
    let mut pair = call_pair(&net, "opus", None, &extra);
    thread::sleep(Duration::from_secs(2));
    pair.caller.send("hold");
    pair.caller.wait_call_state(secs(5), 1, "held");
    pair.callee.wait_call_state(secs(5), 1, "remote_held");
    thread::sleep(Duration::from_secs(3));
    finish(&mut pair);
    let (heard, _) = heard(&pair);
    let tail = &heard[heard.len().saturating_sub(2 * 48_000)..];
    let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len().max(1) as f32).sqrt();
    println!("callee level while held: {rms:.4} RMS");
    assert!(rms > 0.01, "the held party hears something");
    // And what it hears is the music, not the operator's microphone (the caller's file keeps
    // playing the test signal): the shape of its spectrum follows the music's.
    let (music, music_rate) = read_wav(&moh);
    let music = &music[..music.len().min(8 * music_rate as usize)];
    let music_profile = band_profile(music, music_rate);
    let mic_profile = band_profile(&pair.reference, 48_000);
    let heard_profile = band_profile(tail, 48_000);
    let to_music = profile_similarity(&heard_profile, &music_profile);
    let to_mic = profile_similarity(&heard_profile, &mic_profile);
    println!("spectrum while held: {to_music:.2} like the music, {to_mic:.2} like the microphone");
    assert!(
        to_music > 0.8 && to_music > to_mic + 0.2,
        "the held party hears the music: {to_music:.2} like it, {to_mic:.2} like the microphone"
    );
    // The measure tells them apart: before the hold (2 s of talk, heard from about 1 s in)
    // the same ear heard the microphone.
    let before = band_profile(&heard[..heard.len().min(36_000)], 48_000);
    let (mic_before, music_before) = (
        profile_similarity(&before, &mic_profile),
        profile_similarity(&before, &music_profile),
    );
    println!("spectrum before the hold: {music_before:.2} like the music, {mic_before:.2} like the microphone");
    assert!(
        mic_before > music_before + 0.2,
        "before the hold: {mic_before:.2} like the microphone, {music_before:.2} like the music"
    );
}

/// A coarse spectrum whatever the level: the share of energy (dB, floored at -40 dB so that
/// codec noise in empty bands does not count) at 24 log-spaced frequencies from 150 Hz to
/// 3.4 kHz, summed over 20 ms frames (Goertzel).
fn band_profile(samples: &[f32], rate: u32) -> Vec<f32> {
    const BANDS: usize = 24;
    let frame = rate as usize / 50;
    let mut energy = [0.0f64; BANDS];
    for chunk in samples.chunks_exact(frame) {
        for (band, e) in energy.iter_mut().enumerate() {
            let hz = 150.0 * (3400.0f64 / 150.0).powf(band as f64 / (BANDS - 1) as f64);
            let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(rate)).cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for x in chunk {
                let s = f64::from(*x) + coeff * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            *e += s1 * s1 + s2 * s2 - coeff * s1 * s2;
        }
    }
    let total = energy.iter().sum::<f64>().max(1e-20);
    energy
        .iter()
        .map(|e| (10.0 * (e / total).max(1e-4).log10()) as f32)
        .collect()
}

/// Pearson correlation of two band profiles: 1 for the same spectral shape.
fn profile_similarity(a: &[f32], b: &[f32]) -> f32 {
    let mean = |x: &[f32]| x.iter().sum::<f32>() / x.len() as f32;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        ab += (x - ma) * (y - mb);
        aa += (x - ma) * (x - ma);
        bb += (y - mb) * (y - mb);
    }
    ab / (aa * bb).sqrt().max(1e-12)
}

#[test]
fn call_with_baresip_carries_audio_both_ways() {
    let net = Net::for_test("media_calls::baresip");
    call_baresip(&net, BaresipOptions::default(), None, false);
}

/// baresip calls us asking for 40 ms packets (`;ptime=40` gives its offer `a=ptime:40`), we
/// answer asking for 10 (`[codecs] ptime`): each end sends what the other asked for (baresip
/// follows a peer's a=ptime), and each plays the other's packets.
#[test]
fn call_with_baresip_sends_what_each_end_asks_for() {
    let net = Net::for_test("media_calls::baresip_ptime");
    let opts = BaresipOptions {
        extra_account_params: ";ptime=40".to_owned(),
        ..BaresipOptions::default()
    };
    let mut wire = Capture::start(&net);
    call_baresip(&net, opts, Some(10), true);
    // PCMU: one byte a sample at 8 kHz, so 8 bytes per ms after the 12-byte RTP header.
    // (baresip's packets may leave from 127.0.0.1: they are told by where they go.)
    let us = net.ip(hosts::SWITCHBOARD);
    let mut lengths = |filter: String| -> Vec<usize> {
        wire.rtp_fields(&format!("rtp.p_type == 0 && {filter}"), &["udp.length"])
            .iter()
            .filter_map(|f| f.first()?.parse::<usize>().ok())
            .map(|udp| (udp - 8 - 12) / 8)
            .collect()
    };
    let ours = lengths(format!("ip.src == {us}"));
    let theirs = lengths(format!("ip.dst == {us}"));
    println!(
        "packets: ours {} (ms: {:?}), baresip's {} (ms: {:?})",
        ours.len(),
        ours.iter().collect::<std::collections::BTreeSet<_>>(),
        theirs.len(),
        theirs.iter().collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        ours.len() > 50 && ours.iter().all(|&ms| ms == 40),
        "ours: {ours:?}"
    );
    assert!(theirs.len() > 200, "baresip's: {}", theirs.len());
    assert!(theirs.iter().all(|&ms| ms == 10), "baresip's: {theirs:?}");
}

/// A call between switchboard (file audio, `[codecs] ptime` when given) and a registered
/// baresip (a 1 kHz sine, recording what it hears) for 5 s, dialled by switchboard or, with
/// `they_dial`, by baresip: each hears the other.
fn call_baresip(net: &Net, opts: BaresipOptions, ptime: Option<u32>, they_dial: bool) {
    let kam = Kamailio::start(net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(net, "bob", "bobpw", kam.ip(), opts);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    let reference = write_test_signal(&signal, 3.0);
    let our_out = dir.path().join("heard.wav");
    let mut cfg = SwitchboardConfig::registering(net, "alice", "alicepw").with_audio(&audio_toml(
        Some(&signal),
        &our_out,
        "",
    ));
    if let Some(ms) = ptime {
        cfg = cfg.with_ptime(ms);
    }
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    if they_dial {
        bob.dial(&format!("sip:alice@{}", kam.ip()));
        sb.wait_for(secs(10), "incoming");
        sb.send("answer");
    } else {
        sb.send("dial bob");
    }
    sb.wait_call_state(secs(10), 1, "connected");
    thread::sleep(Duration::from_secs(5));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(sb.quit_and_wait(secs(10)).success());
    // We heard baresip's 1 kHz sine.
    let stat = common::audio::wav_stat(&our_out);
    println!("we heard: {stat:?}");
    let freq = stat["Rough frequency"];
    assert!((900.0..1100.0).contains(&freq), "{stat:?}");
    // baresip heard our signal.
    let recordings = bob.heard_recordings();
    let (theirs, rate) = read_wav(recordings.first().expect("baresip recorded the call"));
    let theirs: Vec<f32> = if rate == 8_000 {
        theirs
            .iter()
            .flat_map(|s| std::iter::repeat_n(*s, 6))
            .collect()
    } else {
        theirs
    };
    let onset = theirs
        .iter()
        .position(|s| s.abs() > 0.02)
        .expect("baresip heard us");
    let heard = &theirs[(onset + 48_000).min(theirs.len())..];
    let (_, windows) = windows_heard(heard, &reference);
    let ncc = median_ncc("baresip heard our signal", &windows, 6);
    assert!(ncc >= 0.7, "ncc {ncc}");
}
