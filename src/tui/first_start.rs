//! The first-start form: with no configuration file (and no `--config`), the full-screen
//! interface first offers to create one. It asks for the SIP address, the password (or a
//! command that prints it), the registrar and the transport; Enter writes the file
//! (`config::first_start`: the example's text and comments, checked with `check-config`'s
//! rules) and switchboard starts with it, or the problems are shown under the fields they
//! concern. Esc starts the embedded peer-to-peer default without writing anything.
//!
//! [`FirstStart`] is the model (keys in, [`Outcome`] out), [`view`] draws it, [`run`] is the
//! loop on the terminal. Headless mode never shows it.

use std::io;
use std::path::{Path, PathBuf};

use crossterm::event::{self as term_event, Event as TermEvent, KeyCode, KeyEvent};
use crossterm::event::{KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use crate::config::first_start::{write_config, AccountAnswers, Secret};
use crate::config::{Config, ConfigErrors, Transport};

use super::terminal;

/// A place in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `user@domain`.
    Address,
    /// The digest password.
    Password,
    /// A command printing the password, instead of it.
    Command,
    /// The registrar, empty for the domain.
    Registrar,
    /// udp, tcp or tls.
    Transport,
}

const FIELDS: [Field; 5] = [
    Field::Address,
    Field::Password,
    Field::Command,
    Field::Registrar,
    Field::Transport,
];

const TRANSPORTS: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

/// What a key did to the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still filling it in.
    Editing,
    /// Enter: write these answers.
    Submit(AccountAnswers),
    /// Esc: no file, the embedded default.
    Skip,
    /// Ctrl-C: leave switchboard.
    Quit,
}

/// The form's state.
#[derive(Debug, Clone)]
pub struct FirstStart {
    /// Where the file will be written.
    path: PathBuf,
    address: String,
    password: String,
    command: String,
    registrar: String,
    transport: Transport,
    focus: Field,
    /// Problems found when the answers were last checked, with the field they concern.
    problems: Vec<(Option<Field>, String)>,
}

impl FirstStart {
    /// An empty form for a file at `path`.
    pub fn new(path: &Path) -> FirstStart {
        FirstStart {
            path: path.to_path_buf(),
            address: String::new(),
            password: String::new(),
            command: String::new(),
            registrar: String::new(),
            transport: Transport::Udp,
            focus: Field::Address,
            problems: Vec::new(),
        }
    }

    /// The text of a text field.
    fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        match field {
            Field::Address => Some(&mut self.address),
            Field::Password => Some(&mut self.password),
            Field::Command => Some(&mut self.command),
            Field::Registrar => Some(&mut self.registrar),
            Field::Transport => None,
        }
    }

    fn move_focus(&mut self, step: isize) {
        let at = FIELDS.iter().position(|&f| f == self.focus).unwrap_or(0);
        let next = (at as isize + step).rem_euclid(FIELDS.len() as isize) as usize;
        self.focus = FIELDS[next];
    }

    fn cycle_transport(&mut self, step: isize) {
        let at = TRANSPORTS
            .iter()
            .position(|&t| t == self.transport)
            .unwrap_or(0);
        let next = (at as isize + step).rem_euclid(TRANSPORTS.len() as isize) as usize;
        self.transport = TRANSPORTS[next];
    }

    /// Handles one key.
    pub fn key(&mut self, key: KeyEvent) -> Outcome {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('c') => Outcome::Quit,
                KeyCode::Char('u') => {
                    if let Some(text) = self.text_mut(self.focus) {
                        text.clear();
                    }
                    Outcome::Editing
                }
                _ => Outcome::Editing,
            };
        }
        match key.code {
            KeyCode::Esc => return Outcome::Skip,
            KeyCode::Enter => return self.submit(),
            KeyCode::Tab | KeyCode::Down => self.move_focus(1),
            KeyCode::BackTab | KeyCode::Up => self.move_focus(-1),
            KeyCode::Left if self.focus == Field::Transport => self.cycle_transport(-1),
            KeyCode::Right | KeyCode::Char(' ') if self.focus == Field::Transport => {
                self.cycle_transport(1);
            }
            KeyCode::Backspace => {
                if let Some(text) = self.text_mut(self.focus) {
                    text.pop();
                }
            }
            KeyCode::Char(c) => {
                if let Some(text) = self.text_mut(self.focus) {
                    text.push(c);
                }
            }
            _ => {}
        }
        Outcome::Editing
    }

    /// Pasted text goes into the field in focus (control characters left out).
    pub fn paste(&mut self, pasted: &str) {
        if let Some(text) = self.text_mut(self.focus) {
            text.extend(pasted.chars().filter(|c| !c.is_control()));
        }
    }

    /// The answers, or the form's own problem (both a password and a command).
    fn submit(&mut self) -> Outcome {
        let secret = match (self.password.is_empty(), self.command.trim().is_empty()) {
            (false, false) => {
                self.problems = vec![(
                    Some(Field::Command),
                    "give a password or a command, not both".to_owned(),
                )];
                self.focus = Field::Command;
                return Outcome::Editing;
            }
            (false, true) => Secret::Password(self.password.clone()),
            (true, false) => Secret::Command(self.command.trim().to_owned()),
            (true, true) => Secret::None,
        };
        Outcome::Submit(AccountAnswers {
            address: self.address.clone(),
            secret,
            registrar: self.registrar.clone(),
            transport: self.transport,
        })
    }

    /// Shows `errors` (from checking the answers) under the fields they concern, and moves
    /// the focus to the first of them.
    pub fn show_problems(&mut self, errors: &ConfigErrors) {
        self.problems = errors
            .0
            .iter()
            .map(|error| {
                let field = match error.key.rsplit('.').next() {
                    Some("user" | "domain") => Some(Field::Address),
                    Some("password" | "password_cmd" | "auth_user") => Some(Field::Password),
                    Some("registrar") => Some(Field::Registrar),
                    Some("transport" | "srtp" | "tls_ca_file") => Some(Field::Transport),
                    _ => None,
                };
                let what = match error.key.rsplit('.').next() {
                    Some("user") => "user part: ",
                    Some("domain") => "domain part: ",
                    _ => "",
                };
                (field, format!("{what}{}", error.message))
            })
            .collect();
        if let Some(field) = self.problems.iter().find_map(|(field, _)| *field) {
            self.focus = field;
        }
    }
}

/// `message` as lines of at most `width` characters after `indent` (`✗ ` on the first).
fn problem_lines(message: &str, indent: usize, width: usize) -> Vec<Line<'static>> {
    let style = Style::new().fg(Color::Red);
    let width = width.saturating_sub(indent + 2).max(20);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in message.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let mark = if i == 0 { "✗ " } else { "  " };
            Line::styled(format!("{:indent$}{mark}{text}", ""), style)
        })
        .collect()
}

/// The label, value (or hint when empty) and problems of one field, as lines `width` wide.
fn field_lines(form: &FirstStart, field: Field, width: usize) -> Vec<Line<'static>> {
    let dim = Style::new().fg(Color::DarkGray);
    let focused = form.focus == field;
    let (label, value, hint) = match field {
        Field::Address => (
            "SIP address",
            form.address.clone(),
            "user@domain, as the PBX gives it",
        ),
        Field::Password => (
            "Password",
            "•".repeat(form.password.chars().count()),
            "kept in the file, mode 0600",
        ),
        Field::Command => (
            "or command",
            form.command.clone(),
            "prints the password, e.g. pass show sip",
        ),
        Field::Registrar => (
            "Registrar",
            form.registrar.clone(),
            "host[:port] or sip: URI; empty: the domain",
        ),
        Field::Transport => ("Transport", String::new(), ""),
    };
    let label_style = if focused {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let mut spans = vec![
        Span::raw(" "),
        Span::styled(format!("{label:<12}"), label_style),
        Span::raw(" "),
    ];
    if field == Field::Transport {
        for transport in TRANSPORTS {
            let name = transport.to_string();
            if transport == form.transport {
                spans.push(Span::styled(
                    format!("[{name}]"),
                    Style::new().add_modifier(Modifier::BOLD),
                ));
            } else {
                spans.push(Span::raw(format!(" {name} ")));
            }
            spans.push(Span::raw(" "));
        }
        if focused {
            spans.push(Span::styled("← → change", dim));
        }
    } else {
        spans.push(Span::raw(value.clone()));
        if focused {
            spans.push(Span::raw("▏"));
        }
        if value.is_empty() {
            spans.push(Span::styled(format!(" {hint}"), dim));
        }
    }
    let mut lines = vec![Line::from(spans)];
    for (_, message) in form.problems.iter().filter(|(f, _)| *f == Some(field)) {
        lines.extend(problem_lines(message, 14, width));
    }
    lines
}

/// Draws the form over the whole frame.
pub fn view(form: &FirstStart, frame: &mut Frame) {
    let area = frame.area();
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = vec![
        Line::raw(" No configuration file yet. Fill in your SIP account and press Enter: it is"),
        Line::raw(format!(" written to {}", form.path.display())),
        Line::raw(" (config.example.toml with its comments) and switchboard starts with it."),
        Line::styled(
            " Esc tries the peer-to-peer default instead; nothing is written.",
            dim,
        ),
        Line::raw(""),
    ];
    let width = usize::from(area.width.saturating_sub(2));
    for field in FIELDS {
        lines.extend(field_lines(form, field, width));
    }
    let mut general = form.problems.iter().filter(|(f, _)| f.is_none()).peekable();
    if general.peek().is_some() {
        lines.push(Line::raw(""));
        for (_, message) in general {
            lines.extend(problem_lines(message, 1, width));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " Tab/↑↓ field · Enter save and start · Esc peer-to-peer default · Ctrl-C quit",
        dim,
    ));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = Rect {
        height: height.min(area.height),
        ..area
    };
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" switchboard: first start "),
        ),
        popup,
    );
}

/// Shows the form until the file is written (its configuration is returned), Esc (`None`) or
/// Ctrl-C (`Err` of kind `Interrupted`). The terminal is restored when this returns.
pub fn run(path: &Path) -> io::Result<Option<Config>> {
    let mut screen = terminal::enter()?;
    let mut form = FirstStart::new(path);
    loop {
        screen.terminal.draw(|frame| view(&form, frame))?;
        let outcome = match term_event::read()? {
            TermEvent::Key(key) if key.kind != KeyEventKind::Release => form.key(key),
            TermEvent::Paste(text) => {
                form.paste(&text);
                Outcome::Editing
            }
            _ => Outcome::Editing,
        };
        match outcome {
            Outcome::Editing => {}
            Outcome::Skip => return Ok(None),
            Outcome::Quit => return Err(io::ErrorKind::Interrupted.into()),
            Outcome::Submit(answers) => match write_config(path, &answers) {
                Ok(config) => return Ok(Some(config)),
                Err(errors) => form.show_problems(&errors),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn typed(form: &mut FirstStart, text: &str) {
        for c in text.chars() {
            assert_eq!(form.key(key(KeyCode::Char(c))), Outcome::Editing);
        }
    }

    /// The form at 80×24 after a first try: the answers typed, the registrar refused with
    /// check-config's own message under it.
    #[test]
    fn the_form_at_80x24_shows_the_problems_under_their_fields() {
        use crate::config::first_start::{config_text, EXAMPLE};
        use ratatui::backend::TestBackend;
        use ratatui::Terminal;

        let mut form = FirstStart::new(Path::new("/home/op/.config/switchboard/config.toml"));
        typed(&mut form, "1001@pbx.example.com");
        form.key(key(KeyCode::Tab));
        typed(&mut form, "secret");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Tab));
        typed(&mut form, "sip:1001@pbx.example.com");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Right));
        let Outcome::Submit(answers) = form.key(key(KeyCode::Enter)) else {
            panic!("Enter submits");
        };
        let text = config_text(EXAMPLE, &answers).expect("written");
        let errors = Config::parse(&text, Path::new("config.toml")).expect_err("a user part");
        form.show_problems(&errors);
        assert_eq!(form.focus, Field::Registrar);

        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("test backend");
        terminal.draw(|frame| view(&form, frame)).expect("drawn");
        insta::assert_snapshot!(terminal.backend());
    }

    #[test]
    fn keys_fill_the_fields_and_enter_gives_the_answers() {
        let mut form = FirstStart::new(Path::new("/tmp/x/config.toml"));
        typed(&mut form, "1001@pbx");
        form.key(key(KeyCode::Tab));
        typed(&mut form, "pw!");
        form.key(key(KeyCode::Backspace));
        form.key(key(KeyCode::Down));
        form.key(key(KeyCode::Down));
        form.paste("pbx:5060\n");
        form.key(key(KeyCode::Tab));
        form.key(key(KeyCode::Left));
        assert_eq!(
            form.key(key(KeyCode::Enter)),
            Outcome::Submit(AccountAnswers {
                address: "1001@pbx".into(),
                secret: Secret::Password("pw".into()),
                registrar: "pbx:5060".into(),
                transport: Transport::Tls,
            })
        );
        // Both a password and a command: the form says so itself.
        form.key(key(KeyCode::BackTab));
        form.key(key(KeyCode::BackTab));
        typed(&mut form, "pass show sip");
        assert_eq!(form.key(key(KeyCode::Enter)), Outcome::Editing);
        assert_eq!(form.problems.len(), 1);
        assert_eq!(form.key(key(KeyCode::Esc)), Outcome::Skip);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(form.key(ctrl_c), Outcome::Quit);
    }
}
