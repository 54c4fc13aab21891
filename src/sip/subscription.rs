//! The dialog event package subscriptions (RFC 6665 subscriber, RFC 4235 `Event: dialog`):
//! one per watched extension of the busy lamp field, and short ones that fetch an
//! extension's calls for `pickup`. Each is its own dialog usage, found by Call-ID and tags.
//!
//! ```text
//!   start ──► Subscribing ──2xx or NOTIFY──► Active ──85 % of expiry──► refresh (in dialog)
//!               │                                │  ▲                      │
//!               │                                   └───────── 2xx ────────┘
//!               │ 4xx–6xx, timeout,                 NOTIFY terminated / 481 to a refresh
//!               ▼ terminated NOTIFY                 │ (deactivated, timeout: at once)
//!            Failed ── backoff or Retry-After ──► Subscribing (new Call-ID) ◄──┘
//!
//!   quit / pickup decided: SUBSCRIBE Expires: 0 ──► Done (answers NOTIFYs for 2 s, then gone)
//! ```
//!
//! Challenges are answered by the authentication layer (`client_auth.rs`) before this usage
//! sees the response; refreshes and retries follow the schedule of `refresh.rs`, shared with
//! REGISTER. A 423 Interval Too Brief is retried at once with the answer's Min-Expires; a
//! `terminated` NOTIFY with `retry-after`, or a failure with `Retry-After`, waits that long
//! before subscribing again.
//!
//! Busy lamps come from two places: the account's `blf` list (always kept, counted first)
//! and the extensions in view (`watch`, sent by the screen's picker). A lamp that leaves the
//! view stays subscribed for [`VIEW_GRACE`], so scrolling back does not churn, then ends with
//! `Expires: 0`; at most [`VIEW_LIMIT`] come from the view and [`MAX_BLF`] in all.
//!
//! ```text
//!   watch names it ──► subscribed, in view ──watch leaves it out──► leaving (grace)
//!                          ▲                                           │ │
//!                          └──────── watch names it again ─────────────┘ │ grace over, or
//!                                                                        ▼ room needed
//!                                                lamp unknown, SUBSCRIBE Expires: 0
//! ```
//!
//! Every NOTIFY that matches is answered 200 (489 for another event package); one that
//! matches no subscription falls through to the calls, which answer 481. The lamp state goes
//! out as [`Event::Blf`] when it changes. This module builds and reads messages and keeps
//! deadlines; it never reads the clock.

use std::time::{Duration, Instant};

use super::api::Event;
use super::dialog::{Dialog, Role};
use super::dialog_info::{self, BlfState, DialogEntry};
use super::msg::{Builder, Message, Method, NameAddr, Params};
use super::refer::{parse_subscription_state, SubscriptionState};
use super::refresh::{self, Refresh, MAX_ASKED_WAIT};
use super::{Owner, UserAgent};

/// The lifetime asked for a busy lamp's subscription.
const BLF_EXPIRES: u32 = 600;
/// The lifetime asked for a pickup's fetch (it is ended as soon as the state is known).
const PICKUP_EXPIRES: u32 = 60;
/// How long a finished subscription still answers NOTIFYs (the final `terminated` one).
const LINGER: Duration = Duration::from_secs(2);
/// The most busy lamps watched at once.
pub const MAX_BLF: usize = 50;
/// The most busy lamps the view (`watch`) adds to the configured ones.
pub const VIEW_LIMIT: usize = 20;
/// How long a lamp that left the view stays subscribed.
pub const VIEW_GRACE: Duration = Duration::from_secs(30);

/// What a subscription is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A busy lamp: kept up for as long as switchboard runs.
    Blf,
    /// A `pickup`: decide on the first state reported, unless `give_up` passes first
    /// (`None` once decided).
    Pickup {
        /// When to stop waiting for the state.
        give_up: Option<Instant>,
    },
}

/// Where a subscription stands; see the module diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Subscribing,
    Active,
    Failed,
    Unsubscribing,
    Done,
}

/// One subscription to an extension's dialog state.
#[derive(Debug, Clone)]
pub(super) struct Subscription {
    /// The extension as configured or typed.
    pub(super) ext: String,
    /// Its SIP URI (the SUBSCRIBE's Request-URI and To).
    uri: String,
    /// What it is for.
    pub(super) purpose: Purpose,
    /// Call-ID of the current attempt.
    pub(super) call_id: String,
    /// Our From tag in the current attempt.
    local_tag: String,
    /// The last SUBSCRIBE sent outside the dialog (From/To for the dialog).
    request: Option<Message>,
    /// Set by the first 2xx or NOTIFY.
    dialog: Option<Dialog>,
    /// CSeq of SUBSCRIBEs sent outside the dialog.
    cseq: u32,
    phase: Phase,
    /// Refresh, retry, or the end of lingering.
    refresh: Refresh,
    /// The dialogs the extension has now, as reported.
    pub(super) dialogs: Vec<DialogEntry>,
    /// A NOTIFY has told the state since the last (re)start.
    pub(super) known: bool,
    /// The lamp as last reported to the operator.
    pub(super) lamp: BlfState,
    /// The last dialog-info version seen (older documents are ignored).
    version: Option<u64>,
    /// The notifier's Min-Expires from a 423: the lifetime asked is at least this.
    min_expires: Option<u32>,
    /// A lamp from the view that left it: ended at this time unless it comes back.
    leave_at: Option<Instant>,
}

impl Subscription {
    /// When this subscription needs [`UserAgent::on_subscription_timers`].
    pub(super) fn deadline(&self) -> Option<Instant> {
        let give_up = match self.purpose {
            Purpose::Pickup { give_up } => give_up,
            Purpose::Blf => None,
        };
        [self.refresh.deadline(), give_up, self.leave_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The subscription's dialog, once made.
    pub(super) fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    /// The subscription's dialog, to record a CSeq used by the authentication layer.
    pub(super) fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        self.dialog.as_mut()
    }

    /// Its SUBSCRIBE outside the dialog was sent again as `request` (with credentials).
    pub(super) fn reissued(&mut self, request: &Message) {
        self.cseq = self.cseq.max(request.cseq.0);
        self.request = Some(request.clone());
    }

    /// A busy lamp that is not being ended.
    fn is_live_lamp(&self) -> bool {
        self.purpose == Purpose::Blf && !matches!(self.phase, Phase::Unsubscribing | Phase::Done)
    }

    /// True while a SUBSCRIBE or un-SUBSCRIBE is in flight or NOTIFYs are still expected.
    fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Done | Phase::Failed)
    }

    fn expires(&self) -> u32 {
        let asked = match self.purpose {
            Purpose::Blf => BLF_EXPIRES,
            Purpose::Pickup { .. } => PICKUP_EXPIRES,
        };
        asked.max(self.min_expires.unwrap_or(0))
    }
}

impl UserAgent {
    /// Starts watching `ext` (busy lamp or pickup); the first SUBSCRIBE goes out now.
    pub(super) fn subscribe(&mut self, now: Instant, ext: &str, purpose: Purpose) {
        let uri = match self.target_uri(ext) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        let sub = Subscription {
            ext: ext.to_string(),
            uri,
            purpose,
            call_id: String::new(),
            local_tag: String::new(),
            request: None,
            dialog: None,
            cseq: 0,
            phase: Phase::Subscribing,
            refresh: Refresh::default(),
            dialogs: Vec::new(),
            known: false,
            lamp: BlfState::Unknown,
            version: None,
            min_expires: None,
            leave_at: None,
        };
        self.subscriptions.push(sub);
        let index = self.subscriptions.len() - 1;
        self.restart_subscription(now, index);
    }

    /// A new attempt from scratch: new Call-ID and tag, no dialog.
    fn restart_subscription(&mut self, now: Instant, index: usize) {
        let call_id = format!("{}@switchboard", self.tokens.hex());
        let tag = self.new_tag();
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        sub.call_id = call_id;
        sub.local_tag = tag;
        sub.dialog = None;
        sub.request = None;
        sub.cseq = 0;
        sub.phase = Phase::Subscribing;
        sub.version = None;
        sub.known = false;
        self.send_subscribe(now, index);
    }

    /// Sends a SUBSCRIBE for subscription `index`: in its dialog when there is one, else a
    /// new one; `Expires: 0` when unsubscribing.
    fn send_subscribe(&mut self, now: Instant, index: usize) {
        let via = self.via(0);
        let contact = self.contact_uri(0);
        let mut from = self.name_addr_of(0);
        let account = self.cfg.account.clone();
        let user_agent = self.cfg.user_agent.clone();
        let Some(dst_default) = self
            .subscriptions
            .get(index)
            .and_then(|s| self.first_hop(&s.uri))
        else {
            return self.subscription_failed(now, index, None, "cannot reach the PBX");
        };
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        let expires = if sub.phase == Phase::Unsubscribing {
            0
        } else {
            sub.expires()
        };
        sub.refresh.clear();
        let (mut b, dst) = match sub.dialog.as_mut() {
            Some(dialog) => {
                let b = dialog.request(Method::Subscribe, &via, 70);
                let dst = dialog.next_hop().unwrap_or(dst_default);
                (b, dst)
            }
            None => {
                sub.cseq += 1;
                from.params.set("tag", Some(&sub.local_tag));
                let mut b = Builder::request(Method::Subscribe, &sub.uri)
                    .header("Via", &via)
                    .header("Max-Forwards", "70")
                    .header("From", from.to_string())
                    .header("To", NameAddr::new(&sub.uri).to_string())
                    .header("Call-ID", &sub.call_id)
                    .header("CSeq", format!("{} SUBSCRIBE", sub.cseq));
                if let Some((proxy, _)) = &account.outbound_proxy {
                    b = b.header("Route", format!("<{proxy};lr>"));
                }
                (b, dst_default)
            }
        };
        b = b
            .header("Contact", format!("<{contact}>"))
            .header("Event", "dialog")
            .header("Accept", dialog_info::CONTENT_TYPE)
            .header("Expires", expires.to_string())
            .header("Allow", super::ALLOW);
        let bytes = b.header("User-Agent", user_agent).build();
        if sub.dialog.is_none() {
            sub.request = Message::parse(&bytes).ok();
        }
        let owner = Owner::Subscription(sub.call_id.clone());
        if self.send_request(now, dst, bytes, owner).is_none() {
            self.subscription_failed(now, index, None, "could not build SUBSCRIBE");
        }
    }

    /// A response to one of our SUBSCRIBEs.
    pub(super) fn on_subscribe_response(
        &mut self,
        now: Instant,
        call_id: &str,
        request: &Message,
        resp: &Message,
    ) {
        let Some(code) = resp.code().filter(|c| *c >= 200) else {
            return;
        };
        let Some(index) = self.subscriptions.iter().position(|s| s.call_id == call_id) else {
            return;
        };
        let asked = request
            .header("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok());
        let sub = &mut self.subscriptions[index];
        if sub.phase == Phase::Done {
            return;
        }
        if sub.phase == Phase::Unsubscribing && asked == Some(0) {
            sub.phase = Phase::Done;
            sub.refresh.at(now + LINGER);
            return;
        }
        match code {
            200..=299 => {
                if sub.dialog.is_none() {
                    sub.dialog = sub
                        .request
                        .as_ref()
                        .and_then(|r| Dialog::from_response(r, resp));
                }
                if let Some(d) = sub.dialog.as_mut() {
                    d.local_cseq = d.local_cseq.max(request.cseq.0);
                    d.refresh_target(resp);
                }
                sub.refresh.succeeded();
                if sub.phase == Phase::Unsubscribing {
                    // Quit or a decided pickup came while the first SUBSCRIBE was out.
                    return self.send_subscribe(now, index);
                }
                sub.phase = Phase::Active;
                let granted = resp
                    .header("Expires")
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .unwrap_or(asked.unwrap_or(BLF_EXPIRES));
                if granted == 0 {
                    // The notifier ends it at once (a fetch); its NOTIFY carries the state.
                    sub.refresh.clear();
                } else {
                    sub.refresh.granted(now, granted);
                }
            }
            401 | 407 => self.subscription_failed(
                now,
                index,
                Some(code),
                "authentication failed: check the user name and password",
            ),
            423 => {
                // Interval too brief (RFC 6665 §4.1.2.1): ask again at once with the notifier's
                // minimum, once per minimum above what was asked; anything else is a failure.
                let min = resp
                    .header("Min-Expires")
                    .and_then(|e| e.trim().parse::<u32>().ok())
                    .filter(|m| asked.is_none_or(|a| *m > a) && *m <= MAX_ASKED_WAIT);
                match min {
                    Some(min) => {
                        tracing::info!(ext = %sub.ext, min, "PBX wants a longer expiry; asking again");
                        sub.min_expires = Some(min);
                        self.send_subscribe(now, index);
                    }
                    None => self.subscription_failed(
                        now,
                        index,
                        Some(code),
                        "the PBX wants a longer expiry but gives no usable Min-Expires",
                    ),
                }
            }
            481 if sub.dialog.is_some() => {
                // The refresh found no subscription: start again at once.
                tracing::info!(ext = %sub.ext, "subscription lost; subscribing again");
                self.restart_subscription(now, index);
            }
            405 | 489 | 501 => self.subscription_failed(
                now,
                index,
                Some(code),
                &format!(
                    "the PBX does not offer the dialog event package ({code} {})",
                    resp.reason()
                ),
            ),
            _ => self.subscription_failed_after(
                now,
                index,
                Some(code),
                &format!("the PBX answered {code} {}", resp.reason()),
                refresh::retry_after(resp),
            ),
        }
    }

    /// A SUBSCRIBE got no answer (Timer F).
    pub(super) fn on_subscribe_timeout(&mut self, now: Instant, call_id: &str) {
        let Some(index) = self.subscriptions.iter().position(|s| s.call_id == call_id) else {
            return;
        };
        let sub = &mut self.subscriptions[index];
        if sub.phase == Phase::Unsubscribing {
            sub.phase = Phase::Done;
            sub.refresh.at(now);
            return;
        }
        self.subscription_failed(now, index, None, "the PBX did not answer SUBSCRIBE");
    }

    /// The attempt failed: the lamp goes unknown and a retry is scheduled (busy lamps), or
    /// the pickup is told (pickups).
    fn subscription_failed(
        &mut self,
        now: Instant,
        index: usize,
        status: Option<u16>,
        reason: &str,
    ) {
        self.subscription_failed_after(now, index, status, reason, None);
    }

    /// [`Self::subscription_failed`], a busy lamp retrying after `wait` when the PBX said
    /// (Retry-After, `retry-after`) rather than after the backoff.
    fn subscription_failed_after(
        &mut self,
        now: Instant,
        index: usize,
        status: Option<u16>,
        reason: &str,
        wait: Option<Duration>,
    ) {
        let random = self.tokens.next();
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        sub.phase = Phase::Failed;
        sub.dialogs.clear();
        sub.known = false;
        let retry = sub.refresh.failed(now, wait, random);
        tracing::warn!(ext = %sub.ext, ?status, reason, "dialog subscription failed");
        match sub.purpose {
            Purpose::Blf => {
                tracing::debug!(ext = %sub.ext, retry_in = retry.as_secs(), "retrying later");
                self.set_lamp(index, BlfState::Unknown);
            }
            Purpose::Pickup { .. } => {
                sub.phase = Phase::Done;
                sub.refresh.at(now);
                let ext = sub.ext.clone();
                self.pickup_not_possible(now, index, &ext, reason);
            }
        }
    }

    /// Runs the refreshes, retries and give-ups that are due.
    pub(super) fn on_subscription_timers(&mut self, now: Instant) {
        for index in 0..self.subscriptions.len() {
            let Some(sub) = self.subscriptions.get_mut(index) else {
                break;
            };
            if let Purpose::Pickup {
                give_up: Some(at), ..
            } = sub.purpose
            {
                if at <= now {
                    let ext = sub.ext.clone();
                    self.pickup_not_possible(
                        now,
                        index,
                        &ext,
                        "the PBX did not report the extension's calls in time",
                    );
                    continue;
                }
            }
            let Some(sub) = self.subscriptions.get_mut(index) else {
                break;
            };
            if sub.leave_at.is_some_and(|t| t <= now) {
                self.end_view_lamp(now, index);
                continue;
            }
            if !sub.refresh.due(now) {
                continue;
            }
            match sub.phase {
                Phase::Active => self.send_subscribe(now, index),
                Phase::Failed => self.restart_subscription(now, index),
                Phase::Done | Phase::Subscribing | Phase::Unsubscribing => sub.refresh.clear(),
            }
        }
        self.subscriptions
            .retain(|s| s.phase != Phase::Done || s.refresh.deadline().is_some());
    }

    /// Ends subscription `index` with `Expires: 0` (or at once when nothing was set up).
    pub(super) fn unsubscribe(&mut self, now: Instant, index: usize) {
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        if let Purpose::Pickup { give_up } = &mut sub.purpose {
            *give_up = None;
        }
        match sub.phase {
            Phase::Active => {
                sub.phase = Phase::Unsubscribing;
                self.send_subscribe(now, index);
            }
            Phase::Subscribing => sub.phase = Phase::Unsubscribing,
            Phase::Failed => {
                sub.phase = Phase::Done;
                sub.refresh.at(now);
            }
            Phase::Unsubscribing | Phase::Done => {}
        }
    }

    /// `watch`: `exts` are the extensions in view now. New ones are subscribed (within
    /// [`VIEW_LIMIT`] and [`MAX_BLF`], the configured lamps counted first; the rest are named
    /// in an error event), those that left it are ended after [`VIEW_GRACE`], those that came
    /// back keep their subscription. Configured lamps are never touched.
    pub(super) fn watch(&mut self, now: Instant, exts: &[String]) {
        let configured: Vec<String> = self.cfg.blf.iter().take(MAX_BLF).cloned().collect();
        let budget = VIEW_LIMIT.min(MAX_BLF - configured.len());
        let mut wanted: Vec<String> = Vec::new();
        for ext in exts.iter().map(|e| e.trim()) {
            if !ext.is_empty()
                && !configured.iter().any(|c| c == ext)
                && !wanted.iter().any(|w| w == ext)
            {
                wanted.push(ext.to_string());
            }
        }
        let left_out = if wanted.len() > budget {
            wanted.split_off(budget)
        } else {
            Vec::new()
        };
        // Said once per set left out: the screen sends a new view at every keystroke.
        if !left_out.is_empty() && left_out != self.watch_left_out {
            tracing::warn!(
                budget,
                left_out = left_out.len(),
                "busy lamp bound reached; some extensions in view are not watched"
            );
            self.error(format!(
                "busy lamps: {} extensions in view have no lamp ({}): at most {MAX_BLF} lamps, \
                 {VIEW_LIMIT} of them from the view, the configured ones first",
                left_out.len(),
                left_out.join(" ")
            ));
        }
        self.watch_left_out = left_out;
        let mut new = wanted.clone();
        for sub in self.subscriptions.iter_mut().filter(|s| s.is_live_lamp()) {
            if configured.contains(&sub.ext) {
                continue;
            }
            if wanted.contains(&sub.ext) {
                sub.leave_at = None;
                new.retain(|n| *n != sub.ext);
            } else if sub.leave_at.is_none() {
                sub.leave_at = Some(now + VIEW_GRACE);
            }
        }
        // Room for the new ones: the lamps leaving the view go first, oldest first.
        let from_view = self
            .subscriptions
            .iter()
            .filter(|s| s.is_live_lamp() && !configured.contains(&s.ext))
            .count();
        for _ in budget..from_view + new.len() {
            let oldest = self
                .subscriptions
                .iter()
                .enumerate()
                .filter(|(_, s)| s.is_live_lamp())
                .filter_map(|(i, s)| s.leave_at.map(|t| (t, i)))
                .min();
            match oldest {
                Some((_, index)) => self.end_view_lamp(now, index),
                None => break,
            }
        }
        for ext in new {
            self.subscribe(now, &ext, Purpose::Blf);
        }
    }

    /// A lamp from the view is no longer shown: its state goes unknown and it is ended.
    fn end_view_lamp(&mut self, now: Instant, index: usize) {
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        sub.leave_at = None;
        tracing::debug!(ext = %sub.ext, "busy lamp left the view");
        self.set_lamp(index, BlfState::Unknown);
        self.unsubscribe(now, index);
    }

    /// On quit: every subscription is ended.
    pub(super) fn unsubscribe_all(&mut self, now: Instant) {
        for index in 0..self.subscriptions.len() {
            self.unsubscribe(now, index);
        }
        self.subscriptions
            .retain(|s| s.phase != Phase::Done || s.refresh.deadline().is_some());
    }

    /// True when no subscription still waits for an answer or a final NOTIFY.
    pub(super) fn subscriptions_finished(&self) -> bool {
        self.subscriptions.iter().all(|s| !s.is_active())
            && self
                .subscriptions
                .iter()
                .all(|s| s.phase != Phase::Done || s.refresh.deadline().is_none())
    }

    /// The index of the subscription a NOTIFY belongs to, if any (Call-ID, our tag, and the
    /// notifier's tag once the dialog has one).
    pub(super) fn subscription_of(&self, req: &Message) -> Option<usize> {
        self.subscriptions.iter().position(|s| {
            req.call_id == s.call_id
                && req.to.tag() == Some(s.local_tag.as_str())
                && s.dialog.as_ref().is_none_or(|d| {
                    d.remote_tag.is_empty() || req.from.tag() == Some(d.remote_tag.as_str())
                })
        })
    }

    /// A NOTIFY for subscription `index`: answered, then its state and body applied.
    pub(super) fn on_subscription_notify(&mut self, now: Instant, index: usize, req: &Message) {
        let is_dialog = req
            .header("Event")
            .map(|e| e.split(';').next().unwrap_or("").trim())
            .is_some_and(|p| p.eq_ignore_ascii_case("dialog"));
        if !is_dialog {
            self.respond(now, req, 489, |b| b.header("Allow-Events", "dialog"));
            return;
        }
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        if sub.dialog.is_none() {
            sub.dialog = sub
                .request
                .as_ref()
                .map(|r| dialog_from_notify(r, req, sub.cseq));
        }
        let Some(dialog) = sub.dialog.as_mut() else {
            self.respond(now, req, 481, |b| b);
            return;
        };
        if !dialog.accept_remote_cseq(req.cseq.0) {
            self.respond(now, req, 500, |b| b.header("Retry-After", "1"));
            return;
        }
        dialog.refresh_target(req);
        self.respond(now, req, 200, |b| b);
        let state = req
            .header("Subscription-State")
            .and_then(parse_subscription_state);
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        if sub.phase == Phase::Done {
            if matches!(state, Some(SubscriptionState::Terminated { .. })) {
                self.subscriptions.remove(index);
            }
            return;
        }
        let body = req.body_text().map(str::trim).unwrap_or_default();
        if !body.is_empty() {
            match dialog_info::parse(body) {
                Ok(info) if info.version.is_some() && info.version < sub.version => {
                    tracing::debug!(ext = %sub.ext, "stale dialog-info ignored");
                }
                Ok(info) => {
                    sub.version = info.version.or(sub.version);
                    dialog_info::merge(&mut sub.dialogs, info);
                    sub.known = true;
                }
                Err(e) => tracing::warn!(ext = %sub.ext, error = %e, "unreadable dialog-info"),
            }
        } else if matches!(state, Some(SubscriptionState::Active { .. })) {
            // kamailio notifies an empty body when nothing is published: no calls.
            sub.dialogs.clear();
            sub.known = true;
        }
        if sub.phase == Phase::Subscribing {
            sub.phase = Phase::Active;
        }
        let lamp = if sub.known {
            dialog_info::lamp(&sub.dialogs)
        } else {
            sub.lamp
        };
        self.set_lamp(index, lamp);
        let deciding = matches!(
            self.subscriptions.get(index).map(|s| &s.purpose),
            Some(Purpose::Pickup { give_up: Some(_) })
        );
        let known = self.subscriptions.get(index).is_some_and(|s| s.known);
        if deciding && known {
            self.pickup_decide(now, index);
        }
        if let Some(SubscriptionState::Terminated { reason }) = state {
            let wait = req.header("Subscription-State").and_then(retry_after);
            self.subscription_terminated(now, index, reason.as_deref(), wait);
        }
    }

    /// The notifier ended the subscription (RFC 6665 §4.1.3); a busy lamp subscribes again
    /// after `retry_after` when the NOTIFY gave one.
    fn subscription_terminated(
        &mut self,
        now: Instant,
        index: usize,
        reason: Option<&str>,
        retry_after: Option<Duration>,
    ) {
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        if sub.phase == Phase::Unsubscribing {
            // The final NOTIFY came before the answer to our Expires: 0; nothing is left.
            self.subscriptions.remove(index);
            return;
        }
        if let Purpose::Pickup { give_up } = &sub.purpose {
            if give_up.is_some() {
                let ext = sub.ext.clone();
                let why = format!(
                    "the PBX ended the subscription ({})",
                    reason.unwrap_or("no reason given")
                );
                return self.pickup_not_possible(now, index, &ext, &why);
            }
            sub.phase = Phase::Done;
            sub.refresh.at(now);
            return;
        }
        let why = || {
            format!(
                "the PBX ended the subscription ({})",
                reason.unwrap_or("no reason given")
            )
        };
        if let Some(wait) = retry_after {
            return self.subscription_failed_after(now, index, None, &why(), Some(wait));
        }
        match reason {
            Some("deactivated") | Some("timeout") => self.restart_subscription(now, index),
            other => {
                let why = format!(
                    "the PBX ended the subscription ({})",
                    other.unwrap_or("no reason given")
                );
                self.subscription_failed(now, index, None, &why);
            }
        }
    }

    /// Records the lamp of subscription `index`; a busy lamp's change goes to the operator.
    fn set_lamp(&mut self, index: usize, state: BlfState) {
        let Some(sub) = self.subscriptions.get_mut(index) else {
            return;
        };
        if sub.lamp == state {
            return;
        }
        sub.lamp = state;
        if sub.purpose == Purpose::Blf {
            let ext = sub.ext.clone();
            self.emit(Event::Blf { ext, state });
        }
    }

    /// The earliest deadline of any subscription.
    pub(super) fn subscriptions_deadline(&self) -> Option<Instant> {
        self.subscriptions
            .iter()
            .filter_map(Subscription::deadline)
            .min()
    }
}

/// The `retry-after` parameter of a Subscription-State value, bounded.
fn retry_after(value: &str) -> Option<Duration> {
    let (_, params) = value.split_once(';')?;
    let seconds = Params::parse(params)
        .get("retry-after")?
        .trim()
        .parse::<u32>()
        .ok()?;
    Some(Duration::from_secs(u64::from(seconds.min(MAX_ASKED_WAIT))))
}

/// The subscriber's dialog made by a NOTIFY that came before the SUBSCRIBE's 2xx
/// (RFC 6665 §4.1.2.4): the notifier's tag and Contact, Record-Route in order.
fn dialog_from_notify(subscribe: &Message, notify: &Message, cseq: u32) -> Dialog {
    let bare = |na: &NameAddr| NameAddr {
        display: na.display.clone(),
        uri: na.uri.clone(),
        params: Default::default(),
    };
    Dialog {
        role: Role::Caller,
        call_id: subscribe.call_id.clone(),
        local_tag: subscribe.from.tag().unwrap_or_default().to_string(),
        remote_tag: notify.from.tag().unwrap_or_default().to_string(),
        local_uri: bare(&subscribe.from),
        remote_uri: bare(&subscribe.to),
        remote_target: notify
            .contact()
            .map_or_else(|| subscribe.to.uri.clone(), |c| c.uri),
        route_set: notify.headers("Record-Route").map(str::to_string).collect(),
        local_cseq: cseq,
        remote_cseq: None,
    }
}
