//! The screen's model and its update function (Elm style): [`App::update`] takes one
//! [`Input`] (a key, a paste, a driver [`Event`], a resize) with the time it happened and
//! returns the [`Effect`]s to carry out (commands to send, the bell).
//!
//! Everything shown is built from events: the app never guesses what the core did with a
//! command. It reads no clock (the time is handed in), draws nothing and does no I/O: the
//! [`Finder`] handed to `update` is only asked for names; searching the directory (and reading
//! again the files that changed) and recording a pick are [`Effect`]s the run loop carries
//! out, the picker's rows coming back as [`Input::Found`].
//!
//! This file owns the model's types and `update`'s dispatch; [`projection`] turns driver
//! events into the model, [`keys`] turns keys and pastes into modes and commands.

mod keys;
mod projection;

use std::time::Instant;

use crossterm::event::KeyEvent;

use super::favourites::{with_favourites, Favourites};
use super::finder::{Finder, PickerRow};
use super::history_view::HistoryList;
use super::keymap::{Action, Keymap};
use super::sip_trace::SipTrace;
use super::wrapup::WrapupView;
use crate::front::{Command, Event};
use crate::sip::{
    BlfState, CallState, Command as SipCommand, LineNo, TransferKind, TransferMechanism,
    TransferStatus, MAX_BLF, VIEW_LIMIT,
};
use crate::sound::AudioDevice;
pub use keys::clean_paste;

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
    /// The audio devices found for the sound check, or why they could not be listed.
    DevicesListed(Result<Vec<AudioDevice>, String>),
    /// The rows found for a picker query ([`Effect::Search`]); ignored unless the picker still
    /// shows that query.
    Found {
        /// The query searched.
        query: String,
        /// Its rows, best first.
        rows: Vec<PickerRow>,
    },
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
    /// Search the directory for the picker and hand the rows back as [`Input::Found`].
    Search {
        /// What the operator typed.
        query: String,
        /// How many rows fit.
        limit: usize,
        /// The picker just opened: read again the directory files that changed first.
        fresh: bool,
    },
    /// List the audio devices and hand them back as [`Input::DevicesListed`].
    ListDevices,
    /// The operator picked this number: record its use (with the wall-clock time) to rank it
    /// higher next time.
    Picked(String),
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
            Purpose::Dial | Purpose::Search => Command::Sip(SipCommand::Dial(target)),
            Purpose::Transfer => Command::Sip(SipCommand::Transfer(target)),
            Purpose::Consult => Command::Sip(SipCommand::Consult(target)),
            Purpose::Pickup => Command::Sip(SipCommand::Pickup(target)),
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
    /// The sound check: devices, level meter, test tone, echo.
    Sound(SoundView),
    /// The name for the contact being added to the personal book, with its number.
    AddContact {
        /// The number of the selected call.
        number: String,
        /// The name typed so far.
        name: String,
    },
}

/// The sound check screen's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SoundView {
    /// The devices found (`None` until listed), or why they could not be.
    pub devices: Option<Result<Vec<AudioDevice>, String>>,
    /// Index of the highlighted device.
    pub selected: usize,
    /// The echo is on.
    pub echo: bool,
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
    /// The call is one we parked, come back (the PBX's park timeout), in words.
    pub park_return: Option<String>,
    /// The account (its name) the call came in on, when several accounts run.
    pub account: Option<String>,
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
    /// Each account's name and registration state, when several run (else empty: the bar
    /// shows [`App::account`] and [`App::registration`]).
    pub accounts: Vec<(String, Registration)>,
    /// The account new calls go out through, when several run (`account <name>`).
    pub default_account: Option<String>,
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
    /// The microphone's last level (dBFS) while the sound check's meter is on.
    pub level: Option<f32>,
    /// The configured busy lamps (`[[account]] blf`), in their order: extension and state
    /// (`unknown` until the PBX tells).
    pub blf: Vec<(String, BlfState)>,
    /// Lamps of other extensions, watched while they are in the picker's view.
    view_lamps: Vec<(String, BlfState)>,
    /// The extensions last sent as [`Command::Sip(SipCommand::Watch)`].
    watching: Vec<String>,
    /// The favourites panel (`[[favourite]]`).
    pub favourites: Favourites,
    /// The account has a park extension (the park key applies).
    pub parkable: bool,
    /// Do not disturb is on.
    pub dnd: bool,
    /// Open wrap-ups, oldest (the one shown) first.
    pub wrapups: Vec<WrapupView>,
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
            accounts: Vec::new(),
            default_account: None,
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
            level: None,
            blf: blf
                .into_iter()
                .take(MAX_BLF)
                .map(|ext| (ext, BlfState::Unknown))
                .collect(),
            view_lamps: Vec::new(),
            watching: Vec::new(),
            favourites: Favourites::default(),
            parkable: false,
            dnd: false,
            wrapups: Vec::new(),
        }
    }

    /// The same screen with a favourites panel, and the park key when `parkable`. Their
    /// numbers must be among the lamps given to [`App::new`] to show a lamp.
    #[must_use]
    /// With the names of the accounts that run, the first being the default for new calls.
    /// With one account the screen shows its address and registration, as before.
    pub fn with_accounts(mut self, names: Vec<String>) -> Self {
        if names.len() > 1 {
            self.default_account = names.first().cloned();
            self.accounts = names
                .into_iter()
                .map(|name| (name, Registration::Starting))
                .collect();
        }
        self
    }

    /// Account `name`'s registration becomes `state`; true when several accounts run (the
    /// bar shows each), false when the one registration is [`App::registration`].
    fn set_account_state(&mut self, name: &str, state: &Registration) -> bool {
        if let Some((_, s)) = self.accounts.iter_mut().find(|(n, _)| n == name) {
            *s = state.clone();
        }
        !self.accounts.is_empty()
    }

    pub fn with_favourites(mut self, favourites: Favourites, parkable: bool) -> Self {
        self.favourites = favourites;
        self.parkable = parkable;
        self
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
            effects.push(Effect::Send(Command::Sip(SipCommand::Watch(view))));
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
    pub fn update(&mut self, input: Input, now: Instant, finder: &dyn Finder) -> Vec<Effect> {
        let mut effects = self.apply(input, now, finder);
        self.sync_watch(&mut effects);
        effects
    }

    /// [`App::update`] before the picker's view is told to the core.
    fn apply(&mut self, input: Input, now: Instant, finder: &dyn Finder) -> Vec<Effect> {
        match input {
            Input::Event(event) => self.on_event(event, now, finder),
            Input::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Input::Key(key) => self.on_key(key),
            Input::Paste(text) => self.on_paste(&text),
            Input::DevicesListed(devices) => {
                if let Mode::Sound(check) = &mut self.mode {
                    check.devices = Some(devices);
                    check.selected = 0;
                }
                Vec::new()
            }
            Input::Found { query, rows } => {
                if let Mode::Picker(picker) = &mut self.mode {
                    if picker.query == query {
                        // Favourites first, marked: the panel and the picker agree.
                        picker.rows = with_favourites(&self.favourites, &query, rows);
                        picker.selected = 0;
                    }
                }
                Vec::new()
            }
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

    fn tell(&mut self, text: String, failure: bool) {
        self.outcome = Some(Outcome { text, failure });
    }

    fn call_mut(&mut self, line: LineNo, call_id: &str) -> Option<&mut CallView> {
        self.index(line)
            .and_then(|i| self.lines[i].as_mut())
            .filter(|c| c.call_id == call_id)
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
/// The first letter in upper case.
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
