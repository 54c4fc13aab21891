//! A call's timers, quinn-proto's `TimerTable` shape: one optional deadline per [`CallTimer`]
//! in an array indexed by the enum — the INVITE usage's (ACK, glare, resume, session refresh)
//! and those of the features riding on the call (its transfer, a ring-first transfer's
//! ringing target, a PBX transfer's hang-up, a REFER waiting for the operator). The call's
//! deadline is the table's earliest; expired timers are handed out one at a time
//! ([`TimerTable::next_expired`]) for the one `match` in the call that handles them. Pure
//! data: it never reads a clock.

use std::time::Instant;

/// The timers a call keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::sip) enum CallTimer {
    /// Stop waiting for the ACK of our 2xx (64·T1, RFC 3261 §13.3.1.4).
    AckGiveUp,
    /// Resend our 2xx, the interval doubling from T1 up to T2 (§13.3.1.4).
    AckResend,
    /// Send again the re-INVITE a 491 refused (§14.1).
    GlareRetry,
    /// Look again at a resume that waits for a re-INVITE under way.
    ResumeRetry,
    /// Refresh the session, or end it when the far end stopped refreshing (RFC 4028).
    Session,
    /// The call's transfer (`transfer.rs`) sends its REFER again after a 491, or stops
    /// waiting: for the final NOTIFY, for a BYE after a failure NOTIFY, for the answer to
    /// the resume of a dropped call.
    Transfer,
    /// A ring-first blind transfer of this call gives up on the target still ringing
    /// (`attended.rs`, `blind_timeout`).
    RingFirst,
    /// A blind PBX transfer's digits are out: hang up (`pbx_transfer.rs`).
    PbxHangup,
    /// A REFER waiting for the operator's word is refused (`transferee.rs`).
    ReferAsk,
}

impl CallTimer {
    /// Every timer, in the order expired ones are handled.
    pub(super) const ALL: [CallTimer; 9] = [
        CallTimer::AckGiveUp,
        CallTimer::AckResend,
        CallTimer::GlareRetry,
        CallTimer::ResumeRetry,
        CallTimer::Session,
        CallTimer::Transfer,
        CallTimer::RingFirst,
        CallTimer::PbxHangup,
        CallTimer::ReferAsk,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// A timer of the INVITE usage itself, stopped when the call ends; the others belong to
    /// features that may outlive the call's end (a transfer waiting for its final NOTIFY).
    fn is_invite(self) -> bool {
        matches!(
            self,
            CallTimer::AckGiveUp
                | CallTimer::AckResend
                | CallTimer::GlareRetry
                | CallTimer::ResumeRetry
                | CallTimer::Session
        )
    }
}

/// One optional deadline per [`CallTimer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TimerTable([Option<Instant>; CallTimer::ALL.len()]);

impl TimerTable {
    /// Arms `timer` for `at` (replacing its deadline).
    pub(super) fn set(&mut self, timer: CallTimer, at: Instant) {
        self.0[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(super) fn stop(&mut self, timer: CallTimer) {
        self.0[timer.index()] = None;
    }

    /// Disarms the INVITE usage's timers ([`CallTimer::is_invite`]), leaving the features'.
    pub(super) fn stop_invite_timers(&mut self) {
        for timer in CallTimer::ALL.into_iter().filter(|t| t.is_invite()) {
            self.stop(timer);
        }
    }

    /// The deadline of `timer`, if armed.
    pub(super) fn get(&self, timer: CallTimer) -> Option<Instant> {
        self.0[timer.index()]
    }

    /// True if `timer` is armed.
    pub(super) fn is_set(&self, timer: CallTimer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest armed deadline.
    pub(super) fn earliest(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// The first timer (in [`CallTimer::ALL`] order) whose deadline is at or before `now`,
    /// disarmed as it is handed out.
    pub(super) fn next_expired(&mut self, now: Instant) -> Option<CallTimer> {
        let timer = CallTimer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CallTimer, TimerTable};
    use crate::sip::timer::epoch;

    #[test]
    fn an_empty_table_has_no_deadline_and_nothing_expires() {
        let mut table = TimerTable::default();
        assert_eq!(table.earliest(), None);
        assert_eq!(
            table.next_expired(epoch() + Duration::from_secs(3600)),
            None
        );
    }

    #[test]
    fn the_deadline_is_the_earliest_armed_timer_and_follows_set_and_stop() {
        let t0 = epoch();
        let mut table = TimerTable::default();
        table.set(CallTimer::Session, t0 + Duration::from_secs(900));
        table.set(CallTimer::AckResend, t0 + Duration::from_millis(500));
        assert_eq!(table.earliest(), Some(t0 + Duration::from_millis(500)));
        table.stop(CallTimer::AckResend);
        assert!(!table.is_set(CallTimer::AckResend));
        assert_eq!(table.earliest(), Some(t0 + Duration::from_secs(900)));
        // Setting again replaces the deadline.
        table.set(CallTimer::Session, t0 + Duration::from_secs(10));
        assert_eq!(
            table.get(CallTimer::Session),
            Some(t0 + Duration::from_secs(10))
        );
        table.set(CallTimer::Transfer, t0 + Duration::from_secs(30));
        table.stop_invite_timers();
        assert_eq!(table.earliest(), Some(t0 + Duration::from_secs(30)));
        table.stop(CallTimer::Transfer);
        assert_eq!(table.earliest(), None);
    }

    #[test]
    fn expired_timers_come_out_once_each_in_handling_order_and_later_ones_wait() {
        let t0 = epoch();
        let mut table = TimerTable::default();
        table.set(CallTimer::ResumeRetry, t0 + Duration::from_millis(100));
        table.set(CallTimer::AckGiveUp, t0 + Duration::from_millis(200));
        table.set(CallTimer::AckResend, t0 + Duration::from_millis(50));
        table.set(CallTimer::GlareRetry, t0 + Duration::from_secs(3));
        // Simulated time: nothing before its deadline.
        assert_eq!(table.next_expired(t0 + Duration::from_millis(49)), None);
        let now = t0 + Duration::from_millis(200);
        // Give-up before resend before resume, whatever their deadlines' order.
        assert_eq!(table.next_expired(now), Some(CallTimer::AckGiveUp));
        assert_eq!(table.next_expired(now), Some(CallTimer::AckResend));
        assert_eq!(table.next_expired(now), Some(CallTimer::ResumeRetry));
        assert_eq!(table.next_expired(now), None);
        assert_eq!(table.earliest(), Some(t0 + Duration::from_secs(3)));
        // A deadline exactly now has expired.
        assert_eq!(
            table.next_expired(t0 + Duration::from_secs(3)),
            Some(CallTimer::GlareRetry)
        );
        assert_eq!(table.earliest(), None);
    }

    #[test]
    fn every_timer_has_its_own_slot() {
        for (i, timer) in CallTimer::ALL.into_iter().enumerate() {
            assert_eq!(timer.index(), i, "{timer:?}");
        }
    }
}
