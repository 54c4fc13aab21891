//! Outbound routes: which account (trunk) a dialled number goes out on, and how the number is
//! rewritten first, chosen by Asterisk-style extension patterns.
//!
//! This module owns the pattern language ([`Pattern`]), the rewriting of a matched number
//! (`strip` then `prefix`) and the choice among routes ([`Routes::choose`]). It is pure: it sends
//! nothing, reads no clock or file and does not know the SIP layer; the driver asks it before a
//! `dial` or `transfer` and hands the result to the user agent.
//!
//! # Patterns (Asterisk's extension syntax)
//!
//! A pattern that starts with `_` is a pattern; anything else is a literal that must equal the
//! whole number. After `_`:
//!
//! | written      | matches                                                        |
//! |--------------|----------------------------------------------------------------|
//! | `X`          | one digit 0–9                                                  |
//! | `Z`          | one digit 1–9                                                  |
//! | `N`          | one digit 2–9                                                  |
//! | `[1-5]`, `[137]`, `[1-35-7]` | one character of the class (digits, `+`, `*`, `#`; `a-b` ranges of digits) |
//! | `.`          | one or more further characters, whatever they are (must end the pattern)  |
//! | `!`          | zero or more further characters (must end the pattern)         |
//! | `0-9 + * #`  | itself                                                         |
//! | `-`          | nothing: ignored, for readability (`_555-XXXX`), as in Asterisk |
//!
//! `X`, `Z` and `N` may be written in lower case. Without `.` or `!`, the pattern must match the
//! whole number: `_XXX` matches three digits, not four.
//!
//! # Choosing a route
//!
//! - The number is cleaned first, as the target parser reads a number
//!   ([`crate::sip::target`]: punctuation removed, `(0)` after `+` dropped, angle brackets
//!   from a paste removed); other text loses spaces, `-`, `(`, `)`, `.` and `/`
//!   ([`clean_number`]).
//! - **The first route in configuration order whose pattern matches wins.** This differs from
//!   Asterisk, which sorts a context's patterns by specificity; here the operator's file is read
//!   top to bottom, so put narrow routes (`_XXX` internal) before broad ones (`_X.`).
//! - An address (it contains `@`, starts with `sip:`/`sips:`, or is a `tel:` URI or a
//!   bracketed address) bypasses routing: it is returned as typed, with no route and no
//!   account, even when a route is overridden.
//! - With no routes configured, every number passes through (cleaned), with no route and no
//!   account: the caller uses its default account.
//! - An override (`route <name>`) forces that route for the number, whether or not its pattern
//!   matches: the operator chose the trunk on purpose. Its `strip` and `prefix` still apply.
//! - A number no route matches is an error naming the number and every route, before anything
//!   is sent.

use std::fmt;

use crate::config;
use crate::sip::target::Typed;

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    /// Exactly this character.
    Literal(char),
    /// One character within one of these inclusive ranges.
    Class(Vec<(char, char)>),
    /// `.`: one or more of anything, to the end.
    OneOrMore,
    /// `!`: zero or more of anything, to the end.
    ZeroOrMore,
}

impl Element {
    fn accepts(&self, c: char) -> bool {
        match self {
            Element::Literal(l) => *l == c,
            Element::Class(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)),
            Element::OneOrMore | Element::ZeroOrMore => true,
        }
    }
}

/// A parsed number pattern: an Asterisk extension pattern (`_NXXXXXX`) or a literal (`100`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The pattern as written in the configuration.
    text: String,
    /// What it matches, in order.
    elements: Vec<Element>,
}

/// Why a pattern could not be parsed; positions are 1-based characters of the pattern as
/// written, `_` included.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty (or only `_` and dashes).
    #[error("the pattern is empty: write a number such as `100` or a pattern such as `_XXX`")]
    Empty,
    /// A `[` is never closed.
    #[error("the `[` at character {0} is never closed: add `]`")]
    UnclosedClass(usize),
    /// `[]` names no character.
    #[error("the `[]` at character {0} is empty: list digits or a range such as `[1-5]`")]
    EmptyClass(usize),
    /// A range inside `[…]` is not `digit-digit` in increasing order.
    #[error(
        "character {position}: `{range}` is not a range of digits from low to high, e.g. `1-5`"
    )]
    BadRange {
        /// Where the range starts.
        position: usize,
        /// The range as written.
        range: String,
    },
    /// A character the pattern language does not know.
    #[error(
        "character {position}: `{found}` cannot be used here; a pattern takes digits, `+`, `*`, \
         `#`, `X`, `Z`, `N`, `[…]`, `.` and `!`"
    )]
    BadChar {
        /// Where it is.
        position: usize,
        /// The character.
        found: char,
    },
    /// A character in a literal number that cannot be dialled.
    #[error(
        "character {position}: `{found}` cannot be dialled; a literal number takes letters, \
         digits, `+`, `*` and `#` (start with `_` for a pattern)"
    )]
    BadLiteral {
        /// Where it is.
        position: usize,
        /// The character.
        found: char,
    },
    /// Something follows `.` or `!`, which already match everything to the end.
    #[error("character {0}: nothing may follow `.` or `!`, which match the rest of the number")]
    AfterWildcard(usize),
}

impl Pattern {
    /// Parses a pattern written in Asterisk's extension syntax (see the module documentation).
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let elements = match text.strip_prefix('_') {
            Some(body) => parse_pattern(body)?,
            None => parse_literal(text)?,
        };
        if elements.is_empty() {
            return Err(PatternError::Empty);
        }
        Ok(Pattern {
            text: text.to_owned(),
            elements,
        })
    }

    /// Whether `number` (already cleaned, see [`clean_number`]) matches the whole pattern.
    pub fn matches(&self, number: &str) -> bool {
        let mut chars = number.chars();
        for element in &self.elements {
            match element {
                Element::OneOrMore => return chars.next().is_some(),
                Element::ZeroOrMore => return true,
                _ => match chars.next() {
                    Some(c) if element.accepts(c) => {}
                    _ => return false,
                },
            }
        }
        chars.next().is_none()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses what follows `_`; positions count the `_` as character 1.
fn parse_pattern(body: &str) -> Result<Vec<Element>, PatternError> {
    let chars: Vec<char> = body.chars().collect();
    let mut elements = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let position = i + 2;
        if matches!(
            elements.last(),
            Some(Element::OneOrMore | Element::ZeroOrMore)
        ) && chars[i] != '-'
        {
            return Err(PatternError::AfterWildcard(position));
        }
        let element = match chars[i] {
            '-' => {
                i += 1;
                continue;
            }
            'X' | 'x' => Element::Class(vec![('0', '9')]),
            'Z' | 'z' => Element::Class(vec![('1', '9')]),
            'N' | 'n' => Element::Class(vec![('2', '9')]),
            '.' => Element::OneOrMore,
            '!' => Element::ZeroOrMore,
            c if is_dialable(c) => Element::Literal(c),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or(PatternError::UnclosedClass(position))?;
                let class = &chars[i + 1..i + 1 + close];
                let element = parse_class(class, position + 1)?;
                i += close + 2;
                elements.push(element);
                continue;
            }
            found => return Err(PatternError::BadChar { position, found }),
        };
        elements.push(element);
        i += 1;
    }
    Ok(elements)
}

/// Parses the inside of `[…]`; `first` is the position of its first character.
fn parse_class(class: &[char], first: usize) -> Result<Element, PatternError> {
    if class.is_empty() {
        return Err(PatternError::EmptyClass(first - 1));
    }
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < class.len() {
        let position = first + i;
        let c = class[i];
        if class.get(i + 1) == Some(&'-') {
            let hi = class.get(i + 2).copied();
            match hi {
                Some(hi) if c.is_ascii_digit() && hi.is_ascii_digit() && c <= hi => {
                    ranges.push((c, hi));
                    i += 3;
                    continue;
                }
                _ => {
                    let range: String = class[i..class.len().min(i + 3)].iter().collect();
                    return Err(PatternError::BadRange { position, range });
                }
            }
        }
        if !is_dialable(c) {
            return Err(PatternError::BadChar { position, found: c });
        }
        ranges.push((c, c));
        i += 1;
    }
    Ok(Element::Class(ranges))
}

/// Parses a literal number (no leading `_`); dashes are ignored.
fn parse_literal(text: &str) -> Result<Vec<Element>, PatternError> {
    let mut elements = Vec::new();
    for (i, c) in text.chars().enumerate() {
        match c {
            '-' => {}
            c if c.is_ascii_alphanumeric() || is_dialable(c) => elements.push(Element::Literal(c)),
            found => {
                return Err(PatternError::BadLiteral {
                    position: i + 1,
                    found,
                })
            }
        }
    }
    Ok(elements)
}

/// Digits and the keypad's other keys, plus `+` for international numbers.
fn is_dialable(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '*' | '#')
}

/// Removes the separators people write in numbers: whitespace, `-`, `(`, `)`, `.` and `/`.
pub fn clean_number(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.' | '/'))
        .collect()
}

/// True for what routing leaves alone: an address (`@` anywhere, a `sip:`/`sips:` scheme, or
/// what the target parser reads as an address or a `tel:` URI, such as `<sip:…>`).
pub fn is_sip_address(target: &str) -> bool {
    let lower = target.trim().to_ascii_lowercase();
    lower.contains('@')
        || lower.starts_with("sip:")
        || lower.starts_with("sips:")
        || matches!(Typed::parse(target), Ok(Typed::Uri(_) | Typed::Tel { .. }))
}

/// One outbound route: numbers matching `pattern` go out through `account`, rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The name the operator picks it by (`route <name>`); unique.
    pub name: String,
    /// Which numbers take this route.
    pub pattern: Pattern,
    /// The account (trunk) to call from, by name; `None`: the default account.
    pub account: Option<String>,
    /// How many leading characters to remove from the number (e.g. an outside-line `9`).
    pub strip: usize,
    /// What to put in front of the number after stripping.
    pub prefix: String,
}

impl Route {
    /// Builds a route from its `[[route]]` table.
    pub fn from_config(route: &config::Route) -> Result<Route, PatternError> {
        Ok(Route {
            name: route.name.clone(),
            pattern: Pattern::parse(&route.pattern)?,
            account: route.account.clone(),
            strip: route.strip,
            prefix: route.prefix.clone(),
        })
    }

    /// The number to dial on this route: `number` less `strip` leading characters, after
    /// `prefix`.
    fn rewrite(&self, number: &str) -> Result<String, RouteError> {
        let rest: String = number.chars().skip(self.strip).collect();
        if rest.is_empty() && self.prefix.is_empty() {
            return Err(RouteError::NothingLeft {
                route: self.name.clone(),
                number: number.to_owned(),
                strip: self.strip,
            });
        }
        Ok(format!("{}{rest}", self.prefix))
    }
}

/// Where a dialled number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The route taken; `None` for a SIP address or when no routes are configured.
    pub route: Option<String>,
    /// The account to call from; `None`: the default account.
    pub account: Option<String>,
    /// What to dial: the rewritten number, or the SIP address as typed.
    pub number: String,
}

/// Why a number cannot be routed; each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Nothing to dial once separators are removed.
    #[error("there is no number to dial")]
    Empty,
    /// No route's pattern matches the number.
    #[error(
        "no outbound route matches {number} (routes: {}); check the number or pick a route with \
         `route <name>`", routes.join(", ")
    )]
    NoMatch {
        /// The cleaned number.
        number: String,
        /// Every route's name, in configuration order.
        routes: Vec<String>,
    },
    /// The override names no configured route.
    #[error("there is no route named `{name}`; {}", list_routes(routes))]
    UnknownRoute {
        /// The name asked for.
        name: String,
        /// Every route's name, in configuration order.
        routes: Vec<String>,
    },
    /// Stripping leaves nothing and the route adds no prefix.
    #[error(
        "route `{route}` strips {strip} characters from {number}, which leaves nothing to dial"
    )]
    NothingLeft {
        /// The route.
        route: String,
        /// The cleaned number.
        number: String,
        /// The route's `strip`.
        strip: usize,
    },
}

fn list_routes(routes: &[String]) -> String {
    if routes.is_empty() {
        "no routes are configured".to_owned()
    } else {
        format!("routes: {}", routes.join(", "))
    }
}

/// The configured routes, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    /// Routes in the given order (the first match wins).
    pub fn new(routes: Vec<Route>) -> Routes {
        Routes { routes }
    }

    /// Builds the routes from the `[[route]]` tables. [`config::Config`] has already checked
    /// the patterns, so an error here means the configuration was built by hand.
    pub fn from_config(routes: &[config::Route]) -> Result<Routes, PatternError> {
        routes
            .iter()
            .map(Route::from_config)
            .collect::<Result<Vec<_>, _>>()
            .map(Routes::new)
    }

    /// True when no route is configured (every number passes through).
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The route names, in configuration order (for the `route` command and the status bar).
    pub fn names(&self) -> Vec<String> {
        self.routes.iter().map(|r| r.name.clone()).collect()
    }

    /// The route called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Chooses the route for `number` (see the module documentation for the rules), or the
    /// route named by `override_name`, and rewrites the number for it.
    pub fn choose(&self, number: &str, override_name: Option<&str>) -> Result<Routed, RouteError> {
        if is_sip_address(number) {
            return Ok(Routed {
                route: None,
                account: None,
                number: number.trim().to_owned(),
            });
        }
        // A number as the target parser reads it (`+44 (0)20…` → `+4420…`, `<201>` → `201`).
        let cleaned = match Typed::parse(number) {
            Ok(Typed::Number(n)) => n,
            _ => clean_number(number),
        };
        if cleaned.is_empty() {
            return Err(RouteError::Empty);
        }
        let route = match override_name {
            Some(name) => self.get(name).ok_or_else(|| RouteError::UnknownRoute {
                name: name.to_owned(),
                routes: self.names(),
            })?,
            None if self.routes.is_empty() => {
                return Ok(Routed {
                    route: None,
                    account: None,
                    number: cleaned,
                })
            }
            None => self
                .routes
                .iter()
                .find(|r| r.pattern.matches(&cleaned))
                .ok_or_else(|| RouteError::NoMatch {
                    number: cleaned.clone(),
                    routes: self.names(),
                })?,
        };
        Ok(Routed {
            route: Some(route.name.clone()),
            account: route.account.clone(),
            number: route.rewrite(&cleaned)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// Asterisk's documented examples, and the edges of each element.
    #[test]
    fn asterisk_examples() {
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "_NXXXXXX",
                &["5551234", "2000000"],
                &["1551234", "0551234", "555123", "55512345"],
            ),
            (
                "_1NXXNXXXXXX",
                &["12125551234"],
                &["11255551234", "12121551234", "1212555123"],
            ),
            ("_9011.", &["9011441234", "90114"], &["9011", "9012441234"]),
            ("_X.", &["12", "5551234", "1+#"], &["1", "", "+1"]),
            ("_[1-5]XX", &["123", "599"], &["623", "023", "1234", "12"]),
            ("_011!", &["011", "0114412345"], &["01", "012"]),
            ("_+X.", &["+441234567", "+12"], &["441234567", "+1", "+"]),
            ("100", &["100"], &["1000", "10", "101"]),
            ("_ZXX", &["100", "999"], &["099"]),
            ("_[137]X", &["10", "39", "71"], &["20", "50"]),
            ("_[1-35-7]", &["1", "3", "5", "7"], &["4", "8", "0"]),
            ("_*XX", &["*72"], &["#72", "72"]),
            ("_#X!", &["#1", "#123"], &["#"]),
            ("_nxx", &["200"], &["100"]),
            ("_555-XXXX", &["5551234"], &["555-1234", "5561234"]),
            ("_[*#]", &["*", "#"], &["1"]),
        ];
        for (text, good, bad) in table {
            let p = pattern(text);
            for number in *good {
                assert!(p.matches(number), "{text} should match {number}");
            }
            for number in *bad {
                assert!(!p.matches(number), "{text} should not match {number}");
            }
        }
    }

    #[test]
    fn bad_patterns_say_where() {
        let cases: &[(&str, PatternError)] = &[
            ("", PatternError::Empty),
            ("_", PatternError::Empty),
            ("_--", PatternError::Empty),
            ("_9[1-5", PatternError::UnclosedClass(3)),
            ("_9[]X", PatternError::EmptyClass(3)),
            (
                "_[5-1]",
                PatternError::BadRange {
                    position: 3,
                    range: "5-1".into(),
                },
            ),
            (
                "_[1-]",
                PatternError::BadRange {
                    position: 3,
                    range: "1-".into(),
                },
            ),
            (
                "_[a]",
                PatternError::BadChar {
                    position: 3,
                    found: 'a',
                },
            ),
            (
                "_9Y",
                PatternError::BadChar {
                    position: 3,
                    found: 'Y',
                },
            ),
            (
                "_X 1",
                PatternError::BadChar {
                    position: 3,
                    found: ' ',
                },
            ),
            ("_9.1", PatternError::AfterWildcard(4)),
            ("_9!X", PatternError::AfterWildcard(4)),
            (
                "10 0",
                PatternError::BadLiteral {
                    position: 3,
                    found: ' ',
                },
            ),
            (
                "1@x",
                PatternError::BadLiteral {
                    position: 2,
                    found: '@',
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(Pattern::parse(text).as_ref(), Err(expected), "{text}");
        }
        assert!(PatternError::UnclosedClass(3)
            .to_string()
            .contains("character 3"));
        assert!(pattern("_9.-").matches("91"), "a trailing dash is ignored");
        assert!(pattern("alice").matches("alice"));
    }

    fn route(
        name: &str,
        pattern_text: &str,
        account: Option<&str>,
        strip: usize,
        prefix: &str,
    ) -> Route {
        Route {
            name: name.into(),
            pattern: pattern(pattern_text),
            account: account.map(Into::into),
            strip,
            prefix: prefix.into(),
        }
    }

    fn office() -> Routes {
        Routes::new(vec![
            route("internal", "_XXX", None, 0, ""),
            route("outside", "_9X.", Some("trunk"), 1, ""),
            route("international", "_+X.", Some("intl"), 1, "00"),
            route("any", "_X.", Some("trunk"), 0, "0"),
        ])
    }

    #[test]
    fn first_match_in_order_with_strip_and_prefix() {
        let routes = office();
        let routed = routes.choose("101", None).expect("internal");
        assert_eq!(
            routed,
            Routed {
                route: Some("internal".into()),
                account: None,
                number: "101".into()
            }
        );
        // `_9X.` comes before `_X.`, so the outside-line 9 is stripped.
        let routed = routes.choose("9 555-1234", None).expect("outside");
        assert_eq!(
            (routed.route.as_deref(), routed.account.as_deref()),
            (Some("outside"), Some("trunk"))
        );
        assert_eq!(routed.number, "5551234");
        let routed = routes
            .choose("+44 (20) 7946.0000", None)
            .expect("international");
        assert_eq!(routed.number, "00442079460000");
        let routed = routes.choose("5551234", None).expect("any");
        assert_eq!(
            (routed.route.as_deref(), routed.number.as_str()),
            (Some("any"), "05551234")
        );
    }

    #[test]
    fn override_by_name_forces_the_route() {
        let routes = office();
        let routed = routes.choose("101", Some("outside")).expect("forced");
        assert_eq!(
            (routed.route.as_deref(), routed.number.as_str()),
            (Some("outside"), "01")
        );
        let error = routes.choose("101", Some("mobile")).expect_err("unknown");
        assert_eq!(
            error.to_string(),
            "there is no route named `mobile`; routes: internal, outside, international, any"
        );
        let error = Routes::default()
            .choose("101", Some("x"))
            .expect_err("none configured");
        assert!(
            error.to_string().ends_with("no routes are configured"),
            "{error}"
        );
    }

    #[test]
    fn no_match_names_the_number_and_routes() {
        let routes = Routes::new(vec![
            route("internal", "_XXX", None, 0, ""),
            route("mobile", "_07X.", None, 0, ""),
        ]);
        let error = routes.choose("12-34", None).expect_err("no route");
        assert_eq!(
            error,
            RouteError::NoMatch {
                number: "1234".into(),
                routes: vec!["internal".into(), "mobile".into()]
            }
        );
        let text = error.to_string();
        assert!(
            text.starts_with("no outbound route matches 1234 (routes: internal, mobile)"),
            "{text}"
        );
        assert_eq!(routes.choose(" - ", None), Err(RouteError::Empty));
    }

    #[test]
    fn sip_addresses_and_empty_routes_pass_through() {
        let routes = office();
        for uri in [
            "sip:alice@pbx.test",
            "bob@10.0.0.1",
            "SIP:pbx.test",
            "tel:+1-555-0100",
            "<sip:pbx.test>",
            "\"Carol\" <sip:carol@pbx.test>",
        ] {
            let routed = routes.choose(uri, Some("outside")).expect("bypass");
            assert_eq!(
                routed,
                Routed {
                    route: None,
                    account: None,
                    number: uri.into()
                }
            );
        }
        let routed = Routes::default()
            .choose("(555) 1234", None)
            .expect("no routes");
        assert_eq!(
            routed,
            Routed {
                route: None,
                account: None,
                number: "5551234".into()
            }
        );
        assert!(Routes::default().is_empty() && !routes.is_empty());
        // Numbers are read as the core reads them.
        for (typed, number) in [("+44 (0)20 7946 0000", "+442079460000"), (" <201> ", "201")] {
            let routed = Routes::default().choose(typed, None).expect("no routes");
            assert_eq!(routed.number, number, "{typed:?}");
        }
    }

    #[test]
    fn stripping_everything_is_an_error() {
        let routes = Routes::new(vec![route("star", "_*X!", None, 3, "")]);
        assert_eq!(routes.choose("*1234", None).expect("rest").number, "34");
        let error = routes.choose("*1", None).expect_err("nothing left");
        assert!(
            error.to_string().contains("leaves nothing to dial"),
            "{error}"
        );
    }

    #[test]
    fn from_config_keeps_order_and_fields() {
        let tables = vec![
            config::Route {
                name: "a".into(),
                pattern: "_X.".into(),
                account: Some("office".into()),
                strip: 2,
                prefix: "+".into(),
            },
            config::Route {
                name: "b".into(),
                pattern: "_[".into(),
                account: None,
                strip: 0,
                prefix: String::new(),
            },
        ];
        assert_eq!(
            Routes::from_config(&tables),
            Err(PatternError::UnclosedClass(2))
        );
        let routes = Routes::from_config(&tables[..1]).expect("valid");
        assert_eq!(routes.names(), ["a"]);
        assert_eq!(routes.choose("1234", None).expect("a").number, "+34");
        assert_eq!(routes.get("a").map(|r| r.pattern.as_str()), Some("_X."));
    }
}
