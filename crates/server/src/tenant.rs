//! Tenant data: the store is its system of record, the configuration file one door onto
//! it (`sihai apply` another, the admin API the next).
//!
//! The running configuration is assembled from two sources: the node's own settings
//! from the file, the tenant data from the store ([`Config::from_parts`], the same
//! checks as a whole file). The file's tenant sections are applied to the store when
//! the file changed since it last was (its digest is recorded with the revision it
//! produced), or seed an empty store: so the README's sample starts on an empty store
//! with one command, and an operator who edits the file and reloads sees the change as
//! before. An edit of the file never overwrites a change made since through another
//! door: the file is applied against the revision it last produced, and refused (the
//! store's data stays in force) when an entry it would change has changed since.

use std::path::Path;

use sihai_config::{Config, ConfigErrors, tenant};
use sihai_store::{StoreError, TenantChange, TenantStore};
use thiserror::Error;

/// The name stored tenant data is reported under in configuration errors.
pub const STORE_ORIGIN: &str = "tenant data in the store";

#[derive(Debug, Error)]
pub enum TenantError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What became of the file's tenant sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDoor {
    /// The file's tenant data is what it last applied: nothing to do.
    Unchanged,
    /// Applied: `changed` entries added, replaced or removed, now at `revision`.
    Applied { changed: usize, revision: i64 },
    /// Not applied, and why; the store's tenant data stays in force.
    Refused(String),
}

/// The name a file's applies are recorded under: its canonical path, so that the daemon
/// and `sihai apply` agree whatever spelling each was given.
pub fn source_key(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Applies the tenant sections of the configuration file `origin` (its `text`; `origin`
/// as [`source_key`] names it) to the store if they changed since the file last did
/// (see the module's documentation). The text must already be a valid configuration.
pub fn sync_file(
    store: &dyn TenantStore,
    origin: &str,
    text: &str,
) -> Result<FileDoor, TenantError> {
    let entries = tenant::split(text, origin)?;
    let digest = tenant::digest(&entries);
    let last = store.tenant_source(origin)?;
    if last.as_ref().is_some_and(|(d, _)| *d == digest) {
        return Ok(FileDoor::Unchanged);
    }
    let data = store.tenant()?;
    let current: Vec<_> = data.entries.into_iter().map(|s| s.entry).collect();
    let base_revision = match last {
        Some((_, revision)) => Some(revision),
        // An empty store takes the file as its first tenant data.
        None if current.is_empty() => None,
        None => {
            return Ok(FileDoor::Refused(format!(
                "the store's tenant data did not come from {origin}: apply the file with \
                 `sihai apply {origin}` (it shows what would change) instead"
            )));
        }
    };
    let diff = tenant::diff(&current, &entries, None).map_err(|message| ConfigErrors {
        errors: vec![sihai_config::ConfigError {
            file: origin.to_owned(),
            line: 1,
            column: 1,
            field: String::new(),
            message,
        }],
    })?;
    let change = TenantChange {
        upserts: diff.upserts,
        removals: diff.removals,
        base_revision,
        source: Some((origin.to_owned(), digest)),
        actor: format!("configuration file {origin}"),
        actor_source: None,
        at: jiff::Timestamp::now(),
    };
    match store.apply_tenant(change) {
        Ok(applied) => Ok(FileDoor::Applied {
            changed: applied.changed,
            revision: applied.revision,
        }),
        Err(StoreError::StaleTenant { changed, .. }) => Ok(FileDoor::Refused(format!(
            "changed since the file was last applied, through another door: {}; \
             export, merge and `sihai apply` instead",
            changed
                .iter()
                .map(|(section, key, revision)| format!("{section} {key} (revision {revision})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        Err(other) => Err(other.into()),
    }
}

/// The configuration to run: the file at `path`, its tenant sections synced to the
/// store first, then node settings from the file and tenant data from the store. With
/// `running`, a replacement for it: restart-only settings may not change.
pub fn prepare(
    store: &dyn TenantStore,
    path: &Path,
    running: Option<&Config>,
) -> Result<(Config, FileDoor, i64), TenantError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TenantError::Read {
        path: origin.clone(),
        source,
    })?;
    // The file is validated whole first, with its own tenant sections: a file with
    // errors changes nothing, in the store or in the running configuration.
    Config::from_str(&text, &origin)?;
    let door = sync_file(store, &source_key(path), &text)?;
    let data = store.tenant()?;
    let entries: Vec<_> = data.entries.into_iter().map(|s| s.entry).collect();
    let tenant_text = tenant::render(&entries);
    let config = match running {
        None => Config::from_parts(&text, &origin, &tenant_text, STORE_ORIGIN)?,
        Some(running) => {
            Config::reload_from_parts(&text, &origin, &tenant_text, STORE_ORIGIN, running)?
        }
    };
    Ok((config, door, data.revision))
}
