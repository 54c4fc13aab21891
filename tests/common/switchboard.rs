//! The switchboard binary under test, driven in headless mode.
//!
//! `switchboard --headless --config FILE --log-file FILE` reads one command per line on stdin
//! (`dial bob`, `answer`, `hangup 2`, `quit`, ...) and prints one JSON object per line on
//! stdout, each with an `"event"` field. [`Switchboard`] writes the config into a temporary
//! directory, spawns the binary (its own process group; `HOME` and the XDG directories point
//! into the temporary directory so nothing touches the real user's files), collects the events
//! on a reader thread and offers bounded waits on them. [`SwitchboardConfig`] builds the TOML.
//!
//! The binary is `$SWITCHBOARD_BIN` if set, else cargo's `CARGO_BIN_EXE_switchboard`.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::events::{EventStream, WaitFailed};
use super::net::{hosts, Net};
use super::process::{self, Peer};
use super::run_dir;
use super::wire;

/// The switchboard binary to run.
pub fn switchboard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_BIN") {
        return PathBuf::from(path);
    }
    match option_env!("CARGO_BIN_EXE_switchboard") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "no switchboard binary: this test crate has no `switchboard` bin target; \
             set SWITCHBOARD_BIN=/path/to/switchboard"
        ),
    }
}

/// A running `switchboard --headless`. Dropping it kills it.
#[derive(Debug)]
pub struct Switchboard {
    events: EventStream,
    stdin: Option<ChildStdin>,
    config_path: PathBuf,
    log_file: PathBuf,
    stderr_file: PathBuf,
    /// A 2xx of ours may go un-ACKed in this test (see [`Switchboard::expect_unacked_2xx`]).
    unacked_2xx_ok: bool,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Switchboard {
    /// Writes `config_toml` to a temporary file and starts
    /// `switchboard --headless --config FILE --log-file DIR/switchboard.log`.
    /// Returns at once; wait for `{"event":"started"}` with [`Switchboard::wait_event`].
    pub fn start(config_toml: &str) -> Switchboard {
        Switchboard::start_binary(&switchboard_bin(), config_toml)
    }

    /// Like [`Switchboard::start`] with another binary (the selftest uses a fake one).
    pub fn start_binary(bin: &Path, config_toml: &str) -> Switchboard {
        Switchboard::start_binary_with_env(bin, config_toml, &[])
    }

    /// Like [`Switchboard::start`] with these environment variables set too (test-only
    /// settings such as `SWITCHBOARD_TEST_RTP_SEQ_START`).
    pub fn start_with_env(config_toml: &str, env: &[(&str, &str)]) -> Switchboard {
        Switchboard::start_binary_with_env(&switchboard_bin(), config_toml, env)
    }

    fn start_binary_with_env(bin: &Path, config_toml: &str, env: &[(&str, &str)]) -> Switchboard {
        assert!(
            bin.is_file(),
            "switchboard binary {} does not exist",
            bin.display()
        );
        let dir = run_dir("switchboard");
        let config_path = dir.path().join("switchboard.toml");
        fs::write(&config_path, config_toml).expect("writing the switchboard config");
        let log_file = dir.path().join("switchboard.log");
        let stderr_file = dir.path().join("stderr.log");
        let stderr = fs::File::create(&stderr_file).expect("creating switchboard stderr.log");
        let home = dir.path().join("home");
        fs::create_dir(&home).expect("creating switchboard's HOME");

        let mut cmd = Command::new(bin);
        cmd.arg("--headless")
            .arg("--config")
            .arg(&config_path)
            .arg("--log-file")
            .arg(&log_file)
            .arg("--sip-capture")
            .arg(dir.path().join(CAPTURE))
            .current_dir(dir.path())
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("RUST_BACKTRACE", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut peer = Peer::spawn(
            "switchboard",
            &mut cmd,
            vec![stderr_file.clone(), log_file.clone()],
        );
        let stdin = peer.child_mut().stdin.take();
        let stdout = peer
            .child_mut()
            .stdout
            .take()
            .expect("switchboard stdout is piped");
        let events = EventStream::read("switchboard-stdout", stdout);
        Switchboard {
            events,
            stdin,
            config_path,
            log_file,
            stderr_file,
            unacked_2xx_ok: false,
            peer,
            dir,
        }
    }

    /// Tells the end-of-test wire check that a 2xx of ours may go un-ACKed: the far end
    /// deliberately never ACKs (a scenario testing what switchboard does then), or a lossy
    /// network drops the ACKs until the far end's BYE ends the retransmissions.
    pub fn expect_unacked_2xx(&mut self) {
        self.unacked_2xx_ok = true;
    }

    /// Writes one command line to switchboard's stdin. Panics (with the events and log) if
    /// it cannot, e.g. because switchboard has exited.
    #[track_caller]
    pub fn send(&mut self, cmd: &str) {
        let result = match self.stdin.as_mut() {
            Some(pipe) => writeln!(pipe, "{cmd}").and_then(|()| pipe.flush()),
            None => Err(std::io::Error::other("stdin was closed")),
        };
        if let Err(e) = result {
            self.events.drain();
            panic!(
                "cannot send {cmd:?} to switchboard: {e}\n{}",
                self.failure_report()
            );
        }
    }

    /// Closes switchboard's stdin (EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Returns the earliest event not returned before that satisfies `pred`, waiting at most
    /// `timeout` for it. Every event is recorded in the history ([`Switchboard::events`]);
    /// each can be returned by a wait only once, but events that do not match stay available
    /// for later waits, so the order of waits need not follow the order of events.
    /// Panics with the whole event history and the tail of the log on timeout, or at once if
    /// switchboard's stdout ends first.
    #[track_caller]
    pub fn wait_event(&mut self, timeout: Duration, pred: impl FnMut(&Value) -> bool) -> Value {
        match self.events.wait(timeout, pred) {
            Ok(ev) => ev,
            Err(WaitFailed::Timeout) => panic!(
                "switchboard: no matching event within {timeout:?}\n{}",
                self.failure_report()
            ),
            Err(WaitFailed::Ended) => {
                let status = self.peer.wait_timeout(Duration::from_secs(2));
                panic!(
                    "switchboard's stdout ended (exit status {status:?}) before a matching \
                     event arrived\n{}",
                    self.failure_report()
                );
            }
        }
    }

    /// Sends `transfer TARGET` until the core takes it (a `transfer` event with status
    /// `requested`), at most 10 times 200 ms apart: until the far end's ACK arrives a just
    /// answered call refuses a transfer ("try the transfer again in a moment"), and the
    /// operator tries again, as this does.
    #[track_caller]
    pub fn transfer_when_accepted(&mut self, target: &str) {
        for _ in 0..10 {
            self.send(&format!("transfer {target}"));
            let answer = self.wait_event(Duration::from_secs(5), |e| {
                e["event"] == "error" || (e["event"] == "transfer" && e["status"] == "requested")
            });
            if answer["event"] == "transfer" {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the transfer to {target} is still refused after 10 tries\n{}",
            self.failure_report()
        );
    }

    /// Waits for an event whose `"event"` field is `name` (see [`Switchboard::wait_event`]).
    #[track_caller]
    pub fn wait_for(&mut self, timeout: Duration, name: &str) -> Value {
        self.wait_event(timeout, |ev| ev["event"] == name)
    }

    /// True when every call this switchboard has reported has ended.
    pub fn no_call_left(&mut self) -> bool {
        let mut last = std::collections::HashMap::new();
        for e in self.events() {
            if e["event"] == "call" {
                last.insert(e["call_id"].to_string(), e["state"].clone());
            }
        }
        last.values().all(|s| s == "ended")
    }

    /// The next `transfer` event with `status` (`requested`, `accepted`, `succeeded`, …).
    pub fn wait_transfer(&mut self, timeout: Duration, status: &str) -> Value {
        self.wait_event(timeout, |e| {
            e["event"] == "transfer" && e["status"] == status
        })
    }

    /// Waits for a `call` event with `"state": state` on `line` (see
    /// [`Switchboard::wait_event`]).
    #[track_caller]
    pub fn wait_call_state(&mut self, timeout: Duration, line: u64, state: &str) -> Value {
        self.wait_event(timeout, |ev| {
            ev["event"] == "call" && ev["state"] == state && ev["line"] == line
        })
    }

    /// Watches for `duration` and panics if an event satisfying `pred` is (or already was)
    /// there and not yet returned by a wait.
    #[track_caller]
    pub fn expect_no_event(&mut self, duration: Duration, mut pred: impl FnMut(&Value) -> bool) {
        let found = process::wait_until(duration, || self.events.unconsumed(&mut pred));
        if let Some(ev) = found {
            panic!(
                "switchboard: unexpected event {ev}\n{}",
                self.failure_report()
            );
        }
    }

    /// Every event received so far (including ones returned by waits), in order.
    pub fn events(&mut self) -> Vec<Value> {
        self.events.history().to_vec()
    }

    /// Sends `quit` and waits at most `timeout` for switchboard to exit; returns its exit
    /// status. Panics with the events and log if it does not exit in time.
    #[track_caller]
    pub fn quit_and_wait(&mut self, timeout: Duration) -> ExitStatus {
        if self.peer.try_wait().is_none() {
            // It may have exited between the check and the write; the wait below tells.
            if let Some(pipe) = self.stdin.as_mut() {
                let _ = writeln!(pipe, "quit").and_then(|()| pipe.flush());
            }
        }
        self.wait_exit(timeout)
    }

    /// Waits at most `timeout` for switchboard to exit by itself and returns its exit status,
    /// after collecting the last events. Panics with the events and log on timeout.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.peer.wait_timeout(timeout) {
            Some(status) => {
                self.stdin = None;
                // stdout is closed once the process is gone, so this ends promptly.
                self.events.finish();
                status
            }
            None => panic!(
                "switchboard did not exit within {timeout:?}\n{}",
                self.failure_report()
            ),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }

    /// Its process ID (for reading `/proc/<pid>/…`, e.g. CPU time and memory).
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// When its media clock started (Unix ms), from the log line `media clock started
    /// unix_ms=…`; see [`super::signal::media_clock_start`].
    pub fn media_clock_start(&self) -> Option<f64> {
        super::signal::media_clock_start(&self.log())
    }

    /// The whole log file written by switchboard (`--log-file`).
    pub fn log(&self) -> String {
        process::read_lossy(&self.log_file)
    }

    /// Everything switchboard wrote to stderr (should be nothing in headless mode).
    pub fn stderr(&self) -> String {
        process::read_lossy(&self.stderr_file)
    }

    /// The config file it was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Its run directory (config, log, stderr, HOME).
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Events history, stderr and the tail of the log, for failure messages.
    pub fn failure_report(&self) -> String {
        let mut out = String::from("----- switchboard events (* = returned by a wait) -----\n");
        out.push_str(&self.events.report());
        let _ = write!(
            out,
            "----- switchboard stderr -----\n{}\n\
             ----- switchboard log {} (last 60 lines) -----\n{}\n",
            process::tail(&self.stderr_file, 30),
            self.log_file.display(),
            process::tail(&self.log_file, 60)
        );
        out
    }
}

impl Drop for Switchboard {
    fn drop(&mut self) {
        self.stdin = None;
        if thread::panicking() {
            self.events.drain();
            eprintln!(
                "lab: test failed; switchboard events:\n{}",
                self.events.report()
            );
        }
        // The peer's own Drop kills it and prints the log tails when panicking; kill here
        // already so the reader thread sees EOF and can be joined.
        self.peer.kill();
        self.events.finish();
        if !thread::panicking() {
            let capture = self.dir.path().join(CAPTURE);
            let problems = wire::problems(&capture, SystemTime::now(), self.unacked_2xx_ok);
            if !problems.is_empty() {
                panic!(
                    "switchboard's SIP ({}) breaks the RFCs:\n{}",
                    capture.display(),
                    problems.join("\n")
                );
            }
        }
    }
}

/// The `--sip-capture` file in the run directory.
const CAPTURE: &str = "sip.capture";

/// One `[[account]]` of the switchboard config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// Account name.
    pub name: String,
    /// Display name put in From, if any.
    pub display_name: Option<String>,
    /// User part of the AOR (and the digest user name).
    pub user: String,
    /// Domain of the AOR.
    pub domain: String,
    /// Registrar URI, if not the domain.
    pub registrar: Option<String>,
    /// Outbound proxy URI for every request, if any.
    pub outbound_proxy: Option<String>,
    /// `"udp"` or `"tcp"`.
    pub transport: String,
    /// Digest password, if any.
    pub password: Option<String>,
    /// Whether to REGISTER.
    pub register: bool,
    /// Requested registration lifetime in seconds.
    pub expires: u32,
    /// Raw lines appended to the table (keys this builder does not know).
    pub extra: String,
}

impl AccountConfig {
    /// An account `user@domain` over UDP, not registering, no password.
    pub fn new(name: &str, user: &str, domain: &str) -> AccountConfig {
        AccountConfig {
            name: name.to_owned(),
            display_name: None,
            user: user.to_owned(),
            domain: domain.to_owned(),
            registrar: None,
            outbound_proxy: None,
            transport: "udp".to_owned(),
            password: None,
            register: false,
            expires: 600,
            extra: String::new(),
        }
    }

    fn write_toml(&self, out: &mut String) {
        let _ = writeln!(out, "[[account]]");
        let _ = writeln!(out, "name = {}", toml_string(&self.name));
        if let Some(display) = &self.display_name {
            let _ = writeln!(out, "display_name = {}", toml_string(display));
        }
        let _ = writeln!(out, "user = {}", toml_string(&self.user));
        let _ = writeln!(out, "domain = {}", toml_string(&self.domain));
        if let Some(registrar) = &self.registrar {
            let _ = writeln!(out, "registrar = {}", toml_string(registrar));
        }
        if let Some(proxy) = &self.outbound_proxy {
            let _ = writeln!(out, "outbound_proxy = {}", toml_string(proxy));
        }
        let _ = writeln!(out, "transport = {}", toml_string(&self.transport));
        if let Some(password) = &self.password {
            let _ = writeln!(out, "password = {}", toml_string(password));
        }
        let _ = writeln!(out, "register = {}", self.register);
        let _ = writeln!(out, "expires = {}", self.expires);
        out.push_str(&self.extra);
    }
}

/// Builder for switchboard's TOML config; [`SwitchboardConfig::to_toml`] renders it.
///
/// ```ignore
/// let toml = SwitchboardConfig::registering(&net, "alice", "alicepw")
///     .with_codecs(&["pcma"])
///     .to_toml();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchboardConfig {
    /// `[general] log_level`.
    pub log_level: String,
    /// `[network] bind`.
    pub bind: SocketAddr,
    /// The `[[account]]` tables.
    pub accounts: Vec<AccountConfig>,
    /// `[codecs] order`.
    pub codecs: Vec<String>,
    /// `[codecs] ptime`, when set.
    pub ptime: Option<u32>,
    /// Raw lines of `[network]` after `bind` (e.g. the RTP port range).
    pub network: String,
    /// Raw lines of `[audio]`; default `backend = "null"` (the lab has no sound card).
    pub audio: String,
    /// Raw TOML appended at the end (for sections this builder does not know).
    pub extra: String,
}

impl SwitchboardConfig {
    /// switchboard at `127.X.Y.2:5060` registering `user@127.X.Y.1` (kamailio) with
    /// `password`, registrar `sip:127.X.Y.1:5060`, expires 600, codecs PCMU then PCMA.
    pub fn registering(net: &Net, user: &str, password: &str) -> SwitchboardConfig {
        let kamailio = net.ip(hosts::KAMAILIO);
        let mut account = AccountConfig::new("lab", user, &kamailio.to_string());
        account.registrar = Some(format!("sip:{kamailio}:5060"));
        account.password = Some(password.to_owned());
        account.register = true;
        SwitchboardConfig {
            accounts: vec![account],
            ..SwitchboardConfig::peer_to_peer(net)
        }
    }

    /// switchboard at `127.X.Y.2:5060` as `alice@127.X.Y.2`, registering nowhere: for calls
    /// straight to and from sipp / baresip.
    pub fn peer_to_peer(net: &Net) -> SwitchboardConfig {
        let me = net.ip(hosts::SWITCHBOARD);
        SwitchboardConfig {
            log_level: "debug".to_owned(),
            bind: SocketAddr::from((me, 5060)),
            accounts: vec![AccountConfig::new("lab", "alice", &me.to_string())],
            codecs: vec!["pcmu".to_owned(), "pcma".to_owned()],
            ptime: None,
            network: String::new(),
            audio: "backend = \"null\"\n".to_owned(),
            extra: String::new(),
        }
    }

    /// At `ip:5060` as `user@ip` (a peer-to-peer callee on another lab host).
    pub fn at(mut self, ip: impl Into<IpAddr>, user: &str) -> SwitchboardConfig {
        let ip = ip.into();
        self.bind = SocketAddr::from((ip, 5060));
        self.accounts[0].user = user.to_owned();
        self.accounts[0].domain = ip.to_string();
        self
    }

    /// Sets `[codecs] order`.
    pub fn with_codecs(mut self, codecs: &[&str]) -> Self {
        self.codecs = codecs.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Sets `[codecs] ptime` (ms).
    pub fn with_ptime(mut self, ms: u32) -> Self {
        self.ptime = Some(ms);
        self
    }

    /// Sets the log level.
    pub fn with_log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// Sets the first account's outbound proxy (e.g. `kamailio.uri()`).
    pub fn with_outbound_proxy(mut self, uri: &str) -> Self {
        if let Some(account) = self.accounts.first_mut() {
            account.outbound_proxy = Some(uri.to_owned());
        }
        self
    }

    /// Sets the first account's registration lifetime.
    pub fn with_expires(mut self, seconds: u32) -> Self {
        if let Some(account) = self.accounts.first_mut() {
            account.expires = seconds;
        }
        self
    }

    /// Adds another account.
    pub fn with_account(mut self, account: AccountConfig) -> Self {
        self.accounts.push(account);
        self
    }

    /// Replaces the lines of `[audio]`.
    pub fn with_audio(mut self, lines: &str) -> Self {
        self.audio = lines.to_owned();
        self
    }

    /// Adds lines to `[network]`.
    pub fn with_network(mut self, lines: &str) -> Self {
        self.network.push_str(lines);
        if !self.network.ends_with('\n') {
            self.network.push('\n');
        }
        self
    }

    /// Appends raw TOML (a section the builder does not know) after everything else.
    pub fn with_extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        if !self.extra.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "[general]");
        let _ = writeln!(out, "log_level = {}\n", toml_string(&self.log_level));
        let _ = writeln!(out, "[network]");
        let _ = writeln!(out, "bind = {}", toml_string(&self.bind.to_string()));
        let _ = writeln!(out, "{}", self.network);
        for account in &self.accounts {
            account.write_toml(&mut out);
            out.push('\n');
        }
        let codecs: Vec<String> = self.codecs.iter().map(|c| toml_string(c)).collect();
        let _ = writeln!(out, "[codecs]");
        let _ = writeln!(out, "order = [{}]", codecs.join(", "));
        if let Some(ms) = self.ptime {
            let _ = writeln!(out, "ptime = {ms}");
        }
        out.push('\n');
        let _ = writeln!(out, "[audio]\n{}", self.audio);
        if !self.extra.is_empty() {
            out.push('\n');
            out.push_str(&self.extra);
        }
        out
    }
}

/// A TOML basic string literal.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
