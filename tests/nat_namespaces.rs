//! Behind a real NAT (`common::netns`): switchboard (alice) in a "home" network namespace
//! behind a "router" namespace that masquerades with a 3 s UDP timeout; kamailio (which does
//! not fix NATed contacts), other switchboards as phones and coturn as STUN server in an
//! "internet" namespace. Needs root: without namespaces these tests fail and say why.

mod common;

use std::path::Path;
use std::time::Duration;

use common::netns::{NatLab, NsKamailio, NsStun, HOME_IP, KAMAILIO_IP, PHONE_IP, PUBLIC_IP};
use common::signal::{after_onset, read_wav, write_test_signal};
use common::{secs, AccountConfig, Switchboard, SwitchboardConfig};
use std::net::Ipv4Addr;

/// The router forgets an idle UDP mapping after this long.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(3);
/// Every user of the lab's kamailio, with their passwords.
const USERS: [(&str, &str); 3] = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")];

/// A switchboard at `ip` registering `user` at the lab's kamailio, keep-alives every second,
/// with `[audio]` lines `audio` and `account_extra` in its account.
fn config(ip: Ipv4Addr, user: &str, audio: &str, account_extra: &str) -> String {
    let password = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .expect("a lab user");
    let mut account = AccountConfig::new("lab", user, &KAMAILIO_IP.to_string());
    account.registrar = Some(format!("sip:{KAMAILIO_IP}:5060"));
    account.password = Some(password.to_owned());
    account.register = true;
    account.expires = 60;
    account.extra = format!("keepalive = 1\n{account_extra}");
    SwitchboardConfig {
        log_level: "debug".to_owned(),
        bind: (ip, 5060).into(),
        accounts: vec![account],
        codecs: vec!["pcmu".to_owned()],
        ptime: None,
        network: "rtp_port_min = 40000\nrtp_port_max = 40099\n".to_owned(),
        audio: audio.to_owned(),
        extra: "[transfer]\nblind = \"notify\"\n".to_owned(),
    }
    .to_toml()
}

/// `[audio]` lines playing `signal` in a loop and recording to `out`.
fn file_audio(signal: &Path, out: &Path) -> String {
    format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
        signal.display(),
        out.display()
    )
}

/// Starts a phone (a switchboard on the internet side) registered as `user`.
fn phone(lab: &NatLab, n: u8, user: &str, audio: &str) -> Switchboard {
    let ip = Ipv4Addr::new(203, 0, 113, PHONE_IP.octets()[3] + n);
    let mut sb = lab.switchboard(&lab.internet, &config(ip, user, audio, ""));
    sb.wait_for(secs(10), "registered");
    sb
}

/// alice at home, registered; her Contact at kamailio is the router's public address.
fn alice_registered(lab: &NatLab, kam: &NsKamailio, audio: &str, extra: &str) -> Switchboard {
    let mut alice = lab.switchboard(
        &lab.home,
        &config(HOME_IP, "alice", audio, &format!("nat = \"auto\"\n{extra}")),
    );
    alice.wait_for(secs(10), "registered");
    let contacts = common::process::wait_until(secs(10), || {
        let contacts = kam.contacts("alice");
        (contacts.len() == 1 && contacts[0].contains(&PUBLIC_IP.to_string())).then_some(contacts)
    })
    .unwrap_or_else(|| {
        panic!(
            "alice's Contact is not only the public {PUBLIC_IP}: {:?}\n{}",
            kam.contacts("alice"),
            alice.log()
        )
    });
    assert!(
        !contacts[0].contains(&HOME_IP.to_string()),
        "the private address is registered: {contacts:?}"
    );
    alice
}

#[test]
fn registers_from_behind_the_nat_and_a_call_comes_in_after_three_router_timeouts() {
    let lab = NatLab::new(ROUTER_TIMEOUT);
    let kam = NsKamailio::start(&lab, &USERS);
    let mut alice = alice_registered(&lab, &kam, "backend = \"null\"\n", "");
    let mut bob = phone(&lab, 0, "bob", "backend = \"null\"\n");

    // Three router timeouts with nothing but keep-alives: the mapping kamailio knows holds.
    std::thread::sleep(ROUTER_TIMEOUT * 3);
    let mappings = lab.router_udp_mappings();
    assert!(
        mappings.contains(&format!(
            "src={HOME_IP} dst={KAMAILIO_IP} sport=5060 dport=5060"
        )),
        "the router lost alice's SIP mapping:\n{mappings}"
    );
    bob.send("dial alice");
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    bob.wait_call_state(secs(10), 1, "connected");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.send("hangup");
    alice.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
    drop(kam);
}

#[test]
fn stun_gives_sdp_the_public_address_and_audio_flows_both_ways() {
    let lab = NatLab::new(ROUTER_TIMEOUT);
    let kam = NsKamailio::start(&lab, &USERS);
    let stun = NsStun::start(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    write_test_signal(&signal, 3.0);
    let (alice_out, bob_out) = (dir.path().join("alice.wav"), dir.path().join("bob.wav"));
    // NAT contact rewrite off: only STUN can tell alice her public address (she calls out, so
    // her private Contact does no harm here).
    let mut alice = lab.switchboard(
        &lab.home,
        &config(
            HOME_IP,
            "alice",
            &file_audio(&signal, &alice_out),
            &format!("nat = \"off\"\nstun_server = \"{}\"\n", stun.uri()),
        ),
    );
    alice.wait_for(secs(10), "registered");
    // STUN answered for line 1 with the router's public address.
    let learnt = alice.wait_event(secs(10), |e| {
        e["event"] == "network"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("line 1:"))
    });
    let message = learnt["message"].as_str().unwrap_or_default().to_owned();
    let public = format!("{PUBLIC_IP}:");
    let port: u16 = message
        .split_once(&public)
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no public RTP address learnt: {message}"));

    let mut bob = phone(&lab, 0, "bob", &file_audio(&signal, &bob_out));
    alice.send("trace on");
    alice.send("dial bob");
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    let invite = alice.wait_event(secs(5), |e| {
        e["event"] == "sip"
            && e["direction"] == "out"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("INVITE "))
    });
    let sdp = invite["message"].as_str().unwrap_or_default();
    assert!(
        sdp.contains(&format!("c=IN IP4 {PUBLIC_IP}")) && sdp.contains(&format!("m=audio {port} ")),
        "the offer does not carry the STUN address {PUBLIC_IP}:{port}:\n{sdp}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
    for (who, out) in [("alice", &alice_out), ("bob", &bob_out)] {
        let (heard, _) = read_wav(out);
        assert!(
            after_onset(&heard).is_some(),
            "{who} heard nothing through the NAT"
        );
    }
    drop((kam, stun));
}

#[test]
fn a_blind_transfer_from_behind_the_nat_reaches_the_target() {
    let lab = NatLab::new(ROUTER_TIMEOUT);
    let kam = NsKamailio::start(&lab, &USERS);
    let mut alice = alice_registered(&lab, &kam, "backend = \"null\"\n", "");
    let mut bob = phone(&lab, 0, "bob", "backend = \"null\"\n");
    let mut carol = phone(&lab, 1, "carol", "backend = \"null\"\n");
    bob.send("dial alice");
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    bob.wait_call_state(secs(10), 1, "connected");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.transfer_when_accepted("carol");
    carol.wait_for(secs(10), "incoming");
    carol.send("answer");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["target"], format!("sip:carol@{KAMAILIO_IP}"), "{done}");
    carol.wait_call_state(secs(10), 1, "connected");
    carol.send("hangup");
    bob.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");
    for sb in [&mut alice, &mut bob, &mut carol] {
        assert!(sb.quit_and_wait(secs(10)).success());
    }
    drop(kam);
}

/// The line-1 RTP port in the SDP of the next INVITE `sb` sends (its trace must be on).
fn offered_port(sb: &mut Switchboard) -> (u16, String) {
    let invite = sb.wait_event(secs(5), |e| {
        e["event"] == "sip"
            && e["direction"] == "out"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("INVITE "))
    });
    let sdp = invite["message"].as_str().unwrap_or_default().to_owned();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio line:\n{sdp}"));
    (port, sdp)
}

#[test]
fn a_call_after_the_router_forgot_the_rtp_mapping_offers_the_new_one() {
    let lab = NatLab::new(ROUTER_TIMEOUT);
    let kam = NsKamailio::start(&lab, &USERS);
    let stun = NsStun::start(&lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    write_test_signal(&signal, 3.0);
    let (alice_out, carol_out) = (dir.path().join("alice.wav"), dir.path().join("carol.wav"));
    // STUN answers count as stale after 2 s here (20 s in use): the router forgets in 3 s.
    let wrapper = dir.path().join("alice-switchboard");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nSWITCHBOARD_TEST_STUN_STALE_MS=2000 exec ip netns exec '{}' '{}' \"$@\"\n",
            lab.home,
            common::switchboard::switchboard_bin().display()
        ),
    )
    .expect("writing alice's wrapper");
    let mut permissions = std::fs::metadata(&wrapper).expect("wrapper").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&wrapper, permissions).expect("chmod");
    let mut alice = Switchboard::start_binary(
        &wrapper,
        &config(
            HOME_IP,
            "alice",
            &file_audio(&signal, &alice_out),
            &format!("nat = \"off\"\nstun_server = \"{}\"\n", stun.uri()),
        ),
    );
    alice.wait_for(secs(10), "registered");
    alice.send("trace on");
    let mut bob = phone(&lab, 0, "bob", "backend = \"null\"\n");

    // First call: the mapping learnt at start.
    alice.send("dial bob");
    let (first_port, _) = offered_port(&mut alice);
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    std::thread::sleep(Duration::from_secs(1));
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");

    // Once it has forgotten the current mapping, the router gives alice's RTP socket (the
    // first port of her range) a public port from 47000-47099 (a range: a far end that sends
    // first makes the router pick another one, which symmetric RTP follows).
    let nft = lab
        .exec(&lab.router, "nft")
        .args(["insert", "rule", "ip", "nat", "post"])
        .args(["ip", "saddr", &HOME_IP.to_string(), "udp", "sport", "40000"])
        .args(["snat", "to", &format!("{PUBLIC_IP}:47000-47099")])
        .output()
        .expect("running nft");
    assert!(
        nft.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&nft.stderr)
    );
    std::thread::sleep(Duration::from_secs(10));
    let mappings = lab.router_udp_mappings();
    assert!(
        !mappings.contains("sport=40000"),
        "the router still holds alice's RTP mapping:\n{mappings}"
    );

    // Second call, 10 s later: STUN is asked again before the offer, which carries the new port.
    let mut carol = phone(&lab, 1, "carol", &file_audio(&signal, &carol_out));
    alice.send("dial carol");
    let renewed = alice.wait_event(secs(5), |e| {
        e["event"] == "network"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("line 1:") && m.contains("renewed"))
    });
    let message = renewed["message"].as_str().unwrap_or_default();
    let public = format!("{PUBLIC_IP}:");
    let new_port: u16 = message
        .split_once(&public)
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no public RTP address renewed: {message}"));
    assert!(
        (47000..=47099).contains(&new_port) && new_port != first_port,
        "{message}"
    );
    let (second_port, sdp) = offered_port(&mut alice);
    assert_eq!(
        second_port, new_port,
        "the second offer does not carry the router's new mapping:\n{sdp}"
    );
    assert!(sdp.contains(&format!("c=IN IP4 {PUBLIC_IP}")), "{sdp}");
    carol.wait_for(secs(10), "incoming");
    carol.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    std::thread::sleep(Duration::from_secs(3));
    let during = lab.router_udp_mappings();
    alice.send("hangup");
    carol.wait_call_state(secs(10), 1, "ended");
    for sb in [&mut alice, &mut bob, &mut carol] {
        assert!(sb.quit_and_wait(secs(10)).success());
    }
    let deaf: Vec<&str> = [("alice", &alice_out), ("carol", &carol_out)]
        .into_iter()
        .filter(|(_, out)| after_onset(&read_wav(out).0).is_none())
        .map(|(who, _)| who)
        .collect();
    assert!(
        deaf.is_empty(),
        "{deaf:?} heard nothing on the second call; the router held:\n{during}"
    );
    drop((kam, stun));
}

/// The first `quality` event of `sb` that carries a round-trip time (its RTCP sender reports
/// reached the far end and the far end's receiver reports came back), waiting 20 s at most;
/// the failure shows the router's UDP mappings.
fn round_trip(lab: &NatLab, sb: &mut Switchboard) -> f64 {
    let found = common::process::wait_until(secs(20), || {
        sb.events().into_iter().find_map(|e| {
            (e["event"] == "quality")
                .then(|| e["rtt_ms"].as_f64())
                .flatten()
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "no round-trip time; the router holds:\n{}\n{}",
            lab.router_udp_mappings(),
            sb.failure_report()
        )
    })
}

#[test]
fn rtcp_reaches_alice_at_the_address_her_a_rtcp_names() {
    // Mappings held longer than RTCP's report interval (up to 7.5 s): what is tested here is
    // where the reports go, not how long the router remembers.
    let lab = NatLab::new(Duration::from_secs(30));
    // The router maps alice's RTCP socket (the second port of her range) far from her RTP
    // port's mapping: RTP + 1 at the router leads nowhere. Like a home router's firewall, it
    // drops what reaches its own ports unasked (an early packet of bob's would otherwise leave
    // a connection of its own there and push alice's mapping to another port), and counts
    // what is sent to RTP + 1.
    nft(
        &lab,
        &format!(
            "insert rule ip nat post ip saddr {HOME_IP} udp sport 40001 snat to {PUBLIC_IP}:45001\n\
             add table ip guard\n\
             add chain ip guard input {{ type filter hook input priority 0; policy accept; }}\n\
             add rule ip guard input udp dport {{ 40000, 45001 }} drop\n\
             add rule ip guard input udp dport 40001 counter drop\n"
        ),
    );
    let kam = NsKamailio::start(&lab, &USERS);
    let stun = NsStun::start(&lab);
    let mut alice = lab.switchboard(
        &lab.home,
        &config(
            HOME_IP,
            "alice",
            "backend = \"null\"\n",
            &format!("nat = \"off\"\nstun_server = \"{}\"\n", stun.uri()),
        ),
    );
    alice.wait_for(secs(10), "registered");
    let rtcp = format!("{PUBLIC_IP}:45001");
    let learnt = alice.wait_event(secs(10), |e| {
        e["event"] == "network"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("line 1:"))
    });
    assert!(
        learnt["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(&format!("; RTCP at {rtcp} (SDP a=rtcp)"))),
        "STUN did not report the RTCP mapping: {learnt}"
    );
    let mut bob = phone(&lab, 0, "bob", "backend = \"null\"\n");
    alice.send("trace on");
    alice.send("dial bob");
    let (_, sdp) = offered_port(&mut alice);
    assert!(
        sdp.contains(&format!("a=rtcp:45001 IN IP4 {PUBLIC_IP}\r\n")),
        "the offer does not name the STUN-mapped RTCP address {rtcp}:\n{sdp}"
    );
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    // bob's reports reach alice only at the address her a=rtcp names; hers reach bob.
    let alice_rtt = round_trip(&lab, &mut alice);
    let bob_rtt = round_trip(&lab, &mut bob);
    assert!(alice_rtt >= 0.0 && bob_rtt >= 0.0, "{alice_rtt} {bob_rtt}");
    let mappings = lab.router_udp_mappings();
    assert!(
        mappings.contains("sport=40001") && mappings.contains("dport=45001"),
        "no RTCP mapping at the router:\n{mappings}"
    );
    // bob never sent RTCP to alice's RTP port + 1: he went by her a=rtcp from the start.
    let counted = lab
        .exec(&lab.router, "nft")
        .args(["list", "chain", "ip", "guard", "input"])
        .output()
        .expect("running nft");
    let counted = String::from_utf8_lossy(&counted.stdout).into_owned();
    assert!(
        counted.contains("dport 40001 counter packets 0 "),
        "RTCP went to RTP + 1:\n{counted}"
    );
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
    drop((kam, stun));
}

/// Runs the nftables `script` in the router's namespace.
fn nft(lab: &NatLab, script: &str) {
    use std::io::Write as _;
    let mut child = lab
        .exec(&lab.router, "nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running nft");
    child
        .stdin
        .take()
        .expect("nft's stdin")
        .write_all(script.as_bytes())
        .expect("writing nft's script");
    let out = child.wait_with_output().expect("nft");
    assert!(
        out.status.success(),
        "nft {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
