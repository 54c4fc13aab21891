//! Ogg Opus recording files (RFC 7845): 2 channels at 48 kHz, one Opus packet per frame (a
//! frame's length, 10 or 20 ms, is a valid Opus frame size).
//!
//! ```text
//!   page 0 (BOS): OpusHead      page 1: OpusTags      pages 2…: audio, granule = samples
//!                                                      a page is closed every FLUSH_PACKETS
//! ```
//!
//! Each audio packet is held back until the next one is encoded, so the last one can end the
//! stream (EOS) in `finish`; a page is closed and written out every [`FLUSH_PACKETS`] packets,
//! so a killed process leaves a file that plays up to its last page. Owns only its
//! file; uses the same libopus as the calls (through the `opus` crate).

use std::fs::File;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::{RecordError, Sink, StereoFrame};
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE, TICKS_PER_SECOND};

/// Audio packets per page at most (0.5 s): a page is written out at least this often.
pub const FLUSH_PACKETS: u32 = TICKS_PER_SECOND / 2;
/// The recording's Opus bitrate: 32 kb/s per channel is transparent for speech.
const BITRATE: i32 = 64_000;
/// Largest Opus packet (RFC 6716 allows 1275 bytes per frame).
const MAX_PACKET: usize = 1500;
/// The vendor string of OpusTags.
const VENDOR: &str = "switchboard";

/// An Ogg Opus recording being written.
pub struct OggOpusSink {
    writer: PacketWriter<'static, File>,
    encoder: opus::Encoder,
    serial: u32,
    pre_skip: u64,
    /// Samples (per channel) encoded so far, not counting pre-skip.
    samples: u64,
    /// The last packet encoded, with its granule position, not yet written.
    held: Option<(Vec<u8>, u64)>,
    /// Packets written since the last page was closed.
    in_page: u32,
    pcm: [i16; 2 * FRAME_SAMPLES],
    packet: [u8; MAX_PACKET],
}

impl OggOpusSink {
    /// Starts an Ogg Opus stream with logical stream serial number `serial` in `file` (created
    /// empty by the caller): writes OpusHead and OpusTags, each on its own page.
    pub fn new(file: File, serial: u32) -> Result<OggOpusSink, RecordError> {
        let mut encoder =
            opus::Encoder::new(SAMPLE_RATE, opus::Channels::Stereo, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(BITRATE))?;
        let pre_skip = u16::try_from(encoder.get_lookahead()?).unwrap_or(u16::MAX);
        let mut writer = PacketWriter::new(file);
        writer.write_packet(opus_head(pre_skip), serial, PacketWriteEndInfo::EndPage, 0)?;
        writer.write_packet(opus_tags(), serial, PacketWriteEndInfo::EndPage, 0)?;
        Ok(OggOpusSink {
            writer,
            encoder,
            serial,
            pre_skip: u64::from(pre_skip),
            samples: 0,
            held: None,
            in_page: 0,
            pcm: [0; 2 * FRAME_SAMPLES],
            packet: [0; MAX_PACKET],
        })
    }

    /// Writes the held packet, closing the page when `end` says so or when it is full.
    fn write_held(&mut self, end: PacketWriteEndInfo) -> Result<(), RecordError> {
        let Some((packet, granule)) = self.held.take() else {
            return Ok(());
        };
        self.in_page += 1;
        let end = match end {
            PacketWriteEndInfo::NormalPacket if self.in_page >= FLUSH_PACKETS => {
                PacketWriteEndInfo::EndPage
            }
            other => other,
        };
        if !matches!(end, PacketWriteEndInfo::NormalPacket) {
            self.in_page = 0;
        }
        self.writer
            .write_packet(packet, self.serial, end, granule)?;
        Ok(())
    }
}

impl Sink for OggOpusSink {
    fn write(&mut self, frame: &StereoFrame) -> Result<(), RecordError> {
        frame.interleave(&mut self.pcm);
        let len = self.encoder.encode(&self.pcm, &mut self.packet)?;
        self.write_held(PacketWriteEndInfo::NormalPacket)?;
        self.samples += FRAME_SAMPLES as u64;
        self.held = Some((self.packet[..len].to_vec(), self.pre_skip + self.samples));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        // Pages are closed and written every FLUSH_PACKETS packets already; the held packet
        // stays held so that `finish` can mark it as the end of the stream.
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), RecordError> {
        if self.held.is_none() {
            // Nothing was recorded: one packet of silence, so the stream can end.
            self.write(&StereoFrame::SILENCE)?;
        }
        self.write_held(PacketWriteEndInfo::EndStream)
    }
}

/// The identification header (RFC 7845 §5.1): version 1, 2 channels, mapping family 0.
fn opus_head(pre_skip: u16) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1);
    head.push(2);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The comment header (RFC 7845 §5.2): the vendor string and no comments.
fn opus_tags() -> Vec<u8> {
    let mut tags = Vec::with_capacity(16 + VENDOR.len());
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&u32::try_from(VENDOR.len()).unwrap_or(0).to_le_bytes());
    tags.extend_from_slice(VENDOR.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}
