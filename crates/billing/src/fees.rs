//! The fees of the price list, besides calls: the opening fee, extra bound phones,
//! ringback recordings and switchboard extensions, as a pure function of (what the
//! enterprise has configured, its policy, when its account was opened, now).
//!
//! The daemon calls [`fees_due`] for every billed account at each review, before the
//! lifecycle [`review`](crate::review) (so that a fee taking the balance below a threshold
//! is judged in the same pass), and posts every entry it returns. Each entry's reference
//! is deterministic and names what it charges, so posting again is a no-op: the ledger is
//! idempotent on (enterprise, kind, reference). The function does not need to know what
//! was posted before; the references carry that.
//!
//! # The rules
//!
//! Every entry is kind [`EntryKind::Fee`], a negative amount, actor `system`. A fee
//! configured as zero posts nothing (and a negative one, which configuration refuses,
//! nothing either: fees are never credits).
//!
//! - **Opening**: `opening_fee` once, reference `fee/opening`.
//! - **Ringback recording** (彩铃): `ringback_recording_fee` once per distinct prompt name
//!   a ringback of the enterprise names (a number's, a menu node's, an extension's),
//!   reference `fee/ringback/{prompt}`. The recording is what is charged, so a prompt
//!   used in three places is charged once, and replacing its audio under the same name (a
//!   new file, or a new upload through the admin API) is not charged again (sihai cannot
//!   tell a new recording from a copy); a new name is a new recording. Whether a prompt's
//!   audio is a file on the node or an uploaded recording does not matter: the name is
//!   what is counted.
//! - **Extra bound phones**: the enterprise's distinct bound phones in a stable order
//!   (the daemon gives them by first appearance in its groups); every phone beyond the
//!   first `included_phones` owes `extra_phone_fee` for the current calendar year
//!   (Asia/Shanghai), reference `fee/extra-phone/{year}/{phone}`. A phone bound later
//!   in the year is charged at the first review that sees it. **No pro rata**: each
//!   calendar year in which a phone is bound beyond the included ones costs a full
//!   year, the year of opening included, as the price list says ("240元/线/年"); pro rata
//!   would need a rounding rule for a fraction of a year, and a phone unbound in March
//!   and bound again in May is charged once in that year, not twice. A phone that
//!   replaces another within the year is a new line and is charged; one already charged
//!   for the year is not refunded when removed.
//! - **Switchboard extensions** (分机): `extension_fee` per extension per calendar year,
//!   reference `fee/extension/{year}/{extension}`, by the same rule.
//!
//! Yearly fees are only for the current year: a year in which no review ran (the
//! daemon down all year) is not caught up, because what was bound then is not known.
//! Nothing yearly is owed for a year before the account's opening (a clock set back).
//!
//! # When a fee is dated
//!
//! Every entry is dated `now`, the review that finds it due, never back-dated to the
//! start of its year or the account's opening: the store starts `negative_since` at the
//! `at` of the entry that takes a balance below zero, so a phone bound in July charged
//! as of 1 January would make a fresh debt look six months old and reclaim the numbers
//! in the same pass; and the fee then shows in the statement of the month it was found
//! due, where the enterprise can see it, not in a month already billed. The idempotence
//! does not rest on the date: the reference alone is the key, so a repeat posts nothing
//! whatever its `at`. For a new account the first review follows the opening at once,
//! so the opening fee is dated within a moment of `opened_at`.

use std::collections::HashSet;

use jiff::Timestamp;
use sihai_rating::{Money, china_time_zone};
use sihai_records::{EntryKind, NewEntry};

use crate::AccountPolicy;
use crate::lifecycle::ACTOR;

/// The prefix of every fee's reference.
pub const FEE_PREFIX: &str = "fee/";

/// The reference of the opening fee.
pub const OPENING_REFERENCE: &str = "fee/opening";

/// What an enterprise has configured that its fees are counted on. The function
/// removes repeats itself (keeping the first), so a caller need not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Billables {
    /// Its bound phones (a number or a URI, as configured), in a stable order: the first
    /// `included_phones` distinct ones are included, the rest are extra. The daemon
    /// gives them by first appearance in the enterprise's groups, so adding a phone at
    /// the end of a group, or a new group, makes the new phone the extra one.
    pub phones: Vec<String>,
    /// Its switchboard extension numbers.
    pub extensions: Vec<String>,
    /// The prompt names its ringbacks use.
    pub ringbacks: Vec<String>,
}

/// The reference of a ringback recording's fee: `fee/ringback/hold`.
pub fn ringback_reference(prompt: &str) -> String {
    format!("{FEE_PREFIX}ringback/{prompt}")
}

/// The reference of an extra bound phone's fee for `year`:
/// `fee/extra-phone/2026/13800138000`.
pub fn extra_phone_reference(year: i16, phone: &str) -> String {
    format!("{FEE_PREFIX}extra-phone/{year:04}/{phone}")
}

/// The reference of an extension's fee for `year`: `fee/extension/2026/8001`.
pub fn extension_reference(year: i16, extension: &str) -> String {
    format!("{FEE_PREFIX}extension/{year:04}/{extension}")
}

/// The fee entries due for `enterprise` at `now`, in order: opening, ringback
/// recordings, extra phones, extensions. Posting them all (again) is idempotent; see
/// the module documentation for the rules.
pub fn fees_due(
    enterprise: &str,
    policy: &AccountPolicy,
    billables: &Billables,
    opened_at: Timestamp,
    now: Timestamp,
) -> Vec<NewEntry> {
    let entry = |amount: Money, reference: String, note: String| NewEntry {
        enterprise: enterprise.to_owned(),
        kind: EntryKind::Fee,
        amount,
        reference,
        at: now,
        actor: ACTOR.to_owned(),
        note: Some(note),
    };
    let mut due = Vec::new();

    if let Some(fee) = debit(policy.opening_fee) {
        due.push(entry(
            fee,
            OPENING_REFERENCE.to_owned(),
            "opening fee".to_owned(),
        ));
    }

    if let Some(fee) = debit(policy.ringback_recording_fee) {
        for prompt in distinct(&billables.ringbacks) {
            due.push(entry(
                fee,
                ringback_reference(prompt),
                format!("ringback recording fee, prompt {prompt}"),
            ));
        }
    }

    let tz = china_time_zone();
    let year = now.to_zoned(tz.clone()).year();
    if year < opened_at.to_zoned(tz).year() {
        return due;
    }

    if let Some(fee) = debit(policy.extra_phone_fee) {
        // u32 always fits usize on the targets sihai runs on; saturate rather than panic
        // on a 16-bit one.
        let included = usize::try_from(policy.included_phones).unwrap_or(usize::MAX);
        let total = distinct(&billables.phones).count();
        for (position, phone) in distinct(&billables.phones).enumerate().skip(included) {
            due.push(entry(
                fee,
                extra_phone_reference(year, phone),
                format!(
                    "extra bound phone {phone} for {year:04} (phone {} of {}, {} included)",
                    position + 1,
                    total,
                    policy.included_phones
                ),
            ));
        }
    }

    if let Some(fee) = debit(policy.extension_fee) {
        for extension in distinct(&billables.extensions) {
            due.push(entry(
                fee,
                extension_reference(year, extension),
                format!("switchboard extension {extension} for {year:04}"),
            ));
        }
    }
    due
}

/// The debit of a fee: `-fee`, or `None` when the fee is zero (or negative, which the
/// configuration refuses): a zero fee posts nothing and a fee never credits.
fn debit(fee: Money) -> Option<Money> {
    fee.checked_neg().filter(|amount| amount.is_negative())
}

/// The items in order, each once (its first appearance).
fn distinct(items: &[String]) -> impl Iterator<Item = &str> {
    let mut seen = HashSet::new();
    items
        .iter()
        .map(String::as_str)
        .filter(move |item| seen.insert(*item))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;

    fn at(year: i16, month: i8, day: i8, hour: i8) -> Timestamp {
        date(year, month, day)
            .at(hour, 0, 0, 0)
            .to_zoned(china_time_zone())
            .expect("a Shanghai time")
            .timestamp()
    }

    fn yuan(y: i64) -> Money {
        Money::from_yuan(y).expect("yuan")
    }

    /// The seeds' figures, with an opening fee and `included` phones.
    fn policy(included: u32) -> AccountPolicy {
        AccountPolicy {
            opening_fee: yuan(500),
            included_phones: included,
            ..AccountPolicy::default()
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn phones(count: usize) -> Billables {
        Billables {
            phones: (0..count).map(|i| format!("1390000{i:04}")).collect(),
            ..Billables::default()
        }
    }

    fn references(entries: &[NewEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.reference.as_str()).collect()
    }

    #[test]
    fn exactly_the_included_phones_owe_nothing_and_one_more_owes_one_year() {
        let opened = at(2026, 3, 1, 9);
        let now = at(2026, 7, 15, 10);
        let none = fees_due("acme", &policy(20), &phones(20), opened, now);
        assert_eq!(references(&none), ["fee/opening"]);

        let one = fees_due("acme", &policy(20), &phones(21), opened, now);
        assert_eq!(
            references(&one),
            ["fee/opening", "fee/extra-phone/2026/13900000020"]
        );
        let fee = &one[1];
        assert_eq!(fee.kind, EntryKind::Fee);
        assert_eq!(fee.amount, yuan(-240));
        assert_eq!(fee.actor, "system");
        assert_eq!(fee.at, now);
        assert_eq!(fee.enterprise, "acme");
        assert_eq!(
            fee.note.as_deref(),
            Some("extra bound phone 13900000020 for 2026 (phone 21 of 21, 20 included)")
        );
    }

    #[test]
    fn a_phone_in_two_groups_counts_once() {
        let billables = Billables {
            phones: strings(&["13900000001", "13900000002", "13900000001"]),
            ..Billables::default()
        };
        let due = fees_due(
            "acme",
            &policy(1),
            &billables,
            at(2026, 1, 1, 0),
            at(2026, 5, 1, 0),
        );
        assert_eq!(
            references(&due),
            ["fee/opening", "fee/extra-phone/2026/13900000002"]
        );
    }

    #[test]
    fn a_new_year_owes_new_yearly_entries_and_nothing_once_only_again() {
        let billables = Billables {
            phones: strings(&["13900000001", "13900000002"]),
            extensions: strings(&["8001"]),
            ringbacks: strings(&["hold"]),
        };
        let opened = at(2026, 11, 20, 9);
        let this_year = fees_due("acme", &policy(1), &billables, opened, at(2026, 12, 31, 23));
        // 00:00 of 1 January in Shanghai is 16:00 UTC the day before: the year turns by
        // China's calendar.
        let next_year = fees_due("acme", &policy(1), &billables, opened, at(2027, 1, 1, 0));
        assert_eq!(
            references(&this_year),
            [
                "fee/opening",
                "fee/ringback/hold",
                "fee/extra-phone/2026/13900000002",
                "fee/extension/2026/8001"
            ]
        );
        assert_eq!(
            references(&next_year),
            [
                "fee/opening",
                "fee/ringback/hold",
                "fee/extra-phone/2027/13900000002",
                "fee/extension/2027/8001"
            ]
        );
        // The once-only fees keep their reference, so posting them again is a no-op.
        let yearly = |entries: &[NewEntry]| -> HashSet<String> {
            entries
                .iter()
                .filter(|e| e.reference.contains("/20"))
                .map(|e| e.reference.clone())
                .collect()
        };
        assert!(yearly(&this_year).is_disjoint(&yearly(&next_year)));
    }

    #[test]
    fn a_repeated_call_gives_the_same_entries() {
        let billables = Billables {
            phones: strings(&["13900000001", "sip:desk@pbx.example", "13900000003"]),
            extensions: strings(&["8001", "8002"]),
            ringbacks: strings(&["hold", "menu-hold"]),
        };
        let (opened, now) = (at(2026, 2, 1, 9), at(2026, 2, 3, 12));
        let first = fees_due("acme", &policy(1), &billables, opened, now);
        assert_eq!(first, fees_due("acme", &policy(1), &billables, opened, now));
        // A later review in the same year: the same references (the store keeps the
        // first posting of each; only `at` differs).
        let later = fees_due("acme", &policy(1), &billables, opened, at(2026, 9, 3, 12));
        assert_eq!(references(&first), references(&later));
        assert_eq!(first.len(), 1 + 2 + 2 + 2);
    }

    #[test]
    fn zero_fees_post_nothing() {
        let free = AccountPolicy {
            opening_fee: Money::ZERO,
            included_phones: 0,
            extra_phone_fee: Money::ZERO,
            ringback_recording_fee: Money::ZERO,
            extension_fee: Money::ZERO,
            ..AccountPolicy::default()
        };
        let billables = Billables {
            phones: strings(&["13900000001", "13900000002"]),
            extensions: strings(&["8001"]),
            ringbacks: strings(&["hold"]),
        };
        let due = fees_due(
            "acme",
            &free,
            &billables,
            at(2026, 1, 5, 0),
            at(2026, 6, 1, 0),
        );
        assert!(due.is_empty(), "{due:#?}");
    }

    #[test]
    fn a_negative_fee_never_credits() {
        let odd = AccountPolicy {
            opening_fee: yuan(-5),
            ..AccountPolicy::default()
        };
        let due = fees_due(
            "acme",
            &odd,
            &Billables::default(),
            at(2026, 1, 5, 0),
            at(2026, 6, 1, 0),
        );
        assert!(due.is_empty(), "{due:#?}");
    }

    #[test]
    fn no_included_phones_charges_every_phone() {
        let due = fees_due(
            "acme",
            &policy(0),
            &phones(2),
            at(2026, 1, 5, 0),
            at(2026, 6, 1, 0),
        );
        assert_eq!(due.len(), 3, "{due:#?}");
    }

    #[test]
    fn a_ringback_used_in_three_places_is_one_recording() {
        let billables = Billables {
            ringbacks: strings(&["hold", "hold", "menu-hold", "hold"]),
            ..Billables::default()
        };
        let due = fees_due(
            "acme",
            &AccountPolicy::default(),
            &billables,
            at(2026, 1, 5, 0),
            at(2026, 6, 1, 0),
        );
        assert_eq!(
            references(&due),
            ["fee/ringback/hold", "fee/ringback/menu-hold"]
        );
        assert!(due.iter().all(|e| e.amount == yuan(-150)));
    }

    #[test]
    fn nothing_yearly_before_the_year_of_opening() {
        // A clock set back to before the opening: only the once-only fees.
        let billables = Billables {
            extensions: strings(&["8001"]),
            ..phones(30)
        };
        let due = fees_due(
            "acme",
            &policy(20),
            &billables,
            at(2026, 1, 5, 0),
            at(2025, 12, 31, 23),
        );
        assert_eq!(references(&due), ["fee/opening"]);
    }

    fn billables() -> impl Strategy<Value = Billables> {
        let name = "[a-z0-9]{1,3}";
        (
            prop::collection::vec(name, 0..12),
            prop::collection::vec(name, 0..6),
            prop::collection::vec(name, 0..6),
        )
            .prop_map(|(phones, extensions, ringbacks)| Billables {
                phones,
                extensions,
                ringbacks,
            })
    }

    proptest! {
        /// Within one result every reference is unique (two entries with one key would be
        /// one post), and a second review in the same year gives the same references and
        /// amounts, whatever the configuration and the instant.
        #[test]
        fn references_are_unique_and_stable(
            billables in billables(),
            included in 0u32..8,
            opened_day in 0i64..365,
            later_s in 0i64..(365 * 86_400),
        ) {
            let opened = at(2026, 1, 1, 0)
                .checked_add(jiff::SignedDuration::from_hours(opened_day * 24))
                .expect("in range");
            let year_end = at(2027, 1, 1, 0);
            let now = opened.checked_add(jiff::SignedDuration::from_secs(later_s)).expect("in range").min(year_end
                .checked_sub(jiff::SignedDuration::from_secs(1)).expect("in range"));
            let policy = policy(included);
            let first = fees_due("acme", &policy, &billables, opened, now);
            let refs: HashSet<&str> = first.iter().map(|e| e.reference.as_str()).collect();
            prop_assert_eq!(refs.len(), first.len());
            prop_assert!(first.iter().all(|e| e.amount.is_negative() && e.kind == EntryKind::Fee));
            prop_assert_eq!(&first, &fees_due("acme", &policy, &billables, opened, now));
            let again = fees_due("acme", &policy, &billables, opened, year_end
                .checked_sub(jiff::SignedDuration::from_secs(1)).expect("in range"));
            let key = |entries: &[NewEntry]| -> Vec<(String, Money)> {
                entries.iter().map(|e| (e.reference.clone(), e.amount)).collect()
            };
            prop_assert_eq!(key(&first), key(&again));
        }
    }
}
