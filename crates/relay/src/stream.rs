//! The one RTP stream each leg receives from the relay, whatever feeds it.
//!
//! The caller hears ringback, then a prompt, then the phone's early media, then the
//! bridged call, then perhaps another prompt; each of these has its own sequence
//! numbers and timestamps (the phone's are random, ours restart per prompt). Handing
//! them through as they are would show the caller's jitter buffer a new stream at
//! every switch, and many phones and gateways react to a sequence or timestamp jump
//! with a burst of silence, a click or a dropped call. So a leg receives one stream:
//! our SSRC, sequence numbers one apart, timestamps that follow wall time (8 per ms)
//! across every switch, and the marker bit on the first packet after a switch, the
//! way a talkspurt starts (RFC 3551 §4.1).
//!
//! A forwarded packet keeps its sender's spacing: at the switch its sequence number
//! and timestamp are mapped onto ours by an offset fixed for the talk spurt, so loss
//! and reordering on the far side stay visible to the receiver but the relay never
//! adds a jump. The offsets are anchored again when the source's SSRC changes, or
//! when its sequence number jumps and the next packet confirms the jump (the
//! probation of RFC 3550 §A.1: a stream restarted without a new SSRC).

use std::time::Instant;

use sihai_media::{RtpFields, SAMPLE_RATE};

/// A sequence number this far ahead of the highest seen is a jump, not loss
/// (RFC 3550 §A.1).
const MAX_DROPOUT: u16 = 3000;

/// A sequence number at most this far behind the highest seen is a reordered packet
/// (RFC 3550 §A.1); farther behind is a jump.
const MAX_MISORDER: u16 = 100;

/// The random starting point of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamStart {
    pub(crate) ssrc: u32,
    pub(crate) sequence: u16,
    pub(crate) timestamp: u32,
}

/// How a forwarded packet's sequence number and timestamp map onto ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    source_ssrc: u32,
    sequence_offset: u16,
    timestamp_offset: u32,
    /// The highest incoming sequence number since the switch.
    highest_sequence: u16,
    /// How many sequence steps `highest_sequence` is past the first packet after
    /// the switch (saturating): a reordered packet farther behind than this was
    /// sent before the switch.
    span: u16,
    /// After a jump, the sequence number that would confirm it.
    probation: Option<u16>,
}

/// Where a packet from the mapped source falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// In sequence, or reordered within the spurt: map it.
    Mapped,
    /// Sent before the switch, or a jump not yet confirmed: drop it.
    Dropped,
    /// A jump confirmed by the next packet: the source restarted its numbering
    /// without changing SSRC; anchor again as at a switch.
    Restarted,
}

impl Mapping {
    fn follow(&mut self, sequence: u16) -> Step {
        let ahead = sequence.wrapping_sub(self.highest_sequence);
        if ahead < MAX_DROPOUT {
            self.highest_sequence = sequence;
            self.span = self.span.saturating_add(ahead);
            self.probation = None;
            return Step::Mapped;
        }
        let behind = self.highest_sequence.wrapping_sub(sequence);
        if behind <= MAX_MISORDER {
            // Reordered: keep it unless it was sent before the switch, where its
            // number would fall on one the stream has already used.
            return if behind <= self.span {
                Step::Mapped
            } else {
                Step::Dropped
            };
        }
        if self.probation == Some(sequence) {
            return Step::Restarted;
        }
        self.probation = Some(sequence.wrapping_add(1));
        Step::Dropped
    }
}

/// What to do with a packet offered for forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarding {
    /// Send it with these header fields.
    Send(RtpFields),
    /// It predates the switch, or is an unconfirmed sequence jump: drop it.
    OutOfSequence,
}

/// The stream one leg receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutStream {
    ssrc: u32,
    /// The sequence number after the newest one sent.
    next_sequence: u16,
    /// The wall-clock origin of the timestamps: `origin_timestamp` at `origin`.
    origin: Instant,
    origin_timestamp: u32,
    /// The timestamp just past the newest audio sent; nothing after a switch may
    /// start before it.
    end_timestamp: Option<u32>,
    marker_pending: bool,
    mapping: Option<Mapping>,
}

/// Whether RTP timestamp `a` is later than `b`, modulo 2^32.
fn is_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl OutStream {
    pub(crate) fn new(start: StreamStart, origin: Instant) -> OutStream {
        OutStream {
            ssrc: start.ssrc,
            next_sequence: start.sequence,
            origin,
            origin_timestamp: start.timestamp,
            end_timestamp: None,
            // The first packet of a stream starts a talkspurt too.
            marker_pending: true,
            mapping: None,
        }
    }

    pub(crate) fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Another source feeds the stream from now on: the next packet carries the
    /// marker and a forwarded source is mapped afresh.
    pub(crate) fn switch(&mut self) {
        self.mapping = None;
        self.marker_pending = true;
    }

    /// The timestamp of wall-clock instant `now` (8 units per ms since the origin),
    /// or the end of the newest audio sent if that is later.
    pub(crate) fn start_timestamp(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.origin);
        let samples = elapsed.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000;
        // RTP timestamps are modulo 2^32: the truncation is the wrap.
        let wall = self.origin_timestamp.wrapping_add(samples as u32);
        match self.end_timestamp {
            Some(end) if is_after(end, wall) => end,
            _ => wall,
        }
    }

    /// Header fields for a packet the relay generates, of `samples` samples starting
    /// at `timestamp`.
    pub(crate) fn originate(
        &mut self,
        timestamp: u32,
        samples: u32,
        payload_type: u8,
    ) -> RtpFields {
        let fields = RtpFields {
            marker: std::mem::take(&mut self.marker_pending),
            payload_type,
            sequence: self.next_sequence,
            timestamp,
            ssrc: self.ssrc,
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.extend_end(timestamp.wrapping_add(samples));
        fields
    }

    /// Header fields for a forwarded packet (`samples` long: 0 for a
    /// telephone-event, whose timestamp is the start of the key press).
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        incoming: &RtpFields,
        samples: u32,
        payload_type: u8,
    ) -> Forwarding {
        let step = match self.mapping.as_mut() {
            Some(mapping) if mapping.source_ssrc == incoming.ssrc => {
                mapping.follow(incoming.sequence)
            }
            _ => Step::Restarted,
        };
        let mapping = match (step, self.mapping) {
            (Step::Dropped, _) => return Forwarding::OutOfSequence,
            (Step::Mapped, Some(mapping)) => mapping,
            (Step::Restarted, _) | (Step::Mapped, None) => {
                let mapping = self.anchor(now, incoming);
                self.mapping = Some(mapping);
                self.marker_pending = true;
                mapping
            }
        };
        let sequence = incoming.sequence.wrapping_add(mapping.sequence_offset);
        let timestamp = incoming.timestamp.wrapping_add(mapping.timestamp_offset);
        if (sequence.wrapping_sub(self.next_sequence) as i16) >= 0 {
            self.next_sequence = sequence.wrapping_add(1);
        }
        self.extend_end(timestamp.wrapping_add(samples));
        Forwarding::Send(RtpFields {
            marker: incoming.marker | std::mem::take(&mut self.marker_pending),
            payload_type,
            sequence,
            timestamp,
            ssrc: self.ssrc,
        })
    }

    /// Offsets that put `incoming` right after what the stream last sent, at the
    /// current wall-clock timestamp.
    fn anchor(&self, now: Instant, incoming: &RtpFields) -> Mapping {
        Mapping {
            source_ssrc: incoming.ssrc,
            sequence_offset: self.next_sequence.wrapping_sub(incoming.sequence),
            timestamp_offset: self.start_timestamp(now).wrapping_sub(incoming.timestamp),
            highest_sequence: incoming.sequence,
            span: 0,
            probation: None,
        }
    }

    fn extend_end(&mut self, end: u32) {
        match self.end_timestamp {
            Some(current) if !is_after(end, current) => {}
            _ => self.end_timestamp = Some(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const START: StreamStart = StreamStart {
        ssrc: 0x5151_5151,
        sequence: 1000,
        timestamp: 50_000,
    };

    fn incoming(ssrc: u32, sequence: u16, timestamp: u32) -> RtpFields {
        RtpFields {
            marker: false,
            payload_type: 0,
            sequence,
            timestamp,
            ssrc,
        }
    }

    fn sent(forwarding: Forwarding) -> RtpFields {
        match forwarding {
            Forwarding::Send(fields) => fields,
            Forwarding::OutOfSequence => panic!("dropped"),
        }
    }

    #[test]
    fn originated_packets_count_up_with_the_marker_first() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        assert_eq!(stream.start_timestamp(t0), 50_000);
        let first = stream.originate(50_000, 160, 8);
        assert_eq!(
            first,
            RtpFields {
                marker: true,
                payload_type: 8,
                sequence: 1000,
                timestamp: 50_000,
                ssrc: 0x5151_5151
            }
        );
        let second = stream.originate(50_160, 160, 8);
        assert!(!second.marker);
        assert_eq!(second.sequence, 1001);
    }

    #[test]
    fn start_timestamp_follows_wall_time_but_never_goes_back() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        assert_eq!(
            stream.start_timestamp(t0 + Duration::from_millis(100)),
            50_800
        );
        assert_eq!(
            stream.start_timestamp(t0 + Duration::from_micros(1_999)),
            50_015
        );
        // Audio that ran ahead of the wall clock pushes the next start past its end.
        stream.originate(51_000, 160, 8);
        assert_eq!(
            stream.start_timestamp(t0 + Duration::from_millis(100)),
            51_160
        );
        // A clock before the origin is the origin.
        let late_origin = OutStream::new(START, t0 + Duration::from_secs(1));
        assert_eq!(late_origin.start_timestamp(t0), 50_000);
    }

    #[test]
    fn timestamps_wrap_around() {
        let t0 = Instant::now();
        let start = StreamStart {
            timestamp: u32::MAX - 100,
            ..START
        };
        let mut stream = OutStream::new(start, t0);
        stream.originate(u32::MAX - 100, 160, 8);
        // The end (59 after the wrap) is later than the wall clock just before it.
        assert_eq!(stream.start_timestamp(t0), 59);
        assert_eq!(
            stream.start_timestamp(t0 + Duration::from_millis(40)),
            (u32::MAX - 100).wrapping_add(320)
        );
    }

    #[test]
    fn forwarded_packets_keep_their_spacing_after_the_switch() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        for index in 0..5u32 {
            stream.originate(50_000 + index * 160, 160, 8);
        }
        stream.switch();
        let at = t0 + Duration::from_millis(100);
        let first = sent(stream.forward(at, &incoming(9, 40_000, 7_000_000), 160, 0));
        assert_eq!(
            first,
            RtpFields {
                marker: true,
                payload_type: 0,
                sequence: 1005,
                timestamp: 50_800,
                ssrc: 0x5151_5151
            }
        );
        // A lost packet (40,001) and a silence-suppressed gap stay visible.
        let third = sent(stream.forward(at, &incoming(9, 40_002, 7_000_800), 160, 0));
        assert_eq!((third.sequence, third.timestamp), (1007, 51_600));
        assert!(!third.marker);
        // The late one arrives: mapped into its place, not at the end.
        let second = sent(stream.forward(at, &incoming(9, 40_001, 7_000_160), 160, 0));
        assert_eq!((second.sequence, second.timestamp), (1006, 50_960));
        // The sender's own marker (a talkspurt) is kept.
        let spurt = RtpFields {
            marker: true,
            ..incoming(9, 40_003, 7_004_000)
        };
        assert!(sent(stream.forward(at, &spurt, 160, 0)).marker);
        // Switching back to our own audio continues after the newest number.
        stream.switch();
        let ours = stream.originate(stream.start_timestamp(at), 160, 8);
        assert_eq!(ours.sequence, 1009);
        assert!(ours.marker);
        // The spurt at 54,800 ran ahead of the wall clock: start after its end.
        assert_eq!(ours.timestamp, 54_800 + 160);
    }

    #[test]
    fn packets_from_before_the_switch_are_dropped() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        stream.originate(50_000, 160, 8);
        stream.switch();
        sent(stream.forward(t0, &incoming(9, 500, 0), 160, 0));
        assert_eq!(
            stream.forward(t0, &incoming(9, 499, 0), 160, 0),
            Forwarding::OutOfSequence
        );
        // Once the spurt has moved on, reordering within it is fine.
        sent(stream.forward(t0, &incoming(9, 503, 480), 160, 0));
        assert_eq!(
            sent(stream.forward(t0, &incoming(9, 502, 320), 160, 0)).sequence,
            1003
        );
        assert_eq!(
            stream.forward(t0, &incoming(9, 499, 0), 160, 0),
            Forwarding::OutOfSequence
        );
    }

    #[test]
    fn long_spurts_wrap_sequence_numbers_without_drops() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        let mut expected = 1000u16;
        for step in 0..70_000u32 {
            let sequence = (60_000 + step) as u16;
            let fields = sent(stream.forward(t0, &incoming(9, sequence, step * 160), 160, 0));
            assert_eq!(fields.sequence, expected);
            expected = expected.wrapping_add(1);
            if step == 69_000 {
                // Reordering still works 69,000 packets in.
                let earlier = (60_000 + step - 2) as u16;
                let late = sent(stream.forward(t0, &incoming(9, earlier, 0), 160, 0));
                assert_eq!(late.sequence, expected.wrapping_sub(3));
            }
        }
    }

    #[test]
    fn new_ssrc_is_anchored_again() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        sent(stream.forward(t0, &incoming(1, 10, 1000), 160, 0));
        sent(stream.forward(t0, &incoming(1, 11, 1160), 160, 0));
        let other = sent(stream.forward(
            t0 + Duration::from_millis(40),
            &incoming(2, 60_000, 9),
            160,
            0,
        ));
        assert!(other.marker);
        assert_eq!(other.sequence, 1002);
        // Wall clock (+320) beats the end of what was sent (+320): both agree here.
        assert_eq!(other.timestamp, 50_320);
    }

    #[test]
    fn sequence_jump_needs_confirmation() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        sent(stream.forward(t0, &incoming(1, 10, 1000), 160, 0));
        sent(stream.forward(t0, &incoming(1, 11, 1160), 160, 0));
        // A stray far-off number is dropped...
        assert_eq!(
            stream.forward(t0, &incoming(1, 30_000, 5), 160, 0),
            Forwarding::OutOfSequence
        );
        // ...and the stream goes on where it was.
        assert_eq!(
            sent(stream.forward(t0, &incoming(1, 12, 1320), 160, 0)).sequence,
            1002
        );
        // A restart confirmed by the next packet is anchored again, with no jump.
        let at = t0 + Duration::from_millis(60);
        assert_eq!(
            stream.forward(at, &incoming(1, 40_000, 77), 160, 0),
            Forwarding::OutOfSequence
        );
        let restarted = sent(stream.forward(at, &incoming(1, 40_001, 237), 160, 0));
        assert_eq!(restarted.sequence, 1003);
        assert!(restarted.marker);
        assert_eq!(restarted.timestamp, 50_480);
        let next = sent(stream.forward(at, &incoming(1, 40_002, 397), 160, 0));
        assert_eq!((next.sequence, next.timestamp), (1004, 50_640));
    }

    #[test]
    fn duplicates_are_forwarded_as_duplicates() {
        let t0 = Instant::now();
        let mut stream = OutStream::new(START, t0);
        let first = sent(stream.forward(t0, &incoming(1, 10, 1000), 160, 0));
        let again = sent(stream.forward(t0, &incoming(1, 10, 1000), 160, 0));
        assert_eq!(first.sequence, again.sequence);
        assert!(!again.marker);
        let next = stream.originate(stream.start_timestamp(t0), 160, 0);
        assert_eq!(next.sequence, 1001);
    }
}
