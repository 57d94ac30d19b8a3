//! The RFC 4475 torture messages sent to the running daemon over UDP (and, for the
//! stream-framing cases, TCP), each judged by the `pass_if` column of
//! `crates/sip/tests/rfc4475/INDEX.tsv`.
//!
//! Over UDP the Via sent-by of these messages names hosts that do not exist, so the
//! test rewrites the top Via's host:port to its own socket before sending (as the
//! conformance README says); nothing else in a message is touched.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use sihai_sip::{HeaderName, Message};
use support::{Daemon, UdpClient, status_of};

fn conformance_dir() -> PathBuf {
    let dir = support::repo_path("crates/sip/tests/rfc4475");
    assert!(
        dir.join("INDEX.tsv").exists(),
        "RFC 4475 messages not found at {} (they ship in the repository)",
        dir.display()
    );
    dir
}

struct Case {
    name: String,
    kind: String,
    pass_if: String,
}

fn cases() -> Vec<Case> {
    let index =
        std::fs::read_to_string(conformance_dir().join("INDEX.tsv")).expect("read INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 6, "bad INDEX line: {line}");
            Case {
                name: cols[0].to_string(),
                kind: cols[3].to_string(),
                pass_if: cols[5].to_string(),
            }
        })
        .collect()
}

/// The expectation for one transport: "udp:400 tcp:none|400" → "400" for udp.
fn expectation<'a>(pass_if: &'a str, transport: &str) -> &'a str {
    let prefixed = format!("{transport}:");
    pass_if
        .split_whitespace()
        .find_map(|part| part.strip_prefix(prefixed.as_str()))
        .unwrap_or(pass_if)
}

/// Whether the final status we got (None: no response at all) satisfies an expectation.
fn satisfies(expect: &str, got: Option<u16>) -> bool {
    expect.split('|').any(|alt| match (alt, got) {
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

/// Rewrites the top Via's sent-by to `127.0.0.1:port`.
fn aim_via_at(raw: &[u8], port: u16) -> Vec<u8> {
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(raw)) else {
        return raw.to_vec();
    };
    let Some(top) = msg.values(HeaderName::Via).next() else {
        return raw.to_vec();
    };
    // The sent-by is the first token after the third '/' of the sent-protocol.
    let Some(after_protocol) = top.match_indices('/').nth(1).map(|(i, _)| i + 1) else {
        return raw.to_vec();
    };
    let rest = &top[after_protocol..];
    let transport_len = rest
        .trim_start()
        .find(|c: char| c.is_whitespace())
        .unwrap_or(rest.len());
    let leading = rest.len() - rest.trim_start().len();
    let after_transport = &rest[leading + transport_len..];
    let sent_by_start = after_transport.len() - after_transport.trim_start().len();
    let sent_by = &after_transport[sent_by_start..];
    let sent_by_len = sent_by
        .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .unwrap_or(sent_by.len());
    let base = msg.as_bytes().as_ptr() as usize;
    let start = sent_by.as_ptr() as usize - base;
    let mut out = raw[..start].to_vec();
    out.extend_from_slice(format!("127.0.0.1:{port}").as_bytes());
    out.extend_from_slice(&raw[start + sent_by_len..]);
    out
}

/// The final status of the first final response (or the last provisional if no final
/// came), or `None` if nothing arrived.
fn first_final(datagrams: &[Vec<u8>]) -> Option<u16> {
    let statuses: Vec<u16> = datagrams.iter().filter_map(|d| status_of(d)).collect();
    statuses
        .iter()
        .copied()
        .find(|s| *s >= 200)
        .or(statuses.last().copied())
}

/// The datagrams that answer one message: until the first final response, within 3 s
/// (a call's final response waits for its CDR to be committed, which a loaded machine
/// can slow), or within 500 ms when silence is the only right answer.
fn answers(client: &UdpClient, expect: &str) -> Vec<Vec<u8>> {
    let window = if expect == "none" {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    let deadline = std::time::Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match client.recv_within(left) {
            Some(d) => {
                let is_final = status_of(&d).is_some_and(|s| s >= 200);
                got.push(d);
                if is_final {
                    // A stray second final would be a bug too: give it a moment to show.
                    got.extend(client.collect_for(Duration::from_millis(50)));
                    break;
                }
            }
            None => break,
        }
    }
    got
}

#[test]
fn torture_messages_over_udp() {
    let daemon = Daemon::start("");
    let dir = conformance_dir();
    let mut failures = Vec::new();
    for case in cases() {
        let raw = std::fs::read(dir.join(format!("{}.dat", case.name))).expect("read message");
        let client = UdpClient::new();
        let message = if case.kind == "request" {
            aim_via_at(&raw, client.port())
        } else {
            raw
        };
        client.send(&message, daemon.addr());
        let expect = expectation(&case.pass_if, "udp");
        let got = first_final(&answers(&client, expect));
        if !satisfies(expect, got) {
            failures.push(format!("{}: expected {expect}, got {got:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "RFC 4475 failures over UDP:\n{}\ndaemon log:\n{}",
        failures.join("\n"),
        daemon.log_text()
    );
}

#[test]
fn stream_framing_cases_over_tcp() {
    let daemon = Daemon::start("");
    let dir = conformance_dir();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases() {
        // The cases whose expectation differs on a stream, plus well-formed ones with a body.
        let stream_case = case.pass_if.contains("tcp:")
            || ["wsinv", "mpart01", "baddn"].contains(&case.name.as_str());
        if !stream_case {
            continue;
        }
        checked += 1;
        let file = if case.name == "baddn" {
            "variants/baddn.crlf-fixed.dat".to_string()
        } else {
            format!("{}.dat", case.name)
        };
        let raw = std::fs::read(dir.join(file)).expect("read message");
        let mut stream = TcpStream::connect(daemon.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        stream.write_all(&raw).expect("write");
        let mut buf = vec![0u8; 65535];
        let mut got_bytes = Vec::new();
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got_bytes.extend_from_slice(&buf[..n]);
                    if status_of(&got_bytes).is_some_and(|s| s >= 200)
                        || got_bytes.windows(4).filter(|w| w == b"\r\n\r\n").count() >= 2
                    {
                        break;
                    }
                }
            }
        }
        // Responses on one connection: split at "SIP/2.0 " starts.
        let text = String::from_utf8_lossy(&got_bytes);
        let responses: Vec<Vec<u8>> = text
            .split("SIP/2.0 ")
            .filter(|s| !s.is_empty())
            .map(|s| format!("SIP/2.0 {s}").into_bytes())
            .collect();
        let got = first_final(&responses);
        let expect = expectation(&case.pass_if, "tcp");
        if !satisfies(expect, got) {
            failures.push(format!("{}: expected {expect}, got {got:?}", case.name));
        }
    }
    assert!(checked >= 5, "too few stream cases found ({checked})");
    assert!(
        failures.is_empty(),
        "RFC 4475 failures over TCP:\n{}\ndaemon log:\n{}",
        failures.join("\n"),
        daemon.log_text()
    );
}

#[test]
fn expectation_grammar() {
    assert_eq!(expectation("udp:400 tcp:none|400", "udp"), "400");
    assert_eq!(expectation("udp:400 tcp:none|400", "tcp"), "none|400");
    assert_eq!(expectation("!400", "tcp"), "!400");
    assert!(satisfies("!400", Some(404)));
    assert!(!satisfies("!400", Some(400)));
    assert!(!satisfies("!400", None));
    assert!(satisfies("4xx", Some(413)));
    assert!(satisfies("none|400", None));
    assert!(satisfies("final", Some(603)));
    assert!(!satisfies("final", Some(180)));
    assert!(satisfies("416|404", Some(404)));
}
