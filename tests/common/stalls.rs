//! The machine's own stalls, measured beside a run: one thread per CPU, pinned to it, at the
//! media thread's nice value, wakes every millisecond and notes each wake-up that came late
//! by more than a threshold. A thread that asks for 1 ms and gets 8 was kept off its CPU for
//! 7 ms: by a hypervisor's pause of the virtual CPU, a kernel section that would not yield,
//! or a thread of the same or a higher priority that held the CPU (a sound server's real-time
//! threads, the measured program's own). Where every CPU was stalled at once no thread of
//! that priority could run anywhere: the machine stood still for the program and its sound
//! server alike. The benches set each of their dropouts beside these.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

/// How often each monitor thread wakes.
const INTERVAL: Duration = Duration::from_millis(1);

/// One late wake-up: the CPU, when the thread woke, and how late.
#[derive(Debug, Clone, Copy)]
pub struct Stall {
    pub cpu: usize,
    pub woke: SystemTime,
    pub late: Duration,
}

impl Stall {
    /// When the thread should have woken: the stall's start.
    pub fn start(&self) -> SystemTime {
        self.woke - self.late
    }
}

/// A time span: from, to.
pub type Span = (SystemTime, SystemTime);

/// What the monitor saw: how many CPUs it watched, and each late wake-up by start time.
#[derive(Debug, Clone)]
pub struct Stalls {
    pub cpus: usize,
    pub each: Vec<Stall>,
}

impl Stalls {
    /// The spans in which every CPU was stalled at once.
    pub fn everywhere(&self) -> Vec<Span> {
        let mut edges: Vec<(SystemTime, i32)> = self
            .each
            .iter()
            .flat_map(|s| [(s.start(), 1), (s.woke, -1)])
            .collect();
        edges.sort_by_key(|&(at, step)| (at, step));
        let mut spans = Vec::new();
        let (mut stalled, mut since) = (0, None);
        for (at, step) in edges {
            stalled += step;
            if stalled == self.cpus as i32 {
                since = Some(at);
            } else if let Some(from) = since.take() {
                spans.push((from, at));
            }
        }
        spans
    }
}

/// The running monitor threads.
pub struct StallMonitor {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Stall>>>,
}

impl StallMonitor {
    /// Starts one thread per CPU noting wake-ups later than `threshold`; each stops by itself
    /// after `limit` if [`finish`](Self::finish) is not called first.
    pub fn start(threshold: Duration, limit: Duration) -> StallMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (0..cpus)
            .map(|cpu| {
                let stop = stop.clone();
                thread::Builder::new()
                    .name(format!("stalls-{cpu}"))
                    .spawn(move || watch(cpu, threshold, limit, &stop))
                    .expect("starting a stall monitor thread")
            })
            .collect();
        StallMonitor { stop, threads }
    }

    /// Stops the threads; what they saw.
    pub fn finish(self) -> Stalls {
        self.stop.store(true, Ordering::Relaxed);
        let cpus = self.threads.len();
        let mut each: Vec<Stall> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_default())
            .collect();
        each.sort_by_key(Stall::start);
        Stalls { cpus, each }
    }
}

#[allow(clippy::disallowed_methods)] // measuring real time
fn watch(cpu: usize, threshold: Duration, limit: Duration, stop: &AtomicBool) -> Vec<Stall> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let _ = rustix::thread::sched_setaffinity(None, &set);
    let me = Some(rustix::thread::gettid());
    let _ = rustix::process::setpriority_process(me, switchboard::media::priority::MEDIA_NICE);
    let started = Instant::now();
    let mut next = started + INTERVAL;
    let mut stalls = Vec::new();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
        let now = Instant::now();
        if now < next {
            thread::sleep(next - now);
        }
        let woke = Instant::now();
        let late = woke.saturating_duration_since(next);
        if late > threshold {
            stalls.push(Stall {
                cpu,
                woke: SystemTime::now(),
                late,
            });
        }
        next = woke.max(next) + INTERVAL;
    }
    stalls
}
