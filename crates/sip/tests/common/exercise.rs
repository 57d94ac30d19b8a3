//! Drives every entry point of sihai-sip over any input and checks what must hold for
//! *any* input, valid or not. A panic here is a finding.
//!
//! Shared by `tests/properties.rs` and the cargo-fuzz targets in `fuzz/` (which include
//! this file with `#[path]`), so it uses only the crate's public API and `bytes`.

#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use sihai_sip::builder::{MessageBuilder, reason_phrase};
use sihai_sip::framing::{Frame, FrameLimits, FramingError, frame};
use sihai_sip::message::unfold;
use sihai_sip::rewrite::Rewriter;
use sihai_sip::validate::{Fault, check_request, check_response, is_answerable};
use sihai_sip::{ContentLength, HeaderName, Message, NameAddr, Peer, Transport, Uri, Via};

const VIA: &str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-exercise";
const RURI: &str = "sip:4001234567@192.0.2.1";
const RECORD_ROUTE: &str = "<sip:192.0.2.1;lr>";
const DIVERSION: &str = "<sip:4001234567@192.0.2.1>";

/// The validator's verdict for a message of either kind.
pub fn verdict(msg: &Message) -> Result<(), Fault> {
    if msg.is_request() {
        check_request(msg)
    } else {
        check_response(msg)
    }
}

/// Parses `data` as one datagram and, when it parses, runs every typed view, the
/// validators, the canonical form, the builder and the rewriter over it.
pub fn message(data: &[u8]) {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    views(&msg);
    let judged = verdict(&msg);
    let _ = is_answerable(&msg);

    // The canonical form is a fixed point and means what the message means.
    let canonical = msg.canonical();
    let again = Message::parse(canonical.clone()).expect("the canonical form parses");
    assert_eq!(
        again.canonical(),
        canonical,
        "the canonical form is not a fixed point"
    );
    assert_eq!(
        verdict(&again),
        judged,
        "the canonical form is judged differently"
    );
    if judged.is_ok() {
        assert_eq!(
            typed_views(&again),
            typed_views(&msg),
            "the canonical form reads differently"
        );
    }

    builder(&msg);
    rewriter(&msg, judged.is_ok());
}

/// Every typed view of a message, forced.
pub fn views(msg: &Message) {
    let _ = typed_views(msg);
    let _ = (
        msg.as_bytes(),
        msg.wire(),
        msg.version(),
        msg.content_type(),
        msg.malformed_line(),
    );
    let _ = msg
        .request_uri()
        .map(|u| Uri::parse(u).map(|u| (u.is_sip(), u.param("transport"), u.user_unescaped())));
    let peer = Peer::new(Transport::Udp, SocketAddr::from(([192, 0, 2, 9], 5060)));
    for via in msg.vias() {
        if let Ok(v) = Via::parse(via) {
            let _ = (
                v.has_rfc3261_branch(),
                v.known_transport(),
                v.response_target(peer),
            );
        }
    }
    let _ = msg.top_via();
    for name in [
        HeaderName::ReferTo,
        HeaderName::ReferredBy,
        HeaderName::PAssertedIdentity,
        HeaderName::Diversion,
    ] {
        for value in msg.values(name) {
            let _ = NameAddr::parse(value)
                .map(|a| (a.tag(), a.parsed_uri().map(|u| u.user_unescaped())));
        }
    }
    for h in msg.headers() {
        let _ = msg.header_named(h.raw_name());
        let _ = (h.name().is_list(), h.name().is_single(), h.canonical_name());
    }
}

/// What the typed views say, comparable across two parses of one meaning.
pub fn typed_views(m: &Message) -> Vec<String> {
    let mut out = vec![
        format!(
            "{:?} {:?} {:?} {:?}",
            m.method(),
            m.request_uri(),
            m.status(),
            m.reason()
        ),
        format!("{:?} {:?} {:?}", m.call_id(), m.cseq(), m.max_forwards()),
        format!(
            "{:?} {:?} {:?}",
            m.content_length(),
            m.body(),
            m.content_type().map(unfold)
        ),
        format!("{:?}", m.malformed_line()),
    ];
    for (what, addr) in [("from", m.from()), ("to", m.to())] {
        out.push(match addr {
            Ok(a) => format!(
                "{what} {:?} {:?} {:?} {:?}",
                a.display.map(unfold),
                a.uri,
                a.tag(),
                a.parsed_uri()
            ),
            Err(e) => format!("{what} {e:?}"),
        });
    }
    for via in m.vias() {
        out.push(match Via::parse(via) {
            Ok(v) => format!(
                "via {} {} {} {} {:?} {:?} {:?} {:?} {:?}",
                v.protocol,
                v.version,
                v.transport,
                v.host,
                v.port,
                v.branch(),
                v.received(),
                v.rport(),
                v.maddr()
            ),
            Err(e) => format!("via {e:?}"),
        });
    }
    for name in [
        HeaderName::Contact,
        HeaderName::Route,
        HeaderName::RecordRoute,
    ] {
        for value in m.values(name) {
            out.push(match NameAddr::parse(value) {
                Ok(a) => format!(
                    "{name:?} {:?} {:?} {:?}",
                    a.display.map(unfold),
                    a.uri,
                    unfold(a.params)
                ),
                Err(e) => format!("{name:?} {e:?}"),
            });
        }
    }
    for h in m.headers() {
        out.push(format!("{} = {}", h.canonical_name(), unfold(h.value())));
    }
    out
}

/// What we build in answer to a message parses back to what was built.
fn builder(msg: &Message) {
    if !msg.is_request() {
        return;
    }
    let built_means_what_it_says = |built: &Message, what: &str| {
        let parsed = Message::parse(built.as_bytes().clone())
            .unwrap_or_else(|e| panic!("a built {what} does not parse: {e}"));
        assert_eq!(
            parsed.canonical(),
            built.canonical(),
            "a built {what} reads differently"
        );
        views(&parsed);
        parsed
    };
    for (code, tag) in [
        (100, Some("t")),
        (180, Some("t")),
        (400, None),
        (486, Some("t")),
    ] {
        let response = MessageBuilder::response_to(msg, code, reason_phrase(code), tag)
            .header(HeaderName::Server, "sihai")
            .build();
        let parsed = built_means_what_it_says(&response, "response");
        assert_eq!(parsed.status(), Some(code));
        assert_eq!(
            parsed.vias().count(),
            msg.vias().count(),
            "a response carries every Via"
        );
        if let Ok(call_id) = msg.call_id() {
            assert_eq!(parsed.call_id(), Ok(call_id));
        }
    }
    let response = MessageBuilder::response_to(msg, 404, "Not Found", Some("t")).build();
    built_means_what_it_says(&MessageBuilder::ack_for(msg, &response).build(), "ACK");
    built_means_what_it_says(&MessageBuilder::cancel_for(msg).build(), "CANCEL");
}

/// Edits never panic and always give a message that parses; on a valid request (what a
/// proxy forwards) they do exactly what they say.
fn rewriter(msg: &Message, valid: bool) {
    let valid_request = valid && msg.is_request();

    let mut rw = Rewriter::new(msg);
    rw.push_via(VIA);
    let uri_set = rw.set_request_uri(RURI).is_ok();
    let max_forwards = rw.decrement_max_forwards();
    rw.add_record_route(RECORD_ROUTE);
    rw.append_header(HeaderName::Diversion, DIVERSION);
    let out = Message::parse(rw.finish()).expect("a rewritten message parses");
    views(&out);
    assert_eq!(uri_set, msg.is_request());
    if valid_request {
        assert_eq!(out.vias().next(), Some(VIA));
        assert_eq!(out.vias().count(), msg.vias().count() + 1);
        assert_eq!(out.request_uri(), Some(RURI));
        if let Ok(n) = max_forwards {
            assert_eq!(out.max_forwards(), Ok(Some(n)));
        }
        assert_eq!(
            out.values(HeaderName::RecordRoute).next(),
            Some(RECORD_ROUTE)
        );
        assert_eq!(out.values(HeaderName::Diversion).last(), Some(DIVERSION));
        assert_eq!(out.body(), msg.body());
        assert_eq!(
            check_request(&out),
            Ok(()),
            "a forwarded valid request is valid"
        );
    }

    if let Ok(rw) = Rewriter::new(msg).pop_via() {
        let out = Message::parse(rw.finish()).expect("a message with a Via popped parses");
        if valid {
            assert_eq!(
                out.vias().collect::<Vec<_>>(),
                msg.vias().skip(1).collect::<Vec<_>>()
            );
        }
    }

    let mut rw = Rewriter::new(msg);
    rw.set_body("text/plain", b"replaced\r\n")
        .remove_header(HeaderName::Subject);
    let out = Message::parse(rw.finish()).expect("a message with a new body parses");
    if valid {
        assert_eq!(&out.body()[..], b"replaced\r\n");
        assert_eq!(out.content_length(), ContentLength::Declared(10));
        assert_eq!(out.content_type(), Some("text/plain"));
        assert_eq!(out.count(HeaderName::Subject), 0);
    }
}

/// What the framer makes of a byte stream, keep-alives left out: the messages it cut and
/// how the stream ended (`None`: waiting for more).
#[derive(Debug, PartialEq, Eq)]
pub struct Framed {
    pub messages: Vec<Vec<u8>>,
    pub end: Option<FramingError>,
}

/// Frames `data` as a connection receiving it in chunks of the given sizes (the rest in
/// one last chunk). Every message cut parses, when it parses at all, to a message whose
/// Content-Length ends exactly at the cut.
pub fn stream_in_chunks(data: &[u8], chunks: &[usize], limits: &FrameLimits) -> Framed {
    let mut buf: Vec<u8> = Vec::new();
    let mut framed = Framed {
        messages: Vec::new(),
        end: None,
    };
    let mut fed = 0;
    let mut sizes = chunks.iter().copied().chain(std::iter::once(usize::MAX));
    while fed < data.len() {
        let size = sizes
            .next()
            .unwrap_or(usize::MAX)
            .clamp(1, data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + size]);
        fed += size;
        loop {
            match frame(&buf, limits) {
                Ok(Some(Frame::Message { len })) => {
                    assert!(
                        len > 0 && len <= buf.len(),
                        "frame of {len} octets from a buffer of {}",
                        buf.len()
                    );
                    let cut: Vec<u8> = buf.drain(..len).collect();
                    if let Ok(msg) = Message::parse(Bytes::from(cut.clone())) {
                        assert!(
                            matches!(msg.content_length(), ContentLength::Declared(_)),
                            "framer and parser disagree: {:?}",
                            msg.content_length()
                        );
                        assert_eq!(
                            msg.wire().len(),
                            cut.len(),
                            "framer and parser disagree on the body"
                        );
                    }
                    framed.messages.push(cut);
                }
                Ok(Some(Frame::KeepAlive { len, .. })) => {
                    assert!(len > 0 && len <= buf.len());
                    assert!(buf[..len].iter().all(|&b| b == b'\r' || b == b'\n'));
                    buf.drain(..len);
                }
                Ok(None) => break,
                Err(e) => {
                    framed.end = Some(e);
                    return framed;
                }
            }
        }
    }
    framed
}

/// Framing is the same however the stream is cut into reads.
pub fn stream(data: &[u8], chunks: &[usize]) -> Framed {
    let limits = FrameLimits {
        max_header_bytes: 2048,
        max_body_bytes: 4096,
    };
    let whole = stream_in_chunks(data, &[], &limits);
    let chunked = stream_in_chunks(data, chunks, &limits);
    assert_eq!(chunked, whole, "framing depends on how the stream was read");
    for m in &whole.messages {
        message(m);
    }
    whole
}
