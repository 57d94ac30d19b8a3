//! How long a call may last and what keeps it alive, and what the caller hears while
//! phones ring, driven end to end: the plan's `max_call_s` cuts an answered call with a
//! BYE to both sides; `[media] media_timeout` ends an answered call whose audio stopped
//! (through the RTP relay); a number's own ringback WAV is what the caller receives
//! while the phone rings, frame by frame, instead of the 450 Hz tone; a plan's
//! `early_media = "phone"` passes the phone's own early audio instead; and a call that
//! finds `rtp_ports` used up is refused with 503. Timers are set small (2 s) to keep
//! the suite fast; every check on time has generous margins.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_media::{Law, RtpPacket};
use support::routing::{group, only_cdr, phone, routing};
use support::rtp::{
    body_of, caller_invite, is_request, relay_routing_head_with, respond, rtp_base, rtp_packet,
    rtp_socket, sdp, sdp_target, wait_for, write_mono_wav,
};
use support::{Caller, Daemon, Phone, UdpClient, status_of};

// ------------------------------------------------------------------ max_call_s

#[test]
fn max_call_s_cuts_the_call_with_bye_to_both_sides_at_the_limit() {
    // The phone waits for a BYE (uas_answer.xml), and so does the caller
    // (uac_phone_hangs_up.xml): neither hangs up, only the limit ends the call.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nmax_call_s = 2",
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "")],
            ),
        ),
    );
    let started = Instant::now();
    // Exits 0 only once it got sihai's BYE and answered it.
    Caller::new(&daemon, "uac_phone_hangs_up.xml").run();
    let took = started.elapsed();
    // Exits 0 only once it got its BYE too.
    answers.finish(&daemon);
    assert!(
        took >= Duration::from_secs(2),
        "the call may last 2 s, it was cut after {took:?}"
    );
    assert!(took < Duration::from_secs(8), "cut late: {took:?}");

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.hangup, "system max_duration", "{cdr:#?}");
    assert!(
        (1..=4).contains(&cdr.talk_s),
        "talked {} s: {cdr:#?}",
        cdr.talk_s
    );
}

// ------------------------------------------------------------------ media timeout

/// The relay on `rtp_base(slot)`, `media_timeout = "2s"`, 4001234567 ringing one phone
/// `13900000001` through the gateway at 127.0.0.1:`gateway`, with `number_extra` set
/// on the number (e.g. its ringback), `plan_extra` on its plan, and `rest` appended
/// (e.g. prompts).
fn relay_routing(
    slot: u16,
    gateway: u16,
    prompts: Option<&std::path::Path>,
    number_extra: &str,
    plan_extra: &str,
    rest: &str,
) -> String {
    let base = rtp_base(slot);
    let head = relay_routing_head_with(
        &format!("{base}-{}", base + 19),
        prompts,
        gateway,
        "media_timeout = \"2s\"\n",
    );
    format!(
        r#"
{head}
[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"
{number_extra}

[[plan]]
name = "main"
enterprise = "acme"
group = "desk"
{plan_extra}

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001", ring_timeout_s = 20 }}]

{rest}
"#
    )
}

#[test]
fn media_timeout_ends_an_answered_call_that_sends_no_audio() {
    // Neither sipp sends RTP; both wait for sihai's BYE.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with("", &relay_routing(0, answers.port, None, "", "", ""));
    let started = Instant::now();
    Caller::new(&daemon, "uac_phone_hangs_up.xml").run();
    let took = started.elapsed();
    answers.finish(&daemon);
    assert!(
        took >= Duration::from_secs(2),
        "2 s of silence end the call; it ended after {took:?}"
    );
    assert!(took < Duration::from_secs(8), "ended late: {took:?}");

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.hangup, "system media_timeout", "{cdr:#?}");
}

#[test]
fn media_timeout_watches_a_caller_silent_while_ringing_once_the_call_is_answered() {
    // Carriers often send no audio before the answer. The phone rings longer than the
    // media timeout, answers, and talks; the caller never sends a packet: the call must
    // still end on the caller's silence, counted from the answer, not run until
    // max_call_s.
    let phone_sip = UdpClient::new();
    let daemon = Daemon::start_with("", &relay_routing(1, phone_sip.port(), None, "", "", ""));
    let mut caller = Caller::new(&daemon, "uac_phone_hangs_up.xml").spawn();

    let invite = wait_for(&phone_sip, "INVITE to the phone", |m| {
        is_request(m, "INVITE")
    });
    let relay_for_phone = sdp_target(body_of(&invite));
    phone_sip.send(
        &respond(&invite, 180, "Ringing", None, phone_sip.port()),
        daemon.addr(),
    );
    std::thread::sleep(Duration::from_secs(3));

    let phone_rtp = rtp_socket();
    let answer = sdp(
        phone_rtp.local_addr().expect("phone RTP").port(),
        "8",
        "a=rtpmap:8 PCMA/8000\r\n",
    );
    phone_sip.send(
        &respond(&invite, 200, "OK", Some(&answer), phone_sip.port()),
        daemon.addr(),
    );
    let answered = Instant::now();
    wait_for(&phone_sip, "ACK to the phone", |m| is_request(m, "ACK"));
    // The phone talks, a packet every 20 ms, until the daemon hangs up on it.
    let mut seq = 1u16;
    let bye = loop {
        assert!(
            answered.elapsed() < Duration::from_secs(10),
            "no BYE 10 s after the answer though the caller sent nothing:\n{}",
            daemon.log_text()
        );
        phone_rtp
            .send_to(
                &rtp_packet(8, seq, Law::Alaw.encode(-9000)),
                relay_for_phone,
            )
            .expect("send phone RTP");
        seq = seq.wrapping_add(1);
        if let Some(m) = phone_sip.recv_within(Duration::from_millis(20))
            && is_request(&m, "BYE")
        {
            break m;
        }
    };
    let after = answered.elapsed();
    phone_sip.send(
        &respond(&bye, 200, "OK", None, phone_sip.port()),
        daemon.addr(),
    );
    caller.finish(Duration::from_secs(15), &daemon);
    assert!(
        after >= Duration::from_millis(1500),
        "the caller has 2 s from the answer, the call ended {after:?} after it"
    );

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
    assert_eq!(cdr.hangup, "system media_timeout", "{cdr:#?}");
}

// ------------------------------------------------------------------ ringback WAV

/// The number's ringback: 16 frames of 20 ms, frame `i` all one level, alternately
/// positive and negative and 500 apart in size, so every packet tells which frame it
/// is (a 450 Hz tone frame is no constant, silence is level 0).
fn ringback_level(frame: usize) -> i16 {
    let size = 500 * (frame as i16 + 1);
    if frame.is_multiple_of(2) { size } else { -size }
}
const RINGBACK_FRAMES: usize = 16;

#[test]
fn the_caller_hears_the_numbers_own_ringback_wav_while_the_phone_rings() {
    let prompts = tempfile::tempdir().expect("prompt dir");
    let samples: Vec<i16> = (0..RINGBACK_FRAMES)
        .flat_map(|f| std::iter::repeat_n(ringback_level(f), 160))
        .collect();
    write_mono_wav(&prompts.path().join("hold.wav"), &samples);
    let phone_sip = UdpClient::new();
    let daemon = Daemon::start_with(
        "",
        &relay_routing(
            2,
            phone_sip.port(),
            Some(prompts.path()),
            "ringback = \"hold\"",
            "",
            "[[prompt]]\nname = \"hold\"\nfile = \"hold.wav\"\n",
        ),
    );

    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().expect("caller RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    caller.send(
        &caller_invite(&caller, daemon.port, "ringback-wav", "4001234567", &offer),
        daemon.addr(),
    );
    let invite = wait_for(&phone_sip, "INVITE to the phone", |m| {
        is_request(m, "INVITE")
    });
    phone_sip.send(
        &respond(&invite, 180, "Ringing", None, phone_sip.port()),
        daemon.addr(),
    );
    let progress = wait_for(&caller, "183 with the relay's SDP", |m| {
        status_of(m) == Some(183)
    });
    let relay_for_caller: SocketAddr = sdp_target(body_of(&progress));

    // A second of early media: 50 packets, the 16-frame prompt three times and more.
    let mut frames = Vec::new();
    let mut buf = [0u8; 2048];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) {
        let Ok((n, from)) = caller_rtp.recv_from(&mut buf) else {
            continue;
        };
        assert_eq!(from, relay_for_caller, "from the port the 183 gave");
        let packet = RtpPacket::parse(&buf[..n]).expect("RTP");
        assert_eq!(packet.payload_type(), 0, "PCMU, as offered");
        let payload = packet.payload();
        let frame = (0..RINGBACK_FRAMES).find(|&f| {
            payload.len() == 160
                && payload
                    .iter()
                    .all(|&b| b == Law::Ulaw.encode(ringback_level(f)))
        });
        frames.push(frame.unwrap_or_else(|| {
            panic!(
                "packet {} is no frame of the ringback WAV (the tone or silence?): {:?}",
                frames.len(),
                &payload[..payload.len().min(16)]
            )
        }));
    }
    assert!(
        frames.len() >= 35,
        "~50 packets in a second, got {}",
        frames.len()
    );
    // In order and looped. The relay plays by the clock: a tick the loaded event loop
    // runs late sends the frame due then, so a frame may be skipped now and then, but
    // never repeated or played out of order.
    assert!(
        frames[0] < 4,
        "the prompt starts at its beginning: {frames:?}"
    );
    let steps: Vec<usize> = frames
        .windows(2)
        .map(|w| (w[1] + RINGBACK_FRAMES - w[0]) % RINGBACK_FRAMES)
        .collect();
    assert!(
        steps.iter().all(|s| (1..=4).contains(s)),
        "the prompt's frames in order, looped: {frames:?}"
    );
    assert!(
        steps.iter().filter(|&&s| s == 1).count() * 4 >= steps.len() * 3,
        "mostly frame after frame: {frames:?}"
    );
}

#[test]
fn with_early_media_from_the_phone_the_caller_hears_the_phones_own_audio() {
    // early_media = "phone": the ringing phone's 183 audio (a mobile carrier's own
    // 彩铃, say) reaches the caller instead of our ringback.
    let phone_sip = UdpClient::new();
    let daemon = Daemon::start_with(
        "",
        &relay_routing(3, phone_sip.port(), None, "", "early_media = \"phone\"", ""),
    );
    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().expect("caller RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    caller.send(
        &caller_invite(
            &caller,
            daemon.port,
            "phone-early-media",
            "4001234567",
            &offer,
        ),
        daemon.addr(),
    );
    let invite = wait_for(&phone_sip, "INVITE to the phone", |m| {
        is_request(m, "INVITE")
    });
    let relay_for_phone = sdp_target(body_of(&invite));
    let phone_rtp = rtp_socket();
    let early = sdp(
        phone_rtp.local_addr().expect("phone RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    phone_sip.send(
        &respond(
            &invite,
            183,
            "Session Progress",
            Some(&early),
            phone_sip.port(),
        ),
        daemon.addr(),
    );
    wait_for(&caller, "183 with the relay's SDP", |m| {
        status_of(m) == Some(183)
    });

    // The phone plays its own ringback for a second, a level no tone has.
    let from_phone = Law::Ulaw.encode(-5000);
    let mut heard = 0;
    let mut other = 0;
    let mut buf = [0u8; 2048];
    for seq in 1..=50u16 {
        phone_rtp
            .send_to(&rtp_packet(0, seq, from_phone), relay_for_phone)
            .expect("send phone RTP");
        let until = Instant::now() + Duration::from_millis(20);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            caller_rtp
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            let Ok((n, _)) = caller_rtp.recv_from(&mut buf) else {
                break;
            };
            let packet = RtpPacket::parse(&buf[..n]).expect("RTP");
            if !packet.payload().is_empty() && packet.payload().iter().all(|&b| b == from_phone) {
                heard += 1;
            } else if heard > 0 {
                // Once the phone's audio flows, nothing else is mixed in.
                other += 1;
            }
        }
    }
    assert!(
        heard >= 40,
        "the caller heard {heard} of the phone's 50 packets:\n{}",
        daemon.log_text()
    );
    assert_eq!(other, 0, "other audio after the phone's began");
}

// ------------------------------------------------------------------ relay ports

#[test]
fn a_call_finding_no_free_relay_ports_is_refused_with_503() {
    // rtp_ports holds two pairs: one call's (caller and phone). While it rings, the
    // next call with SDP finds the pool empty.
    let phone_sip = UdpClient::new();
    let base = rtp_base(4);
    let head = relay_routing_head_with(&format!("{base}-{}", base + 3), None, phone_sip.port(), "");
    let daemon = Daemon::start_with(
        "",
        &format!(
            "{head}\n[[number]]\nnumber = \"4001234567\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n\
             [[plan]]\nname = \"main\"\nenterprise = \"acme\"\ngroup = \"desk\"\n\
             [[group]]\nname = \"desk\"\nenterprise = \"acme\"\nstrategy = \"sequential\"\n\
             phones = [{{ number = \"13900000001\", ring_timeout_s = 20 }}]\n"
        ),
    );
    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().expect("caller RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    caller.send(
        &caller_invite(&caller, daemon.port, "ports-1", "4001234567", &offer),
        daemon.addr(),
    );
    let invite = wait_for(&phone_sip, "INVITE to the phone", |m| {
        is_request(m, "INVITE")
    });
    phone_sip.send(
        &respond(&invite, 180, "Ringing", None, phone_sip.port()),
        daemon.addr(),
    );
    wait_for(&caller, "183 for the first call", |m| {
        status_of(m) == Some(183)
    });

    let second = UdpClient::new();
    second.send(
        &caller_invite(&second, daemon.port, "ports-2", "4001234567", &offer),
        daemon.addr(),
    );
    let refused = wait_for(&second, "the second call's final response", |m| {
        status_of(m).is_some_and(|s| s >= 200)
    });
    assert_eq!(
        status_of(&refused),
        Some(503),
        "{}",
        String::from_utf8_lossy(&refused)
    );
    assert!(
        phone_sip
            .recv_within(Duration::from_millis(300))
            .is_none_or(|m| !is_request(&m, "INVITE")),
        "the refused call rang nobody"
    );
}
