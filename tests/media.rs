//! The RTP relay end to end: the daemon with `[media] relay = true` on 127.0.0.1, a
//! hand-written carrier (caller) and phone on plain UDP sockets, each with an RTP socket
//! of its own, so that every packet can be checked: ringback while the phone rings,
//! audio both ways (transcoded) after the answer, ports closed at the end.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_media::Law;
use support::rtp::{
    assert_released, body_of, is_request, relay_routing_head, respond, rtp_base, rtp_fields,
    rtp_packet, rtp_socket, sdp, sdp_target, wait_for,
};
use support::{Daemon, UdpClient, header_of, status_of};

#[test]
fn the_caller_hears_ringback_then_the_phone_both_ways_through_the_relay() {
    let (_daemon, cdr) = call_through_the_relay(false, Duration::ZERO);
    assert_eq!(cdr.recording, "", "the number does not record");
}

#[test]
fn a_recorded_five_second_call_is_a_stereo_wav_with_both_sides() {
    let talk = Duration::from_secs(5);
    let (daemon, cdr) = call_through_the_relay(true, talk);
    assert!(
        cdr.recording.starts_with("acme/") && cdr.recording.ends_with(".wav"),
        "{cdr:?}"
    );
    let path = daemon.dir.path().join("recordings").join(&cdr.recording);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let wav = sihai_media::read_wav_stereo(&bytes, 10 << 20).expect("a valid WAV");
    let seconds = wav.left.len() as f64 / 8000.0;
    assert!(
        (4.5..=6.0).contains(&seconds),
        "about 5 s of audio, got {seconds:.2} s"
    );
    assert_eq!(wav.left.len(), wav.right.len());
    let loud = |samples: &[i16]| samples.iter().filter(|s| s.abs() > 1000).count();
    assert!(
        loud(&wav.left) > 8000 * 3,
        "the caller's side (left) is audible"
    );
    assert!(
        loud(&wav.right) > 8000 * 3,
        "the phone's side (right) is audible"
    );
}

/// One call from a hand-written carrier to a hand-written phone through the relay;
/// after the answer both sides stream audio for `talk`; returns the daemon (its
/// directory holds the recordings) and the call's CDR.
fn call_through_the_relay(record: bool, talk: Duration) -> (Daemon, support::CdrRow) {
    let phone = UdpClient::new();
    let base = rtp_base(u16::from(record));
    let head = relay_routing_head(&format!("{base}-{}", base + 19), None, phone.port());
    let routing = format!(
        r#"
{head}
[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"
record = {record}

[[plan]]
name = "main"
enterprise = "acme"
group = "desk"

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001", ring_timeout_s = 20 }}]
"#,
    );
    let daemon = Daemon::start_with("", &routing);
    let sihai: SocketAddr = format!("127.0.0.1:{}", daemon.port).parse().unwrap();

    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let phone_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().unwrap().port(),
        "0 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
    );
    let invite = format!(
        "INVITE sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKmedia1;rport\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
         Call-ID: media-1@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:13800138000@127.0.0.1:{cport}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
        port = daemon.port,
        cport = caller.port(),
        len = offer.len()
    );
    caller.send(invite.as_bytes(), sihai);

    // The phone is offered the relay, not the caller.
    let leg = wait_for(&phone, "INVITE to the phone", |m| is_request(m, "INVITE"));
    let relay_for_phone = sdp_target(body_of(&leg));
    assert_ne!(relay_for_phone, caller_rtp.local_addr().unwrap());
    assert!((base..=base + 19).contains(&relay_for_phone.port()));
    let leg_from: SocketAddr = sihai;
    phone.send(&respond(&leg, 180, "Ringing", None, phone.port()), leg_from);

    // 183 with the relay's SDP, then ringback (PCMU, 450 Hz: not silence) every 20 ms.
    let progress = wait_for(&caller, "183", |m| status_of(m) == Some(183));
    let relay_for_caller = sdp_target(body_of(&progress));
    assert!((base..=base + 19).contains(&relay_for_caller.port()));
    let started = Instant::now();
    let mut ringback = Vec::new();
    let mut buf = [0u8; 2048];
    while started.elapsed() < Duration::from_millis(600) {
        if let Ok((n, from)) = caller_rtp.recv_from(&mut buf) {
            assert_eq!(
                from, relay_for_caller,
                "symmetric: from the port we were given"
            );
            ringback.push(rtp_fields(&buf[..n]));
        }
    }
    assert!(
        ringback.len() >= 20,
        "~30 packets of ringback in 600 ms, got {}",
        ringback.len()
    );
    assert!(ringback.iter().all(|(pt, _, _)| *pt == 0));
    assert!(
        ringback
            .windows(2)
            .all(|w| w[1].1 == w[0].1.wrapping_add(1)),
        "contiguous sequence numbers"
    );
    assert!(
        ringback.iter().any(|(_, _, b)| *b != 0xFF),
        "a tone, not µ-law silence"
    );

    // The phone answers in PCMA: the caller's 200 carries the relay's SDP again.
    let answer = sdp(
        phone_rtp.local_addr().unwrap().port(),
        "8",
        "a=rtpmap:8 PCMA/8000\r\n",
    );
    phone.send(
        &respond(&leg, 200, "OK", Some(&answer), phone.port()),
        leg_from,
    );
    let ok = wait_for(&caller, "200 for the INVITE", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq").is_some_and(|c| c.ends_with("INVITE"))
    });
    assert_eq!(sdp_target(body_of(&ok)), relay_for_caller);
    let _ack_to_phone = wait_for(&phone, "ACK", |m| is_request(m, "ACK"));
    let caller_tag = header_of(&ok, "To")
        .and_then(|t| t.split("tag=").nth(1))
        .expect("To tag")
        .to_string();
    let ack = format!(
        "ACK sip:sihai@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKmedia1ack\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={caller_tag}\r\n\
         Call-ID: media-1@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        port = daemon.port,
        cport = caller.port()
    );
    caller.send(ack.as_bytes(), sihai);

    // Caller → phone: µ-law silence arrives as A-law silence.
    std::thread::sleep(Duration::from_millis(100));
    while caller_rtp.recv_from(&mut buf).is_ok() {} // what was queued during the answer
    for seq in 1..=5 {
        caller_rtp
            .send_to(&rtp_packet(0, seq, 0xFF), relay_for_caller)
            .unwrap();
    }
    let mut at_phone = Vec::new();
    while let Ok((n, from)) = phone_rtp.recv_from(&mut buf) {
        assert_eq!(from, relay_for_phone);
        at_phone.push(rtp_fields(&buf[..n]));
        if at_phone.len() == 5 {
            break;
        }
    }
    assert_eq!(at_phone.len(), 5, "the caller's packets reach the phone");
    assert!(at_phone.iter().all(|(pt, _, b)| (*pt, *b) == (8, 0xD5)));

    // Phone → caller: A-law silence arrives as µ-law silence.
    for seq in 1..=5 {
        phone_rtp
            .send_to(&rtp_packet(8, seq, 0xD5), relay_for_phone)
            .unwrap();
    }
    let mut at_caller = Vec::new();
    while let Ok((n, _)) = caller_rtp.recv_from(&mut buf) {
        at_caller.push(rtp_fields(&buf[..n]));
        if at_caller.len() == 5 {
            break;
        }
    }
    assert_eq!(at_caller.len(), 5, "the phone's packets reach the caller");
    let transcoded = Law::Ulaw.encode(Law::Alaw.decode(0xD5));
    assert!(
        at_caller
            .iter()
            .all(|(pt, _, b)| (*pt, *b) == (0, transcoded)),
        "{at_caller:?}"
    );

    // Both sides talk (loud, not silence) for `talk`, a packet every 20 ms each way.
    if !talk.is_zero() {
        let started = Instant::now();
        let mut seq = 100u16;
        while started.elapsed() < talk {
            caller_rtp
                .send_to(
                    &rtp_packet(0, seq, Law::Ulaw.encode(12_000)),
                    relay_for_caller,
                )
                .unwrap();
            phone_rtp
                .send_to(
                    &rtp_packet(8, seq, Law::Alaw.encode(-12_000)),
                    relay_for_phone,
                )
                .unwrap();
            seq = seq.wrapping_add(1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // Hang up: the phone gets the BYE, the relay's ports close.
    let bye = format!(
        "BYE sip:sihai@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKmedia1bye\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={caller_tag}\r\n\
         Call-ID: media-1@test\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        port = daemon.port,
        cport = caller.port()
    );
    caller.send(bye.as_bytes(), sihai);
    let phone_bye = wait_for(&phone, "BYE to the phone", |m| is_request(m, "BYE"));
    phone.send(
        &respond(&phone_bye, 200, "OK", None, phone.port()),
        leg_from,
    );
    wait_for(&caller, "200 for the BYE", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq").is_some_and(|c| c.ends_with("BYE"))
    });
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].outcome, "answered");
    let cdr = rows[0].clone();
    // Closed: the relay's port for the caller can be bound again.
    assert_released(relay_for_caller);
    (daemon, cdr)
}
