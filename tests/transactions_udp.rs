//! Transaction behaviour seen from the wire, with hand-written SIP over a UDP socket:
//! what sipp cannot assert precisely. T1 is shortened to 100 ms so that Timer G
//! retransmissions show up quickly.

mod support;

use std::time::{Duration, Instant};

use support::{Daemon, UdpClient, header_of, options, status_of};

const FAST_TIMERS: &str = "[sip.timers]\nt1_ms = 100\nt2_ms = 400\nt4_ms = 500\n";

fn invite(client: &UdpClient, port: u16, branch: &str, call_id: &str) -> Vec<u8> {
    format!(
        "INVITE sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch={branch}\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=caller\r\n\
         To: <sip:4001234567@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:13800138000@127.0.0.1:{cport}>\r\nContent-Length: 0\r\n\r\n",
        cport = client.port()
    )
    .into_bytes()
}

fn ack(client: &UdpClient, port: u16, branch: &str, call_id: &str, to_tag: &str) -> Vec<u8> {
    format!(
        "ACK sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch={branch}\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=caller\r\n\
         To: <sip:4001234567@127.0.0.1>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        cport = client.port()
    )
    .into_bytes()
}

fn to_tag(response: &[u8]) -> String {
    let to = header_of(response, "To").expect("To header");
    to.split(";tag=").nth(1).expect("To tag").to_string()
}

#[test]
fn final_response_is_retransmitted_until_ack_then_stops() {
    let daemon = Daemon::start(FAST_TIMERS);
    let client = UdpClient::new();

    client.send(
        &invite(&client, daemon.port, "z9hG4bKretrans1", "call-g"),
        daemon.addr(),
    );
    let trying = client
        .recv_within(Duration::from_secs(2))
        .expect("100 Trying");
    assert_eq!(status_of(&trying), Some(100));
    let first = client
        .recv_within(Duration::from_secs(2))
        .expect("final response");
    assert_eq!(status_of(&first), Some(404));

    // No ACK: Timer G retransmits the same final response (100 ms, then 200 ms ...).
    let again = client.collect_for(Duration::from_millis(450));
    assert!(
        again.len() >= 2,
        "expected Timer G retransmissions, got {}",
        again.len()
    );
    assert!(
        again.iter().all(|m| *m == first),
        "retransmissions must be the identical response"
    );

    // The ACK (same branch, To tag of the response) ends retransmission.
    client.send(
        &ack(
            &client,
            daemon.port,
            "z9hG4bKretrans1",
            "call-g",
            &to_tag(&first),
        ),
        daemon.addr(),
    );
    let _in_flight = client.collect_for(Duration::from_millis(150));
    let after = client.collect_for(Duration::from_millis(900));
    assert!(
        after.is_empty(),
        "final response still retransmitted after ACK: {} datagrams",
        after.len()
    );
}

#[test]
fn retransmitted_invite_gets_the_same_response_not_a_new_one() {
    let daemon = Daemon::start("");
    let client = UdpClient::new();
    let request = invite(&client, daemon.port, "z9hG4bKsame", "call-r");
    client.send(&request, daemon.addr());
    assert_eq!(
        status_of(&client.recv_within(Duration::from_secs(2)).expect("100")),
        Some(100)
    );
    let first = client.recv_within(Duration::from_secs(2)).expect("final");
    assert_eq!(status_of(&first), Some(404));

    client.send(&request, daemon.addr());
    let replay = client
        .recv_within(Duration::from_secs(2))
        .expect("answer to the retransmission");
    // A new call would get a new To tag; the transaction replays the very same bytes.
    assert_eq!(replay, first);
}

#[test]
fn malformed_request_gets_400_naming_the_fault() {
    let daemon = Daemon::start("");
    let client = UdpClient::new();
    let no_call_id = format!(
        "OPTIONS sip:4001234567@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKbad1\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        client.port()
    );
    client.send(no_call_id.as_bytes(), daemon.addr());
    let response = client.recv_within(Duration::from_secs(2)).expect("400");
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("SIP/2.0 400 Missing Call-ID\r\n"),
        "{text}"
    );
    assert_eq!(
        header_of(&response, "Warning"),
        Some("399 sihai \"Missing Call-ID\"")
    );

    let mismatch = format!(
        "OPTIONS sip:4001234567@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKbad2\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: m\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        client.port()
    );
    client.send(mismatch.as_bytes(), daemon.addr());
    let response = client.recv_within(Duration::from_secs(2)).expect("400");
    assert!(
        String::from_utf8_lossy(&response)
            .starts_with("SIP/2.0 400 CSeq method does not match request method\r\n")
    );
}

#[test]
fn garbage_and_stray_responses_are_dropped_and_the_daemon_carries_on() {
    let mut daemon = Daemon::start("");
    let client = UdpClient::new();
    for junk in [&b"\x00\x01\x02 not sip at all"[..], b"HELLO\r\n\r\n", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKnone\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"] {
        client.send(junk, daemon.addr());
    }
    assert!(
        client.recv_within(Duration::from_millis(300)).is_none(),
        "nothing is answered"
    );
    client.send(&options(&client, daemon.port, "after-junk"), daemon.addr());
    let response = client
        .recv_within(Duration::from_secs(2))
        .expect("still answers");
    assert_eq!(status_of(&response), Some(200));
    assert!(daemon.is_running());
    let log = daemon.stop();
    assert!(
        log.contains("dropping response that matches no transaction"),
        "{log}"
    );
}

/// The 404 for an INVITE to a number nobody owns, sent from `client`, and the instant
/// it arrived (the 100 Trying before it is skipped).
fn first_final_response(
    client: &UdpClient,
    daemon: &Daemon,
    branch: &str,
    call_id: &str,
) -> (Vec<u8>, Instant) {
    client.send(&invite(client, daemon.port, branch, call_id), daemon.addr());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            Instant::now() < deadline,
            "no final response to {call_id} within 5 s"
        );
        if let Some(m) = client.recv_within(Duration::from_millis(200))
            && status_of(&m).is_some_and(|s| s >= 200)
        {
            assert_eq!(status_of(&m), Some(404), "{}", String::from_utf8_lossy(&m));
            return (m, Instant::now());
        }
    }
}

#[test]
fn t2_caps_the_interval_between_final_response_retransmissions() {
    // T1 50 ms, T2 200 ms: Timer G fires after 50, 100, then every 200 ms until Timer H
    // (64 × T1 = 3.2 s). Without the cap the intervals would go on doubling (400, 800,
    // 1600 ms): at most six retransmissions in the 2 s watched instead of about ten.
    let daemon = Daemon::start("[sip.timers]\nt1_ms = 50\nt2_ms = 200\n");
    let client = UdpClient::new();
    let (first, start) = first_final_response(&client, &daemon, "z9hG4bKt2cap", "call-t2");

    let mut arrivals = Vec::new();
    let end = start + Duration::from_secs(2);
    while let Some(m) = client.recv_within(end.saturating_duration_since(Instant::now())) {
        assert_eq!(m, first, "only the same response is retransmitted");
        arrivals.push(Instant::now());
        if Instant::now() >= end {
            break;
        }
    }
    assert!(
        arrivals.len() >= 7,
        "{} retransmissions within 2 s: the interval was not capped at T2 = 200 ms",
        arrivals.len()
    );
    // From the third on, the interval is T2: not doubling past it (a late timer on a
    // loaded machine stretches one interval, so the median is compared).
    let mut capped: Vec<Duration> = arrivals.windows(2).skip(2).map(|w| w[1] - w[0]).collect();
    capped.sort();
    let median = capped[capped.len() / 2];
    assert!(
        (Duration::from_millis(120)..=Duration::from_millis(350)).contains(&median),
        "median interval once capped {median:?}, T2 is 200 ms: {capped:?}"
    );
    client.send(
        &ack(
            &client,
            daemon.port,
            "z9hG4bKt2cap",
            "call-t2",
            &to_tag(&first),
        ),
        daemon.addr(),
    );
}

#[test]
fn t4_is_how_long_an_acknowledged_invite_transaction_absorbs_its_retransmissions() {
    // T4 1 s: once the 404 is acknowledged, the INVITE server transaction stays
    // (Timer I = T4) and swallows a late copy of the INVITE. After T4 it is gone, and
    // the same INVITE is a new request that gets a new answer. With the default T4
    // (5 s) the second copy, 2.5 s after the ACK, would be swallowed too.
    let daemon = Daemon::start("[sip.timers]\nt1_ms = 100\nt2_ms = 400\nt4_ms = 1000\n");
    let client = UdpClient::new();
    let branch = "z9hG4bKt4absorb";
    let (first, _) = first_final_response(&client, &daemon, branch, "call-t4");
    client.send(
        &ack(&client, daemon.port, branch, "call-t4", &to_tag(&first)),
        daemon.addr(),
    );
    let acked = Instant::now();
    // Whatever Timer G sent before the ACK landed.
    let _in_flight = client.collect_for(Duration::from_millis(100));

    let request = invite(&client, daemon.port, branch, "call-t4");
    client.send(&request, daemon.addr());
    let absorbed = client.collect_for(Duration::from_millis(300));
    assert!(
        acked.elapsed() < Duration::from_millis(900),
        "the machine is too slow to send the copy within T4 ({:?})",
        acked.elapsed()
    );
    assert!(
        absorbed.is_empty(),
        "a copy of the INVITE within T4 of the ACK is absorbed, but got {:?}",
        absorbed
            .iter()
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect::<Vec<_>>()
    );

    std::thread::sleep(Duration::from_millis(2500).saturating_sub(acked.elapsed()));
    client.send(&request, daemon.addr());
    let deadline = Instant::now() + Duration::from_secs(3);
    let again = loop {
        let m = client
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| {
                panic!(
                    "the INVITE 2.5 s after the ACK (T4 = 1 s) was still absorbed:\n{}",
                    daemon.log_text()
                )
            });
        if status_of(&m).is_some_and(|s| s >= 200) {
            break m;
        }
    };
    assert_eq!(status_of(&again), Some(404));
    client.send(
        &ack(&client, daemon.port, branch, "call-t4", &to_tag(&again)),
        daemon.addr(),
    );
}
