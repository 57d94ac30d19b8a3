//! `[store]`: where call records, balances and the alert outbox are kept.
//!
//! The embedded default is one SQLite file. Writes are batched: a call's record is
//! queued when the call ends and committed with the others queued in the same interval,
//! so one fsync serves many calls.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check;
use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "store";

const DEFAULT_SQLITE: &str = "var/sihai.db";
const DEFAULT_COMMIT_INTERVAL_MS: u64 = 50;
/// A record is durable at most this long after its call ends.
const MAX_COMMIT_INTERVAL_MS: u64 = 5_000;

/// The `[store]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The SQLite database file; a relative path is relative to the daemon's working
    /// directory. Never empty.
    pub sqlite: PathBuf,
    /// How long writes are batched before one commit; 1 ms to 5 s.
    pub commit_interval: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sqlite: PathBuf::from(DEFAULT_SQLITE),
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
        }
    }
}

/// `[store]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [store] table")]
pub(crate) struct RawStore {
    sqlite: Option<Spanned<String>>,
    commit_interval_ms: Option<Spanned<u64>>,
}

/// The validation pass for `[store]`; `raw` is `None` when the file has no `[store]`.
pub(crate) fn validate(
    raw: Option<Spanned<RawStore>>,
    diagnostics: &mut Diagnostics,
) -> StoreConfig {
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return StoreConfig::default();
    };
    let mut store = StoreConfig::default();
    if let Some(sqlite) = raw.sqlite {
        let text = sqlite.get_ref();
        if text.trim().is_empty() {
            diagnostics.report(
                Some(sqlite.span()),
                "store.sqlite",
                format!(
                    "must not be empty; remove the setting to use the default {DEFAULT_SQLITE:?}"
                ),
            );
        } else if text.chars().any(char::is_control) {
            diagnostics.report(
                Some(sqlite.span()),
                "store.sqlite",
                "must not contain control characters",
            );
        } else if text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            diagnostics.report(
                Some(sqlite.span()),
                "store.sqlite",
                format!(
                    "{text:?} names a directory; give the database file, e.g. {DEFAULT_SQLITE:?}"
                ),
            );
        }
        store.sqlite = PathBuf::from(sqlite.into_inner());
    }
    store.commit_interval = check::millis(
        raw.commit_interval_ms.as_ref(),
        DEFAULT_COMMIT_INTERVAL_MS,
        1..=MAX_COMMIT_INTERVAL_MS,
        || "store.commit_interval_ms".to_owned(),
        diagnostics,
    );
    store
}
