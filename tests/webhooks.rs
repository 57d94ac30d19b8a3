//! Missed-call webhooks through the built daemon: an after-hours call (refused with 480,
//! a missed call) makes the daemon POST a notice to the enterprise's receiver, here a
//! server on 127.0.0.1 speaking HTTPS with a certificate from a CA made at test time, or
//! plain HTTP. The tests check what the receiver gets (body, headers, signature), that
//! an untrusted certificate is refused and retried, and that a failed delivery is
//! retried after its backoff until the receiver accepts it, as the outbox shows.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{Caller, Daemon};

const SECRET: &str = "acme-webhook-secret-0001";

/// The routing part of the daemon's configuration: a number whose plan is never open,
/// so every call is refused as after hours and raises a missed-call notice to `webhook`.
fn routing(alerts: &str, webhook: &str, enterprise: &str) -> String {
    format!(
        r#"
[alerts]
{alerts}

[[trunk]]
name = "lab"
sources = ["127.0.0.1"]
gateway = "sip:{{number}}@127.0.0.1:5080"

[[enterprise]]
id = "acme"
name = "Acme"
alert_webhook = "{webhook}"
{enterprise}

[[schedule]]
name = "closed"

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{{ number = "13900000001" }}]

[[plan]]
name = "acme-main"
enterprise = "acme"
group = "sales"
schedule = "closed"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "acme-main"
"#
    )
}

fn secret_line(secret: &str) -> String {
    format!("alert_secret = \"{secret}\"")
}

// ------------------------------------------------------------------ certificates

/// A certificate authority made for one test, and a server certificate for 127.0.0.1
/// it signed.
struct TestPki {
    ca_pem: String,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl TestPki {
    fn new() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sihai test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);

        let server_key = rcgen::KeyPair::generate().expect("server key");
        let mut server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server");
        server_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "webhook receiver");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert: server_cert.der().clone(),
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert.clone()], self.server_key.clone_key())
            .expect("server TLS config");
        Arc::new(config)
    }

    /// Writes the CA certificate as PEM into `dir`, for `[alerts] ca_file`.
    fn write_ca(&self, dir: &Path) -> String {
        let path = dir.join("test-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write CA file");
        path.display().to_string()
    }
}

// ------------------------------------------------------------------ the receiver

/// What the receiver saw on one connection.
#[derive(Debug)]
enum Seen {
    /// A whole request, answered with the next scripted status.
    Request(Request),
    /// The connection ended before a request was read (e.g. the TLS handshake failed).
    Failed(String),
}

#[derive(Debug)]
struct Request {
    line: String,
    /// Header names in lowercase.
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

impl Request {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or_else(|| panic!("no {name} header in {self:?}"), String::as_str)
    }

    fn body_text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
}

/// An enterprise's webhook receiver on 127.0.0.1, over TLS when given a server
/// configuration. It answers its requests with `statuses` in turn (then 200) and reports
/// each connection; it stops after 60 s or once the test stops listening.
struct Receiver {
    port: u16,
    seen: mpsc::Receiver<Seen>,
}

impl Receiver {
    fn start(tls: Option<Arc<rustls::ServerConfig>>, statuses: &[u16]) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("local addr").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let mut statuses: Vec<u16> = statuses.to_vec();
        statuses.reverse();
        let (tx, seen) = mpsc::channel();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(_) => return,
                };
                tcp.set_nonblocking(false).expect("blocking");
                tcp.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("read timeout");
                let status = statuses.last().copied().unwrap_or(200);
                let outcome = match &tls {
                    Some(config) => {
                        let connection =
                            rustls::ServerConnection::new(config.clone()).expect("TLS session");
                        let mut stream = rustls::StreamOwned::new(connection, tcp);
                        let outcome = serve(&mut stream, status);
                        stream.conn.send_close_notify();
                        let _ = stream.flush();
                        outcome
                    }
                    None => serve(&mut { tcp }, status),
                };
                if matches!(outcome, Seen::Request(_)) {
                    statuses.pop();
                }
                if tx.send(outcome).is_err() {
                    return;
                }
            }
        });
        Receiver { port, seen }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/missed", self.port)
    }

    /// The next connection's outcome, within `within`.
    fn next(&self, within: Duration, daemon: &Daemon) -> Seen {
        self.seen.recv_timeout(within).unwrap_or_else(|_| {
            panic!(
                "nothing reached the receiver within {within:?}:\n{}",
                daemon.plain_log()
            )
        })
    }

    /// The next whole request, within `within`.
    fn next_request(&self, within: Duration, daemon: &Daemon) -> Request {
        match self.next(within, daemon) {
            Seen::Request(request) => request,
            Seen::Failed(err) => panic!(
                "a connection failed before its request ({err}):\n{}",
                daemon.plain_log()
            ),
        }
    }
}

/// Reads one HTTP/1.1 request (head, then Content-Length bytes of body) and answers
/// `status`.
fn serve(stream: &mut impl ReadWrite, status: u16) -> Seen {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Seen::Failed("closed before the request's head".into()),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(err) => return Seen::Failed(err.to_string()),
        }
    };
    let at = Instant::now();
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(err) => return Seen::Failed(err.to_string()),
        }
    }
    let reason = if status == 200 { "OK" } else { "Failed" };
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let _ = stream.flush();
    Seen::Request(Request {
        line,
        headers,
        body: data[head_end..].to_vec(),
        at,
    })
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

// ------------------------------------------------------------------ checks

/// Whether `signature` is `sha256=` and the hex HMAC-SHA256 of `body` with `secret`,
/// checked as an enterprise would (constant-time comparison by ring).
fn signature_valid(signature: &str, secret: &str, body: &[u8]) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 || hex.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return false;
    }
    let tag: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// The value of a string field of the (flat) JSON body.
fn json_field<'a>(body: &'a str, field: &str) -> &'a str {
    let start = body
        .find(&format!("\"{field}\":\""))
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        + field.len()
        + 4;
    let len = body[start..].find('"').expect("closing quote");
    &body[start..start + len]
}

/// (state, attempts) of every row of the daemon's alert outbox, oldest first.
fn outbox(daemon: &Daemon) -> Vec<(String, u32)> {
    let db = rusqlite::Connection::open_with_flags(
        daemon.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the daemon's database");
    db.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut query = db
        .prepare("SELECT state, attempts FROM alert_outbox ORDER BY id")
        .expect("query the outbox");
    query
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("read the outbox")
        .collect::<Result<_, _>>()
        .expect("outbox rows")
}

/// Waits up to `within` until the outbox is as `expected`.
fn wait_for_outbox(daemon: &Daemon, expected: &[(&str, u32)], within: Duration) {
    wait_for_outbox_where(
        daemon,
        |rows| {
            rows.iter()
                .map(|(state, attempts)| (state.as_str(), *attempts))
                .eq(expected.iter().copied())
        },
        &format!("{expected:?}"),
        within,
    );
}

/// Waits up to `within` until the outbox's rows are `wanted` (described by `what`).
fn wait_for_outbox_where(
    daemon: &Daemon,
    wanted: impl Fn(&[(String, u32)]) -> bool,
    what: &str,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let rows = outbox(daemon);
        if wanted(&rows) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "outbox {rows:?} after {within:?}, expected {what}:\n{}",
            daemon.plain_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn a_missed_call_is_posted_over_https_signed_with_the_enterprise_secret() {
    let pki = TestPki::new();
    let certs = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start(Some(pki.server_config()), &[]);
    let daemon = Daemon::start_with(
        "",
        &routing(
            &format!("ca_file = \"{}\"", pki.write_ca(certs.path())),
            &receiver.url("https"),
            &secret_line(SECRET),
        ),
    );
    daemon.wait_for_log("webhook CA file loaded", 1, Duration::from_secs(10));
    Caller::refused(&daemon, 480).run();

    let request = receiver.next_request(Duration::from_secs(15), &daemon);
    assert_eq!(request.line, "POST /missed HTTP/1.1");
    assert_eq!(
        request.header("host"),
        format!("127.0.0.1:{}", receiver.port)
    );
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("user-agent").starts_with("sihai/"));
    assert_eq!(request.header("x-sihai-attempt"), "1");
    let body = request.body_text();
    for field in [
        "\"event\":\"missed_call\"",
        "\"enterprise\":\"acme\"",
        "\"number\":\"4001234567\"",
        "\"caller\":\"13800138000\"",
        "\"outcome\":\"after_hours\"",
    ] {
        assert!(body.contains(field), "{field} missing from {body}");
    }
    assert_eq!(
        request.header("x-sihai-alert-id"),
        json_field(body, "call_id"),
        "the alert id is the call's record id"
    );
    let signature = request.header("x-sihai-signature");
    assert!(
        signature_valid(signature, SECRET, &request.body),
        "{signature} does not sign {body}"
    );
    assert!(
        !signature_valid(signature, "another-secret-0001", &request.body),
        "a signature checks out only with its own secret"
    );

    daemon.wait_for_log("missed-call alert delivered", 1, Duration::from_secs(10));
    wait_for_outbox(&daemon, &[], Duration::from_secs(5));
}

#[test]
fn an_untrusted_certificate_is_refused_and_retried_until_a_reload_trusts_its_ca() {
    let pki = TestPki::new();
    let certs = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start(Some(pki.server_config()), &[]);
    let webhook = receiver.url("https");
    let daemon = Daemon::start_with("", &routing("", &webhook, &secret_line(SECRET)));
    Caller::refused(&daemon, 480).run();

    // Without the CA the daemon refuses the receiver's certificate: the handshake
    // fails, nothing is posted, and the notice is tried again after its backoff.
    for attempt in 1..=2 {
        match receiver.next(Duration::from_secs(15), &daemon) {
            Seen::Failed(err) => assert!(
                err.contains("UnknownCA") || err.contains("alert"),
                "attempt {attempt}: the client should abort the handshake: {err}"
            ),
            Seen::Request(request) => {
                panic!("attempt {attempt} was delivered to an untrusted receiver: {request:?}")
            }
        }
    }
    daemon.wait_for_log("invalid peer certificate", 2, Duration::from_secs(10));
    let log = daemon.plain_log();
    assert!(
        log.contains("missed-call alert failed; will retry"),
        "{log}"
    );
    assert!(!log.contains("missed-call alert delivered"), "{log}");
    wait_for_outbox_where(
        &daemon,
        |rows| matches!(rows, [(state, attempts)] if state == "pending" && *attempts >= 2),
        "one pending notice, tried twice or more",
        Duration::from_secs(5),
    );

    // The operator adds the enterprise's CA and rotates its secret; the reload applies
    // both to the next attempt.
    let rotated = "acme-webhook-secret-0002";
    daemon.rewrite_routing(
        "",
        &routing(
            &format!("ca_file = \"{}\"", pki.write_ca(certs.path())),
            &webhook,
            &secret_line(rotated),
        ),
    );
    daemon.hangup();
    daemon.wait_for_log("configuration reloaded", 1, Duration::from_secs(10));
    let request = loop {
        // Attempts already on their way when the reload lands may still fail.
        match receiver.next(Duration::from_secs(20), &daemon) {
            Seen::Request(request) => break request,
            Seen::Failed(_) => continue,
        }
    };
    let signature = request.header("x-sihai-signature");
    assert!(
        signature_valid(signature, rotated, &request.body),
        "signed with the rotated secret: {signature}"
    );
    assert!(
        request
            .header("x-sihai-attempt")
            .parse::<u32>()
            .expect("attempt")
            >= 3
    );
    wait_for_outbox(&daemon, &[], Duration::from_secs(10));
}

#[test]
fn a_failed_delivery_is_retried_after_its_backoff_with_the_same_id() {
    let receiver = Receiver::start(None, &[500]);
    let daemon = Daemon::start_with(
        "",
        &routing("", &receiver.url("http"), &secret_line(SECRET)),
    );
    Caller::refused(&daemon, 480).run();

    let first = receiver.next_request(Duration::from_secs(15), &daemon);
    assert_eq!(first.header("x-sihai-attempt"), "1");
    daemon.wait_for_log(
        "missed-call alert failed; will retry",
        1,
        Duration::from_secs(10),
    );
    assert!(
        daemon.plain_log().contains("HTTP 500"),
        "{}",
        daemon.plain_log()
    );
    // The failure is logged once the outbox has it (the retry may already have gone
    // through on a slow machine).
    let rows = outbox(&daemon);
    assert!(
        matches!(rows.as_slice(), [(state, 1)] if state == "pending") || rows.is_empty(),
        "after the first failure: {rows:?}"
    );

    let second = receiver.next_request(Duration::from_secs(15), &daemon);
    let gap = second.at.duration_since(first.at);
    assert!(
        gap >= Duration::from_millis(900),
        "retried after {gap:?}, before the 1 s backoff"
    );
    assert!(gap < Duration::from_secs(10), "retried only after {gap:?}");
    assert_eq!(second.header("x-sihai-attempt"), "2");
    assert_eq!(
        second.header("x-sihai-alert-id"),
        first.header("x-sihai-alert-id"),
        "a retry keeps its id, so the receiver can drop duplicates"
    );
    assert_eq!(second.body, first.body);
    assert_eq!(
        second.header("x-sihai-signature"),
        first.header("x-sihai-signature")
    );
    assert!(signature_valid(
        second.header("x-sihai-signature"),
        SECRET,
        &second.body
    ));
    daemon.wait_for_log("missed-call alert delivered", 1, Duration::from_secs(10));
    wait_for_outbox(&daemon, &[], Duration::from_secs(5));
    // Delivered once: nothing more arrives.
    assert!(
        receiver
            .seen
            .recv_timeout(Duration::from_millis(1500))
            .is_err(),
        "a delivered notice was sent again"
    );
}

#[test]
fn a_notice_is_given_up_after_max_attempts_and_kept_as_dead() {
    let receiver = Receiver::start(None, &[503, 503, 503]);
    let daemon = Daemon::start_with("", &routing("max_attempts = 2", &receiver.url("http"), ""));
    Caller::refused(&daemon, 480).run();

    let first = receiver.next_request(Duration::from_secs(15), &daemon);
    assert!(
        !first.headers.contains_key("x-sihai-signature"),
        "no secret, no signature"
    );
    receiver.next_request(Duration::from_secs(15), &daemon);
    daemon.wait_for_log(
        "missed-call alert undeliverable; giving up",
        1,
        Duration::from_secs(10),
    );
    wait_for_outbox(&daemon, &[("dead", 2)], Duration::from_secs(5));
    assert!(
        receiver
            .seen
            .recv_timeout(Duration::from_millis(2500))
            .is_err(),
        "a dead notice was tried again"
    );
}

#[test]
fn a_ca_file_that_cannot_be_read_is_reported_at_start_and_http_notices_still_go() {
    let receiver = Receiver::start(None, &[]);
    let certs = tempfile::tempdir().expect("temp dir");
    let missing = certs.path().join("missing-ca.pem");
    let daemon = Daemon::start_with(
        "",
        &routing(
            &format!("ca_file = \"{}\"", missing.display()),
            &receiver.url("http"),
            "",
        ),
    );
    daemon.wait_for_log(
        &format!("[alerts] ca_file: cannot read {}", missing.display()),
        1,
        Duration::from_secs(10),
    );
    Caller::refused(&daemon, 480).run();
    let request = receiver.next_request(Duration::from_secs(15), &daemon);
    assert!(request.body_text().contains("\"outcome\":\"after_hours\""));
    wait_for_outbox(&daemon, &[], Duration::from_secs(5));
}

#[test]
fn a_receiver_that_never_answers_times_out_after_webhook_timeout_ms() {
    // Accepts every connection and reads the request, then says nothing: only the
    // daemon's own timeout can end the attempt.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let url = format!(
        "http://127.0.0.1:{}/missed-calls",
        listener.local_addr().expect("receiver address").port()
    );
    let (accepted, accepts) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            let Ok(stream) = stream else { return };
            let _ = accepted.send(Instant::now());
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let daemon = Daemon::start_with(
        "",
        &routing("webhook_timeout_ms = 300\nmax_attempts = 2", &url, ""),
    );
    Caller::refused(&daemon, 480).run();

    let first = accepts
        .recv_timeout(Duration::from_secs(15))
        .expect("the daemon connects to the receiver");
    daemon.wait_for_log("no answer within 300ms", 1, Duration::from_secs(10));
    let second = accepts
        .recv_timeout(Duration::from_secs(15))
        .expect("the timed-out notice is tried again");
    // 300 ms of waiting, then the 1 s backoff: a client without the timeout would hold
    // the first connection for good and never come back.
    let gap = second.duration_since(first);
    assert!(
        gap >= Duration::from_millis(1200) && gap < Duration::from_secs(10),
        "second attempt {gap:?} after the first"
    );
    daemon.wait_for_log(
        "missed-call alert undeliverable; giving up",
        1,
        Duration::from_secs(10),
    );
    wait_for_outbox(&daemon, &[("dead", 2)], Duration::from_secs(5));
}
