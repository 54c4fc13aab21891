//! The REGISTER usage (RFC 3261 §10): one binding for the account, kept
//! alive by refreshes and backoff after failures.
//!
//! ```text
//!            send                 2xx                 85 % of expiry
//!   Idle ──────────► Registering ─────► Registered ──────────────────┐
//!    ▲                 │   ▲                                          │
//!    │      failure    │   └──────────────────────────────────────────┘ refresh
//!    │  (4xx–6xx,      ▼
//!    │   timeout)   Failed ── backoff (refresh.rs), or Retry-After ──► Registering
//!    │
//!    └── quit: REGISTER Expires: 0 (Unregistering) ──► Idle
//! ```
//!
//! Challenges are answered by the authentication layer (`client_auth.rs`) before this usage
//! sees the response, and refreshes carry the credentials again with a growing nonce-count;
//! a 401/407 that reaches this usage is a failure. A 423 takes the registrar's Min-Expires.

use std::time::{Duration, Instant};

use super::msg::{Builder, Message, Method};
use super::refresh::{self, Refresh};
use super::{Event, Owner, UserAgent};

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
    refresh: Refresh,
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
            refresh: Refresh::default(),
            expires,
        }
    }

    /// True when a refresh or retry is due.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.refresh.due(now)
    }

    /// When the next refresh or retry is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.refresh.deadline()
    }

    /// The CSeq of the last REGISTER sent.
    pub(super) fn cseq(&self) -> u32 {
        self.cseq
    }

    /// The last REGISTER was sent again with CSeq `cseq` (by the authentication layer).
    pub(super) fn set_cseq(&mut self, cseq: u32) {
        self.cseq = self.cseq.max(cseq);
    }

    /// True when no REGISTER is in flight (quit may finish).
    pub(super) fn is_idle(&self) -> bool {
        !matches!(self.phase, Phase::Registering | Phase::Unregistering)
    }
}

impl UserAgent {
    /// Sends a REGISTER for the account (`Expires: 0` when unregistering).
    pub(super) fn send_register(&mut self, now: Instant) {
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
        reg.refresh.clear();
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
            .header("Contact", format!("<{contact}>"))
            .header("Expires", expires.to_string())
            .header("Allow", super::ALLOW)
            .header("Supported", super::SUPPORTED);
        if let Some((proxy, _)) = &account.outbound_proxy {
            b = b.header("Route", format!("<{proxy};lr>"));
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
            reg.phase = Phase::Idle;
            if !matches!(code, 401 | 407) {
                self.emit(Event::Unregistered { account });
            }
            return;
        }
        match code {
            200..=299 => {
                let granted = granted_expires(resp, &contact).unwrap_or(reg.expires);
                reg.phase = Phase::Registered;
                reg.refresh.granted(now, granted);
                self.emit(Event::Registered {
                    account,
                    expires: granted,
                });
            }
            401 | 407 => {
                if self.cfg.account.password.is_none() {
                    self.registration_failed(
                        now,
                        Some(code),
                        "the registrar asks for a password and none is configured",
                    );
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
            _ => {
                let reason = format!("the registrar answered {code} {}", resp.reason());
                let wait = refresh::retry_after(resp);
                self.registration_failed_after(now, Some(code), &reason, wait);
            }
        }
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
        self.registration_failed(now, None, "the registrar did not answer");
    }

    /// A refresh or a retry is due.
    pub(super) fn on_register_timer(&mut self, now: Instant) {
        self.send_register(now);
    }

    /// Removes the binding (on quit). Nothing is sent when none exists.
    pub(super) fn unregister(&mut self, now: Instant) {
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        reg.refresh.clear();
        match reg.phase {
            Phase::Registered | Phase::Registering => {
                reg.phase = Phase::Unregistering;
                // The REGISTER in flight (if any) is left to finish on its own.
                self.send_register(now);
            }
            Phase::Idle | Phase::Failed | Phase::Unregistering => reg.phase = Phase::Idle,
        }
    }

    fn registration_failed(&mut self, now: Instant, status: Option<u16>, reason: &str) {
        self.registration_failed_after(now, status, reason, None);
    }

    /// The attempt failed: retry after `wait` (the registrar's Retry-After) or the backoff.
    fn registration_failed_after(
        &mut self,
        now: Instant,
        status: Option<u16>,
        reason: &str,
        wait: Option<Duration>,
    ) {
        let random = self.tokens.next();
        let Some(reg) = self.registration.as_mut() else {
            return;
        };
        reg.phase = Phase::Failed;
        let retry = reg.refresh.failed(now, wait, random);
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
