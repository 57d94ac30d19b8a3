//! The enterprises themselves: their `[[enterprise]]` entries (profile, alert contacts,
//! billing, source networks) under `/api/v1/enterprises[/{enterprise}]`.
//!
//! Read and written through the tenant data's one path ([`crate::tenant`]): the same
//! validation of the whole configuration, revision check and audit. The operator
//! writes every field and creates enterprises; an enterprise admin changes its own
//! profile fields only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::tenant::{self, EntryJson};
use crate::{Api, blocking};

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
/// one). An enterprise admin may change `name`, `alert_contacts`, `alert_webhook` and
/// `alert_secret` only; the other fields it leaves out (kept) or repeats unchanged, and
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
