//! The TOML diagnostics engine: every problem in a configuration file reported in one run,
//! each as `file:line:col: key: message` at the offending value.
//!
//! [`read_all`] is the first pass: serde with `deny_unknown_fields` stops at the first
//! misspelt key, wrong type or unknown value, so that key is dropped from the document
//! (`toml_edit`) and the rest read again, until it reads. [`Problem`]s of the second pass
//! (values checked against each other, in `mod.rs`) are located here. Positions come from a
//! [`SpanIndex`] built from the same text, so the public types stay plain. Messages about
//! allowed values come from serde's variant lists.
//!
//! Knows nothing of what the keys mean: it turns errors and key paths into located messages.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::{Config, DEFAULT_SIP_PORT};

/// One problem in a configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (as given to [`Config::load`] or [`Config::parse`]); empty
    /// when the problem is not tied to a file, as for [`Account::secret`].
    pub file: PathBuf,
    /// 1-based line of the offending key; 0 when there is no position (unreadable file).
    pub line: usize,
    /// 1-based column, in characters, of the offending key; 0 when there is no position.
    pub col: usize,
    /// Dotted path of the key, e.g. `account[0].transport` or `network.bind`.
    pub key: String,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `{file}:{line}:{col}: {key}: {message}`; parts that are unknown (no file, no position,
    /// no key) are left out with their separators.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}:", self.file.display())?;
            if self.line > 0 {
                write!(f, "{}:{}:", self.line, self.col)?;
            }
            f.write_str(" ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration, in file order where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}

/// The first pass, done until every key has been seen: serde stops at the first wrong
/// type, unknown key or unknown value, so each one is recorded (at its value, or at the key
/// when the key is what is wrong), its key dropped from the document, and the rest read
/// again. Returns the configuration read without the dropped keys (they take their
/// defaults), the errors, and the dropped key paths. Text that is not TOML, and a required
/// key missing, end the reading with the errors found so far.
pub(super) fn read_all(
    text: &str,
    file: &Path,
) -> Result<(Config, Vec<ConfigError>, Vec<String>), ConfigErrors> {
    let first = match toml::from_str::<Config>(text) {
        Ok(config) => return Ok((config, Vec::new(), Vec::new())),
        Err(first) => first,
    };
    let (Some(index), Ok(mut document)) = (
        SpanIndex::build(text),
        text.parse::<toml_edit::DocumentMut>(),
    ) else {
        let index = SpanIndex::build(text);
        return Err(toml_error(&first, text, file, index.as_ref()).into());
    };
    let mut errors = Vec::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut error = first;
    let mut current = text.to_owned();
    // Each round drops one key, so the file's own key count bounds the rounds.
    for _ in 0..=index.entries.len() {
        let here = SpanIndex::build(&current);
        let entry = error
            .span()
            .and_then(|span| here.as_ref()?.entry_at(span.start).map(|e| (e, span)));
        let Some(((path, key_start), span)) = entry else {
            errors.push(toml_error(&error, text, file, Some(&index)));
            break;
        };
        // The same key in the original text: at its value when the error is about the
        // value (it starts after the key), else at the key.
        let at = if span.start > key_start {
            index.value_of(&path).or_else(|| index.offset_of(&path))
        } else {
            index.offset_of(&path)
        };
        let mut located = toml_error(&error, text, file, Some(&index));
        if !located.message.starts_with("missing required key") {
            located.key.clone_from(&path);
            (located.line, located.col) = at.map_or((1, 1), |at| line_col(text, at));
        }
        let missing = located.message.starts_with("missing required key");
        // A required key that was dropped for its wrong value is not missing as well.
        if !(missing && dropped.contains(&located.key)) {
            errors.push(located);
        }
        // An element's key goes as a whole: dropping one element would renumber the rest.
        let drop = droppable(&path);
        if missing || dropped.contains(&drop) || !remove_key(&mut document, &drop) {
            break;
        }
        dropped.push(drop);
        current = document.to_string();
        match toml::from_str::<Config>(&current) {
            Ok(config) => return Ok((config, errors, dropped)),
            Err(next) => error = next,
        }
    }
    errors.sort_by_key(|e| (e.line, e.col));
    Err(ConfigErrors(errors))
}

/// A problem found by the second pass, before it is given a position.
pub(super) struct Problem {
    /// Key paths to point at, best first; the first one present in the file is used.
    pub(super) keys: Vec<String>,
    pub(super) message: String,
}

impl Problem {
    pub(super) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            keys: vec![key.into()],
            message: message.into(),
        }
    }

    /// Adds a key to point at when the preferred ones are not written in the file.
    pub(super) fn or_at(mut self, key: &str) -> Self {
        self.keys.push(key.to_owned());
        self
    }

    /// Points at the value of the first key written in the file (at the key itself when it
    /// is a table).
    pub(super) fn locate(self, text: &str, file: &Path, index: Option<&SpanIndex>) -> ConfigError {
        let found = index.and_then(|index| {
            self.keys.iter().find_map(|key| {
                index
                    .value_of(key)
                    .or_else(|| index.offset_of(key))
                    .map(|offset| (key.clone(), offset))
            })
        });
        let (key, (line, col)) = match found {
            Some((key, offset)) => (key, line_col(text, offset)),
            None => (self.keys.into_iter().next().unwrap_or_default(), (1, 1)),
        };
        ConfigError {
            file: file.to_path_buf(),
            line,
            col,
            key,
            message: self.message,
        }
    }
}

/// Turns a serde/TOML error into a [`ConfigError`] pointing at the offending key.
pub(super) fn toml_error(
    error: &toml::de::Error,
    text: &str,
    file: &Path,
    index: Option<&SpanIndex>,
) -> ConfigError {
    let raw = error.message().trim();
    let offset = error.span().map(|span| span.start);
    // Point at the key the error belongs to (a wrong value's own span is just after it). Text
    // that is not TOML has no index: guess the key from the lines, and keep the exact position
    // of the syntax error in the message.
    let mut detail = String::new();
    let located = offset.map(
        |offset| match index.and_then(|index| index.entry_at(offset)) {
            Some(entry) => entry,
            None => {
                let (key, start) = approximate_key(text, offset);
                if start != offset {
                    let (line, col) = line_col(text, offset);
                    detail = format!(" (at {line}:{col})");
                }
                (key, start)
            }
        },
    );
    let (mut key, (line, col)) = match located {
        Some((key, start)) => (key, line_col(text, start)),
        None => (String::new(), (0, 0)),
    };
    let message = if let Some(field) = backticked_after(raw, "unknown field `") {
        unknown_key_message(field, raw)
    } else if let Some(field) = backticked_after(raw, "missing field `") {
        key = if key.is_empty() {
            field.to_owned()
        } else {
            format!("{key}.{field}")
        };
        format!("missing required key `{field}`")
    } else if raw == "invalid socket address syntax" && key.starts_with("network.dns_servers") {
        format!("{raw}: write a DNS server as \"ip:port\", e.g. \"192.0.2.53:53\" (no host names)")
    } else if let Some(fixed) = (raw == "invalid socket address syntax")
        .then(|| error.span().and_then(|span| text.get(span)))
        .flatten()
        .and_then(bracketed_ipv6)
    {
        format!(
            "{raw}: an IPv6 address is written in brackets before its port, e.g. \"{fixed}\" \
             (\"[::]:{DEFAULT_SIP_PORT}\" listens on IPv6 and IPv4)"
        )
    } else if raw == "invalid socket address syntax" {
        format!(
            "{raw}: write \"ip:port\", e.g. \"0.0.0.0:{DEFAULT_SIP_PORT}\" (port 0 picks any free \
             port)"
        )
    } else {
        format!("{}{detail}", plain_words(raw))
    };
    ConfigError {
        file: file.to_path_buf(),
        line,
        col,
        key,
        message,
    }
}

/// The bracketed form of an IPv6 address and port written without brackets (`"::1:5060"` →
/// `[::1]:5060`, `"::1"` → `[::1]:5060`); `None` when `value` is no such thing.
fn bracketed_ipv6(value: &str) -> Option<String> {
    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if value.contains('[') || value.matches(':').count() < 2 {
        return None;
    }
    if let Some((host, port)) = value.rsplit_once(':') {
        if let (Ok(ip), Ok(port)) = (host.parse::<std::net::Ipv6Addr>(), port.parse::<u16>()) {
            return Some(format!("[{ip}]:{port}"));
        }
    }
    let ip = value.parse::<std::net::Ipv6Addr>().ok()?;
    Some(format!("[{ip}]:{DEFAULT_SIP_PORT}"))
}

/// Rewrites serde's Rust vocabulary in a message into the words of the TOML file.
fn plain_words(message: &str) -> String {
    let mut message = message.replace("unknown variant", "unknown value");
    for (rust, toml) in [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
        ("wanted string or table", "expected a string"),
    ] {
        if let Some(head) = message.strip_suffix(rust) {
            message = format!("{head}{toml}");
        }
    }
    if let Some(at) = message.find("expected struct ") {
        message.replace_range(at.., "expected a table");
    }
    message
}

/// The text between `prefix` (which ends with a backtick) and the next backtick.
fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// "unknown key `transprot`, did you mean `transport`?" from serde's unknown-field message,
/// whose tail lists the expected names in backticks.
fn unknown_key_message(field: &str, raw: &str) -> String {
    let expected: Vec<&str> = raw
        .split('`')
        .skip(3)
        .step_by(2)
        .filter(|name| !name.is_empty())
        .collect();
    let closest = expected
        .iter()
        .map(|name| (edit_distance(field, name), *name))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= (field.chars().count() / 3).max(1));
    match (closest, expected.is_empty()) {
        (Some((_, name)), _) => format!("unknown key `{field}`, did you mean `{name}`?"),
        (None, true) => format!("unknown key `{field}`: this table takes no keys"),
        (None, false) => {
            let list: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
            format!("unknown key `{field}`, expected one of {}", list.join(", "))
        }
    }
}

/// Levenshtein distance over characters, to suggest a key for a misspelt one.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// 1-based line and column (in characters) of a byte offset; an offset past the end or inside a
/// character is clamped.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// A best-effort key path for an offset in text that is not valid TOML, and where to point:
/// the last table header before it (`[[x]]` headers counted to give an index) plus the key on
/// its line, if the line has one (then the position is that key's).
fn approximate_key(text: &str, offset: usize) -> (String, usize) {
    let (line_no, _) = line_col(text, offset);
    let mut table = String::new();
    let mut arrays: Vec<(String, usize)> = Vec::new();
    let mut key = None;
    let mut line_start = 0;
    for (n, full_line) in text.split_inclusive('\n').enumerate().take(line_no) {
        let line = full_line.trim();
        if let Some(name) = line
            .strip_prefix("[[")
            .and_then(|l| l.split("]]").next())
            .map(str::trim)
        {
            let count = match arrays.iter_mut().find(|(seen, _)| seen == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    arrays.push((name.to_owned(), 0));
                    0
                }
            };
            table = format!("{name}[{count}]");
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = name.trim().to_owned();
        } else if n + 1 == line_no && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                let indent = full_line.len() - full_line.trim_start().len();
                let name = name.trim().trim_matches(['"', '\'']).to_owned();
                key = Some((name, line_start + indent));
            }
        }
        line_start += full_line.len();
    }
    match (table.is_empty(), key) {
        (true, None) => ("(document)".to_owned(), offset),
        (false, None) => (table, offset),
        (true, Some((key, start))) => (key, start),
        (false, Some((key, start))) => (format!("{table}.{key}"), start),
    }
}

/// Whether the key path `key` is `prefix` or lies under it (`a.b` is under `a`, `a[0].b` under
/// `a`).
pub(super) fn under(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The key to drop for a problem at `path`: the path itself, or for an array element
/// (`codecs.order[1]`) the array's key, since dropping one element would renumber the rest.
fn droppable(path: &str) -> String {
    match path.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
        Some((key, _)) if !key.is_empty() => key.to_owned(),
        _ => path.to_owned(),
    }
}

/// Removes the key at a dotted `path` (`account[0].transport`, `transfer.blind`) from the
/// document; false when it is not there.
fn remove_key(document: &mut toml_edit::DocumentMut, path: &str) -> bool {
    use toml_edit::{Item, TableLike, Value};
    let (parent, leaf) = match path.rsplit_once('.') {
        Some((parent, leaf)) => (Some(parent), leaf),
        None => (None, path),
    };
    let mut table: &mut dyn TableLike = document.as_table_mut();
    for segment in parent.into_iter().flat_map(|p| p.split('.')) {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => match rest.strip_suffix(']').map(str::parse::<usize>) {
                Some(Ok(i)) => (name, Some(i)),
                _ => return false,
            },
            None => (segment, None),
        };
        let Some(item) = table.get_mut(name) else {
            return false;
        };
        let next: Option<&mut dyn TableLike> = match (index, item) {
            (None, item) => item.as_table_like_mut(),
            (Some(i), Item::ArrayOfTables(tables)) => {
                tables.get_mut(i).map(|t| t as &mut dyn TableLike)
            }
            (Some(i), Item::Value(Value::Array(array))) => array
                .get_mut(i)
                .and_then(Value::as_inline_table_mut)
                .map(|t| t as &mut dyn TableLike),
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        table = next;
    }
    table.remove(leaf).is_some()
}

/// Where each key and array element of a parsed document starts, as dotted paths like
/// `account[1].name`, in document order, and where the values of keys start.
pub(super) struct SpanIndex {
    entries: Vec<(String, usize)>,
    values: Vec<(String, usize)>,
}

impl SpanIndex {
    /// `None` when the text is not valid TOML.
    pub(super) fn build(text: &str) -> Option<SpanIndex> {
        let root: Node = toml::from_str(text).ok()?;
        let mut entries = Vec::new();
        root.flatten("", &mut entries);
        entries.sort_by_key(|(_, offset)| *offset);
        let mut values = Vec::new();
        if let Ok(document) = toml_edit::ImDocument::parse(text) {
            value_starts(document.as_item(), "", &mut values);
        }
        Some(SpanIndex { entries, values })
    }

    /// Where the value of the key or element at `path` starts, if it is a value written in
    /// the file (not a table).
    fn value_of(&self, path: &str) -> Option<usize> {
        self.values
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, offset)| *offset)
    }

    /// The key or array element that an error at `offset` belongs to, and where it starts: the
    /// last one starting at or before it. A value follows its key, so a value's error lands on
    /// its key.
    fn entry_at(&self, offset: usize) -> Option<(String, usize)> {
        self.entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= offset)
            .cloned()
    }

    /// Where the key at `path` starts, if it is written in the file.
    fn offset_of(&self, path: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, offset)| *offset)
    }
}

/// Collects where each value below `item` starts, with paths named as in [`Node::flatten`].
fn value_starts(item: &toml_edit::Item, prefix: &str, out: &mut Vec<(String, usize)>) {
    use toml_edit::Item;
    match item {
        Item::Table(table) => {
            for (key, item) in table.iter() {
                value_starts(item, &join_key(prefix, key), out);
            }
        }
        Item::ArrayOfTables(tables) => {
            for (i, table) in tables.iter().enumerate() {
                for (key, item) in table.iter() {
                    value_starts(item, &join_key(&format!("{prefix}[{i}]"), key), out);
                }
            }
        }
        Item::Value(value) => inline_value_starts(value, prefix, out),
        Item::None => {}
    }
}

/// [`value_starts`] for a value written inline (arrays and inline tables included).
fn inline_value_starts(value: &toml_edit::Value, path: &str, out: &mut Vec<(String, usize)>) {
    use toml_edit::Value;
    if let Some(span) = value.span() {
        out.push((path.to_owned(), span.start));
    }
    match value {
        Value::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                inline_value_starts(element, &format!("{path}[{i}]"), out);
            }
        }
        Value::InlineTable(table) => {
            for (key, element) in table.iter() {
                inline_value_starts(element, &join_key(path, key), out);
            }
        }
        _ => {}
    }
}

/// `prefix.key`, or `key` at the top.
fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The shape of a TOML document with the positions of keys and array elements. Values of keys
/// carry no span of their own because implicit tables (from dotted keys or `[a.b]` headers)
/// have none; keys and array elements always do.
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Spanned<Node>>),
    Leaf,
}

impl Node {
    fn flatten(&self, prefix: &str, out: &mut Vec<(String, usize)>) {
        match self {
            Node::Table(entries) => {
                for (key, value) in entries {
                    let path = if prefix.is_empty() {
                        key.get_ref().clone()
                    } else {
                        format!("{prefix}.{}", key.get_ref())
                    };
                    out.push((path.clone(), key.span().start));
                    value.flatten(&path, out);
                }
            }
            Node::Array(elements) => {
                for (i, element) in elements.iter().enumerate() {
                    let path = format!("{prefix}[{i}]");
                    out.push((path.clone(), element.span().start));
                    element.get_ref().flatten(&path, out);
                }
            }
            Node::Leaf => {}
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element()? {
            elements.push(element);
        }
        Ok(Node::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        loop {
            // A TOML datetime arrives as a one-entry map whose key has no span; it is a leaf.
            let key = match map.next_key::<Spanned<String>>() {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(_) => return Ok(Node::Leaf),
            };
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Table(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("a\nbé c", 6), (2, 4));
        assert_eq!(line_col("abc", 99), (1, 4));
        assert_eq!(line_col("é", 1), (1, 1));
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("transprot", "transport"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("genral", "general"), 1);
    }

    #[test]
    fn an_ipv6_bind_without_brackets_is_explained() {
        assert_eq!(
            bracketed_ipv6("\"::1:5060\"").as_deref(),
            Some("[::1]:5060")
        );
        assert_eq!(
            bracketed_ipv6("\"2001:db8::7\""),
            Some("[2001:db8::7]:5060".into())
        );
        assert_eq!(bracketed_ipv6("\"0.0.0.0\""), None);
        assert_eq!(bracketed_ipv6("\"[::1]:x\""), None);
        assert_eq!(bracketed_ipv6("\"::g:1\""), None);
        let Err(errors) = Config::parse("[network]\nbind = \"::1:5060\"\n", Path::new("t.toml"))
        else {
            panic!("an IPv6 bind without brackets is refused");
        };
        let shown = errors.to_string();
        assert!(shown.contains("\"[::1]:5060\""), "{shown}");
        assert!(shown.contains("network.bind"), "{shown}");
    }
}
