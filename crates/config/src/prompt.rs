//! `[[prompt]]`: named recordings that the rest of the file refers to by name: a
//! number's ringback 彩铃, a menu's welcome and choices, an extension's ringback.
//!
//! Naming audio once keeps file paths out of every menu node, and lets one recording
//! serve many menus. A prompt's audio is either a WAV `file` on the node (the operator
//! puts it there) or `audio = "sha256:…"`, a recording uploaded through the admin API
//! and kept in the store under that digest: exactly one of the two. A prompt with an
//! `enterprise` is that enterprise's own, usable only by its numbers, plans, menus and
//! extensions; one without is the operator's, usable by all.
//!
//! Only the names, the path's shape and the digest's form are checked here; whether the
//! file exists (or the store holds the digest) and holds playable audio is the daemon's
//! to find out when it loads prompts, so that `sihai check` can run on a machine without
//! the recordings.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "prompt";

/// How an uploaded recording is named: its SHA-256 digest, written `sha256:` and 64
/// lower-case hex digits.
pub const AUDIO_DIGEST_PREFIX: &str = "sha256:";

/// One prompt, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PromptConfig {
    /// Unique among prompts; what other sections refer to.
    pub name: String,
    /// The enterprise whose own prompt this is; `None`: the operator's, for everyone.
    pub enterprise: Option<String>,
    /// Where its audio is.
    pub source: PromptSource,
}

impl PromptConfig {
    /// The WAV file, for a prompt whose audio is one.
    pub fn file(&self) -> Option<&Path> {
        match &self.source {
            PromptSource::File(path) => Some(path),
            PromptSource::Audio(_) => None,
        }
    }
}

/// Where a prompt's audio comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PromptSource {
    /// A WAV file: as written when absolute, otherwise resolved against
    /// [`crate::MediaConfig::prompts_dir`].
    File(PathBuf),
    /// A recording kept in the store, by its digest (`sha256:…`): 8 kHz mono 16-bit
    /// PCM WAV, converted when it was uploaded.
    Audio(String),
}

/// One `[[prompt]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[prompt]] table")]
pub(crate) struct RawPrompt {
    name: Spanned<String>,
    enterprise: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    audio: Option<Spanned<String>>,
}

/// The validation pass for `[[prompt]]`: the prompts with their files resolved against
/// `prompts_dir`, and the catalog of their names (with their enterprises); enterprises
/// are known.
pub(crate) fn validate(
    raw: ArraySection<RawPrompt>,
    prompts_dir: &Path,
    enterprises: &Catalog,
    diagnostics: &mut Diagnostics,
) -> (Vec<PromptConfig>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut prompts = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry_span = entry.span();
        let entry = entry.get_ref();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        let owner = entry.enterprise.as_ref().and_then(|enterprise| {
            enterprises.check_reference(
                enterprise,
                format!("{field}.enterprise"),
                None,
                diagnostics,
            );
            enterprises.owner(enterprise).map(str::to_owned)
        });
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            owner,
            diagnostics,
        );
        let source = match (&entry.file, &entry.audio) {
            (Some(file), None) => {
                if let Some(problem) = file_problem(file.get_ref()) {
                    diagnostics.report(Some(file.span()), format!("{field}.file"), problem);
                }
                PromptSource::File(prompts_dir.join(file.get_ref()))
            }
            (None, Some(audio)) => {
                if let Some(problem) = audio_problem(audio.get_ref()) {
                    diagnostics.report(Some(audio.span()), format!("{field}.audio"), problem);
                }
                PromptSource::Audio(audio.get_ref().clone())
            }
            (Some(_), Some(audio)) => {
                diagnostics.report(
                    Some(audio.span()),
                    format!("{field}.audio"),
                    "give either `file` (a WAV file on the node) or `audio` (an uploaded \
                     recording), not both",
                );
                PromptSource::Audio(audio.get_ref().clone())
            }
            (None, None) => {
                diagnostics.report(
                    Some(entry_span),
                    format!("{field}.file"),
                    "missing: give `file` (a WAV file, e.g. \"welcome.wav\") or `audio` (an \
                     uploaded recording, \"sha256:…\")",
                );
                PromptSource::File(PathBuf::new())
            }
        };
        prompts.push(PromptConfig {
            name: entry.name.get_ref().clone(),
            enterprise: entry.enterprise.as_ref().map(|e| e.get_ref().clone()),
            source,
        });
    }
    names.add_malformed(&raw, diagnostics);
    (prompts, names)
}

/// Why `audio` cannot name an uploaded recording, if it cannot.
fn audio_problem(audio: &str) -> Option<String> {
    let hex = audio.strip_prefix(AUDIO_DIGEST_PREFIX);
    let well_formed = hex.is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    (!well_formed).then(|| {
        format!(
            "{audio:?} is not an uploaded recording's digest: \"sha256:\" and 64 lower-case hex \
             digits, as the API's upload writes it"
        )
    })
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

    #[test]
    fn audio_digests() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(audio_problem(&format!("sha256:{hex}")), None);
        for bad in [
            String::new(),
            hex.clone(),
            format!("sha1:{hex}"),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[1..]),
            format!("sha256:{hex}0"),
            format!("sha256:{}g", &hex[1..]),
        ] {
            assert!(audio_problem(&bad).is_some(), "{bad:?}");
        }
    }
}
