//! Tenant data as the store keeps it: one entry per table of a tenant section.

/// One entry of tenant data: one `[[group]]`, `[[number]]`... table, named by its key
/// field and owned by an enterprise. The configuration crate splits and renders them
/// (`sihai_config::tenant`) and validates a set of them; the store keeps them as they
/// are, with the revision of their last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantEntry {
    /// Its section, e.g. `"group"`.
    pub section: String,
    /// The value of its key field (`id`, `number` or `name`).
    pub key: String,
    /// The enterprise it belongs to; `None` for the operator's shared entries.
    pub enterprise: Option<String>,
    /// Its canonical TOML: `[[section]]` and its fields.
    pub body: String,
}
