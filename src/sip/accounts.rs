//! Several accounts at once: the per-account state of the user agent.
//!
//! Every enabled `[[account]]` runs in the same user agent, on the same socket. Account 0 is
//! [`UaConfig::account`](super::UaConfig), account `k` (k ≥ 1) is `UaConfig::others[k - 1]`.
//! Each one keeps, in its [`AccountState`], what used to be the single account's: its
//! registration (REGISTER, refresh and backoff by `register.rs` and `refresh.rs`), its
//! registrar's RFC 3263 targets and pending lookup (`failover.rs`), its keep-alive, the address
//! its registrar sees us at (NAT contact rewrite, `nat.rs`) and the Contact it replaced, and
//! the user part of its Contact — distinct among the accounts, so that an INVITE the PBX sends
//! to a Contact tells which account it is for.
//!
//! ```text
//!   INVITE in ─► Request-URI user = an account's Contact user? ─► that account
//!                 └─ else To user@domain = an account's AOR? ─► that account
//!                     └─ else source = an account's registrar/proxy? ─► that account
//!                         └─ else account 0
//!   dial ─► the route's account (DialVia), else the selected default account (`account NAME`)
//! ```
//!
//! This module owns the attribution and the default account; it sends nothing itself.

use std::net::SocketAddr;

use super::keepalive::Keepalive;
use super::locate;
use super::msg::{self, Message};
use super::register::Registration;
use super::{Account, Event, UserAgent};

/// One account's registration, keep-alive, registrar targets and NAT-learnt address.
#[derive(Debug, Clone)]
pub(super) struct AccountState {
    /// The binding, for an account that registers.
    pub(super) registration: Option<Registration>,
    /// CRLF pings towards its registrar or outbound proxy.
    pub(super) keepalive: Option<Keepalive>,
    /// The registrar's (or outbound proxy's) targets (RFC 3263) and the one in use.
    pub(super) registrar_targets: locate::Targets,
    /// A lookup of the registrar is out: REGISTER waits for its answer.
    pub(super) awaiting_dns: bool,
    /// A Contact replaced by NAT contact rewrite, removed (`expires=0`) by the next REGISTER.
    pub(super) stale_contact: Option<String>,
    /// Our address in this account's Via and Contact (learnt from its registrar behind NAT).
    pub(super) local: SocketAddr,
    /// The address its calls' SDP carries, when NAT rewrite made it differ from
    /// `UaConfig::media_ip`.
    pub(super) media_ip: Option<std::net::IpAddr>,
    /// The user part of this account's Contact.
    pub(super) contact_user: String,
}

impl AccountState {
    /// The state of `account` (index `index` among `all`) before anything was sent.
    fn new(index: usize, all: &[&Account], local: SocketAddr) -> AccountState {
        let account = all[index];
        AccountState {
            registration: None,
            keepalive: None,
            registrar_targets: locate::Targets::fixed(account.server_addr().into_iter().collect()),
            awaiting_dns: false,
            stale_contact: None,
            local,
            media_ip: None,
            contact_user: contact_user(index, all),
        }
    }
}

/// The Contact user part of account `index`: its user, unless an account before it has the
/// same user; then the user and the account's name, so that every Contact differs.
fn contact_user(index: usize, all: &[&Account]) -> String {
    let user = &all[index].user;
    if all[..index].iter().all(|a| &a.user != user) {
        return user.clone();
    }
    let name: String = all[index]
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'".contains(*c))
        .collect();
    format!("{user}-{name}{index}")
}

/// The per-account states of `account` and `others`, in that order.
pub(super) fn states(
    account: &Account,
    others: &[Account],
    local: SocketAddr,
) -> Vec<AccountState> {
    let all: Vec<&Account> = std::iter::once(account).chain(others).collect();
    (0..all.len())
        .map(|i| AccountState::new(i, &all, local))
        .collect()
}

impl UserAgent {
    /// Account `index` (0: the first; an index out of range gives the first).
    pub(super) fn account(&self, index: usize) -> &Account {
        index
            .checked_sub(1)
            .and_then(|i| self.cfg.others.get(i))
            .unwrap_or(&self.cfg.account)
    }

    /// Account `index`, to change its addresses (failover).
    pub(super) fn account_mut(&mut self, index: usize) -> &mut Account {
        match index.checked_sub(1) {
            Some(i) if i < self.cfg.others.len() => &mut self.cfg.others[i],
            _ => &mut self.cfg.account,
        }
    }

    /// How many accounts run.
    pub(super) fn account_count(&self) -> usize {
        1 + self.cfg.others.len()
    }

    /// The index of the account called `name`.
    pub(super) fn account_named(&self, name: &str) -> Option<usize> {
        (0..self.account_count()).find(|&i| self.account(i).name == name)
    }

    /// The account new calls go out through when no route names one.
    pub fn default_account(&self) -> &str {
        &self.account(self.default_account).name
    }

    /// `account NAME`: makes `name` the account of new calls.
    pub(super) fn select_account(&mut self, name: &str) {
        match self.account_named(name) {
            Some(index) => {
                self.default_account = index;
                self.emit(Event::AccountSelected {
                    account: name.to_owned(),
                });
            }
            None => {
                let known: Vec<&str> = (0..self.account_count())
                    .map(|i| self.account(i).name.as_str())
                    .collect();
                let message = format!(
                    "there is no account `{name}`; the accounts are: {}",
                    known.join(", ")
                );
                self.error(message);
            }
        }
    }

    /// The account an out-of-dialog INVITE is for (see the module docs).
    pub(super) fn account_for_invite(&self, src: SocketAddr, invite: &Message) -> usize {
        let count = self.account_count();
        if count == 1 {
            return 0;
        }
        let ruri_user = invite
            .request_uri()
            .and_then(msg::SipUri::parse)
            .and_then(|u| u.user);
        if let Some(user) = ruri_user {
            if let Some(i) = (0..count).find(|&i| self.accounts[i].contact_user == user) {
                return i;
            }
        }
        if let Some(to) = msg::SipUri::parse(&invite.to.uri) {
            let aor = to.user.map(|u| format!("{u}@{}", to.host));
            if let Some(i) = (0..count).find(|&i| Some(self.account(i).aor()) == aor) {
                return i;
            }
        }
        (0..count)
            .find(|&i| self.servers_of(i).contains(&src.ip()))
            .unwrap_or(0)
    }

    /// The account of the call on line `line`; with none there, the account new calls go out
    /// through.
    pub(super) fn line_account(&self, line: usize) -> usize {
        self.lines
            .get(line)
            .and_then(Option::as_ref)
            .map_or(self.default_account, |c| c.account)
    }

    /// The address the SDP of a call on line `line` carries: its account's.
    pub(super) fn media_ip_of_line(&self, line: usize) -> std::net::IpAddr {
        self.accounts
            .get(self.line_account(line))
            .and_then(|a| a.media_ip)
            .unwrap_or(self.cfg.media_ip)
    }

    /// The account of the call `call_id` (the first when there is no such call).
    pub(super) fn call_account(&self, call_id: &str) -> usize {
        self.calls()
            .find(|c| c.call_id == call_id)
            .map_or(0, |c| c.account)
    }

    /// The IP addresses account `index`'s calls come from: its outbound proxy and registrar
    /// (every target DNS gave).
    pub(super) fn servers_of(&self, index: usize) -> Vec<std::net::IpAddr> {
        let account = self.account(index);
        account
            .proxy_addr()
            .iter()
            .chain(self.register_dst(index).iter())
            .chain(self.accounts[index].registrar_targets.all())
            .map(SocketAddr::ip)
            .collect()
    }
}
