//! The recording tap: the bridged call's audio, both sides as linear samples side by
//! side, 20 ms at a time, for the daemon to write into a stereo WAV (caller left,
//! phone right).
//!
//! Packets from the two sides arrive independently, with jitter, and either side
//! may fall silent (a phone with voice activity detection sends nothing while its
//! user listens). So each side's decoded audio waits in a small queue, and every
//! 20 ms of wall time one frame takes up to 160 samples from each queue, filling
//! what a side did not provide with silence. Each sample is used once; a queue holds
//! at most [`MAX_QUEUED_SAMPLES`] (the oldest go first), so a side that sends faster
//! than real time cannot make the recording drift or grow memory.
//!
//! Samples are taken in arrival order; the tap is a recording, not a jitter buffer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use sihai_media::{FRAME_SAMPLES, Law};

use crate::config::Leg;

/// One recorded frame's span of wall time.
pub const RECORDING_FRAME: Duration = Duration::from_millis(20);

/// Samples a side may have waiting: four frames, 80 ms.
pub const MAX_QUEUED_SAMPLES: usize = 4 * FRAME_SAMPLES;

/// Frames waiting for the daemon: one second. Beyond it the oldest are dropped.
pub const MAX_QUEUED_FRAMES: usize = 50;

/// The most frames one late wake-up produces; a longer stall (a suspended machine) is
/// skipped, not replayed as minutes of silence in one go.
const MAX_CATCH_UP_FRAMES: u64 = 50;

/// 20 ms of the bridged call: what the caller said and what the phone said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedFrame {
    /// The caller's audio, decoded from its law.
    pub caller: [i16; FRAME_SAMPLES],
    /// The phone's audio, decoded from its law.
    pub phone: [i16; FRAME_SAMPLES],
}

/// The slots of 20 ms since the tap started running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotClock {
    started: Instant,
    /// The next slot to produce; slot `k` covers `[k, k + 1) × 20 ms`.
    next_slot: u64,
}

impl SlotClock {
    fn end_of(&self, slot: u64) -> Option<Instant> {
        let nanos = u64::try_from(RECORDING_FRAME.as_nanos())
            .ok()?
            .checked_mul(slot.checked_add(1)?)?;
        self.started.checked_add(Duration::from_nanos(nanos))
    }
}

/// The tap's state for one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    clock: Option<SlotClock>,
    caller: VecDeque<i16>,
    phone: VecDeque<i16>,
    frames: VecDeque<RecordedFrame>,
    /// Frames lost to a full queue or skipped after a stall.
    dropped_frames: u64,
}

impl Recorder {
    /// Starts (from `now`) or stops the tap. Stopping forgets queued samples;
    /// frames already produced stay for the daemon to collect.
    pub(crate) fn set_running(&mut self, running: bool, now: Instant) {
        match (running, self.clock.is_some()) {
            (true, false) => {
                // Allocated on first use: most calls are never recorded.
                self.caller.reserve(MAX_QUEUED_SAMPLES);
                self.phone.reserve(MAX_QUEUED_SAMPLES);
                self.frames.reserve(MAX_QUEUED_FRAMES);
                self.clock = Some(SlotClock {
                    started: now,
                    next_slot: 0,
                });
            }
            (false, true) => {
                self.clock = None;
                self.caller.clear();
                self.phone.clear();
            }
            _ => {}
        }
    }

    #[cfg(test)]
    fn is_running(&self) -> bool {
        self.clock.is_some()
    }

    /// Queues a side's audio payload, decoded, if the tap runs.
    pub(crate) fn push(&mut self, leg: Leg, law: Law, payload: &[u8]) {
        if self.clock.is_none() {
            return;
        }
        let queue = match leg {
            Leg::Caller => &mut self.caller,
            Leg::Phone => &mut self.phone,
        };
        // Only the newest samples of an oversized packet can ever be kept.
        let payload = &payload[payload.len().saturating_sub(MAX_QUEUED_SAMPLES)..];
        let overflow = (queue.len() + payload.len()).saturating_sub(MAX_QUEUED_SAMPLES);
        queue.drain(..overflow.min(queue.len()));
        queue.extend(payload.iter().map(|&byte| law.decode(byte)));
    }

    /// Forgets a side's queued audio (the phone was replaced).
    pub(crate) fn forget(&mut self, leg: Leg) {
        match leg {
            Leg::Caller => self.caller.clear(),
            Leg::Phone => self.phone.clear(),
        }
    }

    /// When the current slot ends, if the tap runs.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let clock = self.clock?;
        clock.end_of(clock.next_slot)
    }

    /// Produces the frames of every slot that has ended by `now`.
    pub(crate) fn tick(&mut self, now: Instant) {
        let Some(mut clock) = self.clock else {
            return;
        };
        let mut produced = 0;
        while clock.end_of(clock.next_slot).is_some_and(|end| end <= now) {
            if produced == MAX_CATCH_UP_FRAMES {
                let elapsed = now.saturating_duration_since(clock.started).as_nanos();
                let current =
                    u64::try_from(elapsed / RECORDING_FRAME.as_nanos()).unwrap_or(u64::MAX);
                // Slots `next_slot .. current` have ended and are skipped.
                self.dropped_frames = self
                    .dropped_frames
                    .saturating_add(current.saturating_sub(clock.next_slot));
                clock.next_slot = current.max(clock.next_slot);
                break;
            }
            let frame = RecordedFrame {
                caller: take_frame(&mut self.caller),
                phone: take_frame(&mut self.phone),
            };
            if self.frames.len() == MAX_QUEUED_FRAMES {
                self.frames.pop_front();
                self.dropped_frames = self.dropped_frames.saturating_add(1);
            }
            self.frames.push_back(frame);
            clock.next_slot = clock.next_slot.saturating_add(1);
            produced += 1;
        }
        self.clock = Some(clock);
    }

    pub(crate) fn pop(&mut self) -> Option<RecordedFrame> {
        self.frames.pop_front()
    }

    pub(crate) fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }
}

/// Up to 160 queued samples, then silence.
fn take_frame(queue: &mut VecDeque<i16>) -> [i16; FRAME_SAMPLES] {
    let mut frame = [0i16; FRAME_SAMPLES];
    let available = queue.len().min(FRAME_SAMPLES);
    for (slot, sample) in frame.iter_mut().zip(queue.drain(..available)) {
        *slot = sample;
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulaw(sample: i16) -> Vec<u8> {
        vec![Law::Ulaw.encode(sample); FRAME_SAMPLES]
    }

    #[test]
    fn idle_until_started() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.push(Leg::Caller, Law::Ulaw, &ulaw(1000));
        assert_eq!(recorder.deadline(), None);
        recorder.tick(t0 + Duration::from_secs(1));
        assert_eq!(recorder.pop(), None);
        recorder.set_running(true, t0);
        assert!(recorder.is_running());
        assert_eq!(recorder.deadline(), Some(t0 + RECORDING_FRAME));
        recorder.tick(t0 + RECORDING_FRAME);
        let frame = recorder.pop().unwrap();
        assert_eq!(frame.caller, [0; FRAME_SAMPLES], "pushed before the start");
    }

    #[test]
    fn one_frame_per_slot_each_packet_used_once() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        recorder.push(Leg::Caller, Law::Ulaw, &ulaw(1000));
        recorder.push(Leg::Phone, Law::Alaw, &[Law::Alaw.encode(-2000); 160]);
        recorder.tick(t0 + Duration::from_millis(19));
        assert_eq!(recorder.pop(), None);
        recorder.tick(t0 + RECORDING_FRAME);
        let frame = recorder.pop().unwrap();
        let caller = Law::Ulaw.decode(Law::Ulaw.encode(1000));
        let phone = Law::Alaw.decode(Law::Alaw.encode(-2000));
        assert_eq!(frame.caller, [caller; FRAME_SAMPLES]);
        assert_eq!(frame.phone, [phone; FRAME_SAMPLES]);
        // Nothing new arrived: the next slot is silence on both sides.
        recorder.tick(t0 + 2 * RECORDING_FRAME);
        assert_eq!(
            recorder.pop(),
            Some(RecordedFrame {
                caller: [0; FRAME_SAMPLES],
                phone: [0; FRAME_SAMPLES]
            })
        );
        assert_eq!(recorder.pop(), None);
    }

    #[test]
    fn short_side_is_padded_with_silence() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        recorder.push(Leg::Phone, Law::Ulaw, &ulaw(500)[..100]);
        recorder.tick(t0 + RECORDING_FRAME);
        let frame = recorder.pop().unwrap();
        let expected = Law::Ulaw.decode(Law::Ulaw.encode(500));
        assert!(frame.phone[..100].iter().all(|&sample| sample == expected));
        assert!(frame.phone[100..].iter().all(|&sample| sample == 0));
    }

    #[test]
    fn queues_keep_only_the_newest_samples() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        for level in 1..=6 {
            recorder.push(Leg::Caller, Law::Ulaw, &ulaw(level * 1000));
        }
        assert_eq!(recorder.caller.len(), MAX_QUEUED_SAMPLES);
        recorder.tick(t0 + RECORDING_FRAME);
        let oldest_kept = Law::Ulaw.decode(Law::Ulaw.encode(3000));
        assert_eq!(recorder.pop().unwrap().caller, [oldest_kept; FRAME_SAMPLES]);
        // An oversized packet keeps its tail.
        let mut big = ulaw(100);
        big.extend(vec![Law::Ulaw.encode(7000); MAX_QUEUED_SAMPLES]);
        recorder.push(Leg::Caller, Law::Ulaw, &big);
        assert_eq!(recorder.caller.len(), MAX_QUEUED_SAMPLES);
        let loud = Law::Ulaw.decode(Law::Ulaw.encode(7000));
        assert!(recorder.caller.iter().all(|&sample| sample == loud));
    }

    #[test]
    fn late_tick_produces_every_ended_slot() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        recorder.tick(t0 + Duration::from_millis(65));
        assert_eq!(std::iter::from_fn(|| recorder.pop()).count(), 3);
        assert_eq!(recorder.deadline(), Some(t0 + Duration::from_millis(80)));
        assert_eq!(recorder.dropped_frames(), 0);
    }

    #[test]
    fn long_stall_is_skipped_and_counted() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        recorder.tick(t0 + Duration::from_secs(10));
        assert_eq!(
            std::iter::from_fn(|| recorder.pop()).count(),
            MAX_CATCH_UP_FRAMES as usize
        );
        assert_eq!(recorder.dropped_frames(), 500 - MAX_CATCH_UP_FRAMES);
        assert_eq!(
            recorder.deadline(),
            Some(t0 + Duration::from_secs(10) + RECORDING_FRAME)
        );
    }

    #[test]
    fn uncollected_frames_are_bounded() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        for slot in 1..=(MAX_QUEUED_FRAMES as u32 + 10) {
            recorder.tick(t0 + RECORDING_FRAME * slot);
        }
        assert_eq!(recorder.frames.len(), MAX_QUEUED_FRAMES);
        assert_eq!(recorder.dropped_frames(), 10);
    }

    #[test]
    fn stopping_forgets_samples_and_restarting_starts_a_new_grid() {
        let t0 = Instant::now();
        let mut recorder = Recorder::default();
        recorder.set_running(true, t0);
        recorder.push(Leg::Caller, Law::Ulaw, &ulaw(1000));
        recorder.set_running(false, t0 + Duration::from_millis(5));
        assert!(!recorder.is_running());
        assert_eq!(recorder.deadline(), None);
        let t1 = t0 + Duration::from_millis(33);
        recorder.set_running(true, t1);
        assert_eq!(recorder.deadline(), Some(t1 + RECORDING_FRAME));
        recorder.push(Leg::Phone, Law::Ulaw, &ulaw(1000));
        recorder.forget(Leg::Phone);
        recorder.tick(t1 + RECORDING_FRAME);
        let frame = recorder.pop().unwrap();
        assert_eq!(frame.caller, [0; FRAME_SAMPLES]);
        assert_eq!(frame.phone, [0; FRAME_SAMPLES]);
    }
}
