//! The core's side of the voice path: it decides what each line's media
//! should do ([`MediaOrder`]s for the media engine), mutes, and sends and
//! receives DTMF — as RFC 4733 events through the engine, or as SIP INFO
//! (`application/dtmf-relay`) when configured or when the peer negotiated
//! no telephone-event.

use std::time::Instant;

use super::api::{CallState, Direction, Event};
use super::call::Call;
use super::dialog::Role;
use super::media_order::{MediaOrder, Source, Stream, Tone};
use super::msg::{Message, Method};
use super::{line_no, UserAgent};

/// Tone length announced in a SIP INFO dtmf-relay body, in milliseconds.
const INFO_DURATION_MS: u32 = 160;

/// The digits RFC 4733 and dtmf-relay carry.
fn is_dtmf_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// What the media of a call should be now: its stream and local tone.
fn desired(call: &Call) -> (Option<Stream>, Option<Tone>) {
    if call.is_gone() {
        return (None, None);
    }
    let tone = match (call.state(), call.role) {
        (CallState::Ringing, Role::Caller) => Some(Tone::Ringback),
        (CallState::Ringing, Role::Callee) => Some(Tone::Ring),
        _ => None,
    };
    let flows = matches!(
        call.state(),
        CallState::Early | CallState::Connected | CallState::Held | CallState::RemoteHeld
    );
    let stream = call.media.as_ref().filter(|_| flows).map(|m| Stream {
        codec: m.codec,
        payload_type: m.payload_type,
        remote: m.remote,
        remote_rtcp: m.remote_rtcp,
        direction: m.direction,
        dtmf_payload_type: m.dtmf_payload_type,
        max_bitrate: m.max_bitrate,
        ptime: m.ptime,
        source: if call.local_hold() {
            Source::MusicOnHold
        } else if call.in_conference {
            Source::Conference
        } else {
            Source::Microphone
        },
        muted: call.muted,
        srtp: m.srtp.clone(),
    });
    (stream, tone)
}

impl UserAgent {
    /// Sends the media engine the call's media state if it changed.
    pub(super) fn sync_media(&mut self, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let want = desired(call);
        let first = call.media_sent.is_none();
        if call.media_sent.as_ref() == Some(&want) || (first && want == (None, None)) {
            return;
        }
        call.media_sent = Some(want.clone());
        let order = MediaOrder::Line {
            line: line_no(call.line),
            call_id: call_id.to_string(),
            stream: want.0,
            tone: want.1,
        };
        self.media_orders.push_back(order);
    }

    /// The talking call on the selected line, or an error for the operator.
    fn selected_talking(&mut self, what: &str) -> Option<String> {
        let line = line_no(self.selected);
        let found = self.lines[self.selected]
            .as_ref()
            .filter(|c| {
                matches!(
                    c.state(),
                    CallState::Connected
                        | CallState::RemoteHeld
                        | CallState::Held
                        | CallState::Early
                )
            })
            .map(|c| c.call_id.clone());
        if found.is_none() {
            self.error(format!("{what}: no connected call on line {line}"));
        }
        found
    }

    /// `mute`: toggles the microphone of the selected call.
    pub(super) fn mute(&mut self) {
        if self.mute_conference() {
            return;
        }
        let Some(call_id) = self.selected_talking("mute") else {
            return;
        };
        let Some(call) = self.call_mut(&call_id) else {
            return;
        };
        call.muted = !call.muted;
        let ev = Event::Mute {
            line: line_no(call.line),
            call_id: call_id.clone(),
            muted: call.muted,
        };
        self.emit(ev);
        self.sync_media(&call_id);
    }

    /// `dtmf <digits>` on the selected call.
    pub(super) fn dtmf(&mut self, now: Instant, digits: &str) {
        let digits: String = digits
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if let Some(bad) = digits.chars().find(|c| !is_dtmf_digit(*c)) {
            return self.error(format!(
                "dtmf: '{bad}' is not a DTMF digit (use 0-9 * # A-D)"
            ));
        }
        if digits.is_empty() {
            return self.error("dtmf needs digits, e.g. dtmf *100");
        }
        let Some(call_id) = self.selected_talking("dtmf") else {
            return;
        };
        let info = self.cfg.dtmf_info;
        let Some(call) = self.call_mut(&call_id) else {
            return;
        };
        let rfc4733 =
            call.media
                .as_ref()
                .and_then(|m| m.dtmf_payload_type)
                .is_some()
                && call.media.as_ref().is_some_and(|m| {
                    !matches!(m.direction, Direction::RecvOnly | Direction::Inactive)
                });
        if rfc4733 && !info {
            let line = line_no(call.line);
            self.media_orders
                .push_back(MediaOrder::Dtmf { line, digits });
            return;
        }
        call.info_queue.extend(digits.chars());
        if call.info_in_flight.is_none() {
            self.send_next_info(now, &call_id);
        }
    }

    /// Sends the next queued digit as SIP INFO.
    fn send_next_info(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(digit) = call.info_queue.pop_front() else {
            call.info_in_flight = None;
            return;
        };
        let body = format!("Signal={digit}\r\nDuration={INFO_DURATION_MS}\r\n");
        let cseq = self.send_in_dialog(
            now,
            call_id,
            Method::Info,
            Some(("application/dtmf-relay", body)),
        );
        if let Some(call) = self.call_mut(call_id) {
            call.info_in_flight = cseq;
        }
    }

    /// A final response to our INFO: send the next digit.
    pub(super) fn on_info_response(&mut self, now: Instant, call_id: &str, cseq: u32, code: u16) {
        if code < 200 {
            return;
        }
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.info_in_flight != Some(cseq) {
            return;
        }
        if code >= 300 {
            call.info_queue.clear();
            call.info_in_flight = None;
            return self.error(format!("dtmf: the far end refused SIP INFO ({code})"));
        }
        self.send_next_info(now, call_id);
    }

    /// An in-dialog INFO: DTMF as `application/dtmf-relay` or `application/dtmf`.
    pub(super) fn on_info(&mut self, now: Instant, call_id: &str, req: &Message) {
        let content_type = req
            .header("Content-Type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let body = req.body_text().unwrap_or_default();
        let digit = if content_type.starts_with("application/dtmf-relay") {
            body.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("signal"))
                .and_then(|(_, v)| v.trim().chars().next())
        } else if content_type.starts_with("application/dtmf") {
            body.trim().chars().next()
        } else {
            None
        };
        self.respond(now, req, 200, |b| b);
        let digit = digit
            .map(|d| d.to_ascii_uppercase())
            .filter(|d| is_dtmf_digit(*d));
        let line = self
            .calls()
            .find(|c| c.call_id == call_id)
            .map(|c| line_no(c.line));
        if let (Some(digit), Some(line)) = (digit, line) {
            self.emit(Event::Dtmf {
                line,
                call_id: call_id.to_string(),
                digit,
            });
        }
    }
}
