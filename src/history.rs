//! Call history: every finished call as one [`Record`], appended to a JSON Lines file.
//!
//! This module owns turning the [`Event`] stream into records (who, when, how long, how it
//! ended, including transfers) and the history file: one JSON object per line, appended as
//! each call ends and synced by [`History::sync`] (the driver's history thread syncs after
//! each batch of records, so a crash loses at most the calls of the last moment); loading
//! tolerates a torn or malformed line (skipped with a warning). A path that is not a regular
//! file (a named pipe a logger reads, `/dev/null`) is only written to: never read back or
//! synced. It must not read the clock (`now` is an argument), send anything or know how the
//! records are shown.
//!
//! ```text
//!   Incoming ─┐                         ┌─ Connected (first time): answered at `now`
//!             ├─► call pending ─────────┼─ Transfer succeeded / failed: noted
//!   Call (first seen, outgoing) ─┘      └─ Call Ended ─► Record ─► file (write) + memory
//!                                                        sync() ─► file synced to disk
//! ```
//!
//! Outcomes, decided when the call ends, first rule that applies:
//! a transfer succeeded → `transferred` (to its target); a transfer failed and the call came
//! back → `transfer_failed`; the call was connected → `answered`; an incoming call ended by
//! the caller (or the network) → `missed`, by the operator (decline, hangup) → `declined`;
//! an outgoing call with status 486/600 → `busy`, 403/603/607/608 → `rejected`, 487 or no
//! status (ended here: hangup, nothing sent) → `cancelled`, any other status → `failed`.
//! A call refused without ringing (`refused`: do not disturb, busy wrap-up) is `missed`, with
//! line 0 and the reason. A call whose `wrapup` started waits for the wrap-up's outcome
//! (saved, skipped, expired: the core closes every open wrap-up when it quits) and is
//! written with it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::sip::{CallState, Event, LineNo, TransferStatus, WrapupStatus};

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The far end called us.
    In,
    /// We called the far end.
    Out,
}

/// How a call ended. Serialised as `{"kind": "...", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Connected, then ended normally.
    Answered,
    /// Incoming, never answered; the caller gave up (or the network ended it).
    Missed,
    /// Incoming, never answered; the operator declined or hung up while it rang.
    Declined,
    /// Outgoing, the far end was busy (486, 600).
    Busy {
        /// The SIP status.
        status: u16,
    },
    /// Outgoing, the far end refused the call (403, 603, 607, 608).
    Rejected {
        /// The SIP status.
        status: u16,
    },
    /// Outgoing, the call failed for another reason (404, 408, 480, 488, 5xx, …).
    Failed {
        /// The SIP status.
        status: u16,
    },
    /// Outgoing, ended here before it was answered (hangup, or nothing could be sent).
    Cancelled,
    /// A transfer succeeded: the call went to `to`.
    Transferred {
        /// The transfer target (SIP URI).
        to: String,
    },
    /// A transfer to `to` failed and the call came back; it continued until it ended.
    TransferFailed {
        /// The transfer target (SIP URI).
        to: String,
    },
}

impl fmt::Display for Outcome {
    /// The operator's words: `answered`, `busy (486)`, `transferred to 2001`, ….
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered => f.write_str("answered"),
            Outcome::Missed => f.write_str("missed"),
            Outcome::Declined => f.write_str("declined"),
            Outcome::Busy { status } => write!(f, "busy ({status})"),
            Outcome::Rejected { status } => write!(f, "rejected ({status})"),
            Outcome::Failed { status } => write!(f, "failed ({status})"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::Transferred { to } => write!(f, "transferred to {}", peer_number(to)),
            Outcome::TransferFailed { to } => {
                write!(f, "transfer to {} failed", peer_number(to))
            }
        }
    }
}

/// One finished call, as written to the history file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When the call started (arrived or was dialled); unix seconds in the file.
    #[serde(with = "unix_seconds")]
    pub started: SystemTime,
    /// `in` or `out`.
    pub direction: Direction,
    /// The far end's number (the user part of its URI).
    pub number: String,
    /// The far end's URI.
    pub uri: String,
    /// The far end's display name, when it sent one.
    #[serde(default)]
    pub name: Option<String>,
    /// The line the call was on.
    pub line: LineNo,
    /// SIP Call-ID (to find the call in the log).
    pub call_id: String,
    /// Seconds connected; 0 for a call never answered.
    pub duration_s: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it ended, in the user agent's words, when it said.
    #[serde(default)]
    pub reason: Option<String>,
    /// The after-call wrap-up (`[wrapup]`), when one ran; absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapup: Option<WrapupRecord>,
}

/// What the operator recorded after a call (the `wrapup` events' outcome).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapupRecord {
    /// `saved`, `skipped` or `expired`.
    pub status: WrapupStatus,
    /// The disposition code chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The note typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Serialises a [`SystemTime`] as whole seconds since the Unix epoch.
mod unix_seconds {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        s.serialize_u64(secs)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?;
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| serde::de::Error::custom("time out of range"))
    }
}

/// What went wrong with the history file. The call itself is never affected.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file (or its directory) could not be opened or read.
    #[error("cannot open the call history {}: {source}", path.display())]
    Open {
        /// The history file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// A record could not be written; it is still kept in memory (see [`History::records`]).
    #[error("cannot write to the call history {}: {source}", path.display())]
    Write {
        /// The history file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
        /// The record that was not written.
        record: Box<Record>,
    },
    /// The records written could not be synced to disk.
    #[error("cannot sync the call history {}: {source}", path.display())]
    Sync {
        /// The history file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// The user part of a SIP or tel URI, percent-decoded: `"Bob" <sip:2001@pbx;x=y>` → `2001`,
/// `tel:+4420;phone-context=x` → `+4420`; a URI without a user part gives its host.
pub fn peer_number(uri: &str) -> String {
    let mut s = uri.trim();
    if let Some(start) = s.find('<') {
        s = s[start + 1..].split('>').next().unwrap_or_default();
    }
    for scheme in ["sips:", "sip:", "tel:"] {
        if s.len() >= scheme.len() && s[..scheme.len()].eq_ignore_ascii_case(scheme) {
            s = &s[scheme.len()..];
            break;
        }
    }
    let user = match s.split_once('@') {
        Some((user, _)) => user,
        None => s.split(['?', ':']).next().unwrap_or_default(),
    };
    let user = user.split([';', '?']).next().unwrap_or_default();
    percent_decode(user)
}

/// Decodes `%XX` escapes; a malformed escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A call seen but not yet ended.
#[derive(Debug, Clone)]
struct Pending {
    started: SystemTime,
    direction: Direction,
    uri: String,
    name: Option<String>,
    line: LineNo,
    answered: Option<SystemTime>,
    transferred: Option<String>,
    transfer_failed: Option<String>,
}

impl Pending {
    fn new(now: SystemTime, direction: Direction, uri: &str, line: LineNo) -> Self {
        Self {
            started: now,
            direction,
            uri: uri.to_owned(),
            name: None,
            line,
            answered: None,
            transferred: None,
            transfer_failed: None,
        }
    }

    /// The record of this call, ended at `now` with `status`.
    fn finish(
        self,
        call_id: &str,
        status: Option<u16>,
        reason: Option<String>,
        now: SystemTime,
    ) -> Record {
        let outcome = if let Some(to) = self.transferred {
            Outcome::Transferred { to }
        } else if let Some(to) = self.transfer_failed {
            Outcome::TransferFailed { to }
        } else if self.answered.is_some() {
            Outcome::Answered
        } else if self.direction == Direction::In {
            match status {
                Some(_) => Outcome::Missed,
                None => Outcome::Declined,
            }
        } else {
            match status {
                None | Some(487) => Outcome::Cancelled,
                Some(status @ (486 | 600)) => Outcome::Busy { status },
                Some(status @ (403 | 603 | 607 | 608)) => Outcome::Rejected { status },
                Some(status) => Outcome::Failed { status },
            }
        };
        let duration_s = self
            .answered
            .map_or(0, |at| now.duration_since(at).map_or(0, |d| d.as_secs()));
        Record {
            started: self.started,
            direction: self.direction,
            number: peer_number(&self.uri),
            uri: self.uri,
            name: self.name,
            line: self.line,
            call_id: call_id.to_owned(),
            duration_s,
            outcome,
            reason,
            wrapup: None,
        }
    }
}

/// The history file, open for appending.
#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    /// A regular file (synced), not a pipe or a device (only written to).
    regular: bool,
    /// Written since the last sync.
    dirty: bool,
}

/// The call history: calls under way, the latest finished records and the file.
#[derive(Debug)]
pub struct History {
    calls: HashMap<String, Pending>,
    /// Calls whose wrap-up started: their records wait for its outcome.
    wrapping: HashSet<String>,
    /// Records of ended calls waiting for their wrap-up's outcome.
    parked: HashMap<String, Record>,
    records: VecDeque<Record>,
    limit: usize,
    journal: Option<Journal>,
}

impl History {
    /// A history kept in memory only (no file), holding at most `limit` records.
    pub fn in_memory(limit: usize) -> History {
        History {
            calls: HashMap::new(),
            wrapping: HashSet::new(),
            parked: HashMap::new(),
            records: VecDeque::new(),
            limit: limit.max(1),
            journal: None,
        }
    }

    /// Opens the history file at `path` (creating it and its directory when missing), keeps
    /// its last `limit` records in memory and appends new ones to it.
    ///
    /// A line that is not a record (torn by a crash, edited by hand) is skipped with a warning;
    /// only a file that cannot be opened or read is an error. An unterminated last line is
    /// closed with a newline so that the next record starts on its own line. A path that is
    /// not a regular file (a named pipe, a device) is opened for writing only: nothing is read.
    pub fn load(path: &Path, limit: usize) -> Result<History, HistoryError> {
        let open_error = |source| HistoryError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(open_error)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_error)?;
        let mut history = History::in_memory(limit);
        let regular = file.metadata().map_err(open_error)?.is_file();
        if regular && !history.read_records(&file, path).map_err(open_error)? {
            file.write_all(b"\n").map_err(open_error)?;
        }
        history.journal = Some(Journal {
            path: path.to_path_buf(),
            file,
            regular,
            dirty: false,
        });
        Ok(history)
    }

    /// The last `limit` records of the history file at `path`, read without opening it for
    /// writing (for the history view and the picker, while the history thread appends): a
    /// missing file is an empty history, and so is a path that is not a regular file (a named
    /// pipe is never opened: that could wait for a writer). Lines that are not records are
    /// skipped as by [`History::load`].
    pub fn read(path: &Path, limit: usize) -> Result<History, HistoryError> {
        let open_error = |source| HistoryError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut history = History::in_memory(limit);
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Ok(history),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(history),
            Err(e) => return Err(open_error(e)),
        }
        let file = File::open(path).map_err(open_error)?;
        history.read_records(&file, path).map_err(open_error)?;
        Ok(history)
    }

    /// Reads every record of `file` into memory, skipping (with a warning) lines that are not
    /// records; returns whether the last line was terminated.
    fn read_records(&mut self, file: &File, path: &Path) -> io::Result<bool> {
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0usize;
        let mut terminated = true;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(terminated);
            }
            number += 1;
            terminated = line.last() == Some(&b'\n');
            let text = line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Record>(text) {
                Ok(record) => self.remember(record),
                Err(error) if !terminated => tracing::warn!(
                    path = %path.display(), line = number, %error,
                    "skipping the incomplete last line of the call history (left by a crash?)"
                ),
                Err(error) => tracing::warn!(
                    path = %path.display(), line = number, %error,
                    "skipping a line of the call history that is not a record"
                ),
            }
        }
    }

    /// The history file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        self.journal.as_ref().map(|j| j.path.as_path())
    }

    /// Follows one event; when it ends a call, returns the call's record, already written to
    /// the file (not yet synced: see [`History::sync`]) and kept in memory. Events that are not
    /// about calls are ignored.
    ///
    /// A write error returns [`HistoryError::Write`] carrying the record, which is still kept
    /// in memory; the next record is written as usual.
    pub fn observe(
        &mut self,
        event: &Event,
        now: SystemTime,
    ) -> Result<Option<Record>, HistoryError> {
        let Some(record) = self.track(event, now) else {
            return Ok(None);
        };
        self.remember(record.clone());
        if let Some(journal) = &mut self.journal {
            journal.dirty = true;
            if let Err(source) = append(&mut journal.file, &record) {
                return Err(HistoryError::Write {
                    path: journal.path.clone(),
                    source,
                    record: Box::new(record),
                });
            }
        }
        Ok(Some(record))
    }

    /// Syncs the records written since the last sync to disk (a regular file only); a
    /// no-op when nothing was written.
    pub fn sync(&mut self) -> Result<(), HistoryError> {
        let Some(journal) = self.journal.as_mut().filter(|j| j.dirty) else {
            return Ok(());
        };
        journal.dirty = false;
        if !journal.regular {
            return Ok(());
        }
        journal
            .file
            .sync_data()
            .map_err(|source| HistoryError::Sync {
                path: journal.path.clone(),
                source,
            })
    }

    /// The records in memory, oldest first (at most the `limit` given when created).
    pub fn records(&self) -> impl DoubleEndedIterator<Item = &Record> + ExactSizeIterator {
        self.records.iter()
    }

    /// Each number in the records once, most recent call first: the number, the latest display
    /// name known for it, and when its latest call started. For the directory picker.
    pub fn recent_numbers(&self) -> Vec<(String, Option<String>, SystemTime)> {
        // Records are appended as calls end; sort by start so a long call does not hide a
        // later short one.
        let mut by_start: Vec<&Record> = self.records.iter().collect();
        by_start.sort_by_key(|r| std::cmp::Reverse(r.started));
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<(String, Option<String>, SystemTime)> = Vec::new();
        for record in by_start.into_iter().filter(|r| !r.number.is_empty()) {
            match index.get(record.number.as_str()) {
                Some(&at) if out[at].1.is_none() => out[at].1.clone_from(&record.name),
                Some(_) => {}
                None => {
                    index.insert(&record.number, out.len());
                    out.push((record.number.clone(), record.name.clone(), record.started));
                }
            }
        }
        out
    }

    /// Updates the calls under way; returns the record of a call that ended.
    fn track(&mut self, event: &Event, now: SystemTime) -> Option<Record> {
        match event {
            Event::Incoming {
                line,
                call_id,
                from,
                display_name,
                ..
            } => {
                let pending = self
                    .calls
                    .entry(call_id.clone())
                    .or_insert_with(|| Pending::new(now, Direction::In, from, *line));
                pending.name.clone_from(display_name);
                None
            }
            Event::Call {
                line,
                call_id,
                state: CallState::Ended,
                peer,
                status,
                reason,
                ..
            } => {
                let pending = self
                    .calls
                    .remove(call_id)
                    .unwrap_or_else(|| Pending::new(now, Direction::Out, peer, *line));
                let record = pending.finish(call_id, *status, reason.clone(), now);
                if self.wrapping.remove(call_id) {
                    self.parked.insert(call_id.clone(), record);
                    return None;
                }
                Some(record)
            }
            Event::Refused {
                call_id,
                from,
                display_name,
                status,
                reason,
            } => {
                let mut pending = Pending::new(now, Direction::In, from, 0);
                pending.name.clone_from(display_name);
                Some(pending.finish(call_id, Some(*status), Some(reason.clone()), now))
            }
            Event::Wrapup {
                call_id,
                status: WrapupStatus::Started,
                ..
            } => {
                if self.calls.contains_key(call_id) {
                    self.wrapping.insert(call_id.clone());
                }
                None
            }
            Event::Wrapup {
                call_id,
                status,
                code,
                note,
                ..
            } => {
                self.wrapping.remove(call_id);
                let mut record = self.parked.remove(call_id)?;
                record.wrapup = Some(WrapupRecord {
                    status: *status,
                    code: code.clone(),
                    note: note.clone(),
                });
                Some(record)
            }
            Event::Call {
                line,
                call_id,
                state,
                peer,
                ..
            } => {
                let pending = self
                    .calls
                    .entry(call_id.clone())
                    .or_insert_with(|| Pending::new(now, Direction::Out, peer, *line));
                pending.line = *line;
                let talking = matches!(
                    state,
                    CallState::Connected | CallState::Held | CallState::RemoteHeld
                );
                if talking && pending.answered.is_none() {
                    pending.answered = Some(now);
                }
                None
            }
            Event::Transfer {
                call_id,
                status,
                target,
                ..
            } => {
                if let Some(pending) = self.calls.get_mut(call_id) {
                    match status {
                        TransferStatus::Succeeded => pending.transferred = Some(target.clone()),
                        TransferStatus::Failed | TransferStatus::Recalled => {
                            pending.transfer_failed = Some(target.clone());
                        }
                        _ => {}
                    }
                }
                None
            }
            _ => None,
        }
    }

    /// Keeps a record in memory, dropping the oldest beyond the limit.
    fn remember(&mut self, record: Record) {
        if self.records.len() == self.limit {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }
}

/// Writes one record as a line.
fn append(file: &mut File, record: &Record) -> io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::sip::TransferKind;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn incoming(call_id: &str, from: &str, name: Option<&str>) -> Event {
        Event::Incoming {
            line: 1,
            call_id: call_id.into(),
            from: from.into(),
            display_name: name.map(Into::into),
            referred_by: None,
            replaces: None,
            account: "desk".into(),
        }
    }

    fn call(call_id: &str, state: CallState, peer: &str, status: Option<u16>) -> Event {
        Event::Call {
            line: 2,
            call_id: call_id.into(),
            state,
            peer: peer.into(),
            status,
            reason: (state == CallState::Ended).then(|| "ended".to_owned()),
            account: None,
        }
    }

    fn transfer(call_id: &str, status: TransferStatus, target: &str) -> Event {
        Event::Transfer {
            line: 1,
            call_id: call_id.into(),
            kind: TransferKind::Blind,
            mechanism: None,
            status,
            target: target.into(),
            status_code: None,
            reason: None,
        }
    }

    /// Feeds `(seconds, event)` pairs; returns every record produced.
    fn run(history: &mut History, events: &[(u64, Event)]) -> Vec<Record> {
        events
            .iter()
            .filter_map(|(t, e)| history.observe(e, at(*t)).expect("in memory"))
            .collect()
    }

    const ALICE: &str = "sip:1001@pbx.test";

    #[test]
    fn incoming_answered_then_ended() {
        let mut history = History::in_memory(10);
        let records = run(
            &mut history,
            &[
                (
                    0,
                    incoming("a", "<sip:1001@pbx.test;user=phone>", Some("Alice")),
                ),
                (5, call("a", CallState::Connected, ALICE, None)),
                (20, call("a", CallState::Held, ALICE, None)),
                (65, call("a", CallState::Ended, ALICE, None)),
            ],
        );
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (r.direction, r.number.as_str(), r.name.as_deref(), r.line),
            (Direction::In, "1001", Some("Alice"), 2)
        );
        assert_eq!((r.started, r.duration_s), (at(0), 60));
        assert_eq!(r.outcome, Outcome::Answered);
        assert_eq!(r.reason.as_deref(), Some("ended"));
        assert_eq!(history.records().len(), 1);
    }

    #[test]
    fn incoming_missed_or_declined() {
        let mut history = History::in_memory(10);
        let records = run(
            &mut history,
            &[
                (0, incoming("a", ALICE, None)),
                (0, call("a", CallState::Ringing, ALICE, None)),
                (9, call("a", CallState::Ended, ALICE, Some(487))),
                (10, incoming("b", ALICE, None)),
                (12, call("b", CallState::Ended, ALICE, None)),
            ],
        );
        let outcomes: Vec<_> = records
            .iter()
            .map(|r| (r.outcome.clone(), r.duration_s))
            .collect();
        assert_eq!(outcomes, [(Outcome::Missed, 0), (Outcome::Declined, 0)]);
        assert!(records.iter().all(|r| r.direction == Direction::In));
    }

    #[test]
    fn outgoing_busy_rejected_failed_cancelled() {
        let mut history = History::in_memory(10);
        let bob = "sip:2002@pbx.test";
        let mut events = Vec::new();
        for (i, status) in [Some(486), Some(603), Some(404), None]
            .into_iter()
            .enumerate()
        {
            let id = format!("c{i}");
            events.push((0, call(&id, CallState::Dialing, bob, None)));
            events.push((1, call(&id, CallState::Ringing, bob, None)));
            events.push((3, call(&id, CallState::Ended, bob, status)));
        }
        let records = run(&mut history, &events);
        let outcomes: Vec<_> = records.iter().map(|r| r.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Busy { status: 486 },
                Outcome::Rejected { status: 603 },
                Outcome::Failed { status: 404 },
                Outcome::Cancelled
            ]
        );
        assert!(records
            .iter()
            .all(|r| r.direction == Direction::Out && r.number == "2002"));
        assert_eq!(records[0].outcome.to_string(), "busy (486)");
    }

    #[test]
    fn blind_transfer_succeeded() {
        let mut history = History::in_memory(10);
        let target = "sip:3003@pbx.test";
        let records = run(
            &mut history,
            &[
                (0, incoming("a", ALICE, Some("Alice"))),
                (2, call("a", CallState::Connected, ALICE, None)),
                (30, transfer("a", TransferStatus::Requested, target)),
                (31, call("a", CallState::Held, ALICE, None)),
                (32, transfer("a", TransferStatus::Ringing, target)),
                (40, transfer("a", TransferStatus::Succeeded, target)),
                (40, call("a", CallState::Ended, ALICE, None)),
            ],
        );
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].outcome,
            Outcome::Transferred { to: target.into() }
        );
        assert_eq!(records[0].outcome.to_string(), "transferred to 3003");
        assert_eq!(records[0].duration_s, 38);
    }

    #[test]
    fn transfer_failed_recalled_then_hung_up_later() {
        let mut history = History::in_memory(10);
        let target = "sip:3003@pbx.test";
        let first = run(
            &mut history,
            &[
                (0, incoming("a", ALICE, None)),
                (1, call("a", CallState::Connected, ALICE, None)),
                (10, transfer("a", TransferStatus::Requested, target)),
                (15, transfer("a", TransferStatus::Failed, target)),
                (15, transfer("a", TransferStatus::Recalled, target)),
                (16, call("a", CallState::Connected, ALICE, None)),
            ],
        );
        assert!(first.is_empty(), "the call continues after the recall");
        let records = run(
            &mut history,
            &[(101, call("a", CallState::Ended, ALICE, None))],
        );
        assert_eq!(
            records[0].outcome,
            Outcome::TransferFailed { to: target.into() }
        );
        assert_eq!(records[0].outcome.to_string(), "transfer to 3003 failed");
        assert_eq!(records[0].duration_s, 100, "counted from the first answer");
    }

    #[test]
    fn persistence_round_trip_and_recent_numbers() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nested").join("history.jsonl");
        let mut history = History::load(&path, 100).expect("new file");
        assert_eq!(history.path(), Some(path.as_path()));
        let records = run(
            &mut history,
            &[
                (0, incoming("a", ALICE, Some("Alice"))),
                (1, call("a", CallState::Connected, ALICE, None)),
                (10, call("a", CallState::Ended, ALICE, None)),
                (
                    20,
                    call("b", CallState::Dialing, "sip:%2A72@pbx.test", None),
                ),
                (
                    21,
                    call("b", CallState::Ended, "sip:%2A72@pbx.test", Some(486)),
                ),
                (30, call("c", CallState::Dialing, ALICE, None)),
                (31, call("c", CallState::Ended, ALICE, Some(480))),
            ],
        );
        assert_eq!(records.len(), 3);
        history.sync().expect("synced");
        drop(history);

        let text = std::fs::read_to_string(&path).expect("written");
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.contains("\"started\":1700000000,\"direction\":\"in\""),
            "{text}"
        );

        let loaded = History::load(&path, 2).expect("reload");
        let kept: Vec<&Record> = loaded.records().collect();
        assert_eq!(
            kept,
            records[1..].iter().collect::<Vec<_>>(),
            "the last two"
        );
        let recent = loaded.recent_numbers();
        assert_eq!(
            recent,
            [
                ("1001".to_owned(), None, at(30)),
                ("*72".to_owned(), None, at(20))
            ]
        );
        let all = History::load(&path, 10).expect("reload");
        assert_eq!(
            all.recent_numbers()[0],
            ("1001".to_owned(), Some("Alice".to_owned()), at(30)),
            "the name from an older call fills in"
        );
    }

    fn wrapup(call_id: &str, status: WrapupStatus, code: Option<&str>) -> Event {
        Event::Wrapup {
            line: 2,
            call_id: call_id.into(),
            peer: ALICE.into(),
            status,
            codes: Vec::new(),
            seconds: None,
            required: false,
            code: code.map(Into::into),
            note: code.map(|_| "two seats".to_owned()),
        }
    }

    #[test]
    fn a_wrapped_up_call_is_written_with_its_wrap_up_and_read_back() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("history.jsonl");
        let mut history = History::load(&path, 10).expect("new file");
        let records = run(
            &mut history,
            &[
                (0, incoming("a", ALICE, None)),
                (1, call("a", CallState::Connected, ALICE, None)),
                (9, wrapup("a", WrapupStatus::Started, None)),
                (9, call("a", CallState::Ended, ALICE, None)),
            ],
        );
        assert!(records.is_empty(), "the record waits for the wrap-up");
        let records = run(
            &mut history,
            &[(20, wrapup("a", WrapupStatus::Saved, Some("sale")))],
        );
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].duration_s, 8,
            "timed at the end, not the wrap-up"
        );
        assert_eq!(
            records[0].wrapup,
            Some(WrapupRecord {
                status: WrapupStatus::Saved,
                code: Some("sale".into()),
                note: Some("two seats".into()),
            })
        );
        drop(history);
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(
            text.contains(r#""wrapup":{"status":"saved","code":"sale","note":"two seats"}"#),
            "{text}"
        );
        let loaded = History::read(&path, 10).expect("read back");
        assert_eq!(loaded.records().next(), Some(&records[0]));
    }

    #[test]
    fn a_refused_call_is_missed_with_its_reason_and_older_records_still_load() {
        let mut history = History::in_memory(10);
        let records = run(
            &mut history,
            &[(
                0,
                Event::Refused {
                    call_id: "r".into(),
                    from: ALICE.into(),
                    display_name: Some("Alice".into()),
                    status: 486,
                    reason: "do not disturb".into(),
                },
            )],
        );
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (r.direction, r.line, r.outcome.clone()),
            (Direction::In, 0, Outcome::Missed)
        );
        assert_eq!(r.reason.as_deref(), Some("do not disturb"));
        assert_eq!(r.name.as_deref(), Some("Alice"));
        let old = r#"{"started":1700000000,"direction":"in","number":"1","uri":"sip:1@x","line":1,"call_id":"c","duration_s":0,"outcome":{"kind":"missed"}}"#;
        let record: Record = serde_json::from_str(old).expect("a record without wrapup");
        assert_eq!(record.wrapup, None);
    }

    #[test]
    fn torn_and_garbage_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("history.jsonl");
        let mut history = History::load(&path, 10).expect("new file");
        run(
            &mut history,
            &[
                (0, incoming("a", ALICE, None)),
                (1, call("a", CallState::Ended, ALICE, Some(487))),
            ],
        );
        drop(history);
        let mut file = OpenOptions::new().append(true).open(&path).expect("append");
        file.write_all(b"not json\n\xff\xfe\n{\"started\":17000")
            .expect("torn write");
        drop(file);

        let mut history = History::load(&path, 10).expect("tolerated");
        assert_eq!(history.records().len(), 1);
        run(
            &mut history,
            &[
                (5, incoming("b", ALICE, None)),
                (6, call("b", CallState::Ended, ALICE, Some(487))),
            ],
        );
        drop(history);
        let reloaded = History::load(&path, 10).expect("tolerated again");
        let ids: Vec<&str> = reloaded.records().map(|r| r.call_id.as_str()).collect();
        assert_eq!(
            ids,
            ["a", "b"],
            "the new record was not glued to the torn line"
        );
    }

    #[test]
    fn reading_never_writes_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("history.jsonl");
        assert_eq!(
            History::read(&path, 10).expect("missing").records().len(),
            0
        );
        assert!(!path.exists(), "reading created nothing");
        let mut history = History::load(&path, 10).expect("new file");
        run(
            &mut history,
            &[(0, call("a", CallState::Ended, ALICE, Some(486)))],
        );
        drop(history);
        let mut file = OpenOptions::new().append(true).open(&path).expect("append");
        file.write_all(b"{\"started\":17000")
            .expect("a line being written");
        drop(file);
        let read = History::read(&path, 10).expect("reads");
        assert_eq!(read.records().len(), 1);
        assert_eq!(read.path(), None, "not open for writing");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(
            text.ends_with("{\"started\":17000"),
            "left as it was: {text}"
        );
    }

    #[test]
    fn a_device_is_only_written_to() {
        let mut history = History::load(Path::new("/dev/null"), 10).expect("opens");
        assert_eq!(history.records().len(), 0);
        let records = run(
            &mut history,
            &[(0, call("a", CallState::Ended, ALICE, Some(486)))],
        );
        assert_eq!(records.len(), 1);
        history.sync().expect("nothing to sync on a device");
    }

    #[test]
    fn unreadable_location_is_an_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").expect("write");
        let error = History::load(&blocker.join("history.jsonl"), 10).expect_err("not a dir");
        assert!(
            error
                .to_string()
                .starts_with("cannot open the call history"),
            "{error}"
        );
    }

    #[test]
    fn peer_numbers() {
        assert_eq!(peer_number("sip:1001@pbx.test"), "1001");
        assert_eq!(
            peer_number("\"Bob\" <SIP:2001@pbx;user=phone>;tag=x"),
            "2001"
        );
        assert_eq!(peer_number("sips:+44%2320@h"), "+44#20");
        assert_eq!(peer_number("tel:+4420;phone-context=x"), "+4420");
        assert_eq!(peer_number("sip:pbx.test:5060"), "pbx.test");
        assert_eq!(peer_number("sip:100%"), "100%");
        assert_eq!(peer_number(""), "");
    }

    #[test]
    fn limit_drops_the_oldest_and_other_events_are_ignored() {
        let mut history = History::in_memory(1);
        let ignored = Event::Line { line: 1 };
        assert_eq!(history.observe(&ignored, at(0)).expect("memory"), None);
        run(
            &mut history,
            &[
                (0, call("x", CallState::Ended, ALICE, Some(500))),
                (1, call("y", CallState::Ended, ALICE, Some(503))),
            ],
        );
        let ids: Vec<&str> = history.records().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, ["y"]);
    }
}
