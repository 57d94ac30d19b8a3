//! The cost of the hot path's first step: parse a realistic carrier INVITE (with SDP)
//! and rewrite it for forwarding (push a Via, new Request-URI, Max-Forwards, a
//! Record-Route, the dialled number in Diversion), against `rsip` parsing the same bytes
//! as the reference in the same run. Figures go in docs/performance.md.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sihai_sip::rewrite::Rewriter;
use sihai_sip::validate::check_request;
use sihai_sip::{HeaderName, Message};
use std::hint::black_box;

const INVITE: &[u8] = b"INVITE sip:4001234567@127.0.0.1:5060;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK-524287-1---a6e4e0b8f06b5d36;rport\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:10.1.2.3;lr;ftag=as1d34e>\r\n\
Contact: <sip:13812345678@10.1.2.3:5060;transport=udp>\r\n\
To: <sip:4001234567@127.0.0.1;user=phone>\r\n\
From: \"13812345678\" <sip:13812345678@10.1.2.3;user=phone>;tag=as1d34e\r\n\
Call-ID: 6d0e8b2a47c7c8f23c1b1e6b4a3b2c1d@10.1.2.3\r\n\
CSeq: 102 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PRACK, UPDATE\r\n\
Supported: 100rel, timer, replaces\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Min-SE: 90\r\n\
P-Asserted-Identity: <sip:+8613812345678@10.1.2.3;user=phone>\r\n\
User-Agent: Carrier-SBC/5.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 236\r\n\
\r\n\
v=0\r\n\
o=SBC 1862 2671 IN IP4 10.1.2.3\r\n\
s=SIP Call\r\n\
c=IN IP4 10.1.2.4\r\n\
t=0 0\r\n\
m=audio 31204 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn parse_and_rewrite(c: &mut Criterion) {
    let wire = Bytes::from_static(INVITE);
    assert!(
        Message::parse(wire.clone()).is_ok_and(|m| check_request(&m).is_ok()),
        "bench INVITE must be valid"
    );
    let mut group = c.benchmark_group("invite");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(wire.clone())))
    });
    group.bench_function("parse_validate", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(wire.clone())).ok()?;
            check_request(&msg).ok()
        })
    });
    group.bench_function("parse_rewrite", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(wire.clone())).ok()?;
            let mut rw = Rewriter::new(&msg);
            rw.push_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sihai-1");
            rw.set_request_uri("sip:13900000001@127.0.0.1:5080").ok()?;
            rw.decrement_max_forwards().ok()?;
            rw.add_record_route("<sip:127.0.0.1:5060;lr>");
            rw.append_header(
                HeaderName::Diversion,
                "<sip:4001234567@127.0.0.1>;reason=unconditional",
            );
            Some(rw.finish())
        })
    });
    group.bench_function("parse_validate_rewrite", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(wire.clone())).ok()?;
            check_request(&msg).ok()?;
            let mut rw = Rewriter::new(&msg);
            rw.push_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-sihai-1");
            rw.set_request_uri("sip:13900000001@127.0.0.1:5080").ok()?;
            rw.decrement_max_forwards().ok()?;
            rw.add_record_route("<sip:127.0.0.1:5060;lr>");
            rw.append_header(
                HeaderName::Diversion,
                "<sip:4001234567@127.0.0.1>;reason=unconditional",
            );
            Some(rw.finish())
        })
    });
    // The reference in the same run: a general-purpose SIP crate parsing the same bytes
    // into owned structures (what `rsip` does for every message).
    group.bench_function("reference_rsip_parse", |b| {
        b.iter(|| rsip::SipMessage::try_from(black_box(INVITE)).ok())
    });
    group.finish();
}

criterion_group!(benches, parse_and_rewrite);
criterion_main!(benches);
