//! Cost of the local conference's mix-minus for one 20 ms frame (960 samples at 48 kHz):
//! 3 and 6 parties, each sent the operator and the others, the operator hearing everyone.
//!
//! The media thread runs it once per frame on top of each member's decode and encode
//! (`frame_cost`); it must stay a small fraction of the 20 ms. `cargo bench --bench mixer`.

use std::f32::consts::TAU;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use switchboard::media::mixer::Mixer;
use switchboard::media::{Frame, FRAME_SAMPLES, SAMPLE_RATE};

/// A frame of a tone at `hz`, loud enough that sums clip now and then.
fn tone(hz: f32) -> Frame {
    let mut frame = [0i16; FRAME_SAMPLES];
    for (i, s) in frame.iter_mut().enumerate() {
        let t = i as f32 / SAMPLE_RATE as f32;
        *s = (0.5 * (TAU * hz * t).sin() * f32::from(i16::MAX)) as i16;
    }
    frame
}

fn mix_minus(c: &mut Criterion) {
    let mic = tone(1000.0);
    for parties in [3usize, 6] {
        let inputs: Vec<Frame> = (0..parties)
            .map(|k| tone(300.0 + 100.0 * k as f32))
            .collect();
        let mut sends = vec![[0i16; FRAME_SAMPLES]; parties];
        let mut operator = [0i16; FRAME_SAMPLES];
        let mut mixer = Mixer::new();
        c.bench_function(
            &format!("mix-minus/{parties} parties, one 20 ms frame"),
            |b| {
                b.iter(|| {
                    mixer.mix_minus(
                        black_box(&mic),
                        black_box(&inputs),
                        &mut sends,
                        &mut operator,
                    );
                    black_box(operator[0])
                })
            },
        );
    }
}

criterion_group!(benches, mix_minus);
criterion_main!(benches);
