//! Heap bytes per held call: N calls routed, answered and ACKed through the B2BUA in
//! memory, held, then counted by a global allocator that tallies live bytes. This is the
//! signalling state a call costs (the daemon's resident size adds the runtime and the
//! tables; the CPS harness measures that from the outside).
//!
//! `cargo bench --bench held_calls` holds 50,000 calls; under `cargo test` it holds 200.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use jiff::Timestamp;
use sihai_call::B2buaConfig;
use sihai_config::Config;
use sihai_routing::RoutingTable;
use sihai_server::{Core, Stats};
use sihai_sip::builder::MessageBuilder;
use sihai_sip::{HeaderName, Message, Method, Peer, Transport};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const CONFIG: &str = r#"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"
[[trunk]]
name = "lab"
sources = ["127.0.0.0/8"]
gateway = "sip:{number}@127.0.0.1:5080"
[[enterprise]]
id = "acme"
name = "Acme"
[[number]]
number = "4000000000"
enterprise = "acme"
status = "active"
plan = "main"
[[plan]]
name = "main"
enterprise = "acme"
group = "sales"
[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
"#;

/// 60 phones of 1,000 channels each: room for the 50,000 held calls.
fn config_text() -> String {
    let phones: Vec<String> = (0..60)
        .map(|i| format!("{{ number = \"139{i:08}\", capacity = 1000 }}"))
        .collect();
    format!("{CONFIG}phones = [{}]\n", phones.join(", "))
}

/// A realistic carrier INVITE with SDP, as the benchmark's calls arrive.
fn invite(n: u64) -> String {
    let sdp = "v=0\r\no=SBC 1862 2671 IN IP4 127.0.0.1\r\ns=SIP Call\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 31204 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
               a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n";
    format!(
        "INVITE sip:4000000000@127.0.0.1:5060;user=phone SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-524287-1---{n:016x};rport\r\n\
         Max-Forwards: 69\r\nRecord-Route: <sip:127.0.0.1:5062;lr;ftag=as{n}>\r\n\
         Contact: <sip:13812345678@127.0.0.1:5062;transport=udp>\r\nTo: <sip:4000000000@127.0.0.1;user=phone>\r\n\
         From: \"13812345678\" <sip:13812345678@127.0.0.1;user=phone>;tag=as{n}\r\n\
         Call-ID: {n:032x}@127.0.0.1\r\nCSeq: 102 INVITE\r\n\
         Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PRACK, UPDATE\r\n\
         Supported: 100rel, timer, replaces\r\nSession-Expires: 1800;refresher=uac\r\n\
         P-Asserted-Identity: <sip:+8613812345678@127.0.0.1;user=phone>\r\nUser-Agent: Carrier-SBC/5.2\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let calls: u64 = if bench { 50_000 } else { 200 };
    let config = Config::from_str(&config_text(), "bench.toml").expect("bench config");
    let routing = Arc::new(ArcSwap::from_pointee(RoutingTable::compile(&config)));
    let b2bua = B2buaConfig {
        timers: sihai_transaction::TimerConfig::default(),
        user_agent: "sihai-bench".into(),
        udp: Some("127.0.0.1:5060".parse().expect("addr")),
        tcp: None,
    };
    let mut core = Core::new(b2bua, routing, Arc::new(Stats::default()));
    let carrier = Peer::new(Transport::Udp, "127.0.0.1:5062".parse().expect("addr"));
    let phone = Peer::new(Transport::Udp, "127.0.0.1:5080".parse().expect("addr"));
    let wall = Timestamp::now();
    let start = Instant::now();
    // Warm up lazily built tables (the region table, the tz database) before counting.
    sihai_region::RegionTable::embedded();
    let _ = sihai_routing::schedule::china_time_zone();

    let before = LIVE.load(Ordering::Relaxed);
    for n in 0..calls {
        core.handle_received(start, wall, Bytes::from(invite(n)), carrier);
        let mut leg = None;
        let mut tag = String::new();
        while let Some(t) = core.poll_transmit() {
            if t.destination == phone {
                leg = Message::parse(t.payload).ok();
            }
        }
        let leg = leg.expect("the phone is called");
        let ok = MessageBuilder::response_to(&leg, 200, "OK", Some("ph"))
            .header(HeaderName::Contact, "<sip:p@127.0.0.1:5080>")
            .body("application/sdp", b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n");
        core.handle_received(start, wall, ok.wire(), phone);
        while let Some(t) = core.poll_transmit() {
            if t.destination == carrier
                && let Ok(m) = Message::parse(t.payload)
                && m.status() == Some(200)
            {
                tag = m
                    .to()
                    .ok()
                    .and_then(|t| t.tag())
                    .unwrap_or_default()
                    .to_string();
            }
        }
        let ack = format!(
            "{m} sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKack{n}\r\n\
             From: \"13812345678\" <sip:13812345678@127.0.0.1;user=phone>;tag=as{n}\r\nTo: <sip:4000000000@127.0.0.1;user=phone>;tag={tag}\r\n\
             Call-ID: {n:032x}@127.0.0.1\r\nCSeq: 102 {m}\r\nContent-Length: 0\r\n\r\n",
            m = Method::Ack.as_str()
        );
        core.handle_received(start, wall, Bytes::from(ack), carrier);
        while core.poll_transmit().is_some() {}
    }
    // The INVITE transactions end on their 2xx; let every finished transaction expire,
    // as it would a few seconds into a real call.
    core.handle_timeout(start + std::time::Duration::from_secs(40), wall);
    while core.poll_transmit().is_some() {}
    let held = core.active_calls();
    assert_eq!(held as u64, calls, "every call is held");
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "held_calls: {held} calls held, {} bytes of heap, {:.0} bytes per held call",
        bytes,
        bytes as f64 / held as f64
    );
}
