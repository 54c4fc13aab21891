//! The local conference: which calls are joined, and what `conference`, `hold`, `resume`,
//! `line`, `mute` and `complete` mean while they are. The mixing itself is the media
//! engine's (`media/mixer.rs`); here a member's media order says [`Source::Conference`]
//! (see `media_control.rs`). No SIP of its own: members are ordinary calls, held and
//! resumed with the usual re-INVITEs.
//!
//! ```text
//!  conference ─ two or more lines with answered calls: the held ones are resumed,
//!     │         every member hears the operator and the others (mix-minus)
//!     │ hold / resume (a member line) ─► every member held / resumed together
//!     │ line <other> / dial / answer ──► the members are held; line <member> resumes them
//!     │ a member hangs up ─────────────► the others stay joined; one left: a normal call
//!     │ conference (again) ────────────► split: the selected member talks, the others held
//!     │ complete (two members) ────────► the operator leaves: attended transfer of one to
//!     ▼                                  the other (REFER with Replaces, `attended.rs`)
//! ```
//!
//! [`Source::Conference`]: super::media_order::Source::Conference

use std::time::Instant;

use super::api::Event;
use super::attended::Consult;
use super::{line_no, LineNo, UserAgent};

/// The joined calls (Call-IDs), in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Conference {
    members: Vec<String>,
}

impl UserAgent {
    /// A re-INVITE finished: a `conference` that waited for it is carried out now (if no
    /// other call is still renegotiating; else at the next one).
    pub(super) fn join_wanted_conference(&mut self, now: Instant) {
        if !self.conference_wanted {
            return;
        }
        if self.conference.is_some() {
            self.conference_wanted = false;
            return;
        }
        self.conference(now);
    }

    /// `conference`: join every line with an answered call; while joined, split.
    pub(super) fn conference(&mut self, now: Instant) {
        if self.conference.is_some() {
            return self.split_conference(now);
        }
        if self.consult.as_ref().is_some_and(Consult::is_completing) {
            return self.error("conference: a transfer is under way; wait for its outcome");
        }
        let joinable: Vec<(String, usize, bool, bool)> = self
            .lines
            .iter()
            .flatten()
            .filter(|c| !c.is_gone() && c.is_established() && c.transfer.is_none())
            .map(|c| {
                (
                    c.call_id.clone(),
                    c.line,
                    c.local_hold(),
                    c.is_renegotiating(),
                )
            })
            .collect();
        if joinable.len() < 2 {
            return self.error(format!(
                "conference needs answered calls on at least two lines ({} now)",
                joinable.len()
            ));
        }
        if joinable.iter().any(|(_, _, _, busy)| *busy) {
            // A hold or resume still in flight (the operator pressed the key right after the
            // second call was answered): join once it is done.
            self.conference_wanted = true;
            return;
        }
        self.conference_wanted = false;
        // A consultation joined in a conference is no longer a transfer in preparation.
        self.consult = None;
        let members: Vec<String> = joinable.iter().map(|(id, ..)| id.clone()).collect();
        for (call_id, _, held, _) in &joinable {
            if let Some(call) = self.call_mut(call_id) {
                call.in_conference = true;
            }
            if *held {
                self.send_reinvite(now, call_id, false);
            }
            self.sync_media(call_id);
        }
        if !joinable.iter().any(|(_, line, ..)| *line == self.selected) {
            self.set_selected(joinable[0].1);
        }
        self.conference = Some(Conference { members });
        self.conference_event(true);
    }

    /// True when the call on line `index` (0-based) is a conference member.
    pub(super) fn is_conference_line(&self, index: usize) -> bool {
        let Some(conf) = &self.conference else {
            return false;
        };
        self.lines
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|c| conf.members.contains(&c.call_id))
    }

    /// `hold` on a member line: every member is held. `resume` (or selecting a member line):
    /// every member is resumed and any other talking call held; line `index` is selected.
    pub(super) fn hold_conference(&mut self, now: Instant, hold: bool, index: usize) {
        let Some(conf) = self.conference.clone() else {
            return;
        };
        if !hold {
            let others: Vec<String> = self
                .lines
                .iter()
                .flatten()
                .filter(|c| {
                    !conf.members.contains(&c.call_id) && c.is_talking() && !c.is_renegotiating()
                })
                .map(|c| c.call_id.clone())
                .collect();
            for call_id in others {
                self.send_reinvite(now, &call_id, true);
            }
            self.set_selected(index);
        }
        for call_id in &conf.members {
            let Some(call) = self.calls().find(|c| c.call_id == *call_id) else {
                continue;
            };
            if call.local_hold() == hold || !call.is_established() {
                continue;
            }
            if call.is_renegotiating() {
                let line = line_no(call.line);
                self.error(format!(
                    "line {line} is being renegotiated; try again in a moment"
                ));
                continue;
            }
            self.send_reinvite(now, call_id, hold);
        }
    }

    /// `mute` on a member line: the operator's microphone leaves (or rejoins) every member's
    /// mix. False when the selected line is not in a conference.
    pub(super) fn mute_conference(&mut self) -> bool {
        if !self.is_conference_line(self.selected) {
            return false;
        }
        let Some(conf) = self.conference.clone() else {
            return false;
        };
        let muted = !self.lines[self.selected].as_ref().is_some_and(|c| c.muted);
        for call_id in &conf.members {
            let Some(call) = self.call_mut(call_id) else {
                continue;
            };
            call.muted = muted;
            let ev = Event::Mute {
                line: line_no(call.line),
                call_id: call_id.clone(),
                muted,
            };
            self.emit(ev);
            self.sync_media(call_id);
        }
        true
    }

    /// `complete` in a conference of two: the operator leaves, the two parties stay
    /// connected, by an attended transfer of one to the other.
    pub(super) fn leave_conference(&mut self, now: Instant) {
        let Some(conf) = self.conference.clone() else {
            return;
        };
        if conf.members.len() != 2 {
            return self.error(format!(
                "complete: leaving works with two parties; this conference has {} \
                 (hang up or split first)",
                conf.members.len()
            ));
        }
        // The REFER goes to a phone that can send an INVITE with Replaces, if there is one.
        let referred = conf
            .members
            .iter()
            .find(|id| self.calls().any(|c| c.call_id == **id && c.remote_replaces))
            .unwrap_or(&conf.members[0])
            .clone();
        let Some(other) = conf.members.iter().find(|id| **id != referred).cloned() else {
            return;
        };
        let Some((target, line)) = self
            .calls()
            .find(|c| c.call_id == other)
            .map(|c| (c.peer.clone(), c.line))
        else {
            return;
        };
        self.dissolve_conference();
        self.set_selected(line);
        self.consult = Some(Consult::joined(referred, other, target));
        self.complete(now);
    }

    /// The call `call_id` ended: if it was a member it leaves; one member left is a normal
    /// call.
    pub(super) fn conference_member_ended(&mut self, call_id: &str) {
        let Some(conf) = self
            .conference
            .clone()
            .filter(|c| c.members.iter().any(|m| m == call_id))
        else {
            return;
        };
        let present: Vec<String> = conf
            .members
            .iter()
            .filter(|id| {
                self.lines
                    .iter()
                    .flatten()
                    .any(|c| c.call_id == **id && !c.is_gone())
            })
            .cloned()
            .collect();
        if present.len() == conf.members.len() {
            return;
        }
        let selected_gone = self.lines[self.selected]
            .as_ref()
            .is_none_or(|c| c.is_gone());
        if let Some(c) = self.conference.as_mut() {
            c.members = present.clone();
        }
        if present.len() >= 2 {
            self.conference_event(true);
        } else {
            self.dissolve_conference();
        }
        let first = present
            .first()
            .and_then(|id| self.calls().find(|c| c.call_id == *id))
            .map(|c| c.line);
        if let (true, Some(line)) = (selected_gone, first) {
            self.set_selected(line);
        }
    }

    /// Split: the selected member (or the first) talks, the others are held.
    fn split_conference(&mut self, now: Instant) {
        let Some(conf) = self.conference.clone() else {
            return;
        };
        let keep = if self.is_conference_line(self.selected) {
            self.selected
        } else {
            let first = conf
                .members
                .first()
                .and_then(|id| self.calls().find(|c| c.call_id == *id));
            first.map_or(self.selected, |c| c.line)
        };
        self.dissolve_conference();
        self.hold_others(now, keep);
        self.set_selected(keep);
        let resume = self.lines[keep]
            .as_ref()
            .filter(|c| c.local_hold() && c.is_established() && !c.is_renegotiating())
            .map(|c| c.call_id.clone());
        if let Some(call_id) = resume {
            self.send_reinvite(now, &call_id, false);
        }
    }

    /// Ends the conference: members become ordinary calls; tells the operator.
    fn dissolve_conference(&mut self) {
        let Some(conf) = self.conference.clone() else {
            return;
        };
        self.conference_event(false);
        self.conference = None;
        for call_id in &conf.members {
            if let Some(call) = self.call_mut(call_id) {
                call.in_conference = false;
            }
            self.sync_media(call_id);
        }
    }

    /// A `conference` event with the members' lines.
    fn conference_event(&mut self, active: bool) {
        let Some(conf) = &self.conference else {
            return;
        };
        let mut lines: Vec<LineNo> = conf
            .members
            .iter()
            .filter_map(|id| self.calls().find(|c| c.call_id == *id))
            .map(|c| line_no(c.line))
            .collect();
        lines.sort_unstable();
        self.emit(Event::Conference { lines, active });
    }
}
