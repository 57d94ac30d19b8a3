//! The per-call hot path beyond parsing: the routing decision against a table of
//! 1,000,000 numbers, compiling a 100,000-number configuration (what a reload costs),
//! and one whole call through the B2BUA in memory — INVITE, phone's 200, ACK, BYE, CDR —
//! with no sockets, reported as calls per second on one core.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_call::B2buaConfig;
use sihai_config::Config;
use sihai_region::RegionTable;
use sihai_routing::{CallRequest, Decision, RoutingTable, route};
use sihai_server::{Core, Stats};
use sihai_sip::builder::MessageBuilder;
use sihai_sip::{HeaderName, Message, Method, Peer, Transport};

const BASE: &str = r#"
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
[[plan]]
name = "main"
enterprise = "acme"
group = "sales"
[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000001", capacity = 1000 }]
"#;

fn number(i: usize) -> String {
    format!("400{:07}", i)
}

fn numbers_toml(count: usize) -> String {
    let mut text = String::from(BASE);
    for i in 0..count {
        text.push_str(&format!("[[number]]\nnumber = \"{}\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n", number(i)));
    }
    text
}

fn routing_decision(c: &mut Criterion) {
    let mut config = Config::from_str(&numbers_toml(1), "bench.toml").expect("bench config");
    let template = config.numbers[0].clone();
    config.numbers = (0..1_000_000)
        .map(|i| {
            let mut n = template.clone();
            n.number = number(i);
            n
        })
        .collect();
    let table = RoutingTable::compile(&config);
    assert_eq!(table.numbers.len(), 1_000_000);
    let regions = RegionTable::embedded();
    let zone = sihai_routing::schedule::china_time_zone();
    // Spread lookups over the table, written as carriers write them.
    let dialled: Vec<String> = (0..4096)
        .map(|i| format!("+86{}", number(i * 244 % 1_000_000)))
        .collect();
    let now = Timestamp::now();
    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("decision_among_1m_numbers", |b| {
        b.iter(|| {
            i = (i + 1) % dialled.len();
            let request = CallRequest {
                source: [127, 0, 0, 1].into(),
                dialled: &dialled[i],
                caller: "13800138000",
                privacy: false,
            };
            let decision = route(&table, regions, black_box(&request), now, &zone);
            assert!(matches!(decision, Decision::Route(_)));
            decision
        })
    });
    group.finish();

    let text = numbers_toml(100_000);
    let mut group = c.benchmark_group("reload");
    group.sample_size(10);
    group.bench_function("validate_and_compile_100k_numbers", |b| {
        b.iter(|| {
            let config = Config::from_str(black_box(&text), "bench.toml").expect("valid");
            RoutingTable::compile(&config)
        })
    });
    group.finish();
}

fn whole_call(c: &mut Criterion) {
    let config = Config::from_str(&numbers_toml(1), "bench.toml").expect("bench config");
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
    let mut n = 0u64;
    let mut group = c.benchmark_group("b2bua");
    group.throughput(Throughput::Elements(1));
    group.bench_function("whole_call_in_memory", |b| {
        b.iter(|| {
            n += 1;
            let now = Instant::now();
            let wall = Timestamp::now();
            let invite = format!(
                "INVITE sip:4000000000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKb{n};rport\r\n\
                 From: <sip:13800138000@127.0.0.1>;tag=c{n}\r\nTo: <sip:4000000000@127.0.0.1>\r\nCall-ID: bench-{n}\r\n\
                 CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:13800138000@127.0.0.1:5062>\r\n\
                 Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n"
            );
            core.handle_received(now, wall, Bytes::from(invite), carrier);
            let mut leg = None;
            while let Some(t) = core.poll_transmit() {
                if t.destination == phone {
                    leg = Message::parse(t.payload).ok();
                }
            }
            let leg = leg.expect("the phone is called");
            let ok = MessageBuilder::response_to(&leg, 200, "OK", Some("ph")).header(HeaderName::Contact, "<sip:p@127.0.0.1:5080>").body("application/sdp", b"v=0\r\n");
            core.handle_received(now, wall, ok.wire(), phone);
            let mut caller_tag = String::new();
            while let Some(t) = core.poll_transmit() {
                if t.destination == carrier
                    && let Ok(m) = Message::parse(t.payload)
                    && m.status() == Some(200)
                {
                    caller_tag = m.to().ok().and_then(|t| t.tag()).unwrap_or_default().to_string();
                }
            }
            let in_dialog = |method: Method<'_>, cseq: u32| {
                format!(
                    "{m} sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKb{n}{m}\r\n\
                     From: <sip:13800138000@127.0.0.1>;tag=c{n}\r\nTo: <sip:4000000000@127.0.0.1>;tag={caller_tag}\r\n\
                     Call-ID: bench-{n}\r\nCSeq: {cseq} {m}\r\nContent-Length: 0\r\n\r\n",
                    m = method.as_str()
                )
            };
            core.handle_received(now, wall, Bytes::from(in_dialog(Method::Ack, 1)), carrier);
            core.handle_received(now, wall, Bytes::from(in_dialog(Method::Bye, 2)), carrier);
            let mut bye = None;
            while let Some(t) = core.poll_transmit() {
                if t.destination == phone {
                    bye = Message::parse(t.payload).ok();
                }
            }
            let bye = bye.expect("BYE to the phone");
            core.handle_received(now, wall, MessageBuilder::response_to(&bye, 200, "OK", None).build().wire(), phone);
            while core.poll_transmit().is_some() {}
            if n.is_multiple_of(1024) {
                // Let the finished transactions' Timers J/K expire, as the daemon would.
                core.handle_timeout(now + Duration::from_secs(60), wall);
                while core.poll_transmit().is_some() {}
            }
            core.poll_record().expect("a CDR per call")
        })
    });
    group.finish();
    assert_eq!(core.active_calls(), 0);
}

criterion_group!(benches, routing_decision, whole_call);
criterion_main!(benches);
