//! Transfers where twinkle (twinkle-console 1.10) is the transferee, through kamailio:
//! switchboard (alice, the operator) talks to twinkle (bob, auto-answer) and transfers him,
//! blind or attended, to a second switchboard (carol). Twinkle sends no audio headless and
//! freezes when it is the target of an INVITE with Replaces (shared/LAB.md), so the target is
//! always a switchboard and the tests assert signalling: who calls carol, on whose referral,
//! replacing which call, and what alice is told.
//!
//! Twinkle's quirks met here, each checked against its own log of what it sent:
//! - a NOTIFY for every provisional response it gets (its own 100, the proxy's 100, 180), with
//!   `Content-Type: message/sipfrag` without a version parameter;
//! - a BYE to the transferor as soon as the target answered, sent with the final NOTIFY, whose
//!   CSeq is *lower* than the BYE's: so the final NOTIFY reaches alice after the BYE and out of
//!   CSeq order (RFC 3261 §12.2.2 makes her refuse it with 500), or after the dialog is gone
//!   (481). Every NOTIFY alice accepted must show up as a `transfer` event; the outcome alice
//!   reports is `succeeded` when she accepted the final NOTIFY, and otherwise must say that the
//!   caller hung up during the transfer.

mod common;

use std::thread;
use std::time::Duration;

use common::{
    process, secs, Kamailio, LoggedSip, Net, Switchboard, SwitchboardConfig, Twinkle,
    TwinkleOptions,
};
use serde_json::Value;

/// Host number of the target switchboard (carol) in the test's /24.
const SB_CAROL: u8 = 8;

/// The peers of one test: kamailio, twinkle bob, switchboard carol (registered, idle) and
/// switchboard alice in a connected call with bob on line 1.
struct Lab {
    _net: Net,
    kam: Kamailio,
    bob: Twinkle,
    carol: Switchboard,
    alice: Switchboard,
    /// Call-ID of alice's call with bob.
    call_id: String,
}

fn alice_talks_to_twinkle(name: &str) -> Lab {
    let net = Net::for_test(name);
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let bob = Twinkle::start(&net, "bob", "bobpw", kam.ip(), TwinkleOptions::default());
    let mut carol_cfg = SwitchboardConfig::registering(&net, "carol", "carolpw");
    carol_cfg.bind = (net.ip(SB_CAROL), 5060).into();
    let mut carol = Switchboard::start(&carol_cfg.to_toml());
    let mut alice = Switchboard::start(
        &SwitchboardConfig::registering(&net, "alice", "alicepw")
            .with_extra("[transfer]\nblind = \"notify\"")
            .to_toml(),
    );
    bob.wait_registered(secs(10));
    alice.wait_for(secs(10), "registered");
    carol.wait_for(secs(10), "registered");
    alice.send("dial bob");
    let connected = alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_console("Line 1: call established.", secs(5));
    let call_id = connected["call_id"]
        .as_str()
        .expect("a call event has a call_id")
        .to_owned();
    Lab {
        _net: net,
        kam,
        bob,
        carol,
        alice,
        call_id,
    }
}

/// One NOTIFY of the refer subscription that twinkle sent, and alice's answer.
#[derive(Debug)]
struct ReferNotify {
    cseq: u32,
    /// The status code in the sipfrag body.
    frag_code: u16,
    /// The code of alice's answer.
    answer: u16,
}

/// The refer NOTIFYs twinkle sent on `call_id`, each with alice's answer; waits (at most 5 s)
/// until every one has its answer in twinkle's log and the last one is there: the final one
/// (`Subscription-State: terminated`), or the one alice answered 481 (then twinkle sends no
/// more). Checks the sipfrag of each.
fn refer_notifies(bob: &Twinkle, call_id: &str) -> Vec<ReferNotify> {
    let collect = || {
        let msgs = bob.sip_messages();
        let on_call = |m: &&LoggedSip| m.header("Call-ID") == Some(call_id);
        let mut out = Vec::new();
        for notify in msgs
            .iter()
            .filter(on_call)
            .filter(|m| m.sent && m.is_request("NOTIFY"))
        {
            let (cseq, _) = notify.cseq().expect("twinkle's NOTIFY has a CSeq");
            let answer = msgs
                .iter()
                .filter(on_call)
                .find(|m| !m.sent && m.cseq() == Some((cseq, "NOTIFY")))
                .and_then(LoggedSip::status)?;
            out.push((notify.clone(), cseq, answer));
        }
        // twinkle sends the final NOTIFY last, sometimes only after its BYE was answered;
        // and sends none once a NOTIFY got 481 (the subscription is gone).
        let done = out.iter().any(|(m, _, answer)| {
            *answer == 481
                || m.header("Subscription-State")
                    .is_some_and(|s| s.starts_with("terminated"))
        });
        done.then_some(out)
    };
    let notifies = process::wait_until(secs(5), collect).unwrap_or_else(|| {
        panic!(
            "twinkle sent no final NOTIFY, or alice did not answer all its NOTIFYs, within \
             5 s:\n{}",
            bob.log_tail(80)
        )
    });
    notifies
        .into_iter()
        .map(|(msg, cseq, answer)| {
            assert!(
                msg.header("Event").is_some_and(|e| e.starts_with("refer")),
                "{}",
                msg.text
            );
            // The quirk: no `;version=2.0` (tolerated by switchboard).
            assert_eq!(msg.header("Content-Type"), Some("message/sipfrag"));
            let frag = msg.body();
            let frag_code = frag
                .strip_prefix("SIP/2.0 ")
                .and_then(|r| r.get(..3))
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("a sipfrag status line: {frag:?}"));
            ReferNotify {
                cseq,
                frag_code,
                answer,
            }
        })
        .collect()
}

/// Checks what alice was told against what twinkle reported to her, and returns her outcome
/// (the `succeeded` or `failed` event). `kind` is `blind` or `attended`.
fn check_alice_followed_twinkle(lab: &mut Lab, kind: &str) -> Value {
    let outcome = lab.alice.wait_event(secs(15), |e| {
        e["event"] == "transfer" && (e["status"] == "succeeded" || e["status"] == "failed")
    });
    println!("alice's outcome: {outcome}");
    assert_eq!(outcome["kind"], kind);
    assert_eq!(outcome["line"], 1);
    lab.alice.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == lab.call_id.as_str() && e["state"] == "ended"
    });
    // twinkle hangs up on alice by itself once carol answered.
    let bye = lab.bob.wait_log("BYE sip:alice@", secs(5));
    println!("twinkle: {bye}");
    let notifies = refer_notifies(&lab.bob, &lab.call_id);
    println!("twinkle's NOTIFYs (CSeq, sipfrag, alice's answer): {notifies:?}");
    let bye_cseq = lab
        .bob
        .sip_messages()
        .iter()
        .find(|m| {
            m.sent && m.is_request("BYE") && m.header("Call-ID") == Some(lab.call_id.as_str())
        })
        .and_then(|m| m.cseq())
        .map(|(n, _)| n)
        .expect("twinkle's BYE to alice is in its log");

    // A NOTIFY for every provisional response: at least twinkle's own 100 Trying.
    assert!(notifies.iter().any(|n| n.frag_code == 100), "{notifies:?}");
    let final_notify = notifies.iter().find(|n| n.frag_code >= 200);
    assert_eq!(
        final_notify.map(|f| f.frag_code),
        Some(200),
        "twinkle reached carol: {notifies:?}"
    );
    // Every NOTIFY is taken, also one that arrives after twinkle's BYE with a lower CSeq: the
    // refer subscription outlives the call (RFC 5057).
    for n in &notifies {
        assert_eq!(
            n.answer, 200,
            "alice refused NOTIFY CSeq {} ({n:?}); twinkle's BYE had CSeq {bye_cseq}",
            n.cseq
        );
    }
    // Progress NOTIFYs became events (those after the BYE need not: the call is over).
    let events = lab.alice.events();
    let count = |status: &str| {
        events
            .iter()
            .filter(|e| e["event"] == "transfer" && e["status"] == status)
            .count()
    };
    let accepted = |codes: &[u16]| {
        notifies
            .iter()
            .filter(|n| codes.contains(&n.frag_code))
            .count()
    };
    assert!(
        count("trying") >= 1 && count("trying") <= accepted(&[100]),
        "{notifies:?}"
    );
    assert!(count("ringing") <= accepted(&[180, 183]), "{notifies:?}");
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(outcome["status_code"], 200);
    outcome
}

#[test]
fn twinkle_is_transferred_blind_to_a_switchboard() {
    let mut lab = alice_talks_to_twinkle("transfers_twinkle::blind");
    let target = format!("sip:carol@{}", lab.kam.ip());
    lab.alice.send("transfer carol");
    let requested = lab.alice.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["target"], target);
    lab.alice.wait_call_state(secs(5), 1, "held");
    let accepted = lab.alice.wait_transfer(secs(10), "accepted");
    assert_eq!(accepted["status_code"], 202);
    lab.bob
        .wait_console(&format!("Line 1: transferring call to {target}"), secs(5));

    // bob calls carol on alice's referral.
    let incoming = lab.carol.wait_for(secs(10), "incoming");
    assert_eq!(incoming["from"], format!("sip:bob@{}", lab.kam.ip()));
    assert_eq!(
        incoming["referred_by"],
        format!("sip:alice@{}", lab.kam.ip())
    );
    assert!(incoming.get("replaces").is_none(), "{incoming}");
    lab.carol.send("answer");
    let talking = lab.carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == incoming["call_id"] && e["state"] == "connected"
    });
    assert_eq!(talking["line"], 1);
    lab.bob.wait_console("far end answered call", secs(5));

    check_alice_followed_twinkle(&mut lab, "blind");
    thread::sleep(Duration::from_millis(300));
    assert!(lab.alice.no_call_left(), "alice still has a call");

    // bob and carol are in a call: carol hangs up and bob gets her BYE.
    lab.carol.send("hangup");
    lab.carol.wait_call_state(secs(5), 1, "ended");
    let carol_call = incoming["call_id"].as_str().expect("a call_id").to_owned();
    process::wait_until(secs(5), || {
        lab.bob
            .sip_messages()
            .iter()
            .any(|m| !m.sent && m.is_request("BYE") && m.header("Call-ID") == Some(&carol_call))
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "carol's BYE did not reach twinkle:\n{}",
            lab.bob.log_tail(60)
        )
    });
    assert!(lab.alice.quit_and_wait(secs(10)).success());
    assert!(lab.carol.quit_and_wait(secs(10)).success());
    // twinkle 1.10 often dies of SIGSEGV while quitting after a transfer: not our concern.
    let _ = lab.bob.quit_and_wait(secs(5));
}

#[test]
fn twinkle_is_transferred_attended_to_a_switchboard_by_replaces() {
    let mut lab = alice_talks_to_twinkle("transfers_twinkle::attended");
    lab.alice.send("consult carol");
    let requested = lab.alice.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "attended");
    lab.alice.wait_call_state(secs(5), 1, "held");
    let consult = lab.carol.wait_for(secs(10), "incoming");
    assert_eq!(consult["from"], format!("sip:alice@{}", lab.kam.ip()));
    let consult_call = consult["call_id"].as_str().expect("a call_id").to_owned();
    lab.carol.send("answer");
    lab.alice.wait_call_state(secs(10), 2, "connected");
    lab.alice.send("complete");
    let accepted = lab.alice.wait_transfer(secs(10), "accepted");
    assert_eq!(accepted["status_code"], 202);

    // twinkle copied Replaces from the Refer-To into its INVITE to carol.
    let refer = lab
        .bob
        .sip_messages()
        .into_iter()
        .find(|m| !m.sent && m.is_request("REFER"))
        .expect("twinkle logged alice's REFER");
    let refer_to = refer.header("Refer-To").expect("a Refer-To").to_owned();
    assert!(refer_to.contains("?Replaces="), "{refer_to}");
    let replaced = lab.carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == consult_call.as_str()
    });
    assert_eq!(replaced["line"], 1);
    assert_eq!(replaced["from"], format!("sip:bob@{}", lab.kam.ip()));
    assert_eq!(
        replaced["referred_by"],
        format!("sip:alice@{}", lab.kam.ip()),
        "carol sees who transferred bob"
    );
    let invite = lab
        .bob
        .sip_messages()
        .into_iter()
        .find(|m| {
            m.sent && m.is_request("INVITE") && m.header("Call-ID") == replaced["call_id"].as_str()
        })
        .expect("twinkle logged its INVITE to carol");
    let replaces = invite.header("Replaces").expect("a Replaces header");
    assert!(
        replaces.starts_with(&format!("{consult_call};")),
        "{replaces}"
    );
    assert!(invite
        .header("Referred-By")
        .is_some_and(|r| r.contains("sip:alice@")));
    lab.carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "connected"
    });
    lab.carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == consult_call.as_str() && e["state"] == "ended"
    });

    // carol ended the replaced consultation; twinkle ended alice's first call.
    lab.alice.wait_call_state(secs(10), 2, "ended");
    check_alice_followed_twinkle(&mut lab, "attended");
    thread::sleep(Duration::from_millis(300));
    assert!(lab.alice.no_call_left(), "alice still has a call");

    lab.carol.send("hangup");
    lab.carol.wait_call_state(secs(5), 1, "ended");
    lab.bob.wait_console("far end ended call", secs(5));
    assert!(lab.alice.quit_and_wait(secs(10)).success());
    assert!(lab.carol.quit_and_wait(secs(10)).success());
    // twinkle 1.10 often dies of SIGSEGV while quitting after a transfer: not our concern.
    let _ = lab.bob.quit_and_wait(secs(5));
}
