//! WAV recording files: 16-bit PCM, 2 channels, 48 kHz; RIFF WAVE while the file fits in 4 GiB,
//! RF64 (EBU Tech 3306) beyond.
//!
//! A RIFF file states its size in 32 bits, so a plain WAV ends at 4 GiB: about 6 h 12 min of
//! stereo 48 kHz 16-bit. Every file is written with a `JUNK` chunk of the size of a `ds64`
//! chunk before `fmt `; readers skip it, so a recording under the limit is a plain WAV. When a
//! flush finds the file past the limit, the header becomes `RF64` with the 32-bit sizes set to
//! 0xFFFFFFFF and the `JUNK` chunk becomes `ds64` holding the 64-bit RIFF and data sizes and
//! the sample count: one file for the whole call, nothing renamed or split.
//!
//! `flush` rewrites the whole header (sizes included), so whatever was flushed is a valid file
//! even if the process dies before `finish`. Owns only its file.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};

use super::{RecordError, Sink, StereoFrame};
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};

/// Channels of every WAV recording.
const CHANNELS: u16 = 2;
/// Bytes of one sample frame (both channels).
const BLOCK_ALIGN: u16 = CHANNELS * 2;
/// Bytes of the `ds64` chunk's body without a table: RIFF size, data size, sample count (64
/// bits each) and the table length (32 bits).
const DS64_BODY: u32 = 28;
/// Bytes before the samples: `RIFF`/`RF64` header (12), `JUNK`/`ds64` (8 + 28), `fmt ` (8 +
/// 16), the `data` chunk header (8).
pub const HEADER_BYTES: u64 = 12 + 8 + DS64_BODY as u64 + 8 + 16 + 8;
/// The largest RIFF size (file size less 8) a plain WAV can state.
pub const RIFF_LIMIT: u64 = u32::MAX as u64;

/// A WAV recording being written.
pub struct WavSink {
    file: BufWriter<File>,
    /// Bytes of samples written so far.
    data: u64,
    /// The RIFF size beyond which the file is RF64 ([`RIFF_LIMIT`] but in tests).
    limit: u64,
    /// One frame's samples, interleaved little-endian.
    bytes: [u8; FRAME_SAMPLES * BLOCK_ALIGN as usize],
}

impl WavSink {
    /// Starts a WAV file in `file` (created empty by the caller).
    pub fn new(file: File) -> Result<WavSink, RecordError> {
        WavSink::with_limit(file, RIFF_LIMIT)
    }

    /// Starts a WAV file that turns RF64 when its RIFF size passes `limit` bytes (a small limit
    /// lets tests cross the boundary without writing 4 GiB).
    pub(super) fn with_limit(file: File, limit: u64) -> Result<WavSink, RecordError> {
        let mut sink = WavSink {
            file: BufWriter::new(file),
            data: 0,
            limit: limit.min(RIFF_LIMIT),
            bytes: [0; FRAME_SAMPLES * BLOCK_ALIGN as usize],
        };
        let header = sink.header();
        sink.file.write_all(&header)?;
        sink.file.flush()?;
        Ok(sink)
    }

    /// The header for what was written so far.
    fn header(&self) -> [u8; HEADER_BYTES as usize] {
        let riff = HEADER_BYTES - 8 + self.data;
        let rf64 = riff > self.limit;
        let mut h = Vec::with_capacity(HEADER_BYTES as usize);
        let size32 = |n: u64| {
            if rf64 {
                u32::MAX
            } else {
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        h.extend_from_slice(if rf64 { b"RF64" } else { b"RIFF" });
        h.extend_from_slice(&size32(riff).to_le_bytes());
        h.extend_from_slice(b"WAVE");
        h.extend_from_slice(if rf64 { b"ds64" } else { b"JUNK" });
        h.extend_from_slice(&DS64_BODY.to_le_bytes());
        if rf64 {
            h.extend_from_slice(&riff.to_le_bytes());
            h.extend_from_slice(&self.data.to_le_bytes());
            h.extend_from_slice(&(self.data / u64::from(BLOCK_ALIGN)).to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
        } else {
            h.extend_from_slice(&[0; DS64_BODY as usize]);
        }
        h.extend_from_slice(b"fmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&CHANNELS.to_le_bytes());
        h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        h.extend_from_slice(&(SAMPLE_RATE * u32::from(BLOCK_ALIGN)).to_le_bytes());
        h.extend_from_slice(&BLOCK_ALIGN.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&size32(self.data).to_le_bytes());
        let mut header = [0; HEADER_BYTES as usize];
        header.copy_from_slice(&h);
        header
    }
}

impl Sink for WavSink {
    fn write(&mut self, frame: &StereoFrame) -> Result<(), RecordError> {
        for (i, (l, r)) in frame.left.iter().zip(&frame.right).enumerate() {
            self.bytes[4 * i..4 * i + 2].copy_from_slice(&l.to_le_bytes());
            self.bytes[4 * i + 2..4 * i + 4].copy_from_slice(&r.to_le_bytes());
        }
        self.file.write_all(&self.bytes)?;
        self.data += self.bytes.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        // The samples first, then the sizes that cover them.
        self.file.flush()?;
        let header = self.header();
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), RecordError> {
        self.flush()?;
        self.file.get_mut().sync_all()?;
        Ok(())
    }
}
