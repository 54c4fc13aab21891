//! The media thread while no call, tone or sound check needs it: it sleeps on its order
//! channel and does not wake (counted as the context switches of the thread named `media` in
//! `/proc/<pid>/task/*/status`, which a 10 ms tick would raise by about 100 a second), and it
//! goes back to sleep after the sound check's level meter has run. In a call it wakes once
//! per 10 ms frame: at its tick, not at each packet that arrives.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{secs, Net, Switchboard, SwitchboardConfig};

/// Context switches (voluntary + involuntary) of the `media` thread of process `pid`.
fn media_switches(pid: u32) -> u64 {
    media_thread_switches(
        pid,
        &["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"],
    )
}

/// The `media` thread's context switches of the `kinds` named by `/proc/<pid>/task/*/status`
/// (`voluntary_ctxt_switches`: the times it went to sleep, which a busy machine's preemptions,
/// `nonvoluntary_ctxt_switches`, do not add to).
fn media_thread_switches(pid: u32, kinds: &[&str]) -> u64 {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("reading the process's tasks");
    for task in tasks.filter_map(Result::ok) {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "media" {
            continue;
        }
        let status = fs::read_to_string(task.path().join("status")).expect("a task's status");
        return status
            .lines()
            .filter(|l| l.split(':').next().is_some_and(|k| kinds.contains(&k)))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
    }
    panic!("switchboard (pid {pid}) has no thread named media");
}

/// Waits (at most 10 s) until process `pid` has its `media` thread: the engine starts after
/// the `started` event, later on a busy machine.
fn wait_media_thread(pid: u32) {
    let has_media = || {
        fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .any(|t| fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "media"))
    };
    for _ in 0..200 {
        if has_media() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("switchboard (pid {pid}) started no thread named media within 10 s");
}

/// The media thread's wake-ups over `window` of idleness.
fn wakeups_over(sb: &Switchboard, window: Duration) -> u64 {
    let before = media_switches(sb.pid());
    thread::sleep(window);
    media_switches(sb.pid()) - before
}

/// At most this many wake-ups in an idle window (a stray order; a tick would give ~100/s).
const IDLE_WAKEUPS: u64 = 3;

#[test]
fn the_media_thread_sleeps_while_idle_and_after_the_level_meter() {
    let net = Net::for_test("media_idle::sleeps");
    let dir = tempfile::tempdir().expect("tempdir");
    // A looping microphone file and a headset file: the busiest idle device there is.
    let file_in = common::audio::tone_wav(dir.path(), "in.wav", 440, 1);
    let cfg = SwitchboardConfig::peer_to_peer(&net).with_audio(&format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
        file_in.display(),
        dir.path().join("out.wav").display()
    ));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    wait_media_thread(sb.pid());
    thread::sleep(Duration::from_millis(300)); // start-up orders settle

    let idle = wakeups_over(&sb, secs(2));
    assert!(
        idle <= IDLE_WAKEUPS,
        "the idle media thread woke {idle} times in 2 s"
    );

    // The level meter needs the clock: the thread ticks, then sleeps again when it stops.
    sb.send("level on");
    sb.wait_event(secs(5), |e| e["event"] == "level");
    let metering = wakeups_over(&sb, Duration::from_millis(500));
    assert!(
        metering > 10,
        "the media thread must tick while the meter runs (woke {metering} times in 0.5 s)"
    );
    sb.send("level off");
    thread::sleep(Duration::from_millis(300));
    let after = wakeups_over(&sb, secs(2));
    assert!(
        after <= IDLE_WAKEUPS,
        "after the meter the media thread woke {after} times in 2 s"
    );
    assert!(sb.quit_and_wait(secs(10)).success(), "switchboard quit");
}

/// At most this many times a second the media thread may go to sleep in a call: once per
/// 10 ms tick (100), with room for an order from the driver now and then. Waking for each
/// 20 ms packet as well as for the tick makes it about 150.
const CALL_SLEEPS_PER_S: u64 = 110;

#[test]
fn in_a_call_the_media_thread_wakes_once_per_frame() {
    let net = Net::for_test("media_idle::call");
    let dir = tempfile::tempdir().expect("tempdir");
    let file_in = common::audio::tone_wav(dir.path(), "in.wav", 440, 1);
    let audio = format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\n",
        file_in.display()
    );
    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["opus"])
        .with_audio(&audio);
    let callee_ip = net.ip(6);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["opus"])
        .with_audio(&audio);
    callee_cfg = callee_cfg.at(callee_ip, "bob");
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{callee_ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    thread::sleep(secs(1)); // the streams start

    let window = secs(3);
    let before = media_thread_switches(caller.pid(), &["voluntary_ctxt_switches"]);
    thread::sleep(window);
    let sleeps = media_thread_switches(caller.pid(), &["voluntary_ctxt_switches"]) - before;
    assert!(
        sleeps <= CALL_SLEEPS_PER_S * window.as_secs(),
        "in a call the media thread went to sleep {sleeps} times in {} s",
        window.as_secs()
    );
    // Reading at the ticks still hears the far end: the callee's first quality report has
    // audio waiting in its jitter buffer and little loss.
    let quality = callee.wait_for(secs(6), "quality");
    assert!(
        quality["buffer_ms"].as_u64().unwrap_or(0) > 0
            && quality["loss_pct"].as_f64().unwrap_or(100.0) < 5.0,
        "the callee hears the caller badly: {quality}"
    );
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success(), "caller quit");
    assert!(callee.quit_and_wait(secs(10)).success(), "callee quit");
}
