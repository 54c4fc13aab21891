//! The driver: the tokio task that owns the sockets and the clock and runs the SIP core.
//!
//! ```text
//!   UDP socket ──────────────┐
//!   TCP connections (tcp.rs) ┤
//!   TLS connections (tls.rs) ┤                        ┌─► UDP send_to / TCP connection
//!   front end's Commands ────┼─► UserAgent (sans-IO) ─┼─► Events to the front end
//!   media engine's Reports ──┤          │             │
//!   sleep_until(Timeout) ────┤          ├─ MediaOrders ──► media engine (its own thread)
//!   DNS answers (resolve.rs) ┤          └─ Resolves ─────► DNS lookup tasks (resolve.rs)
//!   SIGINT / SIGTERM ────────┘   (quit)
//! ```
//!
//! [`run`] loops over one `tokio::select!` of those inputs. After every input it drains the
//! core's `poll_output` until its `Timeout`: every [`Transmit`] is sent (a send error is logged, never fatal), every [`Event`]
//! is forwarded (`outlet.rs`: events about calls also go to the history and hooks threads of
//! `followers.rs`, so the loop never waits on a disk or a `fork`) and every media order goes
//! to the media engine (see `media.rs`); then it sleeps until the next input or the core's
//! next deadline. It ends when the core says it has stopped (after `quit`), after a bounded
//! wait for the history and hooks threads to finish what is queued. The first SIGINT/SIGTERM
//! is a `quit`; a second one ends the loop at once. With a STUN server, a dial command or an
//! incoming INVITE while no call is up first renews stale public RTP addresses (`stun.rs`,
//! at most 500 ms); IPv4-mapped sources of the dual-stack socket are read as IPv4.
//!
//! [`setup`] prepares everything beforehand (account, addresses, sockets). The run loop reads
//! the clock in one place ([`now`]) and hands it to the core, which never reads it (nor does
//! the TUI's model; the media thread keeps its own clock); it holds no SIP logic: which call
//! is on which line is the core's business.

pub mod capture;
mod followers;
mod media;
pub mod outlet;
mod resolve;
pub mod router;
pub mod setup;
mod stun;
pub(crate) mod tcp;
mod tls;

use std::future::pending;
use std::io;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use thiserror::Error;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::front::{Command, Event, TraceDirection};
use crate::media::api::{Control, Report, SoundOrder, VoiceSettings};
use crate::media::engine::MediaEngine;
use crate::sip::{LineNo, Output, Transmit, Transport, UserAgent};
use crate::sound::{SoundCommand, VoiceStage};
use media::MediaBridge;
use outlet::Outlet;
/// The bytes the program's allocator has handed out and not taken back, when the program
/// counts them (the `switchboard` binary does; tests of the library do not): `stats` reports it.
pub static HEAP_IN_USE: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

pub use setup::{
    check_accounts, choose_account, device_host, MediaSetup, RecordingSetup, Setup, SetupError,
};
use tcp::{TcpConnections, TcpInput};

/// Receive buffer for one UDP datagram: the largest a UDP datagram can be (the core never
/// sends more than 64 KiB either).
const UDP_RECV_BUFFER: usize = 65_535;

/// Why the run loop could not start.
#[derive(Debug, Error)]
pub enum DriverError {
    /// The media engine could not start.
    #[error("media engine: {0}")]
    Media(String),
    /// A socket or signal handler could not be handed to tokio.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
}

/// Runs the user agent until it stops.
///
/// Emits [`Event::Started`] (with `note`, one line for the operator) first, then every event of
/// the core on `events`. Commands come from `commands`; when that channel closes, the driver
/// quits as if it had received `quit`. Must be called inside a tokio runtime with
/// I/O and time enabled; a current-thread runtime is enough.
pub async fn run(
    setup: Setup,
    note: String,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) -> Result<(), DriverError> {
    let Setup {
        ua: mut config,
        bound,
        sip_udp,
        sip_tcp,
        tls: tls_client,
        rtp,
        media: media_setup,
        observers,
        mut router,
        dns_servers,
        stun: stun_server,
    } = setup;
    let (dns, mut dns_answers) = resolve::Dns::new(&dns_servers);
    let mut events = Outlet::new(events, observers);
    let io_error = |what| move |source| DriverError::Io { what, source };
    let udp = UdpSocket::from_std(sip_udp).map_err(io_error("registering the SIP UDP socket"))?;
    let listener = sip_tcp
        .map(TcpListener::from_std)
        .transpose()
        .map_err(io_error("registering the SIP TCP listener"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(io_error("listening for SIGINT"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(io_error("listening for SIGTERM"))?;
    let (mut tcp, mut tcp_inputs) = TcpConnections::new(bound.ip());
    let (mut tls, mut tls_inputs) = TcpConnections::with_tls(bound.ip(), tls_client);

    let rtp_ports: Vec<u16> = rtp
        .iter()
        .filter_map(|s| s.rtp.local_addr().ok().map(|a| a.port()))
        .collect();
    tracing::info!(
        %bound,
        advertised = %config.local,
        tcp = listener.is_some(),
        ?rtp_ports,
        "SIP sockets bound"
    );
    events.send(Event::Started {
        local: config.local.to_string(),
        transport: config.transport.via_token().to_ascii_lowercase(),
        account: config.account.aor(),
        accounts: std::iter::once(&config.account)
            .chain(&config.others)
            .map(|a| a.name.clone())
            .collect(),
        note,
        lines: LineNo::try_from(config.rtp_ports.len()).unwrap_or(LineNo::MAX),
    });

    let stun_server = match stun_server {
        Some(Ok(target)) => Some(dns.stun_server(&target).await),
        Some(Err(why)) => Some(Err(why)),
        None => None,
    };
    let (rtp, mut stun_refresher, public_rtcp) = match stun_server {
        Some(Ok(server)) => {
            let asked = now();
            let (rtp, mappings) = stun::learn(server, rtp).await;
            for event in stun::apply(&mut config.media_ip, &mut config.rtp_ports, &mappings) {
                events.send(event);
            }
            let refresher = stun::Refresher::new(server, &rtp, &mappings, asked);
            let public_rtcp: Vec<Option<SocketAddr>> =
                mappings.iter().map(|m| m.rtcp.clone().ok()).collect();
            (rtp, refresher, public_rtcp)
        }
        Some(Err(message)) => {
            tracing::warn!(%message, "no STUN");
            events.send(Event::Network { message });
            (rtp, None, Vec::new())
        }
        None => (rtp, None, Vec::new()),
    };

    let (report_tx, mut reports) = mpsc::unbounded_channel();
    let recording = media_setup.recording.clone();
    let mut voice = media_setup.engine.voice;
    let (engine, notes) = media::start(media_setup, rtp, report_tx).map_err(DriverError::Media)?;
    let mut bridge = MediaBridge::new(recording.clone());
    for note in notes {
        bridge.note(&note);
        events.send(note);
    }
    events.send(voice_event(voice));

    let config_registrar_unknown = config.account.server_addr().is_none();
    let mut ua = UserAgent::new(config, now());
    for (line, public) in public_rtcp.into_iter().enumerate() {
        if let Some(public) = public {
            ua.set_public_rtcp(line, public);
        }
    }
    ua.set_record_auto(recording.auto);
    let mut buf = vec![0u8; UDP_RECV_BUFFER];
    let mut commands_open = true;
    // Bound to every interface with no registrar address yet: the first DNS answer tells
    // which local address to advertise.
    let mut route_unknown = bound.ip().is_unspecified() && config_registrar_unknown;
    let mut signalled = false;
    loop {
        let mut outputs = Outputs {
            udp: &udp,
            tcp: &mut tcp,
            tls: &mut tls,
            events: &mut events,
            bridge: &mut bridge,
            engine: &engine,
            dns: &dns,
        };
        let deadline = outputs.drain(&mut ua).await;
        if ua.is_stopped() {
            break;
        }
        tokio::select! {
            received = udp.recv_from(&mut buf) => match received {
                Ok((len, src)) => {
                    let src = crate::sip::msg::unmapped(src);
                    events.sip(TraceDirection::In, src, &buf[..len]);
                    let invite = stun::is_invite(&buf[..len]);
                    for event in stun::before_call(stun_refresher.as_mut(), &mut ua, invite).await {
                        events.send(event);
                    }
                    ua.handle_datagram(now(), Transport::Udp, src, &buf[..len]);
                }
                Err(e) => tracing::debug!(error = %e, "SIP UDP receive failed"),
            },
            Some(input) = tcp_inputs.recv() => match input {
                TcpInput::Message { peer, bytes } => {
                    events.sip(TraceDirection::In, peer, &bytes);
                    let invite = stun::is_invite(&bytes);
                    for event in stun::before_call(stun_refresher.as_mut(), &mut ua, invite).await {
                        events.send(event);
                    }
                    ua.handle_datagram(now(), Transport::Tcp, peer, &bytes);
                }
                TcpInput::Closed { peer, id, .. } => {
                    if tcp.closed(peer, id) {
                        ua.handle_connection_lost(now(), peer);
                    }
                }
            },
            Some(input) = tls_inputs.recv() => match input {
                TcpInput::Message { peer, bytes } => {
                    events.sip(TraceDirection::In, peer, &bytes);
                    let invite = stun::is_invite(&bytes);
                    for event in stun::before_call(stun_refresher.as_mut(), &mut ua, invite).await {
                        events.send(event);
                    }
                    ua.handle_datagram(now(), Transport::Tls, peer, &bytes);
                }
                TcpInput::Closed { peer, id, error } => {
                    if tls.closed(peer, id) {
                        match error {
                            Some(reason) => ua.handle_connection_failed(now(), peer, &reason),
                            None => ua.handle_connection_lost(now(), peer),
                        }
                    }
                }
            },
            accepted = accept(listener.as_ref()) => match accepted {
                Ok((stream, peer)) => tcp.accept(stream, peer),
                Err(e) => tracing::warn!(error = %e, "SIP TCP accept failed"),
            },
            command = commands.recv(), if commands_open => {
                let command = command.unwrap_or_else(|| {
                    tracing::info!("the front end closed its commands; quitting");
                    commands_open = false;
                    Command::Sip(crate::sip::Command::Quit)
                });
                match command {
                    Command::Sip(command) => match router.apply(command) {
                        Ok(command) => {
                            let starts = stun::starts_call(&command);
                            for event in stun::before_call(stun_refresher.as_mut(), &mut ua, starts).await {
                                events.send(event);
                            }
                            ua.command(now(), command)
                        }
                        Err(message) => events.send(error(message)),
                    },
                    Command::Route(name) => match router.choose(&name) {
                        Ok(()) => tracing::info!(route = %name, "route chosen for the next call"),
                        Err(message) => events.send(error(message)),
                    },
                    Command::Trace(mode) => events.set_trace(mode),
                    Command::Voice(stage, on) => {
                        let flag = match stage {
                            VoiceStage::NoiseSuppression => &mut voice.noise_suppression,
                            VoiceStage::Agc => &mut voice.agc,
                        };
                        *flag = on.unwrap_or(!*flag);
                        engine.send(Control::Voice(voice));
                        tracing::info!(?voice, "microphone clean-up switched");
                        events.send(voice_event(voice));
                    }
                    Command::Stats => events.send(stats_event(ua.census())),
                    Command::Sound(sound) => match sound_control(sound) {
                        Some(control) => engine.send(control),
                        None => tracing::debug!("device listing is the front end's to answer"),
                    },
                }
            }
            Some(report) = reports.recv() => {
                if let Report::RecordingStopped { failed: true, call_id, .. } = &report {
                    ua.handle_recording_failed(call_id);
                }
                if let Some((call_id, seconds)) = bridge.silence(&report) {
                    ua.handle_media_timeout(now(), &call_id, seconds);
                } else if let Some(event) = bridge.report(report) {
                    events.send(event);
                }
            }
            Some((uri, answer)) = dns_answers.recv() => {
                if let Ok(located) = &answer {
                    if let (Some((first, _)), true) = (located.targets.first(), route_unknown) {
                        // Bound to every interface: advertise the one that reaches the server
                        // (once: NAT rewrite may replace it with the public address later).
                        ua.set_local_ip(setup::advertised_ip(bound.ip(), Some(*first)));
                        route_unknown = false;
                    }
                    if let Some(host) = crate::sip::locate::Plan::of_uri(&uri).and_then(|p| p.host()) {
                        for (target, _) in &located.targets {
                            tls.add_server_name(*target, &host);
                        }
                    }
                }
                ua.handle_resolved(now(), &uri, answer);
            }
            () = sleep_until(deadline) => ua.handle_timeout(now()),
            _ = interrupt.recv() => {
                if on_signal("SIGINT", &mut signalled, &mut ua) {
                    break;
                }
            }
            _ = terminate.recv() => {
                if on_signal("SIGTERM", &mut signalled, &mut ua) {
                    break;
                }
            }
        }
    }
    drop(engine);
    events.close();
    tracing::info!("driver stopped");
    Ok(())
}

/// An `error` event (the core's vocabulary).
fn error(message: String) -> Event {
    Event::Sip(crate::sip::Event::Error { message })
}

/// The `stats` event: the core's census and the process's threads, files and memory.
fn stats_event(core: crate::sip::Census) -> Event {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as u64);
    Event::Stats {
        core,
        threads: field("Threads:"),
        fds,
        rss_kib: field("VmRSS:"),
        rss_anon_kib: field("RssAnon:"),
        heap_kib: HEAP_IN_USE.get().map(|in_use| in_use() / 1024),
    }
}

/// The `voice` event for the microphone's clean-up stages.
fn voice_event(voice: VoiceSettings) -> Event {
    Event::Voice {
        noise_suppression: voice.noise_suppression,
        agc: voice.agc,
    }
}

/// The media engine's order for a sound-check command. Choosing a device switches it live
/// here; writing it into the configuration file, and listing devices, are the front end's
/// business (`None`).
fn sound_control(command: SoundCommand) -> Option<Control> {
    Some(match command {
        SoundCommand::Level(on) => Control::SoundCheck(SoundOrder::Meter(on)),
        SoundCommand::Tone => Control::SoundCheck(SoundOrder::Tone),
        SoundCommand::Echo(on) => Control::SoundCheck(SoundOrder::Echo(on)),
        SoundCommand::UseDevice(role, device) => Control::SwitchDevice { role, device },
        SoundCommand::ListDevices => return None,
    })
}

/// The driver's clock: the one place the run loop reads the time it hands to the core.
#[allow(clippy::disallowed_methods)] // The driver is where time enters: everything else is given `now`.
fn now() -> Instant {
    Instant::now()
}

/// The wall-clock time, for naming recordings.
#[allow(clippy::disallowed_methods)] // The driver is where time enters.
fn wallclock() -> SystemTime {
    SystemTime::now()
}

/// Where the core's outputs go.
struct Outputs<'a> {
    udp: &'a UdpSocket,
    tcp: &'a mut TcpConnections,
    tls: &'a mut TcpConnections,
    events: &'a mut Outlet,
    bridge: &'a mut MediaBridge,
    engine: &'a MediaEngine,
    dns: &'a resolve::Dns,
}

impl Outputs<'_> {
    /// Takes every output of the core until its next deadline (returned; `None`: none):
    /// messages are sent, DNS lookups started, events forwarded, media orders handed to the
    /// media engine.
    async fn drain(&mut self, ua: &mut UserAgent) -> Option<Instant> {
        loop {
            match ua.poll_output()? {
                Output::Transmit(Transmit {
                    transport,
                    dst,
                    payload,
                }) => {
                    self.events.sip(TraceDirection::Out, dst, &payload);
                    match transport {
                        Transport::Udp => {
                            if let Err(e) = self.udp.send_to(&payload, dst).await {
                                tracing::warn!(%dst, len = payload.len(), error = %e, "SIP UDP send failed");
                            }
                        }
                        Transport::Tcp => self.tcp.send(dst, payload),
                        Transport::Tls => self.tls.send(dst, payload),
                    }
                }
                Output::Resolve(request) => self.dns.start(request),
                Output::Event(event) => self.events.send(event),
                Output::Media(order) => {
                    if let Some(control) = self.bridge.order(order, wallclock()) {
                        self.engine.send(control);
                    }
                }
                Output::Timeout(deadline) => return Some(deadline),
            }
        }
    }
}

/// A signal: the first one quits cleanly; the next one says to stop at once (returns true).
fn on_signal(name: &str, signalled: &mut bool, ua: &mut UserAgent) -> bool {
    if *signalled {
        tracing::warn!(
            signal = name,
            "second signal; stopping without waiting for the network"
        );
        return true;
    }
    tracing::info!(signal = name, "quitting");
    *signalled = true;
    ua.command(now(), crate::sip::Command::Quit);
    false
}

/// The next connection on the listener; never ready without one.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => pending().await,
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sip::{self, CallState};
    use std::path::Path;
    use std::time::Duration;

    /// A peer-to-peer account on 127.0.0.1 (any port) using `transport`.
    fn setup(user: &str, transport: &str) -> Setup {
        let text = format!(
            "[network]\nbind = \"127.0.0.1:0\"\nrtp_port_min = 42000\nrtp_port_max = 42999\n\
             [[account]]\nname = \"t\"\nuser = \"{user}\"\ndomain = \"127.0.0.1\"\n\
             register = false\ntransport = \"{transport}\"\n[codecs]\norder = [\"pcmu\"]\n"
        );
        let config = Config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
        Setup::new(&config, &config.accounts[0]).expect("setup")
    }

    /// The next event that `pred` accepts, within 5 s.
    async fn wait(
        events: &mut mpsc::UnboundedReceiver<Event>,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let find = async {
            loop {
                match events.recv().await {
                    Some(event) if pred(&event) => return event,
                    Some(_) => {}
                    None => panic!("event channel closed"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), find)
            .await
            .expect("event within 5 s")
    }

    fn call_state(state: CallState) -> impl Fn(&Event) -> bool {
        move |e| matches!(e, Event::Sip(sip::Event::Call { state: s, .. }) if *s == state)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn starts_then_stops_on_quit_or_closed_commands() {
        runtime().block_on(async {
            let setup = setup("solo", "udp");
            let local = setup.ua.local.to_string();
            let (commands, commands_rx) = mpsc::channel(4);
            let (events_tx, mut events) = mpsc::unbounded_channel();
            let driver = run(setup, "note".into(), commands_rx, events_tx);
            let script = async {
                let started = wait(&mut events, |_| true).await;
                assert_eq!(
                    started,
                    Event::Started {
                        local,
                        transport: "udp".into(),
                        account: "solo@127.0.0.1".into(),
                        accounts: vec!["t".into()],
                        note: "note".into(),
                        lines: 2,
                    }
                );
                drop(commands);
                wait(&mut events, |e| *e == Event::Sip(sip::Event::Stopped)).await;
            };
            let (result, ()) = tokio::join!(driver, script);
            result.expect("clean stop");
        });
    }

    /// Two drivers on loopback: A calls B over `transport`, B answers, A hangs up.
    fn call_between_two_drivers(transport: &str) {
        runtime().block_on(async {
            let (a, b) = (setup("a", transport), setup("b", transport));
            let target = match transport {
                "tcp" => format!("sip:b@{};transport=tcp", b.ua.local),
                _ => format!("sip:b@{}", b.ua.local),
            };
            let (a_cmd, a_cmd_rx) = mpsc::channel(4);
            let (b_cmd, b_cmd_rx) = mpsc::channel(4);
            let (a_tx, mut a_events) = mpsc::unbounded_channel();
            let (b_tx, mut b_events) = mpsc::unbounded_channel();
            let script = async {
                a_cmd
                    .send(sip::Command::Dial(target).into())
                    .await
                    .expect("send");
                wait(&mut b_events, |e| {
                    matches!(e, Event::Sip(sip::Event::Incoming { line: 1, .. }))
                })
                .await;
                b_cmd
                    .send(sip::Command::Answer(None).into())
                    .await
                    .expect("send");
                wait(&mut a_events, call_state(CallState::Connected)).await;
                wait(&mut b_events, call_state(CallState::Connected)).await;
                a_cmd
                    .send(sip::Command::Hangup(None).into())
                    .await
                    .expect("send");
                wait(&mut b_events, call_state(CallState::Ended)).await;
                a_cmd.send(sip::Command::Quit.into()).await.expect("send");
                b_cmd.send(sip::Command::Quit.into()).await.expect("send");
                wait(&mut a_events, |e| *e == Event::Sip(sip::Event::Stopped)).await;
                wait(&mut b_events, |e| *e == Event::Sip(sip::Event::Stopped)).await;
            };
            let (ra, rb, ()) = tokio::join!(
                run(a, String::new(), a_cmd_rx, a_tx),
                run(b, String::new(), b_cmd_rx, b_tx),
                script
            );
            ra.expect("A stops cleanly");
            rb.expect("B stops cleanly");
        });
    }

    #[test]
    fn a_call_between_two_drivers_over_udp() {
        call_between_two_drivers("udp");
    }

    #[test]
    fn a_call_between_two_drivers_over_tcp() {
        call_between_two_drivers("tcp");
    }
}
