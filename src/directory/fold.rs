//! Folding text for matching: lower case, accents removed, a few letters spelt out (ø→o, æ→ae,
//! ß→ss, ł→l, đ→d), so `jose garcia` finds `José García`. Cyrillic and other scripts stay in
//! their script, lower-cased. Whitespace and control characters become spaces.
//!
//! Folding is done per original character, so every folded character can be traced back to the
//! character it came from (for highlighting). This module knows nothing about entries or
//! matching.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Folds `text` for matching; see the module documentation.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out, |_| {});
    out
}

/// Appends the folding of `text` to `out`, calling `origin(i)` once for every character
/// appended, with `i` the index (in characters) of the original character it came from.
pub fn fold_into(text: &str, out: &mut String, mut origin: impl FnMut(usize)) {
    for (i, c) in text.chars().enumerate() {
        if c.is_ascii() {
            out.push(if c.is_ascii_whitespace() || c.is_ascii_control() {
                ' '
            } else {
                c.to_ascii_lowercase()
            });
            origin(i);
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            out.push(' ');
            origin(i);
            continue;
        }
        decompose_compatible(c, |d| {
            if is_combining_mark(d) {
                return;
            }
            for lower in d.to_lowercase() {
                match spell(lower) {
                    Some(spelt) => {
                        for s in spelt.chars() {
                            out.push(s);
                            origin(i);
                        }
                    }
                    None => {
                        out.push(lower);
                        origin(i);
                    }
                }
            }
        });
    }
}

/// Letters that Unicode does not decompose but people type without their mark.
fn spell(c: char) -> Option<&'static str> {
    Some(match c {
        'ø' => "o",
        'æ' => "ae",
        'œ' => "oe",
        'ß' => "ss",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ħ' => "h",
        'ı' => "i",
        'ŀ' => "l",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_and_spelt_letters() {
        assert_eq!(fold("José García"), "jose garcia");
        assert_eq!(fold("Hämeenlinna"), "hameenlinna");
        assert_eq!(fold("Søren Ærø"), "soren aero");
        assert_eq!(fold("Straße Łódź Đorđe"), "strasse lodz dorde");
        assert_eq!(fold("Павел Пахомов"), "павел пахомов");
        assert_eq!(fold("ＡＢＣ\u{a0}ﬁ"), "abc fi");
    }

    #[test]
    fn every_folded_char_knows_its_origin() {
        // "e" + combining acute (already decomposed), then ß which becomes two letters.
        let text = "Re\u{301}ß!";
        let mut out = String::new();
        let mut origins = Vec::new();
        fold_into(text, &mut out, |i| origins.push(i));
        assert_eq!(out, "ress!");
        assert_eq!(origins, [0, 1, 3, 3, 4]);
    }
}
