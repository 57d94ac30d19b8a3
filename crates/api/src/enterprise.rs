//! The enterprises themselves: their `[[enterprise]]` entries (profile, alert contacts,
//! billing, source networks) under `/api/v1/enterprises[/{enterprise}]`.
//!
//! Read and written through the tenant data's one path ([`crate::tenant`]): the same
//! validation of the whole configuration, revision check and audit. The operator
//! writes every field and creates enterprises; an enterprise admin changes its own
//! profile fields only.
//!
//! The operator suspends an enterprise (`suspended = true`: every one of its numbers
//! answers as a suspended number does, each keeping its own status) and resumes it,
//! with a `PUT` of the entry or with `POST …/suspend` and `…/resume`, which write the
//! same field through the same path.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::tenant::{self, EntryJson};
use crate::{Api, blocking};

/// The field that suspends an enterprise: the operator's only.
const SUSPENDED: &str = "suspended";

/// The section an enterprise's entry is.
const SECTION: &str = "enterprise";

/// `GET /api/v1/enterprises`: every enterprise for an operator, one's own for the rest.
#[utoipa::path(get, path = "/api/v1/enterprises", tag = "enterprise",
    responses((status = 200, description = "The `[[enterprise]]` entries the caller sees", body = Vec<EntryJson>),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<EntryJson>>, ApiError> {
    let store = api.tenant.clone();
    let data = blocking(move || store.tenant()).await?;
    let out = data
        .entries
        .iter()
        .filter(|s| s.entry.section == SECTION && caller.sees(&s.entry.key))
        .map(|s| tenant::to_json(&s.entry, s.revision))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(out))
}

/// `GET /api/v1/enterprises/{enterprise}`: its `[[enterprise]]` entry, with its revision
/// as the `ETag`.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}", tag = "enterprise",
    params(("enterprise" = String, Path, description = "The enterprise's id")),
    responses((status = 200, body = EntryJson), (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "No such enterprise, or not yours", body = crate::error::ErrorBody)))]
pub async fn read(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
) -> Result<Response, ApiError> {
    tenant::read_entry(&api, &caller, &enterprise, SECTION, enterprise.clone()).await
}

/// `PUT /api/v1/enterprises/{enterprise}`: replaces the entry (an operator also creates
/// one). An enterprise admin may change `name`, `alert_contacts`, `alert_webhook`,
/// `alert_secret`, `crm_lookup_url` and `crm_timeout_ms` only (the CRM is its own); the other fields it leaves out (kept) or repeats unchanged, and
/// a change of one is `403` naming it. `If-Match: "N"` refuses (`409`) a write over a
/// change made after revision N.
#[utoipa::path(put, path = "/api/v1/enterprises/{enterprise}", tag = "enterprise",
    params(("enterprise" = String, Path, description = "The enterprise's id")),
    request_body(content = Object, description = "The [[enterprise]] entry's fields, as in the TOML file (`id` may be left out)"),
    responses((status = 200, body = EntryJson), (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "A viewer, or a field only the operator changes (named in `errors`)", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "Changed since If-Match", body = crate::error::ErrorBody),
        (status = 422, description = "Refused by the configuration's checks", body = crate::error::ErrorBody)))]
pub async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    tenant::put_entry(
        &api,
        &caller,
        &enterprise,
        SECTION,
        &enterprise,
        &headers,
        body,
    )
    .await
}

/// `POST /api/v1/enterprises/{enterprise}/suspend`: sets `suspended = true` on the entry,
/// as a `PUT` of it would (validated, revision-checked, audited); suspending a suspended
/// enterprise changes nothing.
#[utoipa::path(post, path = "/api/v1/enterprises/{enterprise}/suspend", tag = "enterprise",
    params(("enterprise" = String, Path, description = "The enterprise's id")),
    responses((status = 200, description = "The entry as written, its revision as the `ETag`", body = EntryJson),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Not the operator", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Changed since If-Match, or while being written", body = crate::error::ErrorBody)))]
pub async fn suspend(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_suspended(&api, &caller, &enterprise, &headers, true).await
}

/// `POST /api/v1/enterprises/{enterprise}/resume`: removes `suspended` from the entry
/// (false, the default), as a `PUT` would; resuming an enterprise in service changes
/// nothing.
#[utoipa::path(post, path = "/api/v1/enterprises/{enterprise}/resume", tag = "enterprise",
    params(("enterprise" = String, Path, description = "The enterprise's id")),
    responses((status = 200, description = "The entry as written, its revision as the `ETag`", body = EntryJson),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Not the operator", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "Changed since If-Match, or while being written", body = crate::error::ErrorBody)))]
pub async fn resume(
    State(api): State<Api>,
    caller: Caller,
    Path(enterprise): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_suspended(&api, &caller, &enterprise, &headers, false).await
}

/// The stored entry with `suspended` set (or removed), written through the tenant
/// data's one path at the revision read (or the caller's `If-Match`), so a change made
/// meanwhile is a `409`, never overwritten.
async fn set_suspended(
    api: &Api,
    caller: &Caller,
    enterprise: &str,
    headers: &HeaderMap,
    suspended: bool,
) -> Result<Response, ApiError> {
    tenant::visible(caller, enterprise)?;
    if !caller.is_operator() {
        return Err(ApiError::Forbidden(
            "only the operator suspends or resumes an enterprise",
        ));
    }
    let if_match = tenant::if_match(headers)?;
    let store = api.tenant.clone();
    let data = blocking(move || store.tenant()).await?;
    let found = data
        .entries
        .iter()
        .find(|s| s.entry.section == SECTION && s.entry.key == enterprise)
        .ok_or(ApiError::NotFound)?;
    let mut fields = sihai_config::tenant::fields_of(&found.entry).ok_or_else(|| {
        ApiError::Internal(format!(
            "stored entry enterprise {enterprise} does not parse"
        ))
    })?;
    if suspended {
        fields.insert(SUSPENDED.to_owned(), toml::Value::Boolean(true));
    } else {
        fields.remove(SUSPENDED);
    }
    let entry =
        sihai_config::tenant::entry_from_table(SECTION, fields).map_err(ApiError::Internal)?;
    let (revision, entry) = tenant::write(
        api,
        caller,
        enterprise,
        SECTION,
        enterprise,
        Some(entry),
        Some(if_match.unwrap_or(found.revision)),
        None,
    )
    .await?;
    let entry = entry.ok_or_else(|| ApiError::Internal("the written entry is gone".into()))?;
    let mut response = Json(tenant::to_json(&entry, revision)?).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, tenant::etag(revision));
    Ok(response)
}
