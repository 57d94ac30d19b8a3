//! `[[prompt]]`: named recordings (WAV files) that the rest of the file refers to by
//! name: a number's ringback 彩铃, a menu's welcome and choices, an extension's ringback.
//!
//! Naming audio once keeps file paths out of every menu node, and lets one recording
//! serve many menus. Only the name and the path are checked here; whether the file
//! exists and holds playable audio is the daemon's to find out when it loads prompts,
//! so that `sihai check` can run on a machine without the recordings.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "prompt";

/// One prompt, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptConfig {
    /// Unique among prompts; what other sections refer to.
    pub name: String,
    /// The WAV file: as written when absolute, otherwise resolved against
    /// [`crate::MediaConfig::prompts_dir`].
    pub file: PathBuf,
}

/// One `[[prompt]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[prompt]] table")]
pub(crate) struct RawPrompt {
    name: Spanned<String>,
    file: Spanned<String>,
}

/// The validation pass for `[[prompt]]`: the prompts with their files resolved against
/// `prompts_dir`, and the catalog of their names.
pub(crate) fn validate(
    raw: ArraySection<RawPrompt>,
    prompts_dir: &Path,
    diagnostics: &mut Diagnostics,
) -> (Vec<PromptConfig>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut prompts = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry = entry.get_ref();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            None,
            diagnostics,
        );
        let file = entry.file.get_ref();
        if let Some(problem) = file_problem(file) {
            diagnostics.report(Some(entry.file.span()), format!("{field}.file"), problem);
        }
        prompts.push(PromptConfig {
            name: entry.name.get_ref().clone(),
            file: prompts_dir.join(file),
        });
    }
    names.add_malformed(&raw, diagnostics);
    (prompts, names)
}

/// Why `file` cannot name a prompt's WAV file, if it cannot.
fn file_problem(file: &str) -> Option<String> {
    if file.trim().is_empty() {
        return Some(
            "must not be empty; give the WAV file, relative to [media] prompts or absolute, \
             e.g. \"welcome.wav\""
                .to_owned(),
        );
    }
    if file.chars().any(char::is_control) {
        return Some("must not contain control characters".to_owned());
    }
    let is_wav = Path::new(file)
        .extension()
        .is_some_and(|extension| extension.eq_ignore_ascii_case("wav"));
    if !is_wav || file.ends_with('/') || file.ends_with(std::path::MAIN_SEPARATOR) {
        return Some(format!(
            "{file:?} is not a .wav file; prompts are WAV recordings, e.g. \"welcome.wav\""
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_files() {
        for ok in [
            "welcome.wav",
            "WELCOME.WAV",
            "acme/main-menu.Wav",
            "/var/lib/sihai/prompts/busy.wav",
            "欢迎.wav",
        ] {
            assert_eq!(file_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "  ",
            "welcome",
            "welcome.mp3",
            "welcome.wav.gz",
            ".wav",
            "prompts.wav/",
            "wel\ncome.wav",
        ] {
            assert!(file_problem(bad).is_some(), "{bad:?}");
        }
    }
}
