//! `sihai export` and `sihai apply`: the store's tenant data as TOML, and a TOML file
//! of tenant data applied to the store in one transaction. A running daemon picks an
//! applied change up within a second (it watches the store's tenant revision).

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use sihai_config::{Config, tenant};
use sihai_server::tenant::source_key;
use sihai_store::{Store, StoreError, TenantChange};

/// The first line of an export: `# sihai export: revision 12` or
/// `# sihai export: revision 12, enterprise acme`.
const HEADER: &str = "# sihai export: revision ";

/// What an export's first line says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    revision: i64,
    enterprise: Option<String>,
}

fn parse_header(text: &str) -> Option<Header> {
    let line = text.lines().next()?.strip_prefix(HEADER)?;
    let (revision, enterprise) = match line.split_once(", enterprise ") {
        Some((r, e)) => (r, Some(e.trim().to_owned())),
        None => (line, None),
    };
    Some(Header {
        revision: revision.trim().parse().ok()?,
        enterprise,
    })
}

fn open_store(config_path: &Path) -> anyhow::Result<(String, std::sync::Arc<dyn Store>)> {
    let node_text = std::fs::read_to_string(config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = Config::from_str(&node_text, &config_path.display().to_string())
        .map_err(|errors| anyhow!("{errors}"))?;
    let store = crate::open_store(&config.store)?;
    Ok((node_text, store))
}

/// `sihai export [--enterprise ID]`: the tenant data as TOML on stdout, headed by the
/// revision it was taken at (what `sihai apply` checks for changes made since).
pub fn export(config_path: &Path, enterprise: Option<&str>) -> anyhow::Result<()> {
    let (_, store) = open_store(config_path)?;
    let data = store.tenant().context("reading the tenant data")?;
    if let Some(id) = enterprise
        && !data
            .entries
            .iter()
            .any(|s| s.entry.section == "enterprise" && s.entry.key == id)
    {
        bail!("no enterprise {id:?} in the store's tenant data");
    }
    let entries: Vec<_> = data
        .entries
        .into_iter()
        .map(|s| s.entry)
        .filter(|e| enterprise.is_none_or(|id| e.enterprise.as_deref() == Some(id)))
        .collect();
    let mut out = format!("{HEADER}{}", data.revision);
    if let Some(id) = enterprise {
        out.push_str(&format!(", enterprise {id}"));
    }
    out.push_str("\n# Edit and apply with `sihai apply FILE`: entries changed since this revision are not overwritten.\n\n");
    out.push_str(&tenant::render(&entries));
    print!("{out}");
    store.flush().context("committing to the store")
}

/// `sihai apply FILE [--dry-run] [--force]`.
pub fn apply(config_path: &Path, file: &Path, dry_run: bool, force: bool) -> anyhow::Result<()> {
    let (node_text, store) = open_store(config_path)?;
    let origin = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {origin}"))?;
    let header = parse_header(&text);
    let scope = header.as_ref().and_then(|h| h.enterprise.clone());
    // A whole configuration file (node settings and all) may be applied too: its
    // tenant sections are what it says of the tenant data. It is checked as the file it
    // is first, so that its problems are reported at its own lines.
    let whole_file = tenant::is_whole_configuration(&text);
    if whole_file {
        Config::from_str(&text, &origin)
            .map_err(|errors| anyhow!("{errors}\n{origin}: not applied"))?;
    }
    let wanted = tenant::split(&text, &origin).map_err(|errors| anyhow!("{errors}"))?;
    let data = store.tenant().context("reading the tenant data")?;
    let current: Vec<_> = data.entries.iter().map(|s| s.entry.clone()).collect();
    let diff =
        tenant::diff(&current, &wanted, scope.as_deref()).map_err(|m| anyhow!("{origin}: {m}"))?;

    // The result must be valid as a whole: this file's entries (reported at their own
    // lines) with the others the scope leaves alone.
    let node_origin = config_path.display().to_string();
    let outside: Vec<_> = tenant::merged(&current, &[], scope.as_deref());
    let checked = if whole_file {
        Config::from_parts(&node_text, &node_origin, &tenant::render(&wanted), &origin).map(|_| ())
    } else {
        let mut tenant_text = text.clone();
        if scope.is_some() {
            tenant_text.push('\n');
            tenant_text.push_str(&tenant::render(&outside));
        }
        Config::from_parts(&node_text, &node_origin, &tenant_text, &origin).map(|_| ())
    };
    if let Err(errors) = checked {
        store.flush().ok();
        bail!("{errors}\n{origin}: not applied");
    }

    if diff.is_empty() {
        println!("{origin}: no changes (revision {})", data.revision);
    } else {
        for line in &diff.lines {
            println!("{line}");
        }
    }
    if dry_run {
        println!("{origin}: dry run, nothing applied");
        return store.flush().context("committing to the store");
    }
    let key = source_key(file);
    let base_revision = if force {
        None
    } else if let Some(h) = &header {
        Some(h.revision)
    } else if let Some((_, revision)) = store
        .tenant_source(&key)
        .context("reading the tenant sources")?
    {
        Some(revision)
    } else if current.is_empty() {
        None
    } else {
        store.flush().ok();
        bail!(
            "{origin}: not an export (its first line is not `{HEADER}N`) and never applied \
             to this store, so what it was based on is unknown: export with `sihai export`, \
             edit and apply that, or pass --force to overwrite"
        );
    };
    let change = TenantChange {
        upserts: diff.upserts,
        removals: diff.removals,
        base_revision,
        source: Some((key, tenant::digest(&wanted))),
        actor: format!(
            "sihai apply ({})",
            std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
        ),
        actor_source: None,
        at: jiff::Timestamp::now(),
    };
    match store.apply_tenant(change) {
        Ok(applied) => {
            println!(
                "{origin}: applied, {} change(s), revision {}",
                applied.changed, applied.revision
            );
            store.flush().context("committing to the store")
        }
        Err(StoreError::StaleTenant { changed, .. }) => {
            store.flush().ok();
            let list: Vec<String> = changed
                .iter()
                .map(|(section, key, revision)| {
                    format!("  {section} {key} (changed at revision {revision})")
                })
                .collect();
            bail!(
                "{origin}: refused: changed since revision {} (by the enterprise's backend or another apply):\n{}\nexport again and merge, or pass --force to overwrite",
                base_revision.unwrap_or_default(),
                list.join("\n")
            )
        }
        Err(other) => {
            store.flush().ok();
            Err(other).context("applying the tenant data")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exports_first_line_gives_its_revision_and_scope() {
        assert_eq!(
            parse_header("# sihai export: revision 12\n[[group]]\n"),
            Some(Header {
                revision: 12,
                enterprise: None
            })
        );
        assert_eq!(
            parse_header("# sihai export: revision 3, enterprise acme\n"),
            Some(Header {
                revision: 3,
                enterprise: Some("acme".into())
            })
        );
        assert_eq!(parse_header("[[group]]\n"), None);
        assert_eq!(parse_header("# sihai export: revision x\n"), None);
    }
}
