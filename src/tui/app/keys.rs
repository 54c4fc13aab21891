//! Modes and keys: what a key or a paste does in each [`Mode`] (the line panes, the picker,
//! the `:` line, the route prompt, help, the trace pane, the history view, adding a contact),
//! which [`Action`]s apply now, and the commands they send.
//!
//! Nothing here handles driver events: the model they build is read, not written, except for
//! marking a hang-up the operator asked for.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{capitalise, App, CallView, Effect, Mode, Picker, Purpose, SoundView};
use crate::front::{Command, TraceMode};
use crate::headless;
use crate::sip::target::Typed;
use crate::sip::{
    CallState, Command as SipCommand, LineNo, TransferKind, TransferMechanism, TransferStatus,
};
use crate::sound::{DeviceRole, SoundCommand, VoiceStage};
use crate::tui::keymap::{spec_of, Action};

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal if !self.wrapups.is_empty() => self.wrapup_key(&key),
            Mode::Normal => self.normal_key(key),
            Mode::Help => Vec::new(),
            Mode::Trace => self.trace_key(key),
            Mode::History(mut list) => match key.code {
                KeyCode::Esc => Vec::new(),
                KeyCode::Enter => match list.current().map(|r| r.number.clone()) {
                    Some(number) if !number.is_empty() && self.a_line_is_free() => {
                        vec![
                            Effect::Picked(number.clone()),
                            Effect::Send(Command::Sip(SipCommand::Dial(number))),
                        ]
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
            Mode::Sound(check) => self.sound_key(key, check),
            Mode::Picker(mut picker) => {
                let mut effects = Vec::new();
                match key.code {
                    KeyCode::Esc => return Vec::new(),
                    KeyCode::Enter => return self.pick(picker),
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
                            effects.push(self.search(&mut picker, false));
                        }
                    }
                }
                self.mode = Mode::Picker(picker);
                effects
            }
        }
    }

    /// Keys in the sound check: ↑↓ choose a device, `m`/`h`/`r` make it the microphone, the
    /// headset or the ring device (used now, and written to the configuration file), `t` plays the test
    /// tone, `e` switches the echo, Esc closes (meter and echo off).
    fn sound_key(&mut self, key: KeyEvent, mut check: SoundView) -> Vec<Effect> {
        let device = match &check.devices {
            Some(Ok(list)) => list.get(check.selected).cloned(),
            _ => None,
        };
        let count = match &check.devices {
            Some(Ok(list)) => list.len(),
            _ => 0,
        };
        let use_device = |role, ok: bool| match &device {
            Some(d) if ok => vec![sound(SoundCommand::UseDevice(role, d.name.clone()))],
            _ => Vec::new(),
        };
        let effects = match key.code {
            KeyCode::Esc => {
                let mut effects = vec![sound(SoundCommand::Level(false))];
                if check.echo {
                    effects.push(sound(SoundCommand::Echo(false)));
                }
                self.level = None;
                return effects;
            }
            KeyCode::Up => {
                check.selected = check.selected.saturating_sub(1);
                Vec::new()
            }
            KeyCode::Down => {
                check.selected = (check.selected + 1).min(count.max(1) - 1);
                Vec::new()
            }
            KeyCode::Char('m') => {
                use_device(DeviceRole::Input, device.as_ref().is_some_and(|d| d.input))
            }
            KeyCode::Char('h') => use_device(
                DeviceRole::Output,
                device.as_ref().is_some_and(|d| d.output),
            ),
            KeyCode::Char('r') => {
                use_device(DeviceRole::Ring, device.as_ref().is_some_and(|d| d.output))
            }
            KeyCode::Char('t') => vec![sound(SoundCommand::Tone)],
            KeyCode::Char('e') => {
                check.echo = !check.echo;
                vec![sound(SoundCommand::Echo(check.echo))]
            }
            _ => Vec::new(),
        };
        self.mode = Mode::Sound(check);
        effects
    }

    /// Keys while the trace pane has the focus: arrows choose, Enter opens or closes the full
    /// message, Esc gives the keys back to the lines (the pane stays), `s` hides the pane;
    /// every other key works as usual.
    fn trace_key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
            KeyCode::Home => self.trace.step(-(crate::tui::sip_trace::KEEP as isize)),
            KeyCode::End => self.trace.selected = None,
            KeyCode::Enter => self.trace.detail = !self.trace.detail,
            KeyCode::Esc if self.trace.detail => self.trace.detail = false,
            KeyCode::Esc => self.mode = Mode::Normal,
            _ => {
                self.mode = Mode::Normal;
                let effects = self.normal_key(key);
                if matches!(self.mode, Mode::Normal) && self.trace.visible {
                    self.mode = Mode::Trace;
                }
                return effects;
            }
        }
        Vec::new()
    }

    /// A key for the wrap-up modal (the oldest open wrap-up).
    fn wrapup_key(&mut self, key: &KeyEvent) -> Vec<Effect> {
        let Some(wrapup) = self.wrapups.first_mut() else {
            return Vec::new();
        };
        match wrapup.key(key) {
            Ok(Some(command)) => vec![Effect::Send(Command::Sip(command))],
            Ok(None) => Vec::new(),
            Err(words) => {
                self.tell(words, true);
                Vec::new()
            }
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.act(Action::Quit);
        }
        let Some(spec) = spec_of(&key) else {
            return Vec::new();
        };
        if let Some(favourite) = self.favourites.by_key(&spec) {
            // The core decides: transfer with a call selected, pickup on a ringing lamp, dial.
            if self.quitting {
                return Vec::new();
            }
            return vec![
                Effect::Picked(favourite.number.clone()),
                Effect::Send(Command::Sip(SipCommand::Favourite(
                    favourite.number.clone(),
                ))),
            ];
        }
        if let Some(action) = self
            .keymap
            .actions_for(&spec)
            .into_iter()
            .find(|a| self.applicable(*a))
        {
            return self.act(action);
        }
        match key.code {
            KeyCode::Char(c @ ('0'..='9' | '*' | '#'))
                if !spec.ctrl && !spec.alt && self.selected_call_is(CallState::Connected) =>
            {
                vec![Effect::Send(Command::Sip(SipCommand::Dtmf(c.to_string())))]
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
    pub(super) fn applicable(&self, action: Action) -> bool {
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
            | Action::History
            | Action::SoundCheck
            | Action::Dnd => true,
            Action::Quit => !self.quitting,
            Action::Favourites => !self.favourites.list.is_empty(),
            Action::Park => {
                established && self.parkable && !selected.is_some_and(CallView::transfer_active)
            }
        }
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        if !self.applicable(action) {
            return Vec::new();
        }
        let send = |command| vec![Effect::Send(command)];
        match action {
            Action::Dial => self.open_picker(Purpose::Dial, String::new()),
            Action::Transfer => self.open_picker(Purpose::Transfer, String::new()),
            Action::Consult => self.open_picker(Purpose::Consult, String::new()),
            Action::Pickup => self.open_picker(Purpose::Pickup, String::new()),
            Action::Search => self.open_picker(Purpose::Search, String::new()),
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
                send(Command::Sip(SipCommand::Answer(Some(line))))
            }
            Action::Hangup => {
                let line = self.selected;
                if let Some(call) = self.index(line).and_then(|i| self.lines[i].as_mut()) {
                    call.hangup_sent = true;
                }
                send(Command::Sip(SipCommand::Hangup(Some(line))))
            }
            Action::Hold => {
                if self.selected_call_is(CallState::Held) {
                    send(Command::Sip(SipCommand::Resume(Some(self.selected))))
                } else {
                    send(Command::Sip(SipCommand::Hold(Some(self.selected))))
                }
            }
            Action::Swap => send(Command::Sip(SipCommand::Swap)),
            Action::Complete => send(Command::Sip(SipCommand::Complete)),
            Action::Cancel => match self.asking_line() {
                Some(line) if !self.consulting() && !self.ringing_first() => {
                    send(Command::Sip(SipCommand::Decline(Some(line))))
                }
                _ => send(Command::Sip(SipCommand::Cancel)),
            },
            Action::Mute => send(Command::Sip(SipCommand::Mute)),
            Action::Record => {
                let recording = self.selected_call().is_some_and(|c| c.recording);
                send(Command::Sip(SipCommand::Record(!recording, None)))
            }
            Action::Conference => send(Command::Sip(SipCommand::Conference)),
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
            Action::Dnd => send(Command::Sip(SipCommand::Dnd(None))),
            Action::SoundCheck => {
                self.mode = Mode::Sound(SoundView::default());
                self.level = None;
                vec![Effect::ListDevices, sound(SoundCommand::Level(true))]
            }
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
            Action::Favourites => {
                self.favourites.shown = !self.favourites.shown;
                Vec::new()
            }
            Action::Park => send(Command::Sip(SipCommand::Park(Some(self.selected)))),
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        self.quitting = true;
        vec![Effect::Send(Command::Sip(SipCommand::Quit))]
    }

    fn run_command_line(&mut self, text: &str) -> Vec<Effect> {
        match headless::parse_command(text) {
            Ok(None) => Vec::new(),
            Ok(Some(command)) => {
                match &command {
                    Command::Route(route) => self.route = Some(route.clone()),
                    Command::Sip(SipCommand::Quit) => self.quitting = true,
                    Command::Trace(mode) => self.trace.set_visible(*mode != TraceMode::Off),
                    Command::Sip(SipCommand::Hangup(line)) => {
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

    /// Opens the picker on `query`; its rows come back as [`super::Input::Found`] from the
    /// search (files that changed read again first) the run loop carries out.
    fn open_picker(&mut self, purpose: Purpose, query: String) -> Vec<Effect> {
        let mut picker = Picker {
            purpose,
            query,
            rows: Vec::new(),
            selected: 0,
        };
        let search = self.search(&mut picker, true);
        self.mode = Mode::Picker(picker);
        vec![search]
    }

    /// The search for the picker's query (`fresh`: reread changed files first); the
    /// highlight goes back to the top.
    fn search(&self, picker: &mut Picker, fresh: bool) -> Effect {
        picker.selected = 0;
        Effect::Search {
            query: picker.query.clone(),
            limit: self.picker_limit(),
            fresh,
        }
    }

    /// Enter in the picker: the chosen row's number, else what was typed, through the one
    /// target parser ([`Typed`]); what cannot be called is said, and the picker stays open.
    fn pick(&mut self, picker: Picker) -> Vec<Effect> {
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
        vec![
            Effect::Picked(target.clone()),
            Effect::Send(picker.purpose.command(target)),
        ]
    }

    pub(super) fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Picker(mut picker) => {
                picker.query.push_str(&clean_paste(text));
                let search = self.search(&mut picker, false);
                self.mode = Mode::Picker(picker);
                vec![search]
            }
            Mode::CommandLine(line) => {
                self.mode = Mode::CommandLine(line + &one_line(text));
                Vec::new()
            }
            Mode::RoutePrompt(line) => {
                self.mode = Mode::RoutePrompt(line + &one_line(text));
                Vec::new()
            }
            Mode::Normal if !self.wrapups.is_empty() => {
                if let Some(wrapup) = self.wrapups.first_mut() {
                    wrapup.paste(text);
                }
                Vec::new()
            }
            Mode::Normal if self.applicable(Action::Dial) => {
                self.open_picker(Purpose::Dial, clean_paste(text))
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

/// The effect that sends a sound-check command.
fn sound(command: SoundCommand) -> Effect {
    Effect::Send(Command::Sound(command))
}
