//! `[alerts]`: how missed-call notices reach enterprises.
//!
//! A notice is written to a persisted outbox first, then delivered (webhook or SMS) with
//! retries and backoff until it succeeds or `max_attempts` is used up, so a restart or an
//! enterprise's server being down does not lose it.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check;
use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "alerts";

const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 3_000;
const MAX_WEBHOOK_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_MAX_ATTEMPTS: u32 = 8;
const MAX_ATTEMPTS: u32 = 100;

/// The `[alerts]` section, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertConfig {
    /// How long one webhook request may take before it counts as failed; 1 ms to 60 s.
    pub webhook_timeout: Duration,
    /// Delivery attempts per notice, the first included; 1 to 100.
    pub max_attempts: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook_timeout: Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// `[alerts]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [alerts] table")]
pub(crate) struct RawAlerts {
    webhook_timeout_ms: Option<Spanned<u64>>,
    max_attempts: Option<Spanned<u64>>,
}

/// The validation pass for `[alerts]`; `raw` is `None` when the file has no `[alerts]`.
pub(crate) fn validate(
    raw: Option<Spanned<RawAlerts>>,
    diagnostics: &mut Diagnostics,
) -> AlertConfig {
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return AlertConfig::default();
    };
    AlertConfig {
        webhook_timeout: check::millis(
            raw.webhook_timeout_ms.as_ref(),
            DEFAULT_WEBHOOK_TIMEOUT_MS,
            1..=MAX_WEBHOOK_TIMEOUT_MS,
            || "alerts.webhook_timeout_ms".to_owned(),
            diagnostics,
        ),
        max_attempts: check::bounded_u32(
            raw.max_attempts.as_ref(),
            DEFAULT_MAX_ATTEMPTS,
            1..=MAX_ATTEMPTS,
            || "alerts.max_attempts".to_owned(),
            diagnostics,
        ),
    }
}
