//! Call-progress tones the relay plays to the caller while the hunt rings phones: the
//! Chinese ringback (回铃音) and, for later use, the busy tone (忙音).
//!
//! Chinese network tones (YD/T 1084 and the national numbering plan's signalling
//! tones) are all 450 Hz and differ only in cadence: ringback 1 s on, 4 s off; busy
//! 0.35 s on, 0.35 s off; dial tone continuous. So one generator with a [`Cadence`]
//! serves them all.
//!
//! 450 Hz at 8 kHz repeats exactly every 160 samples (9 cycles in 20 ms), so the
//! oscillator is a 160-sample table computed at compile time and an index: frames are
//! phase-continuous, deterministic on every platform, and cost a copy. Each burst
//! restarts at phase zero, where the sine is zero, and the cadences used here end their
//! bursts on a multiple of 80 samples (half a table), also a zero: no clicks.
//!
//! The level is −10 dBm0: a peak of [`TONE_PEAK`] = 7180. A 0 dBm0 sine has a peak
//! 3.17 dB (µ-law) or 3.14 dB (A-law) below the codec's full-scale sine (G.711
//! Table 1/2, about 32,636 in 16-bit terms), i.e. about 22,710; 10 dB less is 7,180.

use crate::g711::Law;

/// Samples per second of narrowband telephony.
pub const SAMPLE_RATE: u32 = 8000;

/// Samples in one 20 ms RTP frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

/// Frequency of every Chinese call-progress tone.
pub const TONE_FREQUENCY_HZ: u32 = 450;

/// Peak amplitude of the tones, −10 dBm0 (see the module documentation).
pub const TONE_PEAK: i16 = 7180;

/// On/off rhythm of a tone, in samples at 8 kHz.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cadence {
    /// Length of each burst of tone.
    pub on_samples: u32,
    /// Length of the silence after each burst; 0 for a continuous tone.
    pub off_samples: u32,
}

impl Cadence {
    /// Ringback (回铃音): 1 s on, 4 s off.
    pub const RINGBACK: Cadence = Cadence::from_millis(1000, 4000);
    /// Busy (忙音): 0.35 s on, 0.35 s off.
    pub const BUSY: Cadence = Cadence::from_millis(350, 350);
    /// Dial tone (拨号音): continuous.
    pub const CONTINUOUS: Cadence = Cadence::from_millis(1000, 0);

    /// A cadence from durations in milliseconds (saturating past about 6 days).
    pub const fn from_millis(on_ms: u32, off_ms: u32) -> Cadence {
        let per_ms = SAMPLE_RATE / 1000;
        Cadence {
            on_samples: on_ms.saturating_mul(per_ms),
            off_samples: off_ms.saturating_mul(per_ms),
        }
    }

    fn period(self) -> u32 {
        self.on_samples.saturating_add(self.off_samples)
    }
}

/// One period of the 450 Hz tone at 8 kHz: nine cycles in 160 samples.
static TONE_TABLE: [i16; FRAME_SAMPLES] = {
    let mut table = [0i16; FRAME_SAMPLES];
    let mut index = 0;
    while index < FRAME_SAMPLES {
        // sin(2π·f·n/8000) = sin(2π·(9n mod 160)/160), reduced exactly in integers.
        let cycles_per_table = TONE_FREQUENCY_HZ as usize * FRAME_SAMPLES / SAMPLE_RATE as usize;
        let phase = (cycles_per_table * index) % FRAME_SAMPLES;
        let angle = 2.0 * std::f64::consts::PI * phase as f64 / FRAME_SAMPLES as f64;
        let value = TONE_PEAK as f64 * const_sin(angle);
        table[index] = if value >= 0.0 {
            (value + 0.5) as i16
        } else {
            (value - 0.5) as i16
        };
        index += 1;
    }
    table
};

/// sin(x) for x in [0, 2π), by a Taylor series after folding x into [−π/2, π/2] (the
/// standard library's `sin` cannot run at compile time). Error below 1e-12.
const fn const_sin(x: f64) -> f64 {
    use std::f64::consts::PI;
    let reduced = if x < PI / 2.0 {
        x
    } else if x < 3.0 * PI / 2.0 {
        PI - x
    } else {
        x - 2.0 * PI
    };
    let squared = reduced * reduced;
    let mut term = reduced;
    let mut sum = reduced;
    let mut n = 1.0;
    while n < 40.0 {
        term = -term * squared / ((n + 1.0) * (n + 2.0));
        sum += term;
        n += 2.0;
    }
    sum
}

/// A 450 Hz tone with a cadence, produced 20 ms at a time.
///
/// Starts at the beginning of a burst. Deterministic and allocation-free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tone {
    cadence: Cadence,
    /// Samples since the start of the current on/off period.
    position: u32,
}

/// The ringback generator; see [`Tone::ringback`].
pub type RingbackTone = Tone;

impl Tone {
    /// A tone with any cadence. A cadence with no on time plays silence.
    pub fn new(cadence: Cadence) -> Tone {
        Tone {
            cadence,
            position: 0,
        }
    }

    /// The Chinese ringback tone: 450 Hz, 1 s on, 4 s off.
    pub fn ringback() -> Tone {
        Tone::new(Cadence::RINGBACK)
    }

    /// The Chinese busy tone: 450 Hz, 0.35 s on, 0.35 s off.
    pub fn busy() -> Tone {
        Tone::new(Cadence::BUSY)
    }

    /// This tone's cadence.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// Starts again at the beginning of a burst.
    pub fn reset(&mut self) {
        self.position = 0;
    }

    /// The next 20 ms of linear samples.
    pub fn next_frame(&mut self) -> [i16; FRAME_SAMPLES] {
        let mut frame = [0i16; FRAME_SAMPLES];
        self.fill(&mut frame);
        frame
    }

    /// The next 20 ms encoded for a G.711 payload.
    pub fn next_frame_encoded(&mut self, law: Law) -> [u8; FRAME_SAMPLES] {
        let samples = self.next_frame();
        let mut frame = [0u8; FRAME_SAMPLES];
        for (byte, sample) in frame.iter_mut().zip(samples) {
            *byte = law.encode(sample);
        }
        frame
    }

    /// Fills `samples` with the next samples of the tone (any length).
    pub fn fill(&mut self, samples: &mut [i16]) {
        let period = self.cadence.period();
        for sample in samples {
            *sample = if self.position < self.cadence.on_samples {
                TONE_TABLE[self.position as usize % FRAME_SAMPLES]
            } else {
                0
            };
            self.position += 1;
            if self.position >= period {
                self.position = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_a_450_hz_sine() {
        for (index, &sample) in TONE_TABLE.iter().enumerate() {
            let expected = f64::from(TONE_PEAK)
                * (2.0 * std::f64::consts::PI * 450.0 * index as f64 / 8000.0).sin();
            assert!(
                (f64::from(sample) - expected).abs() <= 0.5 + 1e-6,
                "{index}: {sample} vs {expected}"
            );
        }
        assert_eq!(TONE_TABLE[0], 0);
        assert_eq!(TONE_TABLE[80], 0);
        assert_eq!(*TONE_TABLE.iter().max().unwrap(), TONE_PEAK);
        assert_eq!(*TONE_TABLE.iter().min().unwrap(), -TONE_PEAK);
    }

    #[test]
    fn ringback_cadence() {
        let mut tone = Tone::ringback();
        let samples: Vec<i16> = (0..500).flat_map(|_| tone.next_frame()).collect();
        // Two full 5 s periods: 8000 samples of tone, then 32,000 of exact silence.
        for period in samples.chunks(40_000) {
            assert_eq!(period.len(), 40_000);
            assert!(
                period[..8000]
                    .iter()
                    .enumerate()
                    .all(|(n, &sample)| sample == TONE_TABLE[n % FRAME_SAMPLES])
            );
            assert!(period[8000..].iter().all(|&sample| sample == 0));
            let loud = period[..8000]
                .iter()
                .filter(|sample| sample.abs() > 1000)
                .count();
            assert!(loud > 7000, "{loud}");
        }
        assert!(
            samples[..40_000] == samples[40_000..],
            "the 5 s period repeats"
        );
    }

    #[test]
    fn on_part_has_900_zero_crossings_per_second() {
        let mut tone = Tone::ringback();
        let samples: Vec<i16> = (0..50).flat_map(|_| tone.next_frame()).collect();
        let crossings = zero_crossings(&samples);
        assert!((895..=905).contains(&crossings), "{crossings}");
    }

    #[test]
    fn level_is_minus_10_dbm0() {
        let mut tone = Tone::ringback();
        let samples: Vec<i16> = (0..50).flat_map(|_| tone.next_frame()).collect();
        let rms = (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
            / samples.len() as f64)
            .sqrt();
        // 0 dBm0 is a sine of RMS 22,710 / √2; −10 dB within 0.1 dB.
        let level = 20.0 * (rms / (22_710.0 / 2f64.sqrt())).log10();
        assert!((level + 10.0).abs() < 0.1, "{level}");
    }

    #[test]
    fn frames_are_phase_continuous() {
        let mut tone = Tone::ringback();
        let mut by_frames = Vec::new();
        for _ in 0..60 {
            by_frames.extend(tone.next_frame());
        }
        let mut odd_chunks = Tone::ringback();
        let mut by_odd = vec![0i16; by_frames.len()];
        for chunk in by_odd.chunks_mut(37) {
            odd_chunks.fill(chunk);
        }
        assert!(by_frames == by_odd, "frame size does not change the signal");
        // Consecutive samples never jump more than a 450 Hz sine can in 1/8000 s.
        let max_step = by_frames
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(max_step <= 2540, "{max_step}");
    }

    #[test]
    fn busy_cadence_switches_mid_frame() {
        let mut tone = Tone::busy();
        let samples: Vec<i16> = (0..70).flat_map(|_| tone.next_frame()).collect();
        assert!(samples[2800..5600].iter().all(|&sample| sample == 0));
        assert!(
            samples[..5600] == samples[5600..],
            "the 0.7 s period repeats"
        );
        // 0.35 s of 450 Hz: 157.5 cycles.
        let crossings = zero_crossings(&samples[..2800]);
        assert!((313..=317).contains(&crossings), "{crossings}");
    }

    #[test]
    fn continuous_and_silent_cadences() {
        let mut dial = Tone::new(Cadence::CONTINUOUS);
        let samples: Vec<i16> = (0..100).flat_map(|_| dial.next_frame()).collect();
        assert!(samples[..8000] == samples[8000..], "no gaps");
        assert_eq!(Cadence::from_millis(u32::MAX, 1).on_samples, u32::MAX);
        let mut silent = Tone::new(Cadence {
            on_samples: 0,
            off_samples: 0,
        });
        assert_eq!(silent.next_frame(), [0; FRAME_SAMPLES]);
    }

    #[test]
    fn reset_and_encoding() {
        let mut tone = Tone::ringback();
        let first = tone.next_frame();
        tone.next_frame();
        tone.reset();
        assert_eq!(tone.next_frame(), first);
        tone.reset();
        let encoded = tone.next_frame_encoded(Law::Alaw);
        assert_eq!(encoded, first.map(|sample| Law::Alaw.encode(sample)));
        assert_eq!(tone.cadence(), Cadence::RINGBACK);
    }

    fn zero_crossings(samples: &[i16]) -> usize {
        let mut crossings = 0;
        let mut last_sign = 0;
        for &sample in samples {
            let sign = sample.signum();
            if sign != 0 {
                if last_sign != 0 && sign != last_sign {
                    crossings += 1;
                }
                last_sign = sign;
            }
        }
        crossings
    }
}
