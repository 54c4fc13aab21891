//! Text of directory files as they come from the field: a byte order mark says UTF-8 or
//! UTF-16 (little or big endian, as Excel's "Unicode text" writes); without one, text that is
//! valid UTF-8 is UTF-8, and anything else is Windows-1252 (Excel's "CSV" on Western Windows,
//! which also reads Latin-1 files).
//!
//! This module only decodes bytes; it must not parse rows or cards.

use std::borrow::Cow;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// A file's text and how it was read.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The text, without its byte order mark.
    pub text: Cow<'a, str>,
    /// The encoding used (`UTF-8`, `UTF-16LE`, `UTF-16BE`, `windows-1252`).
    pub encoding: &'static str,
    /// Some bytes could not be read in that encoding and were replaced by U+FFFD (only a file
    /// with a byte order mark that its content belies, e.g. an odd UTF-16 length).
    pub replaced: bool,
}

/// Decodes `bytes` by their byte order mark, else as UTF-8 if valid, else as Windows-1252.
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    let (encoding, body): (&'static Encoding, &[u8]) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, &bytes[bom..]),
        None if std::str::from_utf8(bytes).is_ok() => (UTF_8, bytes),
        None => (WINDOWS_1252, bytes),
    };
    let (text, replaced) = encoding.decode_without_bom_handling(body);
    Decoded {
        text,
        encoding: encoding.name(),
        replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let mut bytes = if big_endian {
            vec![0xfe, 0xff]
        } else {
            vec![0xff, 0xfe]
        };
        for unit in text.encode_utf16() {
            let pair = if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            };
            bytes.extend_from_slice(&pair);
        }
        bytes
    }

    #[test]
    fn byte_order_marks_choose_the_encoding_and_are_dropped() {
        let text = "Name,Phone\nJosé Müller,+34 91 123 45 67\nПавел,201\n";
        let mut utf8 = b"\xef\xbb\xbf".to_vec();
        utf8.extend_from_slice(text.as_bytes());
        for (bytes, encoding) in [
            (utf8, "UTF-8"),
            (utf16(text, false), "UTF-16LE"),
            (utf16(text, true), "UTF-16BE"),
        ] {
            let decoded = decode(&bytes);
            assert_eq!(decoded.text, text, "{encoding}");
            assert_eq!(decoded.encoding, encoding);
            assert!(!decoded.replaced);
        }
    }

    #[test]
    fn utf8_without_a_mark_is_borrowed_and_anything_else_is_windows_1252() {
        let plain = "Name,Phone\nZoë,200\n".as_bytes();
        let decoded = decode(plain);
        assert!(matches!(decoded.text, Cow::Borrowed(_)));
        assert_eq!(decoded.encoding, "UTF-8");
        // Excel's CSV on Western Windows: é = E9, ü = FC, € = 80, ’ = 92.
        let cp1252 = b"Name,Phone\nJos\xe9 M\xfcller \x80 O\x92Brien,201\n";
        let decoded = decode(cp1252);
        assert_eq!(decoded.text, "Name,Phone\nJosé Müller € O’Brien,201\n");
        assert_eq!(decoded.encoding, "windows-1252");
        assert!(!decoded.replaced);
    }

    #[test]
    fn a_broken_utf16_file_is_read_with_replacements_not_a_panic() {
        let mut bytes = utf16("Name", false);
        bytes.push(b'x');
        let decoded = decode(&bytes);
        assert!(decoded.replaced && decoded.text.starts_with("Name"));
        for bytes in [&b""[..], b"\xff", b"\xfe", b"\xef\xbb", b"\xff\xfe\x00\xd8"] {
            let _ = decode(bytes);
        }
    }
}
