//! Interop with a real softphone: Debian's baresip (package `baresip-core`, 1.0.0) run
//! headless on 127.0.0.1, once as the phone a call rings (auto-answer) and once as the
//! carrier's caller keying DTMF into a voice menu.
//!
//! baresip gets a configuration directory of its own (`-f`): SIP on a free port of
//! 127.0.0.1 (1.0.0 also listens for TLS on the port above, over TCP), RTP in a range of
//! its own, a generated 1000 Hz tone as its microphone (`ausine`), its speaker discarded
//! (`aubridge` to a device nobody reads), one account that never registers and answers
//! by itself, and no UI on a TTY: it is driven through the `cons` module, a UDP console
//! that takes the same keys and `/commands` as its terminal UI and sends its log lines
//! back. The 1.0.0 console has no long command for DTMF; in a call, a digit key sends it
//! as an RFC 4733 telephone-event and key 0x04 ends it.
//!
//! The carrier and the service group's phone are hand-written on plain UDP sockets, as
//! in tests/media.rs, with the SDP and SIP helpers of `support::rtp`.

mod support;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sihai_media::{Law, RtpPacket};
use support::rtp::{body_of, is_request, relay_routing_head, respond, rtp_socket, sdp, sdp_target};
use support::{Daemon, UdpClient, header_of, status_of};

/// The frequency of the tone baresip sends as its microphone: far enough from the
/// 450 Hz ringback that a packet tells which of the two it carries.
const BARESIP_TONE_HZ: u32 = 1000;

// ------------------------------------------------------------------ baresip

/// A baresip process with its own configuration directory, killed when dropped.
struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    /// Where baresip takes SIP on 127.0.0.1.
    sip_port: u16,
    /// Our end of baresip's `cons` console.
    console: UdpSocket,
    console_addr: SocketAddr,
    /// Everything the console has sent back so far (baresip's log lines and echoes).
    transcript: String,
}

impl Baresip {
    /// Starts baresip with one account, `sip:<user>@127.0.0.1`, that auto-answers calls
    /// to `user`, RTP on `rtp_ports` ("FIRST-LAST"). Waits (bounded) until its console
    /// answers. Fails, rather than skips, when baresip is not installed.
    fn start(user: &str, rtp_ports: &str) -> Baresip {
        // A port taken between our check and baresip's bind makes its start-up fail:
        // try again on fresh ports.
        let mut failures = String::new();
        for _ in 0..3 {
            match Baresip::try_start(user, rtp_ports) {
                Ok(baresip) => return baresip,
                Err(why) => failures.push_str(&why),
            }
        }
        panic!("baresip did not start in 3 attempts:\n{failures}");
    }

    fn try_start(user: &str, rtp_ports: &str) -> Result<Baresip, String> {
        let dir = tempfile::tempdir().expect("temp dir for baresip's configuration");
        let sip_port = free_port_with_next_tcp();
        let console_port = support::free_port();
        std::fs::write(
            dir.path().join("config"),
            baresip_config(sip_port, console_port, rtp_ports),
        )
        .expect("write baresip's config");
        // regint=0: no REGISTER (there is no registrar); answermode=auto: the phone
        // picks up at once; G.711 only, as the carrier and sihai speak it.
        std::fs::write(
            dir.path().join("accounts"),
            format!("<sip:{user}@127.0.0.1>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n"),
        )
        .expect("write baresip's accounts");
        let log = std::fs::File::create(dir.path().join("stdout.log")).expect("baresip log");
        let spawned = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            // Quits by itself after a minute, should this test process die without
            // dropping it.
            .args(["-t", "60"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "baresip is not installed: run ./scripts/test (see README.md), which \
                 installs the Debian package baresip-core"
            ),
            Err(e) => panic!("cannot run baresip: {e}"),
        };
        let console = UdpSocket::bind("127.0.0.1:0").expect("bind our console socket");
        let mut baresip = Baresip {
            child,
            dir,
            sip_port,
            console,
            console_addr: SocketAddr::from(([127, 0, 0, 1], console_port)),
            transcript: String::new(),
        };
        // "l" lists the calls; the first answer means baresip's main loop runs, with
        // its SIP socket bound.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = baresip.child.try_wait() {
                return Err(format!(
                    "baresip exited at start-up with {status}:\n{}\n",
                    baresip.stdout_log()
                ));
            }
            baresip.send_keys("l");
            if baresip.console_says("Active calls", Duration::from_millis(200)) {
                return Ok(baresip);
            }
        }
        Err(format!(
            "baresip's console did not answer within 10 s:\n{}\n",
            baresip.stdout_log()
        ))
    }

    fn send_keys(&self, keys: &str) {
        self.console
            .send_to(keys.as_bytes(), self.console_addr)
            .expect("send to baresip's console");
    }

    /// Runs a long command, e.g. `dial sip:...`, as typed after `/` in its UI.
    fn command(&self, command: &str) {
        self.send_keys(&format!("/{command}\n"));
    }

    /// Presses and releases a key of the keypad in the current call: an RFC 4733
    /// event, started by the key and ended by the release (KEYCODE_REL, 0x04).
    fn press(&self, digit: char) {
        self.send_keys(&digit.to_string());
        std::thread::sleep(Duration::from_millis(120));
        self.send_keys("\x04");
    }

    /// Reads the console until its transcript contains `needle` or `within` passes.
    fn console_says(&mut self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 8192];
        loop {
            if self.transcript.contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.console
                .set_read_timeout(Some(left))
                .expect("console read timeout");
            if let Ok(n) = self.console.recv(&mut buf) {
                self.transcript
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    }

    /// Waits (bounded) for `needle` in the console's transcript; panics with the
    /// transcript and the daemon's log otherwise.
    fn expect_console(&mut self, needle: &str, within: Duration, daemon: &Daemon) {
        if !self.console_says(needle, within) {
            panic!(
                "baresip did not say {needle:?} within {within:?}; its console:\n{}\n\
                 daemon log:\n{}",
                self.transcript,
                daemon.plain_log()
            );
        }
    }

    /// baresip's stdout and stderr; complete only once it has exited (it buffers).
    fn stdout_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// baresip 1.0.0's configuration: only the modules the test needs (`menu` holds the
/// dial, hang-up and keypad commands), SIP and the console on 127.0.0.1. RTP goes over
/// 127.0.0.1 too, but 1.0.0 binds its RTP sockets to every address, with no setting to
/// change that.
fn baresip_config(sip_port: u16, console_port: u16, rtp_ports: &str) -> String {
    format!(
        "poll_method\t\tepoll\n\
         sip_listen\t\t127.0.0.1:{sip_port}\n\
         # the address put in SDP and used for RTP (a loopback interface name is refused)\n\
         net_interface\t\t127.0.0.1\n\
         call_local_timeout\t20\n\
         call_max_calls\t\t4\n\
         # ausine generates 48 kHz stereo only; baresip resamples it for G.711\n\
         audio_source\t\tausine,{BARESIP_TONE_HZ}\n\
         ausrc_srate\t\t48000\n\
         ausrc_channels\t\t2\n\
         # a bridge device no source reads: what baresip hears is discarded\n\
         audio_player\t\taubridge,discard\n\
         audio_alert\t\taubridge,discard\n\
         rtp_ports\t\t{rtp_ports}\n\
         module_path\t\t/usr/lib/baresip/modules\n\
         module\t\t\tg711.so\n\
         module\t\t\tausine.so\n\
         module\t\t\taubridge.so\n\
         module\t\t\tcons.so\n\
         module_tmp\t\taccount.so\n\
         module_app\t\tmenu.so\n\
         cons_listen\t\t127.0.0.1:{console_port}\n"
    )
}

/// A port free on 127.0.0.1 for UDP and TCP whose next port is free for TCP too:
/// baresip 1.0.0 listens for SIP over TLS on the port after its SIP port, and cannot be
/// told not to.
fn free_port_with_next_tcp() -> u16 {
    for _ in 0..100 {
        let port = support::free_port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no port on 127.0.0.1 free for UDP and TCP with the next one free for TCP");
}

// ------------------------------------------------------------------ ports and audio

/// An even base of 20 ports, above tests/media.rs's (below 30000) and below Linux's
/// ephemeral range, different per test process and per `slot` (tests in one process
/// run in parallel): the relay takes the first ten, baresip the other ten.
fn rtp_base(slot: u16) -> u16 {
    30_000 + (std::process::id() % 60) as u16 * 40 + slot * 20
}

fn relay_ports(base: u16) -> String {
    format!("{base}-{}", base + 9)
}

fn baresip_ports(base: u16) -> String {
    format!("{}-{}", base + 10, base + 19)
}

/// What one G.711 packet carries: how loud, and how often the signal crosses zero.
#[derive(Debug)]
struct FrameSound {
    payload_type: u8,
    peak: i16,
    zero_crossings: usize,
}

impl FrameSound {
    fn of(datagram: &[u8]) -> Option<FrameSound> {
        let packet = RtpPacket::parse(datagram).ok()?;
        let law = Law::from_payload_type(packet.payload_type())?;
        let mut samples = Vec::new();
        law.decode_into(packet.payload(), &mut samples);
        let peak = samples
            .iter()
            .map(|s| s.saturating_abs())
            .max()
            .unwrap_or(0);
        let zero_crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        Some(FrameSound {
            payload_type: packet.payload_type(),
            peak,
            zero_crossings,
        })
    }

    /// Baresip's tone: audible, and crossing zero twice a cycle, 1000 Hz giving 40 a
    /// 20 ms frame (ringback's 450 Hz gives 18, silence or near-silence few).
    fn is_baresip_tone(&self) -> bool {
        let expected = (2 * BARESIP_TONE_HZ / 50) as usize;
        self.peak > 1000 && self.zero_crossings.abs_diff(expected) <= 4
    }
}

/// The G.711 frames that arrive on `socket` within `window`, skipping anything else.
fn listen(socket: &UdpSocket, window: Duration) -> Vec<FrameSound> {
    let end = Instant::now() + window;
    let mut frames = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok(n) = socket.recv(&mut buf)
            && let Some(frame) = FrameSound::of(&buf[..n])
        {
            frames.push(frame);
        }
    }
    frames
}

/// Throws away whatever is queued on `socket` (e.g. ringback from before the answer).
fn drain(socket: &UdpSocket) {
    socket
        .set_nonblocking(true)
        .expect("non-blocking RTP socket");
    let mut buf = [0u8; 2048];
    while socket.recv(&mut buf).is_ok() {}
    socket.set_nonblocking(false).expect("blocking RTP socket");
}

/// Asserts that most of a second of `frames` carries baresip's tone.
fn assert_hears_baresip(frames: &[FrameSound], who: &str) {
    let tone = frames.iter().filter(|f| f.is_baresip_tone()).count();
    assert!(
        frames.len() >= 35 && tone * 10 >= frames.len() * 8,
        "{who} hears baresip's {BARESIP_TONE_HZ} Hz tone in at least 80% of a second's \
         ~50 packets; {tone} of {} frames: {frames:?}",
        frames.len()
    );
}

/// An 8 kHz mono 16-bit PCM WAV of `seconds` of a `hz` tone, for a menu prompt.
fn write_tone_wav(path: &Path, hz: f64, seconds: f64) {
    let samples: Vec<i16> = (0..(8000.0 * seconds) as usize)
        .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * hz * n as f64 / 8000.0).sin()) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    wav.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
    wav.extend_from_slice(&2u16.to_le_bytes()); // block align
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, wav).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

// ------------------------------------------------------------------ hand-written SIP

/// Waits up to `within` for a SIP message on `client` matching `want`, skipping others.
fn wait_for(
    client: &UdpClient,
    what: &str,
    within: Duration,
    daemon: &Daemon,
    want: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(m) = client.recv_within(Duration::from_millis(200))
            && want(&m)
        {
            return m;
        }
    }
    panic!(
        "no {what} within {within:?}; daemon log:\n{}",
        daemon.plain_log()
    );
}

fn is_final_response_to(message: &[u8], status: u16, method: &str) -> bool {
    status_of(message) == Some(status)
        && header_of(message, "CSeq").is_some_and(|cseq| cseq.ends_with(method))
}

// ------------------------------------------------------------------ the tests

/// baresip as the bound phone: the trunk's gateway is baresip, which answers by itself;
/// the carrier (hand-written) hears baresip's tone through the relay, then hangs up.
#[test]
fn baresip_auto_answers_as_the_phone_and_the_caller_hears_it_through_the_relay() {
    let base = rtp_base(0);
    let mut baresip = Baresip::start("13900000001", &baresip_ports(base));
    let head = relay_routing_head(&relay_ports(base), None, baresip.sip_port);
    let routing = format!(
        r#"
{head}
[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"

[[plan]]
name = "main"
enterprise = "acme"
group = "desk"

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001", ring_timeout_s = 10 }}]
"#,
    );
    let daemon = Daemon::start_with("", &routing);
    let sihai = daemon.addr();

    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().expect("RTP address").port(),
        "0 8 101",
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n",
    );
    let invite = format!(
        "INVITE sip:4001234567@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKbaresip1;rport\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
         Call-ID: baresip-phone@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:13800138000@127.0.0.1:{cport}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
        port = daemon.port,
        cport = caller.port(),
        len = offer.len()
    );
    caller.send(invite.as_bytes(), sihai);

    let ok = wait_for(
        &caller,
        "200 for the INVITE",
        Duration::from_secs(10),
        &daemon,
        |m| is_final_response_to(m, 200, "INVITE"),
    );
    baresip.expect_console("Call established", Duration::from_secs(2), &daemon);
    let relay_for_caller = sdp_target(body_of(&ok));
    let to_tag = header_of(&ok, "To")
        .and_then(|to| to.split("tag=").nth(1))
        .expect("To tag in the 200")
        .to_string();
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:sihai@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKbaresip{method}\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\n\
             To: <sip:4001234567@127.0.0.1>;tag={to_tag}\r\n\
             Call-ID: baresip-phone@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            port = daemon.port,
            cport = caller.port()
        )
    };
    caller.send(in_dialog("ACK", 1).as_bytes(), sihai);

    // What came before the answer was ringback; from now on it is baresip.
    std::thread::sleep(Duration::from_millis(100));
    drain(&caller_rtp);
    let heard = listen(&caller_rtp, Duration::from_secs(1));
    assert!(
        heard.iter().all(|f| f.payload_type == 0),
        "the caller gets PCMU, the first codec it offered: {heard:?}"
    );
    assert_hears_baresip(&heard, "the caller");
    // Symmetric RTP: the relay sends from the address it gave the caller.
    let mut buf = [0u8; 2048];
    let (_, from) = caller_rtp.recv_from(&mut buf).expect("RTP still flowing");
    assert_eq!(from, relay_for_caller);

    caller.send(in_dialog("BYE", 2).as_bytes(), sihai);
    wait_for(
        &caller,
        "200 for the BYE",
        Duration::from_secs(5),
        &daemon,
        |m| is_final_response_to(m, 200, "BYE"),
    );
    baresip.expect_console("terminated", Duration::from_secs(2), &daemon);
    let cdrs = daemon.wait_for_cdrs(1);
    assert_eq!(cdrs[0].outcome, "answered", "{cdrs:?}");
    assert_eq!(cdrs[0].answered_by, "13900000001", "{cdrs:?}");
    assert_eq!(cdrs[0].caller, "13800138000", "{cdrs:?}");
}

/// baresip as the carrier's caller: it dials a number whose plan answers with a voice
/// menu, keys 2 (RFC 4733), and the service group's phone (hand-written) rings, answers
/// and hears baresip; baresip hangs up.
#[test]
fn baresip_calls_the_voice_menu_and_key_2_rings_the_service_group() {
    let base = rtp_base(1);
    let phone = UdpClient::new();
    let phone_rtp = rtp_socket();
    // Prompts are read when the daemon starts, so they are written before it, to a
    // directory of their own.
    let prompts = tempfile::tempdir().expect("temp dir for prompts");
    write_tone_wav(&prompts.path().join("welcome.wav"), 600.0, 0.5);
    write_tone_wav(&prompts.path().join("menu.wav"), 700.0, 3.0);
    let mut baresip = Baresip::start("13800138000", &baresip_ports(base));
    let head = relay_routing_head(&relay_ports(base), Some(prompts.path()), phone.port());
    let routing = format!(
        r#"
{head}
[[number]]
number = "4007654321"
enterprise = "acme"
status = "active"
plan = "switchboard"

[[plan]]
name = "switchboard"
enterprise = "acme"
group = "sales"
menu = "acme-menu"

[[prompt]]
name = "welcome"
file = "welcome.wav"

[[prompt]]
name = "menu"
file = "menu.wav"

[[menu]]
name = "acme-menu"
enterprise = "acme"
welcome = "welcome"
root = "main"

[[menu.node]]
name = "main"
prompt = "menu"
timeout = "10s"
retries = 1
# No key: nobody rings, so only the key can have rung the service group.
default = "hangup"

[menu.node.options]
"1" = {{ group = "sales" }}
"2" = {{ group = "service" }}

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "sip:sales@127.0.0.1:{phone_port}" }}]

[[group]]
name = "service"
enterprise = "acme"
strategy = "sequential"
phones = [{{ uri = "sip:service@127.0.0.1:{phone_port}", ring_timeout_s = 10 }}]
"#,
        phone_port = phone.port(),
    );
    let daemon = Daemon::start_with("", &routing);

    baresip.command(&format!("dial sip:4007654321@127.0.0.1:{}", daemon.port));
    // The menu answers, and baresip hears it (a prompt's RTP) before it keys.
    baresip.expect_console("Call established", Duration::from_secs(5), &daemon);
    baresip.expect_console("incoming rtp for 'audio'", Duration::from_secs(3), &daemon);
    baresip.press('2');
    baresip.expect_console("send DTMF digit end: '2'", Duration::from_secs(2), &daemon);

    let leg = wait_for(
        &phone,
        "INVITE to the service group",
        Duration::from_secs(5),
        &daemon,
        |m| is_request(m, "INVITE"),
    );
    let request_line = std::str::from_utf8(&leg)
        .expect("UTF-8 INVITE")
        .lines()
        .next()
        .expect("request line")
        .to_string();
    assert!(
        request_line.starts_with("INVITE sip:service@127.0.0.1:"),
        "the service group's phone is called: {request_line}"
    );
    let relay_for_phone = sdp_target(body_of(&leg));
    let sihai = daemon.addr();
    phone.send(&respond(&leg, 180, "Ringing", None, phone.port()), sihai);
    let answer = sdp(
        phone_rtp.local_addr().expect("RTP address").port(),
        "8",
        "a=rtpmap:8 PCMA/8000\r\n",
    );
    phone.send(
        &respond(&leg, 200, "OK", Some(&answer), phone.port()),
        sihai,
    );
    wait_for(
        &phone,
        "ACK to the phone",
        Duration::from_secs(5),
        &daemon,
        |m| is_request(m, "ACK"),
    );

    // Bridged: baresip's tone reaches the phone through the relay, as PCMA.
    std::thread::sleep(Duration::from_millis(100));
    drain(&phone_rtp);
    let heard = listen(&phone_rtp, Duration::from_secs(1));
    assert!(
        heard.iter().all(|f| f.payload_type == 8),
        "the phone gets PCMA, the codec it answered: {heard:?}"
    );
    assert_hears_baresip(&heard, "the service phone");
    let mut buf = [0u8; 2048];
    let (_, from) = phone_rtp.recv_from(&mut buf).expect("RTP still flowing");
    assert_eq!(from, relay_for_phone);

    baresip.command("hangup");
    let bye = wait_for(
        &phone,
        "BYE to the phone",
        Duration::from_secs(5),
        &daemon,
        |m| is_request(m, "BYE"),
    );
    phone.send(&respond(&bye, 200, "OK", None, phone.port()), sihai);
    baresip.expect_console("terminated", Duration::from_secs(2), &daemon);

    let cdrs = daemon.wait_for_cdrs(1);
    assert_eq!(cdrs[0].menu, "2", "{cdrs:?}");
    assert_eq!(cdrs[0].outcome, "answered", "{cdrs:?}");
    assert_eq!(cdrs[0].caller, "13800138000", "{cdrs:?}");
    assert!(
        cdrs[0].answered_by.contains("service"),
        "the service phone answered: {cdrs:?}"
    );
}
