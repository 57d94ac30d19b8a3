//! `[log]`: how much the daemon logs, and in which format.
//!
//! The level is a `tracing` env-filter directive. It is checked here, with a simple
//! grammar, so that a typo is reported by `sihai check` with its line instead of being
//! discovered when the daemon starts (or silently logging nothing). The format is plain
//! text for people, or one JSON object a line for a log collector.

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::Diagnostics;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "log";

const DEFAULT_LEVEL: &str = "info";
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The `[log]` section, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Comma-separated `level` or `target=level` directives, e.g. `info,sihai_sip=debug`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LEVEL.to_owned(),
            format: LogFormat::default(),
        }
    }
}

/// How each log line is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for people (and journald, which keeps it as is).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields` with the
    /// `message`), for a log collector that indexes fields.
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// `[log]` as written in the file. An unknown `format` is serde's error, located at the
/// value and naming the two formats.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [log] table")]
pub(crate) struct RawLog {
    level: Option<Spanned<String>>,
    format: Option<LogFormat>,
}

/// The validation pass for `[log]`; `raw` is `None` when the file has no `[log]` table.
pub(crate) fn validate(raw: Option<Spanned<RawLog>>, diagnostics: &mut Diagnostics) -> LogConfig {
    let Some(raw) = raw.map(Spanned::into_inner) else {
        return LogConfig::default();
    };
    let format = raw.format.unwrap_or_default();
    let Some(level) = raw.level else {
        return LogConfig {
            format,
            ..LogConfig::default()
        };
    };
    if let Err(error) = check_directives(level.get_ref()) {
        diagnostics.report(
            Some(level.span()),
            "log.level",
            format!("invalid log level {:?}: {error}", level.get_ref()),
        );
    }
    LogConfig {
        level: level.into_inner(),
        format,
    }
}

/// Why a level string is not a valid list of directives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DirectiveError {
    #[error("it is empty; use e.g. \"info\"")]
    Empty,
    #[error("directive {0} is empty (two commas in a row, or a trailing comma)")]
    EmptyDirective(usize),
    #[error("unknown level {0:?}, expected one of trace, debug, info, warn, error, off")]
    UnknownLevel(String),
    #[error("target {0:?} is not a module path such as sihai_sip or sihai_sip::parser")]
    InvalidTarget(String),
}

/// Accepts comma-separated directives, each `level` or `target=level`; levels are
/// case-insensitive, as in `tracing_subscriber::EnvFilter`.
fn check_directives(directives: &str) -> Result<(), DirectiveError> {
    if directives.trim().is_empty() {
        return Err(DirectiveError::Empty);
    }
    for (index, directive) in directives.split(',').enumerate() {
        let directive = directive.trim();
        if directive.is_empty() {
            return Err(DirectiveError::EmptyDirective(index + 1));
        }
        let level = match directive.split_once('=') {
            Some((target, level)) => {
                let target = target.trim();
                if !is_target(target) {
                    return Err(DirectiveError::InvalidTarget(target.to_owned()));
                }
                level.trim()
            }
            None => directive,
        };
        if !LEVELS.iter().any(|known| known.eq_ignore_ascii_case(level)) {
            return Err(DirectiveError::UnknownLevel(level.to_owned()));
        }
    }
    Ok(())
}

/// A tracing target: a Rust module path (`sihai_sip::parser`) or a similar dotted or
/// dashed name.
fn is_target(target: &str) -> bool {
    !target.is_empty()
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_levels_and_target_directives() {
        for ok in [
            "info",
            "OFF",
            "warn,sihai_sip=trace",
            "sihai_sip::parser=debug, sihai_transport = error",
        ] {
            assert_eq!(check_directives(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_directives() {
        assert_eq!(check_directives(" "), Err(DirectiveError::Empty));
        assert_eq!(
            check_directives("info,"),
            Err(DirectiveError::EmptyDirective(2))
        );
        assert_eq!(
            check_directives("verbose"),
            Err(DirectiveError::UnknownLevel("verbose".into()))
        );
        assert_eq!(
            check_directives("sihai=loud"),
            Err(DirectiveError::UnknownLevel("loud".into()))
        );
        assert_eq!(
            check_directives("=info"),
            Err(DirectiveError::InvalidTarget(String::new()))
        );
        assert_eq!(
            check_directives("a b=info"),
            Err(DirectiveError::InvalidTarget("a b".into()))
        );
    }
}
