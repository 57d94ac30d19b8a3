//! Collecting errors against the source text.
//!
//! Both passes (structure, then meaning) report problems as byte spans into the file.
//! This module turns a span into the 1-based line and column an operator's editor shows,
//! and gathers every error instead of stopping at the first, so one `sihai check` run
//! lists everything that needs fixing.

use std::ops::Range;

use crate::error::{ConfigError, ConfigErrors};

/// The text being checked and the name it is reported under.
#[derive(Debug, Clone)]
pub(crate) struct Source<'a> {
    pub origin: &'a str,
    pub text: &'a str,
    /// Byte offset of the start of every line, built once: every entry of a large
    /// file asks for its line, and scanning from the top each time was quadratic
    /// (minutes for 100,000 numbers).
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(origin: &'a str, text: &'a str) -> Source<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(newline_offsets(text).map(|i| i + 1));
        Source {
            origin,
            text,
            line_starts,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters. Offsets
    /// past the end or inside a multi-byte character are clamped, never a panic.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`.
        let line_index = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self
            .line_starts
            .get(line_index)
            .copied()
            .unwrap_or(0)
            .min(offset);
        let line = line_index + 1;
        let mut column = self.text[line_start..offset].chars().count() + 1;
        // A byte-order mark is invisible in editors; do not count it as a column.
        if line == 1 && self.text[..offset].starts_with('\u{feff}') {
            column -= 1;
        }
        (line, column)
    }

    /// The 1-based line of a span's start, for messages that refer to another entry.
    pub fn line_of(&self, span: &Range<usize>) -> usize {
        self.position(span.start).0
    }
}

fn newline_offsets(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .map(|(i, _)| i)
}

/// The errors found so far in one file.
#[derive(Debug)]
pub(crate) struct Diagnostics<'a> {
    pub source: Source<'a>,
    errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(source: Source<'a>) -> Self {
        Diagnostics {
            source,
            errors: Vec::new(),
        }
    }

    /// Makes `other` the source that spans refer to from now on, and hands back the
    /// previous one: a configuration assembled from two texts (the node's file and the
    /// tenant data) reports each section's problems against its own text.
    pub fn swap_source(&mut self, other: &mut Source<'a>) {
        std::mem::swap(&mut self.source, other);
    }

    /// How many problems have been recorded so far.
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    /// Records a problem at `span`; `None` (the setting is absent from the file) reports
    /// at line 1, column 1.
    pub fn report(
        &mut self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        let (line, column) = span.map_or((1, 1), |span| self.source.position(span.start));
        self.errors.push(ConfigError {
            file: self.source.origin.to_owned(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Ok(value)` when nothing was reported; otherwise every error, in file order.
    ///
    /// `value` is `None` only when a section failed to deserialize, which always reports
    /// an error; should that ever not hold, an error says so rather than a panic.
    pub fn finish<T>(mut self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(value) if self.errors.is_empty() => return Ok(value),
            None if self.errors.is_empty() => self.report(
                None,
                "",
                "internal error: the configuration was rejected without a reason",
            ),
            _ => {}
        }
        // Stable, so errors at the same position keep the order they were found in;
        // with two texts, the first one reported comes first, then the other, each in
        // its own order.
        let first = self
            .errors
            .first()
            .map(|e| e.file.clone())
            .unwrap_or_default();
        self.errors
            .sort_by_key(|error| (error.file != first, error.line, error.column));
        Err(ConfigErrors {
            errors: self.errors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(text: &str, offset: usize) -> (usize, usize) {
        Source::new("t.toml", text).position(offset)
    }

    #[test]
    fn positions_are_one_based() {
        assert_eq!(position("ab\ncd\n", 0), (1, 1));
        assert_eq!(position("ab\ncd\n", 2), (1, 3));
        assert_eq!(position("ab\ncd\n", 3), (2, 1));
        assert_eq!(position("ab\ncd\n", 4), (2, 2));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "# 四海\nx" — the CJK characters are three bytes each.
        let text = "# 四海 y\nx";
        assert_eq!(position(text, text.find('y').unwrap_or(0)), (1, 6));
    }

    #[test]
    fn out_of_range_and_mid_character_offsets_are_clamped() {
        assert_eq!(position("ab\n", 99), (2, 1));
        assert_eq!(position("四", 1), (1, 1));
        assert_eq!(position("", 5), (1, 1));
    }

    #[test]
    fn indexed_positions_match_scanning_from_the_top() {
        let text = "\u{feff}[sip]\n# 四海 comment\n\nuser_agent = \"四海\"\r\nx = 1\n";
        for offset in 0..=text.len() + 2 {
            let mut at = offset.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let before = &text[..at];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |n| n + 1);
            let mut column = before[line_start..].chars().count() + 1;
            if line == 1 && before.starts_with('\u{feff}') {
                column -= 1;
            }
            assert_eq!(position(text, offset), (line, column), "offset {offset}");
        }
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        assert_eq!(position("\u{feff}[sip]", 3), (1, 1));
    }
}
