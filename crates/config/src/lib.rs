//! Loading and validating sihai's TOML configuration.
//!
//! The daemon, `sihai check` and the reload path all need the same answer to "is this
//! file usable, and if not, exactly what is wrong with it?". This crate gives it:
//! [`Config::load`] returns either a fully validated [`Config`] or [`ConfigErrors`]
//! listing every problem as `FILE:LINE:COL: FIELD: message`.
//!
//! Checking happens in two passes over one parse:
//! 1. structure (`document`): TOML syntax, then each section into raw serde structs
//!    that reject unknown fields, wrong types and missing required fields;
//! 2. meaning (each section's `validate`): ranges, cross-field rules, duplicates.
//!
//! Each top-level section has its own module (`sip`, `log`); a new section adds a
//! module, a field on [`Config`] and one `take_section` call in [`Config::from_str`].

mod diagnostics;
mod document;
mod error;
mod log;
mod sip;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use log::LogConfig;
pub use sip::{Listen, SipConfig, TcpSettings, Timers};

use diagnostics::{Diagnostics, Source};
use document::Document;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sip: SipConfig,
    pub log: LogConfig,
}

/// The top-level tables a configuration file may contain.
const SECTIONS: &[&str] = &[sip::SECTION, log::SECTION];

impl Config {
    /// Reads and validates a file; errors carry the path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|error| file_error(&origin, 0, 0, format!("cannot read the file: {error}")))?;
        let text = String::from_utf8(bytes).map_err(|error| {
            let valid = error.utf8_error().valid_up_to();
            let bytes = error.as_bytes();
            let text = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default());
            let (line, column) = Source {
                origin: &origin,
                text: &text,
            }
            .position(valid);
            file_error(
                &origin,
                line,
                column,
                "the file is not valid UTF-8".to_owned(),
            )
        })?;
        Config::from_str(&text, &origin)
    }

    /// Parses and validates text; `origin` is the name used in messages (a path).
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let mut diagnostics = Diagnostics::new(Source { origin, text });
        let Some(mut document) = Document::parse(text, &mut diagnostics) else {
            return diagnostics.finish(None);
        };

        // Pass 1, structure: a malformed section is reported and skipped.
        let raw_sip = document.take_section::<sip::RawSip>(sip::SECTION, &mut diagnostics);
        let raw_log = document.take_section::<log::RawLog>(log::SECTION, &mut diagnostics);
        document.reject_unknown_sections(SECTIONS, &mut diagnostics);

        // Pass 2, meaning: every well-formed section is validated, whatever else failed.
        let sip = raw_sip.ok().map(|raw| sip::validate(raw, &mut diagnostics));
        let log = raw_log.ok().map(|raw| log::validate(raw, &mut diagnostics));

        let config = match (sip, log) {
            (Some(sip), Some(log)) => Some(Config { sip, log }),
            _ => None,
        };
        diagnostics.finish(config)
    }
}

fn file_error(origin: &str, line: usize, column: usize, message: String) -> ConfigErrors {
    ConfigErrors {
        errors: vec![ConfigError {
            file: origin.to_owned(),
            line,
            column,
            field: String::new(),
            message,
        }],
    }
}

#[cfg(test)]
mod tests;
