//! Packet capture of one test's subnet with tshark, for seeing what happened on the wire.
//!
//! Opt-in, since tshark takes about half a second to start: call [`Capture::start`] in a test
//! (or [`Capture::start_if_requested`], which only captures when `SWITCHBOARD_LAB_CAPTURE=1`).
//! The capture is stopped with SIGINT so the file is complete. If the test fails, dropping the
//! capture prints the SIP summary (`tshark -r FILE -Y sip`) to stderr; with
//! `SWITCHBOARD_LAB_KEEP=1` the pcapng file stays for `tshark -V` or Wireshark.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use super::net::Net;
use super::process::{self, run_bounded, Peer};
use super::{require_tool, run_dir};

/// A running tshark capture of `127.X.Y.0/24` on `lo`. Dropping it stops it.
#[derive(Debug)]
pub struct Capture {
    file: PathBuf,
    stderr: PathBuf,
    stopped: bool,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Capture {
    /// Starts capturing the test's subnet and waits (at most 10 s) until tshark captures.
    pub fn start(net: &Net) -> Capture {
        let tshark = require_tool("tshark", "tshark");
        let dir = run_dir("capture");
        let file = dir.path().join("capture.pcapng");
        let stderr = dir.path().join("tshark.log");
        let log = fs::File::create(&stderr).expect("creating tshark.log");
        let mut cmd = Command::new(tshark);
        cmd.args(["-q", "-i", "lo", "-f"])
            .arg(format!("net {}", net.subnet()))
            .arg("-w")
            .arg(&file)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let peer = Peer::spawn("tshark", &mut cmd, vec![stderr.clone()]);
        let mut capture = Capture {
            file,
            stderr,
            stopped: false,
            peer,
            dir,
        };
        let ready = process::wait_until(Duration::from_secs(10), || {
            if capture.peer.try_wait().is_some() {
                panic!(
                    "tshark exited at start-up:\n{}",
                    process::read_lossy(&capture.stderr)
                );
            }
            process::read_lossy(&capture.stderr)
                .contains("Capturing on")
                .then_some(())
        });
        if ready.is_none() {
            panic!(
                "tshark did not start capturing within 10 s:\n{}",
                process::read_lossy(&capture.stderr)
            );
        }
        // "Capturing on" is printed when dumpcap opens the interface; on a loaded machine its
        // capture loop starts a moment later, and the first packets of the test were lost.
        thread::sleep(Duration::from_millis(500));
        capture
    }

    /// Starts a capture only if `SWITCHBOARD_LAB_CAPTURE=1`.
    pub fn start_if_requested(net: &Net) -> Option<Capture> {
        std::env::var_os("SWITCHBOARD_LAB_CAPTURE")
            .is_some_and(|v| v != "0" && !v.is_empty())
            .then(|| Capture::start(net))
    }

    /// Stops the capture (SIGINT, so tshark completes the file; SIGKILL after 3 s).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Let the last packets of the test reach tshark.
        thread::sleep(Duration::from_millis(200));
        self.peer.signal("INT");
        if self.peer.wait_timeout(Duration::from_secs(3)).is_none() {
            self.peer.kill();
        }
    }

    /// The capture file (complete once stopped).
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Stops the capture and returns one line per SIP message (`tshark -r FILE -Y sip`).
    pub fn sip_summary(&mut self) -> String {
        self.read(&["-Y", "sip"])
    }

    /// Stops the capture and returns every SIP message in full
    /// (`-Y sip -V -o sip.display_raw_text:TRUE`).
    pub fn sip_verbose(&mut self) -> String {
        self.read(&["-Y", "sip", "-V", "-o", "sip.display_raw_text:TRUE"])
    }

    /// Stops the capture and returns one summary line per frame that matches a display
    /// filter (`tshark -r FILE -Y FILTER`), e.g. `udp.dstport == 16000`.
    pub fn frames(&mut self, display_filter: &str) -> Vec<String> {
        self.read(&["-Y", display_filter])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Stops the capture and returns, for each RTP packet that matches a display filter (UDP
    /// read as RTP where it looks like it), the values of `fields` (`-T fields -e …`).
    pub fn rtp_fields(&mut self, display_filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
        let mut args = vec![
            "-o",
            "rtp.heuristic_rtp:TRUE",
            "-Y",
            display_filter,
            "-T",
            "fields",
        ];
        for f in fields {
            args.extend(["-e", f]);
        }
        self.read(&args)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    }

    fn read(&mut self, args: &[&str]) -> String {
        self.stop();
        let done = run_bounded(
            Command::new(require_tool("tshark", "tshark"))
                .arg("-r")
                .arg(&self.file)
                .args(args),
            Duration::from_secs(30),
        );
        if done.success() {
            done.stdout
        } else {
            format!("tshark -r failed ({:?}): {}", done.status, done.stderr)
        }
    }

    /// Its run directory.
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if thread::panicking() {
            let summary = self.sip_summary();
            eprintln!(
                "lab: test failed; SIP on the wire ({}):\n{summary}",
                self.file.display()
            );
        } else {
            self.stop();
        }
    }
}
