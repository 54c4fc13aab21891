//! How recently and how often numbers were used, as one number per phone number that ranks
//! them ("frecency").
//!
//! Each use counts 2^(t / half-life): a use a week old weighs half a use today. The sum is kept
//! as its base-2 logarithm, so the order of two numbers never depends on when it is asked and
//! no clock is needed: times are given by the caller. This module knows numbers only by their
//! lookup key.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// A use loses half its weight in this many seconds (one week).
const HALF_LIFE_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// Uses of numbers, from the call history and from this session.
#[derive(Debug, Default, Clone)]
pub struct Usage {
    /// Uses recorded with [`Usage::record`], as log2 of their decayed sum.
    recorded: HashMap<String, f64>,
    /// The call history's last use of each number, as log2 weight.
    history: HashMap<String, f64>,
}

/// The base-2 logarithm of the weight of one use at `time`.
fn log_weight(time: SystemTime) -> f64 {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    secs / HALF_LIFE_SECS
}

/// log2(2^a + 2^b), without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let (high, low) = if a >= b { (a, b) } else { (b, a) };
    high + (1.0 + (low - high).exp2()).log2()
}

impl Usage {
    /// Counts one use of the number with lookup key `key` at `time`.
    pub fn record(&mut self, key: String, time: SystemTime) {
        let weight = log_weight(time);
        self.recorded
            .entry(key)
            .and_modify(|sum| *sum = log_add(*sum, weight))
            .or_insert(weight);
    }

    /// Replaces the call history's uses: one use per number at its last use.
    pub fn set_history(&mut self, items: impl IntoIterator<Item = (String, SystemTime)>) {
        self.history.clear();
        for (key, time) in items {
            let weight = log_weight(time);
            self.history
                .entry(key)
                .and_modify(|w| *w = w.max(weight))
                .or_insert(weight);
        }
    }

    /// The rank of a number: 0 when never used, higher when used more recently or more often.
    pub fn rank(&self, key: &str) -> u32 {
        let sum = match (self.recorded.get(key), self.history.get(key)) {
            (Some(&a), Some(&b)) => log_add(a, b),
            (Some(&a), None) | (None, Some(&a)) => a,
            (None, None) => return 0,
        };
        // 1/1024 of a half-life (about ten minutes) is fine enough to tell uses apart.
        let scaled = (sum * 1024.0).clamp(0.0, f64::from(u32::MAX - 1));
        scaled as u32 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(days: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + days * 86_400)
    }

    #[test]
    fn recent_beats_old_and_frequent_beats_single() {
        let mut usage = Usage::default();
        usage.record("old".into(), at(0));
        usage.record("new".into(), at(10));
        assert!(usage.rank("new") > usage.rank("old"));
        for _ in 0..4 {
            usage.record("often".into(), at(9));
        }
        assert!(usage.rank("often") > usage.rank("new"));
        assert_eq!(usage.rank("never"), 0);
        usage.set_history([("old".to_owned(), at(30))]);
        assert!(usage.rank("old") > usage.rank("often"));
    }
}
