//! Mouth-to-ear latency through a real sound server (not a criterion benchmark).
//!
//! A private PulseAudio (`tests/common/pulse.rs`) with null sinks, paced by a real clock, and
//! two switchboards on their own source and sink: through PulseAudio's protocol (cpal's
//! PulseAudio host, `[audio] host = "pulse"`; the default) or, with
//! `LATENCY_PULSE_HOST=alsa`, through ALSA's `pulse` device pointed at them. Both ask for
//! 10 ms packets (`[codecs] ptime`; `LATENCY_PULSE_PTIME` sets another). A click track is
//! played once into a combine sink that feeds both A's microphone
//! sink and, directly, the left channel of the listening sink; B's headset is that sink's
//! right channel. One stereo recording of the listening sink's monitor therefore holds each
//! click twice on one clock: left as played, right as B played it after the call.
//!
//! ```text
//!                      ┌─► a_mic ─► a_mic.monitor ─► switchboard A ─RTP─► switchboard B ─► b_ear ─┐
//!   paplay ─► click ───┤                                                    (right channel)      ├─► listen
//!   (clicks every 1 s) └─► ref (left channel) ──────────────────────────────────────────────────┘  (parec)
//! ```
//!
//! 1. **The server's own loopback**: the same recording with `module-loopback` (a_mic.monitor
//!    → b_ear, its minimum latency) in place of the two switchboards.
//! 2. **The call**: A calls B peer to peer on 127.0.0.0/8 (Opus), 3 s after both started (an
//!    operator's softphone runs long before a call comes: the sound server has started its
//!    streams, which took up to 0.7 s here and dropped the first headset frames of a call
//!    placed at once); clicks for
//!    `$LATENCY_PULSE_SECONDS` (30 s; 600 for the ten-minute run), the jitter buffer's depth
//!    from B's `quality` events, the dropouts from both ends' `audio` events, and the
//!    server's own count of playback streams that ran empty (its debug log's underruns;
//!    ALSA's plugin may hide those from the client).
//!
//! Client-added latency, for each click = call delay − median(loopback delay) − mean(B's
//! jitter buffer delay); its median, mean and max are printed with the clicks lost and the
//! dropouts. The jitter buffer's delay (arrival to playout) holds B's wait for its own tick,
//! so what is left is A's sound path and encoder, and B's sound path, beyond the minimal
//! loopback client's buffers.
//!
//! 3. **The breakdown**: both switchboards log, every 5 s, the means of each stage of their
//!    sound paths (`audio latency` lines, `src/media/device/latency.rs`): the audio system's
//!    delay at a callback (cpal's timestamps) and the time a frame waits in switchboard's
//!    ring, for A's microphone and B's headset. The bench adds them up with packetisation
//!    and Opus' look-ahead and sets the sum beside the measured client-added latency plus
//!    the server's loopback, so every stage is a number and the numbers can be checked.
//!
//! The dropouts are also told apart, from each end's last `audio latency` line: xruns the
//! audio system reported, a full microphone ring, a microphone frame short at a tick, the
//! headset's callback finding its ring empty, headset frames dropped to bound latency.
//! Each dropout during the clicks (its `audio dropout` log line) is set beside the machine's
//! own stalls, measured meanwhile by a thread per CPU (`tests/common/stalls.rs`): those that
//! came within 60 ms after every CPU stalled at once for 2 ms or more are counted, the
//! others listed with their time and kind.
//!
//! `LATENCY_PULSE_ALSA_UNDERRUN=ignore` gives both switchboards an `.asoundrc` whose `pulse`
//! device has the plugin's `handle_underrun false`, to compare the xrun bursts without it.
//! `LATENCY_PULSE_LOGS=DIR` keeps both ends' logs there (`caller.log`, `callee.log`): the
//! `audio latency` lines over the call show how each ring's fill moved; and the server's
//! (`pulseaudio.log`, with its underrun lines).
//!
//! Run with `cargo bench --bench latency_pulse` (or `cargo test --bench latency_pulse` for a
//! debug build); it prints one block for the README and exits non-zero only if the call
//! fails: figures are reported, not asserted.
#![allow(clippy::disallowed_methods)] // measuring real processes in real time

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use common::process::{self, Peer};
use common::pulse::SoundServer;
use common::signal::read_wav;
use common::stalls::{Span, StallMonitor, Stalls};
use common::{median, secs, Net, Switchboard, SwitchboardConfig};

/// How long clicks play during the call, unless `$LATENCY_PULSE_SECONDS` says otherwise.
const CALL_SECONDS: u64 = 30;
/// How long clicks play through the server's own loopback.
const LOOPBACK_SECONDS: u64 = 10;
/// The host number of the callee.
const CALLEE: u8 = 6;
/// A click: 10 ms of 2 kHz under a Hann window, at half of full scale, once a second.
const CLICK_MS: usize = 10;
const CLICK_HZ: f64 = 2000.0;
/// What counts as a click in the recording (fraction of full scale), and the silence that
/// separates two of them.
const THRESHOLD: f32 = 0.05;
const GAP_MS: usize = 200;
/// The packetisation both ends ask for (`LATENCY_PULSE_PTIME`, ms): a packet leaves only
/// when its last frame is complete. Opus' encoder looks 6.5 ms ahead.
const DEFAULT_PTIME: u32 = 10;
const LOOK_AHEAD_MS: f64 = 6.5;
/// The aim of issue 17: client-added latency at most this, with no dropouts.
const AIM_MS: f64 = 40.0;
/// The machine's stalls noted during the call (`tests/common/stalls.rs`): wake-ups later
/// than this; those of at least `STALL_COUNTED_MS` are counted.
const STALL_NOTED: Duration = Duration::from_millis(1);
const STALL_COUNTED_MS: f64 = 2.0;
/// A dropout is logged at the tick after it (10 ms), which a stall may delay as well: a stall
/// that ended at most this long before the log line, or had begun by it, is set beside it.
const STALL_REACH: Duration = Duration::from_millis(60);

/// The server's modules: four mono null sinks (A's and B's microphones and headsets), the
/// stereo listening sink with its two mono halves, and the click's combine sink.
const MODULES: &[&str] = &[
    "module-null-sink sink_name=a_mic rate=48000 channels=1",
    "module-null-sink sink_name=a_spk rate=48000 channels=1",
    "module-null-sink sink_name=b_mic rate=48000 channels=1",
    "module-null-sink sink_name=listen rate=48000 channels=2 channel_map=front-left,front-right",
    "module-remap-sink sink_name=ref master=listen channels=1 channel_map=mono \
     master_channel_map=front-left remix=no",
    "module-remap-sink sink_name=b_ear master=listen channels=1 channel_map=mono \
     master_channel_map=front-right remix=no",
    "module-combine-sink sink_name=click slaves=a_mic,ref",
];

/// ALSA's `pulse` device with the plugin's underrun handling off
/// (`LATENCY_PULSE_ALSA_UNDERRUN=ignore`): PulseAudio plays silence for a stream that ran
/// empty and goes on, instead of the plugin reporting an xrun on which cpal restarts it.
const ALSA_IGNORE_UNDERRUNS: &str = "pcm.!pulse {\n  type pulse\n  handle_underrun false\n  \
     hint { show on description \"PulseAudio, underruns not handled\" }\n}\n";

fn main() {
    let seconds = std::env::var("LATENCY_PULSE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CALL_SECONDS);
    let dir = common::run_dir("bench-latency-pulse");
    let server = SoundServer::start_debug(dir.path(), MODULES);
    let alsa = std::env::var("LATENCY_PULSE_HOST").is_ok_and(|v| v == "alsa");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchboard latency through PulseAudio -- {}",
        command_line("date", &["-u"])
    );
    let _ = writeln!(
        out,
        "host: {}",
        if alsa {
            "ALSA's pulse device (LATENCY_PULSE_HOST=alsa)"
        } else {
            "PulseAudio's protocol (cpal's PulseAudio host)"
        }
    );
    if std::env::var("LATENCY_PULSE_ALSA_UNDERRUN").is_ok_and(|v| v == "ignore") {
        let _ = writeln!(out, "ALSA's pulse device with handle_underrun false");
    }
    let _ = writeln!(
        out,
        "pulseaudio {}, null sinks at 48 kHz; load average at the start: {}",
        command_line("pulseaudio", &["--version"]).replace("pulseaudio ", ""),
        fs_first_fields("/proc/loadavg", 3)
    );

    // 1. The server's own loopback.
    let module = server.pactl_output(&[
        "load-module",
        "module-loopback",
        "source=a_mic.monitor",
        "sink=b_ear",
        "latency_msec=1",
    ]);
    thread::sleep(Duration::from_secs(1));
    let loopback = clicks_through(&server, dir.path(), "loopback", LOOPBACK_SECONDS);
    server.pactl(&["unload-module", module.trim()]);
    let _ = writeln!(
        out,
        "1. server loopback (module-loopback a_mic.monitor -> b_ear, minimum latency): {}",
        summary(&loopback)
    );

    // 2. Two switchboards in a call.
    let net = Net::for_test("bench::latency_pulse");
    // Through ALSA, `pulse` follows PULSE_SOURCE and PULSE_SINK (below); PulseAudio's own
    // protocol names the source and sink.
    let audio = |source: &str, sink: &str| {
        let (host, input, output) = if alsa {
            ("alsa", "pulse", "pulse")
        } else {
            ("pulse", source, sink)
        };
        format!(
            "backend = \"cpal\"\nhost = \"{host}\"\ninput = \"{input}\"\n\
             output = \"{output}\"\nnoise_suppression = false\nagc = false\n"
        )
    };
    let ptime = std::env::var("LATENCY_PULSE_PTIME")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PTIME);
    let packet_ms = f64::from(ptime);
    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["opus"])
        .with_ptime(ptime)
        .with_audio(&audio("a_mic.monitor", "a_spk"));
    let ip = net.ip(CALLEE);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["opus"])
        .with_ptime(ptime)
        .with_audio(&audio("b_mic.monitor", "b_ear"));
    callee_cfg = callee_cfg.at(ip, "bob");
    let ignore_underruns =
        std::env::var("LATENCY_PULSE_ALSA_UNDERRUN").is_ok_and(|v| v == "ignore");
    let alsa_home = dir.path().join("alsa-home");
    if ignore_underruns {
        std::fs::create_dir_all(&alsa_home).expect("creating the ALSA home");
        std::fs::write(alsa_home.join(".asoundrc"), ALSA_IGNORE_UNDERRUNS)
            .expect("writing .asoundrc");
    }
    let env = |source: &str, sink: &str| {
        let mut env = if alsa {
            server.client_env(source, sink)
        } else {
            server.server_env()
        };
        if ignore_underruns {
            env.push(("HOME".into(), alsa_home.display().to_string()));
        }
        env
    };
    let a_env = env("a_mic.monitor", "a_spk");
    let b_env = env("b_mic.monitor", "b_ear");
    let mut caller = Switchboard::start_with_env(&caller_cfg.to_toml(), &pairs(&a_env));
    let mut callee = Switchboard::start_with_env(&callee_cfg.to_toml(), &pairs(&b_env));
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    let devices = [
        caller.wait_for(secs(5), "devices"),
        callee.wait_for(secs(5), "devices"),
    ];
    // An operator's softphone runs long before a call comes: the streams have started.
    thread::sleep(Duration::from_secs(3));
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    // Let the jitter buffer and the device cushions settle before clicking.
    thread::sleep(Duration::from_secs(3));
    let underruns_before = server.underruns();
    let cpu_before = cpu_times();
    let monitor = StallMonitor::start(STALL_NOTED, Duration::from_secs(seconds + 120));
    let clicking = SystemTime::now();
    let call = clicks_through(&server, dir.path(), "call", seconds);
    let clicked = SystemTime::now();
    let stalls = monitor.finish();
    let stolen = stolen_share(cpu_before, cpu_times());
    let underruns = server.underruns() - underruns_before;
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    let buffers: Vec<f64> = callee
        .events()
        .iter()
        .filter(|e| e["event"] == "quality")
        .filter_map(|e| e["buffer_ms"].as_f64())
        .collect();
    let glitches = |sb: &mut Switchboard| -> Vec<String> {
        sb.events()
            .iter()
            .filter(|e| e["event"] == "audio")
            .filter_map(|e| e["message"].as_str().map(str::to_owned))
            .collect()
    };
    let (a_audio, b_audio) = (glitches(&mut caller), glitches(&mut callee));
    // How long after A's media tick B's comes (ms, 0..20): audio waits that long for B's tick.
    let phase = match (caller.media_clock_start(), callee.media_clock_start()) {
        (Some(a), Some(b)) => (b - a).rem_euclid(20.0),
        _ => f64::NAN,
    };
    let (caller_log, callee_log) = (caller.log(), callee.log());
    assert!(caller.quit_and_wait(secs(10)).success(), "caller quit");
    assert!(callee.quit_and_wait(secs(10)).success(), "callee quit");

    let _ = writeln!(
        out,
        "2. call A -> B (Opus, {}, loopback network), {seconds} s of clicks: {}",
        if alsa {
            "cpal on ALSA `pulse`"
        } else {
            "cpal's PulseAudio host"
        },
        summary(&call)
    );
    let _ = writeln!(
        out,
        "   devices: A {} / B {}",
        describe_devices(&devices[0]),
        describe_devices(&devices[1])
    );
    let buffer = mean(&buffers);
    let _ = writeln!(
        out,
        "   B's jitter buffer (quality events, n = {}): mean {buffer:.1} ms",
        buffers.len()
    );
    let _ = writeln!(out, "   audio events: A {:?}, B {:?}", a_audio, b_audio);
    let _ = writeln!(
        out,
        "   host: {stolen:.1} % of the CPU time went to other guests of the machine during the \
         call (steal in /proc/stat); load average at the end: {}",
        fs_first_fields("/proc/loadavg", 3)
    );
    let loop_median = median(&loopback);
    let added_each: Vec<f64> = call.iter().map(|d| d - loop_median - buffer).collect();
    let added = median(&added_each);
    let dropouts: u64 = a_audio
        .iter()
        .chain(&b_audio)
        .map(|m| dropout_count(m))
        .sum();
    let lost = seconds.saturating_sub(call.len() as u64);
    let _ = writeln!(
        out,
        "   client-added latency (each click: delay - {loop_median:.1} loopback - {buffer:.1} \
         jitter buffer): median {added:.1} ms, mean {:.1}, max {:.1}; clicks lost {lost} of \
         {seconds}; dropouts reported {dropouts}; server underruns {underruns} (aim <= \
         {AIM_MS} ms, none lost): {}",
        mean(&added_each),
        added_each.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        if added <= AIM_MS && dropouts == 0 && lost == 0 && underruns == 0 {
            "met"
        } else {
            "NOT met"
        }
    );
    if let Ok(keep) = std::env::var("LATENCY_PULSE_LOGS") {
        let keep = Path::new(&keep);
        std::fs::create_dir_all(keep).expect("creating LATENCY_PULSE_LOGS");
        std::fs::write(keep.join("caller.log"), &caller_log).expect("writing caller.log");
        std::fs::write(keep.join("callee.log"), &callee_log).expect("writing callee.log");
        std::fs::copy(server.log_path(), keep.join("pulseaudio.log"))
            .expect("copying pulseaudio.log");
    }
    // The stages, from both ends' `audio latency` log lines (means over the call).
    let a_log = caller_log;
    let b_log = callee_log;
    let kinds: Vec<String> = DROPOUT_KINDS
        .iter()
        .map(|key| {
            let total: f64 = [&a_log, &b_log]
                .iter()
                .filter_map(|log| latency_field(log, key).last().copied())
                .sum();
            format!("{key} {total}")
        })
        .collect();
    let _ = writeln!(
        out,
        "   dropouts by kind (both ends, each stream since it opened): {}",
        kinds.join(", ")
    );
    let _ = writeln!(
        out,
        "{}",
        beside_stalls(&a_log, &b_log, &stalls, clicking, clicked)
    );
    // A headset behind the ticks by as much as the frames dropped: the server played
    // silence for it instead of taking its audio (late itself, or starved of CPU).
    // From the first line after the settling one to the last, so the streams' start is left
    // out (a stream may start taking audio some 0.7 s after the first tick).
    let behind = |log: &str| {
        let change = |key| {
            let values = latency_field(log, key);
            match (values.first(), values.last()) {
                (Some(first), Some(last)) => last - first,
                _ => f64::NAN,
            }
        };
        (
            -change("headset_ahead_ms"),
            change("headset_dropped") * f64::from(switchboard::media::FRAME_MS),
        )
    };
    let (a_behind, b_behind) = (behind(&a_log), behind(&b_log));
    let _ = writeln!(
        out,
        "   headsets fallen behind the ticks during the call (audio the server did not take): \
         A {:.0} ms, B {:.0} ms; headset frames dropped meanwhile to bound the latency: A {:.0} \
         ms, B {:.0} ms",
        a_behind.0, b_behind.0, a_behind.1, b_behind.1
    );
    // How much faster than the ticks each headset's frames were written at the end, to follow
    // its card (`drift.rs`).
    let drift = |log: &str| {
        latency_field(log, "headset_drift_ppm")
            .last()
            .copied()
            .unwrap_or(f64::NAN)
    };
    let _ = writeln!(
        out,
        "   headsets' pace followed at the end (frames written faster than the ticks): A {:.0} \
         ppm, B {:.0} ppm",
        drift(&a_log),
        drift(&b_log)
    );
    let field = |log: &str, key: &str| mean(&latency_field(log, key));
    let (cap_ring, cap_dev, cap_period) = (
        field(&a_log, "capture_ring_ms"),
        field(&a_log, "capture_device_ms"),
        field(&a_log, "capture_period_ms"),
    );
    let (play_ring, play_dev, play_period) = (
        field(&b_log, "headset_ring_ms"),
        field(&b_log, "headset_device_ms"),
        field(&b_log, "headset_period_ms"),
    );
    let capture = cap_ring + cap_dev - cap_period / 2.0;
    let playback = play_ring + play_dev + play_period / 2.0;
    let stages = capture + packet_ms + LOOK_AHEAD_MS + playback;
    let _ = writeln!(
        out,
        "   breakdown (means of the `audio latency` log lines; the jitter buffer, which holds \
         B's wait for its tick ({phase:.1} ms after A's), is excluded):\n   \
         A capture: audio system {cap_dev:.1} ms at a callback (period {cap_period:.1}) + \
         ring {cap_ring:.1} ms behind the frame -> newest sample {capture:.1} ms old at the tick\n   \
         A encode: packetisation {packet_ms} ms + Opus look-ahead {LOOK_AHEAD_MS} ms\n   \
         B playback: ring {play_ring:.1} ms ahead of the frame + audio system {play_dev:.1} ms \
         at a callback (period {play_period:.1}) -> {playback:.1} ms\n   \
         sum of the stages {stages:.1} ms; measured client-added + server loopback \
         {:.1} ms",
        added + loop_median
    );
    print!("{out}");
    drop(server);
}

/// The machine's stalls during the clicks, and each end's dropouts then (its `audio dropout`
/// log lines): those within [`STALL_REACH`] after every CPU stalled at once for at least
/// `STALL_COUNTED_MS`, and the others one by one.
fn beside_stalls(
    a_log: &str,
    b_log: &str,
    stalls: &Stalls,
    from: SystemTime,
    to: SystemTime,
) -> String {
    let ms = |span: &Span| {
        span.1
            .duration_since(span.0)
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    let everywhere: Vec<Span> = stalls
        .everywhere()
        .into_iter()
        .filter(|s| ms(s) >= STALL_COUNTED_MS)
        .collect();
    let longest = |spans: &mut dyn Iterator<Item = f64>| spans.fold(0.0, f64::max);
    let at_least = |floor: f64| everywhere.iter().filter(|s| ms(s) >= floor).count();
    let late = |floor: f64| {
        stalls
            .each
            .iter()
            .filter(|s| s.late.as_secs_f64() * 1e3 >= floor)
            .count()
    };
    let mut out = format!(
        "   the machine's stalls during the clicks (a thread per CPU, pinned, at nice {} waking \
         every 1 ms): wake-ups late by >= {STALL_COUNTED_MS} ms {}, >= 5 ms {}, longest {:.1} ms; \
         every CPU stalled at once for >= {STALL_COUNTED_MS} ms: {}, >= 5 ms: {}, longest {:.1} ms",
        switchboard::media::priority::MEDIA_NICE,
        late(STALL_COUNTED_MS),
        late(5.0),
        longest(&mut stalls.each.iter().map(|s| s.late.as_secs_f64() * 1e3)),
        everywhere.len(),
        at_least(5.0),
        longest(&mut everywhere.iter().map(ms)),
    );
    let (mut beside, mut longest_beside, mut alone) = (0, 0.0f64, Vec::new());
    for (end, log) in [("A", a_log), ("B", b_log)] {
        for (at, kinds) in dropout_lines(log).filter(|(at, _)| (from..=to).contains(at)) {
            let near = longest(
                &mut everywhere
                    .iter()
                    .filter(|s| s.1 + STALL_REACH >= at && s.0 <= at)
                    .map(ms),
            );
            if near > 0.0 {
                beside += 1;
                longest_beside = longest_beside.max(near);
            } else {
                alone.push(format!(
                    "{end} at {:.1} s {kinds}",
                    at.duration_since(from).unwrap_or_default().as_secs_f64()
                ));
            }
        }
    }
    let _ = write!(
        out,
        "\n   dropouts logged during the clicks: {}; {beside} within {} ms after every CPU \
         stalled at once (those stalls up to {longest_beside:.1} ms), {} without such a \
         stall{}{}",
        beside + alone.len(),
        STALL_REACH.as_millis(),
        alone.len(),
        if alone.is_empty() { "" } else { ": " },
        alone.join("; ")
    );
    out
}

/// The `audio dropout` lines of a switchboard log: when, and the kinds that were not 0.
fn dropout_lines(log: &str) -> impl Iterator<Item = (SystemTime, String)> + '_ {
    log.lines()
        .filter(|l| l.contains("audio dropout"))
        .filter_map(|l| {
            let at = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            let kinds: Vec<&str> = l
                .split_whitespace()
                .filter(|w| w.contains('=') && !w.ends_with("=0"))
                .collect();
            Some((SystemTime::from(at), kinds.join(" ")))
        })
}

/// The dropout counters of the `audio latency` lines (`cpal_backend.rs`).
const DROPOUT_KINDS: &[&str] = &[
    "capture_xruns",
    "capture_ring_full",
    "capture_short",
    "headset_xruns",
    "headset_dry",
    "headset_dropped",
];

/// The values of `key=` in the `audio latency` lines of a switchboard log, the first
/// (settling) line left out.
fn latency_field(log: &str, key: &str) -> Vec<f64> {
    let prefix = format!("{key}=");
    log.lines()
        .filter(|l| l.contains("audio latency"))
        .skip(1)
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(prefix.as_str()))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .filter(|v| v.is_finite())
        .collect()
}

/// The under/overruns an `audio glitches: N input and M output …` message reports.
fn dropout_count(message: &str) -> u64 {
    message
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok())
        .sum()
}

/// Borrowed `(name, value)` pairs for [`Switchboard::start_with_env`].
fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Plays `seconds` of clicks into the `click` sink while recording the listening sink, and
/// returns each click's delay (ms) from its left (as played) to its right (as heard) copy.
fn clicks_through(server: &SoundServer, dir: &Path, name: &str, seconds: u64) -> Vec<f64> {
    let track = dir.join(format!("{name}-clicks.wav"));
    write_clicks(&track, seconds);
    let recording = dir.join(format!("{name}-heard.wav"));
    let mut rec_cmd = server.tool("parec");
    rec_cmd
        .args([
            "-d",
            "listen.monitor",
            "--file-format=wav",
            "--rate=48000",
            "--channels=2",
        ])
        .arg(&recording)
        .stdin(Stdio::null());
    let mut rec = Peer::spawn("parec", &mut rec_cmd, Vec::new());
    thread::sleep(Duration::from_millis(500));
    let mut play = server.tool("paplay");
    play.args(["-d", "click"]).arg(&track);
    let played = process::run_bounded(&mut play, Duration::from_secs(seconds + 30));
    assert!(played.success(), "paplay failed:\n{}", server.log_tail(20));
    thread::sleep(Duration::from_millis(1500));
    rec.signal("INT");
    let _ = rec.wait_timeout(Duration::from_secs(5));
    drop(rec);
    let (samples, rate) = read_wav_stereo(&recording);
    assert_eq!(rate, 48_000, "recording rate");
    let left: Vec<f32> = samples.iter().map(|s| s.0).collect();
    let right: Vec<f32> = samples.iter().map(|s| s.1).collect();
    let heard = onsets(&right);
    onsets(&left)
        .into_iter()
        .filter_map(|l| {
            heard
                .iter()
                .find(|&&r| r > l && r < l + 48_000 / 2)
                .map(|&r| (r - l) as f64 / 48.0)
        })
        .collect()
}

/// A 48 kHz mono click track: one click at the start of every second.
fn write_clicks(path: &Path, seconds: u64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating the click track");
    let click = CLICK_MS * 48;
    for i in 0..seconds as usize * 48_000 {
        let n = i % 48_000;
        let s = if n < click {
            let window = 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / click as f64).cos();
            0.5 * window * (std::f64::consts::TAU * CLICK_HZ * n as f64 / 48_000.0).sin()
        } else {
            0.0
        };
        w.write_sample((s * 32767.0) as i16)
            .expect("writing the click track");
    }
    w.finalize().expect("finishing the click track");
}

/// The samples where a click starts: above [`THRESHOLD`] after at least [`GAP_MS`] below it.
fn onsets(x: &[f32]) -> Vec<usize> {
    let gap = GAP_MS * 48;
    let mut last_loud: Option<usize> = None;
    let mut found = Vec::new();
    for (i, &v) in x.iter().enumerate() {
        if v.abs() > THRESHOLD {
            if last_loud.is_none_or(|l| i - l > gap) {
                found.push(i);
            }
            last_loud = Some(i);
        }
    }
    found
}

/// A stereo 16-bit WAV as (left, right) pairs in −1..1, and its rate; `parec` may leave the
/// header's length unset when stopped, so the samples are read until the data ends.
fn read_wav_stereo(path: &Path) -> (Vec<(f32, f32)>, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let Some(at) = bytes.windows(4).position(|w| w == b"data") else {
        let (mono, rate) = read_wav(path);
        return (mono.into_iter().map(|s| (s, s)).collect(), rate);
    };
    let rate = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
    let data = &bytes[(at + 8).min(bytes.len())..];
    let samples = data
        .chunks_exact(4)
        .map(|c| {
            let l = i16::from_le_bytes([c[0], c[1]]);
            let r = i16::from_le_bytes([c[2], c[3]]);
            (f32::from(l) / 32768.0, f32::from(r) / 32768.0)
        })
        .collect();
    (samples, rate)
}

fn describe_devices(event: &serde_json::Value) -> String {
    format!(
        "in {} / out {}",
        event["input"].as_str().unwrap_or("?"),
        event["output"].as_str().unwrap_or("?")
    )
}

fn summary(delays: &[f64]) -> String {
    if delays.is_empty() {
        return "no click came through".to_owned();
    }
    let min = delays.iter().copied().fold(f64::INFINITY, f64::min);
    let max = delays.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{} clicks, delay median {:.1} ms (min {min:.1}, max {max:.1})",
        delays.len(),
        median(delays)
    )
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// All CPU time and the stolen part (jiffies), from the first line of /proc/stat.
fn cpu_times() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.iter().sum(), fields.get(7).copied().unwrap_or(0))
}

/// The share (%) of the CPU time between two readings that the hypervisor gave elsewhere.
fn stolen_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.0.saturating_sub(before.0);
    let stolen = after.1.saturating_sub(before.1);
    if total == 0 {
        return f64::NAN;
    }
    stolen as f64 * 100.0 / total as f64
}

fn fs_first_fields(path: &str, n: usize) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}
