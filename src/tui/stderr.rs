//! Keeps stray stderr output off the screen while the full-screen interface runs.
//!
//! Libraries below us (ALSA, PulseAudio, the Opus build) print to file descriptor 2 when a
//! device is missing or a plugin complains; on the alternate screen those lines would scribble
//! over the panes. [`StderrRedirect`] points descriptor 2 at the log file (or `/dev/null`) and
//! puts the terminal's stderr back when dropped, so messages printed after the screen closes
//! reach the operator again.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// Descriptor 2 redirected; the original comes back on drop.
#[derive(Debug)]
pub struct StderrRedirect {
    saved: OwnedFd,
}

impl StderrRedirect {
    /// Sends everything written to stderr to `log` (appended), or to `/dev/null` when there is
    /// no log or it cannot be opened.
    pub fn to_log(log: Option<&Path>) -> io::Result<StderrRedirect> {
        let target = log
            .and_then(|path| OpenOptions::new().append(true).open(path).ok())
            .map_or_else(|| File::options().write(true).open("/dev/null"), Ok)?;
        let saved = rustix::io::dup(io::stderr().as_fd())?;
        rustix::stdio::dup2_stderr(target.as_fd())?;
        Ok(StderrRedirect { saved })
    }
}

impl Drop for StderrRedirect {
    fn drop(&mut self) {
        // Nothing better to do if this fails: stderr stays where it was pointed.
        let _ = rustix::stdio::dup2_stderr(self.saved.as_fd());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Writes straight to descriptor 2, as a C library would.
    fn write_fd2(text: &str) {
        let fd2 = rustix::io::dup(io::stderr().as_fd()).expect("dup fd 2");
        File::from(fd2)
            .write_all(text.as_bytes())
            .expect("write to fd 2");
    }

    fn fd2_target() -> std::path::PathBuf {
        std::fs::read_link("/proc/self/fd/2").expect("fd 2 is open")
    }

    #[test]
    fn lines_written_to_fd2_land_in_the_log_and_stderr_comes_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("switchboard.log");
        std::fs::write(&log, "earlier\n").expect("log");
        let before = fd2_target();
        {
            let _guard = StderrRedirect::to_log(Some(&log)).expect("redirect");
            assert_eq!(fd2_target(), log);
            write_fd2("ALSA lib pcm.c: cannot find card\n");
        }
        assert_eq!(fd2_target(), before);
        let text = std::fs::read_to_string(&log).expect("read log");
        assert_eq!(text, "earlier\nALSA lib pcm.c: cannot find card\n");
    }
}
