//! `announcements` and `announcement_plays` on `[[plan]]` (and, overriding the plan's,
//! on `[[number]]`): the recorded message a caller hears instead of a bare error code
//! when the call cannot go through — outside business hours, every phone busy, nobody
//! answering, the number suspended, the caller refused by screening.
//!
//! Each case names a `[[prompt]]`. The call is answered with early media (`183` and the
//! relay's SDP), the prompt plays `announcement_plays` times, and the call is released
//! with the status that fits, so nothing is billed.

use serde::Deserialize;
use toml::Spanned;

use crate::check;
use crate::diagnostics::Diagnostics;
use crate::names::Catalog;

/// The most times an announcement may play before the call is released.
pub const MAX_ANNOUNCEMENT_PLAYS: u32 = 5;
/// How many times an announcement plays when the plan does not say.
pub const DEFAULT_ANNOUNCEMENT_PLAYS: u32 = 1;

/// Why a call is released with an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnnouncementCase {
    /// Outside the plan's schedule, and the plan has no after-hours group.
    AfterHours,
    /// Every phone tried was busy (`486`), or the number's concurrency limit was reached.
    Busy,
    /// Phones rang and nobody answered (`480`).
    NoAnswer,
    /// The number's status is `suspended`.
    Suspended,
    /// Screening refused the caller: anonymous, blacklist, whitelist, blocked region.
    Refused,
}

impl AnnouncementCase {
    /// Every case, in the order the configuration documents them.
    pub const ALL: [AnnouncementCase; 5] = [
        AnnouncementCase::AfterHours,
        AnnouncementCase::Busy,
        AnnouncementCase::NoAnswer,
        AnnouncementCase::Suspended,
        AnnouncementCase::Refused,
    ];

    /// The key in the configuration's `announcements` table, e.g. `"no_answer"`.
    pub fn key(self) -> &'static str {
        match self {
            AnnouncementCase::AfterHours => "after_hours",
            AnnouncementCase::Busy => "busy",
            AnnouncementCase::NoAnswer => "no_answer",
            AnnouncementCase::Suspended => "suspended",
            AnnouncementCase::Refused => "refused",
        }
    }
}

/// The `[[prompt]]` names played per case; `None` releases the call with the bare
/// status, as without announcements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Announcements {
    pub after_hours: Option<String>,
    pub busy: Option<String>,
    pub no_answer: Option<String>,
    pub suspended: Option<String>,
    pub refused: Option<String>,
}

impl Announcements {
    /// The prompt for `case`, if one is set.
    pub fn get(&self, case: AnnouncementCase) -> Option<&str> {
        match case {
            AnnouncementCase::AfterHours => self.after_hours.as_deref(),
            AnnouncementCase::Busy => self.busy.as_deref(),
            AnnouncementCase::NoAnswer => self.no_answer.as_deref(),
            AnnouncementCase::Suspended => self.suspended.as_deref(),
            AnnouncementCase::Refused => self.refused.as_deref(),
        }
    }

    /// These announcements, each case this one leaves unset taken from `fallback`
    /// (a number's own over its plan's).
    pub fn or(&self, fallback: &Announcements) -> Announcements {
        let pick = |own: &Option<String>, other: &Option<String>| own.clone().or(other.clone());
        Announcements {
            after_hours: pick(&self.after_hours, &fallback.after_hours),
            busy: pick(&self.busy, &fallback.busy),
            no_answer: pick(&self.no_answer, &fallback.no_answer),
            suspended: pick(&self.suspended, &fallback.suspended),
            refused: pick(&self.refused, &fallback.refused),
        }
    }

    /// Whether no case has an announcement.
    pub fn is_empty(&self) -> bool {
        AnnouncementCase::ALL
            .iter()
            .all(|&case| self.get(case).is_none())
    }
}

/// `announcements = { after_hours = "...", ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of prompt names, e.g. { after_hours = \"after-hours\", busy = \"busy\" }"
)]
pub(crate) struct RawAnnouncements {
    after_hours: Option<Spanned<String>>,
    busy: Option<Spanned<String>>,
    no_answer: Option<Spanned<String>>,
    suspended: Option<Spanned<String>>,
    refused: Option<Spanned<String>>,
}

/// Checks that each prompt named under `field` (`plan[0].announcements`) is declared,
/// and the operator's or `owner`'s own.
pub(crate) fn validate(
    raw: Option<&RawAnnouncements>,
    field: &str,
    prompts: &Catalog,
    owner: Option<&str>,
    diagnostics: &mut Diagnostics,
) -> Announcements {
    let Some(raw) = raw else {
        return Announcements::default();
    };
    let mut check = |case: AnnouncementCase, prompt: &Option<Spanned<String>>| {
        let prompt = prompt.as_ref()?;
        prompts.check_reference(
            prompt,
            format!("{field}.{}", case.key()),
            owner,
            diagnostics,
        );
        Some(prompt.get_ref().clone())
    };
    Announcements {
        after_hours: check(AnnouncementCase::AfterHours, &raw.after_hours),
        busy: check(AnnouncementCase::Busy, &raw.busy),
        no_answer: check(AnnouncementCase::NoAnswer, &raw.no_answer),
        suspended: check(AnnouncementCase::Suspended, &raw.suspended),
        refused: check(AnnouncementCase::Refused, &raw.refused),
    }
}

/// `announcement_plays`: 1 to [`MAX_ANNOUNCEMENT_PLAYS`]; `None` when absent (or
/// invalid, which has been reported).
pub(crate) fn plays(
    raw: Option<&Spanned<u64>>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> Option<u32> {
    let raw = raw?;
    let value = check::bounded_u32(Some(raw), 0, 1..=MAX_ANNOUNCEMENT_PLAYS, field, diagnostics);
    (value != 0).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numbers_announcements_override_its_plans_case_by_case() {
        let plan = Announcements {
            after_hours: Some("closed".into()),
            busy: Some("busy".into()),
            ..Announcements::default()
        };
        let number = Announcements {
            busy: Some("our-busy".into()),
            refused: Some("go-away".into()),
            ..Announcements::default()
        };
        let merged = number.or(&plan);
        assert_eq!(merged.get(AnnouncementCase::AfterHours), Some("closed"));
        assert_eq!(merged.get(AnnouncementCase::Busy), Some("our-busy"));
        assert_eq!(merged.get(AnnouncementCase::NoAnswer), None);
        assert_eq!(merged.get(AnnouncementCase::Refused), Some("go-away"));
        assert!(Announcements::default().is_empty());
        assert!(!merged.is_empty());
        let keys: Vec<&str> = AnnouncementCase::ALL.iter().map(|c| c.key()).collect();
        assert_eq!(
            keys,
            ["after_hours", "busy", "no_answer", "suspended", "refused"]
        );
    }
}
