//! The integration-test lab: real SIP software started by each test on its own loopback
//! addresses and stopped by PID when the test ends, pass or fail.
//!
//! Use it from a test file with `mod common;` and then e.g.
//!
//! ```ignore
//! use common::{secs, Kamailio, Net, Sipp, Switchboard, SwitchboardConfig};
//!
//! #[test]
//! fn dials_a_sipp_uas_through_kamailio() {
//!     let net = Net::for_test("calls::dials_a_sipp_uas_through_kamailio");
//!     let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
//!     let mut uas = Sipp::uas(&net, 10, "uas_answer", &[]);
//!     uas.register_at(&kam, "bob", "bobpw");
//!     let config = SwitchboardConfig::registering(&net, "alice", "alicepw");
//!     let mut sb = Switchboard::start(&config.to_toml());
//!     sb.wait_event(secs(5), |e| e["event"] == "registered");
//!     sb.send("dial bob");
//!     sb.wait_event(secs(5), |e| e["event"] == "call" && e["state"] == "connected");
//!     sb.send("hangup");
//!     uas.expect_pass(secs(5));
//! }
//! ```
//!
//! # Addresses
//!
//! Every test gets its own `127.X.Y.0/24` from [`Net::for_test`] (a stable hash of the test
//! name), so every peer can use the standard port 5060 and tests never collide, whether they run
//! as threads of one `cargo test` process or as separate nextest processes. Host numbers inside
//! the /24 follow a convention, see [`hosts`]: `.1` kamailio, `.2` switchboard, `.3` baresip,
//! `.4` linphonec, `.5` twinkle, `.9` harness tools (sipsak, the garbage sender, the baresip
//! console client), `.10` and up sipp instances, `.20` and up pjsua. Tests only ever send
//! traffic to 127.0.0.0/8.
//!
//! # Processes
//!
//! Every peer runs in its own process group; dropping its handle kills that group with SIGKILL
//! and reaps the leader, so nothing outlives a test. Every wait is bounded. When a test panics,
//! each peer dropped during the unwinding prints the tail of its log to stderr (shown by the test
//! runner for failing tests); set `SWITCHBOARD_LAB_KEEP=1` to keep all run directories as well.
//!
//! # Finding things
//!
//! Scenario files and the kamailio template live in [`lab_dir`] (`tests/lab`, or
//! `$SWITCHBOARD_LAB_DIR`); `tests/lab/README.md` lists the scenarios and the quirks of the
//! peers. The switchboard binary is `$SWITCHBOARD_BIN` if set, else the
//! `CARGO_BIN_EXE_switchboard` that cargo provides to integration tests.
//!
//! # Debian packages the lab needs
//!
//! `kamailio sip-tester sipsak baresip linphone-cli sox`, `dnsmasq-base` for the DNS tests, for
//! twinkle `twinkle-console pulseaudio libasound2-plugins` (see [`twinkle`] for its ports), plus `tshark` for the opt-in
//! [`Capture`] (`SWITCHBOARD_LAB_CAPTURE=1`). A missing tool makes the test panic with the
//! package name, see [`require_tool`]. The pjsip peer ([`pjsua`]) runs in a virtualenv that
//! `scripts/ensure-pjsua` makes (`python3-venv`).
#![allow(clippy::disallowed_methods)]
// the lab waits on real processes in real time

// Each integration test binary compiles this module (`mod common;`) and uses only a part of
// it; without this, every binary would warn about the helpers and re-exports it happens not to
// use.
#![allow(dead_code, unused_imports)]

pub mod audio;
pub mod baresip;
pub mod capture;
pub mod digest;
pub mod dns;
pub mod events;
pub mod garbage;
pub mod kamailio;
pub mod linphonec;
pub mod nat;
pub mod net;
pub mod netns;
pub mod pjsua;
pub mod process;
pub mod pulse;
pub mod relay;
pub mod signal;
pub mod sip_relay;
pub mod sipp;
pub mod stalls;
pub mod switchboard;
pub mod tls;
pub mod tmux;
pub mod twinkle;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

pub use baresip::{AnswerMode, AudioSource, Baresip, BaresipOptions};
pub use capture::Capture;
pub use dns::{DnsRecord, Dnsmasq, DNS_PORT};
pub use garbage::{assert_garbage_handled, garbage_cases, send_garbage, sip_options, GarbageCase};
pub use kamailio::{Kamailio, KamailioAuth, KamailioTls};
pub use linphonec::{Linphonec, LinphonecOptions};
pub use nat::UdpNat;
pub use net::{hosts, Net};
pub use pjsua::{Pjsua, PjsuaOptions};
pub use sipp::{Sipp, SippOutcome, TracedMessage};
pub use switchboard::{AccountConfig, Switchboard, SwitchboardConfig};
pub use tls::TestCa;
pub use tmux::TmuxScreen;
pub use twinkle::{LoggedSip, Twinkle, TwinkleOptions};

/// The directory holding the lab fixtures (kamailio template, sipp scenarios):
/// `$SWITCHBOARD_LAB_DIR` if set, else `tests/lab` of this crate.
pub fn lab_dir() -> PathBuf {
    match std::env::var_os("SWITCHBOARD_LAB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lab"),
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Shorthand for `Duration::from_secs`.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Shorthand for `Duration::from_millis`.
pub fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// The full path of `program` (searched on `PATH`, then `/usr/sbin` and `/sbin`); panics with
/// the Debian `package` to install if it is missing.
pub fn require_tool(program: &str, package: &str) -> PathBuf {
    process::find_in_path(program).unwrap_or_else(|| {
        panic!(
            "the lab needs `{program}`, which is not installed: \
             apt-get install --no-install-recommends {package}"
        )
    })
}

/// Whether run directories should be kept after the test (`SWITCHBOARD_LAB_KEEP=1`).
pub fn keep_run_dirs() -> bool {
    std::env::var_os("SWITCHBOARD_LAB_KEEP").is_some_and(|v| v != "0" && !v.is_empty())
}

/// A fresh temporary directory for one peer, named after it for easy finding.
pub fn run_dir(peer: &str) -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("sb-{peer}-"))
        .tempdir()
        .expect("creating a temporary run directory");
    if keep_run_dirs() {
        dir.disable_cleanup(true);
    }
    dir
}

/// The text of `path` once something has written it (a hook run in the background, the
/// history); panics after 5 s.
pub fn wait_for_file(path: &std::path::Path) -> String {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} was not written within 5 s", path.display());
}
