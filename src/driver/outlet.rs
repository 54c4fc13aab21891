//! Where the core's events go: every event about a call is handed to the history and hooks
//! threads (`followers.rs`), then every event goes to the front end. The run loop only sends
//! here: the history file is written and synced, and hooks are spawned, on threads of their
//! own, so no disk or `fork` holds SIP or TLS up. Every SIP message sent or received passes
//! here too: logged, captured with `--sip-capture` (its own writer thread), and reported as a
//! `sip` event while `trace on`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::capture::SipCapture;
use super::followers::{Followers, HistoryFile};
use crate::config::Config;
use crate::hooks::Hooks;
use crate::sip::{Event, TraceDirection};

/// The event sink of the run loop.
pub struct Outlet {
    events: mpsc::UnboundedSender<Event>,
    followers: Followers,
    trace: bool,
    capture: Option<SipCapture>,
}

/// The observers built from the configuration, before the run loop starts.
pub struct Observers {
    history: HistoryFile,
    hooks: Hooks,
    capture: Option<SipCapture>,
}

impl Observers {
    /// Names the history file (`[history]`) and prepares the hooks (`[hooks]`). The history
    /// thread opens the file when the run loop starts; a file that cannot be opened is logged
    /// and replaced by an in-memory history: calls still work.
    pub fn new(config: &Config) -> Observers {
        Observers {
            history: HistoryFile {
                path: config.history.path(),
                load: config.history.load,
            },
            hooks: Hooks::new(config.hooks.clone()),
            capture: None,
        }
    }

    /// Appends every SIP message, whole and unredacted, to `path` (`--sip-capture`).
    pub fn capture_sip(&mut self, path: &Path) -> std::io::Result<()> {
        self.capture = Some(SipCapture::create(path)?);
        Ok(())
    }
}

impl Outlet {
    /// An outlet to `events` with these observers; starts the history and hooks threads.
    pub fn new(events: mpsc::UnboundedSender<Event>, observers: Observers) -> Outlet {
        Outlet {
            events,
            followers: Followers::start(observers.history, observers.hooks),
            trace: false,
            capture: observers.capture,
        }
    }

    /// `trace on|off`: whether SIP messages become `sip` events.
    pub fn set_trace(&mut self, on: bool) {
        self.trace = on;
    }

    /// A SIP message sent to or received from `peer`: its first line is logged (debug), the
    /// whole message too (trace level), and while tracing it goes to the front end.
    pub fn sip(&mut self, direction: TraceDirection, peer: SocketAddr, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let first = text.lines().next().unwrap_or_default();
        let what = match direction {
            TraceDirection::In => "received",
            TraceDirection::Out => "sending",
        };
        tracing::debug!(%peer, len = bytes.len(), "{what}: {first}");
        if let Some(capture) = &self.capture {
            capture.record(direction, peer, bytes);
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(%peer, "{what}:\n{}", redact_secrets(&text));
        }
        if self.trace {
            self.send(Event::Sip {
                direction,
                peer: peer.to_string(),
                message: text.into_owned(),
            });
        }
    }

    /// Queues `event` for the history and hooks threads and hands it to the front end.
    /// Never waits.
    pub fn send(&mut self, event: Event) {
        self.followers.observe(&event, wall_clock());
        if self.events.send(event).is_err() {
            tracing::debug!("the front end is gone; event dropped");
        }
    }

    /// At the end of the run loop: lets the history and hooks threads finish what is queued
    /// (a bounded wait).
    pub fn close(self) {
        self.followers.close();
    }
}

/// The wall clock, for history timestamps.
#[allow(clippy::disallowed_methods)] // The driver is where time enters.
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// A SIP message fit for a log file: the values of `Authorization` and
/// `Proxy-Authorization` headers and SDES keys (`a=crypto … inline:KEY`) are replaced by
/// `<redacted>`.
pub fn redact_secrets(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for line in message.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(c) => (c, "\n"),
                None => (line, ""),
            },
        };
        let name = content.split_once(':').map(|(n, _)| n.trim());
        let credentials = name.is_some_and(|n| {
            n.eq_ignore_ascii_case("authorization") || n.eq_ignore_ascii_case("proxy-authorization")
        });
        if credentials {
            out.push_str(name.unwrap_or_default());
            out.push_str(": <redacted>");
        } else if let Some(at) = content
            .to_ascii_lowercase()
            .starts_with("a=crypto:")
            .then(|| content.to_ascii_lowercase().find("inline:"))
            .flatten()
        {
            out.push_str(&content[..at + "inline:".len()]);
            out.push_str("<redacted>");
        } else {
            out.push_str(content);
        }
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    use crate::sip::CallState;

    fn ended(i: usize) -> Event {
        Event::Call {
            line: 1,
            call_id: format!("call-{i}"),
            state: CallState::Ended,
            peer: "sip:2002@pbx.test".into(),
            status: Some(486),
            reason: None,
        }
    }

    /// The history file is a named pipe nobody reads: once its buffer (64 KiB) is full, every
    /// write of the history thread blocks. The outlet still hands every event on at once, and
    /// the records all arrive, in order, once someone reads the pipe.
    #[test]
    fn events_flow_while_the_history_file_is_blocked() {
        const CALLS: usize = 5_000; // about 1 MB of records
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("history.jsonl");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let mut config = Config::embedded_default();
        config.history.file = Some(fifo.clone());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let observers = Observers::new(&config);
        // The sends run on a thread of their own so that an outlet that blocks fails the test
        // instead of hanging it.
        let (sent_tx, sent) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut outlet = Outlet::new(tx, observers);
            for i in 0..CALLS {
                outlet.send(ended(i));
            }
            let _ = sent_tx.send(outlet);
        });
        let outlet = sent
            .recv_timeout(Duration::from_secs(10))
            .expect("the outlet blocked on the history file");
        for i in 0..CALLS {
            match rx.try_recv() {
                Ok(Event::Call { call_id, .. }) => assert_eq!(call_id, format!("call-{i}")),
                other => panic!("event {i}: {other:?}"),
            }
        }

        // Now drain the pipe (on a thread: a read blocks) and wait, bounded, for every record.
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(std::fs::File::open(&fifo).expect("open the pipe"));
            for line in reader.lines().take(CALLS) {
                let Ok(line) = line else { return };
                if lines_tx.send(line).is_err() {
                    return;
                }
            }
        });
        for i in 0..CALLS {
            let line = lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("record {i} not written: {e}"));
            let record: crate::history::Record = serde_json::from_str(&line).expect("a record");
            assert_eq!(record.call_id, format!("call-{i}"));
        }
        outlet.close();
    }

    #[test]
    fn credentials_and_srtp_keys_are_redacted_from_logged_messages() {
        let message = "REGISTER sip:127.0.0.1 SIP/2.0\r\n\
            Authorization: Digest username=\"alice\", response=\"0123abcd\", nonce=\"n\"\r\n\
            proxy-authorization:Digest response=\"ffff\"\r\n\
            Content-Length: 0\r\n\r\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n";
        let logged = redact_secrets(message);
        assert!(
            !logged.contains("0123abcd") && !logged.contains("ffff"),
            "{logged}"
        );
        assert!(!logged.contains("AAECAwQF"), "{logged}");
        assert!(logged.contains("Authorization: <redacted>\r\n"));
        assert!(logged.contains("proxy-authorization: <redacted>\r\n"));
        assert!(logged.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>\r\n"));
        assert!(logged.starts_with("REGISTER sip:127.0.0.1 SIP/2.0\r\n"));
        assert!(logged.contains("Content-Length: 0\r\n\r\n"));
    }
}
