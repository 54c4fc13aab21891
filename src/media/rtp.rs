//! RTP packets for one call leg (RFC 3550 §5, demux per RFC 5761).
//!
//! Owns the wire format of RTP ([`parse_rtp`], [`RtpSender`]) and telling RTCP from RTP on a
//! shared port ([`is_rtcp`]); one leg's RTCP state is [`super::rtcp`].
//! It must not read clocks, touch sockets, allocate per packet once the caller's buffers have
//! capacity, log, or panic on any input: malformed packets are [`RtpError`]s (RTCP's parser
//! reports its errors with the same type).
//!
//! ```text
//!   outgoing:  payload ─► RtpSender::packet ─► RTP bytes ──► (SRTP) ──► socket
//!   incoming:  socket ─► (SRTP) ─► is_rtcp? ─ yes ─► rtcp.rs
//!                                     └─ no ──► parse_rtp ─► RTCP statistics, jitter buffer
//! ```
//!
//! RTP parsing and building go through the `rtp-rs` crate (`RtpReader`,
//! `RtpPacketBuilder::build_into`, which writes into our buffer without
//! allocating). Its reader's error type has no `Display`, so it is mapped onto [`RtpError`].

use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError, Seq};

/// Length of the fixed RTP header (no CSRC, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// One parsed RTP packet, borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp in the payload type's clock.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Marker bit (start of a talkspurt for audio).
    pub marker: bool,
    /// The payload, without CSRCs, header extension or padding.
    pub payload: &'a [u8],
}

/// Why an RTP or RTCP packet was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// The packet ends before its headers do.
    #[error("truncated packet: {have} bytes, its headers need {need}")]
    Truncated {
        /// Bytes the headers (as declared) need.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// The version field is not 2.
    #[error("unsupported RTP/RTCP version {0} (only version 2 exists)")]
    Version(u8),
    /// The padding count is zero or longer than the packet's payload.
    #[error("invalid padding of {pad} bytes in a {len}-byte packet")]
    Padding {
        /// The padding count from the packet's last byte.
        pad: u8,
        /// Length of the (sub-)packet.
        len: usize,
    },
    /// An empty datagram where RTCP was expected.
    #[error("empty RTCP packet")]
    Empty,
    /// A compound RTCP packet whose length is not a multiple of 4.
    #[error("RTCP packet of {0} bytes is not a whole number of 32-bit words")]
    RtcpAlignment(usize),
    /// A packet type outside RTCP's 192..=223 (RFC 5761).
    #[error("packet type {0} is not RTCP")]
    NotRtcp(u8),
    /// An RTCP length field pointing past the datagram.
    #[error("RTCP length field declares {declared} bytes, only {available} remain")]
    RtcpLength {
        /// Bytes the length field declares.
        declared: usize,
        /// Bytes left in the datagram.
        available: usize,
    },
    /// An SR or RR too short for its fixed part and report blocks.
    #[error("RTCP packet type {packet_type} with {count} report blocks cannot fit in {len} bytes")]
    RtcpBody {
        /// The RTCP packet type (200 SR, 201 RR).
        packet_type: u8,
        /// The report count from its header.
        count: u8,
        /// Bytes of body after the header, padding removed.
        len: usize,
    },
}

/// Parses one RTP version 2 packet: CSRCs and a header extension are
/// skipped, padding is removed. Truncated headers, another version, or a
/// padding count of zero or longer than the packet are errors.
///
/// Does not tell RTP from RTCP: call [`is_rtcp`] first on a shared port.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpPacket<'_>, RtpError> {
    let reader = RtpReader::new(buf).map_err(|e| match e {
        RtpReaderError::BufferTooShort(have) => RtpError::Truncated {
            need: RTP_HEADER_LEN,
            have,
        },
        RtpReaderError::UnsupportedVersion(v) => RtpError::Version(v),
        RtpReaderError::HeadersTruncated { header_len, .. } => RtpError::Truncated {
            need: header_len,
            have: buf.len(),
        },
        RtpReaderError::PaddingLengthInvalid(pad) => RtpError::Padding {
            pad,
            len: buf.len(),
        },
    })?;
    Ok(RtpPacket {
        payload_type: reader.payload_type(),
        sequence: u16::from(reader.sequence_number()),
        timestamp: reader.timestamp(),
        ssrc: reader.ssrc(),
        marker: reader.mark(),
        payload: reader.payload(),
    })
}

/// RFC 5761 demultiplexing: true when the datagram is version 2 and its
/// second byte (RTCP packet type, or RTP marker + payload type) is in
/// 192..=223. RTP payload types 64–95 collide and must not be negotiated.
pub fn is_rtcp(buf: &[u8]) -> bool {
    match buf {
        [first, second, ..] => first >> 6 == 2 && (192..=223).contains(second),
        _ => false,
    }
}

/// Builds one outgoing RTP stream: fixed SSRC, sequence numbers from
/// `first_sequence` up by one per packet (wrapping), and the packet and
/// payload-octet counts an SR reports.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    next_sequence: u16,
    packets_sent: u32,
    octets_sent: u32,
}

impl RtpSender {
    /// A stream with this SSRC whose first packet has `first_sequence`
    /// (RFC 3550 wants both random; the caller draws them).
    pub fn new(ssrc: u32, first_sequence: u16) -> RtpSender {
        RtpSender {
            ssrc,
            next_sequence: first_sequence,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// Builds the next packet (sequence increments by one per call,
    /// wrapping) into `out` (cleared first; no allocation once `out` has
    /// capacity for the header and payload). `payload_type` is masked to 7
    /// bits. Timestamps are the caller's: they advance by the samples per
    /// frame, and jump over silence.
    pub fn packet(
        &mut self,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) {
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type & 0x7f)
            .marked(marker)
            .sequence(Seq::from(self.next_sequence))
            .timestamp(timestamp)
            .ssrc(self.ssrc)
            .payload(payload);
        out.clear();
        out.resize(builder.target_length(), 0);
        match builder.build_into(out) {
            Ok(len) => out.truncate(len),
            // Unreachable (the buffer is sized, the payload type masked);
            // an empty `out` means "nothing to send" without a panic.
            Err(_) => {
                out.clear();
                return;
            }
        }
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        let octets = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.octets_sent = self.octets_sent.wrapping_add(octets);
    }

    /// This stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets built so far (wrapping, as the SR's sender's packet count).
    pub fn packets_sent(&self) -> u32 {
        self.packets_sent
    }

    /// Payload octets built so far, headers and padding excluded (wrapping,
    /// as the SR's sender's octet count).
    pub fn octets_sent(&self) -> u32 {
        self.octets_sent
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn rtp_bytes(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RtpSender::new(ssrc, seq).packet(0, ts, false, payload, &mut out);
        out
    }

    // ---- RTP parsing ----

    #[test]
    fn parses_a_plain_packet() {
        let buf = [
            0x80, 0x08, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb,
        ];
        let p = parse_rtp(&buf).unwrap();
        assert_eq!(
            p,
            RtpPacket {
                payload_type: 8,
                sequence: 0x1234,
                timestamp: 0xdead_beef,
                ssrc: 0x0102_0304,
                marker: false,
                payload: &[0xaa, 0xbb],
            }
        );
    }

    /// V=2, P=1, X=1, CC=2, M=1, PT=111; two CSRCs, a one-word extension,
    /// three payload bytes, then 3 bytes of padding (count included).
    pub(crate) fn full_packet() -> Vec<u8> {
        let mut b = vec![
            0xb2,
            0x80 | 111,
            0xff,
            0xfe,
            0,
            0,
            0x01,
            0x00,
            0xca,
            0xfe,
            0xba,
            0xbe,
        ];
        b.extend_from_slice(&[0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22]); // CSRCs
        b.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0x20, 0x30, 0x40]); // extension
        b.extend_from_slice(&[7, 8, 9]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding
        b
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        let buf = full_packet();
        let p = parse_rtp(&buf).unwrap();
        assert_eq!(p.payload_type, 111);
        assert!(p.marker);
        assert_eq!(p.sequence, 0xfffe);
        assert_eq!(p.timestamp, 256);
        assert_eq!(p.ssrc, 0xcafe_babe);
        assert_eq!(p.payload, &[7, 8, 9]);
    }

    #[test]
    fn padding_may_leave_an_empty_payload() {
        let mut buf = rtp_bytes(1, 2, 3, &[0, 0, 0, 4]);
        buf[0] |= 0x20;
        assert_eq!(parse_rtp(&buf).unwrap().payload, &[] as &[u8]);
    }

    #[test]
    fn rejects_truncated_packets() {
        let buf = full_packet();
        // Every cut inside the headers (12 fixed + 8 CSRC + 8 extension).
        for len in 0..28 {
            let err = parse_rtp(&buf[..len]).unwrap_err();
            assert!(
                matches!(err, RtpError::Truncated { have, .. } if have == len),
                "len {len}: {err:?}"
            );
        }
        // An extension whose length field runs past the end.
        let mut long_ext = full_packet();
        long_ext[22..24].copy_from_slice(&[0x00, 0x10]);
        assert!(matches!(
            parse_rtp(&long_ext),
            Err(RtpError::Truncated { need: 88, .. })
        ));
        // Padding flag with nothing after the headers.
        let mut no_room = rtp_bytes(1, 1, 1, &[]);
        no_room[0] |= 0x20;
        assert!(parse_rtp(&no_room).is_err());
    }

    #[test]
    fn rejects_other_versions() {
        for first in [0x00u8, 0x40, 0xc0] {
            let mut buf = rtp_bytes(1, 1, 1, &[1, 2, 3]);
            buf[0] = first;
            assert_eq!(parse_rtp(&buf), Err(RtpError::Version(first >> 6)));
        }
    }

    #[test]
    fn rejects_padding_longer_than_the_packet() {
        let mut buf = full_packet();
        let last = buf.len() - 1;
        buf[last] = 7; // 3 payload + 3 padding bytes available, 7 claimed
        assert!(matches!(
            parse_rtp(&buf),
            Err(RtpError::Padding { pad: 7, .. })
        ));
        buf[last] = 0; // a zero count is invalid too
        assert!(matches!(
            parse_rtp(&buf),
            Err(RtpError::Padding { pad: 0, .. })
        ));
        buf[last] = 6; // exactly the payload and padding: valid, empty payload
        assert_eq!(parse_rtp(&buf).unwrap().payload.len(), 0);
    }

    #[test]
    fn errors_have_readable_messages() {
        let msg = parse_rtp(&[0x80, 0]).unwrap_err().to_string();
        assert_eq!(msg, "truncated packet: 2 bytes, its headers need 12");
        let msg = RtpError::NotRtcp(96).to_string();
        assert_eq!(msg, "packet type 96 is not RTCP");
    }

    // ---- demux ----

    #[test]
    fn is_rtcp_demuxes_per_rfc_5761() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 7]));
        assert!(is_rtcp(&[0x80, 192]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 191]));
        for pt in [0u8, 8, 96, 101, 111] {
            let mut sender = RtpSender::new(5, 5);
            let mut out = Vec::new();
            for marker in [false, true] {
                sender.packet(pt, 0, marker, &[1], &mut out);
                assert!(!is_rtcp(&out), "pt {pt} marker {marker}");
            }
        }
        assert!(!is_rtcp(&[0x40, 200, 0, 0])); // version 1
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }

    // ---- RtpSender ----

    #[test]
    fn sender_round_trips_and_wraps_the_sequence() {
        let mut sender = RtpSender::new(0x1234_5678, 65_534);
        let mut out = Vec::with_capacity(1500);
        let ptr = out.as_ptr();
        let mut seqs = Vec::new();
        for i in 0..4u32 {
            let payload = [i as u8; 33];
            let ts = (u32::MAX - 100).wrapping_add(i * 960); // the timestamp wraps too
            sender.packet(111 | 0x80, ts, i == 0, &payload, &mut out);
            assert_eq!(out.len(), RTP_HEADER_LEN + 33);
            let p = parse_rtp(&out).unwrap();
            assert_eq!(p.payload_type, 111);
            assert_eq!(p.marker, i == 0);
            assert_eq!(p.timestamp, ts);
            assert_eq!(p.ssrc, 0x1234_5678);
            assert_eq!(p.payload, &payload);
            seqs.push(p.sequence);
        }
        assert_eq!(seqs, [65_534, 65_535, 0, 1]);
        assert_eq!(out.as_ptr(), ptr, "no reallocation once out has capacity");
        assert_eq!(sender.ssrc(), 0x1234_5678);
        assert_eq!(sender.packets_sent(), 4);
        assert_eq!(sender.octets_sent(), 4 * 33);
    }
}
