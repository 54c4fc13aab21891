//! Screen-pop hooks: the operator's shell commands run on call events (a CRM page opening on
//! an incoming call, a ticket closing on hangup).
//!
//! This module owns deciding from the [`Event`] stream which `[hooks]` command fires, starting
//! it with the call's details in its environment, and watching it: a hook that runs longer than
//! `timeout` is killed, one that fails is logged. It must never block or fail the caller —
//! [`Hooks::observe`] only spawns — and it never reads the clock (a hook's time limit is
//! counted in the watcher's sleeps).
//!
//! | hook          | fires when                                   | `SWITCHBOARD_EVENT` |
//! |---------------|----------------------------------------------|---------------------|
//! | `on_incoming` | a call arrives                               | `incoming`          |
//! | `on_answer`   | a call (either direction) connects the first time | `answer`       |
//! | `on_hangup`   | a call ends, answered or not                 | `hangup`            |
//! | `on_transfer` | a transfer succeeds or fails                 | `transfer`          |
//! | `on_wrapup`   | a call's wrap-up closes (saved, skipped, expired) | `wrapup`       |
//!
//! Every hook gets `SWITCHBOARD_EVENT`, `SWITCHBOARD_NUMBER` (the far end's user part),
//! `SWITCHBOARD_URI`, `SWITCHBOARD_NAME` (display name, empty when unknown),
//! `SWITCHBOARD_LINE`, `SWITCHBOARD_CALL_ID` and `SWITCHBOARD_DIRECTION` (`in`/`out`);
//! `SWITCHBOARD_REASON` when the event gives one; transfers add
//! `SWITCHBOARD_TRANSFER_STATUS` (`succeeded`/`failed`) and `SWITCHBOARD_TRANSFER_TARGET`;
//! wrap-ups add `SWITCHBOARD_WRAPUP_STATUS` (`saved`/`skipped`/`expired`),
//! `SWITCHBOARD_WRAPUP_CODE` and `SWITCHBOARD_WRAPUP_NOTE` (empty when none).
//! Variables of that family that do not apply are removed from the inherited environment.
//!
//! ```text
//!  observe(event) ──► sh -c <command>  (stdin, stdout, stderr: /dev/null; own process group)
//!                          │ Child
//!                          ▼
//!  watcher thread: try_wait every 50 ms ──► exited: failure logged
//!                                      └─► over `timeout`: the group is killed, logged
//! ```
//!
//! The watcher thread starts with the first hook and lives while hooks run or [`Hooks`]
//! exists; it logs through the subscriber that was current when it started. Hook output is
//! discarded: a command that wants a log redirects it itself.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::config;
use crate::history::peer_number;
use crate::sip::{CallState, Event, TransferStatus, WrapupStatus};

/// How often the watcher looks at running hooks.
const TICK: Duration = Duration::from_millis(50);

/// Every variable a hook may get; those not set for an event are removed.
const VARIABLES: [&str; 13] = [
    "SWITCHBOARD_EVENT",
    "SWITCHBOARD_NUMBER",
    "SWITCHBOARD_URI",
    "SWITCHBOARD_NAME",
    "SWITCHBOARD_LINE",
    "SWITCHBOARD_CALL_ID",
    "SWITCHBOARD_DIRECTION",
    "SWITCHBOARD_REASON",
    "SWITCHBOARD_TRANSFER_STATUS",
    "SWITCHBOARD_TRANSFER_TARGET",
    "SWITCHBOARD_WRAPUP_STATUS",
    "SWITCHBOARD_WRAPUP_CODE",
    "SWITCHBOARD_WRAPUP_NOTE",
];

/// Which hook fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `on_incoming`.
    Incoming,
    /// `on_answer`.
    Answer,
    /// `on_hangup`.
    Hangup,
    /// `on_transfer`.
    Transfer,
    /// `on_wrapup`.
    Wrapup,
}

impl Hook {
    /// The configuration key: `on_incoming`, ….
    pub fn key(self) -> &'static str {
        match self {
            Hook::Incoming => "on_incoming",
            Hook::Answer => "on_answer",
            Hook::Hangup => "on_hangup",
            Hook::Transfer => "on_transfer",
            Hook::Wrapup => "on_wrapup",
        }
    }

    /// The value of `SWITCHBOARD_EVENT`: `incoming`, `answer`, `hangup`, `transfer`.
    pub fn event(self) -> &'static str {
        match self {
            Hook::Incoming => "incoming",
            Hook::Answer => "answer",
            Hook::Hangup => "hangup",
            Hook::Transfer => "transfer",
            Hook::Wrapup => "wrapup",
        }
    }
}

/// What is known about a call from earlier events.
#[derive(Debug, Clone)]
struct CallInfo {
    uri: String,
    name: Option<String>,
    incoming: bool,
    answered: bool,
}

/// A started hook, watched until it exits or is killed.
struct Running {
    child: Child,
    hook: Hook,
    /// Ticks left before it is killed.
    ticks_left: u64,
    timeout_s: u32,
}

impl Running {
    /// Looks at the hook once; true when it is finished with (exited, or killed and reaped).
    fn settled(&mut self) -> bool {
        let key = self.hook.key();
        match self.child.try_wait() {
            Ok(Some(status)) if status.success() => true,
            Ok(Some(status)) => {
                tracing::warn!(hook = key, %status, "a hook command failed");
                true
            }
            Ok(None) if self.ticks_left > 0 => {
                self.ticks_left -= 1;
                false
            }
            Ok(None) => {
                kill_group(&mut self.child);
                tracing::warn!(
                    hook = key,
                    timeout_s = self.timeout_s,
                    "a hook command ran past [hooks] timeout and was killed"
                );
                true
            }
            Err(error) => {
                tracing::warn!(hook = key, %error, "cannot watch a hook command; killing it");
                kill_group(&mut self.child);
                true
            }
        }
    }
}

/// Kills a hook and everything it started (it leads its own process group), then reaps it.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    // The shell's own `kill`, which every system has, unlike a `kill` program.
    let killed = Command::new("sh")
        .args(["-c", "kill -KILL \"$1\"", "sh", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !killed.is_ok_and(|s| s.success()) {
        // At least the shell itself.
        let _ = child.kill();
    }
    if let Err(error) = child.wait() {
        tracing::warn!(%error, "cannot reap a killed hook command");
    }
}

/// The watcher thread's loop: watches hooks until the sender is gone and none is running.
fn watch(rx: mpsc::Receiver<Running>) {
    let mut running: Vec<Running> = Vec::new();
    loop {
        if running.is_empty() {
            match rx.recv() {
                Ok(hook) => running.push(hook),
                Err(mpsc::RecvError) => return,
            }
        }
        while let Ok(hook) = rx.try_recv() {
            running.push(hook);
        }
        running.retain_mut(|hook| !hook.settled());
        if !running.is_empty() {
            std::thread::sleep(TICK);
        }
    }
}

/// The configured hooks and what they need to remember between events.
pub struct Hooks {
    config: config::Hooks,
    calls: HashMap<String, CallInfo>,
    /// Calls whose wrap-up is open, kept past their hangup for `on_wrapup`.
    wrapping: HashMap<String, CallInfo>,
    /// Hands started hooks to the watcher thread; `None` until the first hook.
    watcher: Option<mpsc::Sender<Running>>,
}

impl Hooks {
    /// Hooks from the `[hooks]` section; nothing runs until [`Hooks::observe`] sees an event.
    pub fn new(config: config::Hooks) -> Hooks {
        Hooks {
            config,
            calls: HashMap::new(),
            wrapping: HashMap::new(),
            watcher: None,
        }
    }

    /// Follows one event and starts the hook it calls for, if that hook is configured.
    /// Returns the hook started; `None` when none fired or it could not be started (logged).
    /// Never waits for the command.
    pub fn observe(&mut self, event: &Event) -> Option<Hook> {
        let (hook, vars) = self.track(event)?;
        let command = match hook {
            Hook::Incoming => self.config.on_incoming.as_deref(),
            Hook::Answer => self.config.on_answer.as_deref(),
            Hook::Hangup => self.config.on_hangup.as_deref(),
            Hook::Transfer => self.config.on_transfer.as_deref(),
            Hook::Wrapup => self.config.on_wrapup.as_deref(),
        }?
        .to_owned();
        self.start(hook, &command, &vars).then_some(hook)
    }

    /// Updates what is known about calls; returns the hook an event calls for and its
    /// environment.
    fn track(&mut self, event: &Event) -> Option<(Hook, Vec<(&'static str, String)>)> {
        let (hook, call_id, line) = match event {
            Event::Incoming {
                line,
                call_id,
                from,
                display_name,
                ..
            } => {
                self.calls.insert(
                    call_id.clone(),
                    CallInfo {
                        uri: from.clone(),
                        name: display_name.clone(),
                        incoming: true,
                        answered: false,
                    },
                );
                (Hook::Incoming, call_id, *line)
            }
            Event::Call {
                line,
                call_id,
                state,
                peer,
                ..
            } => {
                let info = self
                    .calls
                    .entry(call_id.clone())
                    .or_insert_with(|| CallInfo {
                        uri: peer.clone(),
                        name: None,
                        incoming: false,
                        answered: false,
                    });
                let talking = matches!(
                    state,
                    CallState::Connected | CallState::Held | CallState::RemoteHeld
                );
                if *state == CallState::Ended {
                    (Hook::Hangup, call_id, *line)
                } else if talking && !info.answered {
                    info.answered = true;
                    (Hook::Answer, call_id, *line)
                } else {
                    return None;
                }
            }
            Event::Transfer {
                line,
                call_id,
                status: TransferStatus::Succeeded | TransferStatus::Failed,
                ..
            } => (Hook::Transfer, call_id, *line),
            Event::Wrapup {
                call_id,
                status: WrapupStatus::Started,
                peer,
                ..
            } => {
                let info = self.calls.get(call_id).cloned().unwrap_or(CallInfo {
                    uri: peer.clone(),
                    name: None,
                    incoming: false,
                    answered: true,
                });
                self.wrapping.insert(call_id.clone(), info);
                return None;
            }
            Event::Wrapup { line, call_id, .. } => (Hook::Wrapup, call_id, *line),
            _ => return None,
        };
        let info = match hook {
            Hook::Hangup => self.calls.remove(call_id),
            Hook::Wrapup => self.wrapping.remove(call_id),
            _ => self.calls.get(call_id).cloned(),
        }?;
        let mut vars = vec![
            ("SWITCHBOARD_EVENT", hook.event().to_owned()),
            ("SWITCHBOARD_NUMBER", peer_number(&info.uri)),
            ("SWITCHBOARD_URI", info.uri.clone()),
            ("SWITCHBOARD_NAME", info.name.clone().unwrap_or_default()),
            ("SWITCHBOARD_LINE", line.to_string()),
            ("SWITCHBOARD_CALL_ID", call_id.clone()),
            (
                "SWITCHBOARD_DIRECTION",
                if info.incoming { "in" } else { "out" }.to_owned(),
            ),
        ];
        match event {
            Event::Call {
                reason: Some(reason),
                ..
            } => vars.push(("SWITCHBOARD_REASON", reason.clone())),
            Event::Transfer {
                status,
                target,
                reason,
                ..
            } => {
                let status = match status {
                    TransferStatus::Succeeded => "succeeded",
                    _ => "failed",
                };
                vars.push(("SWITCHBOARD_TRANSFER_STATUS", status.to_owned()));
                vars.push(("SWITCHBOARD_TRANSFER_TARGET", target.clone()));
                if let Some(reason) = reason {
                    vars.push(("SWITCHBOARD_REASON", reason.clone()));
                }
            }
            Event::Wrapup {
                status, code, note, ..
            } => {
                let status = match status {
                    WrapupStatus::Saved => "saved",
                    WrapupStatus::Skipped => "skipped",
                    WrapupStatus::Expired | WrapupStatus::Started => "expired",
                };
                vars.push(("SWITCHBOARD_WRAPUP_STATUS", status.to_owned()));
                vars.push(("SWITCHBOARD_WRAPUP_CODE", code.clone().unwrap_or_default()));
                vars.push(("SWITCHBOARD_WRAPUP_NOTE", note.clone().unwrap_or_default()));
            }
            _ => {}
        }
        Some((hook, vars))
    }

    /// Spawns `command` and hands it to the watcher; false (logged) when it could not start.
    fn start(&mut self, hook: Hook, command: &str, vars: &[(&'static str, String)]) -> bool {
        let Some(watcher) = self.watcher() else {
            return false;
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        for name in VARIABLES {
            match vars.iter().find(|(n, _)| *n == name) {
                Some((_, value)) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(hook = hook.key(), %error, "cannot start a hook command");
                return false;
            }
        };
        let timeout_s = self.config.timeout;
        let running = Running {
            child,
            hook,
            ticks_left: u64::from(timeout_s) * 1000 / TICK.as_millis() as u64,
            timeout_s,
        };
        if let Err(mpsc::SendError(mut lost)) = watcher.send(running) {
            tracing::warn!(
                hook = hook.key(),
                "the hook watcher is gone; killing the hook"
            );
            kill_group(&mut lost.child);
            self.watcher = None;
            return false;
        }
        true
    }

    /// The channel to the watcher thread, starting it if needed.
    fn watcher(&mut self) -> Option<mpsc::Sender<Running>> {
        if let Some(tx) = &self.watcher {
            return Some(tx.clone());
        }
        let (tx, rx) = mpsc::channel();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let started = std::thread::Builder::new()
            .name("hooks".to_owned())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || watch(rx)));
        match started {
            Ok(_) => {
                self.watcher = Some(tx.clone());
                Some(tx)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start the hook watcher thread; hooks do not run");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sip::TransferKind;

    /// Polls `ready` every 20 ms for at most `limit` tries; true when it became true.
    fn wait_for(limit: u32, mut ready: impl FnMut() -> bool) -> bool {
        for _ in 0..limit {
            if ready() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        ready()
    }

    /// Five seconds of 20 ms polls.
    const FIVE_S: u32 = 250;

    fn hooks(edit: impl FnOnce(&mut config::Hooks)) -> Hooks {
        let mut config = config::Hooks::default();
        edit(&mut config);
        Hooks::new(config)
    }

    fn incoming() -> Event {
        Event::Incoming {
            line: 2,
            call_id: "abc@host".into(),
            from: "sip:+4420794600@pbx.test;user=phone".into(),
            display_name: Some("José García".into()),
            referred_by: None,
            replaces: None,
            account: "desk".into(),
        }
    }

    fn call(state: CallState) -> Event {
        Event::Call {
            line: 2,
            call_id: "abc@host".into(),
            state,
            peer: "sip:+4420794600@pbx.test".into(),
            status: None,
            reason: (state == CallState::Ended).then(|| "the far end hung up".to_owned()),
            account: None,
        }
    }

    /// A command that writes its SWITCHBOARD_* variables to `out`, atomically.
    fn dump_env(out: &Path) -> String {
        let out = out.display();
        format!(
            "env | grep '^SWITCHBOARD_' | LC_ALL=C sort > '{out}.tmp' && mv '{out}.tmp' '{out}'"
        )
    }

    fn read_env(path: &Path) -> Vec<String> {
        assert!(
            wait_for(FIVE_S, || path.exists()),
            "{} never appeared",
            path.display()
        );
        let text = std::fs::read_to_string(path).expect("hook output");
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn each_hook_gets_the_call_in_its_environment() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = |name: &str| dir.path().join(name);
        let mut hooks = hooks(|c| {
            c.on_incoming = Some(dump_env(&file("incoming")));
            c.on_answer = Some(dump_env(&file("answer")));
            c.on_hangup = Some(dump_env(&file("hangup")));
            c.on_transfer = Some(dump_env(&file("transfer")));
        });
        assert_eq!(hooks.observe(&incoming()), Some(Hook::Incoming));
        assert_eq!(hooks.observe(&call(CallState::Ringing)), None);
        assert_eq!(
            hooks.observe(&call(CallState::Connected)),
            Some(Hook::Answer)
        );
        assert_eq!(
            hooks.observe(&call(CallState::Held)),
            None,
            "answered once only"
        );
        assert_eq!(
            hooks.observe(&call(CallState::Connected)),
            None,
            "answered once only"
        );
        let transfer = Event::Transfer {
            line: 2,
            call_id: "abc@host".into(),
            kind: TransferKind::Blind,
            mechanism: Some(crate::sip::TransferMechanism::Notify),
            status: TransferStatus::Failed,
            target: "sip:2001@pbx.test".into(),
            status_code: Some(486),
            reason: Some("target is busy".into()),
        };
        assert_eq!(hooks.observe(&transfer), Some(Hook::Transfer));
        assert_eq!(hooks.observe(&call(CallState::Ended)), Some(Hook::Hangup));
        assert!(hooks.calls.is_empty(), "an ended call is forgotten");

        let common = |event: &str| {
            vec![
                "SWITCHBOARD_CALL_ID=abc@host".to_owned(),
                "SWITCHBOARD_DIRECTION=in".to_owned(),
                format!("SWITCHBOARD_EVENT={event}"),
                "SWITCHBOARD_LINE=2".to_owned(),
                "SWITCHBOARD_NAME=José García".to_owned(),
                "SWITCHBOARD_NUMBER=+4420794600".to_owned(),
            ]
        };
        let uri = "SWITCHBOARD_URI=sip:+4420794600@pbx.test;user=phone".to_owned();
        let mut expected = common("incoming");
        expected.push(uri.clone());
        assert_eq!(read_env(&file("incoming")), expected);
        let mut expected = common("answer");
        expected.push(uri.clone());
        assert_eq!(read_env(&file("answer")), expected);
        let mut expected = common("hangup");
        expected.push("SWITCHBOARD_REASON=the far end hung up".to_owned());
        expected.push(uri.clone());
        assert_eq!(read_env(&file("hangup")), expected);
        let mut expected = common("transfer");
        expected.push("SWITCHBOARD_REASON=target is busy".to_owned());
        expected.push("SWITCHBOARD_TRANSFER_STATUS=failed".to_owned());
        expected.push("SWITCHBOARD_TRANSFER_TARGET=sip:2001@pbx.test".to_owned());
        expected.push(uri);
        assert_eq!(read_env(&file("transfer")), expected);
    }

    #[test]
    fn on_wrapup_gets_the_code_and_note_after_the_hangup() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("wrapup");
        let mut hooks = hooks(|c| c.on_wrapup = Some(dump_env(&out)));
        let wrapup = |status, code: Option<&str>, note: Option<&str>| Event::Wrapup {
            line: 2,
            call_id: "abc@host".into(),
            peer: "sip:+4420794600@pbx.test".into(),
            status,
            codes: vec!["sale".into()],
            seconds: Some(30),
            required: false,
            code: code.map(Into::into),
            note: note.map(Into::into),
        };
        hooks.observe(&incoming());
        hooks.observe(&call(CallState::Connected));
        assert_eq!(
            hooks.observe(&wrapup(WrapupStatus::Started, None, None)),
            None
        );
        assert_eq!(hooks.observe(&call(CallState::Ended)), None);
        assert_eq!(
            hooks.observe(&wrapup(WrapupStatus::Saved, Some("sale"), Some("2 seats"))),
            Some(Hook::Wrapup)
        );
        assert!(hooks.wrapping.is_empty(), "a closed wrap-up is forgotten");
        assert_eq!(
            read_env(&out),
            [
                "SWITCHBOARD_CALL_ID=abc@host",
                "SWITCHBOARD_DIRECTION=in",
                "SWITCHBOARD_EVENT=wrapup",
                "SWITCHBOARD_LINE=2",
                "SWITCHBOARD_NAME=José García",
                "SWITCHBOARD_NUMBER=+4420794600",
                "SWITCHBOARD_URI=sip:+4420794600@pbx.test;user=phone",
                "SWITCHBOARD_WRAPUP_CODE=sale",
                "SWITCHBOARD_WRAPUP_NOTE=2 seats",
                "SWITCHBOARD_WRAPUP_STATUS=saved",
            ]
        );
    }

    #[test]
    fn outgoing_calls_fire_answer_and_hangup() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("answer");
        let mut hooks = hooks(|c| c.on_answer = Some(dump_env(&out)));
        assert_eq!(hooks.observe(&call(CallState::Dialing)), None);
        assert_eq!(
            hooks.observe(&call(CallState::Connected)),
            Some(Hook::Answer)
        );
        let env = read_env(&out);
        assert!(
            env.contains(&"SWITCHBOARD_DIRECTION=out".to_owned()),
            "{env:?}"
        );
        assert!(env.contains(&"SWITCHBOARD_NAME=".to_owned()), "{env:?}");
        assert_eq!(
            hooks.observe(&call(CallState::Ended)),
            None,
            "no on_hangup configured"
        );
    }

    #[test]
    fn no_hook_configured_spawns_nothing() {
        let mut hooks = Hooks::new(config::Hooks::default());
        for event in [
            incoming(),
            call(CallState::Connected),
            call(CallState::Ended),
        ] {
            assert_eq!(hooks.observe(&event), None);
        }
        assert!(hooks.watcher.is_none(), "no watcher thread without a hook");
        assert!(hooks.calls.is_empty(), "ended calls are forgotten");
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
        }
    }

    fn with_captured_log(test: impl FnOnce(&Captured)) {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || test(&log));
    }

    #[test]
    fn failing_hook_is_logged() {
        with_captured_log(|log| {
            let mut hooks = hooks(|c| c.on_incoming = Some("exit 3".into()));
            assert_eq!(hooks.observe(&incoming()), Some(Hook::Incoming));
            assert!(
                wait_for(FIVE_S, || log.text().contains("exit status: 3")),
                "log: {}",
                log.text()
            );
            let text = log.text();
            assert!(
                text.contains("a hook command failed") && text.contains("on_incoming"),
                "{text}"
            );
        });
    }

    /// Whether a process is still running (not gone, not a zombie).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn slow_hook_is_killed_with_what_it_started() {
        with_captured_log(|log| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let pids = dir.path().join("pids");
            let command = format!(
                "sleep 30 & echo \"$$ $!\" > '{0}.tmp' && mv '{0}.tmp' '{0}'; wait",
                pids.display()
            );
            let mut hooks = hooks(|c| {
                c.on_hangup = Some(command);
                c.timeout = 1;
            });
            // observe() returns while the hook still runs: the shell and its sleep are seen
            // alive afterwards.
            assert_eq!(hooks.observe(&call(CallState::Ended)), Some(Hook::Hangup));
            assert!(wait_for(FIVE_S, || pids.exists()), "the hook never started");
            let text = std::fs::read_to_string(&pids).expect("pids");
            let (shell, sleep) = text.trim().split_once(' ').expect("two pids");
            assert!(
                alive(shell) && alive(sleep),
                "the hook should still be running"
            );
            assert!(
                wait_for(FIVE_S * 2, || !alive(shell) && !alive(sleep)),
                "the slow hook (shell {shell}, sleep {sleep}) was not killed"
            );
            assert!(
                wait_for(FIVE_S, || log.text().contains("was killed")),
                "log: {}",
                log.text()
            );
        });
    }
}
