//! IPv6 on the real lab: kamailio listening on `[::1]` only (UDP and TCP), switchboards bound to
//! `[::1]` registering, calling, receiving calls with audio both ways over IPv6 and transferring
//! blind; and a dual-stack switchboard (`[::]`) registered to an IPv4 kamailio on 127.X.Y.1.
//!
//! The phones are switchboards (the file audio backend plays a test signal and records what it
//! hears) and sipp on `::1` (`-i ::1`): a UAS that echoes RTP and a UAC that calls in. sipsak,
//! which the IPv4 lab uses to register sipp, has no IPv6, so sipp is dialled by its address.
//! Traffic stays on `::1` and 127.0.0.0/8. If `::1` cannot be bound, the tests fail and say so.

mod common;

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use common::process::Peer;
use common::signal::{after_onset, read_wav, write_test_signal};
use common::sipp::scenario_path;
use common::{
    require_tool, run_dir, secs, AccountConfig, Kamailio, Net, Switchboard, SwitchboardConfig,
};
use serde_json::Value;

/// The SIP domain kamailio serves on `[::1]` (no DNS: accounts name kamailio by address).
const DOMAIN: &str = "v6.lab.invalid";
/// Every user of the lab's kamailio, with their passwords.
const USERS: [(&str, &str); 3] = [("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")];

fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .expect("a lab user")
}

/// A switchboard bound to `bind` registering `user` at `kam` (registrar and outbound proxy),
/// over `transport`, with `[audio]` lines `audio`.
fn config(kam: &Kamailio, bind: SocketAddr, user: &str, transport: &str, audio: &str) -> String {
    let mut account = AccountConfig::new("lab", user, &kam.domain());
    account.registrar = Some(kam.uri());
    account.outbound_proxy = Some(kam.uri());
    account.password = Some(password(user).to_owned());
    account.register = true;
    account.expires = 60;
    account.transport = transport.to_owned();
    SwitchboardConfig {
        log_level: "debug".to_owned(),
        bind,
        accounts: vec![account],
        codecs: vec!["pcmu".to_owned()],
        ptime: None,
        network: String::new(),
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

const NULL_AUDIO: &str = "backend = \"null\"\n";

/// `[::1]`, any free port.
fn v6_loopback() -> SocketAddr {
    SocketAddr::from((Ipv6Addr::LOCALHOST, 0))
}

/// A switchboard on `[::1]` registered as `user` at `kam`, with the SIP trace on.
fn phone(kam: &Kamailio, user: &str, transport: &str, audio: &str) -> Switchboard {
    let mut sb = Switchboard::start(&config(kam, v6_loopback(), user, transport, audio));
    sb.wait_for(secs(10), "registered");
    sb.send("trace on");
    sb
}

/// The next SIP message `sb` traced in `direction` (`in`/`out`) that starts with `start`.
fn traced(sb: &mut Switchboard, direction: &str, start: &str) -> String {
    let event = sb.wait_event(secs(10), |e: &Value| {
        e["event"] == "sip"
            && e["direction"] == direction
            && e["message"].as_str().is_some_and(|m| m.starts_with(start))
    });
    event["message"].as_str().unwrap_or_default().to_owned()
}

/// Asserts that the recording at `out` holds at least 2 s of sound: the far end's signal
/// for most of a 3 s call, not only a moment of ring-back tone.
fn heard(who: &str, out: &Path) {
    let (recording, rate) = read_wav(out);
    let sound = after_onset(&recording).map_or(0, |(after, _)| after.len());
    assert!(
        sound >= rate as usize,
        "{who} heard less than 2 s of sound over IPv6 ({sound} samples after the first second)"
    );
}

/// The one registered contact of `user`, which must be an IPv6 reference to `::1`.
fn v6_contact(kam: &Kamailio, user: &str) -> String {
    let contacts = kam.wait_registered(user, secs(10));
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(
        contacts[0].contains("@[::1]:"),
        "{user}'s Contact is no IPv6 reference: {contacts:?}"
    );
    contacts[0].clone()
}

#[test]
fn registers_calls_and_receives_over_ipv6_with_audio_both_ways() {
    let net = Net::for_test("ipv6::registers_calls_and_receives");
    let kam = Kamailio::start_ipv6(&net, &USERS, DOMAIN);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    write_test_signal(&signal, 3.0);
    let (alice_out, bob_out) = (dir.path().join("alice.wav"), dir.path().join("bob.wav"));
    let mut alice = phone(&kam, "alice", "udp", &file_audio(&signal, &alice_out));
    let mut bob = phone(&kam, "bob", "udp", &file_audio(&signal, &bob_out));
    v6_contact(&kam, "alice");
    v6_contact(&kam, "bob");

    alice.send("dial bob");
    let invite = traced(&mut alice, "out", "INVITE ");
    let via = invite
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap_or_default();
    assert!(
        via.contains(" [::1]:") && via.contains(";rport"),
        "{invite}"
    );
    assert!(
        invite.contains("c=IN IP6 ::1\r\n"),
        "the offer is not IPv6:\n{invite}"
    );
    // bob receives the call over IPv6 and answers in IPv6.
    bob.wait_for(secs(10), "incoming");
    let offer = traced(&mut bob, "in", "INVITE ");
    assert!(offer.contains("c=IN IP6 ::1\r\n"), "{offer}");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_call_state(secs(10), 1, "connected");
    let answer = traced(&mut alice, "in", "SIP/2.0 200 OK");
    assert!(
        answer.contains("c=IN IP6 ::1\r\n"),
        "the answer is not IPv6:\n{answer}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
    heard("alice", &alice_out);
    heard("bob", &bob_out);
}

#[test]
fn registers_and_calls_over_tcp_on_ipv6() {
    let net = Net::for_test("ipv6::registers_and_calls_over_tcp");
    let kam = Kamailio::start_ipv6(&net, &USERS, DOMAIN);
    let mut alice = phone(&kam, "alice", "tcp", NULL_AUDIO);
    let mut bob = phone(&kam, "bob", "tcp", NULL_AUDIO);
    assert!(v6_contact(&kam, "alice").contains("transport=tcp"));
    bob.send("dial alice");
    let invite = traced(&mut bob, "out", "INVITE ");
    assert!(invite.contains("Via: SIP/2.0/TCP [::1]:"), "{invite}");
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    bob.wait_call_state(secs(10), 1, "connected");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.send("hangup");
    bob.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn a_blind_transfer_over_ipv6_reaches_the_target() {
    let net = Net::for_test("ipv6::a_blind_transfer");
    let kam = Kamailio::start_ipv6(&net, &USERS, DOMAIN);
    let mut alice = phone(&kam, "alice", "udp", NULL_AUDIO);
    let mut bob = phone(&kam, "bob", "udp", NULL_AUDIO);
    let mut carol = phone(&kam, "carol", "udp", NULL_AUDIO);
    bob.send("dial alice");
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    bob.wait_call_state(secs(10), 1, "connected");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.transfer_when_accepted("carol");
    let refer = traced(&mut alice, "out", "REFER ");
    assert!(refer.contains("Via: SIP/2.0/UDP [::1]:"), "{refer}");
    carol.wait_for(secs(10), "incoming");
    carol.send("answer");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["target"], format!("sip:carol@{DOMAIN}"), "{done}");
    carol.wait_call_state(secs(10), 1, "connected");
    carol.send("hangup");
    bob.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");
    for sb in [&mut alice, &mut bob, &mut carol] {
        assert!(sb.quit_and_wait(secs(10)).success());
    }
}

#[test]
fn a_dual_stack_switchboard_reaches_an_ipv4_kamailio() {
    let net = Net::for_test("ipv6::a_dual_stack_switchboard");
    let kam = Kamailio::start(&net, &USERS);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    write_test_signal(&signal, 3.0);
    let (alice_out, bob_out) = (dir.path().join("alice.wav"), dir.path().join("bob.wav"));
    // alice listens on every address of both families; bob is a plain IPv4 phone.
    let dual_stack = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    let mut alice = Switchboard::start(&config(
        &kam,
        dual_stack,
        "alice",
        "udp",
        &file_audio(&signal, &alice_out),
    ));
    alice.wait_for(secs(10), "registered");
    alice.send("trace on");
    let mut bob = Switchboard::start(&config(
        &kam,
        net.sip_addr(3),
        "bob",
        "udp",
        &file_audio(&signal, &bob_out),
    ));
    bob.wait_for(secs(10), "registered");
    // The registrar sees alice at an IPv4 address (not an IPv4-mapped IPv6 one).
    let contacts = kam.wait_registered("alice", secs(10));
    assert!(
        contacts.len() == 1 && contacts[0].contains("@127.") && !contacts[0].contains("::ffff"),
        "{contacts:?}"
    );
    // A call in: bob's INVITE reaches alice's dual-stack socket from an IPv4 address.
    bob.send("dial alice");
    alice.wait_for(secs(10), "incoming");
    let invite = traced(&mut alice, "in", "INVITE ");
    let received = invite
        .lines()
        .find(|l| l.starts_with("Via:"))
        .unwrap_or_default();
    assert!(!received.contains("::ffff"), "{invite}");
    alice.send("answer");
    bob.wait_call_state(secs(10), 1, "connected");
    alice.wait_call_state(secs(10), 1, "connected");
    let answer = traced(&mut alice, "out", "SIP/2.0 200 OK");
    assert!(answer.contains("c=IN IP4 127."), "{answer}");
    std::thread::sleep(Duration::from_secs(3));
    bob.send("hangup");
    alice.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
    heard("alice", &alice_out);
    heard("bob", &bob_out);
}

/// A port free for UDP on `::1` (asked of the system).
fn free_v6_port() -> u16 {
    std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("the IPv6 lab needs ::1, which cannot be bound: {e}"))
}

/// sipp running `scenario` on `[::1]` (SIP and media), one call, calling `service@target`
/// when `target` is given; its message trace is kept in its run directory.
struct SippV6 {
    sip: SocketAddr,
    messages: std::path::PathBuf,
    peer: Peer,
    _dir: tempfile::TempDir,
}

impl SippV6 {
    fn start(scenario: &str, target: Option<(SocketAddr, &str)>, extra: &[&str]) -> SippV6 {
        let sipp = require_tool("sipp", "sip-tester");
        let dir = run_dir("sipp");
        let messages = dir.path().join("messages.log");
        let sip = SocketAddr::from((Ipv6Addr::LOCALHOST, free_v6_port()));
        let media_port = (free_v6_port() & !1).max(20000);
        let mut cmd = std::process::Command::new(sipp);
        if let Some((target, _)) = target {
            cmd.arg(target.to_string());
        }
        cmd.arg("-sf")
            .arg(scenario_path(scenario))
            .args(["-i", "::1", "-p", &sip.port().to_string(), "-bind_local"])
            .args(["-mi", "::1", "-mp", &media_port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-d", "3000", "-trace_msg", "-message_file"])
            .arg(&messages);
        if let Some((_, service)) = target {
            cmd.args(["-s", service]);
        }
        let out = std::fs::File::create(dir.path().join("stdout.log")).expect("sipp log");
        cmd.args(extra)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().expect("a file handle"))
            .stderr(out);
        let peer = Peer::spawn(
            &format!("sipp {scenario} @{sip}"),
            &mut cmd,
            vec![messages.clone(), dir.path().join("stdout.log")],
        );
        SippV6 {
            sip,
            messages,
            peer,
            _dir: dir,
        }
    }

    /// Waits (bounded) for sipp to end its call; panics with its trace unless it passed.
    fn expect_pass(&mut self) {
        let status = self.peer.wait_timeout(secs(40));
        assert!(
            status.is_some_and(|s| s.success()),
            "sipp did not pass ({status:?}):\n{}",
            common::process::read_lossy(&self.messages)
        );
    }
}

#[test]
fn a_sipp_peer_on_ipv6_answers_and_echoes_the_audio() {
    let net = Net::for_test("ipv6::a_sipp_peer_answers_and_echoes");
    let kam = Kamailio::start_ipv6(&net, &USERS, DOMAIN);
    let dir = tempfile::tempdir().expect("tempdir");
    let signal = dir.path().join("signal.wav");
    write_test_signal(&signal, 3.0);
    let alice_out = dir.path().join("alice.wav");
    let mut echo = SippV6::start("uas_answer", None, &["-rtp_echo"]);
    let mut alice = phone(&kam, "alice", "udp", &file_audio(&signal, &alice_out));
    // Through kamailio (the outbound proxy) to sipp's IPv6 address.
    alice.send(&format!("dial sip:echo@{}", echo.sip));
    let invite = traced(&mut alice, "out", "INVITE ");
    assert!(
        invite.starts_with(&format!("INVITE sip:echo@{} SIP/2.0", echo.sip)),
        "{invite}"
    );
    alice.wait_call_state(secs(10), 1, "connected");
    let answer = traced(&mut alice, "in", "SIP/2.0 200 OK");
    assert!(
        answer.contains("c=IN IP6 ::1"),
        "sipp's answer is not IPv6:\n{answer}"
    );
    std::thread::sleep(Duration::from_secs(3));
    alice.send("hangup");
    alice.wait_call_state(secs(10), 1, "ended");
    echo.expect_pass();
    assert!(alice.quit_and_wait(secs(10)).success());
    // What alice heard is her own signal, sent back by sipp over IPv6.
    heard("alice", &alice_out);
}

#[test]
fn a_sipp_caller_on_ipv6_reaches_a_registered_switchboard() {
    let net = Net::for_test("ipv6::a_sipp_caller_reaches_switchboard");
    let kam = Kamailio::start_ipv6(&net, &USERS, DOMAIN);
    let mut alice = phone(&kam, "alice", "udp", NULL_AUDIO);
    v6_contact(&kam, "alice");
    // sipp calls alice@[::1]:PORT at kamailio, which finds her registration.
    let mut caller = SippV6::start("uac_invite", Some((kam.addr(), "alice")), &[]);
    alice.wait_for(secs(10), "incoming");
    let invite = traced(&mut alice, "in", "INVITE ");
    assert!(invite.contains("c=IN IP6 ::1"), "{invite}");
    assert!(
        invite.contains(&format!("Via: SIP/2.0/UDP {}", caller.sip)),
        "{invite}"
    );
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    let ok = traced(&mut alice, "out", "SIP/2.0 200 OK");
    assert!(ok.contains("c=IN IP6 ::1"), "{ok}");
    caller.expect_pass();
    alice.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
}
