//! The REGISTER usage (RFC 3261 §10): one binding for the account, kept
//! alive by refreshes, answered challenges and backoff after failures.
//!
//! ```text
//!            send                 2xx                 85 % of expiry
//!   Idle ──────────► Registering ─────► Registered ──────────────────┐
//!    ▲                 │   ▲  401/407: answer the challenge once      │
//!    │      failure    │   └──── (again only when stale=true) ───────┘ refresh
//!    │  (4xx–6xx,      ▼
//!    │   timeout)   Failed ── backoff 5 s, 10 s, 20 s … 300 s ──► Registering
//!    │
//!    └── quit: REGISTER Expires: 0 (Unregistering) ──► Idle
//! ```
//!
//! Digest answers reuse the nonce with a growing nonce-count on refreshes;
//! a 423 takes the registrar's Min-Expires.

use std::time::{Duration, Instant};

use super::auth::{self, Challenge};
use super::msg::{Builder, Message, Method};
use super::{Event, Owner, UserAgent};

/// First retry delay after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest delay between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Shortest refresh interval, whatever the registrar grants.
const MIN_REFRESH: Duration = Duration::from_secs(5);

/// The binding's state; see the module diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Registering,
    Registered,
    Failed,
    Unregistering,
}

/// The state of the account's registration.
#[derive(Debug, Clone)]
pub(super) struct Registration {
    call_id: String,
    tag: String,
    cseq: u32,
    phase: Phase,
    /// When to send the next REGISTER (refresh or retry).
    next_at: Option<Instant>,
    /// Consecutive failures, for the backoff.
    failures: u32,
    /// The last challenge, its header (`Authorization` or
    /// `Proxy-Authorization`) and the nonce-count used with it.
    challenge: Option<(Challenge, &'static str, u32)>,
    /// Whether the REGISTER in flight already answered a fresh challenge.
    answered_challenge: bool,
    /// The expiry we ask for (raised by 423 Min-Expires).
    expires: u32,
}

impl Registration {
    /// A binding not yet attempted, with its own Call-ID and From tag.
    pub(super) fn new(call_id: String, tag: String, expires: u32) -> Registration {
        Registration {
            call_id,
            tag,
            cseq: 0,
            phase: Phase::Idle,
            next_at: None,
            failures: 0,
            challenge: None,
            answered_challenge: false,
            expires,
        }
    }

    /// True when a refresh or retry is due.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|t| t <= now)
    }

    /// When the next refresh or retry is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// True when no REGISTER is in flight (quit may finish).
    pub(super) fn is_idle(&self) -> bool {
        !matches!(self.phase, Phase::Registering | Phase::Unregistering)
    }

    fn backoff(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(6);
        (FIRST_BACKOFF * (1 << shift)).min(MAX_BACKOFF)
    }
}

impl UserAgent {
    /// Sends a REGISTER for the account (`Expires: 0` when unregistering).
    pub(super) fn send_register(&mut self, now: Instant) {
        let unregistering = self
            .registration
            .as_ref()
            .is_some_and(|r| r.phase == Phase::Unregistering);
        if !unregistering && self.registrar_lookup_needed(now) {
            if let Some(reg) = self.registration.as_mut() {
                reg.phase = Phase::Registering;
                reg.next_at = None;
            }
            return;
        }
        let via = self.via();
        let contact = self.contact_uri();
        let aor = self.local_name_addr();
        let account = self.cfg.account.clone();
        let registrar = account.registrar.clone();
        let dst = self.register_dst();
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        let unregister = reg.phase == Phase::Unregistering;
        if !unregister {
            reg.phase = Phase::Registering;
        }
        reg.next_at = None;
        reg.cseq += 1;
        let expires = if unregister { 0 } else { reg.expires };
        let mut from = aor.clone();
        from.params.set("tag", Some(&reg.tag));
        let mut b = Builder::request(Method::Register, &registrar)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", from.to_string())
            .header("To", aor.to_string())
            .header("Call-ID", &reg.call_id)
            .header("CSeq", format!("{} REGISTER", reg.cseq))
            .header("Contact", format!("<{contact}>"));
        if let Some(stale) = &self.stale_contact {
            b = b.header("Contact", format!("<{stale}>;expires=0"));
        }
        b = b
            .header("Expires", expires.to_string())
            .header("Allow", super::ALLOW)
            .header("Supported", super::SUPPORTED);
        if let Some((proxy, _)) = &account.outbound_proxy {
            b = b.header("Route", format!("<{proxy};lr>"));
        }
        if let (Some((challenge, header, nc)), Some(password)) =
            (reg.challenge.as_mut(), account.password.as_deref())
        {
            *nc += 1;
            let cnonce = format!("{:08x}", self.tokens.next() as u32);
            let value = auth::authorization(
                challenge,
                &account.auth_user,
                password,
                "REGISTER",
                &registrar,
                *nc,
                &cnonce,
            );
            b = b.header(header, value);
        }
        b = self.common_headers(b);
        let Some(dst) = dst else {
            self.registration_failed(now, None, "cannot resolve the registrar's address");
            return;
        };
        let bytes = b.build();
        if self
            .send_request(now, dst, bytes, Owner::Register)
            .is_none()
        {
            self.registration_failed(now, None, "could not build REGISTER");
        }
    }

    /// A final (or provisional) response to our REGISTER.
    pub(super) fn on_register_response(&mut self, now: Instant, request: &Message, resp: &Message) {
        let Some(code) = resp.code() else { return };
        if code < 200 {
            return;
        }
        let contact = self.contact_uri();
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        if request.cseq.0 != reg.cseq {
            return; // a late answer to a REGISTER we have given up on
        }
        let account = self.cfg.account.aor();
        if reg.phase == Phase::Unregistering {
            if (200..300).contains(&code) || !matches!(code, 401 | 407) {
                reg.phase = Phase::Idle;
                self.emit(Event::Unregistered { account });
            } else if !self.answer_challenge(resp) {
                if let Some(reg) = self.registration.as_mut() {
                    reg.phase = Phase::Idle;
                }
            } else {
                self.send_register(now);
            }
            return;
        }
        match code {
            200..=299 => {
                let granted = granted_expires(resp, &contact).unwrap_or(reg.expires);
                reg.phase = Phase::Registered;
                reg.failures = 0;
                reg.answered_challenge = false;
                let refresh = Duration::from_secs(u64::from(granted) * 85 / 100).max(MIN_REFRESH);
                reg.next_at = Some(now + refresh);
                self.emit(Event::Registered {
                    account,
                    expires: granted,
                });
                self.stale_contact = None;
                self.rewrite_contact_behind_nat(now, resp);
            }
            401 | 407 => {
                if self.cfg.account.password.is_none() {
                    self.registration_failed(
                        now,
                        Some(code),
                        "the registrar asks for a password and none is configured",
                    );
                } else if self.answer_challenge(resp) {
                    self.send_register(now);
                } else {
                    self.registration_failed(
                        now,
                        Some(code),
                        "authentication failed: check the user name and password",
                    );
                }
            }
            423 => {
                let min = resp
                    .header("Min-Expires")
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .filter(|m| *m > reg.expires && *m <= 86_400);
                match min {
                    Some(min) => {
                        reg.expires = min;
                        self.send_register(now);
                    }
                    None => self.registration_failed(
                        now,
                        Some(code),
                        "the registrar wants a longer expiry",
                    ),
                }
            }
            503 if self.registrar_fail_over(now) => {}
            _ => {
                let reason = format!("the registrar answered {code} {}", resp.reason());
                self.registration_failed(now, Some(code), &reason);
            }
        }
    }

    /// Stores the challenge of a 401/407. False when it must not be
    /// answered: none usable, or the same credentials were just refused.
    fn answer_challenge(&mut self, resp: &Message) -> bool {
        let (name, header) = if resp.code() == Some(407) {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let values: Vec<&str> = resp.headers(name).collect();
        let Some(challenge) = auth::pick_strongest(&values) else {
            return false;
        };
        let Some(reg) = self.registration.as_mut() else {
            return false;
        };
        if reg.answered_challenge && !challenge.stale {
            return false;
        }
        reg.answered_challenge = true;
        reg.challenge = Some((challenge, header, 0));
        true
    }

    /// The stream connection to the registrar is gone (see
    /// [`UserAgent::handle_connection_lost`]): a binding in place is renewed at once on a new
    /// connection; a REGISTER in flight is abandoned and counted as a failure, for `why` when
    /// the connection could not be set up.
    pub(super) fn on_registrar_connection_lost(&mut self, now: Instant, why: Option<&str>) {
        let Some(phase) = self.registration.as_ref().map(|r| r.phase) else {
            return;
        };
        match phase {
            Phase::Registered => {
                tracing::info!("connection to the registrar lost; registering again");
                self.send_register(now);
            }
            Phase::Registering => {
                self.clients
                    .retain(|_, (_, owner)| *owner != Owner::Register);
                if self.registrar_fail_over(now) {
                    return;
                }
                self.registration_failed(
                    now,
                    None,
                    why.unwrap_or("the connection to the registrar was lost"),
                );
            }
            Phase::Unregistering => {
                self.clients
                    .retain(|_, (_, owner)| *owner != Owner::Register);
                if let Some(reg) = self.registration.as_mut() {
                    reg.phase = Phase::Idle;
                }
            }
            Phase::Idle | Phase::Failed => {}
        }
    }

    /// The REGISTER transaction timed out (Timer F).
    pub(super) fn on_register_timeout(&mut self, now: Instant) {
        let unregistering = self
            .registration
            .as_ref()
            .is_some_and(|r| r.phase == Phase::Unregistering);
        if unregistering {
            if let Some(reg) = self.registration.as_mut() {
                reg.phase = Phase::Idle;
            }
            return;
        }
        if !self.registrar_fail_over(now) {
            self.registration_failed(now, None, "the registrar did not answer");
        }
    }

    /// A refresh or a retry is due.
    pub(super) fn on_register_timer(&mut self, now: Instant) {
        let refresh = self
            .registration
            .as_mut()
            .map(|reg| {
                reg.answered_challenge = false;
                reg.phase == Phase::Registered
            })
            .unwrap_or(false);
        if refresh {
            self.registrar_back_to_first();
        }
        self.send_register(now);
    }

    /// Forgets the registrar's challenge: another registrar target has its own nonces.
    pub(super) fn forget_register_challenge(&mut self) {
        if let Some(reg) = self.registration.as_mut() {
            reg.challenge = None;
            reg.answered_challenge = false;
        }
    }

    /// Removes the binding (on quit). Nothing is sent when none exists.
    pub(super) fn unregister(&mut self, now: Instant) {
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        reg.next_at = None;
        match reg.phase {
            Phase::Registered | Phase::Registering => {
                reg.phase = Phase::Unregistering;
                reg.answered_challenge = false;
                // The REGISTER in flight (if any) is left to finish on its own.
                self.send_register(now);
            }
            Phase::Idle | Phase::Failed | Phase::Unregistering => reg.phase = Phase::Idle,
        }
    }

    pub(super) fn registration_failed(&mut self, now: Instant, status: Option<u16>, reason: &str) {
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        reg.phase = Phase::Failed;
        reg.failures += 1;
        reg.answered_challenge = false;
        let retry = reg.backoff();
        reg.next_at = Some(now + retry);
        tracing::warn!(
            ?status,
            reason,
            retry_in = retry.as_secs(),
            "registration failed"
        );
        self.emit(Event::RegistrationFailed {
            account: self.cfg.account.aor(),
            status,
            reason: reason.to_string(),
            retry_in: retry.as_secs(),
        });
    }
}

/// The lifetime the registrar granted our contact: its `expires` parameter
/// in the 2xx's Contact list, else the Expires header (§10.2.4).
fn granted_expires(resp: &Message, our_contact: &str) -> Option<u32> {
    let ours = super::msg::SipUri::parse(our_contact);
    let from_contact = resp
        .headers("Contact")
        .filter_map(super::msg::NameAddr::parse)
        .find(|c| {
            let theirs = super::msg::SipUri::parse(&c.uri);
            match (&ours, &theirs) {
                (Some(a), Some(b)) => a.user == b.user && a.host == b.host && a.port == b.port,
                _ => false,
            }
        })
        .and_then(|c| c.params.get("expires").and_then(|e| e.parse().ok()));
    from_contact.or_else(|| resp.header("Expires").and_then(|e| e.trim().parse().ok()))
}
