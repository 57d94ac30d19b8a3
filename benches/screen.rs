//! What the screen in front of the transaction layer costs per request: the flood
//! limiter's lookup, the scanner check and the trunk ACL for a request that passes, and
//! the whole path for what it turns away (a stateless 403 to an untrusted INVITE; a
//! request from a flooding source, shed before it is parsed).

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use sihai_call::B2buaConfig;
use sihai_config::Config;
use sihai_routing::RoutingTable;
use sihai_server::screen::{Admission, FloodLimiter, ScreenSettings};
use sihai_server::{Core, Stats};
use sihai_sip::{Message, Peer, Transport};

/// Ten trunks of a few networks each; the one the requests come from is the last.
fn config() -> Config {
    let mut text =
        String::from("[sip]\n[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n");
    for i in 0..10 {
        text.push_str(&format!(
            "[[trunk]]\nname = \"t{i}\"\nsources = [\"10.{i}.0.0/16\", \"172.16.{i}.0/24\", \"192.168.{i}.7\"]\ngateway = \"sip:{{number}}@127.0.0.1:5080\"\n"
        ));
    }
    text.push_str("[[trunk]]\nname = \"lab\"\nsources = [\"127.0.0.1\"]\ngateway = \"sip:{number}@127.0.0.1:5080\"\n");
    Config::from_str(&text, "bench.toml").expect("bench config")
}

fn core(routing: Arc<ArcSwap<RoutingTable>>, max_requests_per_source: u32) -> Core {
    let b2bua = B2buaConfig {
        timers: sihai_transaction::TimerConfig::default(),
        user_agent: "sihai-bench".into(),
        udp: Some("127.0.0.1:5060".parse().expect("addr")),
        tcp: None,
    };
    let mut core = Core::new(b2bua, routing, Arc::new(Stats::default()));
    core.set_screening(ScreenSettings {
        max_requests_per_source,
        ..ScreenSettings::default()
    });
    core
}

const INVITE: &str = "INVITE sip:4001234567@127.0.0.1:5060 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 127.0.0.2:5099;branch=z9hG4bK-flood-1\r\n\
    From: <sip:100@127.0.0.2:5099>;tag=scan1\r\nTo: <sip:4001234567@127.0.0.1:5060>\r\n\
    Call-ID: flood-1@127.0.0.2\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.2:5099>\r\n\
    Max-Forwards: 70\r\nUser-Agent: Huawei SoftX3000 V300R010\r\nContent-Length: 0\r\n\r\n";

fn checks(c: &mut Criterion) {
    let config = config();
    let table = RoutingTable::compile(&config);
    let settings = ScreenSettings::from_config(&config.sip);
    let mut limiter = FloodLimiter::new(config.sip.max_requests_per_source);
    let now = Instant::now();
    // A thousand sources known, the trunk among them.
    for i in 0..1_000u32 {
        limiter.admit(now, IpAddr::from((0x0A00_0000 + i).to_be_bytes()));
    }
    let trunk: IpAddr = "127.0.0.1".parse().expect("ip");
    let invite = Message::parse(Bytes::from_static(INVITE.as_bytes())).expect("INVITE");
    let mut group = c.benchmark_group("screen");
    group.throughput(Throughput::Elements(1));
    // The limiter would stop the trunk after its burst: advance the clock with the
    // iterations so that it stays within its limit, as a real trunk does.
    let mut at = now;
    let step = std::time::Duration::from_micros(250);
    group.bench_function("limiter_admit", |b| {
        b.iter(|| {
            at += step;
            black_box(limiter.admit(at, black_box(trunk)))
        })
    });
    group.bench_function("scanner_check", |b| {
        b.iter(|| {
            black_box(&invite)
                .header(sihai_sip::HeaderName::UserAgent)
                .is_some_and(|agent| settings.is_scanner(agent))
        })
    });
    group.bench_function("trunk_acl_11_trunks", |b| {
        b.iter(|| table.trunk_for(black_box(trunk)).is_some())
    });
    group.bench_function("trunk_request_all_checks", |b| {
        b.iter(|| {
            at += step;
            let admitted = limiter.admit(at, black_box(trunk)) == Admission::Within;
            let scanner = invite
                .header(sihai_sip::HeaderName::UserAgent)
                .is_some_and(|agent| settings.is_scanner(agent));
            let trusted = table.trunk_for(black_box(trunk)).is_some();
            black_box((admitted, scanner, trusted))
        })
    });
    group.finish();
}

fn turned_away(c: &mut Criterion) {
    let routing = Arc::new(ArcSwap::from_pointee(RoutingTable::compile(&config())));
    let stranger = Peer::new(Transport::Udp, "127.0.0.2:5099".parse().expect("addr"));
    let wall = Timestamp::now();
    let mut group = c.benchmark_group("screen");
    group.throughput(Throughput::Elements(1));
    let mut core_unlimited = core(routing.clone(), u32::MAX);
    group.bench_function("untrusted_invite_stateless_403", |b| {
        b.iter(|| {
            core_unlimited.handle_received(
                Instant::now(),
                wall,
                Bytes::from_static(INVITE.as_bytes()),
                stranger,
            );
            black_box(core_unlimited.poll_transmit().expect("a 403"))
        })
    });
    assert_eq!(core_unlimited.transactions(), 0);
    let mut core_limited = core(routing, 1);
    group.bench_function("flood_request_shed_unparsed", |b| {
        b.iter(|| {
            core_limited.handle_received(
                Instant::now(),
                wall,
                Bytes::from_static(INVITE.as_bytes()),
                stranger,
            );
            black_box(core_limited.poll_transmit())
        })
    });
    group.finish();
}

criterion_group!(benches, checks, turned_away);
criterion_main!(benches);
