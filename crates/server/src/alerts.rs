//! Missed-call alerts: the store's outbox delivered as JSON webhooks, with retries and
//! backoff. Because the outbox is persisted in the same transaction as the CDR, a restart
//! loses no alert: the worker simply picks up what is due.
//!
//! The HTTP client is deliberately small (one `POST` per connection, HTTP/1.1,
//! `Connection: close`): enterprises' webhook receivers are ordinary web servers, and a
//! full client library would be most of this crate's dependency tree.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use sihai_store::{CdrStore, MissedCallAlert};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

/// Runs until `shutdown` resolves, delivering due alerts every `poll` interval.
pub async fn run(
    store: Arc<dyn CdrStore>,
    timeout: Duration,
    max_attempts: u32,
    poll: Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut shutdown = shutdown;
    loop {
        let due = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.due_alerts(Timestamp::now(), 32)).await
        };
        match due {
            Ok(Ok(alerts)) => {
                for alert in alerts {
                    deliver_one(&store, alert, timeout, max_attempts).await;
                }
            }
            Ok(Err(err)) => warn!(%err, "cannot read the alert outbox"),
            Err(err) => warn!(%err, "alert outbox task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn deliver_one(
    store: &Arc<dyn CdrStore>,
    alert: MissedCallAlert,
    timeout: Duration,
    max_attempts: u32,
) {
    let result = tokio::time::timeout(timeout, post_json(&alert.url, &alert.payload)).await;
    let outcome = match result {
        Ok(Ok(status)) if (200..300).contains(&status) => Ok(()),
        Ok(Ok(status)) => Err(format!("HTTP {status}")),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    let store = store.clone();
    let id = alert.id;
    match outcome {
        Ok(()) => {
            info!(id, enterprise = %alert.enterprise, "missed-call alert delivered");
            let _ = tokio::task::spawn_blocking(move || store.alert_delivered(id)).await;
        }
        Err(err) => {
            let attempts = alert.attempts + 1;
            let give_up = attempts >= max_attempts;
            let next = Timestamp::now() + backoff(attempts);
            if give_up {
                warn!(id, enterprise = %alert.enterprise, %err, attempts, "missed-call alert undeliverable; giving up");
            } else {
                debug!(id, %err, attempts, "missed-call alert failed; will retry");
            }
            let _ =
                tokio::task::spawn_blocking(move || store.alert_failed(id, next, give_up)).await;
        }
    }
}

/// 1 s, 2 s, 4 s ... capped at 10 minutes.
pub fn backoff(attempts: u32) -> SignedDuration {
    let secs = 1i64
        .checked_shl(attempts.saturating_sub(1).min(20))
        .unwrap_or(600)
        .min(600);
    SignedDuration::from_secs(secs)
}

/// POSTs `body` as JSON to an `http://host:port/path` URL and returns the status code.
pub async fn post_json(url: &str, body: &str) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported webhook URL {url:?}: only http:// is supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(&address)
        .await
        .map_err(|e| format!("connect {address}: {e}"))?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: sihai\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send to {address}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read from {address}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    status.ok_or_else(|| format!("malformed HTTP response from {address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), SignedDuration::from_secs(1));
        assert_eq!(backoff(2), SignedDuration::from_secs(2));
        assert_eq!(backoff(5), SignedDuration::from_secs(16));
        assert_eq!(backoff(40), SignedDuration::from_secs(600));
    }

    #[tokio::test]
    async fn posts_json_and_reads_the_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; 4096];
            let mut n = 0;
            while !String::from_utf8_lossy(&got[..n]).contains("{\"a\":1}") {
                n += s.read(&mut got[n..]).await.unwrap();
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&got[..n]).to_string()
        });
        let status = post_json(&format!("http://{addr}/hook"), "{\"a\":1}")
            .await
            .unwrap();
        assert_eq!(status, 204);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"));
        assert!(request.contains("Content-Type: application/json"));
        assert!(
            post_json("https://example.invalid/", "{}")
                .await
                .unwrap_err()
                .contains("only http://")
        );
    }
}
