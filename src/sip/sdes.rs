//! SDES key exchange for SRTP (RFC 4568): `a=crypto` attributes and the account's policy.
//!
//! We speak `AES_CM_128_HMAC_SHA1_80` (tag 1 in our offers) and `AES_CM_128_HMAC_SHA1_32`
//! (tag 2), each with its own 30-byte master key ‖ salt, sent base64 in `inline:`. Lines with
//! an MKI, a key lifetime other than the default, or session parameters are not used.
//!
//! Keys come from a [`KeySource`] the driver provides (the core has no entropy of its own).
//! This module does no cryptography, and its types never print a key.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Length of an SDES key: 16-byte master key followed by a 14-byte master salt.
pub const KEY_LEN: usize = 30;

/// A master key ‖ salt.
pub type Key = [u8; KEY_LEN];

/// Whether an account's calls use SRTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SrtpMode {
    /// Plain RTP/AVP; an RTP/SAVP offer is refused.
    #[default]
    Off,
    /// RTP/AVP offers with `a=crypto`; SRTP when the far end takes it, plain otherwise.
    Optional,
    /// RTP/SAVP offers; calls without keys are refused (488) or ended.
    Mandatory,
}

/// An SDES crypto suite we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// Both, in our order of preference, with the tag we offer each under.
    pub const OFFERED: [(u32, CryptoSuite); 2] = [
        (1, CryptoSuite::AesCm128HmacSha1_80),
        (2, CryptoSuite::AesCm128HmacSha1_32),
    ];

    /// The SDP name.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<CryptoSuite> {
        [
            CryptoSuite::AesCm128HmacSha1_80,
            CryptoSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// One `a=crypto` line we can use.
#[derive(Clone, PartialEq, Eq)]
pub struct Crypto {
    /// Its tag.
    pub tag: u32,
    /// Its suite.
    pub suite: CryptoSuite,
    /// The key ‖ salt of whoever wrote it.
    pub key: Key,
}

impl fmt::Debug for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypto")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Reads the value of an `a=crypto:` attribute; `None` when we cannot use it (unknown
    /// suite, bad key, MKI, lifetime, several keys, session parameters).
    pub fn parse(value: &str) -> Option<Crypto> {
        let mut fields = value.split_ascii_whitespace();
        let tag = fields.next()?.parse::<u32>().ok()?;
        let suite = CryptoSuite::from_name(fields.next()?)?;
        let key_params = fields.next()?;
        if fields.next().is_some() || key_params.contains(';') {
            return None;
        }
        let inline = key_params
            .get(..7)
            .filter(|m| m.eq_ignore_ascii_case("inline:"))
            .and_then(|_| key_params.get(7..))?;
        if inline.contains('|') {
            return None;
        }
        let bytes = STANDARD.decode(inline).ok()?;
        let key: Key = bytes.try_into().ok()?;
        Some(Crypto { tag, suite, key })
    }

    /// The attribute line, `a=crypto:…` with CRLF.
    pub fn line(tag: u32, suite: CryptoSuite, key: &Key) -> String {
        format!(
            "a=crypto:{tag} {} inline:{}\r\n",
            suite.name(),
            STANDARD.encode(key)
        )
    }
}

/// The SRTP keys of an agreed stream.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpMaterial {
    /// The suite.
    pub suite: CryptoSuite,
    /// Our key ‖ salt (we protect with it).
    pub local: Key,
    /// The far end's key ‖ salt.
    pub remote: Key,
}

impl fmt::Debug for SrtpMaterial {
    /// The suite only: keys never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpMaterial")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Where fresh SRTP keys come from: a cryptographically secure generator the driver
/// provides.
#[derive(Clone)]
pub struct KeySource(Arc<dyn Fn() -> Key + Send + Sync>);

impl KeySource {
    /// Keys from `generate`, which must be cryptographically secure.
    pub fn new(generate: impl Fn() -> Key + Send + Sync + 'static) -> KeySource {
        KeySource(Arc::new(generate))
    }

    /// A fresh key.
    pub fn key(&self) -> Key {
        (self.0)()
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySource")
    }
}

/// The account's SRTP settings as the core uses them.
#[derive(Debug, Clone, Default)]
pub struct SrtpConfig {
    /// The policy in force (the driver has already turned `optional` off where keys may
    /// not be sent).
    pub mode: SrtpMode,
    /// Where keys come from; with none, the mode is taken as [`SrtpMode::Off`].
    pub keys: Option<KeySource>,
}

impl SrtpConfig {
    /// The mode in force: `Off` without a key source.
    pub fn effective(&self) -> SrtpMode {
        if self.keys.is_some() {
            self.mode
        } else {
            SrtpMode::Off
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_lines_round_trip() {
        let key: Key = std::array::from_fn(|i| i as u8);
        let line = Crypto::line(1, CryptoSuite::AesCm128HmacSha1_80, &key);
        assert_eq!(
            line,
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n"
        );
        let value = line.trim_end().trim_start_matches("a=crypto:");
        let parsed = Crypto::parse(value).expect("ours");
        assert_eq!(parsed.tag, 1);
        assert_eq!(parsed.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(parsed.key, key);
        assert!(!format!("{parsed:?}").contains("AAEC"));
    }

    #[test]
    fn lines_we_cannot_use_are_skipped() {
        let good = "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
        assert!(Crypto::parse(&format!("2 aes_cm_128_hmac_sha1_32 {good}")).is_some());
        for bad in [
            format!("1 AES_256_CM_HMAC_SHA1_80 {good}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {good}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {good} UNENCRYPTED_SRTP"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_owned(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!".to_owned(),
            "x AES_CM_128_HMAC_SHA1_80".to_owned(),
            String::new(),
            "1 AES_CM_128_HMAC_SHA1_80 inl".to_owned(),
        ] {
            assert_eq!(Crypto::parse(&bad), None, "{bad}");
        }
    }
}
