//! The REGISTER usage (RFC 3261 §10): one binding per registering account (`accounts.rs`),
//! kept alive by refreshes and backoff after failures.
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
    /// The registration of account `index`, if it registers.
    fn registration_mut(&mut self, index: usize) -> Option<&mut Registration> {
        self.accounts
            .get_mut(index)
            .and_then(|a| a.registration.as_mut())
    }

    /// Sends a REGISTER for account `index` (`Expires: 0` when unregistering).
    pub(super) fn send_register(&mut self, now: Instant, index: usize) {
        let unregistering = self
            .registration_mut(index)
            .is_some_and(|r| r.phase == Phase::Unregistering);
        if !unregistering && self.registrar_lookup_needed(now, index) {
            if let Some(reg) = self.registration_mut(index) {
                reg.phase = Phase::Registering;
                reg.refresh.clear();
            }
            return;
        }
        let via = self.via(index);
        let contact = self.contact_uri(index);
        let aor = self.name_addr_of(index);
        let account = self.account(index).clone();
        let registrar = account.registrar.clone();
        let dst = self.register_dst(index);
        let stale = self.accounts[index].stale_contact.clone();
        let Some(reg) = self.registration_mut(index) else {
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
            .header("Contact", format!("<{contact}>"));
        if let Some(stale) = &stale {
            b = b.header("Contact", format!("<{stale}>;expires=0"));
        }
        b = b
            .header("Expires", expires.to_string())
            .header("Allow", super::ALLOW)
            .header("Supported", super::SUPPORTED);
        if let Some((proxy, _)) = &account.outbound_proxy {
            b = b.header("Route", format!("<{proxy};lr>"));
        }
        b = self.common_headers(b);
        let Some(dst) = dst else {
            self.registration_failed(now, index, None, "cannot resolve the registrar's address");
            return;
        };
        let bytes = b.build();
        if self
            .send_request(now, dst, bytes, Owner::Register(index))
            .is_none()
        {
            self.registration_failed(now, index, None, "could not build REGISTER");
        }
    }

    /// A final (or provisional) response to our REGISTER.
    pub(super) fn on_register_response(
        &mut self,
        now: Instant,
        index: usize,
        request: &Message,
        resp: &Message,
    ) {
        let Some(code) = resp.code() else { return };
        if code < 200 {
            return;
        }
        let contact = self.contact_uri(index);
        let (name, aor) = (self.account(index).name.clone(), self.account(index).aor());
        let has_password = self.account(index).password.is_some();
        let Some(reg) = self.registration_mut(index) else {
            return;
        };
        if request.cseq.0 != reg.cseq {
            return; // a late answer to a REGISTER we have given up on
        }
        if reg.phase == Phase::Unregistering {
            reg.phase = Phase::Idle;
            if !matches!(code, 401 | 407) {
                self.emit(Event::Unregistered { account: name, aor });
            }
            return;
        }
        match code {
            200..=299 => {
                let granted = granted_expires(resp, &contact).unwrap_or(reg.expires);
                reg.phase = Phase::Registered;
                reg.refresh.granted(now, granted);
                self.emit(Event::Registered {
                    account: name,
                    aor,
                    expires: granted,
                });
                self.accounts[index].stale_contact = None;
                self.rewrite_contact_behind_nat(now, index, resp);
            }
            401 | 407 => {
                if !has_password {
                    self.registration_failed(
                        now,
                        index,
                        Some(code),
                        "the registrar asks for a password and none is configured",
                    );
                } else {
                    self.registration_failed(
                        now,
                        index,
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
                        self.send_register(now, index);
                    }
                    None => self.registration_failed(
                        now,
                        index,
                        Some(code),
                        "the registrar wants a longer expiry",
                    ),
                }
            }
            503 if self.registrar_fail_over(now, index) => {}
            _ => {
                let reason = format!("the registrar answered {code} {}", resp.reason());
                let wait = refresh::retry_after(resp);
                self.registration_failed_after(now, index, Some(code), &reason, wait);
            }
        }
    }

    /// The stream connection to the registrar is gone (see
    /// [`UserAgent::handle_connection_lost`]): a binding in place is renewed at once on a new
    /// connection; a REGISTER in flight is abandoned and counted as a failure, for `why` when
    /// the connection could not be set up.
    pub(super) fn on_registrar_connection_lost(
        &mut self,
        now: Instant,
        index: usize,
        why: Option<&str>,
    ) {
        let Some(phase) = self.registration_mut(index).map(|r| r.phase) else {
            return;
        };
        match phase {
            Phase::Registered => {
                tracing::info!("connection to the registrar lost; registering again");
                self.send_register(now, index);
            }
            Phase::Registering => {
                self.clients
                    .retain(|_, (_, owner)| *owner != Owner::Register(index));
                if self.registrar_fail_over(now, index) {
                    return;
                }
                self.registration_failed(
                    now,
                    index,
                    None,
                    why.unwrap_or("the connection to the registrar was lost"),
                );
            }
            Phase::Unregistering => {
                self.clients
                    .retain(|_, (_, owner)| *owner != Owner::Register(index));
                if let Some(reg) = self.registration_mut(index) {
                    reg.phase = Phase::Idle;
                }
            }
            Phase::Idle | Phase::Failed => {}
        }
    }

    /// The REGISTER transaction timed out (Timer F).
    pub(super) fn on_register_timeout(&mut self, now: Instant, index: usize) {
        let unregistering = self
            .registration_mut(index)
            .is_some_and(|r| r.phase == Phase::Unregistering);
        if unregistering {
            if let Some(reg) = self.registration_mut(index) {
                reg.phase = Phase::Idle;
            }
            return;
        }
        if !self.registrar_fail_over(now, index) {
            self.registration_failed(now, index, None, "the registrar did not answer");
        }
    }

    /// A refresh or a retry of account `index` is due.
    pub(super) fn on_register_timer(&mut self, now: Instant, index: usize) {
        let refresh = self
            .registration_mut(index)
            .is_some_and(|reg| reg.phase == Phase::Registered);
        if refresh {
            self.registrar_back_to_first(index);
        }
        self.send_register(now, index);
    }

    /// Removes every binding (on quit). Nothing is sent for an account without one.
    pub(super) fn unregister(&mut self, now: Instant) {
        for index in 0..self.accounts.len() {
            let Some(reg) = self.registration_mut(index) else {
                continue;
            };
            reg.refresh.clear();
            match reg.phase {
                Phase::Registered | Phase::Registering => {
                    reg.phase = Phase::Unregistering;
                    // The REGISTER in flight (if any) is left to finish on its own.
                    self.send_register(now, index);
                }
                Phase::Idle | Phase::Failed | Phase::Unregistering => reg.phase = Phase::Idle,
            }
        }
    }

    pub(super) fn registration_failed(
        &mut self,
        now: Instant,
        index: usize,
        status: Option<u16>,
        reason: &str,
    ) {
        self.registration_failed_after(now, index, status, reason, None);
    }

    /// The attempt failed: retry after `wait` (the registrar's Retry-After) or the backoff.
    fn registration_failed_after(
        &mut self,
        now: Instant,
        index: usize,
        status: Option<u16>,
        reason: &str,
        wait: Option<Duration>,
    ) {
        let random = self.tokens.next();
        let (name, aor) = (self.account(index).name.clone(), self.account(index).aor());
        let Some(reg) = self.registration_mut(index) else {
            return;
        };
        reg.phase = Phase::Failed;
        let retry = reg.refresh.failed(now, wait, random);
        tracing::warn!(
            account = %name,
            ?status,
            reason,
            retry_in = retry.as_secs(),
            "registration failed"
        );
        self.emit(Event::RegistrationFailed {
            account: name,
            aor,
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
