//! The writer thread of one recording: opens the file, moves frames from the ring into it,
//! makes the file valid on disk every [`FLUSH_FRAMES`] frames, and finishes it when the media
//! thread closes the ring. Never touches the media thread's state: it only pops from the ring
//! and sends notices.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::{Notice, OggOpusSink, RecordError, RecordFormat, Sink, StereoFrame, WavSink};
use crate::media::TICKS_PER_SECOND;

/// Frames between two flushes (0.5 s): at most this much is lost if the process is killed.
pub const FLUSH_FRAMES: u64 = TICKS_PER_SECOND as u64 / 2;
/// How long the writer sleeps when the ring is empty (a frame or two come meanwhile).
const IDLE: Duration = Duration::from_millis(20);
/// Names tried when the file already exists: `name.wav`, `name-2.wav`, … `name-99.wav`.
const MAX_SUFFIX: u32 = 99;

/// Runs one recording to its end; every outcome is sent as a [`Notice`].
pub(super) fn run(
    id: u64,
    mut ring: rtrb::Consumer<StereoFrame>,
    path: &Path,
    format: RecordFormat,
    notices: &mpsc::Sender<Notice>,
) {
    // The media thread gone means the engine stops; nobody is left to tell.
    let (mut sink, path) = match open(path, format) {
        Ok(opened) => opened,
        Err(e) => {
            let _ = notices.send(Notice::Failed {
                id,
                error: format!("cannot create {}: {e}", path.display()),
            });
            return;
        }
    };
    let _ = notices.send(Notice::Opened {
        id,
        path: path.clone(),
    });
    match pump(&mut ring, sink.as_mut()) {
        Ok(frames) => match sink.finish() {
            Ok(()) => {
                let _ = notices.send(Notice::Finished { id, frames });
            }
            Err(e) => {
                let _ = notices.send(Notice::Failed {
                    id,
                    error: format!("cannot finish {}: {e}", path.display()),
                });
            }
        },
        Err(e) => {
            // Keep what was written a valid file, as far as the disk lets us.
            let _ = sink.finish();
            let _ = notices.send(Notice::Failed {
                id,
                error: format!("cannot write {}: {e}", path.display()),
            });
        }
    }
}

/// Moves frames from the ring into the sink until the ring is closed and empty; returns how
/// many frames were written.
fn pump(ring: &mut rtrb::Consumer<StereoFrame>, sink: &mut dyn Sink) -> Result<u64, RecordError> {
    let mut frames = 0u64;
    loop {
        match ring.pop() {
            Ok(frame) => {
                sink.write(&frame)?;
                frames += 1;
                if frames % FLUSH_FRAMES == 0 {
                    sink.flush()?;
                }
            }
            // Closed: whatever was pushed before closing is already visible, so an empty ring
            // now is the end.
            Err(_) if ring.is_abandoned() && ring.is_empty() => return Ok(frames),
            Err(_) if ring.is_abandoned() => {}
            Err(_) => std::thread::sleep(IDLE),
        }
    }
}

/// Creates the directory and a new file (never overwriting one) and starts the format in it.
fn open(path: &Path, format: RecordFormat) -> Result<(Box<dyn Sink>, PathBuf), RecordError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let (file, path) = create_new(path)?;
    let sink: Box<dyn Sink> = match format {
        RecordFormat::Wav => Box::new(WavSink::new(file)?),
        RecordFormat::OggOpus => Box::new(OggOpusSink::new(file, rand::random())?),
    };
    Ok((sink, path))
}

/// `path`, or the first of `stem-2.ext` … that does not exist yet, created.
fn create_new(path: &Path) -> Result<(File, PathBuf), RecordError> {
    let mut candidate = path.to_path_buf();
    for n in 2..=MAX_SUFFIX + 1 {
        match OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((file, candidate)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && n <= MAX_SUFFIX => {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                let name = match path.extension() {
                    Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
                    None => format!("{stem}-{n}"),
                };
                candidate = path.with_file_name(name);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::new(
        ErrorKind::AlreadyExists,
        "too many recordings with this name",
    )
    .into())
}
