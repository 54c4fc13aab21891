//! dnsmasq as the lab's DNS server: NAPTR, SRV and A records for a test domain, served on a
//! loopback address of the test and nowhere else.
//!
//! It reads no configuration file, no `/etc/hosts` and no upstream servers; it answers only
//! for the records given (and NXDOMAIN for the rest of the zone). Its log, with every query,
//! goes to the run directory.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{self, Peer};
use super::{require_tool, run_dir};

/// The port the lab's DNS server listens on (not 53: nothing here needs it).
pub const DNS_PORT: u16 = 5053;

/// One record dnsmasq serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsRecord {
    /// `name` NAPTR `order preference "S" service "" replacement`.
    Naptr {
        /// The domain.
        name: String,
        /// Lower first.
        order: u16,
        /// Lower first among equal orders.
        preference: u16,
        /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`.
        service: String,
        /// The SRV name it points to.
        replacement: String,
    },
    /// `name` SRV `priority weight port target`.
    Srv {
        /// `_sip._udp.domain`.
        name: String,
        /// Lower first.
        priority: u16,
        /// Share within one priority.
        weight: u16,
        /// The port.
        port: u16,
        /// The host.
        target: String,
    },
    /// `name` A `ip`.
    A {
        /// The host.
        name: String,
        /// Its address.
        ip: Ipv4Addr,
    },
}

impl DnsRecord {
    fn arg(&self) -> String {
        match self {
            DnsRecord::Naptr {
                name,
                order,
                preference,
                service,
                replacement,
            } => format!("--naptr-record={name},{order},{preference},S,{service},,{replacement}"),
            DnsRecord::Srv {
                name,
                priority,
                weight,
                port,
                target,
            } => format!("--srv-host={name},{target},{port},{priority},{weight}"),
            DnsRecord::A { name, ip } => format!("--host-record={name},{ip}"),
        }
    }
}

/// A running dnsmasq. Dropping it kills it.
#[derive(Debug)]
pub struct Dnsmasq {
    addr: SocketAddr,
    // Field order matters: the process dies before its run directory is removed.
    peer: Peer,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Serves `records` of `zone` at `ip`:[`DNS_PORT`] with `ttl` seconds on every answer,
    /// and waits (at most 5 s) until its socket is bound.
    pub fn start(ip: Ipv4Addr, zone: &str, ttl: u32, records: &[DnsRecord]) -> Dnsmasq {
        let dnsmasq = require_tool("dnsmasq", "dnsmasq-base");
        let dir = run_dir("dnsmasq");
        let log = dir.path().join("dnsmasq.log");
        let addr = SocketAddr::from((ip, DNS_PORT));
        let mut cmd = Command::new(dnsmasq);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--user=root",
            "--pid-file=",
            "--log-queries",
        ])
        .arg(format!("--log-facility={}", log.display()))
        .arg(format!("--listen-address={ip}"))
        .arg(format!("--port={DNS_PORT}"))
        .arg(format!("--local=/{zone}/"))
        .arg(format!("--local-ttl={ttl}"))
        .args(records.iter().map(DnsRecord::arg))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let mut peer = Peer::spawn("dnsmasq", &mut cmd, vec![log]);
        let ready = process::wait_until(Duration::from_secs(5), || {
            if let Some(status) = peer.try_wait() {
                panic!("dnsmasq exited during start-up ({status})");
            }
            process::udp_bound(addr).then_some(())
        });
        assert!(ready.is_some(), "dnsmasq did not bind {addr} within 5 s");
        Dnsmasq { addr, peer, dir }
    }

    /// Where it answers.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log (every query and answer).
    pub fn log(&self) -> String {
        process::read_lossy(&self.dir.path().join("dnsmasq.log"))
    }
}
