//! Prompts (an enterprise's ringback WAV, voice-menu announcements) ready to send: the
//! audio is encoded once in both laws and cut in 20 ms frames when the config is
//! loaded, so playing it to a caller is a slice lookup per packet whatever the caller's
//! codec, and thousands of concurrent calls share one copy.

use std::sync::Arc;
use std::time::Duration;

use crate::g711::Law;
use crate::tone::FRAME_SAMPLES;
use crate::wav::Audio;

/// 8 kHz audio encoded in A-law and µ-law, in 20 ms frames. Cloning is cheap (the
/// frames are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    frames: Arc<EncodedFrames>,
}

#[derive(Debug, PartialEq, Eq)]
struct EncodedFrames {
    /// `frame_count × FRAME_SAMPLES` bytes each; the last frame padded with silence.
    alaw: Box<[u8]>,
    ulaw: Box<[u8]>,
    frame_count: usize,
}

impl Prompt {
    /// Encodes 8 kHz mono `samples`. The last frame is completed with silence in each
    /// law; no samples, no frames.
    pub fn new(samples: &[i16]) -> Prompt {
        let frame_count = samples.len().div_ceil(FRAME_SAMPLES);
        let encode = |law: Law| -> Box<[u8]> {
            let mut bytes = vec![law.silence(); frame_count * FRAME_SAMPLES];
            for (byte, &sample) in bytes.iter_mut().zip(samples) {
                *byte = law.encode(sample);
            }
            bytes.into_boxed_slice()
        };
        Prompt {
            frames: Arc::new(EncodedFrames {
                alaw: encode(Law::Alaw),
                ulaw: encode(Law::Ulaw),
                frame_count,
            }),
        }
    }

    /// Encodes audio read by [`crate::read_wav`].
    pub fn from_audio(audio: &Audio) -> Prompt {
        Prompt::new(&audio.samples)
    }

    /// The `index`th 20 ms frame (160 bytes) in `law`, or `None` past the end.
    pub fn frame(&self, law: Law, index: usize) -> Option<&[u8]> {
        if index >= self.frames.frame_count {
            return None;
        }
        let bytes = match law {
            Law::Alaw => &self.frames.alaw,
            Law::Ulaw => &self.frames.ulaw,
        };
        bytes.get(index * FRAME_SAMPLES..(index + 1) * FRAME_SAMPLES)
    }

    /// Number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.frames.frame_count
    }

    /// Whether the prompt has no audio.
    pub fn is_empty(&self) -> bool {
        self.frames.frame_count == 0
    }

    /// Playing time: the number of frames × 20 ms.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(20 * self.frames.frame_count as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g711::{ALAW_SILENCE, ULAW_SILENCE, alaw_encode, ulaw_encode};

    #[test]
    fn cuts_and_pads_frames() {
        let samples: Vec<i16> = (0..400).map(|n| (n * 50) as i16).collect();
        let prompt = Prompt::new(&samples);
        assert_eq!(prompt.frames(), 3);
        assert_eq!(prompt.duration(), Duration::from_millis(60));
        assert!(!prompt.is_empty());
        for law in Law::ALL {
            for index in 0..3 {
                assert_eq!(prompt.frame(law, index).unwrap().len(), FRAME_SAMPLES);
            }
            assert_eq!(prompt.frame(law, 3), None);
        }
        let last_ulaw = prompt.frame(Law::Ulaw, 2).unwrap();
        assert_eq!(last_ulaw[0], ulaw_encode(320 * 50));
        assert_eq!(last_ulaw[79], ulaw_encode(399 * 50));
        assert!(last_ulaw[80..].iter().all(|&byte| byte == ULAW_SILENCE));
        let last_alaw = prompt.frame(Law::Alaw, 2).unwrap();
        assert_eq!(last_alaw[79], alaw_encode(399 * 50));
        assert!(last_alaw[80..].iter().all(|&byte| byte == ALAW_SILENCE));
        assert_eq!(
            prompt.frame(Law::Alaw, 1).unwrap()[5],
            alaw_encode(165 * 50)
        );
    }

    #[test]
    fn exact_multiple_has_no_padding_frame() {
        let prompt = Prompt::new(&[1000; 320]);
        assert_eq!(prompt.frames(), 2);
        assert!(
            prompt
                .frame(Law::Ulaw, 1)
                .unwrap()
                .iter()
                .all(|&byte| byte == ulaw_encode(1000))
        );
    }

    #[test]
    fn empty_prompt() {
        let prompt = Prompt::from_audio(&Audio::default());
        assert!(prompt.is_empty());
        assert_eq!(prompt.frames(), 0);
        assert_eq!(prompt.duration(), Duration::ZERO);
        assert_eq!(prompt.frame(Law::Alaw, 0), None);
    }

    #[test]
    fn clones_share_frames() {
        let prompt = Prompt::new(&[5; 160]);
        let copy = prompt.clone();
        assert!(std::ptr::eq(
            prompt.frame(Law::Alaw, 0).unwrap(),
            copy.frame(Law::Alaw, 0).unwrap()
        ));
        assert_eq!(prompt, copy);
    }
}
