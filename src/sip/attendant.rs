//! The attendant console's keys: favourites (one key each) and call park.
//!
//! A favourite is a busy lamp (its number is watched with the account's `blf` list, see
//! `subscription.rs`) plus a key. Its key does what the moment wants:
//!
//! ```text
//!  favourite <n|label|number>
//!    ├─ a call on the selected line ─► the configured transfer: blind (as `transfer`) or consult
//!    ├─ a park slot (701 for 700) ──► unpark (as `unpark`)
//!    ├─ its lamp rings ─────────────► pickup (as `pickup`)
//!    └─ otherwise ──────────────────► dial
//! ```
//!
//! Park is a blind transfer (REFER, NOTIFY-reported) to the account's park extension. The
//! slot is learnt where the PBX tells it: a `*park*` header of the final NOTIFY's
//! `message/sipfrag` body (`Park-Slot: 701`), or a number in its reason phrase
//! (`SIP/2.0 200 Parked at 701`); Asterisk only says it aloud to the caller: then the first
//! slot lamp (a watched extension, or `sip:` URI's user, numbered like the park extension:
//! 700 → 701…799) to light after the park is its slot, told by a second [`Event::Parked`]. A call that rings from a party parked a moment ago
//! (same user part), from the park extension (Referred-By), or whose display name says
//! "park" is reported as a parked call come back ([`Event::ParkReturned`]).
//!
//! ```text
//!  park ─► Parking ─ NOTIFY 2xx (slot?) ─► Parked ─ INVITE back ─► ParkReturned (forgotten)
//!             └──── transfer failed / recalled ─► forgotten
//! ```
//!
//! This module keeps the parked calls and reads sipfrag bodies; the transfer itself is
//! `transfer.rs`'s. It reads no clock: the last [`MAX_PARKED`] parks are remembered.

use std::collections::VecDeque;
use std::time::Instant;

use super::api::FavouriteLamp;
use super::dialog_info::BlfState;
use super::subscription::Purpose;
use super::target::Target;
use super::transfer::Transfer;
use super::{line_no, Command, Event, LineNo, TransferMechanism, TransferStatus, UserAgent};

/// How many parked calls are remembered, to recognise them when they come back.
const MAX_PARKED: usize = 8;

/// One `[[favourite]]` as the core knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FavouriteTarget {
    /// The label shown.
    pub label: String,
    /// The extension or URI.
    pub number: String,
    /// Its key on the screen, in words (`f1`), if any.
    pub key: Option<String>,
}

/// The favourites and park settings of the account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttendantConfig {
    /// The favourites, in order.
    pub favourites: Vec<FavouriteTarget>,
    /// A favourite's key consults (attended transfer) instead of transferring blind.
    pub consult: bool,
    /// The PBX's park extension (`700`); `None`: `park` is refused.
    pub park: Option<String>,
    /// Dialled before the slot by `unpark <slot>` (often nothing).
    pub unpark: String,
}

/// A call we parked (or are parking).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Park {
    call_id: String,
    /// The park extension it was sent to (its account's `park`).
    ext: String,
    line: LineNo,
    peer: String,
    /// The slot, once the PBX said.
    slot: Option<String>,
    /// The PBX accepted it ([`Event::Parked`] was told).
    parked: bool,
}

/// The parked calls: what [`UserAgent`] remembers for `park` and the calls coming back.
#[derive(Debug, Clone, Default)]
pub(super) struct Parking {
    parks: VecDeque<Park>,
}

impl Parking {
    /// A sipfrag NOTIFY arrived for `call_id`'s transfer: learn the slot it names.
    pub(super) fn notified(&mut self, call_id: &str, body: &[u8]) {
        if let Some(park) = self
            .parks
            .iter_mut()
            .find(|p| p.call_id == call_id && !p.parked)
        {
            if let Some(slot) = slot_of(body) {
                park.slot = Some(slot);
            }
        }
    }

    /// What `event` means for the parked calls: the event that follows it, if any.
    /// `park_ext` is the park extension of the account an incoming call is for.
    pub(super) fn follow(&mut self, event: &Event, park_ext: Option<&str>) -> Option<Event> {
        match event {
            Event::Transfer {
                call_id, status, ..
            } => {
                let index = self
                    .parks
                    .iter()
                    .position(|p| p.call_id == *call_id && !p.parked)?;
                match status {
                    TransferStatus::Succeeded => {
                        let park = &mut self.parks[index];
                        park.parked = true;
                        Some(Event::Parked {
                            line: park.line,
                            call_id: park.call_id.clone(),
                            peer: park.peer.clone(),
                            slot: park.slot.clone(),
                        })
                    }
                    TransferStatus::Failed | TransferStatus::Recalled => {
                        self.parks.remove(index);
                        None
                    }
                    _ => None,
                }
            }
            Event::Incoming {
                line,
                call_id,
                from,
                display_name,
                referred_by,
                replaces: None,
                ..
            } => {
                let user = user_of(from);
                let by_park = referred_by
                    .as_deref()
                    .zip(park_ext)
                    .is_some_and(|(by, ext)| user_of(by) == ext);
                let says_park = display_name
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().contains("park"));
                let index = self
                    .parks
                    .iter()
                    .rposition(|p| p.parked && user_of(&p.peer) == user);
                if index.is_none() && !by_park && !says_park {
                    return None;
                }
                let slot = index
                    .and_then(|i| self.parks.remove(i))
                    .and_then(|p| p.slot);
                Some(Event::ParkReturned {
                    line: *line,
                    call_id: call_id.clone(),
                    from: from.clone(),
                    slot,
                })
            }
            Event::Blf {
                ext,
                state: BlfState::Busy | BlfState::Ringing,
            } => {
                // The newest park, accepted without a slot: the first slot lamp to light next
                // to its park extension is it.
                let park = self
                    .parks
                    .back_mut()
                    .filter(|p| p.parked && p.slot.is_none() && slot_like(user_of(ext), &p.ext))?;
                park.slot = Some(user_of(ext).to_owned());
                Some(Event::Parked {
                    line: park.line,
                    call_id: park.call_id.clone(),
                    peer: park.peer.clone(),
                    slot: park.slot.clone(),
                })
            }
            _ => None,
        }
    }

    fn start(&mut self, park: Park) {
        if self.parks.len() == MAX_PARKED {
            self.parks.pop_front();
        }
        self.parks.push_back(park);
    }
}

impl UserAgent {
    /// `favourite <which>`: transfer to it, pick it up, or call it.
    pub(super) fn favourite(&mut self, now: Instant, which: &str) {
        let Some(number) = self.favourite_number(which) else {
            let names: Vec<&str> = self
                .shared_policy()
                .attendant
                .favourites
                .iter()
                .map(|f| f.label.as_str())
                .collect();
            return self.error(if names.is_empty() {
                "no favourites are configured ([[favourite]] in the configuration)".to_owned()
            } else {
                format!(
                    "no favourite `{which}`: give its position, label or number ({})",
                    names.join(", ")
                )
            });
        };
        let selected = self.lines.get(self.selected).and_then(Option::as_ref);
        if selected.is_some() {
            let policy = self.line_policy(self.selected);
            let codes = policy.transfer.pbx_codes.clone();
            return match (policy.attendant.consult, codes) {
                (true, Some(codes)) => self.pbx_consult(now, &codes, &number),
                (true, None) => self.consult(now, &number),
                (false, Some(codes)) => self.pbx_blind(now, &codes, &number),
                (false, None) => self.blind_transfer(now, &number),
            };
        }
        let park = self.default_policy().attendant.park.as_deref();
        if park.is_some_and(|p| slot_like(&number, p)) {
            // A park slot's key takes back the call parked there.
            return self.unpark(now, &number);
        }
        if self.lamp_of(&number) == BlfState::Ringing {
            return self.pickup(now, &number);
        }
        self.dial(now, &number);
    }

    /// The number of the favourite named by its position (from 1), label (any case) or
    /// number.
    fn favourite_number(&self, which: &str) -> Option<String> {
        let which = which.trim();
        let favourites = &self.shared_policy().attendant.favourites;
        let by_position = which
            .parse::<usize>()
            .ok()
            .filter(|n| {
                (1..=favourites.len()).contains(n) && !favourites.iter().any(|f| f.number == which)
            })
            .map(|n| &favourites[n - 1]);
        by_position
            .or_else(|| favourites.iter().find(|f| f.number == which))
            .or_else(|| {
                favourites
                    .iter()
                    .find(|f| f.label.eq_ignore_ascii_case(which))
            })
            .map(|f| f.number.clone())
    }

    /// The busy lamp of `ext`, `unknown` when it is not watched.
    fn lamp_of(&self, ext: &str) -> BlfState {
        self.subscriptions
            .iter()
            .find(|s| s.purpose == Purpose::Blf && s.ext == ext)
            .map_or(BlfState::Unknown, |s| s.lamp)
    }

    /// `favourites`: the list with the lamps.
    pub(super) fn favourites(&mut self) {
        let favourites = self
            .shared_policy()
            .attendant
            .favourites
            .iter()
            .map(|f| FavouriteLamp {
                label: f.label.clone(),
                number: f.number.clone(),
                key: f.key.clone(),
                lamp: self.lamp_of(&f.number),
            })
            .collect();
        self.emit(Event::Favourites { favourites });
    }

    /// `park [line]`: blind transfer (REFER, reported by NOTIFY) to the park extension.
    pub(super) fn park(&mut self, now: Instant, line: Option<LineNo>) {
        let index = line.map_or(self.selected, |l| usize::from(l).saturating_sub(1));
        let account = self.line_account(index);
        let Some(ext) = self.policy(account).attendant.park.clone() else {
            return self
                .error("park: no park extension is configured for this account (park = \"700\")");
        };
        let Some(call) = self.lines.get(index).and_then(Option::as_ref) else {
            return self.error(format!("no call on line {} to park", line_no(index)));
        };
        if !call.is_established() || call.transfer.is_some() {
            return self.error(format!(
                "the call on line {} cannot be parked now: park a connected call",
                line_no(index)
            ));
        }
        let (call_id, peer) = (call.call_id.clone(), call.peer.clone());
        if let Some(codes) = self.policy(account).transfer.pbx_codes.clone() {
            // Feature codes act on the selected call: the PBX parks it, no slot is told.
            self.select_line(now, line_no(index));
            return self.pbx_blind(now, &codes, &ext);
        }
        let target = match Target::parse(&ext, &self.account(account).domain) {
            Ok(target) => target.to_string(),
            Err(e) => return self.error(format!("park: cannot call '{ext}': {e}")),
        };
        self.parking.start(Park {
            call_id: call_id.clone(),
            ext: ext.clone(),
            line: line_no(index),
            peer,
            slot: None,
            parked: false,
        });
        let transfer = Transfer::blind(target, TransferMechanism::Notify);
        if self.begin_transfer(now, &call_id, transfer) {
            self.transfer_event(
                &call_id,
                TransferStatus::Requested,
                None,
                Some(&format!("parking at {ext}")),
            );
        } else if let Some(i) = self.parking.parks.iter().position(|p| p.call_id == call_id) {
            self.parking.parks.remove(i);
        }
    }

    /// `unpark <slot>`: call the slot (after the account's `unpark` prefix).
    pub(super) fn unpark(&mut self, now: Instant, slot: &str) {
        let slot = slot.trim();
        if slot.is_empty()
            || !slot
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "*#+".contains(c))
        {
            return self.error(format!("unpark: `{slot}` is not a park slot (e.g. 701)"));
        }
        let number = format!("{}{slot}", self.default_policy().attendant.unpark);
        self.dial(now, &number);
    }

    /// What an operator command means here, for the commands this module carries out.
    pub(super) fn attendant_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Favourite(which) => self.favourite(now, &which),
            Command::Favourites => self.favourites(),
            Command::Park(line) => self.park(now, line),
            Command::Unpark(slot) => self.unpark(now, &slot),
            _ => {}
        }
    }
}

/// The slot a sipfrag body names: a header whose name has `park` in it, else a number in a
/// 2xx reason phrase that mentions parking.
fn slot_of(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let status = lines.next()?;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.to_ascii_lowercase().contains("park") {
            let value = value.trim();
            if is_slot(value) {
                return Some(value.to_owned());
            }
        }
    }
    let mut words = status.split_whitespace();
    let (_, code) = (words.next(), words.next()?);
    let reason: Vec<&str> = words.collect();
    let parked = code.starts_with('2')
        && reason
            .iter()
            .any(|w| w.to_ascii_lowercase().contains("park"));
    reason
        .iter()
        .rev()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .find(|w| is_slot(w) && w.chars().any(|c| c.is_ascii_digit()))
        .filter(|_| parked)
        .map(str::to_owned)
}

/// Whether the lamp `ext` can be a slot of the park extension `park`: digits, as long as it
/// and starting with the same digit (700 → 701…799, as Asterisk numbers its slots).
fn slot_like(ext: &str, park: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(ext)
        && digits(park)
        && ext != park
        && ext.len() == park.len()
        && ext.as_bytes()[0] == park.as_bytes()[0]
}

/// A short run of dialable characters.
fn is_slot(text: &str) -> bool {
    (1..=16).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "*#+".contains(c))
}

/// The user part of a SIP URI (`sip:701@pbx;x` → `701`), else the text without a scheme.
fn user_of(uri: &str) -> &str {
    let uri = uri.trim().trim_start_matches('<');
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    let rest = rest.split(['>', ';', '?']).next().unwrap_or(rest);
    rest.split_once('@').map_or(rest, |(user, _)| user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_comes_from_a_park_header_or_the_reason() {
        assert_eq!(
            slot_of(b"SIP/2.0 200 OK\r\nPark-Slot: 701\r\n").as_deref(),
            Some("701")
        );
        assert_eq!(
            slot_of(b"SIP/2.0 200 Parked at 702\r\n").as_deref(),
            Some("702")
        );
        assert_eq!(slot_of(b"SIP/2.0 200 OK\r\n"), None);
        assert_eq!(slot_of(b"SIP/2.0 486 Park 703 busy\r\n"), None);
        assert_eq!(slot_of(b"SIP/2.0 200 Parked\r\nX-Park: \x00\xff\r\n"), None);
        assert_eq!(slot_of(b""), None);
        assert_eq!(
            slot_of("SIP/2.0 200 Parkéd at (704).".as_bytes()).as_deref(),
            Some("704")
        );
    }

    #[test]
    fn user_parts() {
        assert_eq!(user_of("sip:701@pbx;transport=udp"), "701");
        assert_eq!(user_of("<sips:alice@example.com>"), "alice");
        assert_eq!(user_of("200"), "200");
    }

    fn parked(parking: &mut Parking, call_id: &str, peer: &str, slot: &[u8]) {
        parking.start(Park {
            call_id: call_id.into(),
            ext: "700".into(),
            line: 1,
            peer: peer.into(),
            slot: None,
            parked: false,
        });
        parking.notified(call_id, slot);
        let told = parking.follow(
            &Event::Transfer {
                line: 1,
                call_id: call_id.into(),
                kind: crate::sip::TransferKind::Blind,
                mechanism: Some(TransferMechanism::Notify),
                status: TransferStatus::Succeeded,
                target: "sip:700@pbx".into(),
                status_code: Some(200),
                reason: None,
            },
            Some("700"),
        );
        assert!(matches!(told, Some(Event::Parked { .. })), "{told:?}");
    }

    fn incoming(from: &str, display: Option<&str>, by: Option<&str>) -> Event {
        Event::Incoming {
            line: 2,
            call_id: "back".into(),
            from: from.into(),
            display_name: display.map(Into::into),
            referred_by: by.map(Into::into),
            replaces: None,
            account: "desk".into(),
        }
    }

    #[test]
    fn a_parked_caller_coming_back_is_recognised_once() {
        let mut parking = Parking::default();
        parked(
            &mut parking,
            "c1",
            "sip:carol@pbx",
            b"SIP/2.0 200 Parked at 701",
        );
        let back = parking.follow(&incoming("sip:carol@pbx", None, None), Some("700"));
        assert_eq!(
            back,
            Some(Event::ParkReturned {
                line: 2,
                call_id: "back".into(),
                from: "sip:carol@pbx".into(),
                slot: Some("701".into()),
            })
        );
        assert_eq!(
            parking.follow(&incoming("sip:carol@pbx", None, None), Some("700")),
            None,
            "recognised once"
        );
        assert_eq!(
            parking.follow(&incoming("sip:dave@pbx", None, None), None),
            None
        );
        let by = parking.follow(
            &incoming("sip:x@pbx", None, Some("<sip:700@pbx>")),
            Some("700"),
        );
        assert!(matches!(by, Some(Event::ParkReturned { slot: None, .. })));
        let named = parking.follow(&incoming("sip:x@pbx", Some("Parked: 701"), None), None);
        assert!(matches!(named, Some(Event::ParkReturned { .. })));
    }

    #[test]
    fn without_a_slot_in_the_notify_the_first_slot_lamp_to_light_is_the_slot() {
        let lamp = |ext: &str, state| Event::Blf {
            ext: ext.into(),
            state,
        };
        let mut parking = Parking::default();
        assert_eq!(
            parking.follow(&lamp("701", BlfState::Busy), Some("700")),
            None
        );
        parked(&mut parking, "c1", "sip:carol@pbx", b"SIP/2.0 200 OK");
        // Not slots: another extension, the park extension itself, a lamp going idle.
        assert_eq!(
            parking.follow(&lamp("201", BlfState::Busy), Some("700")),
            None
        );
        assert_eq!(
            parking.follow(&lamp("700", BlfState::Busy), Some("700")),
            None
        );
        assert_eq!(
            parking.follow(&lamp("702", BlfState::Idle), Some("700")),
            None
        );
        let told = parking.follow(&lamp("sip:702@pbx:5060", BlfState::Busy), Some("700"));
        assert!(
            matches!(&told, Some(Event::Parked { slot: Some(s), .. }) if s == "702"),
            "{told:?}"
        );
        assert_eq!(
            parking.follow(&lamp("703", BlfState::Busy), Some("700")),
            None,
            "the slot is known"
        );
        let back = parking.follow(&incoming("sip:carol@pbx", None, None), Some("700"));
        assert!(matches!(back, Some(Event::ParkReturned { slot: Some(s), .. }) if s == "702"));
    }

    #[test]
    fn only_the_last_parks_are_remembered() {
        let mut parking = Parking::default();
        for i in 0..=MAX_PARKED {
            parked(
                &mut parking,
                &format!("c{i}"),
                &format!("sip:p{i}@pbx"),
                b"SIP/2.0 200 OK",
            );
        }
        assert_eq!(parking.parks.len(), MAX_PARKED);
        assert_eq!(
            parking.follow(&incoming("sip:p0@pbx", None, None), None),
            None
        );
    }
}
