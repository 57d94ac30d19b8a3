//! Transaction behaviour seen from the wire, with hand-written SIP over a UDP socket:
//! what sipp cannot assert precisely. T1 is shortened to 100 ms so that Timer G
//! retransmissions show up quickly.

mod support;

use std::time::Duration;

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
