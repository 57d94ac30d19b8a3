//! The CRM lookups (来电弹屏) the call core asks for, done off the event loop.
//!
//! Each [`CrmLookupRequest`] is one `GET url?caller=<number>&number=<400 number>` on the
//! webhooks' HTTP client (rustls, the same trust roots, no redirects, no proxy), given
//! up after the enterprise's timeout. The answer comes back through
//! [`CrmLookups::recv`] to [`Core::on_crm_answer`]; the core holds the call on its own
//! timer, so a lookup that never comes back delays nothing beyond the timeout. Any
//! problem (connection, status other than 200 or 404, a body that is not the JSON
//! object documented in `config/sihai.toml`, a body over 16 KiB) is
//! [`CrmAnswer::Failed`]: the phones ring with the plain number.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_call::b2bua::{CallerIdentity, CrmAnswer, CrmLookupRequest};
use sihai_config::Config;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, error, warn};

use crate::core::Core;

/// Lookups in flight at once: past it (a CRM slower than calls arrive) a call does not
/// queue behind the others, it rings at once with the number.
const MAX_IN_FLIGHT: usize = 512;
/// A caller's name and id fit in far less; a larger body is not a lookup answer.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Connecting can take no longer than the longest lookup timeout allowed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The HTTP client and where answers come back to the event loop.
pub struct CrmLookups {
    /// `None` when no client could be built (a broken TLS set-up): every lookup fails
    /// at once.
    client: Option<reqwest::Client>,
    in_flight: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<(u64, CrmAnswer)>,
    rx: mpsc::UnboundedReceiver<(u64, CrmAnswer)>,
}

impl CrmLookups {
    /// Builds the client with the webhooks' trust settings (`[alerts] ca_file`); a CA
    /// file that cannot be used is reported and the system's roots are used.
    pub async fn start(config: &Config) -> CrmLookups {
        let ca_file = config.alerts.ca_file.clone();
        let client = match crate::alerts::client_trusting(ca_file.clone(), CONNECT_TIMEOUT).await {
            Ok(client) => Some(client),
            Err(err) if ca_file.is_some() => {
                error!(
                    "[alerts] ca_file: {err}; https:// CRM lookups are checked against the system's roots only"
                );
                crate::alerts::client_trusting(None, CONNECT_TIMEOUT)
                    .await
                    .map_err(|err| error!(%err, "cannot set up the CRM lookup client; callers ring without names"))
                    .ok()
            }
            Err(err) => {
                error!(%err, "cannot set up the CRM lookup client; callers ring without names");
                None
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        CrmLookups {
            client,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            tx,
            rx,
        }
    }

    /// The next answer.
    pub async fn recv(&mut self) -> Option<(u64, CrmAnswer)> {
        self.rx.recv().await
    }
}

/// Starts every lookup the core has queued, each on its own task.
pub fn serve(core: &mut Core, lookups: &CrmLookups) {
    while let Some(request) = core.poll_crm_lookup() {
        let permit = lookups.in_flight.clone().try_acquire_owned();
        let (Some(client), Ok(permit)) = (lookups.client.clone(), permit) else {
            warn!(
                caller = %request.caller,
                "CRM lookup not started (too many in flight, or no HTTP client); ringing with the number"
            );
            core.on_crm_answer(
                Instant::now(),
                Timestamp::now(),
                request.lookup,
                CrmAnswer::Failed,
            );
            continue;
        };
        let answers = lookups.tx.clone();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(request.timeout, ask(&client, &request)).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(problem)) => {
                    debug!(url = %request.url, %problem, "CRM lookup failed");
                    CrmAnswer::Failed
                }
                Err(_) => {
                    debug!(url = %request.url, "CRM lookup timed out");
                    CrmAnswer::Failed
                }
            };
            drop(permit);
            // The loop has stopped: the call is gone with it.
            let _ = answers.send((request.lookup, answer));
        });
    }
}

/// One lookup, without its timeout.
async fn ask(client: &reqwest::Client, request: &CrmLookupRequest) -> Result<CrmAnswer, String> {
    let url = lookup_url(&request.url, &request.caller, &request.number);
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| err.to_string())?;
    match response.status().as_u16() {
        200 => {}
        404 => return Ok(CrmAnswer::Unknown),
        status => return Err(format!("status {status}")),
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| err.to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("body over {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    parse_answer(&body)
}

/// The CRM's JSON: an object with optional `name` and `customer_id` (a string, or a
/// number for CRMs with numeric ids); an object with neither is "not a customer".
fn parse_answer(body: &[u8]) -> Result<CrmAnswer, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| format!("not JSON: {err}"))?;
    let object = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_owned())?;
    let name = object.get("name").and_then(serde_json::Value::as_str);
    let customer_id = match object.get("customer_id") {
        Some(serde_json::Value::String(id)) => Some(id.clone()),
        Some(serde_json::Value::Number(id)) => Some(id.to_string()),
        _ => None,
    };
    Ok(match CallerIdentity::new(name, customer_id.as_deref()) {
        Some(identity) => CrmAnswer::Known(identity),
        None => CrmAnswer::Unknown,
    })
}

/// `url` with `caller` and `number` added to its query, percent-encoded.
fn lookup_url(url: &str, caller: &str, number: &str) -> String {
    let separator = match url.find('?') {
        None => "?",
        Some(at) if at + 1 == url.len() || url.ends_with('&') => "",
        Some(_) => "&",
    };
    format!(
        "{url}{separator}caller={}&number={}",
        percent_encode(caller),
        percent_encode(number)
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_appended_and_encoded() {
        assert_eq!(
            lookup_url("http://crm/who", "+8613800138000", "4001234567"),
            "http://crm/who?caller=%2B8613800138000&number=4001234567"
        );
        assert_eq!(
            lookup_url("http://crm/who?key=1", "1", "2"),
            "http://crm/who?key=1&caller=1&number=2"
        );
        assert_eq!(
            lookup_url("http://crm/who?", "1", "2"),
            "http://crm/who?caller=1&number=2"
        );
    }

    #[test]
    fn answers_are_parsed_and_garbage_fails() {
        assert_eq!(
            parse_answer("{\"name\": \"张三\", \"customer_id\": \"C1024\"}".as_bytes()),
            Ok(CrmAnswer::Known(
                CallerIdentity::new(Some("张三"), Some("C1024")).expect("usable")
            ))
        );
        assert_eq!(
            parse_answer(b"{\"customer_id\": 1024, \"extra\": [1]}"),
            Ok(CrmAnswer::Known(
                CallerIdentity::new(None, Some("1024")).expect("usable")
            ))
        );
        assert_eq!(parse_answer(b"{}"), Ok(CrmAnswer::Unknown));
        assert_eq!(parse_answer(b"{\"name\": 7}"), Ok(CrmAnswer::Unknown));
        assert!(parse_answer(b"[\"x\"]").is_err());
        assert!(parse_answer(b"<html>").is_err());
    }
}
