//! Where the daemon listens and whom it takes calls from, end to end: `[[sip.listen]]`
//! on IPv6 loopback (UDP and TCP), and `[[trunk]] sources` written as CIDR networks.
//! These tests need ::1 and 127.0.0.2 on the loopback interface and fail, not skip,
//! where the machine lacks them.

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use support::routing::{group, only_cdr, phone, routing_from};
use support::{Caller, Daemon, Phone, free_port, free_port_v6, status_of};

/// `[[sip.listen]]` entries for UDP and TCP on [::1]:`port`, to go in the `[sip]` table.
fn ipv6_listeners(port: u16) -> String {
    format!(
        "[[sip.listen]]\ntransport = \"udp\"\naddress = \"[::1]:{port}\"\n\
         [[sip.listen]]\ntransport = \"tcp\"\naddress = \"[::1]:{port}\"\n"
    )
}

/// An OPTIONS from [::1]:`local_port` over `transport` ("UDP" or "TCP").
fn options_v6(transport: &str, local_port: u16, daemon_port: u16, call_id: &str) -> String {
    format!(
        "OPTIONS sip:4001234567@[::1]:{daemon_port} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} [::1]:{local_port};branch=z9hG4bK{call_id}\r\n\
         From: <sip:probe@[::1]:{local_port}>;tag=probe\r\n\
         To: <sip:4001234567@[::1]:{daemon_port}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// A group "sales" of one answering sipp phone (on 127.0.0.1), for `calls` calls.
fn answering_sales(calls: u32) -> (Phone, String) {
    let answers = Phone::start("uas_answer.xml", calls, 0);
    let sales = group(
        "sales",
        "sequential",
        &[phone(&answers.uri("13900000001"), "")],
    );
    (answers, sales)
}

#[test]
fn ipv6_loopback_listeners_answer_options_over_udp_and_tcp_and_take_a_call() {
    let v6 = free_port_v6();
    let (mut answers, sales) = answering_sales(1);
    let daemon = Daemon::start_with(
        &ipv6_listeners(v6),
        &routing_from(
            &["127.0.0.1", "::1"],
            free_port(),
            "",
            "",
            "group = \"sales\"",
            &sales,
        ),
    );

    // UDP: the answer comes back from the daemon's [::1] socket.
    let udp = UdpSocket::bind("[::1]:0").expect("bind a UDP socket on ::1");
    let local = udp.local_addr().expect("local addr").port();
    udp.send_to(
        options_v6("UDP", local, v6, "v6-udp").as_bytes(),
        ("::1", v6),
    )
    .expect("send OPTIONS over UDP to ::1");
    udp.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut buf = vec![0u8; 65535];
    let (n, from) = udp
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no answer to OPTIONS over UDP on [::1]:{v6}: {e}"));
    assert_eq!(from, ([0u16, 0, 0, 0, 0, 0, 0, 1], v6).into());
    assert_eq!(
        status_of(&buf[..n]),
        Some(200),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );

    // TCP: a connection to [::1] and the answer on it.
    let mut tcp = TcpStream::connect(("::1", v6))
        .unwrap_or_else(|e| panic!("no TCP listener on [::1]:{v6}: {e}"));
    let local = tcp.local_addr().expect("local addr").port();
    tcp.write_all(options_v6("TCP", local, v6, "v6-tcp").as_bytes())
        .expect("send OPTIONS over TCP");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(
            Instant::now() < deadline,
            "no answer to OPTIONS over TCP on [::1]:{v6} within 3 s: {:?}",
            String::from_utf8_lossy(&got)
        );
        match tcp.read(&mut buf) {
            Ok(0) => panic!("the daemon closed the TCP connection without answering"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert_eq!(
        status_of(&got),
        Some(200),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // A carrier's call from ::1 is routed to the (IPv4) phone and answered.
    Caller::new(&daemon, "uac_answered.xml").over_ipv6(v6).run();
    answers.finish(&daemon);
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.answered_by, answers.uri("13900000001"), "{cdr:#?}");
}

/// Panics unless 127.0.0.2 can be sent from (Linux routes all of 127.0.0.0/8 to lo).
fn require_127_0_0_2() {
    if let Err(e) = UdpSocket::bind("127.0.0.2:0") {
        panic!("127.0.0.2 is not usable on this machine's loopback ({e}): the CIDR tests need it");
    }
}

#[test]
fn a_cidr_source_admits_an_address_inside_its_network() {
    require_127_0_0_2();
    // 127.0.0.0/30 is 127.0.0.0 to 127.0.0.3: the call from 127.0.0.2 is the trunk's.
    let (mut answers, sales) = answering_sales(1);
    let daemon = Daemon::start_with(
        "",
        &routing_from(
            &["127.0.0.0/30"],
            free_port(),
            "",
            "",
            "group = \"sales\"",
            &sales,
        ),
    );
    Caller::new(&daemon, "uac_answered.xml")
        .source_address("127.0.0.2")
        .run();
    answers.finish(&daemon);
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.answered_by, answers.uri("13900000001"), "{cdr:#?}");
}

#[test]
fn a_cidr_source_refuses_an_address_outside_its_network() {
    require_127_0_0_2();
    // 127.0.0.0/31 is 127.0.0.0 and 127.0.0.1 only: 127.0.0.2 is refused (403, no CDR),
    // while 127.0.0.1, inside it, gets through.
    let (mut answers, sales) = answering_sales(1);
    let daemon = Daemon::start_with(
        "",
        &routing_from(
            &["127.0.0.0/31"],
            free_port(),
            "",
            "",
            "group = \"sales\"",
            &sales,
        ),
    );
    Caller::refused(&daemon, 403)
        .source_address("127.0.0.2")
        .caller("13800138002")
        .run();
    Caller::new(&daemon, "uac_answered.xml")
        .caller("13800138001")
        .run();
    answers.finish(&daemon);
    // Once the admitted call's CDR is there, one for the refused call would be too.
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(
        rows.len(),
        1,
        "only the trunk's call is recorded: {rows:#?}"
    );
    assert_eq!(rows[0].caller, "13800138001", "{rows:#?}");
    assert_eq!(rows[0].outcome, "answered", "{rows:#?}");
}
