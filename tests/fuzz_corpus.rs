//! Replays every file of every fuzz corpus (`fuzz/corpus/<target>/`, with the
//! crashes found and fixed kept there as `regression-*`) through the same
//! `switchboard::fuzzing` entry points the fuzz targets call, on stable Rust.
//! A panic in any parser fails the test and names the file.

use std::fs;
use std::path::{Path, PathBuf};

use switchboard::fuzzing;

/// The corpus directory of one target.
fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Feeds every file of `target`'s corpus to `entry`; returns how many there were.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let dir = corpus(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| entry(&data));
        assert!(
            outcome.is_ok(),
            "{target} panicked on {} (replay: cargo +nightly fuzz run {target} {})",
            file.display(),
            file.display()
        );
    }
    assert!(!files.is_empty(), "{} has no inputs", dir.display());
    files.len()
}

#[test]
fn sip_datagram_corpus() {
    replay("sip_datagram", fuzzing::sip_datagram);
}

#[test]
fn sdp_body_corpus() {
    replay("sdp_body", fuzzing::sdp_body);
}

#[test]
fn rtp_packet_corpus() {
    replay("rtp_packet", fuzzing::rtp_packet);
}

#[test]
fn sip_stream_corpus() {
    replay("sip_stream", fuzzing::sip_stream);
}

#[test]
fn dialog_info_body_corpus() {
    replay("dialog_info_body", fuzzing::dialog_info_body);
}

#[test]
fn sipfrag_body_corpus() {
    replay("sipfrag_body", fuzzing::sipfrag_body);
}

#[test]
fn config_file_corpus() {
    replay("config_file", fuzzing::config_file);
}

#[test]
fn vcard_file_corpus() {
    replay("vcard_file", fuzzing::vcard_file);
}

#[test]
fn csv_file_corpus() {
    replay("csv_file", fuzzing::csv_file);
}

/// The SIP target only reaches deep if its setup really leaves two live
/// dialogs: line 1 answered (our 200 to Bob's INVITE) and line 2 answered
/// by Carol (our ACK to her 200), with line 1 put on hold on the way.
#[test]
fn sip_target_setup_has_live_dialogs() {
    let (_, _, sent) = fuzzing::ua_with_dialogs();
    let summary: Vec<String> = sent
        .iter()
        .map(|m| match m.code() {
            Some(code) => format!("{code} {}", m.call_id),
            None => format!("{} {}", m.method(), m.call_id),
        })
        .collect();
    assert!(
        summary.contains(&"200 live".to_string()),
        "no 200 to line 1's INVITE: {summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|s| s.starts_with("ACK ") && s != "ACK live"),
        "no ACK for line 2's call: {summary:?}"
    );
    assert!(
        summary.contains(&"INVITE live".to_string()),
        "line 1 was not put on hold (re-INVITE): {summary:?}"
    );
    for m in &sent {
        eprintln!("---\n{m:?}");
    }
}
