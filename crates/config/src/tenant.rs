//! Tenant data as entries: the unit the store keeps and `sihai export` / `sihai apply`
//! carry.
//!
//! A tenant section (`[[group]]`, `[[number]]`... [`TENANT_SECTIONS`]) is an array of
//! tables; each of its tables is one entry, named by its key field (`id`, `number` or
//! `name`) and owned by an enterprise (its `enterprise` field, or its own `id` for an
//! `[[enterprise]]`; tariffs, schedules and prompts without one are the operator's).
//! An entry's body is its canonical TOML (`[[group]]` and its fields, as the `toml`
//! crate writes them), so the same data always has the same text: comparing bodies
//! tells what changed, and a digest of them what a file last applied. The rules of what
//! an entry may say stay where they are: a set of entries is valid when
//! [`Config::from_parts`](crate::Config::from_parts) accepts the text
//! [`render`] makes of them.

use crate::error::{ConfigError, ConfigErrors};
use crate::{TENANT_SECTIONS, tenant_key_field};

pub use sihai_records::TenantEntry;

/// The tenant sections of `text` as entries, in [`TENANT_SECTIONS`] order and each
/// section in the text's order. Node sections are left alone (a whole configuration
/// file splits into its tenant data). Only the shape is checked here (TOML syntax, each
/// entry a table with a string key): meaning is `Config::from_parts`'s.
pub fn split(text: &str, origin: &str) -> Result<Vec<TenantEntry>, ConfigErrors> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|span| crate::diagnostics::Source::new(origin, text).position(span.start))
            .unwrap_or((1, 1));
        one_error(origin, line, column, "", e.message().to_owned())
    })?;
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for &section in TENANT_SECTIONS {
        let Some(value) = table.get(section) else {
            continue;
        };
        let key_field = tenant_key_field(section).unwrap_or("name");
        let Some(items) = value.as_array() else {
            problems.push(format!(
                "{section}: must be an array of tables ([[{section}]])"
            ));
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let Some(fields) = item.as_table() else {
                problems.push(format!("{section}[{index}]: must be a table"));
                continue;
            };
            let Some(key) = fields.get(key_field).and_then(|k| k.as_str()) else {
                problems.push(format!("{section}[{index}].{key_field}: missing"));
                continue;
            };
            let enterprise = if section == "enterprise" {
                Some(key.to_owned())
            } else {
                fields
                    .get("enterprise")
                    .and_then(|e| e.as_str())
                    .map(str::to_owned)
            };
            entries.push(TenantEntry {
                section: section.to_owned(),
                key: key.to_owned(),
                enterprise,
                body: body_of(section, fields),
            });
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(ConfigErrors {
            errors: problems
                .into_iter()
                .map(|message| {
                    let (field, message) = message
                        .split_once(": ")
                        .map_or((String::new(), message.clone()), |(f, m)| {
                            (f.to_owned(), m.to_owned())
                        });
                    ConfigError {
                        file: origin.to_owned(),
                        line: 1,
                        column: 1,
                        field,
                        message,
                    }
                })
                .collect(),
        })
    }
}

/// Whether `text` is a whole configuration file (it has `[sip]`, which every node's
/// file has) rather than tenant data alone.
pub fn is_whole_configuration(text: &str) -> bool {
    text.parse::<toml::Table>()
        .is_ok_and(|table| table.contains_key(crate::sip::SECTION))
}

/// One entry of `section` from its fields (as a door other than a file receives them,
/// e.g. the API's JSON): its key from the key field, its owner from `enterprise` (or its
/// own `id` for an enterprise). `Err` says which field is missing.
pub fn entry_from_table(section: &str, fields: toml::Table) -> Result<TenantEntry, String> {
    let Some(key_field) = tenant_key_field(section) else {
        return Err(format!("{section} is not a tenant section"));
    };
    let Some(key) = fields.get(key_field).and_then(|k| k.as_str()) else {
        return Err(format!("{key_field}: missing (a string)"));
    };
    let enterprise = if section == "enterprise" {
        Some(key.to_owned())
    } else {
        fields
            .get("enterprise")
            .and_then(|e| e.as_str())
            .map(str::to_owned)
    };
    Ok(TenantEntry {
        section: section.to_owned(),
        key: key.to_owned(),
        enterprise,
        body: body_of(section, &fields),
    })
}

/// The fields that hold a secret, by section: written through the API, never shown back
/// by it (its reads, its audit log). Today the webhook signing secret, which anyone
/// holding it could use to forge the enterprise's missed-call notices.
pub const SECRET_FIELDS: &[(&str, &str)] = &[("enterprise", "alert_secret")];

/// What stands for a secret's value where it is shown.
pub const HIDDEN: &str = "(hidden)";

/// The secret fields of `section`.
pub fn secret_fields(section: &str) -> impl Iterator<Item = &'static str> + '_ {
    SECRET_FIELDS
        .iter()
        .filter(move |(s, _)| *s == section)
        .map(|(_, field)| *field)
}

/// An entry's body (its canonical TOML, as stored and audited) with each secret's value
/// replaced by [`HIDDEN`]. A body that does not parse as an entry of `section` is not
/// shown at all (`HIDDEN`): it might hold a secret.
pub fn hide_secrets_in_body(section: &str, body: &str) -> String {
    if secret_fields(section).next().is_none() {
        return body.to_owned();
    }
    let entry = TenantEntry {
        section: section.to_owned(),
        key: String::new(),
        enterprise: None,
        body: body.to_owned(),
    };
    let Some(mut fields) = fields_of(&entry) else {
        return HIDDEN.to_owned();
    };
    for field in secret_fields(section) {
        if let Some(value) = fields.get_mut(field) {
            *value = toml::Value::String(HIDDEN.to_owned());
        }
    }
    body_of(section, &fields)
}

/// An entry's fields, parsed back from its body.
pub fn fields_of(entry: &TenantEntry) -> Option<toml::Table> {
    let mut table: toml::Table = entry.body.parse().ok()?;
    match table.remove(&entry.section)? {
        toml::Value::Array(items) => items.into_iter().next()?.as_table().cloned(),
        _ => None,
    }
}

/// The canonical TOML of one entry.
fn body_of(section: &str, fields: &toml::Table) -> String {
    let mut wrapper = toml::Table::new();
    wrapper.insert(
        section.to_owned(),
        toml::Value::Array(vec![toml::Value::Table(fields.clone())]),
    );
    // A `Table` of plain values always serializes.
    toml::to_string(&wrapper).unwrap_or_default()
}

/// The entries as one TOML text, in [`TENANT_SECTIONS`] order (then the given order
/// within a section), a blank line between entries.
pub fn render<'a>(entries: impl IntoIterator<Item = &'a TenantEntry>) -> String {
    let mut by_section: Vec<Vec<&TenantEntry>> = vec![Vec::new(); TENANT_SECTIONS.len()];
    for entry in entries {
        if let Some(i) = TENANT_SECTIONS.iter().position(|s| *s == entry.section) {
            by_section[i].push(entry);
        }
    }
    let mut text = String::new();
    for entry in by_section.into_iter().flatten() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&entry.body);
        if !entry.body.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// A digest of entries (their canonical text), to tell whether a file's tenant data
/// changed since it was last applied: FNV-1a, 64 bits, as 16 hex digits. Not a
/// security measure, only change detection.
pub fn digest<'a>(entries: impl IntoIterator<Item = &'a TenantEntry>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in render(entries).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What applying a set of entries over the current ones changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantDiff {
    /// Entries that are new or whose body or owner changed.
    pub upserts: Vec<TenantEntry>,
    /// (section, key) of entries to remove.
    pub removals: Vec<(String, String)>,
    /// One line per change, `+` added, `~` changed, `-` removed, e.g.
    /// `~ group sales (acme)`.
    pub lines: Vec<String>,
}

impl TenantDiff {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}

/// The changes that make the `current` entries within `scope` (one enterprise's, or
/// all of them for `None`) equal to `wanted`; entries outside the scope are left alone.
/// `Err` names an entry of `wanted` outside the scope: an enterprise's export may only
/// change that enterprise.
pub fn diff(
    current: &[TenantEntry],
    wanted: &[TenantEntry],
    scope: Option<&str>,
) -> Result<TenantDiff, String> {
    let in_scope = |e: &TenantEntry| scope.is_none_or(|s| e.enterprise.as_deref() == Some(s));
    if let Some(outside) = wanted.iter().find(|e| !in_scope(e)) {
        return Err(format!(
            "{} {} belongs to {}, not to enterprise {}: an enterprise's export changes only that enterprise",
            outside.section,
            outside.key,
            outside
                .enterprise
                .as_deref()
                .map_or("the operator".to_owned(), |e| format!("enterprise {e}")),
            scope.unwrap_or_default(),
        ));
    }
    let find = |list: &'_ [TenantEntry], e: &TenantEntry| {
        list.iter()
            .position(|c| c.section == e.section && c.key == e.key)
    };
    let owner = |e: &TenantEntry| {
        e.enterprise
            .as_deref()
            .map_or_else(String::new, |o| format!(" ({o})"))
    };
    let mut out = TenantDiff::default();
    for entry in wanted {
        match find(current, entry).and_then(|i| current.get(i)) {
            Some(was) if was == entry => {}
            Some(_) => {
                out.lines
                    .push(format!("~ {} {}{}", entry.section, entry.key, owner(entry)));
                out.upserts.push(entry.clone());
            }
            None => {
                out.lines
                    .push(format!("+ {} {}{}", entry.section, entry.key, owner(entry)));
                out.upserts.push(entry.clone());
            }
        }
    }
    for entry in current.iter().filter(|e| in_scope(e)) {
        if find(wanted, entry).is_none() {
            out.lines
                .push(format!("- {} {}{}", entry.section, entry.key, owner(entry)));
            out.removals
                .push((entry.section.clone(), entry.key.clone()));
        }
    }
    Ok(out)
}

/// The whole tenant data once `wanted` replaces the `current` entries within `scope`:
/// what must validate before the change is applied.
pub fn merged(
    current: &[TenantEntry],
    wanted: &[TenantEntry],
    scope: Option<&str>,
) -> Vec<TenantEntry> {
    let mut all: Vec<TenantEntry> = current
        .iter()
        .filter(|e| scope.is_some_and(|s| e.enterprise.as_deref() != Some(s)))
        .cloned()
        .collect();
    all.extend(wanted.iter().cloned());
    all
}

fn one_error(
    origin: &str,
    line: usize,
    column: usize,
    field: &str,
    message: String,
) -> ConfigErrors {
    ConfigErrors {
        errors: vec![ConfigError {
            file: origin.to_owned(),
            line,
            column,
            field: field.to_owned(),
            message,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const NODE: &str = r#"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"

[[enterprise]]
id = "seed"
name = "Seed"
"#;

    const TENANT: &str = r#"
# Acme's data
[[enterprise]]
id = "acme"
name = "Acme"

[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000001" }, { number = "13900000002", capacity = 2 }]

[[plan]]
name = "main"
enterprise = "acme"
group = "sales"

[[number]]
number = "4001234567"
enterprise = "acme"
status = "active"
plan = "main"
"#;

    #[test]
    fn a_tenant_text_splits_into_keyed_entries_that_render_back_to_the_same_configuration() {
        let entries = split(TENANT, "t.toml").expect("splits");
        let keys: Vec<(&str, &str, Option<&str>)> = entries
            .iter()
            .map(|e| (e.section.as_str(), e.key.as_str(), e.enterprise.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [
                ("enterprise", "acme", Some("acme")),
                ("group", "sales", Some("acme")),
                ("plan", "main", Some("acme")),
                ("number", "4001234567", Some("acme")),
            ]
        );
        let original = Config::from_parts(NODE, "n.toml", TENANT, "t.toml").expect("valid");
        let rendered = render(&entries);
        let again = Config::from_parts(NODE, "n.toml", &rendered, "store").expect("valid");
        assert_eq!(original.groups, again.groups);
        assert_eq!(original.numbers, again.numbers);
        assert_eq!(original.plans, again.plans);
        // The node file's own tenant sections are not part of the assembled data.
        assert!(again.enterprise("seed").is_none());
        // Canonical: splitting the rendering gives the same entries, so the same digest.
        let resplit = split(&rendered, "store").expect("splits");
        assert_eq!(resplit, entries);
        assert_eq!(digest(&resplit), digest(&entries));
    }

    #[test]
    fn comments_and_layout_do_not_change_the_digest_but_a_value_does() {
        let entries = split(TENANT, "t.toml").expect("splits");
        let relaid = TENANT.replace("# Acme's data\n", "").replace("\n\n", "\n");
        assert_eq!(
            digest(&split(&relaid, "t.toml").expect("splits")),
            digest(&entries)
        );
        let changed = TENANT.replace("13900000002", "13900000003");
        assert_ne!(
            digest(&split(&changed, "t.toml").expect("splits")),
            digest(&entries)
        );
    }

    #[test]
    fn tenant_problems_are_reported_against_the_tenant_text_and_node_sections_are_refused() {
        let broken = TENANT.replace("group = \"sales\"", "group = \"sale\"");
        let errors = Config::from_parts(NODE, "n.toml", &broken, "t.toml")
            .expect_err("the plan names a missing group");
        let first = &errors.errors[0];
        assert_eq!(
            (first.file.as_str(), first.line),
            ("t.toml", 16),
            "{errors}"
        );
        assert_eq!(first.field, "plan[0].group");

        let with_node = format!("{TENANT}\n[log]\nlevel = \"debug\"\n");
        let errors = Config::from_parts(NODE, "n.toml", &with_node, "t.toml")
            .expect_err("[log] is not tenant data");
        assert!(
            errors
                .to_string()
                .contains("[log] is a setting of the node's configuration file"),
            "{errors}"
        );
    }

    #[test]
    fn a_diff_lists_what_is_added_changed_and_removed_within_its_scope() {
        let current = split(TENANT, "t.toml").expect("splits");
        let other =
            split("[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n", "t.toml").expect("splits");
        let mut all = current.clone();
        all.extend(other.clone());
        let edited = TENANT
            .replace("13900000002", "13900000003")
            .replace("[[number]]\nnumber = \"4001234567\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n", "");
        let wanted = split(&edited, "t.toml").expect("splits");
        let d = diff(&all, &wanted, Some("acme")).expect("all acme's");
        assert_eq!(
            d.lines,
            ["~ group sales (acme)", "- number 4001234567 (acme)"]
        );
        assert_eq!(
            merged(&all, &wanted, Some("acme")).len(),
            4,
            "beta's entry is kept"
        );
        // Unscoped, beta's enterprise is not in the file: removed.
        let d = diff(&all, &wanted, None).expect("unscoped");
        assert!(
            d.lines.contains(&"- enterprise beta (beta)".to_owned()),
            "{:?}",
            d.lines
        );
        // Applying the current data changes nothing.
        assert!(diff(&all, &all, None).expect("same").is_empty());
        // An acme export may not carry beta's entries.
        assert!(diff(&all, &other, Some("acme")).is_err());
    }

    #[test]
    fn an_uploaded_prompt_round_trips_as_an_entry_of_its_enterprise() {
        let digest = format!("sha256:{}", "0f".repeat(32));
        let text = format!(
            "{TENANT}\n[[prompt]]\nname = \"acme-hold\"\nenterprise = \"acme\"\naudio = \"{digest}\"\n"
        )
        .replace("plan = \"main\"\n", "plan = \"main\"\nringback = \"acme-hold\"\n");
        let entries = split(&text, "t.toml").expect("splits");
        let prompt = entries
            .iter()
            .find(|e| e.section == "prompt")
            .expect("the prompt");
        assert_eq!(
            (prompt.key.as_str(), prompt.enterprise.as_deref()),
            ("acme-hold", Some("acme"))
        );
        let config = Config::from_parts(NODE, "n.toml", &render(&entries), "store").expect("valid");
        assert_eq!(
            config.prompts[0].source,
            crate::PromptSource::Audio(digest.clone())
        );
        assert_eq!(config.numbers[0].ringback.as_deref(), Some("acme-hold"));
        assert_eq!(split(&render(&entries), "store").expect("splits"), entries);
    }

    #[test]
    fn an_entry_without_its_key_is_refused() {
        let errors = split("[[group]]\nenterprise = \"acme\"\n", "t.toml").expect_err("no name");
        assert_eq!(errors.errors[0].field, "group[0].name");
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn a_secret_is_hidden_in_a_body_and_nothing_else_changes() {
        let mut fields = toml::Table::new();
        fields.insert("id".into(), toml::Value::String("acme".into()));
        fields.insert("name".into(), toml::Value::String("Acme".into()));
        fields.insert(
            "alert_secret".into(),
            toml::Value::String("s3cr3t-signing-key".into()),
        );
        let entry = entry_from_table("enterprise", fields).expect("an entry");
        let shown = hide_secrets_in_body("enterprise", &entry.body);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains(HIDDEN) && shown.contains("Acme"), "{shown}");
        // Sections without secrets, and bodies that do not parse.
        assert_eq!(hide_secrets_in_body("group", "anything"), "anything");
        assert_eq!(
            hide_secrets_in_body("enterprise", "alert_secret = "),
            HIDDEN
        );
    }
}
