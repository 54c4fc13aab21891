//! sipp 3.6 running one scenario from `tests/lab/` as a far end with exactly scripted SIP.
//!
//! Every instance binds `127.X.Y.n:5060` with `-bind_local` (without it sipp listens on
//! 0.0.0.0 and parallel instances collide), media on `127.X.Y.n:16000`, runs one call (`-m 1`),
//! never reads stdin (`-nostdin`), gives up after `-timeout 30s` counting that as failure
//! (`-timeout_error`), and writes into its own run directory: the message trace
//! (`-trace_msg`), unexpected events (`-trace_err`), `<log>` actions (`-trace_logs`) and its
//! final statistics screen (`-trace_screen`). `<pause/>` lasts `-d 1000` ms unless the extra
//! arguments say otherwise (later arguments override earlier ones, e.g. `&["-d", "3000"]`).
//!
//! Exit status 0 means the scenario passed; see [`SippOutcome`].

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::digest;
use super::kamailio::Kamailio;
use super::net::Net;
use super::process::{self, Peer};
use super::{lab_dir, require_tool, run_dir};

/// How a sipp run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SippOutcome {
    /// Exit status 0: the call followed the scenario.
    Passed,
    /// sipp exited with another status: 1 = the call failed (unexpected message, failed
    /// regexp check, recv timeout) or the scenario did not load, 97 = stopped by an internal
    /// command, 99 = no call was processed, 255 = the global `-timeout` was reached (with
    /// `-timeout_error`) or another fatal error, `None` = killed by a signal.
    Failed {
        /// The exit code, if sipp exited normally.
        code: Option<i32>,
    },
    /// Still running when the harness's own wait ended; it was killed.
    TimedOut,
}

impl SippOutcome {
    /// Whether the scenario passed.
    pub fn passed(&self) -> bool {
        *self == SippOutcome::Passed
    }
}

/// One message from sipp's `-trace_msg` log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedMessage {
    /// `true` if sipp sent it, `false` if sipp received it.
    pub sent: bool,
    /// The whole SIP message, lines joined by `\n`.
    pub text: String,
}

impl TracedMessage {
    /// The start line, e.g. `INVITE sip:bob@127.1.2.10:5060 SIP/2.0` or `SIP/2.0 200 OK`.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// The method, if this is a request.
    pub fn method(&self) -> Option<&str> {
        let first = self.start_line();
        (!first.starts_with("SIP/")).then(|| first.split(' ').next().unwrap_or(""))
    }

    /// The status code, if this is a response.
    pub fn status(&self) -> Option<u16> {
        let first = self.start_line();
        first
            .strip_prefix("SIP/2.0 ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|code| code.parse().ok())
    }

    /// The value of the first header called `name` (case-insensitive; compact forms are not
    /// expanded), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// The values of all headers called `name` (case-insensitive), trimmed.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
            })
            .collect()
    }

    /// The body (after the first empty line).
    pub fn body(&self) -> &str {
        self.text
            .split_once("\n\n")
            .map(|(_, body)| body)
            .unwrap_or("")
    }
}

/// A running sipp. Dropping it kills it.
#[derive(Debug)]
pub struct Sipp {
    scenario: String,
    ip: Ipv4Addr,
    outcome: Option<SippOutcome>,
    messages: PathBuf,
    errors: PathBuf,
    actions: PathBuf,
    screen: PathBuf,
    stdout: PathBuf,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// Starts sipp as a UAS with `tests/lab/<scenario>.xml` (or the file `scenario` if it
    /// contains a `/`, see [`scenario_path`]) at `net.ip(n)` (n ≥ 10 by convention) and
    /// waits (at most 5 s) until it listens. Panics with sipp's output if the scenario does
    /// not load.
    ///
    /// Useful `extra_args`: `-d MS` (length of `<pause/>`), `-rtp_echo` (send received RTP
    /// back, so the caller hears itself), `-timeout 10s` (give up sooner).
    pub fn uas(net: &Net, n: u8, scenario: &str, extra_args: &[&str]) -> Sipp {
        let mut sipp = Sipp::spawn(net, n, scenario, None, extra_args);
        let scenario = sipp.scenario.clone();
        let addr = sipp.addr();
        let bound = process::wait_until(Duration::from_secs(5), || {
            if sipp.peer.try_wait().is_some() {
                panic!(
                    "sipp {scenario} exited before listening on {addr}:\n{}",
                    sipp.report()
                );
            }
            process::udp_bound(addr).then_some(())
        });
        if bound.is_none() {
            panic!(
                "sipp {scenario} did not listen on {addr} within 5 s:\n{}",
                sipp.report()
            );
        }
        sipp
    }

    /// Starts sipp as a UAC with `tests/lab/<scenario>.xml` (or a path, as for
    /// [`Sipp::uas`]) at `net.ip(n)`, calling `service@target` (`-s service`; the scenario
    /// builds the request URI `sip:service@target` from it). Returns at once; the INVITE is
    /// retransmitted if the target is not listening yet.
    ///
    /// Useful `extra_args`: `-d MS`, `-au USER -ap PASSWORD` (for `uac_auth`).
    pub fn uac(
        net: &Net,
        n: u8,
        scenario: &str,
        target: SocketAddr,
        service: &str,
        extra_args: &[&str],
    ) -> Sipp {
        Sipp::spawn(net, n, scenario, Some((target, service)), extra_args)
    }

    fn spawn(
        net: &Net,
        n: u8,
        scenario: &str,
        target: Option<(SocketAddr, &str)>,
        extra_args: &[&str],
    ) -> Sipp {
        let sipp = require_tool("sipp", "sip-tester");
        let scenario_path = scenario_path(scenario);
        assert!(
            scenario_path.is_file(),
            "no sipp scenario {}",
            scenario_path.display()
        );
        let ip = net.ip(n);
        let dir = run_dir("sipp");
        let path = |name: &str| dir.path().join(name);
        let (messages, errors, actions, screen, stdout) = (
            path("messages.log"),
            path("errors.log"),
            path("actions.log"),
            path("screen.log"),
            path("stdout.log"),
        );
        let out = fs::File::create(&stdout).expect("creating sipp stdout.log");
        let ip_s = ip.to_string();
        let mut cmd = Command::new(sipp);
        if let Some((target, _)) = target {
            cmd.arg(target.to_string());
        }
        cmd.arg("-sf")
            .arg(&scenario_path)
            .args(["-i", &ip_s, "-p", "5060", "-bind_local"])
            .args(["-mi", &ip_s, "-mp", "16000"])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-d", "1000"])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(&messages)
            .arg("-trace_err")
            .arg("-error_file")
            .arg(&errors)
            .arg("-trace_logs")
            .arg("-log_file")
            .arg(&actions)
            .arg("-trace_screen")
            .arg("-screen_file")
            .arg(&screen);
        if let Some((_, service)) = target {
            cmd.args(["-s", service]);
        }
        cmd.args(extra_args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("cloning a file handle"))
            .stderr(out);
        let scenario = scenario_path
            .file_stem()
            .map_or_else(|| scenario.to_owned(), |s| s.to_string_lossy().into_owned());
        let peer = Peer::spawn(
            &format!("sipp {scenario} @{ip}"),
            &mut cmd,
            vec![errors.clone(), messages.clone(), stdout.clone()],
        );
        Sipp {
            scenario,
            ip,
            outcome: None,
            messages,
            errors,
            actions,
            screen,
            stdout,
            peer,
            dir,
        }
    }

    /// The scenario name.
    pub fn scenario(&self) -> &str {
        &self.scenario
    }

    /// Its IP, `127.X.Y.n`.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its SIP address, `127.X.Y.n:5060`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 5060))
    }

    /// Its media address, `127.X.Y.n:16000` (`[media_ip]:[media_port]` in its SDP).
    pub fn media_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 16000))
    }

    /// `sip:user@127.X.Y.n:5060`: where to reach this instance directly.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}:5060", self.ip)
    }

    /// Registers this instance (`sip:user@127.X.Y.n:5060`) as a contact of `user` at
    /// kamailio, so calls to `user` through kamailio reach it. Panics on failure.
    pub fn register_at(&self, kamailio: &Kamailio, user: &str, password: &str) {
        kamailio.register_contact(user, password, &self.uri(user), 600);
    }

    /// Waits up to `timeout` for sipp to finish; kills it if it does not. The outcome is
    /// remembered, so calling this again returns it at once.
    pub fn wait(&mut self, timeout: Duration) -> SippOutcome {
        if let Some(outcome) = &self.outcome {
            return outcome.clone();
        }
        let outcome = match self.peer.wait_timeout(timeout) {
            Some(status) if status.success() => SippOutcome::Passed,
            Some(status) => SippOutcome::Failed {
                code: status.code(),
            },
            None => {
                self.peer.kill();
                SippOutcome::TimedOut
            }
        };
        self.outcome = Some(outcome.clone());
        outcome
    }

    /// Waits like [`Sipp::wait`] and panics with sipp's report unless the scenario passed.
    pub fn expect_pass(&mut self, timeout: Duration) {
        let outcome = self.wait(timeout);
        if !outcome.passed() {
            panic!(
                "sipp {} @{}: {outcome:?}\n{}",
                self.scenario,
                self.ip,
                self.report()
            );
        }
    }

    /// The whole message trace.
    pub fn messages(&self) -> String {
        process::read_lossy(&self.messages)
    }

    /// The messages of the trace, in order.
    pub fn trace(&self) -> Vec<TracedMessage> {
        parse_trace(&self.messages())
    }

    /// The messages sipp received, in order.
    pub fn received(&self) -> Vec<TracedMessage> {
        self.trace().into_iter().filter(|m| !m.sent).collect()
    }

    /// The messages sipp sent, in order.
    pub fn sent(&self) -> Vec<TracedMessage> {
        self.trace().into_iter().filter(|m| m.sent).collect()
    }

    /// The unexpected-event log (`-trace_err`): why a call failed.
    pub fn errors(&self) -> String {
        process::read_lossy(&self.errors)
    }

    /// The output of the scenario's `<log>` actions.
    pub fn action_log(&self) -> String {
        process::read_lossy(&self.actions)
    }

    /// The final statistics screen, or the live screen output if sipp has not finished.
    pub fn screen(&self) -> String {
        let screen = process::read_lossy(&self.screen);
        if screen.is_empty() {
            process::tail(&self.stdout, 40)
        } else {
            screen
        }
    }

    /// Its run directory (traces, logs).
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything useful for a failure message: errors, the end of the screen and the last
    /// messages of the trace.
    pub fn report(&self) -> String {
        format!(
            "----- sipp {} errors -----\n{}\n----- screen / output -----\n{}\n\
             ----- <log> actions -----\n{}\n----- last messages -----\n{}\n",
            self.scenario,
            self.errors(),
            process::tail_str(&self.screen(), 30),
            self.action_log(),
            process::tail_str(&self.messages(), 80)
        )
    }

    /// Finds the requests sipp received that carry `Authorization` or `Proxy-Authorization`
    /// and checks their digest (username `user`, `password`) independently of sipp. Returns
    /// the credentials header values, or what is wrong (also when there are none).
    pub fn verify_digest(&self, user: &str, password: &str) -> Result<Vec<String>, String> {
        let mut checked = Vec::new();
        for msg in self.received() {
            let Some(method) = msg.method().map(str::to_owned) else {
                continue;
            };
            let mut creds = msg.headers("Authorization");
            creds.extend(msg.headers("Proxy-Authorization"));
            for value in creds {
                let params = digest::verify_digest(value, &method, password)
                    .map_err(|e| format!("{method}: {e}"))?;
                if params.get("username").map(String::as_str) != Some(user) {
                    return Err(format!("{method}: credentials for the wrong user: {value}"));
                }
                checked.push(value.to_owned());
            }
        }
        if checked.is_empty() {
            Err(format!(
                "sipp {} received no request with credentials",
                self.scenario
            ))
        } else {
            Ok(checked)
        }
    }
}

/// The file of `scenario`: a name like `uas_answer` means `tests/lab/uas_answer.xml`; a path
/// (containing `/`) is used as it is.
pub fn scenario_path(scenario: &str) -> PathBuf {
    if scenario.contains('/') {
        PathBuf::from(scenario)
    } else {
        lab_dir().join(format!("{scenario}.xml"))
    }
}

/// Splits a sipp `-trace_msg` log into messages.
pub fn parse_trace(log: &str) -> Vec<TracedMessage> {
    let mut out = Vec::new();
    for block in log.split("-----------------------------------------------") {
        let mut lines = block.lines();
        // First line: the rest of the separator (a timestamp); then the direction.
        let _timestamp = lines.next();
        let Some(direction) = lines.next() else {
            continue;
        };
        let sent = if direction.contains("message sent") {
            true
        } else if direction.contains("message received") {
            false
        } else {
            continue;
        };
        let text: Vec<&str> = lines
            .map(|l| l.trim_end_matches('\r'))
            .skip_while(|l| l.is_empty())
            .collect();
        let text = text.join("\n").trim_end().to_owned();
        if !text.is_empty() {
            out.push(TracedMessage { sent, text });
        }
    }
    out
}
