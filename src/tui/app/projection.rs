//! Event projection: what the driver's [`Event`]s make of the screen's model — the calls on
//! each line, registration, lamps, devices, the trace and the outcome line.
//!
//! Nothing here reads keys or decides commands; names come from the [`Finder`]'s lookups, else
//! the favourites' labels.

use std::time::Instant;

use super::{
    capitalise, failed_transfer_words, number_of, App, CallView, Effect, Registration,
    TransferView, LINES, MAX_LINES,
};
use crate::front::{Event, TraceMode};
use crate::sip::{
    CallState, Event as SipEvent, LineNo, TransferKind, TransferMechanism, TransferStatus,
    WrapupStatus,
};
use crate::tui::finder::Finder;
use crate::tui::sip_trace::TraceEntry;
use crate::tui::wrapup::WrapupView;

impl App {
    /// The name of `number`: from the directory, else a favourite's label.
    fn name_for(&self, finder: &dyn Finder, number: &str) -> Option<String> {
        finder
            .name_for(number)
            .or_else(|| self.favourites.label_of(number))
    }

    pub(super) fn on_event(
        &mut self,
        event: Event,
        now: Instant,
        finder: &dyn Finder,
    ) -> Vec<Effect> {
        match event {
            Event::Started {
                account,
                lines,
                note,
                ..
            } => {
                if note.starts_with("no config file") {
                    // The embedded default: how to be called and to call, where the config goes.
                    self.tell(note, false);
                }
                let n = usize::from(lines).clamp(LINES, MAX_LINES);
                self.lines.resize(n, None);
                self.failed_transfer.resize(n, None);
                self.account = Some(account);
                self.registration = Registration::NotRegistered;
                for (_, state) in &mut self.accounts {
                    *state = Registration::NotRegistered;
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
            Event::Network { message } => self.tell(capitalise(&message), false),
            Event::Level { dbfs } => self.level = Some(dbfs),
            Event::DeviceChosen { role, device, file } => {
                let what = match role.as_str() {
                    "input" => "Microphone",
                    "output" => "Headset",
                    _ => "Ring device",
                };
                self.tell(
                    format!("{what}: {device} (written to {file} for the next start)"),
                    false,
                );
            }
            Event::Stats { .. } | Event::DeviceList { .. } => {}
            Event::SipMessage {
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
            Event::Sip(event) => return self.on_sip_event(event, now, finder),
        }
        Vec::new()
    }

    fn on_sip_event(&mut self, event: SipEvent, now: Instant, finder: &dyn Finder) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            SipEvent::Blf { ext, state } => self.set_lamp(ext, state),
            SipEvent::Dnd { on, code } => {
                self.dnd = on;
                let told = code.map_or(String::new(), |c| format!(" (told the PBX: {c})"));
                let words = if on {
                    "do not disturb: new calls are answered busy"
                } else {
                    "do not disturb is off"
                };
                self.tell(format!("{words}{told}"), false);
            }
            SipEvent::Refused {
                from,
                display_name,
                reason,
                ..
            } => {
                let number = number_of(&from);
                let who = match finder.name_for(&number).or(display_name) {
                    Some(name) => format!("{name} ({number})"),
                    None => number,
                };
                self.tell(format!("{who} was answered busy: {reason}"), false);
            }
            SipEvent::AutoAnswer { line, after_ms, .. } => {
                self.tell(
                    format!(
                        "auto-answer: line {line} in {:.1} s",
                        after_ms as f64 / 1000.0
                    ),
                    false,
                );
            }
            SipEvent::Wrapup {
                call_id,
                peer,
                status: WrapupStatus::Started,
                codes,
                seconds,
                required,
                ..
            } => {
                let who = self
                    .lines
                    .iter()
                    .flatten()
                    .find(|c| c.call_id == call_id)
                    .map_or_else(|| number_of(&peer), CallView::who);
                self.wrapups
                    .push(WrapupView::new(call_id, who, codes, required, seconds));
                if let Some(first) = self.wrapups.first_mut() {
                    first.show(now);
                }
            }
            SipEvent::Wrapup {
                call_id,
                status,
                code,
                ..
            } => {
                self.wrapups.retain(|w| w.call_id != call_id);
                if let Some(first) = self.wrapups.first_mut() {
                    first.show(now);
                }
                let words = match (status, code) {
                    (WrapupStatus::Saved, Some(code)) => format!("wrap-up saved: {code}"),
                    (WrapupStatus::Saved, None) => "wrap-up saved".to_owned(),
                    (WrapupStatus::Expired, _) => "wrap-up closed itself (time is up)".to_owned(),
                    _ => "wrap-up skipped".to_owned(),
                };
                self.tell(words, false);
            }
            SipEvent::Registered { account, .. } => {
                self.set_account_state(&account, &Registration::Registered);
                self.registration = Registration::Registered;
            }
            SipEvent::RegistrationFailed {
                account,
                reason,
                retry_in,
                ..
            } => {
                let state = Registration::Failed { reason, retry_in };
                if self.set_account_state(&account, &state) {
                    // The bar has room for a mark per account, not for the reason.
                    if let Registration::Failed { reason, retry_in } = &state {
                        self.tell(
                            format!(
                                "{account}: registration failed: {reason} (retry in {retry_in} s)"
                            ),
                            true,
                        );
                    }
                }
                self.registration = state;
            }
            SipEvent::Unregistered { account, .. } => {
                self.set_account_state(&account, &Registration::Unregistered);
                self.registration = Registration::Unregistered;
            }
            SipEvent::AccountSelected { account } => {
                self.tell(format!("new calls go out through {account}"), false);
                self.default_account = Some(account);
            }
            SipEvent::Incoming {
                line,
                call_id,
                from,
                display_name,
                referred_by,
                account,
                ..
            } => {
                let account = (!self.accounts.is_empty()).then_some(account);
                let Some(i) = self.index(line) else {
                    return effects;
                };
                let number = number_of(&from);
                let transferred_by = referred_by.map(|by| {
                    let number = number_of(&by);
                    self.name_for(finder, &number).unwrap_or(number)
                });
                let name = self.name_for(finder, &number).or(display_name);
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
                    park_return: None,
                    account,
                });
                if self.bell {
                    effects.push(Effect::Bell);
                }
            }
            SipEvent::Call {
                line,
                call_id,
                state,
                peer,
                reason,
                ..
            } => self.on_call(line, call_id, state, peer, reason, now, finder),
            SipEvent::Media {
                line,
                call_id,
                codec,
                ..
            } => {
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.codec = Some(codec);
                }
            }
            SipEvent::Mute {
                line,
                call_id,
                muted,
            } => {
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.muted = muted;
                }
            }
            SipEvent::Transfer {
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
            SipEvent::Line { line } => {
                if self.index(line).is_some() {
                    self.selected = line;
                }
            }
            SipEvent::Error { message } => self.tell(capitalise(&message), true),
            SipEvent::Stopped => self.stopped = true,
            SipEvent::Favourites { .. } => {}
            SipEvent::Parked { peer, slot, .. } => {
                let who = number_of(&peer);
                let who = self.name_for(finder, &who).unwrap_or(who);
                self.tell(
                    match slot {
                        Some(slot) => format!("Parked {who} in slot {slot} (unpark {slot})"),
                        None => format!("Parked {who}"),
                    },
                    false,
                );
            }
            SipEvent::ParkReturned {
                line,
                call_id,
                slot,
                ..
            } => {
                let words = match slot {
                    Some(slot) => format!("parked call returned from slot {slot}"),
                    None => "parked call returned".to_owned(),
                };
                if let Some(call) = self.call_mut(line, &call_id) {
                    call.park_return = Some(words.clone());
                }
                self.tell(format!("Line {line}: {words}"), false);
            }
            // Digits the far end sends are for IVRs, not for the operator's screen.
            SipEvent::Dtmf { .. } => {}
            SipEvent::Conference { lines, active } => {
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
        finder: &dyn Finder,
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
            let name = self.name_for(finder, &number);
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
                park_return: None,
                account: None,
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
        finder: &dyn Finder,
    ) {
        let Some(i) = self.index(line) else {
            return;
        };
        let number = number_of(target);
        let target_name = self.name_for(finder, &number);
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
}
