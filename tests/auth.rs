//! Every request answers a challenge (issue 16.3), against a real peer: sipp plays a PBX
//! that challenges in-dialog requests, as FreeSWITCH and several hosted PBXes do. switchboard
//! (headless, peer to peer, `[transfer] blind = "notify"`) calls it, transfers the call, and
//! sipp answers the hold re-INVITE, the REFER and then the BYE with 407 before accepting them
//! (`tests/lab/uas_challenge_refer_bye.xml`). The test checks that the transfer succeeds and
//! the call ends as if nothing had been challenged, and that what sipp received carries
//! digests that check out, with a new branch and a higher CSeq for each request sent again.

mod common;

use common::{hosts, secs, Net, Sipp, Switchboard, SwitchboardConfig, TracedMessage};

/// The requests of `method` sipp received, retransmissions left out.
fn requests<'a>(received: &'a [TracedMessage], method: &str) -> Vec<&'a TracedMessage> {
    let mut seen: Vec<&TracedMessage> = Vec::new();
    for m in received.iter().filter(|m| m.method() == Some(method)) {
        if seen.iter().all(|s| s.header("Via") != m.header("Via")) {
            seen.push(m);
        }
    }
    seen
}

/// The CSeq number of `m`.
fn cseq(m: &TracedMessage) -> u32 {
    m.header("CSeq")
        .and_then(|c| c.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a CSeq in {m:#?}"))
}

#[test]
fn a_peer_that_challenges_hold_refer_and_bye_gets_credentials_and_the_transfer_completes() {
    let net = Net::for_test("auth::refer_bye");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_challenge_refer_bye", &[]);
    let mut config = SwitchboardConfig::peer_to_peer(&net)
        .with_extra("[transfer]\nblind = \"notify\"\nblind_timeout = 5");
    config.accounts[0].password = Some("alicepw".into());
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    let target = format!("sip:carol@{}", uas.ip());
    sb.send(&format!("transfer {target}"));
    sb.wait_call_state(secs(5), 1, "held");
    let accepted = sb.wait_transfer(secs(5), "accepted");
    assert_eq!(accepted["status_code"], 202, "the REFER got through");
    let done = sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["status_code"], 200);
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_ne!(
        ended["status"], 407,
        "the BYE's challenge was answered: {ended}"
    );
    uas.expect_pass(secs(10));

    let checked = uas
        .verify_digest("alice", "alicepw")
        .expect("digests sipp accepts");
    assert!(
        checked.len() >= 3,
        "re-INVITE, REFER and BYE carried credentials"
    );
    assert!(uas.verify_digest("alice", "wrong").is_err());
    let received = uas.received();
    for method in ["REFER", "BYE"] {
        let sent = requests(&received, method);
        assert_eq!(sent.len(), 2, "{method} sent twice: {sent:#?}");
        assert!(
            sent[1].header("Proxy-Authorization").is_some(),
            "{method} answered the 407: {:#?}",
            sent[1]
        );
        assert!(
            cseq(sent[1]) > cseq(sent[0]),
            "{method}: CSeq grows ({} then {})",
            cseq(sent[0]),
            cseq(sent[1])
        );
    }
    // The call's INVITE, the challenged hold and the hold sent again with credentials.
    let invites = requests(&received, "INVITE");
    assert_eq!(invites.len(), 3, "{invites:#?}");
    assert!(invites[1].header("Proxy-Authorization").is_none());
    assert!(invites[2].header("Proxy-Authorization").is_some());
    assert!(invites[2].body().contains("a=sendonly"));
    assert!(cseq(invites[2]) > cseq(invites[1]));
    let refer = requests(&received, "REFER");
    let bye = requests(&received, "BYE");
    assert!(
        cseq(refer[0]) > cseq(invites[2]) && cseq(bye[0]) > cseq(refer[1]),
        "the dialog's CSeq went past each request sent again"
    );
}
