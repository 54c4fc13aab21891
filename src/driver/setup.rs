//! Turning the user's configuration into a running start: the chosen account, resolved
//! addresses, bound sockets and the core's [`UaConfig`].
//!
//! This module owns everything that happens once, before the run loop: picking the account,
//! reading the registrars', outbound proxies' and STUN server's addresses when they are IP
//! literals (a server named by a host name is looked up later through the driver's
//! asynchronous DNS, `resolve.rs`: nothing here waits on DNS), choosing the address we
//! advertise in Via/Contact/SDP, binding the SIP sockets (UDP, and a TCP listener on the same
//! port) and one RTP socket per line (dual-stack when bound to `[::]`), and running the
//! account's `password_cmd`. It blocks (the password command) and so runs before the tokio
//! runtime takes over. It must not start the user agent or read the clock.

use super::outlet::Observers;
use super::router::Router;
use super::tls::TlsClient;
use crate::route::Routes;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::config::{self, Config, ConfigError};
use crate::media::api::{EngineConfig, LineSockets, VoiceSettings};
use crate::media::codec::OpusSettings;
use crate::media::device::{Backend, Host};
use crate::media::jitter::JitterConfig;
use crate::media::recorder::RecordFormat;
use crate::sip::locate::Plan;
use crate::sip::policy::Policy;
use crate::sip::sdes::{KeySource, SrtpConfig, SrtpMode, KEY_LEN};
use crate::sip::sdp::Codec;
use crate::sip::timer::TimerValues;
use crate::sip::{
    AcceptFrom, Account, AnswerConfig, AttendantConfig, AutoAnswer, BlindMode, FavouriteTarget,
    PbxCodes, PickupConfig, PickupMethod, ReferPolicy, Seed, TransferConfig, Transport, UaConfig,
    WrapupConfig,
};
use rand::RngCore;

/// The SIP port used when a URI names none.
const DEFAULT_SIP_PORT: u16 = 5060;
/// The SIP port used for a `sips:` URI that names none (as the core does).
const DEFAULT_SIPS_PORT: u16 = 5061;
/// How often a free port (`bind` port 0) is drawn again when TCP cannot take the UDP port.
const FREE_PORT_TRIES: usize = 16;

/// Why switchboard cannot start with this configuration.
#[derive(Debug, Error)]
pub enum SetupError {
    /// The configuration has no `[[account]]`.
    #[error(
        "the configuration has no enabled [[account]]: add one, or set `enabled = true` (see \
         config.example.toml)"
    )]
    NoAccount,
    /// `--account NAME` names no account.
    #[error("no account named `{name}`; the configuration has: {known}")]
    UnknownAccount {
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        known: String,
    },
    /// The outbound proxy URI cannot be used.
    #[error("outbound proxy `{uri}`: {message}")]
    OutboundProxy {
        /// The URI from the configuration.
        uri: String,
        /// What is wrong.
        message: String,
    },
    /// The SIP socket cannot be bound.
    #[error("cannot bind the SIP {transport} socket on {addr}: {source}")]
    BindSip {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// No free even RTP port in the configured range.
    #[error("no free even UDP port for RTP in {min}..={max} on {ip} (needed {needed})")]
    BindRtp {
        /// The local IP address.
        ip: IpAddr,
        /// `network.rtp_port_min`.
        min: u16,
        /// `network.rtp_port_max`.
        max: u16,
        /// How many sockets were needed.
        needed: usize,
    },
    /// Two enabled accounts use different transports.
    #[error(
        "account `{account}` uses {transport}, but account `{first}` uses {first_transport}: the \
         accounts of one run share one transport. Set `enabled = false` on one of them, or run \
         one alone with --account NAME"
    )]
    MixedTransports {
        /// The account whose transport differs.
        account: String,
        /// Its transport.
        transport: String,
        /// The first enabled account.
        first: String,
        /// Its transport.
        first_transport: String,
    },
    /// Another socket operation failed.
    #[error("{what}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// `password_cmd` failed.
    #[error(transparent)]
    Secret(#[from] ConfigError),
    /// A `[[route]]` pattern cannot be used.
    #[error("route pattern: {0}")]
    Route(String),
    /// TLS cannot be set up (the CA file).
    #[error("TLS: {0}")]
    Tls(String),
}

/// Everything the run loop starts from: the core's configuration and the sockets it serves.
pub struct Setup {
    /// The user agent's configuration (account with resolved addresses, advertised address,
    /// RTP ports, codecs, seed).
    pub ua: UaConfig,
    /// The address the SIP sockets are bound to (may be `0.0.0.0:PORT`).
    pub bound: SocketAddr,
    /// The SIP UDP socket (non-blocking, ready for tokio).
    pub sip_udp: UdpSocket,
    /// The SIP TCP listener on the same port (non-blocking), if it could be bound.
    pub sip_tcp: Option<TcpListener>,
    /// The TLS client (trusted roots, server names) when the account uses TLS.
    pub tls: Option<TlsClient>,
    /// One RTP/RTCP socket pair per line, in line order: an even port of the configured
    /// range and the next one. The media engine takes them over (std sockets: it runs on its
    /// own thread).
    pub rtp: Vec<LineSockets>,
    /// The audio device to open and the media engine's settings.
    pub media: MediaSetup,
    /// The call history and the hooks, which see every event.
    pub observers: Observers,
    /// The outbound routes applied to dialled and transfer numbers.
    pub router: Router,
    /// The DNS servers that locate the registrar; empty: the system's configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// The account's STUN server (`stun_server`), to be looked up by the driver's DNS, or why
    /// it cannot be used; `None` when none is configured.
    pub stun: Option<Result<StunTarget, String>>,
}

/// What the media engine starts from.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// The audio backend and its devices or files.
    pub backend: Backend,
    /// Codec and jitter buffer settings.
    pub engine: EngineConfig,
    /// The WAV file held parties hear; `None`: silence.
    pub music_on_hold: Option<PathBuf>,
    /// Where and how calls are recorded.
    pub recording: RecordingSetup,
}

/// Where and how calls are recorded (`[recording]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSetup {
    /// The directory files go to.
    pub dir: PathBuf,
    /// WAV or Ogg Opus.
    pub format: RecordFormat,
    /// The file name template (see [`crate::media::recorder::name`]).
    pub template: String,
    /// Every call is recorded from answer to end.
    pub auto: bool,
}

impl RecordingSetup {
    /// The `[recording]` settings of `config`; without a home directory (and no `dir`),
    /// `recordings/` in the working directory.
    pub fn new(config: &Config) -> RecordingSetup {
        let recording = &config.recording;
        RecordingSetup {
            dir: recording
                .directory()
                .unwrap_or_else(|| PathBuf::from("recordings")),
            format: match recording.format {
                config::RecordingFormat::Wav => RecordFormat::Wav,
                config::RecordingFormat::Ogg => RecordFormat::OggOpus,
            },
            template: recording.template.clone(),
            auto: recording.auto,
        }
    }
}

impl MediaSetup {
    /// The media settings of `config`, with `cname` (`user@host`) for RTCP.
    pub fn new(config: &Config, cname: String) -> MediaSetup {
        let audio = &config.audio;
        let backend = match audio.backend {
            config::AudioBackend::Cpal => Backend::Cpal {
                host: device_host(audio.host),
                input: audio.input.clone(),
                output: audio.output.clone(),
                ring_output: audio.ring_output.clone(),
            },
            config::AudioBackend::File => Backend::File {
                input: audio.file_in.clone(),
                looping: audio.file_loop,
                output: audio.file_out.clone(),
            },
            config::AudioBackend::Null => Backend::Null,
        };
        let codecs = &config.codecs;
        let media = &config.media;
        let engine = EngineConfig {
            opus: OpusSettings {
                bitrate: i32::try_from(codecs.opus_bitrate).unwrap_or(i32::MAX),
                complexity: codecs.opus_complexity,
                fec: codecs.opus_fec,
                dtx: codecs.opus_dtx,
                ..OpusSettings::default()
            },
            jitter: JitterConfig {
                min_ms: media.jitter_min_ms,
                max_ms: media.jitter_max_ms,
                start_ms: media.jitter_start_ms,
            },
            cname,
            rtp_timeout: (media.rtp_timeout > 0)
                .then(|| Duration::from_secs(u64::from(media.rtp_timeout))),
            voice: VoiceSettings {
                noise_suppression: audio.noise_suppression,
                agc: audio.agc,
            },
            // Random unless a test asks (`driver::media::SEQUENCE_START_VAR`).
            rtp_sequence_start: None,
        };
        MediaSetup {
            backend,
            engine,
            music_on_hold: audio.music_on_hold.clone(),
            recording: RecordingSetup::new(config),
        }
    }
}

/// The audio system `[audio] host` names, as the device layer knows it.
pub fn device_host(host: config::AudioHost) -> Host {
    match host {
        config::AudioHost::Auto => Host::Auto,
        config::AudioHost::Pulse => Host::Pulse,
        config::AudioHost::Alsa => Host::Alsa,
    }
}

/// The core's view of `account`: names, credentials (`password_cmd` runs here), and the
/// registrar's and outbound proxy's addresses when they are IP literals (with TLS's default
/// port 5061 when `over_tls`). The registrar's is read when `literal_registrar` (a trunk
/// whose calls go there). An outbound proxy known by a host name gets the unspecified
/// address: the core locates it through RFC 3263 (before the first REGISTER, or at start for
/// an account that does not register), as it does a registrar known by name. Only an
/// outbound proxy URI that cannot be read is an error.
fn sip_account(
    account: &config::Account,
    literal_registrar: bool,
    over_tls: bool,
) -> Result<Account, SetupError> {
    let registrar = registrar_uri(account);
    let registrar_addr =
        if literal_registrar && matches!(Plan::of_uri(&registrar), Some(Plan::Literal(_))) {
            match resolve_uri_with(&registrar, over_tls) {
                Ok(addr) => Some(addr),
                Err(message) => {
                    tracing::warn!(%registrar, %message, "registrar address unknown");
                    None
                }
            }
        } else {
            None
        };
    let outbound_proxy = match &account.outbound_proxy {
        Some(uri)
            if matches!(
                Plan::of_uri(uri),
                Some(Plan::Host { .. } | Plan::Domain { .. })
            ) =>
        {
            Some((
                uri.clone(),
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            ))
        }
        Some(uri) => {
            let addr =
                resolve_uri_with(uri, over_tls).map_err(|message| SetupError::OutboundProxy {
                    uri: uri.clone(),
                    message,
                })?;
            Some((uri.clone(), addr))
        }
        None => None,
    };
    let password = account.secret()?;
    Ok(Account {
        name: account.name.clone(),
        user: account.user.clone(),
        domain: account.domain.clone(),
        display_name: account.display_name.clone(),
        auth_user: account
            .auth_user
            .clone()
            .unwrap_or_else(|| account.user.clone()),
        password,
        registrar,
        registrar_addr,
        outbound_proxy,
        register: account.register,
        expires: account.expires,
        keepalive: (account.keepalive > 0)
            .then(|| Duration::from_secs(u64::from(account.keepalive))),
        accept_from: match account.accepts_from() {
            config::AcceptFrom::Registrar => AcceptFrom::Registrar,
            config::AcceptFrom::Any => AcceptFrom::Any,
        },
        nat: account.nat == config::Nat::Auto,
        policy: Policy::default(),
    })
}

/// The core's view of an account that registers: a registrar named by a host name is located
/// by the core through the driver's asynchronous DNS (RFC 3263), with failover; only an IP
/// address is taken here.
fn registering_account(account: &config::Account, over_tls: bool) -> Result<Account, SetupError> {
    sip_account(account, account.register, over_tls)
}

impl fmt::Debug for Setup {
    /// Leaves the account (and so its password) out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("local", &self.ua.local)
            .field("bound", &self.bound)
            .field("tcp", &self.sip_tcp.is_some())
            .field("rtp", &self.rtp)
            .finish_non_exhaustive()
    }
}

impl Setup {
    /// Resolves, binds and builds the [`UaConfig`] for `account` of `config`.
    ///
    /// Nothing here waits on DNS: registrars and outbound proxies known by host names are
    /// located by the core (a registrar that cannot be found gives `registration_failed` and
    /// retries; a call through a proxy that cannot be found fails and says why, never
    /// bypassing it). An outbound proxy URI that cannot be read is an error.
    ///
    /// Only `account` registers; the other enabled accounts are there for routes, as
    /// non-registering accounts (`--account NAME`).
    pub fn new(config: &Config, account: &config::Account) -> Result<Setup, SetupError> {
        Setup::build(config, account, false)
    }

    /// Like [`Setup::new`] for every enabled account at once: the first one is
    /// [`UaConfig::account`], the others each register when their `register` says so. They
    /// must share the first one's transport.
    pub fn all(config: &Config) -> Result<Setup, SetupError> {
        check_accounts(config, None)?;
        Setup::build(config, choose_account(config, None)?, true)
    }

    /// [`Setup::new`] (`all_register` false) or [`Setup::all`].
    fn build(
        config: &Config,
        account: &config::Account,
        all_register: bool,
    ) -> Result<Setup, SetupError> {
        let transport = match account.transport {
            config::Transport::Udp => Transport::Udp,
            config::Transport::Tcp => Transport::Tcp,
            config::Transport::Tls => Transport::Tls,
        };
        let over_tls = transport == Transport::Tls;
        let ua_account = registering_account(account, over_tls)?;
        let (registrar_addr, outbound_proxy) = (
            ua_account.registrar_addr,
            ua_account
                .outbound_proxy
                .clone()
                .filter(|(_, addr)| !addr.ip().is_unspecified()),
        );
        let others: Vec<Account> = config
            .accounts
            .iter()
            .filter(|other| other.name != account.name && other.enabled)
            .filter_map(|other| {
                if other.transport != account.transport {
                    tracing::warn!(
                        account = %other.name,
                        "not usable by routes: its transport differs from the running account's"
                    );
                    return None;
                }
                let built = if all_register && other.register {
                    registering_account(other, over_tls)
                } else {
                    // Its calls go to its outbound proxy, else to its registrar's host. Beside
                    // an account run alone (`--account`) it only serves routes: not registered,
                    // not kept alive.
                    sip_account(other, other.outbound_proxy.is_none(), over_tls).map(|mut a| {
                        a.register = false;
                        if !all_register {
                            a.keepalive = None;
                        }
                        a
                    })
                };
                match built {
                    Ok(other) => Some(other),
                    Err(e) => {
                        tracing::warn!(account = %other.name, error = %e, "not usable");
                        None
                    }
                }
            })
            .collect();
        let tls = if over_tls {
            let mut names = Vec::new();
            for a in std::iter::once(&ua_account).chain(&others) {
                if let (Some(addr), Some((host, _))) =
                    (a.registrar_addr, uri_host_port(&a.registrar, true))
                {
                    names.push((addr, host));
                }
                let proxy = a
                    .outbound_proxy
                    .as_ref()
                    .filter(|(_, addr)| !addr.ip().is_unspecified());
                if let Some((uri, addr)) = proxy {
                    if let Some((host, _)) = uri_host_port(uri, true) {
                        names.push((*addr, host));
                    }
                }
            }
            Some(TlsClient::new(account.tls_ca_file.as_deref(), &names).map_err(SetupError::Tls)?)
        } else {
            None
        };

        let (sip_udp, sip_tcp) = bind_sip(config.network.bind, transport)?;
        let bound = sip_udp.local_addr().map_err(|source| SetupError::Socket {
            what: "reading the SIP socket's address",
            source,
        })?;
        let towards = outbound_proxy.as_ref().map(|(_, a)| *a).or(registrar_addr);
        let advertised = advertised_ip(bound.ip(), towards);
        let rtp = bind_rtp(
            bound.ip(),
            config.network.rtp_port_min,
            config.network.rtp_port_max,
            usize::from(config.ui.lines),
        )?;
        let rtp_ports = rtp
            .iter()
            .map(|s| s.rtp.local_addr().map(|a| a.port()))
            .collect::<io::Result<Vec<u16>>>()
            .map_err(|source| SetupError::Socket {
                what: "reading an RTP socket's address",
                source,
            })?;

        let mut ua = UaConfig {
            account: ua_account,
            others,
            transport,
            local: SocketAddr::new(advertised, bound.port()),
            media_ip: config.network.media_address.unwrap_or(advertised),
            rtp_ports,
            codecs: config.codecs.order.iter().map(|c| codec(*c)).collect(),
            user_agent: config
                .general
                .user_agent
                .clone()
                .unwrap_or_else(default_user_agent),
            timers: TimerValues::default(),
            seed: os_seed(),
            dtmf_info: config.media.dtmf == config::DtmfMethod::Info,
            opus_bitrate: Some(config.codecs.opus_bitrate),
            ptime: config.codecs.ptime,
            blf: config.watched(account),
        };
        let media = MediaSetup::new(config, format!("{}@{}", account.user, advertised));
        for ua_account in std::iter::once(&mut ua.account).chain(ua.others.iter_mut()) {
            let own = config.accounts.iter().find(|a| a.name == ua_account.name);
            ua_account.policy = policy(config, own.unwrap_or(account));
        }
        let account_names = std::iter::once(&ua.account)
            .chain(&ua.others)
            .map(|a| a.name.clone())
            .collect();
        let routes =
            Routes::from_config(&config.routes).map_err(|e| SetupError::Route(e.to_string()))?;
        Ok(Setup {
            ua,
            bound,
            sip_udp,
            sip_tcp,
            tls,
            rtp,
            media,
            observers: Observers::new(config),
            router: Router::new(routes, &account.name).with_accounts(account_names),
            dns_servers: config.network.dns_servers.clone(),
            stun: account
                .stun_server
                .as_deref()
                .map(|uri| stun_target(uri, advertised)),
        })
    }
}

/// What `account`'s PBX expects beyond registration, from its own keys and the shared
/// `[transfer]` and `[wrapup]` sections.
fn policy(config: &Config, account: &config::Account) -> Policy {
    Policy {
        transfer: TransferConfig {
            blind: match config.transfer.blind {
                config::BlindTransfer::Safe => BlindMode::RingFirst,
                config::BlindTransfer::Notify => BlindMode::Notify,
                config::BlindTransfer::Immediate => BlindMode::Immediate,
            },
            timeout: Duration::from_secs(u64::from(config.transfer.blind_timeout)),
            accept_refer: match config.transfer.accept_refer {
                config::AcceptRefer::Accept => ReferPolicy::Accept,
                config::AcceptRefer::Ask => ReferPolicy::Ask,
                config::AcceptRefer::Reject => ReferPolicy::Reject,
            },
            fallback_to_blind: config.transfer.attended_fallback == config::AttendedFallback::Blind,
            referred_by: account.referred_by,
            pbx_codes: (account.transfer_method == config::TransferMethod::Dtmf).then(|| {
                PbxCodes {
                    blind: account.transfer_blind_code.clone(),
                    attended: account.transfer_attended_code.clone(),
                    cancel: account.transfer_cancel_code.clone(),
                }
            }),
        },
        pickup: PickupConfig {
            method: match account.pickup_method() {
                config::PickupMethod::Dialog => PickupMethod::Dialog,
                config::PickupMethod::Code => PickupMethod::Code,
            },
            code: account.pickup_code.clone(),
        },
        srtp: srtp_config(account),
        attendant: attendant_config(config, account),
        answer: answer_config(account, &config.wrapup),
    }
}

/// The favourites (with their screen keys) and park settings for `account`.
fn attendant_config(config: &Config, account: &config::Account) -> AttendantConfig {
    AttendantConfig {
        favourites: config
            .favourites
            .iter()
            .enumerate()
            .map(|(i, f)| FavouriteTarget {
                label: f.label.clone(),
                number: f.number.clone(),
                key: config::favourite_key(i, f).map(|k| k.to_string()),
            })
            .collect(),
        consult: config.transfer.favourite_action == config::FavouriteAction::Consult,
        park: account.park.clone(),
        unpark: account.unpark.clone(),
    }
}

/// The answering policy of `account`: do not disturb, auto-answer, and `[wrapup]`.
fn answer_config(account: &config::Account, wrapup: &config::Wrapup) -> AnswerConfig {
    AnswerConfig {
        auto_answer: match account.auto_answer {
            config::AutoAnswer::Off => AutoAnswer::Off,
            config::AutoAnswer::On => AutoAnswer::On,
            config::AutoAnswer::Intercom => AutoAnswer::Intercom,
        },
        delay: Duration::from_millis(u64::from(account.auto_answer_delay)),
        second: account.auto_answer_second,
        dnd_status: account.dnd_response,
        dnd_on_code: account.dnd_on_code.clone(),
        dnd_off_code: account.dnd_off_code.clone(),
        wrapup: WrapupConfig {
            codes: wrapup.codes.clone(),
            required: wrapup.required,
            limit: (wrapup.seconds > 0).then(|| Duration::from_secs(u64::from(wrapup.seconds))),
            busy: wrapup.busy_during_wrapup,
        },
    }
}

/// The SRTP policy in force for `account`, with keys from the operating system's secure
/// generator. Keys are only sent over TLS unless `srtp_over_insecure` allows otherwise:
/// `optional` without either is turned off (with a warning); `mandatory` without either is
/// refused by the configuration check.
fn srtp_config(account: &config::Account) -> SrtpConfig {
    let keys_may_travel = account.transport == config::Transport::Tls || account.srtp_over_insecure;
    let mode = match account.srtp {
        config::Srtp::Off => SrtpMode::Off,
        config::Srtp::Optional if !keys_may_travel => {
            tracing::warn!(account = %account.name, "srtp = \"optional\" needs transport = \"tls\" (or srtp_over_insecure = true): SRTP is off");
            SrtpMode::Off
        }
        config::Srtp::Optional => SrtpMode::Optional,
        config::Srtp::Mandatory => SrtpMode::Mandatory,
    };
    SrtpConfig {
        mode,
        keys: (mode != SrtpMode::Off).then(|| {
            KeySource::new(|| {
                let mut key = [0u8; KEY_LEN];
                rand::rngs::OsRng.fill_bytes(&mut key);
                key
            })
        }),
    }
}

/// Whether the accounts `config` runs can run together: the one called `name` (it must exist),
/// else every enabled account, all over the first one's transport.
pub fn check_accounts(config: &Config, name: Option<&str>) -> Result<(), SetupError> {
    let first = choose_account(config, name)?;
    if name.is_some() {
        return Ok(());
    }
    match config
        .accounts
        .iter()
        .find(|a| a.enabled && a.transport != first.transport)
    {
        Some(other) => Err(SetupError::MixedTransports {
            account: other.name.clone(),
            transport: other.transport.to_string(),
            first: first.name.clone(),
            first_transport: first.transport.to_string(),
        }),
        None => Ok(()),
    }
}

/// The account called `name` (enabled or not: naming it chooses it), or the first enabled
/// account when no name is given.
pub fn choose_account<'a>(
    config: &'a Config,
    name: Option<&str>,
) -> Result<&'a config::Account, SetupError> {
    let Some(name) = name else {
        return config
            .accounts
            .iter()
            .find(|a| a.enabled)
            .ok_or(SetupError::NoAccount);
    };
    config
        .accounts
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| SetupError::UnknownAccount {
            name: name.to_owned(),
            known: if config.accounts.is_empty() {
                "no accounts".to_owned()
            } else {
                config
                    .accounts
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// The registrar URI of an account: its `registrar`, else `sip:{domain}` (`sips:` over TLS).
pub fn registrar_uri(account: &config::Account) -> String {
    let scheme = match account.transport {
        config::Transport::Tls => "sips",
        config::Transport::Udp | config::Transport::Tcp => "sip",
    };
    account
        .registrar
        .clone()
        .unwrap_or_else(|| format!("{scheme}:{}", account.domain))
}

/// Resolves the host of a `sip:`/`sips:` URI with the system resolver; the port defaults to
/// 5060 (5061 for `sips:`). IPv4 answers are preferred. The error says what went wrong.
pub fn resolve_uri(uri: &str) -> Result<SocketAddr, String> {
    resolve_uri_with(uri, false)
}

/// Like [`resolve_uri`]; with `tls` the default port is 5061 for `sip:` URIs too.
pub fn resolve_uri_with(uri: &str, tls: bool) -> Result<SocketAddr, String> {
    let (host, port) =
        uri_host_port(uri, tls).ok_or_else(|| "not a valid sip: or sips: URI".to_owned())?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("host `{host}` has no address"))
}

/// The host (IPv6 without brackets) and port of a `sip:`/`sips:` URI, with the default port
/// filled in (5061 for `sips:`, or any URI with `tls`).
fn uri_host_port(uri: &str, tls: bool) -> Option<(&str, u16)> {
    let (secure, host, port) = crate::sip::locate::split_uri(uri)?;
    let port = port.unwrap_or(if secure || tls {
        DEFAULT_SIPS_PORT
    } else {
        DEFAULT_SIP_PORT
    });
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
    valid.then_some((host, port))
}

/// The IP address to advertise in Via, Contact and SDP: the bound address when it is a real
/// one; otherwise the local address the OS would use to reach `towards` (found by connecting a
/// UDP socket, which sends nothing); otherwise 127.0.0.1.
pub fn advertised_ip(bound: IpAddr, towards: Option<SocketAddr>) -> IpAddr {
    if !bound.is_unspecified() {
        return bound;
    }
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let Some(target) = towards else {
        return loopback;
    };
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let route = UdpSocket::bind(any)
        .and_then(|s| s.connect(target).and_then(|()| s.local_addr()))
        .map(|a| a.ip());
    match route {
        Ok(ip) if !ip.is_unspecified() => ip,
        Ok(_) => loopback,
        Err(e) => {
            tracing::warn!(%target, error = %e, "no route to the registrar/proxy; advertising 127.0.0.1");
            loopback
        }
    }
}

/// Binds the SIP UDP socket and a TCP listener on the same port, both non-blocking.
///
/// With port 0 a free port is drawn until TCP can share it. With a fixed port, a TCP listener
/// that cannot be bound is fatal only when the account uses TCP; otherwise it is logged and SIP
/// runs over UDP alone.
fn bind_sip(
    addr: SocketAddr,
    transport: Transport,
) -> Result<(UdpSocket, Option<TcpListener>), SetupError> {
    let mut attempt = 1;
    loop {
        let udp = bind_udp(addr).map_err(|source| SetupError::BindSip {
            transport: "UDP",
            addr,
            source,
        })?;
        let port = udp
            .local_addr()
            .map_err(|source| SetupError::Socket {
                what: "reading the SIP socket's address",
                source,
            })?
            .port();
        let tcp_addr = SocketAddr::new(addr.ip(), port);
        match bind_tcp(tcp_addr) {
            Ok(tcp) => {
                set_nonblocking(&udp, Some(&tcp))?;
                return Ok((udp, Some(tcp)));
            }
            // Another free port may suit both transports.
            Err(_) if addr.port() == 0 && attempt < FREE_PORT_TRIES => attempt += 1,
            Err(source) if transport == Transport::Tcp => {
                return Err(SetupError::BindSip {
                    transport: "TCP",
                    addr: tcp_addr,
                    source,
                })
            }
            Err(source) => {
                tracing::warn!(addr = %tcp_addr, error = %source, "no SIP TCP listener; SIP runs over UDP only");
                set_nonblocking(&udp, None)?;
                return Ok((udp, None));
            }
        }
    }
}

/// A UDP socket bound to `addr`. On the IPv6 unspecified address (`[::]`) it is dual-stack
/// (`IPV6_V6ONLY` off, whatever the system's default): IPv4 peers reach it and are seen as
/// IPv4-mapped addresses, which the driver and the media thread turn back into IPv4 ones.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    dual_stack(&socket, addr)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// A TCP listener on `addr`, dual-stack on `[::]` like [`bind_udp`].
fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    dual_stack(&socket, addr)?;
    // As std's listener does: a restarted switchboard gets its port back at once.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Turns `IPV6_V6ONLY` off on a socket about to be bound to the IPv6 unspecified address.
fn dual_stack(socket: &socket2::Socket, addr: SocketAddr) -> io::Result<()> {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => socket.set_only_v6(false),
        _ => Ok(()),
    }
}

fn set_nonblocking(udp: &UdpSocket, tcp: Option<&TcpListener>) -> Result<(), SetupError> {
    udp.set_nonblocking(true)
        .and_then(|()| tcp.map_or(Ok(()), |t| t.set_nonblocking(true)))
        .map_err(|source| SetupError::Socket {
            what: "making the SIP sockets non-blocking",
            source,
        })
}

/// Binds `count` RTP/RTCP socket pairs on `ip`: an even port of `min..=max` for RTP and the
/// odd one above it for RTCP, lowest free pair first.
pub fn bind_rtp(
    ip: IpAddr,
    min: u16,
    max: u16,
    count: usize,
) -> Result<Vec<LineSockets>, SetupError> {
    let first = min.saturating_add(min % 2);
    let mut sockets = Vec::with_capacity(count);
    for port in (first..max).step_by(2) {
        if sockets.len() == count {
            break;
        }
        let (Ok(rtp), Ok(rtcp)) = (
            bind_udp(SocketAddr::new(ip, port)),
            bind_udp(SocketAddr::new(ip, port + 1)),
        ) else {
            continue;
        };
        sockets.push(LineSockets { rtp, rtcp });
    }
    if sockets.len() < count {
        return Err(SetupError::BindRtp {
            ip,
            min,
            max,
            needed: count,
        });
    }
    Ok(sockets)
}

/// A `stun_server` as the driver looks it up (`resolve.rs`, in the background of the start,
/// never blocking): its URI as written, host and port, and the address family preferred
/// when the name has both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunTarget {
    /// The URI as configured, for messages.
    pub uri: String,
    /// Host (a name or an IP literal) and port.
    pub server: crate::sip::stun::StunServer,
    /// The family of our advertised address, tried first.
    pub prefer: IpAddr,
}

impl StunTarget {
    /// The server's address when its host is an IP literal (no DNS needed).
    pub fn literal(&self) -> Option<SocketAddr> {
        let ip = self.server.host.parse::<IpAddr>().ok()?;
        Some(SocketAddr::new(ip, self.server.port))
    }

    /// Of `addrs` (the host's addresses), the first of the preferred family, else the first.
    pub fn pick(&self, addrs: &[IpAddr]) -> Result<SocketAddr, String> {
        addrs
            .iter()
            .find(|a| a.is_ipv4() == self.prefer.is_ipv4())
            .or(addrs.first())
            .map(|ip| SocketAddr::new(*ip, self.server.port))
            .ok_or_else(|| format!("stun_server `{}` has no address", self.uri))
    }
}

/// The [`StunTarget`] of a `stun:host[:port]` URI, preferring the family of `local`; the
/// error says what is wrong with the URI.
fn stun_target(uri: &str, local: IpAddr) -> Result<StunTarget, String> {
    let server = crate::sip::stun::StunServer::parse(uri)
        .map_err(|e| format!("stun_server `{uri}`: {e}"))?;
    Ok(StunTarget {
        uri: uri.to_owned(),
        server,
        prefer: local,
    })
}

/// The core's codec for a configured one.
fn codec(c: config::Codec) -> Codec {
    match c {
        config::Codec::Opus => Codec::Opus,
        config::Codec::Pcmu => Codec::Pcmu,
        config::Codec::Pcma => Codec::Pcma,
        config::Codec::G722 => Codec::G722,
    }
}

/// `switchboard/VERSION`.
fn default_user_agent() -> String {
    format!("switchboard/{}", env!("CARGO_PKG_VERSION"))
}

/// A seed for the user agent's tokens from the operating system's entropy.
fn os_seed() -> Seed {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Seed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"))
    }

    const ACCOUNT: &str = "[[account]]\nname = \"a\"\nuser = \"100\"\ndomain = \"127.0.0.1\"\n";

    #[test]
    fn registrar_defaults_to_the_domain() {
        let cfg = config(ACCOUNT);
        assert_eq!(registrar_uri(&cfg.accounts[0]), "sip:127.0.0.1");
        let cfg = config(&format!("{ACCOUNT}registrar = \"sip:127.0.0.1:5070\"\n"));
        assert_eq!(registrar_uri(&cfg.accounts[0]), "sip:127.0.0.1:5070");
    }

    #[test]
    fn uri_hosts_resolve_with_default_ports() {
        assert_eq!(
            resolve_uri("sip:127.0.0.1:5070"),
            Ok("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            resolve_uri("sip:127.0.0.1;lr"),
            Ok("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            resolve_uri("sips:127.0.0.1"),
            Ok("127.0.0.1:5061".parse().unwrap())
        );
        assert_eq!(
            resolve_uri("sip:[::1]:5080"),
            Ok("[::1]:5080".parse().unwrap())
        );
        assert_eq!(
            resolve_uri("sip:localhost:5062").map(|a| (a.ip().is_loopback(), a.port())),
            Ok((true, 5062))
        );
        // No lookup of unknown names here: the system resolver is not on loopback.
        assert_eq!(
            resolve_uri("SIP:100@127.0.0.1:5071;transport=tcp?x=y"),
            Ok("127.0.0.1:5071".parse().unwrap())
        );
        for bad in [
            "pbx:5060",
            "sip:",
            "sip:127.0.0.1:0",
            "sip:127.0.0.1:x",
            "sip:[::1",
            "sip:a b",
        ] {
            assert_eq!(
                resolve_uri(bad),
                Err("not a valid sip: or sips: URI".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn advertised_ip_prefers_the_bound_address() {
        let bound: IpAddr = "127.0.0.7".parse().unwrap();
        assert_eq!(advertised_ip(bound, None), bound);
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        assert_eq!(advertised_ip(any, None), IpAddr::V4(Ipv4Addr::LOCALHOST));
        // Towards a loopback peer the OS picks a loopback source.
        let towards: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        assert!(advertised_ip(any, Some(towards)).is_loopback());
    }

    #[test]
    fn a_sip_socket_on_the_ipv6_unspecified_address_is_dual_stack() {
        let (udp, tcp) = bind_sip("[::]:0".parse().unwrap(), Transport::Udp).expect("binds");
        let port = udp.local_addr().expect("addr").port();
        assert!(tcp.is_some(), "TCP shares the port");
        // An IPv4 peer reaches it, seen as an IPv4-mapped address.
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        peer.send_to(b"v4", ("127.0.0.1", port)).expect("send");
        udp.set_nonblocking(false).expect("blocking");
        udp.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 8];
        let (n, from) = udp.recv_from(&mut buf).expect("the IPv4 datagram arrives");
        assert_eq!(&buf[..n], b"v4");
        assert_eq!(
            crate::sip::msg::unmapped(from),
            peer.local_addr().expect("addr")
        );
        // And an IPv6 one, as itself.
        let peer6 = UdpSocket::bind("[::1]:0").expect("::1 must be available");
        peer6.send_to(b"v6", ("::1", port)).expect("send");
        let (_, from) = udp.recv_from(&mut buf).expect("the IPv6 datagram arrives");
        assert_eq!(from, peer6.local_addr().expect("addr"));
        // RTP sockets on [::] are dual-stack too.
        let rtp = bind_rtp("::".parse().unwrap(), 43200, 43299, 1).expect("rtp");
        let rtp_port = rtp[0].rtp.local_addr().expect("addr").port();
        peer.send_to(b"rtp", ("127.0.0.1", rtp_port)).expect("send");
        rtp[0]
            .rtp
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        assert!(rtp[0].rtp.recv_from(&mut buf).is_ok());
    }

    #[test]
    fn accounts_are_chosen_by_name_or_first() {
        let cfg = config(&format!(
            "{ACCOUNT}\n[[account]]\nname = \"b\"\nuser = \"200\"\ndomain = \"d\"\n"
        ));
        assert_eq!(
            choose_account(&cfg, None).map(|a| &a.name[..]).ok(),
            Some("a")
        );
        assert_eq!(
            choose_account(&cfg, Some("b")).map(|a| &a.name[..]).ok(),
            Some("b")
        );
        let err = choose_account(&cfg, Some("c")).expect_err("no such account");
        assert_eq!(
            err.to_string(),
            "no account named `c`; the configuration has: a, b"
        );
        assert!(matches!(
            choose_account(&config(""), None),
            Err(SetupError::NoAccount)
        ));
    }

    #[test]
    fn every_enabled_account_runs_and_one_named_runs_alone() {
        let cfg = config(&format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 41200\nrtp_port_max = 41300\n\
             [[account]]\nname = \"off\"\nuser = \"9\"\ndomain = \"127.0.0.9\"\nenabled = false\n\
             {ACCOUNT}registrar = \"sip:127.0.0.1:5070\"\n\
             [[account]]\nname = \"b\"\nuser = \"200\"\ndomain = \"127.0.0.2\"\n"
        ));
        // All: the first enabled account first, the disabled one left out, both registering.
        let all = Setup::all(&cfg).expect("setup");
        assert_eq!(all.ua.account.name, "a");
        assert_eq!(
            all.ua.account.registrar_addr,
            Some("127.0.0.1:5070".parse().unwrap())
        );
        let others: Vec<(&str, bool)> = all
            .ua
            .others
            .iter()
            .map(|a| (a.name.as_str(), a.register))
            .collect();
        assert_eq!(others, [("b", true)]);
        assert!(all.ua.others[0].keepalive.is_some());
        drop(all);
        // `--account b`: b registers; a is there for routes, neither registered nor pinged.
        let alone = Setup::new(&cfg, choose_account(&cfg, Some("b")).expect("b")).expect("setup");
        assert_eq!(alone.ua.account.name, "b");
        let others: Vec<(&str, bool, bool)> = alone
            .ua
            .others
            .iter()
            .map(|a| (a.name.as_str(), a.register, a.keepalive.is_some()))
            .collect();
        assert_eq!(others, [("a", false, false)]);
    }

    #[test]
    fn each_account_gets_its_own_keys_for_its_pbx() {
        let cfg = config(&format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 41400\nrtp_port_max = 41500\n\
             [transfer]\nblind_timeout = 17\n\
             {ACCOUNT}\
             [[account]]\nname = \"b\"\nuser = \"200\"\ndomain = \"127.0.0.2\"\n\
             transfer_method = \"dtmf\"\npickup_code = \"*8{{ext}}\"\nauto_answer = \"on\"\n\
             park = \"700\"\n"
        ));
        let all = Setup::all(&cfg).expect("setup");
        let (a, b) = (&all.ua.account.policy, &all.ua.others[0].policy);
        assert!(a.transfer.pbx_codes.is_none());
        assert!(b.transfer.pbx_codes.is_some());
        assert_eq!(
            (a.pickup.method, b.pickup.method),
            (PickupMethod::Dialog, PickupMethod::Code)
        );
        assert_eq!(
            (a.answer.auto_answer, b.answer.auto_answer),
            (AutoAnswer::Off, AutoAnswer::On)
        );
        assert_eq!(
            (a.attendant.park.as_deref(), b.attendant.park.as_deref()),
            (None, Some("700"))
        );
        // The shared [transfer] section, in both.
        for policy in [a, b] {
            assert_eq!(policy.transfer.timeout, Duration::from_secs(17));
        }
    }

    #[test]
    fn rtp_ports_are_even_and_skip_busy_ones() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // Find two free even ports next to each other by probing.
        let sockets = bind_rtp(ip, 40001, 40100, 2).expect("free ports");
        let ports: Vec<u16> = sockets
            .iter()
            .map(|s| s.rtp.local_addr().unwrap().port())
            .collect();
        assert!(ports.iter().all(|p| p % 2 == 0 && *p >= 40002), "{ports:?}");
        assert!(ports[0] < ports[1]);
        // With those held, the next call gets other ports.
        let more = bind_rtp(ip, 40001, 40100, 1).expect("free port");
        let port = more[0].rtp.local_addr().unwrap().port();
        assert_eq!(more[0].rtcp.local_addr().unwrap().port(), port + 1);
        assert!(port % 2 == 0 && !ports.contains(&port));
        // A range with no even port fails with a message naming it.
        let err = bind_rtp(ip, 40001, 40002, 1).expect_err("no even port pair");
        assert_eq!(
            err.to_string(),
            "no free even UDP port for RTP in 40001..=40002 on 127.0.0.1 (needed 1)"
        );
    }

    #[test]
    fn setup_of_a_peer_to_peer_account() {
        let cfg = config(&format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 41000\nrtp_port_max = 41100\n\
             [codecs]\norder = [\"pcma\", \"pcmu\"]\n{ACCOUNT}register = false\n"
        ));
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("setup");
        let ua = &setup.ua;
        assert_eq!(setup.bound.ip(), ua.local.ip());
        assert_ne!(ua.local.port(), 0);
        let tcp = setup.sip_tcp.as_ref().expect("TCP listener");
        assert_eq!(tcp.local_addr().unwrap(), setup.bound);
        assert_eq!(ua.rtp_ports.len(), 2, "[ui] lines defaults to 2");
        assert_eq!(ua.codecs, [Codec::Pcma, Codec::Pcmu]);
        assert_eq!(ua.account.auth_user, "100");
        assert_eq!(ua.account.registrar_addr, None);
        assert!(ua.user_agent.starts_with("switchboard/"));
    }

    #[test]
    fn ui_lines_sets_how_many_rtp_port_pairs_are_bound() {
        let cfg = config(&format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 41400\nrtp_port_max = 41500\n\
             [ui]\nlines = 5\n{ACCOUNT}register = false\n"
        ));
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("setup");
        assert_eq!(setup.ua.rtp_ports.len(), 5);
        assert_eq!(setup.rtp.len(), 5, "one socket pair per line");
        assert!(setup.ua.rtp_ports.iter().all(|p| p % 2 == 0));
    }

    #[test]
    fn setup_resolves_registrar_and_proxy() {
        let cfg = config(&format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 41200\nrtp_port_max = 41300\n\
             {ACCOUNT}registrar = \"sip:127.0.0.1:5070\"\n\
             outbound_proxy = \"sip:127.0.0.1:5080;lr\"\ntransport = \"tcp\"\n"
        ));
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("setup");
        let account = &setup.ua.account;
        assert_eq!(
            account.registrar_addr,
            Some("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            account.outbound_proxy,
            Some((
                "sip:127.0.0.1:5080;lr".to_owned(),
                "127.0.0.1:5080".parse().unwrap()
            ))
        );
        assert_eq!(setup.ua.transport, Transport::Tcp);
    }

    #[test]
    fn the_stun_server_is_left_to_the_driver_and_its_mistakes_are_kept_for_an_event() {
        let mut cfg = config(&format!("[network]\nbind = \"127.0.0.1:0\"\n{ACCOUNT}"));
        assert_eq!(
            Setup::new(&cfg, &cfg.accounts[0]).expect("setup").stun,
            None
        );
        cfg.accounts[0].stun_server = Some("stun:127.0.0.1".to_owned());
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("setup");
        let target = setup.stun.clone().expect("configured").expect("usable");
        assert_eq!(target.literal(), Some("127.0.0.1:3478".parse().unwrap()));
        // A name is left to the driver's DNS: nothing is looked up here.
        cfg.accounts[0].stun_server = Some("stun:stun.invalid:3479".to_owned());
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("setup");
        let target = setup.stun.clone().expect("configured").expect("usable");
        assert_eq!(target.literal(), None);
        assert_eq!(target.server.host, "stun.invalid");
        let (v4, v6): (IpAddr, IpAddr) =
            ("192.0.2.3".parse().unwrap(), "2001:db8::3".parse().unwrap());
        assert_eq!(
            target.pick(&[v6, v4]),
            Ok(SocketAddr::new(v4, 3479)),
            "our family first"
        );
        assert_eq!(target.pick(&[v6]), Ok(SocketAddr::new(v6, 3479)));
        assert!(target.pick(&[]).is_err());
        // Built by hand: the configuration check would reject it already.
        cfg.accounts[0].stun_server = Some("127.0.0.1".to_owned());
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("not fatal");
        assert!(
            matches!(&setup.stun, Some(Err(e)) if e.starts_with("stun_server `127.0.0.1`")),
            "{:?}",
            setup.stun
        );
    }

    #[test]
    fn a_proxy_or_trunk_registrar_named_by_domain_is_left_to_the_core() {
        let mut cfg = config(&format!("[network]\nbind = \"127.0.0.1:0\"\n{ACCOUNT}"));
        cfg.accounts[0].outbound_proxy = Some("sip:proxy.invalid".to_owned());
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("not looked up here");
        assert_eq!(setup.ua.account.server_uri(), "sip:proxy.invalid");
        assert_eq!(setup.ua.account.proxy_addr(), None, "no address before DNS");
        // Not registering: the core locates it too (a name that does not exist is no error
        // at start: the start never waits on DNS).
        cfg.accounts[0].register = false;
        let setup = Setup::new(&cfg, &cfg.accounts[0]).expect("not looked up here either");
        assert_eq!(setup.ua.account.proxy_addr(), None, "no address before DNS");
        // A trunk (an account beside the first that does not register) whose calls go to its
        // registrar named by a host name: left to the core as well.
        let mut trunk = cfg.accounts[0].clone();
        trunk.name = "trunk".to_owned();
        trunk.outbound_proxy = None;
        trunk.registrar = Some("sip:trunk.invalid:5080".to_owned());
        cfg.accounts.push(trunk);
        let setup = Setup::all(&cfg).expect("not looked up here either");
        assert_eq!(setup.ua.others[0].registrar, "sip:trunk.invalid:5080");
        assert_eq!(setup.ua.others[0].registrar_addr, None);
    }

    #[test]
    fn an_unusable_outbound_proxy_is_fatal() {
        // Built by hand: the configuration check would reject this URI already.
        let mut cfg = config(&format!("[network]\nbind = \"127.0.0.1:0\"\n{ACCOUNT}"));
        cfg.accounts[0].outbound_proxy = Some("proxy".to_owned());
        let err = Setup::new(&cfg, &cfg.accounts[0]).expect_err("unusable");
        assert_eq!(
            err.to_string(),
            "outbound proxy `proxy`: not a valid sip: or sips: URI"
        );
    }
}
