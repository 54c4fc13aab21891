//! Cost of one frame (10 ms) on the media thread, per direction and codec:
//!
//! - send path: encode the microphone frame and build its RTP packet;
//! - receive path: parse the RTP packet, pass it through the jitter buffer, decode it;
//! - a lost Opus frame rebuilt from the next packet's FEC;
//! - the microphone's clean-up: noise suppression, AGC, both.
//!
//! A frame must cost far less than its 10 ms for the media thread to keep up with every line
//! on a busy machine. `cargo bench --bench frame_cost`.

use std::f32::consts::TAU;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use switchboard::media::codec::{Codec, OpusSettings};
use switchboard::media::jitter::{JitterBuffer, JitterConfig, Playout};
use switchboard::media::rtp::{parse_rtp, RtpSender};
use switchboard::media::voice::{MicCleanup, VoiceSettings};
use switchboard::media::{CodecKind, Frame, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};

/// A frame of speech-like sound: two partials with a slow vibrato.
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

#[allow(clippy::disallowed_methods)] // a benchmark's base instant; the buffer is given times
fn epoch() -> Instant {
    Instant::now()
}

fn frame_paths(c: &mut Criterion) {
    let frames: Vec<Frame> = (0..50).map(voice_frame).collect();
    for (kind, pt) in [
        (CodecKind::Opus, 111u8),
        (CodecKind::G722, 9),
        (CodecKind::Pcmu, 0),
    ] {
        let name = format!("{kind:?}").to_lowercase();
        let spf = kind.samples_per_frame();

        // Send: microphone frame → encoded payload → RTP packet.
        let mut encoder = Codec::new(kind, &OpusSettings::default()).expect("codec");
        let mut sender = RtpSender::new(0x1234_5678, 1);
        let mut payload = [0u8; 1500];
        let mut packet = Vec::with_capacity(1500);
        let (mut i, mut ts) = (0usize, 0u32);
        c.bench_function(&format!("{name}/send: encode + packetize"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                ts = ts.wrapping_add(spf);
                let n = encoder.encode(&frames[i], &mut payload).expect("encode");
                sender.packet(pt, ts, false, &payload[..n], &mut packet);
                black_box(packet.len())
            })
        });

        // Receive: RTP packet → jitter buffer → decoded frame.
        let packets: Vec<Vec<u8>> = frames
            .iter()
            .enumerate()
            .map(|(k, f)| {
                let n = encoder.encode(f, &mut payload).expect("encode");
                let mut p = Vec::new();
                sender.packet(pt, spf * k as u32, false, &payload[..n], &mut p);
                p
            })
            .collect();
        let mut decoder = Codec::new(kind, &OpusSettings::default()).expect("codec");
        let mut jitter = JitterBuffer::new(kind.clock_rate(), spf, JitterConfig::default());
        let mut out = [0i16; FRAME_SAMPLES];
        let start = epoch();
        let mut n: u64 = 0;
        c.bench_function(&format!("{name}/receive: parse + jitter + decode"), |b| {
            b.iter(|| {
                let now = start + Duration::from_millis(u64::from(FRAME_MS) * n);
                // The stored packets loop; give each round its own timestamps and sequence.
                let k = (n % packets.len() as u64) as usize;
                let rtp = parse_rtp(&packets[k]).expect("parses");
                let ts = (n as u32).wrapping_mul(spf);
                jitter.push(now, n as u16, ts, rtp.ssrc, rtp.payload);
                match jitter.pop(now) {
                    Playout::Packet(p) => {
                        decoder.decode(p, &mut out).expect("decode");
                    }
                    Playout::Missed { next } => decoder.conceal(next, &mut out).expect("conceal"),
                    Playout::Filling => out.fill(0),
                }
                n += 1;
                black_box(out[0])
            })
        });
    }

    // A lost Opus frame rebuilt from the next packet's in-band FEC.
    let mut encoder = Codec::new(CodecKind::Opus, &OpusSettings::default()).expect("codec");
    let mut payload = [0u8; 1500];
    let encoded: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            let n = encoder.encode(f, &mut payload).expect("encode");
            payload[..n].to_vec()
        })
        .collect();
    let mut decoder = Codec::new(CodecKind::Opus, &OpusSettings::default()).expect("codec");
    let mut out = [0i16; FRAME_SAMPLES];
    let mut i = 0;
    c.bench_function("opus/conceal a lost frame (FEC)", |b| {
        b.iter(|| {
            i = (i + 1) % encoded.len();
            decoder
                .conceal(Some(&encoded[(i + 1) % encoded.len()]), &mut out)
                .expect("conceal");
            black_box(out[0])
        })
    });

    // The microphone's clean-up (noise suppression, AGC) of one frame.
    for (name, noise_suppression, agc) in [
        ("noise suppression", true, false),
        ("agc", false, true),
        ("noise suppression + agc", true, true),
    ] {
        let mut cleanup = MicCleanup::new(VoiceSettings {
            noise_suppression,
            agc,
        });
        let mut frame = frames[0];
        let mut i = 0;
        c.bench_function(&format!("mic/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % frames.len();
                frame.copy_from_slice(&frames[i]);
                cleanup.process(&mut frame);
                black_box(frame[0])
            })
        });
    }
}

criterion_group!(benches, frame_paths);
criterion_main!(benches);
