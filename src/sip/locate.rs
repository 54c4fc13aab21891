//! Locating SIP servers (RFC 3263), as pure functions over DNS records.
//!
//! This module owns the rules of server location and never touches DNS itself: the driver
//! looks the records up (`src/driver/resolve.rs`) and this module says what to look up and
//! what the answers mean.
//!
//! ```text
//!   URI ──plan()──► Literal(ip:port)                               no DNS
//!               ├─► Host { host, port }  ─► A/AAAA                 explicit port (§4.2)
//!               └─► Domain { domain }    ─► NAPTR ─srv_queries()─► SRV ─order_srv()─► A/AAAA
//!                                            (none: _sip._udp…)    (none: A/AAAA of the domain)
//!                                                                                │
//!                          Located { targets in order of use, ttl } ◄────────────┘
//! ```
//!
//! The user agent asks for a [`Plan`] to be resolved (an output of the core) and is fed the
//! [`Located`] answer (an input); [`Targets`] keeps the ordered list, which one is in use for
//! failover, and when the answer expires. Randomness (the weighted SRV choice) is passed in,
//! so every result here is deterministic under test.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Transport;

/// The default port of a transport (RFC 3261 §19.1.2): 5061 for TLS, else 5060.
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => 5061,
        Transport::Udp | Transport::Tcp => 5060,
    }
}

/// What must be looked up to reach a URI's host (RFC 3263 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The host is an IP address: one target, no DNS.
    Literal(SocketAddr),
    /// A name with an explicit port: its A/AAAA records only, on that port (§4.2).
    Host {
        /// The host name.
        host: String,
        /// The port from the URI.
        port: u16,
    },
    /// A name without port: NAPTR, then SRV, then A/AAAA (§4.1, §4.2).
    Domain {
        /// The domain.
        domain: String,
        /// A `sips:` URI: only TLS services qualify.
        secure: bool,
    },
}

/// The parts of a `sip:`/`sips:` URI's host: whether it is `sips:`, the host (IPv6 without
/// brackets) and the port when one is written; `None` for another scheme or a bad port.
/// Written here rather than through rsip, which rejects IPv6 hosts.
pub fn split_uri(uri: &str) -> Option<(bool, &str, Option<u16>)> {
    let (scheme, rest) = uri.trim().split_once(':')?;
    let secure = if scheme.eq_ignore_ascii_case("sips") {
        true
    } else if scheme.eq_ignore_ascii_case("sip") {
        false
    } else {
        return None;
    };
    let rest = rest.split([';', '?']).next().unwrap_or_default();
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((secure, host, port))
}

impl Plan {
    /// The plan for the host of a `sip:`/`sips:` URI; `None` when it is no such URI.
    pub fn of_uri(uri: &str) -> Option<Plan> {
        let (secure, host, port) = split_uri(uri)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            let default = if secure { 5061 } else { 5060 };
            return Some(Plan::Literal(SocketAddr::new(ip, port.unwrap_or(default))));
        }
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return None;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Some(match port {
            Some(port) => Plan::Host { host, port },
            None => Plan::Domain {
                domain: host,
                secure,
            },
        })
    }
}

impl Plan {
    /// The host name looked up; `None` for an IP literal.
    pub fn host(&self) -> Option<String> {
        match self {
            Plan::Literal(_) => None,
            Plan::Host { host, .. } => Some(host.clone()),
            Plan::Domain { domain, .. } => Some(domain.clone()),
        }
    }
}

/// A NAPTR record (RFC 3403) as far as SIP uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    /// Lower first.
    pub order: u16,
    /// Lower first among equal `order`.
    pub preference: u16,
    /// `"s"`: the replacement is an SRV name.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, …
    pub service: String,
    /// The SRV name to look up next.
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    /// Lower first.
    pub priority: u16,
    /// Relative chance among equal priorities.
    pub weight: u16,
    /// The port to send to.
    pub port: u16,
    /// The host whose A/AAAA records give the addresses; `"."`: no service here.
    pub target: String,
}

/// The transport a NAPTR service names, if SIP and known.
fn service_transport(service: &str) -> Option<Transport> {
    match service.to_ascii_uppercase().as_str() {
        "SIP+D2U" => Some(Transport::Udp),
        "SIP+D2T" => Some(Transport::Tcp),
        "SIPS+D2T" => Some(Transport::Tls),
        _ => None,
    }
}

/// The SRV prefix RFC 3263 §4.1 falls back to for a transport when there is no NAPTR.
fn srv_prefix(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "_sip._udp",
        Transport::Tcp => "_sip._tcp",
        Transport::Tls => "_sips._tcp",
    }
}

/// The SRV names to query for `domain`, best first, with the transport each serves (§4.1).
///
/// NAPTR records with flag `s`, a SIP service over one of `supported` transports (only TLS
/// for a `secure` URI) are taken in order, then preference. When no NAPTR record qualifies,
/// the SRV names of the supported transports are queried in the order given.
pub fn srv_queries(
    domain: &str,
    naptr: &[Naptr],
    supported: &[Transport],
    secure: bool,
) -> Vec<(String, Transport)> {
    let usable = |t: &Transport| supported.contains(t) && (!secure || *t == Transport::Tls);
    let mut records: Vec<&Naptr> = naptr
        .iter()
        .filter(|n| n.flags.eq_ignore_ascii_case("s"))
        .filter(|n| service_transport(&n.service).is_some_and(|t| usable(&t)))
        .collect();
    records.sort_by_key(|n| (n.order, n.preference));
    let mut queries: Vec<(String, Transport)> = Vec::new();
    for n in records {
        if let Some(t) = service_transport(&n.service) {
            let name = n.replacement.trim_end_matches('.').to_ascii_lowercase();
            if !name.is_empty() && !queries.iter().any(|(q, _)| *q == name) {
                queries.push((name, t));
            }
        }
    }
    if queries.is_empty() {
        let domain = domain.trim_end_matches('.');
        queries = supported
            .iter()
            .filter(|t| usable(t))
            .map(|t| (format!("{}.{domain}", srv_prefix(*t)), *t))
            .collect();
    }
    queries
}

/// SRV records in the order to try them (RFC 2782): by priority, and within one priority by a
/// weighted random choice. `random(n)` returns a number in `0..=n`; records with target `.`
/// are dropped (the service is not offered).
pub fn order_srv(records: &[Srv], mut random: impl FnMut(u32) -> u32) -> Vec<Srv> {
    let mut left: Vec<Srv> = records
        .iter()
        .filter(|r| !r.target.trim_end_matches('.').is_empty())
        .cloned()
        .collect();
    // Zero weights first within a priority, as RFC 2782 asks (they get a small chance).
    left.sort_by_key(|r| (r.priority, r.weight != 0));
    let mut ordered = Vec::with_capacity(left.len());
    while let Some(priority) = left.first().map(|r| r.priority) {
        let group: Vec<usize> = (0..left.len())
            .filter(|&i| left[i].priority == priority)
            .collect();
        let total: u32 = group.iter().map(|&i| u32::from(left[i].weight)).sum();
        let pick = random(total).min(total);
        let mut running = 0u32;
        let chosen = group
            .iter()
            .copied()
            .find(|&i| {
                running += u32::from(left[i].weight);
                running >= pick
            })
            .unwrap_or(group[0]);
        ordered.push(left.remove(chosen));
    }
    ordered
}

/// The answer to a [`Plan`]: every target in the order to try, and how long it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Addresses with the transport to use there, best first.
    pub targets: Vec<(SocketAddr, Transport)>,
    /// The smallest TTL of the records used.
    pub ttl: Duration,
}

impl Located {
    /// The addresses of the targets reached over `transport`, in order.
    pub fn over(&self, transport: Transport) -> Vec<SocketAddr> {
        self.targets
            .iter()
            .filter(|(_, t)| *t == transport)
            .map(|(a, _)| *a)
            .collect()
    }

    /// The same targets with those `local` can reach best first: RFC 3263 keeps the A and
    /// AAAA addresses of each target, and a socket bound to an IPv6 address (`[::1]`) reaches
    /// IPv6 targets only, an IPv4 one IPv4 only. The other family stays, last (a dual-stack
    /// socket reaches both). The order within each family is kept.
    pub fn preferring(mut self, local: IpAddr) -> Located {
        let v6 = local.to_canonical().is_ipv6();
        self.targets
            .sort_by_key(|(addr, _)| addr.ip().to_canonical().is_ipv6() != v6);
        self
    }
}

/// The shortest time an answer is kept, whatever its TTL (no re-resolution storm on TTL 0).
pub const MIN_TTL: Duration = Duration::from_secs(5);

/// Joins ordered SRV records with the addresses of their targets (`addresses(host)`), on the
/// SRV's port, with `transport`. IPv4 addresses of one host come before its IPv6 ones.
pub fn srv_targets(
    ordered: &[Srv],
    transport: Transport,
    mut addresses: impl FnMut(&str) -> Vec<IpAddr>,
) -> Vec<(SocketAddr, Transport)> {
    let mut out: Vec<(SocketAddr, Transport)> = Vec::new();
    for srv in ordered {
        let mut ips = addresses(srv.target.trim_end_matches('.'));
        ips.sort_by_key(IpAddr::is_ipv6);
        for ip in ips {
            let target = (SocketAddr::new(ip, srv.port), transport);
            if !out.contains(&target) {
                out.push(target);
            }
        }
    }
    out
}

/// The ordered targets of one server (registrar or proxy), the one in use, and when the
/// answer they came from expires.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Targets {
    list: Vec<SocketAddr>,
    current: usize,
    /// `None`: never (an IP literal, or targets given by configuration).
    expires: Option<Instant>,
}

impl Targets {
    /// Targets that never expire (an IP literal).
    pub fn fixed(list: Vec<SocketAddr>) -> Targets {
        Targets {
            list,
            current: 0,
            expires: None,
        }
    }

    /// Targets from a DNS answer received at `now`. The target in use stays in use when it
    /// is still among them.
    pub fn replace(&mut self, list: Vec<SocketAddr>, ttl: Duration, now: Instant) {
        let in_use = self.current();
        self.current = in_use
            .and_then(|a| list.iter().position(|b| *b == a))
            .unwrap_or(0);
        self.list = list;
        // A TTL too long to add (an IP literal's) never expires.
        self.expires = now.checked_add(ttl.max(MIN_TTL));
    }

    /// The target in use.
    pub fn current(&self) -> Option<SocketAddr> {
        self.list.get(self.current).copied()
    }

    /// True when the target in use is not the first (best) one.
    pub fn on_backup(&self) -> bool {
        self.current > 0 && !self.list.is_empty()
    }

    /// The target after `failed` in the list (for a request that failed there); `None` when
    /// `failed` is the last or not among them.
    pub fn after(&self, failed: SocketAddr) -> Option<SocketAddr> {
        let at = self.list.iter().position(|a| *a == failed)?;
        self.list.get(at + 1).copied()
    }

    /// Moves to the next target; false (and back to the first) when there is none.
    pub fn advance(&mut self) -> bool {
        if self.current + 1 < self.list.len() {
            self.current += 1;
            true
        } else {
            self.current = 0;
            false
        }
    }

    /// Uses `addr` from now on when it is among the targets (a request succeeded or went on
    /// there after the one in use failed).
    pub fn prefer(&mut self, addr: SocketAddr) {
        if let Some(at) = self.list.iter().position(|a| *a == addr) {
            self.current = at;
        }
    }

    /// Goes back to the first (best) target.
    pub fn first(&mut self) {
        self.current = 0;
    }

    /// True when the answer has expired and must be looked up again.
    pub fn is_stale(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// Every target of the answer, best first.
    pub fn all(&self) -> impl Iterator<Item = &SocketAddr> {
        self.list.iter()
    }

    /// True when nothing is known yet.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::timer::epoch;

    fn naptr(order: u16, preference: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "s".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    #[test]
    fn plans_follow_the_uri() {
        assert_eq!(
            Plan::of_uri("sip:10.0.0.1"),
            Some(Plan::Literal("10.0.0.1:5060".parse().unwrap()))
        );
        assert_eq!(
            Plan::of_uri("sips:[::1]"),
            Some(Plan::Literal("[::1]:5061".parse().unwrap()))
        );
        assert_eq!(
            Plan::of_uri("sip:alice@Example.COM:5070;transport=tcp"),
            Some(Plan::Host {
                host: "example.com".into(),
                port: 5070
            })
        );
        assert_eq!(
            Plan::of_uri("SIPS:example.com."),
            Some(Plan::Domain {
                domain: "example.com".into(),
                secure: true
            })
        );
        for bad in [
            "tel:123",
            "sip:",
            "sip:a b",
            "sip:x:0",
            "sip:x:99999",
            "sip:[::1",
        ] {
            assert_eq!(Plan::of_uri(bad), None, "{bad}");
        }
    }

    /// RFC 3263 §4.1's example: the client supports TCP and UDP, and the domain offers TLS,
    /// TCP and UDP in that order; TLS is skipped, TCP comes first.
    #[test]
    fn naptr_order_and_supported_transports_pick_the_srv_names() {
        let records = [
            naptr(90, 50, "SIP+D2T", "_sip._tcp.example.com"),
            naptr(100, 50, "SIP+D2U", "_sip._udp.example.com"),
            naptr(50, 50, "SIPS+D2T", "_sips._tcp.example.com"),
            naptr(10, 10, "E2U+sip", "ignored.example.com"),
        ];
        assert_eq!(
            srv_queries(
                "example.com",
                &records,
                &[Transport::Udp, Transport::Tcp],
                false
            ),
            [
                ("_sip._tcp.example.com".to_owned(), Transport::Tcp),
                ("_sip._udp.example.com".to_owned(), Transport::Udp),
            ]
        );
        // An account fixed on UDP only queries UDP.
        assert_eq!(
            srv_queries("example.com", &records, &[Transport::Udp], false),
            [("_sip._udp.example.com".to_owned(), Transport::Udp)]
        );
        // A sips: URI only takes TLS.
        assert_eq!(
            srv_queries(
                "example.com",
                &records,
                &[Transport::Udp, Transport::Tls],
                true
            ),
            [("_sips._tcp.example.com".to_owned(), Transport::Tls)]
        );
    }

    #[test]
    fn without_naptr_the_transport_srv_names_are_queried() {
        assert_eq!(
            srv_queries("example.com", &[], &[Transport::Tcp, Transport::Udp], false),
            [
                ("_sip._tcp.example.com".to_owned(), Transport::Tcp),
                ("_sip._udp.example.com".to_owned(), Transport::Udp),
            ]
        );
        // NAPTR records for transports we cannot use count as none.
        let tls_only = [naptr(1, 1, "SIPS+D2T", "_sips._tcp.example.com")];
        assert_eq!(
            srv_queries("example.com.", &tls_only, &[Transport::Udp], false),
            [("_sip._udp.example.com".to_owned(), Transport::Udp)]
        );
    }

    #[test]
    fn srv_priority_comes_first_then_weight() {
        let records = [
            srv(20, 0, 5060, "backup.example.com"),
            srv(10, 60, 5060, "a.example.com"),
            srv(10, 40, 5060, "b.example.com"),
            srv(30, 5, 5060, "."),
        ];
        // The random number falls in a's share (0..=60 of 100), then in b's.
        let ordered = order_srv(&records, |_| 10);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            names,
            ["a.example.com", "b.example.com", "backup.example.com"]
        );
        // Past a's running sum (60) the pick is b.
        let ordered = order_srv(&records, |total| total);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(
            names,
            ["b.example.com", "a.example.com", "backup.example.com"]
        );
    }

    #[test]
    fn srv_weights_share_the_first_place_in_proportion() {
        let records = [srv(1, 3, 5060, "three"), srv(1, 1, 5060, "one")];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut first_three = 0;
        for _ in 0..4000 {
            let ordered = order_srv(&records, |n| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                u32::try_from(state % (u64::from(n) + 1)).unwrap_or(0)
            });
            first_three += usize::from(ordered[0].target == "three");
        }
        // 3:1 weights: about 3000 of 4000 (a deterministic generator: no flakiness).
        assert!((2800..3200).contains(&first_three), "{first_three}");
    }

    #[test]
    fn zero_weights_are_still_chosen_last_but_kept() {
        let records = [srv(1, 0, 5060, "zero"), srv(1, 10, 5060, "ten")];
        let ordered = order_srv(&records, |_| 5);
        let names: Vec<&str> = ordered.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(names, ["ten", "zero"]);
        // A pick of 0 lands on the zero-weight record (placed first).
        let ordered = order_srv(&records, |_| 0);
        assert_eq!(ordered[0].target, "zero");
    }

    #[test]
    fn srv_targets_join_addresses_in_order() {
        let ordered = [
            srv(10, 0, 5070, "primary.example.com."),
            srv(20, 0, 5080, "backup.example.com"),
        ];
        let targets = srv_targets(&ordered, Transport::Udp, |host| match host {
            "primary.example.com" => vec!["::1".parse().unwrap(), "127.0.0.21".parse().unwrap()],
            "backup.example.com" => vec!["127.0.0.22".parse().unwrap()],
            _ => vec![],
        });
        assert_eq!(
            targets,
            [
                ("127.0.0.21:5070".parse().unwrap(), Transport::Udp),
                ("[::1]:5070".parse().unwrap(), Transport::Udp),
                ("127.0.0.22:5080".parse().unwrap(), Transport::Udp),
            ]
        );
    }

    #[test]
    fn the_bound_family_comes_first_and_srv_order_is_kept_within_it() {
        let located = Located {
            targets: [
                "192.0.2.1:5060",
                "[2001:db8::1]:5060",
                "192.0.2.2:5070",
                "[2001:db8::2]:5070",
            ]
            .iter()
            .map(|a| (a.parse().unwrap(), Transport::Udp))
            .collect(),
            ttl: MIN_TTL,
        };
        let order = |local: &str| -> Vec<String> {
            located
                .clone()
                .preferring(local.parse().unwrap())
                .targets
                .iter()
                .map(|(a, _)| a.to_string())
                .collect()
        };
        assert_eq!(
            order("::1"),
            [
                "[2001:db8::1]:5060",
                "[2001:db8::2]:5070",
                "192.0.2.1:5060",
                "192.0.2.2:5070"
            ]
        );
        assert_eq!(
            order("192.168.1.20"),
            [
                "192.0.2.1:5060",
                "192.0.2.2:5070",
                "[2001:db8::1]:5060",
                "[2001:db8::2]:5070"
            ]
        );
        // An IPv4-mapped local address counts as IPv4.
        assert_eq!(order("::ffff:192.168.1.20")[0], "192.0.2.1:5060");
    }

    #[test]
    fn targets_fail_over_and_keep_the_one_in_use_across_answers() {
        let t0 = epoch();
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.21:5060".parse().unwrap(),
            "127.0.0.22:5060".parse().unwrap(),
        );
        let mut targets = Targets::default();
        assert!(targets.is_empty() && targets.current().is_none());
        targets.replace(vec![a, b], Duration::from_secs(60), t0);
        assert_eq!(targets.current(), Some(a));
        assert!(targets.advance());
        assert_eq!(targets.current(), Some(b));
        assert!(targets.on_backup());
        // A fresh answer with the same servers keeps the backup in use.
        targets.replace(vec![a, b], Duration::from_secs(60), t0);
        assert_eq!(targets.current(), Some(b));
        // None left: back to the first.
        assert!(!targets.advance());
        assert_eq!(targets.current(), Some(a));
        // A request went on at b: b is used; an address not among them changes nothing.
        targets.prefer(b);
        assert_eq!(targets.current(), Some(b));
        targets.prefer("127.0.0.99:5060".parse().unwrap());
        assert_eq!(targets.current(), Some(b));
        targets.first();
        assert_eq!(targets.current(), Some(a));
        assert!(!targets.is_stale(t0 + Duration::from_secs(59)));
        assert!(targets.is_stale(t0 + Duration::from_secs(60)));
        // A TTL of 0 is held for MIN_TTL.
        targets.replace(vec![a], Duration::ZERO, t0);
        assert!(!targets.is_stale(t0 + MIN_TTL - Duration::from_millis(1)));
        assert!(!Targets::fixed(vec![a]).is_stale(t0 + Duration::from_secs(1 << 30)));
    }
}
