//! Favourites' keys and call park on simulated time: the key transfers a selected call, calls
//! when idle, is listed with its lamp; park REFERs to the park extension, tells the slot the
//! NOTIFY names, and recognises the parked party when it rings again.

use super::api::{Command, Event, FavouriteLamp, TransferStatus};
use super::attendant::{AttendantConfig, FavouriteTarget};
use super::dialog_info::BlfState;
use super::msg::{Message, Method};
use super::transfer::BlindMode;
use super::ua_tests::{config, connected_call, incoming_invite, phone_sdp, reply, Bench, PHONE};

/// A bench with favourite 1 "Sales" at 2000, park at 700, blind transfers by REFER.
fn bench(consult: bool) -> Bench {
    let mut cfg = config(false);
    cfg.account.policy.transfer.blind = BlindMode::Notify;
    cfg.account.policy.attendant = AttendantConfig {
        favourites: vec![
            FavouriteTarget {
                label: "Sales".into(),
                number: "2000".into(),
                key: Some("f1".into()),
            },
            FavouriteTarget {
                label: "Park 701".into(),
                number: "701".into(),
                key: None,
            },
        ],
        consult,
        park: Some("700".into()),
        unpark: "*85".into(),
    };
    Bench::with_config(cfg)
}

/// A NOTIFY from the phone in our call's dialog with a sipfrag body.
fn notify(invite: &Message, frag: &str) -> String {
    format!(
        "NOTIFY sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKpark\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: 10 NOTIFY\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\n\
         Content-Type: message/sipfrag;version=2.0\r\nContent-Length: {}\r\n\r\n{frag}",
        invite.from.tag().expect("tag"),
        invite.call_id,
        frag.len()
    )
}

/// Holds the connected call as the command asks, answers the hold; returns the REFER.
fn refer_after_hold(b: &mut Bench) -> Message {
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Refer)
        .expect("REFER once held")
}

#[test]
fn a_favourites_key_transfers_the_selected_call() {
    let mut b = bench(false);
    connected_call(&mut b);
    b.sent();
    b.cmd(Command::Favourite("sales".into()));
    let refer = refer_after_hold(&mut b);
    assert_eq!(refer.header("Refer-To"), Some("<sip:2000@127.0.0.1>"));
}

#[test]
fn with_consult_the_key_calls_the_favourite_on_the_free_line() {
    let mut b = bench(true);
    connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Favourite("1".into()));
    let invites: Vec<Message> = b
        .sent()
        .into_iter()
        .filter(|m| m.code().is_none() && m.method() == Method::Invite)
        .collect();
    let uris: Vec<Option<&str>> = invites.iter().map(Message::request_uri).collect();
    // The caller is held (a re-INVITE to bob) and the favourite called on line 2.
    assert_eq!(
        uris,
        [Some("sip:bob@127.0.0.3:5060"), Some("sip:2000@127.0.0.1")]
    );
}

#[test]
fn an_idle_key_calls_and_the_list_tells_the_lamps() {
    let mut b = bench(false);
    b.cmd(Command::Favourite("2000".into()));
    let invite = b.sent_request(Method::Invite);
    assert_eq!(invite.request_uri(), Some("sip:2000@127.0.0.1"));
    b.events();
    b.cmd(Command::Favourites);
    assert_eq!(
        b.events(),
        [Event::Favourites {
            favourites: vec![
                FavouriteLamp {
                    label: "Sales".into(),
                    number: "2000".into(),
                    key: Some("f1".into()),
                    lamp: BlfState::Unknown,
                },
                FavouriteLamp {
                    label: "Park 701".into(),
                    number: "701".into(),
                    key: None,
                    lamp: BlfState::Unknown,
                }
            ]
        }]
    );
    b.cmd(Command::Favourite("Nobody".into()));
    assert!(
        matches!(&b.events()[..], [Event::Error { message }] if message.contains("(Sales, Park 701)"))
    );
    // Idle, a park slot's key unparks: the prefix, then the slot.
    let mut b = bench(false);
    b.cmd(Command::Favourite("park 701".into()));
    let unpark = b.sent_request(Method::Invite);
    assert_eq!(unpark.request_uri(), Some("sip:*85701@127.0.0.1"));
}

#[test]
fn park_refers_to_the_park_extension_tells_the_slot_and_knows_the_caller_again() {
    let mut b = bench(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Park(None));
    let refer = refer_after_hold(&mut b);
    assert_eq!(refer.header("Refer-To"), Some("<sip:700@127.0.0.1>"));
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(&invite, "SIP/2.0 200 OK\r\nPark-Slot: 701\r\n"),
    );
    let sent = b.sent();
    assert!(sent
        .iter()
        .any(|m| m.code().is_none() && m.method() == Method::Bye));
    let events = b.events();
    let requested = events.iter().any(|e| {
        matches!(e, Event::Transfer { status: TransferStatus::Requested, reason: Some(r), .. } if r == "parking at 700")
    });
    assert!(requested, "{events:?}");
    assert!(
        events.contains(&Event::Parked {
            line: 1,
            call_id: invite.call_id.clone(),
            peer: "sip:bob@127.0.0.1".into(),
            slot: Some("701".into()),
        }),
        "{events:?}"
    );
    // The park times out: bob rings again.
    b.recv(PHONE, &incoming_invite("back1", "z9hG4bKback"));
    let events = b.events();
    let at = events
        .iter()
        .position(|e| matches!(e, Event::Incoming { .. }))
        .expect("rings");
    assert_eq!(
        events.get(at + 1),
        Some(&Event::ParkReturned {
            line: 1,
            call_id: "back1".into(),
            from: "sip:bob@127.0.0.1".into(),
            slot: Some("701".into()),
        })
    );
}

#[test]
fn a_failed_park_is_forgotten_and_unpark_dials_the_prefix_and_slot() {
    let mut b = bench(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.cmd(Command::Park(Some(1)));
    let refer = refer_after_hold(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(&invite, "SIP/2.0 503 Service Unavailable\r\n"),
    );
    b.sent();
    let events = b.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Parked { .. })),
        "{events:?}"
    );
    b.recv(PHONE, &incoming_invite("back2", "z9hG4bKback2"));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(e, Event::Incoming { .. })),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ParkReturned { .. })),
        "{events:?}"
    );
    let mut b = bench(false);
    b.cmd(Command::Unpark("701".into()));
    let dialled = b.sent_request(Method::Invite);
    assert_eq!(dialled.request_uri(), Some("sip:*85701@127.0.0.1"));
    b.events();
    b.cmd(Command::Unpark("7 01".into()));
    assert!(matches!(&b.events()[..], [Event::Error { .. }]));
}
