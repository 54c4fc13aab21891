//! Client authentication (RFC 3261 §22.2, §8.1.3.5; RFC 7616; RFC 8760), once, under every
//! client transaction: REGISTER, SUBSCRIBE, INVITE and every in-dialog request we send.
//!
//! ```text
//!   request ──► 401/407 ──► answered with the account's credentials (new branch, CSeq + 1)
//!                               │
//!                               ├─► 2xx … 6xx (not 401/407) ──► the owner, as if sent once
//!                               └─► 401/407 again ──► stale=true: once more, new nonce
//!                                                     else: the owner sees it (a failure)
//! ```
//!
//! The hook sits in `UserAgent::on_response` before the owner (registration, subscription,
//! call) sees the response: a challenge to a request we sent (not ACK, not CANCEL) is answered
//! with the credentials of the account the request went out through (the call's account, the
//! registration's, or the first for subscriptions). The owner is told the new CSeq so that its later requests stay higher (the
//! dialog's local CSeq, the registration's and subscription's counters, the call's current
//! INVITE for CANCEL and ACK). Without a password, or for an unusable challenge, the response
//! goes to the owner, which reports it.
//!
//! Challenges are remembered per account, next hop and realm: later requests to the same hop
//! carry credentials pre-emptively with the nonce-count incremented (a registrar's refreshes,
//! a proxy that challenges every in-dialog request), and a pre-emptive answer that is refused
//! is answered like any first challenge. The digest arithmetic is `auth.rs`'s; this module owns
//! which request is re-sent, with what, and when to give up. It never reads the clock.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::auth::{self, Challenge};
use super::msg::{Builder, Message, Method};
use super::transaction::TxKey;
use super::{Owner, UserAgent};

/// The most realms remembered (the oldest is forgotten first): a peer inventing a realm per
/// challenge cannot grow the list.
const MAX_REALMS: usize = 16;

/// The header that carries a challenge in a 401 (`WWW-Authenticate`) or a 407
/// (`Proxy-Authenticate`), and the one that answers it.
fn header_names(code: u16) -> (&'static str, &'static str) {
    if code == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    }
}

/// A request re-sent with credentials, by the key of its new transaction.
#[derive(Debug, Clone)]
struct Retried {
    /// The request as its owner sent it (the CSeq the owner knows it by).
    original: Message,
    /// Challenges answered for it so far (a second one only when the first was stale).
    answers: u8,
}

/// A challenge we answered, kept to answer the next requests to the same hop pre-emptively.
#[derive(Debug, Clone)]
struct Realm {
    /// Which account's credentials (its index, `accounts.rs`).
    account: usize,
    /// Where the challenged request went.
    hop: SocketAddr,
    challenge: Challenge,
    /// `Authorization` or `Proxy-Authorization`.
    header: &'static str,
    /// The last nonce-count used with `challenge`'s nonce.
    nc: u32,
}

/// The state of the authentication layer: requests re-sent and realms known.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientAuth {
    retried: HashMap<TxKey, Retried>,
    realms: Vec<Realm>,
    /// The account each request in flight went out through, kept for when its owner is gone
    /// (a BYE outlives its call).
    accounts: HashMap<TxKey, usize>,
}

impl ClientAuth {
    /// Forgets re-sent requests whose transactions are gone.
    pub(super) fn retain(&mut self, alive: impl Fn(&TxKey) -> bool) {
        self.retried.retain(|key, _| alive(key));
        self.accounts.retain(|key, _| alive(key));
    }

    /// Records that the request of transaction `key` went out through `account`.
    pub(super) fn sent_through(&mut self, key: TxKey, account: usize) {
        self.accounts.insert(key, account);
    }

    /// `request` (carried by transaction `key`) as its owner knows it: an in-dialog request
    /// of a call that was sent again with credentials is the one the call sent (calls know
    /// their requests by CSeq); the other owners were told the new CSeq.
    pub(super) fn as_owner_knows(&self, key: &TxKey, owner: &Owner, request: Message) -> Message {
        match self.retried.get(key) {
            Some(r) if request.to.tag().is_some() && matches!(owner, Owner::Call(_)) => {
                r.original.clone()
            }
            _ => request,
        }
    }
}

/// `request` written again with `via`, CSeq `cseq` and the credentials in `credentials`
/// replacing any of the same header name.
fn rewrite(
    request: &Message,
    via: Option<&str>,
    cseq: u32,
    credentials: &[(&'static str, String)],
) -> Option<Vec<u8>> {
    let uri = request.request_uri()?;
    let mut b = Builder::request(request.method(), uri);
    let mut via_done = false;
    let mut content_type = None;
    for (name, value) in &request.headers {
        match name.as_str() {
            "Via" if !via_done => {
                via_done = true;
                b = b.header("Via", via.unwrap_or(value));
            }
            "CSeq" => b = b.header("CSeq", format!("{cseq} {}", request.method())),
            "Content-Length" => {}
            "Content-Type" => content_type = Some(value.clone()),
            n if credentials.iter().any(|(c, _)| *c == n) => {}
            _ => b = b.header(name, value),
        }
    }
    for (name, value) in credentials {
        b = b.header(name, value);
    }
    if let Some(content_type) = content_type {
        b = b.body(&content_type, request.body.clone());
    }
    Some(b.build())
}

impl UserAgent {
    /// Which account's credentials answer for requests of `owner`: a call's account, a
    /// registration's, else the first account.
    pub(super) fn account_index_of(&self, owner: &Owner) -> usize {
        match owner {
            Owner::Call(call_id) => self
                .calls()
                .find(|c| &c.call_id == call_id)
                .map_or(0, |c| c.account),
            Owner::Register(index) => *index,
            Owner::Subscription(_) => 0,
        }
    }

    /// True when the owner still wants an answer to `request` (a call hung up before its
    /// INVITE was answered does not; a REGISTER superseded by another does not).
    fn still_wanted(&self, owner: &Owner, request: &Message) -> bool {
        match owner {
            Owner::Register(index) => self
                .accounts
                .get(*index)
                .and_then(|a| a.registration.as_ref())
                .is_some_and(|r| r.cseq() == request.cseq.0),
            Owner::Subscription(call_id) => {
                self.subscriptions.iter().any(|s| &s.call_id == call_id)
            }
            // A BYE or NOTIFY may outlive its call; an INVITE is wanted while its call is.
            Owner::Call(call_id) => match self.calls().find(|c| &c.call_id == call_id) {
                Some(call) => request.method() != Method::Invite || !call.is_gone(),
                None => request.method() != Method::Invite,
            },
        }
    }

    /// The 401/407 `resp` to `request` (transaction `key`, sent to `hop` for `owner`): re-sends
    /// the request with credentials and returns true, or returns false when the owner must
    /// see the response (no password, no usable challenge, a second non-stale challenge).
    pub(super) fn answer_challenge(
        &mut self,
        now: std::time::Instant,
        key: &TxKey,
        owner: &Owner,
        request: &Message,
        resp: &Message,
        hop: SocketAddr,
    ) -> bool {
        let Some(code) = resp.code().filter(|c| matches!(c, 401 | 407)) else {
            return false;
        };
        if matches!(request.method(), Method::Ack | Method::Cancel)
            || !self.still_wanted(owner, request)
        {
            return false;
        }
        let account_index = match self.auth.accounts.get(key) {
            Some(account) => *account,
            None => self.account_index_of(owner),
        };
        let account = self.account(account_index);
        let Some(password) = account.password.clone() else {
            return false;
        };
        let user = account.auth_user.clone();
        let (challenge_header, answer_header) = header_names(code);
        let values: Vec<&str> = resp.headers(challenge_header).collect();
        let Some(challenge) = auth::pick_strongest(&values) else {
            tracing::warn!(code, "a challenge we cannot answer (no usable Digest)");
            return false;
        };
        let previous = self.auth.retried.get(key).cloned();
        let answers = previous.as_ref().map_or(0, |r| r.answers);
        if answers >= 2 || (answers == 1 && !challenge.stale) {
            tracing::warn!(code, realm = %challenge.realm, "credentials refused");
            return false;
        }
        let original = previous.map_or_else(|| request.clone(), |r| r.original);
        // The nonce-count goes on with a nonce already used, and starts again with a new one.
        let nc = self
            .auth
            .realms
            .iter()
            .find(|r| {
                r.account == account_index
                    && r.hop == hop
                    && r.challenge.realm == challenge.realm
                    && r.challenge.nonce == challenge.nonce
            })
            .map_or(1, |r| r.nc + 1);
        self.auth.realms.retain(|r| {
            !(r.account == account_index && r.hop == hop && r.challenge.realm == challenge.realm)
        });
        let Some(uri) = request.request_uri().map(str::to_string) else {
            return false;
        };
        let cnonce = self.tokens.hex();
        let value = auth::authorization(
            &challenge,
            &user,
            &password,
            &request.method().to_string(),
            &uri,
            nc,
            &cnonce,
        );
        if self.auth.realms.len() >= MAX_REALMS {
            self.auth.realms.remove(0);
        }
        self.auth.realms.push(Realm {
            account: account_index,
            hop,
            challenge,
            header: answer_header,
            nc,
        });
        let cseq = self.next_cseq_for(owner, request);
        // Credentials for other realms (a proxy's and a registrar's) stay in the request.
        let mut credentials: Vec<(&'static str, String)> = Vec::new();
        for name in ["Authorization", "Proxy-Authorization"] {
            if name != answer_header {
                credentials.extend(request.headers(name).map(|v| (name, v.to_string())));
            }
        }
        credentials.push((answer_header, value));
        let via = self.via(account_index);
        let Some(bytes) = rewrite(request, Some(&via), cseq, &credentials) else {
            return false;
        };
        let Ok(reissued) = Message::parse(&bytes) else {
            return false;
        };
        tracing::info!(method = %request.method(), code, cseq, "answering a challenge");
        let Some(new_key) = self.send_request(now, hop, bytes, owner.clone()) else {
            return false;
        };
        self.auth.sent_through(new_key.clone(), account_index);
        self.auth.retried.insert(
            new_key,
            Retried {
                original,
                answers: answers + 1,
            },
        );
        self.reissued(owner, &reissued);
        true
    }

    /// The CSeq for `request` sent again: one above both its own and, in a dialog, the
    /// dialog's last one; for REGISTER, above the registration's counter.
    fn next_cseq_for(&self, owner: &Owner, request: &Message) -> u32 {
        let mut cseq = request.cseq.0;
        if request.to.tag().is_some() {
            if let Some(dialog) = self.dialog_of(request) {
                cseq = cseq.max(dialog.local_cseq);
            }
        }
        if let Owner::Register(index) = owner {
            if let Some(reg) = self
                .accounts
                .get(*index)
                .and_then(|a| a.registration.as_ref())
            {
                cseq = cseq.max(reg.cseq());
            }
        }
        cseq.saturating_add(1)
    }

    /// The dialog (of a call or a subscription) an in-dialog request of ours belongs to.
    fn dialog_of(&self, request: &Message) -> Option<&super::dialog::Dialog> {
        let from_tag = request.from.tag()?;
        let to_tag = request.to.tag()?;
        let matches = |d: &&super::dialog::Dialog| {
            d.call_id == request.call_id && d.local_tag == from_tag && d.remote_tag == to_tag
        };
        self.calls()
            .filter_map(|c| c.dialog.as_ref())
            .find(matches)
            .or_else(|| {
                self.subscriptions
                    .iter()
                    .filter_map(|s| s.dialog())
                    .find(matches)
            })
    }

    /// Tells the owner of `reissued` (a request sent again with credentials) its new CSeq.
    fn reissued(&mut self, owner: &Owner, reissued: &Message) {
        let cseq = reissued.cseq.0;
        if reissued.to.tag().is_some() {
            let (call_id, from_tag, to_tag) = (
                reissued.call_id.clone(),
                reissued.from.tag().unwrap_or_default().to_string(),
                reissued.to.tag().unwrap_or_default().to_string(),
            );
            let matches = |d: &super::dialog::Dialog| {
                d.call_id == call_id && d.local_tag == from_tag && d.remote_tag == to_tag
            };
            for call in self.lines.iter_mut().flatten().chain(&mut self.detached) {
                if let Some(d) = call.dialog.as_mut().filter(|d| matches(d)) {
                    d.local_cseq = d.local_cseq.max(cseq);
                }
            }
            for sub in &mut self.subscriptions {
                if let Some(d) = sub.dialog_mut().filter(|d| matches(d)) {
                    d.local_cseq = d.local_cseq.max(cseq);
                }
            }
            return;
        }
        match owner {
            Owner::Register(index) => {
                if let Some(reg) = self
                    .accounts
                    .get_mut(*index)
                    .and_then(|a| a.registration.as_mut())
                {
                    reg.set_cseq(cseq);
                }
            }
            Owner::Subscription(call_id) => {
                if let Some(sub) = self
                    .subscriptions
                    .iter_mut()
                    .find(|s| &s.call_id == call_id)
                {
                    sub.reissued(reissued);
                }
            }
            Owner::Call(call_id) => {
                if reissued.method() == Method::Invite {
                    if let Some(call) = self.call_mut(call_id) {
                        call.reissued_invite(reissued.clone());
                    }
                }
            }
        }
    }

    /// Adds remembered credentials to a request about to go to `hop` for `owner`, when it
    /// carries none: the nonce-count of each realm's nonce goes up by one.
    pub(super) fn with_known_credentials(
        &mut self,
        owner: &Owner,
        hop: SocketAddr,
        request: Message,
        bytes: Vec<u8>,
    ) -> (Message, Vec<u8>) {
        if matches!(request.method(), Method::Ack | Method::Cancel)
            || request.header("Authorization").is_some()
            || request.header("Proxy-Authorization").is_some()
        {
            return (request, bytes);
        }
        let account_index = self.account_index_of(owner);
        let account = self.account(account_index);
        let Some(password) = account.password.clone() else {
            return (request, bytes);
        };
        let user = account.auth_user.clone();
        let Some(uri) = request.request_uri().map(str::to_string) else {
            return (request, bytes);
        };
        let method = request.method().to_string();
        let mut credentials = Vec::new();
        let known: Vec<usize> = (0..self.auth.realms.len())
            .filter(|&i| {
                let r = &self.auth.realms[i];
                r.account == account_index && r.hop == hop
            })
            .collect();
        for i in known {
            let cnonce = self.tokens.hex();
            let realm = &mut self.auth.realms[i];
            realm.nc += 1;
            let value = auth::authorization(
                &realm.challenge,
                &user,
                &password,
                &method,
                &uri,
                realm.nc,
                &cnonce,
            );
            credentials.push((realm.header, value));
        }
        if credentials.is_empty() {
            return (request, bytes);
        }
        match rewrite(&request, None, request.cseq.0, &credentials)
            .and_then(|b| Some((Message::parse(&b).ok()?, b)))
        {
            Some((message, bytes)) => (message, bytes),
            None => (request, bytes),
        }
    }
}
