//! Whether a call is recorded: `record start|stop`, `[recording] auto`, and the stop when a
//! call ends. The core only decides and orders ([`MediaOrder::StartRecording`] /
//! [`MediaOrder::StopRecording`]); the media engine writes the file and the driver announces
//! it (`record` events carry the file's path, which only the driver knows).

use super::api::LineNo;
use super::media_order::MediaOrder;
use super::{line_no, UserAgent};

impl UserAgent {
    /// `[recording] auto`: when on, every call is recorded from the moment it is answered.
    pub fn set_record_auto(&mut self, on: bool) {
        self.record_auto = on;
    }

    /// The media engine could not write the recording of `call_id` (the driver has told the
    /// operator): the call counts as not recorded, so `record start` may try again.
    pub fn handle_recording_failed(&mut self, call_id: &str) {
        if let Some(call) = self.call_mut(call_id) {
            call.recording = false;
        }
    }

    /// `record start|stop [line]`.
    pub(super) fn record(&mut self, start: bool, line: Option<LineNo>) {
        let index = match line {
            Some(n) => usize::from(n).checked_sub(1),
            None => Some(self.selected),
        };
        let Some(index) = index.filter(|i| *i < self.lines.len()) else {
            let n = line.unwrap_or_default();
            return self.error(format!(
                "record: there is no line {n} (lines 1 to {})",
                self.lines.len()
            ));
        };
        let shown = line_no(index);
        let Some(call) = self.lines[index]
            .as_mut()
            .filter(|c| c.is_established() && !c.is_gone())
        else {
            return self.error(format!("record: no connected call on line {shown}"));
        };
        match (start, call.recording) {
            (true, true) => self.error(format!("record: line {shown} is already being recorded")),
            (false, false) => self.error(format!("record: line {shown} is not being recorded")),
            (true, false) => {
                let call_id = call.call_id.clone();
                self.start_recording(&call_id);
            }
            (false, true) => {
                let call_id = call.call_id.clone();
                self.stop_recording(&call_id, "stopped by the operator");
            }
        }
    }

    /// Starts recording an answered call when `auto` is on (once per call).
    pub(super) fn auto_record(&mut self, call_id: &str) {
        if !self.record_auto {
            return;
        }
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.auto_recorded || call.recording || !call.is_established() || call.is_gone() {
            return;
        }
        call.auto_recorded = true;
        self.start_recording(call_id);
    }

    fn start_recording(&mut self, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        call.recording = true;
        let order = MediaOrder::StartRecording {
            line: line_no(call.line),
            call_id: call_id.to_string(),
            incoming: call.role == super::dialog::Role::Callee,
            peer: call.peer().to_string(),
        };
        self.media_orders.push_back(order);
    }

    /// Stops the call's recording, if it has one.
    pub(super) fn stop_recording(&mut self, call_id: &str, reason: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if !call.recording {
            return;
        }
        call.recording = false;
        let order = MediaOrder::StopRecording {
            line: line_no(call.line),
            call_id: call_id.to_string(),
            reason: reason.to_string(),
        };
        self.media_orders.push_back(order);
    }
}
