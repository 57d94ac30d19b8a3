//! `[api]`: the admin API's listener (the enterprises' backend and the operator's).
//!
//! The API runs only when the file has an `[api]` section: a node that is only a
//! signalling node (or a test daemon) opens no HTTP port. It serves plain HTTP on
//! loopback by default, and HTTPS (rustls) when `tls_certificate` and
//! `tls_private_key` name PEM files; a relative path is resolved against the
//! configuration file's directory, like the media paths.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Serve HTTPS with this certificate chain and key; plain HTTP when `None`.
    pub tls: Option<ApiTls>,
}

/// The API's certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTls {
    /// The server certificate first, then any intermediates.
    pub certificate: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: DEFAULT_API_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            session_lifetime: Duration::from_secs(DEFAULT_SESSION_HOURS * 3600),
            tls: None,
        }
    }
}

/// `[api]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [api] table")]
pub(crate) struct RawApi {
    listen: Option<Spanned<String>>,
    session_hours: Option<Spanned<u64>>,
    tls_certificate: Option<Spanned<String>>,
    tls_private_key: Option<Spanned<String>>,
}

/// The validation pass for `[api]`: `None` when the file has none (no API).
/// `base_dir` is the configuration file's directory.
pub(crate) fn validate(
    raw: Option<Spanned<RawApi>>,
    base_dir: &Path,
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
    let certificate = raw
        .tls_certificate
        .as_ref()
        .map(|written| pem_file(written, "api.tls_certificate", base_dir, diagnostics));
    let private_key = raw
        .tls_private_key
        .as_ref()
        .map(|written| pem_file(written, "api.tls_private_key", base_dir, diagnostics));
    match (certificate, private_key) {
        (Some(certificate), Some(private_key)) => {
            api.tls = Some(ApiTls {
                certificate,
                private_key,
            })
        }
        (None, None) => {}
        (Some(_), None) => diagnostics.report(
            raw.tls_certificate.as_ref().map(Spanned::span),
            "api.tls_private_key",
            "is needed with tls_certificate: HTTPS needs the certificate and its key",
        ),
        (None, Some(_)) => diagnostics.report(
            raw.tls_private_key.as_ref().map(Spanned::span),
            "api.tls_certificate",
            "is needed with tls_private_key: HTTPS needs the certificate and its key",
        ),
    }
    Some(api)
}

/// A PEM file's name, resolved against `base_dir`. Whether it reads as a certificate
/// or a key is checked when the daemon starts (a clear error, and no start).
fn pem_file(
    written: &Spanned<String>,
    field: &str,
    base_dir: &Path,
    diagnostics: &mut Diagnostics,
) -> PathBuf {
    let text = written.get_ref();
    let problem = if text.trim().is_empty() {
        Some("must name a PEM file; remove both tls_ settings to serve plain HTTP".to_owned())
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
        Some(format!("{text:?} names a directory; give a PEM file"))
    } else {
        None
    };
    if let Some(problem) = problem {
        diagnostics.report(Some(written.span()), field, problem);
    }
    base_dir.join(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> (Option<ApiConfig>, Vec<String>) {
        let raw: Spanned<RawApi> = toml::from_str(text).expect("an [api] table");
        let mut diagnostics = Diagnostics::new(crate::diagnostics::Source::new("sihai.toml", text));
        let api = validate(Some(raw), Path::new("/etc/sihai"), &mut diagnostics);
        let problems = match diagnostics.finish(Some(())) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.to_string().lines().map(str::to_owned).collect(),
        };
        (api, problems)
    }

    #[test]
    fn tls_files_resolve_against_the_configuration_directory() {
        let (api, problems) = parse(
            "tls_certificate = \"tls/api.pem\"\ntls_private_key = \"/srv/keys/api-key.pem\"\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let tls = api.and_then(|a| a.tls).expect("TLS settings");
        assert_eq!(tls.certificate, Path::new("/etc/sihai/tls/api.pem"));
        assert_eq!(tls.private_key, Path::new("/srv/keys/api-key.pem"));
        let (plain, _) = parse("listen = \"127.0.0.1:8080\"\n");
        assert_eq!(plain.and_then(|a| a.tls), None);
    }

    #[test]
    fn a_certificate_without_its_key_is_refused_with_the_missing_field() {
        let (_, problems) = parse("tls_certificate = \"api.pem\"\n");
        assert!(
            problems.iter().any(|p| p.contains("api.tls_private_key")),
            "{problems:?}"
        );
        let (_, problems) = parse("tls_private_key = \"key.pem\"\n");
        assert!(
            problems.iter().any(|p| p.contains("api.tls_certificate")),
            "{problems:?}"
        );
        let (_, problems) = parse("tls_certificate = \"\"\ntls_private_key = \"keys/\"\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
