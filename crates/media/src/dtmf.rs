//! DTMF keys pressed by the caller, for the voice menu (按1转销售...): RFC 4733
//! telephone-events in the RTP stream, and SIP INFO bodies for phones that send DTMF
//! out of band.
//!
//! An RFC 4733 sender repeats itself on purpose: one key press becomes a start packet
//! (marker bit set, possibly sent up to three times), an update every 50 ms or so with
//! a growing duration, and three identical end packets, all carrying the RTP timestamp
//! of the moment the key went down. [`DtmfDetector`] turns that stream back into one
//! key per press, using the timestamp as the identity of a press.

use thiserror::Error;

/// The DTMF keys in RFC 4733 event-code order (0-9, *, #, A-D).
pub const DTMF_KEYS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// How far behind the current press (in RTP timestamp units, 2^20 ≈ 131 s at 8 kHz) a
/// packet may be and still count as a late copy of an older press; farther means the
/// sender's timestamps jumped (a new stream), and the packet is a new press.
const STALE_WINDOW: u32 = 1 << 20;

/// Largest timestamp step between two segments of one long press: a segment ends when
/// its duration field would overflow 0xFFFF (RFC 4733 §2.5.1.3).
const SEGMENT_SPAN: u32 = 0x1_0000;

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// Fewer than the 4 bytes of one event.
    #[error("telephone-event payload of {0} bytes, at least 4 expected")]
    TooShort(usize),
}

/// The key for an RFC 4733 event code, or `None` for events that are not DTMF keys
/// (flash, fax and modem tones...).
pub fn event_to_key(event: u8) -> Option<char> {
    DTMF_KEYS.get(usize::from(event)).copied()
}

/// The RFC 4733 event code of a key (`a`-`d` accepted as `A`-`D`).
pub fn key_to_event(key: char) -> Option<u8> {
    let key = key.to_ascii_uppercase();
    DTMF_KEYS
        .iter()
        .position(|&candidate| candidate == key)
        .map(|index| index as u8)
}

/// One RFC 4733 telephone-event (RFC 4733 §2.3):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     event     |E|R| volume    |          duration             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// Event code: 0-15 are DTMF keys.
    pub event: u8,
    /// The E bit: this packet reports the end of the event.
    pub end: bool,
    /// Power level in −dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first event of a payload. Extra bytes (further events of RFC 4733
    /// §2.5.1.5, which only carry older or simultaneous events) are ignored; the
    /// reserved bit is ignored as the RFC requires.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        let &[event, flags, high, low, ..] = payload else {
            return Err(DtmfError::TooShort(payload.len()));
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([high, low]),
        })
    }

    /// The payload bytes of this event (volume truncated to 6 bits).
    pub fn to_bytes(&self) -> [u8; 4] {
        let [high, low] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            high,
            low,
        ]
    }

    /// The key this event stands for, if it is a DTMF key.
    pub fn key(&self) -> Option<char> {
        event_to_key(self.event)
    }
}

/// The press the detector is in (or last saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Press {
    timestamp: u32,
    event: u8,
    ended: bool,
}

/// Turns the telephone-event packets of one RTP stream into key presses, each
/// reported exactly once.
///
/// A press is identified by its RTP timestamp. A key is reported on the **first**
/// packet seen of a press, whatever it is (start, update or even end, when the
/// earlier ones were lost), not when the press ends: the menu reacts 50 ms after the
/// key goes down instead of after it comes up, and a press whose end packets are all
/// lost is still heard. Every later packet with that timestamp (retransmitted starts,
/// updates, the three end packets) is absorbed. A new timestamp is a new press, even
/// of the same key, except:
///
/// - the next segment of a press longer than 0xFFFF timestamp units (RFC 4733
///   §2.5.1.3): no marker bit, same event, previous segment not ended, timestamp at
///   most 0x10000 later. (If a caller presses the same key twice and every end packet
///   of the first press and every start packet of the second are lost, the second
///   press is taken for a continuation and missed.)
/// - a packet whose timestamp is up to 2^20 units older than the current press: a
///   late or reordered copy of an earlier press, already reported (or superseded).
///
/// Call [`DtmfDetector::reset`] when the stream's SSRC changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtmfDetector {
    current: Option<Press>,
}

impl DtmfDetector {
    /// A detector that has seen nothing.
    pub fn new() -> DtmfDetector {
        DtmfDetector::default()
    }

    /// Forgets the current press (new stream).
    pub fn reset(&mut self) {
        self.current = None;
    }

    /// Feeds one telephone-event packet: its RTP timestamp, marker bit and payload.
    /// Returns the key if this packet starts a new press of a DTMF key.
    pub fn feed(
        &mut self,
        rtp_timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<char>, DtmfError> {
        let event = TelephoneEvent::parse(payload)?;
        if let Some(current) = &mut self.current {
            let ahead = rtp_timestamp.wrapping_sub(current.timestamp);
            if ahead == 0 {
                current.ended |= event.end;
                return Ok(None);
            }
            if current.timestamp.wrapping_sub(rtp_timestamp) < STALE_WINDOW {
                return Ok(None);
            }
            if !marker && !current.ended && current.event == event.event && ahead <= SEGMENT_SPAN {
                current.timestamp = rtp_timestamp;
                current.ended = event.end;
                return Ok(None);
            }
        }
        self.current = Some(Press {
            timestamp: rtp_timestamp,
            event: event.event,
            ended: event.end,
        });
        Ok(event.key())
    }
}

/// The key carried by a SIP INFO body, or `None` if the content type is not a DTMF
/// one or the body holds no valid key.
///
/// - `application/dtmf-relay`: lines of `key=value`; the `Signal` line (key matched
///   without regard to case, spaces around key and value allowed) gives the key.
///   `Duration` and other lines are ignored.
/// - `application/dtmf`: the body is the key itself.
///
/// A key is one of `0-9 * # A-D` (`a-d` accepted), or the event codes 10-15 some
/// gateways send for `* # A B C D`. Content-type parameters are ignored.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let text = std::str::from_utf8(body).ok()?;
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        text.lines()
            .filter_map(|line| line.split_once('='))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case("signal"))
            .and_then(|(_, value)| parse_signal(value.trim()))
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        parse_signal(text.trim())
    } else {
        None
    }
}

fn parse_signal(value: &str) -> Option<char> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(key), None) => key_to_event(key).and_then(event_to_key),
        _ => value
            .parse::<u8>()
            .ok()
            .filter(|code| (10..=15).contains(code))
            .and_then(event_to_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn parses_the_payload() {
        let event = TelephoneEvent::parse(&[0x0B, 0x8A, 0x03, 0x20]).unwrap();
        assert_eq!(
            event,
            TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800
            }
        );
        assert_eq!(event.key(), Some('#'));
        assert_eq!(event.to_bytes(), [0x0B, 0x8A, 0x03, 0x20]);
        // The reserved bit is ignored; trailing bytes too.
        let reserved = TelephoneEvent::parse(&[0x05, 0x40 | 0x3F, 0, 0, 9, 9, 9, 9]).unwrap();
        assert_eq!(
            reserved,
            TelephoneEvent {
                event: 5,
                end: false,
                volume: 63,
                duration: 0
            }
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::TooShort(3))
        );
        assert_eq!(TelephoneEvent::parse(&[]), Err(DtmfError::TooShort(0)));
    }

    #[test]
    fn maps_every_key() {
        for (code, key) in DTMF_KEYS.iter().enumerate() {
            assert_eq!(event_to_key(code as u8), Some(*key));
            assert_eq!(key_to_event(*key), Some(code as u8));
        }
        assert_eq!(key_to_event('b'), Some(13));
        assert_eq!(event_to_key(16), None);
        assert_eq!(key_to_event('E'), None);
    }

    #[test]
    fn one_press_reports_once_on_its_first_packet() {
        let mut detector = DtmfDetector::new();
        let t = 1_000_000;
        assert_eq!(
            detector.feed(t, true, &payload(9, false, 400)),
            Ok(Some('9'))
        );
        assert_eq!(detector.feed(t, true, &payload(9, false, 400)), Ok(None));
        assert_eq!(detector.feed(t, false, &payload(9, false, 800)), Ok(None));
        assert_eq!(detector.feed(t, false, &payload(9, false, 1200)), Ok(None));
        for _ in 0..3 {
            assert_eq!(detector.feed(t, false, &payload(9, true, 1600)), Ok(None));
        }
    }

    #[test]
    fn non_key_events_are_tracked_but_not_reported() {
        let mut detector = DtmfDetector::new();
        assert_eq!(detector.feed(0, true, &payload(16, false, 400)), Ok(None));
        assert_eq!(detector.feed(0, false, &payload(16, true, 800)), Ok(None));
        assert_eq!(
            detector.feed(1600, true, &payload(1, false, 400)),
            Ok(Some('1'))
        );
    }

    #[test]
    fn malformed_payload_leaves_state_alone() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(0, true, &payload(3, false, 400)),
            Ok(Some('3'))
        );
        assert_eq!(detector.feed(800, true, &[1]), Err(DtmfError::TooShort(1)));
        assert_eq!(detector.feed(0, false, &payload(3, true, 800)), Ok(None));
    }

    #[test]
    fn long_press_segments_are_one_press() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(0, true, &payload(0, false, 0xFFFF)),
            Ok(Some('0'))
        );
        assert_eq!(
            detector.feed(0xFFFF, false, &payload(0, false, 400)),
            Ok(None)
        );
        assert_eq!(
            detector.feed(0xFFFF, false, &payload(0, true, 800)),
            Ok(None)
        );
        // After the end, the same key again (no marker: the sender forgot it) is new.
        assert_eq!(
            detector.feed(0xFFFF + 2400, false, &payload(0, false, 400)),
            Ok(Some('0'))
        );
    }

    #[test]
    fn late_packets_of_earlier_presses_are_absorbed() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(8000, true, &payload(1, false, 400)),
            Ok(Some('1'))
        );
        assert_eq!(
            detector.feed(16_000, true, &payload(2, false, 400)),
            Ok(Some('2'))
        );
        assert_eq!(
            detector.feed(8000, false, &payload(1, true, 1600)),
            Ok(None)
        );
        assert_eq!(
            detector.feed(16_000, false, &payload(2, true, 1600)),
            Ok(None)
        );
    }

    #[test]
    fn timestamps_wrap() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(u32::MAX - 100, true, &payload(4, false, 400)),
            Ok(Some('4'))
        );
        assert_eq!(
            detector.feed(u32::MAX - 100, false, &payload(4, true, 800)),
            Ok(None)
        );
        assert_eq!(
            detector.feed(2000, true, &payload(4, false, 400)),
            Ok(Some('4'))
        );
        assert_eq!(
            detector.feed(u32::MAX - 100, false, &payload(4, true, 800)),
            Ok(None)
        );
    }

    #[test]
    fn a_timestamp_jump_backwards_is_a_new_stream() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(3_000_000_000, true, &payload(7, true, 800)),
            Ok(Some('7'))
        );
        assert_eq!(
            detector.feed(5000, true, &payload(7, false, 400)),
            Ok(Some('7'))
        );
    }

    #[test]
    fn reset_forgets_the_press() {
        let mut detector = DtmfDetector::new();
        assert_eq!(
            detector.feed(0, true, &payload(8, false, 400)),
            Ok(Some('8'))
        );
        detector.reset();
        assert_eq!(
            detector.feed(0, true, &payload(8, false, 400)),
            Ok(Some('8'))
        );
    }

    #[test]
    fn info_dtmf_relay_bodies() {
        let relay = "application/dtmf-relay";
        assert_eq!(
            parse_info_body(relay, b"Signal=5\r\nDuration=160\r\n"),
            Some('5')
        );
        assert_eq!(
            parse_info_body(relay, b"Signal= 5\r\nDuration= 160"),
            Some('5')
        );
        assert_eq!(parse_info_body(relay, b"signal=#"), Some('#'));
        assert_eq!(
            parse_info_body(relay, b"Duration=250\nSIGNAL = *\n"),
            Some('*')
        );
        assert_eq!(parse_info_body(relay, b"Signal=d"), Some('D'));
        assert_eq!(parse_info_body(relay, b"Signal=10"), Some('*'));
        assert_eq!(parse_info_body(relay, b"Signal=11\r\n"), Some('#'));
        assert_eq!(
            parse_info_body("Application/DTMF-Relay; charset=utf-8", b"Signal=9"),
            Some('9')
        );
        assert_eq!(parse_info_body(relay, b"Signal=16"), None);
        assert_eq!(parse_info_body(relay, b"Signal=55"), None);
        assert_eq!(parse_info_body(relay, b"Signal="), None);
        assert_eq!(parse_info_body(relay, b"Signal=x"), None);
        assert_eq!(parse_info_body(relay, b"Duration=160"), None);
        assert_eq!(parse_info_body(relay, b"Signals=5"), None);
        assert_eq!(parse_info_body(relay, b""), None);
        assert_eq!(parse_info_body(relay, b"Signal=\xFF"), None);
    }

    #[test]
    fn info_dtmf_bodies() {
        assert_eq!(parse_info_body("application/dtmf", b"5"), Some('5'));
        assert_eq!(parse_info_body("application/dtmf", b" #\r\n"), Some('#'));
        assert_eq!(parse_info_body("APPLICATION/DTMF", b"a"), Some('A'));
        assert_eq!(parse_info_body("application/dtmf", b"12"), Some('A'));
        assert_eq!(parse_info_body("application/dtmf", b""), None);
        assert_eq!(parse_info_body("application/dtmf", b"55"), None);
        assert_eq!(parse_info_body("application/sdp", b"5"), None);
        assert_eq!(parse_info_body("", b"5"), None);
    }
}
