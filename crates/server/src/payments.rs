//! Money an operator puts on an account: recharges (a customer's payment) and
//! adjustments (a correction of either sign). One set of rules for every door:
//! `sihai account recharge` / `adjust` and the admin API's `recharges` /
//! `adjustments` both call [`post_payment`].
//!
//! The rules: the amount is exact (the ledger's ten-thousandths of a yuan); a recharge
//! is more than zero and at least the enterprise's `min_recharge` unless the operator
//! overrides it (`force`), and goes only to an enterprise sihai bills; an adjustment is
//! not zero and says why (its note). Every payment is idempotent by its reference: the
//! same reference and amount again posts nothing and answers the entry already posted;
//! the same reference with another amount is refused. After a posting the account is
//! reviewed as the daemon would, so a suspended account whose balance is back above its
//! threshold resumes at once.

use jiff::Timestamp;
use sihai_config::Config;
use sihai_rating::Money;
use sihai_store::{
    Account, CdrStore, EntryKind, LedgerEntry, LedgerStore, NewEntry, Posted, StoreError,
};

use crate::billing::{MonthEnds, review_account};

/// Which payment, with what only that kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    /// A customer's payment; `force` posts it below the enterprise's `min_recharge`.
    Recharge { force: bool },
    /// An operator's correction, of either sign.
    Adjustment,
}

impl PaymentKind {
    fn entry_kind(self) -> EntryKind {
        match self {
            PaymentKind::Recharge { .. } => EntryKind::Recharge,
            PaymentKind::Adjustment => EntryKind::Adjustment,
        }
    }
}

/// A payment to post.
#[derive(Debug, Clone)]
pub struct Payment {
    pub enterprise: String,
    pub kind: PaymentKind,
    pub amount: Money,
    /// The payment's reference (bank transfer, receipt): what makes it idempotent.
    pub reference: String,
    /// Shown on the ledger and the statement; required for an adjustment.
    pub note: Option<String>,
    /// Who posts it: `cli`, or the API user's login.
    pub actor: String,
    pub at: Timestamp,
}

/// What a payment did.
#[derive(Debug, Clone)]
pub struct PaymentReceipt {
    /// The entry under the payment's reference: the one just posted, or the one a
    /// previous request with the same reference and amount posted.
    pub entry: LedgerEntry,
    /// False when the entry was already posted: nothing changed.
    pub new: bool,
    /// What the review after it did (fees, resumption…), one line each.
    pub reviewed: Vec<String>,
    /// The account after the payment and its review.
    pub account: Account,
}

/// Why a payment was refused; nothing was posted.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("unknown enterprise {0:?}: not in the configuration")]
    UnknownEnterprise(String),
    #[error(
        "enterprise {0:?} is not billed by sihai (no `tariff` in its [[enterprise]]): it has no \
         prepaid account to recharge"
    )]
    NotBilled(String),
    #[error(
        "enterprise {0:?} has no prepaid account: it is not billed by sihai (no `tariff` in its \
         [[enterprise]])"
    )]
    NoAccount(String),
    #[error("unknown enterprise {0:?}: not in the configuration and no account")]
    NoSuchAccount(String),
    #[error("a recharge must be more than 0 (asked: {0})")]
    NotPositive(String),
    #[error("{amount} is below {enterprise}'s minimum recharge of {minimum}")]
    BelowMinimum {
        enterprise: String,
        amount: String,
        minimum: String,
    },
    #[error("an adjustment of 0 changes nothing")]
    ZeroAdjustment,
    #[error("an adjustment needs a note saying why")]
    NoteRequired,
    #[error("the reference must not be empty: it is what makes posting the {0} idempotent")]
    EmptyReference(EntryKind),
    #[error(
        "{kind} {reference:?} of {enterprise} is already posted with a different amount ({posted} \
         posted, {asked} asked): nothing changed; a new payment needs a new reference"
    )]
    ReferenceReused {
        enterprise: String,
        kind: EntryKind,
        reference: String,
        posted: String,
        asked: String,
    },
    #[error("posting the {kind} to {enterprise}")]
    Store {
        enterprise: String,
        kind: EntryKind,
        // Boxed: the store's error is large, and a refusal is the common case.
        #[source]
        source: Box<StoreError>,
    },
}

impl PaymentError {
    /// The request field the refusal is about, for a client to show it there; `None`
    /// for refusals about the enterprise, an earlier payment or the store.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PaymentError::NotPositive(_)
            | PaymentError::BelowMinimum { .. }
            | PaymentError::ZeroAdjustment => Some("amount"),
            PaymentError::NoteRequired => Some("note"),
            PaymentError::EmptyReference(_) => Some("reference"),
            PaymentError::UnknownEnterprise(_)
            | PaymentError::NotBilled(_)
            | PaymentError::NoAccount(_)
            | PaymentError::NoSuchAccount(_)
            | PaymentError::ReferenceReused { .. }
            | PaymentError::Store { .. } => None,
        }
    }
}

/// The rules on the request itself, before any store is asked: `min_recharge` is the
/// enterprise's (ignored for an adjustment).
pub fn check_payment(payment: &Payment, min_recharge: Money) -> Result<(), PaymentError> {
    let amount = payment.amount;
    match payment.kind {
        PaymentKind::Recharge { force } => {
            if amount <= Money::ZERO {
                return Err(PaymentError::NotPositive(amount.exact().to_string()));
            }
            if amount < min_recharge && !force {
                return Err(PaymentError::BelowMinimum {
                    enterprise: payment.enterprise.clone(),
                    amount: amount.exact().to_string(),
                    minimum: min_recharge.to_string(),
                });
            }
        }
        PaymentKind::Adjustment => {
            if amount.is_zero() {
                return Err(PaymentError::ZeroAdjustment);
            }
            if payment.note.as_deref().is_none_or(|n| n.trim().is_empty()) {
                return Err(PaymentError::NoteRequired);
            }
        }
    }
    if payment.reference.trim().is_empty() {
        return Err(PaymentError::EmptyReference(payment.kind.entry_kind()));
    }
    Ok(())
}

/// Checks and posts `payment` to its enterprise's account, then reviews the account as
/// the daemon would (see the module's documentation).
///
/// A recharge goes only to an enterprise of `config` that sihai bills; an adjustment
/// also to an account whose enterprise is no longer configured (a correction after it
/// left). The account of a billed enterprise is opened first if it has none yet.
pub fn post_payment(
    cdrs: &dyn CdrStore,
    ledger: &dyn LedgerStore,
    config: &Config,
    payment: Payment,
) -> Result<PaymentReceipt, PaymentError> {
    let id = payment.enterprise.clone();
    let kind = payment.kind.entry_kind();
    let store_error = |source| PaymentError::Store {
        enterprise: id.clone(),
        kind,
        source: Box::new(source),
    };
    let enterprise = config.enterprise(&id);
    let billing = enterprise.and_then(|e| e.billing.as_ref());
    match (payment.kind, billing) {
        (_, Some(_)) => {
            ledger.open_account(&id, payment.at).map_err(store_error)?;
        }
        (PaymentKind::Recharge { .. }, None) if enterprise.is_some() => {
            return Err(PaymentError::NotBilled(id));
        }
        (PaymentKind::Recharge { .. }, None) => return Err(PaymentError::UnknownEnterprise(id)),
        (PaymentKind::Adjustment, None) => {
            if ledger.account(&id).map_err(store_error)?.is_none() {
                return Err(if enterprise.is_some() {
                    PaymentError::NoAccount(id)
                } else {
                    PaymentError::NoSuchAccount(id)
                });
            }
        }
    }
    let min_recharge = billing.map_or(Money::ZERO, |b| b.policy.min_recharge);
    check_payment(&payment, min_recharge)?;
    let at = payment.at;
    let posted = ledger
        .post(NewEntry {
            enterprise: id.clone(),
            kind,
            amount: payment.amount,
            reference: payment.reference.clone(),
            at,
            actor: payment.actor,
            note: payment.note,
        })
        .map_err(|err| match err {
            StoreError::ConflictingEntry { posted, .. } => PaymentError::ReferenceReused {
                enterprise: id.clone(),
                kind,
                reference: payment.reference.clone(),
                posted: posted.exact().to_string(),
                asked: payment.amount.exact().to_string(),
            },
            err => store_error(err),
        })?;
    let new = posted.is_new();
    let entry = match posted {
        Posted::New(entry) | Posted::Already(entry) => entry,
    };
    let reviewed = review_account(cdrs, ledger, config, &id, at, &mut MonthEnds::default())
        .map_err(store_error)?;
    let account = ledger
        .account(&id)
        .map_err(store_error)?
        .ok_or_else(|| PaymentError::NoSuchAccount(id.clone()))?;
    Ok(PaymentReceipt {
        entry,
        new,
        reviewed,
        account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(kind: PaymentKind, amount: &str, note: Option<&str>, reference: &str) -> Payment {
        Payment {
            enterprise: "acme".into(),
            kind,
            amount: amount.parse().expect("an amount"),
            reference: reference.into(),
            note: note.map(str::to_owned),
            actor: "test".into(),
            at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn recharges_are_positive_and_at_least_the_minimum_unless_forced() {
        let min: Money = "600".parse().expect("min");
        let recharge = PaymentKind::Recharge { force: false };
        let forced = PaymentKind::Recharge { force: true };
        assert!(check_payment(&payment(recharge, "600", None, "r"), min).is_ok());
        assert!(check_payment(&payment(recharge, "600.0001", None, "r"), min).is_ok());
        let below = check_payment(&payment(recharge, "599.99", None, "r"), min).unwrap_err();
        assert!(
            matches!(&below, PaymentError::BelowMinimum { amount, minimum, .. }
                if amount == "599.99" && minimum == "600.00"),
            "{below:?}"
        );
        assert_eq!(below.field(), Some("amount"));
        assert!(check_payment(&payment(forced, "1", None, "r"), min).is_ok());
        for amount in ["0", "-5"] {
            for kind in [recharge, forced] {
                let err = check_payment(&payment(kind, amount, None, "r"), min).unwrap_err();
                assert!(matches!(err, PaymentError::NotPositive(_)), "{err:?}");
            }
        }
        let err = check_payment(&payment(recharge, "700", None, "  "), min).unwrap_err();
        assert_eq!(err.field(), Some("reference"));
    }

    #[test]
    fn adjustments_are_not_zero_and_say_why() {
        let min: Money = "600".parse().expect("min");
        let adjust = PaymentKind::Adjustment;
        assert!(check_payment(&payment(adjust, "-12.50", Some("refund"), "a"), min).is_ok());
        assert!(check_payment(&payment(adjust, "0.0001", Some("fix"), "a"), min).is_ok());
        let zero = check_payment(&payment(adjust, "0", Some("fix"), "a"), min).unwrap_err();
        assert!(matches!(zero, PaymentError::ZeroAdjustment), "{zero:?}");
        for note in [None, Some(""), Some("  ")] {
            let err = check_payment(&payment(adjust, "5", note, "a"), min).unwrap_err();
            assert_eq!(err.field(), Some("note"), "{note:?}");
        }
    }
}
