//! The `[sip.tcp]` limits, driven end to end over real TCP connections to the daemon:
//! an idle connection is closed after `idle_timeout_s`, connections over
//! `max_connections` are refused (and a freed place is taken again), and a message
//! larger than `max_message_bytes` ends its connection without being answered.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Daemon, status_of};

fn options_over_tcp(stream: &TcpStream, port: u16, call_id: &str, body: &str) -> Vec<u8> {
    let local = stream.local_addr().expect("local addr");
    format!(
        "OPTIONS sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{call_id}\r\n\
         From: <sip:probe@{local}>;tag=probe\r\nTo: <sip:4001234567@127.0.0.1:{port}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the connection brings within `wait`: `Ok(bytes)` once the daemon closed it
/// (with whatever came before), `Err(bytes)` if it is still open.
fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(got);
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(_) => return Err(got),
        }
    }
}

/// Sends an OPTIONS and waits (up to 5 s) for its 200 on the connection.
fn answered(stream: &mut TcpStream, port: u16, call_id: &str) -> bool {
    stream
        .write_all(&options_over_tcp(stream, port, call_id, ""))
        .expect("send OPTIONS");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(n) if n > 0 => status_of(&buf[..n]) == Some(200),
        _ => false,
    }
}

#[test]
fn an_idle_connection_is_closed_after_idle_timeout_s() {
    let daemon = Daemon::start("[sip.tcp]\nidle_timeout_s = 1\n");
    let mut stream = TcpStream::connect(daemon.addr()).expect("connect");
    assert!(answered(&mut stream, daemon.port, "idle-1"));
    let quiet_since = Instant::now();
    let closed = read_until_closed(&mut stream, Duration::from_secs(10));
    let after = quiet_since.elapsed();
    assert!(closed.is_ok(), "still open 10 s after the last message");
    assert!(
        after >= Duration::from_millis(900),
        "closed {after:?} after the last message, before its 1 s"
    );
    assert!(after < Duration::from_secs(5), "closed late: {after:?}");
}

#[test]
fn connections_over_max_connections_are_refused_until_one_closes() {
    let daemon = Daemon::start("[sip.tcp]\nmax_connections = 2\n");
    let mut first = TcpStream::connect(daemon.addr()).expect("connect");
    let mut second = TcpStream::connect(daemon.addr()).expect("connect");
    assert!(answered(&mut first, daemon.port, "limit-1"));
    assert!(answered(&mut second, daemon.port, "limit-2"));
    // The kernel accepts the third; the daemon closes it at once, unanswered.
    let mut third = TcpStream::connect(daemon.addr()).expect("connect");
    let _ = third.write_all(&options_over_tcp(&third, daemon.port, "limit-3", ""));
    let refused = read_until_closed(&mut third, Duration::from_secs(5));
    assert_eq!(
        refused,
        Ok(Vec::new()),
        "the third connection is closed without an answer"
    );
    // A closed connection gives its place back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(daemon.addr()).expect("connect");
        if answered(&mut again, daemon.port, "limit-4") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no place freed 5 s after a connection closed:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(answered(&mut second, daemon.port, "limit-5"));
}

#[test]
fn a_message_over_max_message_bytes_ends_its_connection_unanswered() {
    let daemon = Daemon::start("[sip.tcp]\nmax_message_bytes = 1024\n");
    // Under the limit: answered.
    let mut small = TcpStream::connect(daemon.addr()).expect("connect");
    assert!(answered(&mut small, daemon.port, "size-1"));
    // Over it: a body of 2000 bytes.
    let mut big = TcpStream::connect(daemon.addr()).expect("connect");
    let body = "x".repeat(2000);
    let _ = big.write_all(&options_over_tcp(&big, daemon.port, "size-2", &body));
    let closed = read_until_closed(&mut big, Duration::from_secs(5));
    match closed {
        Ok(got) => assert!(
            status_of(&got) != Some(200),
            "the oversized message was answered: {}",
            String::from_utf8_lossy(&got)
        ),
        Err(got) => panic!(
            "the connection stayed open after an oversized message: {}",
            String::from_utf8_lossy(&got)
        ),
    }
}
