//! The attendant console (issue 19, part B) with real peers: favourites' lamps from the sipp
//! notifier and their one key (`favourite <n>`, the command the screen's F-keys send) doing a
//! blind transfer or a consultation to kamailio-registered baresips, a pickup on a ringing
//! lamp, and a call when idle; call park against a sipp scenario that behaves like a PBX's
//! park (202, NOTIFY naming the slot), the parked caller coming back, and unpark dialling the
//! slot.

mod common;

use common::{
    hosts, secs, AccountConfig, Baresip, BaresipOptions, Kamailio, Net, Sipp, Switchboard,
    SwitchboardConfig,
};

/// Peer-to-peer switchboard with `account_extra` lines in its account (whose domain is
/// `domain` when given) and `extra` TOML at the end.
fn switchboard(net: &Net, domain: Option<&str>, account_extra: &str, extra: &str) -> Switchboard {
    let mut config = SwitchboardConfig::peer_to_peer(net).with_extra(extra);
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

/// A `[[favourite]]` table.
fn favourite(label: &str, number: &str) -> String {
    format!("[[favourite]]\nlabel = \"{label}\"\nnumber = \"{number}\"\n")
}

#[test]
fn a_favourite_has_a_lamp_and_is_listed_with_its_key() {
    let net = Net::for_test("attendant::favourite_lamp");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_dialog_notifier", &[]);
    let ext = pbx.uri("201");
    let mut sb = switchboard(&net, None, "", &favourite("Reception", &ext));
    let states: Vec<String> = (0..4)
        .map(|_| {
            let ev = sb.wait_event(secs(5), |e| e["event"] == "blf");
            assert_eq!(ev["ext"], ext.as_str());
            ev["state"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(states, ["idle", "ringing", "busy", "idle"]);
    sb.send("favourites");
    let list = sb.wait_for(secs(2), "favourites");
    assert_eq!(
        list["favourites"],
        serde_json::json!([{"label": "Reception", "number": ext, "key": "f1", "lamp": "idle"}])
    );
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
    pbx.expect_pass(secs(5));
}

#[test]
fn a_favourite_whose_lamp_rings_is_picked_up() {
    let net = Net::for_test("attendant::favourite_pickup");
    let mut caller = Sipp::uas(&net, hosts::SIPP + 1, "uas_answer", &[]);
    let caller_uri = caller.uri("300");
    let mut pbx = Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_pickup_notifier",
        &["-key", "caller", &caller_uri],
    );
    let ext = pbx.uri("201");
    let mut sb = switchboard(&net, None, "", &favourite("Sales", &ext));
    sb.wait_event(secs(5), |e| e["event"] == "blf" && e["state"] == "ringing");
    sb.send("favourite 1");
    let connected = sb.wait_call_state(secs(5), 1, "connected");
    assert_eq!(connected["peer"], caller_uri.as_str());
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
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
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
    pbx.expect_pass(secs(5));
}

#[test]
fn an_idle_favourites_key_calls_it() {
    let net = Net::for_test("attendant::favourite_dial");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let config = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_extra(&favourite("Front desk", "bob"));
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    sb.send("favourite front DESK");
    let connected = sb.wait_call_state(secs(10), 1, "connected");
    assert_eq!(connected["peer"], format!("sip:bob@{}", kam.ip()));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    sb.send("favourite 7");
    let error = sb.wait_for(secs(2), "error");
    assert_eq!(
        error["message"],
        "no favourite `7`: give its position, label or number (Front desk)"
    );
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
}

/// kamailio with alice, bob and carol; bob and carol are baresips (carol at host 6);
/// switchboard is alice with carol as favourite 1 and `extra`, in a connected call with bob.
fn bob_on_the_line(name: &str, extra: &str) -> (Net, Kamailio, Baresip, Baresip, Switchboard) {
    let net = Net::for_test(name);
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let carol = Baresip::start(
        &net,
        "carol",
        "carolpw",
        kam.ip(),
        BaresipOptions {
            host: 6,
            audio_source: common::AudioSource::Sine(500),
            ..BaresipOptions::default()
        },
    );
    let config = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_extra(&format!("{}{extra}", favourite("Carol", "carol")));
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    (net, kam, bob, carol, sb)
}

#[test]
fn a_favourites_key_transfers_the_call_blind() {
    let (_net, kam, _bob, carol, mut sb) = bob_on_the_line(
        "attendant::favourite_blind",
        "[transfer]\nblind = \"notify\"\n",
    );
    sb.send("favourite carol");
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["target"], format!("sip:carol@{}", kam.ip()));
    let done = sb.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["line"], 1);
    sb.wait_call_state(secs(5), 1, "ended");
    carol.wait_log("Call established", secs(5));
    assert!(
        sb.quit_and_wait(secs(10)).success(),
        "{}",
        sb.failure_report()
    );
}

#[test]
fn with_favourite_action_consult_the_key_consults_first() {
    let (_net, kam, _bob, _carol, mut sb) = bob_on_the_line(
        "attendant::favourite_consult",
        "[transfer]\nfavourite_action = \"consult\"\n",
    );
    sb.send("favourite 1");
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "attended");
    sb.wait_call_state(secs(5), 1, "held");
    let consult = sb.wait_call_state(secs(10), 2, "connected");
    assert_eq!(consult["peer"], format!("sip:carol@{}", kam.ip()));
    // The operator changes their mind: back to bob.
    sb.send("cancel");
    sb.wait_call_state(secs(5), 2, "ended");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    assert!(
        sb.quit_and_wait(secs(10)).success(),
        "{}",
        sb.failure_report()
    );
}

#[test]
fn park_tells_the_slot_and_the_parked_caller_coming_back_is_recognised() {
    let net = Net::for_test("attendant::park");
    let mut pbx = Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_park",
        &["-key", "slot_header", "Park-Slot: 701"],
    );
    let domain = pbx.ip().to_string();
    let mut sb = switchboard(&net, Some(&domain), "park = \"700\"\n", "");
    let caller = pbx.uri("sipp");
    sb.send(&format!("dial {caller}"));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("park");
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["reason"], "parking at 700");
    let parked = sb.wait_for(secs(10), "parked");
    assert_eq!(parked["line"], 1);
    assert_eq!(parked["peer"], caller.as_str());
    assert_eq!(parked["slot"], "701");
    sb.wait_call_state(secs(5), 1, "ended");
    pbx.expect_pass(secs(5));
    let refer = pbx
        .received()
        .into_iter()
        .find(|m| m.method() == Some("REFER"))
        .expect("the PBX got the REFER");
    let refer_to = refer.header("Refer-To").unwrap_or_default();
    assert!(
        refer_to.contains(&format!("sip:700@{domain}")),
        "{refer_to}"
    );
    // The PBX's park timeout: the same caller rings the operator again.
    let sb_addr = std::net::SocketAddr::from((net.ip(hosts::SWITCHBOARD), 5060));
    let mut back = Sipp::uac(&net, hosts::SIPP + 1, "uac_invite", sb_addr, "alice", &[]);
    let incoming = sb.wait_for(secs(10), "incoming");
    let returned = sb.wait_for(secs(2), "park_returned");
    assert_eq!(returned["call_id"], incoming["call_id"]);
    assert_eq!(returned["slot"], "701");
    sb.send("answer");
    sb.wait_call_state(secs(5), incoming["line"].as_u64().unwrap_or(0), "connected");
    back.expect_pass(secs(10));
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
}

#[test]
fn without_a_slot_in_the_notify_the_slot_lamp_that_lights_tells_it() {
    let net = Net::for_test("attendant::park_slot_lamp");
    // Asterisk-like: the NOTIFY names no slot.
    let mut pbx = Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_park",
        &["-key", "slot_header", "X-Asterisk: no slot here"],
    );
    let mut slots = Sipp::uas(&net, hosts::SIPP + 2, "uas_dialog_notifier", &[]);
    let domain = pbx.ip().to_string();
    let mut sb = switchboard(&net, Some(&domain), "park = \"700\"\n", "");
    sb.send(&format!("dial {}", pbx.uri("sipp")));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("park");
    let parked = sb.wait_for(secs(10), "parked");
    assert_eq!(parked["slot"], serde_json::Value::Null, "{parked}");
    pbx.expect_pass(secs(5));
    // The slot's lamp (here watched as the picker would) lights: that is where the call waits.
    let slot = slots.uri("701");
    sb.send(&format!("watch {slot}"));
    let lamp = |sb: &mut Switchboard| {
        let ev = sb.wait_for(secs(5), "blf");
        ev["state"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(lamp(&mut sb), "idle");
    assert_eq!(lamp(&mut sb), "ringing");
    let told = sb.wait_for(secs(2), "parked");
    assert_eq!(told["call_id"], parked["call_id"]);
    assert_eq!(told["slot"], "701");
    // The notifier walks on (busy, idle); nothing more is told about the park.
    assert_eq!([lamp(&mut sb), lamp(&mut sb)], ["busy", "idle"]);
    let parks = sb
        .events()
        .iter()
        .filter(|e| e["event"] == "parked")
        .count();
    assert_eq!(parks, 2, "told once without the slot, once with it");
    sb.send("watch");
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
    slots.expect_pass(secs(5));
}

#[test]
fn a_stranger_calling_is_not_a_parked_call() {
    let net = Net::for_test("attendant::not_parked");
    let mut sb = switchboard(&net, None, "park = \"700\"\n", "");
    let sb_addr = std::net::SocketAddr::from((net.ip(hosts::SWITCHBOARD), 5060));
    let mut caller = Sipp::uac(&net, hosts::SIPP, "uac_invite", sb_addr, "alice", &[]);
    let incoming = sb.wait_for(secs(10), "incoming");
    sb.send("answer");
    sb.wait_call_state(secs(5), incoming["line"].as_u64().unwrap_or(0), "connected");
    caller.expect_pass(secs(10));
    assert!(
        !sb.events().iter().any(|e| e["event"] == "park_returned"),
        "a call never parked is not a parked call returning"
    );
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
}

#[test]
fn unpark_dials_the_slot_and_park_without_an_extension_is_refused() {
    let net = Net::for_test("attendant::unpark");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let domain = pbx.ip().to_string();
    let mut sb = switchboard(&net, Some(&domain), "", "");
    sb.send("unpark 701");
    let connected = sb.wait_call_state(secs(5), 1, "connected");
    assert_eq!(connected["peer"], format!("sip:701@{domain}"));
    sb.send("park");
    let error = sb.wait_for(secs(2), "error");
    assert_eq!(
        error["message"],
        "park: no park extension is configured for this account (park = \"700\")"
    );
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    pbx.expect_pass(secs(5));
    assert!(
        sb.quit_and_wait(secs(6)).success(),
        "{}",
        sb.failure_report()
    );
}
