//! Property tests over generated messages.
//!
//! - Legal messages, generated from a model and written out with every liberty the
//!   grammar allows (header names in any case and in compact form, white space and folds
//!   wherever LWS may go, several Via values per line, headers in any order), parse to
//!   what the model says, pass validation, and keep their meaning through the canonical
//!   form.
//! - Arbitrary octets and mutated legal messages never make any entry point panic, and
//!   keep the invariants of `common/exercise.rs` (shared with the fuzz targets).
//! - A stream of legal messages, cut into reads at random points, is framed into exactly
//!   those messages.
//!
//! Case counts keep the whole crate's tests to a few seconds in a debug build;
//! `PROPTEST_CASES` raises them for a longer run.

mod common;

use bytes::Bytes;
use common::exercise;
use proptest::prelude::*;
use sihai_sip::validate::{check_request, check_response};
use sihai_sip::{CSeq, ContentLength, HeaderName, Message, Method, NameAddr, Via};

fn config(cases: u32) -> ProptestConfig {
    // Failing inputs are kept in `tests/properties.proptest-regressions` and replayed first.
    let mut config = ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config
}

// ---------------------------------------------------------------------------------------
// The model of a legal message.

#[derive(Debug, Clone)]
struct UriModel {
    text: String,
    /// No `;`, `?` or `,`: may be written as a bare addr-spec (RFC 3261 §20.10).
    bare_ok: bool,
}

#[derive(Debug, Clone)]
enum Display {
    None,
    /// The quoted string as written, quotes and escapes included.
    Quoted(String),
    Tokens(Vec<String>),
}

#[derive(Debug, Clone)]
struct Addr {
    display: Display,
    uri: UriModel,
    tag: Option<String>,
    params: Vec<(String, Option<String>)>,
    /// Written as `<uri>` even without a display name.
    angle: bool,
}

#[derive(Debug, Clone)]
struct ViaModel {
    transport: String,
    host: String,
    port: Option<u16>,
    branch: String,
    received: Option<String>,
    rport: Option<Option<u16>>,
    maddr: Option<(String, u8)>,
}

#[derive(Debug, Clone)]
enum Start {
    Request {
        method: String,
        uri: String,
    },
    Response {
        code: u16,
        reason: String,
        method: String,
    },
}

#[derive(Debug, Clone)]
struct Model {
    start: Start,
    /// Via header lines, each with one or more values.
    vias: Vec<Vec<ViaModel>>,
    from: Addr,
    to: Addr,
    call_id: String,
    cseq: u32,
    max_forwards: Option<u8>,
    contacts: Vec<Vec<Addr>>,
    subject: Option<Vec<String>>,
    extensions: Vec<(String, Vec<String>)>,
    body: Vec<u8>,
}

impl Model {
    fn cseq_method(&self) -> &str {
        match &self.start {
            Start::Request { method, .. } | Start::Response { method, .. } => method,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.

const TOKEN: &str = "[a-zA-Z0-9.!%*_+`'~-]{1,10}";

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9]{0,7}(\\.[a-z][a-z0-9-]{0,6}[a-z0-9]){0,3}",
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
    ]
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        // received= takes an IPv6address without brackets (RFC 3261 §20.42).
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ]
}

fn user() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        "[0-9]{3,11}".prop_map(|u| (u, true)),
        "[a-zA-Z0-9_.!~*'()&=+$-]{1,8}(%[0-9A-F]{2}[a-z]{0,3}){0,2}".prop_map(|u| (u, true)),
        // user-unreserved characters that force <> around the URI.
        "[a-z]{1,4}[;?,/][a-z=]{1,6}".prop_map(|u| (u, false)),
    ]
}

fn uri_param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(";lr".to_string()),
        Just(";transport=tcp".to_string()),
        Just(";user=phone".to_string()),
        host().prop_map(|h| format!(";maddr={h}")),
        // pvalue = 1*paramchar: marks and `[]/:&+$` too (RFC 3261 §19.1.1).
        "[a-z][a-z0-9-]{0,5}(=[a-zA-Z0-9_.!~*'()/:&+$\\[\\]-]{1,6})?".prop_map(|p| format!(";{p}")),
    ]
}

/// A SIP, SIPS or tel URI. `headers`: whether `?h=v` may be added (never in a Request-URI).
fn uri(headers: bool) -> impl Strategy<Value = UriModel> {
    let sip = (
        prop_oneof![3 => Just("sip"), 1 => Just("sips"), 1 => Just("SIP")],
        proptest::option::of((user(), proptest::option::of("[a-zA-Z0-9]{0,6}"))),
        host(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(uri_param(), 0..3),
        proptest::option::weighted(
            0.2,
            "[A-Za-z]{1,8}=[a-z0-9]{0,6}(%[0-9a-f]{2})?(&[a-z]{1,4}=[0-9]{1,3})?",
        ),
    )
        .prop_map(move |(scheme, userinfo, host, port, params, uri_headers)| {
            let uri_headers = uri_headers.filter(|_| headers);
            let mut text = format!("{scheme}:");
            let mut bare_ok = params.is_empty() && uri_headers.is_none();
            if let Some(((user, plain), password)) = userinfo {
                bare_ok &= plain;
                text.push_str(&user);
                if let Some(pw) = password {
                    text.push(':');
                    text.push_str(&pw);
                }
                text.push('@');
            }
            text.push_str(&host);
            if let Some(port) = port {
                text.push_str(&format!(":{port}"));
            }
            text.extend(params);
            if let Some(h) = uri_headers {
                text.push('?');
                text.push_str(&h);
            }
            UriModel { text, bare_ok }
        });
    let tel = (
        "\\+?[0-9]{1,3}(-?[0-9]{2,4}){1,3}",
        proptest::option::of("[+0-9a-z.]{1,8}"),
    )
        .prop_map(|(number, context)| match context {
            Some(c) => UriModel {
                text: format!("tel:{number};phone-context={c}"),
                bare_ok: false,
            },
            None => UriModel {
                text: format!("tel:{number}"),
                bare_ok: true,
            },
        });
    prop_oneof![4 => sip, 1 => tel]
}

fn display() -> impl Strategy<Value = Display> {
    let piece = prop_oneof![
        6 => "[a-zA-Z0-9 ,;:<>@/=.()\t-]{1,6}",
        1 => Just("\\\"".to_string()),
        1 => Just("\\\\".to_string()),
        1 => Just("张三".to_string()),
        1 => Just("é".to_string()),
    ];
    prop_oneof![
        2 => Just(Display::None),
        2 => proptest::collection::vec(piece, 0..5).prop_map(|p| Display::Quoted(format!("\"{}\"", p.concat()))),
        1 => proptest::collection::vec(TOKEN, 1..4).prop_map(Display::Tokens),
    ]
}

fn addr(with_tag: bool) -> impl Strategy<Value = Addr> {
    (
        display(),
        uri(true),
        proptest::option::weighted(0.9, TOKEN).prop_map(move |tag| tag.filter(|_| with_tag)),
        proptest::collection::vec(
            (
                "[a-z][a-z0-9-]{0,6}",
                proptest::option::of("[a-zA-Z0-9.]{1,6}"),
            ),
            0..2,
        ),
        any::<bool>(),
    )
        .prop_map(|(display, uri, tag, params, angle)| {
            let angle = angle || !uri.bare_ok || !matches!(display, Display::None);
            let params = params.into_iter().filter(|(n, _)| n != "tag").collect();
            Addr {
                display,
                uri,
                tag,
                params,
                angle,
            }
        })
}

fn via() -> impl Strategy<Value = ViaModel> {
    (
        prop_oneof![
            Just("UDP"),
            Just("TCP"),
            Just("TLS"),
            Just("SCTP"),
            Just("udp"),
            Just("WS")
        ],
        host(),
        proptest::option::of(any::<u16>()),
        "[a-zA-Z0-9.!%*_+`'~-]{1,12}",
        proptest::option::of(ip()),
        proptest::option::of(proptest::option::of(any::<u16>())),
        proptest::option::weighted(0.2, (any::<[u8; 4]>(), any::<u8>())),
    )
        .prop_map(
            |(transport, host, port, branch, received, rport, maddr)| ViaModel {
                transport: transport.to_string(),
                host,
                port,
                branch: format!("z9hG4bK{branch}"),
                received,
                rport,
                maddr: maddr.map(|(ip, ttl)| (std::net::Ipv4Addr::from(ip).to_string(), ttl)),
            },
        )
}

const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "MESSAGE",
    "NOTIFY",
    "SUBSCRIBE",
    "REFER",
    "PRACK",
    "UPDATE",
    "PUBLISH",
];

fn method() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(METHODS).prop_map(str::to_string), 1 => "[A-Z][A-Z0-9_.!%*+`'~-]{0,8}"]
}

fn text_words() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-zA-Z0-9.,;:!?@<>\"'/()=+-]{1,8}|张三|四海", 0..5)
}

fn start() -> impl Strategy<Value = Start> {
    prop_oneof![
        3 => (method(), uri(false)).prop_map(|(method, uri)| Start::Request { method, uri: uri.text }),
        1 => (100u16..=699, "[a-zA-Z0-9 .,!?()/'-]{0,16}|振铃中|Session Progress", method())
            .prop_map(|(code, reason, method)| Start::Response { code, reason, method }),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    (
        start(),
        proptest::collection::vec(proptest::collection::vec(via(), 1..4), 1..4),
        addr(true),
        addr(true),
        (
            "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,16}",
            proptest::option::of(host()),
        ),
        (any::<u32>(), proptest::option::of(any::<u8>())),
        proptest::collection::vec(proptest::collection::vec(addr(false), 1..3), 0..3),
        proptest::option::of(text_words()),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", text_words()), 0..3),
        proptest::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(
            |(
                start,
                vias,
                from,
                to,
                (word, at),
                (cseq, max_forwards),
                contacts,
                subject,
                extensions,
                body,
            )| {
                let call_id = match at {
                    Some(host) => format!(
                        "{word}@{}",
                        host.trim_start_matches('[')
                            .trim_end_matches(']')
                            .replace(':', "-")
                    ),
                    None => word,
                };
                let to = match start {
                    // A request's To need not carry a tag; a response's To may lack one too.
                    Start::Request { .. } => Addr {
                        tag: to.tag.filter(|_| cseq % 2 == 0),
                        ..to
                    },
                    Start::Response { .. } => to,
                };
                Model {
                    start,
                    vias,
                    from,
                    to,
                    call_id,
                    cseq,
                    max_forwards,
                    contacts,
                    subject,
                    extensions,
                    body,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------
// Writing a model out, with random style.

/// A source of style decisions, cycled from proptest-generated octets.
struct Style<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Style<'_> {
    fn next(&mut self) -> u8 {
        let b = self.bytes[self.at % self.bytes.len()]
            .wrapping_add(((self.at / self.bytes.len()) as u8).wrapping_mul(97));
        self.at += 1;
        b
    }
    fn pick<'x>(&mut self, options: &[&'x str]) -> &'x str {
        options[self.next() as usize % options.len()]
    }
    fn chance(&mut self, percent: u32) -> bool {
        u32::from(self.next()) * 100 / 256 < percent
    }
    /// Optional white space (SWS): nothing, blanks, or a fold.
    fn sws(&mut self) -> &'static str {
        self.pick(&[
            "", "", "", "", " ", " ", "\t", "  ", "\r\n ", " \r\n\t", "\r\n  ",
        ])
    }
    /// Required white space (LWS).
    fn lws(&mut self) -> &'static str {
        self.pick(&[" ", " ", " ", "\t", "  ", "\r\n ", "\t\r\n "])
    }
    /// A header name: long or compact form, in any case.
    fn name(&mut self, long: &str, compact: Option<&str>) -> String {
        let base = match compact {
            Some(c) if self.chance(40) => c,
            _ => long,
        };
        if !self.chance(40) {
            return base.to_string();
        }
        base.chars()
            .map(|c| {
                if self.chance(50) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
    fn header(&mut self, out: &mut String, long: &str, compact: Option<&str>, value: &str) {
        let name = self.name(long, compact);
        let before = self.pick(&["", "", "", " ", "\t", "  "]);
        let after = self.sws();
        out.push_str(&format!("{name}{before}:{after}{value}\r\n"));
    }
    fn number(&mut self, n: u64) -> String {
        if self.chance(15) {
            format!("00{n}")
        } else {
            n.to_string()
        }
    }
}

fn write_params(s: &mut Style, out: &mut String, params: &[(String, Option<String>)]) {
    for (name, value) in params {
        let (a, b) = (s.sws(), s.sws());
        out.push_str(&format!("{a};{b}{name}"));
        if let Some(v) = value {
            let (c, d) = (s.sws(), s.sws());
            out.push_str(&format!("{c}={d}{v}"));
        }
    }
}

fn write_via(s: &mut Style, v: &ViaModel) -> String {
    let mut out = String::new();
    let (a, b, c, d) = (s.sws(), s.sws(), s.sws(), s.sws());
    out.push_str(&format!(
        "SIP{a}/{b}2.0{c}/{d}{}{}{}",
        v.transport,
        s.lws(),
        v.host
    ));
    if let Some(port) = v.port {
        out.push_str(&format!(":{port}"));
    }
    let mut params = vec![("branch".to_string(), Some(v.branch.clone()))];
    if let Some(r) = &v.received {
        params.push(("received".into(), Some(r.clone())));
    }
    match v.rport {
        Some(Some(p)) => params.push(("rport".into(), Some(p.to_string()))),
        Some(None) => params.push(("rport".into(), None)),
        None => {}
    }
    if let Some((ip, ttl)) = &v.maddr {
        params.push(("maddr".into(), Some(ip.clone())));
        params.push(("ttl".into(), Some(ttl.to_string())));
    }
    let rotate = s.next() as usize % params.len();
    params.rotate_left(rotate);
    write_params(s, &mut out, &params);
    out
}

fn write_addr(s: &mut Style, a: &Addr) -> String {
    let mut out = String::new();
    match &a.display {
        Display::None => {}
        Display::Quoted(q) => {
            out.push_str(q);
            out.push_str(s.sws());
        }
        Display::Tokens(tokens) => {
            for (i, t) in tokens.iter().enumerate() {
                if i > 0 {
                    out.push_str(s.lws());
                }
                out.push_str(t);
            }
            out.push_str(s.sws());
        }
    }
    if a.angle {
        out.push_str(&format!("<{}>", a.uri.text));
    } else {
        out.push_str(&a.uri.text);
    }
    let mut params = a.params.clone();
    if let Some(tag) = &a.tag {
        params.insert(
            s.next() as usize % (params.len() + 1),
            ("tag".into(), Some(tag.clone())),
        );
    }
    write_params(s, &mut out, &params);
    out
}

fn write_words(s: &mut Style, words: &[String]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(s.lws());
        }
        out.push_str(w);
    }
    out
}

fn list(s: &mut Style, values: Vec<String>) -> String {
    let mut out = String::new();
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            let (a, b) = (s.sws(), s.sws());
            out.push_str(&format!("{a},{b}"));
        }
        out.push_str(&v);
    }
    out
}

fn write(model: &Model, style: &[u8]) -> Vec<u8> {
    let s = &mut Style {
        bytes: style,
        at: 0,
    };
    // (long name, line as written)
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut push = |s: &mut Style, long: &str, compact: Option<&str>, value: &str| {
        let mut line = String::new();
        s.header(&mut line, long, compact, value);
        headers.push((long.to_string(), line));
    };
    for line in &model.vias {
        let values = line.iter().map(|v| write_via(s, v)).collect();
        let value = list(s, values);
        push(s, "Via", Some("v"), &value);
    }
    let from = write_addr(s, &model.from);
    push(s, "From", Some("f"), &from);
    let to = write_addr(s, &model.to);
    push(s, "To", Some("t"), &to);
    push(s, "Call-ID", Some("i"), &model.call_id.clone());
    let cseq = format!(
        "{}{}{}",
        s.number(u64::from(model.cseq)),
        s.lws(),
        model.cseq_method()
    );
    push(s, "CSeq", None, &cseq);
    if let Some(n) = model.max_forwards {
        let n = s.number(u64::from(n));
        push(s, "Max-Forwards", None, &n);
    }
    for line in &model.contacts {
        let values = line.iter().map(|a| write_addr(s, a)).collect();
        let value = list(s, values);
        push(s, "Contact", Some("m"), &value);
    }
    if let Some(words) = &model.subject {
        let value = write_words(s, words);
        push(s, "Subject", Some("s"), &value);
    }
    for (name, words) in &model.extensions {
        let value = write_words(s, words);
        push(s, name, None, &value);
    }
    if !model.body.is_empty() {
        push(s, "Content-Type", Some("c"), "application/octet-stream");
    }
    let length = s.number(model.body.len() as u64);
    push(s, "Content-Length", Some("l"), &length);
    // Any order, except that lines of one header keep theirs (Via order is routing).
    let mut order: Vec<usize> = (0..headers.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, s.next() as usize % (i + 1));
    }
    let mut slots: Vec<Option<String>> = vec![None; headers.len()];
    let mut taken = vec![false; headers.len()];
    for (slot, &picked) in order.iter().enumerate() {
        // The earliest line not yet placed among those of the picked line's name.
        let name = &headers[picked].0;
        let next = (0..headers.len())
            .find(|&j| !taken[j] && &headers[j].0 == name)
            .unwrap();
        taken[next] = true;
        slots[slot] = Some(headers[next].1.clone());
    }
    let headers: Vec<String> = slots.into_iter().flatten().collect();

    let mut out = match &model.start {
        Start::Request { method, uri } => {
            let version = if s.chance(10) { "sip/2.0" } else { "SIP/2.0" };
            format!("{method} {uri} {version}\r\n")
        }
        Start::Response { code, reason, .. } => format!("SIP/2.0 {code} {reason}\r\n"),
    };
    out.extend(headers);
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&model.body);
    bytes
}

fn style() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..64)
}

fn legal_message() -> impl Strategy<Value = (Model, Vec<u8>)> {
    (model(), style()).prop_map(|(m, style)| {
        let bytes = write(&m, &style);
        (m, bytes)
    })
}

// ---------------------------------------------------------------------------------------
// (a) Legal messages.

/// What the typed views must say about a message written from `model`.
fn check_against_model(model: &Model, msg: &Message) -> Result<(), TestCaseError> {
    match &model.start {
        Start::Request { method, uri } => {
            prop_assert_eq!(msg.method(), Some(Method::parse(method)));
            prop_assert_eq!(msg.request_uri(), Some(uri.as_str()));
            prop_assert_eq!(check_request(msg), Ok(()));
        }
        Start::Response { code, reason, .. } => {
            prop_assert_eq!(msg.status(), Some(*code));
            prop_assert_eq!(msg.reason(), Some(reason.as_str()));
            prop_assert_eq!(check_response(msg), Ok(()));
        }
    }
    prop_assert_eq!(msg.malformed_line(), None);
    prop_assert_eq!(msg.call_id(), Ok(model.call_id.as_str()));
    prop_assert_eq!(
        msg.cseq(),
        Ok(CSeq {
            seq: model.cseq,
            method: Method::parse(model.cseq_method())
        })
    );
    prop_assert_eq!(msg.max_forwards(), Ok(model.max_forwards.map(u32::from)));
    for (addr, parsed) in [(&model.from, msg.from()), (&model.to, msg.to())] {
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(parsed.uri, addr.uri.text.as_str());
        prop_assert_eq!(parsed.tag(), addr.tag.as_deref());
        if let Display::Quoted(q) = &addr.display {
            prop_assert_eq!(parsed.display, Some(q.as_str()));
        }
    }
    let vias: Vec<&ViaModel> = model.vias.iter().flatten().collect();
    let parsed: Vec<Via> = msg
        .vias()
        .map(Via::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(parsed.len(), vias.len());
    for (v, p) in vias.iter().zip(&parsed) {
        prop_assert_eq!(
            (p.protocol, p.version, p.transport),
            ("SIP", "2.0", v.transport.as_str())
        );
        prop_assert_eq!((p.host, p.port), (v.host.as_str(), v.port));
        prop_assert_eq!(p.branch(), Some(v.branch.as_str()));
        prop_assert_eq!(p.received(), v.received.as_deref());
        prop_assert_eq!(p.rport(), v.rport);
        prop_assert_eq!(p.maddr(), v.maddr.as_ref().map(|(ip, _)| ip.as_str()));
    }
    let contacts: Vec<&Addr> = model.contacts.iter().flatten().collect();
    let parsed: Vec<NameAddr> = msg
        .values(HeaderName::Contact)
        .map(NameAddr::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(parsed.len(), contacts.len());
    for (a, p) in contacts.iter().zip(&parsed) {
        prop_assert_eq!(p.uri, a.uri.text.as_str());
        for (name, value) in &a.params {
            prop_assert_eq!(p.param(name), Some(value.as_deref()));
        }
    }
    prop_assert_eq!(
        msg.content_length(),
        ContentLength::Declared(model.body.len())
    );
    prop_assert_eq!(&msg.body()[..], &model.body[..]);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn legal_messages_parse_to_their_model_and_keep_their_meaning((model, bytes) in legal_message()) {
        let msg = Message::parse(Bytes::from(bytes.clone())).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        check_against_model(&model, &msg)?;

        // parse → canonical → parse means the same, down to every typed view.
        let canonical = msg.canonical();
        let again = Message::parse(canonical.clone()).unwrap();
        prop_assert_eq!(again.canonical(), canonical);
        check_against_model(&model, &again)?;
        prop_assert_eq!(exercise::typed_views(&again), exercise::typed_views(&msg));

        exercise::message(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// (b) Arbitrary and mutated input never panics.

/// Fragments that make mutations interesting to a SIP parser.
const FRAGMENTS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n ",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b"\"",
    b"\\",
    b"<",
    b">",
    b"@",
    b"[",
    b"]",
    b"%",
    b"%4",
    b"%zz",
    b"?",
    b"/",
    b"\0",
    b"\xff",
    b"\xc3\xa9",
    b"\xc4\x8a",
    b"\xe5\xbc\xa0",
    b"SIP/2.0",
    b"sip:",
    b"tel:",
    b"Via: ",
    b"v:",
    b"l: ",
    b"Content-Length: 99999999999",
    b"l: -1",
    b"CSeq: 1 ",
    b"Call-ID:",
    b"To: ",
    b";tag=",
    b";branch=z9hG4bK",
    b"0",
    b"4294967296",
    b"SIP/2.0 200 OK\r\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), 1usize..8).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(at, f)| Mutation::Insert(at, f)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match *m {
        Mutation::Flip(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] = b;
        }
        Mutation::Delete(i, n) if !bytes.is_empty() => {
            let i = i % bytes.len();
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Insert(i, f) => {
            let i = at(i, bytes.len());
            bytes.splice(i..i, FRAGMENTS[f].iter().copied());
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len())),
        Mutation::DuplicateLine(i) => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .collect();
            let start = starts[i % starts.len()];
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |p| start + p + 1);
            let line = bytes[start..end].to_vec();
            bytes.splice(end..end, line);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_octets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), chunks in proptest::collection::vec(0usize..64, 0..8)) {
        exercise::message(&data);
        exercise::stream(&data, &chunks);
    }

    #[test]
    fn header_soup_never_panics(
        start in prop_oneof![Just("INVITE sip:a@b SIP/2.0\r\n"), Just("SIP/2.0 200 OK\r\n"), Just("OPTIONS tel:+86 SIP/7.0\r\n")],
        pieces in proptest::collection::vec(0..FRAGMENTS.len(), 0..40),
    ) {
        // A start line that parses, then fragments: reaches the header and value parsers.
        let mut data = start.as_bytes().to_vec();
        for p in pieces {
            data.extend_from_slice(FRAGMENTS[p]);
        }
        exercise::message(&data);
        exercise::stream(&data, &[7, 3]);
    }

    #[test]
    fn mutated_messages_never_panic(
        (_, bytes) in legal_message(),
        mutations in proptest::collection::vec(mutation(), 1..6),
        chunks in proptest::collection::vec(0usize..64, 0..8),
    ) {
        let mut data = bytes;
        for m in &mutations {
            mutate(&mut data, m);
        }
        exercise::message(&data);
        exercise::stream(&data, &chunks);
    }
}

// ---------------------------------------------------------------------------------------
// (c) Framing a stream of legal messages.

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn a_stream_is_framed_into_exactly_its_messages(
        messages in proptest::collection::vec((legal_message(), prop_oneof![Just(""), Just("\r\n"), Just("\r\n\r\n")]), 1..5),
        chunks in proptest::collection::vec(1usize..200, 0..20),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for ((_, bytes), keepalive) in &messages {
            stream.extend_from_slice(keepalive.as_bytes());
            stream.extend_from_slice(bytes);
            expected.push(bytes.clone());
        }
        let framed = exercise::stream(&stream, &chunks);
        prop_assert_eq!(framed.end, None);
        prop_assert_eq!(framed.messages, expected);
    }
}
