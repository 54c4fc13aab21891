//! The media engine: one thread, one frame clock (10 ms), every line.
//!
//! ```text
//!            ┌──────────────── media thread, every frame ────────────────┐
//!  headset ─►│ read_frame ─► clean-up (voice.rs: noise suppression, AGC) │
//!            │               mic ──► line with the mic: encode ─► RTP ──┼─► far end
//!            │                  MOH ─► held lines:     encode ─► RTP ──┼─►
//!  headset ◄─│ write_frame ◄─ mix ◄─ decode ◄─ jitter ◄─ RTP (each line) ┼─◄ far end
//!            │ conference lines: mic + the other members (mixer.rs) ─► RTP ┼─►
//!  ring dev ◄│ write_ring_frame ◄─ ring tone                             │
//!            │ RTCP SR/RR every ~5 s, quality and DTMF reports ──────────┼─► driver
//!            └───────────────────────────────────────────────────────────┘
//! ```
//!
//! With no stream, tone, sound check or recording the thread does not tick: it sleeps on the
//! order channel, the device paused, and the ticks it skipped are skipped on the clock's grid
//! (a file device skips their input and writes their silence).
//!
//! This module owns the thread and its clock only: the driver sends [`Control`]s (what each
//! line should do) and receives [`Report`]s through a callback (both in [`super::api`]); the
//! work of a tick is `pipeline.rs`, the sockets `net.rs` (datagrams read into the pipeline at
//! each tick with their kernel receive times, its packets sent after it). One wake-up per
//! frame: the thread sleeps between ticks, whatever arrives. With a sound card the clock
//! follows the microphone's (the rule is `clock.rs`): when a tick finds its frame a little
//! short (at most a callback period) it waits for the callback that completes it (at most
//! 6 ms) and keeps that phase, so audio does not sit in the capture ring for the rest of a
//! tick; when the frames wait longer than the device's timing needs, the capture cushion's
//! give-back moves the phase earlier instead of dropping audio. The thread owns the
//! device and the RTP sockets; nothing is shared with locks. The audio callbacks of the device
//! (`device/realtime.rs`) are the only real-time code; this thread may allocate when a call
//! starts, never per frame — with one exception: an SRTP line's packets go through
//! `rtc-srtp`, which has no in-place API and returns a new buffer per packet (see `srtp.rs`).

use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::api::{Control, EngineConfig, LineSockets, Report};
use super::clock::MediaClock;
use super::device::AudioDevice;
use super::net::LineNet;
use super::pipeline::Pipeline;
use super::tones::MusicOnHold;

/// Why the engine could not start.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A socket could not be made non-blocking.
    #[error("RTP socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The thread could not be spawned.
    #[error("cannot start the media thread: {0}")]
    Thread(std::io::Error),
}

/// A running media engine; dropping it stops the thread.
#[derive(Debug)]
pub struct MediaEngine {
    control: Option<mpsc::Sender<Control>>,
    thread: Option<JoinHandle<()>>,
}

impl MediaEngine {
    /// Starts the media thread with its device, one socket pair per line, and the music
    /// held parties hear (silence when `None`).
    pub fn start(
        device: Box<dyn AudioDevice>,
        sockets: Vec<LineSockets>,
        config: EngineConfig,
        moh: Option<MusicOnHold>,
        reports: Box<dyn FnMut(Report) + Send>,
    ) -> Result<MediaEngine, EngineError> {
        for s in &sockets {
            s.rtp.set_nonblocking(true)?;
            s.rtcp.set_nonblocking(true)?;
        }
        let (tx, rx) = mpsc::channel();
        let mut net = LineNet::new(sockets);
        let pipeline = Pipeline::new(device, net.lines(), config, moh, reports);
        let poll = mio::Poll::new()?;
        net.register(poll.registry())?;
        let thread = thread::Builder::new()
            .name("media".into())
            .spawn(move || run(pipeline, net, poll, rx))
            .map_err(EngineError::Thread)?;
        Ok(MediaEngine {
            control: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands an order to the media thread.
    pub fn send(&self, control: Control) {
        if let Some(tx) = &self.control {
            if tx.send(control).is_err() {
                tracing::warn!("the media thread is gone; order dropped");
            }
        }
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.control = None; // the thread sees the channel close and ends
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the media thread panicked");
            }
        }
    }
}

/// A tick that woke or waited longer than this is logged (at debug level): the headset's
/// cushion covers a few milliseconds of it.
const LATE_LOGGED: Duration = Duration::from_millis(2);
/// A change of the clock's pace this large is logged (ppm), at most this often.
const PACE_LOGGED_PPM: f64 = 20.0;
const PACE_LOGGED_EVERY: Duration = Duration::from_secs(10);

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The media clock: the only place the engine reads the time.
#[allow(clippy::disallowed_methods)] // the media thread is where its time enters
fn now() -> Instant {
    Instant::now()
}

#[allow(clippy::disallowed_methods)] // RTCP needs wall-clock (NTP) time
fn wallclock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The media thread: a tick every frame until the driver hangs up, and one wake-up per tick.
/// In between it sleeps; at the tick it asks the poll (without waiting) which sockets have
/// datagrams and reads them, each with the kernel's receive time (`net.rs`), so the arrival
/// times the jitter buffer and RTCP's round-trip time depend on stay exact although nothing
/// wakes the thread when a packet comes. Orders from the driver are taken at the ticks.
/// While nothing needs the clock (no call, tone, sound check or recording) it sleeps on the
/// order channel alone: no timer, no wake-up until the driver says something. A tick that
/// woke more than 2 ms late, or waited that long for the microphone, is logged at debug level:
/// the headset's cushion covers a capture period of it (`device/cushion.rs`).
fn run(
    mut pipeline: Pipeline,
    mut net: LineNet,
    mut poll: mio::Poll,
    control: mpsc::Receiver<Control>,
) {
    match super::priority::raise_this_thread() {
        Ok(nice) => tracing::info!(nice, "media thread priority raised"),
        Err(e) => tracing::info!(error = %e, "media thread keeps the default priority"),
    }
    let mut events = mio::Events::with_capacity(16);
    let mut clock = MediaClock::new(now());
    // The previous read of the sockets: nothing read at a tick arrived before it.
    let mut last_read = now();
    // The thread slept for the tick to come (only then is a late tick the scheduler's).
    let mut slept = false;
    let mut logged_pace = (0.0, now());
    // Tick k reads the k-th microphone frame: with file audio this line lets a test turn
    // sample positions into wall-clock times (and so measure the mouth-to-ear delay).
    let unix_ms = wallclock()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    tracing::info!(unix_ms, "media clock started");
    loop {
        loop {
            match control.try_recv() {
                Ok(c) => pipeline.control(now(), c),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let mut t = now();
        if let Some(sleep) = clock.until_due(t) {
            thread::sleep(sleep);
            slept = true;
            continue;
        }
        // (A tick the capture's give-back moved earlier than now did not sleep: not late.)
        if let Some(late) = std::mem::take(&mut slept)
            .then(|| clock.late(t))
            .flatten()
            .filter(|&late| late > LATE_LOGGED)
        {
            tracing::debug!(late_ms = ms(late), "media tick woke late");
        }
        if let Some(waited) = clock
            .may_wait(t)
            .then(|| wait_for_capture(&mut pipeline, t))
            .flatten()
        {
            // The tick now follows the capture callback that completes a frame.
            if waited > LATE_LOGGED {
                tracing::debug!(
                    waited_ms = ms(waited),
                    "media tick waited for the microphone"
                );
            }
            clock.keep_phase(waited);
            t += waited;
        }
        let wall = wallclock();
        match poll.poll(&mut events, Some(Duration::ZERO)) {
            Ok(()) => net.mark_ready(&events),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Should never happen; read every socket instead.
                tracing::warn!(error = %e, "media poll failed");
                net.mark_all_ready();
            }
        }
        net.receive_ready(&mut pipeline, t, wall, last_read);
        last_read = t;
        pipeline.tick(t, wall);
        net.flush(&mut pipeline);
        clock.ticked(t, pipeline.capture_lead(), pipeline.capture_backlog(t));
        let pace = clock.pace_ppm();
        if (pace - logged_pace.0).abs() >= PACE_LOGGED_PPM
            && t.saturating_duration_since(logged_pace.1) >= PACE_LOGGED_EVERY
        {
            tracing::debug!(
                pace_ppm = pace.round(),
                "media clock follows the microphone"
            );
            logged_pace = (pace, t);
        }
        if pipeline.is_idle() {
            if !idle(&mut pipeline, &mut net, &control, &mut clock) {
                return;
            }
            last_read = now();
        }
    }
}

/// Waits (as [`MediaClock::wait_for_frame`] says) for a microphone frame the sound card is
/// a little short of; how long it took, if it waited and the frame came.
fn wait_for_capture(pipeline: &mut Pipeline, since: Instant) -> Option<Duration> {
    MediaClock::wait_for_frame(
        || pipeline.capture_shortfall(),
        |wait| {
            thread::sleep(wait);
            now().saturating_duration_since(since)
        },
    )
}

/// Sleeps until the next order while the pipeline is idle (the device paused), then applies
/// it, skipping the ticks that went by so the clock keeps its grid; false when the driver
/// has hung up.
fn idle(
    pipeline: &mut Pipeline,
    net: &mut LineNet,
    control: &mpsc::Receiver<Control>,
    clock: &mut MediaClock,
) -> bool {
    pipeline.pause();
    let Ok(order) = control.recv() else {
        return false;
    };
    let t = now();
    pipeline.resume(clock.skip_to(t));
    // Datagrams that came while idle belong to no stream: read (and drop) them now, before
    // the order can start one.
    net.receive_all(pipeline, t, wallclock());
    pipeline.control(t, order);
    true
}
