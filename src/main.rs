//! The `switchboard` command: CLI, choice of configuration, logging, and the wiring of the
//! front end's channels to the driver. No SIP logic lives here.
//!
//! With `--headless`, commands come from stdin and events go to stdout as JSON lines, with the
//! driver on this thread. Without it, the driver runs on a thread of its own and the full-screen
//! interface ([`switchboard::tui`]) runs here; the terminal is restored however it ends.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use switchboard::config::{self, AudioBackend, Config, ConfigError};
use switchboard::directory::Directory;
use switchboard::driver::{self, Setup};
use switchboard::front::{Command, Event, ListedDevice};
use switchboard::headless;
use switchboard::history::History;
use switchboard::media::device::{DeviceInfo, Host};
use switchboard::sip;
use switchboard::sound::{AudioDevice, DeviceRole, SoundCommand};
use switchboard::tui::stderr::StderrRedirect;
use switchboard::tui::{self, App, DirectoryFinder, Keymap};

/// Exit code for a configuration or command-line problem.
const EXIT_CONFIG: u8 = 2;
/// How many commands may wait for the driver before the reader blocks.
const COMMAND_QUEUE: usize = 64;

/// A keyboard-driven terminal SIP softphone for call-centre operators.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file [default: ~/.config/switchboard/config.toml, else a built-in
    /// peer-to-peer account].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Read commands from stdin, one per line; write events to stdout as JSON lines.
    #[arg(long)]
    headless: bool,
    /// Log file [default: general.log_file, else $XDG_STATE_HOME/switchboard/switchboard.log].
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Append every SIP message sent and received, whole and unredacted (credentials and
    /// SRTP keys included), to FILE (mode 0600), for debugging with a PBX's engineer.
    #[arg(long, value_name = "FILE")]
    sip_capture: Option<PathBuf>,
    /// Run only this account, by name (the others serve routes without registering)
    /// [default: every account with `enabled = true`, at once].
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Take the microphone from this WAV file (selects the file audio backend).
    #[arg(long, value_name = "FILE.wav")]
    audio_in: Option<PathBuf>,
    /// Write what the headset would play to this WAV file (selects the file audio backend).
    #[arg(long, value_name = "FILE.wav")]
    audio_out: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Check a configuration file: print each problem as `file:line:col: key: message`.
    CheckConfig {
        /// The file to check [default: ~/.config/switchboard/config.toml].
        file: Option<PathBuf>,
    },
    /// List the audio devices: their ids and names go in `[audio] input`, `output`,
    /// `ring_output`.
    Devices,
}

mod heap;

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

fn main() -> ExitCode {
    let _ = driver::HEAP_IN_USE.set(heap::in_use);
    let cli = Cli::parse();
    match cli.command {
        Some(Sub::CheckConfig { file }) => check_config(file, cli.account.as_deref()),
        Some(Sub::Devices) => devices(cli.config.as_deref()),
        None => run(cli),
    }
}

/// `switchboard [--account NAME] check-config [FILE]`: the file's problems, then whether the
/// accounts it would run (`--account NAME`, else every enabled one) can run together.
fn check_config(file: Option<PathBuf>, account: Option<&str>) -> ExitCode {
    let Some(path) = file.or_else(Config::default_path) else {
        eprintln!("switchboard: no home directory, so no default configuration file; name one");
        return ExitCode::FAILURE;
    };
    let problems = match Config::load(&path) {
        Ok(config) => match no_account_error(&config, &path) {
            Some(problem) => vec![problem],
            None => driver::check_accounts(&config, account)
                .err()
                .map(|e| ConfigError {
                    file: path.clone(),
                    line: 0,
                    col: 0,
                    key: account.map_or_else(|| "account".to_owned(), |_| "--account".to_owned()),
                    message: e.to_string(),
                })
                .into_iter()
                .collect(),
        },
        Err(errors) => errors.0,
    };
    if problems.is_empty() {
        println!("{}: ok", path.display());
        return ExitCode::SUCCESS;
    }
    for problem in problems {
        eprintln!("{problem}");
    }
    ExitCode::FAILURE
}

/// `switchboard devices`: one line per device, defaults marked, on the audio system the
/// configuration's `[audio] host` names (ALSA when there is no configuration to read).
fn devices(config: Option<&Path>) -> ExitCode {
    let host = load_config(config).map_or(config::AudioHost::Alsa, |(c, _)| c.audio.host);
    match switchboard::media::device::list_devices(driver::device_host(host)) {
        Ok(list) => {
            print!("{}", describe_devices(&list));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: cannot list audio devices: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `devices` listing: devices that can open now, one per line with their id (for the
/// configuration), name and format; then those that cannot, on one line; then a plain
/// sentence when none of them is a sound card.
fn describe_devices(list: &[DeviceInfo]) -> String {
    let mut out = String::new();
    let (usable, unusable): (Vec<&DeviceInfo>, Vec<&DeviceInfo>) =
        list.iter().partition(|d| d.default_config.is_some());
    for d in &usable {
        let role = match (d.input, d.output) {
            (true, true) => "input+output",
            (true, false) => "input",
            (false, _) => "output",
        };
        let default = if d.is_default { ", default" } else { "" };
        let format = d.default_config.as_deref().unwrap_or_default();
        out.push_str(&format!(
            "{} ({role}{default}): {} [{format}]\n",
            d.id, d.name
        ));
    }
    if !unusable.is_empty() {
        let ids: Vec<&str> = unusable.iter().map(|d| d.id.as_str()).collect();
        out.push_str(&format!(
            "not usable now (nothing behind them): {}\n",
            ids.join(", ")
        ));
    }
    // ALSA's `null` device only discards and makes silence.
    if !usable.iter().any(|d| d.id != "alsa:null") {
        out.push_str(
            "No sound card found: switchboard runs without sound here. Use --audio-in and \
             --audio-out (WAV files) or [audio] backend = \"null\".\n",
        );
    }
    out
}

/// `--audio-in` / `--audio-out` select the file backend with those files.
fn apply_audio_flags(config: &mut Config, audio_in: Option<PathBuf>, audio_out: Option<PathBuf>) {
    if audio_in.is_none() && audio_out.is_none() {
        return;
    }
    let audio = &mut config.audio;
    if audio.backend != AudioBackend::File {
        audio.backend = AudioBackend::File;
        audio.file_in = None;
        audio.file_out = None;
    }
    if audio_in.is_some() {
        audio.file_in = audio_in;
    }
    if audio_out.is_some() {
        audio.file_out = audio_out;
    }
}

/// The picker's directory: `[directory]` sources (the personal book at its XDG default when
/// not configured) and the call history's numbers. Problems with a file are logged; the rest
/// loads.
fn directory_finder(config: &Config) -> DirectoryFinder {
    let mut sources = config.directory.clone();
    if sources.personal.is_none() {
        sources.personal = switchboard::config::Directory::default_personal();
    }
    let (mut directory, warnings) = Directory::load(&sources);
    for warning in warnings {
        tracing::warn!(%warning, "directory");
    }
    if let Some(path) = config.history.path() {
        match History::read(&path, config.history.load) {
            Ok(history) => directory.set_history(history.recent_numbers()),
            Err(e) => tracing::warn!(error = %e, "call history not loaded for the picker"),
        }
    }
    DirectoryFinder::new(directory)
}

/// switchboard needs an account to run; an empty configuration is valid TOML but not usable.
fn no_account_error(config: &Config, path: &Path) -> Option<ConfigError> {
    config.accounts.is_empty().then(|| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        key: "account".to_owned(),
        message: "no [[account]] table; switchboard needs at least one (see config.example.toml)"
            .to_owned(),
    })
}

/// Where the configuration came from, for the started event's note.
enum Origin {
    File(PathBuf),
    Embedded { missing: Option<PathBuf> },
}

/// The configuration to run with: `--config`, else the default file if it exists, else the
/// embedded default. Errors are printed lines.
fn load_config(given: Option<&Path>) -> Result<(Config, Origin), String> {
    let path = match given {
        Some(path) if !path.exists() => {
            return Err(format!("{}: no such configuration file", path.display()))
        }
        Some(path) => path.to_path_buf(),
        None => match Config::default_path() {
            Some(path) if path.exists() => path,
            missing => return Ok((Config::embedded_default(), Origin::Embedded { missing })),
        },
    };
    let config = Config::load(&path).map_err(|errors| errors.to_string())?;
    if let Some(error) = no_account_error(&config, &path) {
        return Err(error.to_string());
    }
    Ok((config, Origin::File(path)))
}

/// The one line about how we run, for the started event. For the embedded default it says
/// where others reach us, how to call another switchboard, and where the config goes.
fn note(origin: &Origin, account: &str, bound: std::net::SocketAddr) -> String {
    match origin {
        Origin::File(path) => format!("config {}, account {account}", path.display()),
        Origin::Embedded { missing } => format!(
            "no config file: trying out the peer-to-peer default; others call you at \
             sip:switchboard@{}:{}; call another switchboard with sip:user@host:port; \
             your config goes in {} (see config.example.toml)",
            reachable_ip(),
            bound.port(),
            missing.as_ref().map_or_else(
                || "(no home directory)".to_owned(),
                |p| p.display().to_string()
            )
        ),
    }
}

/// This machine's address on the network others would call it on: the source address of
/// the default route (a UDP `connect` sends nothing), else loopback.
fn reachable_ip() -> std::net::IpAddr {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            socket.connect("192.0.2.1:9")?; // TEST-NET-1: only the routing table is asked
            socket.local_addr()
        })
        .map_or(loopback, |addr| addr.ip())
}

/// The default log file: `$XDG_STATE_HOME/switchboard/switchboard.log`.
fn default_log_file() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "switchboard")?;
    let state = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Some(state.join("switchboard.log"))
}

/// Opens (appends to) the log file, creating it with mode 0600 and its directory if needed.
fn open_log(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Sends logs to `path` at `level`; if that file cannot be opened, says so on stderr and logs
/// to stderr (never to stdout, which carries the events), or nowhere under the full-screen
/// interface (`screen`), where a log line would scribble over the screen.
///
/// Lines go to the file from a writer thread of their own, so neither the run loop nor the
/// media thread waits on the disk (a line logged while the thread's queue is full is dropped).
/// The returned guard flushes what is queued when dropped: keep it for the program's life.
/// How many log lines may wait for the log file's writer thread.
const LOG_QUEUE_LINES: usize = 4_096;

fn init_logging(path: Option<PathBuf>, level: &str, screen: bool) -> Option<WorkerGuard> {
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // cpal's PulseAudio client logs every message on the thread that runs the sound
    // callbacks: only its warnings, unless the level names it.
    if !level.contains("pulseaudio") {
        if let Ok(quiet) = "pulseaudio=warn".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let file = match path {
        Some(path) => {
            open_log(&path).map_err(|e| format!("cannot open log file {}: {e}", path.display()))
        }
        None => Err("no log file location (no home directory)".to_owned()),
    };
    match file {
        Ok(file) => {
            // The writer's queue is a ring allocated whole at start and touched slot by slot:
            // its default of 128,000 lines grows the resident memory by 4 MiB over a shift.
            // A few thousand lines is ample for a file; beyond them lines are dropped, never
            // waited for.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(file);
            builder.with_writer(writer).init();
            Some(guard)
        }
        Err(message) if screen => {
            eprintln!("switchboard: {message}; running without a log");
            builder.with_writer(io::sink).init();
            None
        }
        Err(message) => {
            eprintln!("switchboard: {message}; logging to stderr");
            builder.with_writer(io::stderr).init();
            None
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    let (mut config, mut origin) = match load_config(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // First start on a screen: offer to write the file; Esc keeps the embedded default.
    let first_start = match &origin {
        Origin::Embedded {
            missing: Some(path),
        } if !cli.headless => Some(path.clone()),
        _ => None,
    };
    if let Some(path) = first_start {
        match tui::first_start::run(&path) {
            Ok(Some(written)) => {
                config = written;
                origin = Origin::File(path);
            }
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return ExitCode::SUCCESS,
            Err(e) => eprintln!("switchboard: cannot show the first-start form: {e}"),
        }
    }
    apply_audio_flags(&mut config, cli.audio_in, cli.audio_out);
    if let (Origin::Embedded { .. }, Some(account)) = (&origin, config.accounts.first_mut()) {
        // Others reach the embedded default at this machine's address, not `localhost`.
        account.domain = reachable_ip().to_string();
    }
    let log_file = cli
        .log_file
        .or_else(|| config.general.log_file.clone())
        .or_else(default_log_file);
    // Dropped when `run` returns, after everything else: what is queued reaches the file.
    let _log = init_logging(log_file.clone(), &config.general.log_level, !cli.headless);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        headless = cli.headless,
        "starting"
    );

    let account = match driver::choose_account(&config, cli.account.as_deref()) {
        Ok(account) => account,
        Err(e) => {
            let file = match &origin {
                Origin::File(path) => path.display().to_string(),
                Origin::Embedded { .. } => "the embedded default".to_owned(),
            };
            eprintln!("{file}: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let setup = match cli.account {
        Some(_) => Setup::new(&config, account),
        None => Setup::all(&config),
    };
    let mut setup = match setup {
        Ok(setup) => setup,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("switchboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cli.sip_capture {
        if let Err(e) = setup.observers.capture_sip(path) {
            eprintln!(
                "switchboard: cannot write the SIP capture {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let host = driver::device_host(config.audio.host);
    let note = note(&origin, &account.name, setup.bound);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("switchboard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let (event_tx, event_rx) = mpsc::unbounded_channel::<Event>();
    if cli.headless {
        let config_file = match &origin {
            Origin::File(path) => Some(path.clone()),
            Origin::Embedded { .. } => None,
        };
        return run_headless(
            runtime,
            host,
            config_file,
            setup,
            note,
            command_tx,
            command_rx,
            event_tx,
            event_rx,
        );
    }
    let keymap = match Keymap::new(&config.keys) {
        Ok(keymap) => keymap,
        Err(message) => {
            eprintln!("switchboard: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let running: Vec<String> = std::iter::once(&setup.ua.account)
        .chain(&setup.ua.others)
        .filter(|a| cli.account.is_none() || a.name == account.name)
        .map(|a| a.name.clone())
        .collect();
    let app = App::new(keymap, config.ui.bell, setup.ua.blf.clone())
        .with_favourites(
            switchboard::tui::favourites::Favourites::from_config(&config.favourites),
            std::iter::once(&setup.ua.account)
                .chain(&setup.ua.others)
                .any(|a| a.policy.attendant.park.is_some()),
        )
        .with_accounts(running);
    // From here until the screen closes, what libraries print to stderr goes to the log.
    let quiet = match StderrRedirect::to_log(log_file.as_deref()) {
        Ok(guard) => Some(guard),
        Err(e) => {
            tracing::warn!(error = %e, "stderr stays on the terminal");
            None
        }
    };
    // A closed terminal (SIGHUP) quits like `quit`; the driver handles SIGINT and SIGTERM.
    let hangup_quits = command_tx.downgrade();
    let driver = thread::Builder::new().name("driver".into()).spawn(move || {
        runtime.block_on(async move {
            tokio::spawn(quit_on_hangup(hangup_quits));
            driver::run(setup, note, command_rx, event_tx).await
        })
    });
    let driver = match driver {
        Ok(handle) => handle,
        Err(e) => {
            drop(quiet);
            eprintln!("switchboard: cannot start the driver thread: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut finder = directory_finder(&config);
    // The screen ends when the driver stops; if the screen fails first, dropping its command
    // sender makes the driver quit.
    let history = config.history.path();
    let config_file = match &origin {
        Origin::File(path) => Some(path.clone()),
        Origin::Embedded { .. } => None,
    };
    let use_device = |role, device| use_device(config_file.as_deref(), role, device);
    let list_devices = || sound_devices(host);
    let desk = tui::Workstation {
        list_devices: &list_devices,
        use_device: &use_device,
    };
    let screen = tui::run(
        app,
        &mut finder,
        history.as_deref(),
        &desk,
        command_tx,
        event_rx,
    );
    let result = driver.join();
    drop(quiet);
    if let Err(e) = &screen {
        tracing::error!(error = %e, "the screen failed");
        eprintln!("switchboard: the screen failed: {e}");
    }
    match result {
        Ok(Ok(())) if screen.is_ok() => ExitCode::SUCCESS,
        Ok(Ok(())) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "driver failed");
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::error!("the driver thread panicked");
            eprintln!("switchboard: the driver stopped unexpectedly; see the log");
            ExitCode::FAILURE
        }
    }
}

/// Sends `quit` when the terminal goes away (SIGHUP).
async fn quit_on_hangup(commands: mpsc::WeakSender<Command>) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP");
        return;
    };
    if hangup.recv().await.is_some() {
        tracing::info!("SIGHUP: quitting");
        if let Some(commands) = commands.upgrade() {
            let _ = commands.send(sip::Command::Quit.into()).await;
        }
    }
}

/// The sound check's device list: every device that can open now on `host`, by name.
fn sound_devices(host: Host) -> Result<Vec<AudioDevice>, String> {
    switchboard::media::device::list_devices(host)
        .map(|list| {
            list.into_iter()
                .map(|d| AudioDevice {
                    name: d.name,
                    input: d.input,
                    output: d.output,
                })
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// `list-devices`: every device the audio system `host` offers, as one event.
fn device_list(host: Host) -> Event {
    match switchboard::media::device::list_devices(host) {
        Ok(list) => Event::DeviceList {
            devices: list
                .into_iter()
                .map(|d| ListedDevice {
                    name: d.name,
                    id: d.id,
                    input: d.input,
                    output: d.output,
                    default_config: d.default_config,
                    default: d.is_default,
                })
                .collect(),
            error: None,
        },
        Err(e) => Event::DeviceList {
            devices: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// `use-device`: writes the device into the configuration file (comments kept); the event
/// says what was written, or why not.
fn use_device(file: Option<&Path>, role: DeviceRole, device: String) -> Event {
    let Some(file) = file else {
        return Event::Sip(sip::Event::Error {
            message: "use-device: running the embedded default; there is no configuration \
                      file to write the device into"
                .to_owned(),
        });
    };
    match config::edit::set_audio_device(file, role.key(), &device) {
        Ok(()) => Event::DeviceChosen {
            role: role.key().to_owned(),
            device,
            file: file.display().to_string(),
        },
        Err(message) => Event::Sip(sip::Event::Error {
            message: format!("use-device: {message}"),
        }),
    }
}

/// `--headless`: commands from stdin, JSON events to stdout, the driver on this thread.
#[allow(clippy::too_many_arguments)]
fn run_headless(
    runtime: tokio::runtime::Runtime,
    host: Host,
    config_file: Option<PathBuf>,
    setup: Setup,
    note: String,
    command_tx: mpsc::Sender<Command>,
    command_rx: mpsc::Receiver<Command>,
    event_tx: mpsc::UnboundedSender<Event>,
    mut event_rx: mpsc::UnboundedReceiver<Event>,
) -> ExitCode {
    // Events go to stdout from their own thread, so a slow reader never stalls the driver.
    // The thread ends when the driver and the command reader have dropped their senders.
    let printer = thread::spawn(move || {
        let events = std::iter::from_fn(|| event_rx.blocking_recv());
        headless::write_events(events, io::stdout().lock())
    });
    // Commands come from stdin on a thread of their own (a blocking read cannot be cancelled).
    // It holds the event channel weakly, so the printer ends when the driver does.
    let errors = event_tx.downgrade();
    thread::spawn(move || {
        headless::read_commands(io::stdin().lock(), |item| match item {
            Ok(Command::Sound(SoundCommand::UseDevice(role, device))) => {
                // Written for the next start, and switched now by the media engine.
                let event = use_device(config_file.as_deref(), role, device.clone());
                let written = errors
                    .upgrade()
                    .is_some_and(|events| events.send(event).is_ok());
                written
                    && command_tx
                        .blocking_send(Command::Sound(SoundCommand::UseDevice(role, device)))
                        .is_ok()
            }
            Ok(Command::Sound(SoundCommand::ListDevices)) => {
                // Listing can block on the audio system: off this thread and the run loop.
                let events = errors.clone();
                let spawned = thread::Builder::new()
                    .name("list-devices".into())
                    .spawn(move || {
                        if let Some(events) = events.upgrade() {
                            let _ = events.send(device_list(host));
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a thread to list devices");
                }
                true
            }
            Ok(command) => command_tx.blocking_send(command).is_ok(),
            Err(message) => errors
                .upgrade()
                .is_some_and(|events| events.send(sip::Event::Error { message }.into()).is_ok()),
        });
    });

    let result = runtime.block_on(driver::run(setup, note, command_rx, event_tx));
    match printer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot write events to stdout"),
        Err(_) => tracing::error!("the event printer panicked"),
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "driver failed");
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::parse_from(["switchboard", "--headless", "--account", "hq"]);
        assert!(cli.headless && cli.account.as_deref() == Some("hq"));
        let cli = Cli::parse_from(["switchboard", "check-config", "x.toml"]);
        assert!(matches!(
            cli.command,
            Some(Sub::CheckConfig { file: Some(_) })
        ));
    }

    #[test]
    fn the_note_says_where_the_config_came_from() {
        let bound = "0.0.0.0:40000".parse().unwrap();
        let embedded = Origin::Embedded {
            missing: Some(PathBuf::from("/home/op/.config/switchboard/config.toml")),
        };
        let said = note(&embedded, "local", bound);
        assert!(said.starts_with("no config file: "), "{said}");
        assert!(
            said.contains(&format!("sip:switchboard@{}:40000;", reachable_ip())),
            "{said}"
        );
        assert!(
            said.contains("/home/op/.config/switchboard/config.toml"),
            "{said}"
        );
        let file = Origin::File(PathBuf::from("/etc/sb.toml"));
        assert_eq!(
            note(&file, "office", bound),
            "config /etc/sb.toml, account office"
        );
    }

    fn device(id: &str, default_config: Option<&str>) -> DeviceInfo {
        DeviceInfo {
            name: format!("{id} device"),
            id: id.to_owned(),
            input: true,
            output: true,
            default_config: default_config.map(str::to_owned),
            is_default: false,
        }
    }

    #[test]
    fn devices_say_when_there_is_no_sound_card() {
        let none = describe_devices(&[
            device("alsa:null", Some("48000 Hz, 2 ch, f32")),
            device("alsa:pulse", None),
        ]);
        assert_eq!(
            none,
            "alsa:null (input+output): alsa:null device [48000 Hz, 2 ch, f32]\n\
             not usable now (nothing behind them): alsa:pulse\n\
             No sound card found: switchboard runs without sound here. Use --audio-in and \
             --audio-out (WAV files) or [audio] backend = \"null\".\n"
        );
        assert!(describe_devices(&[]).starts_with("No sound card found"));
        let card = describe_devices(&[device("alsa:hw:CARD=Headset,DEV=0", Some("48000 Hz"))]);
        assert!(!card.contains("No sound card"), "{card}");
    }

    #[test]
    fn audio_flags_select_the_file_backend() {
        let mut config = Config::embedded_default();
        apply_audio_flags(&mut config, None, None);
        assert_eq!(config.audio.backend, AudioBackend::Cpal);
        apply_audio_flags(&mut config, Some(PathBuf::from("in.wav")), None);
        assert_eq!(config.audio.backend, AudioBackend::File);
        assert_eq!(config.audio.file_in.as_deref(), Some(Path::new("in.wav")));
        assert_eq!(config.audio.file_out, None);
        apply_audio_flags(&mut config, None, Some(PathBuf::from("out.wav")));
        assert_eq!(config.audio.file_in.as_deref(), Some(Path::new("in.wav")));
        assert_eq!(config.audio.file_out.as_deref(), Some(Path::new("out.wav")));
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = load_config(Some(Path::new("/nonexistent/sb.toml"))).err();
        assert_eq!(
            err.as_deref(),
            Some("/nonexistent/sb.toml: no such configuration file")
        );
    }

    #[test]
    fn the_log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state/switchboard.log");
        open_log(&path).expect("created");
        let mode = fs::metadata(&path).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
