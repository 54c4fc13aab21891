//! Spawning, watching and killing peer processes; bounded waiting; log tails.
//!
//! Every peer is spawned as the leader of its own process group (`process_group(0)`), so one
//! `kill -s KILL -- -PGID` also takes its forked workers (kamailio forks about ten). The group is
//! only signalled while the leader is not yet reaped, which keeps its PID (= PGID) from being
//! reused under us.

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often bounded waits poll.
pub const POLL: Duration = Duration::from_millis(20);

/// A running peer process (the leader of its own process group) plus the log files that
/// explain what it did. Dropping it kills the group and reaps the leader.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    logs: Vec<PathBuf>,
}

impl Peer {
    /// Spawns `cmd` as a new process group. `logs` are the files shown (tail) when a test
    /// fails while this peer is alive. Panics if the program cannot be started.
    pub fn spawn(name: &str, cmd: &mut Command, logs: Vec<PathBuf>) -> Peer {
        cmd.process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("lab: cannot start {name} ({cmd:?}): {e}"));
        Peer {
            name: name.to_owned(),
            child,
            status: None,
            logs,
        }
    }

    /// The peer's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The leader's PID (= the process group ID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Direct access to the child, e.g. to take its stdin or stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The exit status if the leader has exited (then it is reaped), else `None`.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("lab: waitpid failed");
        }
        self.status
    }

    /// Waits up to `timeout` for the leader to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` (e.g. `"INT"`) to the whole process group, if the leader is not reaped.
    pub fn signal(&mut self, signal: &str) {
        if self.try_wait().is_none() {
            signal_group(self.pid(), signal);
        }
    }

    /// Kills the whole process group with SIGKILL (if the leader is not reaped yet) and reaps
    /// the leader, waiting at most 5 s. Idempotent.
    pub fn kill(&mut self) {
        if self.status.is_some() {
            return;
        }
        let pgid = self.pid();
        signal_group(pgid, "KILL");
        // Belt and braces, in case the group kill could not run.
        let _ = self.child.kill();
        if self.wait_timeout(Duration::from_secs(5)).is_none() {
            eprintln!(
                "lab: {} (pid {pgid}) did not die within 5 s of SIGKILL",
                self.name
            );
        }
        // The other members (e.g. kamailio's workers) die asynchronously: wait for them too,
        // so their sockets are closed when this returns.
        if wait_until(Duration::from_secs(2), || {
            (live_group_members(pgid) == 0).then_some(())
        })
        .is_none()
        {
            eprintln!(
                "lab: {} (group {pgid}): {} process(es) still alive 2 s after SIGKILL",
                self.name,
                live_group_members(pgid)
            );
        }
    }

    /// The last `lines` lines of each log file, with headers, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in &self.logs {
            out.push_str(&format!(
                "----- {} {} (last {lines} lines) -----\n{}\n",
                self.name,
                log.display(),
                tail(log, lines)
            ));
        }
        out
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let was_running = self.status.is_none();
        self.kill();
        if thread::panicking() {
            eprintln!(
                "lab: test failed; {} (pid {}, {}):\n{}",
                self.name,
                self.pid(),
                if was_running {
                    "killed now".to_owned()
                } else {
                    format!("had exited: {:?}", self.status)
                },
                self.log_tails(40)
            );
        }
    }
}

/// Number of processes in process group `pgid` that are not dead yet (zombies, which hold no
/// resources, are not counted), per `/proc/*/stat`.
pub fn live_group_members(pgid: u32) -> usize {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    let pgid = pgid.to_string();
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after ')'.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            !matches!(fields.first(), Some(&"Z") | Some(&"X")) && fields.get(2) == Some(&&*pgid)
        })
        .count()
}

/// Sends `signal` (a name like `"KILL"` or `"TERM"`) to the process group `pgid`.
///
/// std cannot signal a process group, so this runs the shell's `kill` builtin (`/bin/sh` is
/// essential on Debian; `/bin/kill` comes from procps, which minimal images lack).
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("/bin/sh")
        .args(["-c", "kill -s \"$0\" -- \"-$1\"", signal, &pgid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The result of [`run_bounded`].
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit status, or `None` if the command was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Finished {
    /// Exited by itself with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Runs a short-lived tool (sipsak, kamcmd, sox...) to completion, killing it (and its process
/// group) if it takes longer than `timeout`. Panics only if it cannot be started.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = format!("{cmd:?}");
    let mut peer = Peer::spawn(&program, cmd, Vec::new());
    let mut stdout = peer.child.stdout.take().expect("stdout is piped");
    let mut stderr = peer.child.stderr.take().expect("stderr is piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let status = peer.wait_timeout(timeout);
    // Kills the group if still running, which closes the pipes and ends the readers.
    drop(peer);
    Finished {
        status,
        stdout: join_bounded(out_reader, Duration::from_secs(2)).unwrap_or_default(),
        stderr: join_bounded(err_reader, Duration::from_secs(2)).unwrap_or_default(),
    }
}

/// Joins `handle` if its thread finishes within `timeout`; otherwise leaves it detached and
/// returns `None` (also if the thread panicked).
pub fn join_bounded<T>(handle: thread::JoinHandle<T>, timeout: Duration) -> Option<T> {
    wait_until(timeout, || handle.is_finished().then_some(()))?;
    handle.join().ok()
}

/// Polls `check` every [`POLL`] until it returns `Some`, or `timeout` passes (then `None`).
/// `check` is always called at least once.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// The file's content (lossy UTF-8), or an empty string if it cannot be read.
pub fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of a file (lossy UTF-8); a note if it cannot be read.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => tail_str(&String::from_utf8_lossy(&bytes), lines),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// The last `lines` lines of a string.
pub fn tail_str(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`), e.g. the colours baresip
/// prints around errors.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, up to and including the final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether some socket is bound to exactly `addr` (UDP, IPv4), per `/proc/net/udp`.
pub fn udp_bound(addr: SocketAddr) -> bool {
    let SocketAddr::V4(v4) = addr else {
        return false;
    };
    // /proc/net/udp shows the address as the 32-bit value in host byte order, in hex.
    let ip = u32::from_ne_bytes(v4.ip().octets());
    let wanted = format!("{ip:08X}:{:04X}", v4.port());
    fs::read_to_string("/proc/net/udp")
        .map(|table| {
            table
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
        })
        .unwrap_or(false)
}

/// The full path of `program` if it is an executable file on `PATH`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}
