//! A call's recording downloaded through the built daemon's admin API: a real call
//! through the RTP relay to a number that records (hand-written carrier and phone
//! streaming audio both ways), then an enterprise viewer downloads the WAV whole (the
//! bytes of the file on disk), a middle range, a suffix range and an open range (each
//! `206` with its `Content-Range`), and a range past the end (`416`, `bytes */LEN`);
//! the audit log shows every access; another enterprise, an unknown call and a call
//! that was not recorded are `404`.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::api::{Session, add_user, get_bytes, http};
use support::rtp::{
    body_of, caller_invite, is_request, relay_routing_head, respond, rtp_base, rtp_packet,
    rtp_socket, sdp, sdp_target, wait_for,
};
use support::{Daemon, UdpClient, free_port, header_of, status_of};

/// The number that records its calls; 4001234568 does not.
const RECORDED: &str = "4001234567";
const NOT_RECORDED: &str = "4001234568";

/// The relay, the API on `api_port`, acme's two numbers ringing its one phone (the
/// gateway on `gateway`), and a second enterprise `beta`.
fn recording_routing(api_port: u16, gateway: u16) -> String {
    let base = rtp_base(0);
    let head = relay_routing_head(&format!("{base}-{}", base + 19), None, gateway);
    format!(
        r#"[api]
listen = "127.0.0.1:{api_port}"
{head}
[[enterprise]]
id = "beta"
name = "Beta"

[[number]]
number = "{RECORDED}"
enterprise = "acme"
status = "active"
plan = "main"
record = true

[[number]]
number = "{NOT_RECORDED}"
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
phones = [{{ number = "13900000001", ring_timeout_s = 20 }}]
"#
    )
}

/// One answered call to `dialled` from a hand-written carrier to the hand-written
/// `phone`, both streaming audio through the relay for `talk` (a different sample in
/// every packet, so that every part of the recording differs), then the caller hangs up.
fn answered_call(daemon: &Daemon, phone: &UdpClient, dialled: &str, call: &str, talk: Duration) {
    let sihai: SocketAddr = format!("127.0.0.1:{}", daemon.port)
        .parse()
        .expect("address");
    let caller = UdpClient::new();
    let caller_rtp = rtp_socket();
    let phone_rtp = rtp_socket();
    let offer = sdp(
        caller_rtp.local_addr().expect("addr").port(),
        "0",
        "a=rtpmap:0 PCMU/8000\r\n",
    );
    caller.send(
        &caller_invite(&caller, daemon.port, call, dialled, &offer),
        sihai,
    );
    let leg = wait_for(phone, "INVITE to the phone", |m| is_request(m, "INVITE"));
    let relay_for_phone = sdp_target(body_of(&leg));
    let answer = sdp(
        phone_rtp.local_addr().expect("addr").port(),
        "8",
        "a=rtpmap:8 PCMA/8000\r\n",
    );
    phone.send(
        &respond(&leg, 200, "OK", Some(&answer), phone.port()),
        sihai,
    );
    let ok = wait_for(&caller, "200 for the INVITE", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq").is_some_and(|c| c.ends_with("INVITE"))
    });
    let relay_for_caller = sdp_target(body_of(&ok));
    let _ack = wait_for(phone, "ACK", |m| is_request(m, "ACK"));
    let to_tag = header_of(&ok, "To")
        .and_then(|t| t.split("tag=").nth(1))
        .expect("To tag")
        .to_owned();
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} sip:sihai@127.0.0.1:{port} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bK{call}{method}\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: <sip:{dialled}@127.0.0.1>;tag={to_tag}\r\n\
             Call-ID: {call}@test\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            port = daemon.port,
            cport = caller.port(),
        )
    };
    caller.send(in_dialog("ACK", 1).as_bytes(), sihai);

    let started = Instant::now();
    let mut seq = 1u16;
    while started.elapsed() < talk {
        let byte = (seq as u8).wrapping_mul(37);
        caller_rtp
            .send_to(&rtp_packet(0, seq, byte), relay_for_caller)
            .expect("caller RTP");
        phone_rtp
            .send_to(&rtp_packet(8, seq, byte ^ 0x55), relay_for_phone)
            .expect("phone RTP");
        seq = seq.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
    }

    caller.send(in_dialog("BYE", 2).as_bytes(), sihai);
    let phone_bye = wait_for(phone, "BYE to the phone", |m| is_request(m, "BYE"));
    phone.send(&respond(&phone_bye, 200, "OK", None, phone.port()), sihai);
    wait_for(&caller, "200 for the BYE", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq").is_some_and(|c| c.ends_with("BYE"))
    });
}

/// The recording's bytes once the recorder has finished it (its RIFF size filled in).
fn finished_wav(path: &Path) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(bytes) = std::fs::read(path)
            && bytes.len() > 44
            && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize
                == bytes.len() - 8
        {
            return bytes;
        }
        assert!(
            Instant::now() < deadline,
            "{} not finished within 5 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn downloads(audit: &Value, call_id: &str) -> Vec<Value> {
    audit
        .as_array()
        .unwrap_or_else(|| panic!("an audit log: {audit}"))
        .iter()
        .filter(|e| e["action"] == "recording.download" && e["target"] == call_id)
        .cloned()
        .collect()
}

#[test]
fn a_viewer_downloads_a_recording_whole_and_by_ranges_and_every_access_is_audited() {
    let phone = UdpClient::new();
    let api_port = free_port();
    let daemon = Daemon::start_with("", &recording_routing(api_port, phone.port()));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-viewer", "enterprise_viewer", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));

    answered_call(
        &daemon,
        &phone,
        RECORDED,
        "rec-1",
        Duration::from_millis(1500),
    );
    answered_call(
        &daemon,
        &phone,
        NOT_RECORDED,
        "rec-2",
        Duration::from_millis(200),
    );
    let rows = daemon.wait_for_cdrs(2);
    assert!(rows.iter().all(|r| r.outcome == "answered"), "{rows:#?}");

    // The calls as the viewer lists them: the recorded one names its file.
    let viewer = Session::login(addr, "acme-viewer");
    let page = viewer.get("/api/v1/enterprises/acme/cdrs");
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.json();
    let cdrs = page["cdrs"].as_array().cloned().unwrap_or_default();
    let find = |number: &str| {
        cdrs.iter()
            .find(|c| c["number"] == number)
            .unwrap_or_else(|| panic!("a call to {number}: {page}"))
            .clone()
    };
    let (recorded, plain) = (find(RECORDED), find(NOT_RECORDED));
    let call_id = recorded["call_id"].as_str().expect("call_id").to_owned();
    let name = recorded["recording"]
        .as_str()
        .expect("a recording")
        .to_owned();
    assert!(plain["recording"].is_null(), "{plain}");
    let on_disk = finished_wav(&daemon.dir.path().join("recordings").join(&name));
    let len = on_disk.len();
    assert!(len > 8000, "about 1.5 s of stereo 8 kHz audio: {len} bytes");

    let path = format!("/api/v1/enterprises/acme/cdrs/{call_id}/recording");
    let get = |range: Option<&str>| {
        let mut headers = vec![("Cookie", viewer.cookie.as_str())];
        if let Some(range) = range {
            headers.push(("Range", range));
        }
        get_bytes(addr, &path, &headers)
    };

    // Whole: the file's bytes, and the server says ranges are welcome.
    let whole = get(None);
    assert_eq!(whole.status, 200, "{}", whole.headers);
    assert_eq!(whole.header("accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(whole.header("content-type").as_deref(), Some("audio/wav"));
    assert!(whole.body == on_disk, "the download is the file on disk");

    // A middle range, a suffix range, an open range: 206, each exactly its bytes.
    for (range, first, last) in [
        ("bytes=100-4099", 100, 4099),
        ("bytes=-1000", len - 1000, len - 1),
        ("bytes=5000-", 5000, len - 1),
    ] {
        let part = get(Some(range));
        assert_eq!(part.status, 206, "{range}: {}", part.headers);
        assert_eq!(
            part.header("content-range"),
            Some(format!("bytes {first}-{last}/{len}")),
            "{range}"
        );
        assert_eq!(part.header("accept-ranges").as_deref(), Some("bytes"));
        assert!(
            part.body == on_disk[first..=last],
            "{range}: the bytes {first}-{last} of the file"
        );
    }

    // A range past the end: 416, saying how long the file is.
    let past = get(Some(&format!("bytes={len}-")));
    assert_eq!(past.status, 416, "{}", past.headers);
    assert_eq!(past.header("content-range"), Some(format!("bytes */{len}")));

    // Each of the five accesses is in the audit log: who, from where, what was sent.
    let audit = viewer.get("/api/v1/audit");
    assert_eq!(audit.status, 200, "{}", audit.body);
    let audit = audit.json();
    let accesses = downloads(&audit, &call_id);
    assert_eq!(accesses.len(), 5, "{audit}");
    for access in &accesses {
        assert_eq!(access["actor"], "acme-viewer", "{access}");
        assert_eq!(access["source"], "127.0.0.1", "{access}");
        assert_eq!(access["enterprise"], "acme", "{access}");
        assert!(access["at"].as_str().is_some_and(|t| !t.is_empty()));
    }
    let sent: Vec<&str> = accesses
        .iter()
        .filter_map(|a| a["after"].as_str())
        .collect();
    for expected in [
        format!("bytes 0-{}/{len}", len - 1),
        format!("bytes 100-4099/{len}"),
        format!("bytes {}-{}/{len}", len - 1000, len - 1),
        format!("bytes 5000-{}/{len}", len - 1),
        format!("bytes */{len}"),
    ] {
        assert!(
            sent.iter().any(|s| s.starts_with(&expected)),
            "{expected} in {sent:?}"
        );
    }

    // Another enterprise, an unknown call, a call without a recording, a name that
    // tries to climb out: 404, and none of them is a download.
    let beta = Session::login(addr, "beta-admin");
    assert_eq!(beta.get(&path).status, 404);
    let plain_id = plain["call_id"].as_str().expect("call_id");
    for missing in [
        "/api/v1/enterprises/acme/cdrs/no-such-call/recording".to_owned(),
        format!("/api/v1/enterprises/acme/cdrs/{plain_id}/recording"),
        "/api/v1/enterprises/acme/cdrs/..%2F..%2Fsihai.toml/recording".to_owned(),
        format!("/api/v1/enterprises/beta/cdrs/{call_id}/recording"),
    ] {
        let reply = viewer.get(&missing);
        assert_eq!(reply.status, 404, "{missing}: {}", reply.body);
    }
    let audit = viewer.get("/api/v1/audit").json();
    assert_eq!(downloads(&audit, &call_id).len(), 5, "{audit}");
    // Without a session, nothing.
    assert_eq!(http(addr, "GET", &path, &[], None).status, 401);
    daemon.stop();
}
