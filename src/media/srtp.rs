//! SRTP and SRTCP (RFC 3711) for one stream, keyed by SDES (RFC 4568).
//!
//! [`SrtpSession`] holds two contexts of the `rtc-srtp` crate: one protecting what we send
//! with our key, one unprotecting what we receive with the far end's key (replay protection
//! on). The pipeline protects a packet after building it and unprotects one before parsing
//! it; a packet that fails authentication is an error the caller drops and counts.
//!
//! This module must not do any cryptography itself (the crate does), touch sockets or read
//! the clock.

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// Master key length of the AES_CM_128 suites.
pub const KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites.
pub const SALT_LEN: usize = 14;
/// How many recent packets replay protection remembers.
const REPLAY_WINDOW: usize = 128;

/// An SDES crypto suite we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    AesCm128HmacSha1_32,
}

/// The keys of one SRTP stream: master key followed by master salt, ours and theirs.
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both sides agreed on.
    pub suite: SrtpSuite,
    /// What we protect with (key ‖ salt).
    pub local: [u8; KEY_LEN + SALT_LEN],
    /// What the far end protects with (key ‖ salt).
    pub remote: [u8; KEY_LEN + SALT_LEN],
}

impl std::fmt::Debug for SrtpKeys {
    /// The suite only: keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Why a packet could not be protected or unprotected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The contexts could not be made from the keys.
    #[error("SRTP keys refused: {0}")]
    Keys(String),
    /// A received packet failed authentication or replay checks, or is malformed.
    #[error("SRTP packet refused: {0}")]
    Unprotect(String),
    /// A packet to send could not be protected.
    #[error("SRTP protect failed: {0}")]
    Protect(String),
}

/// The SRTP state of one stream, both directions.
pub struct SrtpSession {
    keys: SrtpKeys,
    outbound: Context,
    inbound: Context,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Contexts for `keys`.
    pub fn new(keys: SrtpKeys) -> Result<SrtpSession, SrtpError> {
        let profile = match keys.suite {
            SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        };
        let context = |material: &[u8; KEY_LEN + SALT_LEN], replay: bool| {
            let (key, salt) = material.split_at(KEY_LEN);
            let (rtp, rtcp) = if replay {
                (
                    Some(srtp_replay_protection(REPLAY_WINDOW)),
                    Some(srtcp_replay_protection(REPLAY_WINDOW)),
                )
            } else {
                (None, None)
            };
            Context::new(key, salt, profile, rtp, rtcp).map_err(|e| SrtpError::Keys(e.to_string()))
        };
        Ok(SrtpSession {
            outbound: context(&keys.local, false)?,
            inbound: context(&keys.remote, true)?,
            keys,
        })
    }

    /// The keys in use.
    pub fn keys(&self) -> &SrtpKeys {
        &self.keys
    }

    /// Protects the RTP packet in `packet` in place (it grows by the tag). The crate hands back
    /// a new buffer, copied into `packet`: one allocation per packet on the media thread (never
    /// on the audio callbacks).
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let out = self
            .outbound
            .encrypt_rtp(packet)
            .map_err(|e| SrtpError::Protect(e.to_string()))?;
        packet.clear();
        packet.extend_from_slice(&out);
        Ok(())
    }

    /// Protects the RTCP packet in `packet` in place.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        let out = self
            .outbound
            .encrypt_rtcp(packet)
            .map_err(|e| SrtpError::Protect(e.to_string()))?;
        packet.clear();
        packet.extend_from_slice(&out);
        Ok(())
    }

    /// The plain RTP packet of a received SRTP one, written to `out`.
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let plain = self
            .inbound
            .decrypt_rtp(packet)
            .map_err(|e| SrtpError::Unprotect(e.to_string()))?;
        out.clear();
        out.extend_from_slice(&plain);
        Ok(())
    }

    /// The plain RTCP packet of a received SRTCP one, written to `out`.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SrtpError> {
        let plain = self
            .inbound
            .decrypt_rtcp(packet)
            .map_err(|e| SrtpError::Unprotect(e.to_string()))?;
        out.clear();
        out.extend_from_slice(&plain);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{parse_rtp, RtpSender};

    fn keys(suite: SrtpSuite, local: u8, remote: u8) -> SrtpKeys {
        SrtpKeys {
            suite,
            local: [local; KEY_LEN + SALT_LEN],
            remote: [remote; KEY_LEN + SALT_LEN],
        }
    }

    fn rtp(sender: &mut RtpSender, payload: &[u8]) -> Vec<u8> {
        let mut packet = Vec::new();
        sender.packet(0, 160, false, payload, &mut packet);
        packet
    }

    #[test]
    fn both_suites_round_trip_and_hide_the_payload() {
        for (suite, tag) in [
            (SrtpSuite::AesCm128HmacSha1_80, 10),
            (SrtpSuite::AesCm128HmacSha1_32, 4),
        ] {
            let mut alice = SrtpSession::new(keys(suite, 1, 2)).expect("alice");
            let mut bob = SrtpSession::new(keys(suite, 2, 1)).expect("bob");
            let mut sender = RtpSender::new(0x1234_5678, 7);
            let payload = [0x55u8; 160];
            let plain = rtp(&mut sender, &payload);
            let mut wire = plain.clone();
            alice.protect_rtp(&mut wire).expect("protect");
            assert_eq!(wire.len(), plain.len() + tag, "{suite:?}");
            assert_eq!(wire[..12], plain[..12], "the header stays readable");
            assert_ne!(wire[12..12 + 160], payload, "the payload is encrypted");
            let mut out = Vec::new();
            bob.unprotect_rtp(&wire, &mut out).expect("unprotect");
            assert_eq!(out, plain);
            assert_eq!(parse_rtp(&out).expect("rtp").payload, payload);
            // A replayed packet is refused.
            assert!(bob.unprotect_rtp(&wire, &mut out).is_err(), "{suite:?}");
        }
    }

    #[test]
    fn a_tampered_or_foreign_packet_is_refused() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let mut alice = SrtpSession::new(keys(suite, 1, 2)).expect("alice");
        let mut bob = SrtpSession::new(keys(suite, 2, 1)).expect("bob");
        let mut sender = RtpSender::new(1, 1);
        let mut wire = rtp(&mut sender, &[9; 80]);
        alice.protect_rtp(&mut wire).expect("protect");
        let mut out = Vec::new();
        let mut tampered = wire.clone();
        tampered[20] ^= 1;
        assert!(bob.unprotect_rtp(&tampered, &mut out).is_err());
        // Plain RTP (no tag, wrong key) is refused too, and so are runts.
        let plain = rtp(&mut sender, &[9; 80]);
        assert!(bob.unprotect_rtp(&plain, &mut out).is_err());
        for len in 0..16 {
            assert!(bob.unprotect_rtp(&wire[..len], &mut out).is_err());
        }
        // The genuine packet still passes after the failures.
        bob.unprotect_rtp(&wire, &mut out).expect("genuine");
    }

    #[test]
    fn rtcp_round_trips() {
        let suite = SrtpSuite::AesCm128HmacSha1_32;
        let mut alice = SrtpSession::new(keys(suite, 3, 4)).expect("alice");
        let mut bob = SrtpSession::new(keys(suite, 4, 3)).expect("bob");
        // An empty receiver report: V=2, RC=0, PT=201, length 1, SSRC.
        let plain = vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let mut wire = plain.clone();
        alice.protect_rtcp(&mut wire).expect("protect");
        assert!(wire.len() > plain.len());
        let mut out = Vec::new();
        bob.unprotect_rtcp(&wire, &mut out).expect("unprotect");
        assert_eq!(out, plain);
    }

    /// One direction of a stream, packet by packet: `sender` builds, `from` protects, `to`
    /// unprotects; a packet may be lost or held back and delivered later.
    struct Direction {
        sender: RtpSender,
        late: Option<Vec<u8>>,
        delivered: u32,
    }

    impl Direction {
        fn carry(&mut self, i: u32, from: &mut SrtpSession, to: &mut SrtpSession) {
            let payload = i.to_be_bytes();
            let mut wire = Vec::new();
            self.sender.packet(0, i * 160, false, &payload, &mut wire);
            let seq = parse_rtp(&wire).expect("rtp").sequence;
            from.protect_rtp(&mut wire).expect("protect");
            let first_cycle = i < 1_000;
            if first_cycle && !(2..65_534).contains(&seq) {
                return; // lost around the first wrap
            }
            if !first_cycle && seq == 65_535 {
                self.late = Some(wire); // held back across the next wrap
                return;
            }
            let mut out = Vec::new();
            to.unprotect_rtp(&wire, &mut out)
                .unwrap_or_else(|e| panic!("packet {i} (sequence {seq}): {e}"));
            assert_eq!(parse_rtp(&out).expect("plain").payload, payload);
            self.delivered += 1;
            if seq == 3 {
                if let Some(late) = self.late.take() {
                    to.unprotect_rtp(&late, &mut out)
                        .expect("a packet reordered across the wrap");
                    self.delivered += 1;
                }
            }
        }
    }

    /// RFC 3711 §3.3.1: both sides keep a rollover counter (ROC) that advances when the
    /// 16-bit sequence wraps; a side that missed it would derive the wrong keystream and
    /// every later packet would fail authentication. Both directions start just below the
    /// wrap and cross it twice, losing packets across the first wrap and reordering
    /// one across the later ones.
    #[test]
    fn both_directions_survive_the_sequence_wrap() {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        let mut alice = SrtpSession::new(keys(suite, 1, 2)).expect("alice");
        let mut bob = SrtpSession::new(keys(suite, 2, 1)).expect("bob");
        let direction = |ssrc, start| Direction {
            sender: RtpSender::new(ssrc, start),
            late: None,
            delivered: 0,
        };
        let mut to_bob = direction(0xa11ce, 65_500);
        let mut to_alice = direction(0xb0b, 65_530);
        let packets = 65_536 + 100;
        for i in 0..packets {
            to_bob.carry(i, &mut alice, &mut bob);
            to_alice.carry(i, &mut bob, &mut alice);
        }
        // Everything but the four lost around the first wrap arrived and authenticated.
        assert_eq!(to_bob.delivered, packets - 4);
        assert_eq!(to_alice.delivered, packets - 4);
    }
}
