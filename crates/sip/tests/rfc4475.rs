//! The 49 SIP torture test messages of RFC 4475, judged as a UAS/B2BUA element judges
//! them with this crate alone: parse the datagram, run [`check_request`] or
//! [`check_response`], and cut the same octets as a TCP stream with [`frame`].
//!
//! The messages ship in `tests/rfc4475/` (with their index, digests and provenance).
//! When they are missing the test fails: a conformance suite that silently runs nothing
//! proves nothing.
//!
//! [`EXPECTED`] says, for every message, what this layer decides and why; the test checks
//! that this is what the code does, and that the decision satisfies the `pass_if` column
//! of `INDEX.tsv`. A request that passes validation is handed to the application, which
//! never answers `400` (only the validator does); where `pass_if` asks for a specific
//! answer (`416`, `420`), the table names it and a per-message test checks the fact the
//! application bases it on (the URI scheme, the `Require` tags). The per-message tests at
//! the end check what the typed views see: that nothing is truncated, unescaped twice or
//! mistaken for something else.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sihai_sip::framing::{Frame, FrameLimits, FramingError, frame};
use sihai_sip::rewrite::{RewriteError, Rewriter};
use sihai_sip::uri::unescape;
use sihai_sip::validate::{check_request, check_response, is_answerable};
use sihai_sip::{ContentLength, HeaderName, Message, Method, NameAddr, Scheme, Uri, Via};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rfc4475");

fn dir() -> PathBuf {
    let dir = Path::new(DIR);
    assert!(
        dir.join("INDEX.tsv").is_file(),
        "RFC 4475 torture messages not found at {} (they ship in the repository under crates/sip/tests/rfc4475; \
         this test must not be skipped",
        dir.display()
    );
    dir.to_path_buf()
}

fn read(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(name: &str) -> Message {
    Message::parse(Bytes::from(read(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// One row of `INDEX.tsv`.
struct Row {
    name: String,
    kind: String,
    pass_if: String,
}

fn index() -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join("INDEX.tsv")).expect("read INDEX.tsv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("name\trfc_section\texpected\tkind\tdescription\tpass_if"),
        "INDEX.tsv header changed"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 6, "bad INDEX.tsv line: {line}");
            Row {
                name: cols[0].to_string(),
                kind: cols[3].to_string(),
                pass_if: cols[5].to_string(),
            }
        })
        .collect()
}

/// What this layer decides for one message received as a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// A request that parses and passes `check_request`: the application answers it.
    /// `app` is the answer `pass_if` needs, when it needs a specific one.
    Process { app: Option<u16> },
    /// A request `check_request` rejects: answered with this status and reason.
    Reject(u16, &'static str),
    /// A response that parses and passes `check_response`: absorbed, never answered.
    Absorb,
    /// A response `check_response` rejects: dropped, never answered.
    DropResponse(&'static str),
    /// `Message::parse` refuses it: dropped, never answered.
    Unparseable,
}

use Verdict::*;

const PROCESS: Verdict = Process { app: None };

/// What the stream framer makes of the same octets arriving on a TCP connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cut {
    Message(usize),
    KeepAlive(usize),
    /// The buffer ends inside a message: wait for more (and time the connection out).
    NeedMore,
    /// The framing is unrecoverable: the connection is closed.
    Error(FramingError),
}

/// The whole input as one message.
const WHOLE: &[Cut] = &[];

struct Expected {
    name: &'static str,
    udp: Verdict,
    /// `WHOLE` when the framer cuts exactly the whole file as one message.
    tcp: &'static [Cut],
}

const fn case(name: &'static str, udp: Verdict, tcp: &'static [Cut]) -> Expected {
    Expected { name, udp, tcp }
}

/// Our decision for every message, with the reason where the RFC leaves a choice.
const EXPECTED: &[Expected] = &[
    // 3.1.1 valid messages: all parse and pass validation.
    case("wsinv", PROCESS, WHOLE),
    // An extension method: the application answers 501 with Allow.
    case("intmeth", PROCESS, WHOLE),
    case("esc01", PROCESS, WHOLE),
    case("escnull", PROCESS, WHOLE),
    // `RE%47IST%45R` is an extension method, not REGISTER: 501 from the application.
    case("esc02", PROCESS, WHOLE),
    case("lwsdisp", PROCESS, WHOLE),
    case("longreq", PROCESS, WHOLE),
    // As a datagram only the REGISTER counts (the INVITE is noise after Content-Length);
    // on a stream the INVITE is the next message, and the 5 octets its Content-Length
    // leaves over (`C` CRLF CRLF) are a header section without Content-Length.
    case(
        "dblreq",
        PROCESS,
        &[
            Cut::Message(300),
            Cut::KeepAlive(2),
            Cut::Message(443),
            Cut::Error(FramingError::MissingContentLength),
        ],
    ),
    case("semiuri", PROCESS, WHOLE),
    case("transports", PROCESS, WHOLE),
    case("mpart01", PROCESS, WHOLE),
    case("unreason", Absorb, WHOLE),
    case("noreason", Absorb, WHOLE),
    // 3.1.2 invalid messages. The top Via's parameters are malformed, so `is_answerable`
    // is false; its sent-by still names the sender, and the daemon sends the 400 there
    // (see `can_be_answered`).
    case("badinv01", Reject(400, "Malformed Via"), WHOLE),
    // 9999 octets declared, 150 present: 400 on UDP, wait for more on TCP.
    case(
        "clerr",
        Reject(400, "Content-Length exceeds body"),
        &[Cut::NeedMore],
    ),
    case(
        "ncl",
        Reject(400, "Malformed Content-Length"),
        &[Cut::Error(FramingError::BadContentLength)],
    ),
    // The CSeq number overflows 32 bits; that is what the 400 names (Max-Forwards 300 and
    // the huge Expires are never reached).
    case("scalar02", Reject(400, "Malformed CSeq"), WHOLE),
    case("scalarlg", DropResponse("Malformed CSeq"), WHOLE),
    // final: we reject the unterminated quote rather than guess where it ends.
    case("quotbal", Reject(400, "Malformed To"), WHOLE),
    // final: rejected; a Request-URI in <> is no URI.
    case(
        "ltgtruri",
        Reject(400, "Malformed Request-URI: URI has no scheme"),
        WHOLE,
    ),
    // final: rejected; LWS inside the Request-URI.
    case(
        "lwsruri",
        Reject(400, "Malformed Request-URI: invalid character ' ' in URI"),
        WHOLE,
    ),
    // final: rejected; with two SPs after the method the Request-URI starts with a space.
    case(
        "lwsstart",
        Reject(400, "Malformed Request-URI: URI has no scheme"),
        WHOLE,
    ),
    // final: rejected; with trailing SP the SIP-Version is what follows the last SP (nothing).
    case("trws", Reject(400, "Malformed SIP-Version"), WHOLE),
    // final: rejected; a Request-URI must never turn into headers.
    case(
        "escruri",
        Reject(400, "Request-URI must not carry headers"),
        WHOLE,
    ),
    // final, deliberately accepted: sihai never acts on Date (RFC 4475 §3.1.2.12 allows
    // ignoring it), so a non-GMT zone does not make the request unusable.
    case("baddate", PROCESS, WHOLE),
    // final, deliberately accepted: the Contact addr-spec carries `?`, which RFC 3261
    // §20 says needs <>, but the URI is unambiguous (RFC 4475 allows inferring the
    // brackets) and sihai is no registrar: the application answers REGISTER with 405.
    case("regbadct", PROCESS, WHOLE),
    // final: rejected; white space inside <>.
    case("badaspec", Reject(400, "Malformed To"), WHOLE),
    // final: rejected; `Bell, Alexander` is no display name. The archive bytes lack the
    // empty line, so on a stream the message never completes (the variant with the CRLF
    // is cut and rejected the same way, see `baddn_on_a_stream`).
    case("baddn", Reject(400, "Malformed From"), &[Cut::NeedMore]),
    case("badvers", Reject(505, "Version Not Supported"), WHOLE),
    case(
        "mismatch01",
        Reject(400, "CSeq method does not match request method"),
        WHOLE,
    ),
    case("mismatch02", Reject(501, "Not Implemented"), WHOLE),
    // The status line does not parse (a status code is three digits).
    case("bigcode", Unparseable, WHOLE),
    // 3.2 transaction layer semantics. final, deliberately accepted: a branch of only the
    // magic cookie does not identify a transaction, so RFC 2543 matching applies
    // (`Via::has_rfc3261_branch` is false); the application answers OPTIONS.
    case("badbranch", PROCESS, WHOLE),
    // 3.3 application layer semantics.
    case("insuf", Reject(400, "Missing Call-ID"), WHOLE),
    // The Request-URI scheme is `Scheme::Other`: the application answers 416.
    case("unkscm", Process { app: Some(416) }, WHOLE),
    case("novelsc", Process { app: Some(416) }, WHOLE),
    // final, deliberately accepted: syntactically valid (the schemes are absoluteURIs),
    // and only a registrar must refuse non-SIP AORs. sihai is no registrar: 405.
    case("unksm2", PROCESS, WHOLE),
    // The Require tags are exposed; the application answers 420 with Unsupported.
    case("bext01", Process { app: Some(420) }, WHOLE),
    // The body type is not ours to judge: the application answers 415.
    case("invut", PROCESS, WHOLE),
    case("regaut01", PROCESS, WHOLE),
    // Call-ID is the first single-valued header checked.
    case("multi01", Reject(400, "Repeated Call-ID"), WHOLE),
    case(
        "mcl01",
        Reject(400, "Conflicting Content-Length"),
        &[Cut::Error(FramingError::ConflictingContentLength)],
    ),
    case("bcast", Absorb, WHOLE),
    // An endpoint processes it; forwarding is refused (`Rewriter` says TooManyHops).
    case("zeromf", PROCESS, WHOLE),
    case("cparam01", PROCESS, WHOLE),
    case("cparam02", PROCESS, WHOLE),
    case("regescrt", PROCESS, WHOLE),
    // final, deliberately accepted: the body is SDP but Accept excludes it; whether that
    // is 406 is the application's call (it answers 406).
    case("sdp01", PROCESS, WHOLE),
    // 3.4 backward compatibility: accepted. A stream requires Content-Length (RFC 3261
    // §20.14), so over TCP the connection is closed.
    case(
        "inv2543",
        PROCESS,
        &[Cut::Error(FramingError::MissingContentLength)],
    ),
];

fn verdict(bytes: &[u8], kind: &str) -> Result<Verdict, String> {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(bytes)) else {
        return Ok(Unparseable);
    };
    match (kind, msg.is_request()) {
        ("request", true) => Ok(match check_request(&msg) {
            Ok(()) => PROCESS,
            Err(fault) => Reject(fault.status, leak(&fault.reason)),
        }),
        ("response", false) => Ok(match check_response(&msg) {
            Ok(()) => Absorb,
            Err(fault) => DropResponse(leak(&fault.reason)),
        }),
        _ => Err(format!(
            "parsed as {} but INDEX.tsv says {kind}",
            if msg.is_request() {
                "request"
            } else {
                "response"
            }
        )),
    }
}

/// Verdicts are equal; the application's answer to a processed request is not this
/// layer's decision (the per-message tests check the facts it rests on).
fn same(got: &Verdict, expected: &Verdict) -> bool {
    matches!((got, expected), (Process { .. }, Process { .. })) || got == expected
}

/// Whether a 400 can be addressed: through the top Via, or (as the daemon does for a Via
/// whose parameters are malformed, RFC 4475 §3.1.2.1) through its sent-by alone.
fn can_be_answered(bytes: &[u8]) -> bool {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(bytes)) else {
        return false;
    };
    is_answerable(&msg)
        || msg
            .vias()
            .next()
            .is_some_and(|top| Via::parse(top.split(';').next().unwrap_or(top)).is_ok())
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// The framer's cuts over the octets as one TCP connection delivers them.
fn cuts(bytes: &[u8]) -> Vec<Cut> {
    let limits = FrameLimits::default();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match frame(&bytes[at..], &limits) {
            Ok(Some(Frame::Message { len })) => {
                out.push(Cut::Message(len));
                at += len;
            }
            Ok(Some(Frame::KeepAlive { len, .. })) => {
                out.push(Cut::KeepAlive(len));
                at += len;
            }
            Ok(None) => {
                out.push(Cut::NeedMore);
                break;
            }
            Err(e) => {
                out.push(Cut::Error(e));
                break;
            }
        }
    }
    out
}

/// The part of `pass_if` for UDP: `udp:400 tcp:none|400` → `400`.
fn pass_if_for<'a>(pass_if: &'a str, transport: &str) -> Option<&'a str> {
    if !pass_if.contains(':') {
        return Some(pass_if);
    }
    pass_if
        .split_whitespace()
        .find_map(|part| part.strip_prefix(transport)?.strip_prefix(':'))
}

/// Whether an answer (`None`: no answer at all) satisfies a `pass_if` expression.
fn satisfies(expr: &str, answer: Option<u16>) -> bool {
    expr.split('|').any(|alt| match (alt, answer) {
        ("none", None) => true,
        ("final", Some(s)) => s >= 200,
        (_, None) => false,
        (a, Some(s)) if a.starts_with('!') => a[1..].parse::<u16>().is_ok_and(|not| s != not),
        (a, Some(s)) if a.ends_with("xx") => {
            a[..1].parse::<u16>().is_ok_and(|class| s / 100 == class)
        }
        (a, Some(s)) => a.parse::<u16>().is_ok_and(|want| s == want),
    })
}

/// The answer a verdict leads to on UDP. A processed request gets a final answer from the
/// application, never a 400; `u16::MAX` stands for "some final answer other than 400".
fn udp_answer(verdict: &Verdict) -> Option<u16> {
    match verdict {
        Process { app: Some(status) } => Some(*status),
        Process { app: None } => Some(u16::MAX),
        Reject(status, _) => Some(*status),
        Absorb | DropResponse(_) | Unparseable => None,
    }
}

/// The answer a cut stream leads to: only a stream that framed whole messages answers.
fn tcp_answer(cuts: &[Cut], udp: &Verdict) -> Option<u16> {
    match cuts.last() {
        Some(Cut::NeedMore | Cut::Error(_))
            if !cuts.iter().any(|c| matches!(c, Cut::Message(_))) =>
        {
            None
        }
        _ => udp_answer(udp),
    }
}

#[test]
fn every_message_gets_the_expected_verdict() {
    let rows = index();
    assert_eq!(
        rows.len(),
        49,
        "INDEX.tsv should list the 49 RFC 4475 messages"
    );
    let mut failures = Vec::new();
    for row in &rows {
        let Some(expected) = EXPECTED.iter().find(|e| e.name == row.name) else {
            failures.push(format!("{}: no expectation in EXPECTED", row.name));
            continue;
        };
        let bytes = read(&row.name);

        // As a UDP datagram.
        match verdict(&bytes, &row.kind) {
            Ok(got) if same(&got, &expected.udp) => {}
            Ok(got) => failures.push(format!(
                "{}: UDP verdict {got:?}, expected {:?}",
                row.name, expected.udp
            )),
            Err(e) => failures.push(format!("{}: {e}", row.name)),
        }
        if let Some(expr) = pass_if_for(&row.pass_if, "udp")
            && !satisfies(expr, udp_answer(&expected.udp))
        {
            failures.push(format!(
                "{}: {:?} does not satisfy pass_if {:?}",
                row.name, expected.udp, row.pass_if
            ));
        }
        if matches!(expected.udp, Reject(..)) && !can_be_answered(&bytes) {
            failures.push(format!(
                "{}: rejected but the answer cannot be addressed",
                row.name
            ));
        }

        // As a TCP stream.
        let want: Vec<Cut> = if expected.tcp.is_empty() {
            vec![Cut::Message(bytes.len())]
        } else {
            expected.tcp.to_vec()
        };
        let got = cuts(&bytes);
        if got != want {
            failures.push(format!("{}: TCP cuts {got:?}, expected {want:?}", row.name));
        }
        if let Some(expr) = row
            .pass_if
            .contains("tcp:")
            .then(|| pass_if_for(&row.pass_if, "tcp"))
            .flatten()
            && !satisfies(expr, tcp_answer(&want, &expected.udp))
        {
            failures.push(format!(
                "{}: TCP {want:?} does not satisfy pass_if {:?}",
                row.name, row.pass_if
            ));
        }
        // A message framed whole gets the same verdict as the datagram.
        if want == [Cut::Message(bytes.len())]
            && !verdict(&bytes, &row.kind).is_ok_and(|v| same(&v, &expected.udp))
        {
            failures.push(format!(
                "{}: the framed message is judged differently",
                row.name
            ));
        }
        // No proper prefix of the stream is cut as a message of another length.
        for end in 0..bytes.len() {
            match frame(&bytes[..end], &FrameLimits::default()) {
                Ok(None) | Ok(Some(Frame::KeepAlive { .. })) => {}
                Ok(Some(Frame::Message { len })) if Some(&Cut::Message(len)) == want.first() => {}
                Err(e) if Some(&Cut::Error(e.clone())) == want.last() => {}
                other => {
                    failures.push(format!(
                        "{}: prefix of {end} octets framed as {other:?}",
                        row.name
                    ));
                    break;
                }
            }
        }
    }
    for expected in EXPECTED {
        if !rows.iter().any(|r| r.name == expected.name) {
            failures.push(format!(
                "{}: in EXPECTED but not in INDEX.tsv",
                expected.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "RFC 4475 conformance failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_message_survives_every_view() {
    // Whatever the verdict, no typed view, canonical form or edit may panic, and the
    // canonical form means the same as the message.
    for row in index() {
        let bytes = read(&row.name);
        let Ok(msg) = Message::parse(Bytes::from(bytes)) else {
            continue;
        };
        let _ = (
            msg.call_id(),
            msg.cseq(),
            msg.from(),
            msg.to(),
            msg.top_via(),
            msg.max_forwards(),
        );
        for via in msg.vias() {
            let _ = Via::parse(via).map(|v| (v.branch(), v.received(), v.rport(), v.maddr()));
        }
        let canonical = Message::parse(msg.canonical()).unwrap();
        assert_eq!(
            canonical.canonical(),
            msg.canonical(),
            "{}: canonical form is not a fixed point",
            row.name
        );
        if msg.is_request() {
            assert_eq!(
                check_request(&canonical),
                check_request(&msg),
                "{}: canonical form judged differently",
                row.name
            );
            let mut rw = Rewriter::new(&msg);
            rw.push_via("SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKsihai");
            let _ = rw.decrement_max_forwards();
            let out = Message::parse(rw.finish()).unwrap();
            assert_eq!(out.vias().count(), msg.vias().count() + 1, "{}", row.name);
        } else {
            assert_eq!(
                check_response(&canonical),
                check_response(&msg),
                "{}",
                row.name
            );
        }
    }
}

#[test]
fn baddn_on_a_stream() {
    let path = dir().join("variants/baddn.crlf-fixed.dat");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(cuts(&bytes), vec![Cut::Message(bytes.len())]);
    assert_eq!(
        verdict(&bytes, "request"),
        Ok(Reject(400, "Malformed From"))
    );
    // The datagram without the empty line means the same.
    assert_eq!(
        Message::parse(Bytes::from(bytes)).unwrap().canonical(),
        parse("baddn").canonical()
    );
}

// What the typed views see, message by message.

#[test]
fn wsinv() {
    let m = parse("wsinv");
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(m.to().unwrap().uri, "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.display, Some(r#""J Rosenberg \\\"""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(m.max_forwards(), Ok(Some(68)));
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    assert_eq!(m.header(HeaderName::Subject), Some(""));
    assert_eq!(
        sihai_sip::message::unfold(m.header_named("NewFangledHeader").unwrap()),
        "newfangled value continued newfangled value"
    );
    assert_eq!(
        m.header_named("UnknownHeaderWithUnusualValue"),
        Some(";;,,;;,;")
    );
    let vias: Vec<Via> = m.vias().map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport, vias[0].host, vias[0].branch()),
        ("UDP", "192.0.2.2", Some("390skdjuw"))
    );
    assert!(!vias[0].has_rfc3261_branch());
    assert_eq!(
        (vias[1].transport, vias[1].host, vias[1].branch()),
        ("TCP", "spindle.example.com", Some("z9hG4bK9ikj8"))
    );
    assert_eq!(
        (vias[2].host, vias[2].branch()),
        ("192.168.255.111", Some("z9hG4bK30239"))
    );
    let contact = NameAddr::parse(m.values(HeaderName::Contact).next().unwrap()).unwrap();
    assert_eq!(contact.display, Some(r#""Quoted string \"\"""#));
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    let route = NameAddr::parse(m.header(HeaderName::Route).unwrap())
        .unwrap()
        .parsed_uri()
        .unwrap();
    assert_eq!(route.param("unknownwith"), Some(Some("value")));
    assert_eq!(route.param("lr"), Some(None));
    assert_eq!(m.content_length(), ContentLength::Declared(150));
    assert_eq!(m.body().len(), 150);
}

#[test]
fn intmeth() {
    let m = parse("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(Method::Extension(method)));
    assert_eq!(m.cseq().unwrap().method, Method::Extension(method));
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(
        uri.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(uri.host, "example.com");
    // The quoted To display name holds a BEL, a NUL and a DEL, none of which ends it.
    assert_eq!(
        m.to().unwrap().display,
        Some("\"BEL:\\\u{7} NUL:\\\0 DEL:\\\u{7f}\"")
    );
    assert_eq!(
        m.from().unwrap().display,
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(m.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id(),
        Ok("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
    );
    assert_eq!(
        m.header_named("extensionHeader-!.%*+_`'~"),
        Some("\u{feff}大停電")
    );
    assert_eq!(m.max_forwards(), Ok(Some(255)));
}

#[test]
fn esc01_unescapes_one_level_only() {
    let m = parse("esc01");
    let ruri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(ruri.user, Some("sips%3Auser%40example.com"));
    assert_eq!(ruri.user_unescaped().unwrap(), "sips:user@example.com");
    assert_eq!(ruri.host, "example.net");
    assert_eq!(
        m.to()
            .unwrap()
            .parsed_uri()
            .unwrap()
            .user_unescaped()
            .unwrap(),
        "user"
    );
    assert_eq!(
        m.from()
            .unwrap()
            .parsed_uri()
            .unwrap()
            .user_unescaped()
            .unwrap(),
        "I have spaces"
    );
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap())
        .unwrap()
        .parsed_uri()
        .unwrap();
    assert_eq!(contact.user_unescaped().unwrap(), "caller");
    assert_eq!(contact.param("lr"), Some(None));
    let value = contact.param("name").flatten().unwrap();
    assert_eq!(value, "v%61lue%25%34%31");
    assert_eq!(unescape(value), "value%41");
    assert_ne!(
        unescape(&unescape(value)),
        unescape(value),
        "a second level would give valueA"
    );
}

#[test]
fn escnull_keeps_the_nul() {
    let m = parse("escnull");
    let to = m.to().unwrap().parsed_uri().unwrap();
    assert_eq!(to.user_unescaped().unwrap(), "null-\0-null");
    let contacts: Vec<String> = m
        .values(HeaderName::Contact)
        .map(|c| {
            NameAddr::parse(c)
                .unwrap()
                .parsed_uri()
                .unwrap()
                .user_unescaped()
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(contacts, vec!["\0".to_string(), "\0\0".to_string()]);
}

#[test]
fn esc02_percent_is_not_an_escape_everywhere() {
    let m = parse("esc02");
    assert_eq!(m.method(), Some(Method::Extension("RE%47IST%45R")));
    assert_ne!(m.method(), Some(Method::Register));
    assert_eq!(m.to().unwrap().display, Some("\"%Z%45\""));
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    assert_eq!(m.values(HeaderName::Contact).count(), 2);
    assert_eq!(
        m.header_named("C%6Fntact"),
        Some("<sip:alias2@host2.example.com>")
    );
}

#[test]
fn lwsdisp() {
    let m = parse("lwsdisp");
    let from = m.from().unwrap();
    assert_eq!(from.display, Some("caller"));
    assert_eq!(from.uri, "sip:caller@example.com");
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_keeps_everything() {
    let bytes = read("longreq");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let m = parse("longreq");
    let vias: Vec<Via> = m.vias().map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(vias.len(), 34);
    for (i, via) in vias.iter().take(33).enumerate() {
        assert_eq!(via.host, format!("sip{}.example.com", 33 - i));
        assert_eq!(via.transport, "TCP");
    }
    let last = vias[33];
    assert_eq!(last.host, "host.example.com");
    assert_eq!(last.received(), Some("192.0.2.5"));
    // Each long value is compared with the octets between its delimiters in the file.
    let between = |before: &str, after: &str| {
        let start = text.find(before).unwrap() + before.len();
        text[start..start + text[start..].find(after).unwrap()].to_string()
    };
    let branch = last.branch().unwrap();
    assert_eq!(branch, between("received=192.0.2.5;branch=", "\r\n"));
    assert!(branch.len() > 200 && branch.ends_with("branchvalue"));
    let to = m.to().unwrap();
    assert_eq!(
        to.display.unwrap(),
        between("To: ", "<sip:user@example.com:6000")
    );
    assert!(to.display.unwrap().ends_with("proportion\""));
    assert_eq!(
        format!("<{}>", to.uri),
        format!("<{}>", between("\"<", ">"))
    );
    let to_uri = to.parsed_uri().unwrap();
    assert_eq!(to_uri.port, Some(6000));
    assert!(to_uri.param("verylonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongParameterNameWithNoValue").is_some());
    let tag = m.from().unwrap().tag().unwrap();
    assert_eq!(tag, between(";tag=", ";"));
    assert!(tag.len() > 150);
    let call_id = m.call_id().unwrap();
    assert!(call_id.starts_with("longreq.one") && call_id.ends_with("longcallid"));
    assert!(text.contains(&format!("Call-ID: {call_id}\r\n")));
    let unknown = "Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Name";
    assert!(
        m.header_named(unknown)
            .unwrap()
            .ends_with("-parameter-value")
    );
    assert_eq!(m.body().len(), 150);
}

#[test]
fn dblreq_is_the_register_only() {
    let m = parse("dblreq");
    assert_eq!(m.method(), Some(Method::Register));
    assert_eq!(m.call_id(), Ok("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
    assert_eq!(m.cseq().unwrap().method, Method::Register);
    assert_eq!(m.content_length(), ContentLength::Declared(0));
    assert!(m.body().is_empty());
    // What is sent on (or answered) is the REGISTER; the INVITE octets are gone.
    let wire = m.wire();
    assert_eq!(wire.len(), 300);
    assert!(!String::from_utf8_lossy(&wire).contains("INVITE"));
    assert_eq!(m.count(HeaderName::CSeq), 1);
    // On a stream the INVITE is a message of its own.
    let bytes = read("dblreq");
    let invite = Message::parse(Bytes::copy_from_slice(&bytes[302..302 + 443])).unwrap();
    assert_eq!(invite.method(), Some(Method::Invite));
    assert_eq!(check_request(&invite), Ok(()));
}

#[test]
fn semiuri_user_part() {
    let m = parse("semiuri");
    let uri = Uri::parse(m.request_uri().unwrap()).unwrap();
    assert_eq!(uri.user, Some("user;par=u%40example.net"));
    assert_eq!(uri.user_unescaped().unwrap(), "user;par=u@example.net");
    assert_eq!(uri.host, "example.com");
    assert_eq!(uri.params, "");
    assert_eq!(m.values(HeaderName::Accept).count(), 6);
}

#[test]
fn transports() {
    let m = parse("transports");
    let transports: Vec<&str> = m.vias().map(|v| Via::parse(v).unwrap().transport).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(
        m.top_via().unwrap().known_transport(),
        Some(sihai_sip::Transport::Udp)
    );
    assert_eq!(m.call_id(), Ok("transports.kijh4akdnaqjkwendsasfdj"));
}

#[test]
fn mpart01_binary_body() {
    let bytes = read("mpart01");
    let m = parse("mpart01");
    assert_eq!(m.content_length(), ContentLength::Declared(553));
    let body = m.body();
    assert_eq!(&body[..], &bytes[bytes.len() - 553..]);
    assert!(body.contains(&0) && body.iter().any(|&b| b >= 0x80));
    assert!(
        m.content_type()
            .unwrap()
            .starts_with("multipart/mixed;boundary=7a9cbec02ceef655")
    );
}

#[test]
fn responses() {
    let m = parse("unreason");
    assert_eq!(m.status(), Some(200));
    assert!(
        m.reason()
            .unwrap()
            .starts_with("= 2**3 * 5**2 но сто девяносто девять")
    );
    assert_eq!(m.body().len(), 154);
    let m = parse("noreason");
    assert_eq!((m.status(), m.reason()), (Some(100), Some("")));
    let m = parse("bcast");
    let vias: Vec<Via> = m.vias().map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(vias[1].host, "255.255.255.255");
    assert!(Message::parse(Bytes::from(read("bigcode"))).is_err());
    let m = parse("scalarlg");
    assert_eq!(m.status(), Some(503));
    assert!(m.cseq().is_err());
}

#[test]
fn scalar02() {
    let m = parse("scalar02");
    assert!(m.cseq().is_err());
    // Max-Forwards 300 is a number; the huge Expires is never read as one.
    assert_eq!(m.max_forwards(), Ok(Some(300)));
    assert_eq!(
        sihai_sip::scan::parse_u32(m.header(HeaderName::Expires).unwrap()),
        None
    );
}

#[test]
fn unknown_request_uri_schemes() {
    let uri = |name| {
        let m = parse(name);
        let text = m.request_uri().unwrap().to_string();
        match Uri::parse(&text).unwrap().scheme {
            Scheme::Other(s) => s.to_string(),
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(uri("unkscm"), "nobodyKnowsThisScheme");
    assert_eq!(uri("novelsc"), "soap.beep");
    let m = parse("unksm2");
    assert_eq!(
        m.to().unwrap().parsed_uri().unwrap().scheme,
        Scheme::Other("isbn")
    );
    assert_eq!(
        m.from().unwrap().parsed_uri().unwrap().scheme,
        Scheme::Other("http")
    );
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(contact.parsed_uri().unwrap().scheme, Scheme::Other("name"));
}

#[test]
fn bext01_exposes_the_option_tags() {
    let m = parse("bext01");
    assert_eq!(
        m.values(HeaderName::Require).collect::<Vec<_>>(),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(
        m.values(HeaderName::ProxyRequire).collect::<Vec<_>>(),
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
}

#[test]
fn application_level_facts() {
    assert_eq!(
        parse("invut").content_type(),
        Some("application/unknownformat")
    );
    assert_eq!(
        parse("sdp01").header(HeaderName::Accept),
        Some("text/nobodyKnowsThis")
    );
    assert_eq!(
        parse("regaut01").header(HeaderName::Authorization),
        Some("NoOneKnowsThisScheme opaque-data=here")
    );
    let badbranch = parse("badbranch");
    assert_eq!(badbranch.top_via().unwrap().branch(), Some("z9hG4bK"));
    assert!(!badbranch.top_via().unwrap().has_rfc3261_branch());
    let zeromf = parse("zeromf");
    assert_eq!(zeromf.max_forwards(), Ok(Some(0)));
    assert_eq!(
        Rewriter::new(&zeromf).decrement_max_forwards(),
        Err(RewriteError::TooManyHops)
    );
    assert_eq!(
        parse("baddate").header(HeaderName::Date),
        Some("Fri, 01 Jan 2010 16:00:00 EST")
    );
    let regbadct = parse("regbadct");
    let contact = NameAddr::parse(regbadct.header(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(
        contact.parsed_uri().unwrap().headers,
        Some("Route=%3Csip:sip.example.com%3E")
    );
}

#[test]
fn contact_parameters() {
    // cparam01: not in <>, so `unknownparam` is a contact parameter, not the URI's.
    let m = parse("cparam01");
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(contact.uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(contact.param("unknownparam"), Some(None));
    assert_eq!(contact.parsed_uri().unwrap().param("unknownparam"), None);
    // cparam02: in <>, so it is the URI's.
    let m = parse("cparam02");
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(contact.uri, "sip:+19725552222@gw1.example.net;unknownparam");
    assert_eq!(contact.param("unknownparam"), None);
    assert_eq!(
        contact.parsed_uri().unwrap().param("unknownparam"),
        Some(None)
    );
    // regescrt: the escaped Route stays in the URI, escaped.
    let m = parse("regescrt");
    let contact = NameAddr::parse(m.header(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(
        contact.uri,
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    );
    assert_eq!(
        contact.parsed_uri().unwrap().headers,
        Some("Route=%3Csip:sip.example.com%3E")
    );
    assert_eq!(m.count(HeaderName::Route), 0);
}

#[test]
fn inv2543_rfc2543_request() {
    let m = parse("inv2543");
    assert_eq!(m.content_length(), ContentLength::Absent);
    assert_eq!(m.max_forwards(), Ok(None));
    assert_eq!(m.top_via().unwrap().branch(), None);
    assert_eq!(m.from().unwrap().tag(), None);
    let bytes = read("inv2543");
    let body = m.body();
    assert!(body.starts_with(b"v=0") && bytes.ends_with(&body));
}

#[test]
fn multi01_names_the_repeats() {
    let m = parse("multi01");
    for name in [
        HeaderName::CallId,
        HeaderName::To,
        HeaderName::From,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
    ] {
        assert_eq!(m.count(name), 2, "{name:?}");
    }
    assert!(
        m.call_id().is_err()
            && m.to().is_err()
            && m.from().is_err()
            && m.cseq().is_err()
            && m.max_forwards().is_err()
    );
}
