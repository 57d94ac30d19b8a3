//! `[[enterprise]]`: the 400-number subscribers.
//!
//! Numbers, plans and groups each belong to one enterprise (by `id`), and may only use
//! plans and groups of the same enterprise. The enterprise also says where its
//! missed-call notices go, how long its call recordings are kept, from which networks
//! its users may use the admin API, whether the operator has suspended it, and which
//! CRM tells the phones who is calling.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use sihai_billing::AccountPolicy;
use sihai_rating::Tariff;
use toml::Spanned;

use crate::billing::{self, RawBilling};
use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;
use crate::trunk::IpNet;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "enterprise";

/// Phone numbers that receive missed-call SMS: digits, this long.
const CONTACT_DIGITS: std::ops::RangeInclusive<usize> = 5..=20;
/// How long call recordings are kept when the enterprise does not say.
pub const DEFAULT_RECORDING_RETENTION_DAYS: u32 = 180;
/// Ten years: longer is an archive, not the switch's job.
const MAX_RECORDING_RETENTION_DAYS: u32 = 3_650;
/// A signing secret shorter than this is guessable; 16 random characters are ~95 bits.
pub const MIN_ALERT_SECRET_CHARS: usize = 16;
/// HMAC-SHA256 hashes a longer key first: more adds nothing.
const MAX_ALERT_SECRET_CHARS: usize = 256;
/// How long a call may wait for the CRM when the enterprise does not say: short enough
/// that a caller does not notice, long enough for a CRM in the same city.
pub const DEFAULT_CRM_TIMEOUT_MS: u32 = 300;
/// Below 50 ms no CRM across a network answers; above 2 s the caller hears the delay.
const CRM_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 50..=2_000;

/// The key an enterprise's webhook notices are signed with. Its `Debug` does not show
/// it, so a logged configuration does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct AlertSecret(String);

impl AlertSecret {
    /// The secret as written in the file; for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AlertSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertSecret(..)")
    }
}

/// One enterprise, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    /// Unique; lowercase ASCII letters, digits, `_` and `-`.
    pub id: String,
    /// Display name, e.g. the registered company name.
    pub name: String,
    /// Missed-call notices are POSTed here: an `http://` or `https://` URL.
    pub alert_webhook: Option<String>,
    /// Phone numbers (digits) that get missed-call notices by SMS.
    pub alert_contacts: Vec<String>,
    /// When set, each webhook notice carries `X-Sihai-Signature: sha256=<hex>`, the
    /// HMAC-SHA256 of its body with this key; 16 to 256 characters, no control characters.
    pub alert_secret: Option<AlertSecret>,
    /// Call recordings of this enterprise's numbers are deleted after this many days;
    /// 1 to 3650, default [`DEFAULT_RECORDING_RETENTION_DAYS`].
    pub recording_retention_days: u32,
    /// How sihai bills the enterprise's calls; `None` = not billed by sihai (no
    /// tariff: calls are admitted without a balance check and cost nothing here).
    pub billing: Option<EnterpriseBilling>,
    /// The networks the enterprise's admin API users (sessions, API keys, logins) may
    /// come from; empty = anywhere. Operators are not bound by it.
    pub api_sources: Vec<IpNet>,
    /// Suspended by the operator: every number of the enterprise answers as a number
    /// with `status = "suspended"` does, while each number keeps its own status, so
    /// resuming (false, the default) restores every number exactly as it was.
    pub suspended: bool,
    /// Where calls to the enterprise's numbers ask for the caller's name before the
    /// phones ring (来电弹屏); `None` = no lookup, no delay.
    pub crm: Option<CrmLookup>,
}

/// The enterprise's CRM, asked `GET url?caller=<number>&number=<400 number>` when a call
/// is about to ring its phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmLookup {
    /// `crm_lookup_url`: an `http://` or `https://` URL.
    pub url: String,
    /// `crm_timeout_ms`: the longest a call waits for the answer (50 to 2000 ms,
    /// default [`DEFAULT_CRM_TIMEOUT_MS`]); then the phones ring without it.
    pub timeout: std::time::Duration,
}

/// A billed enterprise: the tariff its numbers are rated by (unless a number names its
/// own) and its account's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseBilling {
    pub tariff: Arc<Tariff>,
    /// `[billing]`'s policy with this enterprise's `[enterprise.billing]` keys applied.
    pub policy: AccountPolicy,
}

/// One `[[enterprise]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[enterprise]] table")]
pub(crate) struct RawEnterprise {
    id: Spanned<String>,
    name: Spanned<String>,
    alert_webhook: Option<Spanned<String>>,
    alert_contacts: Option<Vec<Spanned<String>>>,
    alert_secret: Option<Spanned<String>>,
    recording_retention_days: Option<Spanned<u64>>,
    tariff: Option<Spanned<String>>,
    billing: Option<Spanned<RawBilling>>,
    api_sources: Option<Vec<Spanned<String>>>,
    suspended: Option<Spanned<bool>>,
    crm_lookup_url: Option<Spanned<String>>,
    crm_timeout_ms: Option<Spanned<u64>>,
}

/// What the enterprises refer to.
pub(crate) struct Catalogs<'c> {
    pub tariffs: &'c Catalog,
    pub tariff_by_name: &'c HashMap<&'c str, &'c Arc<Tariff>>,
    /// `[billing]`'s policy, which `[enterprise.billing]` overrides.
    pub policy: &'c AccountPolicy,
}

/// What the enterprise pass hands on.
pub(crate) struct Validated {
    pub enterprises: Vec<Enterprise>,
    pub ids: Catalog,
    /// Enterprises that name no tariff: not billed, so their numbers may not name one.
    /// (One naming a tariff that does not resolve is not in it: its error is reported
    /// once, at the enterprise.)
    pub unbilled: HashSet<String>,
}

/// The validation pass for `[[enterprise]]`: the enterprises, and the catalog of their
/// ids that other sections refer to.
pub(crate) fn validate(
    raw: ArraySection<RawEnterprise>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> Validated {
    let mut ids = Catalog::new(SECTION, "id", &raw);
    let mut enterprises = Vec::with_capacity(raw.entries.len());
    let mut unbilled = HashSet::new();
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry = entry.get_ref();
        let id = entry.id.get_ref();
        if is_id(id) {
            ids.declare(id, entry.id.span(), field.clone(), None, diagnostics);
        } else {
            diagnostics.report(
                Some(entry.id.span()),
                format!("{field}.id"),
                format!(
                    "invalid enterprise id {id:?}: use lowercase letters a-z, digits, \"_\" and \"-\", e.g. \"acme\""
                ),
            );
        }
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        if let Some(webhook) = &entry.alert_webhook
            && let Some(problem) = webhook_problem(webhook.get_ref())
        {
            diagnostics.report(
                Some(webhook.span()),
                format!("{field}.alert_webhook"),
                format!("invalid webhook URL {:?}: {problem}", webhook.get_ref()),
            );
        }
        if let Some(secret) = &entry.alert_secret
            && let Some(problem) = secret_problem(secret.get_ref())
        {
            diagnostics.report(
                Some(secret.span()),
                format!("{field}.alert_secret"),
                problem,
            );
        }
        let contacts = entry.alert_contacts.as_deref().unwrap_or_default();
        for (position, contact) in contacts.iter().enumerate() {
            if !check::is_digits(contact.get_ref(), CONTACT_DIGITS) {
                diagnostics.report(
                    Some(contact.span()),
                    format!("{field}.alert_contacts[{position}]"),
                    format!(
                        "invalid contact {:?}: a phone number for SMS notices, 5 to 20 digits, e.g. \"13800138000\"",
                        contact.get_ref()
                    ),
                );
            }
        }
        let billing = validate_billing(entry, &field, catalogs, diagnostics);
        let crm = validate_crm(entry, &field, diagnostics);
        let api_sources = validate_api_sources(entry, &field, diagnostics);
        if entry.tariff.is_none() {
            unbilled.insert(id.clone());
        }
        enterprises.push(Enterprise {
            id: id.clone(),
            name: entry.name.get_ref().clone(),
            alert_webhook: entry.alert_webhook.as_ref().map(|w| w.get_ref().clone()),
            alert_contacts: contacts.iter().map(|c| c.get_ref().clone()).collect(),
            alert_secret: entry
                .alert_secret
                .as_ref()
                .map(|s| AlertSecret(s.get_ref().clone())),
            recording_retention_days: check::bounded_u32(
                entry.recording_retention_days.as_ref(),
                DEFAULT_RECORDING_RETENTION_DAYS,
                1..=MAX_RECORDING_RETENTION_DAYS,
                || format!("{field}.recording_retention_days"),
                diagnostics,
            ),
            billing,
            api_sources,
            suspended: entry.suspended.as_ref().is_some_and(|s| *s.get_ref()),
            crm,
        });
    }
    ids.add_malformed(&raw, diagnostics);
    Validated {
        enterprises,
        ids,
        unbilled,
    }
}

/// The enterprise's tariff and policy; `None` when it names no tariff (not billed) or
/// its tariff did not resolve (reported).
fn validate_billing(
    entry: &RawEnterprise,
    field: &str,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<EnterpriseBilling> {
    let billing_field = format!("{field}.billing");
    let Some(tariff) = &entry.tariff else {
        if let Some(raw) = &entry.billing {
            diagnostics.report(
                Some(raw.span()),
                billing_field,
                "this enterprise names no tariff, so sihai does not bill it and these \
                 settings would never apply; add tariff = \"...\" naming a [[tariff]], or \
                 remove [enterprise.billing]",
            );
        }
        return None;
    };
    let policy = match &entry.billing {
        Some(raw) => {
            billing::override_policy(catalogs.policy, raw.get_ref(), &billing_field, diagnostics)
        }
        None => catalogs.policy.clone(),
    };
    if !catalogs
        .tariffs
        .check_reference(tariff, format!("{field}.tariff"), None, diagnostics)
    {
        return None;
    }
    // A declared tariff that failed its own validation has been reported there.
    let tariff = catalogs.tariff_by_name.get(tariff.get_ref().as_str())?;
    Some(EnterpriseBilling {
        tariff: Arc::clone(tariff),
        policy,
    })
}

/// The enterprise's CRM lookup; `None` when it has none (a timeout without a URL is
/// reported: it would never apply) or its URL is invalid (reported).
fn validate_crm(
    entry: &RawEnterprise,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<CrmLookup> {
    let timeout_ms = check::bounded_u32(
        entry.crm_timeout_ms.as_ref(),
        DEFAULT_CRM_TIMEOUT_MS,
        CRM_TIMEOUT_MS,
        || format!("{field}.crm_timeout_ms"),
        diagnostics,
    );
    let Some(url) = &entry.crm_lookup_url else {
        if let Some(timeout) = &entry.crm_timeout_ms {
            diagnostics.report(
                Some(timeout.span()),
                format!("{field}.crm_timeout_ms"),
                "this enterprise has no crm_lookup_url, so this timeout would never apply; \
                 add crm_lookup_url = \"https://...\" or remove crm_timeout_ms",
            );
        }
        return None;
    };
    if let Some(problem) = webhook_problem(url.get_ref()) {
        diagnostics.report(
            Some(url.span()),
            format!("{field}.crm_lookup_url"),
            format!("invalid CRM lookup URL {:?}: {problem}", url.get_ref()),
        );
        return None;
    }
    if url.get_ref().contains('#') {
        // The query sihai appends would land in the fragment, which is never sent.
        diagnostics.report(
            Some(url.span()),
            format!("{field}.crm_lookup_url"),
            format!(
                "invalid CRM lookup URL {:?}: must not contain a fragment (#...)",
                url.get_ref()
            ),
        );
        return None;
    }
    Some(CrmLookup {
        url: url.get_ref().clone(),
        timeout: std::time::Duration::from_millis(u64::from(timeout_ms)),
    })
}

/// The networks of `api_sources`, each checked as a trunk's `sources` are (an address
/// or a CIDR network without host bits).
fn validate_api_sources(
    entry: &RawEnterprise,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<IpNet> {
    let raw = entry.api_sources.as_deref().unwrap_or_default();
    let mut networks = Vec::with_capacity(raw.len());
    for (position, source) in raw.iter().enumerate() {
        match source.get_ref().parse::<IpNet>() {
            Ok(network) => networks.push(network),
            Err(error) => diagnostics.report(
                Some(source.span()),
                format!("{field}.api_sources[{position}]"),
                format!("invalid source network {:?}: {error}", source.get_ref()),
            ),
        }
    }
    networks
}

/// `[a-z0-9_-]+`.
fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'))
}

/// Why `secret` cannot sign notices, if it cannot. The message never repeats it.
fn secret_problem(secret: &str) -> Option<String> {
    let chars = secret.chars().count();
    if chars < MIN_ALERT_SECRET_CHARS {
        Some(format!(
            "too short ({chars} characters); use at least {MIN_ALERT_SECRET_CHARS} random characters, e.g. the output of `openssl rand -hex 32`"
        ))
    } else if chars > MAX_ALERT_SECRET_CHARS {
        Some(format!(
            "too long ({chars} characters); use at most {MAX_ALERT_SECRET_CHARS}"
        ))
    } else if secret.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    }
}

/// Why `url` is not an absolute `http://` or `https://` URL with a host, if it is not.
fn webhook_problem(url: &str) -> Option<&'static str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Some("must start with http:// or https://");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(host, _)| host),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Some("has no host, e.g. \"https://crm.example.com/missed-calls\"");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["acme", "a", "acme-sh_2"] {
            assert!(is_id(ok), "{ok}");
        }
        for bad in ["", "Acme", "ac me", "上海", "a.b"] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn secrets() {
        assert_eq!(secret_problem("0123456789abcdef"), None);
        assert_eq!(secret_problem("长长长长长长长长长长长长长长长长"), None);
        assert!(secret_problem("0123456789abcde").is_some_and(|p| p.contains("15 characters")));
        assert!(secret_problem(&"x".repeat(257)).is_some());
        assert!(secret_problem("0123456789abcdef\n").is_some());
        assert_eq!(
            format!("{:?}", AlertSecret("0123456789abcdef".into())),
            "AlertSecret(..)"
        );
    }

    #[test]
    fn webhooks() {
        for ok in [
            "http://127.0.0.1:8089/missed-calls",
            "https://crm.example.com",
            "HTTPS://crm.example.com/x?y=1",
            "http://[::1]:8080/",
            "http://user@host/",
        ] {
            assert_eq!(webhook_problem(ok), None, "{ok}");
        }
        for bad in [
            "ftp://x",
            "crm.example.com",
            "http://",
            "http:///path",
            "http://:80/",
            "http://a b/",
            "http://[::1/",
        ] {
            assert!(webhook_problem(bad).is_some(), "{bad}");
        }
    }
}
