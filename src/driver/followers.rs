//! The threads that follow the calls' events off the run loop: the call history's writer
//! (which owns the history file) and the hooks' starter (which spawns the `[hooks]` commands).
//!
//! The run loop only sends: each event about a call goes, with the wall-clock time it was
//! seen, through a channel to each thread, so neither a slow disk (`fsync`, a full pipe, a
//! network file system) nor a slow `fork` holds SIP or TLS up, and a stuck history file does
//! not hold the screen pops up either.
//!
//! ```text
//!   run loop ──(Event, time)──► history thread: load, then per batch: write each record, sync once
//!            └─(Event, time)──► hooks thread:   Hooks::observe (spawn; its watcher reaps)
//! ```
//!
//! The history thread writes every record as it arrives and syncs once per batch of records
//! that queued up meanwhile, so a crash loses at most the calls that ended in the last moment
//! (under a second unless the disk itself stalls). [`Followers::close`] lets both threads
//! finish what is queued, within a bounded wait, when the run loop ends.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::history::History;
use crate::hooks::Hooks;
use crate::sip::Event;

/// How many past calls are kept in memory when the history file cannot be opened.
const IN_MEMORY_HISTORY: usize = 1_000;

/// How long [`Followers::close`] waits for the threads to finish what is queued.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// At most this many records are written between two syncs, however fast calls end.
const BATCH: usize = 100;

/// Where the call history is kept: the file (`None`: memory only) and how many records to load.
#[derive(Debug, Clone)]
pub struct HistoryFile {
    /// The history file; `None` when there is no data directory.
    pub path: Option<PathBuf>,
    /// How many of its latest records are kept in memory.
    pub load: usize,
}

/// One following thread: its feed, and a channel that closes when it ends.
struct Follower {
    feed: mpsc::Sender<(Event, SystemTime)>,
    ended: mpsc::Receiver<()>,
    name: &'static str,
}

impl Follower {
    /// Starts `follow` on a thread named `name`; `None` (logged) when no thread can start.
    fn start(
        name: &'static str,
        follow: impl FnOnce(mpsc::Receiver<(Event, SystemTime)>) + Send + 'static,
    ) -> Option<Follower> {
        let (feed, rx) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let started = thread::Builder::new().name(name.into()).spawn(move || {
            let _ended = ended_tx;
            follow(rx);
        });
        match started {
            Ok(_) => Some(Follower { feed, ended, name }),
            Err(error) => {
                tracing::warn!(thread = name, %error, "cannot start a thread; its events are dropped");
                None
            }
        }
    }
}

/// The history and hooks threads, as the run loop sees them: two channel senders.
pub struct Followers {
    history: Option<Follower>,
    hooks: Option<Follower>,
}

impl Followers {
    /// Starts the history thread (it loads `history` itself, so a slow or blocked file delays
    /// nothing else) and the hooks thread.
    pub fn start(history: HistoryFile, hooks: Hooks) -> Followers {
        Followers {
            history: Follower::start("history", move |rx| keep_history(&history, &rx)),
            hooks: Follower::start("hooks", move |rx| run_hooks(hooks, &rx)),
        }
    }

    /// Hands `event`, seen at `at`, to both threads when it is about a call. Never waits.
    pub fn observe(&self, event: &Event, at: SystemTime) {
        if !matches!(
            event,
            Event::Incoming { .. }
                | Event::Call { .. }
                | Event::Transfer { .. }
                | Event::Refused { .. }
                | Event::Wrapup { .. }
        ) {
            return;
        }
        for follower in [&self.history, &self.hooks].into_iter().flatten() {
            if follower.feed.send((event.clone(), at)).is_err() {
                tracing::warn!(
                    thread = follower.name,
                    "a follower thread stopped; event dropped"
                );
            }
        }
    }

    /// Ends the feeds and waits, at most a couple of seconds in all, for both threads to write
    /// and start what is queued. For the end of the run loop only.
    pub fn close(self) {
        let deadline = clock() + CLOSE_WAIT;
        for follower in [self.history, self.hooks].into_iter().flatten() {
            let Follower { feed, ended, name } = follower;
            drop(feed);
            let left = deadline.saturating_duration_since(clock());
            if let Err(mpsc::RecvTimeoutError::Timeout) = ended.recv_timeout(left) {
                tracing::warn!(
                    thread = name,
                    "still busy at exit; what it had queued is lost"
                );
            }
        }
    }
}

/// The clock, for the bounded wait at exit.
#[allow(clippy::disallowed_methods)] // The driver is where time enters.
fn clock() -> Instant {
    Instant::now()
}

/// The history thread: opens the file (or keeps the history in memory), then writes the
/// records of ended calls, syncing once per batch.
fn keep_history(file: &HistoryFile, rx: &mpsc::Receiver<(Event, SystemTime)>) {
    let mut history = match &file.path {
        Some(path) => History::load(path, file.load).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "call history not available; keeping it in memory");
            History::in_memory(IN_MEMORY_HISTORY)
        }),
        None => {
            tracing::warn!("no data directory for the call history; keeping it in memory");
            History::in_memory(IN_MEMORY_HISTORY)
        }
    };
    while let Ok(first) = rx.recv() {
        for (event, at) in std::iter::once(first).chain(rx.try_iter().take(BATCH - 1)) {
            if let Err(e) = history.observe(&event, at) {
                tracing::warn!(error = %e, "could not write the call history");
            }
        }
        if let Err(e) = history.sync() {
            tracing::warn!(error = %e, "could not sync the call history");
        }
    }
}

/// The hooks thread: each event may start a hook.
fn run_hooks(mut hooks: Hooks, rx: &mpsc::Receiver<(Event, SystemTime)>) {
    for (event, _) in rx {
        hooks.observe(&event);
    }
}
