//! The SIP user agent, sans-IO.
//!
//! [`UserAgent`] is fed received bytes with their source, the operator's
//! [`Command`]s and the current [`Instant`]; it is polled for one [`Output`] at a
//! time: bytes to send, events, media orders and, last, the next deadline. It owns
//! no socket, no thread and no clock, so every test can run it on simulated time:
//!
//! ```text
//!   handle_datagram(now, transport, src, bytes) ─┐                   ┌► Output::Transmit
//!   handle_timeout(now)                          │                   ├► Output::Resolve
//!   command(now, Command)                        ├─► UserAgent ──────┼► Output::Event
//!   handle_resolved(now, uri, Located | error)  ─┘   poll_output()   ├► Output::Media
//!                                                                     └► Output::Timeout (last)
//! ```
//!
//! The driver must call `poll_output` after every input until it returns
//! `Timeout` (or `None`), and sleep until that deadline; no queue can be forgotten.
//! A registrar known by name is located through DNS the same way: the core asks
//! ([`Output::Resolve`], rules in [`locate`]) and is fed the answer; which target is in use
//! and the failover between them live in `failover.rs`, NAT contact rewrite in `nat.rs`.
//! Several accounts run at once, each with its own registration, targets, keep-alive and
//! NAT address (`accounts.rs`, which also says which account an incoming call is for) and
//! its own ways with its PBX (`policy.rs`: transfer, pickup, park, SRTP, answering).
//! Layers inside: [`msg`] (parsing and
//! building), [`transaction`] (RFC 3261 §17), [`dialog`] (§12), and the
//! usages in `register.rs` (REGISTER) and `call/` (INVITE, hold, BYE: a call's
//! `Phase`, its timer table, and the happenings the features react to, in `happening.rs`),
//! `client_auth.rs` under every client transaction (401/407 answered once),
//! `refresh.rs` for the REGISTER and SUBSCRIBE refresh and backoff schedule,
//! with [`sdp`] for offer/answer and [`auth`] for digest. Whatever the
//! operator typed as a target becomes a URI in [`target`], the one parser
//! every command uses.
//!
//! Lines live here too, not in the driver: which call is on which line, and
//! "only one line talks at a time", is protocol logic worth testing on
//! simulated time.

mod accounts;
#[cfg(test)]
mod accounts_tests;
pub mod answer_policy;
#[cfg(test)]
mod answer_policy_tests;
pub mod api;
mod attendant;
#[cfg(test)]
mod attendant_tests;
mod attended;
#[cfg(test)]
mod attended_tests;
pub mod auth;
mod call;
mod client_auth;
#[cfg(test)]
mod client_auth_tests;
mod conference;
#[cfg(test)]
mod conference_tests;
pub mod conformance;
pub mod dialog;
pub mod dialog_info;
mod failover;
#[cfg(test)]
mod failover_tests;
#[cfg(test)]
mod garbage_tests;
mod happening;
#[cfg(test)]
mod ipv6_tests;
mod keepalive;
pub mod locate;
mod media_control;
pub mod media_order;
pub mod msg;
mod nat;
#[cfg(test)]
mod p2p_tests;
mod pbx_transfer;
mod pickup;
#[cfg(test)]
mod pickup_tests;
pub mod policy;
mod recording;
#[cfg(test)]
mod recording_tests;
pub(crate) mod refer;
mod refresh;
mod register;
mod replaces;
#[cfg(test)]
mod replaces_tests;
#[cfg(test)]
mod resilience_tests;
pub mod sdes;
pub mod sdp;
mod session_timer;
#[cfg(test)]
mod session_timer_tests;
pub mod stun;
mod subscription;
pub mod target;
#[cfg(test)]
mod target_tests;
pub mod timer;
pub mod transaction;
mod transfer;
#[cfg(test)]
mod transfer_tests;
mod transferee;
#[cfg(test)]
mod ua_tests;
#[cfg(test)]
mod watch_tests;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

pub use answer_policy::{AnswerConfig, AutoAnswer, WrapupChoice, WrapupConfig, WrapupStatus};
pub use api::{
    CallState, Census, Command, Direction, Event, FavouriteLamp, LineNo, TransferKind,
    TransferMechanism, TransferStatus,
};
pub use attendant::{AttendantConfig, FavouriteTarget};
use call::Call;
pub use dialog_info::BlfState;
use keepalive::Keepalive;
pub use media_order::MediaOrder;
use msg::{Builder, Message, Method};
pub use pbx_transfer::PbxCodes;
pub use pickup::{PickupConfig, PickupMethod};
use register::Registration;
pub use subscription::{MAX_BLF, VIEW_GRACE, VIEW_LIMIT};
use timer::{earliest, TimerValues};
use transaction::{ClientOutcome, ClientTx, ServerTx, TxKey};
pub use transfer::{BlindMode, ReferPolicy, TransferConfig};

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; the transaction layer retransmits.
    Udp,
    /// A stream, framed by Content-Length.
    Tcp,
    /// A TLS stream, framed like TCP (`sips:`, port 5061 by default).
    Tls,
}

impl Transport {
    /// True for stream transports, where nothing is retransmitted.
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in Via (`UDP`, `TCP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// A DNS lookup the driver must make (RFC 3263) and feed back through
/// [`UserAgent::handle_resolved`] with the same `uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    /// The URI whose server is looked for (the key of the answer).
    pub uri: String,
    /// What to look up.
    pub plan: locate::Plan,
    /// The transport the answer must serve (the account fixes it).
    pub transport: Transport,
}

/// Bytes the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// How to send them.
    pub transport: Transport,
    /// Where to send them.
    pub dst: SocketAddr,
    /// One whole SIP message.
    pub payload: Vec<u8>,
}

/// What the user agent wants done, from [`UserAgent::poll_output`] (str0m's shape).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Bytes to send.
    Transmit(Transmit),
    /// A DNS lookup to make; its answer goes to [`UserAgent::handle_resolved`].
    Resolve(Resolve),
    /// Something for the operator (screen, JSON line, history).
    Event(Event),
    /// An order for the media engine.
    Media(MediaOrder),
    /// Nothing else is queued: call [`UserAgent::handle_timeout`] at this time (or sooner,
    /// with the next input).
    Timeout(Instant),
}

/// The account the user agent acts for, with addresses already resolved.
#[derive(Clone)]
pub struct Account {
    /// The account's name (`[[account]] name`), as events and routes call it.
    pub name: String,
    /// User part of our address-of-record.
    pub user: String,
    /// Domain of our address-of-record.
    pub domain: String,
    /// Display name for From.
    pub display_name: Option<String>,
    /// User name for digest authentication.
    pub auth_user: String,
    /// Secret for digest authentication.
    pub password: Option<String>,
    /// Registrar URI (REGISTER's Request-URI).
    pub registrar: String,
    /// Where REGISTER goes (the registrar's resolved address), if known.
    pub registrar_addr: Option<SocketAddr>,
    /// Outbound proxy URI and address: every out-of-dialog request goes there.
    pub outbound_proxy: Option<(String, SocketAddr)>,
    /// Whether to register at all.
    pub register: bool,
    /// Requested registration lifetime in seconds.
    pub expires: u32,
    /// How often to send a CRLF keep-alive to the registrar or outbound proxy; `None`: never.
    pub keepalive: Option<std::time::Duration>,
    /// Which sources may start a call with us.
    pub accept_from: AcceptFrom,
    /// Correct our Contact (and Via, and SDP's address) from the `received`/`rport` the
    /// registrar reports (contact rewrite behind NAT, over UDP).
    pub nat: bool,
    /// How its PBX transfers, picks up and parks, SRTP, and how its calls are answered.
    pub policy: policy::Policy,
}

/// Which sources may send us an out-of-dialog INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptFrom {
    /// Only the registrar and the outbound proxy (compared by IP address); anyone else gets
    /// 403 and the phone never rings.
    Registrar,
    /// Anyone.
    #[default]
    Any,
}

impl std::fmt::Debug for Account {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("display_name", &self.display_name)
            .field("auth_user", &self.auth_user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("registrar", &self.registrar)
            .field("registrar_addr", &self.registrar_addr)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("register", &self.register)
            .field("expires", &self.expires)
            .field("keepalive", &self.keepalive)
            .field("accept_from", &self.accept_from)
            .field("nat", &self.nat)
            .finish()
    }
}

impl Account {
    /// `user@domain`.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }
}

/// Everything the user agent needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// The first account (account 0): calls go out through it unless another is chosen.
    pub account: Account,
    /// The other accounts that run at once (account 1, 2, …): each registers when its
    /// `register` says so, and calls go out through it when a route names it
    /// ([`Command::DialVia`]) or it is selected as the default (`Command::Account`).
    pub others: Vec<Account>,
    /// Transport for requests we originate.
    pub transport: Transport,
    /// Our advertised SIP address (Via, Contact).
    pub local: SocketAddr,
    /// Our media address (SDP `c=`).
    pub media_ip: IpAddr,
    /// The RTP port of each line; its length is the number of lines.
    pub rtp_ports: Vec<u16>,
    /// Codecs in order of preference.
    pub codecs: Vec<sdp::Codec>,
    /// The User-Agent header value.
    pub user_agent: String,
    /// RFC 3261 timer values.
    pub timers: TimerValues,
    /// Seed for tags, branches, Call-IDs and cnonces (the core has no entropy source): from
    /// the operating system in the driver, fixed in tests.
    pub seed: Seed,
    /// Send DTMF as SIP INFO instead of RFC 4733 telephone-events.
    pub dtmf_info: bool,
    /// The Opus bitrate we send, declared in SDP as the most we want to receive.
    pub opus_bitrate: Option<u32>,
    /// The packetisation time we ask to receive (`a=ptime`, ms).
    pub ptime: u32,
    /// Extensions whose busy lamps are watched (at most [`MAX_BLF`]), through the first
    /// account.
    pub blf: Vec<String>,
}

/// What the UA supports, for Allow / Supported / Accept.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO";
const SUPPORTED: &str = "replaces, timer";
const ACCEPT: &str = "application/sdp";

/// Who is waiting for a client transaction's result.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// The registration of an account, by its index.
    Register(usize),
    Call(String),
    /// A dialog-state subscription, by its Call-ID.
    Subscription(String),
}

/// A server transaction plus what is needed to answer through it.
#[derive(Debug, Clone)]
struct Server {
    tx: ServerTx,
    reply_to: (Transport, SocketAddr),
}

/// 256 bits that seed the user agent's tokens. Its `Debug` prints nothing of it: whoever
/// knows the seed can predict every tag and branch.
#[derive(Clone, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

impl Seed {
    /// A fixed seed for tests and fuzzing, spread from `n`.
    pub fn fixed(n: u64) -> Seed {
        let mut bytes = [0u8; 32];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let word = n.rotate_left(u32::try_from(i).unwrap_or(0) * 16) ^ (i as u64);
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Seed(bytes)
    }
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

/// The tokens the network sees (RFC 3261 §19.3 wants tags and branches cryptographically
/// random: responses are matched by branch, so a predictable one lets anyone who saw one
/// message forge answers to the next): a ChaCha stream cipher keyed by the [`Seed`].
#[derive(Debug, Clone)]
struct Tokens(rand::rngs::StdRng);

impl Tokens {
    fn new(seed: &Seed) -> Tokens {
        Tokens(rand::SeedableRng::from_seed(seed.0))
    }

    fn next(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }

    fn hex(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}

/// Below this many slots a table keeps what it has: shrinking it would save nothing.
const SLACK_FLOOR: usize = 64;

/// Gives a burst's memory back once `map` has emptied to a quarter of its room: transactions
/// linger 32 s after their answer, so a busy minute can hold thousands, and a table never
/// shrinks by itself. Halving to twice what is left keeps it from shrinking and growing by
/// turns.
fn give_back_map<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > SLACK_FLOOR && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// The sans-IO SIP user agent. See the module docs for the contract.
#[derive(Debug, Clone)]
pub struct UserAgent {
    cfg: UaConfig,
    tokens: Tokens,
    clients: HashMap<TxKey, (ClientTx, Owner)>,
    /// The client-authentication layer under `clients` (`client_auth.rs`).
    auth: client_auth::ClientAuth,
    servers: HashMap<TxKey, Server>,
    /// Each account's registration, keep-alive, targets and NAT state (`accounts.rs`).
    accounts: Vec<accounts::AccountState>,
    /// The account new calls go out through when no route names one.
    default_account: usize,
    lines: Vec<Option<Call>>,
    /// Calls the operator has left that still finish their signalling
    /// (a CANCEL waiting for its 487, a BYE after a crossing 2xx).
    detached: Vec<Call>,
    /// ACKs we sent for 2xx responses to our INVITEs, resent when a 2xx is (§13.2.2.4).
    acks: Vec<call::SentAck>,
    selected: usize,
    /// An attended transfer being prepared (`consult` until its outcome).
    consult: Option<attended::Consult>,
    /// The local conference, while calls are joined.
    conference: Option<conference::Conference>,
    /// `conference` was asked for while a call was renegotiating: join when it is done.
    conference_wanted: bool,
    /// What happened to calls during the current input, for the features to react to.
    happenings: happening::Happenings,
    /// The extensions the last `watch` could not give a lamp (said once per set).
    watch_left_out: Vec<String>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    media_orders: VecDeque<MediaOrder>,
    quit_deadline: Option<Instant>,
    stopped: bool,
    /// Every call is recorded from answer to end (`[recording] auto`).
    record_auto: bool,
    /// Dialog-state subscriptions (busy lamps, pickups).
    subscriptions: Vec<subscription::Subscription>,
    /// Calls placed by `pickup`, with the extension picked up from.
    pickups: Vec<(String, String)>,
    /// Each line's SRTP keys for the suites we offer, fresh for every new call.
    srtp_keys: Vec<[sdes::Key; 2]>,
    /// DNS lookups for the driver to make.
    resolves: VecDeque<Resolve>,
    /// Calls we parked, to tell where and to recognise them when they come back.
    parking: attendant::Parking,
    /// Do not disturb, auto-answer and wrap-up (`answer_policy.rs`).
    answering: answer_policy::Answering,
    /// Calls to a domain not ours, located by DNS: Call-ID, the URI asked about, and the
    /// targets once answered (for INVITE failover).
    call_lookups: Vec<(String, String, Option<locate::Targets>)>,
    /// Each line's RTCP address as STUN mapped it, when it did (SDP `a=rtcp`, RFC 3605);
    /// `None`: the media address and the RTP port + 1.
    public_rtcp: Vec<Option<SocketAddr>>,
}

impl UserAgent {
    /// Creates the user agent; starts registering when the account says so.
    pub fn new(cfg: UaConfig, now: Instant) -> UserAgent {
        let lines = cfg.rtp_ports.iter().map(|_| None).collect();
        let mut ua = UserAgent {
            tokens: Tokens::new(&cfg.seed),
            clients: HashMap::new(),
            auth: client_auth::ClientAuth::default(),
            servers: HashMap::new(),
            accounts: accounts::states(&cfg.account, &cfg.others, cfg.local),
            default_account: 0,
            lines,
            detached: Vec::new(),
            acks: Vec::new(),
            selected: 0,
            consult: None,
            conference: None,
            conference_wanted: false,
            happenings: happening::Happenings::new(),
            watch_left_out: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            media_orders: VecDeque::new(),
            quit_deadline: None,
            stopped: false,
            record_auto: false,
            subscriptions: Vec::new(),
            pickups: Vec::new(),
            public_rtcp: cfg.rtp_ports.iter().map(|_| None).collect(),
            srtp_keys: cfg
                .rtp_ports
                .iter()
                .map(|_| [[0; sdes::KEY_LEN]; 2])
                .collect(),
            resolves: VecDeque::new(),
            parking: attendant::Parking::default(),
            answering: answer_policy::Answering::default(),
            call_lookups: Vec::new(),
            cfg,
        };
        for index in 0..ua.account_count() {
            if ua.account(index).register {
                let call_id = format!("{}@switchboard", ua.tokens.hex());
                let tag = ua.tokens.hex();
                let expires = ua.account(index).expires;
                ua.accounts[index].registration = Some(Registration::new(call_id, tag, expires));
                ua.send_register(now, index);
            }
            if let Some((interval, dst)) = ua.account(index).keepalive.zip(ua.keepalive_dst(index))
            {
                ua.accounts[index].keepalive = Some(Keepalive::new(interval, dst, now));
            }
        }
        ua.look_up_servers();
        for ext in ua.cfg.blf.clone().iter().take(MAX_BLF) {
            ua.subscribe(now, ext, subscription::Purpose::Blf);
        }
        ua
    }

    // ---- getters ----

    /// The configuration in use.
    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }

    /// The selected line (1-based).
    pub fn selected_line(&self) -> LineNo {
        line_no(self.selected)
    }

    /// True after `quit` has finished (calls ended, binding removed).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// How much state the core holds now.
    pub fn census(&self) -> Census {
        Census {
            client_transactions: self.clients.len(),
            server_transactions: self.servers.len(),
            calls: self.calls().count(),
            subscriptions: self.subscriptions.len(),
            acks: self.acks.len(),
            pickups: self.pickups.len(),
        }
    }

    // ---- inputs ----

    /// Feeds one received SIP message (a datagram, or one framed TCP message).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        transport: Transport,
        src: SocketAddr,
        data: &[u8],
    ) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive (RFC 5626 CRLF)
        }
        let msg = match Message::parse(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%src, error = %e, "dropping malformed SIP message");
                self.reject_malformed(transport, src, data, &e.to_string());
                return;
            }
        };
        if msg.code().is_some() {
            self.on_response(now, msg);
        } else {
            self.on_request(now, transport, src, msg);
        }
        self.settle(now);
    }

    /// Runs every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut timed_out = Vec::new();
        for (key, (tx, owner)) in &mut self.clients {
            if tx.deadline().is_some_and(|d| d <= now) && tx.on_timeout(now, &mut out) {
                timed_out.push((key.clone(), owner.clone()));
            }
        }
        for server in self.servers.values_mut() {
            if server.tx.deadline().is_some_and(|d| d <= now) {
                server.tx.on_timeout(now, &mut out);
            }
        }
        self.transmits.extend(out);
        for (key, owner) in timed_out {
            let request = self.clients.get(&key).map(|(tx, _)| tx.request().clone());
            if let Some(request) = request {
                let request = self.auth.as_owner_knows(&key, &owner, request);
                match owner {
                    Owner::Register(index) => self.on_register_timeout(now, index),
                    Owner::Call(call_id) => self.on_call_tx_timeout(now, &call_id, &request),
                    Owner::Subscription(call_id) => self.on_subscribe_timeout(now, &call_id),
                }
            }
        }
        for index in 0..self.accounts.len() {
            let due = &self.accounts[index].registration;
            if due.as_ref().is_some_and(|r| r.due(now)) {
                self.on_register_timer(now, index);
            }
            let keepalive = self.accounts[index].keepalive.as_mut();
            if let Some(ping) = keepalive.and_then(|k| k.on_timeout(now)) {
                self.transmits.push_back(Transmit {
                    transport: self.cfg.transport,
                    dst: ping,
                    payload: keepalive::PING.to_vec(),
                });
            }
        }
        let due: Vec<String> = self
            .calls()
            .filter(|c| c.deadline().is_some_and(|d| d <= now))
            .map(|c| c.call_id.clone())
            .collect();
        for call_id in due {
            self.on_call_timer(now, &call_id);
        }
        self.on_subscription_timers(now);
        self.on_answer_policy_timer(now);
        self.acks.retain(|a| a.until() > now);
        if self.acks.capacity() > SLACK_FLOOR && self.acks.len() * 4 < self.acks.capacity() {
            self.acks.shrink_to(self.acks.len() * 2);
        }
        if self.quit_deadline.is_some_and(|d| d <= now) {
            self.finish_quit();
        }
        self.settle(now);
    }

    /// The stream connection to `peer` closed, or could not be opened (TCP). Calls still
    /// dialing there fail over to the next target of their server. When `peer` is
    /// where REGISTER goes, the binding is renewed at once on a new connection, or, if the
    /// REGISTER in flight was lost with the connection, counted as a failure and retried after
    /// the backoff.
    pub fn handle_connection_lost(&mut self, now: Instant, peer: SocketAddr) {
        if self.cfg.transport.is_reliable() {
            self.calls_lost_connection(now, peer);
        }
        if !self.cfg.transport.is_reliable() {
            return;
        }
        for index in 0..self.accounts.len() {
            if self.register_dst(index) == Some(peer) {
                self.on_registrar_connection_lost(now, index, None);
            }
        }
        self.settle(now);
    }

    /// The stream connection to `peer` could not be set up, for `reason` (a TLS handshake
    /// that failed: an untrusted certificate, a name that does not match). Like
    /// [`UserAgent::handle_connection_lost`], but a REGISTER in flight fails with `reason`.
    pub fn handle_connection_failed(&mut self, now: Instant, peer: SocketAddr, reason: &str) {
        if self.cfg.transport.is_reliable() {
            self.calls_lost_connection(now, peer);
        }
        if !self.cfg.transport.is_reliable() {
            return;
        }
        for index in 0..self.accounts.len() {
            if self.register_dst(index) == Some(peer) {
                self.on_registrar_connection_lost(now, index, Some(reason));
            }
        }
        self.settle(now);
    }

    /// The media of a call has been silent for `seconds` while it should flow both ways:
    /// the call is ended with BYE and a reason saying so. Held calls are left alone.
    pub fn handle_media_timeout(&mut self, now: Instant, call_id: &str, seconds: u64) {
        let talking = self
            .calls()
            .any(|c| c.call_id == call_id && c.is_established() && c.expects_audio());
        if !talking {
            return;
        }
        tracing::warn!(call_id, seconds, "no RTP from the far end; ending the call");
        self.end_call(
            now,
            call_id,
            &format!("no audio from the far end for {seconds} s"),
        );
        self.settle(now);
    }

    /// Carries out an operator command.
    pub fn command(&mut self, now: Instant, cmd: Command) {
        if self.quit_deadline.is_some() || self.stopped {
            return;
        }
        if self.answer_policy_command(now, &cmd) {
            return self.settle(now);
        }
        match cmd {
            Command::Dial(target) => self.dial(now, &target),
            Command::DialVia { account, target } => self.dial_via(now, &account, &target),
            Command::Answer(line) => self.answer(now, line),
            Command::Decline(line) => self.decline(now, line),
            Command::Hangup(line) => self.hangup(now, line),
            Command::Hold(line) => self.set_hold(now, line, true),
            Command::Resume(line) => self.set_hold(now, line, false),
            Command::Line(n) => self.select_line(now, n),
            Command::Swap => {
                let next = (self.selected + 1) % self.lines.len().max(1);
                self.select_line(now, line_no(next));
            }
            Command::Dtmf(digits) => self.dtmf(now, &digits),
            Command::Mute => self.mute(),
            Command::Transfer(target) => match self.selected_pbx_codes() {
                Some(codes) => self.pbx_blind(now, &codes, &target),
                None => self.blind_transfer(now, &target),
            },
            Command::Consult(target) => match self.selected_pbx_codes() {
                Some(codes) => self.pbx_consult(now, &codes, &target),
                None => self.consult(now, &target),
            },
            Command::Complete if self.conference.is_some() => self.leave_conference(now),
            Command::Complete if self.selected_pbx_codes().is_some() => self.pbx_complete(now),
            Command::Complete => self.complete(now),
            Command::Cancel => match self.selected_pbx_codes() {
                Some(codes) => self.pbx_cancel(now, &codes),
                None => self.cancel_consult(now),
            },
            Command::Record(start, line) => self.record(start, line),
            Command::Conference => self.conference(now),
            Command::Pickup(ext) => self.pickup(now, &ext),
            Command::Watch(exts) => self.watch(now, &exts),
            Command::Quit => {
                self.close_wrapups_for_quit(now);
                self.quit(now);
            }
            // The answering policy's (`answer_policy_command` above).
            Command::Dnd(_) | Command::Wrapup(_) => {}
            command @ (Command::Favourite(_)
            | Command::Favourites
            | Command::Park(_)
            | Command::Unpark(_)) => self.attendant_command(now, command),
            Command::Account(name) => self.select_account(&name),
        }
        self.settle(now);
    }

    // ---- outputs ----

    /// The next thing to do: messages to send first, then events for the operator, then
    /// orders for the media engine, and last, once those are all taken, when
    /// [`UserAgent::handle_timeout`] must be called next. `None`: nothing queued and no
    /// deadline. Call it after every input until it returns `Timeout` or `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(transmit) = self.transmits.pop_front() {
            // Every message of every unit test meets the RFC tables.
            #[cfg(test)]
            conformance::assert_conformant(&transmit.payload);
            return Some(Output::Transmit(transmit));
        }
        if let Some(resolve) = self.resolves.pop_front() {
            return Some(Output::Resolve(resolve));
        }
        if let Some(event) = self.events.pop_front() {
            return Some(Output::Event(event));
        }
        if let Some(order) = self.media_orders.pop_front() {
            return Some(Output::Media(order));
        }
        self.next_timeout().map(Output::Timeout)
    }

    /// When `handle_timeout` must be called next.
    fn next_timeout(&self) -> Option<Instant> {
        earliest(
            self.clients
                .values()
                .map(|(tx, _)| tx.deadline())
                .chain(self.servers.values().map(|s| s.tx.deadline()))
                .chain(self.calls().map(Call::deadline))
                .chain([
                    self.accounts
                        .iter()
                        .filter_map(|a| a.registration.as_ref().and_then(Registration::deadline))
                        .min(),
                    self.accounts
                        .iter()
                        .filter_map(|a| a.keepalive.as_ref().and_then(Keepalive::deadline))
                        .min(),
                    self.quit_deadline,
                    self.subscriptions_deadline(),
                    self.acks.iter().map(call::SentAck::until).min(),
                    self.answering.deadline(),
                ]),
        )
    }

    // ---- plumbing shared by the usages ----

    /// Every call, on a line or detached.
    fn calls(&self) -> impl Iterator<Item = &Call> {
        self.lines.iter().flatten().chain(&self.detached)
    }

    fn call_mut(&mut self, call_id: &str) -> Option<&mut Call> {
        self.lines
            .iter_mut()
            .flatten()
            .chain(&mut self.detached)
            .find(|c| c.call_id == call_id)
    }

    fn emit(&mut self, ev: Event) {
        // A call coming back from park is known by its account's park extension.
        let park = match &ev {
            Event::Incoming { call_id, .. } => self.call_policy(call_id).attendant.park.clone(),
            _ => None,
        };
        let follow = self.parking.follow(&ev, park.as_deref());
        self.events.push_back(ev);
        self.events.extend(follow);
    }

    fn error(&mut self, message: impl Into<String>) {
        self.emit(Event::Error {
            message: message.into(),
        });
    }

    fn new_branch(&mut self) -> String {
        format!("z9hG4bK{}", self.tokens.hex())
    }

    fn new_tag(&mut self) -> String {
        self.tokens.hex()[..10].to_string()
    }

    /// A Via value for a new request, with a fresh branch. Over TLS it carries `alias`
    /// (RFC 5923): we accept no TLS connections, so the far end must send its requests back
    /// on ours.
    fn via(&mut self, account: usize) -> String {
        let branch = self.new_branch();
        let alias = if self.cfg.transport == Transport::Tls {
            ";alias"
        } else {
            ""
        };
        format!(
            "SIP/2.0/{} {};branch={branch};rport{alias}",
            self.cfg.transport.via_token(),
            self.local_of(account),
        )
    }

    /// Our address in account `account`'s Via and Contact.
    fn local_of(&self, account: usize) -> SocketAddr {
        self.accounts
            .get(account)
            .map_or(self.cfg.local, |a| a.local)
    }

    /// Account `account`'s Contact URI (its own user part): `sips:` over TLS.
    fn contact_uri(&self, account: usize) -> String {
        let (scheme, transport) = match self.cfg.transport {
            Transport::Udp => ("sip", ""),
            Transport::Tcp => ("sip", ";transport=tcp"),
            Transport::Tls => ("sips", ""),
        };
        let user = self
            .accounts
            .get(account)
            .map_or(&self.cfg.account.user, |a| &a.contact_user);
        format!("{scheme}:{user}@{}{transport}", self.local_of(account))
    }

    /// The address-of-record of account `index` as a name-addr (without tag).
    fn name_addr_of(&self, index: usize) -> msg::NameAddr {
        let account = self.account(index);
        let mut na = msg::NameAddr::new(&format!("sip:{}@{}", account.user, account.domain));
        na.display = account.display_name.clone();
        na
    }

    /// Headers every request and response of ours carries.
    fn common_headers(&self, b: Builder) -> Builder {
        b.header("User-Agent", &self.cfg.user_agent)
    }

    /// Sends a new request in a new client transaction.
    fn send_request(
        &mut self,
        now: Instant,
        dst: SocketAddr,
        bytes: Vec<u8>,
        owner: Owner,
    ) -> Option<TxKey> {
        let Ok(request) = Message::parse(&bytes) else {
            tracing::error!("built an unparsable request; not sent");
            return None;
        };
        let (request, bytes) = self.with_known_credentials(&owner, dst, request, bytes);
        let key = TxKey::of(&request)?;
        let account = self.account_index_of(&owner);
        self.auth.sent_through(key.clone(), account);
        let wire = Transmit {
            transport: self.cfg.transport,
            dst,
            payload: bytes,
        };
        self.transmits.push_back(wire.clone());
        if request.method() != Method::Ack {
            let tx = ClientTx::new(request, wire, self.cfg.timers, now);
            self.clients.insert(key.clone(), (tx, owner));
        }
        Some(key)
    }

    /// Where an out-of-dialog request for `uri` goes (through the main account).
    fn first_hop(&self, uri: &str) -> Option<SocketAddr> {
        self.first_hop_via(0, uri)
    }

    /// Where an out-of-dialog request for `uri` through account `index` goes: the outbound
    /// proxy, else the registrar of a registering account or of any account but the first (one
    /// that does not register still sends its calls there), else the URI's host.
    fn first_hop_via(&self, index: usize, uri: &str) -> Option<SocketAddr> {
        let account = self.account(index);
        if account.outbound_proxy.is_some() {
            return account.proxy_addr();
        }
        if account.register || index > 0 {
            if let Some(addr) = account.registrar_addr {
                return Some(addr);
            }
        }
        msg::SipUri::parse(uri)?.socket_addr()
    }

    /// Where account `index`'s REGISTER goes: the outbound proxy, else the registrar.
    fn register_dst(&self, index: usize) -> Option<SocketAddr> {
        let account = self.account(index);
        match &account.outbound_proxy {
            Some(_) => account.proxy_addr(),
            None => account
                .registrar_addr
                .or_else(|| msg::SipUri::parse(&account.registrar).and_then(|u| u.socket_addr())),
        }
    }

    /// Where keep-alives go: the outbound proxy, else the registrar of a registering account.
    fn keepalive_dst(&self, index: usize) -> Option<SocketAddr> {
        let account = self.account(index);
        match &account.outbound_proxy {
            Some(_) => account.proxy_addr(),
            None if account.register => self.register_dst(index),
            None => None,
        }
    }

    /// True when `accept_from` lets `src` start this call with us. An INVITE whose Replaces
    /// names one of our dialogs is always let through: knowing the dialog's Call-ID and both
    /// tags is its credential (RFC 3891 §6.1), and transferees send it straight to our Contact.
    /// The servers trusted are those of every account: the call is for account `account`.
    fn accepts_calls_from(&self, src: SocketAddr, invite: &Message, account: usize) -> bool {
        if self.account(account).accept_from == AcceptFrom::Any
            || matches!(self.replaced_call(invite), Ok(Some(_)))
        {
            return true;
        }
        let trusted: Vec<IpAddr> = (0..self.account_count())
            .flat_map(|i| self.servers_of(i))
            .collect();
        trusted.is_empty() || trusted.contains(&src.ip())
    }

    /// Answers a request through its server transaction; returns what was
    /// sent. A response that needs a To tag gets the call's tag (or a new one),
    /// and responses to INVITE copy Record-Route (§12.1.1).
    fn respond(
        &mut self,
        now: Instant,
        req: &Message,
        code: u16,
        build: impl FnOnce(Builder) -> Builder,
    ) -> Option<Transmit> {
        let key = TxKey::of(req)?;
        let tag = if req.to.tag().is_none() && code > 100 {
            let call_tag = self
                .calls()
                .find(|c| c.answers(req))
                .map(|c| c.local_tag().to_string());
            Some(call_tag.unwrap_or_else(|| self.new_tag()))
        } else {
            None
        };
        let server = self.servers.get_mut(&key)?;
        let mut b = Builder::response(req, code, tag.as_deref());
        if req.method() == Method::Invite && (101..300).contains(&code) {
            for rr in req.headers("Record-Route") {
                b = b.header("Record-Route", rr);
            }
        }
        b = build(b);
        b = b.header("User-Agent", &self.cfg.user_agent);
        let wire = Transmit {
            transport: server.reply_to.0,
            dst: server.reply_to.1,
            payload: b.build(),
        };
        let mut out = Vec::new();
        server.tx.respond(code, wire.clone(), now, &mut out);
        self.transmits.extend(out);
        Some(wire)
    }

    /// Answers a request that parsed badly (§8.2, §21.4.1, §21.5.6): 505 for
    /// another SIP version, 501 for a method we do not know, else 400 with
    /// a Warning. Needs a Via to answer to; ACK and responses get silence.
    fn reject_malformed(&mut self, transport: Transport, src: SocketAddr, data: &[u8], why: &str) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let first = text.lines().next().unwrap_or_default();
        let parts: Vec<&str> = first.split(' ').collect();
        let [method, _uri, version] = parts[..] else {
            return;
        };
        if first.starts_with("SIP/") || !version.starts_with("SIP/") || method == "ACK" {
            return;
        }
        let (status, why) = if version != "SIP/2.0" {
            (
                "505 Version Not Supported",
                format!("{version} is not supported"),
            )
        } else if method.parse::<Method>().is_err() {
            (
                "501 Not Implemented",
                format!("{method} is not implemented"),
            )
        } else {
            ("400 Bad Request", why.to_string())
        };
        let tag = self.new_tag();
        let mut b = format!("SIP/2.0 {status}\r\n");
        let mut echoed: Vec<String> = Vec::new();
        let mut has_via = false;
        for line in text.lines().skip(1) {
            if line.is_empty() {
                break;
            }
            let Some((name, _)) = line.split_once(':') else {
                continue;
            };
            let name = msg::canonical_name(name);
            let repeated = name != "Via" && echoed.contains(&name);
            if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name.as_str()) && !repeated {
                has_via |= name == "Via";
                echoed.push(name.clone());
                match line
                    .split_once(':')
                    .map(|(_, v)| msg::NameAddr::parse(v.trim()))
                {
                    // §8.2.6.2: a final response carries a To tag.
                    Some(Some(mut to)) if name == "To" && to.tag().is_none_or(str::is_empty) => {
                        to.params.set("tag", Some(&tag));
                        b.push_str(&format!("To: {to}"));
                    }
                    _ => b.push_str(line),
                }
                b.push_str("\r\n");
            }
        }
        if !has_via {
            return;
        }
        if status.starts_with("501") {
            b.push_str(&format!("Allow: {ALLOW}\r\n"));
        }
        let why: String = why.chars().filter(|c| !c.is_control()).take(100).collect();
        b.push_str(&format!(
            "Warning: 399 switchboard \"{}\"\r\n",
            why.replace('"', "'")
        ));
        b.push_str("Content-Length: 0\r\n\r\n");
        self.transmits.push_back(Transmit {
            transport,
            dst: src,
            payload: b.into_bytes(),
        });
    }

    fn on_response(&mut self, now: Instant, resp: Message) {
        let Some(key) = TxKey::of(&resp) else { return };
        let mut out = Vec::new();
        let is_invite_2xx =
            resp.method() == Method::Invite && resp.code().is_some_and(|c| (200..300).contains(&c));
        let mut absorbed_2xx = None;
        let deliver = match self.clients.get_mut(&key) {
            Some((tx, owner)) => match tx.on_response(&resp, now, &mut out) {
                ClientOutcome::Deliver => {
                    Some((owner.clone(), tx.request().clone(), tx.destination()))
                }
                ClientOutcome::Absorb => {
                    // A 2xx after this INVITE already had a final answer (a 491, say, when a
                    // relay made the far end see two INVITEs): ACKed all the same, else the
                    // far end resends it for 32 s and refuses every new re-INVITE meanwhile.
                    if is_invite_2xx {
                        absorbed_2xx = Some((tx.request().clone(), tx.destination()));
                    }
                    None
                }
            },
            None => {
                // A retransmitted 2xx to an INVITE whose transaction is gone:
                // the call re-sends its ACK (§13.2.2.4).
                if resp.method() == Method::Invite
                    && resp.code().is_some_and(|c| (200..300).contains(&c))
                {
                    self.on_stray_invite_2xx(now, &resp);
                }
                None
            }
        };
        self.transmits.extend(out);
        if let Some((request, sent_to)) = absorbed_2xx {
            self.ack_2xx(now, &request, &resp, sent_to);
        }
        if let Some((owner, request, sent_to)) = deliver {
            if request.method() == Method::Invite
                && resp.code().is_some_and(|c| (200..300).contains(&c))
            {
                // Every 2xx is ACKed, whatever became of its call.
                self.ack_2xx(now, &request, &resp, sent_to);
            }
            if self.answer_challenge(now, &key, &owner, &request, &resp, sent_to) {
                return;
            }
            let request = self.auth.as_owner_knows(&key, &owner, request);
            match owner {
                Owner::Register(index) => self.on_register_response(now, index, &request, &resp),
                Owner::Call(call_id) => self.on_call_response(now, &call_id, &request, &resp),
                Owner::Subscription(call_id) => {
                    self.on_subscribe_response(now, &call_id, &request, &resp)
                }
            }
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        transport: Transport,
        src: SocketAddr,
        mut req: Message,
    ) {
        // RFC 3581: record where the request really came from.
        if let Some((name, value)) = req.headers.iter_mut().find(|(k, _)| k == "Via") {
            let mut via = req.via.clone();
            via.params.set("received", Some(&src.ip().to_string()));
            if via.params.has("rport") {
                via.params.set("rport", Some(&src.port().to_string()));
            }
            debug_assert_eq!(name, "Via");
            *value = via.to_string();
            req.via = via;
        }
        let Some(key) = TxKey::of(&req) else {
            tracing::warn!(%src, "request without branch dropped");
            return;
        };
        if req.cseq.1 != req.method() && req.method() != Method::Ack {
            let why = format!("CSeq method {} does not match {}", req.cseq.1, req.method());
            let tag = req.to.tag().is_none().then(|| self.new_tag());
            let raw = Builder::response(&req, 400, tag.as_deref())
                .header("Warning", format!("399 switchboard \"{why}\""))
                .build();
            self.transmits.push_back(Transmit {
                transport,
                dst: src,
                payload: raw,
            });
            return;
        }
        if req.method() == Method::Ack {
            match self.servers.get_mut(&key) {
                Some(server) => server.tx.on_ack(now),
                None => self.on_ack(now, &req),
            }
            return;
        }
        if let Some(server) = self.servers.get(&key) {
            let mut out = Vec::new();
            server.tx.on_retransmission(&mut out);
            self.transmits.extend(out);
            return;
        }
        self.servers.insert(
            key,
            Server {
                tx: ServerTx::new(req.method(), transport.is_reliable(), self.cfg.timers),
                reply_to: (transport, src),
            },
        );
        if req.method() == Method::Invite {
            self.respond(now, &req, 100, |b| b);
        }
        if req.method() == Method::Notify {
            if let Some(index) = self.subscription_of(&req) {
                self.on_subscription_notify(now, index, &req);
                return;
            }
        }
        let in_dialog = req.to.tag().is_some();
        let account = self.account_for_invite(src, &req);
        match req.method() {
            Method::Invite if !in_dialog && !self.accepts_calls_from(src, &req, account) => {
                tracing::warn!(%src, "INVITE from outside the registrar refused (accept_from)");
                self.respond(now, &req, 403, |b| {
                    b.header(
                        "Warning",
                        "399 switchboard \"calls are accepted only through the registrar\"",
                    )
                });
            }
            Method::Invite if !in_dialog => self.on_new_invite(now, &req, account),
            Method::Cancel => self.on_cancel(now, &req),
            Method::Options if !in_dialog => {
                let contact = self.contact_uri(account);
                self.respond(now, &req, 200, |b| {
                    b.header("Contact", format!("<{contact}>"))
                        .header("Allow", ALLOW)
                        .header("Accept", ACCEPT)
                        .header("Supported", SUPPORTED)
                });
            }
            _ if in_dialog => self.on_in_dialog_request(now, &req),
            Method::Bye | Method::Notify => {
                self.respond(now, &req, 481, |b| b);
            }
            _ => {
                self.respond(now, &req, 405, |b| b.header("Allow", ALLOW));
            }
        }
    }

    /// Drops finished transactions and ended calls.
    fn collect_finished(&mut self) {
        self.clients.retain(|_, (tx, _)| !tx.is_terminated());
        let clients = &self.clients;
        self.auth.retain(|key| clients.contains_key(key));
        self.servers.retain(|_, s| !s.tx.is_terminated());
        give_back_map(&mut self.clients);
        give_back_map(&mut self.servers);
        for slot in &mut self.lines {
            if slot.as_ref().is_some_and(Call::is_gone) {
                if let Some(call) = slot.take() {
                    self.detached.push(call);
                }
            }
        }
        self.detached.retain(|c| !c.is_ended());
        self.forget_pickups();
        if self.quit_deadline.is_some()
            && self.lines.iter().all(Option::is_none)
            && self.detached.is_empty()
            && self
                .accounts
                .iter()
                .all(|a| a.registration.as_ref().is_none_or(Registration::is_idle))
            && self.subscriptions_finished()
        {
            self.finish_quit();
        }
    }

    fn quit(&mut self, now: Instant) {
        // A transfer still listening after its call ended has nobody left to tell.
        for call in self.lines.iter_mut().flatten().chain(&mut self.detached) {
            if call.is_gone() {
                call.transfer = None;
            }
        }
        let ids: Vec<String> = self.calls().map(|c| c.call_id.clone()).collect();
        for id in ids {
            self.end_call(now, &id, "switchboard is shutting down");
        }
        self.unregister(now);
        self.unsubscribe_all(now);
        for state in &mut self.accounts {
            state.keepalive = None;
        }
        // Give BYE and un-REGISTER a bounded time to be answered.
        self.quit_deadline = Some(now + std::time::Duration::from_secs(4));
        self.collect_finished();
    }

    fn finish_quit(&mut self) {
        if !self.stopped {
            self.stopped = true;
            self.quit_deadline = None;
            self.emit(Event::Stopped);
        }
    }
}

/// A line index (0-based) as the operator's number (1-based).
fn line_no(index: usize) -> LineNo {
    LineNo::try_from(index + 1).unwrap_or(LineNo::MAX)
}
