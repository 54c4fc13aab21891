//! ITU-T G.722 at 64 kbit/s (mode 1): 16 kHz linear PCM ⇄ one byte per two samples.
//!
//! Owns the sub-band ADPCM encoder and decoder state only; the 48 kHz ⇄ 16 kHz conversion
//! and concealment belong to `codec.rs`. It must not allocate, log or panic on any byte.
//!
//! ```text
//!  encode: x[n] @16k ─ transmit QMF ─┬─ low band  (0–4 kHz)  ADPCM, 6 bits ─┐
//!                                    └─ high band (4–8 kHz)  ADPCM, 2 bits ─┴─► byte = H<<6 | L
//!  decode: byte ─┬─ low 6 bits  ─► ADPCM ─┐
//!                └─ high 2 bits ─► ADPCM ─┴─ receive QMF ─► two samples @16k
//! ```
//!
//! A translation of the public-domain G.722 of SpanDSP (Steve Underwood, after the CMU
//! codec of Chengxiang Lu and Alex Hauptmann) by way of the MIT-licensed `ezk-g722` crate's
//! `libg722`, cut down to mode 1 and to caller-owned buffers: that crate's only entry points
//! return a fresh `Vec` per call, which the media thread may not do. Bit-exact with it (and so
//! with SpanDSP, which baresip's `g722` module uses).

/// The QMF's 24-tap filter, as 12 coefficients used mirrored.
const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
/// Log-scale factor adaptation of the low band.
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
/// Low-band 4-bit code → WL index.
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
/// Inverse log table of the scale factor.
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
/// Low-band inverse quantiser, 4 bits (used for adaptation).
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
/// Low-band inverse quantiser, 6 bits (the reconstructed signal at 64 kbit/s).
const QM6: [i32; 64] = [
    -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192, -10232,
    -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576, -3168, -2776,
    -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704, 14984, 13512, 12280,
    11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944, 4464, 4008, 3576, 3168, 2776,
    2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
];
/// High-band inverse quantiser, 2 bits.
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
/// Log-scale factor adaptation of the high band.
const WH: [i32; 3] = [0, -214, 798];
/// High-band code → WH index.
const RH2: [i32; 4] = [2, 1, 2, 1];
/// Low-band quantiser decision levels.
const Q6: [i32; 32] = [
    0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858, 940,
    1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
];
/// Low-band codes of negative differences, by decision interval.
const ILN: [i32; 32] = [
    0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
    10, 9, 8, 7, 6, 5, 4, 0,
];
/// Low-band codes of positive differences, by decision interval.
const ILP: [i32; 32] = [
    0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
    38, 37, 36, 35, 34, 33, 32, 0,
];
/// High-band codes of negative / positive differences.
const IHN: [i32; 3] = [0, 1, 0];
const IHP: [i32; 3] = [0, 3, 2];

fn saturate(amp: i32) -> i32 {
    amp.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The adaptive predictor of one sub-band (G.722 blocks 3 and 4).
#[derive(Default, Clone)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    /// Block 3L/3H: log-scale factor adaptation (`wl` from WL or WH) and SCALEL/SCALEH.
    fn scale(&mut self, wl: i32, limit: i32, shift: i32) {
        self.nb = (((self.nb * 127) >> 7) + wl).clamp(0, limit);
        let wd1 = (self.nb >> 6) & 31;
        let wd2 = shift - (self.nb >> 11);
        let wd3 = if wd2 < 0 {
            ILB[wd1 as usize] << -wd2
        } else {
            ILB[wd1 as usize] >> wd2
        };
        self.det = wd3 << 2;
    }

    /// Block 4: reconstruction, pole and zero predictor update, prediction.
    fn update(&mut self, d: i32) {
        // RECONS, PARREC
        self.d[0] = d;
        self.r[0] = saturate(self.s + d);
        self.p[0] = saturate(self.sz + d);
        // UPPOL2
        for i in 0..3 {
            self.sg[i] = self.p[i] >> 15;
        }
        let wd1 = saturate(self.a[1] << 2);
        let wd2 = if self.sg[0] == self.sg[1] { -wd1 } else { wd1 };
        let wd2 = wd2.min(32767);
        let mut wd3 = (wd2 >> 7) + if self.sg[0] == self.sg[2] { 128 } else { -128 };
        wd3 += (self.a[2] * 32512) >> 15;
        self.ap[2] = wd3.clamp(-12288, 12288);
        // UPPOL1
        self.sg[0] = self.p[0] >> 15;
        self.sg[1] = self.p[1] >> 15;
        let wd1 = if self.sg[0] == self.sg[1] { 192 } else { -192 };
        let wd2 = (self.a[1] * 32640) >> 15;
        self.ap[1] = saturate(wd1 + wd2);
        let wd3 = saturate(15360 - self.ap[2]);
        self.ap[1] = self.ap[1].clamp(-wd3, wd3);
        // UPZERO
        let wd1 = if d == 0 { 0 } else { 128 };
        self.sg[0] = d >> 15;
        for i in 1..7 {
            self.sg[i] = self.d[i] >> 15;
            let wd2 = if self.sg[i] == self.sg[0] { wd1 } else { -wd1 };
            let wd3 = (self.b[i] * 32640) >> 15;
            self.bp[i] = saturate(wd2 + wd3);
        }
        // DELAYA
        for i in (1..7).rev() {
            self.d[i] = self.d[i - 1];
            self.b[i] = self.bp[i];
        }
        for i in (1..3).rev() {
            self.r[i] = self.r[i - 1];
            self.p[i] = self.p[i - 1];
            self.a[i] = self.ap[i];
        }
        // FILTEP
        let wd1 = (self.a[1] * saturate(self.r[1] + self.r[1])) >> 15;
        let wd2 = (self.a[2] * saturate(self.r[2] + self.r[2])) >> 15;
        self.sp = saturate(wd1 + wd2);
        // FILTEZ
        let mut sz = 0;
        for i in (1..7).rev() {
            sz += (self.b[i] * saturate(self.d[i] + self.d[i])) >> 15;
        }
        self.sz = saturate(sz);
        // PREDIC
        self.s = saturate(self.sp + self.sz);
    }
}

/// The low band's ADPCM step shared by encoder and decoder: the 4-bit code `ril` adapts the
/// scale factor and the predictor.
fn low_band_adapt(band: &mut Band, ril: usize) {
    let dlow = (band.det * QM4[ril]) >> 15;
    band.scale(WL[RL42[ril] as usize], 18432, 8);
    band.update(dlow);
}

/// The high band's ADPCM step shared by encoder and decoder.
fn high_band_adapt(band: &mut Band, ihigh: usize) -> i32 {
    let dhigh = (band.det * QM2[ihigh]) >> 15;
    band.scale(WH[RH2[ihigh] as usize], 22528, 10);
    band.update(dhigh);
    dhigh
}

/// A G.722 encoder at 64 kbit/s.
#[derive(Default, Clone)]
pub struct Encoder {
    /// Signal history of the transmit QMF.
    x: [i32; 24],
    band: [Band; 2],
}

impl Encoder {
    /// A new encoder in its reset state.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Encodes pairs of 16 kHz samples into one byte each: `out` gets `input.len() / 2`
    /// bytes (an odd last sample is ignored, so give an even count). Returns the bytes written.
    pub fn encode(&mut self, input: &[i16], out: &mut [u8]) -> usize {
        let mut written = 0;
        for (pair, byte) in input.chunks_exact(2).zip(out.iter_mut()) {
            // Transmit QMF: split into the two sub-bands, keeping every other output.
            self.x.copy_within(2.., 0);
            self.x[22] = i32::from(pair[0]);
            self.x[23] = i32::from(pair[1]);
            let (mut sumeven, mut sumodd) = (0, 0);
            for i in 0..12 {
                sumodd += self.x[2 * i] * QMF_COEFFS[i];
                sumeven += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
            }
            let xlow = (sumeven + sumodd) >> 14;
            let xhigh = (sumeven - sumodd) >> 14;

            // Low band: SUBTRA, QUANTL.
            let low = &mut self.band[0];
            let el = saturate(xlow - low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let mut i = 1;
            while i < 30 && wd >= (Q6[i] * low.det) >> 12 {
                i += 1;
            }
            let ilow = if el < 0 { ILN[i] } else { ILP[i] };
            low_band_adapt(low, (ilow >> 2) as usize);

            // High band: SUBTRA, QUANTH.
            let high = &mut self.band[1];
            let eh = saturate(xhigh - high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            high_band_adapt(high, ihigh as usize);

            *byte = ((ihigh << 6) | ilow) as u8;
            written += 1;
        }
        written
    }
}

/// A G.722 decoder at 64 kbit/s.
#[derive(Default, Clone)]
pub struct Decoder {
    /// Signal history of the receive QMF.
    x: [i32; 24],
    band: [Band; 2],
}

impl Decoder {
    /// A new decoder in its reset state.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes each byte into two 16 kHz samples: `out` gets `2 * input.len()` samples (as
    /// many as fit). Returns the samples written. Every byte is valid.
    pub fn decode(&mut self, input: &[u8], out: &mut [i16]) -> usize {
        let mut written = 0;
        for (&code, pair) in input.iter().zip(out.chunks_exact_mut(2)) {
            let code = i32::from(code);
            let ilow6 = (code & 0x3F) as usize;
            let ihigh = ((code >> 6) & 0x03) as usize;

            // Low band: INVQBL, RECONS, LIMIT, then adaptation on the top four bits.
            let low = &mut self.band[0];
            let rlow = (low.s + ((low.det * QM6[ilow6]) >> 15)).clamp(-16384, 16383);
            low_band_adapt(low, ilow6 >> 2);

            // High band: INVQAH, RECONS, LIMIT, adaptation.
            let high = &mut self.band[1];
            let s = high.s;
            let dhigh = high_band_adapt(high, ihigh);
            let rhigh = (dhigh + s).clamp(-16384, 16383);

            // Receive QMF: merge the two sub-bands into two output samples.
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut xout1, mut xout2) = (0, 0);
            for i in 0..12 {
                xout2 += self.x[2 * i] * QMF_COEFFS[i];
                xout1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
            }
            pair[0] = saturate(xout1 >> 11) as i16;
            pair[1] = saturate(xout2 >> 11) as i16;
            written += 2;
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s at 16 kHz: a chirp from 100 Hz to 7.5 kHz plus xorshift noise.
    fn chirp() -> Vec<i16> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut phase = 0.0f64;
        (0..16_000)
            .map(|n| {
                let f = 100.0 + 7_400.0 * f64::from(n) / 16_000.0;
                phase += f / 16_000.0;
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let noise = ((state >> 40) as i64 % 2001 - 1000) as f64;
                (12_000.0 * (2.0 * std::f64::consts::PI * phase).sin() + noise) as i16
            })
            .collect()
    }

    fn fnv1a(data: impl Iterator<Item = u8>) -> u64 {
        data.fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn bit_exact_with_the_reference_translation() {
        // Fingerprints of ezk-g722 0.1.2's libg722 (mode 1, unpacked) on the same input,
        // 20 ms at a time.
        let input = chirp();
        let mut encoder = Encoder::new();
        let mut bytes = Vec::new();
        let mut frame = [0u8; 160];
        for chunk in input.chunks(320) {
            let n = encoder.encode(chunk, &mut frame);
            bytes.extend_from_slice(&frame[..n]);
        }
        assert_eq!(bytes.len(), 8_000);
        assert_eq!(
            bytes[..16],
            [160, 222, 53, 151, 49, 166, 32, 32, 160, 34, 169, 169, 42, 172, 43, 173]
        );
        assert_eq!(fnv1a(bytes.iter().copied()), 0xab4c_c03b_8020_d9b5);
        let mut decoder = Decoder::new();
        let mut pcm = Vec::new();
        let mut out = [0i16; 320];
        for chunk in bytes.chunks(160) {
            let n = decoder.decode(chunk, &mut out);
            pcm.extend_from_slice(&out[..n]);
        }
        assert_eq!(pcm.len(), 16_000);
        assert_eq!(
            fnv1a(pcm.iter().flat_map(|s| s.to_le_bytes())),
            0xe555_dc68_1754_deaf
        );
    }

    #[test]
    fn short_output_buffers_take_what_fits() {
        let mut encoder = Encoder::new();
        let mut out = [0u8; 3];
        assert_eq!(encoder.encode(&[0; 320], &mut out), 3);
        let mut decoder = Decoder::new();
        let mut pcm = [0i16; 5];
        assert_eq!(decoder.decode(&[0xFF; 10], &mut pcm), 4);
    }
}
