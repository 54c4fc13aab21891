//! twinkle 1.10 (`twinkle-console`), headless, as a far end for signalling: it registers,
//! auto-answers, and accepts REFER (blind, and attended by copying Replaces from Refer-To). It
//! sends no audio headless, and freezes on an incoming INVITE with Replaces, so tests never
//! make it a transfer target (shared/LAB.md).
//!
//! Set-up: `HOME=DIR/home twinkle-console USER.cfg` with commands written to its stdin, which
//! stays open for its whole life. `HOME/.twinkle/` holds `twinkle.sys` (ports, audio devices,
//! `validate_audio_dev=no`, SIP in the log), the profile `USER.cfg` (user, domain, digest
//! credentials, `outbound_proxy` = kamailio, `ext_replaces`, `allow_refer`, no questions asked)
//! and `USER.svc` (`auto_answer`). Its console output (unbuffered lines such as
//! `Line 1: call established.`) goes to `DIR/console.log`; its own log with every SIP message
//! sent and received is `HOME/.twinkle/twinkle.log`.
//!
//! Addresses: twinkle has no setting for the address it binds: SIP (UDP and TCP) and RTP are
//! bound on `0.0.0.0`, and it shows itself as `127.0.0.1` (the source address the kernel picks
//! towards 127.X.Y.1). So instead of the test's `127.X.Y.5`, each instance gets its own block
//! of ports in 61000..65519, above the kernel's ephemeral range and away from every fixed port
//! of the lab: SIP on the first port of the block, RTP from the third (line n on
//! `rtp + 2n`). Blocks are claimed in-process like [`super::Net`] slots; a block some other
//! process holds makes twinkle fail to bind, and the next block is tried.
//!
//! Audio: twinkle only speaks ALSA. With ALSA's `null` device its audio threads spin; so each
//! instance gets a private PulseAudio daemon ([`super::pulse::SoundServer`] with
//! `module-null-sink`, in the run directory) and uses ALSA's `pulse` device, which a real clock
//! paces. Both processes die when the handle is dropped.
//!
//! Other habits worth knowing: twinkle seeds its random generator with the time in seconds,
//! so two instances started in the same second make the same Call-IDs, tags and CSeqs (harmless
//! while they never share a dialog); tearing down or re-creating a call's audio session (hold,
//! transfer) sometimes stalls its SIP handling for about 2 s (requests are retransmitted
//! meanwhile); and it often dies of SIGSEGV on `quit` after a transfer.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::net::Net;
use super::process::{self, Peer};
use super::pulse::SoundServer;
use super::{require_tool, run_dir};

/// First port of the range twinkle instances take their port blocks from.
const PORTS_FIRST: u16 = 61_000;
/// Ports per instance: SIP, then RTP/RTCP pairs for up to 9 lines.
const PORTS_PER_BLOCK: u16 = 20;
/// Number of blocks in 61000..65519.
const BLOCKS: u16 = 226;

/// Port blocks claimed by `Twinkle`s alive in this process.
static CLAIMED_BLOCKS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Options for [`Twinkle::start`]. `Default` gives: registering, auto-answer.
#[derive(Debug, Clone)]
pub struct TwinkleOptions {
    /// Whether to REGISTER at kamailio at start-up.
    pub register: bool,
    /// Whether to answer incoming calls at once (`auto_answer=yes` in the `.svc` file).
    pub auto_answer: bool,
    /// Extra `key=value` lines appended to the profile (`USER.cfg`).
    pub extra_profile: Vec<String>,
}

impl Default for TwinkleOptions {
    fn default() -> Self {
        TwinkleOptions {
            register: true,
            auto_answer: true,
            extra_profile: Vec::new(),
        }
    }
}

/// A running twinkle-console and its PulseAudio daemon. Dropping it kills both.
#[derive(Debug)]
pub struct Twinkle {
    user: String,
    domain: Ipv4Addr,
    sip_port: u16,
    console_log: PathBuf,
    twinkle_log: PathBuf,
    stdin: Mutex<Option<ChildStdin>>,
    // Field order matters: twinkle dies before its sound server, both before the port block
    // is released and the run directory removed.
    peer: Peer,
    pulse: SoundServer,
    ports: PortBlock,
    dir: tempfile::TempDir,
}

impl Twinkle {
    /// Starts a private PulseAudio and twinkle as `user@kamailio_ip` (digest `password`,
    /// outbound proxy kamailio) with `opts`, and waits (at most 5 s each) until the sound
    /// server takes connections and twinkle listens on its SIP port and shows its prompt. Use
    /// [`Twinkle::wait_registered`] to wait for the registration.
    pub fn start(
        net: &Net,
        user: &str,
        password: &str,
        kamailio_ip: Ipv4Addr,
        opts: TwinkleOptions,
    ) -> Twinkle {
        let twinkle = require_tool("twinkle-console", "twinkle-console");
        require_alsa_pulse_plugin();
        let dir = run_dir("twinkle");
        let home = dir.path().join("home");
        let conf = home.join(".twinkle");
        fs::create_dir_all(&conf).expect("creating twinkle's HOME");
        let pulse = SoundServer::start(dir.path(), &["module-null-sink"]);

        let mut profile = format!(
            "user_name={user}\n\
             user_domain={kamailio_ip}\n\
             user_display={user}\n\
             auth_realm=\n\
             auth_name={user}\n\
             auth_pass={password}\n\
             outbound_proxy={kamailio_ip}:5060\n\
             all_requests_to_proxy=yes\n\
             registrar=\n\
             register_at_startup={}\n\
             registration_time=600\n\
             sip_transport=udp\n\
             codecs=g711u,g711a\n\
             ext_100rel=disabled\n\
             ext_replaces=yes\n\
             allow_refer=yes\n\
             ask_user_to_refer=no\n\
             auto_refresh_refer_sub=no\n\
             pres_publish_startup=no\n\
             mwi_sollicited=no\n",
            yes_no(opts.register)
        );
        for line in &opts.extra_profile {
            profile.push_str(line);
            profile.push('\n');
        }
        fs::write(conf.join(format!("{user}.cfg")), profile).expect("writing twinkle's profile");
        fs::write(
            conf.join(format!("{user}.svc")),
            format!("auto_answer={}\n", yes_no(opts.auto_answer)),
        )
        .expect("writing twinkle's services");

        let console_log = dir.path().join("console.log");
        let twinkle_log = conf.join("twinkle.log");
        let mut failures = Vec::new();
        let [_, x, y, _] = net.ip(0).octets();
        let first_block = u16::try_from((u32::from(x) * 256 + u32::from(y)) % u32::from(BLOCKS))
            .expect("a remainder of BLOCKS fits in u16");
        for attempt in 0..BLOCKS {
            let Some(ports) = PortBlock::claim((first_block + attempt) % BLOCKS) else {
                continue;
            };
            let sip_port = ports.sip_port();
            fs::write(
                conf.join("twinkle.sys"),
                format!(
                    "dev_ringtone=alsa:pulse\n\
                     dev_speaker=alsa:pulse\n\
                     dev_mic=alsa:pulse\n\
                     validate_audio_dev=no\n\
                     log_max_size=50\n\
                     log_show_sip=yes\n\
                     log_show_stun=no\n\
                     log_show_memory=no\n\
                     log_show_debug=no\n\
                     play_ringtone=no\n\
                     play_ringback=no\n\
                     sip_port={sip_port}\n\
                     rtp_port={}\n",
                    ports.rtp_port()
                ),
            )
            .expect("writing twinkle.sys");
            // A twinkle killed on an earlier attempt leaves its lock file behind.
            let _ = fs::remove_file(conf.join("twinkle.lck"));
            let out = fs::File::create(&console_log).expect("creating twinkle's console.log");
            let mut cmd = Command::new(&twinkle);
            cmd.arg(format!("{user}.cfg"))
                .current_dir(dir.path())
                .env("HOME", &home)
                .envs(pulse.server_env())
                .stdin(Stdio::piped())
                .stdout(out.try_clone().expect("cloning a file handle"))
                .stderr(out);
            let mut peer = Peer::spawn(
                &format!("twinkle {user}"),
                &mut cmd,
                vec![console_log.clone(), twinkle_log.clone()],
            );
            let stdin = peer.child_mut().stdin.take();
            let bound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, sip_port));
            let ready = process::wait_until(Duration::from_secs(5), || {
                if let Some(status) = peer.try_wait() {
                    return Some(Err(status));
                }
                let up = process::udp_bound(bound)
                    && process::read_lossy(&console_log).contains("Twinkle>");
                up.then_some(Ok(()))
            });
            match ready {
                Some(Ok(())) => {
                    return Twinkle {
                        user: user.to_owned(),
                        domain: kamailio_ip,
                        sip_port,
                        console_log,
                        twinkle_log,
                        stdin: Mutex::new(stdin),
                        peer,
                        pulse,
                        ports,
                        dir,
                    };
                }
                Some(Err(status)) => {
                    let console = process::read_lossy(&console_log);
                    // Some other process took a port of this block since it was probed
                    // ("Failed to create a UDP socket (SIP) on port N"): take the next one.
                    if console.contains("Failed to create a") && failures.len() < 3 {
                        failures.push(format!("port {sip_port}: {}", console.trim()));
                        continue;
                    }
                    panic!(
                        "twinkle exited during start-up ({status}):\n{}",
                        peer.log_tails(40)
                    );
                }
                None => panic!(
                    "twinkle did not listen on {bound} within 5 s:\n{}",
                    peer.log_tails(40)
                ),
            }
        }
        panic!("twinkle: no free port block in {PORTS_FIRST}..65519: {failures:?}");
    }

    /// Its SIP port, on every local address (twinkle binds `0.0.0.0`).
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// The address it uses in Via and Contact: `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.sip_port))
    }

    /// Its AOR, `sip:user@KAMAILIO_IP`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// Writes one command line to its console (e.g. `call sip:carol@127.1.2.1`, `answer`,
    /// `bye`, `transfer sip:carol@127.1.2.1`; `help` lists them). Panics if twinkle is gone.
    pub fn command(&self, cmd: &str) {
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let pipe = stdin.as_mut().expect("twinkle's stdin was closed");
        if let Err(e) = writeln!(pipe, "{cmd}").and_then(|()| pipe.flush()) {
            panic!(
                "twinkle: cannot send {cmd:?}: {e}\n{}",
                self.peer.log_tails(30)
            );
        }
    }

    /// Calls `uri` (`call URI`).
    pub fn call(&self, uri: &str) {
        self.command(&format!("call {uri}"));
    }

    /// Ends the call on the active line, or cancels it while it rings (`bye`).
    pub fn bye(&self) {
        self.command("bye");
    }

    /// Sends `quit` (it de-registers first) and waits at most `timeout` for it to exit.
    /// Returns the exit status, or `None` if it did not exit in time (it is killed on drop).
    pub fn quit_and_wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.peer.try_wait().is_none() {
            self.command("quit");
        }
        self.peer.wait_timeout(timeout)
    }

    /// Waits until its console reports `registration succeeded`. Panics with the logs on
    /// timeout, or as soon as it reports `registration failed`.
    pub fn wait_registered(&self, timeout: Duration) {
        let result = process::wait_until(timeout, || {
            let console = self.console();
            if console.contains("registration succeeded") {
                Some(Ok(()))
            } else if console.contains("registration failed") {
                Some(Err(()))
            } else {
                None
            }
        });
        match result {
            Some(Ok(())) => {}
            Some(Err(())) => panic!(
                "twinkle {} registration failed:\n{}",
                self.user,
                self.peer.log_tails(40)
            ),
            None => panic!(
                "twinkle {} not registered within {timeout:?}:\n{}",
                self.user,
                self.peer.log_tails(40)
            ),
        }
    }

    /// Waits until its console output contains `needle` (e.g. `Line 1: call established.`);
    /// returns the first line with it. Panics with the logs on timeout.
    pub fn wait_console(&self, needle: &str, timeout: Duration) -> String {
        process::wait_until(timeout, || first_line_with(&self.console(), needle)).unwrap_or_else(
            || {
                panic!(
                    "twinkle {}: no {needle:?} on its console within {timeout:?}:\n{}",
                    self.user,
                    self.peer.log_tails(40)
                )
            },
        )
    }

    /// Waits until its log (which holds every SIP message) contains `needle`; returns the
    /// first line with it. Panics with the logs on timeout.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        process::wait_until(timeout, || first_line_with(&self.log(), needle)).unwrap_or_else(|| {
            panic!(
                "twinkle {}: no {needle:?} in its log within {timeout:?}:\n{}",
                self.user,
                self.peer.log_tails(40)
            )
        })
    }

    /// Everything it printed on its console (stdout and stderr).
    pub fn console(&self) -> String {
        process::read_lossy(&self.console_log)
    }

    /// Its whole log, `HOME/.twinkle/twinkle.log`.
    pub fn log(&self) -> String {
        process::read_lossy(&self.twinkle_log)
    }

    /// The SIP messages in its log, in the order twinkle logged them.
    pub fn sip_messages(&self) -> Vec<LoggedSip> {
        parse_sip_log(&self.log())
    }

    /// The last `lines` lines of its console output and its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.peer.log_tails(lines)
    }

    /// Its run directory (`home/.twinkle` holds the settings and logs).
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether twinkle is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }

    /// Whether its PulseAudio daemon is still running.
    pub fn sound_server_running(&mut self) -> bool {
        self.pulse.is_running()
    }

    /// The first RTP port (line 1); line n uses `rtp + 2(n-1)`.
    pub fn rtp_port(&self) -> u16 {
        self.ports.rtp_port()
    }
}

/// One claimed block of [`PORTS_PER_BLOCK`] ports; released on drop.
#[derive(Debug)]
struct PortBlock {
    index: u16,
}

impl PortBlock {
    /// Claims block `index` if no `Twinkle` of this process has it and its ports can be bound
    /// on `0.0.0.0` right now (UDP and TCP for SIP, UDP for RTP).
    fn claim(index: u16) -> Option<PortBlock> {
        let mut claimed = CLAIMED_BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
        let set = claimed.get_or_insert_with(HashSet::new);
        if set.contains(&index) {
            return None;
        }
        let sip = PORTS_FIRST + index * PORTS_PER_BLOCK;
        let free = TcpListener::bind((Ipv4Addr::UNSPECIFIED, sip)).is_ok()
            && (sip..sip + PORTS_PER_BLOCK)
                .all(|port| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok());
        if !free {
            return None;
        }
        set.insert(index);
        Some(PortBlock { index })
    }

    fn sip_port(&self) -> u16 {
        PORTS_FIRST + self.index * PORTS_PER_BLOCK
    }

    fn rtp_port(&self) -> u16 {
        self.sip_port() + 2
    }
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        let mut claimed = CLAIMED_BLOCKS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = claimed.as_mut() {
            set.remove(&self.index);
        }
    }
}

/// Panics with the package to install unless ALSA's PulseAudio plugin is there.
fn require_alsa_pulse_plugin() {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .any(|lib| {
        Path::new(lib)
            .join("alsa-lib/libasound_module_pcm_pulse.so")
            .exists()
    });
    assert!(
        found,
        "twinkle's audio goes through ALSA's pulse plugin, which is not installed: \
         apt-get install --no-install-recommends libasound2-plugins"
    );
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn first_line_with(text: &str, needle: &str) -> Option<String> {
    text.lines().find(|l| l.contains(needle)).map(str::to_owned)
}

/// One SIP message from twinkle's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedSip {
    /// Whether twinkle sent it (else it received it).
    pub sent: bool,
    /// The message: start line, headers, blank line, body; lines joined with `\n`.
    pub text: String,
}

impl LoggedSip {
    /// The start line, e.g. `NOTIFY sip:alice@127.1.2.2:5060 SIP/2.0` or `SIP/2.0 200 OK`.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    /// Whether it is a request with this method.
    pub fn is_request(&self, method: &str) -> bool {
        self.start_line()
            .strip_prefix(method)
            .is_some_and(|rest| rest.starts_with(' '))
    }

    /// The status code if it is a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start_line().strip_prefix("SIP/2.0 ")?;
        rest.get(..3)?.parse().ok()
    }

    /// The value of the first header called `name` (case-insensitive, full names only).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
            })
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, method) = self.header("CSeq")?.split_once(' ')?;
        Some((n.parse().ok()?, method.trim()))
    }

    /// The body (after the first blank line), trimmed.
    pub fn body(&self) -> &str {
        self.text
            .split_once("\n\n")
            .map(|(_, b)| b.trim())
            .unwrap_or("")
    }
}

/// Splits twinkle's log into its SIP messages. A report is `+++ DATE ... SIP ...` up to a
/// line `---`; SIP reports start with `Send to: ...` or `Received from: ...`, then the message.
fn parse_sip_log(log: &str) -> Vec<LoggedSip> {
    let mut out = Vec::new();
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("+++ ") {
            continue;
        }
        let mut report = Vec::new();
        for l in lines.by_ref() {
            if l == "---" {
                break;
            }
            report.push(l);
        }
        let Some((first, rest)) = report.split_first() else {
            continue;
        };
        let sent = if first.starts_with("Send to:") {
            true
        } else if first.starts_with("Received from:") {
            false
        } else {
            continue;
        };
        out.push(LoggedSip {
            sent,
            text: rest.join("\n").trim().to_owned(),
        });
    }
    out
}
