//! The `[[favourite]]` tables: the operator's frequent targets, each with a busy lamp and one
//! key (F1–F12 by order unless `key` says otherwise), with their checks.
//!
//! Like the rest of `config`, this only turns text into checked values. A favourite's lamp is a
//! busy lamp like `[[account]] blf`: [`Config::watched`] joins both lists, and both count
//! against the same [`MAX_BLF`].

use serde::Deserialize;

use super::{check_sip_uri, dialable, Account, Config, KeySpec, Problem, MAX_BLF};

/// The most favourites (one screen panel's worth).
pub const MAX_FAVOURITES: usize = 24;

/// One `[[favourite]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Favourite {
    /// What the panel shows (`Reception`).
    pub label: String,
    /// The extension or SIP URI called, transferred to and watched.
    pub number: String,
    /// Its key (`"alt-1"`, `"f5"`); `None`: F1 to F12 by position.
    #[serde(default)]
    pub key: Option<String>,
}

impl Favourite {
    /// Problems within `favourite[index]`.
    fn problems(&self, index: usize, all: &[Favourite], out: &mut Vec<Problem>) {
        let key = |field: &str| format!("favourite[{index}].{field}");
        if self.label.trim().is_empty() {
            out.push(Problem::new(key("label"), "must not be empty"));
        }
        let number = self.number.as_str();
        let ok = !number.is_empty()
            && (number.starts_with("sip:") && check_sip_uri(number, false).is_ok()
                || number
                    .chars()
                    .all(|c| dialable(c) || matches!(c, '.' | '-')));
        if !ok {
            out.push(Problem::new(
                key("number"),
                format!("`{number}` is neither an extension nor a sip: URI"),
            ));
        } else if let Some(first) = all[..index].iter().position(|f| f.number == self.number) {
            out.push(Problem::new(
                key("number"),
                format!("`{number}` is favourite[{first}] already"),
            ));
        }
        if let Some(text) = &self.key {
            match KeySpec::parse(text) {
                Err(message) => out.push(Problem::new(key("key"), message)),
                Ok(spec) => {
                    let taken = all[..index]
                        .iter()
                        .enumerate()
                        .position(|(i, f)| favourite_key(i, f) == Some(spec));
                    if let Some(first) = taken {
                        out.push(Problem::new(
                            key("key"),
                            format!("`{text}` is the key of favourite[{first}] already"),
                        ));
                    }
                }
            }
        }
    }
}

/// The key of the favourite at `index`: its own, else F1 to F12 by position, else none.
pub fn favourite_key(index: usize, favourite: &Favourite) -> Option<KeySpec> {
    match &favourite.key {
        Some(text) => KeySpec::parse(text).ok(),
        None => u8::try_from(index + 1)
            .ok()
            .filter(|n| *n <= 12)
            .map(|n| KeySpec::plain(super::KeyCode::F(n))),
    }
}

impl Config {
    /// The extensions whose lamps `account` watches: its `blf` list, then the favourites'
    /// numbers not in it, at most [`MAX_BLF`].
    pub fn watched(&self, account: &Account) -> Vec<String> {
        let mut exts = account.blf.clone();
        for favourite in &self.favourites {
            if !exts.contains(&favourite.number) {
                exts.push(favourite.number.clone());
            }
        }
        exts.truncate(MAX_BLF);
        exts
    }

    /// Problems within the `[[favourite]]` tables, and with the lamp bound of each account.
    pub(super) fn favourite_problems(&self, out: &mut Vec<Problem>) {
        if self.favourites.len() > MAX_FAVOURITES {
            out.push(Problem::new(
                "favourite",
                format!(
                    "{} favourites is too many: at most {MAX_FAVOURITES}",
                    self.favourites.len()
                ),
            ));
        }
        for (i, favourite) in self.favourites.iter().enumerate() {
            favourite.problems(i, &self.favourites, out);
        }
        for (i, account) in self.accounts.iter().enumerate() {
            let mut exts = account.blf.clone();
            exts.extend(
                self.favourites
                    .iter()
                    .filter(|f| !account.blf.contains(&f.number))
                    .map(|f| f.number.clone()),
            );
            if account.blf.len() <= MAX_BLF && exts.len() > MAX_BLF {
                out.push(Problem::new(
                    format!("account[{i}].blf"),
                    format!(
                        "{} lamps with the favourites is too many: watch at most {MAX_BLF}",
                        exts.len()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyCode;

    fn favourite(label: &str, number: &str, key: Option<&str>) -> Favourite {
        Favourite {
            label: label.into(),
            number: number.into(),
            key: key.map(Into::into),
        }
    }

    fn problems(config: &Config) -> Vec<Problem> {
        let mut out = Vec::new();
        config.favourite_problems(&mut out);
        out
    }

    #[test]
    fn keys_are_f1_to_f12_by_position_unless_given() {
        let plain = favourite("Reception", "200", None);
        assert_eq!(
            favourite_key(0, &plain),
            Some(KeySpec::plain(KeyCode::F(1)))
        );
        assert_eq!(
            favourite_key(11, &plain),
            Some(KeySpec::plain(KeyCode::F(12)))
        );
        assert_eq!(favourite_key(12, &plain), None);
        let own = favourite("Sales", "201", Some("alt-1"));
        let spec = favourite_key(0, &own).expect("parses");
        assert!(spec.alt && spec.code == KeyCode::Char('1'));
    }

    #[test]
    fn favourites_join_the_lamps_once() {
        let mut config = Config::embedded_default();
        config.accounts[0].blf = vec!["201".into()];
        config.favourites = vec![
            favourite("Sales", "201", None),
            favourite("Park", "701", None),
        ];
        assert_eq!(config.watched(&config.accounts[0]), ["201", "701"]);
        assert!(problems(&config).is_empty());
    }

    #[test]
    fn bad_favourites_are_reported_at_their_key() {
        let mut config = Config::embedded_default();
        config.favourites = vec![
            favourite("", "200", Some("alt-1")),
            favourite("Twice", "200", Some("alt-1")),
            favourite("Bad", "2 0", Some("hyper-x")),
        ];
        let keys: Vec<String> = problems(&config)
            .into_iter()
            .map(|p| p.keys[0].clone())
            .collect();
        assert_eq!(
            keys,
            [
                "favourite[0].label",
                "favourite[1].number",
                "favourite[1].key",
                "favourite[2].number",
                "favourite[2].key",
            ]
        );
        config.favourites = (0..MAX_BLF + 1)
            .map(|i| favourite("x", &format!("{}", 100 + i), None))
            .collect();
        let keys: Vec<String> = problems(&config)
            .into_iter()
            .map(|p| p.keys[0].clone())
            .collect();
        assert!(keys.contains(&"favourite".to_owned()), "{keys:?}");
        assert!(keys.contains(&"account[0].blf".to_owned()), "{keys:?}");
    }
}
