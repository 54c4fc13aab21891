//! The operator's voice end to end: G.722 wideband with a real phone (baresip's `g722`
//! module) and between two switchboards (DTMF alongside), and noise suppression measured on
//! speech in babble at 5 dB SNR through a real call.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::signal::read_wav;
use common::{
    secs, AudioSource, Baresip, BaresipOptions, Kamailio, Linphonec, LinphonecOptions, Net,
    Switchboard, SwitchboardConfig,
};

/// The host number of the second switchboard in the test's /24.
const CALLEE: u8 = 6;

/// The two noise tests take turns: judging a recording is heavy in a debug build, and a
/// starved media thread skips ticks in the other test's call.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The `[audio]` lines of the file backend.
fn audio_toml(file_in: Option<&Path>, file_out: &Path, extra: &str) -> String {
    let mut s = String::from("backend = \"file\"\nfile_loop = true\n");
    if let Some(f) = file_in {
        s.push_str(&format!("file_in = \"{}\"\n", f.display()));
    }
    s.push_str(&format!("file_out = \"{}\"\n{extra}", file_out.display()));
    s
}

/// Writes a 48 kHz mono WAV of a sine at `hz`, amplitude 0.4 full scale, `seconds` long.
fn tone_48k(path: &Path, hz: f32, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating a tone");
    for n in 0..(seconds * 48_000.0) as usize {
        let s = 0.4 * (2.0 * std::f32::consts::PI * hz * n as f32 / 48_000.0).sin();
        w.write_sample((s * 32_767.0) as i16).expect("writing");
    }
    w.finalize().expect("finishing a tone");
}

/// Level (dB re full scale, RMS) of the component at `hz` in `x` (Goertzel over the whole
/// slice), and of all of `x`.
fn tone_and_total_db(x: &[f32], rate: u32, hz: f32) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len().max(1) as f64;
    // A sine of amplitude A gives power (A·n/2)²: its RMS is A/√2.
    let amplitude = 2.0 * power.max(0.0).sqrt() / n;
    let tone_rms = amplitude / 2f64.sqrt();
    let total_rms = (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt();
    (
        20.0 * tone_rms.max(1e-9).log10(),
        20.0 * total_rms.max(1e-9).log10(),
    )
}

/// The middle of a recording: from `skip` seconds after the first sound, `len` seconds.
fn steady(x: &[f32], rate: u32, skip: f32, len: f32) -> &[f32] {
    let onset = x.iter().position(|s| s.abs() > 0.02).unwrap_or(x.len());
    let start = (onset + (skip * rate as f32) as usize).min(x.len());
    let end = (start + (len * rate as f32) as usize).min(x.len());
    &x[start..end]
}

#[test]
fn g722_call_with_baresip_is_wideband_both_ways() {
    let net = Net::for_test("voice::g722_baresip");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(6_000),
            codecs: "G722".to_owned(),
            extra_config: vec!["module\t\t\tg722.so".to_owned()],
            ..BaresipOptions::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone6k.wav");
    tone_48k(&tone, 6_000.0, 3.0);
    let our_out = dir.path().join("heard.wav");
    let cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["g722", "pcmu"])
        .with_audio(&audio_toml(Some(&tone), &our_out, ""));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    sb.send("dial bob");
    let media = sb.wait_for(secs(10), "media");
    assert_eq!(
        (media["codec"].as_str(), media["payload_type"].as_u64()),
        (Some("G722"), Some(9)),
        "{media}"
    );
    sb.wait_call_state(secs(10), 1, "connected");
    thread::sleep(Duration::from_secs(4));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(sb.quit_and_wait(secs(10)).success());

    // We heard baresip's 6 kHz sine: above G.711's 4 kHz band edge.
    let (ours, rate) = read_wav(&our_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&ours, rate, 0.5, 2.0), rate, 6_000.0);
    println!("we heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        tone_db > -30.0,
        "no 6 kHz tone from baresip: {tone_db:.1} dBFS"
    );
    assert!(
        total_db - tone_db < 3.0,
        "the 6 kHz tone is not what we heard: {tone_db:.1} of {total_db:.1} dBFS"
    );
    // baresip heard our 6 kHz sine (sent at 0.4 full scale, −11 dBFS RMS).
    let recordings = bob.heard_recordings();
    let (theirs, rate) = read_wav(recordings.first().expect("baresip recorded the call"));
    assert_eq!(rate, 16_000, "baresip decoded at G.722's 16 kHz");
    let (tone_db, total_db) = tone_and_total_db(steady(&theirs, rate, 0.5, 2.0), rate, 6_000.0);
    println!("baresip heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    // (A loaded machine's media clock can skip a tick, a short gap: hence the margins. G.711
    // would leave nothing: below −40 dB.)
    assert!(
        (-20.0..-8.0).contains(&tone_db),
        "baresip heard 6 kHz at {tone_db:.1} dBFS, sent at −11"
    );
    assert!(total_db - tone_db < 3.0, "{tone_db:.1} of {total_db:.1}");
}

#[test]
fn g722_between_two_switchboards_carries_dtmf_at_8khz() {
    let net = Net::for_test("voice::g722_dtmf");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone6k.wav");
    tone_48k(&tone, 6_000.0, 3.0);
    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["g722"])
        .with_audio(&audio_toml(
            Some(&tone),
            &dir.path().join("caller_out.wav"),
            "",
        ));
    let callee_out = dir.path().join("callee_out.wav");
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net).with_codecs(&["opus", "g722"]);
    let ip = net.ip(CALLEE);
    callee_cfg = callee_cfg.at(ip, "bob");
    callee_cfg = callee_cfg.with_audio(&audio_toml(None, &callee_out, ""));
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    let media = callee.wait_for(secs(5), "media");
    assert_eq!(media["codec"], "G722", "{media}");
    // telephone-event at G.722's 8000 RTP clock (RFC 4733 §2.1), PT 101.
    assert_eq!(media["dtmf_payload_type"], 101, "{media}");
    // Two seconds of tone before the digits (the callee's recording is measured there).
    thread::sleep(Duration::from_secs(2));
    caller.send("dtmf 5#");
    for digit in ["5", "#"] {
        let ev = callee.wait_event(secs(5), |e| e["event"] == "dtmf");
        assert_eq!(ev["digit"], digit, "{ev}");
    }
    thread::sleep(Duration::from_secs(1));
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());
    let (heard, rate) = read_wav(&callee_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&heard, rate, 0.3, 1.0), rate, 6_000.0);
    println!("the callee heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        (-20.0..-8.0).contains(&tone_db) && total_db - tone_db < 3.0,
        "6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS, sent at −11"
    );
}

/// Runs `program args…` to completion within 30 s; panics with its stderr on failure.
fn run_tool(program: &str, args: &[&str]) {
    let tool = common::require_tool(program, program);
    let done = common::process::run_bounded(
        std::process::Command::new(tool).args(args),
        Duration::from_secs(30),
    );
    assert!(done.success(), "{program} {args:?} failed: {}", done.stderr);
}

/// Clean speech for the noise test, 48 kHz: three espeak-ng phrases, each followed by 0.8 s
/// of silence (the pauses where noise is measured).
fn clean_speech(dir: &Path) -> Vec<f32> {
    let phrases = [
        "Good morning, thank you for calling the support desk.",
        "Could you give me your customer number, please?",
        "I am putting you through to a colleague now.",
    ];
    let mut speech = Vec::new();
    for (i, phrase) in phrases.iter().enumerate() {
        let raw = dir.join(format!("phrase{i}.wav"));
        let resampled = dir.join(format!("phrase{i}_48k.wav"));
        let raw_s = raw.to_string_lossy().into_owned();
        let res_s = resampled.to_string_lossy().into_owned();
        run_tool("espeak-ng", &["-w", &raw_s, phrase]);
        run_tool(
            "sox",
            &[&raw_s, "-r", "48000", "-c", "1", "-b", "16", &res_s],
        );
        let (x, rate) = read_wav(&resampled);
        assert_eq!(rate, 48_000);
        speech.extend_from_slice(&x);
        speech.extend(std::iter::repeat_n(0.0, 38_400));
    }
    // Speech at about −20 dBFS RMS while talking, so that speech plus noise never clips.
    let active = frame_rms(&speech)
        .into_iter()
        .filter(|&r| r > 1e-3)
        .map(|r| r * r)
        .collect::<Vec<_>>();
    let level = (active.iter().sum::<f32>() / active.len().max(1) as f32).sqrt();
    let gain = 0.1 / level.max(1e-6);
    speech.iter().map(|s| s * gain).collect()
}

/// Office noise, 48 kHz, `len` samples: pink noise, band-limited like a room's air handling
/// and murmur, its level wandering slowly (sox).
fn office_noise(dir: &Path, len: usize) -> Vec<f32> {
    let path = dir.join("noise.wav");
    let seconds = format!("{}", len as f32 / 48_000.0 + 0.1);
    let p = path.to_string_lossy().into_owned();
    run_tool(
        "sox",
        &[
            "-n",
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            &p,
            "synth",
            &seconds,
            "pinknoise",
            "highpass",
            "100",
            "lowpass",
            "5000",
            "tremolo",
            "0.4",
            "30",
            "vol",
            "0.3",
        ],
    );
    let (mut x, _) = read_wav(&path);
    x.resize(len, 0.0);
    x
}

/// RMS of each 10 ms block (480 samples at 48 kHz).
fn frame_rms(x: &[f32]) -> Vec<f32> {
    x.chunks(480)
        .map(|c| (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt())
        .collect()
}

fn rms(x: impl Iterator<Item = f32>) -> f32 {
    let (sum, n) = x.fold((0.0f64, 0usize), |(s, n), v| (s + f64::from(v * v), n + 1));
    (sum / n.max(1) as f64).sqrt() as f32
}

/// Where in the looping `clean` (period `clean.len()`) the excerpt `heard` starts: the shift
/// (samples) that best lines their 10 ms envelopes up, refined on the samples; with the
/// envelopes' correlation there (how sure the match is).
fn loop_offset(heard: &[f32], clean: &[f32]) -> (usize, f32) {
    let period = clean.len();
    let env_h = frame_rms(heard);
    let env_c = frame_rms(&clean[..period / 480 * 480]);
    let blocks = env_c.len();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
    let mh = mean(&env_h);
    let mut best = (f32::MIN, 0usize);
    for shift in 0..blocks {
        let seg: Vec<f32> = (0..env_h.len())
            .map(|i| env_c[(i + shift) % blocks])
            .collect();
        let mc = mean(&seg);
        let (mut x, mut xx, mut yy) = (0.0f32, 0.0f32, 0.0f32);
        for (h, c) in env_h.iter().zip(&seg) {
            x += (h - mh) * (c - mc);
            xx += (h - mh) * (h - mh);
            yy += (c - mc) * (c - mc);
        }
        let ncc = x / (xx * yy).sqrt().max(1e-12);
        if ncc > best.0 {
            best = (ncc, shift);
        }
    }
    let coarse = best.1 * 480;
    // Refine within ±12 ms.
    let mut fine = (f32::MIN, coarse);
    for delta in -576i64..=576 {
        let offset = (coarse as i64 + delta).rem_euclid(period as i64) as usize;
        let score: f32 = (0..heard.len())
            .step_by(3)
            .map(|i| heard[i] * clean[(i + offset) % period])
            .sum();
        if score > fine.0 {
            fine = (score, offset);
        }
    }
    (fine.1, best.0)
}

/// What the far end heard of `clean` (+ `noise` where it was sent) in `heard`, a recording of
/// the looping noisy speech: (noise in the pauses, dB relative to the noise sent there;
/// correlation with the clean speech while it speaks). Each 1 s chunk is lined up with the
/// loop on its own (a loaded machine's media clocks can skip ticks: the streams then jump);
/// chunks whose envelope does not match `sent` (what should be heard) well (correlation
/// < 0.7), or whose second half lines up elsewhere (a skip inside), are left out.
fn judge(heard: &[f32], clean: &[f32], noise: &[f32], sent: &[f32]) -> (f32, f32) {
    const CHUNK: usize = 48_000;
    let period = clean.len();
    let env = frame_rms(clean);
    let blocks = env.len();
    // A 10 ms block is a pause when no speech lies within 150 ms of it.
    let pause: Vec<bool> = (0..blocks)
        .map(|b| (0..31).all(|d| env[(b + blocks + d - 15) % blocks] < 1e-3))
        .collect();
    let speaking: Vec<bool> = env.iter().map(|&e| e > 0.02).collect();
    let (mut heard_pause, mut sent_pause, mut pause_n) = (0.0f64, 0.0f64, 0usize);
    let (mut hc, mut hh, mut cc) = (0.0f64, 0.0f64, 0.0f64);
    let mut used = 0;
    for chunk in heard.chunks_exact(CHUNK) {
        // Lined up as a whole and by its second half alone, the same way: no skipped tick
        // inside it.
        let (offset, sure) = loop_offset(chunk, sent);
        let (second, sure_second) = loop_offset(&chunk[CHUNK / 2..], sent);
        let drift = (second + period - (offset + CHUNK / 2) % period) % period;
        if sure < 0.7 || sure_second < 0.4 || (480..period - 480).contains(&drift) {
            continue;
        }
        used += 1;
        for (i, &h) in chunk.iter().enumerate() {
            let k = (i + offset) % period;
            let b = (k / 480).min(blocks - 1);
            if pause[b] {
                heard_pause += f64::from(h * h);
                sent_pause += f64::from(noise[k] * noise[k]);
                pause_n += 1;
            }
        }
        // Speech: 100 ms windows while it speaks, each lined up again within ±25 ms (a
        // skipped tick moves the stream by a frame).
        for start in (1_200..CHUNK - 4_800 - 1_200).step_by(4_800) {
            let k0 = (start + offset) % period;
            if !(0..4_800).all(|i| speaking[(((k0 + i) % period) / 480).min(blocks - 1)]) {
                continue;
            }
            let mut best = (f64::MIN, 0.0, 0.0, 0.0);
            for shift in -1_200i64..=1_200 {
                let (mut x, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
                for i in (0..4_800).step_by(3) {
                    let h = f64::from(chunk[(start as i64 + i as i64 + shift) as usize]);
                    let c = f64::from(clean[(k0 + i) % period]);
                    x += h * c;
                    xx += h * h;
                    yy += c * c;
                }
                let ncc = x / (xx * yy).sqrt().max(1e-12);
                if ncc > best.0 {
                    best = (ncc, x, xx, yy);
                }
            }
            hc += best.1;
            hh += best.2;
            cc += best.3;
        }
    }
    println!(
        "{used} of {} chunks lined up; {:.1} s of pauses",
        heard.len() / CHUNK,
        pause_n as f32 / 48_000.0
    );
    assert!(used >= 2 && pause_n > 24_000, "too little to judge");
    let ncc = (hc / (hh * cc).sqrt().max(1e-12)) as f32;
    (
        10.0 * (heard_pause / sent_pause.max(1e-12)).log10() as f32,
        ncc,
    )
}

/// Clean speech, office noise scaled to 5 dB SNR, and the file of their sum.
fn noisy_speech(dir: &Path) -> (Vec<f32>, Vec<f32>, std::path::PathBuf) {
    let clean = clean_speech(dir);
    let noise = office_noise(dir, clean.len());
    // Speech power while talking against the noise's power.
    let talking = rms(frame_rms(&clean).into_iter().filter(|&r| r > 1e-3));
    let noise_gain = talking / rms(noise.iter().copied()) / 10f32.powf(5.0 / 20.0);
    let noise: Vec<f32> = noise.iter().map(|n| n * noise_gain).collect();
    let path = dir.join("noisy.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("creating the noisy speech");
    for (c, n) in clean.iter().zip(&noise) {
        w.write_sample(((c + n) * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
            .expect("writing");
    }
    w.finalize().expect("finishing the noisy speech");
    (clean, noise, path)
}

#[test]
fn noise_suppression_on_the_media_thread_meets_its_figures() {
    let _turn = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    use switchboard::media::voice::{MicCleanup, VoiceSettings};
    let dir = tempfile::tempdir().expect("tempdir");
    let (clean, noise, _) = noisy_speech(dir.path());
    let mut cleanup = MicCleanup::new(VoiceSettings {
        noise_suppression: true,
        agc: false,
    });
    // Three loops through the clean-up, as the media thread would, a frame at a time; the
    // last two are judged (the network has settled by then).
    const F: usize = switchboard::media::FRAME_SAMPLES;
    let period = clean.len() / F * F;
    let mut out = Vec::with_capacity(3 * period);
    let mut frame = [0i16; F];
    for k in 0..3 * period / F {
        for (j, s) in frame.iter_mut().enumerate() {
            let i = (k * F + j) % clean.len();
            *s = ((clean[i] + noise[i]) * 32_767.0).clamp(-32_768.0, 32_767.0) as i16;
        }
        cleanup.process(&mut frame);
        out.extend(frame.iter().map(|&s| f32::from(s) / 32_768.0));
    }
    let (pause_db, ncc) = judge(&out[period..3 * period], &clean, &noise, &clean);
    println!(
        "noise suppression alone: noise in pauses {pause_db:.1} dB, speech correlation {ncc:.3}"
    );
    assert!(
        pause_db <= -15.0,
        "noise in the pauses only {pause_db:.1} dB down"
    );
    assert!(ncc >= 0.8, "speech correlation {ncc:.3}");
}

#[test]
fn noise_suppression_takes_office_noise_out_of_the_pauses_and_keeps_the_speech() {
    let _turn = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let net = Net::for_test("voice::noise");
    let dir = tempfile::tempdir().expect("tempdir");
    let (clean, noise, noisy) = noisy_speech(dir.path());
    let period_s = clean.len() as f32 / 48_000.0;
    println!("speech {period_s:.1} s looped, office noise mixed at 5 dB SNR");

    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["g722"])
        .with_audio(&audio_toml(
            Some(&noisy),
            &dir.path().join("caller_out.wav"),
            "noise_suppression = true\n",
        ));
    let callee_out = dir.path().join("callee_out.wav");
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net).with_codecs(&["g722"]);
    let ip = net.ip(CALLEE);
    callee_cfg = callee_cfg.at(ip, "bob");
    callee_cfg = callee_cfg.with_audio(&audio_toml(None, &callee_out, ""));
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    let voice = caller.wait_for(secs(10), "voice");
    assert_eq!(
        (&voice["noise_suppression"], &voice["agc"]),
        (&true.into(), &false.into()),
        "{voice}"
    );
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    // One loop and a second with noise suppression on, then one loop and two seconds off.
    let loop_time = Duration::from_secs_f32(period_s);
    thread::sleep(loop_time + Duration::from_secs(2));
    caller.send("ns off");
    let voice = caller.wait_for(secs(5), "voice");
    assert_eq!(voice["noise_suppression"], false, "{voice}");
    thread::sleep(loop_time + Duration::from_secs(2));
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());

    let (heard, rate) = read_wav(&callee_out);
    assert_eq!(rate, 48_000);
    let onset = heard
        .iter()
        .position(|s| s.abs() > 0.01)
        .expect("the callee heard something");
    // Where `ns off` took effect in the recording: after it, every 100 ms carries the noise;
    // before it, the pauses are far below it. (Found in the audio rather than from the clock:
    // a loaded machine's media threads skip ticks, so wall time and recording drift apart.)
    let end = heard
        .iter()
        .rposition(|s| s.abs() > 0.01)
        .unwrap_or(heard.len());
    let noise_rms = rms(noise.iter().copied());
    // The end of the last quiet stretch of 300 ms or more (a pause with noise suppression;
    // a lost packet or two without it is shorter).
    let quiet: Vec<bool> = heard[..end.saturating_sub(24_000)]
        .chunks_exact(4_800)
        .map(|b| rms(b.iter().copied()) < 0.3 * noise_rms)
        .collect();
    let toggle = (3..=quiet.len())
        .rev()
        .find(|&i| quiet[i - 3..i].iter().all(|&q| q))
        .map_or(0, |i| i * 4_800);
    println!(
        "recording: {:.1} s, sound from {:.1} s, noise suppression off from {:.1} s",
        heard.len() as f32 / 48_000.0,
        onset as f32 / 48_000.0,
        toggle as f32 / 48_000.0
    );
    let on = &heard[(onset + 24_000).min(toggle)..toggle.saturating_sub(9_600)];
    let off = &heard[(toggle + 24_000).min(end)..end.saturating_sub(9_600).max(toggle)];
    let sent: Vec<f32> = clean.iter().zip(&noise).map(|(c, n)| c + n).collect();
    let (pause_on, ncc_on) = judge(on, &clean, &noise, &clean);
    let (pause_off, ncc_off) = judge(off, &clean, &noise, &sent);
    println!(
        "noise suppression on:  noise in pauses {pause_on:.1} dB, speech correlation {ncc_on:.3}"
    );
    println!(
        "noise suppression off: noise in pauses {pause_off:.1} dB, speech correlation {ncc_off:.3}"
    );
    assert!(
        pause_on <= -15.0,
        "noise in the pauses only {pause_on:.1} dB down"
    );
    assert!(
        ncc_on >= 0.8,
        "speech correlation {ncc_on:.3} with noise suppression"
    );
    assert!(
        pause_off > -3.0,
        "switched off live, the noise should pass: {pause_off:.1} dB"
    );
}

#[test]
fn g722_call_with_linphonec_is_wideband_both_ways() {
    let net = Net::for_test("voice::g722_linphonec");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = tempfile::tempdir().expect("tempdir");
    // linphonec plays a 16 kHz file of a 6 kHz tone and records what it hears.
    let theirs_in = dir.path().join("tone6k_16k.wav");
    let theirs_out = dir.path().join("linphonec_heard.wav");
    run_tool(
        "sox",
        &[
            "-n",
            "-r",
            "16000",
            "-c",
            "1",
            "-b",
            "16",
            &theirs_in.to_string_lossy(),
            "synth",
            "30",
            "sine",
            "6000",
            "vol",
            "0.4",
        ],
    );
    let bob = Linphonec::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        LinphonecOptions {
            play_file: Some(theirs_in),
            record_file: Some(theirs_out.clone()),
            // Debian's linphonec has G.722 but does not enable it by default.
            extra_rc: "[audio_codec_0]\nmime=G722\nrate=8000\nchannels=1\nenabled=1\n".to_owned(),
            ..LinphonecOptions::default()
        },
    );
    let tone = dir.path().join("tone6k.wav");
    tone_48k(&tone, 6_000.0, 3.0);
    let our_out = dir.path().join("heard.wav");
    let cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["g722"])
        .with_audio(&audio_toml(Some(&tone), &our_out, ""));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    sb.send("dial bob");
    let media = sb.wait_for(secs(10), "media");
    assert_eq!(media["codec"], "G722", "{media}");
    sb.wait_call_state(secs(10), 1, "connected");
    thread::sleep(Duration::from_secs(4));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    assert!(sb.quit_and_wait(secs(10)).success());
    thread::sleep(Duration::from_millis(500));

    let (ours, rate) = read_wav(&our_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&ours, rate, 0.5, 2.0), rate, 6_000.0);
    println!("we heard 6 kHz from linphonec at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        tone_db > -30.0 && total_db - tone_db < 3.0,
        "no 6 kHz tone from linphonec: {tone_db:.1} of {total_db:.1} dBFS"
    );
    let (theirs, rate) = read_wav(&theirs_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&theirs, rate, 0.5, 2.0), rate, 6_000.0);
    println!("linphonec heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS ({rate} Hz)");
    assert!(
        tone_db > -30.0 && total_db - tone_db < 3.0,
        "linphonec heard no 6 kHz tone: {tone_db:.1} of {total_db:.1} dBFS"
    );
}
