//! Blind transfer when things go wrong, with sipp as the transferee (issue 4): switchboard
//! (peer to peer, `[transfer] blind = "notify"`, `blind_timeout = 5`) calls a sipp UAS, transfers it to
//! `sip:carol@<sipp's IP>`, and sipp answers the REFER as each scenario says: refused (403,
//! 405), a final NOTIFY with a failure (486, 408, 480, 503), no final NOTIFY or none at all, a
//! hang-up during the transfer (with and without a NOTIFY after the BYE), the quirks of real
//! phones, and glare (491) on the hold before the REFER. Each test checks the `transfer` events
//! (status, status_code, words), that the call comes back (resumed, media sendrecv) where the
//! operator should have it, and what sipp received (hold first, then a proper REFER).

mod common;

use std::time::Duration;

use common::{hosts, secs, Net, Sipp, Switchboard, SwitchboardConfig, TracedMessage};

/// A call from switchboard to a sipp transferee, with the transfer under way.
struct Transfer {
    net: Net,
    uas: Sipp,
    sb: Switchboard,
    /// The Refer-To target, `sip:carol@<sipp's IP>`.
    target: String,
}

/// Starts sipp with `scenario` (and `keys`, as `-key NAME VALUE` pairs), switchboard with a
/// 5 s blind-transfer timeout, connects the call and types `transfer sip:carol@<sipp IP>`.
/// Returns once the call is held (before the REFER's answer).
fn transfer_to_carol(test: &str, scenario: &str, keys: &[(&str, &str)]) -> Transfer {
    let net = Net::for_test(&format!("transfer_failures::{test}"));
    let mut args = Vec::new();
    for (name, value) in keys {
        args.extend(["-key", name, value]);
    }
    let uas = Sipp::uas(&net, hosts::SIPP, scenario, &args);
    let config = SwitchboardConfig::peer_to_peer(&net)
        .with_extra("[transfer]\nblind = \"notify\"\nblind_timeout = 5");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.wait_event(secs(2), |e| {
        e["event"] == "media" && e["direction"] == "sendrecv"
    });
    let target = format!("sip:carol@{}", uas.ip());
    sb.send(&format!("transfer {target}"));
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["target"], target.as_str());
    assert_eq!(requested["line"], 1);
    sb.wait_call_state(secs(5), 1, "held");
    Transfer {
        net,
        uas,
        sb,
        target,
    }
}

/// The failure event: its `(status_code, reason)`.
fn failed(sb: &mut Switchboard, timeout: Duration) -> (Option<u64>, String) {
    let ev = sb.wait_transfer(timeout, "failed");
    (
        ev["status_code"].as_u64(),
        ev["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The operator gets the call back: `recalled` with the words, the call connected again and
/// media both ways.
fn assert_recalled(sb: &mut Switchboard) {
    let recalled = sb.wait_transfer(secs(2), "recalled");
    assert_eq!(
        recalled["reason"],
        "reconnecting: the call is back on line 1"
    );
    sb.wait_call_state(secs(5), 1, "connected");
    let media = sb.wait_event(secs(2), |e| {
        e["event"] == "media" && e["direction"] == "sendrecv"
    });
    assert_eq!(media["line"], 1);
}

/// The index of the first message sipp received that satisfies `pred`.
fn position(
    received: &[TracedMessage],
    what: &str,
    pred: impl Fn(&TracedMessage) -> bool,
) -> usize {
    received
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("sipp received no {what}: {received:#?}"))
}

/// What sipp received: the hold re-INVITE (sendonly) completed before a REFER with the target
/// in angle brackets and our Referred-By, and the answers to sipp's NOTIFYs, in order, were
/// `notify_codes`. Returns the messages received after the REFER.
fn assert_referred(t: &Transfer, notify_codes: &[u16]) -> Vec<TracedMessage> {
    let received = t.uas.received();
    let hold = position(&received, "hold re-INVITE", |m| {
        m.method() == Some("INVITE") && m.body().contains("a=sendonly")
    });
    let refer = position(&received, "REFER", |m| m.method() == Some("REFER"));
    assert!(
        received[hold..refer]
            .iter()
            .any(|m| m.method() == Some("ACK")),
        "the hold completed (ACK) before the REFER: {received:#?}"
    );
    let r = &received[refer];
    assert_eq!(
        r.header("Refer-To"),
        Some(format!("<{}>", t.target).as_str())
    );
    let me = t.net.ip(hosts::SWITCHBOARD);
    assert_eq!(
        r.header("Referred-By"),
        Some(format!("<sip:alice@{me}>").as_str())
    );
    let mut answers: Vec<(&str, Option<u16>)> = received
        .iter()
        .filter_map(|m| {
            let cseq = m.header("CSeq").filter(|c| c.ends_with(" NOTIFY"))?;
            Some((cseq, m.status()))
        })
        .collect();
    answers.dedup();
    let codes: Vec<u16> = answers.iter().filter_map(|(_, code)| *code).collect();
    assert_eq!(codes, notify_codes, "answers to the NOTIFYs: {answers:?}");
    received[refer + 1..].to_vec()
}

/// The resume re-INVITE sipp received after the REFER.
fn assert_resumed(after_refer: &[TracedMessage]) {
    assert!(
        after_refer
            .iter()
            .any(|m| m.method() == Some("INVITE") && m.body().contains("a=sendrecv")),
        "sipp got a resume re-INVITE (sendrecv): {after_refer:#?}"
    );
}

/// A refused REFER: failed with `words`, recalled, resumed; sipp then hangs up.
fn refused(test: &str, scenario: &str, code: u64, words: &str) {
    let mut t = transfer_to_carol(test, scenario, &[]);
    let (status_code, reason) = failed(&mut t.sb, secs(5));
    assert_eq!(status_code, Some(code));
    assert_eq!(reason, words);
    assert_recalled(&mut t.sb);
    let ended = t.sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the far end hung up");
    t.uas.expect_pass(secs(10));
    let after = assert_referred(&t, &[]);
    assert_resumed(&after);
}

#[test]
fn refer_refused_403_comes_back_with_the_reason() {
    refused(
        "refused_403",
        "uas_refer_forbidden",
        403,
        "transfer refused by the caller's phone (403 Forbidden)",
    );
}

#[test]
fn refer_refused_405_says_the_phone_cannot_be_transferred() {
    refused(
        "refused_405",
        "uas_refer_not_allowed",
        405,
        "the caller's phone cannot be transferred (405 Method Not Allowed)",
    );
}

/// 202, NOTIFY 100, then a failure NOTIFY `code phrase`: trying, failed with `words`,
/// recalled, resumed.
fn target_failed(test: &str, code: &str, phrase: &str, words: &str) {
    let mut t = transfer_to_carol(
        test,
        "uas_refer_notify_final",
        &[("code", code), ("phrase", phrase)],
    );
    let accepted = t.sb.wait_transfer(secs(5), "accepted");
    assert_eq!(accepted["status_code"], 202);
    let trying = t.sb.wait_transfer(secs(5), "trying");
    assert_eq!(trying["status_code"], 100);
    let (status_code, reason) = failed(&mut t.sb, secs(5));
    assert_eq!(status_code, code.parse().ok());
    assert_eq!(reason, words);
    assert_recalled(&mut t.sb);
    t.sb.wait_call_state(secs(5), 1, "ended");
    t.uas.expect_pass(secs(10));
    let after = assert_referred(&t, &[200, 200]);
    assert_resumed(&after);
}

#[test]
fn target_busy_486_comes_back() {
    target_failed("busy_486", "486", "Busy Here", "target is busy");
}

#[test]
fn target_timeout_408_means_no_answer() {
    target_failed(
        "timeout_408",
        "408",
        "Request Timeout",
        "target did not answer",
    );
}

#[test]
fn target_unavailable_480_means_no_answer() {
    target_failed(
        "unavailable_480",
        "480",
        "Temporarily Unavailable",
        "target did not answer",
    );
}

#[test]
fn target_failure_503_comes_back_with_the_status() {
    target_failed(
        "unavailable_503",
        "503",
        "Service Unavailable",
        "transfer failed (503 Service Unavailable)",
    );
}

/// No final NOTIFY within blind_timeout (5 s): failed "target did not answer", recalled,
/// resumed; a late NOTIFY gets 481 (no subscription kept).
fn no_final_notify(test: &str, scenario: &str, notify_codes: &[u16]) {
    let mut t = transfer_to_carol(test, scenario, &[]);
    t.sb.wait_transfer(secs(5), "accepted");
    // Nothing else happens before the timeout.
    t.sb.expect_no_event(secs(3), |e| {
        e["event"] == "transfer" && e["status"] == "failed"
    });
    let (status_code, reason) = failed(&mut t.sb, secs(5));
    assert_eq!(
        (status_code, reason.as_str()),
        (None, "target did not answer")
    );
    assert_recalled(&mut t.sb);
    t.sb.wait_call_state(secs(5), 1, "ended");
    t.uas.expect_pass(secs(10));
    // The last NOTIFY came after the recall: 481, no subscription is left.
    let after = assert_referred(&t, notify_codes);
    assert_resumed(&after);
    assert!(
        !t.sb
            .events()
            .iter()
            .any(|e| e["event"] == "transfer" && e["status"] == "succeeded"),
        "the late NOTIFY changes nothing"
    );
}

#[test]
fn trying_then_silence_times_out_and_comes_back() {
    no_final_notify("stalled", "uas_refer_stalled", &[200, 481]);
}

#[test]
fn no_notify_at_all_times_out_and_comes_back() {
    no_final_notify("silent", "uas_refer_silent", &[481]);
}

#[test]
fn the_caller_hanging_up_during_the_transfer_is_reported_without_recall() {
    let mut t = transfer_to_carol("hangup", "uas_refer_hangup", &[]);
    t.sb.wait_transfer(secs(5), "trying");
    let ended = t.sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the far end hung up");
    // The subscription outlives the call for 16 s, then the operator is told.
    let (status_code, reason) = failed(&mut t.sb, secs(19));
    assert_eq!(
        (status_code, reason.as_str()),
        (None, "the caller hung up during the transfer")
    );
    // sipp's 6 s of silence after its BYE pass only if we sent nothing (no resume, no BYE).
    t.uas.expect_pass(secs(15));
    t.sb.expect_no_event(Duration::ZERO, |e| {
        e["event"] == "transfer" && matches!(e["status"].as_str(), Some("recalled" | "succeeded"))
    });
    assert_referred(&t, &[200]);
}

#[test]
fn a_success_notified_after_the_callers_bye_counts_as_success() {
    // twinkle BYEs the transferor once the target answers, and sends the final NOTIFY after.
    let mut t = transfer_to_carol(
        "bye_then_200",
        "uas_refer_hangup_then_notify",
        &[("code", "200"), ("phrase", "OK")],
    );
    t.sb.wait_transfer(secs(5), "trying");
    t.sb.wait_call_state(secs(5), 1, "ended");
    let done = t.sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["status_code"], 200);
    assert_eq!(done["reason"], format!("transferred to {}", t.target));
    t.uas.expect_pass(secs(10));
    t.sb.expect_no_event(Duration::ZERO, |e| {
        e["event"] == "transfer" && matches!(e["status"].as_str(), Some("failed" | "recalled"))
    });
    // The NOTIFY after the BYE got 200 (the subscription was still there).
    assert_referred(&t, &[200, 200]);
}

#[test]
fn a_failure_notified_after_the_callers_bye_says_the_caller_hung_up() {
    let mut t = transfer_to_carol(
        "bye_then_487",
        "uas_refer_hangup_then_notify",
        &[("code", "487"), ("phrase", "Request Terminated")],
    );
    t.sb.wait_transfer(secs(5), "trying");
    t.sb.wait_call_state(secs(5), 1, "ended");
    let (status_code, reason) = failed(&mut t.sb, secs(5));
    assert_eq!(
        (status_code, reason.as_str()),
        (Some(487), "the caller hung up during the transfer")
    );
    t.uas.expect_pass(secs(10));
    t.sb.expect_no_event(Duration::ZERO, |e| {
        e["event"] == "transfer" && matches!(e["status"].as_str(), Some("recalled" | "succeeded"))
    });
    assert_referred(&t, &[200, 200]);
}

#[test]
fn a_notify_for_every_provisional_then_success_and_no_bye_from_the_transferee() {
    // The final sipfrag with a bare LF (twinkle): no CR anywhere in its status line.
    let mut t = transfer_to_carol(
        "provisionals",
        "uas_refer_provisionals",
        &[("final", "SIP/2.0 200 OK\n")],
    );
    t.sb.wait_transfer(secs(5), "accepted");
    let trying = t.sb.wait_transfer(secs(5), "trying");
    assert_eq!(trying["status_code"], 100);
    for _ in 0..2 {
        let ringing = t.sb.wait_transfer(secs(5), "ringing");
        assert_eq!(ringing["status_code"], 180);
    }
    let done = t.sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["status_code"], 200);
    assert_eq!(done["reason"], format!("transferred to {}", t.target));
    // sipp never hangs up: we do.
    t.sb.wait_call_state(secs(5), 1, "ended");
    t.uas.expect_pass(secs(10));
    let after = assert_referred(&t, &[200, 200, 200, 200]);
    assert!(after.iter().any(|m| m.method() == Some("BYE")));
    assert!(
        !after.iter().any(|m| m.method() == Some("INVITE")),
        "no resume"
    );
    t.sb.expect_no_event(Duration::ZERO, |e| {
        e["event"] == "transfer" && matches!(e["status"].as_str(), Some("failed" | "recalled"))
    });
}

#[test]
fn the_transferee_holding_first_and_a_malformed_subscription_state_still_succeed() {
    let mut t = transfer_to_carol("holds_first", "uas_refer_holds_first", &[]);
    t.sb.wait_transfer(secs(5), "accepted");
    t.sb.wait_transfer(secs(5), "trying");
    let done = t.sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["status_code"], 200);
    t.sb.wait_call_state(secs(5), 1, "ended");
    t.uas.expect_pass(secs(10));
    assert!(
        t.uas.sent().iter().any(|m| m.method() == Some("INVITE")),
        "sipp sent its hold re-INVITE"
    );
    let after = assert_referred(&t, &[200, 200]);
    let ok = after
        .iter()
        .find(|m| m.status() == Some(200) && m.header("CSeq") == Some("1 INVITE"))
        .expect("we answered sipp's hold re-INVITE");
    assert!(
        ok.body().contains("a=inactive") || ok.body().contains("a=recvonly"),
        "{}",
        ok.text
    );
    assert!(after.iter().any(|m| m.method() == Some("BYE")));
}

#[test]
fn glare_on_the_hold_is_retried_and_the_transfer_completes() {
    let mut t = transfer_to_carol("glare", "uas_refer_glare", &[]);
    t.sb.wait_transfer(secs(8), "accepted");
    let done = t.sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["status_code"], 200);
    t.sb.wait_call_state(secs(5), 1, "ended");
    t.uas.expect_pass(secs(10));
    t.sb.expect_no_event(Duration::ZERO, |e| {
        e["event"] == "transfer" && e["status"] == "failed"
    });
    let received = t.uas.received();
    // Distinct INVITEs (retransmissions share the CSeq): the call, the hold, the retried hold.
    let mut invites: Vec<&TracedMessage> = received
        .iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect();
    invites.dedup_by_key(|m| m.header("CSeq"));
    assert_eq!(invites.len(), 3, "{invites:#?}");
    assert!(invites[1].body().contains("a=sendonly") && invites[2].body().contains("a=sendonly"));
    assert_referred(&t, &[200]);
}
