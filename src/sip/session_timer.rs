//! Session timers (RFC 4028): the `Session-Expires` / `Min-SE` negotiation of an INVITE
//! dialog and the one deadline it leaves: refresh (we are the refresher) or expiry (the far
//! end is). Pure functions over messages and `now`; the INVITE usage (`call/`) sends the
//! refreshing re-INVITE, the 422 and the BYE. No UPDATE: we refresh by re-INVITE.
//!
//! ```text
//!   2xx / refresh with Session-Expires: N;refresher=R
//!        │
//!        ├─ R is us ──► due at N/2 ──► re-INVITE (its 2xx starts the timer again)
//!        └─ R is the far end ──► due at N − min(32 s, N/3) ──► BYE "session timer expired"
//!   a request or 2xx without Session-Expires ──► no timer (§7.2, §9)
//! ```

use std::time::{Duration, Instant};

use super::msg::Message;

/// The smallest interval we accept, in seconds (RFC 4028 §4: at least 90).
pub(super) const MIN_SE: u32 = 90;
/// The interval our INVITEs ask for, in seconds (RFC 4028 §4 recommends 1800).
pub(super) const WANTED: u32 = 1800;
/// The largest interval a 422 may push our request to (a day).
const MAX_SE: u32 = 86_400;

/// Who sends the refreshes, as written in a `refresher` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    /// The sender of the request (`uac`).
    Uac,
    /// The receiver of the request (`uas`).
    Uas,
}

/// A running session timer of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SessionTimer {
    /// The negotiated interval, in seconds.
    pub(super) interval: u32,
    /// We send the refreshes (otherwise we watch for them).
    pub(super) we_refresh: bool,
    /// When to refresh (`we_refresh`) or give up on the far end.
    pub(super) due: Instant,
}

impl SessionTimer {
    /// A timer (re)started at `now`.
    pub(super) fn start(now: Instant, interval: u32, we_refresh: bool) -> SessionTimer {
        let secs = u64::from(interval);
        let due = if we_refresh {
            Duration::from_secs(secs) / 2
        } else {
            // §10: BYE at the expiry less 32 s or a third of the interval, whichever is less.
            Duration::from_secs(secs - (secs / 3).min(32))
        };
        SessionTimer {
            interval,
            we_refresh,
            due: now + due,
        }
    }

    /// The `Session-Expires` and `Min-SE` of a re-INVITE we send in the dialog: the same
    /// interval, with the refresher unchanged (§7.4).
    pub(super) fn request_headers(&self) -> Vec<(&'static str, String)> {
        let refresher = if self.we_refresh { "uac" } else { "uas" };
        vec![
            (
                "Session-Expires",
                format!("{};refresher={refresher}", self.interval),
            ),
            ("Min-SE", MIN_SE.to_string()),
        ]
    }
}

/// The `Session-Expires` and `Min-SE` of our initial INVITE asking for `interval` seconds.
pub(super) fn invite_headers(interval: u32) -> Vec<(&'static str, String)> {
    vec![
        ("Session-Expires", interval.to_string()),
        ("Min-SE", MIN_SE.min(interval).to_string()),
    ]
}

/// `Session-Expires` of `msg`: the interval and the refresher, if any.
pub(super) fn session_expires(msg: &Message) -> Option<(u32, Option<Refresher>)> {
    let value = msg.header("Session-Expires")?;
    let mut parts = value.split(';');
    let interval = parts.next()?.trim().parse::<u32>().ok()?;
    let refresher = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("refresher") {
            return None;
        }
        match value.trim().to_ascii_lowercase().as_str() {
            "uac" => Some(Refresher::Uac),
            "uas" => Some(Refresher::Uas),
            _ => None,
        }
    });
    Some((interval, refresher))
}

/// True when `req` asks for an interval below [`MIN_SE`]: it gets a 422 with our `Min-SE`.
pub(super) fn too_brief(req: &Message) -> bool {
    session_expires(req).is_some_and(|(interval, _)| interval < MIN_SE)
}

/// True when `msg` says its sender does session timers (`Supported` or `Require: timer`).
fn supports_timer(msg: &Message) -> bool {
    msg.has_token("Supported", "timer") || msg.has_token("Require", "timer")
}

/// Our answer to a request (INVITE or re-INVITE) we accept with a 2xx: the timer it
/// starts and the headers for the 2xx, or `None` when it asks for no timer (§9).
pub(super) fn answer(
    req: &Message,
    now: Instant,
) -> Option<(SessionTimer, Vec<(&'static str, String)>)> {
    let (interval, asked) = session_expires(req)?;
    let interval = interval.max(MIN_SE);
    let uac_can = supports_timer(req);
    // §9: without a preference the UAC refreshes if it can; one that cannot never does.
    let refresher = match asked {
        Some(Refresher::Uac) | None if uac_can => Refresher::Uac,
        _ => Refresher::Uas,
    };
    let name = match refresher {
        Refresher::Uac => "uac",
        Refresher::Uas => "uas",
    };
    let mut headers = vec![("Session-Expires", format!("{interval};refresher={name}"))];
    if uac_can {
        headers.push(("Require", "timer".to_owned()));
    }
    let timer = SessionTimer::start(now, interval, refresher == Refresher::Uas);
    Some((timer, headers))
}

/// The timer a 2xx to a request we sent starts, or `None` without `Session-Expires` (§7.2).
/// Without a refresher parameter we refresh: the far end did not say it would.
pub(super) fn from_response(resp: &Message, now: Instant) -> Option<SessionTimer> {
    let (interval, refresher) = session_expires(resp)?;
    let interval = interval.max(MIN_SE);
    Some(SessionTimer::start(
        now,
        interval,
        refresher != Some(Refresher::Uas),
    ))
}

/// The interval to ask again with after a 422 to a request that asked for `asked`: the
/// response's `Min-SE`, when it is larger (and sane); `None` ends the call.
pub(super) fn retry_after_422(resp: &Message, asked: u32) -> Option<u32> {
    let min = resp
        .header("Min-SE")?
        .split(';')
        .next()?
        .trim()
        .parse::<u32>()
        .ok()?;
    (min > asked && min <= MAX_SE).then_some(min)
}
