//! Who is answered busy, who is answered without the operator, and the after-call step:
//! do not disturb, auto-answer and intercom, wrap-up. The whole policy lives here; the
//! INVITE server asks it twice (before a new call takes a line, and once it rings), the
//! happenings tell it when calls are answered or end, and it keeps its own deadlines.
//!
//! ```text
//!  new INVITE ─► refusal()? ── DND (no PBX code) ─────────► 486 / 480, `refused` event
//!      │                  └── wrap-up open, busy_during ──► 486, `refused` event
//!      ▼
//!   ringing ─► wants_auto()? ─ on: every call; intercom: Call-Info answer-after=N,
//!      │                       Alert-Info info=alert-autoanswer|intercom, Answer-Mode: Auto
//!      ▼
//!   armed (`auto_answer` event) ─ delay ─► beep + answer
//!      └─ another call up (auto_answer_second = false) or wrap-up (busy) ─► waits, re-armed
//!         when that call ends or the wrap-up closes
//!
//!  answered call ends ─► wrap-up `started` (one at a time, oldest first; `seconds` runs for
//!                        the one shown) ─► `wrapup CODE note` saved │ skip │ time out: expired
//!
//!  dnd on|off with dnd_on_code / dnd_off_code ─► a short call to the code, hung up as soon as
//!                                                the PBX answers (its queues now know)
//! ```
//!
//! Must not: read a clock, touch sockets, or reach into a call's phase: it sees calls
//! through their getters and acts through the user agent's own `answer`, `place_call` and
//! `end_call`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::api::{Command, Event, LineNo};
use super::dialog::Role;
use super::media_order::MediaOrder;
use super::msg::Message;
use super::{line_no, CallState, UserAgent};

/// The reason given with a call refused while do-not-disturb is on.
pub const DND_REASON: &str = "do not disturb";
/// The reason given with a call refused during wrap-up (`busy_during_wrapup`).
pub const WRAPUP_REASON: &str = "busy with the wrap-up of the last call";

/// `[[account]] auto_answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoAnswer {
    /// The operator answers every call.
    #[default]
    Off,
    /// Every call is answered after the delay, with a beep in the headset.
    On,
    /// Only calls that ask for it (intercom, paging) are answered by themselves.
    Intercom,
}

/// How the account answers: do not disturb, auto-answer, wrap-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    /// Which calls are answered without the operator.
    pub auto_answer: AutoAnswer,
    /// How long an auto-answered call rings first (`auto_answer_delay`).
    pub delay: Duration,
    /// Auto-answer a call while another one is up (`auto_answer_second`).
    pub second: bool,
    /// The status new calls get while do-not-disturb is on: 486 or 480.
    pub dnd_status: u16,
    /// The PBX's feature code dialled by `dnd on` instead of refusing calls here.
    pub dnd_on_code: Option<String>,
    /// The PBX's feature code dialled by `dnd off`.
    pub dnd_off_code: Option<String>,
    /// The after-call step.
    pub wrapup: WrapupConfig,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            auto_answer: AutoAnswer::Off,
            delay: Duration::ZERO,
            second: false,
            dnd_status: 486,
            dnd_on_code: None,
            dnd_off_code: None,
            wrapup: WrapupConfig::default(),
        }
    }
}

/// `[wrapup]`: the disposition step after each answered call; off while `codes` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapupConfig {
    /// The disposition codes offered.
    pub codes: Vec<String>,
    /// A code must be chosen: `wrapup skip` is refused (the time limit still closes it).
    pub required: bool,
    /// The wrap-up closes itself, with no code, after this long; `None`: it waits.
    pub limit: Option<Duration>,
    /// New calls are answered busy (and auto-answer waits) while a wrap-up is open.
    pub busy: bool,
}

impl WrapupConfig {
    /// Wrap-up runs after answered calls.
    pub fn enabled(&self) -> bool {
        !self.codes.is_empty()
    }
}

/// What the operator chose for the open wrap-up (`wrapup CODE [note…]`, `wrapup skip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WrapupChoice {
    /// Save a code (one of `[wrapup] codes`; `None`: only the note) and a note.
    Save {
        /// The disposition code.
        code: Option<String>,
        /// A one-line note, possibly empty.
        note: String,
    },
    /// Close it with nothing (refused when `required`).
    Skip,
}

/// Where a wrap-up stands, in `wrapup` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WrapupStatus {
    /// The call ended: the codes are offered.
    Started,
    /// The operator chose (a code, a note or both).
    Saved,
    /// The operator skipped it, or quit.
    Skipped,
    /// `seconds` passed: closed with no code.
    Expired,
}

/// A ringing call the policy will answer.
#[derive(Debug, Clone)]
struct Armed {
    call_id: String,
    delay: Duration,
    /// When it is answered; `None` while another call or a wrap-up holds it back.
    due: Option<Instant>,
}

/// An open wrap-up.
#[derive(Debug, Clone)]
struct Wrapup {
    call_id: String,
    line: LineNo,
    peer: String,
    /// When it closes itself; set once it is the one shown (the oldest).
    until: Option<Instant>,
}

/// The policy's state in the user agent.
#[derive(Debug, Clone, Default)]
pub(super) struct Answering {
    dnd: bool,
    armed: Vec<Armed>,
    /// Open wrap-ups, oldest (shown) first.
    wrapups: VecDeque<Wrapup>,
    /// Calls to a DND feature code, hung up when answered.
    code_calls: Vec<String>,
}

impl Answering {
    /// The next time the policy has something to do.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.armed
            .iter()
            .filter_map(|a| a.due)
            .chain(self.wrapups.front().and_then(|w| w.until))
            .min()
    }
}

/// How a call asks to be answered by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asked {
    /// `Call-Info: <…>;answer-after=N`: after N seconds.
    After(Duration),
    /// `Alert-Info: <…>;info=alert-autoanswer` (or `info=intercom`), or RFC 5373
    /// `Answer-Mode: Auto`: after the configured delay.
    Yes,
}

/// Whether the INVITE asks to be answered without the operator (intercom, paging).
pub(super) fn asks_auto_answer(req: &Message) -> Option<Asked> {
    let entries = |name| {
        req.headers(name)
            .flat_map(split_entries)
            .map(|entry| params(entry).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    for params in entries("Call-Info") {
        if let Some(secs) = params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("answer-after"))
            .and_then(|(_, v)| v.parse::<u64>().ok())
        {
            return Some(Asked::After(Duration::from_secs(secs.min(3600))));
        }
    }
    let alert = entries("Alert-Info").into_iter().flatten().any(|(k, v)| {
        k.eq_ignore_ascii_case("info")
            && (v.eq_ignore_ascii_case("alert-autoanswer") || v.eq_ignore_ascii_case("intercom"))
    });
    let mode = ["Answer-Mode", "Priv-Answer-Mode"].iter().any(|name| {
        req.headers(name).any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("auto"))
        })
    });
    (alert || mode).then_some(Asked::Yes)
}

/// A header value's comma-separated entries, commas inside `<…>` or quotes kept.
fn split_entries(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut angle, mut quoted) = (Vec::new(), 0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !angle && !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The `;name=value` parameters after an entry's `<uri>` (a bare name gets an empty value).
fn params(entry: &str) -> impl Iterator<Item = (&str, &str)> {
    let after = entry.rfind('>').map_or(entry, |i| &entry[i + 1..]);
    after.split(';').skip(1).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k.trim(), v.trim().trim_matches('"'))
    })
}

impl UserAgent {
    /// Do-not-disturb is on.
    pub fn dnd(&self) -> bool {
        self.answering.dnd
    }

    /// Before a new INVITE takes a line: refuses it when do-not-disturb or a busy wrap-up
    /// says so (a `refused` event, no line, no ringing). True when it was refused.
    pub(super) fn refused_by_policy(
        &mut self,
        now: Instant,
        req: &Message,
        account: usize,
    ) -> bool {
        let policy = &self.policy(account).answer;
        let refusal = if self.answering.dnd && policy.dnd_on_code.is_none() {
            Some((policy.dnd_status, DND_REASON))
        } else if policy.wrapup.busy && !self.answering.wrapups.is_empty() {
            Some((486, WRAPUP_REASON))
        } else {
            None
        };
        let Some((status, reason)) = refusal else {
            return false;
        };
        self.respond(now, req, status, |b| b);
        self.emit(Event::Refused {
            call_id: req.call_id.clone(),
            from: req.from.uri.clone(),
            display_name: req.from.display.clone(),
            status,
            reason: reason.to_owned(),
        });
        true
    }

    /// The new call `call_id` rings: arms auto-answer when the account's setting and the
    /// INVITE say so.
    pub(super) fn ringing_by_policy(&mut self, now: Instant, call_id: &str, req: &Message) {
        let policy = &self.policy(self.call_account(call_id)).answer;
        let delay = match (policy.auto_answer, asks_auto_answer(req)) {
            (AutoAnswer::Off, _) | (AutoAnswer::Intercom, None) => return,
            (_, Some(Asked::After(delay))) => delay,
            (AutoAnswer::On, None) | (_, Some(Asked::Yes)) => policy.delay,
        };
        self.answering.armed.push(Armed {
            call_id: call_id.to_owned(),
            delay,
            due: None,
        });
        self.rearm_auto_answer(now);
    }

    /// Gives a due time to every armed call that nothing holds back, telling the operator.
    fn rearm_auto_answer(&mut self, now: Instant) {
        let waiting: Vec<(String, Duration)> = self
            .answering
            .armed
            .iter()
            .filter(|a| a.due.is_none())
            .map(|a| (a.call_id.clone(), a.delay))
            .collect();
        for (call_id, delay) in waiting {
            if self.auto_answer_held_back(&call_id) {
                continue;
            }
            if let Some(armed) = self
                .answering
                .armed
                .iter_mut()
                .find(|a| a.call_id == call_id)
            {
                armed.due = Some(now + delay);
            }
            let line = self
                .calls()
                .find(|c| c.call_id == call_id)
                .map(|c| line_no(c.line));
            if let Some(line) = line {
                self.emit(Event::AutoAnswer {
                    line,
                    call_id,
                    after_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                });
            }
        }
    }

    /// Another call is up (and `auto_answer_second` is off), or a wrap-up holds calls back.
    fn auto_answer_held_back(&self, call_id: &str) -> bool {
        let policy = &self.policy(self.call_account(call_id)).answer;
        let other_up = self.lines.iter().flatten().any(|c| {
            let rings_here = c.role == Role::Callee && c.state() == CallState::Ringing;
            c.call_id != call_id && !c.is_gone() && !rings_here
        });
        (other_up && !policy.second) || (policy.wrapup.busy && !self.answering.wrapups.is_empty())
    }

    /// The policy's deadlines: answers armed calls that are due (or holds them back again),
    /// and closes a wrap-up whose time ran out.
    pub(super) fn on_answer_policy_timer(&mut self, now: Instant) {
        let due: Vec<String> = self
            .answering
            .armed
            .iter()
            .filter(|a| a.due.is_some_and(|d| d <= now))
            .map(|a| a.call_id.clone())
            .collect();
        for call_id in due {
            if self.auto_answer_held_back(&call_id) {
                if let Some(armed) = self
                    .answering
                    .armed
                    .iter_mut()
                    .find(|a| a.call_id == call_id)
                {
                    armed.due = None;
                }
                continue;
            }
            self.answering.armed.retain(|a| a.call_id != call_id);
            let ringing = self
                .lines
                .iter()
                .flatten()
                .find(|c| c.call_id == call_id && c.state() == CallState::Ringing)
                .map(|c| line_no(c.line));
            if let Some(line) = ringing {
                self.media_orders.push_back(MediaOrder::Beep);
                self.answer(now, Some(line));
            }
        }
        if self
            .answering
            .wrapups
            .front()
            .and_then(|w| w.until)
            .is_some_and(|t| t <= now)
        {
            self.close_wrapup(now, WrapupStatus::Expired, None, None);
        }
    }

    /// `dnd on|off` (`None`: the other way): refuse new calls here, or dial the PBX's code.
    pub(super) fn set_dnd(&mut self, now: Instant, on: Option<bool>) {
        let on = on.unwrap_or(!self.answering.dnd);
        let policy = &self.default_policy().answer;
        let code = if on {
            policy.dnd_on_code.clone()
        } else {
            policy.dnd_off_code.clone()
        };
        if let Some(code) = &code {
            let placed = self
                .target_uri(code)
                .and_then(|uri| self.place_call(now, &uri, Vec::new()));
            match placed {
                Ok(call_id) => self.answering.code_calls.push(call_id),
                Err(e) => {
                    return self.error(format!(
                        "dnd {}: cannot dial the feature code {code}: {e}",
                        if on { "on" } else { "off" }
                    ))
                }
            }
        }
        self.answering.dnd = on;
        self.emit(Event::Dnd { on, code });
    }

    /// A call was answered: a feature-code call has done its work and is hung up; an armed
    /// call no longer needs the policy.
    pub(super) fn answered_by_policy(&mut self, now: Instant, call_id: &str) {
        self.answering.armed.retain(|a| a.call_id != call_id);
        if self.answering.code_calls.iter().any(|c| c == call_id) {
            self.end_call(now, call_id, "the PBX took the feature code");
        }
    }

    /// A call ended: forget it; an answered call (not a feature code) opens a wrap-up; calls
    /// it held back may be answered now.
    pub(super) fn ended_by_policy(&mut self, now: Instant, call_id: &str) {
        self.answering.armed.retain(|a| a.call_id != call_id);
        let code_call = self.answering.code_calls.iter().any(|c| c == call_id);
        self.answering.code_calls.retain(|c| c != call_id);
        let call = self
            .calls()
            .find(|c| c.call_id == call_id)
            .map(|c| (c.was_answered(), line_no(c.line), c.peer().to_owned()));
        if let Some((false, _, peer)) = call.as_ref().filter(|_| code_call) {
            let status = self
                .calls()
                .find(|c| c.call_id == call_id)
                .and_then(|c| c.end_status())
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            self.error(format!(
                "dnd: the PBX did not take the feature code ({peer}: {status})"
            ));
        }
        let wanted = self.shared_policy().answer.wrapup.enabled() && self.quit_deadline.is_none();
        if let Some((true, line, peer)) = call.filter(|_| wanted && !code_call) {
            self.open_wrapup(now, call_id, line, peer);
        }
        self.rearm_auto_answer(now);
    }

    /// Opens a wrap-up for the call; its `started` event goes just before the call's `ended`
    /// event, so that whoever keeps the call (the history) knows to wait for the outcome.
    fn open_wrapup(&mut self, now: Instant, call_id: &str, line: LineNo, peer: String) {
        let wrapup = &self.shared_policy().answer.wrapup;
        let shown = self.answering.wrapups.is_empty();
        let event = Event::Wrapup {
            line,
            call_id: call_id.to_owned(),
            peer: peer.clone(),
            status: WrapupStatus::Started,
            codes: wrapup.codes.clone(),
            seconds: wrapup.limit.map(|d| d.as_secs()),
            required: wrapup.required,
            code: None,
            note: None,
        };
        let until = if shown {
            wrapup.limit.map(|d| now + d)
        } else {
            None
        };
        self.answering.wrapups.push_back(Wrapup {
            call_id: call_id.to_owned(),
            line,
            peer,
            until,
        });
        let ended = self.events.iter().position(|e| {
            matches!(e, Event::Call { call_id: id, state: CallState::Ended, .. } if id == call_id)
        });
        match ended {
            Some(at) => self.events.insert(at, event),
            None => self.events.push_back(event),
        }
    }

    /// `wrapup CODE [note…]` / `wrapup skip`, for the oldest open wrap-up.
    pub(super) fn wrapup(&mut self, now: Instant, choice: WrapupChoice) {
        if self.answering.wrapups.is_empty() {
            return self.error("wrapup: no call is waiting for its wrap-up");
        }
        let config = self.shared_policy().answer.wrapup.clone();
        let list = config.codes.join(", ");
        match choice {
            WrapupChoice::Skip if config.required => {
                self.error(format!("wrapup: a code is required, choose one of: {list}"))
            }
            WrapupChoice::Skip => self.close_wrapup(now, WrapupStatus::Skipped, None, None),
            WrapupChoice::Save { code: None, .. } if config.required => {
                self.error(format!("wrapup: a code is required, choose one of: {list}"))
            }
            WrapupChoice::Save { code, note } => {
                let code = match code {
                    None => None,
                    Some(typed) => match config
                        .codes
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(typed.trim()))
                    {
                        Some(known) => Some(known.clone()),
                        None => {
                            return self.error(format!(
                                "wrapup: `{typed}` is not a wrap-up code; use one of: {list}"
                            ))
                        }
                    },
                };
                let note = note.trim();
                let note = (!note.is_empty()).then(|| note.to_owned());
                self.close_wrapup(now, WrapupStatus::Saved, code, note);
            }
        }
    }

    /// Closes the oldest open wrap-up; the next one's time starts.
    fn close_wrapup(
        &mut self,
        now: Instant,
        status: WrapupStatus,
        code: Option<String>,
        note: Option<String>,
    ) {
        let Some(done) = self.answering.wrapups.pop_front() else {
            return;
        };
        self.emit(Event::Wrapup {
            line: done.line,
            call_id: done.call_id,
            peer: done.peer,
            status,
            codes: Vec::new(),
            seconds: None,
            required: false,
            code,
            note,
        });
        let limit = self.shared_policy().answer.wrapup.limit;
        if let Some(next) = self.answering.wrapups.front_mut() {
            next.until = limit.map(|d| now + d);
        }
        self.rearm_auto_answer(now);
    }

    /// Quitting: every open wrap-up closes as skipped.
    pub(super) fn close_wrapups_for_quit(&mut self, now: Instant) {
        while !self.answering.wrapups.is_empty() {
            self.close_wrapup(now, WrapupStatus::Skipped, None, None);
        }
    }

    /// Runs the policy's commands; false for a command that is not the policy's.
    pub(super) fn answer_policy_command(&mut self, now: Instant, cmd: &Command) -> bool {
        match cmd {
            Command::Dnd(on) => self.set_dnd(now, *on),
            Command::Wrapup(choice) => self.wrapup(now, choice.clone()),
            _ => return false,
        }
        true
    }
}
