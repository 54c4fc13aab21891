//! Where the core's events go: every event about a call is handed to the history and hooks
//! threads (`followers.rs`), then every event goes to the front end. The run loop only sends
//! here: the history file is written and synced, and hooks are spawned, on threads of their
//! own, so no disk or `fork` holds SIP or TLS up. Every SIP message sent or received passes
//! here too: logged with its secrets redacted, captured whole with `--sip-capture` (its own
//! writer thread), and reported as a `sip` event while `trace on` (redacted the same way) or
//! `trace on raw` (as on the wire).

use std::net::SocketAddr;
use std::path::Path;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::capture::SipCapture;
use super::followers::{Followers, HistoryFile};
use crate::config::Config;
use crate::front::{Event, TraceDirection, TraceMode};
use crate::hooks::Hooks;

/// The event sink of the run loop.
pub struct Outlet {
    events: mpsc::UnboundedSender<Event>,
    followers: Followers,
    trace: TraceMode,
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
            trace: TraceMode::Off,
            capture: observers.capture,
        }
    }

    /// `trace on|on raw|off`: whether SIP messages become `sip` events, and whether redacted;
    /// a `trace` event says what they now carry.
    pub fn set_trace(&mut self, mode: TraceMode) {
        self.trace = mode;
        if mode == TraceMode::Raw {
            tracing::warn!("trace on raw: sip events carry credentials and SRTP keys");
        }
        self.send(Event::Trace {
            mode,
            shows: mode.shows().to_owned(),
        });
    }

    /// A SIP message sent to or received from `peer`: its first line is logged (debug), the
    /// whole message too (trace level, redacted), and while tracing it goes to the front end
    /// (redacted unless `trace on raw`).
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
        let (message, raw) = match self.trace {
            TraceMode::Off => return,
            TraceMode::On => (redact_secrets(&text), false),
            TraceMode::Raw => (text.into_owned(), true),
        };
        self.send(Event::SipMessage {
            direction,
            peer: peer.to_string(),
            message,
            raw,
        });
    }

    /// Queues `event` for the history and hooks threads and hands it to the front end.
    /// Never waits.
    pub fn send(&mut self, event: impl Into<Event>) {
        let event = event.into();
        if let Event::Sip(event) = &event {
            self.followers.observe(event, wall_clock());
        }
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

/// A SIP message fit for a log file or the trace: the values of `Authorization`,
/// `Proxy-Authorization` and `(Proxy-)Authentication-Info` headers (digest responses, cnonces)
/// and SDES keys (`a=crypto … inline:KEY`, every key of the line) are replaced by `<redacted>`.
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
        let credentials =
            name.is_some_and(|n| CREDENTIAL_HEADERS.iter().any(|h| n.eq_ignore_ascii_case(h)));
        if credentials {
            out.push_str(name.unwrap_or_default());
            out.push_str(": <redacted>");
        } else if content.len() >= CRYPTO.len()
            && content.as_bytes()[..CRYPTO.len()].eq_ignore_ascii_case(CRYPTO.as_bytes())
        {
            redact_inline_keys(content, &mut out);
        } else {
            out.push_str(content);
        }
        out.push_str(end);
    }
    out
}

/// Headers whose values are digest credentials.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "authentication-info",
    "proxy-authentication-info",
];

/// The SDES attribute that carries keys.
const CRYPTO: &str = "a=crypto:";

/// Copies an `a=crypto` line with each `inline:` key (RFC 4568 §9.1: a line may carry several,
/// each up to the next `;` or space) replaced by `<redacted>`.
fn redact_inline_keys(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(at) = find_ignore_case(rest, "inline:") {
        let start = at + "inline:".len();
        out.push_str(&rest[..start]);
        out.push_str("<redacted>");
        let key_len = rest[start..]
            .find([';', ' ', '\t'])
            .unwrap_or(rest.len() - start);
        rest = &rest[start + key_len..];
    }
    out.push_str(rest);
}

/// The byte offset of `needle` (ASCII) in `haystack`, ignoring ASCII case.
fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    use crate::sip::{self, CallState};

    fn ended(i: usize) -> sip::Event {
        sip::Event::Call {
            line: 1,
            call_id: format!("call-{i}"),
            state: CallState::Ended,
            peer: "sip:2002@pbx.test".into(),
            status: Some(486),
            reason: None,
            account: None,
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
                Ok(Event::Sip(sip::Event::Call { call_id, .. })) => {
                    assert_eq!(call_id, format!("call-{i}"))
                }
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

    #[test]
    fn every_key_of_a_crypto_line_and_the_authentication_info_are_redacted() {
        let message = "SIP/2.0 200 OK\r\n\
            Authentication-Info: rspauth=\"abba\", cnonce=\"c0ffee\", nc=00000001\r\n\
            \r\n\
            A=CRYPTO:2 AES_CM_128_HMAC_SHA1_32 INLINE:KEYONE|2^20|1:4;inline:KEYTWO|2^20|2:4 \
            UNENCRYPTED_SRTCP\n\
            a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:\n\
            a=cryptic inline:not-a-key\n";
        let logged = redact_secrets(message);
        for secret in ["abba", "c0ffee", "KEYONE", "KEYTWO", "1:4"] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
        assert!(logged.contains(
            "A=CRYPTO:2 AES_CM_128_HMAC_SHA1_32 INLINE:<redacted>;inline:<redacted> \
             UNENCRYPTED_SRTCP\n"
        ));
        assert!(
            logged.contains("inline:<redacted>\n"),
            "an empty key: {logged}"
        );
        assert!(logged.contains("a=cryptic inline:not-a-key\n"), "{logged}");
    }

    #[test]
    fn malformed_messages_never_panic_the_redaction() {
        for message in [
            "",
            "\r\n",
            ":",
            "a=crypto:",
            "a=crypto:inline:",
            "é:é\r\na=crypto:é",
        ] {
            let _ = redact_secrets(message);
        }
    }

    fn outlet() -> (Outlet, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let observers = Observers {
            history: HistoryFile {
                path: None,
                load: 10,
            },
            hooks: Hooks::new(crate::config::Config::default().hooks),
            capture: None,
        };
        (Outlet::new(tx, observers), rx)
    }

    const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
        Proxy-Authorization: Digest username=\"alice\", response=\"5ec2e7\", cnonce=\"0a4f\"\r\n\
        \r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";

    fn traced(mode: TraceMode) -> Vec<Event> {
        let (mut outlet, mut rx) = outlet();
        outlet.set_trace(mode);
        let peer: SocketAddr = "127.0.0.1:5060".parse().expect("an address");
        outlet.sip(TraceDirection::Out, peer, INVITE.as_bytes());
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    #[test]
    fn trace_on_reports_messages_redacted_and_says_so() {
        let events = traced(TraceMode::On);
        assert!(
            matches!(&events[0], Event::Trace { mode: TraceMode::On, shows } if shows.contains("<redacted>")),
            "{events:?}"
        );
        let Event::SipMessage { message, raw, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert!(!raw);
        assert!(
            !message.contains("5ec2e7") && !message.contains("0a4f"),
            "{message}"
        );
        assert!(!message.contains("WVNfX19z"), "{message}");
        assert!(message.contains("Proxy-Authorization: <redacted>\r\n"));
        assert!(message.contains("inline:<redacted>\r\n"));
    }

    #[test]
    fn trace_on_raw_reports_messages_as_sent_and_says_so() {
        let events = traced(TraceMode::Raw);
        assert!(
            matches!(&events[0], Event::Trace { mode: TraceMode::Raw, shows } if shows.contains("UNREDACTED")),
            "{events:?}"
        );
        assert_eq!(
            events[1],
            Event::SipMessage {
                direction: TraceDirection::Out,
                peer: "127.0.0.1:5060".into(),
                message: INVITE.into(),
                raw: true,
            }
        );
    }

    #[test]
    fn trace_off_reports_nothing() {
        let events = traced(TraceMode::Off);
        assert!(
            matches!(
                events.as_slice(),
                [Event::Trace {
                    mode: TraceMode::Off,
                    ..
                }]
            ),
            "{events:?}"
        );
    }
}
