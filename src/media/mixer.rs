//! The local conference's mix-minus: each party hears the operator and every other party,
//! never itself; the operator hears every party. Pure arithmetic over fixed-size frames
//! at the engine's internal rate ([`SAMPLE_RATE`](super::SAMPLE_RATE)); it owns no socket,
//! codec or clock, and never allocates per frame (the [`Mixer`] keeps its one accumulator).
//!
//! ```text
//!   total      = p1 + p2 + … + pn                (i32: no intermediate overflow)
//!   operator   = clamp(total)                    what the headset hears
//!   send to pk = clamp(mic + total - pk)         mix-minus: everything but pk itself
//! ```
//!
//! Clipping protection is saturation: a sum beyond the 16-bit range is held at its limit
//! instead of wrapping round to the opposite sign (which clicks loudly).

use super::{Frame, FRAME_SAMPLES};

/// Scratch space for [`Mixer::mix_minus`], allocated once.
#[derive(Clone)]
pub struct Mixer {
    total: Box<[i32; FRAME_SAMPLES]>,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer").finish_non_exhaustive()
    }
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer::new()
    }
}

impl Mixer {
    /// A mixer with its accumulator allocated.
    pub fn new() -> Mixer {
        Mixer {
            total: Box::new([0; FRAME_SAMPLES]),
        }
    }

    /// Mixes one frame: `parties[k]` is what party k said (decoded), `mic` what the operator
    /// said. Writes what each party must be sent into `sends[k]` (the operator and the other
    /// parties) and what the operator hears into `operator` (every party). Only the first
    /// `min(parties.len(), sends.len())` parties take part.
    pub fn mix_minus(
        &mut self,
        mic: &Frame,
        parties: &[Frame],
        sends: &mut [Frame],
        operator: &mut Frame,
    ) {
        let n = parties.len().min(sends.len());
        let total = &mut *self.total;
        total.fill(0);
        for party in &parties[..n] {
            for (t, s) in total.iter_mut().zip(party) {
                *t += i32::from(*s);
            }
        }
        for (o, t) in operator.iter_mut().zip(total.iter()) {
            *o = clamp(*t);
        }
        for (send, party) in sends[..n].iter_mut().zip(&parties[..n]) {
            for (((out, t), m), p) in send.iter_mut().zip(total.iter()).zip(mic).zip(party) {
                *out = clamp(*t + i32::from(*m) - i32::from(*p));
            }
        }
    }
}

/// A 32-bit sum held within the 16-bit range.
fn clamp(x: i32) -> i16 {
    // The clamp makes the conversion exact.
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::TICKS_PER_SECOND;

    /// A sine of `hz` at `amp`, phase-continuous within the frame.
    fn tone(hz: f64, amp: f64) -> Frame {
        let mut f = [0i16; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            *s = (amp * (std::f64::consts::TAU * hz * i as f64 / 48_000.0).sin()) as i16;
        }
        f
    }

    /// Correlation of `x` with a sine/cosine pair at `hz`: the amplitude of that tone in `x`.
    fn amplitude(x: &Frame, hz: f64) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            let ph = std::f64::consts::TAU * hz * i as f64 / 48_000.0;
            s += f64::from(*v) * ph.sin();
            c += f64::from(*v) * ph.cos();
        }
        2.0 * (s * s + c * c).sqrt() / x.len() as f64
    }

    /// Every party's send holds the mic and the others at full amplitude, and none of its own.
    fn check_parties(n: usize) {
        // Whole cycles in a frame, three frame rates apart, so each is measured apart.
        let step = 3.0 * f64::from(TICKS_PER_SECOND);
        let hz: Vec<f64> = (0..n).map(|k| 400.0 + step * k as f64).collect();
        let parties: Vec<Frame> = hz.iter().map(|h| tone(*h, 2000.0)).collect();
        let mic = tone(3000.0, 2000.0);
        let mut sends = vec![[0i16; FRAME_SAMPLES]; n];
        let mut operator = [0i16; FRAME_SAMPLES];
        Mixer::new().mix_minus(&mic, &parties, &mut sends, &mut operator);
        for (k, send) in sends.iter().enumerate() {
            assert!(
                (amplitude(send, 3000.0) - 2000.0).abs() < 50.0,
                "party {k} hears the operator"
            );
            for (j, h) in hz.iter().enumerate() {
                let a = amplitude(send, *h);
                if j == k {
                    assert!(a < 50.0, "party {k} must not hear itself ({a})");
                } else {
                    assert!((a - 2000.0).abs() < 50.0, "party {k} hears party {j} ({a})");
                }
            }
        }
        for (j, h) in hz.iter().enumerate() {
            assert!(
                (amplitude(&operator, *h) - 2000.0).abs() < 50.0,
                "the operator hears party {j}"
            );
        }
        assert!(
            amplitude(&operator, 3000.0) < 50.0,
            "the operator does not hear the own microphone"
        );
    }

    #[test]
    fn three_parties_hear_everyone_but_themselves() {
        check_parties(3);
    }

    #[test]
    fn six_parties_hear_everyone_but_themselves() {
        check_parties(6);
    }

    #[test]
    fn two_parties_is_a_plain_bridge_exactly() {
        let a = tone(500.0, 1000.0);
        let b = tone(700.0, 1000.0);
        let mic = tone(3000.0, 1000.0);
        let mut sends = [[0i16; FRAME_SAMPLES]; 2];
        let mut operator = [0i16; FRAME_SAMPLES];
        Mixer::new().mix_minus(&mic, &[a, b], &mut sends, &mut operator);
        for i in 0..FRAME_SAMPLES {
            assert_eq!(sends[0][i], mic[i] + b[i]);
            assert_eq!(sends[1][i], mic[i] + a[i]);
            assert_eq!(operator[i], a[i] + b[i]);
        }
    }

    #[test]
    fn loud_sums_saturate_instead_of_wrapping() {
        let loud = [30_000i16; FRAME_SAMPLES];
        let quiet_neg = [-30_000i16; FRAME_SAMPLES];
        let mut sends = [[0i16; FRAME_SAMPLES]; 3];
        let mut operator = [0i16; FRAME_SAMPLES];
        let mut mixer = Mixer::new();
        mixer.mix_minus(&loud, &[loud, loud, loud], &mut sends, &mut operator);
        assert!(operator.iter().all(|s| *s == i16::MAX), "positive clip");
        assert!(sends.iter().flatten().all(|s| *s == i16::MAX));
        mixer.mix_minus(
            &quiet_neg,
            &[quiet_neg, quiet_neg, quiet_neg],
            &mut sends,
            &mut operator,
        );
        assert!(operator.iter().all(|s| *s == i16::MIN), "negative clip");
        assert!(sends.iter().flatten().all(|s| *s == i16::MIN));
    }

    #[test]
    fn a_loud_party_does_not_clip_what_it_is_sent() {
        // Party 0 shouts at full scale: its own voice is taken out of the 32-bit total, so
        // what it is sent (the others) is exact, not clipped by its own loudness.
        let shout = [i16::MAX; FRAME_SAMPLES];
        let other = tone(600.0, 1000.0);
        let silence = [0i16; FRAME_SAMPLES];
        let mut sends = [[0i16; FRAME_SAMPLES]; 2];
        let mut operator = [0i16; FRAME_SAMPLES];
        Mixer::new().mix_minus(&silence, &[shout, other], &mut sends, &mut operator);
        assert_eq!(sends[0], other);
        assert_eq!(sends[1], shout);
    }

    #[test]
    fn extra_send_buffers_are_left_alone_and_no_parties_is_silence() {
        let mic = tone(3000.0, 1000.0);
        let mut sends = [[7i16; FRAME_SAMPLES]; 3];
        let mut operator = [7i16; FRAME_SAMPLES];
        let mut mixer = Mixer::new();
        mixer.mix_minus(&mic, &[], &mut sends, &mut operator);
        assert!(operator.iter().all(|s| *s == 0));
        assert!(sends.iter().flatten().all(|s| *s == 7));
        mixer.mix_minus(&mic, &[mic], &mut sends, &mut operator);
        assert_eq!(sends[0], mic, "one party hears only the operator");
        assert!(sends[1..].iter().flatten().all(|s| *s == 7));
    }
}
