//! The error types callers see.
//!
//! `sihai check` and the daemon's start-up and reload paths print these to an operator who
//! has to fix the file, so every error names the file, the 1-based line and column, and
//! the dotted field path, in the `FILE:LINE:COL: FIELD: message` shape that editors and
//! CI logs turn into clickable locations.

use std::fmt;

/// One problem in a configuration file.
///
/// `line` and `column` are 1-based; `column` counts characters, not bytes. Both are 0
/// when the problem concerns the whole file (it could not be read), and `field` is empty
/// when no field can be named (e.g. a syntax error between tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line != 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, " {}:", self.field)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order.
///
/// Displays one error per line (no trailing newline). Never empty when returned by
/// [`crate::Config::load`] or [`crate::Config::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: usize, field: &str) -> ConfigError {
        ConfigError {
            file: "sihai.toml".into(),
            line,
            column: if line == 0 { 0 } else { 3 },
            field: field.into(),
            message: "bad".into(),
        }
    }

    #[test]
    fn displays_file_line_column_field_message() {
        assert_eq!(
            error(7, "sip.timers.t1_ms").to_string(),
            "sihai.toml:7:3: sip.timers.t1_ms: bad"
        );
    }

    #[test]
    fn omits_position_and_field_when_unknown() {
        assert_eq!(error(0, "").to_string(), "sihai.toml: bad");
        assert_eq!(error(2, "").to_string(), "sihai.toml:2:3: bad");
    }

    #[test]
    fn displays_one_error_per_line() {
        let errors = ConfigErrors {
            errors: vec![error(1, "a"), error(2, "b")],
        };
        assert_eq!(
            errors.to_string(),
            "sihai.toml:1:3: a: bad\nsihai.toml:2:3: b: bad"
        );
    }
}
