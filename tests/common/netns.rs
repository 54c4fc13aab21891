//! A real NAT made of network namespaces: the operator in a "home" namespace behind a
//! "router" namespace that masquerades (nftables) with a short UDP timeout, and the PBX,
//! phones and a STUN server in an "internet" namespace.
//!
//! ```text
//!   home                  router                                internet
//!   192.168.77.2 ── veth ── 192.168.77.1 │ 203.0.113.1 ── veth ── 203.0.113.10 kamailio
//!   (switchboard)          masquerade out of 203.0.113.1          203.0.113.20 coturn (STUN)
//!                          UDP conntrack timeout: the lab's        203.0.113.30.. phones
//! ```
//!
//! [`NatLab::new`] creates the three namespaces (names unique to the process and lab), links
//! them and loads the router's rules; dropping it deletes them, which also removes the veths.
//! Processes are started inside a namespace through `ip netns exec` (wrapper scripts for the
//! switchboard harness); they are [`Peer`]s and die when dropped, so declare the lab before
//! them (dropped last). Traffic never leaves the namespaces the lab creates. Needs root: when
//! a namespace cannot be created, the test fails and says so.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::process::{self, run_bounded, Peer};
use super::switchboard::{switchboard_bin, Switchboard};
use super::{lab_dir, require_tool, run_dir};

/// switchboard's address in the home namespace.
pub const HOME_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
/// The router's home-side address (home's default route).
pub const ROUTER_INSIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
/// The router's public address: what the internet side sees of home.
pub const PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// kamailio, also the SIP domain of its users.
pub const KAMAILIO_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// coturn answering STUN on 3478.
pub const STUN_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// The first phone on the internet side; more at .31, .32, ...
pub const PHONE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);

/// Labs made by this process so far (for unique names).
static LABS: AtomicU32 = AtomicU32::new(0);

/// The three namespaces and the router's NAT.
#[derive(Debug)]
pub struct NatLab {
    /// The home namespace's name.
    pub home: String,
    /// The router namespace's name.
    pub router: String,
    /// The internet namespace's name.
    pub internet: String,
    dir: tempfile::TempDir,
}

impl NatLab {
    /// Creates the namespaces and links, with the router forgetting an idle UDP mapping after
    /// `udp_timeout` (both conntrack UDP timeouts, so keep-alives must hold it). Panics with
    /// what failed (and what to do) when the system does not allow it.
    pub fn new(udp_timeout: Duration) -> NatLab {
        let ip = require_tool("ip", "iproute2");
        let nft = require_tool("nft", "nftables");
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        // Interface names are at most 15 bytes: keep the tag short.
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let lab = NatLab {
            home: format!("sbh{tag}"),
            router: format!("sbr{tag}"),
            internet: format!("sbi{tag}"),
            dir: run_dir("natlab"),
        };
        let (home_if, inside_if, outside_if, internet_if) = (
            format!("vh{tag}"),
            format!("vr{tag}"),
            format!("vo{tag}"),
            format!("vi{tag}"),
        );
        for ns in [&lab.home, &lab.router, &lab.internet] {
            let done = run_bounded(
                Command::new(&ip).args(["netns", "add", ns]),
                Duration::from_secs(5),
            );
            assert!(
                done.success(),
                "the NAT lab cannot create network namespace {ns} ({:?}): {}{}\n\
                 it needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) and `ip netns`",
                done.status,
                done.stdout,
                done.stderr
            );
        }
        let timeout = udp_timeout.as_secs().max(1).to_string();
        let steps: Vec<Vec<String>> = [
            format!(
                "link add {home_if} netns {} type veth peer name {inside_if} netns {}",
                lab.home, lab.router
            ),
            format!(
                "link add {outside_if} netns {} type veth peer name {internet_if} netns {}",
                lab.router, lab.internet
            ),
            format!("-n {} addr add {HOME_IP}/24 dev {home_if}", lab.home),
            format!("-n {} link set {home_if} up", lab.home),
            format!("-n {} link set lo up", lab.home),
            format!("-n {} route add default via {ROUTER_INSIDE}", lab.home),
            format!(
                "-n {} addr add {ROUTER_INSIDE}/24 dev {inside_if}",
                lab.router
            ),
            format!("-n {} addr add {PUBLIC_IP}/24 dev {outside_if}", lab.router),
            format!("-n {} link set {inside_if} up", lab.router),
            format!("-n {} link set {outside_if} up", lab.router),
            format!("-n {} link set lo up", lab.router),
            format!(
                "-n {} addr add {KAMAILIO_IP}/24 dev {internet_if}",
                lab.internet
            ),
            format!(
                "-n {} addr add {STUN_IP}/24 dev {internet_if}",
                lab.internet
            ),
            format!("-n {} link set {internet_if} up", lab.internet),
            format!("-n {} link set lo up", lab.internet),
        ]
        .iter()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .collect();
        for args in steps {
            lab.must(
                Command::new(&ip).args(&args),
                &format!("ip {}", args.join(" ")),
            );
        }
        for i in 0..4u8 {
            let phone = Ipv4Addr::new(203, 0, 113, 30 + i);
            lab.must(
                Command::new(&ip)
                    .args(["-n", &lab.internet, "addr", "add"])
                    .arg(format!("{phone}/24"))
                    .args(["dev", &internet_if]),
                "adding a phone address",
            );
        }
        let rules = format!(
            "table ip nat {{\n chain post {{ type nat hook postrouting priority srcnat; \
             oifname \"{outside_if}\" masquerade; }}\n}}\n"
        );
        let rules_file = lab.dir.path().join("router.nft");
        fs::write(&rules_file, rules).expect("writing the router's rules");
        lab.must(
            lab.exec(&lab.router, &nft).arg("-f").arg(&rules_file),
            "loading the router's masquerade rule",
        );
        lab.must(
            lab.exec(&lab.router, "sysctl").args([
                "-qw",
                "net.ipv4.ip_forward=1",
                &format!("net.netfilter.nf_conntrack_udp_timeout={timeout}"),
                &format!("net.netfilter.nf_conntrack_udp_timeout_stream={timeout}"),
            ]),
            "setting the router's forwarding and UDP timeout",
        );
        lab
    }

    /// Runs `cmd` (at most 5 s) and panics with its output when it fails.
    fn must(&self, cmd: &mut Command, what: &str) {
        let done = run_bounded(cmd, Duration::from_secs(5));
        assert!(
            done.success(),
            "NAT lab: {what} failed ({:?}): {}{}",
            done.status,
            done.stdout,
            done.stderr
        );
    }

    /// A command running `program` inside namespace `ns`.
    pub fn exec(&self, ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// A script that runs `program` with its arguments inside `ns` (for harnesses that take
    /// a binary path).
    pub fn wrapper(&self, ns: &str, program: &Path) -> PathBuf {
        let name = format!(
            "{ns}-{}",
            program
                .file_name()
                .map_or_else(|| "x".into(), |f| f.to_string_lossy())
        );
        let path = self.dir.path().join(name);
        let mut script = String::from("#!/bin/sh\n");
        let _ = writeln!(
            script,
            "exec ip netns exec '{ns}' '{}' \"$@\"",
            program.display()
        );
        fs::write(&path, script).expect("writing a namespace wrapper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// switchboard (headless) with `config_toml`, inside `ns`.
    pub fn switchboard(&self, ns: &str, config_toml: &str) -> Switchboard {
        Switchboard::start_binary(&self.wrapper(ns, &switchboard_bin()), config_toml)
    }

    /// The router's conntrack entries for UDP (what the NAT holds), as `conntrack -L` would
    /// print them, from `/proc` inside the router namespace.
    pub fn router_udp_mappings(&self) -> String {
        let done = run_bounded(
            self.exec(&self.router, "cat").arg("/proc/net/nf_conntrack"),
            Duration::from_secs(3),
        );
        done.stdout
            .lines()
            .filter(|l| l.contains(" udp "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        for ns in [&self.home, &self.router, &self.internet] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// kamailio (registrar + proxy with digest REGISTER, the lab's template) on the internet
/// side at [`KAMAILIO_IP`]. It does not fix NATed contacts: it registers what the Contact
/// says. Dropping it kills it.
#[derive(Debug)]
pub struct NsKamailio {
    log: PathBuf,
    peer: Peer,
    dir: tempfile::TempDir,
}

impl NsKamailio {
    /// Starts it for `users` (`(name, password)`) and waits (5 s at most) for OPTIONS to be
    /// answered.
    pub fn start(lab: &NatLab, users: &[(&str, &str)]) -> NsKamailio {
        let kamailio = require_tool("kamailio", "kamailio");
        require_tool("sipsak", "sipsak");
        let dir = run_dir("ns-kamailio");
        let cfg_path = super::kamailio::write_config(dir.path(), KAMAILIO_IP.into(), users, None);
        let log = dir.path().join("kamailio.log");
        let log_file = fs::File::create(&log).expect("creating kamailio.log");
        let mut cmd = lab.exec(&lab.internet, kamailio);
        cmd.arg("-f")
            .arg(&cfg_path)
            .args(["-A", "WITH_AUTH", "-P"])
            .arg(dir.path().join("kamailio.pid"))
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("cloning a file handle"))
            .stderr(log_file);
        let peer = Peer::spawn("kamailio (internet namespace)", &mut cmd, vec![log.clone()]);
        let kam = NsKamailio { log, peer, dir };
        let ready = process::wait_until(Duration::from_secs(5), || {
            let done = run_bounded(
                lab.exec(&lab.internet, "sipsak")
                    .arg("-s")
                    .arg(format!("sip:{KAMAILIO_IP}:5060"))
                    .args(["-H", &KAMAILIO_IP.to_string()]),
                Duration::from_secs(2),
            );
            done.success().then_some(())
        });
        assert!(
            ready.is_some(),
            "kamailio in the internet namespace did not answer OPTIONS:\n{}",
            kam.log_tail(40)
        );
        kam
    }

    /// `sip:203.0.113.10:5060`.
    pub fn uri(&self) -> String {
        format!("sip:{KAMAILIO_IP}:5060")
    }

    /// The registered contacts of `user` (kamcmd over its private ctl socket).
    pub fn contacts(&self, user: &str) -> Vec<String> {
        let kamcmd = require_tool("kamcmd", "kamailio");
        let socket = format!("unix:{}/kamailio_ctl", self.dir.path().display());
        let done = run_bounded(
            Command::new(kamcmd)
                .arg("-s")
                .arg(&socket)
                .args(["ul.lookup", "location"])
                .arg(format!("{user}@{KAMAILIO_IP}")),
            Duration::from_secs(3),
        );
        done.stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Address: "))
            .map(str::to_owned)
            .collect()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        format!(
            "----- kamailio {} -----\n{}",
            self.log.display(),
            process::tail(&self.log, lines)
        )
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.peer.try_wait().is_none()
    }
}

/// Sets `cmd` (a `turnserver`) to answer STUN binding requests only, on `ip`:3478, with its
/// database, pid file and log under `dir`; returns the log's path.
pub fn stun_only_coturn(cmd: &mut Command, ip: impl std::fmt::Display, dir: &Path) -> PathBuf {
    let log = dir.join("turnserver.log");
    let log_file = fs::File::create(&log).expect("creating turnserver.log");
    cmd.args([
        "-n",
        "--stun-only",
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--simple-log",
    ])
    .arg(format!("--listening-ip={ip}"))
    .arg("--listening-port=3478")
    .arg("--log-file=stdout")
    .arg(format!("--db={}", dir.join("turndb").display()))
    .arg(format!(
        "--pidfile={}",
        dir.join("turnserver.pid").display()
    ))
    .stdin(Stdio::null())
    .stdout(log_file.try_clone().expect("cloning a file handle"))
    .stderr(log_file);
    log
}

/// coturn as a STUN server on the internet side at [`STUN_IP`]:3478. Dropping it kills it.
#[derive(Debug)]
pub struct NsStun {
    peer: Peer,
    _dir: tempfile::TempDir,
}

impl NsStun {
    /// Starts `turnserver --stun-only` and waits (5 s at most) until it answers a binding
    /// request sent from the internet namespace.
    pub fn start(lab: &NatLab) -> NsStun {
        let turnserver = require_tool("turnserver", "coturn");
        let dir = run_dir("ns-coturn");
        let mut cmd = lab.exec(&lab.internet, turnserver);
        let log = stun_only_coturn(&mut cmd, STUN_IP, dir.path());
        let peer = Peer::spawn("coturn (internet namespace)", &mut cmd, vec![log.clone()]);
        let stun = NsStun { peer, _dir: dir };
        let ready = process::wait_until(Duration::from_secs(5), || {
            let done = run_bounded(
                lab.exec(&lab.internet, "ss")
                    .args(["-Hlun", "sport = :3478"]),
                Duration::from_secs(2),
            );
            done.stdout.contains(&STUN_IP.to_string()).then_some(())
        });
        assert!(
            ready.is_some(),
            "coturn did not start:\n{}",
            process::tail(&log, 30)
        );
        stun
    }

    /// `stun:203.0.113.20:3478`.
    pub fn uri(&self) -> String {
        format!("stun:{STUN_IP}:3478")
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((STUN_IP, 3478))
    }
}
