//! The user's configuration: a serde mirror of `config.example.toml` and where to find it.
//!
//! This module owns reading, checking and defaulting the TOML file (`[general]`, `[network]`,
//! `[[account]]`, `[codecs]`; `[audio]` and `[media]` live in `media.rs`, `[transfer]` in
//! `transfer.rs`, `[wrapup]` and the account's answering keys in `answer.rs`, `[history]` in
//! `history.rs`, `[recording]` in `recording.rs`, `[hooks]` in `hooks.rs`, `[[route]]` in
//! `routes.rs`, `[[favourite]]` in `favourites.rs`, `[ui]` and `[keys]` in `ui.rs`,
//! `[directory]` in `directory.rs`), the built-in
//! configuration used when there is no file, and the
//! XDG location of the file, and the second pass of checking: the values against each other
//! (expiry range, URIs, duplicate names, port range, …), leaving out keys the first pass
//! dropped. Every problem is reported as `file:line:col: key: message` by the TOML
//! diagnostics engine in `diagnostics.rs` (the first pass, serde with `deny_unknown_fields`
//! read again after dropping each bad key, and the positions), so a person can fix the file
//! without guessing, and every problem comes out in one run.
//!
//! This module must not open sockets, start the user agent or log: it only turns text into a
//! checked [`Config`]. The one side effect is [`Account::secret`], which runs the user's
//! `password_cmd` when asked to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod answer;
mod diagnostics;
mod directory;
pub mod edit;
mod favourites;
pub mod first_start;
mod history;
mod hooks;
mod media;
mod recording;
mod routes;
mod transfer;
mod ui;

pub use answer::{AutoAnswer, Wrapup};
pub use diagnostics::{ConfigError, ConfigErrors};
pub use directory::{Directory, Extension};
pub use favourites::{favourite_key, Favourite, MAX_FAVOURITES};
pub use history::History;
pub use hooks::Hooks;
pub use media::{Audio, AudioBackend, AudioHost, DtmfMethod, Media};
pub use recording::{Recording, RecordingFormat};
pub use routes::Route;
pub use transfer::{AcceptRefer, AttendedFallback, BlindTransfer, FavouriteAction, Transfer};
pub use ui::{KeyCode, KeySpec, Keys, NamedKey, Ui};

use diagnostics::{read_all, under, Problem, SpanIndex};
use serde::Deserialize;

/// The default SIP port, used by [`Network::default`].
const DEFAULT_SIP_PORT: u16 = 5060;
/// The allowed range for [`Account::expires`], in seconds.
const EXPIRES_RANGE: std::ops::RangeInclusive<u32> = 60..=86400;
/// Level names accepted in [`General::log_level`] (tracing's `EnvFilter` vocabulary).
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
/// The Opus bitrates libopus accepts, in bits per second.
const OPUS_BITRATE_RANGE: std::ops::RangeInclusive<u32> = 6_000..=510_000;

/// The whole configuration file.
///
/// Every section is optional; a missing section takes its defaults. An empty file is a valid
/// configuration with no accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[general]`: logging and identification.
    #[serde(default)]
    pub general: General,
    /// `[network]`: the SIP socket and the RTP port range.
    #[serde(default)]
    pub network: Network,
    /// `[[account]]` tables, in file order.
    #[serde(default, rename = "account")]
    pub accounts: Vec<Account>,
    /// `[codecs]`: audio codec preference and Opus settings.
    #[serde(default)]
    pub codecs: Codecs,
    /// `[audio]`: where call audio comes from and goes to.
    #[serde(default)]
    pub audio: Audio,
    /// `[media]`: jitter buffer and DTMF.
    #[serde(default)]
    pub media: Media,
    /// `[transfer]`: how transfers are carried out.
    #[serde(default)]
    pub transfer: Transfer,
    /// `[history]`: where the call history is kept.
    #[serde(default)]
    pub history: History,
    /// `[recording]`: where and how calls are recorded.
    #[serde(default)]
    pub recording: Recording,
    /// `[hooks]`: commands run on call events.
    #[serde(default)]
    pub hooks: Hooks,
    /// `[[route]]` tables: outbound routes, in file order (the first match wins).
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// `[ui]`: how the screen behaves.
    #[serde(default)]
    pub ui: Ui,
    /// `[keys]`: which key runs which action on the screen.
    #[serde(default)]
    pub keys: Keys,
    /// `[directory]`: contacts for the number picker.
    #[serde(default)]
    pub directory: Directory,
    /// `[[favourite]]` tables: the favourites panel, in file order.
    #[serde(default, rename = "favourite")]
    pub favourites: Vec<Favourite>,
    /// `[wrapup]`: the after-call step (disposition codes and a note).
    #[serde(default)]
    pub wrapup: Wrapup,
}

/// The `[general]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct General {
    /// Where to write the log; a leading `~/` is the home directory. `None`: the caller picks a
    /// file in the XDG state directory.
    pub log_file: Option<PathBuf>,
    /// A tracing filter: a level (`off`, `error`, `warn`, `info`, `debug`, `trace`) or a
    /// comma-separated list of `level` and `target=level` directives. Default `"info"`.
    pub log_level: String,
    /// The `User-Agent` header value; `None` lets the SIP layer use its own.
    pub user_agent: Option<String>,
}

impl Default for General {
    fn default() -> Self {
        Self {
            log_file: None,
            log_level: "info".to_owned(),
            user_agent: None,
        }
    }
}

/// The `[network]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Network {
    /// Local address of the SIP socket, written `"ip:port"` in TOML (`"[::1]:5060"` for IPv6;
    /// `"[::]:5060"` is dual-stack). Port 0 means any free port. Default `0.0.0.0:5060`.
    pub bind: SocketAddr,
    /// Lowest local port used for RTP. Default 16384.
    pub rtp_port_min: u16,
    /// Highest local port used for RTP; greater than `rtp_port_min`. Default 32766.
    pub rtp_port_max: u16,
    /// The IP address put in SDP for call audio; `None`: the address SIP advertises.
    pub media_address: Option<IpAddr>,
    /// DNS servers (`"ip:port"`) that look up registrars by name (RFC 3263 NAPTR, SRV,
    /// A/AAAA); empty: the system's resolver configuration (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_SIP_PORT),
            rtp_port_min: 16384,
            rtp_port_max: 32766,
            media_address: None,
            dns_servers: Vec::new(),
        }
    }
}

/// The transport used to reach an account's registrar or proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// SIP over UDP (`"udp"`), the default.
    #[default]
    Udp,
    /// SIP over TCP (`"tcp"`).
    Tcp,
    /// SIP over TLS (`"tls"`): `sips:`, port 5061 by default, the server's certificate checked.
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// One `[[account]]` table: an identity the phone can register and call from.
///
/// `Debug` is written by hand so that a logged account never shows its password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Short name used to pick the account (`:route`, the status bar); unique among accounts.
    pub name: String,
    /// The display name put in `From` headers.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The user part of the address of record.
    pub user: String,
    /// The host part of the address of record (no `sip:` prefix).
    pub domain: String,
    /// The registrar URI (`sip:` or `sips:`, no user part); `None` means `sip:{domain}`.
    #[serde(default)]
    pub registrar: Option<String>,
    /// A SIP URI every request is sent to when set.
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// Transport to the registrar or proxy. Default UDP.
    #[serde(default)]
    pub transport: Transport,
    /// Digest authentication user name; `None` means [`Account::user`].
    #[serde(default)]
    pub auth_user: Option<String>,
    /// The digest password. At most one of `password` and `password_cmd` is set.
    #[serde(default)]
    pub password: Option<String>,
    /// A shell command (run with `sh -c`) whose standard output, less its trailing newline, is
    /// the password. See [`Account::secret`].
    #[serde(default)]
    pub password_cmd: Option<String>,
    /// Whether to REGISTER this account. Default `true`.
    #[serde(default = "default_register")]
    pub register: bool,
    /// Requested registration lifetime in seconds, 60..=86400. Default 600.
    #[serde(default = "default_expires")]
    pub expires: u32,
    /// How transfers are made: SIP REFER, or the PBX's DTMF feature codes.
    #[serde(default)]
    pub transfer_method: TransferMethod,
    /// DTMF feature code for a blind transfer; `{target}` is the number.
    #[serde(default = "default_blind_code")]
    pub transfer_blind_code: String,
    /// DTMF feature code for an attended transfer; `{target}` is the number.
    #[serde(default = "default_attended_code")]
    pub transfer_attended_code: String,
    /// DTMF feature code that ends an attended transfer's consultation.
    #[serde(default = "default_cancel_code")]
    pub transfer_cancel_code: String,
    /// Whether REFERs carry `Referred-By` with our address. Default `true`.
    #[serde(default = "default_register")]
    pub referred_by: bool,
    /// Seconds between CRLF keep-alives to the registrar or outbound proxy, 0..=3600;
    /// 0 turns them off. Default 25, below common NAT routers' UDP timeouts (30 s).
    #[serde(default = "default_keepalive")]
    pub keepalive: u32,
    /// Who may call us: `"registrar"` (only the registrar / outbound proxy) or `"any"`.
    /// `None`: `registrar` when the account registers, `any` otherwise.
    #[serde(default)]
    pub accept_from: Option<AcceptFrom>,
    /// Which calls are answered without the operator: `"off"`, `"on"`, `"intercom"`.
    #[serde(default)]
    pub auto_answer: AutoAnswer,
    /// Milliseconds an auto-answered call rings first, 0 to 60000. Default 0.
    #[serde(default)]
    pub auto_answer_delay: u32,
    /// Auto-answer a call while another one is up. Default `false`.
    #[serde(default)]
    pub auto_answer_second: bool,
    /// The status new calls get while do-not-disturb is on: 486 (default) or 480.
    #[serde(default = "answer::default_dnd_response")]
    pub dnd_response: u16,
    /// The PBX feature code `dnd on` dials instead of refusing calls here (e.g. `"*78"`).
    #[serde(default)]
    pub dnd_on_code: Option<String>,
    /// The PBX feature code `dnd off` dials (e.g. `"*79"`).
    #[serde(default)]
    pub dnd_off_code: Option<String>,
    /// NAT contact rewrite: `"auto"` (default) takes the public address the registrar reports
    /// (`received`/`rport`) into Contact, Via and SDP and registers it; `"off"` never does.
    #[serde(default)]
    pub nat: Nat,
    /// A STUN server (`stun:host[:port]`) asked for each RTP socket's public address at
    /// start (and again before a call when the answer is older than 20 s), which SDP then
    /// offers; `None`: SDP carries the local (or NAT-corrected) address.
    #[serde(default)]
    pub stun_server: Option<String>,
    /// How `pickup` works: `"dialog"` or `"code"`. `None`: `code` when [`Account::pickup_code`]
    /// is set, else `dialog`. See [`Account::pickup_method`].
    #[serde(default, rename = "pickup_method")]
    pub pickup_method_setting: Option<PickupMethod>,
    /// The PBX's call pickup feature code, dialled as a call; `{ext}` is the extension
    /// (e.g. `"*8{ext}"`).
    #[serde(default)]
    pub pickup_code: Option<String>,
    /// Extensions whose busy lamps are watched (dialog event package), at most [`MAX_BLF`].
    #[serde(default)]
    pub blf: Vec<String>,
    /// A PEM file of CA certificates that TLS servers' certificates are checked against,
    /// instead of the system's roots. Only used with `transport = "tls"`.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Media encryption (SRTP with SDES keys): `"off"`, `"optional"` or `"mandatory"`.
    #[serde(default)]
    pub srtp: Srtp,
    /// Offer and accept SDES keys even when SIP is not carried over TLS (the keys then cross
    /// the network in clear text). Default `false`.
    #[serde(default)]
    pub srtp_over_insecure: bool,
    /// The PBX's park extension: `park` blind-transfers the call there (`"700"`).
    #[serde(default)]
    pub park: Option<String>,
    /// What is dialled before a slot number to take a parked call back (`unpark 701`);
    /// default none: the slot itself is dialled, as Asterisk wants.
    #[serde(default)]
    pub unpark: String,
    /// Whether the account runs (registers, takes and places calls) alongside the others.
    /// Default `true`; `--account NAME` runs the named one alone, enabled or not.
    #[serde(default = "default_register")]
    pub enabled: bool,
}

/// The most extensions in [`Account::blf`]: the core's bound on busy lamps.
pub use crate::sip::MAX_BLF;

/// How an account picks up calls ringing elsewhere (`[[account]] pickup_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PickupMethod {
    /// Subscribe to the extension's dialog state and replace the ringing dialog (`"dialog"`);
    /// the feature code is dialled instead where the PBX does not tell enough, when one is set.
    Dialog,
    /// Dial the feature code (`"code"`).
    Code,
}

/// Whether an account's calls use SRTP (`[[account]] srtp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Srtp {
    /// Plain RTP only (`"off"`), the default.
    #[default]
    Off,
    /// Offer keys in an RTP/AVP offer and use SRTP when the peer answers with keys; accept
    /// plain calls too (`"optional"`).
    Optional,
    /// RTP/SAVP only: calls without keys are refused, clear media is never sent
    /// (`"mandatory"`).
    Mandatory,
}

/// Whether an account corrects its Contact behind NAT (`[[account]] nat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nat {
    /// Rewrite from the registrar's `received`/`rport` (`"auto"`), the default.
    #[default]
    Auto,
    /// Never (`"off"`).
    Off,
}

/// Who may send an account a new call (`[[account]] accept_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptFrom {
    /// Only the registrar and the outbound proxy (`"registrar"`); others get 403.
    Registrar,
    /// Anyone (`"any"`).
    Any,
}

impl Account {
    /// The effective pickup method: as set, else `code` when a pickup code is set, else
    /// `dialog`.
    pub fn pickup_method(&self) -> PickupMethod {
        self.pickup_method_setting
            .unwrap_or(match self.pickup_code {
                Some(_) => PickupMethod::Code,
                None => PickupMethod::Dialog,
            })
    }

    /// The effective [`Account::accept_from`]: as set, else `registrar` when registering.
    pub fn accepts_from(&self) -> AcceptFrom {
        self.accept_from.unwrap_or(if self.register {
            AcceptFrom::Registrar
        } else {
            AcceptFrom::Any
        })
    }
}

/// The allowed range for [`Account::keepalive`], in seconds.
const KEEPALIVE_RANGE: std::ops::RangeInclusive<u32> = 0..=3600;

fn default_keepalive() -> u32 {
    25
}

/// How an account's transfers are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferMethod {
    /// SIP REFER (`"refer"`), the default.
    #[default]
    Refer,
    /// The PBX's feature codes keyed as DTMF (`"dtmf"`).
    Dtmf,
}

fn default_blind_code() -> String {
    "#1{target}#".to_owned()
}

fn default_attended_code() -> String {
    "*2{target}#".to_owned()
}

fn default_cancel_code() -> String {
    "*1".to_owned()
}

fn default_register() -> bool {
    true
}

fn default_expires() -> u32 {
    600
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("display_name", &self.display_name)
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("registrar", &self.registrar)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("transport", &self.transport)
            .field("auth_user", &self.auth_user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_cmd", &self.password_cmd)
            .field("register", &self.register)
            .field("expires", &self.expires)
            .field("transfer_method", &self.transfer_method)
            .field("transfer_blind_code", &self.transfer_blind_code)
            .field("transfer_attended_code", &self.transfer_attended_code)
            .field("transfer_cancel_code", &self.transfer_cancel_code)
            .field("referred_by", &self.referred_by)
            .field("keepalive", &self.keepalive)
            .field("accept_from", &self.accept_from)
            .field("auto_answer", &self.auto_answer)
            .field("auto_answer_delay", &self.auto_answer_delay)
            .field("auto_answer_second", &self.auto_answer_second)
            .field("dnd_response", &self.dnd_response)
            .field("dnd_on_code", &self.dnd_on_code)
            .field("dnd_off_code", &self.dnd_off_code)
            .field("nat", &self.nat)
            .field("stun_server", &self.stun_server)
            .field("pickup_method", &self.pickup_method_setting)
            .field("pickup_code", &self.pickup_code)
            .field("blf", &self.blf)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("srtp", &self.srtp)
            .field("srtp_over_insecure", &self.srtp_over_insecure)
            .field("park", &self.park)
            .field("unpark", &self.unpark)
            .finish()
    }
}

impl Account {
    /// The address of record, `user@domain`.
    pub fn aor(&self) -> String {
        format!("{}@{}", self.user, self.domain)
    }

    /// The secret used for digest authentication.
    ///
    /// Returns `password` when set; otherwise runs `password_cmd` with `sh -c` (standard input
    /// closed, standard error captured so it cannot scribble over a terminal UI) and returns its
    /// standard output less one trailing newline; `None` when neither is set. This blocks until
    /// the command exits: call it before starting the UI or from a blocking task.
    ///
    /// An error names the account and says what failed; it never contains the command's output.
    pub fn secret(&self) -> Result<Option<String>, ConfigError> {
        if let Some(password) = &self.password {
            return Ok(Some(password.clone()));
        }
        let Some(cmd) = &self.password_cmd else {
            return Ok(None);
        };
        let fail = |message: String| ConfigError {
            file: PathBuf::new(),
            line: 0,
            col: 0,
            key: "password_cmd".to_owned(),
            message: format!("account `{}`: {message}", self.name),
        };
        let output = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("could not run the password command with sh: {e}")))?;
        if !output.status.success() {
            return Err(fail(format!(
                "the password command failed ({}); its output is not shown",
                output.status
            )));
        }
        let text = String::from_utf8(output.stdout)
            .map_err(|_| fail("the password command printed something that is not UTF-8".into()))?;
        let secret = text.strip_suffix('\n').unwrap_or(&text);
        let secret = secret.strip_suffix('\r').unwrap_or(secret);
        if secret.is_empty() {
            return Err(fail(
                "the password command printed nothing on its standard output".into(),
            ));
        }
        Ok(Some(secret.to_owned()))
    }
}

/// An audio codec the phone can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Opus (`"opus"`), 48 kHz.
    Opus,
    /// G.711 µ-law (`"pcmu"`).
    Pcmu,
    /// G.711 A-law (`"pcma"`).
    Pcma,
    /// G.722 (`"g722"`), 16 kHz wideband at 64 kbit/s.
    G722,
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
            Codec::G722 => "g722",
        })
    }
}

/// The `[codecs]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Codecs {
    /// Codecs to offer, most preferred first; non-empty, no duplicates.
    /// Default `[opus, g722, pcmu, pcma]`.
    pub order: Vec<Codec>,
    /// Opus target bitrate in bits per second, 6000 to 510000. Default 24000.
    pub opus_bitrate: u32,
    /// Opus encoder complexity, 0 (cheapest) to 10 (best). Default 5.
    pub opus_complexity: u8,
    /// Opus in-band forward error correction. Default true.
    pub opus_fec: bool,
    /// Opus discontinuous transmission (send almost nothing in silence). Default false.
    pub opus_dtx: bool,
    /// Packetisation time we ask to receive (`a=ptime`, ms): 10 to 60 in steps of 10. 10
    /// takes 10 ms off the mouth-to-ear delay for twice the packets. Default 20.
    pub ptime: u32,
}

impl Default for Codecs {
    fn default() -> Self {
        Self {
            order: vec![Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma],
            opus_bitrate: 24_000,
            opus_complexity: 5,
            opus_fec: true,
            opus_dtx: false,
            ptime: 20,
        }
    }
}

impl Config {
    /// Reads and validates a file; every problem found is returned.
    ///
    /// An unreadable file gives one error with no position.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates configuration text; `file` is used in messages only. Every problem
    /// is reported in one run (see `diagnostics::read_all`), in file order.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
        let (config, mut errors, dropped) = read_all(text, file)?;
        // Positions are only needed to report problems, so the span index is built lazily.
        let problems: Vec<Problem> = config
            .problems()
            .into_iter()
            // A dropped key stands at its default: problems about it would be about a value
            // the file does not hold.
            .filter(|p| !p.keys.iter().any(|k| dropped.iter().any(|d| under(k, d))))
            .collect();
        if !problems.is_empty() {
            let index = SpanIndex::build(text);
            errors.extend(
                problems
                    .into_iter()
                    .map(|p| p.locate(text, file, index.as_ref())),
            );
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.line, e.col));
            return Err(ConfigErrors(errors));
        }
        let mut config = config;
        if let Some(log_file) = &config.general.log_file {
            config.general.log_file = Some(expand_home(log_file));
        }
        config.audio.expand_paths();
        config.history.expand_paths();
        config.recording.expand_paths();
        config.directory.expand_paths();
        Ok(config)
    }

    /// The built-in configuration used when no file exists: one peer-to-peer account named
    /// `local` (user `switchboard`, domain `localhost`, no registration), bound to `0.0.0.0:0`,
    /// with the default codecs.
    pub fn embedded_default() -> Config {
        Config {
            general: General::default(),
            network: Network {
                bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                ..Network::default()
            },
            accounts: vec![Account {
                name: "local".to_owned(),
                display_name: None,
                user: "switchboard".to_owned(),
                domain: "localhost".to_owned(),
                registrar: None,
                outbound_proxy: None,
                transport: Transport::Udp,
                auth_user: None,
                password: None,
                password_cmd: None,
                register: false,
                expires: default_expires(),
                transfer_method: TransferMethod::Refer,
                transfer_blind_code: default_blind_code(),
                transfer_attended_code: default_attended_code(),
                transfer_cancel_code: default_cancel_code(),
                referred_by: true,
                keepalive: default_keepalive(),
                accept_from: None,
                auto_answer: AutoAnswer::Off,
                auto_answer_delay: 0,
                auto_answer_second: false,
                dnd_response: answer::default_dnd_response(),
                dnd_on_code: None,
                dnd_off_code: None,
                nat: Nat::Auto,
                stun_server: None,
                pickup_method_setting: None,
                pickup_code: None,
                blf: Vec::new(),
                tls_ca_file: None,
                srtp: Srtp::Off,
                srtp_over_insecure: false,
                park: None,
                unpark: String::new(),
                enabled: true,
            }],
            codecs: Codecs::default(),
            audio: Audio::default(),
            media: Media::default(),
            transfer: Transfer::default(),
            history: History::default(),
            recording: Recording::default(),
            hooks: Hooks::default(),
            routes: Vec::new(),
            ui: Ui::default(),
            keys: Keys::default(),
            directory: Directory::default(),
            favourites: Vec::new(),
            wrapup: Wrapup::default(),
        }
    }

    /// `~/.config/switchboard/config.toml` on Linux (the platform's configuration directory for
    /// `switchboard` elsewhere), if a home directory exists.
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "switchboard")
            .map(|dirs| dirs.config_dir().join("config.toml"))
    }

    /// The second pass: every problem serde cannot see, with the key paths concerned.
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let general = &self.general;
        if let Err(message) = check_log_level(&general.log_level) {
            out.push(Problem::new("general.log_level", message));
        }
        if let Some(agent) = &general.user_agent {
            if agent.trim().is_empty() {
                out.push(Problem::new(
                    "general.user_agent",
                    "must not be empty; remove the key to use the built-in value",
                ));
            } else if agent.chars().any(char::is_control) {
                out.push(Problem::new(
                    "general.user_agent",
                    "must not contain control characters",
                ));
            }
        }
        if let Some(log_file) = &general.log_file {
            if log_file.as_os_str().is_empty() {
                out.push(Problem::new(
                    "general.log_file",
                    "must not be empty; remove the key to use the default log file",
                ));
            }
        }

        let network = &self.network;
        if network.rtp_port_min == 0 {
            out.push(Problem::new(
                "network.rtp_port_min",
                "must be at least 1 (it is a real port, not \"any\")",
            ));
        } else if network.rtp_port_min >= network.rtp_port_max {
            out.push(
                Problem::new(
                    "network.rtp_port_min",
                    format!(
                        "the RTP port range {}..{} is empty: rtp_port_min must be less than \
                         rtp_port_max",
                        network.rtp_port_min, network.rtp_port_max
                    ),
                )
                .or_at("network.rtp_port_max"),
            );
        }

        for (i, account) in self.accounts.iter().enumerate() {
            account.problems(i, &mut out);
            let first = self.accounts[..i]
                .iter()
                .position(|other| other.name == account.name);
            if let Some(first) = first {
                out.push(Problem::new(
                    format!("account[{i}].name"),
                    format!(
                        "the name `{}` is already used by account[{first}]; account names must be \
                         unique",
                        account.name
                    ),
                ));
            }
            let same_aor = self.accounts[..i].iter().position(|other| {
                other.user == account.user && other.domain.eq_ignore_ascii_case(&account.domain)
            });
            if let Some(first) = same_aor {
                out.push(
                    Problem::new(
                        format!("account[{i}].user"),
                        format!(
                            "{} is already account[{first}] (`{}`): two accounts with one \
                             address of record would register the same binding; remove one",
                            account.aor(),
                            self.accounts[first].name
                        ),
                    )
                    .or_at(&format!("account[{i}]")),
                );
            }
        }

        let order = &self.codecs.order;
        if order.is_empty() {
            out.push(Problem::new(
                "codecs.order",
                "must list at least one codec (\"opus\", \"g722\", \"pcmu\", \"pcma\")",
            ));
        }
        for (i, codec) in order.iter().enumerate() {
            if order[..i].contains(codec) {
                out.push(
                    Problem::new(
                        format!("codecs.order[{i}]"),
                        format!("`{codec}` is listed more than once"),
                    )
                    .or_at("codecs.order"),
                );
            }
        }
        let codecs = &self.codecs;
        if !OPUS_BITRATE_RANGE.contains(&codecs.opus_bitrate) {
            out.push(Problem::new(
                "codecs.opus_bitrate",
                format!(
                    "{} b/s is out of range: use {} to {}",
                    codecs.opus_bitrate,
                    OPUS_BITRATE_RANGE.start(),
                    OPUS_BITRATE_RANGE.end()
                ),
            ));
        }
        if !(10..=60).contains(&codecs.ptime) || codecs.ptime % 10 != 0 {
            out.push(Problem::new(
                "codecs.ptime",
                format!(
                    "{} ms is not a packetisation we take: use 10, 20, 30, 40, 50 or 60",
                    codecs.ptime
                ),
            ));
        }
        if codecs.opus_complexity > 10 {
            out.push(Problem::new(
                "codecs.opus_complexity",
                format!("{} is out of range: use 0 to 10", codecs.opus_complexity),
            ));
        }
        self.audio.problems(&mut out);
        self.media.problems(&mut out);
        self.transfer.problems(&mut out);
        self.history.problems(&mut out);
        self.recording.problems(&mut out);
        self.hooks.problems(&mut out);
        for (i, route) in self.routes.iter().enumerate() {
            route.problems(i, &self.routes, &self.accounts, &mut out);
        }
        self.ui.problems(&mut out);
        self.keys.problems(&mut out);
        self.directory.problems(&mut out);
        self.favourite_problems(&mut out);
        self.wrapup.problems(&mut out);
        out
    }
}

impl Account {
    /// Problems within one account (`index` is its position among the `[[account]]` tables).
    fn problems(&self, index: usize, out: &mut Vec<Problem>) {
        let key = |field: &str| format!("account[{index}].{field}");
        let header = format!("account[{index}]");

        if self.name.trim().is_empty() {
            out.push(Problem::new(key("name"), "must not be empty"));
        }
        if let Err(message) = check_user(&self.user) {
            out.push(Problem::new(key("user"), message));
        }
        if let Err(message) = check_domain(&self.domain) {
            out.push(Problem::new(key("domain"), message));
        }
        if let Some(name) = &self.display_name {
            if name.chars().any(char::is_control) {
                out.push(Problem::new(
                    key("display_name"),
                    "must not contain control characters",
                ));
            }
        }
        if let Some(auth_user) = &self.auth_user {
            if let Err(message) = check_user(auth_user) {
                out.push(Problem::new(key("auth_user"), message));
            }
        }
        if let Some(uri) = &self.registrar {
            if let Err(message) = check_sip_uri(uri, true) {
                out.push(Problem::new(key("registrar"), message));
            }
        }
        if let Some(uri) = &self.outbound_proxy {
            if let Err(message) = check_sip_uri(uri, false) {
                out.push(Problem::new(key("outbound_proxy"), message));
            }
        }
        if let Some(uri) = &self.stun_server {
            if let Err(message) = crate::sip::stun::StunServer::parse(uri) {
                out.push(Problem::new(key("stun_server"), message));
            }
        }
        if self.password.is_some() && self.password_cmd.is_some() {
            out.push(
                Problem::new(
                    key("password_cmd"),
                    "set either `password` or `password_cmd`, not both",
                )
                .or_at(&header),
            );
        } else if let Some(cmd) = &self.password_cmd {
            if cmd.trim().is_empty() {
                out.push(Problem::new(key("password_cmd"), "must not be empty"));
            }
        }
        for (field, code, needs_target) in [
            ("transfer_blind_code", &self.transfer_blind_code, true),
            ("transfer_attended_code", &self.transfer_attended_code, true),
            ("transfer_cancel_code", &self.transfer_cancel_code, false),
        ] {
            if let Err(message) = check_feature_code(code, needs_target) {
                out.push(Problem::new(key(field), message));
            }
        }
        self.pickup_problems(index, out);
        self.answer_problems(index, out);
        if self.srtp == Srtp::Mandatory
            && self.transport != Transport::Tls
            && !self.srtp_over_insecure
        {
            out.push(Problem::new(
                key("srtp"),
                "\"mandatory\" sends SRTP keys in the SDP, which only TLS keeps secret: \
                 set transport = \"tls\", or srtp_over_insecure = true to send them anyway",
            ));
        }
        if !KEEPALIVE_RANGE.contains(&self.keepalive) {
            out.push(Problem::new(
                key("keepalive"),
                format!(
                    "{} seconds is out of range: use {} (off) to {}",
                    self.keepalive,
                    KEEPALIVE_RANGE.start(),
                    KEEPALIVE_RANGE.end()
                ),
            ));
        }
        if !EXPIRES_RANGE.contains(&self.expires) {
            out.push(Problem::new(
                key("expires"),
                format!(
                    "{} seconds is out of range: use {} to {}",
                    self.expires,
                    EXPIRES_RANGE.start(),
                    EXPIRES_RANGE.end()
                ),
            ));
        }
    }
}

impl Account {
    /// Problems with `pickup_method`, `pickup_code`, `blf`, `park` and `unpark`.
    fn pickup_problems(&self, index: usize, out: &mut Vec<Problem>) {
        let key = |field: &str| format!("account[{index}].{field}");
        for (field, code) in [
            ("park", self.park.as_deref()),
            ("unpark", Some(&*self.unpark)),
        ] {
            let Some(code) = code else { continue };
            if field == "park" && code.is_empty() {
                out.push(Problem::new(
                    key(field),
                    "must not be empty: leave it out instead",
                ));
            } else if let Some(bad) = code.chars().find(|c| !dialable(*c)) {
                out.push(Problem::new(
                    key(field),
                    format!("`{bad}` cannot be dialled: use digits, letters, *, # and +"),
                ));
            }
        }
        if let Some(code) = &self.pickup_code {
            let rest = code.replace("{ext}", "");
            if !code.contains("{ext}") {
                out.push(Problem::new(
                    key("pickup_code"),
                    "must contain {ext} where the extension goes, e.g. \"*8{ext}\"",
                ));
            } else if let Some(bad) = rest.chars().find(|c| !dialable(*c)) {
                out.push(Problem::new(
                    key("pickup_code"),
                    format!("`{bad}` cannot be dialled: use digits, letters, *, #, + and {{ext}}"),
                ));
            }
        }
        if self.pickup_method_setting == Some(PickupMethod::Code) && self.pickup_code.is_none() {
            out.push(Problem::new(
                key("pickup_method"),
                "\"code\" needs pickup_code, e.g. pickup_code = \"*8{ext}\"",
            ));
        }
        if self.blf.len() > MAX_BLF {
            out.push(Problem::new(
                key("blf"),
                format!(
                    "{} extensions is too many: watch at most {MAX_BLF}",
                    self.blf.len()
                ),
            ));
        }
        for (i, ext) in self.blf.iter().enumerate() {
            let ok = !ext.is_empty()
                && (ext.starts_with("sip:") && check_sip_uri(ext, false).is_ok()
                    || ext.chars().all(|c| dialable(c) || matches!(c, '.' | '-')));
            if !ok {
                out.push(Problem::new(
                    key("blf"),
                    format!("`{ext}` is neither an extension nor a sip: URI"),
                ));
            } else if self.blf[..i].contains(ext) {
                out.push(Problem::new(key("blf"), format!("`{ext}` is listed twice")));
            }
        }
    }
}

/// A character that can be part of a dialled number or extension.
fn dialable(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '*' | '#' | '+' | '_')
}

/// Checks a DTMF feature code: DTMF digits and, where the number goes, `{target}`.
fn check_feature_code(code: &str, needs_target: bool) -> Result<(), String> {
    let has_target = code.contains("{target}");
    let digits = code.replace("{target}", "");
    if let Some(bad) = digits
        .chars()
        .find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
    {
        return Err(format!(
            "`{bad}` cannot be keyed as DTMF: use 0-9, *, #, A-D and {{target}}"
        ));
    }
    if needs_target && !has_target {
        return Err("must contain {target} where the number goes, e.g. \"#1{target}#\"".into());
    }
    if code.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}

/// Checks a tracing filter made of `level` and `target=level` directives.
fn check_log_level(filter: &str) -> Result<(), String> {
    let expected = || {
        format!(
            "expected one of {}, or a comma-separated list of `target=level` directives",
            LOG_LEVELS.join(", ")
        )
    };
    if filter.trim().is_empty() {
        return Err(format!("must not be empty; {}", expected()));
    }
    for directive in filter.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.trim().is_empty() => level.trim(),
            Some(_) => return Err(format!("`{directive}` has no target; {}", expected())),
            None => directive,
        };
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level)) {
            return Err(format!("unknown log level `{level}`; {}", expected()));
        }
    }
    Ok(())
}

/// Checks a user name (`user`, `auth_user`).
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        Err("must not be empty".to_owned())
    } else if user.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain spaces or control characters".to_owned())
    } else if user.contains('@') {
        Err("must not contain `@`: put the part after it in `domain`".to_owned())
    } else {
        Ok(())
    }
}

/// Checks the host part of the address of record.
fn check_domain(domain: &str) -> Result<(), String> {
    let lower = domain.to_ascii_lowercase();
    if domain.is_empty() {
        Err("must not be empty".to_owned())
    } else if lower.starts_with("sip:") || lower.starts_with("sips:") {
        Err("write the host only, without `sip:`".to_owned())
    } else if domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain spaces or control characters".to_owned())
    } else if domain.contains('@') {
        Err("must not contain `@`: put the part before it in `user`".to_owned())
    } else {
        Ok(())
    }
}

/// Checks a SIP URI (`sip:` or `sips:` with a host). A registrar URI has no user part
/// (RFC 3261 §10.2).
fn check_sip_uri(uri: &str, registrar: bool) -> Result<(), String> {
    let lower = uri.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
    else {
        // Suggest a fix for `host`, `host:port` and `scheme://host`, not for another scheme's
        // URI such as `tel:+4420…`.
        let host = uri.split_once("://").map_or(uri, |(_, host)| host);
        let other_scheme = host
            .split_once(':')
            .is_some_and(|(scheme, rest)| !scheme.contains('.') && rest.parse::<u16>().is_err());
        let hint = if other_scheme || host.is_empty() {
            String::new()
        } else {
            format!(", e.g. `sip:{host}`")
        };
        return Err(format!(
            "`{uri}` is not a SIP URI: it must start with `sip:` or `sips:`{hint}"
        ));
    };
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{uri}` must not contain spaces or control characters"
        ));
    }
    let address = rest.split([';', '?']).next().unwrap_or_default();
    let host = address.rsplit_once('@').map_or(address, |(_, host)| host);
    if let Some(reference) = host.strip_prefix('[') {
        let valid = reference.split_once(']').is_some_and(|(ip, port)| {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
        });
        if !valid {
            return Err(format!(
                "`{uri}`: write an IPv6 address in brackets, then the port, e.g. `sip:[::1]:5060`"
            ));
        }
    } else if host.matches(':').count() >= 2 {
        let (ip, port) = match host.rsplit_once(':') {
            Some((ip, port))
                if ip.parse::<std::net::Ipv6Addr>().is_ok() && port.parse::<u16>().is_ok() =>
            {
                (ip, format!(":{port}"))
            }
            _ => (host, String::new()),
        };
        return Err(format!(
            "`{uri}`: an IPv6 address is written in brackets (RFC 3261 §25.1), e.g. \
             `sip:[{ip}]{port}`"
        ));
    }
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{uri}` has no host"));
    }
    if registrar && address.contains('@') {
        return Err(format!(
            "`{uri}` has a user part; a registrar URI names only the host (and port), e.g. \
             `sip:{host}`"
        ));
    }
    Ok(())
}

/// Replaces a leading `~/` with the home directory, when there is one.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), directories::BaseDirs::new()) {
        (Ok(rest), Some(base)) => base.home_dir().join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    const ACCOUNT: &str = "[[account]]\nname = \"a\"\nuser = \"100\"\ndomain = \"pbx.test\"\n";

    #[test]
    fn empty_text_gives_defaults() {
        let config = parse("").expect("empty config is valid");
        assert_eq!(config, Config::default());
        assert_eq!(config.general.log_level, "info");
        assert_eq!(config.network.bind, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(
            (config.network.rtp_port_min, config.network.rtp_port_max),
            (16384, 32766)
        );
        assert_eq!(
            config.codecs.order,
            [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma]
        );
        assert!(config.accounts.is_empty());
    }

    #[test]
    fn account_defaults() {
        let config = parse(ACCOUNT).expect("valid");
        let account = &config.accounts[0];
        assert_eq!(account.transport, Transport::Udp);
        assert!(account.register);
        assert_eq!(account.expires, 600);
        assert_eq!(account.aor(), "100@pbx.test");
        assert_eq!(account.secret(), Ok(None));
    }

    #[test]
    fn embedded_default_is_peer_to_peer() {
        let config = Config::embedded_default();
        assert_eq!(config.network.bind.port(), 0);
        assert_eq!(config.accounts.len(), 1);
        let local = &config.accounts[0];
        assert_eq!(
            (local.name.as_str(), local.aor().as_str()),
            ("local", "switchboard@localhost")
        );
        assert!(!local.register);
        assert!(config.problems().is_empty());
    }

    #[test]
    fn display_forms() {
        let mut error = ConfigError {
            file: "f.toml".into(),
            line: 3,
            col: 7,
            key: "network.bind".into(),
            message: "bad".into(),
        };
        assert_eq!(error.to_string(), "f.toml:3:7: network.bind: bad");
        error.line = 0;
        assert_eq!(error.to_string(), "f.toml: network.bind: bad");
        error.file = PathBuf::new();
        assert_eq!(error.to_string(), "network.bind: bad");
        let two = ConfigErrors(vec![error.clone(), error]);
        assert_eq!(two.to_string(), "network.bind: bad\nnetwork.bind: bad");
        assert_eq!(Transport::Tcp.to_string(), "tcp");
        assert_eq!(Codec::Pcma.to_string(), "pcma");
    }

    #[test]
    fn unknown_key_points_at_key_and_suggests() {
        let text = format!("{ACCOUNT}transprot = \"tcp\"\n");
        assert_eq!(
            errors(&text),
            [
                "test.toml:5:1: account[0].transprot: unknown key `transprot`, did you mean \
              `transport`?"
            ]
        );
        let errs = errors("[network]\nfoo = 1\n");
        assert!(
            errs[0].starts_with(
                "test.toml:2:1: network.foo: unknown key `foo`, expected one of `bind`"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let text = format!("{ACCOUNT}\n[[account]]\nname = \"b\"\nuser = \"1\"\ndomain = \"d\"\nexpires = \"600\"\n");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("test.toml:10:11: account[1].expires: invalid type"),
            "{errs:?}"
        );
    }

    #[test]
    fn missing_key_points_at_table_header() {
        let errs = errors("[general]\n\n[[account]]\nname = \"a\"\ndomain = \"d\"\n");
        assert_eq!(
            errs,
            ["test.toml:3:1: account[0].user: missing required key `user`"]
        );
    }

    #[test]
    fn audio_host_names_the_choices() {
        let errs = errors("[audio]\nhost = \"jack\"\n");
        assert!(
            errs[0].starts_with(
                "test.toml:2:8: audio.host: unknown value `jack`, expected one of `auto`, \
                 `pulse`, `alsa`"
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn array_element_errors_name_the_index() {
        let errs = errors("[codecs]\norder = [\"opus\", \"g729\"]\n");
        assert!(
            errs[0].starts_with("test.toml:2:18: codecs.order[1]: unknown value `g729`"),
            "{errs:?}"
        );
        let errs = errors("[codecs]\norder = [\"opus\", \"pcmu\", \"opus\"]\n");
        assert_eq!(
            errs,
            ["test.toml:2:26: codecs.order[2]: `opus` is listed more than once"]
        );
    }

    #[test]
    fn ptime_is_whole_frames_of_10_to_60_ms() {
        assert_eq!(parse(ACCOUNT).expect("valid").codecs.ptime, 20);
        let ten = parse(&format!("{ACCOUNT}[codecs]\nptime = 10\n")).expect("valid");
        assert_eq!(ten.codecs.ptime, 10);
        for bad in [0, 5, 25, 70] {
            let errs = errors(&format!("{ACCOUNT}[codecs]\nptime = {bad}\n"));
            assert!(
                errs[0].starts_with(&format!(
                    "test.toml:6:9: codecs.ptime: {bad} ms is not a packetisation we take"
                )),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn resilience_keys_have_defaults_and_bad_values_name_line_and_key() {
        let config = parse(ACCOUNT).expect("valid");
        let account = &config.accounts[0];
        assert_eq!(account.keepalive, 25);
        assert_eq!(account.nat, Nat::Auto);
        assert_eq!(account.accepts_from(), AcceptFrom::Registrar, "registering");
        assert_eq!(config.media.rtp_timeout, 30);
        let p2p = parse(&format!("{ACCOUNT}register = false\n")).expect("valid");
        assert_eq!(p2p.accounts[0].accepts_from(), AcceptFrom::Any);
        let set = parse(&format!(
            "{ACCOUNT}keepalive = 0\naccept_from = \"any\"\n[media]\nrtp_timeout = 0\n"
        ))
        .expect("valid");
        assert_eq!(set.accounts[0].keepalive, 0);
        assert_eq!(set.accounts[0].accepts_from(), AcceptFrom::Any);
        assert_eq!(set.media.rtp_timeout, 0);

        let errs = errors(&format!("{ACCOUNT}keepalive = 4000\n"));
        assert!(
            errs[0]
                .starts_with("test.toml:5:13: account[0].keepalive: 4000 seconds is out of range"),
            "{errs:?}"
        );
        let errs = errors(&format!("{ACCOUNT}accept_from = \"nobody\"\n"));
        assert!(
            errs[0].starts_with("test.toml:5:15: account[0].accept_from: unknown value `nobody`, expected `registrar` or `any`"),
            "{errs:?}"
        );
        let errs = errors("[media]\nrtp_timeout = 99999\n");
        assert!(
            errs[0].starts_with("test.toml:2:15: media.rtp_timeout: 99999 seconds is out of range"),
            "{errs:?}"
        );
    }

    #[test]
    fn dotted_keys_inline_tables_and_datetimes_are_located() {
        let errs = errors("network.bind = \"nowhere\"\n");
        assert!(
            errs[0]
                .starts_with("test.toml:1:16: network.bind: invalid socket address syntax: write"),
            "{errs:?}"
        );
        let errs =
            errors("account = [{ name = \"a\", user = \"u\", domain = \"d\", expires = 5 }]\n");
        assert!(
            errs[0].starts_with("test.toml:1:62: account[0].expires: 5 seconds"),
            "{errs:?}"
        );
        let errs = errors("[general]\nlog_file = 1979-05-27T07:32:00Z\n");
        assert!(
            errs[0].starts_with("test.toml:2:12: general.log_file: invalid type"),
            "{errs:?}"
        );
    }

    #[test]
    fn syntax_errors_get_an_approximate_key() {
        let errs = errors(&format!(
            "{ACCOUNT}\n[[account]]\n  name = \"b\nuser = \"u\"\n"
        ));
        assert!(
            errs[0].starts_with("test.toml:7:3: account[1].name: ")
                && errs[0].ends_with(" (at 7:12)"),
            "{errs:?}"
        );
        let errs = errors(&format!("{ACCOUNT}name = \"again\"\n"));
        assert!(
            errs[0].starts_with("test.toml:5:1: account[0].name: duplicate key"),
            "{errs:?}"
        );
    }

    #[test]
    fn every_type_value_and_key_problem_is_reported_in_one_run_at_its_value() {
        let text = "\
[[account]]
name = \"a\"
user = \"100\"
domain = \"pbx.test\"
transport = \"udp6\"
password = 1234
colour = \"red\"
expires = 30

[codecs]
order = [\"opus\", \"g729\"]

[transfer]
blind = \"sometimes\"
blind_timeout = \"soon\"
";
        assert_eq!(
            errors(text),
            [
                "test.toml:5:13: account[0].transport: unknown value `udp6`, expected one of \
                 `udp`, `tcp`, `tls`",
                "test.toml:6:12: account[0].password: invalid type: integer `1234`, expected a \
                 string",
                "test.toml:7:1: account[0].colour: unknown key `colour`, expected one of `name`, \
                 `display_name`, `user`, `domain`, `registrar`, `outbound_proxy`, `transport`, \
                 `auth_user`, `password`, `password_cmd`, `register`, `expires`, \
                 `transfer_method`, `transfer_blind_code`, `transfer_attended_code`, \
                 `transfer_cancel_code`, `referred_by`, `keepalive`, `accept_from`, \
                 `auto_answer`, `auto_answer_delay`, `auto_answer_second`, `dnd_response`, \
                 `dnd_on_code`, `dnd_off_code`, `nat`, `stun_server`, `pickup_method`, \
                 `pickup_code`, `blf`, `tls_ca_file`, `srtp`, `srtp_over_insecure`, `park`, \
                 `unpark`, `enabled`",
                "test.toml:8:11: account[0].expires: 30 seconds is out of range: use 60 to 86400",
                "test.toml:11:18: codecs.order[1]: unknown value `g729`, expected one of `opus`, \
                 `pcmu`, `pcma`, `g722`",
                "test.toml:14:9: transfer.blind: unknown value `sometimes`, expected one of \
                 `safe`, `notify`, `immediate`",
                "test.toml:15:17: transfer.blind_timeout: invalid type: string \"soon\", \
                 expected a whole number from 0 to 4294967295",
            ]
        );
    }

    #[test]
    fn a_missing_key_ends_the_reading_with_what_was_found() {
        let errs = errors("[[account]]\nname = \"a\"\ndomain = \"d\"\ntransport = 5\n");
        assert_eq!(
            errs,
            [
                "test.toml:1:1: account[0].user: missing required key `user`",
                "test.toml:4:13: account[0].transport: expected a string",
            ],
            "{errs:#?}"
        );
        let errs = errors("[[account]]\nname = \"a\"\nuser = 5\ndomain = \"d\"\n");
        assert_eq!(
            errs,
            ["test.toml:3:8: account[0].user: invalid type: integer `5`, expected a string"],
            "a dropped required key is not reported again as missing: {errs:#?}"
        );
    }

    #[test]
    fn every_semantic_problem_is_reported_in_file_order() {
        let text = "\
[general]
log_level = \"loud\"

[network]
rtp_port_min = 30000
rtp_port_max = 20000

[[account]]
name = \"a\"
user = \"u@x\"
domain = \"sip:d\"
registrar = \"pbx.test\"
outbound_proxy = \"sip:\"
stun_server = \"stun.example.com\"
password = \"p\"
password_cmd = \"pass x\"
expires = 30

[[account]]
name = \"a\"
user = \"u\"
domain = \"d\"
registrar = \"sip:100@pbx.test\"

[codecs]
order = []
";
        let errs = errors(text);
        let keys: Vec<&str> = errs
            .iter()
            .map(|e| e.split(": ").nth(1).unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "general.log_level",
                "network.rtp_port_min",
                "account[0].user",
                "account[0].domain",
                "account[0].registrar",
                "account[0].outbound_proxy",
                "account[0].stun_server",
                "account[0].password_cmd",
                "account[0].expires",
                "account[1].name",
                "account[1].registrar",
                "codecs.order",
            ],
            "{errs:#?}"
        );
        assert!(errs[4].contains("e.g. `sip:pbx.test`"), "{}", errs[4]);
    }

    #[test]
    fn rtp_range_points_at_the_key_that_is_written() {
        let errs = errors("[network]\nrtp_port_max = 100\n");
        assert!(
            errs[0].starts_with("test.toml:2:16: network.rtp_port_max: the RTP port range"),
            "{errs:?}"
        );
    }

    #[test]
    fn log_level_accepts_filter_directives() {
        assert!(check_log_level("DEBUG").is_ok());
        assert!(check_log_level("warn,switchboard::sip=trace").is_ok());
        assert!(check_log_level("=debug").is_err());
        assert!(check_log_level("").is_err());
        assert!(check_log_level("info,switchboard=chatty").is_err());
    }

    #[test]
    fn sip_uris() {
        assert!(check_sip_uri("sip:pbx.example.com:5060", true).is_ok());
        assert!(check_sip_uri("SIPS:[2001:db8::1]:5061;transport=tcp", true).is_ok());
        assert!(check_sip_uri("sip:proxy.test;lr", false).is_ok());
        assert!(check_sip_uri("sip:100@pbx.test", false).is_ok());
        assert!(check_sip_uri("sip:100@pbx.test", true).is_err());
        assert!(check_sip_uri("http://pbx.test", false).is_err());
        assert!(check_sip_uri("sip:pbx test", false).is_err());
        assert!(check_sip_uri("sip::5060", false).is_err());
        let hint = |uri| check_sip_uri(uri, false).expect_err("not a SIP URI");
        assert!(hint("pbx.test:5060").ends_with(", e.g. `sip:pbx.test:5060`"));
        assert!(hint("http://pbx.test").ends_with(", e.g. `sip:pbx.test`"));
        assert!(hint("tel:+441234").ends_with("`sips:`"));
        // IPv6 addresses without brackets, or broken ones, say how to write them.
        assert!(hint("sip:2001:db8::1:5070").ends_with("e.g. `sip:[2001:db8::1]:5070`"));
        assert!(hint("sip:::1").ends_with("e.g. `sip:[::1]`"));
        assert!(hint("sip:[::1").contains("in brackets, then the port"));
        assert!(hint("sip:[::1]5060").contains("in brackets, then the port"));
        assert!(hint("sip:[nope]:5060").contains("in brackets, then the port"));
        assert!(check_sip_uri("sip:[::1]:5070", true).is_ok());
        assert!(check_sip_uri("sip:201@[::1]", false).is_ok());
    }

    #[test]
    fn secret_from_password_or_command() {
        let mut account = parse(ACCOUNT).expect("valid").accounts.remove(0);
        account.password = Some("pw".into());
        assert_eq!(account.secret(), Ok(Some("pw".into())));
        account.password = None;
        account.password_cmd = Some("printf 's3cret \\n'".into());
        assert_eq!(account.secret(), Ok(Some("s3cret ".into())));
        account.password_cmd = Some("printf 'leaked'; exit 3".into());
        let error = account.secret().expect_err("non-zero exit");
        let text = error.to_string();
        assert!(
            text.starts_with("password_cmd: account `a`: the password command failed"),
            "{text}"
        );
        assert!(!text.contains("leaked"), "{text}");
        account.password_cmd = Some("true".into());
        assert!(account.secret().is_err());
    }

    #[test]
    fn debug_redacts_password() {
        let mut account = parse(ACCOUNT).expect("valid").accounts.remove(0);
        account.password = Some("hunter2".into());
        let debug = format!("{account:?}");
        assert!(
            !debug.contains("hunter2") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn log_file_home_is_expanded() {
        let config = parse("[general]\nlog_file = \"~/sb.log\"\n").expect("valid");
        let path = config.general.log_file.expect("set");
        if directories::BaseDirs::new().is_some() {
            assert!(!path.starts_with("~"), "{path:?}");
            assert!(path.ends_with("sb.log"));
        }
    }

    #[test]
    fn messages_use_toml_words() {
        let errs = errors("general = 5\n");
        assert!(errs[0].ends_with("expected a table"), "{errs:?}");
        let errs = errors("[network]\nrtp_port_min = -1\n");
        assert!(
            errs[0].ends_with("expected a whole number from 0 to 65535"),
            "{errs:?}"
        );
        let errs = errors("[codecs]\norder = [\"g729\"]\n");
        assert!(errs[0].contains("unknown value `g729`"), "{errs:?}");
    }
}
