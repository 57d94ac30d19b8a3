//! `[api]`: the admin API's listener (the enterprises' backend and the operator's).
//!
//! The API runs only when the file has an `[api]` section: a node that is only a
//! signalling node (or a test daemon) opens no HTTP port. It serves plain HTTP on
//! loopback by default; anything else belongs behind a TLS-terminating proxy until the
//! API serves TLS itself.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "api";

/// Where the API listens when `[api]` names no `listen`.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_SESSION_HOURS: u64 = 12;
const MAX_SESSION_HOURS: u64 = 24 * 30;

/// The `[api]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The TCP address the API listens on.
    pub listen: SocketAddr,
    /// How long a browser session lasts after its login (1 hour to 30 days).
    pub session_lifetime: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: DEFAULT_API_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            session_lifetime: Duration::from_secs(DEFAULT_SESSION_HOURS * 3600),
        }
    }
}

/// `[api]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [api] table")]
pub(crate) struct RawApi {
    listen: Option<Spanned<String>>,
    session_hours: Option<Spanned<u64>>,
}

/// The validation pass for `[api]`: `None` when the file has none (no API).
pub(crate) fn validate(
    raw: Option<Spanned<RawApi>>,
    diagnostics: &mut Diagnostics,
) -> Option<ApiConfig> {
    let raw = raw?.into_inner();
    let mut api = ApiConfig::default();
    if let Some(listen) = raw.listen {
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(address) => api.listen = address,
            Err(_) => diagnostics.report(
                Some(listen.span()),
                "api.listen",
                format!(
                    "must be an IP address and port, e.g. {DEFAULT_API_LISTEN:?}, not {:?}",
                    listen.get_ref()
                ),
            ),
        }
    }
    if let Some(hours) = raw.session_hours {
        let value = *hours.get_ref();
        if (1..=MAX_SESSION_HOURS).contains(&value) {
            api.session_lifetime = Duration::from_secs(value * 3600);
        } else {
            diagnostics.report(
                Some(hours.span()),
                "api.session_hours",
                format!("must be 1 to {MAX_SESSION_HOURS} hours, not {value}"),
            );
        }
    }
    Some(api)
}
