//! The full-screen switchboard in a real terminal: a private tmux server (its own socket in the
//! run directory, so parallel tests never share one) runs the binary in a window of a fixed
//! size; the test types with `send-keys` and reads the screen with `capture-pane`, as a person
//! would. The server is killed when the handle drops; on a failing test the last screen is
//! printed, on a passing one its `--sip-capture` is checked like the headless harness's
//! ([`super::wire`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::switchboard::switchboard_bin;
use super::{require_tool, run_dir, wire};

/// A switchboard running its screen inside tmux.
pub struct TmuxScreen {
    tmux: PathBuf,
    socket: PathBuf,
    /// switchboard's PID (the pane's process: the shell `exec`s it).
    pid: Option<i32>,
    dir: tempfile::TempDir,
}

impl TmuxScreen {
    /// Starts `switchboard --config FILE` (no `--headless`) with `config_toml`, in a
    /// `width`×`height` window, with its own HOME and XDG directories in the run directory.
    pub fn start(config_toml: &str, width: u16, height: u16) -> TmuxScreen {
        TmuxScreen::launch(Some(config_toml), width, height)
    }

    /// Starts switchboard without `--config` and with no file at its default path
    /// ([`TmuxScreen::config_home`]`/switchboard/config.toml`): a first start.
    pub fn first_start(width: u16, height: u16) -> TmuxScreen {
        TmuxScreen::launch(None, width, height)
    }

    fn launch(config_toml: Option<&str>, width: u16, height: u16) -> TmuxScreen {
        let tmux = require_tool("tmux", "tmux");
        let dir = run_dir("tmux");
        let config = match config_toml {
            Some(text) => {
                let config = dir.path().join("switchboard.toml");
                fs::write(&config, text).expect("writing the switchboard config");
                format!("--config {}", config.display())
            }
            None => String::new(),
        };
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("creating switchboard's HOME");
        let log = dir.path().join("switchboard.log");
        let socket = dir.path().join("tmux.sock");
        let command = format!(
            "exec env HOME={home} XDG_DATA_HOME={home}/.local/share \
             XDG_STATE_HOME={home}/.local/state XDG_CONFIG_HOME={home}/.config TERM=xterm-256color \
             {bin} {config} --log-file {log} --sip-capture {capture}",
            home = home.display(),
            bin = switchboard_bin().display(),
            log = log.display(),
            capture = dir.path().join(CAPTURE).display(),
        );
        let status = Command::new(&tmux)
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "sb"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed: {status}");
        let mut screen = TmuxScreen {
            tmux,
            socket,
            pid: None,
            dir,
        };
        let pid = screen
            .tmux()
            .args(["display-message", "-p", "-t", "sb", "#{pane_pid}"])
            .output()
            .expect("tmux display-message");
        screen.pid = String::from_utf8_lossy(&pid.stdout).trim().parse().ok();
        screen
    }

    fn tmux(&self) -> Command {
        let mut cmd = Command::new(&self.tmux);
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    /// Types `keys` (tmux key names: `Enter`, `Escape`, `T`, or literal text with `-l`).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "sb"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?} failed");
    }

    /// Types `text` literally, one key at a time (as a person would, so the picker filters
    /// after each key).
    pub fn type_text(&self, text: &str) {
        for c in text.chars() {
            let status = self
                .tmux()
                .args(["send-keys", "-t", "sb", "-l", &c.to_string()])
                .status()
                .expect("tmux send-keys");
            assert!(status.success(), "tmux send-keys {c:?} failed");
            thread::sleep(Duration::from_millis(30));
        }
    }

    /// The screen as text, one line per row (empty once the program has exited).
    pub fn capture(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "sb"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `needle`; returns that screen. Panics with the last screen
    /// and the log after `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                return screen;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the screen did not show {needle:?} within {timeout:?}:\n{screen}\n--- log ---\n{}",
                    self.log_tail(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the program still runs in the window.
    pub fn is_running(&self) -> bool {
        self.tmux()
            .args(["has-session", "-t", "sb"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Waits up to `timeout` for the program (and so the tmux session) to end.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The run directory (config, log, HOME).
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// switchboard's `XDG_CONFIG_HOME`.
    pub fn config_home(&self) -> PathBuf {
        self.dir.path().join("home/.config")
    }

    /// The last `lines` lines of switchboard's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read_to_string(self.dir.path().join("switchboard.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for TmuxScreen {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("--- last screen ---\n{}", self.capture());
        }
        let _ = self.tmux().arg("kill-server").output();
        // Closing the terminal makes switchboard quit politely; the next test must not wait
        // for that (or find its port still bound).
        let ours = |pid: &i32| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("switchboard"))
        };
        if let Some(pid) = self.pid.filter(ours) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        if !thread::panicking() {
            let capture = self.dir.path().join(CAPTURE);
            let problems = wire::problems(&capture, SystemTime::now(), false);
            assert!(
                problems.is_empty(),
                "the screen's SIP ({}) breaks the RFCs:\n{}",
                capture.display(),
                problems.join("\n")
            );
        }
    }
}

/// The `--sip-capture` file in the run directory.
const CAPTURE: &str = "sip.capture";
