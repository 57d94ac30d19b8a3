//! Our own corpus, written from the RFC 3261 §25 grammar (see `fixtures/README.md` for
//! the file format): tricky-but-legal messages in `fixtures/valid` must pass validation,
//! keep their meaning through the canonical form and be framed whole on a stream;
//! each message in `fixtures/invalid` breaks one rule and must get exactly the answer its
//! `# expect:` line names.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::exercise::{self, typed_views, verdict as check};
use sihai_sip::builder::MessageBuilder;
use sihai_sip::framing::{Frame, FrameLimits, frame};
use sihai_sip::message::unfold;
use sihai_sip::validate::check_response;
use sihai_sip::{HeaderName, Message, NameAddr, Scheme, Uri, Via};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

struct Fixture {
    name: String,
    expect: String,
    /// The message: the file without its leading `#` lines.
    bytes: Vec<u8>,
}

fn load(kind: &str) -> Vec<Fixture> {
    let dir = Path::new(DIR).join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sip"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let raw = std::fs::read(&path).unwrap();
            let mut rest = &raw[..];
            let mut comments = Vec::new();
            while rest.first() == Some(&b'#') {
                let end = rest
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .unwrap_or_else(|| panic!("{name}: comment line without CRLF"));
                comments.push(String::from_utf8(rest[..end].to_vec()).unwrap());
                rest = &rest[end + 2..];
            }
            let expect = comments
                .first()
                .and_then(|c| c.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{name}: the first line must be `# expect: ...`"))
                .to_string();
            // Guard against an editor or checkout converting line endings: every line of
            // the header section ends in CRLF.
            let head_end = rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(rest.len(), |p| p + 4);
            for (i, &b) in rest[..head_end].iter().enumerate() {
                assert!(
                    b != b'\n' || (i > 0 && rest[i - 1] == b'\r'),
                    "{name}: bare LF at octet {i} of the header section"
                );
            }
            Fixture {
                name,
                expect,
                bytes: rest.to_vec(),
            }
        })
        .collect()
}

fn parse(bytes: &[u8]) -> Message {
    Message::parse(Bytes::copy_from_slice(bytes)).unwrap()
}

#[test]
fn valid_fixtures_pass_and_round_trip() {
    let fixtures = load("valid");
    assert!(
        fixtures.len() >= 15,
        "only {} valid fixtures",
        fixtures.len()
    );
    for f in &fixtures {
        assert_eq!(
            f.expect, "valid",
            "{}: a valid fixture expects `valid`",
            f.name
        );
        let msg = Message::parse(Bytes::from(f.bytes.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", f.name));
        assert_eq!(check(&msg), Ok(()), "{}", f.name);
        assert_eq!(msg.malformed_line(), None, "{}", f.name);

        // canonical(parse(canonical(parse(x)))) == canonical(parse(x)), with the same typed views.
        let canonical = msg.canonical();
        let reparsed = Message::parse(canonical.clone())
            .unwrap_or_else(|e| panic!("{}: canonical form: {e}", f.name));
        assert_eq!(
            reparsed.canonical(),
            canonical,
            "{}: canonical form is not a fixed point",
            f.name
        );
        assert_eq!(
            typed_views(&reparsed),
            typed_views(&msg),
            "{}: canonical form means something else",
            f.name
        );
        assert_eq!(check(&reparsed), Ok(()), "{}", f.name);

        // On a stream: the whole message, after any keep-alive CRLFs.
        let mut at = 0;
        loop {
            match frame(&f.bytes[at..], &FrameLimits::default()) {
                Ok(Some(Frame::KeepAlive { len, .. })) => at += len,
                Ok(Some(Frame::Message { len })) => {
                    assert_eq!(at + len, f.bytes.len(), "{}: framed short", f.name);
                    break;
                }
                other => panic!("{}: framed as {other:?}", f.name),
            }
        }

        // What we answer to a valid request is a valid response.
        if msg.is_request() {
            let answer =
                MessageBuilder::response_to(&msg, 480, "Temporarily Unavailable", Some("sihai"))
                    .build();
            let answer = Message::parse(answer.as_bytes().clone()).unwrap();
            assert_eq!(check_response(&answer), Ok(()), "{}: our answer", f.name);
            assert_eq!(answer.call_id(), msg.call_id());
            assert_eq!(answer.vias().count(), msg.vias().count());
        }
        exercise::message(&f.bytes);
    }
}

#[test]
fn invalid_fixtures_get_the_expected_answer() {
    let fixtures = load("invalid");
    assert!(
        fixtures.len() >= 15,
        "only {} invalid fixtures",
        fixtures.len()
    );
    for f in &fixtures {
        let parsed = Message::parse(Bytes::from(f.bytes.clone()));
        if let Some(error) = f.expect.strip_prefix("unparseable ") {
            let err = parsed
                .err()
                .unwrap_or_else(|| panic!("{}: parsed, expected {error}", f.name));
            assert_eq!(format!("{err:?}"), error, "{}", f.name);
            continue;
        }
        let (status, reason) = f
            .expect
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}: bad expect line {:?}", f.name, f.expect));
        let status: u16 = status
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad status in {:?}", f.name, f.expect));
        let msg = parsed.unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let fault = check(&msg)
            .err()
            .unwrap_or_else(|| panic!("{}: accepted, expected {}", f.name, f.expect));
        assert_eq!(
            (fault.status, fault.reason.as_ref()),
            (status, reason),
            "{}",
            f.name
        );
        // The canonical form is rejected the same way.
        let canonical = Message::parse(msg.canonical()).unwrap();
        assert_eq!(
            check(&canonical),
            Err(fault),
            "{}: canonical form judged differently",
            f.name
        );
        exercise::message(&f.bytes);
    }
}

fn fixture(name: &str) -> Message {
    let f = load("valid")
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    parse(&f.bytes)
}

#[test]
fn ipv6_hosts() {
    let m = fixture("ipv6-hosts");
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!((ruri.host, ruri.port), ("[2001:db8::10]", Some(5060)));
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.host, via.port, via.received(), via.rport()),
        (
            "[2001:db8::1]",
            Some(5060),
            Some("2001:db8::1"),
            Some(Some(5060))
        )
    );
    assert_eq!(
        Via::parse(m.vias().nth(1).unwrap()).unwrap().host,
        "[2001:db8::2]"
    );
    let rr = NameAddr::parse(m.header(HeaderName::RecordRoute).unwrap())
        .unwrap()
        .parsed_uri()
        .unwrap();
    assert_eq!((rr.host, rr.param("lr")), ("[2001:db8::20]", Some(None)));
}

#[test]
fn tel_uris() {
    let m = fixture("tel-uris");
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(ruri.scheme, Scheme::Tel);
    assert_eq!(ruri.user, Some("+86-400-123-4567"));
    assert_eq!(ruri.param("phone-context"), Some(Some("+86")));
    assert_eq!(
        m.from().unwrap().parsed_uri().unwrap().user,
        Some("13800138000")
    );
    assert_eq!(m.to().unwrap().parsed_uri().unwrap().scheme, Scheme::Tel);
}

#[test]
fn quoted_display_names() {
    let m = fixture("quoted-display-names");
    assert_eq!(
        m.from().unwrap().display,
        Some(r#""Zhang \"Boss\" San \\ 张三""#)
    );
    assert_eq!(m.from().unwrap().tag(), Some("dn1"));
    assert_eq!(m.to().unwrap().display, Some(r#""""#));
    assert_eq!(
        NameAddr::parse(m.header(HeaderName::Contact).unwrap())
            .unwrap()
            .display,
        Some("Sales Line  Two")
    );
}

#[test]
fn folded_headers() {
    let m = fixture("folded-headers");
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.transport, via.host, via.port, via.branch()),
        ("UDP", "192.0.2.1", Some(5060), Some("z9hG4bK-fold-1"))
    );
    assert_eq!(m.max_forwards(), Ok(Some(70)));
    assert_eq!(m.call_id(), Ok("fold-1@192.0.2.1"));
    assert_eq!(m.cseq().unwrap().seq, 7);
    assert_eq!(m.from().unwrap().tag(), Some("fold1"));
    assert_eq!(
        unfold(m.header(HeaderName::Subject).unwrap()),
        "a subject folded with a tab and spaces"
    );
    assert_eq!(m.values(HeaderName::Contact).count(), 2);
}

#[test]
fn compact_forms() {
    let m = fixture("compact-forms");
    assert!(
        m.headers().all(|h| h.name() != HeaderName::Other),
        "every compact form is known"
    );
    let names: Vec<&str> = m
        .headers()
        .filter(|h| h.raw_name().len() == 1)
        .map(|h| h.canonical_name())
        .collect();
    assert_eq!(names.len(), 21);
    assert_eq!(m.vias().count(), 2);
    assert_eq!(
        m.values(HeaderName::Supported).collect::<Vec<_>>(),
        ["timer", "100rel"]
    );
    assert_eq!(
        m.header(HeaderName::ReferTo),
        Some("<sip:4009876543@sihai.example>")
    );
    assert_eq!(&m.body()[..], b"refer me");
}

#[test]
fn empty_values() {
    let m = fixture("empty-values");
    assert_eq!(m.get_all(HeaderName::Subject).collect::<Vec<_>>(), ["", ""]);
    assert_eq!(m.header(HeaderName::Supported), Some(""));
    assert_eq!(m.header_named("organization"), Some(""));
    assert_eq!(m.header_named("X-Empty"), Some(""));
}

#[test]
fn multiple_headers() {
    let m = fixture("multiple-headers");
    let branches: Vec<_> = m
        .vias()
        .map(|v| Via::parse(v).unwrap().branch().unwrap().to_string())
        .collect();
    assert_eq!(
        branches,
        [
            "z9hG4bK-multi-3",
            "z9hG4bK-multi-2",
            "z9hG4bK-multi-1",
            "z9hG4bK-multi-0"
        ]
    );
    assert_eq!(m.values(HeaderName::Route).count(), 3);
    assert_eq!(m.values(HeaderName::RecordRoute).count(), 3);
    assert_eq!(m.values(HeaderName::Allow).count(), 5);
    assert_eq!(m.header_named("x-trace"), Some("one"));
}

#[test]
fn quoted_commas() {
    let m = fixture("quoted-commas");
    let contacts: Vec<NameAddr> = m
        .values(HeaderName::Contact)
        .map(|c| NameAddr::parse(c).unwrap())
        .collect();
    assert_eq!(contacts.len(), 2);
    assert_eq!(
        (contacts[0].display, contacts[0].uri),
        (Some("\"Doe, John\""), "sip:john,doe@192.0.2.1")
    );
    assert_eq!(contacts[1].param("q"), Some(Some("0.5")));
    assert_eq!(m.values(HeaderName::Warning).count(), 2);
    assert_eq!(m.from().unwrap().display, Some("\"Doe, John\""));
}

#[test]
fn via_params() {
    let m = fixture("via-params");
    let vias: Vec<Via> = m.vias().map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(
        (vias[0].rport(), vias[0].branch()),
        (Some(None), Some("z9hG4bK-vp-3"))
    );
    assert_eq!(
        (vias[1].received(), vias[1].rport()),
        (Some("192.0.2.7"), Some(Some(5071)))
    );
    assert_eq!((vias[2].maddr(), vias[2].port), (Some("224.2.0.1"), None));
    assert_eq!(
        sihai_sip::scan::find_param(vias[2].params, "ttl"),
        Some(Some("16"))
    );
}

#[test]
fn responses() {
    let m = fixture("trying-with-timestamp");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("Trying")));
    assert_eq!(m.header(HeaderName::Timestamp), Some("54.32 0.25"));
    assert_eq!(m.to().unwrap().tag(), None);
    let m = fixture("response-utf8-reason");
    assert_eq!(m.reason(), Some("振铃中 (ringing)"));
    assert_eq!(m.values(HeaderName::RecordRoute).count(), 2);
}

#[test]
fn binary_body() {
    let f = load("valid")
        .into_iter()
        .find(|f| f.name == "binary-body")
        .unwrap();
    let m = parse(&f.bytes);
    let body = m.body();
    assert_eq!(body.len(), 13 + 24 + 256);
    assert!(f.bytes.ends_with(&body));
    assert!(body.starts_with(&[0, 1, 2, 0xff]));
}

#[test]
fn misc() {
    assert_eq!(
        fixture("register-star").header(HeaderName::Contact),
        Some("*")
    );
    let m = fixture("case-and-whitespace");
    assert_eq!(m.cseq().unwrap().seq, 42);
    assert_eq!(m.max_forwards(), Ok(Some(70)));
    assert_eq!(m.from().unwrap().tag(), Some("case1"));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-case-1"));
    let m = fixture("escapes-and-userinfo");
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(ruri.user_unescaped().unwrap(), "4001234567");
    assert_eq!(
        m.from().unwrap().parsed_uri().unwrap().password,
        Some("secret")
    );
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap())
        .unwrap()
        .parsed_uri()
        .unwrap();
    assert_eq!(contact.headers, Some("Subject=hi%20there&Priority=urgent"));
}
