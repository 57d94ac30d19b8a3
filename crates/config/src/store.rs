//! `[store]`: where call records, balances and the alert outbox are kept.
//!
//! The embedded default is one SQLite file, for a single node. Several nodes share one
//! PostgreSQL database instead: `url = "postgres://…"` and a `node` name unique among
//! them. Writes are batched: a call's record is queued when the call ends and committed
//! with the others queued in the same interval, so one commit serves many calls.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check;
use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "store";

const DEFAULT_SQLITE: &str = "var/sihai.db";
const DEFAULT_SPOOL: &str = "var/spool";
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
    /// `Some`: everything is kept in this PostgreSQL database instead of `sqlite`.
    pub postgres: Option<PostgresStore>,
}

/// `[store] url = "postgres://…"`: the database several nodes share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresStore {
    /// `postgres://user:password@host:port/database` (or libpq's `key=value` form).
    pub url: String,
    /// This node's name, unique among the nodes sharing the database (letters, digits,
    /// `-`, `_`, `.`): its calls' reservations are kept under it, so that a node
    /// restarted after a crash settles its own calls and never another node's.
    pub node: String,
    /// Connections in the node's pool; 2 to 256.
    pub pool_size: usize,
    /// How long connecting, or waiting for a pooled connection, may take before the
    /// operation fails (a call waiting for its reservation is refused with 503); 100 ms
    /// to 30 s.
    pub connect_timeout: Duration,
    /// The node's own directory for the CDRs it could not commit while the database was
    /// unreachable, replayed when it is back or at the next start; a relative path is
    /// relative to the daemon's working directory. Never empty.
    pub spool: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            sqlite: PathBuf::from(DEFAULT_SQLITE),
            commit_interval: Duration::from_millis(DEFAULT_COMMIT_INTERVAL_MS),
            postgres: None,
        }
    }
}

/// `[store]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [store] table")]
pub(crate) struct RawStore {
    sqlite: Option<Spanned<String>>,
    commit_interval_ms: Option<Spanned<u64>>,
    url: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    pool_size: Option<Spanned<u64>>,
    connect_timeout_ms: Option<Spanned<u64>>,
    spool: Option<Spanned<String>>,
}

const DEFAULT_POOL_SIZE: u64 = 16;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 2_000;

/// The validation pass for `[store]`; `raw` is `None` when the file has no `[store]`.
pub(crate) fn validate(
    raw: Option<Spanned<RawStore>>,
    diagnostics: &mut Diagnostics,
) -> StoreConfig {
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return StoreConfig::default();
    };
    let mut store = StoreConfig {
        postgres: postgres(&raw, diagnostics),
        ..StoreConfig::default()
    };
    if let (Some(sqlite), Some(_)) = (&raw.sqlite, &store.postgres) {
        diagnostics.report(
            Some(sqlite.span()),
            "store.sqlite",
            "the store is on PostgreSQL (`url`): remove `sqlite`, or `url` to keep the SQLite file",
        );
    }
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

/// The PostgreSQL settings, when `url` is given; errors for PostgreSQL-only settings
/// without it.
fn postgres(raw: &RawStore, diagnostics: &mut Diagnostics) -> Option<PostgresStore> {
    let Some(url) = &raw.url else {
        for (field, span) in [
            ("store.node", raw.node.as_ref().map(Spanned::span)),
            ("store.pool_size", raw.pool_size.as_ref().map(Spanned::span)),
            (
                "store.connect_timeout_ms",
                raw.connect_timeout_ms.as_ref().map(Spanned::span),
            ),
            ("store.spool", raw.spool.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                diagnostics.report(
                    Some(span),
                    field,
                    "applies to a PostgreSQL store only: set `url = \"postgres://…\"` too, or remove it",
                );
            }
        }
        return None;
    };
    let text = url.get_ref().trim();
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        diagnostics.report(
            Some(url.span()),
            "store.url",
            "must be a PostgreSQL URL, e.g. \"postgres://sihai:secret@db.example:5432/sihai\"",
        );
    }
    let node = match &raw.node {
        None => {
            diagnostics.report(
                Some(url.span()),
                "store.node",
                "is required with `url`: a name for this node, unique among the nodes sharing the database, e.g. node = \"sh-1\"",
            );
            String::new()
        }
        Some(node) => {
            let text = node.get_ref();
            let valid = !text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid {
                diagnostics.report(
                    Some(node.span()),
                    "store.node",
                    "must be 1 to 64 letters, digits, '-', '_' or '.'",
                );
            }
            text.clone()
        }
    };
    let pool_size = check::bounded(
        raw.pool_size.as_ref(),
        DEFAULT_POOL_SIZE,
        2..=256,
        || "store.pool_size".to_owned(),
        diagnostics,
    ) as usize;
    let connect_timeout = check::millis(
        raw.connect_timeout_ms.as_ref(),
        DEFAULT_CONNECT_TIMEOUT_MS,
        100..=30_000,
        || "store.connect_timeout_ms".to_owned(),
        diagnostics,
    );
    let spool = match &raw.spool {
        None => PathBuf::from(DEFAULT_SPOOL),
        Some(spool) => {
            let text = spool.get_ref();
            if text.trim().is_empty() {
                diagnostics.report(
                    Some(spool.span()),
                    "store.spool",
                    format!(
                        "must not be empty; remove the setting to use the default {DEFAULT_SPOOL:?}"
                    ),
                );
            } else if text.chars().any(char::is_control) {
                diagnostics.report(
                    Some(spool.span()),
                    "store.spool",
                    "must not contain control characters",
                );
            }
            PathBuf::from(text)
        }
    };
    Some(PostgresStore {
        url: text.to_owned(),
        node,
        pool_size,
        connect_timeout,
        spool,
    })
}

#[cfg(test)]
mod tests {
    use crate::Config;

    /// The smallest valid node configuration, with `store` as its `[store]` section.
    fn with_store(store: &str) -> String {
        format!("[[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n\n{store}")
    }

    fn store_errors(text: &str) -> Vec<String> {
        match Config::from_str(&with_store(text), "t.toml") {
            Ok(_) => Vec::new(),
            Err(errors) => errors.errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_postgres_store_needs_a_node_name_and_a_postgres_url() {
        let config = Config::from_str(
            &with_store("[store]\nurl = \"postgres://sihai@127.0.0.1/sihai\"\nnode = \"sh-1\"\npool_size = 8\n"),
            "t.toml",
        )
        .expect("valid");
        let pg = config.store.postgres.expect("postgres");
        assert_eq!(
            (pg.url.as_str(), pg.node.as_str(), pg.pool_size),
            ("postgres://sihai@127.0.0.1/sihai", "sh-1", 8)
        );
        assert_eq!(pg.connect_timeout, std::time::Duration::from_secs(2));
        assert_eq!(pg.spool, std::path::PathBuf::from("var/spool"));
        let config = Config::from_str(
            &with_store("[store]\nurl = \"postgres://h/db\"\nnode = \"sh-1\"\nspool = \"/var/lib/sihai/spool\"\n"),
            "t.toml",
        )
        .expect("valid");
        assert_eq!(
            config.store.postgres.expect("postgres").spool,
            std::path::PathBuf::from("/var/lib/sihai/spool")
        );
        let errors =
            store_errors("[store]\nurl = \"postgres://h/db\"\nnode = \"a\"\nspool = \"\"\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("store.spool") && e.contains("empty")),
            "{errors:?}"
        );
        let errors = store_errors("[store]\nspool = \"var/spool\"\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("store.spool") && e.contains("PostgreSQL store only")),
            "{errors:?}"
        );

        let errors = store_errors("[store]\nurl = \"postgres://sihai@127.0.0.1/sihai\"\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("store.node") && e.contains("required")),
            "{errors:?}"
        );
        let errors = store_errors("[store]\nurl = \"mysql://x\"\nnode = \"a b\"\n");
        assert!(errors.iter().any(|e| e.contains("store.url")), "{errors:?}");
        assert!(
            errors.iter().any(|e| e.contains("store.node")),
            "{errors:?}"
        );
        let errors = store_errors("[store]\nnode = \"a\"\n");
        assert!(
            errors.iter().any(|e| e.contains("PostgreSQL store only")),
            "{errors:?}"
        );
        let errors =
            store_errors("[store]\nsqlite = \"x.db\"\nurl = \"postgres://h/db\"\nnode = \"a\"\n");
        assert!(
            errors.iter().any(|e| e.contains("store.sqlite")),
            "{errors:?}"
        );
    }
}
