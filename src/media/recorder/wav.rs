//! WAV recording files: RIFF WAVE, 16-bit PCM, 2 channels, 48 kHz, through `hound`.
//!
//! `flush` rewrites the RIFF and data sizes in the header, so whatever was flushed is a valid
//! file even if the process dies before `finish`. Owns only its file.

use std::fs::File;
use std::io::BufWriter;

use super::{RecordError, Sink, StereoFrame};
use crate::media::{FRAME_SAMPLES, SAMPLE_RATE};

/// The format of every WAV recording.
pub const WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 2,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

/// A WAV recording being written.
pub struct WavSink {
    writer: hound::WavWriter<BufWriter<File>>,
}

impl WavSink {
    /// Starts a WAV file in `file` (created empty by the caller).
    pub fn new(file: File) -> Result<WavSink, RecordError> {
        Ok(WavSink {
            writer: hound::WavWriter::new(BufWriter::new(file), WAV_SPEC)?,
        })
    }
}

impl Sink for WavSink {
    fn write(&mut self, frame: &StereoFrame) -> Result<(), RecordError> {
        let mut samples = self.writer.get_i16_writer(2 * FRAME_SAMPLES as u32);
        for (l, r) in frame.left.iter().zip(&frame.right) {
            samples.write_sample(*l);
            samples.write_sample(*r);
        }
        samples.flush()?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RecordError> {
        self.writer.flush()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), RecordError> {
        self.writer.finalize()?;
        Ok(())
    }
}
