//! `[alerts]`: how missed-call notices reach enterprises.
//!
//! A notice is written to a persisted outbox first, then delivered (webhook or SMS) with
//! retries and backoff until it succeeds or `max_attempts` is used up, so a restart or an
//! enterprise's server being down does not lose it.
//!
//! Webhooks go over HTTP or HTTPS; an HTTPS receiver's certificate is checked against the
//! system's trusted roots and, for an enterprise with a private certificate authority,
//! the certificates in `ca_file`. Like the media paths, a relative `ca_file` is resolved
//! against the configuration file's directory; the file itself is read by the daemon
//! (at start and at each reload), not here.

use std::path::{Path, PathBuf};
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertConfig {
    /// How long one webhook request may take before it counts as failed, connecting
    /// included; 1 ms to 60 s.
    pub webhook_timeout: Duration,
    /// Delivery attempts per notice, the first included; 1 to 100.
    pub max_attempts: u32,
    /// PEM certificates trusted, besides the system's roots, to sign `https://`
    /// receivers' certificates (a private certificate authority); resolved against the
    /// configuration file's directory.
    pub ca_file: Option<PathBuf>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook_timeout: Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            ca_file: None,
        }
    }
}

/// `[alerts]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [alerts] table")]
pub(crate) struct RawAlerts {
    webhook_timeout_ms: Option<Spanned<u64>>,
    max_attempts: Option<Spanned<u64>>,
    ca_file: Option<Spanned<String>>,
}

/// The validation pass for `[alerts]`; `raw` is `None` when the file has no `[alerts]`.
/// `base_dir` is the configuration file's directory.
pub(crate) fn validate(
    raw: Option<Spanned<RawAlerts>>,
    base_dir: &Path,
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
        ca_file: raw
            .ca_file
            .as_ref()
            .map(|written| ca_file(written, base_dir, diagnostics)),
    }
}

/// `ca_file`: a file name (not a directory), resolved against `base_dir`.
fn ca_file(written: &Spanned<String>, base_dir: &Path, diagnostics: &mut Diagnostics) -> PathBuf {
    let text = written.get_ref();
    let problem = if text.trim().is_empty() {
        Some("must not be empty; remove the setting to trust the system's roots only".to_owned())
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        Some(format!(
            "{text:?} names a directory; give a PEM file of CA certificates, e.g. \"private-ca.pem\""
        ))
    } else {
        None
    };
    if let Some(problem) = problem {
        diagnostics.report(Some(written.span()), "alerts.ca_file", problem);
    }
    base_dir.join(text)
}
