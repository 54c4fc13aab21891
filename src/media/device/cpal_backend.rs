//! The cpal back-end: microphone, headset and ring device on real sound cards.
//!
//! Owns the cpal streams, the media-thread ends of their rings (`paths`),
//! the choice of stream configuration, and the handling of lost devices.
//! The callbacks themselves are `realtime`'s. Everything here runs on the
//! media thread (or at open), except reopening a lost device: listing devices
//! and building a stream can take the audio system seconds, so a helper thread
//! does it and hands the stream back through a channel while the media thread
//! goes on sending RTP, playing out and mixing every frame. It must not panic
//! on anything the audio system does, and it must not read a clock:
//! [`AudioDevice::poll_notice`] is called once per tick (one frame), so its calls are
//! this module's clock.
//!
//! ```text
//!   open:  host: PulseAudio (a connection of the stream's own) or ALSA, as [`Host`] says
//!          name → exact match (description or id) among the devices of that direction
//!          (else an error listing them); None → the system default
//!          config: 48 kHz, 1–2 ch, f32 or i16 if offered, else the device default (resampled)
//!          buffer: 5 ms periods if the device allows them, else its default
//!          then the audio threads (cpal's ALSA workers and libpulse's thread, or the
//!          PulseAudio connection's client thread) get the media thread's nice value
//!
//!   endpoint:   Open ──(error callback: lost)──► Down ──(every 2 s)──► Reopening
//!                 ▲            notice *Lost          ▲                    │ helper thread: the
//!                 │                                  └──── it failed ─────┤ configured device,
//!                 └──────────── notice Switched ◄──── a stream came back ─┘ else the default
//!
//!   switch(role, name): helper thread opens `name` ─► ok: it replaces the stream between two
//!          frames (the old one is closed on another thread), notice Chosen
//!                                                  └► error: the old stream stays, notice NotChosen
//! ```

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::SupportedStreamConfigRange;
use cpal::{BufferSize, SampleFormat, StreamConfig, SupportedBufferSize, SupportedStreamConfig};

use super::latency::tenth;
use super::paths::{self, CapturePath, PlaybackPath};
use super::realtime::{CaptureCallback, PlaybackCallback, StreamFlags};
use super::{AudioDevice, DeviceError, DeviceInfo, DeviceNotice, Host, RingMix};
use crate::media::{Frame, SAMPLE_RATE, TICKS_PER_SECOND};
use crate::sound::DeviceRole;

/// How long the audio system may take to build a stream.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Ticks between two attempts to reopen a lost device: 2 s.
const RETRY_TICKS: u64 = 2 * TICKS_PER_SECOND as u64;
/// Ticks between two xrun reports at most: 5 s.
const XRUN_REPORT_TICKS: u64 = 5 * TICKS_PER_SECOND as u64;
/// Ticks between two latency breakdown lines in the log: 5 s.
const LATENCY_LOG_TICKS: u64 = 5 * TICKS_PER_SECOND as u64;
/// Callback period asked for, in milliseconds.
const CALLBACK_MS: u32 = 5;

/// Which stream an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
    Ring,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
            Direction::Ring => "ring output",
        }
    }

    fn role(self) -> DeviceRole {
        match self {
            Direction::Input => DeviceRole::Input,
            Direction::Output => DeviceRole::Output,
            Direction::Ring => DeviceRole::Ring,
        }
    }
}

/// An open stream as the endpoint logic sees it.
trait OpenStream {
    /// The error callback reported the stream dead.
    fn is_lost(&self) -> bool;
    /// Dropouts so far.
    fn xruns(&self) -> u64;
    /// The device's name.
    fn device(&self) -> &str;
    /// Starts or stops the stream (best effort: a device that cannot pause keeps running).
    fn set_running(&self, running: bool);
}

struct Capture {
    stream: cpal::Stream,
    path: CapturePath,
    flags: Arc<StreamFlags>,
    device: String,
}

struct Playback {
    stream: cpal::Stream,
    path: PlaybackPath,
    flags: Arc<StreamFlags>,
    device: String,
}

impl OpenStream for Capture {
    fn is_lost(&self) -> bool {
        self.flags.is_lost()
    }
    fn xruns(&self) -> u64 {
        self.flags.xruns() + self.path.glitches()
    }
    fn device(&self) -> &str {
        &self.device
    }
    fn set_running(&self, running: bool) {
        set_running(&self.stream, running);
    }
}

impl OpenStream for Playback {
    fn is_lost(&self) -> bool {
        self.flags.is_lost()
    }
    fn xruns(&self) -> u64 {
        self.flags.xruns() + self.path.glitches()
    }
    fn device(&self) -> &str {
        &self.device
    }
    fn set_running(&self, running: bool) {
        set_running(&self.stream, running);
    }
}

/// Plays or pauses a cpal stream; a refusal (some ALSA devices cannot pause) only costs the
/// callbacks' CPU while idle, so it is logged, not reported.
fn set_running(stream: &cpal::Stream, running: bool) {
    let result = if running {
        stream.play().map_err(|e| e.to_string())
    } else {
        stream.pause().map_err(|e| e.to_string())
    };
    if let Err(error) = result {
        tracing::debug!(%error, running, "audio stream cannot change state");
    }
}

/// One stream and its recovery: open, or down and retried every 2 s.
struct Endpoint<T> {
    direction: Direction,
    /// The configured device name (`None` = default).
    wanted: Option<String>,
    state: State<T>,
    /// Dropouts of streams that have been dropped.
    retired_xruns: u64,
    /// A switch the operator asked for: the device and the helper thread's answer.
    switching: Option<(String, mpsc::Receiver<Result<T, DeviceError>>)>,
}

enum State<T> {
    Open(T),
    Down {
        retry_at: u64,
    },
    /// A helper thread is opening the device; its answer arrives here.
    Reopening(mpsc::Receiver<Reopened<T>>),
}

/// What a reopen attempt hands back: the stream and whether it fell back to the default
/// device, or why neither opened.
type Reopened<T> = Result<(T, bool), DeviceError>;

/// One reopen attempt: the configured device, else the default one.
fn attempt<T>(
    wanted: Option<&str>,
    mut open: impl FnMut(Option<&str>) -> Result<T, DeviceError>,
) -> Reopened<T> {
    match open(wanted) {
        Err(_) if wanted.is_some() => open(None).map(|s| (s, true)),
        other => other.map(|s| (s, false)),
    }
}

/// Opens `name` on a helper thread, without falling back (the operator chose it); the
/// answer comes through the returned channel (disconnected if the thread cannot start).
fn open_in_background<T: Send + 'static>(
    name: String,
    open: impl FnOnce(Option<&str>) -> Result<T, DeviceError> + Send + 'static,
) -> mpsc::Receiver<Result<T, DeviceError>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("audio-open".into())
        .spawn(move || {
            // The endpoint may have moved on (another switch, the engine stopped): the stream
            // is then dropped here.
            let _ = tx.send(open(Some(&name)));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to open the audio device");
    }
    rx
}

/// Drops a replaced stream on a thread of its own: closing a device can take the audio
/// system a while, and the media thread does not wait for it.
fn close_elsewhere<T: Send + 'static>(old: T) {
    let spawned = thread::Builder::new()
        .name("audio-close".into())
        .spawn(move || drop(old));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to close the audio device");
    }
}

/// Runs [`attempt`] on a helper thread; its answer comes through the returned channel (which
/// reports disconnection instead if the thread cannot start or dies).
fn reopen_in_background<T: Send + 'static>(
    wanted: Option<String>,
    open: impl FnMut(Option<&str>) -> Result<T, DeviceError> + Send + 'static,
) -> mpsc::Receiver<Reopened<T>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("audio-reopen".into())
        .spawn(move || {
            // The endpoint may be gone (the engine stopped): the stream is then dropped here.
            let _ = tx.send(attempt(wanted.as_deref(), open));
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a thread to reopen the audio device");
    }
    rx
}

impl<T: OpenStream> Endpoint<T> {
    fn new(direction: Direction, wanted: Option<&str>, stream: T) -> Self {
        Endpoint {
            direction,
            wanted: wanted.map(str::to_string),
            state: State::Open(stream),
            retired_xruns: 0,
            switching: None,
        }
    }

    /// An endpoint with no device yet (a ring device chosen live): silent until a switch.
    fn without_stream(direction: Direction) -> Self {
        Endpoint {
            direction,
            wanted: None,
            state: State::Down { retry_at: u64::MAX },
            retired_xruns: 0,
            switching: None,
        }
    }

    /// Switches to `name` once `answer` brings its stream (a switch under way is dropped).
    fn switch(&mut self, name: &str, answer: mpsc::Receiver<Result<T, DeviceError>>) {
        self.switching = Some((name.to_owned(), answer));
    }

    fn is_switching(&self) -> bool {
        self.switching.is_some()
    }

    /// The answer of a switch under way, once it is in: the new stream replaces the old one
    /// (closed elsewhere), or the old one stays.
    fn poll_switch(&mut self) -> Option<DeviceNotice>
    where
        T: Send + 'static,
    {
        let (name, answer) = self.switching.as_ref()?;
        let result = match answer.try_recv() {
            Err(mpsc::TryRecvError::Empty) => return None,
            Ok(result) => result,
            Err(mpsc::TryRecvError::Disconnected) => Err(DeviceError::Host(
                "the thread opening the device ended".into(),
            )),
        };
        let device = name.clone();
        let role = self.direction.role();
        self.switching = None;
        Some(match result {
            Ok(stream) => {
                if let State::Open(old) = std::mem::replace(&mut self.state, State::Open(stream)) {
                    self.retired_xruns += old.xruns();
                    close_elsewhere(old);
                }
                self.wanted = Some(device.clone());
                DeviceNotice::Chosen { role, device }
            }
            Err(e) => DeviceNotice::NotChosen {
                role,
                device,
                reason: e.to_string(),
            },
        })
    }

    fn stream(&mut self) -> Option<&mut T> {
        match &mut self.state {
            State::Open(s) => Some(s),
            State::Down { .. } | State::Reopening(_) => None,
        }
    }

    fn set_running(&self, running: bool) {
        if let State::Open(s) = &self.state {
            s.set_running(running);
        }
    }

    fn xruns(&self) -> u64 {
        self.retired_xruns
            + match &self.state {
                State::Open(s) => s.xruns(),
                State::Down { .. } | State::Reopening(_) => 0,
            }
    }

    /// Notices a lost stream (dropping it); when a down one is due for a retry, starts a
    /// reopen with `reopen` (given the configured device name; it answers through the
    /// channel it returns, never blocking this thread); takes the answer of one under way.
    fn poll(
        &mut self,
        tick: u64,
        reopen: impl FnOnce(Option<String>) -> mpsc::Receiver<Reopened<T>>,
    ) -> Option<DeviceNotice>
    where
        T: Send + 'static,
    {
        if let Some(notice) = self.poll_switch() {
            return Some(notice);
        }
        if matches!(&self.state, State::Down { retry_at } if tick >= *retry_at) {
            self.state = State::Reopening(reopen(self.wanted.clone()));
        }
        match &self.state {
            State::Open(s) if s.is_lost() => {
                let name = s.device().to_string();
                self.retired_xruns += s.xruns();
                self.state = State::Down {
                    retry_at: tick + RETRY_TICKS,
                };
                Some(match self.direction {
                    Direction::Input => DeviceNotice::InputLost(name),
                    Direction::Output => DeviceNotice::OutputLost(name),
                    Direction::Ring => DeviceNotice::OutputLost(format!("{name} (ring)")),
                })
            }
            State::Reopening(answer) => {
                let label = self.direction.label();
                let result = match answer.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => return None,
                    Ok(result) => result,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        Err(DeviceError::Host("the reopening thread ended".into()))
                    }
                };
                match result {
                    Ok((stream, fell_back)) => {
                        let name = stream.device().to_string();
                        self.state = State::Open(stream);
                        Some(DeviceNotice::Switched(if fell_back {
                            format!("{label} fell back to the default device \"{name}\"")
                        } else {
                            format!("{label} is back on \"{name}\"")
                        }))
                    }
                    Err(_) => {
                        self.state = State::Down {
                            retry_at: tick + RETRY_TICKS,
                        };
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

/// Turns running dropout totals into at most one notice per 5 s, only when
/// they changed, as differences since the previous notice.
#[derive(Debug, Default)]
struct XrunReporter {
    reported: (u64, u64),
    next_at: u64,
}

impl XrunReporter {
    fn poll(&mut self, tick: u64, input: u64, output: u64) -> Option<DeviceNotice> {
        if tick < self.next_at {
            return None;
        }
        if (input, output) == self.reported {
            return None;
        }
        self.next_at = tick + XRUN_REPORT_TICKS;
        let notice = DeviceNotice::Xruns {
            input: input.saturating_sub(self.reported.0),
            output: output.saturating_sub(self.reported.1),
        };
        self.reported = (input, output);
        Some(notice)
    }
}

/// Sound cards through cpal.
pub(super) struct CpalDevice {
    /// The audio system the devices are on (reopens and switches stay on it).
    host: Host,
    input: Endpoint<Capture>,
    output: Endpoint<Playback>,
    ring: Option<Endpoint<Playback>>,
    ring_mix: RingMix,
    /// Ticks so far (counted at each frame read), and the last one whose devices were polled:
    /// the pipeline asks for notices until there are none, and only the first ask of a tick
    /// polls (reopen timers, dropout reports and the latency log run on ticks).
    tick: u64,
    polled: u64,
    xruns: XrunReporter,
    notices: VecDeque<DeviceNotice>,
    /// The cushions last logged: capture margin, headset margin and period (device samples).
    cushions: (usize, usize, usize),
    /// The dropouts as last seen; `None` until the first tick since the streams opened or
    /// resumed (what happened before it is no call's dropout).
    dropouts: Option<Dropouts>,
}

/// The microphone's and the headset's dropouts since each stream opened, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Dropouts {
    /// Xruns the audio system reported on the microphone.
    capture_xruns: u64,
    /// Microphone callbacks that found the ring full.
    capture_ring_full: u64,
    /// Ticks whose microphone frame was short, and backlogs trimmed.
    capture_short: u64,
    /// Xruns the audio system reported on the headset.
    headset_xruns: u64,
    /// Headset callbacks that found the ring empty.
    headset_dry: u64,
    /// Runs of headset frames dropped to bound the latency.
    headset_dropped: u64,
}

/// `key=value` words, as the log's fields are written.
impl std::fmt::Display for Dropouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "capture_xruns={} capture_ring_full={} capture_short={} headset_xruns={} \
             headset_dry={} headset_dropped={}",
            self.capture_xruns,
            self.capture_ring_full,
            self.capture_short,
            self.headset_xruns,
            self.headset_dry,
            self.headset_dropped
        )
    }
}

impl Dropouts {
    fn of(capture: Option<&mut Capture>, headset: Option<&mut Playback>) -> Dropouts {
        let mut d = Dropouts::default();
        if let Some(c) = capture {
            d.capture_xruns = c.flags.system_errors();
            d.capture_ring_full = c.flags.xruns() - d.capture_xruns;
            d.capture_short = c.path.glitches();
        }
        if let Some(p) = headset {
            d.headset_xruns = p.flags.system_errors();
            d.headset_dry = p.flags.ran_dry();
            d.headset_dropped = p.path.glitches();
        }
        d
    }

    /// What grew since the dropouts `last` seen, if anything did (then these are the last
    /// seen); nothing the first time (the streams ran before anyone ticked).
    fn new_since(self, last: &mut Option<Dropouts>) -> Option<Dropouts> {
        let was = last.replace(self)?;
        Some(self.grown_since(was)).filter(|new| *new != Dropouts::default())
    }

    /// What grew since `was`, kind by kind (a reopened stream counts from 0 again: nothing).
    fn grown_since(self, was: Dropouts) -> Dropouts {
        Dropouts {
            capture_xruns: self.capture_xruns.saturating_sub(was.capture_xruns),
            capture_ring_full: self.capture_ring_full.saturating_sub(was.capture_ring_full),
            capture_short: self.capture_short.saturating_sub(was.capture_short),
            headset_xruns: self.headset_xruns.saturating_sub(was.headset_xruns),
            headset_dry: self.headset_dry.saturating_sub(was.headset_dry),
            headset_dropped: self.headset_dropped.saturating_sub(was.headset_dropped),
        }
    }
}

impl CpalDevice {
    /// Opens the input, the output and, if named, the ring output.
    pub(super) fn open(
        host: Host,
        input: Option<&str>,
        output: Option<&str>,
        ring_output: Option<&str>,
    ) -> Result<CpalDevice, DeviceError> {
        let capture = open_capture(host, input)?;
        let playback = open_playback(host, output, Direction::Output)?;
        let ring = match ring_output {
            Some(name) => Some(Endpoint::new(
                Direction::Ring,
                Some(name),
                open_playback(host, Some(name), Direction::Ring)?,
            )),
            None => None,
        };
        Ok(CpalDevice {
            host,
            input: Endpoint::new(Direction::Input, input, capture),
            output: Endpoint::new(Direction::Output, output, playback),
            ring,
            ring_mix: RingMix::new(),
            tick: 0,
            polled: 0,
            // The first report comes after 5 s at the earliest.
            xruns: XrunReporter {
                reported: (0, 0),
                next_at: XRUN_REPORT_TICKS,
            },
            notices: VecDeque::new(),
            cushions: (0, 0, 0),
            dropouts: None,
        })
    }
}

impl AudioDevice for CpalDevice {
    fn read_frame(&mut self, frame: &mut Frame) -> bool {
        self.tick += 1;
        match self.input.stream() {
            Some(c) => c.path.read(frame),
            None => false,
        }
    }

    #[allow(clippy::disallowed_methods)] // The media thread: where in the device's period.
    fn write_frame(&mut self, frame: &Frame) {
        let mut out = *frame;
        self.ring_mix.mix_into(&mut out);
        let wait = self.tick_wait();
        let now = Instant::now();
        let mic = self.capture_backlog(now);
        if let Some(p) = self.output.stream() {
            p.path.allow_late_ticks(wait);
            p.path.follow_microphone(mic);
            p.path.write(&out, now);
        }
    }

    #[allow(clippy::disallowed_methods)] // The media thread: where in the device's period.
    fn write_ring_frame(&mut self, frame: &Frame) {
        let wait = self.tick_wait();
        let now = Instant::now();
        let mic = self.capture_backlog(now);
        match self.ring.as_mut().and_then(Endpoint::stream) {
            Some(p) => {
                p.path.allow_late_ticks(wait);
                p.path.follow_microphone(mic);
                p.path.write(frame, now);
            }
            // No ring device, or it is down: ring on the headset.
            None => self.ring_mix.put(frame),
        }
    }

    fn poll_notice(&mut self) -> Option<DeviceNotice> {
        if self.polled != self.tick {
            self.polled = self.tick;
            self.poll_devices();
        }
        self.notices.pop_front()
    }

    fn switch(&mut self, role: DeviceRole, name: &str) -> Option<DeviceNotice> {
        let owned = name.to_owned();
        let host = self.host;
        match role {
            DeviceRole::Input => self.input.switch(
                name,
                open_in_background(owned, move |n| open_capture(host, n)),
            ),
            DeviceRole::Output => self.output.switch(
                name,
                open_in_background(owned, move |n| open_playback(host, n, Direction::Output)),
            ),
            DeviceRole::Ring => self
                .ring
                .get_or_insert_with(|| Endpoint::without_stream(Direction::Ring))
                .switch(
                    name,
                    open_in_background(owned, move |n| open_playback(host, n, Direction::Ring)),
                ),
        }
        None
    }

    fn capture_shortfall(&mut self) -> Option<Duration> {
        self.input.stream()?.path.shortfall()
    }

    fn capture_lead(&mut self) -> Option<Duration> {
        self.input.stream()?.path.take_lead()
    }

    fn capture_backlog(&mut self, now: Instant) -> Option<paths::Backlog> {
        self.input.stream().and_then(|c| c.path.backlog(now))
    }

    fn is_switching(&self) -> bool {
        self.input.is_switching()
            || self.output.is_switching()
            || self.ring.as_ref().is_some_and(Endpoint::is_switching)
    }

    fn pause(&mut self) {
        self.input.set_running(false);
        self.output.set_running(false);
        if let Some(ring) = &self.ring {
            ring.set_running(false);
        }
    }

    fn resume(&mut self, missed: u64) {
        self.input.set_running(true);
        self.output.set_running(true);
        if let Some(ring) = &self.ring {
            ring.set_running(true);
        }
        self.tick += missed;
        if let Some(c) = self.input.stream() {
            c.path.resume();
        }
        // Rings that ran dry or over while nobody ticked are not dropouts of a call.
        self.xruns.reported = (self.input.xruns(), self.output_xruns());
        self.dropouts = None;
        if let Some(p) = self.output.stream() {
            p.path.resume();
        }
        if let Some(p) = self.ring.as_mut().and_then(Endpoint::stream) {
            p.path.resume();
        }
    }
}

impl CpalDevice {
    /// This tick's look at the devices: reopens lost ones, queues the notices, logs.
    fn poll_devices(&mut self) {
        let tick = self.tick;

        let host = self.host;
        let open_input = move |name: Option<&str>| open_capture(host, name);
        let open_output = move |name: Option<&str>| open_playback(host, name, Direction::Output);
        let open_ring = move |name: Option<&str>| open_playback(host, name, Direction::Ring);
        if let Some(n) = self
            .input
            .poll(tick, |name| reopen_in_background(name, open_input))
        {
            self.notices.push_back(n);
        }
        if let Some(n) = self
            .output
            .poll(tick, |name| reopen_in_background(name, open_output))
        {
            self.notices.push_back(n);
        }
        if let Some(ring) = &mut self.ring {
            if let Some(n) = ring.poll(tick, |name| reopen_in_background(name, open_ring)) {
                self.notices.push_back(n);
            }
        }
        if let Some(n) = self
            .xruns
            .poll(tick, self.input.xruns(), self.output_xruns())
        {
            self.notices.push_back(n);
        }
        self.log_cushions();
        self.log_dropouts();
        if tick % LATENCY_LOG_TICKS == 0 {
            self.log_latency();
        }
    }

    /// Logs the rings' cushions when they moved (at most every 2 s: they move once a window).
    fn log_cushions(&mut self) {
        let capture = self.input.stream().map_or(0, |c| c.path.margin());
        let (margin, period) = self.output.stream().map_or((0, 0), |p| p.path.cushion());
        if (capture, margin, period) != self.cushions {
            self.cushions = (capture, margin, period);
            tracing::info!(
                capture_margin = capture,
                headset_margin = margin,
                headset_period = period,
                "audio cushions (device samples)"
            );
        }
    }

    /// Logs the dropouts of this tick, by kind, when there were any: the log says when each
    /// happened (the reports to the operator come at most every 5 s).
    fn log_dropouts(&mut self) {
        let now = Dropouts::of(self.input.stream(), self.output.stream());
        if let Some(new) = now.new_since(&mut self.dropouts) {
            tracing::info!("audio dropout {new}");
        }
    }

    /// Logs the latency breakdown of the microphone and headset paths over the last 5 s
    /// (`latency.rs`): what the rings and the audio system held, and the periods; how far the
    /// capture cushion moved the media clock's phase earlier so far (`capture_led_ms`); how
    /// far each stream's callbacks are ahead of the ticks since it started (`*_ahead_ms`,
    /// `latency.rs`); how much faster than the ticks the headset's frames are written to
    /// follow its card (`headset_drift_ppm`, `drift.rs`); and what the dropouts so far were (since each stream opened): xruns the
    /// audio system reported, a full microphone ring, a microphone frame missing (or a backlog
    /// trimmed) at a tick, the headset's callback finding its ring empty, headset frames
    /// dropped to bound latency.
    fn log_latency(&mut self) {
        let drops = Dropouts::of(self.input.stream(), self.output.stream());
        let (capture, capture_period, capture_led, capture_ahead) = match self.input.stream() {
            Some(c) => (
                Some(c.path.take_latency()),
                Some(c.path.period_ms()),
                Some(c.path.led_ms()),
                c.path.ahead_ms(),
            ),
            None => (None, None, None, None),
        };
        let (headset, headset_period, headset_ahead, headset_drift) = match self.output.stream() {
            Some(p) => (
                Some(p.path.take_latency()),
                Some(p.path.period_ms()),
                p.path.ahead_ms(),
                Some(p.path.drift_ppm()),
            ),
            None => (None, None, None, None),
        };
        tracing::info!(
            capture_ring_ms = tenth(capture.and_then(|m| m.ring_ms)),
            capture_device_ms = tenth(capture.and_then(|m| m.device_ms)),
            capture_period_ms = tenth(capture_period),
            capture_led_ms = tenth(capture_led),
            capture_ahead_ms = tenth(capture_ahead),
            headset_ring_ms = tenth(headset.and_then(|m| m.ring_ms)),
            headset_device_ms = tenth(headset.and_then(|m| m.device_ms)),
            headset_period_ms = tenth(headset_period),
            headset_ahead_ms = tenth(headset_ahead),
            headset_drift_ppm = tenth(headset_drift),
            "audio latency {drops}"
        );
    }

    /// How late a tick may come by design: it waits for the microphone's callback that
    /// completes its frame (`clock.rs`), one capture period when the callbacks keep time.
    /// The playback rings keep that much more (`Cushion::allow`): measured on the lab's sound
    /// server, such a wait before the headset's write was what ran its ring dry.
    fn tick_wait(&mut self) -> Duration {
        self.input.stream().map_or(Duration::ZERO, |c| {
            Duration::from_secs_f64(c.path.period_ms() / 1000.0)
        })
    }

    /// Dropouts of the headset and ring streams so far.
    fn output_xruns(&self) -> u64 {
        self.output.xruns() + self.ring.as_ref().map_or(0, Endpoint::xruns)
    }
}

/// A device's name; devices that cannot describe themselves get a placeholder.
fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .unwrap_or_else(|_| "(unnamed device)".to_string())
}

/// The device's stable identifier, e.g. `alsa:hw:CARD=Headset,DEV=0`.
fn device_id(device: &cpal::Device) -> String {
    device.id().map(|id| id.to_string()).unwrap_or_default()
}

/// `wanted` names this device: its description, its full id, or its id
/// without the host prefix (`hw:CARD=Headset,DEV=0`).
fn is_named(device: &cpal::Device, wanted: &str) -> bool {
    if device_name(device) == wanted {
        return true;
    }
    device
        .id()
        .map(|id| id.id() == wanted || id.to_string() == wanted)
        .unwrap_or(false)
}

/// How devices are listed in errors: `description (id)`.
fn names(devices: impl Iterator<Item = cpal::Device>) -> Vec<String> {
    devices
        .map(|d| match d.id() {
            Ok(id) => format!("{} ({})", device_name(&d), id.id()),
            Err(_) => device_name(&d),
        })
        .collect()
}

/// The named device (exact match) of that direction, or the default one.
fn find_device(
    host: &cpal::Host,
    name: Option<&str>,
    direction: Direction,
) -> Result<(cpal::Device, String), DeviceError> {
    let input = direction == Direction::Input;
    let candidates = || -> Vec<cpal::Device> {
        let listed = if input {
            host.input_devices().map(|d| d.collect::<Vec<_>>())
        } else {
            host.output_devices().map(|d| d.collect::<Vec<_>>())
        };
        listed.unwrap_or_default()
    };
    match name {
        Some(wanted) => {
            let devices = candidates();
            match devices.iter().position(|d| is_named(d, wanted)) {
                Some(i) => {
                    let device = devices.into_iter().nth(i).ok_or_else(|| {
                        DeviceError::Host("device list changed while searching".into())
                    })?;
                    Ok((device, wanted.to_string()))
                }
                None => Err(DeviceError::NoSuchDevice {
                    direction: direction.label(),
                    name: wanted.to_string(),
                    available: names(devices.into_iter()),
                }),
            }
        }
        None => {
            let default = if input {
                host.default_input_device()
            } else {
                host.default_output_device()
            };
            match default {
                Some(device) => {
                    let name = device_name(&device);
                    Ok((device, name))
                }
                None => Err(DeviceError::NoDefaultDevice {
                    direction: direction.label(),
                    available: names(candidates().into_iter()),
                }),
            }
        }
    }
}

/// Rank for a 48 kHz configuration: float before 16-bit, then the preferred
/// channel count.
fn rank(range: &SupportedStreamConfigRange, prefer_channels: u16) -> (bool, bool) {
    (
        range.sample_format() != SampleFormat::F32,
        range.channels() != prefer_channels,
    )
}

/// Picks a stream configuration: 48 kHz with 1–2 channels in f32 or i16 when
/// the device offers one (preferring f32 and `prefer_channels`), else the
/// device's default, else its first range at 48 kHz or its highest rate.
fn choose_config(
    ranges: &[SupportedStreamConfigRange],
    default: Option<SupportedStreamConfig>,
    prefer_channels: u16,
) -> Option<SupportedStreamConfig> {
    let best = ranges
        .iter()
        .filter(|r| {
            r.contains_rate(SAMPLE_RATE)
                && (1..=2).contains(&r.channels())
                && matches!(r.sample_format(), SampleFormat::F32 | SampleFormat::I16)
        })
        .min_by_key(|r| rank(r, prefer_channels));
    if let Some(r) = best {
        return Some(r.with_sample_rate(SAMPLE_RATE));
    }
    if default.is_some() {
        return default;
    }
    ranges.first().map(|r| {
        r.try_with_sample_rate(SAMPLE_RATE)
            .unwrap_or_else(|| r.with_max_sample_rate())
    })
}

/// A 5 ms callback period if the device states a range that allows it.
fn preferred_buffer(config: &SupportedStreamConfig) -> Option<BufferSize> {
    match *config.buffer_size() {
        SupportedBufferSize::Range { min, max } if min <= max => {
            let want = config.sample_rate() * CALLBACK_MS / 1000;
            Some(BufferSize::Fixed(want.clamp(min, max)))
        }
        _ => None,
    }
}

fn describe(config: &SupportedStreamConfig) -> String {
    format!(
        "{} Hz, {} ch, {}",
        config.sample_rate(),
        config.channels(),
        config.sample_format()
    )
}

/// A built (not yet playing) stream, its ring end and flags.
type Built<R> = (cpal::Stream, R, Arc<StreamFlags>);

fn unsupported_format(format: SampleFormat) -> cpal::Error {
    cpal::Error::with_message(
        cpal::ErrorKind::UnsupportedConfig,
        format!("sample format {format} is not supported"),
    )
}

#[allow(clippy::disallowed_methods)] // The flags' origin and the callbacks' times.
fn build_capture(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
) -> Result<Built<rtrb::Consumer<f32>>, cpal::Error> {
    let (producer, consumer) = paths::ring(config.sample_rate);
    let flags = Arc::new(StreamFlags::new(Instant::now()));
    let mut callback = CaptureCallback::new(producer, config.channels, flags.clone());
    let errors = flags.clone();
    macro_rules! build {
        ($($variant:ident => $t:ty),+) => {
            match format {
                $(SampleFormat::$variant => device.build_input_stream::<$t, _, _>(
                    *config,
                    move |data: &[$t], info: &cpal::InputCallbackInfo| {
                        let at = info.timestamp();
                        callback.saw_delay(at.callback.duration_since(at.capture));
                        callback.process(data);
                        callback.called_at(Instant::now());
                    },
                    move |e: cpal::Error| errors.on_error(e.kind()),
                    Some(OPEN_TIMEOUT),
                ),)+
                other => Err(unsupported_format(other)),
            }
        };
    }
    let stream = build!(I8 => i8, I16 => i16, I32 => i32, U8 => u8, U16 => u16, U32 => u32,
        F32 => f32, F64 => f64)?;
    Ok((stream, consumer, flags))
}

#[allow(clippy::disallowed_methods)] // The callback's time enters here (see `realtime.rs`).
fn build_playback(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
) -> Result<Built<rtrb::Producer<f32>>, cpal::Error> {
    let (producer, consumer) = paths::ring(config.sample_rate);
    let flags = Arc::new(StreamFlags::new(Instant::now()));
    let mut callback = PlaybackCallback::new(consumer, config.channels, flags.clone());
    let errors = flags.clone();
    macro_rules! build {
        ($($variant:ident => $t:ty),+) => {
            match format {
                $(SampleFormat::$variant => device.build_output_stream::<$t, _, _>(
                    *config,
                    move |data: &mut [$t], info: &cpal::OutputCallbackInfo| {
                        let at = info.timestamp();
                        callback.called_at(Instant::now(), at.playback.duration_since(at.callback));
                        callback.process(data);
                    },
                    move |e: cpal::Error| errors.on_error(e.kind()),
                    Some(OPEN_TIMEOUT),
                ),)+
                other => Err(unsupported_format(other)),
            }
        };
    }
    let stream = build!(I8 => i8, I16 => i16, I32 => i32, U8 => u8, U16 => u16, U32 => u32,
        F32 => f32, F64 => f64)?;
    Ok((stream, producer, flags))
}

/// Finds the device, chooses its configuration and builds the stream (with a
/// 5 ms period, or the device's default period if that fails).
fn build_on<R>(
    choice: Host,
    name: Option<&str>,
    direction: Direction,
    build: impl Fn(&cpal::Device, &StreamConfig, SampleFormat) -> Result<Built<R>, cpal::Error>,
) -> Result<(Built<R>, String, u32), DeviceError> {
    let workers_before = threads_named(&[worker_name(direction)]).len();
    let host = cpal_host(choice, Connection::ForStream)?;
    let (device, device_name) = find_device(&host, name, direction)?;
    let stream_error = |reason: String| DeviceError::Stream {
        direction: direction.label(),
        device: device_name.clone(),
        reason,
    };
    let (ranges, default, prefer_channels) = if direction == Direction::Input {
        (
            device
                .supported_input_configs()
                .map(|r| r.collect::<Vec<_>>())
                .unwrap_or_default(),
            device.default_input_config().ok(),
            1,
        )
    } else {
        (
            device
                .supported_output_configs()
                .map(|r| r.collect::<Vec<_>>())
                .unwrap_or_default(),
            device.default_output_config().ok(),
            2,
        )
    };
    let chosen = choose_config(&ranges, default, prefer_channels)
        .ok_or_else(|| stream_error("the device offers no stream configuration".into()))?;
    let mut config = chosen.config();
    config.buffer_size = BufferSize::Default;
    let built = match preferred_buffer(&chosen) {
        Some(buffer) => {
            let mut fixed = config;
            fixed.buffer_size = buffer;
            build(&device, &fixed, chosen.sample_format())
                .or_else(|_| build(&device, &config, chosen.sample_format()))
        }
        None => build(&device, &config, chosen.sample_format()),
    }
    .map_err(|e| stream_error(format!("{} ({e})", describe(&chosen))))?;
    built
        .0
        .play()
        .map_err(|e| stream_error(format!("cannot start: {e}")))?;
    if host.id() == cpal::HostId::Alsa {
        let raised = raise_new_audio_threads(direction, workers_before);
        tracing::debug!(raised, "audio threads given the media thread's priority");
    }
    Ok((built, device_name, config.sample_rate))
}

/// The connection to the PulseAudio server that listings share. cpal's PulseAudio host runs
/// a client thread per connection (it reads the server's socket and runs the callbacks of
/// the streams on it), and that thread ends only when the server next writes after the last
/// handle on the connection is gone: a connection made for a listing alone would keep its
/// thread for good, so listings share one, made again only once it no longer answers.
/// Streams get a connection each ([`Connection::ForStream`]): all the playback streams of
/// one connection form one sync group, which PulseAudio keeps on one sink (a second sink is
/// refused as an invalid argument); and a stream's connection ends when the stream does
/// (closing it makes the server answer).
static PULSE: Mutex<Option<Arc<cpal::Host>>> = Mutex::new(None);

/// What a PulseAudio connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// Listing devices: the shared one ([`PULSE`]).
    Shared,
    /// One stream: its own.
    ForStream,
}

/// The cpal host `choice` means: PulseAudio (for [`Host::Auto`] when a server's socket is
/// named or present and it answers), or ALSA.
fn cpal_host(choice: Host, connection: Connection) -> Result<Arc<cpal::Host>, DeviceError> {
    let alsa = || {
        cpal::host_from_id(cpal::HostId::Alsa)
            .map(Arc::new)
            .map_err(|e| DeviceError::Host(format!("ALSA: {e}")))
    };
    let pulse = || match connection {
        Connection::Shared => shared_pulse_host(),
        Connection::ForStream => pulse_host(),
    };
    match choice {
        Host::Alsa => alsa(),
        Host::Pulse => pulse(),
        Host::Auto if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) => pulse()
            .or_else(|e| {
                tracing::info!(error = %e, "no PulseAudio server answers: using ALSA");
                alsa()
            }),
        Host::Auto => alsa(),
    }
}

/// The shared PulseAudio connection ([`PULSE`]), checked with a device listing; a new one
/// when there was none or it no longer answers.
fn shared_pulse_host() -> Result<Arc<cpal::Host>, DeviceError> {
    let mut shared = PULSE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(host) = shared.as_ref() {
        if host.devices().is_ok() {
            return Ok(host.clone());
        }
        tracing::info!("the PulseAudio connection is gone: connecting again");
    }
    let host = pulse_host()?;
    *shared = Some(host.clone());
    Ok(host)
}

/// A new connection to the PulseAudio server. Its client thread gets the media thread's
/// priority: it runs the callbacks of the streams made on it.
fn pulse_host() -> Result<Arc<cpal::Host>, DeviceError> {
    let before = threads_named(&[]);
    let host = cpal::host_from_id(cpal::HostId::PulseAudio)
        .map(Arc::new)
        .map_err(|e| {
            let hint = if has_pulse_cookie() {
                ""
            } else {
                " (no PulseAudio cookie: $PULSE_COOKIE, ~/.config/pulse/cookie and \
                 ~/.pulse-cookie are missing, and a server refuses the empty one sent then)"
            };
            DeviceError::Host(format!("PulseAudio: {e}{hint}"))
        })?;
    let raised = threads_named(&[])
        .into_iter()
        .filter(|tid| !before.contains(tid))
        .filter(|&tid| {
            rustix::process::setpriority_process(Some(tid), crate::media::priority::MEDIA_NICE)
                .is_ok()
        })
        .count();
    tracing::debug!(
        raised,
        "PulseAudio client thread given the media thread's priority"
    );
    Ok(host)
}

/// Whether PulseAudio's client finds a cookie file where it looks ($PULSE_COOKIE, then
/// `~/.config/pulse/cookie`, then `~/.pulse-cookie`): without one it sends an empty cookie,
/// which a server refuses even when it lets anyone in.
fn has_pulse_cookie() -> bool {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    std::env::var_os("PULSE_COOKIE")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(home.iter().map(|h| h.join(".config/pulse/cookie")))
        .chain(home.iter().map(|h| h.join(".pulse-cookie")))
        .any(|p| p.exists())
}

/// The threads the audio system runs in this process: cpal's ALSA workers, and libpulse's
/// main loop when ALSA goes through the pulse plugin.
const AUDIO_THREADS: &[&str] = &["cpal_alsa_in", "cpal_alsa_out", "threaded-ml"];

/// Gives the audio system's threads in this process ([`AUDIO_THREADS`]) the media thread's
/// nice value. On a busy machine a worker that runs late lets the sound server's short
/// buffer run empty, and ALSA's pulse plugin turns that underflow into an xrun: cpal then
/// reconnects the stream and restarts it two thirds full, which underflows again — the
/// bursts of hundreds of xruns seen under load. Best effort (Linux's `/proc/self/task`; a
/// refusal changes nothing); returns how many threads have the raised priority.
fn raise_audio_threads() -> usize {
    threads_named(AUDIO_THREADS)
        .into_iter()
        .filter(|&tid| {
            rustix::process::setpriority_process(Some(tid), crate::media::priority::MEDIA_NICE)
                .is_ok()
        })
        .count()
}

/// The threads of this process with one of these names, or all of them when `names` is
/// empty (none where there is no `/proc`).
fn threads_named(names: &[&str]) -> Vec<rustix::process::Pid> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| names.is_empty() || names.contains(&comm.trim()))
        })
        .filter_map(|task| task.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(rustix::process::Pid::from_raw)
        .collect()
}

/// The name cpal gives a stream's ALSA worker thread.
fn worker_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Input => "cpal_alsa_in",
        Direction::Output | Direction::Ring => "cpal_alsa_out",
    }
}

/// Raises the audio threads once a stream just started has its worker: a new thread names
/// itself once it runs, so it is waited for (at most 50 ms) beyond the `before` workers of
/// that name there were.
fn raise_new_audio_threads(direction: Direction, before: usize) -> usize {
    let worker = [worker_name(direction)];
    for _ in 0..50 {
        if threads_named(&worker).len() > before {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    raise_audio_threads()
}

/// The callback period asked of a device at `rate` Hz, in samples: where its cushion starts.
fn asked_period(rate: u32) -> usize {
    (u64::from(rate) * u64::from(CALLBACK_MS) / 1000) as usize
}

fn open_capture(host: Host, name: Option<&str>) -> Result<Capture, DeviceError> {
    let ((stream, consumer, flags), device, rate) =
        build_on(host, name, Direction::Input, build_capture)?;
    Ok(Capture {
        stream,
        path: CapturePath::new(consumer, rate, flags.clone(), asked_period(rate))?,
        flags,
        device,
    })
}

fn open_playback(
    host: Host,
    name: Option<&str>,
    direction: Direction,
) -> Result<Playback, DeviceError> {
    let ((stream, producer, flags), device, rate) =
        build_on(host, name, direction, build_playback)?;
    Ok(Playback {
        stream,
        path: PlaybackPath::new(producer, rate, flags.clone(), asked_period(rate))?,
        flags,
        device,
    })
}

/// Every device `choice`'s host lists.
pub(super) fn list_devices(choice: Host) -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal_host(choice, Connection::Shared)?;
    // By id where there is one: a sound server's devices may share a description.
    let key = |d: &cpal::Device| (device_id(d), device_name(d));
    let default_in = host.default_input_device().map(|d| key(&d));
    let default_out = host.default_output_device().map(|d| key(&d));
    let devices = host
        .devices()
        .map_err(|e| DeviceError::Host(format!("cannot list devices: {e}")))?;
    Ok(devices
        .map(|d| {
            let name = device_name(&d);
            let input = d.supports_input();
            let output = d.supports_output();
            let out_cfg = output
                .then(|| d.default_output_config().ok())
                .flatten()
                .map(|c| describe(&c));
            let in_cfg = input
                .then(|| d.default_input_config().ok())
                .flatten()
                .map(|c| describe(&c));
            let default_config = match (out_cfg, in_cfg) {
                (Some(o), Some(i)) if o != i => Some(format!("{o} (input {i})")),
                (Some(o), _) => Some(o),
                (None, Some(i)) => Some(i),
                (None, None) => None,
            };
            let is_default = [&default_in, &default_out]
                .into_iter()
                .flatten()
                .any(|(id, n)| {
                    if id.is_empty() {
                        *n == name
                    } else {
                        *id == device_id(&d)
                    }
                });
            DeviceInfo {
                id: device_id(&d),
                name,
                input,
                output,
                default_config,
                is_default,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::device::{open, Backend};
    use crate::media::FRAME_SAMPLES;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Fake {
        name: String,
        lost: AtomicBool,
        running: AtomicBool,
        xruns: u64,
    }

    impl Fake {
        fn new(name: &str, xruns: u64) -> Fake {
            Fake {
                name: name.to_string(),
                lost: AtomicBool::new(false),
                running: AtomicBool::new(true),
                xruns,
            }
        }
    }

    impl OpenStream for Fake {
        fn is_lost(&self) -> bool {
            self.lost.load(Ordering::Relaxed)
        }
        fn xruns(&self) -> u64 {
            self.xruns
        }
        fn device(&self) -> &str {
            &self.name
        }
        fn set_running(&self, running: bool) {
            self.running.store(running, Ordering::Relaxed);
        }
    }

    #[test]
    fn pausing_reaches_an_open_stream_and_skips_a_down_one() {
        let mut ep = Endpoint::new(Direction::Output, None, Fake::new("card", 0));
        ep.set_running(false);
        let running = |ep: &mut Endpoint<Fake>| {
            ep.stream()
                .map(|s| s.running.load(Ordering::Relaxed))
                .expect("open")
        };
        assert!(!running(&mut ep), "paused");
        ep.set_running(true);
        assert!(running(&mut ep), "playing again");
        ep.state = State::Down { retry_at: 0 };
        ep.set_running(false); // nothing to pause: no panic, nothing to do
    }

    fn never(_: Option<&str>) -> Result<Fake, DeviceError> {
        Err(DeviceError::Host("no sound card".into()))
    }

    /// A reopen that has already answered when `poll` looks (the attempt runs right here).
    fn at_once<T>(
        open: impl FnMut(Option<&str>) -> Result<T, DeviceError>,
    ) -> impl FnOnce(Option<String>) -> mpsc::Receiver<Reopened<T>> {
        move |wanted| {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(attempt(wanted.as_deref(), open));
            rx
        }
    }

    #[test]
    fn lost_device_is_reported_once_and_retried_every_2_s() {
        let mut ep = Endpoint::new(Direction::Output, Some("USB"), Fake::new("USB", 3));
        assert_eq!(ep.poll(1, at_once(never)), None);
        ep.stream()
            .expect("open")
            .lost
            .store(true, Ordering::Relaxed);
        assert_eq!(
            ep.poll(2, at_once(never)),
            Some(DeviceNotice::OutputLost("USB".into()))
        );
        assert!(ep.stream().is_none());
        assert_eq!(ep.xruns(), 3, "the lost stream's dropouts are kept");
        let mut attempts = Vec::new();
        for tick in 3..=2 + 2 * RETRY_TICKS {
            let n = ep.poll(
                tick,
                at_once(|name: Option<&str>| {
                    attempts.push((tick, name.map(str::to_string)));
                    never(name)
                }),
            );
            assert_eq!(n, None);
        }
        assert_eq!(
            attempts,
            vec![
                (2 + RETRY_TICKS, Some("USB".to_string())),
                (2 + RETRY_TICKS, None),
                (2 + 2 * RETRY_TICKS, Some("USB".to_string())),
                (2 + 2 * RETRY_TICKS, None)
            ],
            "the configured device, then the default, every 2 s"
        );
    }

    /// A device that takes long to open must not stall the media thread: while a helper
    /// thread is stuck opening it, every tick's `poll` returns at once (the pipeline goes on
    /// sending RTP and playing out); the stream arrives on a later tick once the open ends.
    #[test]
    fn a_slow_reopen_runs_on_a_helper_thread_and_never_blocks_a_tick() {
        let mut ep = Endpoint::new(Direction::Output, None, Fake::new("USB", 0));
        ep.stream()
            .expect("open")
            .lost
            .store(true, Ordering::Relaxed);
        assert_eq!(
            ep.poll(1, at_once(never)),
            Some(DeviceNotice::OutputLost("USB".into()))
        );
        let (release, released) = mpsc::channel::<()>();
        let (started, has_started) = mpsc::channel();
        let slow = move |_: Option<&str>| {
            let _ = started.send(());
            // Bounded: if `poll` waited for this open, the ticks below could not run, the
            // wait would time out and the open would fail.
            match released.recv_timeout(Duration::from_secs(10)) {
                Ok(()) => Ok(Fake::new("USB", 0)),
                Err(_) => Err(DeviceError::Host("never released".into())),
            }
        };
        let mut tick = 1 + RETRY_TICKS;
        assert_eq!(ep.poll(tick, |name| reopen_in_background(name, slow)), None);
        has_started
            .recv_timeout(Duration::from_secs(10))
            .expect("the helper thread runs the open");
        // A second of ticks while the open is stuck: nothing blocks, nothing is reported.
        for _ in 0..TICKS_PER_SECOND {
            tick += 1;
            assert_eq!(ep.poll(tick, |_| unreachable_reopen()), None);
            assert!(matches!(ep.state, State::Reopening(_)), "still opening");
        }
        release.send(()).expect("the helper waits");
        let mut notice = None;
        for _ in 0..10_000 {
            tick += 1;
            notice = ep.poll(tick, |_| unreachable_reopen());
            if notice.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            notice,
            Some(DeviceNotice::Switched("output is back on \"USB\"".into()))
        );
        assert!(ep.stream().is_some());
    }

    /// For polls that must not start another reopen (one is under way).
    fn unreachable_reopen() -> mpsc::Receiver<Reopened<Fake>> {
        panic!("a second reopen was started while one is under way")
    }

    /// An answer that is already in when `poll` looks.
    fn answered<T>(result: Result<T, DeviceError>) -> mpsc::Receiver<Result<T, DeviceError>> {
        let (tx, rx) = mpsc::channel();
        let _ = tx.send(result);
        rx
    }

    #[test]
    fn a_chosen_device_replaces_the_stream_and_a_failed_one_keeps_it() {
        let mut ep = Endpoint::new(Direction::Output, None, Fake::new("Speakers", 2));
        let (tx, pending) = mpsc::channel();
        ep.switch("USB", pending);
        assert!(ep.is_switching());
        assert_eq!(
            ep.poll(1, at_once(never)),
            None,
            "not opened yet: nothing changes"
        );
        assert_eq!(ep.stream().map(|s| s.name.clone()), Some("Speakers".into()));
        tx.send(Ok(Fake::new("USB", 0))).expect("waiting");
        assert_eq!(
            ep.poll(2, at_once(never)),
            Some(DeviceNotice::Chosen {
                role: DeviceRole::Output,
                device: "USB".into()
            })
        );
        assert!(!ep.is_switching());
        assert_eq!(ep.stream().map(|s| s.name.clone()), Some("USB".into()));
        assert_eq!(
            ep.wanted.as_deref(),
            Some("USB"),
            "a lost USB is reopened as USB"
        );
        assert_eq!(ep.xruns(), 2, "the old stream's dropouts are kept");

        ep.switch("Nope", answered(never(Some("Nope"))));
        assert_eq!(
            ep.poll(3, at_once(never)),
            Some(DeviceNotice::NotChosen {
                role: DeviceRole::Output,
                device: "Nope".into(),
                reason: "audio system: no sound card".into()
            })
        );
        assert_eq!(
            ep.stream().map(|s| s.name.clone()),
            Some("USB".into()),
            "kept"
        );

        // A ring device chosen where there was none: silent until it opens.
        let mut ring = Endpoint::<Fake>::without_stream(Direction::Ring);
        assert!(ring.stream().is_none());
        for tick in 0..3 * RETRY_TICKS {
            assert_eq!(
                ring.poll(tick, |_| unreachable_reopen()),
                None,
                "never retried"
            );
        }
        ring.switch("Loud", answered(Ok(Fake::new("Loud", 0))));
        assert_eq!(
            ring.poll(3 * RETRY_TICKS + 1, |_| unreachable_reopen()),
            Some(DeviceNotice::Chosen {
                role: DeviceRole::Ring,
                device: "Loud".into()
            })
        );
        assert!(ring.stream().is_some());
    }

    #[test]
    fn reopen_prefers_the_configured_device_then_falls_back() {
        let mut ep = Endpoint::new(Direction::Input, Some("Mic"), Fake::new("Mic", 0));
        ep.stream()
            .expect("open")
            .lost
            .store(true, Ordering::Relaxed);
        assert_eq!(
            ep.poll(1, at_once(never)),
            Some(DeviceNotice::InputLost("Mic".into()))
        );
        let n = ep.poll(
            1 + RETRY_TICKS,
            at_once(|name: Option<&str>| match name {
                Some(_) => never(name),
                None => Ok(Fake::new("default", 0)),
            }),
        );
        assert_eq!(
            n,
            Some(DeviceNotice::Switched(
                "input fell back to the default device \"default\"".into()
            ))
        );
        assert_eq!(ep.stream().map(|s| s.name.clone()), Some("default".into()));

        let mut ring = Endpoint::new(Direction::Ring, None, Fake::new("Speakers", 0));
        ring.stream()
            .expect("open")
            .lost
            .store(true, Ordering::Relaxed);
        assert_eq!(
            ring.poll(5, at_once(never)),
            Some(DeviceNotice::OutputLost("Speakers (ring)".into()))
        );
        let n = ring.poll(5 + RETRY_TICKS, at_once(|_| Ok(Fake::new("Speakers", 0))));
        assert_eq!(
            n,
            Some(DeviceNotice::Switched(
                "ring output is back on \"Speakers\"".into()
            ))
        );
    }

    #[test]
    fn a_dropout_line_holds_what_grew_since_the_last() {
        let was = Dropouts {
            headset_dry: 3,
            capture_short: 2,
            ..Dropouts::default()
        };
        let now = Dropouts {
            headset_dry: 4,
            capture_short: 2,
            headset_xruns: 1,
            ..Dropouts::default()
        };
        assert_eq!(
            now.grown_since(was),
            Dropouts {
                headset_dry: 1,
                headset_xruns: 1,
                ..Dropouts::default()
            }
        );
        assert_eq!(
            Dropouts::default().grown_since(was),
            Dropouts::default(),
            "a reopened stream's counters start again: no dropout"
        );
    }

    #[test]
    fn dropouts_before_the_first_tick_are_no_calls() {
        let at_open = Dropouts {
            headset_xruns: 770,
            ..Dropouts::default()
        };
        let mut last = None;
        assert_eq!(
            at_open.new_since(&mut last),
            None,
            "the first tick: a baseline"
        );
        assert_eq!(at_open.new_since(&mut last), None, "nothing grew");
        let dry = Dropouts {
            headset_dry: 1,
            ..at_open
        };
        assert_eq!(
            dry.new_since(&mut last),
            Some(Dropouts {
                headset_dry: 1,
                ..Dropouts::default()
            })
        );
        assert_eq!(dry.new_since(&mut last), None, "logged once");
    }

    #[test]
    fn xruns_are_reported_as_differences_at_most_every_5_s() {
        let mut r = XrunReporter::default();
        assert_eq!(r.poll(1, 0, 0), None, "nothing to report");
        assert_eq!(
            r.poll(2, 2, 1),
            Some(DeviceNotice::Xruns {
                input: 2,
                output: 1
            })
        );
        assert_eq!(r.poll(3, 5, 1), None, "too soon after the last report");
        assert_eq!(r.poll(2 + XRUN_REPORT_TICKS - 1, 5, 1), None);
        assert_eq!(
            r.poll(2 + XRUN_REPORT_TICKS, 5, 4),
            Some(DeviceNotice::Xruns {
                input: 3,
                output: 3
            })
        );
        assert_eq!(r.poll(10_000, 5, 4), None, "unchanged: no report");
    }

    fn range(
        channels: u16,
        min: u32,
        max: u32,
        format: SampleFormat,
    ) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            channels,
            min,
            max,
            SupportedBufferSize::Range { min: 64, max: 4096 },
            format,
        )
    }

    #[test]
    fn config_prefers_48k_float_and_the_wanted_channels() {
        let ranges = [
            range(2, 8000, 96_000, SampleFormat::I16),
            range(1, 8000, 96_000, SampleFormat::I16),
            range(2, 8000, 96_000, SampleFormat::F32),
            range(6, 8000, 96_000, SampleFormat::F32),
        ];
        let c = choose_config(&ranges, None, 1).expect("config");
        assert_eq!(
            (c.sample_rate(), c.channels(), c.sample_format()),
            (48_000, 2, SampleFormat::F32)
        );
        let c = choose_config(&ranges[..2], None, 1).expect("config");
        assert_eq!((c.channels(), c.sample_format()), (1, SampleFormat::I16));
        let c = choose_config(&ranges[..2], None, 2).expect("config");
        assert_eq!((c.channels(), c.sample_format()), (2, SampleFormat::I16));
        assert_eq!(
            preferred_buffer(&c),
            Some(BufferSize::Fixed(240)),
            "5 ms at 48 kHz"
        );
    }

    #[test]
    fn config_falls_back_to_the_default_then_any_range() {
        let odd = [range(2, 44_100, 44_100, SampleFormat::I32)];
        let default =
            SupportedStreamConfig::new(4, 44_100, SupportedBufferSize::Unknown, SampleFormat::I32);
        let c = choose_config(&odd, Some(default), 2).expect("config");
        assert_eq!(c, default);
        assert_eq!(preferred_buffer(&c), None);
        let c = choose_config(&odd, None, 2).expect("config");
        assert_eq!(c.sample_rate(), 44_100);
        assert_eq!(describe(&c), "44100 Hz, 2 ch, i32");
        assert_eq!(choose_config(&[], None, 2), None);
    }

    /// Open the real default devices. On a machine with sound this must work
    /// and run; without a sound card it must fail with a clean error (not a
    /// panic), and a device name that does not exist must always be an error
    /// naming it.
    #[test]
    fn cpal_smoke_open_default_or_clean_error() {
        let default = Backend::Cpal {
            host: Host::Auto,
            input: None,
            output: None,
            ring_output: None,
        };
        match open(&default) {
            Ok(mut dev) => {
                let mut frame = [0i16; FRAME_SAMPLES];
                for _ in 0..5 {
                    dev.read_frame(&mut frame);
                    dev.write_ring_frame(&frame);
                    dev.write_frame(&frame);
                    let _ = dev.poll_notice();
                }
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    matches!(
                        e,
                        DeviceError::NoDefaultDevice { .. }
                            | DeviceError::Stream { .. }
                            | DeviceError::Host(_)
                    ),
                    "unexpected error kind: {text}"
                );
                assert!(
                    text.contains("input") || text.contains("output") || text.contains("audio")
                );
            }
        }
        let bogus = Backend::Cpal {
            host: Host::Auto,
            input: Some("no such device 7f3a".into()),
            output: None,
            ring_output: None,
        };
        let err = open(&bogus).err().expect("a made-up device cannot open");
        assert!(
            err.to_string().contains("no such device 7f3a"),
            "the error names the device: {err}"
        );
        // Listing never panics either.
        if let Ok(devices) = list_devices(Host::Auto) {
            for d in devices {
                assert!(!d.name.is_empty());
                assert!(d.default_config.as_ref().is_none_or(|c| !c.is_empty()));
            }
        }
    }
}
