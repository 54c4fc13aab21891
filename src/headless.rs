//! Headless mode: command words in, JSON events out, one per line.
//!
//! [`parse_command`] turns one input line into a [`Command`] (the same vocabulary the TUI keys
//! will use); [`read_commands`] applies it to a whole input, ending with [`Command::Quit`] at
//! EOF; [`write_events`] prints each [`Event`] as one JSON object per line, flushed at once.
//! Words are case-insensitive; arguments (targets, digits) are kept as written. Blank lines and
//! lines starting with `#` are ignored. A malformed line gives an error message for the front
//! end to show (as an `error` event), never a panic.
//!
//! This module knows nothing of sockets, the driver or the clock.

use std::io::{self, BufRead, Write};

use crate::front::{Command, Event, TraceMode};
use crate::sip::target::{TargetError, Typed};
use crate::sip::{Command as SipCommand, LineNo, WrapupChoice};
use crate::sound::{DeviceRole, SoundCommand, VoiceStage};

/// Every command word, as listed in error messages and the README.
pub const WORDS: [&str; 36] = [
    "dial",
    "answer",
    "decline",
    "hangup",
    "hold",
    "resume",
    "line",
    "swap",
    "transfer",
    "consult",
    "complete",
    "cancel",
    "dtmf",
    "mute",
    "conference",
    "record",
    "pickup",
    "watch",
    "route",
    "trace",
    "ns",
    "agc",
    "stats",
    "level",
    "tone",
    "echo",
    "use-device",
    "list-devices",
    "dnd",
    "wrapup",
    "quit",
    "favourite",
    "favourites",
    "park",
    "unpark",
    "account",
];

/// Parses one line: `Ok(None)` for a blank line or a `#` comment, `Err` with a message a
/// person can act on for anything malformed.
pub fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let first = parts.next().unwrap_or_default();
    let word = first.to_ascii_lowercase();
    let args: Vec<&str> = parts.collect();
    // A target is the rest of the line: `dial 555 123-4567`, `dial "Carol" <sip:carol@pbx>`.
    let rest = line[first.len()..].trim();
    let command = match word.as_str() {
        "trace" => {
            let words: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
            match words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["on"] => Command::Trace(TraceMode::On),
                ["on", "raw"] => Command::Trace(TraceMode::Raw),
                ["off"] => Command::Trace(TraceMode::Off),
                _ => {
                    return Err(format!(
                        "trace: expected `on`, `on raw` or `off`, not `{}`",
                        args.join(" ")
                    ))
                }
            }
        }
        "stats" => none(&word, &args, Command::Stats)?,
        "ns" => Command::Voice(VoiceStage::NoiseSuppression, switch(&word, &args)?),
        "agc" => Command::Voice(VoiceStage::Agc, switch(&word, &args)?),
        "level" => Command::Sound(SoundCommand::Level(on_off(&word, &args)?)),
        "tone" => none(&word, &args, Command::Sound(SoundCommand::Tone))?,
        "list-devices" => none(&word, &args, Command::Sound(SoundCommand::ListDevices))?,
        "echo" => Command::Sound(SoundCommand::Echo(on_off(&word, &args)?)),
        "use-device" => {
            let (role, name) = match args.split_first() {
                Some((role, name)) if !name.is_empty() => (*role, name.join(" ")),
                _ => {
                    return Err(
                        "use-device: expected `in`, `out` or `ring` and a device name".to_owned(),
                    )
                }
            };
            let role = match role.to_ascii_lowercase().as_str() {
                "in" => DeviceRole::Input,
                "out" => DeviceRole::Output,
                "ring" => DeviceRole::Ring,
                _ => {
                    return Err(format!(
                        "use-device: expected `in`, `out` or `ring`, not `{role}`"
                    ))
                }
            };
            Command::Sound(SoundCommand::UseDevice(role, name))
        }
        "route" => Command::Route(one(&word, "a route name", &args)?),
        _ => Command::Sip(sip_command(&word, &args, rest)?),
    };
    Ok(Some(command))
}

/// The words for the SIP core.
fn sip_command(word: &str, args: &[&str], rest: &str) -> Result<SipCommand, String> {
    let command = match word {
        "dial" => SipCommand::Dial(target(word, "a number or SIP URI", rest)?),
        "answer" => SipCommand::Answer(optional_line(word, args)?),
        "decline" => SipCommand::Decline(optional_line(word, args)?),
        "hangup" => SipCommand::Hangup(optional_line(word, args)?),
        "hold" => SipCommand::Hold(optional_line(word, args)?),
        "resume" => SipCommand::Resume(optional_line(word, args)?),
        "line" => {
            let n = one(word, "a line number", args)?;
            SipCommand::Line(line_number(word, &n)?)
        }
        "swap" => none(word, args, SipCommand::Swap)?,
        "transfer" => SipCommand::Transfer(target(word, "a target number or SIP URI", rest)?),
        "consult" => SipCommand::Consult(target(word, "a target number or SIP URI", rest)?),
        "complete" => none(word, args, SipCommand::Complete)?,
        "cancel" => none(word, args, SipCommand::Cancel)?,
        "dtmf" => SipCommand::Dtmf(dtmf_digits(&one(word, "digits", args)?)?),
        "mute" => none(word, args, SipCommand::Mute)?,
        "conference" => none(word, args, SipCommand::Conference)?,
        "record" => {
            let (what, rest) = match args.split_first() {
                Some((what, rest)) => (*what, rest),
                None => return Err("record: expected `start` or `stop`".to_owned()),
            };
            let line = optional_line(word, rest)?;
            match what.to_ascii_lowercase().as_str() {
                "start" => SipCommand::Record(true, line),
                "stop" => SipCommand::Record(false, line),
                _ => return Err(format!("record: expected `start` or `stop`, not `{what}`")),
            }
        }
        "pickup" => SipCommand::Pickup(target(word, "an extension", rest)?),
        "watch" => SipCommand::Watch(args.iter().map(|a| (*a).to_owned()).collect()),
        "quit" => none(word, args, SipCommand::Quit)?,
        "favourite" if rest.is_empty() => {
            return Err("favourite: expected its position, label or number".to_owned())
        }
        "favourite" => SipCommand::Favourite(rest.to_owned()),
        "favourites" => none(word, args, SipCommand::Favourites)?,
        "park" => SipCommand::Park(optional_line(word, args)?),
        "unpark" => SipCommand::Unpark(one(word, "a park slot", args)?),
        "dnd" => SipCommand::Dnd(switch(word, args)?),
        "wrapup" => SipCommand::Wrapup(wrapup_choice(rest)?),
        "account" => SipCommand::Account(one(word, "an account name", args)?),
        _ => {
            return Err(format!(
                "unknown command `{word}`; commands: {}",
                WORDS.join(", ")
            ))
        }
    };
    Ok(command)
}

/// `wrapup skip`, `wrapup CODE [note…]` or `wrapup - note…` (a note, no code); the note is
/// the rest of the line as typed.
fn wrapup_choice(rest: &str) -> Result<WrapupChoice, String> {
    let (code, note) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match code {
        "" => Err("wrapup: expected a code (and a note), `- note` or `skip`".to_owned()),
        _ if code.eq_ignore_ascii_case("skip") && note.trim().is_empty() => Ok(WrapupChoice::Skip),
        "-" if note.trim().is_empty() => Err("wrapup: `-` needs a note after it".to_owned()),
        "-" => Ok(WrapupChoice::Save {
            code: None,
            note: note.trim().to_owned(),
        }),
        _ => Ok(WrapupChoice::Save {
            code: Some(code.to_owned()),
            note: note.trim().to_owned(),
        }),
    }
}

/// Exactly one argument.
fn one(word: &str, what: &str, args: &[&str]) -> Result<String, String> {
    match args {
        [arg] => Ok((*arg).to_owned()),
        [] => Err(format!("{word}: expected {what}")),
        _ => Err(format!(
            "{word}: expected only {what}, got `{}`",
            args.join(" ")
        )),
    }
}

/// `on`, `off`, or nothing (switch over).
fn switch(word: &str, args: &[&str]) -> Result<Option<bool>, String> {
    match args {
        [] => Ok(None),
        [what] => match what.to_ascii_lowercase().as_str() {
            "on" => Ok(Some(true)),
            "off" => Ok(Some(false)),
            _ => Err(format!("{word}: expected `on` or `off`, not `{what}`")),
        },
        _ => Err(format!(
            "{word}: expected `on`, `off` or nothing, got `{}`",
            args.join(" ")
        )),
    }
}

/// `on` or `off`, nothing else.
fn on_off(word: &str, args: &[&str]) -> Result<bool, String> {
    switch(word, args)?.ok_or_else(|| format!("{word}: expected `on` or `off`"))
}

/// The rest of the line as a call target, checked by the one target parser
/// ([`Typed::parse`]) and passed on as typed.
fn target(word: &str, what: &str, rest: &str) -> Result<String, String> {
    match Typed::parse(rest) {
        Ok(_) => Ok(rest.to_owned()),
        Err(TargetError::Empty) => Err(format!("{word}: expected {what}")),
        Err(e) => Err(format!("{word}: {e}")),
    }
}

/// No argument.
fn none<C>(word: &str, args: &[&str], command: C) -> Result<C, String> {
    if args.is_empty() {
        Ok(command)
    } else {
        Err(format!(
            "{word}: takes no argument, got `{}`",
            args.join(" ")
        ))
    }
}

/// An optional line number.
fn optional_line(word: &str, args: &[&str]) -> Result<Option<LineNo>, String> {
    match args {
        [] => Ok(None),
        [n] => line_number(word, n).map(Some),
        _ => Err(format!(
            "{word}: expected at most a line number, got `{}`",
            args.join(" ")
        )),
    }
}

/// A line number: 1, 2, …
fn line_number(word: &str, text: &str) -> Result<LineNo, String> {
    match text.parse::<LineNo>() {
        Ok(0) => Err(format!("{word}: line numbers start at 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{word}: `{text}` is not a line number")),
    }
}

/// DTMF digits `0-9 * # A-D`, upper-cased.
fn dtmf_digits(text: &str) -> Result<String, String> {
    match text
        .chars()
        .find(|c| !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d'))
    {
        Some(bad) => Err(format!(
            "dtmf: `{bad}` is not a DTMF digit (0-9, *, #, A-D)"
        )),
        None => Ok(text.to_ascii_uppercase()),
    }
}

/// Reads `input` line by line and hands each parsed command (or the message for a malformed
/// line) to `deliver`, which returns false to stop reading. At EOF, or when the input cannot
/// be read, delivers `quit`. Blocks; run it on its own thread.
pub fn read_commands(
    mut input: impl BufRead,
    mut deliver: impl FnMut(Result<Command, String>) -> bool,
) {
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read commands; quitting");
                break;
            }
        }
        let parsed = match std::str::from_utf8(&raw) {
            Ok(line) => parse_command(line),
            Err(_) => Err("the line is not valid UTF-8".to_owned()),
        };
        let keep_going = match parsed {
            Ok(Some(command)) => deliver(Ok(command)),
            Ok(None) => true,
            Err(message) => deliver(Err(message)),
        };
        if !keep_going {
            return;
        }
    }
    deliver(Ok(SipCommand::Quit.into()));
}

/// One event as its JSON line (without the newline).
pub fn event_line(event: &Event) -> String {
    serde_json::to_string(event).unwrap_or_else(|e| {
        // Serialising these plain types cannot fail; say so in JSON if it ever does.
        serde_json::json!({ "event": "error", "message": format!("cannot serialise an event: {e}") })
            .to_string()
    })
}

/// Writes each event as one JSON line to `out`, flushing after each, until `events` ends.
/// Blocks; run it on its own thread.
pub fn write_events(
    events: impl IntoIterator<Item = Event>,
    mut out: impl Write,
) -> io::Result<()> {
    for event in events {
        writeln!(out, "{}", event_line(&event))?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::Event as SipEvent;

    fn ok(line: &str) -> Command {
        match parse_command(line) {
            Ok(Some(command)) => command,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse_command(line) {
            Err(message) => message,
            other => panic!("{line:?} should be an error, gave {other:?}"),
        }
    }

    #[test]
    fn every_word_parses() {
        let cases = [
            (
                "dial sip:bob@127.0.0.1:5070",
                Command::Sip(SipCommand::Dial("sip:bob@127.0.0.1:5070".into())),
            ),
            ("dial 0123", Command::Sip(SipCommand::Dial("0123".into()))),
            ("answer", Command::Sip(SipCommand::Answer(None))),
            ("answer 2", Command::Sip(SipCommand::Answer(Some(2)))),
            ("decline", Command::Sip(SipCommand::Decline(None))),
            ("decline 1", Command::Sip(SipCommand::Decline(Some(1)))),
            ("hangup", Command::Sip(SipCommand::Hangup(None))),
            ("hangup 2", Command::Sip(SipCommand::Hangup(Some(2)))),
            ("hold", Command::Sip(SipCommand::Hold(None))),
            ("hold 1", Command::Sip(SipCommand::Hold(Some(1)))),
            ("resume", Command::Sip(SipCommand::Resume(None))),
            ("resume 2", Command::Sip(SipCommand::Resume(Some(2)))),
            ("line 2", Command::Sip(SipCommand::Line(2))),
            ("swap", Command::Sip(SipCommand::Swap)),
            (
                "transfer 200",
                Command::Sip(SipCommand::Transfer("200".into())),
            ),
            (
                "consult sip:carol@pbx",
                Command::Sip(SipCommand::Consult("sip:carol@pbx".into())),
            ),
            ("complete", Command::Sip(SipCommand::Complete)),
            ("cancel", Command::Sip(SipCommand::Cancel)),
            (
                "dtmf 12*#ab",
                Command::Sip(SipCommand::Dtmf("12*#AB".into())),
            ),
            ("mute", Command::Sip(SipCommand::Mute)),
            ("conference", Command::Sip(SipCommand::Conference)),
            ("record start", Command::Sip(SipCommand::Record(true, None))),
            ("record STOP", Command::Sip(SipCommand::Record(false, None))),
            (
                "record stop 2",
                Command::Sip(SipCommand::Record(false, Some(2))),
            ),
            ("pickup 201", Command::Sip(SipCommand::Pickup("201".into()))),
            (
                "watch 201 202",
                Command::Sip(SipCommand::Watch(vec!["201".into(), "202".into()])),
            ),
            ("watch", Command::Sip(SipCommand::Watch(Vec::new()))),
            ("route intl", Command::Route("intl".into())),
            ("trace on", Command::Trace(TraceMode::On)),
            ("trace on RAW", Command::Trace(TraceMode::Raw)),
            ("TRACE off", Command::Trace(TraceMode::Off)),
            ("level on", Command::Sound(SoundCommand::Level(true))),
            ("tone", Command::Sound(SoundCommand::Tone)),
            ("list-devices", Command::Sound(SoundCommand::ListDevices)),
            ("echo OFF", Command::Sound(SoundCommand::Echo(false))),
            (
                "use-device out USB Headset Stereo",
                Command::Sound(SoundCommand::UseDevice(
                    DeviceRole::Output,
                    "USB Headset Stereo".into(),
                )),
            ),
            (
                "ns on",
                Command::Voice(VoiceStage::NoiseSuppression, Some(true)),
            ),
            ("ns", Command::Voice(VoiceStage::NoiseSuppression, None)),
            ("stats", Command::Stats),
            ("agc OFF", Command::Voice(VoiceStage::Agc, Some(false))),
            ("dnd on", Command::Sip(SipCommand::Dnd(Some(true)))),
            ("dnd", Command::Sip(SipCommand::Dnd(None))),
            (
                "wrapup skip",
                Command::Sip(SipCommand::Wrapup(WrapupChoice::Skip)),
            ),
            (
                "wrapup sale  paid by card, 2 seats",
                Command::Sip(SipCommand::Wrapup(WrapupChoice::Save {
                    code: Some("sale".into()),
                    note: "paid by card, 2 seats".into(),
                })),
            ),
            (
                "wrapup - call back Monday",
                Command::Sip(SipCommand::Wrapup(WrapupChoice::Save {
                    code: None,
                    note: "call back Monday".into(),
                })),
            ),
            ("quit", Command::Sip(SipCommand::Quit)),
            (
                "favourite 3",
                Command::Sip(SipCommand::Favourite("3".into())),
            ),
            (
                "favourite Front desk",
                Command::Sip(SipCommand::Favourite("Front desk".into())),
            ),
            ("favourites", Command::Sip(SipCommand::Favourites)),
            ("park", Command::Sip(SipCommand::Park(None))),
            ("park 2", Command::Sip(SipCommand::Park(Some(2)))),
            ("unpark 701", Command::Sip(SipCommand::Unpark("701".into()))),
            (
                "account queue",
                Command::Sip(SipCommand::Account("queue".into())),
            ),
        ];
        for (line, expected) in &cases {
            assert_eq!(&ok(line), expected, "{line}");
        }
        let parsed: Vec<&str> = cases
            .iter()
            .map(|(l, _)| l.split(' ').next().unwrap_or_default())
            .collect();
        for word in WORDS {
            assert!(parsed.contains(&word), "no case for {word}");
        }
    }

    #[test]
    fn words_are_case_insensitive_and_arguments_kept() {
        assert_eq!(
            ok("  DIAL  sip:Bob@Host  "),
            Command::Sip(SipCommand::Dial("sip:Bob@Host".into()))
        );
        assert_eq!(
            ok("dial  555 123-4567 "),
            Command::Sip(SipCommand::Dial("555 123-4567".into()))
        );
        assert_eq!(
            ok("consult \"Carol\" <sip:carol@pbx>"),
            Command::Sip(SipCommand::Consult("\"Carol\" <sip:carol@pbx>".into()))
        );
        assert_eq!(
            ok("pickup 20-1"),
            Command::Sip(SipCommand::Pickup("20-1".into()))
        );
        assert_eq!(ok("Quit"), Command::Sip(SipCommand::Quit));
        assert_eq!(
            ok("HangUp\t1\r\n"),
            Command::Sip(SipCommand::Hangup(Some(1)))
        );
    }

    #[test]
    fn blanks_and_comments_are_skipped() {
        for line in ["", "   ", "\n", "# dial 100", "   #quit"] {
            assert_eq!(parse_command(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        let cases = [
            (
                "frobnicate",
                "unknown command `frobnicate`; commands: dial, answer,",
            ),
            ("dial", "dial: expected a number or SIP URI"),
            ("level", "level: expected `on` or `off`"),
            (
                "use-device mic x",
                "use-device: expected `in`, `out` or `ring`, not `mic`",
            ),
            (
                "use-device in",
                "use-device: expected `in`, `out` or `ring` and a device",
            ),
            (
                "dial a b",
                "dial: 'a b' is neither a number (digits, +, * and #), an extension nor a SIP",
            ),
            (
                "transfer <sip:x",
                "transfer: '<sip:x' has an unclosed '<…>'",
            ),
            ("answer x", "answer: `x` is not a line number"),
            ("hangup 0", "hangup: line numbers start at 1"),
            (
                "hold 1 2",
                "hold: expected at most a line number, got `1 2`",
            ),
            ("resume 300", "resume: `300` is not a line number"),
            ("decline -1", "decline: `-1` is not a line number"),
            ("line", "line: expected a line number"),
            ("dnd maybe", "dnd: expected `on` or `off`, not `maybe`"),
            (
                "wrapup",
                "wrapup: expected a code (and a note), `- note` or `skip`",
            ),
            ("wrapup -", "wrapup: `-` needs a note after it"),
            ("line two", "line: `two` is not a line number"),
            ("swap 1", "swap: takes no argument, got `1`"),
            ("transfer", "transfer: expected a target number or SIP URI"),
            ("consult", "consult: expected a target number or SIP URI"),
            ("complete now", "complete: takes no argument, got `now`"),
            ("cancel it", "cancel: takes no argument"),
            ("dtmf", "dtmf: expected digits"),
            ("dtmf 12x", "dtmf: `x` is not a DTMF digit (0-9, *, #, A-D)"),
            ("mute on", "mute: takes no argument"),
            ("ns loud", "ns: expected `on` or `off`, not `loud`"),
            (
                "agc on off",
                "agc: expected `on`, `off` or nothing, got `on off`",
            ),
            ("conference 3", "conference: takes no argument"),
            ("record", "record: expected `start` or `stop`"),
            (
                "record pause",
                "record: expected `start` or `stop`, not `pause`",
            ),
            ("pickup", "pickup: expected an extension"),
            (
                "trace loud",
                "trace: expected `on`, `on raw` or `off`, not `loud`",
            ),
            ("trace", "trace: expected `on`, `on raw` or `off`, not ``"),
            (
                "trace off raw",
                "trace: expected `on`, `on raw` or `off`, not `off raw`",
            ),
            ("route", "route: expected a route name"),
            ("quit now", "quit: takes no argument, got `now`"),
            (
                "favourite",
                "favourite: expected its position, label or number",
            ),
            ("favourites 2", "favourites: takes no argument"),
            ("park x", "park: `x` is not a line number"),
            ("unpark", "unpark: expected a park slot"),
            ("account", "account: expected an account name"),
            (
                "account a b",
                "account: expected only an account name, got `a b`",
            ),
        ];
        for (line, start) in cases {
            let message = err(line);
            assert!(message.starts_with(start), "{line:?} gave {message:?}");
        }
    }

    #[test]
    fn reading_ends_with_quit_and_reports_errors() {
        let input = b"dial 100\n\n# comment\nbogus\n\xff\nhangup".as_slice();
        let mut got = Vec::new();
        read_commands(input, |item| {
            got.push(item);
            true
        });
        assert_eq!(
            got,
            [
                Ok(Command::Sip(SipCommand::Dial("100".into()))),
                Err(err("bogus")),
                Err("the line is not valid UTF-8".to_owned()),
                Ok(Command::Sip(SipCommand::Hangup(None))),
                Ok(Command::Sip(SipCommand::Quit)),
            ]
        );
        // The consumer can stop the reader.
        let mut count = 0;
        read_commands(b"swap\nswap\nswap\n".as_slice(), |_| {
            count += 1;
            false
        });
        assert_eq!(count, 1);
    }

    #[test]
    fn events_are_json_lines() {
        use crate::sip::CallState;
        let mut out = Vec::new();
        write_events(
            [
                Event::Sip(SipEvent::Error {
                    message: "line 3 \"x\"".into(),
                }),
                Event::Sip(SipEvent::Stopped),
            ],
            &mut out,
        )
        .expect("written");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "{\"event\":\"error\",\"message\":\"line 3 \\\"x\\\"\"}\n{\"event\":\"stopped\"}\n"
        );
        let registered = event_line(&Event::Sip(SipEvent::Registered {
            account: "desk".into(),
            aor: "100@pbx".into(),
            expires: 600,
        }));
        assert_eq!(
            registered,
            r#"{"event":"registered","account":"desk","aor":"100@pbx","expires":600}"#
        );
        // Several accounts: every registration event and every incoming call names its own.
        let cases = [
            (
                SipEvent::RegistrationFailed {
                    account: "queue".into(),
                    aor: "200@pbx2".into(),
                    status: None,
                    reason: "the registrar did not answer".into(),
                    retry_in: 30,
                },
                r#"{"event":"registration_failed","account":"queue","aor":"200@pbx2","status":null,"reason":"the registrar did not answer","retry_in":30}"#,
            ),
            (
                SipEvent::Unregistered {
                    account: "queue".into(),
                    aor: "200@pbx2".into(),
                },
                r#"{"event":"unregistered","account":"queue","aor":"200@pbx2"}"#,
            ),
            (
                SipEvent::Incoming {
                    line: 2,
                    call_id: "c9".into(),
                    from: "sip:bob@pbx2".into(),
                    display_name: None,
                    referred_by: None,
                    replaces: None,
                    account: "queue".into(),
                },
                r#"{"event":"incoming","line":2,"call_id":"c9","from":"sip:bob@pbx2","display_name":null,"account":"queue"}"#,
            ),
            (
                SipEvent::Call {
                    line: 2,
                    call_id: "c9".into(),
                    state: CallState::Connected,
                    peer: "sip:bob@pbx2".into(),
                    status: None,
                    reason: None,
                    account: Some("queue".into()),
                },
                r#"{"event":"call","line":2,"call_id":"c9","state":"connected","peer":"sip:bob@pbx2","account":"queue"}"#,
            ),
            (
                SipEvent::AccountSelected {
                    account: "queue".into(),
                },
                r#"{"event":"account_selected","account":"queue"}"#,
            ),
        ];
        for (event, json) in cases {
            assert_eq!(event_line(&Event::Sip(event)), json);
        }
    }

    /// The JSON of events is what it was when the core's and the driver's events were one
    /// enum: flat objects, `"event"` first, fields in their order, absent options left out.
    #[test]
    fn events_keep_their_json_shape_across_the_split() {
        use crate::front::TraceDirection;
        use crate::sip::{CallState, Census};
        let cases: Vec<(Event, &str)> = vec![
            (
                Event::Started {
                    local: "127.0.0.1:5060".into(),
                    transport: "udp".into(),
                    account: "100@pbx".into(),
                    accounts: vec!["desk".into(), "queue".into()],
                    note: "n".into(),
                    lines: 2,
                },
                r#"{"event":"started","local":"127.0.0.1:5060","transport":"udp","account":"100@pbx","accounts":["desk","queue"],"note":"n","lines":2}"#,
            ),
            (
                Event::Sip(SipEvent::Call {
                    line: 1,
                    call_id: "c1".into(),
                    state: CallState::RemoteHeld,
                    peer: "sip:bob@pbx".into(),
                    status: None,
                    reason: None,
                    account: None,
                }),
                r#"{"event":"call","line":1,"call_id":"c1","state":"remote_held","peer":"sip:bob@pbx"}"#,
            ),
            (
                Event::Quality {
                    line: 2,
                    call_id: "c2".into(),
                    codec: "opus".into(),
                    loss_pct: 1.5,
                    jitter_ms: 2.0,
                    rtt_ms: None,
                    buffer_ms: 40,
                },
                r#"{"event":"quality","line":2,"call_id":"c2","codec":"opus","loss_pct":1.5,"jitter_ms":2.0,"rtt_ms":null,"buffer_ms":40}"#,
            ),
            (
                Event::Voice {
                    noise_suppression: true,
                    agc: false,
                },
                r#"{"event":"voice","noise_suppression":true,"agc":false}"#,
            ),
            (
                Event::Devices {
                    input: "default".into(),
                    output: "discarded".into(),
                    ring: "headset".into(),
                },
                r#"{"event":"devices","input":"default","output":"discarded","ring":"headset"}"#,
            ),
            (
                Event::DeviceList {
                    devices: vec![crate::front::ListedDevice {
                        name: "pulse".into(),
                        id: "alsa:pulse".into(),
                        input: true,
                        output: true,
                        default_config: Some("44100 Hz, 2 ch, i16".into()),
                        default: false,
                    }],
                    error: None,
                },
                r#"{"event":"device_list","devices":[{"name":"pulse","id":"alsa:pulse","input":true,"output":true,"default_config":"44100 Hz, 2 ch, i16","default":false}]}"#,
            ),
            (
                Event::DeviceList {
                    devices: vec![],
                    error: Some("audio system: cannot list devices".into()),
                },
                r#"{"event":"device_list","devices":[],"error":"audio system: cannot list devices"}"#,
            ),
            (
                Event::Level { dbfs: -96.0 },
                r#"{"event":"level","dbfs":-96.0}"#,
            ),
            (
                Event::DeviceChosen {
                    role: "input".into(),
                    device: "USB".into(),
                    file: "/c.toml".into(),
                },
                r#"{"event":"device_chosen","role":"input","device":"USB","file":"/c.toml"}"#,
            ),
            (
                Event::Record {
                    line: 1,
                    call_id: "c1".into(),
                    recording: true,
                    path: "/r.ogg".into(),
                    reason: None,
                    duration_ms: None,
                    dropped_frames: None,
                },
                r#"{"event":"record","line":1,"call_id":"c1","recording":true,"path":"/r.ogg"}"#,
            ),
            (
                Event::Audio {
                    message: "microphone lost".into(),
                },
                r#"{"event":"audio","message":"microphone lost"}"#,
            ),
            (
                Event::SipMessage {
                    direction: TraceDirection::In,
                    peer: "127.0.0.1:5060".into(),
                    message: "OPTIONS".into(),
                    raw: false,
                },
                r#"{"event":"sip","direction":"in","peer":"127.0.0.1:5060","message":"OPTIONS","raw":false}"#,
            ),
            (
                Event::Trace {
                    mode: TraceMode::Off,
                    shows: "no SIP messages".into(),
                },
                r#"{"event":"trace","mode":"off","shows":"no SIP messages"}"#,
            ),
            (
                Event::Stats {
                    core: Census {
                        calls: 1,
                        ..Census::default()
                    },
                    threads: Some(3),
                    fds: None,
                    rss_kib: None,
                    rss_anon_kib: None,
                    heap_kib: None,
                },
                r#"{"event":"stats","core":{"client_transactions":0,"server_transactions":0,"calls":1,"subscriptions":0,"acks":0,"pickups":0},"threads":3,"fds":null,"rss_kib":null,"rss_anon_kib":null,"heap_kib":null}"#,
            ),
        ];
        for (event, json) in cases {
            assert_eq!(event_line(&event), json);
        }
    }
}
