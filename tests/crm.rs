//! 来电弹屏 through the real daemon: a tiny CRM (an HTTP server on 127.0.0.1 in a
//! thread of the test) answers the lookup; the phone (sipp) must receive the caller's
//! name as the display name of From and P-Asserted-Identity and the customer id in
//! `X-Customer-Id`, and the CDR keeps the customer id. A CRM that accepts the
//! connection and never answers delays the phone's INVITE by its timeout at most, and
//! the call still connects. The enterprise's own admin sets its CRM over the API, and
//! the validator refuses a timeout out of range there.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::api::{Session, add_user};
use support::routing::{group, only_cdr, phone, routing};
use support::rtp::{caller_invite, sdp, wait_for};
use support::{Caller, Daemon, Phone, UdpClient, free_port, header_of, status_of};

/// What the test CRM does with each request.
#[derive(Clone, Copy)]
enum Crm {
    /// Answers 200 with this JSON.
    Answers(&'static str),
    /// Accepts the connection, reads the request and never answers.
    Silent,
}

/// The test CRM: its address and the request lines it received.
struct CrmServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl CrmServer {
    fn start(behaviour: Crm) -> CrmServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test CRM");
        let url = format!(
            "http://{}/lookup",
            listener.local_addr().expect("local address")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            // Connections a silent CRM holds open (never answered, never closed).
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request_line) = read_request_line(&mut stream) else {
                    continue;
                };
                seen.lock().expect("requests lock").push(request_line);
                match behaviour {
                    Crm::Answers(json) => {
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{json}",
                            json.len()
                        );
                        let _ = stream.write_all(reply.as_bytes());
                    }
                    Crm::Silent => held.push(stream),
                }
            }
        });
        CrmServer { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }
}

/// The request line of an HTTP request, once its head has arrived.
fn read_request_line(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    text.lines().next().map(str::to_owned)
}

fn daemon_with_crm(crm: &CrmServer, timeout_ms: u32, answers: &Phone) -> Daemon {
    Daemon::start_with(
        "",
        &routing(
            &format!(
                "crm_lookup_url = \"{}\"\ncrm_timeout_ms = {timeout_ms}",
                crm.url
            ),
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "")],
            ),
        ),
    )
}

/// The first INVITE in a sipp message log, as received.
fn invite_in(messages: &str) -> String {
    let start = messages
        .find("INVITE sip:")
        .expect("the phone got an INVITE");
    let rest = &messages[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    rest[..end].to_owned()
}

#[test]
fn the_crm_name_and_customer_id_reach_the_phone_and_the_cdr() {
    let crm = CrmServer::start(Crm::Answers(
        r#"{"name": "张三", "customer_id": "C1024", "level": "vip"}"#,
    ));
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = daemon_with_crm(&crm, 1000, &answers);
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);

    let invite = invite_in(&answers.messages());
    assert!(
        invite.contains("From: \"张三\" <sip:13800138000@"),
        "From carries the name:\n{invite}"
    );
    assert!(
        invite.contains("P-Asserted-Identity: \"张三\" <sip:13800138000@"),
        "P-Asserted-Identity carries the name:\n{invite}"
    );
    assert!(
        invite.contains("X-Customer-Id: C1024"),
        "the customer id header:\n{invite}"
    );
    let requests = crm.requests();
    assert_eq!(
        requests,
        ["GET /lookup?caller=13800138000&number=4001234567 HTTP/1.1"],
        "one lookup, with the caller and the 400 number"
    );
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.customer_id, "C1024");
}

#[test]
fn a_crm_that_never_answers_delays_the_phone_by_its_timeout_at_most_and_the_call_connects() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    // Generous for a loaded test machine; what matters is the order of magnitude: the
    // call neither waits for the CRM for ever nor fails.
    const SLACK: Duration = Duration::from_millis(1200);
    let crm = CrmServer::start(Crm::Silent);
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = daemon_with_crm(&crm, 300, &answers);

    let caller = UdpClient::new();
    let offer = sdp(40_000, "8", "a=rtpmap:8 PCMA/8000\r\n");
    let sent_at = Instant::now();
    caller.send(
        &caller_invite(&caller, daemon.port, "crm-silent", "4001234567", &offer),
        daemon.addr(),
    );
    // The phone rings as soon as it gets its INVITE: its 180 marks that moment.
    wait_for(&caller, "180 Ringing", |m| status_of(m) == Some(180));
    let delay = sent_at.elapsed();
    assert!(
        delay >= TIMEOUT,
        "the phone rang after {delay:?}, before the CRM's timeout: was the CRM asked?"
    );
    assert!(
        delay <= TIMEOUT + SLACK,
        "the phone rang {delay:?} after the INVITE, more than the timeout {TIMEOUT:?} + {SLACK:?}"
    );
    let ok = wait_for(&caller, "200 OK", |m| status_of(m) == Some(200));
    let to = header_of(&ok, "To").expect("To of the 200");
    let contact = header_of(&ok, "Contact").expect("Contact of the 200");
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("Contact URI");
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKcrm-{method}\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: {to}\r\n\
             Call-ID: crm-silent@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            cport = caller.port()
        )
        .into_bytes()
    };
    caller.send(&in_dialog("ACK", 1), daemon.addr());
    caller.send(&in_dialog("BYE", 2), daemon.addr());
    wait_for(&caller, "200 for the BYE", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq").is_some_and(|c| c.ends_with("BYE"))
    });
    answers.finish(&daemon);

    let invite = invite_in(&answers.messages());
    assert!(
        invite.contains("From: <sip:13800138000@"),
        "no name without an answer:\n{invite}"
    );
    assert!(!invite.contains("X-Customer-Id"), "{invite}");
    assert_eq!(crm.requests().len(), 1, "the CRM was asked");
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.customer_id, "");
}

#[test]
fn the_enterprise_admin_sets_its_crm_over_the_api_and_the_next_call_shows_the_name() {
    let crm = CrmServer::start(Crm::Answers(r#"{"name": "李四"}"#));
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let api_port = free_port();
    let daemon = Daemon::start_with(
        "",
        &format!(
            "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}",
            routing(
                "",
                "group = \"sales\"",
                &group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")],
                ),
            )
        ),
    );
    let config = daemon.config_path();
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let admin = Session::login(
        format!("127.0.0.1:{api_port}").parse().expect("address"),
        "acme-admin",
    );

    let too_long = admin.put(
        "/api/v1/enterprises/acme",
        &format!(
            r#"{{"name":"Acme","crm_lookup_url":"{}","crm_timeout_ms":5000}}"#,
            crm.url
        ),
    );
    assert_eq!(too_long.status, 422, "{}", too_long.body);
    assert_eq!(
        too_long.json()["errors"][0]["field"],
        "crm_timeout_ms",
        "{}",
        too_long.body
    );
    let set = admin.put(
        "/api/v1/enterprises/acme",
        &format!(
            r#"{{"name":"Acme","crm_lookup_url":"{}","crm_timeout_ms":1000}}"#,
            crm.url
        ),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json()["data"]["crm_timeout_ms"], 1000, "{}", set.body);
    daemon.wait_tenant_reloaded(1);

    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
    let invite = invite_in(&answers.messages());
    assert!(
        invite.contains("From: \"李四\" <sip:13800138000@"),
        "the name from the CRM set over the API:\n{invite}"
    );
    assert!(!invite.contains("X-Customer-Id"), "no id given: {invite}");
    assert_eq!(crm.requests().len(), 1);
}
