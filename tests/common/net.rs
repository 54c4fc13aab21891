//! Per-test loopback subnets, so parallel tests never collide on addresses or ports.
//!
//! Linux routes all of 127.0.0.0/8 to `lo` and lets a socket bind any address in it without
//! configuration. [`Net::for_test`] hashes the test name (FNV-1a, stable across runs, builds and
//! processes) to a slot `127.X.Y.0/24` with X in 1..=254, so every peer of the test can listen
//! on the standard port 5060 at its own address `127.X.Y.n`.
//!
//! Two different names can hash to the same slot. To make that harmless, a `Net` claims its slot
//! for as long as it lives: inside the process through a registry, across processes (nextest)
//! through a lock file `$TMPDIR/switchboard-lab-nets/127.X.Y.lock` holding the owner's PID. A
//! slot that is taken by a live owner makes the next one be tried; a lock file whose owner is
//! dead is taken over. So the subnet is stable for a test (the same every run, unless a
//! colliding test runs at the same moment) and unique among the tests running at once.

use std::collections::HashSet;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;

/// Host numbers inside a test's /24, by convention.
pub mod hosts {
    /// kamailio (registrar + proxy; also the SIP domain).
    pub const KAMAILIO: u8 = 1;
    /// switchboard under test.
    pub const SWITCHBOARD: u8 = 2;
    /// baresip.
    pub const BARESIP: u8 = 3;
    /// linphonec.
    pub const LINPHONEC: u8 = 4;
    /// twinkle.
    pub const TWINKLE: u8 = 5;
    /// Harness tools: sipsak, the garbage sender, the baresip console client.
    pub const TOOLS: u8 = 9;
    /// The first sipp instance; further ones use 11, 12, ...
    pub const SIPP: u8 = 10;
    /// The first pjsua; further ones use 21, 22, ...
    pub const PJSUA: u8 = 20;
}

/// Number of /24 slots: X in 1..=254, Y in 0..=255.
const SLOTS: u32 = 254 * 256;
/// How many neighbouring slots are tried when the hashed one is taken.
const PROBES: u32 = 256;

/// Slots claimed by `Net`s alive in this process.
static CLAIMED: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// One test's loopback subnet `127.X.Y.0/24`. Keep it alive for the whole test (peers borrow
/// it); dropping it releases the claim on the subnet.
#[derive(Debug)]
pub struct Net {
    name: String,
    slot: u32,
    lock_file: PathBuf,
}

impl Net {
    /// The subnet of the test called `name`. Use a name unique in the whole project, e.g.
    /// `"calls::hold_and_resume"`, so that different test files do not share a hash slot.
    pub fn for_test(name: &str) -> Net {
        let lock_dir = std::env::temp_dir().join("switchboard-lab-nets");
        fs::create_dir_all(&lock_dir).expect("creating the lab's lock directory");
        let first = (fnv1a(name.as_bytes()) % u64::from(SLOTS)) as u32;
        for probe in 0..PROBES {
            let slot = (first + probe) % SLOTS;
            if let Some(lock_file) = claim(slot, &lock_dir) {
                let net = Net {
                    name: name.to_owned(),
                    slot,
                    lock_file,
                };
                if probe > 0 {
                    eprintln!(
                        "lab: {name}: hashed subnet taken, using {} instead",
                        net.subnet()
                    );
                }
                return net;
            }
        }
        panic!("lab: no free loopback subnet found for {name} after {PROBES} probes");
    }

    /// The test name this subnet was made for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `127.X.Y.n`. `n` should follow the [`hosts`] convention.
    pub fn ip(&self, n: u8) -> Ipv4Addr {
        let (x, y) = self.xy();
        Ipv4Addr::new(127, x, y, n)
    }

    /// `127.X.Y.n:port`.
    pub fn addr(&self, n: u8, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip(n), port))
    }

    /// `127.X.Y.n:5060`, where every SIP peer of the lab listens.
    pub fn sip_addr(&self, n: u8) -> SocketAddr {
        self.addr(n, 5060)
    }

    /// `"127.X.Y.0/24"`, for messages.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.ip(0))
    }

    fn xy(&self) -> (u8, u8) {
        let x = 1 + self.slot / 256;
        let y = self.slot % 256;
        (
            u8::try_from(x).expect("slot < 254*256 keeps X in 1..=254"),
            u8::try_from(y).expect("y < 256"),
        )
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock_file);
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = claimed.as_mut() {
            set.remove(&self.slot);
        }
    }
}

/// Claims `slot` for this process, returning its lock file, or `None` if a live owner has it.
fn claim(slot: u32, lock_dir: &std::path::Path) -> Option<PathBuf> {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    let set = claimed.get_or_insert_with(HashSet::new);
    if set.contains(&slot) {
        return None;
    }
    let x = 1 + slot / 256;
    let y = slot % 256;
    let lock_file = lock_dir.join(format!("127.{x}.{y}.lock"));
    let me = std::process::id();
    // The lock file appears atomically with its content: written aside, then hard-linked into
    // place (which fails if the name exists). Two attempts: the second after removing a lock
    // file left behind by a dead process.
    let staging = lock_dir.join(format!(".{me}-{slot}.tmp"));
    fs::write(&staging, me.to_string()).expect("writing a lab lock file");
    let mut result = None;
    for _ in 0..2 {
        match fs::hard_link(&staging, &lock_file) {
            Ok(()) => {
                set.insert(slot);
                result = Some(lock_file.clone());
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = fs::read_to_string(&lock_file)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                match owner {
                    // Our own process, but not in the registry: left behind by a leaked Net.
                    Some(pid) if pid == me => {
                        set.insert(slot);
                        result = Some(lock_file.clone());
                        break;
                    }
                    Some(pid) if PathBuf::from(format!("/proc/{pid}")).exists() => break,
                    // The owner is dead (or the file is unreadable): take the slot over.
                    _ => {
                        let _ = fs::remove_file(&lock_file);
                    }
                }
            }
            Err(e) => panic!("lab: cannot create {}: {e}", lock_file.display()),
        }
    }
    let _ = fs::remove_file(&staging);
    result
}

/// 64-bit FNV-1a: tiny, and unlike `DefaultHasher` guaranteed stable everywhere.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
