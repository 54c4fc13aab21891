//! A hosted PBX known by its domain only (RFC 3263): dnsmasq serves NAPTR → SRV → A for
//! `pbx.test`, pointing at a primary and a backup kamailio on different loopback addresses.
//! switchboard finds the primary through DNS, moves to the backup when the primary dies
//! (calls go there too), and comes back once the primary is up again.
#![allow(clippy::disallowed_methods)] // the lab waits on real processes in real time

mod common;

use common::{
    hosts, secs, AccountConfig, DnsRecord, Dnsmasq, Kamailio, Net, Switchboard, SwitchboardConfig,
};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

const DOMAIN: &str = "pbx.test";
/// Where the lab's DNS server listens, inside the primary's subnet.
const DNS_HOST: u8 = 53;
/// bob's switchboard, next to alice's (`hosts::SWITCHBOARD`).
const BOB_HOST: u8 = 6;

/// The zone: NAPTR to the UDP SRV name, SRV priority 10 to the primary and 20 to the backup.
fn zone(primary: Ipv4Addr, backup: Ipv4Addr) -> Vec<DnsRecord> {
    zone_for("SIP+D2U", "_sip._udp", primary, backup)
}

/// The zone for one NAPTR `service` and its SRV name `prefix`: NAPTR records for the other
/// transports too (the account's transport picks one), SRV priority 10 to the primary and 20
/// to the backup.
fn zone_for(service: &str, prefix: &str, primary: Ipv4Addr, backup: Ipv4Addr) -> Vec<DnsRecord> {
    let srv = format!("{prefix}.{DOMAIN}");
    vec![
        DnsRecord::Naptr {
            name: DOMAIN.into(),
            order: 5,
            preference: 10,
            service: "SIPS+D2T".into(),
            replacement: format!("_sips._tcp.{DOMAIN}"),
        },
        DnsRecord::Naptr {
            name: DOMAIN.into(),
            order: 10,
            preference: 10,
            service: service.into(),
            replacement: srv.clone(),
        },
        DnsRecord::Srv {
            name: srv.clone(),
            priority: 10,
            weight: 10,
            port: 5060,
            target: format!("primary.{DOMAIN}"),
        },
        DnsRecord::Srv {
            name: srv,
            priority: 20,
            weight: 10,
            port: 5060,
            target: format!("backup.{DOMAIN}"),
        },
        DnsRecord::A {
            name: format!("primary.{DOMAIN}"),
            ip: primary,
        },
        DnsRecord::A {
            name: format!("backup.{DOMAIN}"),
            ip: backup,
        },
    ]
}

/// `user@pbx.test` registering by domain (no registrar address anywhere in the config),
/// asking `dns` and bound at `bind`.
fn by_domain(net: &Net, user: &str, bind: SocketAddr, dns: SocketAddr) -> String {
    by_domain_over(net, user, bind, dns, "udp")
}

/// Like [`by_domain`], over `transport`.
fn by_domain_over(
    net: &Net,
    user: &str,
    bind: SocketAddr,
    dns: SocketAddr,
    transport: &str,
) -> String {
    let mut account = AccountConfig::new("hosted", user, DOMAIN);
    account.transport = transport.to_owned();
    account.register = true;
    account.expires = 60;
    let mut config =
        SwitchboardConfig::peer_to_peer(net).with_network(&format!("dns_servers = [\"{dns}\"]"));
    config.bind = bind;
    config.accounts = vec![account];
    config.to_toml()
}

#[test]
fn registers_by_dns_fails_over_to_the_backup_and_returns_to_the_primary() {
    let net = Net::for_test("dns_failover::primary");
    let backup_net = Net::for_test("dns_failover::backup");
    let mut primary = Some(Kamailio::start_for_domain(&net, DOMAIN));
    let backup = Kamailio::start_for_domain(&backup_net, DOMAIN);
    let dns = Dnsmasq::start(
        net.ip(DNS_HOST),
        "test",
        20,
        &zone(net.ip(hosts::KAMAILIO), backup_net.ip(hosts::KAMAILIO)),
    );
    let mut alice = Switchboard::start(&by_domain(
        &net,
        "alice",
        net.sip_addr(hosts::SWITCHBOARD),
        dns.addr(),
    ));
    let mut bob = Switchboard::start(&by_domain(&net, "bob", net.sip_addr(BOB_HOST), dns.addr()));
    alice.wait_for(secs(10), "registered");
    bob.wait_for(secs(10), "registered");
    let first = primary.as_ref().expect("primary");
    first.wait_registered("alice", secs(5));
    first.wait_registered("bob", secs(5));
    assert!(
        backup.contacts("alice").is_empty(),
        "the backup is not used while the primary lives"
    );
    let log = dns.log();
    for query in [
        "query[NAPTR] pbx.test",
        "query[SRV] _sip._udp.pbx.test",
        "query[A] primary.pbx.test",
    ] {
        assert!(log.contains(query), "no `{query}` in the DNS log:\n{log}");
    }

    // The primary dies: at the next refresh (51 s) REGISTER times out (timer F, 32 s) and
    // goes to the backup at once.
    drop(primary.take());
    let killed = Instant::now();
    backup.wait_registered("alice", secs(100));
    eprintln!(
        "dns_failover: on the backup {:?} after the primary died",
        killed.elapsed()
    );
    backup.wait_registered("bob", secs(30));
    assert!(
        !alice
            .events()
            .iter()
            .any(|e| e["event"] == "registration_failed"),
        "a backup was left: no failure is reported"
    );

    // A call placed meanwhile goes through the live registrar.
    alice.send(&format!("dial sip:bob@{DOMAIN}"));
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["state"] == "connected"
    });
    alice.send("hangup");
    bob.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");

    // The primary is back (with an empty location table): the next refresh goes there.
    let primary = Kamailio::start_for_domain(&net, DOMAIN);
    let back = Instant::now();
    let contacts = primary.wait_registered("alice", secs(70));
    eprintln!(
        "dns_failover: on the primary {:?} after it came back",
        back.elapsed()
    );
    assert!(
        contacts
            .iter()
            .any(|c| c.contains(&net.ip(hosts::SWITCHBOARD).to_string())),
        "{contacts:?}"
    );
    // The answer's 20 s TTL ran out meanwhile: the registrar was looked up again.
    let naptr_queries = dns.log().matches("query[NAPTR] pbx.test").count();
    assert!(naptr_queries >= 2, "looked up once only:\n{}", dns.log());
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn over_tcp_the_naptr_picks_tcp_and_a_lost_connection_moves_to_the_backup_at_once() {
    let net = Net::for_test("dns_failover::tcp_primary");
    let backup_net = Net::for_test("dns_failover::tcp_backup");
    let mut primary = Some(Kamailio::start_for_domain(&net, DOMAIN));
    let backup = Kamailio::start_for_domain(&backup_net, DOMAIN);
    let dns = Dnsmasq::start(
        net.ip(DNS_HOST),
        "test",
        20,
        &zone_for(
            "SIP+D2T",
            "_sip._tcp",
            net.ip(hosts::KAMAILIO),
            backup_net.ip(hosts::KAMAILIO),
        ),
    );
    let mut alice = Switchboard::start(&by_domain_over(
        &net,
        "alice",
        net.sip_addr(hosts::SWITCHBOARD),
        dns.addr(),
        "tcp",
    ));
    alice.wait_for(secs(10), "registered");
    primary
        .as_ref()
        .expect("primary")
        .wait_registered("alice", secs(5));
    let log = dns.log();
    assert!(
        log.contains("query[SRV] _sip._tcp.pbx.test") && !log.contains("_sips._tcp"),
        "the TCP service is chosen from the NAPTR records:\n{log}"
    );
    // Killing the primary closes the connection: REGISTER goes to the backup at once.
    drop(primary.take());
    let killed = Instant::now();
    backup.wait_registered("alice", secs(10));
    eprintln!(
        "dns_failover (tcp): on the backup {:?} after the primary died",
        killed.elapsed()
    );
    assert!(
        !alice
            .events()
            .iter()
            .any(|e| e["event"] == "registration_failed"),
        "a backup was left: no failure is reported"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}

#[test]
fn a_call_placed_while_the_primary_is_dead_goes_through_the_backup_before_any_registration() {
    let net = Net::for_test("dns_failover::invite_primary");
    let backup_net = Net::for_test("dns_failover::invite_backup");
    let mut primary = Some(Kamailio::start_for_domain(&net, DOMAIN));
    let backup = Kamailio::start_for_domain(&backup_net, DOMAIN);
    let dns = Dnsmasq::start(
        net.ip(DNS_HOST),
        "test",
        300,
        &zone(net.ip(hosts::KAMAILIO), backup_net.ip(hosts::KAMAILIO)),
    );
    // alice finds the primary by DNS and registers there, for 10 minutes.
    let mut account = AccountConfig::new("hosted", "alice", DOMAIN);
    account.register = true;
    account.expires = 600;
    let mut alice_config = SwitchboardConfig::peer_to_peer(&net)
        .with_network(&format!("dns_servers = [\"{}\"]", dns.addr()));
    alice_config.accounts = vec![account];
    let mut alice = Switchboard::start(&alice_config.to_toml());
    alice.wait_for(secs(10), "registered");
    primary
        .as_ref()
        .expect("primary")
        .wait_registered("alice", secs(5));
    // bob is registered at the backup only (his registrar is its address).
    let bob_ip = backup_net.ip(BOB_HOST);
    let mut bob_account = AccountConfig::new("hosted", "bob", DOMAIN);
    bob_account.registrar = Some(format!("sip:{}:5060", backup_net.ip(hosts::KAMAILIO)));
    bob_account.register = true;
    let mut bob_config = SwitchboardConfig::peer_to_peer(&backup_net);
    bob_config.bind = SocketAddr::from((bob_ip, 5060));
    bob_config.accounts = vec![bob_account];
    let mut bob = Switchboard::start(&bob_config.to_toml());
    bob.wait_for(secs(10), "registered");
    backup.wait_registered("bob", secs(5));

    // The primary dies; alice's registration still names it (its refresh is minutes away).
    drop(primary.take());
    let dialled = Instant::now();
    alice.send(&format!("dial sip:bob@{DOMAIN}"));
    // Timer B (32 s) at the primary, then the same call at the backup.
    bob.wait_for(secs(45), "incoming");
    eprintln!(
        "dns_failover: the call reached bob through the backup {:?} after dialling",
        dialled.elapsed()
    );
    assert!(
        backup.contacts("alice").is_empty(),
        "alice did not wait for a registration at the backup"
    );
    assert!(
        !alice
            .events()
            .iter()
            .any(|e| e["event"] == "call" && e["state"] == "ended"),
        "the operator is not told of the primary's failure"
    );
    bob.send("answer");
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["state"] == "connected"
    });
    alice.send("hangup");
    bob.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn an_outbound_proxy_and_another_domain_are_located_by_dns() {
    let net = Net::for_test("dns_failover::proxy_primary");
    let backup_net = Net::for_test("dns_failover::proxy_backup");
    let other_net = Net::for_test("dns_failover::other_domain");
    const OTHER: &str = "other.test";
    let primary = Kamailio::start_for_domain(&net, DOMAIN);
    let _backup = Kamailio::start_for_domain(&backup_net, DOMAIN);
    let other = Kamailio::start_for_domain(&other_net, OTHER);
    let mut records = zone(net.ip(hosts::KAMAILIO), backup_net.ip(hosts::KAMAILIO));
    // other.test has no NAPTR: its UDP SRV name is asked directly (RFC 3263 §4.1).
    records.push(DnsRecord::Srv {
        name: format!("_sip._udp.{OTHER}"),
        priority: 10,
        weight: 10,
        port: 5060,
        target: format!("sip.{OTHER}"),
    });
    records.push(DnsRecord::A {
        name: format!("sip.{OTHER}"),
        ip: other_net.ip(hosts::KAMAILIO),
    });
    let dns = Dnsmasq::start(net.ip(DNS_HOST), "test", 60, &records);

    // carol's outbound proxy is the domain: located by NAPTR/SRV/A, she registers through it.
    let mut carol_account = AccountConfig::new("hosted", "carol", DOMAIN);
    carol_account.outbound_proxy = Some(format!("sip:{DOMAIN}"));
    carol_account.register = true;
    let mut carol_config = SwitchboardConfig::peer_to_peer(&net)
        .with_network(&format!("dns_servers = [\"{}\"]", dns.addr()));
    carol_config.bind = net.sip_addr(BOB_HOST);
    carol_config.accounts = vec![carol_account];
    let mut carol = Switchboard::start(&carol_config.to_toml());
    carol.wait_for(secs(10), "registered");
    primary.wait_registered("carol", secs(5));

    // bob lives at other.test; alice (of pbx.test) dials him by his address.
    let mut bob_account = AccountConfig::new("other", "bob", OTHER);
    bob_account.registrar = Some(format!("sip:{}:5060", other_net.ip(hosts::KAMAILIO)));
    bob_account.register = true;
    let mut bob_config = SwitchboardConfig::peer_to_peer(&other_net);
    bob_config.bind = SocketAddr::from((other_net.ip(BOB_HOST), 5060));
    bob_config.accounts = vec![bob_account];
    let mut bob = Switchboard::start(&bob_config.to_toml());
    bob.wait_for(secs(10), "registered");
    other.wait_registered("bob", secs(5));
    let mut alice = Switchboard::start(&by_domain(
        &net,
        "alice",
        net.sip_addr(hosts::SWITCHBOARD),
        dns.addr(),
    ));
    alice.wait_for(secs(10), "registered");
    alice.send(&format!("dial sip:bob@{OTHER}"));
    bob.wait_for(secs(10), "incoming");
    assert!(
        dns.log().contains(&format!("query[SRV] _sip._udp.{OTHER}")),
        "the other domain was located by SRV:\n{}",
        dns.log()
    );
    bob.send("answer");
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["state"] == "connected"
    });
    alice.send("hangup");
    bob.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");
    for sb in [&mut alice, &mut bob, &mut carol] {
        assert!(sb.quit_and_wait(secs(10)).success());
    }
}

/// A switchboard `user` at `ip` registering at the kamailio at `registrar` (its address).
fn registered_at(net: &Net, user: &str, ip: Ipv4Addr, registrar: Ipv4Addr) -> Switchboard {
    let mut account = AccountConfig::new("hosted", user, DOMAIN);
    account.registrar = Some(format!("sip:{registrar}:5060"));
    account.register = true;
    let mut config = SwitchboardConfig::peer_to_peer(net);
    config.bind = SocketAddr::from((ip, 5060));
    config.accounts = vec![account];
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "registered");
    sb
}

/// How many times the DNS log shows `query`.
fn asked(dns: &Dnsmasq, query: &str) -> usize {
    dns.log().matches(query).count()
}

#[test]
fn the_proxy_of_an_account_that_does_not_register_is_located_by_dns_with_ttl_and_failover() {
    let net = Net::for_test("dns_failover::unregistered_primary");
    let backup_net = Net::for_test("dns_failover::unregistered_backup");
    let mut primary = Some(Kamailio::start_for_domain(&net, DOMAIN));
    let backup = Kamailio::start_for_domain(&backup_net, DOMAIN);
    // Answers live 5 s (the least switchboard keeps one).
    let dns = Dnsmasq::start(
        net.ip(DNS_HOST),
        "test",
        5,
        &zone_for(
            "SIP+D2T",
            "_sip._tcp",
            net.ip(hosts::KAMAILIO),
            backup_net.ip(hosts::KAMAILIO),
        ),
    );
    // bob is registered at the primary only, dave at the backup only.
    let first = primary.as_ref().expect("primary");
    let mut bob = registered_at(&net, "bob", net.ip(BOB_HOST), first.ip());
    first.wait_registered("bob", secs(5));
    let mut dave = registered_at(&backup_net, "dave", backup_net.ip(BOB_HOST), backup.ip());
    backup.wait_registered("dave", secs(5));

    // alice does not register; her outbound proxy is the domain, over TCP.
    let mut account = AccountConfig::new("hosted", "alice", DOMAIN);
    account.transport = "tcp".to_owned();
    account.outbound_proxy = Some(format!("sip:{DOMAIN}"));
    let mut config = SwitchboardConfig::peer_to_peer(&net)
        .with_network(&format!("dns_servers = [\"{}\"]", dns.addr()));
    config.accounts = vec![account];
    let mut alice = Switchboard::start(&config.to_toml());
    alice.wait_for(secs(10), "started");
    // Looked up at start, in the background: NAPTR, the TCP SRV name, the targets' A records.
    let naptr = "query[NAPTR] pbx.test";
    common::process::wait_until(secs(10), || {
        (asked(&dns, "query[A] backup.pbx.test") > 0).then_some(())
    })
    .unwrap_or_else(|| panic!("the proxy was not looked up at start:\n{}", dns.log()));
    assert!(
        dns.log().contains("query[SRV] _sip._tcp.pbx.test"),
        "{}",
        dns.log()
    );

    // A call goes through the primary (the only one that knows bob).
    alice.send(&format!("dial sip:bob@{DOMAIN}"));
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");

    // Past the answer's TTL the primary dies: the next call looks the proxy up again, finds
    // the primary refusing the connection and goes on to the backup (which knows dave).
    std::thread::sleep(std::time::Duration::from_secs(6));
    let naptr_before = asked(&dns, naptr);
    drop(primary.take());
    let dialled = Instant::now();
    alice.send(&format!("dial sip:dave@{DOMAIN}"));
    dave.wait_for(secs(10), "incoming");
    eprintln!(
        "dns_failover (unregistered, tcp): dave's phone rang {:?} after alice dialled",
        dialled.elapsed()
    );
    assert!(
        asked(&dns, naptr) > naptr_before,
        "the proxy was not looked up again after the TTL:\n{}",
        dns.log()
    );
    dave.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.send("hangup");
    dave.wait_call_state(secs(10), 1, "ended");
    for sb in [&mut alice, &mut bob, &mut dave] {
        assert!(sb.quit_and_wait(secs(10)).success());
    }
}

/// coturn answering STUN binding requests only, on `ip`:3478; stopped when dropped.
struct LoopbackStun {
    _peer: common::process::Peer,
    _dir: tempfile::TempDir,
}

impl LoopbackStun {
    /// Starts `turnserver --stun-only` on `ip` and waits (5 s at most) until it listens.
    fn start(ip: Ipv4Addr) -> LoopbackStun {
        let turnserver = common::require_tool("turnserver", "coturn");
        let dir = common::run_dir("coturn");
        let mut cmd = std::process::Command::new(turnserver);
        let log = common::netns::stun_only_coturn(&mut cmd, ip, dir.path());
        let peer = common::process::Peer::spawn("coturn", &mut cmd, vec![log.clone()]);
        let ready = common::process::wait_until(secs(5), || {
            let out = std::process::Command::new("ss")
                .args(["-Hlun", "sport = :3478"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .contains(&ip.to_string())
                .then_some(())
        });
        assert!(
            ready.is_some(),
            "coturn did not start:\n{}",
            common::process::tail(&log, 30)
        );
        LoopbackStun {
            _peer: peer,
            _dir: dir,
        }
    }
}

#[test]
fn a_stun_server_named_by_host_is_found_through_the_configured_dns() {
    /// Where coturn listens, in the test's subnet.
    const STUN_HOST: u8 = 54;
    let net = Net::for_test("dns_failover::stun_by_name");
    let stun_ip = net.ip(STUN_HOST);
    let _stun = LoopbackStun::start(stun_ip);
    let dns = Dnsmasq::start(
        net.ip(DNS_HOST),
        "test",
        60,
        &[DnsRecord::A {
            name: format!("stun.{DOMAIN}"),
            ip: stun_ip,
        }],
    );
    let mut account = AccountConfig::new("hosted", "alice", DOMAIN);
    account.extra = format!("stun_server = \"stun:stun.{DOMAIN}\"\n");
    let mut config = SwitchboardConfig::peer_to_peer(&net)
        .with_network(&format!("dns_servers = [\"{}\"]", dns.addr()));
    config.accounts = vec![account];
    let mut alice = Switchboard::start(&config.to_toml());
    // On loopback the mapped address is alice's own.
    let learnt = alice.wait_event(secs(10), |e| {
        e["event"] == "network"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("line 1:"))
    });
    let reached = format!(
        "line 1: RTP is reached at {}:",
        net.sip_addr(hosts::SWITCHBOARD).ip()
    );
    assert!(
        learnt["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&reached) && m.ends_with("(STUN)")),
        "{learnt}"
    );
    assert!(
        dns.log().contains(&format!("query[A] stun.{DOMAIN}")),
        "{}",
        dns.log()
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}
