//! The portal's call records, bills and traffic analysis in headless Chromium, after a
//! real call: a billed enterprise (a per-second tariff, its prepaid account recharged)
//! whose number records, sipp as the carrier and as the phone, the call through the RTP
//! relay. The call shows in the records page with its cost; its recording plays in the
//! page (the <audio> element loads it, its duration is the call's, it seeks); the bill
//! page shows its charge and the statement downloads; the analytics page counts it in
//! today's figures and places the caller on the map; a second enterprise's admin sees
//! none of it, and the first's recording URL is 404 for it. The statement download
//! (`bill.txt`, `bill.csv`) is byte for byte what `sihai bill` prints.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::api::{Session, add_user};
use support::portal::BrowserTest;
use support::routing::{group, phone, routing_with_number};
use support::rtp::{relay_routing_head, rtp_base};
use support::{Caller, Daemon, Phone, free_port, sihai_ok};

/// How long the caller talks before hanging up.
const TALK_MS: u64 = 4000;

/// The API on `api_port`; the relay; `acme` billed per second at ¥0.60/min, its number
/// 4001234567 recording its calls and ringing `phone_uri`; a second enterprise `beta`.
fn billed_recorded_routing(api_port: u16, phone_uri: &str) -> String {
    let base = rtp_base(0);
    // The relay's [media] section; its trunk and enterprise come from the routing below.
    let head = relay_routing_head(&format!("{base}-{}", base + 19), None, free_port());
    let media = head.split("[[trunk]]").next().expect("the [media] section");
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{media}\n{}\n[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n",
        routing_with_number(
            free_port(),
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\n\
             suspend_below = \"0\"\nlow_balance_warning = \"0\"\nmin_recharge = \"0.01\"\n",
            "record = true\n",
            "group = \"desk\"\n",
            &format!(
                "{}\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
                group(
                    "desk",
                    "sequential",
                    &[phone(phone_uri, "ring_timeout_s = 10")]
                )
            ),
        )
    )
}

/// The length in seconds of a finished WAV file (its RIFF size filled in): the `data`
/// chunk's size over the format's byte rate.
fn wav_seconds(path: &Path) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    let bytes = loop {
        if let Ok(bytes) = std::fs::read(path)
            && bytes.len() > 44
            && u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize
                == bytes.len() - 8
        {
            break bytes;
        }
        assert!(
            Instant::now() < deadline,
            "{} not finished within 5 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let byte_rate = u32_at(28);
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32_at(at + 4) as usize;
        if &bytes[at..at + 4] == b"data" {
            return size as f64 / f64::from(byte_rate);
        }
        at += 8 + size + size % 2;
    }
    panic!("no data chunk in {}", path.display())
}

#[test]
fn the_portal_shows_a_billed_recorded_call_its_bill_and_analysis_to_its_enterprise_only() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let phone_uri = answers.uri("13900000001");
    let api_port = free_port();
    let daemon = Daemon::start_with("", &billed_recorded_routing(api_port, &phone_uri));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    sihai_ok(
        &config,
        &["account", "recharge", "acme", "10", "--ref", "bank-1"],
    );

    let mut browser = BrowserTest::start("records.mjs", addr, &[]);
    browser.wait_step("call");
    // One answered call from a Beijing mobile, talking TALK_MS through the relay.
    Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(TALK_MS)
        .run();
    answers.finish(&daemon);
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(rows[0].outcome, "answered", "{rows:#?}");

    let admin = Session::login(addr, "acme-admin");
    let page = admin.get("/api/v1/enterprises/acme/cdrs").json();
    let call = &page["cdrs"][0];
    let recording = call["recording"].as_str().expect("a recording");
    let seconds = wav_seconds(&daemon.dir.path().join("recordings").join(recording));
    let talk = call["talk_s"].as_u64().expect("talk_s");
    assert!(
        (seconds - talk as f64).abs() <= 1.0,
        "the recording lasts the call: {seconds} s for {talk} s of talk"
    );
    let cost = call["cost"].as_str().expect("a cost");
    assert_ne!(cost, "0", "{call}");
    let facts = serde_json::json!({
        "call_id": call["call_id"],
        "cost": cost,
        "talk_s": talk,
        "wav_seconds": seconds,
    });
    browser.go(&facts.to_string());
    browser.finish();

    // The statement download is `sihai bill`'s statement, byte for byte, for the
    // enterprise only.
    let month = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("Asia/Shanghai"))
        .strftime("%Y-%m")
        .to_string();
    let text = admin.get(&format!("/api/v1/enterprises/acme/bill.txt?month={month}"));
    assert_eq!(text.status, 200, "{}", text.body);
    assert!(
        text.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{}",
        text.headers
    );
    assert_eq!(
        text.header("content-disposition"),
        Some(format!(
            "attachment; filename=\"statement-acme-{month}.txt\""
        ))
    );
    assert_eq!(
        text.body,
        sihai_ok(&config, &["bill", "acme", "--month", &month])
    );
    assert!(text.body.contains("Calls (1, "), "{}", text.body);
    let csv = admin.get(&format!("/api/v1/enterprises/acme/bill.csv?month={month}"));
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(
        csv.body,
        sihai_ok(&config, &["bill", "acme", "--month", &month, "--csv"])
    );
    assert_eq!(
        csv.body.lines().count(),
        2,
        "a header and the call: {}",
        csv.body
    );
    assert_eq!(
        admin
            .get("/api/v1/enterprises/acme/bill.txt?month=March")
            .status,
        400
    );
    let beta = Session::login(addr, "beta-admin");
    for path in [
        format!("/api/v1/enterprises/acme/bill.txt?month={month}"),
        format!("/api/v1/enterprises/acme/bill.csv?month={month}"),
        // beta is not billed: it has no account, so no statement.
        format!("/api/v1/enterprises/beta/bill.txt?month={month}"),
    ] {
        assert_eq!(beta.get(&path).status, 404, "{path}");
    }
    drop(daemon);
}
