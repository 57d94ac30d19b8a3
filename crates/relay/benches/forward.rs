//! Packets per second through one bridged call: `handle_packet` of a 20 ms G.711
//! packet from the caller, `poll_transmit` of the packet for the phone, and the buffer
//! handed back with `recycle`, the daemon's loop minus the sockets. PCMU ↔ PCMU
//! forwards the payload as it is; PCMU → PCMA converts it byte by byte.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sihai_media::{Law, RtpFields, write_rtp_to_vec};
use sihai_relay::{CallMedia, LegMedia, RelayConfig};

const CALLER_PORT: u16 = 20_000;
const PHONE_PORT: u16 = 20_002;

fn bridged_call(phone_law: Law, t0: Instant) -> CallMedia {
    let caller = LegMedia {
        local_port: CALLER_PORT,
        remote: Some("198.51.100.7:4000".parse().unwrap()),
        law: Law::Ulaw,
        payload_type: 0,
        telephone_event: Some(101),
    };
    let phone = LegMedia {
        local_port: PHONE_PORT,
        remote: Some("203.0.113.5:5004".parse().unwrap()),
        law: phone_law,
        payload_type: phone_law.payload_type(),
        telephone_event: Some(101),
    };
    let mut call = CallMedia::new(RelayConfig::default(), caller, t0, 7).unwrap();
    call.set_phone(phone, t0).unwrap();
    call.bridge(t0);
    call
}

fn forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay_forward");
    group.throughput(Throughput::Elements(1));
    for (name, phone_law) in [("pcmu_to_pcmu", Law::Ulaw), ("pcmu_to_pcma", Law::Alaw)] {
        let t0 = Instant::now();
        let mut call = bridged_call(phone_law, t0);
        let source: SocketAddr = "198.51.100.7:4000".parse().unwrap();
        let payload: Vec<u8> = (0..160u8).collect();
        let mut datagram = Vec::new();
        let fields = RtpFields {
            marker: false,
            payload_type: 0,
            sequence: 0,
            timestamp: 0,
            ssrc: 0xCAFE,
        };
        write_rtp_to_vec(&mut datagram, &fields, &payload).unwrap();
        let mut sequence: u16 = 0;
        let mut now = t0;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A real stream: the next sequence number, timestamp and arrival time.
                sequence = sequence.wrapping_add(1);
                let timestamp = u32::from(sequence) * 160;
                datagram[2..4].copy_from_slice(&sequence.to_be_bytes());
                datagram[4..8].copy_from_slice(&timestamp.to_be_bytes());
                now += Duration::from_millis(20);
                call.handle_packet(now, CALLER_PORT, source, black_box(&datagram));
                let transmit = call.poll_transmit().unwrap();
                black_box(&transmit.payload);
                call.recycle(transmit.payload);
            })
        });
        assert_eq!(call.stats().caller.dropped(), 0);
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
