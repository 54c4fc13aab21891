//! JSON-lines event streams from a peer's stdout: a reader thread, the history of every event,
//! and bounded waits that each return an event at most once (used by [`super::switchboard`]
//! and [`super::pjsua`]).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Why [`EventStream::wait`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFailed {
    /// Nothing matching arrived in time.
    Timeout,
    /// The stream ended (the peer exited) first.
    Ended,
}

/// The events read from one stream, in order, with which were already returned by a wait.
#[derive(Debug)]
pub struct EventStream {
    rx: Receiver<Value>,
    history: Vec<Value>,
    consumed: Vec<bool>,
    reader: Option<JoinHandle<()>>,
}

impl EventStream {
    /// Starts a thread `name` reading JSON lines from `source`; a line that is not JSON becomes
    /// `{"event":"_not_json","line":…}`.
    pub fn read(name: &str, source: impl Read + Send + 'static) -> EventStream {
        let (tx, rx) = mpsc::channel();
        let reader = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                for line in BufReader::new(source).lines() {
                    let Ok(line) = line else { break };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let event = serde_json::from_str::<Value>(&line).unwrap_or_else(|e| {
                        serde_json::json!({"event": "_not_json", "line": line, "error": e.to_string()})
                    });
                    if tx.send(event).is_err() {
                        break;
                    }
                }
            })
            .expect("spawning an event reader thread");
        EventStream {
            rx,
            history: Vec::new(),
            consumed: Vec::new(),
            reader: Some(reader),
        }
    }

    /// The earliest event not returned before that satisfies `pred`, waiting at most `timeout`.
    /// Events that do not match stay available for later waits.
    pub fn wait(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value, WaitFailed> {
        if let Some(ev) = self.take_matching(&mut pred) {
            return Ok(ev);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ev) => {
                    let matches = pred(&ev);
                    self.history.push(ev.clone());
                    self.consumed.push(matches);
                    if matches {
                        return Ok(ev);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(WaitFailed::Timeout),
                Err(RecvTimeoutError::Disconnected) => return Err(WaitFailed::Ended),
            }
        }
    }

    /// An event satisfying `pred` that arrived and was not returned by a wait, if any.
    pub fn unconsumed(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Option<Value> {
        self.drain();
        self.history
            .iter()
            .zip(&self.consumed)
            .find(|(ev, consumed)| !**consumed && pred(ev))
            .map(|(ev, _)| ev.clone())
    }

    /// Every event received so far, in order.
    pub fn history(&mut self) -> &[Value] {
        self.drain();
        &self.history
    }

    /// The history so far (see [`EventStream::drain`]), one event a line, `*` marking those
    /// returned by a wait.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (ev, consumed) in self.history.iter().zip(&self.consumed) {
            let _ = writeln!(out, "{} {ev}", if *consumed { "*" } else { " " });
        }
        if self.history.is_empty() {
            out.push_str("(none)\n");
        }
        out
    }

    /// Joins the reader thread (bounded); call once the peer is gone.
    pub fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            super::process::join_bounded(reader, Duration::from_secs(2));
        }
        self.drain();
    }

    /// Moves events that have arrived into the history without waiting.
    pub fn drain(&mut self) {
        while let Ok(ev) = self.rx.try_recv() {
            self.history.push(ev);
            self.consumed.push(false);
        }
    }

    fn take_matching(&mut self, pred: &mut impl FnMut(&Value) -> bool) -> Option<Value> {
        self.drain();
        let index = self
            .history
            .iter()
            .zip(&self.consumed)
            .position(|(ev, consumed)| !consumed && pred(ev))?;
        self.consumed[index] = true;
        Some(self.history[index].clone())
    }
}
