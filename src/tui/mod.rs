//! The operator's screen: a full-screen terminal interface over the [`Command`]/[`Event`]
//! vocabulary, in the Elm style.
//!
//! ```text
//!   keys, paste, resize (input thread) ──┐
//!                                        ├─► one channel ─► App::update(input, now) ─► Effects
//!   driver events (forwarding thread) ───┘         │    (Send(Command), Bell, Search, Picked…)
//!   what the effects read (rows found, history) ◄──┤    carried out here, fed back as Inputs
//!                                                  └─ 1 s tick ─► view(&App, now) when changed
//! ```
//!
//! - [`app`]: the model and `update` (inputs → effects); no I/O, no clock.
//! - [`keymap`]: actions, their default keys and the `[keys]` section.
//! - [`view`] and [`widgets`]: pure drawing.
//! - [`finder`]: what the picker searches (the directory implements [`Finder`]).
//! - [`terminal`]: raw mode, alternate screen and their restoration.
//! - [`first_start`]: the form that writes a configuration file when there is none.
//!
//! [`run`] (and [`first_start::run`], before it) is the only place here that reads the clock
//! or touches the terminal. This module must not reach into the driver, media or SIP
//! internals: commands go out and events come in through the channels it is handed.

pub mod app;
#[cfg(test)]
mod app_tests;
pub mod directory_finder;
pub mod favourites;
pub mod finder;
pub mod first_start;
pub mod history_view;
pub mod keymap;
pub mod sip_trace;
pub mod stderr;
pub mod terminal;
pub mod view;
pub mod widgets;
pub mod wrapup;

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crossterm::event::{self as term_event, Event as TermEvent, KeyEventKind};
use tokio::sync::mpsc;

use crate::front::{Command, Event};
use crate::history::History;
use crate::sound::{AudioDevice, DeviceRole, SoundCommand};
pub use app::{App, Effect, Input};
pub use directory_finder::DirectoryFinder;
pub use finder::{Finder, ListFinder, PickerRow};
use history_view::HistoryList;
pub use keymap::{Action, Keymap};

/// How often the timers on screen move on.
const TICK: Duration = Duration::from_secs(1);

/// What reaches the loop.
enum Message {
    Input(Input),
    /// The driver closed its event channel: it has stopped.
    DriverGone,
}

/// The clock, read here only (the model is handed `now`).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// How many past calls the history view reads.
const HISTORY_VIEW: usize = 500;

/// The wall clock, for the history view's "5 min ago".
#[allow(clippy::disallowed_methods)] // `run` is where the screen's time enters
fn wall_clock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// What the sound check needs from the workstation, handed in by `main` (the screen does not
/// reach into the media layer or the configuration file itself).
pub struct Workstation<'a> {
    /// The audio devices that can open now.
    pub list_devices: &'a dyn Fn() -> Result<Vec<AudioDevice>, String>,
    /// Writes a device into the configuration file; the event says what was written or why
    /// not.
    pub use_device: &'a dyn Fn(DeviceRole, String) -> Event,
}

/// Carries out an effect that needs I/O other than the driver's: what it gives back is the
/// app's next input.
fn side_effect(
    effect: Effect,
    finder: &mut dyn Finder,
    history: Option<&Path>,
    desk: &Workstation,
) -> Option<Input> {
    match effect {
        Effect::ListDevices => Some(Input::DevicesListed((desk.list_devices)())),
        Effect::Send(Command::Sound(SoundCommand::UseDevice(role, device))) => {
            Some(Input::Event((desk.use_device)(role, device)))
        }
        Effect::LoadHistory => {
            let list = match history {
                Some(path) => History::read(path, HISTORY_VIEW)
                    .map(|h| {
                        let records: Vec<_> = h.records().cloned().collect();
                        HistoryList::new(&records, wall_clock(), |n| finder.name_for(n))
                    })
                    .map_err(|e| e.to_string()),
                None => Err("no call history file (no data directory)".to_owned()),
            };
            Some(Input::History(list))
        }
        Effect::Search {
            query,
            limit,
            fresh,
        } => {
            if fresh {
                finder.reload();
            }
            let rows = finder.find(&query, limit);
            Some(Input::Found { query, rows })
        }
        Effect::Picked(number) => {
            finder.picked(&number, wall_clock());
            None
        }
        Effect::AddContact { name, number } => Some(Input::ContactAdded(
            finder
                .add_contact(&name, &number)
                .map(|()| format!("{name} ({number}) is in your personal book now"))
                .map_err(|e| format!("Could not add {name} to your personal book: {e}")),
        )),
        Effect::Send(_) | Effect::Bell => None,
    }
}

/// Runs the screen until the driver stops (its event channel closes), sending the operator's
/// commands to `commands`; the history view reads `history` (the call history file). The
/// terminal is restored when this returns, errs or panics. Blocks the calling thread; the
/// driver must run elsewhere.
pub fn run(
    mut app: App,
    finder: &mut dyn Finder,
    history: Option<&Path>,
    desk: &Workstation,
    commands: mpsc::Sender<Command>,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> io::Result<()> {
    let mut screen = terminal::enter()?;
    let (tx, rx) = std_mpsc::channel();

    let driver_tx = tx.clone();
    thread::Builder::new()
        .name("tui-events".into())
        .spawn(move || {
            while let Some(event) = events.blocking_recv() {
                if driver_tx.send(Message::Input(Input::Event(event))).is_err() {
                    return;
                }
            }
            let _ = driver_tx.send(Message::DriverGone);
        })?;
    // A blocking terminal read cannot be cancelled: this thread ends with the process.
    thread::Builder::new()
        .name("tui-keys".into())
        .spawn(move || loop {
            let input = match term_event::read() {
                Ok(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => Input::Key(key),
                Ok(TermEvent::Paste(text)) => Input::Paste(text),
                Ok(TermEvent::Resize(w, h)) => Input::Resize(w, h),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the terminal");
                    return;
                }
            };
            if tx.send(Message::Input(input)).is_err() {
                return;
            }
        })?;

    let size = screen.terminal.size()?;
    app.update(Input::Resize(size.width, size.height), now(), &*finder);
    screen.terminal.draw(|f| view::view(&app, now(), f))?;
    let mut next_tick = now() + TICK;
    loop {
        let wait = next_tick.saturating_duration_since(now());
        let redraw = match rx.recv_timeout(wait) {
            Ok(Message::Input(input)) => {
                let mut inputs = VecDeque::from([input]);
                while let Some(input) = inputs.pop_front() {
                    for effect in app.update(input, now(), &*finder) {
                        match effect {
                            Effect::Send(Command::Sound(SoundCommand::UseDevice(role, device))) => {
                                // Written for the next start, and switched now by the driver.
                                let switch = Command::Sound(SoundCommand::UseDevice(role, device));
                                inputs.extend(side_effect(
                                    Effect::Send(switch.clone()),
                                    finder,
                                    history,
                                    desk,
                                ));
                                if commands.blocking_send(switch).is_err() {
                                    tracing::warn!("the driver no longer takes commands");
                                    return Ok(());
                                }
                            }
                            Effect::Send(command) => {
                                if commands.blocking_send(command).is_err() {
                                    tracing::warn!("the driver no longer takes commands");
                                    return Ok(());
                                }
                            }
                            Effect::Bell => screen.bell()?,
                            other => inputs.extend(side_effect(other, finder, history, desk)),
                        }
                    }
                }
                true
            }
            Ok(Message::DriverGone) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(())
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {
                next_tick = now() + TICK;
                app.has_calls() || !app.wrapups.is_empty()
            }
        };
        if redraw {
            screen.terminal.draw(|f| view::view(&app, now(), f))?;
        }
    }
}
