//! What the relay plays to the caller on its own: the ringback tone while phones
//! ring, the enterprise's prompts (its own ringback WAV, the voice menu), or
//! silence that keeps the caller's NAT binding and jitter buffer alive.
//!
//! The player runs on a grid of ticks one ptime apart from the moment it starts;
//! tick `k` carries the audio of samples `k × ptime` onward and the timestamp of the
//! grid point, so the stream's timestamps follow wall time. If the daemon wakes up
//! late and several ticks are due at once, only the latest is sent: the missed
//! frames are skipped, audio and timestamps alike, which the caller's jitter buffer
//! treats as ordinary packet loss. Sending the missed frames in a burst would
//! overflow jitter buffers sized for 20 ms spacing, and playing them late would let
//! the prompt drift further behind the clock with every hiccup.

use std::time::{Duration, Instant};

use sihai_media::{FRAME_SAMPLES, Law, Prompt, Tone};

/// The most samples in one originated packet: 120 ms at 8 kHz.
pub(crate) const MAX_PACKET_SAMPLES: usize = 960;

/// What to play to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The Chinese ringback tone (450 Hz, 1 s on, 4 s off), until told otherwise.
    Ringback,
    /// A prompt, once (then [`crate::MediaEvent::PlaybackFinished`], and nothing is
    /// sent until the next instruction) or looping when `repeat`.
    Prompt {
        /// The audio, pre-encoded in both laws.
        prompt: Prompt,
        /// Start again at the end instead of finishing.
        repeat: bool,
    },
    /// Silence, until told otherwise.
    Silence,
}

/// What the latest due tick asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Send the frame of tick `index`.
    Frame { index: u64 },
    /// A prompt played to its end (and does not repeat).
    Finished,
}

/// A source being played on a grid of ticks.
#[derive(Debug, Clone)]
pub(crate) struct Player {
    content: Content,
    started: Instant,
    /// The timestamp of tick 0.
    first_timestamp: u32,
    /// The first tick not yet sent.
    next_tick: u64,
}

#[derive(Debug, Clone)]
enum Content {
    Tone {
        tone: Tone,
        /// Samples the tone has produced so far.
        produced: u64,
    },
    Prompt {
        prompt: Prompt,
        repeat: bool,
    },
    Silence,
}

impl Player {
    pub(crate) fn new(source: Source, started: Instant, first_timestamp: u32) -> Player {
        let content = match source {
            Source::Ringback => Content::Tone {
                tone: Tone::ringback(),
                produced: 0,
            },
            Source::Prompt { prompt, repeat } => Content::Prompt { prompt, repeat },
            Source::Silence => Content::Silence,
        };
        Player {
            content,
            started,
            first_timestamp,
            next_tick: 0,
        }
    }

    /// When the next tick is due (`None` only after centuries of playing).
    pub(crate) fn deadline(&self, period: Duration) -> Option<Instant> {
        let offset = u64::try_from(period.as_nanos())
            .ok()?
            .checked_mul(self.next_tick)?;
        self.started.checked_add(Duration::from_nanos(offset))
    }

    /// The latest tick due at `now`, if one is due; the ticks before it are skipped.
    pub(crate) fn due(&mut self, now: Instant, period: Duration, samples: u32) -> Option<Tick> {
        if self.deadline(period).is_none_or(|deadline| now < deadline) {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.started).as_nanos();
        let latest = u64::try_from(elapsed / period.as_nanos().max(1)).unwrap_or(u64::MAX);
        let index = latest.max(self.next_tick);
        self.next_tick = index.saturating_add(1);
        let ended = match &self.content {
            Content::Prompt { prompt, repeat } => {
                prompt.is_empty()
                    || (!repeat
                        && index.saturating_mul(u64::from(samples)) >= prompt_samples(prompt))
            }
            Content::Tone { .. } | Content::Silence => false,
        };
        Some(if ended {
            Tick::Finished
        } else {
            Tick::Frame { index }
        })
    }

    /// The timestamp of tick `index`.
    pub(crate) fn timestamp(&self, index: u64, samples: u32) -> u32 {
        // Modulo 2^32, like every RTP timestamp.
        self.first_timestamp
            .wrapping_add((index as u32).wrapping_mul(samples))
    }

    /// Appends the payload of tick `index` (`samples` bytes of `law`) to `out`.
    pub(crate) fn append_frame(&mut self, index: u64, samples: u32, law: Law, out: &mut Vec<u8>) {
        let samples = (samples as usize).min(MAX_PACKET_SAMPLES);
        let start = index.saturating_mul(samples as u64);
        match &mut self.content {
            Content::Tone { tone, produced } => {
                skip_tone(tone, start.saturating_sub(*produced));
                let mut linear = [0i16; MAX_PACKET_SAMPLES];
                tone.fill(&mut linear[..samples]);
                out.extend(linear[..samples].iter().map(|&sample| law.encode(sample)));
                *produced = start.saturating_add(samples as u64);
            }
            Content::Prompt { prompt, repeat } => {
                append_prompt(prompt, *repeat, start, samples, law, out);
            }
            Content::Silence => out.resize(out.len() + samples, law.silence()),
        }
    }
}

fn prompt_samples(prompt: &Prompt) -> u64 {
    (prompt.frames() as u64).saturating_mul(FRAME_SAMPLES as u64)
}

/// Advances a tone by `count` samples without producing them; only the position in
/// the cadence matters, so whole periods are not generated.
fn skip_tone(tone: &mut Tone, count: u64) {
    let cadence = tone.cadence();
    let period = u64::from(cadence.on_samples) + u64::from(cadence.off_samples);
    let mut remaining = if period == 0 { 0 } else { count % period };
    let mut scratch = [0i16; MAX_PACKET_SAMPLES];
    while remaining > 0 {
        let chunk = remaining.min(MAX_PACKET_SAMPLES as u64) as usize;
        tone.fill(&mut scratch[..chunk]);
        remaining -= chunk as u64;
    }
}

/// Appends `count` bytes of `prompt` from sample `start` on, wrapping around when
/// `repeat` and padding with silence past the end otherwise.
fn append_prompt(
    prompt: &Prompt,
    repeat: bool,
    start: u64,
    count: usize,
    law: Law,
    out: &mut Vec<u8>,
) {
    let total = prompt_samples(prompt);
    let mut position = if repeat && total > 0 {
        start % total
    } else {
        start
    };
    let mut remaining = count;
    while remaining > 0 {
        if position >= total && repeat {
            position = 0;
        }
        let frame = usize::try_from(position / FRAME_SAMPLES as u64).unwrap_or(usize::MAX);
        let Some(bytes) = prompt.frame(law, frame) else {
            break;
        };
        let within = (position % FRAME_SAMPLES as u64) as usize;
        let taken = remaining.min(FRAME_SAMPLES - within);
        out.extend_from_slice(&bytes[within..within + taken]);
        remaining -= taken;
        position += taken as u64;
    }
    out.resize(out.len() + remaining, law.silence());
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTIME: Duration = Duration::from_millis(20);

    fn frame_of(player: &mut Player, index: u64, samples: u32, law: Law) -> Vec<u8> {
        let mut out = Vec::new();
        player.append_frame(index, samples, law, &mut out);
        out
    }

    #[test]
    fn ticks_on_a_grid_from_the_start() {
        let t0 = Instant::now();
        let mut player = Player::new(Source::Silence, t0, 1000);
        assert_eq!(player.deadline(PTIME), Some(t0));
        assert_eq!(player.due(t0, PTIME, 160), Some(Tick::Frame { index: 0 }));
        assert_eq!(player.due(t0, PTIME, 160), None);
        assert_eq!(player.deadline(PTIME), Some(t0 + PTIME));
        assert_eq!(player.due(t0 + Duration::from_millis(19), PTIME, 160), None);
        // A little late: the tick is still tick 1, and the next stays on the grid.
        assert_eq!(
            player.due(t0 + Duration::from_millis(25), PTIME, 160),
            Some(Tick::Frame { index: 1 })
        );
        assert_eq!(player.deadline(PTIME), Some(t0 + 2 * PTIME));
        assert_eq!(player.timestamp(1, 160), 1160);
        assert_eq!(player.timestamp(2, 160), 1320);
    }

    #[test]
    fn late_wakeup_sends_only_the_latest_tick() {
        let t0 = Instant::now();
        let mut player = Player::new(Source::Ringback, t0, u32::MAX - 100);
        assert_eq!(player.due(t0, PTIME, 160), Some(Tick::Frame { index: 0 }));
        assert_eq!(
            player.due(t0 + Duration::from_millis(75), PTIME, 160),
            Some(Tick::Frame { index: 3 })
        );
        assert_eq!(player.deadline(PTIME), Some(t0 + 4 * PTIME));
        // Timestamps wrap.
        assert_eq!(player.timestamp(3, 160), (u32::MAX - 100).wrapping_add(480));
    }

    #[test]
    fn clock_before_the_start_is_not_due() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut player = Player::new(Source::Silence, t0, 0);
        assert_eq!(player.due(t0 - Duration::from_millis(1), PTIME, 160), None);
    }

    #[test]
    fn ringback_skips_missed_frames_in_the_cadence() {
        let t0 = Instant::now();
        let mut continuous = Player::new(Source::Ringback, t0, 0);
        let mut skipping = Player::new(Source::Ringback, t0, 0);
        let all: Vec<Vec<u8>> = (0..300)
            .map(|index| frame_of(&mut continuous, index, 160, Law::Alaw))
            .collect();
        // The tone's on part is loud, its off part (from 1 s on) is silence.
        assert!(
            all[0]
                .iter()
                .any(|&byte| Law::Alaw.decode(byte).abs() > 5000)
        );
        assert!(all[60].iter().all(|&byte| byte == Law::Alaw.silence()));
        for index in [0, 3, 49, 50, 249, 250, 251, 299] {
            assert_eq!(
                frame_of(&mut skipping, index, 160, Law::Alaw),
                all[index as usize],
                "{index}"
            );
        }
    }

    #[test]
    fn ringback_skip_of_hours_is_cheap_and_exact() {
        let t0 = Instant::now();
        let mut player = Player::new(Source::Ringback, t0, 0);
        let mut reference = Player::new(Source::Ringback, t0, 0);
        // 40,000 samples per period: 250 ticks of 160.
        let far = 250 * 1_000_000 + 7;
        assert_eq!(
            frame_of(&mut player, far, 160, Law::Ulaw),
            frame_of(&mut reference, 7, 160, Law::Ulaw)
        );
    }

    #[test]
    fn prompt_plays_once_then_finishes() {
        let t0 = Instant::now();
        let samples: Vec<i16> = (0..400).map(|n| (n * 40) as i16).collect();
        let prompt = Prompt::new(&samples);
        let mut player = Player::new(
            Source::Prompt {
                prompt: prompt.clone(),
                repeat: false,
            },
            t0,
            0,
        );
        for index in 0..3u32 {
            let now = t0 + PTIME * index;
            assert_eq!(
                player.due(now, PTIME, 160),
                Some(Tick::Frame {
                    index: u64::from(index)
                })
            );
            assert_eq!(
                frame_of(&mut player, u64::from(index), 160, Law::Ulaw),
                prompt.frame(Law::Ulaw, index as usize).unwrap()
            );
        }
        assert_eq!(player.due(t0 + 3 * PTIME, PTIME, 160), Some(Tick::Finished));
    }

    #[test]
    fn repeating_prompt_wraps_mid_packet() {
        let samples: Vec<i16> = (0..160).map(|n| (n * 100) as i16).collect();
        let prompt = Prompt::new(&samples);
        let mut player = Player::new(
            Source::Prompt {
                prompt: prompt.clone(),
                repeat: true,
            },
            Instant::now(),
            0,
        );
        // 30 ms packets of a 20 ms prompt: packet 1 is the second half, then the first.
        let frame = prompt.frame(Law::Alaw, 0).unwrap();
        let second = frame_of(&mut player, 1, 240, Law::Alaw);
        let mut expected = frame[80..].to_vec();
        expected.extend_from_slice(frame);
        assert_eq!(second, expected);
        // Never finishes: an hour in, the due tick is still a frame.
        let t0 = Instant::now();
        let mut looping = Player::new(
            Source::Prompt {
                prompt,
                repeat: true,
            },
            t0,
            0,
        );
        let thirty_ms = Duration::from_millis(30);
        assert_eq!(
            looping.due(t0 + Duration::from_secs(3600), thirty_ms, 240),
            Some(Tick::Frame { index: 120_000 })
        );
    }

    #[test]
    fn partial_last_packet_is_padded_with_silence() {
        let prompt = Prompt::new(&[1000; 160]);
        let mut player = Player::new(
            Source::Prompt {
                prompt,
                repeat: false,
            },
            Instant::now(),
            0,
        );
        let frame = frame_of(&mut player, 0, 240, Law::Ulaw);
        assert_eq!(frame.len(), 240);
        assert!(
            frame[..160]
                .iter()
                .all(|&byte| byte == Law::Ulaw.encode(1000))
        );
        assert!(frame[160..].iter().all(|&byte| byte == Law::Ulaw.silence()));
    }

    #[test]
    fn empty_prompt_finishes_at_once_even_when_repeating() {
        let t0 = Instant::now();
        for repeat in [false, true] {
            let mut player = Player::new(
                Source::Prompt {
                    prompt: Prompt::new(&[]),
                    repeat,
                },
                t0,
                0,
            );
            assert_eq!(player.due(t0, PTIME, 160), Some(Tick::Finished));
        }
    }

    #[test]
    fn silence_in_either_law() {
        let mut player = Player::new(Source::Silence, Instant::now(), 0);
        for law in Law::ALL {
            let frame = frame_of(&mut player, 5, 80, law);
            assert_eq!(frame, vec![law.silence(); 80]);
        }
    }
}
