//! The command line: `check-config`, and a start with no config at all.

#![allow(clippy::disallowed_methods)] // waits on a real process in real time

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
}

#[test]
fn check_config_accepts_the_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let out = bin()
        .args(["check-config", example])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_file_line_and_key_of_a_misspelt_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[general]\nlog_level = \"info\"\n\n[[account]]\nname = \"x\"\nuser = \"a\"\ndomain = \"b\"\nregistar = \"sip:b\"\n",
    )
    .expect("write");
    let out = bin().arg("check-config").arg(&path).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:8:", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("registar"), "{stderr}");
}

/// Two accounts, the second over `transport`, `enabled` as given.
fn two_accounts(transport: &str, enabled: bool) -> String {
    format!(
        "[[account]]\nname = \"desk\"\nuser = \"a\"\ndomain = \"pbx.test\"\n\n\
         [[account]]\nname = \"queue\"\nuser = \"b\"\ndomain = \"pbx2.test\"\n\
         transport = \"{transport}\"\nenabled = {enabled}\n"
    )
}

#[test]
fn check_config_explains_accounts_that_cannot_run_together_and_an_unknown_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("two.toml");
    std::fs::write(&path, two_accounts("tcp", true)).expect("write");
    let out = bin().arg("check-config").arg(&path).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("account `queue` uses tcp, but account `desk` uses udp")
            && stderr.contains("enabled = false")
            && stderr.contains("--account NAME"),
        "{stderr}"
    );
    // Run alone, or with the other one disabled, it is fine.
    let out = bin()
        .args(["--account", "queue", "check-config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&path, two_accounts("tcp", false)).expect("write");
    let out = bin().arg("check-config").arg(&path).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An account that is not there.
    let out = bin()
        .args(["--account", "nobody", "check-config"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no account named `nobody`; the configuration has: desk, queue"),
        "{stderr}"
    );
}

#[test]
fn check_config_names_the_values_of_transfer_blind() {
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/invalid_configs/bad_blind_transfer.toml"
    );
    let out = bin().args(["check-config", bad]).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "transfer.blind: unknown value `watch`, expected one of `safe`, `notify`, `immediate`"
        ),
        "{stderr}"
    );
}

#[test]
fn headless_without_config_starts_on_the_embedded_default_and_quits() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = bin()
        .arg("--headless")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("a first event");
    let started: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(started["event"], "started", "{first}");
    let local = started["local"].as_str().expect("local address");
    assert!(
        local
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.port() != 0),
        "{local}"
    );
    // The note says how others reach this switchboard: its address and port, not localhost.
    let port = local.rsplit(':').next().unwrap_or_default();
    let note = started["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("no config file"), "{first}");
    assert!(note.contains(&format!(":{port};")), "{first}");
    assert!(note.contains("sip:user@host:port"), "{first}");
    assert!(
        started["account"]
            .as_str()
            .is_some_and(|a| !a.ends_with("@localhost")),
        "{first}"
    );
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "quit").expect("write");
    let mut last = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        last = line;
    }
    assert!(last.contains("\"stopped\""), "{last}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
}
