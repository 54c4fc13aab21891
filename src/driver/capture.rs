//! `--sip-capture FILE`: every SIP message sent and received, whole and unredacted, appended to
//! a file for a telephony engineer (and read back by the lab harness, which checks each message
//! switchboard sent against the RFC tables and that every 2xx to an INVITE was ACKed).
//!
//! The run loop never waits on the disk: messages go through a channel to a writer thread,
//! which flushes after each one (a crash loses at most the message being written).
//!
//! Format, one record per message:
//!
//! ```text
//! == out 127.0.0.1:5060 512 1733450000123
//! <512 bytes of the message>
//! ```
//!
//! (direction, peer, length in bytes, wall-clock time in Unix milliseconds).
//!
//! ```text
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use crate::front::TraceDirection;

/// The sending end of a capture file. Dropping it waits for the writer to write what is
/// queued (at exit: the capture ends with the last message).
#[derive(Debug)]
pub struct SipCapture {
    records: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<thread::JoinHandle<()>>,
}

impl SipCapture {
    /// Creates (or truncates) `path`, mode 0600 (it holds credentials and media keys), and
    /// starts its writer thread.
    pub fn create(path: &Path) -> io::Result<SipCapture> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let (records, rx) = mpsc::channel::<Vec<u8>>();
        let writer = thread::Builder::new()
            .name("sip-capture".into())
            .spawn(move || write_records(file, &rx))?;
        Ok(SipCapture {
            records: Some(records),
            writer: Some(writer),
        })
    }

    /// Queues one message; a writer that died (disk full) is logged once per message.
    pub fn record(&self, direction: TraceDirection, peer: SocketAddr, bytes: &[u8]) {
        let arrow = match direction {
            TraceDirection::In => "in",
            TraceDirection::Out => "out",
        };
        let at_ms = wall_clock_ms();
        let mut record = format!("== {arrow} {peer} {} {at_ms}\n", bytes.len()).into_bytes();
        record.extend_from_slice(bytes);
        record.push(b'\n');
        let sent = self.records.as_ref().map(|tx| tx.send(record));
        if !matches!(sent, Some(Ok(()))) {
            tracing::warn!("the SIP capture writer stopped; message not captured");
        }
    }
}

impl Drop for SipCapture {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has written the queue.
        self.records = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Milliseconds since the Unix epoch, for the record headers.
#[allow(clippy::disallowed_methods)] // The driver is where time enters.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn write_records(file: File, rx: &mpsc::Receiver<Vec<u8>>) {
    let mut out = BufWriter::new(file);
    for record in rx {
        if let Err(e) = out.write_all(&record).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "cannot write the SIP capture; stopping it");
            return;
        }
    }
}

/// One captured message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Sent or received.
    pub direction: TraceDirection,
    /// The far end.
    pub peer: String,
    /// When it was sent or received, in Unix milliseconds.
    pub at_ms: u64,
    /// The whole message.
    pub bytes: Vec<u8>,
}

/// Reads a capture file's records back; a record cut short by a crash ends the list.
pub fn parse(data: &[u8]) -> Vec<Captured> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..nl]);
        let mut words = header.split(' ');
        let (Some("=="), Some(arrow), Some(peer), Some(len), Some(at)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            break;
        };
        let Ok(at_ms) = at.parse::<u64>() else { break };
        let direction = match arrow {
            "in" => TraceDirection::In,
            "out" => TraceDirection::Out,
            _ => break,
        };
        let Ok(len) = len.parse::<usize>() else { break };
        let body = &rest[nl + 1..];
        if body.len() < len + 1 {
            break;
        }
        out.push(Captured {
            direction,
            peer: peer.to_owned(),
            at_ms,
            bytes: body[..len].to_vec(),
        });
        rest = &body[len + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_record_ends_the_list() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sip.capture");
        let capture = SipCapture::create(&path).expect("capture file");
        let peer: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        capture.record(TraceDirection::Out, peer, b"OPTIONS sip:a SIP/2.0\r\n\r\n");
        capture.record(TraceDirection::In, peer, b"SIP/2.0 200 OK\r\n\r\n== out");
        drop(capture); // waits for the writer
        let mut data = std::fs::read(&path).expect("read capture");
        let records = parse(&data);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].direction, TraceDirection::Out);
        assert_eq!(records[1].bytes, b"SIP/2.0 200 OK\r\n\r\n== out");
        data.truncate(data.len() - 3);
        assert_eq!(parse(&data).len(), 1);
    }
}
