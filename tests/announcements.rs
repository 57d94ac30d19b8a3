//! Announcements instead of bare error codes, end to end: the daemon with the relay on
//! and the shipped Mandarin prompts, a hand-written carrier (and phone) on plain UDP
//! sockets. A call that cannot go through is answered with `183` and the relay's SDP,
//! the caller receives the prompt's own audio frame by frame (not silence, not the
//! 450 Hz tone), then the final status; the CDR keeps its outcome and names the
//! announcement. Every case is driven: after hours, every phone busy, nobody answering
//! (after the ringback, on the same 183), a suspended number, refused callers (a
//! blacklisted number, a blocked province, an anonymous caller), a number's own
//! announcement and play count over its plan's, and a call a voice menu already
//! answered (the prompt in its dialog, then a BYE). A number without one still gets
//! the bare status at once.

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
/// 4001234567 announces busy, no answer, and refused callers (a blacklisted number,
/// Guangdong's callers, anonymous ones), once; 4001234568 announces nothing;
/// 4001234571 is suspended and announces it once, 4001234573 likewise but twice (its
/// own `announcement_plays`); 4001234572 rings a lone phone for at most 2 s and
/// announces that nobody answered; 4001234574 is 4001234567 with its own busy
/// announcement (the no-answer prompt); 4001234575 is answered by a voice menu whose
/// key 1 rings the desk. Every phone is reached at the hand-written phone's port.
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

[[prompt]]
name = "suspended"
file = "suspended.wav"

[[prompt]]
name = "refused"
file = "refused.wav"

[[prompt]]
name = "menu"
file = "menu.wav"

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

[[number]]
number = "4001234571"
enterprise = "acme"
status = "suspended"
plan = "main"

[[number]]
number = "4001234572"
enterprise = "acme"
status = "active"
plan = "hurried"

[[number]]
number = "4001234573"
enterprise = "acme"
status = "suspended"
plan = "main"
announcement_plays = 2

[[number]]
number = "4001234574"
enterprise = "acme"
status = "active"
plan = "main"
announcements = {{ busy = "no-answer" }}

[[number]]
number = "4001234575"
enterprise = "acme"
status = "active"
plan = "switchboard"

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
blacklist = ["13900000000"]
block_provinces = ["广东"]
reject_anonymous = true
announcements = {{ busy = "busy", no_answer = "no-answer", suspended = "suspended", refused = "refused" }}
announcement_plays = 1

[[plan]]
name = "hurried"
enterprise = "acme"
group = "lone"
hunt_timeout_s = 2
announcements = {{ no_answer = "no-answer" }}

[[plan]]
name = "switchboard"
enterprise = "acme"
group = "desk"
menu = "front"
announcements = {{ busy = "busy" }}

[[menu]]
name = "front"
enterprise = "acme"
root = "main"

[[menu.node]]
name = "main"
prompt = "menu"
default = "hangup"

[menu.node.options]
"1" = {{ group = "desk" }}

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

[[group]]
name = "lone"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000003" }}]
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

/// A carrier placing one call from `caller` to `number` with a PCMU offer from its own
/// RTP socket.
struct Carrier {
    sip: UdpClient,
    rtp: UdpSocket,
    sihai: SocketAddr,
    call_id: String,
    caller: String,
    number: String,
}

impl Carrier {
    /// A call from 13800138000, a Beijing mobile that every plan here lets through.
    fn call(daemon: &Daemon, number: &str, call_id: &str) -> Carrier {
        Carrier::call_from(daemon, "13800138000", number, call_id)
    }

    /// A call from `caller` (the From's user: a number, or "anonymous").
    fn call_from(daemon: &Daemon, caller: &str, number: &str, call_id: &str) -> Carrier {
        let carrier = Carrier {
            sip: UdpClient::new(),
            rtp: UdpSocket::bind("127.0.0.1:0").expect("bind RTP"),
            sihai: daemon.addr(),
            call_id: call_id.into(),
            caller: caller.into(),
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
             From: <sip:{caller}@127.0.0.1>;tag=carrier\r\nTo: <sip:{number}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:{caller}@127.0.0.1:{cport}>\r\n\
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
            // One packet a turn, not all that come: a stream that never pauses (a menu
            // after its 200) must not keep the SIP socket from being read.
            if let Ok((n, from)) = self.rtp.recv_from(&mut buf) {
                packets.push((from, buf[..n].to_vec()));
            }
            if let Some(m) = self.sip.recv_within(Duration::from_millis(1)) {
                let status = status_of(&m);
                responses.push(m);
                if status.is_some_and(|s| s >= 200) {
                    // What was sent before the final response is queued: take that,
                    // without waiting for more (a 200 is to be ACKed at once).
                    self.rtp.set_nonblocking(true).expect("non-blocking RTP");
                    while let Ok((n, from)) = self.rtp.recv_from(&mut buf) {
                        packets.push((from, buf[..n].to_vec()));
                    }
                    self.rtp.set_nonblocking(false).expect("blocking RTP");
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
             From: <sip:{caller}@127.0.0.1>;tag=carrier\r\nTo: <sip:{number}@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            number = self.number,
            caller = self.caller,
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
             From: <sip:{caller}@127.0.0.1>;tag=carrier\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            number = self.number,
            caller = self.caller,
            port = self.sihai.port(),
            cport = self.sip.port(),
            call_id = self.call_id,
            branch = branch_of(&self.call_id),
        );
        self.sip.send(ack.as_bytes(), self.sihai);
    }
}

impl Carrier {
    /// Sends `method` (CSeq `cseq`) in the dialog that `answer`, the daemon's 2xx to
    /// the INVITE, made: a new transaction, the ACK of the 2xx included.
    fn in_dialog(&self, answer: &[u8], method: &str, cseq: u32, extra_headers: &str, body: &str) {
        let to = header_of(answer, "To").expect("To");
        let request = format!(
            "{method} sip:{number}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{branch}-{method}-{cseq};rport\r\n\
             From: <sip:{caller}@127.0.0.1>;tag=carrier\r\nTo: {to}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra_headers}\
             Content-Length: {len}\r\n\r\n{body}",
            number = self.number,
            caller = self.caller,
            port = self.sihai.port(),
            cport = self.sip.port(),
            call_id = self.call_id,
            branch = branch_of(&self.call_id),
            len = body.len(),
        );
        self.sip.send(request.as_bytes(), self.sihai);
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

// ------------------------------------------------------- every case, end to end

/// Checks the SIP of an announced release: `100`, `183` whose SDP names one of the
/// relay's ports (`base..=base + 19`) and opens an early dialog, then `final_status`
/// in that same dialog (the 183's To tag); returns the relay's address from the 183.
#[track_caller]
fn assert_announced_release(responses: &[Vec<u8>], final_status: u16, base: u16) -> SocketAddr {
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(statuses, [Some(100), Some(183), Some(final_status)]);
    let relay = sdp_target(body_of(&responses[1]));
    assert!(
        (base..=base + 19).contains(&relay.port()),
        "the 183 offers a relay port: {relay}"
    );
    assert!(
        header_of(&responses[1], "To").is_some_and(|to| to.contains("tag=")),
        "the 183 opens an early dialog"
    );
    assert_eq!(
        header_of(&responses[1], "To"),
        header_of(&responses[2], "To"),
        "the {final_status} ends the early dialog of the 183"
    );
    relay
}

/// Where `prompt` starts in `packets`: the first packet that is its frame 0 and is
/// followed by its next frames (up to ten), so that a frame of something else that
/// happens to match cannot pass for the start.
#[track_caller]
fn prompt_start(packets: &[Received], prompt: &Prompt) -> usize {
    let run = prompt.frames().min(10);
    (0..packets.len())
        .find(|&start| {
            packets.len() >= start + run
                && (0..run).all(|i| Some(&packets[start + i].1[12..]) == prompt.frame(Law::Ulaw, i))
        })
        .unwrap_or_else(|| panic!("the prompt never starts in {} packets", packets.len()))
}

/// A call from `caller` to `number` that is refused at once, with `prompt` played
/// `plays` times before `status`: checks the SIP, the audio, its length in time and
/// that no phone rang; returns the call's CDR once the relay's ports are back.
fn refused_after_announcement(
    slot: u16,
    caller: &str,
    number: &str,
    prompt_name: &str,
    plays: u32,
    status: u16,
) -> support::CdrRow {
    let phone = UdpClient::new();
    let base = rtp_base(slot);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let prompt = shipped_prompt(prompt_name);
    let played = prompt.duration() * plays;

    let carrier = Carrier::call_from(
        &daemon,
        caller,
        number,
        &format!("{prompt_name}-{slot}@test"),
    );
    let started = Instant::now();
    let (responses, packets) = carrier.listen_until_final(played + Duration::from_secs(10));
    let elapsed = started.elapsed();
    let relay = assert_announced_release(&responses, status, base);
    assert!(
        elapsed + Duration::from_millis(500) >= played,
        "the {status} waits for {plays} play(s) ({played:?}), came after {elapsed:?}"
    );
    assert_heard(&packets, relay, &prompt, plays as usize);
    carrier.ack(&responses[2]);
    assert!(
        phone.recv_within(Duration::from_millis(100)).is_none(),
        "no phone rings for a call refused before any is tried"
    );
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].number, number);
    assert_eq!(rows[0].caller, caller);
    assert_eq!(rows[0].hangup, format!("system {status}"));
    assert_eq!(rows[0].attempts, "", "no phone was tried");
    assert_eq!(rows[0].announcement, prompt_name);
    assert_released(relay);
    rows[0].clone()
}

#[test]
fn nobody_answering_the_caller_hears_ringback_then_the_no_answer_prompt_on_one_183_then_480() {
    let phone = UdpClient::new();
    let base = rtp_base(4);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let prompt = shipped_prompt("no-answer");

    let called = Instant::now();
    let carrier = Carrier::call(&daemon, "4001234572", "unanswered-1@test");
    let invite = wait_for(&phone, "INVITE to the phone", |m| is_request(m, "INVITE"));
    assert!(
        invite.starts_with(b"INVITE sip:13900000003@"),
        "the lone phone rings"
    );
    phone.send(
        &respond(&invite, 180, "Ringing", None, phone.port()),
        daemon.addr(),
    );
    let rang = Instant::now();
    // The phone rings on and never answers: the plan's 2 s hunt ends with a CANCEL,
    // which the phone takes (200, then 487 for its INVITE) as a phone does. The
    // caller's RTP is collected meanwhile, so the ringback is not lost.
    let mut packets = Vec::new();
    let mut buf = [0u8; 2048];
    let cancel = loop {
        assert!(
            rang.elapsed() < Duration::from_secs(6),
            "no CANCEL to the phone within 6 s of its 180"
        );
        if let Ok((n, from)) = carrier.rtp.recv_from(&mut buf) {
            packets.push((from, buf[..n].to_vec()));
        }
        if let Some(m) = phone.recv_within(Duration::from_millis(1))
            && is_request(&m, "CANCEL")
        {
            break m;
        }
    };
    // The hunt began after the INVITE was sent, so its 2 s cannot be up before.
    assert!(
        called.elapsed() >= Duration::from_secs(2),
        "the hunt gave up {:?} after the INVITE, before its 2 s",
        called.elapsed()
    );
    phone.send(
        &respond(&cancel, 200, "OK", None, phone.port()),
        daemon.addr(),
    );
    phone.send(
        &respond(&invite, 487, "Request Terminated", None, phone.port()),
        daemon.addr(),
    );
    let (responses, more) = carrier.listen_until_final(prompt.duration() + Duration::from_secs(10));
    packets.extend(more);
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(
        statuses,
        [Some(100), Some(183), Some(480)],
        "one 183, for the ringback and the announcement both"
    );
    let relay = assert_announced_release(&responses, 480, base);

    // Ringback first: the Chinese ringing tone (1 s of 450 Hz, then silence) frame by
    // frame, from the same relay port, then the whole prompt once.
    let start = prompt_start(&packets, &prompt);
    assert!(
        start >= 50,
        "about 2 s of ringback before the prompt, got {start} packets"
    );
    let mut tone = sihai_media::Tone::ringback();
    let first_timestamp = u32::from_be_bytes(packets[0].1[4..8].try_into().unwrap());
    let mut tone_frames = Vec::new();
    for (from, packet) in &packets[..start] {
        assert_eq!(*from, relay, "the ringback comes from the 183's port");
        let timestamp = u32::from_be_bytes(packet[4..8].try_into().unwrap());
        let index = (timestamp.wrapping_sub(first_timestamp) / 160) as usize;
        while tone_frames.len() <= index {
            tone_frames.push(tone.next_frame_encoded(Law::Ulaw));
        }
        assert_eq!(
            &packet[12..],
            &tone_frames[index][..],
            "ringback frame {index} is not the ringing tone's"
        );
    }
    assert_heard(&packets[start..], relay, &prompt, 1);
    carrier.ack(&responses[2]);
    wait_for(&phone, "the daemon's ACK of the phone's 487", |m| {
        is_request(m, "ACK")
    });

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].number, "4001234572");
    assert_eq!(rows[0].outcome, "no_answer");
    assert_eq!(rows[0].hangup, "system 480");
    assert_eq!(rows[0].attempts, "13900000003:no_answer");
    assert!(!rows[0].ring.is_empty(), "the phone rang: {:#?}", rows[0]);
    assert_eq!(rows[0].announcement, "no-answer");
    assert_released(relay);
}

#[test]
fn a_suspended_number_announces_it_once_then_480() {
    let cdr = refused_after_announcement(5, "13800138000", "4001234571", "suspended", 1, 480);
    assert_eq!(
        cdr.outcome, "rejected",
        "as for a suspended number without one"
    );
}

#[test]
fn a_blacklisted_caller_hears_the_refused_prompt_then_603() {
    let cdr = refused_after_announcement(6, "13900000000", "4001234567", "refused", 1, 603);
    assert_eq!(cdr.outcome, "blacklisted");
}

#[test]
fn a_caller_from_a_blocked_province_hears_the_refused_prompt_then_603() {
    // A Guangzhou landline, as tests/screening.rs checks against the embedded data.
    let guangzhou = "02012345678";
    let region = sihai_region::RegionTable::embedded()
        .lookup(guangzhou)
        .map(|r| (r.province, r.city));
    assert_eq!(region, Some(("广东", "广州")));
    let cdr = refused_after_announcement(7, guangzhou, "4001234567", "refused", 1, 603);
    assert_eq!(cdr.outcome, "blacklisted");
    assert_eq!(cdr.region, "广东 广州");
}

#[test]
fn an_anonymous_caller_hears_the_refused_prompt_then_433() {
    let cdr = refused_after_announcement(8, "anonymous", "4001234567", "refused", 1, 433);
    assert_eq!(
        cdr.outcome, "blacklisted",
        "as for any caller screening refuses"
    );
    assert_eq!(cdr.region, "");
}

#[test]
fn a_number_s_own_announcement_plays_overrides_its_plan_s_the_prompt_plays_twice() {
    // The same plan and prompt as 4001234571, which plays it once.
    let cdr = refused_after_announcement(9, "13800138000", "4001234573", "suspended", 2, 480);
    assert_eq!(cdr.outcome, "rejected");
}

#[test]
fn a_call_the_menu_answered_whose_group_is_all_busy_hears_the_busy_prompt_then_a_bye() {
    let phone = UdpClient::new();
    let base = rtp_base(10);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let menu = shipped_prompt("menu");
    let busy = shipped_prompt("busy");

    let carrier = Carrier::call(&daemon, "4001234575", "menu-busy-1@test");
    let (responses, mut heard) = carrier.listen_until_final(Duration::from_secs(5));
    let statuses: Vec<_> = responses.iter().map(|m| status_of(m)).collect();
    assert_eq!(statuses, [Some(100), Some(200)], "the menu answers at once");
    let answer = &responses[1];
    let relay = sdp_target(body_of(answer));
    assert!(
        (base..=base + 19).contains(&relay.port()),
        "the 200 offers a relay port: {relay}"
    );
    carrier.in_dialog(answer, "ACK", 1, "", "");

    // The menu's prompt plays from its start: its first half second, frame by frame.
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(3);
    while heard.len() < 25 {
        assert!(Instant::now() < deadline, "no menu prompt within 3 s");
        if let Ok((n, from)) = carrier.rtp.recv_from(&mut buf) {
            heard.push((from, buf[..n].to_vec()));
        }
    }
    assert_eq!(
        prompt_start(&heard, &menu),
        0,
        "the menu prompt, from its start"
    );
    for (i, (from, packet)) in heard.iter().enumerate() {
        assert_eq!(*from, relay);
        assert_eq!(
            Some(&packet[12..]),
            menu.frame(Law::Ulaw, i),
            "menu frame {i}"
        );
    }

    // Key 1 (a SIP INFO) barges in and rings the desk, whose two phones are busy.
    carrier.in_dialog(
        answer,
        "INFO",
        2,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=1\r\nDuration=160\r\n",
    );
    let mut packets = Vec::new();
    for number in ["13900000001", "13900000002"] {
        let invite = wait_for(&phone, "INVITE to a phone", |m| is_request(m, "INVITE"));
        assert!(
            invite.starts_with(format!("INVITE sip:{number}@").as_bytes()),
            "{number} rings next"
        );
        phone.send(
            &respond(&invite, 486, "Busy Here", None, phone.port()),
            daemon.addr(),
        );
    }
    // The busy prompt plays in the answered dialog, then the daemon hangs up.
    let deadline = Instant::now() + busy.duration() + Duration::from_secs(10);
    let mut info_answered = false;
    let bye = loop {
        assert!(Instant::now() < deadline, "no BYE to the caller");
        if let Ok((n, from)) = carrier.rtp.recv_from(&mut buf) {
            packets.push((from, buf[..n].to_vec()));
        }
        let Some(m) = carrier.sip.recv_within(Duration::from_millis(1)) else {
            continue;
        };
        if is_request(&m, "BYE") {
            break m;
        }
        if status_of(&m) == Some(200) && header_of(&m, "CSeq") == Some("1 INVITE") {
            // The answer again, should a loaded machine have delayed the ACK past
            // the daemon's first retransmission: ACKed again, as RFC 3261 §13.2.2.4 says.
            carrier.in_dialog(&m, "ACK", 1, "", "");
            continue;
        }
        assert_eq!(
            (status_of(&m), header_of(&m, "CSeq")),
            (Some(200), Some("2 INFO")),
            "the caller was answered: nothing but the INFO's 200 before the BYE, got {}",
            String::from_utf8_lossy(&m),
        );
        info_answered = true;
    };
    assert!(info_answered, "the key's INFO was answered");
    let to_tag = header_of(answer, "To")
        .and_then(|to| to.split("tag=").nth(1))
        .expect("To tag in the 200");
    assert!(
        header_of(&bye, "From").is_some_and(|from| from.ends_with(&format!("tag={to_tag}"))),
        "the BYE is in the menu's dialog: {}",
        String::from_utf8_lossy(&bye)
    );
    carrier.sip.send(
        &respond(&bye, 200, "OK", None, carrier.sip.port()),
        carrier.sihai,
    );
    // Whatever was left of the menu, and the ringing tone, come before it; the BYE
    // only after the whole prompt (assert_heard wants nearly every frame of it).
    let start = prompt_start(&packets, &busy);
    assert_heard(&packets[start..], relay, &busy, 1);

    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].number, "4001234575");
    assert_eq!(rows[0].outcome, "busy");
    assert_eq!(rows[0].attempts, "13900000001:486, 13900000002:486");
    assert_eq!(rows[0].menu, "1");
    assert_eq!(rows[0].announcement, "busy");
    assert_eq!(rows[0].hangup, "system 486", "the status it would have had");
    assert_released(relay);
}

#[test]
fn a_number_s_own_busy_announcement_replaces_its_plan_s_and_the_plan_s_other_cases_stay() {
    let phone = UdpClient::new();
    let base = rtp_base(11);
    let daemon = Daemon::start_with("", &routing(base, phone.port()));
    let own_busy = shipped_prompt("no-answer");
    let plan_refused = shipped_prompt("refused");

    // At once on 4001234574: a call all of whose phones are busy, and a blacklisted
    // caller.
    let busy_call = Carrier::call(&daemon, "4001234574", "own-busy-1@test");
    let refused_call =
        Carrier::call_from(&daemon, "13900000000", "4001234574", "plan-refused-1@test");
    let ((responses, packets), (refused_responses, refused_packets)) =
        std::thread::scope(|scope| {
            let refused = scope.spawn(|| {
                refused_call.listen_until_final(plan_refused.duration() + Duration::from_secs(10))
            });
            for _ in 0..2 {
                let invite = wait_for(&phone, "INVITE to a phone", |m| is_request(m, "INVITE"));
                phone.send(
                    &respond(&invite, 486, "Busy Here", None, phone.port()),
                    daemon.addr(),
                );
            }
            let busy = busy_call.listen_until_final(own_busy.duration() + Duration::from_secs(10));
            (busy, refused.join().expect("the refused call's listener"))
        });

    let relay = assert_announced_release(&responses, 486, base);
    assert_heard(&packets, relay, &own_busy, 1);
    busy_call.ack(&responses[2]);
    let refused_relay = assert_announced_release(&refused_responses, 603, base);
    assert_ne!(relay, refused_relay, "each call has its own relay ports");
    assert_heard(&refused_packets, refused_relay, &plan_refused, 1);
    refused_call.ack(&refused_responses[2]);

    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let busy_cdr = rows
        .iter()
        .find(|r| r.caller == "13800138000")
        .expect("the busy call's CDR");
    assert_eq!(busy_cdr.outcome, "busy");
    assert_eq!(busy_cdr.announcement, "no-answer", "the number's own");
    let refused_cdr = rows
        .iter()
        .find(|r| r.caller == "13900000000")
        .expect("the refused call's CDR");
    assert_eq!(refused_cdr.outcome, "blacklisted");
    assert_eq!(refused_cdr.announcement, "refused", "the plan's");
    assert_released(relay);
    assert_released(refused_relay);
}
