//! Money the operator puts on an enterprise's account: `POST
//! /api/v1/enterprises/{enterprise}/recharges` and `…/adjustments`.
//!
//! Exactly what `sihai account recharge` and `sihai account adjust` do, through the same
//! code (`sihai_server::payments`): amounts are exact decimal yuan strings; a recharge
//! is at least the enterprise's `min_recharge` unless `force` is set; an adjustment
//! says why in its note; each is idempotent by its reference (the same reference and
//! amount again posts nothing and answers the entry already posted, `200` instead of
//! `201`; another amount under a used reference is a `409`); the account is reviewed
//! after the posting, so a suspended account whose balance is back above its threshold
//! resumes at once.
//!
//! Only the operator posts: an enterprise's own users get `403` for their enterprise
//! and `404` for any other. Every accepted request is audited (`account.recharge` or
//! `account.adjustment`, the reference as target, the amount and the balance in
//! `after`), a replay too, so a retry after a lost answer is on the record.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sihai_server::payments::{Payment, PaymentError, PaymentKind, PaymentReceipt, post_payment};
use sihai_store::{Money, NewAudit};

use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::records::LedgerEntryJson;
use crate::running::running_config;
use crate::{Api, blocking};

/// A recharge: a customer's payment.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // The body is read field by field (each problem a 422 naming it); this documents it.
pub struct RechargeRequest {
    /// Exact decimal yuan, up to four decimals, as a string: `"600"`, `"600.50"`.
    amount: String,
    /// The payment's reference (bank transfer, receipt): posting it again changes nothing.
    reference: String,
    /// Shown on the ledger and the statement.
    note: Option<String>,
    /// Post an amount below the enterprise's `min_recharge` (`sihai account recharge --force`).
    force: Option<bool>,
}

/// An adjustment: the operator's correction, of either sign.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)] // As for RechargeRequest.
pub struct AdjustmentRequest {
    /// Exact decimal yuan, either sign, as a string: `"20"`, `"-12.50"`.
    amount: String,
    /// What makes the adjustment idempotent.
    reference: String,
    /// Why (required): shown on the ledger and the statement.
    note: String,
}

/// Where the account stands after the payment.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BalanceJson {
    /// Exact decimal yuan.
    balance: String,
    reserved: String,
    available: String,
    /// `active`, `suspended` or `reclaimed`.
    status: String,
}

/// What a payment did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PaymentJson {
    /// The entry under the reference: the one posted now, or the one posted by an
    /// earlier request with the same reference and amount.
    entry: LedgerEntryJson,
    /// True when the entry was already posted: nothing changed.
    replayed: bool,
    /// What the review after the posting did (e.g. `acme: resumed`).
    reviewed: Vec<String>,
    account: BalanceJson,
}

/// The fields of a payment's body, each checked: every problem is a 422 naming it.
struct Fields {
    amount: Money,
    reference: String,
    note: Option<String>,
    force: bool,
}

fn read_fields(body: &Value, kind: PaymentKind) -> Result<Fields, ApiError> {
    let entry = match kind {
        PaymentKind::Recharge { .. } => "recharge",
        PaymentKind::Adjustment => "adjustment",
    };
    let mut errors = Vec::new();
    let mut problem = |field: &str, message: String| {
        errors.push(FieldError {
            entry: entry.to_owned(),
            field: field.to_owned(),
            message,
        });
    };
    let Some(object) = body.as_object() else {
        problem(
            "",
            "the body must be a JSON object: {\"amount\": \"600.50\", \"reference\": \"…\"}".into(),
        );
        return Err(ApiError::Invalid(errors));
    };
    let allowed: &[&str] = match kind {
        PaymentKind::Recharge { .. } => &["amount", "reference", "note", "force"],
        PaymentKind::Adjustment => &["amount", "reference", "note"],
    };
    for name in object.keys().filter(|k| !allowed.contains(&k.as_str())) {
        problem(
            name,
            format!("unknown field; a {entry} has {}", allowed.join(", ")),
        );
    }
    let amount = match object.get("amount") {
        Some(Value::String(text)) => match text.parse::<Money>() {
            Ok(amount) => Some(amount),
            Err(e) => {
                problem(
                    "amount",
                    format!("{e}: {text:?}; write yuan such as \"600.50\""),
                );
                None
            }
        },
        Some(Value::Number(n)) => {
            problem(
                "amount",
                format!(
                    "must be a string of exact decimal yuan such as \"{n}\", not a JSON number"
                ),
            );
            None
        }
        Some(_) => {
            problem(
                "amount",
                "must be a string of decimal yuan such as \"600.50\"".into(),
            );
            None
        }
        None => {
            problem("amount", "required".into());
            None
        }
    };
    let reference = match object.get("reference") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            problem("reference", "must be a string".into());
            None
        }
        None => {
            problem(
                "reference",
                "required: it is what makes the posting idempotent".into(),
            );
            None
        }
    };
    let note = match object.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            problem("note", "must be a string".into());
            None
        }
    };
    let force = match object.get("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(force)) => *force,
        Some(_) => {
            problem("force", "must be true or false".into());
            false
        }
    };
    match (amount, reference) {
        (Some(amount), Some(reference)) if errors.is_empty() => Ok(Fields {
            amount,
            reference,
            note,
            force,
        }),
        _ => Err(ApiError::Invalid(errors)),
    }
}

/// The API's answer to a refusal of the shared rules.
fn refusal(err: PaymentError, entry: &str) -> ApiError {
    if let Some(field) = err.field() {
        return ApiError::Invalid(vec![FieldError {
            entry: entry.to_owned(),
            field: field.to_owned(),
            message: err.to_string(),
        }]);
    }
    match err {
        PaymentError::ReferenceReused { .. } => ApiError::Conflict(err.to_string()),
        // Not billed, or unknown: it has no account, as the account route says.
        PaymentError::UnknownEnterprise(_)
        | PaymentError::NotBilled(_)
        | PaymentError::NoAccount(_)
        | PaymentError::NoSuchAccount(_) => ApiError::NotFound,
        other => ApiError::Internal(format!("{other}: {:?}", std::error::Error::source(&other))),
    }
}

/// Checks who asks and what, posts through the shared rules, audits, answers.
async fn pay(
    api: Api,
    caller: Caller,
    enterprise: String,
    body: Value,
    kind: PaymentKind,
) -> Result<Response, ApiError> {
    // Another enterprise's account does not exist for the caller, whatever the body.
    if !caller.sees(&enterprise) {
        return Err(ApiError::NotFound);
    }
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "only the operator posts recharges and adjustments",
        ));
    }
    let fields = read_fields(&body, kind)?;
    let kind = match kind {
        PaymentKind::Recharge { .. } => PaymentKind::Recharge {
            force: fields.force,
        },
        PaymentKind::Adjustment => PaymentKind::Adjustment,
    };
    let (entry_name, action) = match kind {
        PaymentKind::Recharge { .. } => ("recharge", "account.recharge"),
        PaymentKind::Adjustment => ("adjustment", "account.adjustment"),
    };
    let payment = Payment {
        enterprise: enterprise.clone(),
        kind,
        amount: fields.amount,
        reference: fields.reference.clone(),
        note: fields.note,
        actor: caller.user.login.clone(),
        at: Timestamp::now(),
    };
    let (cdrs, ledger, tenant, access, config_path) = (
        api.cdrs.clone(),
        api.ledger.clone(),
        api.tenant.clone(),
        api.access.clone(),
        api.config_path.clone(),
    );
    let actor = caller.user.login.clone();
    let source = caller.source.map(|ip| ip.to_string());
    let receipt: PaymentReceipt = blocking(move || {
        let config = match running_config(&*tenant, &config_path) {
            Ok(config) => config,
            Err(err) => return Ok(Err(err)),
        };
        let receipt = match post_payment(&*cdrs, &*ledger, &config, payment) {
            Ok(receipt) => receipt,
            Err(err) => return Ok(Err(refusal(err, entry_name))),
        };
        let entry = &receipt.entry;
        let before = entry.balance_after.saturating_sub(entry.amount);
        access.audit(NewAudit {
            at: Timestamp::now(),
            actor,
            source,
            enterprise: Some(enterprise),
            action: action.to_owned(),
            target: format!("{entry_name}/{}", entry.reference),
            before: Some(serde_json::json!({ "balance": before.exact().to_string() }).to_string()),
            after: Some(
                serde_json::json!({
                    "amount": entry.amount.exact().to_string(),
                    "reference": entry.reference,
                    "note": entry.note,
                    "balance": entry.balance_after.exact().to_string(),
                    "replayed": !receipt.new,
                })
                .to_string(),
            ),
        })?;
        Ok(Ok(receipt))
    })
    .await??;
    let account = &receipt.account;
    let answer = PaymentJson {
        replayed: !receipt.new,
        reviewed: receipt.reviewed.clone(),
        account: BalanceJson {
            balance: account.balance.exact().to_string(),
            reserved: account.reserved.exact().to_string(),
            available: account.available().exact().to_string(),
            status: account.status.as_str().to_owned(),
        },
        entry: LedgerEntryJson::from(receipt.entry),
    };
    let status = if receipt.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)).into_response())
}

/// `POST /api/v1/enterprises/{enterprise}/recharges`: posts a recharge, as `sihai
/// account recharge` does.
#[utoipa::path(post, path = "/api/v1/enterprises/{enterprise}/recharges", tag = "account", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
    ),
    request_body = RechargeRequest,
    responses(
        (status = 201, description = "Posted", body = PaymentJson),
        (status = 200, description = "Already posted under this reference with this amount: nothing changed", body = PaymentJson),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Only the operator posts", body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account (not billed by sihai)", body = crate::error::ErrorBody),
        (status = 409, description = "The reference is already posted with another amount", body = crate::error::ErrorBody),
        (status = 422, description = "A bad amount (not exact yuan, not positive, below min_recharge), reference or note: names the field", body = crate::error::ErrorBody),
    ))]
pub async fn recharge(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    pay(
        api,
        caller,
        enterprise,
        body,
        PaymentKind::Recharge { force: false },
    )
    .await
}

/// `POST /api/v1/enterprises/{enterprise}/adjustments`: posts an adjustment, as `sihai
/// account adjust` does.
#[utoipa::path(post, path = "/api/v1/enterprises/{enterprise}/adjustments", tag = "account", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
    ),
    request_body = AdjustmentRequest,
    responses(
        (status = 201, description = "Posted", body = PaymentJson),
        (status = 200, description = "Already posted under this reference with this amount: nothing changed", body = PaymentJson),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Only the operator posts", body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, or it has no prepaid account", body = crate::error::ErrorBody),
        (status = 409, description = "The reference is already posted with another amount", body = crate::error::ErrorBody),
        (status = 422, description = "A bad amount (not exact yuan, zero), reference or a missing note: names the field", body = crate::error::ErrorBody),
    ))]
pub async fn adjustment(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    pay(api, caller, enterprise, body, PaymentKind::Adjustment).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_field_of_a_body_is_named() {
        let recharge = PaymentKind::Recharge { force: false };
        let fields_of = |body: Value, kind| match read_fields(&body, kind) {
            Err(ApiError::Invalid(errors)) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => Vec::new(),
        };
        let ok = read_fields(
            &serde_json::json!({"amount": "600.50", "reference": "bank-1", "force": true}),
            recharge,
        )
        .unwrap();
        assert_eq!(ok.amount.exact().to_string(), "600.50");
        assert!(ok.force);
        for (body, fields) in [
            (
                serde_json::json!({"amount": 600.5, "reference": "r"}),
                vec!["amount"],
            ),
            (
                serde_json::json!({"amount": "600.12345", "reference": "r"}),
                vec!["amount"],
            ),
            (
                serde_json::json!({"amount": "six", "reference": "r"}),
                vec!["amount"],
            ),
            (serde_json::json!({"reference": "r"}), vec!["amount"]),
            (serde_json::json!({"amount": "1"}), vec!["reference"]),
            (
                serde_json::json!({"amount": "1", "reference": 7}),
                vec!["reference"],
            ),
            (
                serde_json::json!({"amount": "1", "reference": "r", "force": "yes"}),
                vec!["force"],
            ),
            (
                serde_json::json!({"amount": "1", "reference": "r", "extra": 1}),
                vec!["extra"],
            ),
            (serde_json::json!(["1"]), vec![""]),
        ] {
            assert_eq!(fields_of(body.clone(), recharge), fields, "{body}");
        }
        // An adjustment has no `force`.
        assert_eq!(
            fields_of(
                serde_json::json!({"amount": "1", "reference": "r", "note": "n", "force": true}),
                PaymentKind::Adjustment
            ),
            vec!["force"]
        );
    }
}
