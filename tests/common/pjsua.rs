//! pjsua2 (pjproject 2.15, the SIP stack Asterisk is built on), headless, as the lab's strictest
//! peer: it calls, answers, holds, transfers blind and attended (REFER with Replaces), is
//! transferred (copies Replaces), takes INVITE with Replaces as a target, plays a WAV and
//! records every call.
//!
//! Set-up: `scripts/ensure-pjsua` makes a virtualenv at `target/lab-venv` with the
//! `pjsua2-python` wheel (`$SWITCHBOARD_LAB_PYTHON` names another interpreter). The harness
//! runs `tests/lab/pjsua_peer.py` there: one user agent on `127.X.Y.20:5060` (UDP; RTP from
//! port 4000 of the same address) with a null sound device, commands on stdin (see the script's
//! docstring: `dial`, `answer`, `hangup`, `hold`, `unhold`, `xfer`, `xfer_replaces`, `refer`,
//! `quit`), one JSON event a line on stdout. Calls are named by pjsua's call number, the
//! `call` field of every event (`incoming`, `dialing`, `state`, `media`, `xfer_request`,
//! `xfer_status`, `replaced`, `recorded`). pjsip's log, SIP messages included, is
//! `DIR/pjsua.log`; what each call heard is `DIR/rec/heard-N.wav` (8 kHz mono), complete once
//! its `recorded` event came (when the call ended).

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::events::{EventStream, WaitFailed};
use super::net::{hosts, Net};
use super::process::{self, Peer};
use super::{lab_dir, run_dir};

/// The Python interpreter with `pjsua2`: `$SWITCHBOARD_LAB_PYTHON`, else the crate's
/// `target/lab-venv/bin/python` (made by `scripts/ensure-pjsua`). Panics naming the script
/// when it is missing.
pub fn lab_python() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_LAB_PYTHON") {
        return PathBuf::from(path);
    }
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/lab-venv/bin/python");
    assert!(
        python.is_file(),
        "the lab's pjsip peer needs {}: run scripts/ensure-pjsua",
        python.display()
    );
    python
}

/// Options for [`Pjsua::start`]. `Default` gives: host `.20`, registering, auto-answer, no
/// audio played, REFERs accepted.
#[derive(Debug, Clone)]
pub struct PjsuaOptions {
    /// Host number in the test's /24 (default [`hosts::PJSUA`]).
    pub host: u8,
    /// Whether to REGISTER at kamailio (peer to peer otherwise, as `user@127.X.Y.host`).
    pub register: bool,
    /// Answer incoming calls at once (180, then 200); otherwise 180 and wait for `answer`.
    pub auto_answer: bool,
    /// A WAV (e.g. [`super::audio::tone_wav`]) played, looped, into every call.
    pub play: Option<PathBuf>,
    /// Whether incoming REFERs are accepted (202) or refused (603); `refer accept|refuse`
    /// changes it later.
    pub accept_refer: bool,
}

impl Default for PjsuaOptions {
    fn default() -> Self {
        PjsuaOptions {
            host: hosts::PJSUA,
            register: true,
            auto_answer: true,
            play: None,
            accept_refer: true,
        }
    }
}

/// A running pjsua2 user agent. Dropping it kills it.
#[derive(Debug)]
pub struct Pjsua {
    user: String,
    domain: Ipv4Addr,
    ip: Ipv4Addr,
    log: PathBuf,
    events: EventStream,
    stdin: Option<ChildStdin>,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Pjsua {
    /// Starts the user agent as `user@kamailio_ip` (password for digest) with `opts`, and
    /// waits (at most 10 s) for its `ready` event. With `opts.register` it registers by
    /// itself; [`Pjsua::wait_registered`] waits for that.
    pub fn start(
        net: &Net,
        user: &str,
        password: &str,
        kamailio_ip: Ipv4Addr,
        opts: PjsuaOptions,
    ) -> Pjsua {
        let python = lab_python();
        let ip = net.ip(opts.host);
        let dir = run_dir("pjsua");
        let rec_dir = dir.path().join("rec");
        fs::create_dir(&rec_dir).expect("creating pjsua's recording directory");
        let log = dir.path().join("pjsua.log");
        let stderr_log = dir.path().join("stderr.log");
        let stderr = fs::File::create(&stderr_log).expect("creating pjsua stderr.log");

        let mut cmd = Command::new(python);
        cmd.arg(lab_dir().join("pjsua_peer.py"))
            .arg("--ip")
            .arg(ip.to_string())
            .args(["--user", user, "--password", password])
            .arg("--rec-dir")
            .arg(&rec_dir)
            .arg("--log")
            .arg(&log)
            .args([
                "--refer",
                if opts.accept_refer {
                    "accept"
                } else {
                    "refuse"
                },
            ]);
        if opts.register {
            cmd.arg("--registrar").arg(kamailio_ip.to_string());
        }
        if opts.auto_answer {
            cmd.arg("--auto-answer");
        }
        if let Some(wav) = &opts.play {
            cmd.arg("--play").arg(wav);
        }
        cmd.current_dir(dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut peer = Peer::spawn(
            &format!("pjsua {user}"),
            &mut cmd,
            vec![log.clone(), stderr_log],
        );
        let stdin = peer.child_mut().stdin.take();
        let stdout = peer
            .child_mut()
            .stdout
            .take()
            .expect("pjsua's stdout is piped");
        let events = EventStream::read(&format!("pjsua-{user}"), stdout);
        let mut p = Pjsua {
            user: user.to_owned(),
            domain: if opts.register { kamailio_ip } else { ip },
            ip,
            log,
            events,
            stdin,
            peer,
            dir,
        };
        p.wait_for(Duration::from_secs(10), "ready");
        p
    }

    /// Its IP, `127.X.Y.20` by default.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its SIP address, `127.X.Y.20:5060` by default.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 5060))
    }

    /// Its AOR: `sip:user@KAMAILIO_IP` when registering, else `sip:user@127.X.Y.20`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// A URI reaching it directly, without kamailio: `sip:user@127.X.Y.20:5060`.
    pub fn direct_uri(&self) -> String {
        format!("sip:{}@{}:5060", self.user, self.ip)
    }

    /// Writes one command line (see the module docs). Panics if pjsua is gone.
    #[track_caller]
    pub fn send(&mut self, cmd: &str) {
        let result = match self.stdin.as_mut() {
            Some(pipe) => writeln!(pipe, "{cmd}").and_then(|()| pipe.flush()),
            None => Err(std::io::Error::other("stdin was closed")),
        };
        if let Err(e) = result {
            let report = self.failure_report();
            panic!("cannot send {cmd:?} to pjsua: {e}\n{report}");
        }
    }

    /// Returns the earliest event not returned before that satisfies `pred`, waiting at most
    /// `timeout` (see [`EventStream::wait`]). Panics with the events and the log on timeout,
    /// at once if pjsua exits first, and on an `error` event (a command failed).
    #[track_caller]
    pub fn wait_event(&mut self, timeout: Duration, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let result = self
            .events
            .wait(timeout, |e| e["event"] == "error" || pred(e));
        let why = match result {
            Ok(ev) if ev["event"] == "error" && !pred(&ev) => format!("a command failed: {ev}"),
            Ok(ev) => return ev,
            Err(WaitFailed::Timeout) => format!("no matching event within {timeout:?}"),
            Err(WaitFailed::Ended) => {
                let status = self.peer.wait_timeout(Duration::from_secs(2));
                format!("its stdout ended (exit status {status:?}) before a matching event")
            }
        };
        let report = self.failure_report();
        panic!("pjsua {}: {why}\n{report}", self.user);
    }

    /// Waits for an event named `name`.
    #[track_caller]
    pub fn wait_for(&mut self, timeout: Duration, name: &str) -> Value {
        self.wait_event(timeout, |e| e["event"] == name)
    }

    /// Waits for call `call` to reach `state` (`calling`, `incoming`, `early`, `connecting`,
    /// `confirmed`, `disconnected`).
    #[track_caller]
    pub fn wait_state(&mut self, timeout: Duration, call: u64, state: &str) -> Value {
        self.wait_event(timeout, |e| {
            e["event"] == "state" && e["call"] == call && e["state"] == state
        })
    }

    /// Waits for a `registration` event with code 200. Panics with the log when it fails.
    #[track_caller]
    pub fn wait_registered(&mut self, timeout: Duration) {
        let ev = self.wait_event(timeout, |e| {
            e["event"] == "registration" && e["code"].as_u64().is_some_and(|c| c >= 200)
        });
        if ev["code"] != 200 {
            let report = self.failure_report();
            panic!("pjsua {} registration failed: {ev}\n{report}", self.user);
        }
    }

    /// Dials `uri` and returns the new call's number.
    #[track_caller]
    pub fn dial(&mut self, uri: &str) -> u64 {
        self.send(&format!("dial {uri}"));
        let ev = self.wait_event(Duration::from_secs(5), |e| {
            e["event"] == "dialing" && e["uri"] == uri
        });
        ev["call"].as_u64().expect("a call number")
    }

    /// Waits for the next `incoming` call and returns its event (`call`, `remote`, `call_id`,
    /// `replaces`, `referred_by`).
    #[track_caller]
    pub fn wait_incoming(&mut self, timeout: Duration) -> Value {
        self.wait_for(timeout, "incoming")
    }

    /// Waits until call `call` ended and its recording is closed; returns the WAV's path.
    #[track_caller]
    pub fn recording(&mut self, timeout: Duration, call: u64) -> PathBuf {
        let ev = self.wait_event(timeout, |e| e["event"] == "recorded" && e["call"] == call);
        assert_eq!(
            ev["complete"], true,
            "pjsua {}: the WAV header of {ev} was not written",
            self.user
        );
        PathBuf::from(ev["path"].as_str().expect("a recording path"))
    }

    /// Watches for `duration` and panics if an event satisfying `pred` is (or already was)
    /// there and not yet returned by a wait.
    #[track_caller]
    pub fn expect_no_event(&mut self, duration: Duration, mut pred: impl FnMut(&Value) -> bool) {
        let found = process::wait_until(duration, || self.events.unconsumed(&mut pred));
        if let Some(ev) = found {
            let report = self.failure_report();
            panic!("pjsua {}: unexpected event {ev}\n{report}", self.user);
        }
    }

    /// Every event so far, in order.
    pub fn events(&mut self) -> Vec<Value> {
        self.events.history().to_vec()
    }

    /// Sends `quit` and waits (at most `timeout`) for the `stopped` event and the exit.
    #[track_caller]
    pub fn quit(&mut self, timeout: Duration) {
        self.send("quit");
        self.wait_for(timeout, "stopped");
        self.stdin = None;
        if self.peer.wait_timeout(timeout).is_none() {
            let report = self.failure_report();
            panic!("pjsua {} did not exit\n{report}", self.user);
        }
        self.events.finish();
    }

    /// pjsip's whole log (level 5, every SIP message sent and received).
    pub fn log(&self) -> String {
        process::read_lossy(&self.log)
    }

    /// The SIP messages pjsip logged as received (`RX … from UDP …` blocks), oldest first.
    pub fn received_messages(&self) -> Vec<String> {
        logged_messages(&self.log(), "RX ")
    }

    /// The SIP messages pjsip logged as sent (`TX … to UDP …` blocks), oldest first.
    pub fn sent_messages(&self) -> Vec<String> {
        logged_messages(&self.log(), "TX ")
    }

    /// Its run directory.
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Events and the tail of pjsip's log, for failure messages.
    pub fn failure_report(&mut self) -> String {
        self.events.drain();
        format!(
            "----- pjsua {} events (* = returned by a wait) -----\n{}{}",
            self.user,
            self.events.report(),
            self.peer.log_tails(60)
        )
    }
}

impl Drop for Pjsua {
    fn drop(&mut self) {
        self.stdin = None;
        if std::thread::panicking() {
            self.events.drain();
            eprintln!(
                "lab: test failed; pjsua {} events:\n{}",
                self.user,
                self.events.report()
            );
        }
        self.peer.kill();
        self.events.finish();
    }
}

/// The messages of a pjsip log whose header line holds `direction` (`"TX "` or `"RX "`):
/// pjsip logs each as `… TX 512 bytes Request msg INVITE/cseq=… to UDP 127.…:5060:` followed
/// by the message and a line of dashes.
fn logged_messages(log: &str, direction: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if let Some(msg) = current.as_mut() {
            if line.starts_with("--end msg--") {
                out.push(current.take().unwrap_or_default());
            } else {
                msg.push_str(line);
                msg.push('\n');
            }
        } else if line.contains(direction) && line.contains(" bytes ") && line.ends_with(':') {
            current = Some(String::new());
        }
    }
    out
}
