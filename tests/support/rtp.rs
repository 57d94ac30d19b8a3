//! Hand-written RTP and SDP for the tests that talk to the relay (`[media] relay =
//! true`) from plain UDP sockets: the carrier's and the phones' media, SDP bodies, and
//! the SIP waits and answers a hand-written phone needs.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{UdpClient, header_of};

/// How every relay test's routing starts: the relay on 127.0.0.1 over `rtp_ports`
/// ("FIRST-LAST"), prompts from `prompts` when given, the trunk "lab" for 127.0.0.1
/// whose gateway (every phone number) is 127.0.0.1:`gateway_port`, and the enterprise
/// "acme". The test appends its numbers, plans and groups.
pub fn relay_routing_head(rtp_ports: &str, prompts: Option<&Path>, gateway_port: u16) -> String {
    relay_routing_head_with(rtp_ports, prompts, gateway_port, "")
}

/// [`relay_routing_head`] with more `[media]` settings (`media_extra`, e.g.
/// `media_timeout = "2s"`).
pub fn relay_routing_head_with(
    rtp_ports: &str,
    prompts: Option<&Path>,
    gateway_port: u16,
    media_extra: &str,
) -> String {
    let prompts = prompts.map_or(String::new(), |dir| {
        format!("prompts = \"{}\"\n", dir.display())
    });
    format!(
        r#"
[media]
relay = true
address = "127.0.0.1"
rtp_ports = "{rtp_ports}"
{prompts}{media_extra}
[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:{gateway_port}"

[[enterprise]]
id = "acme"
name = "Acme"
"#
    )
}

/// An even base for the relay's ports (`slot` 0 to 11 owns `base..base + 20`), below
/// Linux's ephemeral range, different per test process and per `slot` (tests in one
/// process run in parallel).
pub fn rtp_base(slot: u16) -> u16 {
    assert!(slot < 12, "twelve slots of 20 ports per test process");
    // Up to 29839: tests/interop_baresip.rs has 30000 and up.
    20_000 + (std::process::id() % 41) as u16 * 240 + slot * 20
}

pub fn rtp_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    socket
}

/// (payload type, sequence, fifth payload byte) of an RTP packet: the fifth sample of
/// a 450 Hz tone frame is near its peak (a frame holds exactly nine cycles, so the
/// first sample of every frame is zero).
pub fn rtp_fields(packet: &[u8]) -> (u8, u16, u8) {
    assert!(packet.len() >= 17 && packet[0] >> 6 == 2, "RTP: {packet:?}");
    (
        packet[1] & 0x7f,
        u16::from_be_bytes([packet[2], packet[3]]),
        packet[16],
    )
}

/// 20 ms of audio (160 samples of `byte`), sequence `seq`.
pub fn rtp_packet(payload_type: u8, seq: u16, byte: u8) -> Vec<u8> {
    let mut p = vec![0x80, payload_type];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend(std::iter::repeat_n(byte, 160));
    p
}

pub fn body_of(message: &[u8]) -> &str {
    let text = std::str::from_utf8(message).expect("UTF-8");
    text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

/// The audio port an SDP body advertises, and its c= address.
pub fn sdp_target(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("m=audio line");
    format!("{ip}:{port}").parse().expect("address")
}

pub fn sdp(port: u16, formats: &str, rtpmaps: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {formats}\r\n{rtpmaps}"
    )
}

/// Waits for a SIP message on `client` matching `want`, skipping others.
pub fn wait_for(client: &UdpClient, what: &str, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(m) = client.recv_within(Duration::from_millis(200))
            && want(&m)
        {
            return m;
        }
    }
    panic!("no {what} within 5 s");
}

pub fn is_request(m: &[u8], method: &str) -> bool {
    m.starts_with(format!("{method} ").as_bytes())
}

/// The phone's response to `request` (status, To tag, optional SDP body).
pub fn respond(
    request: &[u8],
    status: u16,
    reason: &str,
    body: Option<&str>,
    contact_port: u16,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        let text = std::str::from_utf8(request).expect("UTF-8");
        for line in text.split("\r\n") {
            if line
                .split_once(':')
                .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }
    let to = header_of(request, "To").expect("To");
    if to.contains("tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag=phone\r\n"));
    }
    out.push_str(&format!(
        "Contact: <sip:phone@127.0.0.1:{contact_port}>\r\n"
    ));
    match body {
        Some(b) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// Waits (up to 2 s) until `port` of the relay can be bound again: the call that used
/// it has released it.
pub fn assert_released(port: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while UdpSocket::bind(port).is_err() {
        assert!(
            Instant::now() < deadline,
            "relay port {port} still bound 2 s after the call"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `samples` as a plain 8 kHz, 16-bit mono PCM WAV file, the kind an enterprise
/// uploads as its ringback or menu prompt.
pub fn write_mono_wav(path: &Path, samples: &[i16]) {
    let data_len = u32::try_from(samples.len() * 2).expect("a short prompt");
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16_000u32.to_le_bytes()); // bytes per second
    bytes.extend_from_slice(&2u16.to_le_bytes()); // block align
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The carrier's INVITE from 13800138000 to `dialled`, with the SDP `offer`, sent from
/// `client` to the daemon on `port`; `call_id` (letters, digits and dashes) is also the
/// branch's stem.
pub fn caller_invite(
    client: &UdpClient,
    port: u16,
    call_id: &str,
    dialled: &str,
    offer: &str,
) -> Vec<u8> {
    format!(
        "INVITE sip:{dialled}@127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{call_id};rport\r\n\
         From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{dialled}@127.0.0.1>\r\n\
         Call-ID: {call_id}@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\
         Contact: <sip:13800138000@127.0.0.1:{cport}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{offer}",
        cport = client.port(),
        len = offer.len()
    )
    .into_bytes()
}
