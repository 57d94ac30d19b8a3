//! Voice menus (IVR) end to end: the daemon answers the switchboard number with its
//! menu over the RTP relay on 127.0.0.1, and a hand-written carrier (caller) and phone
//! on plain UDP sockets walk the three ways through it: a key sent as RFC 4733
//! telephone-events picks a group, keys sent as SIP INFO dial an extension, and an
//! invalid key then silence end in the menu's default. Each prompt is a WAV of one
//! constant sample value, so every packet the caller receives tells which prompt plays.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use sihai_media::{Law, RtpPacket, WavRecorder};
use support::rtp::{
    assert_released, body_of, is_request, relay_routing_head, respond, rtp_base, rtp_packet,
    rtp_socket, sdp, sdp_target, wait_for,
};
use support::{Daemon, UdpClient, header_of, status_of};

const SWITCHBOARD: &str = "4007654321";
const SALES_PHONE: &str = "13900000001";
const SERVICE_PHONE: &str = "13900000003";
const DESK_PHONE: &str = "13900000004";

/// Each prompt's constant sample value: far enough apart that µ-law's rounding (at
/// most ±64 at these levels) never makes one look like another.
const PROMPT_LEVELS: [(&str, i16); 7] = [
    ("welcome", 1000),
    ("menu", 2000),
    ("invalid", 3000),
    ("dial", 4000),
    ("service-menu", 5000),
    ("main-ringback", 6000),
    ("desk-ringback", 7000),
];

/// 200 ms: ten whole 20 ms frames, so no frame is padded with silence.
const PROMPT_SAMPLES: usize = 1600;

/// The level of the welcome's first 20 ms frame (its "opening"), which is no prompt's
/// level: the first packet out of the caller's relay port, checked to arrive.
const WELCOME_OPENING: i16 = 500;

/// The level of the main menu prompt's first frame, no prompt's level either: each time
/// the caller gets it, the menu has started again from the top.
const MENU_OPENING: i16 = 1500;

/// Acme's switchboard, as in the core's menu tests: "1" rings sales, "2" service, "0"
/// dials an extension (8001 rings the desk), "3" opens a second level, the service
/// menu ("1" rings the desk, "2" service, "*" goes back); an invalid key or a second of
/// silence in the main menu counts as a failure, and the second failure rings sales.
/// "#" hangs up. While phones ring the caller hears the main node's ringback for a choice made
/// there, the extension's own for 8001, and the ringing tone for the service menu's
/// choices (neither it nor the number has a ringback). Every phone is reached
/// through the trunk's gateway, the test's one hand-written phone socket; the
/// Request-URI's user tells which phone is rung. Extension dialling waits 10 s between
/// digits and takes up to six, so only the "#" can end "8001" within a test's waits.
fn switchboard(base: u16, prompts: &Path, phone_port: u16) -> String {
    let head = relay_routing_head(&format!("{base}-{}", base + 19), Some(prompts), phone_port);
    format!(
        r##"
{head}
[[number]]
number = "{SWITCHBOARD}"
enterprise = "acme"
status = "active"
plan = "switchboard"

[[plan]]
name = "switchboard"
enterprise = "acme"
group = "sales"
menu = "acme-menu"
hunt_timeout_s = 30

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "{SALES_PHONE}", ring_timeout_s = 1 }}]

[[group]]
name = "service"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "{SERVICE_PHONE}", ring_timeout_s = 10 }}]

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "{DESK_PHONE}", ring_timeout_s = 10 }}]

[[extension]]
enterprise = "acme"
number = "8001"
group = "desk"
ringback = "desk-ringback"

[[prompt]]
name = "main-ringback"
file = "main-ringback.wav"

[[prompt]]
name = "desk-ringback"
file = "desk-ringback.wav"

[[prompt]]
name = "welcome"
file = "welcome.wav"

[[prompt]]
name = "menu"
file = "menu.wav"

[[prompt]]
name = "invalid"
file = "invalid.wav"

[[prompt]]
name = "dial"
file = "dial.wav"

[[menu]]
name = "acme-menu"
enterprise = "acme"
welcome = "welcome"
root = "main"

[[menu.node]]
name = "main"
prompt = "menu"
timeout = "1s"
retries = 2
invalid = "invalid"
ringback = "main-ringback"
default = {{ group = "sales" }}

[menu.node.options]
"1" = {{ group = "sales" }}
"2" = {{ group = "service" }}
"0" = {{ extension = {{ prompt = "dial", max_digits = 6, inter_digit_timeout = "10s", terminator = "#" }} }}
"3" = {{ menu = "service" }}
"#" = "hangup"

[[prompt]]
name = "service-menu"
file = "service-menu.wav"

[[menu.node]]
name = "service"
prompt = "service-menu"
timeout = "5s"
invalid = "invalid"
default = "previous"

[menu.node.options]
"1" = {{ group = "desk" }}
"2" = {{ group = "service" }}
"*" = "previous"
"##,
    )
}

/// Writes each prompt as 200 ms of its constant level, but for the welcome's opening
/// frame. sihai_media's only WAV writer is the call recorder, which writes stereo; the
/// daemon mixes a stereo prompt down to the average of its channels, so equal
/// channels keep the level.
fn write_prompts(dir: &Path) {
    for (name, level) in PROMPT_LEVELS {
        let mut samples = [level; PROMPT_SAMPLES];
        if name == "welcome" {
            samples[..160].fill(WELCOME_OPENING);
        }
        if name == "menu" {
            samples[..160].fill(MENU_OPENING);
        }
        let mut wav = WavRecorder::new(std::io::Cursor::new(Vec::new())).expect("WAV header");
        wav.write_frame(&samples, &samples).expect("WAV samples");
        let bytes = wav.finish().expect("finished WAV").into_inner();
        std::fs::write(dir.join(format!("{name}.wav")), bytes).expect("write prompt");
    }
}

/// Whether every sample of a µ-law RTP packet is near `level`.
fn all_at(packet: &[u8], level: i16) -> bool {
    RtpPacket::parse(packet).is_ok_and(|p| {
        !p.payload().is_empty()
            && p.payload()
                .iter()
                .all(|&b| (i32::from(Law::Ulaw.decode(b)) - i32::from(level)).abs() < 200)
    })
}

/// Which prompt a µ-law packet to the caller carries, if every sample of it is one
/// prompt's level (ringing tone and silence are none).
fn prompt_of(packet: &[u8]) -> Option<&'static str> {
    PROMPT_LEVELS
        .iter()
        .find(|(_, level)| all_at(packet, *level))
        .map(|(name, _)| *name)
}

/// A call from the carrier to the switchboard, answered by its menu (200 and ACK
/// done), with the hand-written phone that every group's phones ring on.
struct MenuCall {
    daemon: Daemon,
    /// Holds the prompt files for as long as the daemon may reload them.
    _prompts: tempfile::TempDir,
    caller: UdpClient,
    caller_rtp: UdpSocket,
    phone: UdpClient,
    /// Where the caller's RTP goes: the relay port in the menu's 200.
    relay_for_caller: SocketAddr,
    /// The test's name for the call: its Call-ID's user part and its branches' stem.
    name: String,
    /// The daemon's To tag in the 200: the dialog the menu answered.
    menu_tag: String,
    /// The caller's last CSeq in the dialog (1: the INVITE).
    cseq: u32,
    /// The caller's next RTP sequence number and telephone-event timestamp.
    rtp_seq: u16,
    event_timestamp: u32,
    /// The prompts the caller heard so far, each stretch of packets once.
    heard: Vec<&'static str>,
    /// How many times the main menu prompt started (its opening frame arrived).
    menu_openings: usize,
}

impl MenuCall {
    /// Starts the daemon with relay ports from `rtp_base(slot)` and places the call,
    /// `name` (letters, digits and dashes: it is put in branches) telling it apart.
    fn answered(slot: u16, name: &str) -> MenuCall {
        MenuCall::answered_edited(slot, name, &[])
    }

    /// [`answered`](MenuCall::answered) with the switchboard's configuration changed
    /// by `edits`: each (from, to) replaces text that must be in it once.
    fn answered_edited(slot: u16, name: &str, edits: &[(&str, &str)]) -> MenuCall {
        let prompts = tempfile::tempdir().expect("prompt dir");
        write_prompts(prompts.path());
        let phone = UdpClient::new();
        let base = rtp_base(slot);
        let mut config = switchboard(base, prompts.path(), phone.port());
        for (from, to) in edits {
            assert_eq!(
                config.matches(from).count(),
                1,
                "{from:?} once in the switchboard"
            );
            config = config.replace(from, to);
        }
        let daemon = Daemon::start_with("", &config);

        let caller = UdpClient::new();
        let caller_rtp = rtp_socket();
        let offer = sdp(
            caller_rtp.local_addr().expect("caller RTP").port(),
            "0 101",
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
        );
        let invite = format!(
            "INVITE sip:{SWITCHBOARD}@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{name}-invite;rport\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{SWITCHBOARD}@127.0.0.1>\r\n\
             Call-ID: {name}@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
             Contact: <sip:13800138000@127.0.0.1:{cport}>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
            port = daemon.port,
            cport = caller.port(),
            len = offer.len()
        );
        caller.send(invite.as_bytes(), daemon.addr());

        // The menu answers at once, with the relay's SDP.
        let ok = wait_for(&caller, "the menu's 200", |m| {
            status_of(m) == Some(200) && header_of(m, "CSeq") == Some("1 INVITE")
        });
        let relay_for_caller = sdp_target(body_of(&ok));
        assert!(
            (base..=base + 19).contains(&relay_for_caller.port()),
            "the 200 offers a relay port: {relay_for_caller}"
        );
        let menu_tag = header_of(&ok, "To")
            .and_then(|t| t.split("tag=").nth(1))
            .expect("To tag in the 200")
            .to_string();
        // The welcome starts as the call is answered, with the port just opened: its
        // first frame is the first packet the caller gets, and must not be lost.
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(2);
        let n = loop {
            if let Ok((n, _)) = caller_rtp.recv_from(&mut buf) {
                break n;
            }
            assert!(Instant::now() < deadline, "no RTP to the caller within 2 s");
        };
        let opening = RtpPacket::parse(&buf[..n]).expect("RTP").payload().to_vec();
        assert!(
            opening
                .iter()
                .all(|&b| (i32::from(Law::Ulaw.decode(b)) - i32::from(WELCOME_OPENING)).abs() < 50),
            "the caller's first packet is the welcome's first frame: {opening:?}\n{}",
            daemon.log_text()
        );
        let call = MenuCall {
            daemon,
            _prompts: prompts,
            caller,
            caller_rtp,
            phone,
            relay_for_caller,
            name: name.to_string(),
            menu_tag,
            cseq: 1,
            rtp_seq: 1,
            event_timestamp: 8000,
            heard: Vec::new(),
            menu_openings: 0,
        };
        call.send_in_dialog("ACK", 1, "", "");
        call
    }

    /// Sends a request of the caller's dialog with the menu.
    fn send_in_dialog(&self, method: &str, cseq: u32, extra_headers: &str, body: &str) {
        let request = format!(
            "{method} sip:sihai@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{name}-{method}-{cseq}\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{SWITCHBOARD}@127.0.0.1>;tag={tag}\r\n\
             Call-ID: {name}@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra_headers}\
             Content-Length: {len}\r\n\r\n{body}",
            port = self.daemon.port,
            cport = self.caller.port(),
            name = self.name,
            tag = self.menu_tag,
            len = body.len(),
        );
        self.caller.send(request.as_bytes(), self.daemon.addr());
    }

    /// Sends a new request of the dialog and waits for its 200.
    fn request_answered(&mut self, method: &str, extra_headers: &str, body: &str) {
        self.cseq += 1;
        let cseq = format!("{} {method}", self.cseq);
        self.send_in_dialog(method, self.cseq, extra_headers, body);
        wait_for(&self.caller, &format!("200 for {cseq}"), |m| {
            status_of(m) == Some(200) && header_of(m, "CSeq") == Some(cseq.as_str())
        });
    }

    /// Listens to the caller's RTP until the prompts heard so far are `want`; fails as
    /// soon as they stop leading there, or after 5 s.
    fn hear(&mut self, want: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while self.heard != want {
            assert!(
                want.starts_with(&self.heard),
                "heard {:?}, expected {want:?}",
                self.heard
            );
            assert!(
                Instant::now() < deadline,
                "heard only {:?} within 5 s, expected {want:?}\n{}",
                self.heard,
                self.daemon.log_text()
            );
            self.listen(&mut buf);
        }
    }

    /// Takes the caller's next RTP packet, if one comes within the socket's 200 ms:
    /// notes a new prompt heard, or the main menu starting again.
    fn listen(&mut self, buf: &mut [u8]) {
        if let Ok((n, _)) = self.caller_rtp.recv_from(buf) {
            let packet = &buf[..n];
            if all_at(packet, MENU_OPENING) {
                self.menu_openings += 1;
            } else if let Some(name) = prompt_of(packet)
                && self.heard.last() != Some(&name)
            {
                self.heard.push(name);
            }
        }
    }

    /// Listens until the main menu has started `count` times, hearing no other prompt
    /// than those heard so far; fails after 5 s.
    fn hear_menu_start(&mut self, count: usize) {
        let heard = self.heard.clone();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 2048];
        while self.menu_openings < count {
            assert_eq!(
                self.heard, heard,
                "another prompt before the menu started again"
            );
            assert!(
                Instant::now() < deadline,
                "the menu started {} times within 5 s, expected {count}\n{}",
                self.menu_openings,
                self.daemon.log_text()
            );
            self.listen(&mut buf);
        }
        assert_eq!(
            self.heard, heard,
            "another prompt before the menu started again"
        );
    }

    /// Presses `key` as RFC 4733 telephone-events on the caller's RTP: three packets of
    /// one press (one timestamp), the first with the marker, the last with End.
    fn press_over_rtp(&mut self, key: char) {
        let event = sihai_media::key_to_event(key).expect("a DTMF key");
        for (i, end) in [(1u16, false), (2, false), (3, true)] {
            let fields = sihai_media::RtpFields {
                marker: i == 1,
                payload_type: 101,
                sequence: self.rtp_seq,
                timestamp: self.event_timestamp,
                ssrc: 0xCA11,
            };
            self.rtp_seq = self.rtp_seq.wrapping_add(1);
            // Event, End bit and volume 10, duration so far (160 per 20 ms).
            let duration = (160 * i).to_be_bytes();
            let payload = [
                event,
                if end { 0x80 } else { 0 } | 10,
                duration[0],
                duration[1],
            ];
            let mut packet = Vec::new();
            sihai_media::write_rtp_to_vec(&mut packet, &fields, &payload).expect("RTP packet");
            self.caller_rtp
                .send_to(&packet, self.relay_for_caller)
                .expect("send telephone-event");
        }
        self.event_timestamp += 8000;
    }

    /// Presses `key` as a SIP INFO (application/dtmf-relay) and waits for its 200.
    fn press_over_info(&mut self, key: char) {
        self.request_answered(
            "INFO",
            "Content-Type: application/dtmf-relay\r\n",
            &format!("Signal={key}\r\nDuration=160\r\n"),
        );
    }

    /// The INVITE the daemon sends to the phone, which must be to `number`; returns it
    /// and the relay port the phone is offered.
    fn phone_rung(&self, number: &str) -> (Vec<u8>, SocketAddr) {
        let invite = wait_for(&self.phone, &format!("INVITE to {number}"), |m| {
            is_request(m, "INVITE")
        });
        let request_line = std::str::from_utf8(&invite)
            .expect("UTF-8")
            .lines()
            .next()
            .expect("request line");
        assert!(
            request_line.starts_with(&format!("INVITE sip:{number}@")),
            "{number} rings, not {request_line}"
        );
        let relay_for_phone = sdp_target(body_of(&invite));
        (invite, relay_for_phone)
    }

    /// Answers `request` from the phone.
    fn phone_says(&self, request: &[u8], status: u16, reason: &str, body: Option<&str>) {
        self.phone.send(
            &respond(request, status, reason, body, self.phone.port()),
            self.daemon.addr(),
        );
    }

    /// The phone is cancelled while it rings: answers the CANCEL and its INVITE (487),
    /// and waits for the daemon's ACK of the 487.
    fn phone_cancelled(&self, invite: &[u8]) {
        let cancel = wait_for(&self.phone, "CANCEL to the phone", |m| {
            is_request(m, "CANCEL")
        });
        self.phone_says(&cancel, 200, "OK", None);
        self.phone_says(invite, 487, "Request Terminated", None);
        wait_for(&self.phone, "ACK of the 487", |m| is_request(m, "ACK"));
    }

    /// The daemon hangs up on the caller: a BYE in the menu's dialog, answered 200.
    fn caller_hung_up_on(&self) {
        let bye = wait_for(&self.caller, "BYE to the caller", |m| is_request(m, "BYE"));
        assert!(
            header_of(&bye, "From").is_some_and(|f| f.contains(&format!("tag={}", self.menu_tag))),
            "the BYE is in the menu's dialog: {}",
            String::from_utf8_lossy(&bye)
        );
        self.caller.send(
            &respond(&bye, 200, "OK", None, self.caller.port()),
            self.daemon.addr(),
        );
    }

    /// The call's record, once written: the only one.
    fn cdr(&self) -> support::CdrRow {
        let rows = self.daemon.wait_for_cdrs(1);
        assert_eq!(rows.len(), 1, "{rows:#?}");
        rows[0].clone()
    }
}

/// Waits on `socket` for a packet whose payload is all `byte`, skipping others (what
/// was queued before, prompts, silence); up to 2 s.
fn wait_for_audio(socket: &UdpSocket, byte: u8, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && RtpPacket::parse(&buf[..n])
                .is_ok_and(|p| !p.payload().is_empty() && p.payload().iter().all(|&b| b == byte))
        {
            return;
        }
    }
    panic!("not within 2 s: {what}");
}

#[test]
fn key_2_by_telephone_event_rings_the_service_phone_and_the_call_is_bridged() {
    let mut call = MenuCall::answered(0, "menu-key-2");
    // The key comes as soon as the menu starts: it cuts the prompt short (barge-in).
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('2');

    let (invite, relay_for_phone) = call.phone_rung(SERVICE_PHONE);
    assert_ne!(relay_for_phone, call.relay_for_caller, "a port per leg");
    // While it rings, the caller hears the main node's ringback.
    call.hear(&["welcome", "menu", "main-ringback"]);
    let phone_rtp = rtp_socket();
    let answer = sdp(
        phone_rtp.local_addr().expect("phone RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    call.phone_says(&invite, 200, "OK", Some(&answer));
    wait_for(&call.phone, "ACK to the phone", |m| is_request(m, "ACK"));

    // Bridged both ways through the relay, each side at a level no prompt has.
    let from_phone = Law::Ulaw.encode(-9000);
    let from_caller = Law::Ulaw.encode(7000);
    for seq in 1..=10 {
        phone_rtp
            .send_to(&rtp_packet(0, seq, from_phone), relay_for_phone)
            .expect("send phone RTP");
        call.caller_rtp
            .send_to(
                &rtp_packet(0, call.rtp_seq.wrapping_add(seq), from_caller),
                call.relay_for_caller,
            )
            .expect("send caller RTP");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for_audio(&call.caller_rtp, from_phone, "the caller hears the phone");
    wait_for_audio(&phone_rtp, from_caller, "the phone hears the caller");

    call.request_answered("BYE", "", "");
    let phone_bye = wait_for(&call.phone, "BYE to the phone", |m| is_request(m, "BYE"));
    call.phone_says(&phone_bye, 200, "OK", None);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "answered", "{cdr:?}");
    assert_eq!(cdr.answered_by, SERVICE_PHONE, "{cdr:?}");
    assert_eq!(cdr.attempts, format!("{SERVICE_PHONE}:answered"), "{cdr:?}");
    assert_eq!(cdr.menu, "2", "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn extension_8001_dialled_by_info_rings_the_desk_and_hanging_up_cancels_it() {
    let mut call = MenuCall::answered(1, "menu-extension");
    call.hear(&["welcome", "menu"]);
    call.press_over_info('0');
    call.hear(&["welcome", "menu", "dial"]);
    for key in "8001".chars() {
        call.press_over_info(key);
    }
    // Six digits may be dialled and 10 s may pass between them: the phone is rung
    // within `phone_rung`'s 5 s only because "#" ends the number.
    call.press_over_info('#');

    let (invite, relay_for_phone) = call.phone_rung(DESK_PHONE);
    call.phone_says(&invite, 180, "Ringing", None);
    // The extension's ringback wins over the node's.
    call.hear(&["welcome", "menu", "dial", "desk-ringback"]);
    // The caller hangs up while the desk rings.
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(cdr.menu, "0>8001", "{cdr:?}");
    assert_eq!(cdr.attempts, format!("{DESK_PHONE}:cancelled"), "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn an_invalid_key_replays_the_menu_then_silence_rings_sales_until_nobody_answers() {
    let mut call = MenuCall::answered(2, "menu-invalid");
    call.hear(&["welcome", "menu"]);
    let pressed = Instant::now();
    call.press_over_rtp('7');
    call.hear(&["welcome", "menu", "invalid", "menu"]);
    // Once the menu has played again, a second without a key is the second failure:
    // the default, sales, rings. Not sooner: the timeout counts after the key.
    let (invite, relay_for_phone) = call.phone_rung(SALES_PHONE);
    assert!(
        pressed.elapsed() >= Duration::from_secs(1),
        "sales rang {:?} after the invalid key, within the menu's 1 s timeout",
        pressed.elapsed()
    );
    call.phone_says(&invite, 180, "Ringing", None);

    // Its ring timeout (1 s) passes: the hunt has no other phone, so the caller, whom
    // the menu answered, is hung up on.
    call.phone_cancelled(&invite);
    let bye = wait_for(&call.caller, "BYE to the caller", |m| is_request(m, "BYE"));
    assert!(
        header_of(&bye, "From").is_some_and(|f| f.contains(&format!("tag={}", call.menu_tag))),
        "the BYE is in the menu's dialog: {}",
        String::from_utf8_lossy(&bye)
    );
    call.caller.send(
        &respond(&bye, 200, "OK", None, call.caller.port()),
        call.daemon.addr(),
    );

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "no_answer", "{cdr:?}");
    assert_eq!(
        cdr.menu, "",
        "no valid key: the default, not a choice: {cdr:?}"
    );
    assert_eq!(cdr.attempts, format!("{SALES_PHONE}:no_answer"), "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn a_key_opens_the_second_level_and_a_key_there_rings_its_group() {
    let mut call = MenuCall::answered(3, "menu-two-levels");
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('3');
    // The second level's own prompt, not the main menu again.
    call.hear(&["welcome", "menu", "service-menu"]);
    call.press_over_rtp('1');

    let (invite, relay_for_phone) = call.phone_rung(DESK_PHONE);
    let phone_rtp = rtp_socket();
    let answer = sdp(
        phone_rtp.local_addr().expect("phone RTP").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    call.phone_says(&invite, 200, "OK", Some(&answer));
    wait_for(&call.phone, "ACK to the phone", |m| is_request(m, "ACK"));
    let from_phone = Law::Ulaw.encode(-6000);
    for seq in 1..=10 {
        phone_rtp
            .send_to(&rtp_packet(0, seq, from_phone), relay_for_phone)
            .expect("send phone RTP");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_for_audio(&call.caller_rtp, from_phone, "the caller hears the desk");

    call.request_answered("BYE", "", "");
    let phone_bye = wait_for(&call.phone, "BYE to the phone", |m| is_request(m, "BYE"));
    call.phone_says(&phone_bye, 200, "OK", None);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "answered", "{cdr:?}");
    assert_eq!(cdr.answered_by, DESK_PHONE, "{cdr:?}");
    assert_eq!(cdr.menu, "3>1", "both levels' keys: {cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn star_in_the_second_level_goes_back_to_the_main_menu() {
    let mut call = MenuCall::answered(4, "menu-back");
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('3');
    call.hear(&["welcome", "menu", "service-menu"]);
    call.press_over_rtp('*');
    call.hear(&["welcome", "menu", "service-menu", "menu"]);
    // "2" in the main menu rings service (in the service menu it would too: the
    // prompts heard above show which menu took it).
    call.press_over_rtp('2');
    let (invite, relay_for_phone) = call.phone_rung(SERVICE_PHONE);
    call.phone_says(&invite, 180, "Ringing", None);
    call.hear(&["welcome", "menu", "service-menu", "menu", "main-ringback"]);
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(cdr.menu, "3>*>2", "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn the_hangup_key_ends_the_call_with_a_bye_to_the_caller() {
    let mut call = MenuCall::answered(5, "menu-hangup");
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('#');
    let bye = wait_for(&call.caller, "BYE to the caller", |m| is_request(m, "BYE"));
    assert!(
        header_of(&bye, "From").is_some_and(|f| f.contains(&format!("tag={}", call.menu_tag))),
        "the BYE is in the menu's dialog: {}",
        String::from_utf8_lossy(&bye)
    );
    call.caller.send(
        &respond(&bye, 200, "OK", None, call.caller.port()),
        call.daemon.addr(),
    );
    assert!(
        call.phone
            .recv_within(Duration::from_millis(300))
            .is_none_or(|m| !is_request(&m, "INVITE")),
        "no phone rings"
    );

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(cdr.attempts, "", "{cdr:?}");
    assert_eq!(cdr.hangup, "system menu_hangup", "{cdr:?}");
    assert_released(call.relay_for_caller);
}

/// The main node's default, as the switchboard has it.
const MAIN_DEFAULT: &str = "default = { group = \"sales\" }";

#[test]
fn silence_until_the_retries_run_out_takes_a_default_menu() {
    // default = { menu = "service" }: two timeouts in the main menu (the second one
    // without the invalid prompt) lead to the service menu, whose key 1 rings the desk.
    // (The service menu's own default then rings a group: a default back to the main
    // menu would be a loop, which the configuration refuses.)
    let mut call = MenuCall::answered_edited(
        6,
        "menu-default-menu",
        &[
            (MAIN_DEFAULT, "default = { menu = \"service\" }"),
            (
                "default = \"previous\"",
                "default = { group = \"service\" }",
            ),
        ],
    );
    call.hear(&["welcome", "menu"]);
    call.hear(&["welcome", "menu", "invalid", "menu", "service-menu"]);
    call.press_over_rtp('1');
    let (invite, relay_for_phone) = call.phone_rung(DESK_PHONE);
    call.phone_says(&invite, 180, "Ringing", None);
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(cdr.attempts, format!("{DESK_PHONE}:cancelled"), "{cdr:?}");
    assert_eq!(
        cdr.menu, "1",
        "the default leaves no key in the path: {cdr:?}"
    );
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn silence_until_the_retries_run_out_takes_a_hangup_default() {
    // default = "hangup": two timeouts and the daemon hangs up; no phone rings.
    let mut call = MenuCall::answered_edited(
        7,
        "menu-default-hangup",
        &[(MAIN_DEFAULT, "default = \"hangup\"")],
    );
    call.hear(&["welcome", "menu"]);
    call.hear(&["welcome", "menu", "invalid", "menu"]);
    call.caller_hung_up_on();
    assert!(
        call.phone
            .recv_within(Duration::from_millis(300))
            .is_none_or(|m| !is_request(&m, "INVITE")),
        "no phone rings"
    );

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(cdr.attempts, "", "{cdr:?}");
    assert_eq!(cdr.hangup, "system menu_hangup", "{cdr:?}");
    assert_eq!(cdr.menu, "", "{cdr:?}");
    assert_released(call.relay_for_caller);
}

#[test]
fn silence_in_the_second_level_takes_its_previous_default_back_to_the_main_menu() {
    // The service menu waits 1 s once (retries = 1), then its default "previous" goes
    // back to the main menu, where "2" rings service with the main node's ringback.
    let mut call = MenuCall::answered_edited(
        8,
        "menu-default-previous",
        &[("timeout = \"5s\"", "timeout = \"1s\"\nretries = 1")],
    );
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('3');
    call.hear(&["welcome", "menu", "service-menu"]);
    call.hear(&["welcome", "menu", "service-menu", "menu"]);
    call.press_over_rtp('2');
    let (invite, relay_for_phone) = call.phone_rung(SERVICE_PHONE);
    call.phone_says(&invite, 180, "Ringing", None);
    call.hear(&["welcome", "menu", "service-menu", "menu", "main-ringback"]);
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.outcome, "cancelled", "{cdr:?}");
    assert_eq!(
        cdr.menu, "3>2",
        "the default leaves no key in the path: {cdr:?}"
    );
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn the_repeat_key_plays_the_menu_again_from_the_top() {
    // "9" = "repeat": the menu starts again (its opening frame comes a second time),
    // with no invalid prompt before it; then "#" hangs up.
    let mut call = MenuCall::answered_edited(
        9,
        "menu-repeat",
        &[(
            "\"#\" = \"hangup\"",
            "\"#\" = \"hangup\"\n\"9\" = \"repeat\"",
        )],
    );
    call.hear(&["welcome", "menu"]);
    assert_eq!(call.menu_openings, 1, "the menu started once");
    call.press_over_rtp('9');
    call.hear_menu_start(2);
    call.press_over_rtp('#');
    call.caller_hung_up_on();

    let cdr = call.cdr();
    assert_eq!(cdr.hangup, "system menu_hangup", "{cdr:?}");
    assert_eq!(cdr.menu, "9>#", "{cdr:?}");
    assert_released(call.relay_for_caller);
}

#[test]
fn extension_dialling_ends_at_max_digits_without_a_terminator() {
    // max_digits = 4 (the inter-digit timeout stays 10 s): the fourth digit ends it.
    let mut call = MenuCall::answered_edited(
        10,
        "menu-max-digits",
        &[("max_digits = 6", "max_digits = 4")],
    );
    call.hear(&["welcome", "menu"]);
    call.press_over_info('0');
    call.hear(&["welcome", "menu", "dial"]);
    for key in "8001".chars() {
        call.press_over_info(key);
    }
    let (invite, relay_for_phone) = call.phone_rung(DESK_PHONE);
    call.phone_says(&invite, 180, "Ringing", None);
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.menu, "0>8001", "{cdr:?}");
    assert_eq!(cdr.attempts, format!("{DESK_PHONE}:cancelled"), "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}

#[test]
fn extension_dialling_ends_at_the_inter_digit_timeout() {
    // inter_digit_timeout = "1s" (up to six digits): a second after "1", 8001 rings;
    // not sooner, and well before the 3 s default.
    let mut call = MenuCall::answered_edited(
        11,
        "menu-inter-digit",
        &[(
            "inter_digit_timeout = \"10s\"",
            "inter_digit_timeout = \"1s\"",
        )],
    );
    call.hear(&["welcome", "menu"]);
    call.press_over_rtp('0');
    call.hear(&["welcome", "menu", "dial"]);
    for key in "8001".chars() {
        call.press_over_info(key);
    }
    let last_digit = Instant::now();
    let (invite, relay_for_phone) = call.phone_rung(DESK_PHONE);
    let waited = last_digit.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_millis(2800)).contains(&waited),
        "8001 rang {waited:?} after its last digit; the inter-digit timeout is 1 s"
    );
    call.phone_says(&invite, 180, "Ringing", None);
    call.request_answered("BYE", "", "");
    call.phone_cancelled(&invite);

    let cdr = call.cdr();
    assert_eq!(cdr.menu, "0>8001", "{cdr:?}");
    assert_released(call.relay_for_caller);
    assert_released(relay_for_phone);
}
