//! Announcements instead of bare error codes, end to end: the daemon with the relay on
//! and the shipped Mandarin prompts, a hand-written carrier (and phone) on plain UDP
//! sockets. A call that cannot go through is answered with `183` and the relay's SDP,
//! the caller receives the prompt's own audio frame by frame (not silence, not the
//! 450 Hz tone), then the final status; the CDR keeps its outcome and names the
//! announcement. A number without one still gets the bare status at once.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sihai_media::{Law, Prompt};
use support::rtp::{
    assert_released, body_of, is_request, relay_routing_head, respond, rtp_base, sdp, sdp_target,
    wait_for,
};
use support::{Daemon, UdpClient, header_of, repo_path, status_of};

/// acme's numbers on the shipped prompts: 4001234570 is never open and announces it;
/// 4001234567 announces busy and no answer; 4001234568 announces nothing. Both phones
/// are reached at the hand-written phone's port.
fn routing(base: u16, phone_port: u16) -> String {
    let head = relay_routing_head(
        &format!("{base}-{}", base + 19),
        Some(&repo_path("config/prompts")),
        phone_port,
    );
    format!(
        r#"
{head}
[[prompt]]
name = "after-hours"
file = "after-hours.wav"

[[prompt]]
name = "busy"
file = "busy.wav"

[[prompt]]
name = "no-answer"
file = "no-answer.wav"

[[number]]
number = "4001234570"
enterprise = "acme"
status = "active"
plan = "closed"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"

[[number]]
number = "4001234568"
enterprise = "acme"
status = "active"
plan = "plain"

[[plan]]
name = "closed"
enterprise = "acme"
group = "desk"
schedule = "never"
announcements = {{ after_hours = "after-hours" }}

[[plan]]
name = "main"
enterprise = "acme"
group = "desk"
announcements = {{ busy = "busy", no_answer = "no-answer" }}

[[plan]]
name = "plain"
enterprise = "acme"
group = "desk"

[[schedule]]
name = "never"

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001" }}, {{ number = "13900000002" }}]
"#
    )
}

/// A shipped prompt as the daemon encodes it.
fn shipped_prompt(name: &str) -> Prompt {
    let bytes = std::fs::read(repo_path(&format!("config/prompts/{name}.wav")))
        .unwrap_or_else(|e| panic!("{name}.wav: {e}"));
    Prompt::from_audio(&sihai_media::read_wav(&bytes).expect("a WAV the daemon reads"))
}

/// An RTP packet the carrier received, and where from.
type Received = (SocketAddr, Vec<u8>);

/// A carrier placing one call to `number` with a PCMU offer from its own RTP socket.
struct Carrier {
    sip: UdpClient,
    rtp: UdpSocket,
    sihai: SocketAddr,
    call_id: String,
    number: String,
}

impl Carrier {
    fn call(daemon: &Daemon, number: &str, call_id: &str) -> Carrier {
        let carrier = Carrier {
            sip: UdpClient::new(),
            rtp: UdpSocket::bind("127.0.0.1:0").expect("bind RTP"),
            sihai: daemon.addr(),
            call_id: call_id.into(),
            number: number.into(),
        };
        carrier
            .rtp
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let offer = sdp(
            carrier.rtp.local_addr().unwrap().port(),
            "0 101",
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
        );
        let invite = format!(
            "INVITE sip:{number}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{number}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:13800138000@127.0.0.1:{cport}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            port = daemon.port,
            cport = carrier.sip.port(),
            len = offer.len(),
            branch = branch_of(call_id),
        );
        carrier.sip.send(invite.as_bytes(), carrier.sihai);
        carrier
    }

    /// Listens (up to `within`) until a final response comes, collecting every RTP
    /// packet meanwhile; returns the responses received (provisional ones included)
    /// and the packets with the address they came from.
    fn listen_until_final(&self, within: Duration) -> (Vec<Vec<u8>>, Vec<Received>) {
        let deadline = Instant::now() + within;
        let mut responses = Vec::new();
        let mut packets = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            while let Ok((n, from)) = self.rtp.recv_from(&mut buf) {
                packets.push((from, buf[..n].to_vec()));
            }
            if let Some(m) = self.sip.recv_within(Duration::from_millis(1)) {
                let status = status_of(&m);
                responses.push(m);
                if status.is_some_and(|s| s >= 200) {
                    return (responses, packets);
                }
            }
        }
        panic!(
            "no final response within {within:?}; got {:?}",
            responses.iter().map(|m| status_of(m)).collect::<Vec<_>>()
        );
    }

    /// Cancels the INVITE (RFC 3261 §9.1: its Via branch, CSeq number and headers).
    fn cancel(&self) {
        let cancel = format!(
            "CANCEL sip:{number}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{number}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            number = self.number,
            port = self.sihai.port(),
            cport = self.sip.port(),
            call_id = self.call_id,
            branch = branch_of(&self.call_id),
        );
        self.sip.send(cancel.as_bytes(), self.sihai);
    }

    /// ACKs the final (non-2xx) response, in the INVITE's transaction.
    fn ack(&self, final_response: &[u8]) {
        let to = header_of(final_response, "To").expect("To");
        let ack = format!(
            "ACK sip:{number}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{branch};rport\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            number = self.number,
            port = self.sihai.port(),
            cport = self.sip.port(),
            call_id = self.call_id,
            branch = branch_of(&self.call_id),
        );
        self.sip.send(ack.as_bytes(), self.sihai);
    }
}

/// The INVITE's Via branch for `call_id` (a token: no `@`).
fn branch_of(call_id: &str) -> String {
    call_id.replace('@', ".")
}

/// Asserts that `packets` (RTP from the relay's `relay` address) are `prompt` played
/// `plays` times from its start: every packet's payload is exactly the prompt's µ-law
/// frame at its place on the timestamp grid, and nearly every frame arrived.
#[track_caller]
fn assert_heard(
    packets: &[(SocketAddr, Vec<u8>)],
    relay: SocketAddr,
    prompt: &Prompt,
    plays: usize,
) {
    assert!(!packets.is_empty(), "no RTP at all");
    let frames = prompt.frames();
    let mut matched = 0;
    let mut loud = 0;
    let first_timestamp = u32::from_be_bytes(packets[0].1[4..8].try_into().unwrap());
    for (from, packet) in packets {
        assert_eq!(*from, relay, "symmetric: from the port in the 183's SDP");
        assert_eq!(packet[1] & 0x7f, 0, "PCMU, as offered");
        let payload = &packet[12..];
        assert_eq!(payload.len(), 160, "20 ms frames");
        let timestamp = u32::from_be_bytes(packet[4..8].try_into().unwrap());
        let index = (timestamp.wrapping_sub(first_timestamp) / 160) as usize;
        // The stream's timestamps run on across plays; each play starts at frame 0.
        let frame = prompt
            .frame(Law::Ulaw, index % frames.max(1))
            .unwrap_or_else(|| panic!("frame {index} past the prompt's {frames}"));
        assert_eq!(
            payload, frame,
            "packet at frame {index} is not the prompt's audio"
        );
        matched += 1;
        if payload.iter().any(|&b| Law::Ulaw.decode(b).abs() > 2000) {
            loud += 1;
        }
    }
    let expected = frames * plays;
    assert!(
        matched * 10 >= expected * 9 && matched <= expected + 2,
        "{matched} packets for {plays} play(s) of {frames} frames"
    );
    assert!(
        loud * 4 >= matched,
        "speech, not silence: {loud} of {matched} packets are loud"
    );
}

#[test]
fn after_hours_the_caller_hears_the_prompt_as_early_media_then_480() {
    let phone = UdpClient::new();
    let base = rtp_base(0);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let prompt = shipped_prompt("after-hours");

    let carrier = Carrier::call(&daemon, "4001234570", "closed-1@test");
    let started = Instant::now();
    let (responses, packets) =
        carrier.listen_until_final(prompt.duration() + Duration::from_secs(10));
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(statuses, [Some(100), Some(183), Some(480)]);
    let elapsed = started.elapsed();
    assert!(
        elapsed + Duration::from_millis(500) >= prompt.duration(),
        "the 480 waits for the prompt ({:?}), came after {elapsed:?}",
        prompt.duration()
    );
    let relay = sdp_target(body_of(&responses[1]));
    assert!((base..=base + 19).contains(&relay.port()));
    assert_eq!(
        header_of(&responses[1], "To"),
        header_of(&responses[2], "To"),
        "the 480 ends the early dialog of the 183"
    );
    assert_heard(&packets, relay, &prompt, 1);
    carrier.ack(&responses[2]);
    assert!(
        phone.recv_within(Duration::from_millis(100)).is_none(),
        "no phone rings after hours"
    );

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].number, "4001234570");
    assert_eq!(rows[0].outcome, "after_hours");
    assert_eq!(rows[0].hangup, "system after_hours");
    assert_eq!(rows[0].announcement, "after-hours");
    assert_released(relay);
}

#[test]
fn all_phones_busy_the_caller_hears_the_busy_prompt_then_486() {
    let phone = UdpClient::new();
    let base = rtp_base(1);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let prompt = shipped_prompt("busy");

    let carrier = Carrier::call(&daemon, "4001234567", "busy-1@test");
    for number in ["13900000001", "13900000002"] {
        let invite = wait_for(&phone, "INVITE to a phone", |m| is_request(m, "INVITE"));
        assert!(
            std::str::from_utf8(&invite)
                .unwrap()
                .starts_with(&format!("INVITE sip:{number}@")),
            "{number} rings next"
        );
        phone.send(
            &respond(&invite, 486, "Busy Here", None, phone.port()),
            daemon.addr(),
        );
    }
    let (responses, packets) =
        carrier.listen_until_final(prompt.duration() + Duration::from_secs(10));
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(statuses, [Some(100), Some(183), Some(486)]);
    let relay = sdp_target(body_of(&responses[1]));
    assert_heard(&packets, relay, &prompt, 1);
    carrier.ack(&responses[2]);

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].outcome, "busy");
    assert_eq!(rows[0].attempts, "13900000001:486, 13900000002:486");
    assert_eq!(rows[0].announcement, "busy");
    assert_released(relay);
}

#[test]
fn a_number_without_announcements_still_gets_the_bare_status_at_once() {
    let phone = UdpClient::new();
    let base = rtp_base(2);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));

    let carrier = Carrier::call(&daemon, "4001234568", "plain-1@test");
    let started = Instant::now();
    for _ in 0..2 {
        let invite = wait_for(&phone, "INVITE to a phone", |m| is_request(m, "INVITE"));
        phone.send(
            &respond(&invite, 486, "Busy Here", None, phone.port()),
            daemon.addr(),
        );
    }
    let (responses, packets) = carrier.listen_until_final(Duration::from_secs(10));
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(statuses, [Some(100), Some(486)], "no 183: nothing to hear");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the bare 486 comes at once, not after a prompt: {:?}",
        started.elapsed()
    );
    assert!(packets.is_empty(), "no RTP without an announcement");
    carrier.ack(&responses[1]);

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].outcome, "busy");
    assert_eq!(rows[0].announcement, "");
}

#[test]
fn a_caller_hanging_up_during_the_announcement_gets_487_and_the_outcome_stays() {
    let phone = UdpClient::new();
    let base = rtp_base(3);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));

    let carrier = Carrier::call(&daemon, "4001234570", "cancel-1@test");
    let progress = wait_for(&carrier.sip, "183", |m| status_of(m) == Some(183));
    let relay = sdp_target(body_of(&progress));
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut heard = 0;
    while heard < 10 && Instant::now() < deadline {
        if carrier.rtp.recv_from(&mut buf).is_ok() {
            heard += 1;
        }
    }
    assert_eq!(
        heard, 10,
        "the announcement plays before the caller gives up"
    );
    carrier.cancel();
    let mut statuses = Vec::new();
    let mut invite_final = None;
    while statuses.len() < 2 {
        let m = wait_for(&carrier.sip, "200 for the CANCEL and 487", |m| {
            status_of(m).is_some_and(|s| s >= 200)
        });
        if header_of(&m, "CSeq").is_some_and(|c| c.ends_with("INVITE")) {
            invite_final = Some(m.clone());
        }
        statuses.push(status_of(&m));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [Some(200), Some(487)]);
    carrier.ack(&invite_final.expect("the INVITE's final response"));

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(
        rows[0].outcome, "after_hours",
        "the outcome is what was announced"
    );
    assert_eq!(rows[0].hangup, "caller CANCEL");
    assert_eq!(rows[0].announcement, "after-hours");
    assert_released(relay);
    // Nothing more plays once the ports are closed.
    while carrier.rtp.recv_from(&mut buf).is_ok() {}
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        carrier.rtp.recv_from(&mut buf).is_err(),
        "RTP after the 487"
    );
}
