//! Configuration fixtures: `config.example.toml` must load, and every file in
//! `tests/invalid_configs/` must be rejected with errors that name the file, the position of the
//! offending value (of the key, when the key itself is unknown) and the key, every problem of a
//! file in one run.
//!
//! Each invalid file says what it expects in header comments, one line per error, in file order:
//!
//! ```toml
//! # expect: LINE:COL KEY
//! ```

use std::path::{Path, PathBuf};

use switchboard::config::{Codec, Config, Transport};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example_path() -> PathBuf {
    manifest_dir().join("config.example.toml")
}

fn invalid_configs() -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests").join("invalid_configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn example_loads() {
    let config = Config::load(&example_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.accounts.len(),
        1,
        "one active account in the example"
    );
    let office = &config.accounts[0];
    assert!(office.register, "the example account registers");
    assert_eq!(office.transport, Transport::Udp);
    assert!(office
        .registrar
        .as_deref()
        .is_some_and(|r| r.starts_with("sip:")));
    assert_eq!(
        config.codecs.order,
        [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma]
    );
    assert!(config.routes.is_empty(), "no routes unless switched on");
    assert_eq!(
        (config.hooks.on_incoming.as_deref(), config.hooks.timeout),
        (None, 10)
    );
    assert!(config
        .history
        .path()
        .is_some_and(|p| p.ends_with("history.jsonl")));
}

/// Every optional setting shown commented out (`#key = …`, `#[[account]]`) is valid too: with
/// all of them switched on, the example still loads, with the second account over TCP using a
/// password command.
#[test]
fn example_loads_with_every_optional_setting_enabled() {
    let text = std::fs::read_to_string(example_path()).expect("example is readable");
    let enabled: String = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '[') => rest,
            _ => line,
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    let config = Config::parse(&enabled, &example_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.accounts.len(), 2);
    let second = &config.accounts[1];
    assert_eq!(second.transport, Transport::Tcp);
    assert!(second.password_cmd.is_some() && second.password.is_none());
    assert!(config.general.log_file.is_some() && config.general.user_agent.is_some());
    assert!(config.accounts[0].outbound_proxy.is_some());
    let routes: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(routes, ["internal", "outside", "international"]);
    let hooks = &config.hooks;
    assert!(hooks.on_incoming.is_some() && hooks.on_answer.is_some());
    assert!(hooks.on_hangup.is_some() && hooks.on_transfer.is_some());
    assert!(config.history.file.is_some());
    assert!(config.recording.dir.is_some());
}

/// The example documents every key the configuration accepts.
#[test]
fn example_mentions_every_key() {
    let text = std::fs::read_to_string(example_path()).expect("example is readable");
    let keys = [
        "[general]",
        "log_file",
        "log_level",
        "user_agent",
        "[network]",
        "bind",
        "rtp_port_min",
        "rtp_port_max",
        "[[account]]",
        "name",
        "display_name",
        "user",
        "domain",
        "registrar",
        "outbound_proxy",
        "transport",
        "tls_ca_file",
        "srtp",
        "srtp_over_insecure",
        "auth_user",
        "password",
        "password_cmd",
        "register",
        "expires",
        "transfer_method",
        "transfer_blind_code",
        "transfer_attended_code",
        "transfer_cancel_code",
        "referred_by",
        "keepalive",
        "accept_from",
        "auto_answer",
        "auto_answer_delay",
        "auto_answer_second",
        "dnd_response",
        "dnd_on_code",
        "dnd_off_code",
        "nat",
        "pickup_method",
        "pickup_code",
        "blf",
        "enabled",
        "media_address",
        "dns_servers",
        "[codecs]",
        "order",
        "opus_bitrate",
        "opus_complexity",
        "opus_fec",
        "opus_dtx",
        "ptime",
        "[audio]",
        "backend",
        "input",
        "output",
        "ring_output",
        "file_in",
        "file_loop",
        "file_out",
        "music_on_hold",
        "[media]",
        "jitter_min_ms",
        "jitter_start_ms",
        "jitter_max_ms",
        "dtmf",
        "rtp_timeout",
        "[transfer]",
        "blind",
        "blind_timeout",
        "accept_refer",
        "attended_fallback",
        "[history]",
        "file",
        "load",
        "[recording]",
        "dir",
        "format",
        "template",
        "auto",
        "[hooks]",
        "on_incoming",
        "on_answer",
        "on_hangup",
        "on_transfer",
        "on_wrapup",
        "timeout",
        "[wrapup]",
        "codes",
        "required",
        "seconds",
        "busy_during_wrapup",
        "[[route]]",
        "pattern",
        "account",
        "strip",
        "prefix",
        "[ui]",
        "bell",
        "[keys]",
        "dial",
        "answer",
        "hangup",
        "hold",
        "swap",
        "transfer",
        "consult",
        "complete",
        "cancel",
        "mute",
        "record",
        "conference",
        "pickup",
        "route",
        "search",
        "command",
        "dnd",
        "help",
        "quit",
    ];
    for key in keys {
        assert!(
            text.lines().any(|line| {
                let line = line.trim_start_matches('#').trim_start();
                line.starts_with(&format!("{key} ")) || line == key
            }),
            "config.example.toml does not show `{key}`"
        );
    }
}

/// `(line, col, key)` expectations from a fixture's `# expect:` comments.
fn expectations(text: &str, path: &Path) -> Vec<(usize, usize, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect:"))
        .map(|rest| {
            let parsed = rest.trim().split_once(' ').and_then(|(position, key)| {
                let (line, col) = position.split_once(':')?;
                Some((line.parse().ok()?, col.parse().ok()?, key.trim().to_owned()))
            });
            parsed.unwrap_or_else(|| panic!("{}: bad `# expect:` line: {rest}", path.display()))
        })
        .collect()
}

#[test]
fn invalid_configs_are_rejected_with_file_position_and_key() {
    let files = invalid_configs();
    assert!(files.len() >= 10, "expected the invalid_configs fixtures");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture is readable");
        let expected = expectations(&text, &path);
        assert!(
            !expected.is_empty(),
            "{}: no `# expect:` line",
            path.display()
        );

        let errors = match Config::load(&path) {
            Ok(config) => panic!("{} was accepted: {config:?}", path.display()),
            Err(errors) => errors,
        };
        let shown = errors.to_string();
        assert_eq!(
            errors.0.len(),
            expected.len(),
            "{}: wrong number of errors:\n{shown}",
            path.display()
        );
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), expected.len(), "one error per line:\n{shown}");

        for ((line, col, key), (error, shown_line)) in
            expected.iter().zip(errors.0.iter().zip(&lines))
        {
            let prefix = format!("{}:{line}:{col}: {key}: ", path.display());
            assert!(
                shown_line.starts_with(&prefix) && shown_line.len() > prefix.len(),
                "{}: expected `{prefix}…`, got:\n{shown}",
                path.display()
            );
            assert_eq!(
                (error.line, error.col, error.key.as_str()),
                (*line, *col, key.as_str())
            );

            // The position is the key's value (the text before it is `leaf =`), or the key
            // itself when the key is what is wrong (or, for an array element or a missing key,
            // the element or the table header).
            let leaf = key.rsplit('.').next().unwrap_or(key);
            let (before, at) = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.char_indices().nth(col - 1).map(|(i, _)| l.split_at(i)))
                .unwrap_or_else(|| panic!("{}: {line}:{col} is outside the file", path.display()));
            let at_value = before
                .trim_end()
                .strip_suffix('=')
                .is_some_and(|k| k.trim().trim_matches('"') == leaf);
            assert!(
                at_value || at.starts_with(leaf) || leaf.ends_with(']') || at.starts_with("[["),
                "{}: {line}:{col} points at `{at}`, neither at `{leaf}` nor at its value",
                path.display()
            );
        }
    }
}

#[test]
fn ui_lines_is_two_by_default_and_must_be_two_to_eight() {
    let example = Config::load(&example_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(example.ui.lines, 2);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("config.toml");
    let with_lines = |n: i64| {
        format!(
            "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"lab\"\nuser = \"alice\"\n\
             domain = \"127.0.0.1\"\nregister = false\n\n[ui]\nlines = {n}\n"
        )
    };
    for n in [2, 5, 8] {
        std::fs::write(&path, with_lines(n)).expect("write config");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("lines = {n}: {e}"));
        assert_eq!(i64::from(config.ui.lines), n);
    }
    for n in [0, 1, 9, 300, -1] {
        std::fs::write(&path, with_lines(n)).expect("write config");
        let shown = Config::load(&path).expect_err("out of range").to_string();
        assert!(
            shown.contains("ui.lines") || shown.contains("lines"),
            "{shown}"
        );
        assert!(
            shown.contains(":11:"),
            "points at the line of `lines`: {shown}"
        );
    }
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("missing.toml");
    let errors = Config::load(&path).expect_err("missing file");
    assert_eq!(errors.0.len(), 1);
    let shown = errors.to_string();
    assert!(
        shown.starts_with(&format!("{}: ", path.display())),
        "{shown}"
    );
}

#[test]
fn load_reads_a_written_file() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[network]\nbind = \"127.0.0.1:0\"\n\n[[account]]\nname = \"lab\"\nuser = \"alice\"\n\
         domain = \"127.0.0.1\"\nregister = false\npassword_cmd = \"echo pw\"\n",
    )
    .expect("write config");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.network.bind.port(), 0);
    let lab = &config.accounts[0];
    assert_eq!(lab.aor(), "alice@127.0.0.1");
    assert_eq!(lab.secret().expect("echo runs"), Some("pw".to_owned()));
}

#[test]
fn embedded_default_and_default_path() {
    let config = Config::embedded_default();
    assert_eq!(config.accounts[0].name, "local");
    if let Some(path) = Config::default_path() {
        assert!(
            path.ends_with("switchboard/config.toml"),
            "{}",
            path.display()
        );
    }
}
