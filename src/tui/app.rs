//! The screen's model and its update function (Elm style): [`App::update`] takes one
//! [`Input`] (a key, a paste, a driver [`Event`], a resize) with the time it happened and
//! returns the [`Effect`]s to carry out (commands to send, the bell).
//!
//! Everything shown is built from events: the app never guesses what the core did with a
//! command. It reads no clock, draws nothing and does no I/O; the picker's rows come from the
//! [`Finder`] handed to `update`.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::finder::{Finder, PickerRow};
use super::history_view::HistoryList;
use super::keymap::{spec_of, Action, Keymap};
use super::sip_trace::{SipTrace, TraceEntry};
use crate::headless;
use crate::sip::target::Typed;
use crate::sip::{
    BlfState, CallState, Command, Event, LineNo, TraceMode, TransferKind, TransferMechanism,
    TransferStatus, VoiceStage, MAX_BLF, VIEW_LIMIT,
};

/// How many lines the screen shows until the driver says (`started`): the default of
/// `[ui] lines`.
pub const LINES: usize = 2;
/// The most lines the screen shows (the top of `[ui] lines`).
pub const MAX_LINES: usize = 8;

/// Something that happened, for [`App::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A key was pressed.
    Key(KeyEvent),
    /// Text was pasted (bracketed paste).
    Paste(String),
    /// The driver reported something.
    Event(Event),
    /// The terminal is now this many columns and rows.
    Resize(u16, u16),
    /// The call history file was read (for the history view), or why it could not be.
    History(Result<HistoryList, String>),
    /// A contact was added to the personal book (its words), or why not.
    ContactAdded(Result<String, String>),
}

/// What the run loop must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this command to the driver.
    Send(Command),
    /// Ring the terminal bell.
    Bell,
    /// Read the call history file and hand it back as [`Input::History`].
    LoadHistory,
    /// Add this contact to the personal book and hand the outcome back as
    /// [`Input::ContactAdded`].
    AddContact {
        /// The name typed.
        name: String,
        /// The number of the selected call.
        number: String,
    },
}

/// What a picker's choice is for; it decides the command sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Place a call.
    Dial,
    /// Blind-transfer the selected call.
    Transfer,
    /// Consult before an attended transfer.
    Consult,
    /// Pick up a call ringing at an extension.
    Pickup,
    /// Search on its own; Enter dials.
    Search,
}

impl Purpose {
    /// The picker's title.
    pub fn title(self) -> &'static str {
        match self {
            Purpose::Dial => "Dial",
            Purpose::Transfer => "Blind transfer to",
            Purpose::Consult => "Consult (attended transfer) with",
            Purpose::Pickup => "Pick up the call ringing at",
            Purpose::Search => "Directory (enter dials)",
        }
    }

    fn command(self, target: String) -> Command {
        match self {
            Purpose::Dial | Purpose::Search => Command::Dial(target),
            Purpose::Transfer => Command::Transfer(target),
            Purpose::Consult => Command::Consult(target),
            Purpose::Pickup => Command::Pickup(target),
        }
    }
}

/// The directory picker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    /// What the choice is for.
    pub purpose: Purpose,
    /// What the operator typed.
    pub query: String,
    /// The rows found for `query`, best first.
    pub rows: Vec<PickerRow>,
    /// Index of the highlighted row.
    pub selected: usize,
}

/// What has the keyboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The line panes: keys are actions.
    Normal,
    /// The directory picker is open.
    Picker(Picker),
    /// The `:` command line, with what is typed so far.
    CommandLine(String),
    /// The route prompt, with what is typed so far.
    RoutePrompt(String),
    /// The help overlay.
    Help,
    /// "A call is up: quit anyway?"
    ConfirmQuit,
    /// The SIP trace pane has the arrows and Enter.
    Trace,
    /// The call history view.
    History(HistoryList),
    /// The name for the contact being added to the personal book, with its number.
    AddContact {
        /// The number of the selected call.
        number: String,
        /// The name typed so far.
        name: String,
    },
}

/// Where the account's registration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The user agent has not said it started.
    Starting,
    /// Started; no registration accepted (yet, or the account does not register).
    NotRegistered,
    /// The registrar accepted the binding.
    Registered,
    /// Registration failed; another try comes.
    Failed {
        /// Why, in words.
        reason: String,
        /// Seconds until the next try.
        retry_in: u64,
    },
    /// The binding was removed (quitting).
    Unregistered,
}

/// A transfer of a call, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferView {
    /// Blind, or the far end transferring us.
    pub kind: TransferKind,
    /// How a blind transfer is carried out (ring-first, notify, immediate).
    pub mechanism: Option<TransferMechanism>,
    /// Where it stands.
    pub status: TransferStatus,
    /// The target as a number (user part of the URI).
    pub target: String,
    /// The target's name, when the directory knows it.
    pub target_name: Option<String>,
    /// The last reason given.
    pub reason: Option<String>,
}

/// The reason of the call's failed outgoing transfer, if that was the last word about it.
fn failed_transfer_words(call: &CallView) -> Option<String> {
    call.transfer
        .as_ref()
        .filter(|t| t.status == TransferStatus::Failed && t.kind != TransferKind::Incoming)
        .and_then(|t| t.reason.clone())
}

/// A call on a line, as the operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// SIP Call-ID.
    pub call_id: String,
    /// The far end's URI.
    pub peer: String,
    /// The far end's number (user part of the URI).
    pub number: String,
    /// The far end's name: from the directory, else the caller's display name.
    pub name: Option<String>,
    /// The call's state as last reported.
    pub state: CallState,
    /// True for a call that came in.
    pub incoming: bool,
    /// When the call appeared.
    pub started: Instant,
    /// When it was first connected.
    pub connected_at: Option<Instant>,
    /// The codec in use.
    pub codec: Option<String>,
    /// Receive loss in percent and jitter in ms, from the last quality report.
    pub quality: Option<(f32, f32)>,
    /// The microphone is muted.
    pub muted: bool,
    /// The call is being recorded (no event reports it yet; stays false).
    pub recording: bool,
    /// A transfer under way, or the last one's result.
    pub transfer: Option<TransferView>,
    /// The operator asked to hang up this call.
    hangup_sent: bool,
    /// The transfer succeeded: its end is not news.
    transferred: bool,
    /// Who transferred this caller to us (from Referred-By), by name when known.
    pub transferred_by: Option<String>,
    /// Joined in the local conference.
    pub in_conference: bool,
}

impl CallView {
    /// The state in words: idle, dialing, ringing, incoming, connected, on hold, held by
    /// peer, conference, conference on hold, transferring, being transferred.
    pub fn state_word(&self) -> &'static str {
        if let Some(t) = &self.transfer {
            let active = !matches!(
                t.status,
                TransferStatus::Failed | TransferStatus::Recalled | TransferStatus::Succeeded
            );
            if active {
                return match (t.kind, t.status) {
                    (TransferKind::Attended, TransferStatus::Requested) => "consulting",
                    (TransferKind::Blind | TransferKind::Attended, _) => "transferring",
                    (TransferKind::Incoming, _) => "being transferred",
                };
            }
        }
        match self.state {
            CallState::Connected | CallState::RemoteHeld if self.in_conference => "conference",
            CallState::Held if self.in_conference => "conference on hold",
            CallState::Dialing | CallState::Ringing | CallState::Early if self.incoming => {
                "incoming"
            }
            CallState::Dialing => "dialing",
            CallState::Ringing | CallState::Early => "ringing",
            CallState::Connected => "connected",
            CallState::Held => "on hold",
            CallState::RemoteHeld => "held by peer",
            CallState::Ended => "ended",
        }
    }

    /// Ringing here, waiting for the operator to answer.
    pub fn is_incoming(&self) -> bool {
        self.incoming
            && matches!(
                self.state,
                CallState::Dialing | CallState::Ringing | CallState::Early
            )
    }

    /// Answered and not over: talking or held either way.
    pub fn is_established(&self) -> bool {
        matches!(
            self.state,
            CallState::Connected | CallState::Held | CallState::RemoteHeld
        )
    }

    /// How to name the far end in a sentence: `Name (number)` or the number.
    pub fn who(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.number),
            None => self.number.clone(),
        }
    }

    /// The far end asks to transfer this call and waits for the operator's word.
    fn asks_to_transfer(&self) -> bool {
        self.transfer
            .as_ref()
            .is_some_and(|t| t.kind == TransferKind::Incoming && t.status == TransferStatus::Asking)
    }

    fn transfer_active(&self) -> bool {
        self.transfer.as_ref().is_some_and(|t| {
            !matches!(
                t.status,
                TransferStatus::Failed | TransferStatus::Recalled | TransferStatus::Succeeded
            )
        })
    }
}

/// The last outcome, kept until the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Plain words.
    pub text: String,
    /// Something went wrong.
    pub failure: bool,
}

/// The whole screen's state.
#[derive(Debug, Clone)]
pub struct App {
    /// Every line, 1 to N (`[ui] lines`, as the driver's `started` event says).
    pub lines: Vec<Option<CallView>>,
    /// The selected line (1-based).
    pub selected: LineNo,
    /// The account (`user@domain`), once started.
    pub account: Option<String>,
    /// Registration state.
    pub registration: Registration,
    /// The outbound route the operator chose.
    pub route: Option<String>,
    /// The last outcome message.
    pub outcome: Option<Outcome>,
    /// What has the keyboard.
    pub mode: Mode,
    /// The key bindings.
    pub keymap: Keymap,
    /// Quit was sent; waiting for the driver to stop.
    pub quitting: bool,
    /// The user agent stopped.
    pub stopped: bool,
    /// Terminal columns and rows.
    pub size: (u16, u16),
    /// Ring the bell on incoming calls.
    bell: bool,
    /// A failed transfer's reason per line, until its recall is reported.
    failed_transfer: Vec<Option<String>>,
    /// The SIP trace pane.
    pub trace: SipTrace,
    /// The audio devices in use, in words: microphone, headset, ringer.
    pub devices: Option<(String, String, String)>,
    /// The microphone's clean-up: noise suppression and AGC on.
    pub voice: (bool, bool),
    /// The configured busy lamps (`[[account]] blf`), in their order: extension and state
    /// (`unknown` until the PBX tells).
    pub blf: Vec<(String, BlfState)>,
    /// Lamps of other extensions, watched while they are in the picker's view.
    view_lamps: Vec<(String, BlfState)>,
    /// The extensions last sent as [`Command::Watch`].
    watching: Vec<String>,
}

impl App {
    /// An idle screen with these keys; `bell` rings the terminal bell on incoming calls;
    /// `blf` are the configured busy lamps, shown from the start.
    pub fn new(keymap: Keymap, bell: bool, blf: Vec<String>) -> Self {
        Self {
            lines: vec![None; LINES],
            selected: 1,
            account: None,
            registration: Registration::Starting,
            route: None,
            outcome: None,
            mode: Mode::Normal,
            keymap,
            quitting: false,
            stopped: false,
            size: (80, 24),
            bell,
            failed_transfer: vec![None; LINES],
            trace: SipTrace::default(),
            devices: None,
            voice: (false, false),
            blf: blf
                .into_iter()
                .take(MAX_BLF)
                .map(|ext| (ext, BlfState::Unknown))
                .collect(),
            view_lamps: Vec::new(),
            watching: Vec::new(),
        }
    }

    /// The lamp of `ext`, when it is watched (configured, or in the picker's view).
    pub fn lamp(&self, ext: &str) -> Option<BlfState> {
        self.blf
            .iter()
            .chain(&self.view_lamps)
            .find(|(e, _)| e == ext)
            .map(|(_, state)| *state)
    }

    /// Records a lamp: a configured one in place; one from the view is kept while watched
    /// (`unknown` means it no longer is).
    fn set_lamp(&mut self, ext: String, state: BlfState) {
        if let Some(lamp) = self.blf.iter_mut().find(|(e, _)| *e == ext) {
            lamp.1 = state;
            return;
        }
        self.view_lamps.retain(|(e, _)| *e != ext);
        if state != BlfState::Unknown {
            self.view_lamps.push((ext, state));
        }
    }

    /// The internal extensions in the open picker's view (number only digits), not
    /// configured ones, at most [`VIEW_LIMIT`], best rows first.
    fn in_view(&self) -> Vec<String> {
        let Mode::Picker(picker) = &self.mode else {
            return Vec::new();
        };
        let mut exts: Vec<String> = Vec::new();
        for ext in picker.rows.iter().filter_map(PickerRow::extension) {
            if !self.blf.iter().any(|(e, _)| e == ext) && !exts.iter().any(|e| e == ext) {
                exts.push(ext.to_owned());
            }
        }
        exts.truncate(VIEW_LIMIT);
        exts
    }

    /// Tells the core which extensions are in view, when that changed.
    fn sync_watch(&mut self, effects: &mut Vec<Effect>) {
        if self.quitting || self.stopped {
            return;
        }
        let view = self.in_view();
        if view != self.watching {
            self.watching = view.clone();
            effects.push(Effect::Send(Command::Watch(view)));
        }
    }

    /// The call on `line` (1-based), if any.
    pub fn call(&self, line: LineNo) -> Option<&CallView> {
        self.index(line).and_then(|i| self.lines[i].as_ref())
    }

    /// How many lines the phone has.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// 1-based line → index into [`App::lines`].
    fn index(&self, line: LineNo) -> Option<usize> {
        let i = usize::from(line).checked_sub(1)?;
        (i < self.lines.len()).then_some(i)
    }

    /// True while any line has a call (the timers need a redraw every second).
    pub fn has_calls(&self) -> bool {
        self.lines.iter().any(Option::is_some)
    }

    /// Handles one input at `now`; returns what to do.
    pub fn update(&mut self, input: Input, now: Instant, finder: &mut dyn Finder) -> Vec<Effect> {
        let mut effects = self.apply(input, now, finder);
        self.sync_watch(&mut effects);
        effects
    }

    /// [`App::update`] before the picker's view is told to the core.
    fn apply(&mut self, input: Input, now: Instant, finder: &mut dyn Finder) -> Vec<Effect> {
        match input {
            Input::Event(event) => self.on_event(event, now, finder),
            Input::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Input::Key(key) => self.on_key(key, finder),
            Input::Paste(text) => self.on_paste(&text, finder),
            Input::History(Ok(list)) => {
                self.mode = Mode::History(list);
                Vec::new()
            }
            Input::History(Err(problem)) => {
                self.mode = Mode::History(HistoryList::unavailable(problem));
                Vec::new()
            }
            Input::ContactAdded(result) => {
                match result {
                    Ok(text) => self.tell(text, false),
                    Err(text) => self.tell(text, true),
                }
                Vec::new()
            }
        }
    }

    /// The actions that make sense now, in help order (for the footer).
    pub fn available(&self) -> Vec<Action> {
        Action::all().filter(|a| self.applicable(*a)).collect()
    }

    // ---- events ------------------------------------------------------------------------

    fn on_event(&mut self, event: Event, now: Instant, finder: &mut dyn Finder) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            Event::Blf { ext, state } => self.set_lamp(ext, state),
            Event::Started { account, lines, .. } => {
                let n = usize::from(lines).clamp(LINES, MAX_LINES);
                self.lines.resize(n, None);
                self.failed_transfer.resize(n, None);
                self.account = Some(account);
                self.registration = Registration::NotRegistered;
            }
            Event::Registered { .. } => self.registration = Registration::Registered,
            Event::RegistrationFailed {
                reason, retry_in, ..
            } => self.registration = Registration::Failed { reason, retry_in },
            Event::Unregistered { .. } => self.registration = Registration::Unregistered,
            Event::Incoming {
                line,
                call_id,
                from,
                display_name,
                referred_by,
                ..
            } => {
                let Some(i) = self.index(line) else {
                    return effects;
                };
                let number = number_of(&from);
                let transferred_by = referred_by.map(|by| {
                    let number = number_of(&by);
                    finder.name_for(&number).unwrap_or(number)
                });
                let name = finder.name_for(&number).or(display_name);
                self.lines[i] = Some(CallView {
                    call_id,
                    peer: from,
                    number,
                    name,
                    state: CallState::Ringing,
                    incoming: true,
                    started: now,
                    connected_at: None,
                    codec: None,
                    quality: None,
                    muted: false,
                    recording: false,
                    transfer: None,
                    hangup_sent: false,
                    transferred: false,
                    transferred_by,
                    in_conference: false,
                });
                if self.bell {
                    effects.push(Effect::Bell);
                }
            }
            Event::Call {
                line,
                call_id,
                state,
                peer,
                reason,
                ..
            } => self.on_call(line, call_id, state, peer, reason, now, finder),
            Event::Media {
                line,
                call_id,
                codec,
                ..
            } => {
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.codec = Some(codec);
                }
            }
            Event::Quality {
                line,
                call_id,
                codec,
                loss_pct,
                jitter_ms,
                ..
            } => {
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.codec = Some(codec);
                    call.quality = Some((loss_pct, jitter_ms));
                }
            }
            Event::Mute {
                line,
                call_id,
                muted,
            } => {
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.muted = muted;
                }
            }
            Event::Record {
                line,
                call_id,
                recording,
                reason,
                ..
            } => {
                // Only while the call is shown: when it ended, that says enough.
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.recording = recording;
                    if let Some(reason) = reason.filter(|_| !recording) {
                        if reason.starts_with("recording failed") {
                            self.tell(format!("Line {line}: {reason}"), true);
                        } else {
                            self.tell(format!("Line {line}: recording {reason}"), false);
                        }
                    }
                }
            }
            Event::Transfer {
                line,
                call_id,
                kind,
                mechanism,
                status,
                target,
                reason,
                ..
            } => {
                let how = (kind, mechanism);
                self.on_transfer(line, &call_id, how, status, &target, reason, finder)
            }
            Event::Line { line } => {
                if self.index(line).is_some() {
                    self.selected = line;
                }
            }
            Event::Devices {
                input,
                output,
                ring,
            } => self.devices = Some((input, output, ring)),
            Event::Voice {
                noise_suppression,
                agc,
            } => self.voice = (noise_suppression, agc),
            Event::Audio { message } => self.tell(capitalise(&message), true),
            Event::Error { message } => self.tell(capitalise(&message), true),
            Event::Stopped => self.stopped = true,
            Event::Stats { .. } => {}
            Event::Sip {
                direction,
                peer,
                message,
                raw,
            } => {
                if self.trace.visible {
                    self.trace.push(TraceEntry {
                        at: now,
                        direction,
                        peer,
                        message,
                        raw,
                    });
                }
            }
            Event::Trace { mode, shows } => {
                self.trace.raw = mode == TraceMode::Raw;
                if self.trace.raw {
                    self.tell(format!("SIP trace shows {shows}"), true);
                }
            }
            // Digits the far end sends are for IVRs, not for the operator's screen.
            Event::Dtmf { .. } => {}
            Event::Conference { lines, active } => {
                for (i, call) in self.lines.iter_mut().enumerate() {
                    if let Some(call) = call {
                        let line = LineNo::try_from(i + 1).unwrap_or(LineNo::MAX);
                        call.in_conference = active && lines.contains(&line);
                    }
                }
                let list = lines
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                let text = if active {
                    format!("Conference: lines {list} hear each other")
                } else {
                    "Conference ended".to_owned()
                };
                self.tell(text, false);
            }
        }
        effects
    }

    #[allow(clippy::too_many_arguments)]
    fn on_call(
        &mut self,
        line: LineNo,
        call_id: String,
        state: CallState,
        peer: String,
        reason: Option<String>,
        now: Instant,
        finder: &mut dyn Finder,
    ) {
        let Some(i) = self.index(line) else {
            return;
        };
        let known = self.lines[i].as_ref().is_some_and(|c| c.call_id == call_id);
        if state == CallState::Ended {
            if known {
                if let Some(call) = self.lines[i].take() {
                    self.call_ended(line, &call, reason);
                }
            }
            return;
        }
        if !known {
            let number = number_of(&peer);
            let name = finder.name_for(&number);
            self.lines[i] = Some(CallView {
                call_id,
                peer,
                number,
                name,
                state,
                incoming: false,
                started: now,
                connected_at: None,
                codec: None,
                quality: None,
                muted: false,
                recording: false,
                transfer: None,
                hangup_sent: false,
                transferred: false,
                transferred_by: None,
                in_conference: false,
            });
        }
        if let Some(call) = self.lines[i].as_mut() {
            call.state = state;
            if state == CallState::Connected && call.connected_at.is_none() {
                call.connected_at = Some(now);
            }
        }
    }

    fn call_ended(&mut self, line: LineNo, call: &CallView, reason: Option<String>) {
        if call.transferred {
            return;
        }
        let who = call.who();
        let (text, failure) = if call.is_incoming() && !call.hangup_sent {
            (format!("Missed call from {who} on Line {line}"), false)
        } else if call.hangup_sent {
            (format!("Line {line}: call with {who} ended"), false)
        } else if let Some(why) = failed_transfer_words(call) {
            // The failed transfer explains the end (a PBX that dropped the caller): one line.
            (format!("Transfer failed: {why} — {who}"), true)
        } else {
            let reason = reason.unwrap_or_else(|| "the call ended".to_owned());
            (
                format!("Line {line}: {reason} — {who}"),
                call.connected_at.is_none(),
            )
        };
        self.tell(text, failure);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_transfer(
        &mut self,
        line: LineNo,
        call_id: &str,
        (kind, mechanism): (TransferKind, Option<TransferMechanism>),
        status: TransferStatus,
        target: &str,
        reason: Option<String>,
        finder: &mut dyn Finder,
    ) {
        let Some(i) = self.index(line) else {
            return;
        };
        let number = number_of(target);
        let target_name = finder.name_for(&number);
        let Some(call) = self.call_mut(line, call_id) else {
            return;
        };
        let whom = match &target_name {
            Some(name) => format!("{name} ({number})"),
            None => number.clone(),
        };
        call.transfer = Some(TransferView {
            kind,
            mechanism,
            status,
            target: number,
            target_name,
            reason: reason.clone(),
        });
        let caller = call.who();
        let message = match (kind, status) {
            (_, TransferStatus::Succeeded) => {
                call.transferred = true;
                Some((
                    format!("Line {line}: {caller} transferred to {whom}"),
                    false,
                ))
            }
            (_, TransferStatus::Failed) => {
                let why = reason.unwrap_or_else(|| "no reason given".to_owned());
                let text = format!("Transfer failed: {why}");
                self.failed_transfer[i] = Some(text.clone());
                Some((text, true))
            }
            (_, TransferStatus::Recalled) => {
                let back = format!("the call is back on Line {line}");
                let text = match self.failed_transfer[i].take() {
                    Some(failed) => format!("{failed} — {back}"),
                    None => capitalise(&back),
                };
                Some((text, true))
            }
            (TransferKind::Incoming, TransferStatus::Requested) => Some((
                format!("Line {line}: {caller} is transferring this call to {whom}"),
                false,
            )),
            (TransferKind::Incoming, TransferStatus::Asking) => Some((
                format!(
                    "Line {line}: {caller} asks to transfer you to {whom} — Enter to go, Esc to stay"
                ),
                false,
            )),
            _ => None,
        };
        if let Some((text, failure)) = message {
            self.tell(text, failure);
        }
    }

    fn tell(&mut self, text: String, failure: bool) {
        self.outcome = Some(Outcome { text, failure });
    }

    fn call_mut(&mut self, line: LineNo, call_id: &str) -> Option<&mut CallView> {
        self.index(line)
            .and_then(|i| self.lines[i].as_mut())
            .filter(|c| c.call_id == call_id)
    }

    // ---- keys --------------------------------------------------------------------------

    fn on_key(&mut self, key: KeyEvent, finder: &mut dyn Finder) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.normal_key(key, finder),
            Mode::Help => Vec::new(),
            Mode::Trace => self.trace_key(key, finder),
            Mode::History(mut list) => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => match list.current().map(|r| r.number.clone()) {
                    Some(number) if !number.is_empty() && self.a_line_is_free() => {
                        finder.picked(&number);
                        vec![Effect::Send(Command::Dial(number))]
                    }
                    _ => {
                        self.mode = Mode::History(list);
                        Vec::new()
                    }
                },
                _ => {
                    match key.code {
                        KeyCode::Up => list.step(-1),
                        KeyCode::Down => list.step(1),
                        KeyCode::PageUp => list.step(-10),
                        KeyCode::PageDown => list.step(10),
                        _ => {}
                    }
                    self.mode = Mode::History(list);
                    Vec::new()
                }
            },
            Mode::AddContact { number, mut name } => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter if !name.trim().is_empty() => vec![Effect::AddContact {
                    name: name.trim().to_owned(),
                    number,
                }],
                _ => {
                    edit_text(&mut name, &key);
                    self.mode = Mode::AddContact { number, name };
                    Vec::new()
                }
            },
            Mode::ConfirmQuit => match key.code {
                KeyCode::Char('y' | 'Y') => self.quit(),
                _ => Vec::new(),
            },
            Mode::CommandLine(mut text) => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => self.run_command_line(&text),
                _ => {
                    edit_text(&mut text, &key);
                    self.mode = Mode::CommandLine(text);
                    Vec::new()
                }
            },
            Mode::RoutePrompt(mut text) => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter if !text.trim().is_empty() => {
                    let route = text.trim().to_owned();
                    self.route = Some(route.clone());
                    vec![Effect::Send(Command::Route(route))]
                }
                _ => {
                    edit_text(&mut text, &key);
                    self.mode = Mode::RoutePrompt(text);
                    Vec::new()
                }
            },
            Mode::Picker(mut picker) => {
                match key.code {
                    KeyCode::Esc => return Vec::new(),
                    KeyCode::Enter => return self.pick(picker, finder),
                    KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
                    KeyCode::Char('p') if ctrl => {
                        picker.selected = picker.selected.saturating_sub(1);
                    }
                    KeyCode::Down | KeyCode::Tab => {
                        picker.selected = (picker.selected + 1).min(picker.rows.len().max(1) - 1);
                    }
                    KeyCode::Char('n') if ctrl => {
                        picker.selected = (picker.selected + 1).min(picker.rows.len().max(1) - 1);
                    }
                    _ => {
                        if edit_text(&mut picker.query, &key) {
                            self.refresh(&mut picker, finder);
                        }
                    }
                }
                self.mode = Mode::Picker(picker);
                Vec::new()
            }
        }
    }

    /// Keys while the trace pane has the focus: arrows choose, Enter opens or closes the full
    /// message, Esc gives the keys back to the lines (the pane stays), `s` hides the pane;
    /// every other key works as usual.
    fn trace_key(&mut self, key: KeyEvent, finder: &mut dyn Finder) -> Vec<Effect> {
        let hides = spec_of(&key)
            .is_some_and(|spec| self.keymap.actions_for(&spec).contains(&Action::Trace));
        if hides {
            self.trace.set_visible(false);
            return vec![Effect::Send(Command::Trace(TraceMode::Off))];
        }
        self.mode = Mode::Trace;
        match key.code {
            KeyCode::Up => self.trace.step(-1),
            KeyCode::Down => self.trace.step(1),
            KeyCode::PageUp => self.trace.step(-10),
            KeyCode::PageDown => self.trace.step(10),
            KeyCode::Home => self.trace.step(-(super::sip_trace::KEEP as isize)),
            KeyCode::End => self.trace.selected = None,
            KeyCode::Enter => self.trace.detail = !self.trace.detail,
            KeyCode::Esc if self.trace.detail => self.trace.detail = false,
            KeyCode::Esc => self.mode = Mode::Normal,
            _ => {
                self.mode = Mode::Normal;
                let effects = self.normal_key(key, finder);
                if matches!(self.mode, Mode::Normal) && self.trace.visible {
                    self.mode = Mode::Trace;
                }
                return effects;
            }
        }
        Vec::new()
    }

    fn normal_key(&mut self, key: KeyEvent, finder: &mut dyn Finder) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.act(Action::Quit, finder);
        }
        let Some(spec) = spec_of(&key) else {
            return Vec::new();
        };
        if let Some(action) = self
            .keymap
            .actions_for(&spec)
            .into_iter()
            .find(|a| self.applicable(*a))
        {
            return self.act(action, finder);
        }
        match key.code {
            KeyCode::Char(c @ ('0'..='9' | '*' | '#'))
                if !spec.ctrl && !spec.alt && self.selected_call_is(CallState::Connected) =>
            {
                vec![Effect::Send(Command::Dtmf(c.to_string()))]
            }
            _ => Vec::new(),
        }
    }

    fn selected_call(&self) -> Option<&CallView> {
        self.call(self.selected)
    }

    fn selected_call_is(&self, state: CallState) -> bool {
        self.selected_call().is_some_and(|c| c.state == state)
    }

    fn a_line_is_free(&self) -> bool {
        self.lines.iter().any(Option::is_none)
    }

    /// An attended transfer is being prepared (a line says `consulting`).
    fn consulting(&self) -> bool {
        self.lines.iter().flatten().any(|c| {
            c.transfer.as_ref().is_some_and(|t| {
                t.kind == TransferKind::Attended && t.status == TransferStatus::Requested
            })
        })
    }

    /// A ring-first blind transfer still rings its target (`cancel` takes the caller back).
    fn ringing_first(&self) -> bool {
        self.lines.iter().flatten().any(|c| {
            c.transfer.as_ref().is_some_and(|t| {
                t.mechanism == Some(TransferMechanism::RingFirst)
                    && matches!(
                        t.status,
                        TransferStatus::Requested | TransferStatus::Ringing
                    )
            })
        })
    }

    /// The line whose far end asks to transfer it (the selected one first).
    fn asking_line(&self) -> Option<LineNo> {
        let asks = |line: LineNo| self.call(line).is_some_and(CallView::asks_to_transfer);
        std::iter::once(self.selected)
            .chain(1..=LineNo::try_from(self.lines.len()).unwrap_or(LineNo::MAX))
            .find(|l| asks(*l))
    }

    /// Two or more lines have answered calls (to join, or to transfer one to the other).
    fn two_established(&self) -> bool {
        self.lines
            .iter()
            .flatten()
            .filter(|c| c.is_established())
            .count()
            >= 2
    }

    /// Whether `action` makes sense now.
    fn applicable(&self, action: Action) -> bool {
        let selected = self.selected_call();
        let established = selected.is_some_and(CallView::is_established);
        match action {
            Action::Dial | Action::Pickup => self.a_line_is_free() && !self.quitting,
            Action::Answer => self
                .lines
                .iter()
                .flatten()
                .any(|c| c.is_incoming() || c.asks_to_transfer()),
            Action::Hangup => selected.is_some(),
            Action::Hold => established,
            Action::Swap => true,
            Action::Transfer => established && !selected.is_some_and(CallView::transfer_active),
            Action::Consult => {
                established
                    && self.a_line_is_free()
                    && !selected.is_some_and(CallView::transfer_active)
            }
            Action::Complete => self.consulting() || self.two_established(),
            Action::Cancel => {
                self.consulting()
                    || self.ringing_first()
                    || self.two_established()
                    || self.asking_line().is_some()
            }
            Action::Conference => self.two_established(),
            Action::Mute | Action::Record => established,
            Action::AddContact => selected.is_some_and(|c| !c.number.is_empty()),
            Action::Route
            | Action::Search
            | Action::Command
            | Action::Help
            | Action::Trace
            | Action::NoiseSuppression
            | Action::Agc
            | Action::History => true,
            Action::Quit => !self.quitting,
        }
    }

    fn act(&mut self, action: Action, finder: &mut dyn Finder) -> Vec<Effect> {
        if !self.applicable(action) {
            return Vec::new();
        }
        let send = |command| vec![Effect::Send(command)];
        match action {
            Action::Dial => self.open_picker(Purpose::Dial, String::new(), finder),
            Action::Transfer => self.open_picker(Purpose::Transfer, String::new(), finder),
            Action::Consult => self.open_picker(Purpose::Consult, String::new(), finder),
            Action::Pickup => self.open_picker(Purpose::Pickup, String::new(), finder),
            Action::Search => self.open_picker(Purpose::Search, String::new(), finder),
            Action::Answer => {
                let ringing = |line: LineNo| self.call(line).is_some_and(CallView::is_incoming);
                let line = if ringing(self.selected) {
                    self.selected
                } else {
                    (1..=LineNo::try_from(self.lines.len()).unwrap_or(LineNo::MAX))
                        .find(|l| ringing(*l))
                        .or_else(|| self.asking_line())
                        .unwrap_or(1)
                };
                send(Command::Answer(Some(line)))
            }
            Action::Hangup => {
                let line = self.selected;
                if let Some(call) = self.index(line).and_then(|i| self.lines[i].as_mut()) {
                    call.hangup_sent = true;
                }
                send(Command::Hangup(Some(line)))
            }
            Action::Hold => {
                if self.selected_call_is(CallState::Held) {
                    send(Command::Resume(Some(self.selected)))
                } else {
                    send(Command::Hold(Some(self.selected)))
                }
            }
            Action::Swap => send(Command::Swap),
            Action::Complete => send(Command::Complete),
            Action::Cancel => match self.asking_line() {
                Some(line) if !self.consulting() && !self.ringing_first() => {
                    send(Command::Decline(Some(line)))
                }
                _ => send(Command::Cancel),
            },
            Action::Mute => send(Command::Mute),
            Action::Record => {
                let recording = self.selected_call().is_some_and(|c| c.recording);
                send(Command::Record(!recording, None))
            }
            Action::Conference => send(Command::Conference),
            Action::Route => {
                self.mode = Mode::RoutePrompt(self.route.clone().unwrap_or_default());
                Vec::new()
            }
            Action::Command => {
                self.mode = Mode::CommandLine(String::new());
                Vec::new()
            }
            Action::Help => {
                self.mode = Mode::Help;
                Vec::new()
            }
            Action::Trace => {
                self.mode = Mode::Trace;
                if self.trace.visible {
                    Vec::new()
                } else {
                    self.trace.set_visible(true);
                    send(Command::Trace(TraceMode::On))
                }
            }
            Action::NoiseSuppression => send(Command::Voice(VoiceStage::NoiseSuppression, None)),
            Action::Agc => send(Command::Voice(VoiceStage::Agc, None)),
            Action::History => vec![Effect::LoadHistory],
            Action::AddContact => {
                if let Some(call) = self.selected_call() {
                    self.mode = Mode::AddContact {
                        number: call.number.clone(),
                        name: call.name.clone().unwrap_or_default(),
                    };
                }
                Vec::new()
            }
            Action::Quit => {
                if self.has_calls() {
                    self.mode = Mode::ConfirmQuit;
                    Vec::new()
                } else {
                    self.quit()
                }
            }
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.quitting = true;
        vec![Effect::Send(Command::Quit)]
    }

    fn run_command_line(&mut self, text: &str) -> Vec<Effect> {
        match headless::parse_command(text) {
            Ok(None) => Vec::new(),
            Ok(Some(command)) => {
                match &command {
                    Command::Route(route) => self.route = Some(route.clone()),
                    Command::Quit => self.quitting = true,
                    Command::Trace(mode) => self.trace.set_visible(*mode != TraceMode::Off),
                    Command::Hangup(line) => {
                        let line = line.unwrap_or(self.selected);
                        if let Some(call) = self.index(line).and_then(|i| self.lines[i].as_mut()) {
                            call.hangup_sent = true;
                        }
                    }
                    _ => {}
                }
                vec![Effect::Send(command)]
            }
            Err(message) => {
                self.tell(capitalise(&message), true);
                Vec::new()
            }
        }
    }

    // ---- picker ------------------------------------------------------------------------

    /// How many rows the picker asks for: what fits on the screen.
    fn picker_limit(&self) -> usize {
        usize::from(self.size.1.saturating_sub(8)).max(3)
    }

    fn open_picker(
        &mut self,
        purpose: Purpose,
        query: String,
        finder: &mut dyn Finder,
    ) -> Vec<Effect> {
        let mut picker = Picker {
            purpose,
            query,
            rows: Vec::new(),
            selected: 0,
        };
        self.refresh(&mut picker, finder);
        self.mode = Mode::Picker(picker);
        Vec::new()
    }

    fn refresh(&self, picker: &mut Picker, finder: &mut dyn Finder) {
        picker.rows = finder.find(&picker.query, self.picker_limit());
        picker.selected = 0;
    }

    /// Enter in the picker: the chosen row's number, else what was typed, through the one
    /// target parser ([`Typed`]); what cannot be called is said, and the picker stays open.
    fn pick(&mut self, picker: Picker, finder: &mut dyn Finder) -> Vec<Effect> {
        let text = match picker.rows.get(picker.selected) {
            Some(row) => row.number.clone(),
            None => one_line(&picker.query),
        };
        if text.trim().is_empty() {
            self.mode = Mode::Picker(picker);
            return Vec::new();
        }
        let target = match Typed::parse(&text) {
            Ok(typed) => typed.to_string(),
            Err(e) => {
                self.tell(capitalise(&e.to_string()), true);
                self.mode = Mode::Picker(picker);
                return Vec::new();
            }
        };
        finder.picked(&target);
        vec![Effect::Send(picker.purpose.command(target))]
    }

    fn on_paste(&mut self, text: &str, finder: &mut dyn Finder) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Picker(mut picker) => {
                picker.query.push_str(&clean_paste(text));
                self.refresh(&mut picker, finder);
                self.mode = Mode::Picker(picker);
                Vec::new()
            }
            Mode::CommandLine(line) => {
                self.mode = Mode::CommandLine(line + &one_line(text));
                Vec::new()
            }
            Mode::RoutePrompt(line) => {
                self.mode = Mode::RoutePrompt(line + &one_line(text));
                Vec::new()
            }
            Mode::Normal if self.applicable(Action::Dial) => {
                self.open_picker(Purpose::Dial, clean_paste(text), finder)
            }
            other => {
                self.mode = other;
                Vec::new()
            }
        }
    }
}

/// Applies an editing key to `text`; returns true when the key was an edit.
fn edit_text(text: &mut String, key: &KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Backspace => text.pop().is_some(),
        KeyCode::Char('u') if ctrl => {
            text.clear();
            true
        }
        KeyCode::Char('w') if ctrl => {
            let keep = text.trim_end().rfind(' ').map_or(0, |i| i + 1);
            text.truncate(keep);
            true
        }
        KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => {
            text.push(c);
            true
        }
        _ => false,
    }
}

/// The number in a SIP URI: its user part (`sip:200@pbx;x=y` → `200`), else its host.
pub fn number_of(uri: &str) -> String {
    let trimmed = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let lower = trimmed.to_ascii_lowercase();
    let rest = if lower.starts_with("sips:") {
        &trimmed[5..]
    } else if lower.starts_with("sip:") || lower.starts_with("tel:") {
        &trimmed[4..]
    } else {
        trimmed
    };
    let rest = rest.split([';', '?']).next().unwrap_or(rest);
    match rest.split_once('@') {
        Some((user, _)) if !user.is_empty() => user.to_owned(),
        _ => rest.to_owned(),
    }
}

/// Pasted text made fit for the picker: what the target parser understands in its canonical
/// form ([`Typed`]: `+44 (0)20 7946 0958` → `+442079460958`, `"Bob" <sip:bob@pbx>` →
/// `sip:bob@pbx`); anything else (a name to search for) on one line.
pub fn clean_paste(text: &str) -> String {
    let text = one_line(text);
    match Typed::parse(&text) {
        Ok(typed) => typed.to_string(),
        Err(_) => text.trim().to_owned(),
    }
}

/// Text on one line: line breaks and tabs become single spaces.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r', '\t'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first letter in upper case.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
