//! linphonec 5.1 (liblinphone), headless, as a far end. It is the lab's peer for attended
//! transfer (it sends Replaces and handles incoming INVITE with Replaces).
//!
//! Set-up (LAB.md): `HOME=DIR/home linphonec -c DIR/linphonerc -a -d 6 -l DIR/debug.log` with
//! commands written to its stdin, which stays open for its whole life (the pipe plays the role
//! of LAB.md's fifo with a writer kept open). `linphonerc` binds SIP to `127.X.Y.4:5060` (UDP
//! only) and RTP to `127.X.Y.4:7100`; `HOME` holds `.local/share/linphone/` and an `.asoundrc`
//! with a null default device. `auto_net_state_mon` must stay at its default (no listening
//! point otherwise). Its stdout is block-buffered when not a terminal, so state is read from
//! `debug.log`.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::net::{hosts, Net};
use super::process::{self, Peer};
use super::{require_tool, run_dir};

/// Options for [`Linphonec::start`]. `Default` gives: host `.4`, registering, auto-answer,
/// no audio files.
#[derive(Debug, Clone)]
pub struct LinphonecOptions {
    /// Host number in the test's /24 (default [`hosts::LINPHONEC`]).
    pub host: u8,
    /// Whether to REGISTER at kamailio.
    pub register: bool,
    /// Whether to answer incoming calls at once (`-a`; only when idle).
    pub auto_answer: bool,
    /// If set: `soundcard use files` and `play FILE` (8 kHz mono s16 WAV).
    pub play_file: Option<PathBuf>,
    /// If set: `soundcard use files` and `record FILE`.
    pub record_file: Option<PathBuf>,
    /// Extra sections appended to `linphonerc` (e.g. `[audio_codec_0]` to enable G.722).
    pub extra_rc: String,
}

impl Default for LinphonecOptions {
    fn default() -> Self {
        LinphonecOptions {
            host: hosts::LINPHONEC,
            register: true,
            auto_answer: true,
            play_file: None,
            record_file: None,
            extra_rc: String::new(),
        }
    }
}

/// A running linphonec. Dropping it kills it.
#[derive(Debug)]
pub struct Linphonec {
    user: String,
    domain: Ipv4Addr,
    ip: Ipv4Addr,
    debug_log: PathBuf,
    stdin: Mutex<Option<ChildStdin>>,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Linphonec {
    /// Starts linphonec as `user@kamailio_ip` with `opts` and waits (at most 5 s) until it
    /// listens on `127.X.Y.4:5060`. Use [`Linphonec::wait_registered`] to wait for the
    /// registration.
    pub fn start(
        net: &Net,
        user: &str,
        password: &str,
        kamailio_ip: Ipv4Addr,
        opts: LinphonecOptions,
    ) -> Linphonec {
        let linphonec = require_tool("linphonec", "linphone-cli");
        let ip = net.ip(opts.host);
        let dir = run_dir("linphonec");
        let home = dir.path().join("home");
        fs::create_dir_all(home.join(".local/share/linphone")).expect("creating linphonec's HOME");
        fs::write(
            home.join(".asoundrc"),
            "pcm.!default { type null }\nctl.!default { type hw card 0 }\n",
        )
        .expect("writing .asoundrc");
        let rc = format!(
            "[sip]\n\
             sip_port=5060\n\
             sip_tcp_port=0\n\
             sip_tls_port=0\n\
             bind_address={ip}\n\
             guess_hostname=0\n\
             auto_answer_replacing_calls=1\n\
             default_proxy=0\n\
             \n\
             [rtp]\n\
             audio_rtp_port=7100\n\
             bind_address={ip}\n\
             \n\
             [video]\n\
             enabled=0\n\
             capture=0\n\
             display=0\n\
             \n\
             [sound]\n\
             echocancellation=0\n\
             \n\
             [proxy_0]\n\
             reg_proxy=<sip:{kamailio_ip};transport=udp>\n\
             reg_identity=sip:{user}@{kamailio_ip}\n\
             reg_expires=600\n\
             reg_sendregister={}\n\
             publish=0\n\
             \n\
             [auth_info_0]\n\
             username={user}\n\
             passwd={password}\n\
             realm={kamailio_ip}\n\
             domain={kamailio_ip}\n\
             {}",
            u8::from(opts.register),
            opts.extra_rc
        );
        let rc_path = dir.path().join("linphonerc");
        fs::write(&rc_path, rc).expect("writing linphonerc");

        let debug_log = dir.path().join("debug.log");
        let out_log = dir.path().join("stdout.log");
        let out = fs::File::create(&out_log).expect("creating linphonec stdout.log");
        let mut cmd = Command::new(linphonec);
        cmd.arg("-c").arg(&rc_path);
        if opts.auto_answer {
            cmd.arg("-a");
        }
        cmd.args(["-d", "6", "-l"])
            .arg(&debug_log)
            .current_dir(dir.path())
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("cloning a file handle"))
            .stderr(out);
        let mut peer = Peer::spawn(
            &format!("linphonec {user}"),
            &mut cmd,
            vec![debug_log.clone(), out_log],
        );
        let stdin = peer.child_mut().stdin.take();
        let mut l = Linphonec {
            user: user.to_owned(),
            domain: kamailio_ip,
            ip,
            debug_log,
            stdin: Mutex::new(stdin),
            peer,
            dir,
        };
        let addr = l.addr();
        let ready = process::wait_until(Duration::from_secs(5), || {
            if let Some(status) = l.peer.try_wait() {
                panic!(
                    "linphonec exited during start-up ({status}):\n{}",
                    l.peer.log_tails(40)
                );
            }
            process::udp_bound(addr).then_some(())
        });
        if ready.is_none() {
            panic!(
                "linphonec did not listen on {addr} within 5 s:\n{}",
                l.peer.log_tails(40)
            );
        }
        if opts.play_file.is_some() || opts.record_file.is_some() {
            l.command("soundcard use files");
        }
        if let Some(file) = &opts.play_file {
            l.command(&format!("play {}", file.display()));
        }
        if let Some(file) = &opts.record_file {
            l.command(&format!("record {}", file.display()));
        }
        l
    }

    /// Its IP, `127.X.Y.4` by default.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Its SIP address, `127.X.Y.4:5060` by default.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 5060))
    }

    /// Its AOR, `sip:user@KAMAILIO_IP`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    /// Writes one command line to its stdin (e.g. `call sip:bob@127.1.2.1`, `calls`,
    /// `terminate all`). Panics if linphonec is gone.
    pub fn command(&self, cmd: &str) {
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        let pipe = stdin.as_mut().expect("linphonec's stdin was closed");
        if let Err(e) = writeln!(pipe, "{cmd}").and_then(|()| pipe.flush()) {
            panic!(
                "linphonec: cannot send {cmd:?}: {e}\n{}",
                self.peer.log_tails(30)
            );
        }
    }

    /// Waits until its account reached `LinphoneRegistrationOk`. Panics with the log on
    /// timeout or on `LinphoneRegistrationFailed`.
    pub fn wait_registered(&self, timeout: Duration) {
        let result = process::wait_until(timeout, || {
            let log = self.log();
            if log.contains("to [LinphoneRegistrationOk]") {
                Some(Ok(()))
            } else if log.contains("to [LinphoneRegistrationFailed]") {
                Some(Err(()))
            } else {
                None
            }
        });
        match result {
            Some(Ok(())) => {}
            Some(Err(())) => panic!(
                "linphonec {} registration failed:\n{}",
                self.user,
                self.log_tail(40)
            ),
            None => panic!(
                "linphonec {} not registered within {timeout:?}:\n{}",
                self.user,
                self.log_tail(40)
            ),
        }
    }

    /// Waits until its debug log contains `needle`; returns the first line with it. Panics
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
                "linphonec {}: no {needle:?} in its log within {timeout:?}:\n{}",
                self.user,
                self.log_tail(40)
            )
        })
    }

    /// Its whole debug log (liblinphone at level 6).
    pub fn log(&self) -> String {
        process::read_lossy(&self.debug_log)
    }

    /// The last `lines` lines of its debug log.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "----- linphonec {} {} (last {lines} lines) -----\n{}",
            self.user,
            self.debug_log.display(),
            process::tail(&self.debug_log, lines)
        )
    }

    /// Its run directory.
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }
}
