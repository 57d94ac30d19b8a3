//! The structural pass: TOML syntax, then each section into its raw serde struct.
//!
//! Why not `toml::from_str::<Config>` in one go: serde stops at the first problem and
//! toml's errors carry a byte span but no public field path. Here the file is parsed
//! once into toml's spanned tree (`DeTable`), every key and value span is indexed by its
//! dotted path, and each top-level section is deserialized on its own, so a mistake in
//! `[log]` does not hide one in `[sip]`. Arrays of tables (`[[group]]`) go further and
//! are deserialized entry by entry. Adding a section means one more
//! [`Document::take_section`] or [`Document::take_array`] call in `lib.rs`.

use std::ops::Range;

use serde::Deserialize;
use serde::de::Error as _;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue, ValueDeserializer};

use crate::diagnostics::Diagnostics;

/// A section that could not be deserialized; its error has already been reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

type Entry<'i> = (Spanned<DeString<'i>>, Spanned<DeValue<'i>>);

/// A syntactically valid file whose sections have not all been taken yet.
pub(crate) struct Document<'i> {
    sections: Vec<Entry<'i>>,
    paths: FieldPaths,
}

impl<'i> Document<'i> {
    /// Parses the TOML syntax, reporting every syntax error. `None` when there were any:
    /// the partial tree toml recovers is not trustworthy enough to check further.
    pub fn parse(text: &'i str, diagnostics: &mut Diagnostics) -> Option<Document<'i>> {
        let (root, syntax_errors) = DeTable::parse_recoverable(text);
        let paths = FieldPaths::index(root.get_ref());
        if !syntax_errors.is_empty() {
            for error in syntax_errors {
                let span = error.span();
                let field = span
                    .as_ref()
                    .map(|span| paths.lookup(span))
                    .unwrap_or_default();
                diagnostics.report(span, field, error.message());
            }
            return None;
        }
        Some(Document {
            sections: root.into_inner().into_iter().collect(),
            paths,
        })
    }

    /// Removes the top-level table `name` and deserializes it as `T`.
    ///
    /// `Ok(None)` when the file has no such section; `Err(Malformed)` after reporting
    /// why it does not fit `T` (syntax is fine but a field is unknown, missing or of the
    /// wrong type).
    pub fn take_section<T: Deserialize<'i>>(
        &mut self,
        name: &str,
        diagnostics: &mut Diagnostics,
    ) -> Result<Option<Spanned<T>>, Malformed> {
        let Some(index) = self
            .sections
            .iter()
            .position(|(key, _)| key.get_ref() == name)
        else {
            return Ok(None);
        };
        let (_, value) = self.sections.remove(index);
        let span = value.span();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(section) => Ok(Some(Spanned::new(span, section))),
            Err(error) => {
                let span = error.span().unwrap_or(span);
                let field = self.field_of_error(&span, error.message());
                diagnostics.report(Some(span), field, readable_message(error.message()));
                Err(Malformed)
            }
        }
    }

    /// Removes the top-level array of tables `name` (`[[name]]` blocks) and deserializes
    /// each entry on its own as `T`, so a mistake in one entry does not hide the others.
    ///
    /// `key` is the field naming an entry (`name`, `id`): it is read from entries that do
    /// not fit `T`, so that references to them can still be resolved. An empty section
    /// when the file has none.
    pub fn take_array<T: Deserialize<'i>>(
        &mut self,
        name: &str,
        key: &str,
        diagnostics: &mut Diagnostics,
    ) -> ArraySection<T> {
        let mut section = ArraySection {
            entries: Vec::new(),
            malformed: Vec::new(),
            unreadable: false,
        };
        let Some(index) = self
            .sections
            .iter()
            .position(|(candidate, _)| candidate.get_ref() == name)
        else {
            return section;
        };
        let (_, value) = self.sections.remove(index);
        let span = value.span();
        let DeValue::Array(items) = value.into_inner() else {
            section.unreadable = true;
            diagnostics.report(
                Some(span.clone()),
                self.paths.lookup(&span),
                format!(
                    "must be an array of tables: write [[{name}]] (double brackets) once per {name}"
                ),
            );
            return section;
        };
        for (index, item) in items.into_iter().enumerate() {
            let item_span = item.span();
            let item_key = match item.get_ref() {
                DeValue::Table(table) => table.iter().find_map(|(field, value)| {
                    match (field.get_ref() == key, value.get_ref()) {
                        (true, DeValue::String(text)) => Some(text.to_string()),
                        _ => None,
                    }
                }),
                _ => None,
            };
            match T::deserialize(ValueDeserializer::from(item)) {
                Ok(entry) => section
                    .entries
                    .push((index, Spanned::new(item_span, entry))),
                Err(error) => {
                    let span = error.span().unwrap_or_else(|| item_span.clone());
                    let field = self.field_of_error(&span, error.message());
                    diagnostics.report(Some(span), field, readable_message(error.message()));
                    section.malformed.push(MalformedEntry {
                        index,
                        span: item_span,
                        key: item_key,
                    });
                }
            }
        }
        section
    }

    /// Removes the top-level key `name` without looking at it: the tenant sections of
    /// a node's file once the tenant data comes from elsewhere.
    pub fn discard(&mut self, name: &str) {
        self.sections.retain(|(key, _)| key.get_ref() != name);
    }

    /// Reports every top-level key of tenant data that is not one of the `tenant`
    /// sections: a node setting (`[sip]`) belongs to the node's configuration file, and
    /// anything else is unknown.
    pub fn reject_node_sections(
        self,
        tenant: &'static [&'static str],
        diagnostics: &mut Diagnostics,
    ) {
        for (key, _) in self.sections {
            let name = key.get_ref();
            let message = if crate::SECTIONS.contains(&&**name) {
                format!("[{name}] is a setting of the node's configuration file, not tenant data")
            } else {
                let error = toml::de::Error::unknown_field(name, tenant);
                readable_message(error.message())
            };
            diagnostics.report(Some(key.span()), render_key(name), message);
        }
    }

    /// Reports every top-level key no [`Document::take_section`] call asked for.
    pub fn reject_unknown_sections(
        self,
        known: &'static [&'static str],
        diagnostics: &mut Diagnostics,
    ) {
        for (key, _) in self.sections {
            let error = toml::de::Error::unknown_field(key.get_ref(), known);
            diagnostics.report(
                Some(key.span()),
                render_key(key.get_ref()),
                readable_message(error.message()),
            );
        }
    }

    /// The field an error is about: the innermost key or value its span lies in, plus
    /// the name of the missing field when serde says one is missing (its span is then
    /// the enclosing table).
    fn field_of_error(&self, span: &Range<usize>, message: &str) -> String {
        let mut field = self.paths.lookup(span);
        if let Some(missing) = quoted_name_after(message, "missing field ") {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&render_key(missing));
        }
        field
    }
}

/// One top-level array of tables, taken entry by entry by [`Document::take_array`].
#[derive(Debug)]
pub(crate) struct ArraySection<T> {
    /// The entries that fit `T`, each with its index in the file's array.
    pub entries: Vec<(usize, Spanned<T>)>,
    /// The entries that did not; each has been reported.
    pub malformed: Vec<MalformedEntry>,
    /// The value was not an array at all (reported); nothing is known of its entries.
    pub unreadable: bool,
}

impl<T> ArraySection<T> {
    /// Whether the structural pass reported anything in this section.
    pub fn is_malformed(&self) -> bool {
        self.unreadable || !self.malformed.is_empty()
    }
}

/// An entry of an array of tables that did not fit its raw struct.
#[derive(Debug)]
pub(crate) struct MalformedEntry {
    /// Its index in the file's array.
    pub index: usize,
    pub span: Range<usize>,
    /// Its name (the section's key field), when that could still be read.
    pub key: Option<String>,
}

/// Every key and value span in the file with the dotted path that reaches it
/// (`sip.listen[1].transport`).
struct FieldPaths {
    spans: Vec<(Range<usize>, String)>,
}

impl FieldPaths {
    fn index(root: &DeTable<'_>) -> Self {
        let mut paths = FieldPaths { spans: Vec::new() };
        paths.add_table(root, "");
        paths
    }

    fn add_table(&mut self, table: &DeTable<'_>, prefix: &str) {
        for (key, value) in table.iter() {
            let rendered = render_key(key.get_ref());
            let path = if prefix.is_empty() {
                rendered
            } else {
                format!("{prefix}.{rendered}")
            };
            self.spans.push((key.span(), path.clone()));
            self.add_value(value, path);
        }
    }

    fn add_value(&mut self, value: &Spanned<DeValue<'_>>, path: String) {
        match value.get_ref() {
            DeValue::Table(table) => self.add_table(table, &path),
            DeValue::Array(array) => {
                for (index, item) in array.iter().enumerate() {
                    self.add_value(item, format!("{path}[{index}]"));
                }
            }
            _ => {}
        }
        self.spans.push((value.span(), path));
    }

    /// The path of the smallest indexed span containing `span`; among equal spans (an
    /// array of tables and its first entry share the `[[...]]` header) the deepest path.
    /// Empty when nothing contains it.
    fn lookup(&self, span: &Range<usize>) -> String {
        self.spans
            .iter()
            .filter(|(candidate, _)| candidate.start <= span.start && span.end <= candidate.end)
            .min_by_key(|(candidate, path)| (candidate.len(), std::cmp::Reverse(path.len())))
            .map(|(_, path)| path.clone())
            .unwrap_or_default()
    }
}

/// Every key and value of `text` with its dotted path (`sip.listen[1].address`), keys
/// before their values, in file order; empty if the text is not valid TOML. For
/// locating a setting of an already validated file.
pub(crate) fn key_spans(text: &str) -> Vec<(String, Range<usize>)> {
    let Ok(root) = DeTable::parse(text) else {
        return Vec::new();
    };
    FieldPaths::index(root.get_ref())
        .spans
        .into_iter()
        .map(|(span, path)| (path, span))
        .collect()
}

/// A key as it would be written in TOML: bare when possible, quoted otherwise.
pub(crate) fn render_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// The name serde quotes in backticks right after `prefix`, e.g. `transport` in
/// "missing field `transport`".
fn quoted_name_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

/// serde speaks of maps and sequences and quotes names in backticks ("unknown variant
/// `sctp`, expected `udp` or `tcp`"); operators read TOML, which has tables and arrays
/// and quotes with double quotes. Values in type errors ("integer `5`") keep serde's
/// quoting, so a number is not shown as if it were a string.
fn readable_message(message: &str) -> String {
    const NAME_LIST_MESSAGES: [&str; 4] = [
        "unknown variant ",
        "unknown field ",
        "missing field ",
        "duplicate field ",
    ];
    if NAME_LIST_MESSAGES
        .iter()
        .any(|prefix| message.starts_with(prefix))
    {
        return message.replace('`', "\"");
    }
    message
        .replace("invalid type: map,", "invalid type: table,")
        .replace("expected a sequence", "expected an array")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_bare_are_quoted() {
        assert_eq!(render_key("t1_ms"), "t1_ms");
        assert_eq!(render_key("a.b"), "\"a.b\"");
        assert_eq!(render_key(""), "\"\"");
    }

    #[test]
    fn missing_field_name_is_extracted() {
        assert_eq!(
            quoted_name_after("missing field `address`", "missing field "),
            Some("address")
        );
        assert_eq!(quoted_name_after("invalid type", "missing field "), None);
    }

    #[test]
    fn name_lists_use_double_quotes_and_other_messages_are_untouched() {
        assert_eq!(
            readable_message("unknown variant `sctp`, expected `udp` or `tcp`"),
            "unknown variant \"sctp\", expected \"udp\" or \"tcp\""
        );
        assert_eq!(
            readable_message("invalid type: integer `5`, expected a string"),
            "invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            readable_message("invalid type: map, expected a sequence"),
            "invalid type: table, expected an array"
        );
    }
}
