//! DNS lookups for the core (RFC 3263), made asynchronously with `hickory-resolver`.
//!
//! ```text
//!   Output::Resolve ──► Dns::start ──► tokio task: NAPTR → SRV → A/AAAA ──► channel
//!                                        (locate.rs says what to ask and in which order)
//!   run loop select! ◄── (uri, Located | error) ◄──────────────────────────────┘
//!                    └──► ua.handle_resolved(now, uri, answer)
//! ```
//!
//! This module owns the resolver (the system's configuration, or `[network] dns_servers`) and
//! the lookup tasks; the run loop never waits on DNS. The meaning of the records (order,
//! weights, transports, fallbacks) is `sip::locate`'s; nothing here decides SIP behaviour.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use rand::Rng;
use tokio::sync::mpsc;

use super::setup::StunTarget;
use crate::sip::locate::{self, Located, Naptr, Plan, Srv};
use crate::sip::{Resolve, Transport};

/// How long one whole location (every lookup of it) may take before it counts as failed.
const LOCATE_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer for the run loop: the URI asked about and its targets or why there are none.
pub type Answer = (String, Result<Located, String>);

/// The resolver and the channel its lookups answer on.
pub struct Dns {
    resolver: Result<TokioResolver, String>,
    answers: mpsc::UnboundedSender<Answer>,
}

impl Dns {
    /// A resolver asking `servers` (UDP, then TCP for long answers), or the system's
    /// configured ones when `servers` is empty; and the receiver of its answers.
    pub fn new(servers: &[SocketAddr]) -> (Dns, mpsc::UnboundedReceiver<Answer>) {
        let (answers, rx) = mpsc::unbounded_channel();
        let resolver = if servers.is_empty() {
            TokioResolver::builder_tokio()
                .map(|mut b| {
                    b.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
                    b.build()
                })
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))
        } else {
            let mut config = ResolverConfig::new();
            for server in servers {
                config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(*server, Protocol::Tcp));
            }
            let mut options = ResolverOpts::default();
            options.timeout = Duration::from_secs(2);
            options.attempts = 2;
            options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            Ok(
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                    .with_options(options)
                    .build(),
            )
        };
        if let Err(e) = &resolver {
            tracing::warn!(error = %e, "no DNS resolver; registrars must be IP addresses");
        }
        (Dns { resolver, answers }, rx)
    }

    /// Starts the lookup the core asked for; its answer arrives on the channel.
    pub fn start(&self, request: Resolve) {
        let answers = self.answers.clone();
        let resolver = self.resolver.clone();
        tokio::spawn(async move {
            let answer = match resolver {
                Ok(resolver) => {
                    match tokio::time::timeout(
                        LOCATE_TIMEOUT,
                        locate_with(&resolver, &request.plan, request.transport),
                    )
                    .await
                    {
                        Ok(answer) => answer,
                        Err(_) => Err(format!("no DNS answer within {LOCATE_TIMEOUT:?}")),
                    }
                }
                Err(e) => Err(e),
            };
            // The run loop may have ended; nobody is left to tell.
            let _ = answers.send((request.uri, answer));
        });
    }
}

impl Dns {
    /// The address of the STUN server `target`: its IP literal, else its host name's A/AAAA
    /// records (at most [`LOCATE_TIMEOUT`]), the preferred family first. The error says why
    /// there is none.
    pub async fn stun_server(&self, target: &StunTarget) -> Result<SocketAddr, String> {
        if let Some(addr) = target.literal() {
            return Ok(addr);
        }
        let cannot = |e: String| format!("stun_server `{}` cannot be resolved: {e}", target.uri);
        let resolver = self.resolver.as_ref().map_err(|e| cannot(e.clone()))?;
        let mut ttl = Ttl::default();
        let lookup = addresses(resolver, &target.server.host, &mut ttl);
        let addrs = tokio::time::timeout(LOCATE_TIMEOUT, lookup)
            .await
            .map_err(|_| cannot(format!("no DNS answer within {LOCATE_TIMEOUT:?}")))?
            .map_err(cannot)?;
        target.pick(&addrs)
    }
}

/// Carries out a [`Plan`]: NAPTR, SRV and A/AAAA lookups as RFC 3263 §4 orders them, for
/// `transport` (the account fixes it).
async fn locate_with(
    resolver: &TokioResolver,
    plan: &Plan,
    transport: Transport,
) -> Result<Located, String> {
    let mut ttl = Ttl::default();
    let targets = match plan {
        Plan::Literal(addr) => {
            return Ok(Located {
                targets: vec![(*addr, transport)],
                ttl: Duration::MAX,
            })
        }
        Plan::Host { host, port } => addresses(resolver, host, &mut ttl)
            .await?
            .into_iter()
            .map(|ip| (SocketAddr::new(ip, *port), transport))
            .collect(),
        Plan::Domain { domain, secure } => {
            let naptr = naptr(resolver, domain, &mut ttl).await;
            let mut targets = Vec::new();
            for (name, served) in locate::srv_queries(domain, &naptr, &[transport], *secure) {
                let records = srv(resolver, &name, &mut ttl).await;
                if records.is_empty() {
                    continue;
                }
                let ordered = {
                    let mut rng = rand::thread_rng();
                    locate::order_srv(&records, |n| rng.gen_range(0..=n))
                };
                let mut hosts = Vec::new();
                for record in &ordered {
                    let host = record.target.trim_end_matches('.').to_owned();
                    let ips = addresses(resolver, &host, &mut ttl)
                        .await
                        .unwrap_or_default();
                    hosts.push((host, ips));
                }
                targets.extend(locate::srv_targets(&ordered, served, |host| {
                    hosts
                        .iter()
                        .find(|(h, _)| h == host)
                        .map(|(_, ips)| ips.clone())
                        .unwrap_or_default()
                }));
                break;
            }
            if targets.is_empty() {
                // §4.2: no SRV records, the domain's own addresses on the default port.
                let port = locate::default_port(transport);
                targets = addresses(resolver, domain, &mut ttl)
                    .await?
                    .into_iter()
                    .map(|ip| (SocketAddr::new(ip, port), transport))
                    .collect();
            }
            targets
        }
    };
    Ok(Located {
        targets,
        ttl: ttl.get(),
    })
}

/// The smallest remaining lifetime of the answers used.
#[derive(Default)]
struct Ttl(Option<Instant>);

impl Ttl {
    fn saw(&mut self, valid_until: Instant) {
        self.0 = Some(self.0.map_or(valid_until, |t| t.min(valid_until)));
    }

    fn get(&self) -> Duration {
        self.0
            .map_or(locate::MIN_TTL, |t| t.saturating_duration_since(now()))
    }
}

#[allow(clippy::disallowed_methods)] // The driver is where time enters; the resolver's TTLs are Instants.
fn now() -> Instant {
    Instant::now()
}

/// The NAPTR records of `domain`; none when there are none or the lookup fails.
async fn naptr(resolver: &TokioResolver, domain: &str, ttl: &mut Ttl) -> Vec<Naptr> {
    let Ok(lookup) = resolver.lookup(fqdn(domain), RecordType::NAPTR).await else {
        return Vec::new();
    };
    ttl.saw(lookup.valid_until());
    lookup
        .iter()
        .filter_map(|rdata| match rdata {
            RData::NAPTR(n) => Some(Naptr {
                order: n.order(),
                preference: n.preference(),
                flags: String::from_utf8_lossy(n.flags()).into_owned(),
                service: String::from_utf8_lossy(n.services()).into_owned(),
                replacement: n.replacement().to_ascii(),
            }),
            _ => None,
        })
        .collect()
}

/// The SRV records of `name`; none when there are none or the lookup fails.
async fn srv(resolver: &TokioResolver, name: &str, ttl: &mut Ttl) -> Vec<Srv> {
    let Ok(lookup) = resolver.srv_lookup(fqdn(name)).await else {
        return Vec::new();
    };
    ttl.saw(lookup.as_lookup().valid_until());
    lookup
        .iter()
        .map(|r| Srv {
            priority: r.priority(),
            weight: r.weight(),
            port: r.port(),
            target: r.target().to_ascii(),
        })
        .collect()
}

/// The A and AAAA addresses of `host` (both are asked for: the core orders them by the
/// family it is bound to, `Located::preferring`).
async fn addresses(
    resolver: &TokioResolver,
    host: &str,
    ttl: &mut Ttl,
) -> Result<Vec<IpAddr>, String> {
    let lookup = resolver
        .lookup_ip(fqdn(host))
        .await
        .map_err(|e| format!("`{host}`: {e}"))?;
    ttl.saw(lookup.valid_until());
    Ok(lookup.iter().collect())
}

/// `name.`: looked up as written, not through the search list.
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}
