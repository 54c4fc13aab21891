//! Where the core's events go: the call history and the screen-pop hooks see each one, then it
//! is handed to the front end. Neither observer may hold the run loop up: history appends one
//! line per finished call, hooks are started in the background. Every SIP message sent or
//! received passes here too: logged, captured with `--sip-capture`, and reported as a `sip`
//! event while `trace on`.

use std::time::SystemTime;

use tokio::sync::mpsc;

use std::path::Path;

use super::capture::SipCapture;
use crate::config::Config;
use crate::history::History;
use crate::hooks::Hooks;
use std::net::SocketAddr;

use crate::sip::{Event, TraceDirection};

/// How many past calls are kept in memory when the history file cannot be opened.
const IN_MEMORY_HISTORY: usize = 1_000;

/// The event sink of the run loop.
pub struct Outlet {
    events: mpsc::UnboundedSender<Event>,
    history: History,
    hooks: Hooks,
    trace: bool,
    capture: Option<SipCapture>,
}

/// The observers built from the configuration, before the run loop starts.
pub struct Observers {
    history: History,
    hooks: Hooks,
    capture: Option<SipCapture>,
}

impl Observers {
    /// Opens the history file (`[history]`) and prepares the hooks (`[hooks]`). A history file
    /// that cannot be opened is logged and replaced by an in-memory history: calls still work.
    pub fn new(config: &Config) -> Observers {
        let history = match config.history.path() {
            Some(path) => History::load(&path, config.history.load).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "call history not available; keeping it in memory");
                History::in_memory(IN_MEMORY_HISTORY)
            }),
            None => {
                tracing::warn!("no data directory for the call history; keeping it in memory");
                History::in_memory(IN_MEMORY_HISTORY)
            }
        };
        Observers {
            history,
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
    /// An outlet to `events` with these observers.
    pub fn new(events: mpsc::UnboundedSender<Event>, observers: Observers) -> Outlet {
        Outlet {
            events,
            history: observers.history,
            hooks: observers.hooks,
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

    /// Records `event`, fires its hook, and hands it to the front end.
    pub fn send(&mut self, event: Event) {
        if let Err(e) = self.history.observe(&event, wall_clock()) {
            tracing::warn!(error = %e, "could not write the call history");
        }
        self.hooks.observe(&event);
        if self.events.send(event).is_err() {
            tracing::debug!("the front end is gone; event dropped");
        }
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
