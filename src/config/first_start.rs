//! The configuration file written at first start: `config.example.toml`'s own text, with every
//! comment, and the operator's account put in its first `[[account]]` (`toml_edit`).
//!
//! What the form asks ([`AccountAnswers`]) goes into the account's values in place; the
//! example's values the form does not ask for and that would be wrong for someone else
//! (`display_name`, `auth_user`, a registrar left empty) become commented-out lines
//! (`#auth_user = "1001"`), the file's own way of showing an optional setting. The SIP socket
//! is bound to any free port (another phone on the machine may hold 5060; the registrar learns
//! the port from REGISTER). The text is checked with the same rules as `check-config` before
//! it is written, and the problems come back with the keys they concern.
//!
//! This module must not draw or read keys: the form lives in `tui::first_start`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use toml_edit::{value, DocumentMut, Item, Key, Table};

use super::{Config, ConfigError, ConfigErrors, Transport};

/// The example configuration, the template of the written file.
pub const EXAMPLE: &str = include_str!("../../config.example.toml");

/// How the account's digest secret is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// No secret: challenged requests fail (a registrar that does not ask for one).
    None,
    /// The password itself, written to the file (mode 0600).
    Password(String),
    /// A shell command that prints the password (`password_cmd`).
    Command(String),
}

/// What the first-start form asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAnswers {
    /// The address of record, `user@domain` (a leading `sip:` is dropped).
    pub address: String,
    /// The digest secret.
    pub secret: Secret,
    /// Where to register: a SIP URI, or a host with an optional port (`sip:` is put before
    /// it, `sips:` with TLS); empty for the default, the domain.
    pub registrar: String,
    /// The transport to the registrar.
    pub transport: Transport,
}

impl AccountAnswers {
    /// The user and domain parts of the address (`sip:`/`sips:` and spaces around dropped).
    fn user_and_domain(&self) -> (&str, &str) {
        let address = self.address.trim();
        let address = ["sip:", "sips:"]
            .iter()
            .find_map(|scheme| {
                address
                    .get(..scheme.len())
                    .filter(|head| head.eq_ignore_ascii_case(scheme))
                    .map(|_| &address[scheme.len()..])
            })
            .unwrap_or(address);
        address.split_once('@').unwrap_or((address, ""))
    }

    /// The registrar URI to write, `None` for the default.
    fn registrar_uri(&self) -> Option<String> {
        let registrar = self.registrar.trim();
        if registrar.is_empty() {
            return None;
        }
        let lower = registrar.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            return Some(registrar.to_owned());
        }
        let scheme = if self.transport == Transport::Tls {
            "sips"
        } else {
            "sip"
        };
        Some(format!("{scheme}:{registrar}"))
    }
}

/// `example` (the text of `config.example.toml`) with `answers` in its first `[[account]]` and
/// `[network] bind` on any free port; everything else, comments included, is left as written.
/// Errors say why the example cannot take the answers (not TOML, no account table).
pub fn config_text(example: &str, answers: &AccountAnswers) -> Result<String, String> {
    let mut document: DocumentMut = example
        .parse()
        .map_err(|e| format!("the example configuration is not TOML: {e}"))?;
    if let Some(network) = document
        .get_mut("network")
        .and_then(Item::as_table_like_mut)
    {
        set(network, "bind", "0.0.0.0:0");
    }
    let account = document
        .get_mut("account")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|tables| tables.get_mut(0))
        .ok_or("the example configuration has no [[account]] table")?;
    let (user, domain) = answers.user_and_domain();
    set(account, "user", user);
    set(account, "domain", domain);
    set(account, "transport", &answers.transport.to_string());
    match answers.registrar_uri() {
        Some(uri) => set(account, "registrar", &uri),
        None => comment_out(account, "registrar"),
    }
    for optional in ["display_name", "auth_user"] {
        comment_out(account, optional);
    }
    match &answers.secret {
        Secret::Password(password) => set(account, "password", password),
        Secret::Command(command) => {
            set(account, "password", command);
            rename(account, "password", "password_cmd");
        }
        Secret::None => comment_out(account, "password"),
    }
    Ok(document.to_string())
}

/// Sets `key = text` in `table`, keeping the comments before the key and after the value.
fn set(table: &mut dyn toml_edit::TableLike, key: &str, text: &str) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = text.into();
            *old.decor_mut() = decor;
        }
        _ => {
            table.insert(key, value(text));
        }
    }
}

/// Replaces `key = value` by a `#key = value` line, kept with the comments before the key,
/// in front of the next key (nothing happens to the last key of a table).
fn comment_out(table: &mut Table, key: &str) {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    let Some(next) = keys
        .iter()
        .position(|k| k == key)
        .and_then(|i| keys.get(i + 1))
    else {
        return;
    };
    let Some((old_key, Item::Value(old))) = table.remove_entry(key) else {
        return;
    };
    let prefix = old_key
        .leaf_decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or("")
        .to_owned();
    let line = format!("{prefix}#{key} = {}\n", old.decorated("", ""));
    if let Some(mut next) = table.key_mut(next) {
        let decor = next.leaf_decor_mut();
        let rest = decor.prefix().and_then(|p| p.as_str()).unwrap_or("");
        let joined = format!("{line}{rest}");
        decor.set_prefix(joined);
    }
}

/// Renames `from` to `to` in place: same position, comments and value.
fn rename(table: &mut Table, from: &str, to: &str) {
    let order: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    let Some((old_key, item)) = table.remove_entry(from) else {
        return;
    };
    let key = Key::new(to).with_leaf_decor(old_key.leaf_decor().clone());
    table.insert_formatted(&key, item);
    let rank = |k: &Key| {
        let name = if k.get() == to { from } else { k.get() };
        order.iter().position(|o| o == name).unwrap_or(usize::MAX)
    };
    table.sort_values_by(|a, _, b, _| rank(a).cmp(&rank(b)));
}

/// Writes the configuration for `answers` to `path` (its directory created, the file private:
/// mode 0600, since it may hold a password), after checking it with `check-config`'s rules;
/// returns the checked configuration, or every problem found (nothing is written then).
/// An existing file is never overwritten.
pub fn write_config(path: &Path, answers: &AccountAnswers) -> Result<Config, ConfigErrors> {
    let problem = |message: String| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        col: 0,
        key: String::new(),
        message,
    };
    let text = config_text(EXAMPLE, answers).map_err(problem)?;
    let config = Config::parse(&text, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| problem(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .map_err(|e| problem(format!("cannot write {}: {e}", path.display())))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(secret: Secret, registrar: &str, transport: Transport) -> AccountAnswers {
        AccountAnswers {
            address: "sip:alice@pbx.example.org".to_owned(),
            secret,
            registrar: registrar.to_owned(),
            transport,
        }
    }

    /// The comment lines of `text`, in order.
    fn comments(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('#'))
            .collect()
    }

    /// Whether `inner` occurs in `outer` in the same order (other items may come between).
    fn in_order(inner: &[&str], outer: &[&str]) -> bool {
        let mut rest = outer.iter();
        inner.iter().all(|line| rest.any(|o| o == line))
    }

    #[test]
    fn the_example_is_written_with_every_comment_kept_and_the_answers_set() {
        let text = config_text(
            EXAMPLE,
            &answers(
                Secret::Password("s3cret".into()),
                "pbx.example.org:5070",
                Transport::Tcp,
            ),
        )
        .expect("written");
        assert!(
            in_order(&comments(EXAMPLE), &comments(&text)),
            "every comment of the example, in order:\n{text}"
        );
        for line in [
            "bind = \"0.0.0.0:0\"",
            "user = \"alice\"",
            "domain = \"pbx.example.org\"",
            "registrar = \"sip:pbx.example.org:5070\"",
            "transport = \"tcp\"",
            "password = \"s3cret\"",
            "#display_name = \"Front Desk\"",
            "#auth_user = \"1001\"",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        let config = Config::parse(&text, Path::new("written.toml")).expect("passes check-config");
        let account = &config.accounts[0];
        assert_eq!(account.aor(), "alice@pbx.example.org");
        assert_eq!(account.transport, Transport::Tcp);
        assert_eq!(account.auth_user, None);
        assert_eq!(account.display_name, None);
        assert_eq!(account.secret().ok().flatten().as_deref(), Some("s3cret"));
        assert_eq!(config.network.bind.port(), 0);
        // The commented-out line stays under its own comment.
        let display = text.find("#display_name").expect("commented out");
        let about = text
            .find("# Name shown to the people you call")
            .expect("its comment");
        assert!(about < display && display < text.find("user = \"alice\"").expect("user"));
    }

    #[test]
    fn a_password_command_takes_the_passwords_place_and_an_empty_registrar_its_default() {
        let text = config_text(
            EXAMPLE,
            &answers(Secret::Command("pass show sip".into()), " ", Transport::Tls),
        )
        .expect("written");
        assert!(in_order(&comments(EXAMPLE), &comments(&text)), "{text}");
        assert!(
            text.contains("\npassword_cmd = \"pass show sip\"\n"),
            "{text}"
        );
        assert!(!text.contains("\npassword = "), "{text}");
        assert!(text.contains("\n#registrar = \"sip:pbx.example.com:5060\"\n"));
        // In the password's place: after auth_user, before register.
        let at = |needle: &str| text.find(needle).expect(needle);
        assert!(at("#auth_user") < at("password_cmd =") && at("password_cmd =") < at("register ="));
        let config = Config::parse(&text, Path::new("written.toml")).expect("passes check-config");
        let account = &config.accounts[0];
        assert_eq!(account.password, None);
        assert_eq!(account.password_cmd.as_deref(), Some("pass show sip"));
        assert_eq!(account.registrar, None);
        assert_eq!(account.transport, Transport::Tls);
    }

    #[test]
    fn a_host_registrar_gets_its_scheme_and_bad_answers_are_check_config_problems() {
        let tls = answers(Secret::None, "edge.example.org", Transport::Tls);
        let text = config_text(EXAMPLE, &tls).expect("written");
        assert!(
            text.contains("\nregistrar = \"sips:edge.example.org\"\n"),
            "{text}"
        );
        assert!(text.contains("\n#password = \"change-me\"\n"), "{text}");

        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("switchboard/config.toml");
        let bad = AccountAnswers {
            address: "alice".into(),
            secret: Secret::None,
            registrar: "sip:bob@pbx".into(),
            transport: Transport::Udp,
        };
        let problems = write_config(&path, &bad).expect_err("refused");
        let keys: Vec<&str> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["account[0].domain", "account[0].registrar"],
            "{problems}"
        );
        assert!(!path.exists(), "nothing written");

        let good = answers(Secret::Password("pw".into()), "", Transport::Udp);
        let config = write_config(&path, &good).expect("written");
        assert_eq!(config.accounts[0].user, "alice");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "private: it holds a password");
        assert!(Config::load(&path).is_ok());
        assert!(write_config(&path, &good).is_err(), "never overwritten");
    }
}
