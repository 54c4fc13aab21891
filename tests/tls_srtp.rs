//! SIP over TLS and SRTP: registering with kamailio's TLS listener (certificate from a CA the
//! test makes), refusing a certificate that is not trusted or names another host without
//! sending anything in clear text, and calls whose media is SRTP.

mod common;

use common::{hosts, secs, Capture, Kamailio, Net, Switchboard, SwitchboardConfig, TestCa};

/// switchboard registering `user` at kamailio over TLS, trusting the CA in `ca_file`.
fn tls_config(
    net: &Net,
    user: &str,
    password: &str,
    ca_file: &std::path::Path,
) -> SwitchboardConfig {
    let mut config = SwitchboardConfig::registering(net, user, password);
    let account = &mut config.accounts[0];
    account.transport = "tls".to_owned();
    account.registrar = Some(format!("sips:{}", net.ip(hosts::KAMAILIO)));
    account
        .extra
        .push_str(&format!("tls_ca_file = \"{}\"\n", ca_file.display()));
    config
}

#[test]
fn registers_over_tls_with_the_configured_ca() {
    let net = Net::for_test("tls::registers");
    let ca = TestCa::new("switchboard test CA");
    let kam = Kamailio::start_tls(
        &net,
        &[("alice", "alicepw")],
        &ca.server_for_ip(net.ip(hosts::KAMAILIO).into()),
    );
    let dir = common::run_dir("tls-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let mut sb = Switchboard::start(&tls_config(&net, "alice", "alicepw", &ca_file).to_toml());
    let started = sb.wait_for(secs(10), "started");
    assert_eq!(started["transport"], "tls");
    sb.wait_for(secs(10), "registered");
    let contacts = kam.wait_registered("alice", secs(5));
    assert!(
        contacts
            .iter()
            .any(|c| c.starts_with("sips:") || c.contains("sips:")),
        "the contact is a sips: URI: {contacts:?}"
    );
    let dump = kam.ul_dump();
    assert!(
        dump.contains("tls:"),
        "registered over the TLS socket: {dump}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
    kam.wait_unregistered("alice", secs(5));
}

/// Starts kamailio presenting `server`, and switchboard trusting `trusted`; returns the
/// `registration_failed` event and kamailio's log.
fn refused(
    test: &str,
    server: impl Fn(&Net) -> common::KamailioTls,
    trusted: &TestCa,
) -> (serde_json::Value, String) {
    let net = Net::for_test(test);
    let kam = Kamailio::start_tls(&net, &[("alice", "alicepw")], &server(&net));
    let dir = common::run_dir("tls-ca");
    let ca_file = trusted.write(dir.path(), "ca.pem");
    let mut sb = Switchboard::start(&tls_config(&net, "alice", "alicepw", &ca_file).to_toml());
    let failed = sb.wait_for(secs(10), "registration_failed");
    // Give a clear-text fallback, if there were one, time to show.
    sb.expect_no_event(secs(1), |e| e["event"] == "registered");
    assert!(sb.quit_and_wait(secs(10)).success());
    (failed, kam.log())
}

#[test]
fn a_certificate_from_another_ca_fails_registration_without_clear_text() {
    let real = TestCa::new("the registrar's CA");
    let other = TestCa::new("a CA the phone trusts");
    let (failed, log) = refused(
        "tls::untrusted",
        |net| real.server_for_ip(net.ip(hosts::KAMAILIO).into()),
        &other,
    );
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("TLS: certificate not trusted"),
        "{failed}"
    );
    assert!(failed["status"].is_null(), "{failed}");
    assert!(
        !log.contains("LAB-REQ REGISTER"),
        "no REGISTER may reach kamailio, in clear text or otherwise:\n{log}"
    );
}

#[test]
fn a_certificate_for_another_name_fails_registration() {
    let ca = TestCa::new("switchboard test CA");
    let (failed, log) = refused("tls::wrong_name", |_| ca.server("sip.example.invalid"), &ca);
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("name does not match"), "{failed}");
    assert!(!log.contains("LAB-REQ REGISTER"), "{log}");
}

/// The host number of the second switchboard.
const CALLEE: u8 = 6;
/// The host number of the RTP relay between them.
const RELAY: u8 = 7;
/// RTP ports of the caller and the callee.
const CALLER_RTP: u16 = 30_000;
const CALLEE_RTP: u16 = 31_000;

/// Pearson's chi-square of the byte values of `bytes` against a uniform distribution
/// (255 degrees of freedom: about 255 ± 23 for random bytes).
fn chi_square(bytes: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for b in bytes {
        counts[usize::from(*b)] += 1;
    }
    let expected = bytes.len() as f64 / 256.0;
    counts
        .iter()
        .map(|c| (*c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn an_srtp_call_over_tls_through_kamailio_is_heard_and_encrypted_on_the_wire() {
    use common::relay::{Ends, Impairment, Relay};
    use common::signal::{after_onset, median_ncc, read_wav, windows_heard, write_test_signal};

    let net = Net::for_test("tls::srtp_call");
    let ca = TestCa::new("switchboard test CA");
    let kam = Kamailio::start_tls(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw")],
        &ca.server_for_ip(net.ip(hosts::KAMAILIO).into()),
    );
    let dir = common::run_dir("tls-srtp");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let signal = dir.path().join("signal.wav");
    let reference = write_test_signal(&signal, 3.0);
    let callee_out = dir.path().join("callee_out.wav");
    let relay_ip = net.ip(RELAY);
    let relay = Relay::start(
        relay_ip,
        Ends {
            caller: (net.ip(hosts::SWITCHBOARD), CALLER_RTP).into(),
            callee: (net.ip(CALLEE), CALLEE_RTP).into(),
        },
        Impairment {
            loss: 0.0,
            jitter: std::time::Duration::from_millis(1),
        },
        7,
    );
    let network = |first: u16| {
        format!(
            "rtp_port_min = {first}\nrtp_port_max = {}\nmedia_address = \"{relay_ip}\"\n",
            first + 9
        )
    };
    let mut caller_cfg = tls_config(&net, "alice", "alicepw", &ca_file)
        .with_codecs(&["pcmu"])
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            signal.display(),
            dir.path().join("caller_out.wav").display()
        ))
        .with_network(&network(CALLER_RTP));
    caller_cfg.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\n");
    let mut callee_cfg = tls_config(&net, "bob", "bobpw", &ca_file)
        .with_codecs(&["pcmu"])
        .with_audio(&format!(
            "backend = \"file\"\nfile_out = \"{}\"\n",
            callee_out.display()
        ))
        .with_network(&network(CALLEE_RTP));
    callee_cfg.bind = (net.ip(CALLEE), 5060).into();
    callee_cfg.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\n");

    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "registered");
    callee.wait_for(secs(10), "registered");
    kam.wait_registered("bob", secs(5));
    caller.send("dial bob");
    callee.wait_for(secs(10), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(10), 1, "connected");
    callee.wait_call_state(secs(10), 1, "connected");
    let quality = callee.wait_for(secs(8), "quality");
    println!("callee quality: {quality}");
    caller.send("hangup");
    callee.wait_call_state(secs(10), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());
    for line in callee.log().lines().filter(|l| l.contains("SRTP")) {
        println!("callee: {line}");
    }

    // Heard: the callee's recording matches the signal the caller played.
    let (out, _) = read_wav(&callee_out);
    let (heard, _) = after_onset(&out).expect("the callee heard something");
    let (_, windows) = windows_heard(heard, &reference);
    let ncc = median_ncc("heard over SRTP", &windows, 6);
    // Measured: median 1.000 (PCMU keeps the signal's band), the first second 0.61–0.68
    // while the jitter buffer settles; 0.8 fails on garbled or missing audio.
    assert!(ncc >= 0.8, "ncc {ncc}");

    // Encrypted on the wire: SRTP packets (RTP header, 160 bytes of PCMU, 10-byte tag) whose
    // payload bytes look random, unlike G.711 samples of a signal or of silence.
    let captured = relay.stats.captured.lock().expect("captured").clone();
    assert!(captured.len() >= 40, "{} packets captured", captured.len());
    let mut payloads = Vec::new();
    for packet in &captured {
        assert_eq!(packet[0] >> 6, 2, "RTP version 2");
        assert_eq!(packet[1] & 0x7f, 0, "PCMU's payload type, in clear");
        assert_eq!(
            packet.len(),
            12 + 160 + 10,
            "RTP header + PCMU + 80-bit tag"
        );
        payloads.extend_from_slice(&packet[12..12 + 160]);
    }
    let chi2 = chi_square(&payloads);
    println!("chi-square of {} payload bytes: {chi2:.0}", payloads.len());
    assert!(
        chi2 < 400.0,
        "payloads do not look encrypted (chi² {chi2:.0})"
    );
}

#[test]
fn mandatory_srtp_refuses_a_plain_caller_with_488() {
    use common::Sipp;

    let net = Net::for_test("tls::srtp_refuses_plain");
    let mut config = SwitchboardConfig::peer_to_peer(&net);
    config.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\nsrtp_over_insecure = true\n");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_expect_488",
        net.sip_addr(hosts::SWITCHBOARD),
        "alice",
        &[],
    );
    uac.expect_pass(secs(10));
    let error = sb.wait_for(secs(5), "error");
    assert!(
        error["message"].as_str().is_some_and(
            |m| m.starts_with("refused a call from") && m.contains("SRTP is mandatory")
        ),
        "{error}"
    );
    let refused = uac
        .received()
        .into_iter()
        .find(|m| m.status() == Some(488))
        .expect("488 received");
    assert!(
        refused
            .header("Warning")
            .is_some_and(|w| w.contains("SRTP")),
        "the 488 says why: {:?}",
        refused.header("Warning")
    );
    sb.expect_no_event(std::time::Duration::from_millis(300), |e| {
        e["event"] == "incoming"
    });
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn mandatory_srtp_ends_a_call_answered_without_keys() {
    use common::Sipp;

    let net = Net::for_test("tls::srtp_plain_answer");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let mut config = SwitchboardConfig::peer_to_peer(&net);
    config.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\nsrtp_over_insecure = true\n");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let mut wire = Capture::start(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    let ended = sb.wait_call_state(secs(10), 1, "ended");
    assert!(
        ended["reason"]
            .as_str()
            .is_some_and(|r| r.contains("SRTP is mandatory")),
        "{ended}"
    );
    // Our offer was RTP/SAVP with keys; the plain answer got a BYE, no clear RTP.
    let invite = &uas.received()[0];
    assert!(invite.body().contains("RTP/SAVP"), "{}", invite.body());
    assert!(invite
        .body()
        .contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    uas.wait(secs(10));
    // Nothing at all went to the media address of the plain answer, neither before the BYE
    // nor after: no clear RTP (and no SRTP to a peer without keys). The capture itself saw
    // the call's SIP, so an empty result is not an empty capture.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let media = uas.media_addr();
    let sip = wire.frames("sip");
    assert!(
        sip.iter().any(|f| f.contains("INVITE")),
        "the capture saw the call: {sip:#?}"
    );
    let leaked = wire.frames(&format!(
        "ip.dst == {} && udp.dstport == {}",
        media.ip(),
        media.port()
    ));
    assert!(
        leaked.is_empty(),
        "media went to the plain answer: {leaked:#?}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn an_srtp_call_with_baresip_both_sides_mandatory_is_heard_both_ways() {
    // A real phone's SRTP: baresip with `mediaenc=srtp-mand` (SDES, RTP/SAVP) through
    // kamailio over UDP, switchboard with `srtp = "mandatory"` (keys over UDP allowed
    // explicitly). Neither side sends or accepts clear RTP, so each hearing the other's tone
    // proves the keys, the suites and the authentication tags agree both ways.
    use common::{audio, AudioSource, Baresip, BaresipOptions};
    let net = Net::for_test("tls::srtp_baresip");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(1000),
            extra_config: vec!["module\t\t\tsrtp.so".to_owned()],
            extra_account_params: ";mediaenc=srtp-mand".to_owned(),
            ..BaresipOptions::default()
        },
    );
    let dir = common::run_dir("srtp-baresip");
    let heard = dir.path().join("alice_heard.wav");
    let mut cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["pcmu"])
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            audio::tone_wav(dir.path(), "alice-600.wav", 600, 10).display(),
            heard.display()
        ));
    cfg.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\nsrtp_over_insecure = true\n");
    let mut alice = Switchboard::start(&cfg.to_toml());
    alice.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    alice.send("dial bob");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_log("Call established", secs(5));
    std::thread::sleep(std::time::Duration::from_secs(3));
    alice.send("hangup");
    alice.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(alice.quit_and_wait(secs(10)).success());

    assert!(
        kam.log().contains("LAB-REQ INVITE"),
        "the call went through kamailio"
    );
    let alice_heard = audio::wav_stat(&heard);
    println!("alice heard: {alice_heard:?}");
    assert!(
        (900.0..1100.0).contains(&alice_heard["Rough frequency"]),
        "alice hears bob's 1 kHz through SRTP: {alice_heard:?}"
    );
    let recordings = bob.heard_recordings();
    let bob_heard = audio::wav_stat(recordings.first().expect("bob recorded the call"));
    println!("bob heard: {bob_heard:?}");
    assert!(
        (500.0..700.0).contains(&bob_heard["Rough frequency"]),
        "bob hears alice's 600 Hz through SRTP: {bob_heard:?}"
    );
}

/// Every `a=crypto` key and digest parameter of a traced message: `(keys, digest responses)`
/// as they appear after `inline:` and `response=`.
fn secrets_in(message: &str) -> (Vec<String>, Vec<String>) {
    let after = |needle: &str| -> Vec<String> {
        message
            .match_indices(needle)
            .map(|(at, _)| {
                message[at + needle.len()..]
                    .chars()
                    .take_while(|c| !matches!(c, ';' | ' ' | ',' | '\r' | '\n'))
                    .collect()
            })
            .collect()
    };
    (after("inline:"), after("response="))
}

#[test]
fn the_trace_of_a_digest_challenged_srtp_call_holds_no_keys_unless_raw() {
    // kamailio challenges our INVITE (407, so the retry carries Proxy-Authorization) and
    // baresip answers with SDES keys: `trace on` reports every message with the digest
    // response and both sides' keys redacted; `trace on raw` is the explicit way to see them.
    use common::{Baresip, BaresipOptions, KamailioAuth};
    let net = Net::for_test("tls::trace_secrets");
    let kam = Kamailio::start_with(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw")],
        KamailioAuth::RegisterAndCalls,
    );
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            extra_config: vec!["module\t\t\tsrtp.so".to_owned()],
            extra_account_params: ";mediaenc=srtp-mand".to_owned(),
            ..BaresipOptions::default()
        },
    );
    let mut cfg = SwitchboardConfig::registering(&net, "alice", "alicepw").with_codecs(&["pcmu"]);
    cfg.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\nsrtp_over_insecure = true\n");
    let mut alice = Switchboard::start(&cfg.to_toml());
    alice.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));

    /// One call to bob traced in `mode`: the `trace` event, then the `sip` events.
    fn call(alice: &mut Switchboard, mode: &str) -> Vec<serde_json::Value> {
        alice.send(&format!("trace {mode}"));
        let said = alice.wait_for(secs(5), "trace");
        alice.send("dial bob");
        alice.wait_call_state(secs(10), 1, "connected");
        alice.send("hangup");
        alice.wait_call_state(secs(5), 1, "ended");
        alice.send("trace off");
        alice.wait_event(secs(5), |e| e["event"] == "trace" && e["mode"] == "off");
        let mut sip: Vec<serde_json::Value> = alice
            .events()
            .into_iter()
            .filter(|e| e["event"] == "sip")
            .collect();
        sip.retain(|e| e["raw"] == (mode == "on raw"));
        sip.insert(0, said);
        sip
    }

    let redacted = call(&mut alice, "on");
    assert_eq!(redacted[0]["mode"], "on", "{}", redacted[0]);
    assert!(
        redacted[0]["shows"]
            .as_str()
            .is_some_and(|s| s.contains("<redacted>")),
        "{}",
        redacted[0]
    );
    let messages: Vec<&str> = redacted[1..]
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default())
        .collect();
    let authorized = messages
        .iter()
        .find(|m| m.starts_with("INVITE ") && m.contains("\r\nProxy-Authorization: "))
        .expect("the INVITE answering kamailio's 407 was traced");
    assert!(
        authorized.contains("\r\nProxy-Authorization: <redacted>\r\n"),
        "{authorized}"
    );
    let answer = messages
        .iter()
        .find(|m| m.starts_with("SIP/2.0 200") && m.contains("INVITE\r\n") && m.contains("m=audio"))
        .expect("baresip's 200 OK with its SDP was traced");
    assert!(answer.contains("RTP/SAVP"), "{answer}");
    for message in &messages {
        let (keys, responses) = secrets_in(message);
        assert!(keys.iter().all(|k| k == "<redacted>"), "a key: {message}");
        assert!(responses.is_empty(), "a digest response: {message}");
        assert!(!message.contains("cnonce="), "a cnonce: {message}");
    }
    let keyed = messages.iter().filter(|m| m.contains("a=crypto:")).count();
    assert!(
        keyed >= 2,
        "our offer and bob's answer carry a=crypto lines"
    );

    let raw = call(&mut alice, "on raw");
    assert_eq!(raw[0]["mode"], "raw", "{}", raw[0]);
    assert!(
        raw[0]["shows"]
            .as_str()
            .is_some_and(|s| s.contains("UNREDACTED")),
        "{}",
        raw[0]
    );
    let (keys, responses) = raw[1..]
        .iter()
        .map(|e| secrets_in(e["message"].as_str().unwrap_or_default()))
        .fold((Vec::new(), Vec::new()), |(mut k, mut r), (k2, r2)| {
            k.extend(k2);
            r.extend(r2);
            (k, r)
        });
    // SDES AES_CM_128 keys are 30 bytes of key and salt: 40 base64 characters.
    assert!(
        keys.iter()
            .filter(|k| k.len() >= 40 && *k != "<redacted>")
            .count()
            >= 2,
        "both sides' keys shown raw: {keys:?}"
    );
    assert!(
        responses.iter().any(|r| r.len() >= 34),
        "the digest response shown raw: {responses:?}"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}

/// Where both switchboards start their RTP sequence numbers in the wrap tests: 50 packets
/// (one second of 20 ms frames) before 65535, so the sequence wraps a second into the call.
const NEAR_THE_WRAP: &str = "65485";

/// How many whole seconds of `path` carry a tone of about `hz` (zero crossings within 10 %)
/// at a clear level: a stream that broke at the wrap would stop being heard about a second
/// into the call, so counting tone seconds tells audio heard well after the wrap.
fn seconds_with_tone(path: &std::path::Path, hz: f64) -> usize {
    let (samples, rate) = common::signal::read_wav(path);
    let second = rate as usize;
    samples
        .chunks(second)
        .filter(|c| c.len() == second)
        .filter(|c| {
            let rms = (c.iter().map(|v| v * v).sum::<f32>() / c.len() as f32).sqrt();
            let crossings = c
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            let heard_hz = crossings as f64 / 2.0;
            rms > 0.02 && (heard_hz - hz).abs() < hz * 0.1
        })
        .count()
}

/// Seconds the calls of the wrap tests last once connected.
const WRAP_CALL_SECS: u64 = 8;
/// Whole seconds of tone each side must hear: a stream broken at the wrap gives at most one.
const WRAP_HEARD_SECS: usize = 5;

#[test]
fn an_srtp_call_with_baresip_is_heard_well_after_our_sequence_wraps() {
    // RFC 3711 §3.3.1: the rollover counter (ROC) must advance on both sides when the 16-bit
    // sequence wraps, or every later packet fails authentication (a call crosses it within
    // ~22 minutes). switchboard starts its sequence a second before the wrap; baresip
    // (`srtp-mand`) must keep hearing it after, and we must keep hearing baresip (whose own
    // start is random: this direction crosses the wrap only in the two-switchboard test).
    use common::{audio, AudioSource, Baresip, BaresipOptions};
    let net = Net::for_test("tls::srtp_wrap_baresip");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(1000),
            extra_config: vec!["module\t\t\tsrtp.so".to_owned()],
            extra_account_params: ";mediaenc=srtp-mand".to_owned(),
            ..BaresipOptions::default()
        },
    );
    let dir = common::run_dir("srtp-wrap-baresip");
    let heard = dir.path().join("alice_heard.wav");
    let mut cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["pcmu"])
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            audio::tone_wav(dir.path(), "alice-600.wav", 600, 10).display(),
            heard.display()
        ));
    cfg.accounts[0]
        .extra
        .push_str("srtp = \"mandatory\"\nsrtp_over_insecure = true\n");
    let mut alice = Switchboard::start_with_env(
        &cfg.to_toml(),
        &[("SWITCHBOARD_TEST_RTP_SEQ_START", NEAR_THE_WRAP)],
    );
    alice.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    alice.send("dial bob");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_log("Call established", secs(5));
    std::thread::sleep(std::time::Duration::from_secs(WRAP_CALL_SECS));
    alice.send("hangup");
    alice.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(
        alice
            .log()
            .contains("RTP sequence numbers start at a fixed value"),
        "the test setting reached the media engine"
    );

    let recordings = bob.heard_recordings();
    let bob_heard = recordings.first().expect("bob recorded the call");
    let bob_secs = seconds_with_tone(bob_heard, 600.0);
    let alice_secs = seconds_with_tone(&heard, 1000.0);
    println!("seconds of tone: bob heard {bob_secs}, alice heard {alice_secs}");
    assert!(
        bob_secs >= WRAP_HEARD_SECS,
        "bob hears alice's 600 Hz for {bob_secs} s of a {WRAP_CALL_SECS} s call whose \
         sequence wrapped after 1 s: {:?}",
        audio::wav_stat(bob_heard)
    );
    assert!(
        alice_secs >= 4,
        "alice hears bob's 1 kHz for {alice_secs} s"
    );
}

#[test]
fn two_switchboards_keep_hearing_each_other_over_srtp_across_the_wrap() {
    // Both sides start their sequence a second before 65535: each side's sending context
    // and the other's receiving context must both move to ROC 1 together.
    use common::audio;
    let net = Net::for_test("tls::srtp_wrap_pair");
    let dir = common::run_dir("srtp-wrap-pair");
    let file_audio = |tone: &std::path::Path, out: &std::path::Path| {
        format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            tone.display(),
            out.display()
        )
    };
    let srtp = "srtp = \"mandatory\"\nsrtp_over_insecure = true\n";
    let caller_heard = dir.path().join("caller_heard.wav");
    let callee_heard = dir.path().join("callee_heard.wav");
    let mut caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["pcmu"])
        .with_audio(&file_audio(
            &audio::tone_wav(dir.path(), "caller-600.wav", 600, 10),
            &caller_heard,
        ));
    caller_cfg.accounts[0].extra.push_str(srtp);
    let callee_ip = net.ip(6);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["pcmu"])
        .with_audio(&file_audio(
            &audio::tone_wav(dir.path(), "callee-1000.wav", 1000, 10),
            &callee_heard,
        ));
    callee_cfg = callee_cfg.at(callee_ip, "bob");
    callee_cfg.accounts[0].extra.push_str(srtp);
    let env = [("SWITCHBOARD_TEST_RTP_SEQ_START", NEAR_THE_WRAP)];
    let mut caller = Switchboard::start_with_env(&caller_cfg.to_toml(), &env);
    let mut callee = Switchboard::start_with_env(&callee_cfg.to_toml(), &env);
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{callee_ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    std::thread::sleep(std::time::Duration::from_secs(WRAP_CALL_SECS));
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());

    let caller_secs = seconds_with_tone(&caller_heard, 1000.0);
    let callee_secs = seconds_with_tone(&callee_heard, 600.0);
    println!("seconds of tone: caller heard {caller_secs}, callee heard {callee_secs}");
    for (who, log) in [("caller", caller.log()), ("callee", callee.log())] {
        assert!(
            !log.contains("fail authentication"),
            "the {who} dropped SRTP packets"
        );
    }
    assert!(
        caller_secs >= 4,
        "the caller hears 1 kHz for {caller_secs} s"
    );
    assert!(
        callee_secs >= 4,
        "the callee hears 600 Hz for {callee_secs} s"
    );
}
