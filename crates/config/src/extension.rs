//! `[[extension]]`: switchboard extensions (总机/分机). A caller who picks extension
//! dialling in a voice menu keys a short number such as `8001`, and the hunt group bound
//! to that extension rings.
//!
//! Extension numbers are private to an enterprise (two companies may both have an
//! 8001), so they are unique per enterprise, not across the file, and the group an
//! extension rings must be the enterprise's own.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "extension";

/// How long an extension number may be; the menu walker collects at most this many
/// digits.
pub const MAX_EXTENSION_DIGITS: usize = 32;

/// One extension, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionConfig {
    /// The [`crate::Enterprise`] id it belongs to.
    pub enterprise: String,
    /// 1 to [`MAX_EXTENSION_DIGITS`] ASCII digits; unique within the enterprise.
    pub number: String,
    /// The [`crate::GroupConfig`] rung, of the same enterprise.
    pub group: String,
    /// A [`crate::PromptConfig`] name: what the caller hears while the extension rings.
    /// `None`: the number's or the menu's ringback, as for any call.
    pub ringback: Option<String>,
}

/// One `[[extension]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[extension]] table")]
pub(crate) struct RawExtension {
    enterprise: Spanned<String>,
    number: Spanned<String>,
    group: Spanned<String>,
    ringback: Option<Spanned<String>>,
}

/// What the extensions refer to.
pub(crate) struct Catalogs<'c> {
    pub enterprises: &'c Catalog,
    pub groups: &'c Catalog,
    pub prompts: &'c Catalog,
}

/// Which enterprises have extensions, for menus that offer extension dialling.
#[derive(Debug, Default)]
pub(crate) struct ExtensionOwners {
    enterprises: HashSet<String>,
    /// Some entry failed the structural pass, so its enterprise is unknown.
    incomplete: bool,
}

impl ExtensionOwners {
    /// Whether `enterprise` has (or, when some entries could not be read, may have) at
    /// least one extension.
    pub fn may_have_extensions(&self, enterprise: &str) -> bool {
        self.incomplete || self.enterprises.contains(enterprise)
    }
}

/// The validation pass for `[[extension]]`; enterprises, groups and prompts are known.
pub(crate) fn validate(
    raw: ArraySection<RawExtension>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> (Vec<ExtensionConfig>, ExtensionOwners) {
    let mut owners = ExtensionOwners {
        enterprises: HashSet::new(),
        incomplete: raw.is_malformed(),
    };
    // (enterprise, number) → (field, line) of its first declaration.
    let mut first_declared: HashMap<(String, String), (String, usize)> = HashMap::new();
    let mut extensions = Vec::with_capacity(raw.entries.len());
    for (index, entry) in raw.entries {
        let field = entry_field(SECTION, index);
        let entry = entry.into_inner();
        catalogs.enterprises.check_reference(
            &entry.enterprise,
            format!("{field}.enterprise"),
            None,
            diagnostics,
        );
        let owner = catalogs.enterprises.owner(&entry.enterprise);
        let enterprise = entry.enterprise.get_ref();
        match owner {
            Some(owner) => {
                owners.enterprises.insert(owner.to_owned());
            }
            // A misspelt enterprise (reported) may be meant as any enterprise: do not
            // also tell a menu that its enterprise has no extensions.
            None => owners.incomplete = true,
        }
        let number = entry.number.get_ref();
        if !check::is_digits(number, 1..=MAX_EXTENSION_DIGITS) {
            diagnostics.report(
                Some(entry.number.span()),
                format!("{field}.number"),
                format!(
                    "invalid extension number {number:?}: 1 to {MAX_EXTENSION_DIGITS} digits \
                     with no separators, e.g. \"8001\""
                ),
            );
        } else {
            let key = (enterprise.clone(), number.clone());
            match first_declared.get(&key) {
                Some((first_field, first_line)) => diagnostics.report(
                    Some(entry.number.span()),
                    format!("{field}.number"),
                    format!(
                        "duplicate extension {number:?} of enterprise {enterprise:?}: already \
                         declared by {first_field} at line {first_line}"
                    ),
                ),
                None => {
                    let line = diagnostics.source.line_of(&entry.number.span());
                    first_declared.insert(key, (field.clone(), line));
                }
            }
        }
        catalogs
            .groups
            .check_reference(&entry.group, format!("{field}.group"), owner, diagnostics);
        if let Some(ringback) = &entry.ringback {
            catalogs.prompts.check_reference(
                ringback,
                format!("{field}.ringback"),
                owner,
                diagnostics,
            );
        }
        extensions.push(ExtensionConfig {
            enterprise: entry.enterprise.into_inner(),
            number: entry.number.into_inner(),
            group: entry.group.into_inner(),
            ringback: entry.ringback.map(Spanned::into_inner),
        });
    }
    (extensions, owners)
}
