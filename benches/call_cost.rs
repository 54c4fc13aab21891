//! What a call costs, measured on real processes (not a criterion benchmark):
//!
//! 0. **Idle**: switchboard (file audio) and baresip started with no call, side by side for
//!    10 s: CPU time and wake-ups (context switches) of every thread, and of switchboard's media
//!    thread alone.
//! 1. **CPU and memory of a headless call** (60 s; `$CALL_COST_SECONDS`), switchboard calling
//!    baresip peer to peer on 127.0.0.0/8, in three variants: Opus, G.722, and Opus with the
//!    microphone's noise suppression and AGC on (baresip: its `speex_pp` denoiser and AGC). The
//!    variants run in interleaved rounds (3; `$CALL_COST_ROUNDS`): round 1 of each, then round 2
//!    of each, … so a burst of load elsewhere spreads over all of them. Both sides do the same
//!    work: each plays the same speech file (espeak-ng phrases, 48 kHz mono, streamed from disk
//!    by both), records nothing and discards what it hears, runs without debug output, and
//!    encodes Opus at 24 kbit/s, complexity 5, VoIP, in-band FEC for 10 % loss, mono. CPU time
//!    (utime + stime of all threads, `/proc/<pid>/stat`) is sampled when the call connects and
//!    again before the hangup; peak RSS is `VmHWM` of `/proc/<pid>/status` at the end of the
//!    call. Each variant reports every round, then the median and the spread (min–max).
//! 2. **Client-added latency**: a 10 s Opus call between two switchboards with file audio.
//!    The mouth-to-ear delay D (file in to file out) comes from both media clocks and the
//!    alignment of the recording with the looping signal; the callee's quality events give
//!    the jitter buffer delay; D − buffer is what the client itself adds.
//!
//! Run with `cargo bench --bench call_cost` (the bench profile builds the release
//! `switchboard`; `$SWITCHBOARD_BIN` overrides the binary). The bench profile's binary is
//! built with the dev-dependencies' features, so its function names differ from a release
//! build's and `link/hot-functions.txt` does not apply to it (its peak RSS is about 4 MiB
//! higher): to measure what `scripts/run` gives operators, `cargo build --release` and set
//! `SWITCHBOARD_BIN=target/release/switchboard`. It prints one block for the README
//! and exits non-zero only if a call fails: timings are reported, never asserted. Every wait
//! is bounded; the peers are killed by PID when their handles drop.
#![allow(clippy::disallowed_methods)] // measuring real processes in real time

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::signal::{after_onset, align_with_loop, mouth_to_ear_ms, read_wav, write_test_signal};
use common::switchboard::switchboard_bin;
use common::{
    hosts, median, secs, AudioSource, Baresip, BaresipOptions, Net, Switchboard, SwitchboardConfig,
};

/// How long a measured call of part 1 lasts, unless `$CALL_COST_SECONDS` says otherwise.
const CALL_SECONDS: u64 = 60;
/// Rounds of part 1, unless `$CALL_COST_ROUNDS` says otherwise.
const ROUNDS: usize = 3;
/// How long part 0 watches the idle processes.
const IDLE: Duration = Duration::from_secs(10);
/// How long the latency call of part 2 lasts (two quality events, every 5 s).
const LATENCY_CALL: Duration = Duration::from_secs(10);
/// The host number of the second switchboard in part 2.
const CALLEE: u8 = 6;
/// The aims of part 1 (issue 17): CPU per end at most 0.7 × baresip's, peak RSS at most 8 MiB.
const AIM_CPU_RATIO: f64 = 0.7;
const AIM_RSS_MIB: f64 = 8.0;
/// Where Debian's baresip keeps its modules.
const BARESIP_MODULES: &str = "/usr/lib/baresip/modules";
/// switchboard's default Opus encoder settings, given to baresip too for a fair comparison.
const OPUS_BITRATE: u32 = 24_000;
const OPUS_COMPLEXITY: u32 = 5;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument would make no sense here.
    let bin = switchboard_bin();
    let ticks = clock_ticks();
    let call = Duration::from_secs(env_number("CALL_COST_SECONDS", CALL_SECONDS));
    let rounds = env_number("CALL_COST_ROUNDS", ROUNDS as u64).max(1) as usize;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchboard call cost -- {}",
        command_line("date", &["-u"])
    );
    let _ = writeln!(
        out,
        "machine: {}, {} cores; load average at the start: {}",
        cpu_model(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let _ = writeln!(
        out,
        "switchboard binary: {} ({})",
        bin.display(),
        build_kind(&bin)
    );
    let _ = writeln!(out, "baresip: {}", baresip_version());
    match ticks {
        Ok(t) => {
            let _ = writeln!(out, "clock ticks: {t}/s (getconf CLK_TCK)");
        }
        Err(t) => {
            let _ = writeln!(out, "clock ticks: {t}/s (assumed: getconf CLK_TCK failed)");
        }
    }
    let ticks = ticks.unwrap_or_else(|t| t);
    out.push('\n');

    let dir = common::run_dir("bench-cost");
    let speech = speech_file(dir.path(), call.as_secs() + 15);

    eprintln!("call_cost: part 0, idle for {} s...", IDLE.as_secs());
    idle(&mut out, ticks, &speech);
    out.push('\n');

    let mut results: Vec<Vec<CallCost>> = VARIANTS.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (variant, done) in VARIANTS.iter().zip(results.iter_mut()) {
            eprintln!(
                "call_cost: part 1, round {round}/{rounds} ({}), a {} s call to baresip...",
                variant.name,
                call.as_secs()
            );
            done.push(measure_call(ticks, variant, &speech, call));
        }
    }
    for (variant, done) in VARIANTS.iter().zip(&results) {
        report_variant(&mut out, variant, done);
        out.push('\n');
    }
    let _ = writeln!(out, "load average after part 1: {}", load_average());
    out.push('\n');
    eprintln!(
        "call_cost: part 2, a {} s call between two switchboards...",
        LATENCY_CALL.as_secs()
    );
    latency(&mut out);
    println!("{out}");
}

/// A positive whole number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// Speech for both sides: espeak-ng phrases with pauses, 48 kHz mono 16-bit, repeated to at
/// least `seconds` (baresip's `aufile` hangs up when its file ends).
fn speech_file(dir: &Path, seconds: u64) -> PathBuf {
    let phrases = dir.join("phrases.wav");
    let clip = dir.join("phrases_48k.wav");
    let long = dir.join("speech.wav");
    let espeak = common::require_tool("espeak-ng", "espeak-ng");
    let sox = common::require_tool("sox", "sox");
    let text = "Good morning, thank you for calling the support desk. \
                Could you give me your customer number, please? \
                I am putting you through to a colleague now, one moment.";
    let run = |cmd: &mut Command| {
        let done = common::process::run_bounded(cmd, secs(60));
        assert!(done.success(), "{cmd:?} failed: {}", done.stderr);
    };
    run(Command::new(&espeak).arg("-w").arg(&phrases).arg(text));
    run(Command::new(&sox)
        .arg(&phrases)
        .args(["-r", "48000", "-c", "1", "-b", "16"])
        .arg(&clip)
        .args(["pad", "0", "0.8"]));
    let (samples, _) = read_wav(&clip);
    let clip_s = samples.len() as f64 / 48_000.0;
    let repeats = (seconds as f64 / clip_s).ceil().max(1.0) as u64;
    run(Command::new(&sox)
        .arg(&clip)
        .arg(&long)
        .args(["repeat", &(repeats - 1).to_string()]));
    long
}

// ----- part 0 ------------------------------------------------------------------------------

/// Both programs started, no call: CPU and wake-ups over [`IDLE`].
fn idle(out: &mut String, ticks: u64, speech: &Path) {
    let net = Net::for_test("bench::call_cost::idle");
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        net.ip(hosts::BARESIP),
        BaresipOptions {
            register: false,
            audio_source: AudioSource::File(speech.to_path_buf()),
            record: false,
            verbose: false,
            extra_config: vec!["statmode_default\toff".to_owned()],
            ..BaresipOptions::default()
        },
    );
    let cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_log_level("info")
        .with_audio(&format!(
            "backend = \"file\"\nfile_in = \"{}\"\n",
            speech.display()
        ));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    thread::sleep(Duration::from_millis(500));
    let from = (
        cpu_seconds(sb.pid(), ticks),
        cpu_seconds(bob.pid(), ticks),
        switches(sb.pid(), None),
        switches(sb.pid(), Some("media")),
        switches(bob.pid(), None),
    );
    thread::sleep(IDLE);
    let to = (
        cpu_seconds(sb.pid(), ticks),
        cpu_seconds(bob.pid(), ticks),
        switches(sb.pid(), None),
        switches(sb.pid(), Some("media")),
        switches(bob.pid(), None),
    );
    let per_minute = 60.0 / IDLE.as_secs_f64();
    let total = |(user, sys): (f64, f64)| user + sys;
    let per_s = |n: u64| n as f64 / IDLE.as_secs_f64();
    let _ = writeln!(
        out,
        "0. Idle, no call, {} s (switchboard with file audio, baresip with aufile):",
        IDLE.as_secs()
    );
    let _ = writeln!(
        out,
        "   switchboard: CPU {:.3} s per minute, {:.1} wake-ups/s in all threads, {:.1} in the media thread",
        (total(to.0) - total(from.0)) * per_minute,
        per_s(to.2 - from.2),
        per_s(to.3 - from.3)
    );
    let _ = writeln!(
        out,
        "   baresip:     CPU {:.3} s per minute, {:.1} wake-ups/s in all threads",
        (total(to.1) - total(from.1)) * per_minute,
        per_s(to.4 - from.4)
    );
    assert!(sb.quit_and_wait(secs(10)).success(), "switchboard quit");
}

/// Context switches (voluntary + involuntary) of the threads of `pid`, or of those named
/// `name`: each is a wake-up.
fn switches(pid: u32, name: Option<&str>) -> u64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            name.is_none_or(|n| {
                fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == n)
            })
        })
        .filter_map(|t| fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

// ----- part 1 ------------------------------------------------------------------------------

/// One measured call of part 1.
struct Variant {
    /// Its heading.
    name: &'static str,
    /// The codec both sides use: `"opus"` (PCMU when baresip has no Opus) or `"g722"`.
    codec: &'static str,
    /// Extra `[audio]` lines for switchboard.
    audio: &'static str,
    /// Extra `config` lines for baresip doing the same.
    baresip: &'static [&'static str],
}

/// The calls of part 1: the default Opus call, G.722, and Opus with the microphone's noise
/// suppression and AGC on (the added CPU per call of each is the difference to the first).
const VARIANTS: [Variant; 3] = [
    Variant {
        name: "Opus, noise suppression and AGC off",
        codec: "opus",
        audio: "",
        baresip: &[],
    },
    Variant {
        name: "G.722, noise suppression and AGC off",
        codec: "g722",
        audio: "",
        baresip: &[],
    },
    Variant {
        name: "Opus, noise suppression and AGC on",
        codec: "opus",
        audio: "noise_suppression = true\nagc = true\n",
        baresip: &["module\t\t\tspeex_pp.so"],
    },
];

/// CPU time and peak memory of one process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    /// utime + stime, per minute of call. (Not split: the kernel apportions the precise total
    /// between the two by 100 Hz tick samples, which alias with a thread waking every 20 ms.)
    cpu_per_min: f64,
    /// `VmHWM`.
    peak_mib: f64,
    /// Resident at the hangup: mapped from files (code, libraries) and anonymous (heap,
    /// stacks, relocated data), `RssFile` and `RssAnon`.
    file_mib: f64,
    anon_mib: f64,
}

/// What one call of part 1 measured.
struct CallCost {
    wall: f64,
    ours: Usage,
    theirs: Usage,
    /// CPU seconds by thread name, for each side.
    threads: (String, String),
    /// The codecs each side reported.
    codecs: String,
    /// switchboard's receive loss (percent) and jitter buffer (ms) in its last quality report.
    heard: (f64, u64),
}

fn measure_call(ticks: u64, variant: &Variant, speech: &Path, call: Duration) -> CallCost {
    let net = Net::for_test("bench::call_cost::cpu");

    // Opus if this baresip has the module, else PCMU for both; or G.722 for both.
    let has_opus = Path::new(BARESIP_MODULES).join("opus.so").is_file();
    let (codec, baresip_codecs, mut extra_config) = if variant.codec == "g722" {
        ("g722", "G722", vec!["module\t\t\tg722.so".to_owned()])
    } else if has_opus {
        (
            "opus",
            "opus/48000/2",
            vec![
                "module\t\t\topus.so".to_owned(),
                // The same encoder work as switchboard's defaults ([codecs] opus_*): the
                // VoIP application, bitrate, complexity, in-band FEC for 10 % loss (FEC
                // encodes each frame a second time, at low rate), and mono.
                format!("opus_bitrate\t\t{OPUS_BITRATE}"),
                format!("opus_complexity\t\t{OPUS_COMPLEXITY}"),
                "opus_application\tvoip".to_owned(),
                "opus_inbandfec\t\tyes".to_owned(),
                "opus_packet_loss\t10".to_owned(),
                "opus_stereo\t\tno".to_owned(),
                "opus_sprop_stereo\tno".to_owned(),
            ],
        )
    } else {
        ("pcmu", "PCMU", Vec::new())
    };
    // The file is 48 kHz mono: read it as such (baresip converts to the codec's format).
    extra_config.push("ausrc_srate\t\t48000".to_owned());
    extra_config.push("ausrc_channels\t\t1".to_owned());
    // No call status line every second on the console.
    extra_config.push("statmode_default\toff".to_owned());
    extra_config.extend(variant.baresip.iter().map(|l| (*l).to_owned()));
    let bob_ip = net.ip(hosts::BARESIP);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        bob_ip,
        BaresipOptions {
            register: false,
            audio_source: AudioSource::File(speech.to_path_buf()),
            codecs: baresip_codecs.to_owned(),
            extra_config,
            record: false,
            verbose: false,
            ..BaresipOptions::default()
        },
    );
    let cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_log_level("info")
        .with_codecs(&[codec])
        .with_audio(&format!(
            "backend = \"file\"\nfile_in = \"{}\"\n{}",
            speech.display(),
            variant.audio
        ));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial {}", bob.direct_uri()));
    sb.wait_call_state(secs(10), 1, "connected");
    let from = (
        Instant::now(),
        cpu_seconds(sb.pid(), ticks),
        cpu_seconds(bob.pid(), ticks),
    );
    let threads_from = (thread_ticks(sb.pid()), thread_ticks(bob.pid()));
    let media = sb.wait_for(secs(3), "media");
    let our_codec = media["codec"].as_str().unwrap_or("?").to_owned();
    // What baresip says it encodes and decodes with (bounded: it logs this on answering).
    let encoder = bob.wait_log("Set audio encoder:", secs(3));
    let decoder = bob.wait_log("Set audio decoder:", secs(3));
    let theirs = |line: &str| {
        let line = common::process::strip_ansi(line);
        line.rsplit_once(": ")
            .map_or(String::new(), |(_, r)| r.trim().to_owned())
    };
    let (their_enc, their_dec) = (theirs(&encoder), theirs(&decoder));
    assert!(
        our_codec.eq_ignore_ascii_case(codec)
            && their_enc.to_lowercase().starts_with(codec)
            && their_dec.to_lowercase().starts_with(codec),
        "the call does not use {codec}: switchboard {our_codec:?}, baresip encoder \
         {their_enc:?}, decoder {their_dec:?}"
    );
    // baresip heard our RTP (it logs the first packet of a stream).
    bob.wait_log("incoming rtp for 'audio' established", secs(5));

    thread::sleep(call.saturating_sub(from.0.elapsed()));
    // The call must still be up: no `ended` on our side, baresip alive.
    let events = sb.events();
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "call" && e["state"] == "ended"),
        "the call ended early\n{}",
        sb.failure_report()
    );
    let to = (
        Instant::now(),
        cpu_seconds(sb.pid(), ticks),
        cpu_seconds(bob.pid(), ticks),
    );
    let threads = (
        thread_breakdown(&threads_from.0, &thread_ticks(sb.pid()), ticks),
        thread_breakdown(&threads_from.1, &thread_ticks(bob.pid()), ticks),
    );
    let wall = to.0.duration_since(from.0).as_secs_f64();
    let total = |(user, sys): (f64, f64)| user + sys;
    let per_min = 60.0 / wall;
    let usage = |pid: u32, cpu: f64| Usage {
        cpu_per_min: cpu * per_min,
        peak_mib: memory_mib(pid, "VmHWM:"),
        file_mib: memory_mib(pid, "RssFile:"),
        anon_mib: memory_mib(pid, "RssAnon:"),
    };
    let ours = usage(sb.pid(), total(to.1) - total(from.1));
    let theirs = usage(bob.pid(), total(to.2) - total(from.2));
    // switchboard heard baresip: its last quality report has audio waiting in the jitter
    // buffer and little loss.
    let quality = events
        .iter()
        .rfind(|e| e["event"] == "quality")
        .cloned()
        .unwrap_or_default();
    let buffer_ms = quality["buffer_ms"].as_u64().unwrap_or(0);
    let loss_pct = quality["loss_pct"].as_f64().unwrap_or(100.0);
    assert!(
        buffer_ms > 0 && loss_pct < 5.0,
        "switchboard hears no audio from baresip: last quality event {quality}"
    );
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(sb.quit_and_wait(secs(10)).success(), "switchboard quit");
    CallCost {
        wall,
        ours,
        theirs,
        threads,
        codecs: format!(
            "switchboard {our_codec}; baresip encoder {their_enc}, decoder {their_dec}"
        ),
        heard: (loss_pct, buffer_ms),
    }
}

/// Median and spread of `values`: `median (min–max)`.
fn spread(values: &[f64], decimals: usize) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let (min, max) = (
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    );
    format!("{median:.decimals$} ({min:.decimals$}-{max:.decimals$})")
}

fn report_variant(out: &mut String, variant: &Variant, calls: &[CallCost]) {
    let _ = writeln!(
        out,
        "1. CPU and memory, {}: {} calls of {:.0} s, switchboard -> baresip peer to peer on loopback",
        variant.name,
        calls.len(),
        calls.first().map_or(0.0, |c| c.wall)
    );
    if let Some(first) = calls.first() {
        let _ = writeln!(out, "   codec: {}", first.codecs);
    }
    let _ = writeln!(
        out,
        "   {:<7} {:>16} {:>16} {:>7} {:>14} {:>14} {:>25}",
        "round",
        "sb CPU s/min",
        "bs CPU s/min",
        "ratio",
        "sb peak MiB",
        "bs peak MiB",
        "sb rx loss %, buffer ms"
    );
    for (i, c) in calls.iter().enumerate() {
        let _ = writeln!(
            out,
            "   {:<7} {:>16.3} {:>16.3} {:>7.2} {:>14.1} {:>14.1} {:>25}",
            i + 1,
            c.ours.cpu_per_min,
            c.theirs.cpu_per_min,
            c.ours.cpu_per_min / c.theirs.cpu_per_min.max(1e-9),
            c.ours.peak_mib,
            c.theirs.peak_mib,
            format!("{:.1}, {}", c.heard.0, c.heard.1)
        );
    }
    let pick = |f: &dyn Fn(&CallCost) -> f64| calls.iter().map(f).collect::<Vec<_>>();
    let ratios = pick(&|c| c.ours.cpu_per_min / c.theirs.cpu_per_min.max(1e-9));
    let ours_peak = pick(&|c| c.ours.peak_mib);
    let _ = writeln!(
        out,
        "   median (min-max): switchboard {} s CPU per minute, baresip {}; ratio {}",
        spread(&pick(&|c| c.ours.cpu_per_min), 3),
        spread(&pick(&|c| c.theirs.cpu_per_min), 3),
        spread(&ratios, 2)
    );
    let _ = writeln!(
        out,
        "   peak RSS (VmHWM) MiB: switchboard {}, baresip {}",
        spread(&ours_peak, 1),
        spread(&pick(&|c| c.theirs.peak_mib), 1)
    );
    let _ = writeln!(
        out,
        "   resident at the hangup, file-backed + anonymous MiB: switchboard {} + {}, baresip {} + {}",
        spread(&pick(&|c| c.ours.file_mib), 1),
        spread(&pick(&|c| c.ours.anon_mib), 1),
        spread(&pick(&|c| c.theirs.file_mib), 1),
        spread(&pick(&|c| c.theirs.anon_mib), 1)
    );
    let _ = writeln!(
        out,
        "   aims: CPU ratio <= {AIM_CPU_RATIO}: {}; switchboard peak RSS <= {AIM_RSS_MIB} MiB: {}",
        verdict(median(&ratios) <= AIM_CPU_RATIO),
        verdict(median(&ours_peak) <= AIM_RSS_MIB)
    );
    if let Some(last) = calls.last() {
        let _ = writeln!(
            out,
            "   by thread (last round), switchboard: {}",
            last.threads.0
        );
        let _ = writeln!(
            out,
            "   by thread (last round), baresip:     {}",
            last.threads.1
        );
    }
}

/// `(utime, stime)` of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32, ticks: u64) -> (f64, f64) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/stat: {e}"));
    let (_, user, sys) = stat_fields(&stat);
    (user as f64 / ticks as f64, sys as f64 / ticks as f64)
}

/// `(comm, utime + stime in ticks)` from the text of a `/proc/…/stat` file.
fn stat_ticks(stat: &str) -> (String, u64) {
    let (comm, user, sys) = stat_fields(stat);
    (comm, user + sys)
}

/// `(comm, utime, stime)` in ticks from the text of a `/proc/…/stat` file.
fn stat_fields(stat: &str) -> (String, u64, u64) {
    let comm = stat
        .split_once('(')
        .and_then(|(_, r)| r.rsplit_once(')'))
        .map_or(String::new(), |(c, _)| c.to_owned());
    // "pid (comm) state ppid ..." -- comm may contain spaces: split after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the man page, so utime (14) and stime (15) are 11, 12.
    let field = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    (comm, field(11), field(12))
}

/// Every thread of a process: tid → (name, CPU ticks so far).
fn thread_ticks(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| {
            let tid = t.file_name().to_string_lossy().parse().ok()?;
            let stat = fs::read_to_string(t.path().join("stat")).ok()?;
            Some((tid, stat_ticks(&stat)))
        })
        .collect()
}

/// CPU seconds per thread name between two [`thread_ticks`] samples, biggest first
/// (threads born in between count from zero; threads gone by the end are left out).
fn thread_breakdown(
    from: &BTreeMap<u32, (String, u64)>,
    to: &BTreeMap<u32, (String, u64)>,
    ticks: u64,
) -> String {
    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    for (tid, (name, t)) in to {
        let before = from.get(tid).map_or(0, |(_, b)| *b);
        *by_name.entry(name).or_default() += t.saturating_sub(before);
    }
    let mut rows: Vec<(&str, u64)> = by_name.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows.iter()
        .map(|(name, t)| format!("{name} {:.2}", *t as f64 / ticks as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A memory figure of `/proc/<pid>/status` (`"VmHWM:"` peak RSS, `"VmRSS:"` RSS), in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

// ----- part 2 ------------------------------------------------------------------------------

fn latency(out: &mut String) {
    let net = Net::for_test("bench::call_cost::latency");
    let dir = common::run_dir("bench-latency");
    let signal = dir.path().join("signal.wav");
    let reference = write_test_signal(&signal, 3.0);
    let callee_out = dir.path().join("callee_out.wav");
    let file_audio = |file_in: Option<&Path>, file_out: &Path| {
        let mut s = String::from("backend = \"file\"\nfile_loop = true\n");
        if let Some(f) = file_in {
            let _ = writeln!(s, "file_in = \"{}\"", f.display());
        }
        let _ = writeln!(s, "file_out = \"{}\"", file_out.display());
        s
    };
    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_log_level("info")
        .with_codecs(&["opus"])
        .with_audio(&file_audio(
            Some(&signal),
            &dir.path().join("caller_out.wav"),
        ));
    let ip = net.ip(CALLEE);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_log_level("info")
        .with_codecs(&["opus"])
        .with_audio(&file_audio(None, &callee_out));
    callee_cfg = callee_cfg.at(ip, "bob");
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    let mut callee = callee_in_phase(&caller, &callee_cfg.to_toml());
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    let codec = caller.wait_for(secs(3), "media")["codec"].clone();
    thread::sleep(LATENCY_CALL);
    // The second quality event is due about now; wait for it (bounded).
    let first = callee.wait_for(secs(3), "quality");
    let second = callee.wait_for(secs(6), "quality");
    // Audio past the second event, for the delay measured just before it.
    thread::sleep(Duration::from_secs(1));
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success(), "caller quit");
    assert!(callee.quit_and_wait(secs(10)).success(), "callee quit");

    let (recording, rate) = read_wav(&callee_out);
    assert_eq!(rate, 48_000, "callee recording rate");
    let (_, onset_plus_1s) = after_onset(&recording).expect("the callee heard the signal");
    let (Some(caller_clock), Some(callee_clock)) =
        (caller.media_clock_start(), callee.media_clock_start())
    else {
        panic!("no `media clock started` line in a switchboard log");
    };
    // The jitter buffer may still settle after the start, so D is measured in the 1.5 s
    // before each quality event (5 s and 10 s into the stream): an excerpt starting 3 s
    // (8 s) after the first sound, whose alignment window is its 0.5..2 s.
    let _ = writeln!(
        out,
        "2. Client-added latency: {} s call switchboard -> switchboard, codec {codec}, \
         file audio, loopback",
        LATENCY_CALL.as_secs()
    );
    let phase = (callee_clock - caller_clock).rem_euclid(20.0);
    let _ = writeln!(
        out,
        "   media clock phase, callee tick after caller tick: {phase:.0} ms (aimed at \
         {PHASE_MIN_MS}..{PHASE_MAX_MS}; a real call's is anywhere in 0..20, mean 10)"
    );
    let _ = writeln!(
        out,
        "   {:<10} {:>7} {:>10} {:>12} {:>20} {:>6}",
        "stream at", "D ms", "buffer ms", "D-buffer ms", "D-buffer-phase ms", "ncc"
    );
    for (at_s, quality) in [(5, &first), (10, &second)] {
        let start = onset_plus_1s + (at_s as usize * 48_000).saturating_sub(3 * 48_000);
        let Some(excerpt) = recording.get(start..(start + 2 * 48_000).min(recording.len())) else {
            continue;
        };
        if excerpt.len() < 2 * 48_000 {
            continue;
        }
        let (lag_ms, ncc) = align_with_loop(excerpt, &reference);
        let delay = mouth_to_ear_ms(caller_clock, callee_clock, start, lag_ms, reference.len());
        let buffer = quality["buffer_ms"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "   {:<10} {:>7.1} {:>10.0} {:>12.1} {:>20.1} {:>6.3}{}",
            format!("{at_s} s"),
            delay,
            buffer,
            delay - buffer,
            delay - buffer - phase,
            ncc,
            if ncc < 0.6 {
                "  (weak alignment: the playout may have moved by a frame here)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        out,
        "   (D = mouth-to-ear, file in -> file out; buffer = buffer_ms of the callee's quality \
         event;\n    file backends have no device buffering: D - buffer is the Opus look-ahead \
         (6.5 ms),\n    the wait for the callee's next media tick (the phase above, 0-20 ms) \
         and the loopback network)"
    );
    let _ = writeln!(
        out,
        "   a sound card adds what its adaptive cushions hold (src/media/device/cushion.rs; \
         not measured here, see benches/latency_pulse.rs):"
    );
    let _ = writeln!(
        out,
        "     capture: a margin beyond the frame read, from half a device period, growing by a \
         period when the ring runs dry\n\
         \x20    packetisation: a packet is complete only after its last frame, 20 ms by \
         default (file audio hands it over at once)\n\
         \x20    playback: a cushion ahead of the frames, adapted the same way (it settles \
         a quarter to half a period beyond a period on a steady device)\n\
         \x20    plus the device's own periods, resampler delay when it is not at 48 kHz, \
         and the driver's latency"
    );
}

/// The callee's media clock should tick this long after the caller's (ms, mod 20): away
/// from 0/20, where a packet's arrival races the callee's tick and the playout moves by a
/// frame now and then (seen in a trial run: D jumped by 20 ms within a 10 s call).
const PHASE_MIN_MS: f64 = 5.0;
const PHASE_MAX_MS: f64 = 15.0;

/// Starts the callee (`toml`), restarting it (up to 8 tries) until its media clock ticks
/// [`PHASE_MIN_MS`]..[`PHASE_MAX_MS`] after the caller's, so the measured delay does not
/// depend on the luck of the start; keeps the last try if none lands there.
fn callee_in_phase(caller: &Switchboard, toml: &str) -> Switchboard {
    let clock = |sb: &Switchboard| {
        common::process::wait_until(secs(3), || sb.media_clock_start())
            .unwrap_or_else(|| panic!("no `media clock started` line\n{}", sb.failure_report()))
    };
    let caller_clock = clock(caller);
    let mut tries = 0;
    loop {
        tries += 1;
        let mut callee = Switchboard::start(toml);
        callee.wait_for(secs(10), "started");
        let phase = (clock(&callee) - caller_clock).rem_euclid(20.0);
        if (PHASE_MIN_MS..=PHASE_MAX_MS).contains(&phase) || tries == 8 {
            return callee;
        }
        assert!(callee.quit_and_wait(secs(10)).success(), "callee quit");
    }
}

// ----- the machine -------------------------------------------------------------------------

/// Clock ticks per second: `Ok` from `getconf CLK_TCK`, `Err(100)` if that fails.
fn clock_ticks() -> Result<u64, u64> {
    command_line("getconf", &["CLK_TCK"])
        .parse::<u64>()
        .ok()
        .filter(|t| *t > 0)
        .ok_or(100)
}

/// The trimmed stdout of a short command, or a note if it failed.
fn command_line(program: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let done = common::process::run_bounded(&mut cmd, secs(5));
    if done.success() {
        done.stdout.trim().to_owned()
    } else {
        format!("({program} failed)")
    }
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|v| v.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn baresip_version() -> String {
    let Some(path) = common::process::find_in_path("baresip") else {
        return "not installed".to_owned();
    };
    // `dpkg-query` knows the packaged version without starting baresip.
    let v = command_line("dpkg-query", &["-W", "-f", "${Version}", "baresip"]);
    format!("{} {v}", path.display())
}

/// Whether the binary looks like an optimised build, judged by its target directory.
fn build_kind(bin: &Path) -> &'static str {
    let parts: Vec<PathBuf> = bin.ancestors().map(Path::to_path_buf).collect();
    if parts.iter().any(|p| p.ends_with("release")) {
        "release build"
    } else if parts.iter().any(|p| p.ends_with("debug")) {
        "DEBUG build: figures are not representative"
    } else {
        "from $SWITCHBOARD_BIN"
    }
}
