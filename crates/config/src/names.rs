//! Names one section declares and others refer to: `[[number]] plan = "acme-main"`,
//! `[[plan]] group = "sales"`, every `enterprise = "acme"`.
//!
//! Each section builds a [`Catalog`] of the names it declares (reporting duplicates) and
//! the enterprise each belongs to; later sections resolve their references against it.
//! Entries that failed the structural pass are still in the catalog when their name
//! could be read, so that one typo in a `[[group]]` does not also produce "no group named
//! sales" for every plan that uses it.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;

/// How many names an error message lists as suggestions.
const MAX_SUGGESTIONS: usize = 8;

/// Where a name was first declared.
#[derive(Debug, Clone)]
pub(crate) struct Declared {
    /// The entry's field path, e.g. `group[0]`.
    pub field: String,
    pub line: usize,
    /// The enterprise the entry belongs to; `None` when the section has no enterprises
    /// (schedules, enterprises themselves) or the entry was malformed.
    pub enterprise: Option<String>,
}

/// The names declared by one top-level array.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// The section's key, as in `[[group]]`.
    section: &'static str,
    /// The field holding the name: `name`, `id` or `number`.
    key: &'static str,
    entries: HashMap<String, Declared>,
    /// Declaration order, for suggestions.
    order: Vec<String>,
    /// Some entry's name could not be read (it, or the whole section, was malformed), so
    /// a reference to an undeclared name may be a reference to that entry.
    incomplete: bool,
}

/// What a reference resolved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved<'c> {
    /// Declared; with its enterprise when known.
    Found(Option<&'c str>),
    /// Certainly not declared.
    Missing,
    /// Not among the readable names, but the section had unreadable entries.
    Unknown,
}

impl Catalog {
    pub fn new<T>(section: &'static str, key: &'static str, raw: &ArraySection<T>) -> Self {
        Catalog {
            section,
            key,
            entries: HashMap::new(),
            order: Vec::new(),
            incomplete: raw.unreadable || raw.malformed.iter().any(|entry| entry.key.is_none()),
        }
    }

    /// Declares `name`, or reports `duplicate` at `span` naming the first declaration.
    /// Returns whether the name was new.
    pub fn declare(
        &mut self,
        name: &str,
        span: Range<usize>,
        field: String,
        enterprise: Option<String>,
        diagnostics: &mut Diagnostics,
    ) -> bool {
        if let Some(first) = self.entries.get(name) {
            diagnostics.report(
                Some(span),
                format!("{field}.{}", self.key),
                format!(
                    "duplicate {} {name:?}: already declared by {} at line {}",
                    self.describe_key(),
                    first.field,
                    first.line
                ),
            );
            return false;
        }
        let line = diagnostics.source.line_of(&span);
        self.entries.insert(
            name.to_owned(),
            Declared {
                field,
                line,
                enterprise,
            },
        );
        self.order.push(name.to_owned());
        true
    }

    /// Adds the names of the entries that failed the structural pass, so references to
    /// them are not reported as missing. Their enterprise is unknown.
    pub fn add_malformed<T>(&mut self, raw: &ArraySection<T>, diagnostics: &Diagnostics) {
        for entry in &raw.malformed {
            let Some(name) = &entry.key else { continue };
            if self.entries.contains_key(name) {
                continue;
            }
            self.entries.insert(
                name.clone(),
                Declared {
                    field: format!("{}[{}]", self.section, entry.index),
                    line: diagnostics.source.line_of(&entry.span),
                    enterprise: None,
                },
            );
            self.order.push(name.clone());
        }
    }

    pub fn resolve(&self, name: &str) -> Resolved<'_> {
        match self.entries.get(name) {
            Some(declared) => Resolved::Found(declared.enterprise.as_deref()),
            None if self.incomplete => Resolved::Unknown,
            None => Resolved::Missing,
        }
    }

    /// `enterprise` as the owner of an entry, for checking that entry's references:
    /// `Some` only when it is a declared enterprise id (this catalog being the
    /// enterprises'), so that a misspelt enterprise is reported once, not again on every
    /// reference.
    pub fn owner<'n>(&self, enterprise: &'n Spanned<String>) -> Option<&'n str> {
        self.entries
            .contains_key(enterprise.get_ref())
            .then_some(enterprise.get_ref().as_str())
    }

    /// "group name", "enterprise id", "number".
    fn describe_key(&self) -> String {
        if self.key == self.section {
            self.section.to_owned()
        } else {
            format!("{} {}", self.section, self.key)
        }
    }

    /// Checks a reference from an entry of enterprise `owner` (when that enterprise is
    /// itself valid) to a name in this catalog. Reports a missing name, or a name that
    /// belongs to another enterprise. Returns whether the reference is usable.
    pub fn check_reference(
        &self,
        reference: &Spanned<String>,
        field: String,
        owner: Option<&str>,
        diagnostics: &mut Diagnostics,
    ) -> bool {
        let name = reference.get_ref();
        match self.resolve(name) {
            Resolved::Found(Some(enterprise)) => match owner {
                Some(owner) if owner != enterprise => {
                    diagnostics.report(
                        Some(reference.span()),
                        field,
                        format!(
                            "{} {name:?} belongs to enterprise {enterprise:?}, not to {owner:?}; \
                             an enterprise can only use its own {}s",
                            self.section, self.section
                        ),
                    );
                    false
                }
                _ => true,
            },
            Resolved::Found(None) | Resolved::Unknown => true,
            Resolved::Missing => {
                diagnostics.report(
                    Some(reference.span()),
                    field,
                    format!(
                        "no [[{}]] with {} {name:?}{}",
                        self.section,
                        self.key,
                        self.suggestions(owner)
                    ),
                );
                false
            }
        }
    }

    /// "; declared: "a", "b"" listing the names `owner` may use (all, when `None`).
    fn suggestions(&self, owner: Option<&str>) -> String {
        let usable: Vec<&String> = self
            .order
            .iter()
            .filter(|name| {
                let enterprise = self
                    .entries
                    .get(*name)
                    .and_then(|d| d.enterprise.as_deref());
                match (owner, enterprise) {
                    (Some(owner), Some(enterprise)) => owner == enterprise,
                    _ => true,
                }
            })
            .collect();
        if usable.is_empty() {
            return match owner {
                Some(owner) if !self.order.is_empty() => {
                    format!("; enterprise {owner:?} has no {}s", self.section)
                }
                _ => format!("; the file declares no [[{}]]", self.section),
            };
        }
        let mut listed: Vec<String> = usable
            .iter()
            .take(MAX_SUGGESTIONS)
            .map(|name| format!("{name:?}"))
            .collect();
        if usable.len() > MAX_SUGGESTIONS {
            listed.push("…".to_owned());
        }
        let whose = match owner {
            Some(owner) => format!(" of enterprise {owner:?}"),
            None => String::new(),
        };
        format!("; the {}s{whose} are {}", self.section, listed.join(", "))
    }
}
