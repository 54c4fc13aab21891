//! A private PulseAudio for cpal: null sinks paced by a real clock, reached through ALSA's
//! `pulse` device (see LAB.md, "Headless audio for cpal itself").
//!
//! [`SoundServer::start`] runs `pulseaudio` with its state, socket and log in the caller's
//! directory and the modules given (null sinks, remaps, a combine sink…); a client is pointed
//! at it, and at its own source and sink, with [`SoundServer::client_env`] (`PULSE_SERVER`,
//! `PULSE_SOURCE`, `PULSE_SINK`: libpulse's defaults, which ALSA's `pulse` device follows).
//! The daemon dies with the handle, like every lab peer. Started with
//! [`SoundServer::start_debug`] it logs at debug level, and
//! [`SoundServer::underruns`] counts the times a client's playback stream ran empty.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{self, Peer};
use super::require_tool;

/// A running private PulseAudio daemon.
#[derive(Debug)]
pub struct SoundServer {
    socket: PathBuf,
    log: PathBuf,
    home: PathBuf,
    runtime: PathBuf,
    peer: Peer,
}

impl SoundServer {
    /// Starts `pulseaudio` under `dir` with these `-L` modules (loaded in order after the
    /// native protocol's socket), and waits (at most 5 s) until `pactl` reaches it.
    pub fn start(dir: &Path, modules: &[&str]) -> SoundServer {
        SoundServer::start_logging(dir, modules, "notice")
    }

    /// [`start`](Self::start), logging at debug level: what [`underruns`](Self::underruns)
    /// reads.
    pub fn start_debug(dir: &Path, modules: &[&str]) -> SoundServer {
        SoundServer::start_logging(dir, modules, "debug")
    }

    fn start_logging(dir: &Path, modules: &[&str], level: &str) -> SoundServer {
        let pulseaudio = require_tool("pulseaudio", "pulseaudio");
        require_tool("pactl", "pulseaudio-utils");
        let home = dir.join("pulse-home");
        let runtime = dir.join("pulse-run");
        for d in [&home, &runtime] {
            fs::create_dir_all(d).expect("creating the PulseAudio directories");
        }
        // The clients' cookie (`PULSE_COOKIE`): the server takes anyone (auth-anonymous), but
        // the pure-Rust client of cpal's PulseAudio host sends an empty cookie when it finds
        // no file, which the server refuses as a protocol error; libpulse sends 256 bytes.
        fs::write(home.join("cookie"), [0u8; 256]).expect("writing the clients' cookie");
        let socket = dir.join("pulse.sock");
        let log = dir.join("pulseaudio.log");
        let out = fs::File::create(&log).expect("creating pulseaudio.log");
        let mut cmd = Command::new(pulseaudio);
        cmd.args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disable-shm=yes",
            "--use-pid-file=no",
            "--system=no",
            &format!("--log-level={level}"),
        ])
        .arg("-L")
        .arg(format!(
            "module-native-protocol-unix socket={} auth-anonymous=1",
            socket.display()
        ));
        for m in modules {
            cmd.arg("-L").arg(m);
        }
        cmd.current_dir(dir)
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("cloning a file handle"))
            .stderr(out);
        let mut server = SoundServer {
            socket,
            log: log.clone(),
            home,
            runtime,
            peer: Peer::spawn("pulseaudio", &mut cmd, vec![log]),
        };
        let ready = process::wait_until(Duration::from_secs(5), || {
            if let Some(status) = server.peer.try_wait() {
                panic!(
                    "pulseaudio exited during start-up ({status}):\n{}",
                    server.peer.log_tails(40)
                );
            }
            server.pactl(&["info"]).then_some(())
        });
        assert!(
            ready.is_some(),
            "pulseaudio did not answer within 5 s:\n{}",
            server.peer.log_tails(40)
        );
        server
    }

    /// The environment of a client of this server, on the server's default source and sink.
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PULSE_SERVER".into(),
                format!("unix:{}", self.socket.display()),
            ),
            ("XDG_RUNTIME_DIR".into(), self.runtime.display().to_string()),
            (
                "PULSE_COOKIE".into(),
                self.home.join("cookie").display().to_string(),
            ),
        ]
    }

    /// The environment of a client of this server whose default source and sink are these.
    pub fn client_env(&self, source: &str, sink: &str) -> Vec<(String, String)> {
        let mut env = self.server_env();
        env.push(("PULSE_SOURCE".into(), source.into()));
        env.push(("PULSE_SINK".into(), sink.into()));
        env
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }

    /// A command for one of PulseAudio's own tools (`pactl`, `paplay`, `parec`) talking to
    /// this server.
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("PULSE_SERVER", format!("unix:{}", self.socket.display()))
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .env("HOME", &self.home);
        cmd
    }

    /// Runs `pactl ARGS` (at most 10 s); true when it succeeded.
    pub fn pactl(&self, args: &[&str]) -> bool {
        let mut cmd = self.tool("pactl");
        cmd.args(args);
        process::run_bounded(&mut cmd, Duration::from_secs(10)).success()
    }

    /// Runs `pactl ARGS` (at most 10 s) and returns what it printed; panics if it failed.
    pub fn pactl_output(&self, args: &[&str]) -> String {
        let out = self
            .tool("pactl")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running pactl {args:?}: {e}"));
        assert!(
            out.status.success(),
            "pactl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many times so far a client's playback stream ran empty while the server needed
    /// its audio and played silence instead (its debug log's `Implicit underrun of '…'` and
    /// `Actual underrun of '…'` lines, written once per underrun whatever the client did
    /// about it); 0 unless started with [`start_debug`](Self::start_debug).
    pub fn underruns(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("Implicit underrun of") || l.contains("Actual underrun of"))
            .count()
    }

    /// The daemon's log file (at debug level it names each underrun's stream).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The daemon's log, for reports.
    pub fn log_tail(&self, lines: usize) -> String {
        self.peer.log_tails(lines)
    }
}
