//! The media thread while no call, tone or sound check needs it: it sleeps on its order
//! channel and does not wake (counted as the context switches of the thread named `media` in
//! `/proc/<pid>/task/*/status`, which a 20 ms tick would raise by about 50 a second), and it
//! goes back to sleep after the sound check's level meter has run.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::{secs, Net, Switchboard, SwitchboardConfig};

/// Context switches (voluntary + involuntary) of the `media` thread of process `pid`.
fn media_switches(pid: u32) -> u64 {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).expect("reading the process's tasks");
    for task in tasks.filter_map(Result::ok) {
        let comm = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "media" {
            continue;
        }
        let status = fs::read_to_string(task.path().join("status")).expect("a task's status");
        return status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
    }
    panic!("switchboard (pid {pid}) has no thread named media");
}

/// The media thread's wake-ups over `window` of idleness.
fn wakeups_over(sb: &Switchboard, window: Duration) -> u64 {
    let before = media_switches(sb.pid());
    thread::sleep(window);
    media_switches(sb.pid()) - before
}

/// At most this many wake-ups in an idle window (a stray order; a tick would give ~50/s).
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
