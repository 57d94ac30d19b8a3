//! DTMF through the relay's eyes: whole RTP datagrams, audio and telephone-events
//! interleaved, in the packet patterns of RFC 4733 (§2.5.1 and the DTMF example of
//! §5: a start packet with the marker bit, updates every 50 ms with a growing
//! duration, then the final duration sent three times with the E bit, all under the
//! timestamp of the key-down instant).

use sihai_media::{
    DtmfDetector, Law, RtpFields, RtpPacket, TelephoneEvent, parse_info_body, write_rtp_to_vec,
};

const TELEPHONE_EVENT: u8 = 101;
const SSRC: u32 = 0x1234_5678;

/// Builds the datagrams a sender emits: `Packet::Audio` advances time by 20 ms;
/// `Packet::Event` reports an event under the current press's timestamp.
struct Sender {
    sequence: u16,
    clock: u32,
    datagrams: Vec<Vec<u8>>,
}

impl Sender {
    fn new(clock: u32) -> Sender {
        Sender {
            sequence: 1000,
            clock,
            datagrams: Vec::new(),
        }
    }

    fn send(&mut self, fields: RtpFields, payload: &[u8]) {
        let mut datagram = Vec::new();
        write_rtp_to_vec(&mut datagram, &fields, payload).unwrap();
        self.datagrams.push(datagram);
        self.sequence = self.sequence.wrapping_add(1);
    }

    fn audio(&mut self, frames: u32) {
        for _ in 0..frames {
            let fields = RtpFields {
                marker: false,
                payload_type: 8,
                sequence: self.sequence,
                timestamp: self.clock,
                ssrc: SSRC,
            };
            self.send(fields, &[Law::Alaw.silence(); 160]);
            self.clock = self.clock.wrapping_add(160);
        }
    }

    /// One key press of `duration_ms`, reported every 50 ms, with `start_copies`
    /// start packets and three end packets. Returns the press's timestamp.
    fn press(&mut self, key: char, duration_ms: u32, start_copies: usize) -> u32 {
        let event = sihai_media::dtmf::key_to_event(key).unwrap();
        let timestamp = self.clock;
        let report = |duration: u32, end: bool| {
            TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: duration as u16,
            }
            .to_bytes()
        };
        for _ in 0..start_copies {
            let fields = RtpFields {
                marker: true,
                payload_type: TELEPHONE_EVENT,
                sequence: self.sequence,
                timestamp,
                ssrc: SSRC,
            };
            self.send(fields, &report(400, false));
        }
        let total = duration_ms * 8;
        let mut duration = 800;
        while duration < total {
            let fields = RtpFields {
                marker: false,
                payload_type: TELEPHONE_EVENT,
                sequence: self.sequence,
                timestamp,
                ssrc: SSRC,
            };
            self.send(fields, &report(duration, false));
            duration += 400;
        }
        for _ in 0..3 {
            let fields = RtpFields {
                marker: false,
                payload_type: TELEPHONE_EVENT,
                sequence: self.sequence,
                timestamp,
                ssrc: SSRC,
            };
            self.send(fields, &report(total, true));
        }
        self.clock = self.clock.wrapping_add(total);
        timestamp
    }
}

/// What the relay does with each datagram: parse, route telephone-events to the
/// detector, collect keys.
fn detect(datagrams: &[Vec<u8>]) -> Vec<char> {
    let mut detector = DtmfDetector::new();
    let mut keys = Vec::new();
    for datagram in datagrams {
        let packet = RtpPacket::parse(datagram).unwrap();
        if packet.payload_type() != TELEPHONE_EVENT {
            continue;
        }
        if let Some(key) = detector
            .feed(packet.timestamp(), packet.marker(), packet.payload())
            .unwrap()
        {
            keys.push(key);
        }
    }
    keys
}

#[test]
fn a_single_key_is_reported_once() {
    let mut sender = Sender::new(0);
    sender.audio(10);
    sender.press('9', 200, 1);
    sender.audio(10);
    // Start, updates at 800 and 1200, three ends at 1600.
    assert_eq!(sender.datagrams.len(), 10 + 1 + 2 + 3 + 10);
    assert_eq!(detect(&sender.datagrams), vec!['9']);
}

#[test]
fn the_key_is_reported_on_the_first_packet() {
    let mut sender = Sender::new(0);
    sender.press('5', 500, 1);
    let mut detector = DtmfDetector::new();
    let first = RtpPacket::parse(&sender.datagrams[0]).unwrap();
    assert_eq!(
        detector.feed(first.timestamp(), first.marker(), first.payload()),
        Ok(Some('5'))
    );
    for datagram in &sender.datagrams[1..] {
        let packet = RtpPacket::parse(datagram).unwrap();
        assert_eq!(
            detector.feed(packet.timestamp(), packet.marker(), packet.payload()),
            Ok(None)
        );
    }
}

#[test]
fn retransmitted_starts_do_not_repeat_the_key() {
    let mut sender = Sender::new(5000);
    sender.press('#', 120, 3);
    assert_eq!(detect(&sender.datagrams), vec!['#']);
}

#[test]
fn the_same_digit_twice_in_a_row_is_two_presses() {
    let mut sender = Sender::new(0);
    sender.press('1', 100, 1);
    sender.audio(3);
    sender.press('1', 100, 1);
    // Back to back, with no audio in between.
    sender.press('1', 100, 1);
    assert_eq!(detect(&sender.datagrams), vec!['1', '1', '1']);
}

#[test]
fn a_dialled_number_comes_out_in_order() {
    let mut sender = Sender::new(u32::MAX - 3000);
    for key in "4008123456*#".chars() {
        sender.press(key, 100, 1);
        sender.audio(4);
    }
    assert_eq!(
        detect(&sender.datagrams).into_iter().collect::<String>(),
        "4008123456*#"
    );
}

#[test]
fn lost_start_packets_still_give_the_key() {
    let mut sender = Sender::new(0);
    sender.press('7', 200, 1);
    sender.press('8', 200, 1);
    // Lose the start of '7' and everything but the last end packet of '8'.
    let survivors: Vec<Vec<u8>> = sender.datagrams[1..6]
        .iter()
        .chain(&sender.datagrams[11..])
        .cloned()
        .collect();
    assert_eq!(detect(&survivors), vec!['7', '8']);
}

#[test]
fn reordered_end_packets_of_an_earlier_press_are_absorbed() {
    let mut sender = Sender::new(0);
    sender.press('2', 100, 1);
    sender.press('3', 100, 1);
    let mut shuffled = sender.datagrams.clone();
    // Move the first press's end packets after the second press's start.
    let ends: Vec<Vec<u8>> = shuffled.drain(2..5).collect();
    shuffled.splice(3..3, ends);
    assert_eq!(detect(&shuffled), vec!['2', '3']);
}

#[test]
fn sip_info_alternatives() {
    assert_eq!(
        parse_info_body("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
        Some('5')
    );
    assert_eq!(
        parse_info_body("application/dtmf-relay", b"Signal= 5\r\nDuration= 160\r\n"),
        Some('5')
    );
    assert_eq!(
        parse_info_body("application/dtmf-relay", b"signal=#\r\nduration=100"),
        Some('#')
    );
    assert_eq!(parse_info_body("application/dtmf", b"5"), Some('5'));
    assert_eq!(parse_info_body("application/dtmf", b"#\r\n"), Some('#'));
    assert_eq!(parse_info_body("text/plain", b"Signal=5"), None);
}
