//! Cost of one 20 ms frame on the media thread: encoding and decoding with each codec,
//! concealing a lost Opus frame, and a jitter buffer push + pop. A frame must cost far less
//! than its 20 ms for the media thread to keep up with two lines on a busy machine.

use std::f32::consts::TAU;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use switchboard::media::codec::{Codec, OpusSettings};
use switchboard::media::jitter::{JitterBuffer, JitterConfig, Playout};
use switchboard::media::{CodecKind, Frame, FRAME_SAMPLES, SAMPLE_RATE};

/// A frame of speech-like sound: two tones with a slow vibrato.
fn voice_frame(index: usize) -> Frame {
    let mut frame = [0i16; FRAME_SAMPLES];
    for (i, s) in frame.iter_mut().enumerate() {
        let t = (index * FRAME_SAMPLES + i) as f32 / SAMPLE_RATE as f32;
        let f = 220.0 + 30.0 * (TAU * 3.0 * t).sin();
        let x = 0.3 * (TAU * f * t).sin() + 0.15 * (TAU * 2.7 * f * t).sin();
        *s = (x * f32::from(i16::MAX)) as i16;
    }
    frame
}

fn codecs(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..50).map(voice_frame).collect();
    for kind in [CodecKind::Opus, CodecKind::Pcmu] {
        let name = format!("{kind:?}").to_lowercase();
        let mut codec = Codec::new(kind, &OpusSettings::default()).expect("codec");
        let mut payload = [0u8; 1500];
        let mut i = 0;
        c.bench_function(&format!("{name}/encode 20 ms"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                black_box(codec.encode(&frames[i], &mut payload).expect("encode"))
            })
        });
        let encoded: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| {
                let n = codec.encode(f, &mut payload).expect("encode");
                payload[..n].to_vec()
            })
            .collect();
        let mut out = [0i16; FRAME_SAMPLES];
        c.bench_function(&format!("{name}/decode 20 ms"), |b| {
            b.iter(|| {
                i = (i + 1) % encoded.len();
                codec.decode(&encoded[i], &mut out).expect("decode");
                black_box(out[0])
            })
        });
        c.bench_function(&format!("{name}/conceal 20 ms"), |b| {
            b.iter(|| {
                i = (i + 1) % encoded.len();
                codec
                    .conceal(Some(&encoded[(i + 1) % encoded.len()]), &mut out)
                    .expect("conceal");
                black_box(out[0])
            })
        });
    }
}

#[allow(clippy::disallowed_methods)] // a benchmark's base instant; the buffer is given times
fn epoch() -> Instant {
    Instant::now()
}

fn jitter(c: &mut Criterion) {
    let mut buffer = JitterBuffer::new(48_000, 960, JitterConfig::default());
    let payload = [0x5au8; 80];
    let start = epoch();
    let mut n: u32 = 0;
    c.bench_function("jitter/push + pop 20 ms", |b| {
        b.iter(|| {
            let now = start + Duration::from_millis(20 * u64::from(n));
            buffer.push(now, n as u16, n.wrapping_mul(960), 0x1234, &payload);
            let played = matches!(buffer.pop(now), Playout::Packet(_));
            n = n.wrapping_add(1);
            black_box(played)
        })
    });
}

criterion_group!(benches, codecs, jitter);
criterion_main!(benches);
