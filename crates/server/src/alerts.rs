//! Missed-call alerts: the store's outbox delivered as JSON webhooks, with retries and
//! backoff. Because the outbox is persisted in the same transaction as the CDR, a restart
//! loses no alert: the worker simply picks up what is due.
//!
//! Each notice is one `POST` with an HTTP/1.1 client over rustls (ring): an `https://`
//! receiver's certificate must chain to the system's trusted roots or to a certificate
//! of `[alerts] ca_file`, and match the URL's host. Redirects are not followed and no
//! proxy is used: the notice goes to the URL the enterprise configured, or fails. Each
//! carries `X-Sihai-Alert-Id` (the call's record id: the same on every retry, so a
//! receiver can drop duplicates) and, when the enterprise has an `alert_secret`,
//! `X-Sihai-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
//!
//! The worker runs on the daemon's event loop: the client is asynchronous, and the
//! blocking work (the outbox, reading certificates) goes to tokio's blocking pool. It
//! reads the running configuration at each delivery, so a rotated secret or a changed
//! timeout applies at once; the client (its trust roots and connect timeout) is rebuilt
//! when a reload changes `ca_file` or `webhook_timeout`, and the CA file re-read at every
//! reload that names one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sihai_config::{AlertSecret, Config};
use sihai_store::{CdrStore, MissedCallAlert};

use crate::Stats;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// The signature header: `sha256=` and the lowercase hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Sihai-Signature";
/// The notice's id, the same on every attempt: receivers deduplicate retries with it.
pub const ALERT_ID_HEADER: &str = "X-Sihai-Alert-Id";
/// Which attempt this is, from 1: a receiver's logs tell retries from the first try.
pub const ATTEMPT_HEADER: &str = "X-Sihai-Attempt";

/// Due alerts taken from the outbox per poll, delivered concurrently.
const BATCH: usize = 32;

/// Runs until `shutdown` resolves, delivering due alerts every `poll` interval with the
/// settings of the running configuration `config` (replaced on reload).
pub async fn run(
    store: Arc<dyn CdrStore>,
    config: Arc<ArcSwap<Config>>,
    stats: Arc<Stats>,
    poll: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    let mut webhooks = Webhooks::start(config.load_full()).await;
    loop {
        webhooks.follow(config.load_full()).await;
        let backlog = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.pending_alerts()).await
        };
        match backlog {
            Ok(Ok(pending)) => stats.alerts_backlog.store(pending, Ordering::Relaxed),
            Ok(Err(err)) => warn!(%err, "cannot count the alert outbox"),
            Err(err) => warn!(%err, "alert outbox task failed"),
        }
        let due = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.due_alerts(Timestamp::now(), BATCH)).await
        };
        match due {
            Ok(Ok(alerts)) if !alerts.is_empty() => {
                let mut deliveries = JoinSet::new();
                for alert in alerts {
                    deliveries.spawn(deliver_one(
                        store.clone(),
                        webhooks.client.clone(),
                        config.clone(),
                        stats.clone(),
                        alert,
                    ));
                }
                // On shutdown the deliveries in flight are dropped: one that had reached
                // its receiver is sent again after the restart, with the same alert id.
                tokio::select! {
                    () = async { while deliveries.join_next().await.is_some() {} } => {}
                    _ = shutdown.changed() => return,
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(err)) => warn!(%err, "cannot read the alert outbox"),
            Err(err) => warn!(%err, "alert outbox task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The HTTP client and the settings it was built with.
struct Webhooks {
    client: reqwest::Client,
    /// The configuration snapshot last looked at, to notice a reload.
    seen: Arc<Config>,
    built_for: ClientSettings,
}

/// What the client is built with; the rest is read per delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientSettings {
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
}

impl ClientSettings {
    fn of(config: &Config) -> ClientSettings {
        ClientSettings {
            ca_file: config.alerts.ca_file.clone(),
            connect_timeout: config.alerts.webhook_timeout,
        }
    }
}

impl Webhooks {
    /// Builds the client for the configuration the daemon starts with. A CA file that
    /// cannot be used is reported, and the client trusts the system's roots meanwhile.
    async fn start(config: Arc<Config>) -> Webhooks {
        let settings = ClientSettings::of(&config);
        let client = match build_client(settings.clone()).await {
            Ok(client) => {
                if let Some(path) = &settings.ca_file {
                    info!(ca_file = %path.display(), "webhook CA file loaded");
                }
                client
            }
            Err(err) => {
                error!(
                    "[alerts] ca_file: {err}; https:// webhooks are checked against the system's roots only until the file is fixed and the configuration reloaded"
                );
                let fallback = ClientSettings {
                    ca_file: None,
                    ..settings.clone()
                };
                match build_client(fallback).await {
                    Ok(client) => client,
                    Err(err) => {
                        // Only a broken TLS set-up gets here; http:// still works.
                        error!(%err, "cannot set up TLS for webhooks");
                        reqwest::Client::new()
                    }
                }
            }
        };
        Webhooks {
            client,
            seen: config,
            built_for: settings,
        }
    }

    /// After a reload, rebuilds the client if its settings changed or a CA file is named
    /// (re-read, so a renewed file applies on SIGHUP). A new client that cannot be built
    /// is reported and the old one kept.
    async fn follow(&mut self, config: Arc<Config>) {
        if Arc::ptr_eq(&config, &self.seen) {
            return;
        }
        let settings = ClientSettings::of(&config);
        self.seen = config;
        if settings == self.built_for && settings.ca_file.is_none() {
            return;
        }
        match build_client(settings.clone()).await {
            Ok(client) => {
                if let Some(path) = &settings.ca_file {
                    info!(ca_file = %path.display(), "webhook CA file loaded");
                }
                self.client = client;
                self.built_for = settings;
            }
            Err(err) => error!(
                "[alerts] ca_file: {err}; webhooks keep the trust settings they had before the reload"
            ),
        }
    }
}

/// A client with the webhooks' trust settings (the system's roots and `[alerts]
/// ca_file`, no redirects, no proxy) for another of the node's outbound HTTP uses (the
/// CRM lookups), built off the event loop.
pub(crate) async fn client_trusting(
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
) -> Result<reqwest::Client, String> {
    build_client(ClientSettings {
        ca_file,
        connect_timeout,
    })
    .await
}

/// Builds the webhook client off the event loop (the system's roots and the CA file are
/// read from disk).
async fn build_client(settings: ClientSettings) -> Result<reqwest::Client, String> {
    tokio::task::spawn_blocking(move || build_client_blocking(&settings))
        .await
        .map_err(|err| format!("client set-up task failed: {err}"))?
}

fn build_client_blocking(settings: &ClientSettings) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    for err in &system.errors {
        debug!(%err, "while loading the system's root certificates");
    }
    let (added, _) = roots.add_parsable_certificates(system.certs);
    if let Some(path) = &settings.ca_file {
        let certificates = load_ca_file(path)?;
        let count = certificates.len();
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|err| format!("{}: unusable CA certificate: {err}", path.display()))?;
        }
        debug!(ca_file = %path.display(), count, "webhook CA certificates");
    } else if added == 0 {
        warn!(
            "no trusted root certificates found on this system (install ca-certificates, or set [alerts] ca_file): https:// webhooks will fail"
        );
    }
    // ring rather than rustls' default aws-lc-rs: pure Rust and assembly, quick to build,
    // and the same crate signs the notices. rustls deprecates it for lacking
    // post-quantum key exchange, which a missed-call notice (a caller's number, no
    // long-lived secret) does not need; moving is this line and the crate features.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS set-up: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("sihai/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {}", error_chain(&err)))
}

/// The certificates of a PEM file: at least one, every block well formed.
fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("{}: not a PEM certificate file: {err}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{}: no \"BEGIN CERTIFICATE\" block in the file",
            path.display()
        ));
    }
    Ok(certificates)
}

/// Delivers one alert with the settings the running configuration has now, and records
/// the outcome in the outbox.
async fn deliver_one(
    store: Arc<dyn CdrStore>,
    client: reqwest::Client,
    config: Arc<ArcSwap<Config>>,
    stats: Arc<Stats>,
    alert: MissedCallAlert,
) {
    let (timeout, max_attempts, secret) = {
        let config = config.load();
        let secret = config
            .enterprises
            .iter()
            .find(|e| e.id == alert.enterprise)
            .and_then(|e| e.alert_secret.clone());
        (
            config.alerts.webhook_timeout,
            config.alerts.max_attempts,
            secret,
        )
    };
    let attempt = alert.attempts + 1;
    let secret = secret.as_ref().map(AlertSecret::expose);
    let outcome = post(&client, &alert, attempt, timeout, secret).await;
    let id = alert.id;
    match &outcome {
        Ok(_) => Stats::bump(&stats.alerts_delivered),
        Err(_) if attempt >= max_attempts => {
            Stats::bump(&stats.alerts_failed);
            Stats::bump(&stats.alerts_given_up);
        }
        Err(_) => Stats::bump(&stats.alerts_failed),
    }
    match outcome {
        Ok(status) => {
            // Logged once the outbox says so, so that the log and the outbox agree.
            if let Err(err) = tokio::task::spawn_blocking(move || store.alert_delivered(id))
                .await
                .map_err(|err| err.to_string())
                .and_then(|done| done.map_err(|err| err.to_string()))
            {
                error!(id, %err, "cannot mark a delivered missed-call alert");
            }
            match account_event(&alert) {
                None => {
                    info!(id, enterprise = %alert.enterprise, call_id = %alert.call_id, attempt, status, "missed-call alert delivered")
                }
                Some(event) => {
                    info!(id, enterprise = %alert.enterprise, event, attempt, status, "account alert delivered")
                }
            }
        }
        Err(err) => {
            let give_up = attempt >= max_attempts;
            let next = Timestamp::now() + backoff(attempt);
            if let Err(err) =
                tokio::task::spawn_blocking(move || store.alert_failed(id, next, give_up))
                    .await
                    .map_err(|err| err.to_string())
                    .and_then(|done| done.map_err(|err| err.to_string()))
            {
                error!(id, %err, "cannot reschedule a failed missed-call alert");
            }
            match (account_event(&alert), give_up) {
                (None, true) => {
                    error!(id, enterprise = %alert.enterprise, url = %alert.url, %err, attempts = attempt, "missed-call alert undeliverable; giving up")
                }
                (None, false) => {
                    warn!(id, enterprise = %alert.enterprise, url = %alert.url, %err, attempts = attempt, retry_in = %backoff(attempt), "missed-call alert failed; will retry")
                }
                (Some(event), true) => {
                    error!(id, enterprise = %alert.enterprise, event, url = %alert.url, %err, attempts = attempt, "account alert undeliverable; giving up")
                }
                (Some(event), false) => {
                    warn!(id, enterprise = %alert.enterprise, event, url = %alert.url, %err, attempts = attempt, retry_in = %backoff(attempt), "account alert failed; will retry")
                }
            }
        }
    }
}

/// The account event an outbox entry is about (`low_balance`, …), `None` for a missed
/// call: the billing lifecycle queues its alerts in the same outbox under the reference
/// `account/{enterprise}/{event}/{µs}` (crate::billing), and the log should not call a
/// low-balance warning a missed call.
fn account_event(alert: &MissedCallAlert) -> Option<&str> {
    let rest = alert.call_id.strip_prefix("account/")?;
    let mut parts = rest.splitn(3, '/');
    let (_enterprise, event) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some(event)
}

/// POSTs the alert's payload; a 2xx status is success, anything else (a redirect
/// included) a failure to retry.
async fn post(
    client: &reqwest::Client,
    alert: &MissedCallAlert,
    attempt: u32,
    timeout: Duration,
    secret: Option<&str>,
) -> Result<u16, String> {
    let mut request = client
        .post(&alert.url)
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(ATTEMPT_HEADER, attempt);
    // Record ids are hex tokens, always a valid header value; should one not be, the
    // notice still goes, without it.
    match HeaderValue::from_str(&alert.call_id) {
        Ok(value) => request = request.header(ALERT_ID_HEADER, value),
        Err(_) => {
            warn!(id = alert.id, call_id = ?alert.call_id, "call id unusable as an alert id header")
        }
    }
    if let Some(secret) = secret {
        request = request.header(
            SIGNATURE_HEADER,
            signature(secret.as_bytes(), alert.payload.as_bytes()),
        );
    }
    let response = request
        .body(alert.payload.clone())
        .send()
        .await
        .map_err(|err| {
            if err.is_timeout() {
                format!("no answer within {timeout:?}")
            } else {
                error_chain(&err)
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` keyed with `secret`: the value of
/// [`SIGNATURE_HEADER`].
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in tag.as_ref() {
        text.push(char::from(HEX[usize::from(byte >> 4)]));
        text.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    text
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// An error and its causes, `a: b: c`: reqwest's own message says only that the request
/// failed, the cause says why (refused, certificate not trusted, ...).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// 1 s, 2 s, 4 s ... capped at 10 minutes.
pub fn backoff(attempts: u32) -> SignedDuration {
    let secs = 1i64
        .checked_shl(attempts.saturating_sub(1).min(20))
        .unwrap_or(600)
        .min(600);
    SignedDuration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox_entry(reference: &str) -> MissedCallAlert {
        MissedCallAlert {
            id: 1,
            call_id: reference.to_owned(),
            enterprise: "acme".to_owned(),
            url: "http://127.0.0.1:1/".to_owned(),
            payload: "{}".to_owned(),
            attempts: 0,
            next_attempt_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_account_alert_is_told_from_a_missed_call_by_its_reference() {
        let low = outbox_entry("account/acme/low_balance/1765000000000000");
        assert_eq!(account_event(&low), Some("low_balance"));
        // A call's id is a missed call's, whatever it looks like.
        for call in [
            "a84b4c76e66710@pc33",
            "account/acme",
            "account/acme/low_balance",
            "x/account/a/b/c",
        ] {
            assert_eq!(account_event(&outbox_entry(call)), None, "{call}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), SignedDuration::from_secs(1));
        assert_eq!(backoff(2), SignedDuration::from_secs(2));
        assert_eq!(backoff(5), SignedDuration::from_secs(16));
        assert_eq!(backoff(40), SignedDuration::from_secs(600));
    }

    /// RFC 4231, test cases 1 and 2.
    #[test]
    fn signature_is_the_hmac_sha256_of_the_body_in_lowercase_hex() {
        assert_eq!(
            signature(&[0x0b; 20], b"Hi There"),
            "sha256=b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        assert!(
            load_ca_file(&missing)
                .unwrap_err()
                .starts_with(&format!("cannot read {}", missing.display()))
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        assert!(
            load_ca_file(&empty)
                .unwrap_err()
                .contains("no \"BEGIN CERTIFICATE\" block")
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        assert!(
            load_ca_file(&broken)
                .unwrap_err()
                .contains("not a PEM certificate file")
        );
    }

    #[tokio::test]
    async fn posts_json_with_its_id_and_signature() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut requests = Vec::new();
            for status in ["500 Internal Server Error", "204 No Content"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut got = vec![0u8; 4096];
                let mut n = 0;
                while !String::from_utf8_lossy(&got[..n]).contains("{\"a\":1}") {
                    n += s.read(&mut got[n..]).await.unwrap();
                }
                s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
                requests.push(String::from_utf8_lossy(&got[..n]).to_lowercase());
            }
            requests
        });
        let client = build_client(ClientSettings {
            ca_file: None,
            connect_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        let alert = MissedCallAlert {
            id: 7,
            call_id: "0123456789abcdef-r".into(),
            enterprise: "acme".into(),
            url: format!("http://{addr}/hook"),
            payload: "{\"a\":1}".into(),
            attempts: 0,
            next_attempt_at: Timestamp::now(),
        };
        let timeout = Duration::from_secs(5);
        assert_eq!(
            post(&client, &alert, 1, timeout, Some("0123456789abcdef")).await,
            Err("HTTP 500 Internal Server Error".into())
        );
        assert_eq!(post(&client, &alert, 2, timeout, None).await, Ok(204));
        let requests = server.await.unwrap();
        assert!(requests[0].starts_with("post /hook http/1.1\r\n"));
        assert!(requests[0].contains("content-type: application/json\r\n"));
        assert!(requests[0].contains("x-sihai-alert-id: 0123456789abcdef-r\r\n"));
        assert!(requests[0].contains("x-sihai-attempt: 1\r\n"));
        let expected = signature(b"0123456789abcdef", b"{\"a\":1}");
        assert!(requests[0].contains(&format!("x-sihai-signature: {expected}\r\n")));
        assert!(requests[1].contains("x-sihai-attempt: 2\r\n"));
        assert!(
            !requests[1].contains("x-sihai-signature"),
            "no secret, no signature"
        );
    }
}
