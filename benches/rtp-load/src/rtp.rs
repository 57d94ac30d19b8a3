//! The audio: every call sends a G.711 µ-law packet (160 bytes of payload, 20 ms)
//! every 20 ms each way, from one sending thread; one receiving thread per RTP socket
//! measures what comes back out of the relay.
//!
//! The relay rewrites SSRC, sequence numbers and timestamps (each leg gets one stream
//! of its own) but passes the payload through untouched when both legs speak PCMU, so
//! the payload carries what the receiver needs: the call, the direction, the tick, and
//! when the packet was due and when it actually left.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::stats::StreamJitter;

pub const PTIME: Duration = Duration::from_millis(20);
const HEADER_LEN: usize = 12;
const PAYLOAD_LEN: usize = 160;
pub const PACKET_LEN: usize = HEADER_LEN + PAYLOAD_LEN;
/// Marks our packets among anything else the sockets get (the relay's ringback).
const MAGIC: [u8; 4] = *b"SHRL";
/// Each 20 ms tick is cut into this many 1 ms slots and every call sends in its own
/// slot: calls' 20 ms clocks are not aligned in real traffic, and one burst of 2,000
/// packets every 20 ms would measure how long the relay takes to drain a burst rather
/// than what it adds to a packet.
pub const SLOTS_PER_TICK: u32 = 20;
const SLOT: Duration = Duration::from_millis(1);
/// µ-law silence for the rest of the payload.
const ULAW_SILENCE: u8 = 0xFF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    CallerToPhone = 0,
    PhoneToCaller = 1,
}

/// What the sender and the receivers share: the clock, the schedule and where every
/// call's audio goes.
pub struct Plan {
    /// All times below are nanoseconds since this instant.
    pub epoch: Instant,
    pub stream_start_ns: u64,
    pub ticks: u32,
    /// Packets received in [start, end) count towards the rate, delays and jitter.
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub caller_sockets: Vec<Arc<UdpSocket>>,
    pub phone_sockets: Vec<Arc<UdpSocket>>,
    /// The relay's address for each call's caller leg (the caller sends there, and the
    /// phone's audio comes back from there) and phone leg.
    pub relay_for_caller: Vec<SocketAddr>,
    pub relay_for_phone: Vec<SocketAddr>,
}

impl Plan {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }

    /// When call `index` is due to send its packet of `tick`.
    fn nominal_ns(&self, index: usize, tick: u32) -> u64 {
        let slot = index as u64 % u64::from(SLOTS_PER_TICK);
        self.stream_start_ns
            + u64::from(tick) * PTIME.as_nanos() as u64
            + slot * SLOT.as_nanos() as u64
    }

    fn calls(&self) -> usize {
        self.relay_for_caller.len()
    }
}

fn write_packet(
    packet: &mut [u8; PACKET_LEN],
    index: usize,
    direction: Direction,
    tick: u32,
    nominal_ns: u64,
    sent_ns: u64,
) {
    let stream = (index as u32) << 1 | direction as u32;
    packet[0] = 0x80; // version 2, no padding, extension or CSRCs
    packet[1] = 0; // PCMU
    packet[2..4].copy_from_slice(&(tick as u16).to_be_bytes());
    packet[4..8].copy_from_slice(&tick.wrapping_mul(160).to_be_bytes());
    packet[8..12].copy_from_slice(&(0x5348_0000 ^ stream).to_be_bytes());
    let payload = &mut packet[HEADER_LEN..];
    payload[0..4].copy_from_slice(&MAGIC);
    payload[4..8].copy_from_slice(&(index as u32).to_be_bytes());
    payload[8] = direction as u8;
    payload[9..13].copy_from_slice(&tick.to_be_bytes());
    payload[13..21].copy_from_slice(&nominal_ns.to_be_bytes());
    payload[21..29].copy_from_slice(&sent_ns.to_be_bytes());
    payload[29..].fill(ULAW_SILENCE);
}

/// What a received datagram says about itself, if it is one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    index: usize,
    direction: Direction,
    nominal_ns: u64,
    sent_ns: u64,
}

fn read_packet(datagram: &[u8]) -> Option<Stamp> {
    if datagram.len() != PACKET_LEN || datagram[0] >> 6 != 2 {
        return None;
    }
    let payload = &datagram[HEADER_LEN..];
    if payload[0..4] != MAGIC {
        return None;
    }
    let u32_at = |at: usize| {
        payload
            .get(at..at + 4)?
            .try_into()
            .ok()
            .map(u32::from_be_bytes)
    };
    let u64_at = |at: usize| {
        payload
            .get(at..at + 8)?
            .try_into()
            .ok()
            .map(u64::from_be_bytes)
    };
    let direction = match payload[8] {
        0 => Direction::CallerToPhone,
        1 => Direction::PhoneToCaller,
        _ => return None,
    };
    Some(Stamp {
        index: u32_at(4)? as usize,
        direction,
        nominal_ns: u64_at(13)?,
        sent_ns: u64_at(21)?,
    })
}

#[derive(Debug, Default, Clone)]
pub struct SendReport {
    /// Per direction ([`Direction`] as index).
    pub sent: [u64; 2],
    pub send_errors: u64,
    /// The most any slot started after its due time, in ms.
    pub max_late_ms: f64,
}

/// Sends every call's packets, both ways, tick after tick, until the plan's last tick.
pub fn send(plan: &Plan) -> SendReport {
    let mut report = SendReport::default();
    let mut packet = [0u8; PACKET_LEN];
    let calls = plan.calls();
    for tick in 0..plan.ticks {
        for slot in 0..SLOTS_PER_TICK {
            let due_ns = plan.nominal_ns(slot as usize, tick);
            let now_ns = plan.now_ns();
            if now_ns < due_ns {
                std::thread::sleep(Duration::from_nanos(due_ns - now_ns));
            } else {
                report.max_late_ms = report.max_late_ms.max((now_ns - due_ns) as f64 / 1e6);
            }
            let mut index = slot as usize;
            while index < calls {
                let socket_index = index % plan.caller_sockets.len();
                for (direction, socket, to) in [
                    (
                        Direction::CallerToPhone,
                        &plan.caller_sockets[socket_index],
                        plan.relay_for_caller[index],
                    ),
                    (
                        Direction::PhoneToCaller,
                        &plan.phone_sockets[socket_index],
                        plan.relay_for_phone[index],
                    ),
                ] {
                    write_packet(&mut packet, index, direction, tick, due_ns, plan.now_ns());
                    match socket.send_to(&packet, to) {
                        Ok(_) => report.sent[direction as usize] += 1,
                        Err(_) => report.send_errors += 1,
                    }
                }
                index += SLOTS_PER_TICK as usize;
            }
        }
    }
    report
}

#[derive(Debug, Default)]
pub struct ReceiveReport {
    /// Valid packets per direction, whenever they arrived.
    pub received: [u64; 2],
    /// Of these, those that arrived inside the measured window.
    pub received_in_window: [u64; 2],
    /// One-way delay through the relay of each packet in the window, in µs.
    pub delays_us: Vec<u32>,
    /// Jitter per stream: index `call * 2 + direction`.
    pub streams: Vec<StreamJitter>,
    /// Our packets from a port other than the relay port of their call's leg, or on
    /// the wrong side: the relay crossed calls. Not counted as received.
    pub misrouted: u64,
    /// Other datagrams: the relay's ringback before the answer, RTCP.
    pub foreign: u64,
}

/// Receives on `socket`, which is on the `side` the packets of `direction` arrive at,
/// until `stop` is set.
pub fn receive(
    plan: &Plan,
    socket: &UdpSocket,
    direction: Direction,
    stop: &AtomicBool,
) -> ReceiveReport {
    let mut report = ReceiveReport {
        streams: vec![StreamJitter::default(); plan.calls() * 2],
        ..ReceiveReport::default()
    };
    // Room for every packet the window can bring, so that recording a delay never
    // reallocates in the middle of the measurement.
    let window_s = (plan.window_end_ns - plan.window_start_ns) as f64 / 1e9;
    let per_socket = plan.calls() as f64 / plan.caller_sockets.len() as f64;
    report
        .delays_us
        .reserve((per_socket * window_s * 52.0).min(50_000_000.0) as usize);
    let expected_source = match direction {
        Direction::CallerToPhone => &plan.relay_for_phone,
        Direction::PhoneToCaller => &plan.relay_for_caller,
    };
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let (len, source) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            // The read timeout (to look at `stop`), or an ICMP error: keep going.
            Err(_) => continue,
        };
        let arrived_ns = plan.now_ns();
        let Some(stamp) = read_packet(&buf[..len]) else {
            report.foreign += 1;
            continue;
        };
        if stamp.direction != direction
            || stamp.index >= plan.calls()
            || expected_source[stamp.index] != source
        {
            report.misrouted += 1;
            continue;
        }
        let in_window = (plan.window_start_ns..plan.window_end_ns).contains(&arrived_ns);
        report.received[direction as usize] += 1;
        if in_window {
            report.received_in_window[direction as usize] += 1;
            let delay_us = arrived_ns.saturating_sub(stamp.sent_ns) / 1_000;
            report
                .delays_us
                .push(delay_us.min(u64::from(u32::MAX)) as u32);
        }
        let stream = &mut report.streams[stamp.index * 2 + direction as usize];
        let signed = |ns: u64| ns as i64;
        stream
            .at_receiver
            .update(signed(arrived_ns) - signed(stamp.nominal_ns), in_window);
        stream
            .added
            .update(signed(arrived_ns) - signed(stamp.sent_ns), in_window);
        stream
            .sender
            .update(signed(stamp.sent_ns) - signed(stamp.nominal_ns), in_window);
    }
    report
}

/// Reads and discards whatever waits on `socket` (ringback played before the answer),
/// for at most 10,000 datagrams.
pub fn drain(socket: &UdpSocket) -> std::io::Result<u64> {
    socket.set_nonblocking(true)?;
    let mut buf = [0u8; 2048];
    let mut drained = 0;
    for _ in 0..10_000 {
        match socket.recv_from(&mut buf) {
            Ok(_) => drained += 1,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {}
        }
    }
    socket.set_nonblocking(false)?;
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_carries_its_stamp() {
        let mut packet = [0u8; PACKET_LEN];
        write_packet(&mut packet, 977, Direction::PhoneToCaller, 70_000, 123, 456);
        assert_eq!(
            read_packet(&packet),
            Some(Stamp {
                index: 977,
                direction: Direction::PhoneToCaller,
                nominal_ns: 123,
                sent_ns: 456,
            })
        );
        assert_eq!(packet[1], 0, "PCMU");
        assert_eq!(packet[PACKET_LEN - 1], ULAW_SILENCE);
    }

    #[test]
    fn anything_else_is_not_ours() {
        assert_eq!(read_packet(&[]), None);
        assert_eq!(read_packet(&[0x80; PACKET_LEN]), None);
        let mut packet = [0u8; PACKET_LEN];
        write_packet(&mut packet, 1, Direction::CallerToPhone, 1, 1, 1);
        assert_eq!(read_packet(&packet[..PACKET_LEN - 1]), None);
        packet[HEADER_LEN + 8] = 7;
        assert_eq!(read_packet(&packet), None, "unknown direction");
    }
}
