//! The real-time side: the bodies of the cpal callbacks.
//!
//! Owns the callback state (one ring end, the channel count, shared flags).
//! Runs on the audio system's thread, so it must not allocate, lock, log,
//! do I/O, block or panic: it only moves samples through an `rtrb` ring
//! (downmixing to mono on the way in, copying mono to every channel on the
//! way out) and touches atomics. Everything slow happens on the media
//! thread (`paths`, `cpal_backend`).
//!
//! ```text
//!   device (i16/f32/…, N ch) ── CaptureCallback ──► Producer<f32> (mono, device rate)
//!   Consumer<f32> ── PlaybackCallback ──► device (every channel; empty ring → silence)
//!   error callback ──► StreamFlags { xruns++, lost = true }
//!   every callback ──► StreamFlags { period = max(frames), low water = min(ring fill),
//!                                    device delay += what cpal's timestamps say,
//!                                    called = when an output callback ran, its delay }
//! ```
//!
//! The period and low water are what the media thread's adaptive cushion (`cushion.rs`)
//! learns the device's timing from; it takes them once per tick. The device delays feed the
//! latency breakdown (`latency.rs`). When the last output callback ran, and how long until
//! its first sample plays, tell the media thread how much the audio system holds beyond the
//! ring at a tick, so that the headset's drift controller (`drift.rs`) sees the level, not
//! where in the device's period the tick falls; the time is read by the callback's closure (a
//! vDSO clock read: no lock, no system call).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::{FromSample, Sample};
use rtrb::{Consumer, Producer};

/// The last callback: when it ran, the audio system's delay (output: before its first
/// sample plays; input: 0, not kept), and the frames it carried.
#[derive(Debug, Clone, Copy)]
pub(super) struct LastCallback {
    pub(super) at: Instant,
    pub(super) delay: Duration,
    pub(super) frames: usize,
}

/// What a stream's callbacks tell the media thread: dropouts, loss, and their timing.
#[derive(Debug)]
pub(super) struct StreamFlags {
    /// Dropouts: ring full on input, ring empty on output, and xruns the
    /// audio system reported. One per dropout, not per sample.
    xruns: AtomicU64,
    /// The stream failed (device unplugged, invalidated): it must be rebuilt.
    lost: AtomicBool,
    /// Of the dropouts, those where the output callback found the ring empty: the only
    /// ones a larger cushion prevents (an xrun the audio system reports happens below the
    /// ring, and during cpal's restart after one it may report hundreds).
    dry: AtomicU64,
    /// Of the dropouts, those the audio system reported through the error callback.
    errors: AtomicU64,
    /// Most frames one callback carried since the media thread last took it.
    period: AtomicUsize,
    /// Least ring fill an output callback found before taking its frames, since the media
    /// thread last took it (`usize::MAX`: none ran).
    low_water: AtomicUsize,
    /// Sum (µs) and count of the device delays the callbacks saw since the media thread last
    /// took them: how long a playback callback's samples wait below the ring, or how long a
    /// capture callback's oldest sample waited above it, as the audio system reports.
    delay_us: AtomicU64,
    delays: AtomicU64,
    /// Frames the callbacks carried since the stream opened: the device's pace.
    carried: AtomicU64,
    /// When the last callback ran, in ns after `origin` (0: none yet), the audio system's
    /// delay an output callback saw (µs) and the frames it carried.
    called_ns: AtomicU64,
    called_delay_us: AtomicU64,
    last_frames: AtomicUsize,
    origin: Instant,
}

impl StreamFlags {
    /// The flags of a stream whose callback times are counted from `origin` (a time before
    /// the stream starts).
    pub(super) fn new(origin: Instant) -> Self {
        StreamFlags {
            xruns: AtomicU64::new(0),
            lost: AtomicBool::new(false),
            dry: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            period: AtomicUsize::new(0),
            low_water: AtomicUsize::new(usize::MAX),
            delay_us: AtomicU64::new(0),
            delays: AtomicU64::new(0),
            carried: AtomicU64::new(0),
            called_ns: AtomicU64::new(0),
            called_delay_us: AtomicU64::new(0),
            last_frames: AtomicUsize::new(0),
            origin,
        }
    }

    /// The largest callback (in frames) since the last call; 0 when none ran.
    pub(super) fn take_period(&self) -> usize {
        self.period.swap(0, Ordering::Relaxed)
    }

    /// The least ring fill an output callback found since the last call; `None` when none ran.
    pub(super) fn take_low_water(&self) -> Option<usize> {
        match self.low_water.swap(usize::MAX, Ordering::Relaxed) {
            usize::MAX => None,
            low => Some(low),
        }
    }

    /// A callback's device delay (lock-free: two atomic adds; capped at an hour).
    pub(super) fn saw_delay(&self, delay: Duration) {
        let us = delay.as_micros().min(3_600_000_000) as u64;
        self.delay_us.fetch_add(us, Ordering::Relaxed);
        self.delays.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum (µs) and count of the device delays since the last call. The two are taken
    /// one after the other: a callback in between shifts one delay to the next window.
    pub(super) fn take_delays(&self) -> (u64, u64) {
        let n = self.delays.swap(0, Ordering::Relaxed);
        (self.delay_us.swap(0, Ordering::Relaxed), n)
    }

    /// A callback carried `frames` (lock-free: an atomic max, an add and a store).
    fn saw_callback(&self, frames: usize) {
        self.period.fetch_max(frames, Ordering::Relaxed);
        self.carried.fetch_add(frames as u64, Ordering::Relaxed);
        self.last_frames.store(frames, Ordering::Relaxed);
    }

    /// The last callback (`None`: none yet).
    pub(super) fn last_called(&self) -> Option<LastCallback> {
        match self.called_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(LastCallback {
                at: self.origin + Duration::from_nanos(ns),
                delay: Duration::from_micros(self.called_delay_us.load(Ordering::Relaxed)),
                frames: self.last_frames.load(Ordering::Relaxed),
            }),
        }
    }

    /// A callback ran at `now` (an atomic store).
    fn store_called(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.origin).as_nanos();
        let ns = u64::try_from(ns).unwrap_or(u64::MAX).max(1);
        self.called_ns.store(ns, Ordering::Relaxed);
    }

    /// Frames the callbacks carried since the stream opened.
    pub(super) fn carried(&self) -> u64 {
        self.carried.load(Ordering::Relaxed)
    }

    /// Dropouts counted so far.
    pub(super) fn xruns(&self) -> u64 {
        self.xruns.load(Ordering::Relaxed)
    }

    /// Times the output callback found the ring empty while audio was flowing.
    pub(super) fn ran_dry(&self) -> u64 {
        self.dry.load(Ordering::Relaxed)
    }

    /// Dropouts the audio system reported (its xruns), not the rings'.
    pub(super) fn system_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The stream reported a fatal error.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    fn count_xrun(&self) {
        self.xruns.fetch_add(1, Ordering::Relaxed);
    }

    /// The error callback's body: a device that is gone, or a stream that must be rebuilt,
    /// is lost; a rerouting or a refused real-time priority is harmless; anything else is
    /// counted as a dropout — the stream goes on (ALSA's worker, for one, reports a failed
    /// restart after an xrun this way and then keeps running; treating it as lost would
    /// silence the device for the 2 s until a reopen).
    pub(super) fn on_error(&self, kind: cpal::ErrorKind) {
        match kind {
            cpal::ErrorKind::DeviceNotAvailable
            | cpal::ErrorKind::HostUnavailable
            | cpal::ErrorKind::StreamInvalidated => self.lost.store(true, Ordering::Release),
            cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {}
            _ => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.count_xrun();
            }
        }
    }
}

/// The input callback's state: device samples in, mono f32 into the ring.
pub(super) struct CaptureCallback {
    ring: Producer<f32>,
    channels: usize,
    flags: Arc<StreamFlags>,
    /// The previous callback could not push everything (count a dropout once).
    overflowing: bool,
}

impl CaptureCallback {
    /// `channels` is the stream's channel count (0 is treated as 1).
    pub(super) fn new(ring: Producer<f32>, channels: u16, flags: Arc<StreamFlags>) -> Self {
        CaptureCallback {
            ring,
            channels: usize::from(channels.max(1)),
            flags,
            overflowing: false,
        }
    }

    /// The audio system's delay before this callback: how long the oldest of its samples
    /// has waited since it was captured.
    pub(super) fn saw_delay(&self, delay: Duration) {
        self.flags.saw_delay(delay);
    }

    /// The callback runs at `now` (an atomic store): the microphone's samples up to then are
    /// in the ring once it returns.
    pub(super) fn called_at(&self, now: Instant) {
        self.flags.store_called(now);
    }

    /// The input callback body: averages each interleaved frame of `data` to
    /// one sample and pushes as many as fit; a full ring drops the rest and
    /// counts one dropout.
    pub(super) fn process<T>(&mut self, data: &[T])
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let frames = data.len() / self.channels;
        self.flags.saw_callback(frames);
        let room = self.ring.slots();
        let n = frames.min(room);
        if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
            let scale = 1.0 / self.channels as f32;
            chunk.fill_from_iter(
                data.chunks_exact(self.channels)
                    .map(|frame| frame.iter().map(|&s| f32::from_sample_(s)).sum::<f32>() * scale),
            );
        }
        if n < frames {
            if !self.overflowing {
                self.overflowing = true;
                self.flags.count_xrun();
            }
        } else {
            self.overflowing = false;
        }
    }
}

/// The output callback's state: mono f32 from the ring out to every channel.
pub(super) struct PlaybackCallback {
    ring: Consumer<f32>,
    channels: usize,
    flags: Arc<StreamFlags>,
    /// The previous callback ran dry (count a dropout once, when audio that
    /// was flowing runs out). Starts true so the wait for the first samples
    /// is not a dropout.
    starved: bool,
}

impl PlaybackCallback {
    /// `channels` is the stream's channel count (0 is treated as 1).
    pub(super) fn new(ring: Consumer<f32>, channels: u16, flags: Arc<StreamFlags>) -> Self {
        PlaybackCallback {
            ring,
            channels: usize::from(channels.max(1)),
            flags,
            starved: true,
        }
    }

    /// The callback runs at `now`, and the audio system will play its first sample `delay`
    /// later (atomic stores and adds).
    pub(super) fn called_at(&self, now: Instant, delay: Duration) {
        self.flags.saw_delay(delay);
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.flags.called_delay_us.store(us, Ordering::Relaxed);
        self.flags.store_called(now);
    }

    /// The output callback body: fills each interleaved frame of `data` with
    /// the next ring sample on every channel; when the ring runs dry the rest
    /// is silence and one dropout is counted.
    pub(super) fn process<T>(&mut self, data: &mut [T])
    where
        T: Sample + FromSample<f32>,
    {
        let frames = data.len() / self.channels;
        let queued = self.ring.slots();
        self.flags.saw_callback(frames);
        if queued > 0 || !self.starved {
            // Flowing (waiting for the first samples is no measure of the cushion).
            self.flags.low_water.fetch_min(queued, Ordering::Relaxed);
        }
        let n = frames.min(queued);
        let mut outs = data.chunks_exact_mut(self.channels);
        if let Ok(chunk) = self.ring.read_chunk(n) {
            let (a, b) = chunk.as_slices();
            for (&s, out) in a.iter().chain(b.iter()).zip(outs.by_ref()) {
                out.fill(T::from_sample_(s.clamp(-1.0, 1.0)));
            }
            chunk.commit_all();
        }
        for out in outs.by_ref() {
            out.fill(T::EQUILIBRIUM);
        }
        outs.into_remainder().fill(T::EQUILIBRIUM);
        if n < frames {
            // Audio was flowing (before, or during this callback) and ran out.
            if n > 0 || !self.starved {
                self.flags.count_xrun();
                self.flags.dry.fetch_add(1, Ordering::Relaxed);
            }
            self.starved = true;
        } else {
            self.starved = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtrb::RingBuffer;

    #[test]
    fn capture_downmixes_and_counts_one_dropout_per_overflow() {
        let (prod, mut cons) = RingBuffer::new(4);
        let flags = Arc::new(StreamFlags::new(crate::sip::timer::epoch()));
        let mut cb = CaptureCallback::new(prod, 2, flags.clone());
        cb.process(&[16384i16, 0, -32768, -32768]);
        assert_eq!(cons.pop(), Ok(0.25));
        assert_eq!(cons.pop(), Ok(-1.0));
        assert_eq!(flags.xruns(), 0);
        // 3 frames into 4 free slots fits; the next 3 into 1 slot overflows.
        cb.process(&[0.5f32, 0.5, 0.1, 0.1, 0.2, 0.2].map(|x| (x * 32767.0) as i16));
        cb.process(&[100i16; 6]);
        assert_eq!(flags.xruns(), 1);
        cb.process(&[100i16; 6]);
        assert_eq!(flags.xruns(), 1, "one dropout while it stays full");
        while cons.pop().is_ok() {}
        cb.process(&[100i16; 2]);
        cb.process(&[100i16; 20]);
        assert_eq!(flags.xruns(), 2, "a new overflow is a new dropout");
    }

    #[test]
    fn capture_from_f32_mono() {
        let (prod, mut cons) = RingBuffer::new(8);
        let flags = Arc::new(StreamFlags::new(crate::sip::timer::epoch()));
        let mut cb = CaptureCallback::new(prod, 1, flags);
        cb.process(&[0.5f32, -0.25, 0.125]);
        assert_eq!(cons.pop(), Ok(0.5));
        assert_eq!(cons.pop(), Ok(-0.25));
        assert_eq!(cons.pop(), Ok(0.125));
        assert!(cons.pop().is_err());
    }

    #[test]
    fn playback_copies_to_channels_and_pads_with_silence() {
        let (mut prod, cons) = RingBuffer::new(8);
        let flags = Arc::new(StreamFlags::new(crate::sip::timer::epoch()));
        let mut cb = PlaybackCallback::new(cons, 2, flags.clone());
        // Before anything was queued: silence, not a dropout.
        let mut out = [1i16; 4];
        cb.process(&mut out);
        assert_eq!(out, [0; 4]);
        assert_eq!(flags.xruns(), 0);
        for s in [0.5f32, -0.5, 2.0] {
            prod.push(s).expect("room");
        }
        let mut out = [7i16; 9]; // 4 stereo frames and a stray sample
        cb.process(&mut out);
        assert_eq!(out[..6], [16384, 16384, -16384, -16384, 32767, 32767]);
        assert_eq!(out[6..], [0, 0, 0], "rest is silence");
        assert_eq!(flags.xruns(), 1, "ran dry after having audio");
        let mut out = [0.3f32; 2];
        cb.process(&mut out);
        assert_eq!(out, [0.0; 2]);
        assert_eq!(flags.xruns(), 1, "still the same dropout");
    }

    #[test]
    fn stream_errors_sort_into_xruns_and_loss() {
        let flags = StreamFlags::new(crate::sip::timer::epoch());
        flags.on_error(cpal::ErrorKind::Xrun);
        flags.on_error(cpal::ErrorKind::DeviceChanged);
        flags.on_error(cpal::ErrorKind::RealtimeDenied);
        assert_eq!(flags.xruns(), 1);
        flags.on_error(cpal::ErrorKind::BackendError);
        assert_eq!(
            flags.xruns(),
            2,
            "a failed restart after an xrun: the stream goes on"
        );
        assert!(!flags.is_lost());
        flags.on_error(cpal::ErrorKind::DeviceNotAvailable);
        assert!(flags.is_lost());
        let invalid = StreamFlags::new(crate::sip::timer::epoch());
        invalid.on_error(cpal::ErrorKind::StreamInvalidated);
        assert!(invalid.is_lost(), "a stream that must be rebuilt is lost");
    }

    /// The callback bodies run under the allocation checker, with ring full,
    /// empty and partial, for integer and float devices.
    #[test]
    fn callbacks_do_not_allocate() {
        let (cap_prod, mut cap_cons) = RingBuffer::<f32>::new(1000);
        let (mut play_prod, play_cons) = RingBuffer::<f32>::new(1000);
        let flags = Arc::new(StreamFlags::new(crate::sip::timer::epoch()));
        let mut capture = CaptureCallback::new(cap_prod, 2, flags.clone());
        let mut playback = PlaybackCallback::new(play_cons, 2, flags.clone());
        let mut capture_f = CaptureCallback::new(RingBuffer::new(100).0, 1, flags.clone());
        let mut playback_f = PlaybackCallback::new(RingBuffer::new(100).1, 2, flags.clone());
        let input_i16 = vec![1000i16; 2 * 480];
        let input_f32 = vec![0.1f32; 480];
        let mut out_i16 = vec![0i16; 2 * 480];
        let mut out_f32 = vec![0f32; 2 * 480];
        let before = assert_no_alloc::violation_count();
        assert_no_alloc::assert_no_alloc(|| {
            for round in 0..10 {
                capture.saw_delay(Duration::from_micros(6_500));
                playback.called_at(crate::sip::timer::epoch(), Duration::from_micros(12_000));
                capture.process(&input_i16); // fills, then overflows
                capture_f.process(&input_f32);
                for _ in 0..round * 50 {
                    let _ = cap_cons.pop();
                }
                for _ in 0..round * 100 {
                    let _ = play_prod.push(0.25);
                }
                playback.process(&mut out_i16); // partial, then starved
                playback_f.process(&mut out_f32);
            }
        });
        assert_eq!(assert_no_alloc::violation_count() - before, 0);
        assert!(flags.xruns() > 0, "the loops did hit full and empty rings");
        assert_eq!(
            flags.take_delays(),
            (10 * 18_500, 20),
            "every delay counted"
        );
        assert_eq!(flags.take_delays(), (0, 0), "taken once");
        assert_eq!(
            out_i16[0],
            i16::from_sample_(0.25f32),
            "last round had audio"
        );
        assert_ne!(out_i16[0], 0);
    }
}
