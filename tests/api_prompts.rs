//! Prompt uploads through the admin API (issue 13), through the built daemon on real
//! sockets: an enterprise admin uploads a 16 kHz stereo WAV as its number's ringback
//! (彩铃); the API converts it to 8 kHz mono, stores it and writes the prompt's entry
//! (validated, audited); the daemon reloads, and the next caller's early-media RTP is
//! that audio, frame by frame. GET returns the stored 8 kHz mono WAV; a viewer's upload
//! is 403, garbage is 422 with a reason, a stale `If-Match` 409, an oversized body 413;
//! an MP3 upload is decoded and converted too.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_media::{Law, RtpPacket, WavEncoding, decode_wav};
use support::api::{Reply, Session, add_user, http_bytes};
use support::rtp::{
    body_of, caller_invite, is_request, relay_routing_head, respond, rtp_base, rtp_socket, sdp,
    sdp_target, wait_for, write_mono_wav,
};
use support::{Daemon, UdpClient, free_port, repo_path, status_of};

const AUDIO: &str = "/api/v1/enterprises/acme/prompts/acme-ringback/audio";

/// Acme's number rings `13900000001` (the phone at `phone_port`) for 20 s with the
/// ringback `acme-ringback`: acme's own prompt, at first the file `hold.wav` in
/// `prompts`; the relay on `slot`'s ports; the API on `api_port`.
fn routing(api_port: u16, slot: u16, phone_port: u16, prompts: &std::path::Path) -> String {
    let base = rtp_base(slot);
    let head = relay_routing_head(&format!("{base}-{}", base + 19), Some(prompts), phone_port);
    format!(
        r#"
[api]
listen = "127.0.0.1:{api_port}"
{head}
[[prompt]]
name = "acme-ringback"
enterprise = "acme"
file = "hold.wav"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"
ringback = "acme-ringback"

[[plan]]
name = "main"
enterprise = "acme"
group = "desk"

[[group]]
name = "desk"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001", ring_timeout_s = 20 }}]
"#
    )
}

fn start(slot: u16, phone_port: u16) -> (Daemon, SocketAddr, tempfile::TempDir) {
    let prompts = tempfile::tempdir().expect("prompt dir");
    // What the number played before the upload: a quiet hum, nothing like the upload.
    write_mono_wav(&prompts.path().join("hold.wav"), &[100; 1600]);
    let api_port = free_port();
    let daemon = Daemon::start_with("", &routing(api_port, slot, phone_port, prompts.path()));
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(
        &daemon.config_path(),
        "acme-admin",
        "enterprise_admin",
        Some("acme"),
    );
    add_user(
        &daemon.config_path(),
        "acme-viewer",
        "enterprise_viewer",
        Some("acme"),
    );
    add_user(&daemon.config_path(), "ops", "operator", None);
    (daemon, addr, prompts)
}

/// A write of `body` as `content_type` to `path` in `session`.
fn send(session: &Session, method: &str, path: &str, content_type: &str, body: &[u8]) -> Reply {
    send_with(session, method, path, content_type, body, &[])
}

fn send_with(
    session: &Session,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![
        ("Cookie", session.cookie.as_str()),
        ("X-CSRF-Token", session.csrf.as_str()),
    ];
    headers.extend_from_slice(extra);
    http_bytes(
        session.addr,
        method,
        path,
        &headers,
        Some((content_type, body)),
    )
}

/// The upload: 16 frames of 20 ms, frame `i` one level (alternately positive and
/// negative, 500 apart in size), so that every 20 ms the caller hears tells which
/// frame it is.
fn level(frame: usize) -> i16 {
    let size = 500 * (frame as i16 + 1);
    if frame.is_multiple_of(2) { size } else { -size }
}
const FRAMES: usize = 16;

/// The upload as an editor might export it: 16 kHz stereo, 16-bit PCM, the level all
/// in the left channel at twice the size (so only the average of both channels gives
/// back `level`).
fn stereo_16k_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..FRAMES)
        .flat_map(|f| std::iter::repeat_n([2 * level(f), 0], 320).flatten())
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&2u16.to_le_bytes()); // stereo
    bytes.extend_from_slice(&16_000u32.to_le_bytes());
    bytes.extend_from_slice(&64_000u32.to_le_bytes()); // bytes per second
    bytes.extend_from_slice(&4u16.to_le_bytes()); // block align
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    bytes
}

/// The stored recording, fetched back: it must be 8 kHz mono 16-bit PCM.
fn stored_samples(session: &Session) -> Vec<i16> {
    let reply = session.get(AUDIO);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type").as_deref(), Some("audio/wav"));
    let pcm = decode_wav(&reply.bytes, usize::MAX).expect("a WAV file");
    assert_eq!(
        (
            pcm.format.encoding,
            pcm.format.channels,
            pcm.format.sample_rate
        ),
        (WavEncoding::Pcm16, 1, 8000),
        "stored as 8 kHz mono 16-bit PCM"
    );
    pcm.samples
}

#[test]
fn an_uploaded_ringback_wav_is_what_the_next_caller_hears_while_the_phone_rings() {
    let phone_sip = UdpClient::new();
    let (daemon, addr, _prompts) = start(0, phone_sip.port());
    let admin = Session::login(addr, "acme-admin");
    let viewer = Session::login(addr, "acme-viewer");
    let upload = stereo_16k_wav();

    // A viewer reads only; garbage is refused with a reason; neither changes anything.
    let refused = send(&viewer, "PUT", AUDIO, "audio/wav", &upload);
    assert_eq!(refused.status, 403, "{}", refused.body);
    let garbage = send(
        &admin,
        "PUT",
        AUDIO,
        "audio/wav",
        b"this is not a recording",
    );
    assert_eq!(garbage.status, 422, "{}", garbage.body);
    let problem = &garbage.json()["errors"][0];
    assert_eq!(problem["entry"], "prompt/acme-ringback", "{}", garbage.body);
    assert_eq!(problem["field"], "audio");
    assert!(
        problem["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a WAV file")),
        "{}",
        garbage.body
    );
    assert_eq!(admin.get(AUDIO).status, 404, "still the file prompt");

    // The upload: converted, stored, and the prompt's entry names it.
    let uploaded = send(&admin, "PUT", AUDIO, "audio/wav", &upload);
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let entry = uploaded.json();
    let digest = entry["data"]["audio"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{}",
        uploaded.body
    );
    assert_eq!(entry["data"]["enterprise"], "acme");
    assert_eq!(entry["data"]["name"], "acme-ringback");
    assert!(entry["data"].get("file").is_none(), "{}", uploaded.body);
    assert!(uploaded.header("etag").is_some());
    daemon.wait_tenant_reloaded(1);

    // What is stored is the upload at 8 kHz mono: 16 frames of 160 samples, each frame's
    // middle at its level (the ends of a frame are the low-pass's smooth steps).
    let stored = stored_samples(&admin);
    assert_eq!(stored.len(), FRAMES * 160);
    for f in 0..FRAMES {
        let middle = &stored[f * 160 + 40..f * 160 + 120];
        assert!(
            middle.iter().all(|&s| (s - level(f)).abs() <= 2),
            "frame {f} should be at {}: {:?}",
            level(f),
            &middle[..8]
        );
    }
    let expected: Vec<Vec<u8>> = stored
        .chunks(160)
        .map(|frame| frame.iter().map(|&s| Law::Ulaw.encode(s)).collect())
        .collect();

    // The next call: the phone rings without answering, the caller hears the upload.
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
            "uploaded-ringback",
            "4001234567",
            &offer,
        ),
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
    caller_rtp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
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
        let frame = expected.iter().position(|e| e == packet.payload());
        frames.push(frame.unwrap_or_else(|| {
            panic!(
                "packet {} is no frame of the uploaded audio (the old prompt, the tone?): {:?}",
                frames.len(),
                &packet.payload()[..packet.payload().len().min(16)]
            )
        }));
    }
    assert!(
        frames.len() >= 35,
        "~50 packets in a second, got {}",
        frames.len()
    );
    // In order and looped (a late tick of a loaded event loop may skip a frame, never
    // repeat one or go back).
    assert!(frames[0] < 4, "from its beginning: {frames:?}");
    let steps: Vec<usize> = frames
        .windows(2)
        .map(|w| (w[1] + FRAMES - w[0]) % FRAMES)
        .collect();
    assert!(
        steps.iter().all(|s| (1..=4).contains(s)),
        "the upload's frames in order, looped: {frames:?}"
    );
    assert!(
        steps.iter().filter(|&&s| s == 1).count() * 4 >= steps.len() * 3,
        "mostly frame after frame: {frames:?}"
    );

    // The upload is audited: who, from where, and the entry before (the file) and
    // after (the recording's digest).
    let audit = admin.get("/api/v1/audit").json();
    let last = &audit[0];
    assert_eq!(last["actor"], "acme-admin", "{audit}");
    assert_eq!(last["target"], "prompt/acme-ringback", "{audit}");
    assert_eq!(last["source"], "127.0.0.1");
    assert!(
        last["before"]
            .as_str()
            .is_some_and(|b| b.contains("hold.wav")),
        "{audit}"
    );
    assert!(
        last["after"].as_str().is_some_and(|a| a.contains(&digest)),
        "{audit}"
    );
    daemon.stop();
}

#[test]
fn an_mp3_upload_is_decoded_to_8khz_mono_and_stale_or_oversized_uploads_are_refused() {
    let (daemon, addr, _prompts) = start(1, free_port());
    let admin = Session::login(addr, "acme-admin");
    // 1 s of a 1 kHz tone at half scale, 22.05 kHz stereo (tests/fixtures/README.md).
    let mp3 = std::fs::read(repo_path("tests/fixtures/tone-1khz-1s.mp3")).expect("fixture");

    let uploaded = send(&admin, "PUT", AUDIO, "audio/mpeg", &mp3);
    assert_eq!(uploaded.status, 200, "{}", uploaded.body);
    let revision = uploaded.header("etag").expect("an ETag");
    let samples = stored_samples(&admin);
    let seconds = samples.len() as f64 / 8000.0;
    assert!(
        (1.0..1.2).contains(&seconds),
        "one second (and the encoder's padding): {seconds} s"
    );
    // Zero crossings of the middle: a 1 kHz tone crosses 2000 times a second.
    let middle = &samples[2000..6000];
    let crossings = middle
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!(
        (980..=1020).contains(&crossings),
        "1 kHz: {crossings} crossings in 0.5 s"
    );
    let peak = middle.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!((15_000..18_000).contains(&peak), "half scale: peak {peak}");

    // Another upload with the first's revision as If-Match, once the entry changed
    // since: refused.
    let wav = stereo_16k_wav();
    let newer = send(&admin, "PUT", AUDIO, "audio/wav", &wav);
    assert_eq!(newer.status, 200, "{}", newer.body);
    let stale = send_with(
        &admin,
        "PUT",
        AUDIO,
        "audio/mpeg",
        &mp3,
        &[("If-Match", revision.as_str())],
    );
    assert_eq!(stale.status, 409, "{}", stale.body);

    // Over 20 MiB: 413, whatever it holds.
    let huge = vec![0u8; 21 * 1024 * 1024];
    let too_large = send(&admin, "PUT", AUDIO, "audio/wav", &huge);
    assert_eq!(too_large.status, 413, "{}", too_large.body);

    // The enterprise removes its own prompt, once nothing plays it: while the number's
    // ringback names it, the validator refuses (422, nothing removed).
    let prompt = "/api/v1/enterprises/acme/prompts/acme-ringback";
    let in_use = admin.delete(prompt);
    assert_eq!(in_use.status, 422, "{}", in_use.body);
    assert_eq!(admin.get(prompt).status, 200);
    let ops = Session::login(addr, "ops");
    let number = "/api/v1/enterprises/acme/numbers/4001234567";
    let mut data = ops.get(number).json()["data"].clone();
    if let Some(fields) = data.as_object_mut() {
        fields.remove("ringback");
    }
    let freed = ops.put(number, &data.to_string());
    assert_eq!(freed.status, 200, "{}", freed.body);
    let removed = admin.delete(prompt);
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(admin.get(prompt).status, 404);
    daemon.stop();
}
