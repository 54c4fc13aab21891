//! baresip 1.0, headless, as a far end that registers, auto-answers, plays a tone or a file
//! and records what it hears.
//!
//! Set-up (LAB.md): `baresip -f DIR -v </dev/null` with `DIR/config` listening on
//! `127.X.Y.3:5060` (`net_interface` is the IP, not `lo`), audio player `aubridge,nil` (the ALSA
//! null device busy-loops), source `ausine` or `aufile`, `sndfile` writing `DIR/rec/*-dec.wav`
//! (what it heard), and the `cons` console on UDP `127.X.Y.3:5502` for commands such as
//! `/dial URI` or `/hangup`. Its log (stdout + stderr, unbuffered) is `DIR/baresip.log`.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{hosts, Net};
use super::process::{self, Peer};
use super::{require_tool, run_dir};

/// Where baresip's microphone audio comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioSource {
    /// A sine tone of this frequency in Hz (`ausine`, which needs `ausrc_srate 48000` and
    /// `ausrc_channels 2`; the harness sets them).
    Sine(u32),
    /// A WAV file, 8 kHz mono s16 (`aufile`). The call hangs up when the file ends, so make it
    /// long (see [`super::audio::tone_wav`]).
    File(PathBuf),
}

/// How baresip treats incoming calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerMode {
    /// Answer at once.
    Auto,
    /// Ring until answered with the `/accept` command.
    Manual,
}

/// Options for [`Baresip::start`]. `Default` gives: host `.3`, registering, auto-answer, a
/// 1 kHz sine, PCMU then PCMA.
#[derive(Debug, Clone)]
pub struct BaresipOptions {
    /// Host number in the test's /24 (default [`hosts::BARESIP`]).
    pub host: u8,
    /// Whether to REGISTER at kamailio (`regint=0` if not: peer-to-peer calls only).
    pub register: bool,
    /// Incoming call handling.
    pub answer_mode: AnswerMode,
    /// Microphone source.
    pub audio_source: AudioSource,
    /// `audio_codecs` of the account, e.g. `"PCMU,PCMA"`.
    pub codecs: String,
    /// Extra lines appended to `config`.
    pub extra_config: Vec<String>,
    /// Extra `;name=value` parameters appended to the account line.
    pub extra_account_params: String,
    /// Load `sndfile`, recording both directions of every call into `DIR/rec` (default on).
    pub record: bool,
    /// Run with `-v` (debug output; default on).
    pub verbose: bool,
}

impl Default for BaresipOptions {
    fn default() -> Self {
        BaresipOptions {
            host: hosts::BARESIP,
            register: true,
            answer_mode: AnswerMode::Auto,
            audio_source: AudioSource::Sine(1000),
            codecs: "PCMU,PCMA".to_owned(),
            extra_config: Vec::new(),
            extra_account_params: String::new(),
            record: true,
            verbose: true,
        }
    }
}

/// A running baresip. Dropping it kills it.
#[derive(Debug)]
pub struct Baresip {
    user: String,
    domain: Ipv4Addr,
    ip: Ipv4Addr,
    console: SocketAddr,
    tools_ip: Ipv4Addr,
    log: PathBuf,
    rec_dir: PathBuf,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Baresip {
    /// Starts baresip as `user@kamailio_ip` (password for digest) with `opts`, and waits (at
    /// most 5 s) until its console listens. It registers on its own if `opts.register`; use
    /// [`Baresip::wait_registered`] to wait for that.
    pub fn start(
        net: &Net,
        user: &str,
        password: &str,
        kamailio_ip: Ipv4Addr,
        opts: BaresipOptions,
    ) -> Baresip {
        let baresip = require_tool("baresip", "baresip");
        let ip = net.ip(opts.host);
        let console = SocketAddr::from((ip, 5502));
        let dir = run_dir("baresip");
        let rec_dir = dir.path().join("rec");
        fs::create_dir(&rec_dir).expect("creating baresip's recording directory");

        // ausine only produces 48 kHz stereo (it refuses to start otherwise, and the call
        // then never gets answered); baresip resamples that to the codec's rate.
        let source = match &opts.audio_source {
            AudioSource::Sine(hz) => {
                format!("ausine,{hz}\nausrc_srate\t\t48000\nausrc_channels\t\t2")
            }
            AudioSource::File(path) => format!("aufile,{}", path.display()),
        };
        let mut config = format!(
            "poll_method\t\tepoll\n\
             sip_listen\t\t{ip}:5060\n\
             net_interface\t\t{ip}\n\
             audio_player\t\taubridge,nil\n\
             audio_alert\t\taubridge,nil\n\
             audio_source\t\t{source}\n\
             rtp_ports\t\t10000-10999\n\
             module_path\t\t/usr/lib/baresip/modules\n\
             module\t\t\tcons.so\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\tausine.so\n\
             module\t\t\taubridge.so\n\
             module_tmp\t\tuuid.so\n\
             module_tmp\t\taccount.so\n\
             module_app\t\tcontact.so\n\
             module_app\t\tmenu.so\n\
             cons_listen\t\t{console}\n\
             snd_path\t\t{}\n",
            rec_dir.display()
        );
        if opts.record {
            config.push_str("module\t\t\tsndfile.so\n");
        }
        for line in &opts.extra_config {
            let _ = writeln!(config, "{line}");
        }
        fs::write(dir.path().join("config"), config).expect("writing baresip config");

        let mut account = format!(
            "<sip:{user}@{kamailio_ip};transport=udp>;auth_pass={password};answermode={};\
             audio_codecs={}",
            match opts.answer_mode {
                AnswerMode::Auto => "auto",
                AnswerMode::Manual => "manual",
            },
            opts.codecs
        );
        if !opts.register {
            account.push_str(";regint=0");
        }
        account.push_str(&opts.extra_account_params);
        fs::write(dir.path().join("accounts"), format!("{account}\n"))
            .expect("writing baresip accounts");

        let log = dir.path().join("baresip.log");
        let log_file = fs::File::create(&log).expect("creating baresip.log");
        let mut cmd = Command::new(baresip);
        cmd.arg("-f").arg(dir.path());
        if opts.verbose {
            cmd.arg("-v");
        }
        cmd.current_dir(dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("cloning a file handle"))
            .stderr(log_file);
        let peer = Peer::spawn(&format!("baresip {user}"), &mut cmd, vec![log.clone()]);
        let mut b = Baresip {
            user: user.to_owned(),
            domain: kamailio_ip,
            ip,
            console,
            tools_ip: net.ip(hosts::TOOLS),
            log,
            rec_dir,
            peer,
            dir,
        };
        let ready = process::wait_until(Duration::from_secs(5), || {
            if let Some(status) = b.peer.try_wait() {
                panic!(
                    "baresip exited during start-up ({status}):\n{}",
                    b.log_tail(40)
                );
            }
            b.log().contains("baresip is ready.").then_some(())
        });
        if ready.is_none() {
            panic!("baresip did not get ready within 5 s:\n{}", b.log_tail(40));
        }
        b
    }

    /// Its IP, `127.X.Y.3` by default.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its SIP address, `127.X.Y.3:5060` by default.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 5060))
    }

    /// Its AOR, `sip:user@KAMAILIO_IP`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// A URI reaching it directly, without kamailio: `sip:user@127.X.Y.3:5060`.
    pub fn direct_uri(&self) -> String {
        format!("sip:{}@{}:5060", self.user, self.ip)
    }

    /// Sends a console command line (e.g. `/dial sip:bob@127.1.2.1`, `/hangup`, `/accept`)
    /// over UDP and returns whatever the console sends back within 300 ms (baresip mirrors
    /// its log lines there; watch [`Baresip::log`] for the effects).
    pub fn command(&self, cmd: &str) -> String {
        let socket = UdpSocket::bind((self.tools_ip, 0)).expect("binding the console client");
        // The console is a line editor: without the newline the command is only typed, not
        // run, and the next command is appended to it.
        let line = format!("{}\n", cmd.trim_end_matches('\n'));
        socket
            .send_to(line.as_bytes(), self.console)
            .expect("sending a baresip console command");
        let mut reply = String::new();
        let deadline = Instant::now() + Duration::from_millis(300);
        let mut buf = [0u8; 8192];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match socket.recv(&mut buf) {
                Ok(n) => reply.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => break,
            }
        }
        reply
    }

    /// Dials `uri` (`/dial`).
    pub fn dial(&self, uri: &str) {
        self.command(&format!("/dial {uri}"));
    }

    /// Hangs up the current call (`/hangup`).
    pub fn hangup(&self) {
        self.command("/hangup");
    }

    /// Waits until the registration succeeded (log line `user@domain: {0/UDP/v4} 200 OK`).
    /// Panics with the log on timeout, or as soon as it failed (log line
    /// `reg: sip:user@domain: 401 Unauthorized`, or any other final status >= 300).
    pub fn wait_registered(&self, timeout: Duration) {
        let ok_prefix = format!("{}@{}: {{", self.user, self.domain);
        let failed_prefix = format!("reg: sip:{}@{}: ", self.user, self.domain);
        let ok = process::wait_until(timeout, || {
            let log = self.log();
            for line in log.lines() {
                // Errors are printed in red: drop the ANSI colour sequences.
                let line = process::strip_ansi(line);
                if line.starts_with(&ok_prefix) && line.contains("} 200 OK") {
                    return Some(Ok(()));
                }
                if let Some(rest) = line.strip_prefix(&failed_prefix) {
                    let code = rest.get(..3).and_then(|c| c.parse::<u16>().ok());
                    if code.is_some_and(|c| c >= 300) {
                        return Some(Err(line.clone()));
                    }
                }
            }
            None
        });
        match ok {
            Some(Ok(())) => {}
            Some(Err(line)) => panic!(
                "baresip {} registration failed: {line}\n{}",
                self.user,
                self.log_tail(40)
            ),
            None => panic!(
                "baresip {} not registered within {timeout:?}:\n{}",
                self.user,
                self.log_tail(40)
            ),
        }
    }

    /// Waits until its log contains `needle`; returns the first line containing it. Panics
    /// with the log on timeout.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        process::wait_until(timeout, || {
            self.log()
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            panic!(
                "baresip {}: no {needle:?} in its log within {timeout:?}:\n{}",
                self.user,
                self.log_tail(40)
            )
        })
    }

    /// Its whole log.
    pub fn log(&self) -> String {
        process::read_lossy(&self.log)
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "----- baresip {} {} (last {lines} lines) -----\n{}",
            self.user,
            self.log.display(),
            process::tail(&self.log, lines)
        )
    }

    /// Where sndfile writes recordings (`*-dec.wav` = what baresip heard, `*-enc.wav` = what
    /// it sent).
    pub fn rec_dir(&self) -> &Path {
        &self.rec_dir
    }

    /// The recordings of what it heard (`*-dec.wav`), sorted by name.
    ///
    /// baresip writes a recording's WAV header when it closes the file, a moment after it logs
    /// `session closed`: this waits (at most 3 s) until each header gives the length.
    pub fn heard_recordings(&self) -> Vec<PathBuf> {
        let finished = |p: &PathBuf| hound::WavReader::open(p).is_ok_and(|r| r.len() > 0);
        let mut files = Vec::new();
        for _ in 0..60 {
            files = fs::read_dir(&self.rec_dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                        .collect()
                })
                .unwrap_or_default();
            if files.iter().all(finished) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        files.sort();
        files
    }

    /// Its run directory.
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Its process ID (for reading `/proc/<pid>/…`, e.g. CPU time and memory).
    pub fn pid(&self) -> u32 {
        self.peer.pid()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }
}
