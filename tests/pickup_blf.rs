//! Busy lamps and call pickup against sipp playing the PBX (issue 6): a presence server that
//! answers SUBSCRIBE (Event: dialog) and walks extension 201 through idle, ringing, busy and
//! idle, watched from the configuration or because it is in view (`watch`); a presence server showing a ringing call whose originator (a second sipp) must get
//! an INVITE with `Replaces: …;early-only`; and pickup by feature code (`*8201`).

mod common;

use common::{
    hosts, secs, AccountConfig, Net, Sipp, Switchboard, SwitchboardConfig, TracedMessage,
};

/// Peer-to-peer switchboard whose account has these extra `[[account]]` lines.
fn switchboard(net: &Net, domain: Option<&str>, account_extra: &str) -> Switchboard {
    let mut config = SwitchboardConfig::peer_to_peer(net);
    if let Some(domain) = domain {
        config.accounts = vec![AccountConfig::new("lab", "alice", domain)];
    }
    if let Some(account) = config.accounts.first_mut() {
        account.extra = account_extra.to_owned();
    }
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb
}

/// The states of the next `n` lamp events, which must all be about `ext`.
fn lamps(sb: &mut Switchboard, ext: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let ev = sb.wait_event(secs(5), |e| e["event"] == "blf");
            assert_eq!(ev["ext"], ext);
            ev["state"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Quits switchboard (which must end cleanly), lets the sipp notifier finish, and returns the
/// SUBSCRIBEs it received, in order.
fn quit_then_subscribes(sb: &mut Switchboard, pbx: &mut Sipp) -> Vec<TracedMessage> {
    let status = sb.quit_and_wait(secs(6));
    assert!(status.success(), "{}", sb.failure_report());
    pbx.expect_pass(secs(5));
    pbx.received()
        .into_iter()
        .filter(|m| m.method() == Some("SUBSCRIBE"))
        .collect()
}

#[test]
fn busy_lamp_reports_idle_ringing_busy_idle_in_order_and_unsubscribes_on_quit() {
    let net = Net::for_test("pickup_blf::busy_lamp");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_dialog_notifier", &[]);
    let ext = pbx.uri("201");
    let mut sb = switchboard(&net, None, &format!("blf = [\"{ext}\"]\n"));
    assert_eq!(lamps(&mut sb, &ext, 4), ["idle", "ringing", "busy", "idle"]);
    let subscribes = quit_then_subscribes(&mut sb, &mut pbx);
    assert_eq!(subscribes.len(), 2, "subscribe, then unsubscribe");
    assert_eq!(subscribes[0].header("Event"), Some("dialog"));
    assert_eq!(
        subscribes[0].header("Accept"),
        Some("application/dialog-info+xml")
    );
    assert_eq!(subscribes[1].header("Expires"), Some("0"));
}

#[test]
fn watch_subscribes_to_an_extension_in_view_and_reports_its_lamp() {
    let net = Net::for_test("pickup_blf::watch");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_dialog_notifier", &[]);
    let ext = pbx.uri("201");
    let mut sb = switchboard(&net, None, "");
    sb.send(&format!("watch {ext}"));
    assert_eq!(lamps(&mut sb, &ext, 4), ["idle", "ringing", "busy", "idle"]);
    // Out of view: the lamp is kept for the grace period (longer than this test), then
    // ended; quitting ends it at once.
    sb.send("watch");
    let subscribes = quit_then_subscribes(&mut sb, &mut pbx);
    assert_eq!(subscribes.len(), 2, "subscribe, then unsubscribe");
    assert_eq!(subscribes[0].header("Expires"), Some("600"));
    assert_eq!(subscribes[1].header("Expires"), Some("0"));
}

#[test]
fn interval_too_brief_is_answered_with_the_pbx_minimum() {
    let net = Net::for_test("pickup_blf::min_expires");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_dialog_notifier_423", &[]);
    let ext = pbx.uri("201");
    let mut sb = switchboard(&net, None, "");
    sb.send(&format!("watch {ext}"));
    let ev = sb.wait_event(secs(5), |e| e["event"] == "blf");
    assert_eq!(ev["state"], "ringing");
    let status = sb.quit_and_wait(secs(6));
    assert!(status.success(), "{}", sb.failure_report());
    pbx.expect_pass(secs(5));
    let expires: Vec<_> = pbx
        .received()
        .into_iter()
        .filter(|m| m.method() == Some("SUBSCRIBE"))
        .map(|m| m.header("Expires").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(expires, ["600", "3600", "0"]);
}

#[test]
fn pickup_by_dialog_replaces_the_early_dialog_at_its_originator() {
    let net = Net::for_test("pickup_blf::pickup_dialog");
    let caller_n = hosts::SIPP + 1;
    let mut caller = Sipp::uas(&net, caller_n, "uas_answer", &[]);
    let caller_uri = caller.uri("300");
    let mut pbx = Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_pickup_notifier",
        &["-key", "caller", &caller_uri],
    );
    let mut sb = switchboard(&net, None, "");
    sb.send(&format!("pickup {}", pbx.uri("201")));
    let connected = sb.wait_call_state(secs(5), 1, "connected");
    assert_eq!(connected["peer"], caller_uri.as_str());
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    pbx.expect_pass(secs(5));
    caller.expect_pass(secs(5));
    let invite = caller
        .received()
        .into_iter()
        .find(|m| m.method() == Some("INVITE"))
        .expect("the caller got the INVITE");
    assert_eq!(
        invite.header("Replaces"),
        Some("ring-201@pbx;to-tag=tcaller;from-tag=t201;early-only")
    );
    let status = sb.quit_and_wait(secs(6));
    assert!(status.success(), "{}", sb.failure_report());
}

#[test]
fn pickup_by_feature_code_dials_it_as_a_normal_call() {
    let net = Net::for_test("pickup_blf::pickup_code");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let domain = pbx.ip().to_string();
    let mut sb = switchboard(&net, Some(&domain), "pickup_code = \"*8{ext}\"\n");
    sb.send("pickup 201");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    pbx.expect_pass(secs(5));
    let invite = pbx
        .received()
        .into_iter()
        .find(|m| m.method() == Some("INVITE"))
        .expect("the PBX got the INVITE");
    assert!(
        invite
            .start_line()
            .starts_with(&format!("INVITE sip:*8201@{domain}")),
        "{}",
        invite.start_line()
    );
    assert_eq!(invite.header("Replaces"), None);
    let status = sb.quit_and_wait(secs(6));
    assert!(status.success(), "{}", sb.failure_report());
}
