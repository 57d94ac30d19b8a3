//! An enterprise's tenant data over the API: its groups and bound phones, plans, menus,
//! extensions, schedules, numbers and prompts, as JSON, under
//! `/api/v1/enterprises/{enterprise}/{collection}/{key}`.
//!
//! One model, one validator: an entry is the same `[[section]]` table the TOML file
//! has; a write is checked by assembling the whole configuration with it
//! (`Config::from_parts`, the checks `sihai check` runs) and applied with the store's
//! revision check, so an API write and a `sihai apply` never overwrite each other.
//! The running daemon picks a committed change up within a second.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sihai_config::{Config, ConfigError, TENANT_SECTIONS, tenant};
use sihai_store::{StoreError, TenantChange, TenantEntry};

use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::{Api, blocking};

/// The collections of an enterprise's data, by URL name, and the section each is.
pub const COLLECTIONS: &[(&str, &str)] = &[
    ("groups", "group"),
    ("plans", "plan"),
    ("menus", "menu"),
    ("extensions", "extension"),
    ("schedules", "schedule"),
    ("numbers", "number"),
    ("prompts", "prompt"),
];

/// Sections an enterprise admin writes; the rest (numbers are assigned by the operator,
/// prompts come with their audio) only the operator writes.
const ENTERPRISE_WRITABLE: &[&str] = &["group", "plan", "menu", "extension", "schedule"];

/// Sections the operator creates, of which an enterprise admin may change these fields
/// only: its enterprise's profile, including its own CRM lookup (not its billing, tariff, recordings' retention,
/// source networks or `suspended`: an enterprise cannot resume itself) and its numbers'
/// plan (not their enterprise, status or limits).
const ENTERPRISE_EDITABLE_FIELDS: &[(&str, &[&str])] = &[
    (
        "enterprise",
        &[
            "name",
            "alert_contacts",
            "alert_webhook",
            "alert_secret",
            "crm_lookup_url",
            "crm_timeout_ms",
        ],
    ),
    ("number", &["plan"]),
];

/// The name the validator reports a request's tenant data under.
const REQUEST_ORIGIN: &str = "request";

fn section_of(collection: &str) -> Result<&'static str, ApiError> {
    COLLECTIONS
        .iter()
        .find(|(name, _)| *name == collection)
        .map(|(_, section)| *section)
        .ok_or(ApiError::NotFound)
}

/// One entry of an enterprise's data.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryJson {
    /// The collection's section, e.g. `group`.
    section: String,
    key: String,
    /// The revision of the entry's last change: send it as `If-Match` to update only
    /// what you read.
    revision: i64,
    /// The entry's fields, as in the TOML file, secrets left out.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// The secret fields that are set (e.g. `alert_secret`): write-only, never shown.
    /// A `PUT` that leaves one out keeps it; `""` removes it.
    hidden: Vec<String>,
}

pub(crate) fn to_json(entry: &TenantEntry, revision: i64) -> Result<EntryJson, ApiError> {
    let mut fields = tenant::fields_of(entry).ok_or_else(|| {
        ApiError::Internal(format!(
            "stored entry {} {} does not parse",
            entry.section, entry.key
        ))
    })?;
    let hidden = tenant::secret_fields(&entry.section)
        .filter(|field| fields.remove(*field).is_some())
        .map(str::to_owned)
        .collect();
    let data = serde_json::to_value(fields).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(EntryJson {
        section: entry.section.clone(),
        key: entry.key.clone(),
        revision,
        data,
        hidden,
    })
}

/// A write's secrets: one the write leaves out keeps its stored value (reads never show
/// it, so a read-modify-write must not erase it); an empty one is removed.
fn settle_secrets(
    existing: Option<&TenantEntry>,
    wanted: TenantEntry,
) -> Result<TenantEntry, ApiError> {
    let section = wanted.section.clone();
    if tenant::secret_fields(&section).next().is_none() {
        return Ok(wanted);
    }
    let unparsable =
        || ApiError::Internal(format!("entry {section} {} does not parse", wanted.key));
    let mut fields = tenant::fields_of(&wanted).ok_or_else(unparsable)?;
    let stored = existing.and_then(tenant::fields_of);
    for field in tenant::secret_fields(&section) {
        match fields.get(field) {
            Some(toml::Value::String(value)) if value.is_empty() => {
                fields.remove(field);
            }
            Some(_) => {}
            None => {
                if let Some(value) = stored.as_ref().and_then(|s| s.get(field)) {
                    fields.insert(field.to_owned(), value.clone());
                }
            }
        }
    }
    tenant::entry_from_table(&section, fields).map_err(ApiError::Internal)
}

pub(crate) fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The caller's view of an enterprise: `NotFound` for one it may not see, whether or
/// not it exists.
pub(crate) fn visible(caller: &Caller, enterprise: &str) -> Result<(), ApiError> {
    if caller.sees(enterprise) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `GET /api/v1/enterprises/{enterprise}/{collection}`.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/{collection}", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("collection" = String, Path, description = "groups, plans, menus, extensions, schedules, numbers or prompts"),
    ),
    responses((status = 200, body = Vec<EntryJson>), (status = 401, body = crate::error::ErrorBody), (status = 404, description = "No such enterprise or collection, or not yours", body = crate::error::ErrorBody)))]
pub async fn list(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, collection)): Path<(String, String)>,
) -> Result<Json<Vec<EntryJson>>, ApiError> {
    visible(&caller, &enterprise)?;
    let section = section_of(&collection)?;
    let store = api.tenant.clone();
    let data = blocking(move || store.tenant()).await?;
    if !exists(&data.entries, &enterprise) {
        return Err(ApiError::NotFound);
    }
    let out = data
        .entries
        .iter()
        .filter(|s| {
            s.entry.section == section && s.entry.enterprise.as_deref() == Some(&enterprise)
        })
        .map(|s| to_json(&s.entry, s.revision))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(out))
}

pub(crate) fn exists(entries: &[sihai_store::StoredEntry], enterprise: &str) -> bool {
    entries
        .iter()
        .any(|s| s.entry.section == "enterprise" && s.entry.key == enterprise)
}

/// `GET /api/v1/enterprises/{enterprise}/{collection}/{key}`, with its revision as the
/// `ETag`.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/{collection}/{key}", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("collection" = String, Path, description = "groups, plans, menus, extensions, schedules, numbers or prompts"),
        ("key" = String, Path, description = "The entry's name (a number's or an extension's number)"),
    ),
    responses((status = 200, body = EntryJson), (status = 401, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn read(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, collection, key)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let section = section_of(&collection)?;
    read_entry(&api, &caller, &enterprise, section, key).await
}

/// One entry of `enterprise`'s data as JSON, its revision as the `ETag`; `404` when the
/// caller may not see the enterprise or there is no such entry.
pub(crate) async fn read_entry(
    api: &Api,
    caller: &Caller,
    enterprise: &str,
    section: &'static str,
    key: String,
) -> Result<Response, ApiError> {
    visible(caller, enterprise)?;
    let store = api.tenant.clone();
    let data = blocking(move || store.tenant()).await?;
    let found = data
        .entries
        .iter()
        .find(|s| {
            s.entry.section == section
                && s.entry.key == key
                && s.entry.enterprise.as_deref() == Some(enterprise)
        })
        .ok_or(ApiError::NotFound)?;
    let mut response = Json(to_json(&found.entry, found.revision)?).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(found.revision));
    Ok(response)
}

/// `PUT /api/v1/enterprises/{enterprise}/{collection}/{key}`: creates or replaces the
/// entry. The body is the entry's fields; its key field and `enterprise` may be left
/// out (the URL says them) but must agree if given. With `If-Match: "N"` the write is
/// refused (`409`) if the entry changed after revision N.
#[utoipa::path(put, path = "/api/v1/enterprises/{enterprise}/{collection}/{key}", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("collection" = String, Path, description = "groups, plans, menus, extensions, schedules, numbers or prompts"),
        ("key" = String, Path, description = "The entry's name (a number's or an extension's number)"),
    ),
    request_body(content = Object, description = "The entry's fields, as in the TOML file"),
    responses((status = 200, body = EntryJson), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "Changed since If-Match", body = crate::error::ErrorBody),
        (status = 422, description = "Refused by the configuration's checks", body = crate::error::ErrorBody)))]
pub async fn put(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, collection, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let section = section_of(&collection)?;
    put_entry(&api, &caller, &enterprise, section, &key, &headers, body).await
}

/// Creates or replaces `enterprise`'s entry `section`/`key` from a JSON body of its
/// fields: validated with the whole configuration, applied with the revision check,
/// audited. The entry as written, its revision as the `ETag`.
pub(crate) async fn put_entry(
    api: &Api,
    caller: &Caller,
    enterprise: &str,
    section: &'static str,
    key: &str,
    headers: &HeaderMap,
    body: serde_json::Value,
) -> Result<Response, ApiError> {
    visible(caller, enterprise)?;
    let editable = may_write(caller, section)?;
    let mut fields: toml::Table = serde_json::from_value(body).map_err(|e| {
        ApiError::Invalid(vec![FieldError {
            entry: format!("{section}/{key}"),
            field: String::new(),
            message: format!(
                "the body must be a JSON object of the entry's fields, without nulls: {e}"
            ),
        }])
    })?;
    let key_field = sihai_config::tenant_key_field(section).unwrap_or("name");
    // An [[enterprise]] is its own: its key field is its id, and it has no `enterprise`.
    let owner_field = (section != "enterprise").then_some(("enterprise", enterprise));
    for (field, wanted) in std::iter::once((key_field, key)).chain(owner_field) {
        match fields.get(field) {
            None => {
                fields.insert(field.to_owned(), toml::Value::String(wanted.to_owned()));
            }
            Some(toml::Value::String(given)) if given == wanted => {}
            Some(_) => {
                return Err(ApiError::Invalid(vec![FieldError {
                    entry: format!("{section}/{key}"),
                    field: field.to_owned(),
                    message: format!("must be {wanted:?}, as in the URL"),
                }]));
            }
        }
    }
    let entry = tenant::entry_from_table(section, fields).map_err(|message| {
        ApiError::Invalid(vec![FieldError {
            entry: format!("{section}/{key}"),
            field: String::new(),
            message,
        }])
    })?;
    let if_match = if_match(headers)?;
    let (revision, entry) = write(
        api,
        caller,
        enterprise,
        section,
        key,
        Some(entry),
        if_match,
        editable,
    )
    .await?;
    let entry = entry.ok_or_else(|| ApiError::Internal("the written entry is gone".into()))?;
    let mut response = Json(to_json(&entry, revision)?).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    Ok(response)
}

/// `DELETE /api/v1/enterprises/{enterprise}/{collection}/{key}`: refused (`422`) while
/// something still refers to the entry.
#[utoipa::path(delete, path = "/api/v1/enterprises/{enterprise}/{collection}/{key}", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("collection" = String, Path, description = "groups, plans, menus, extensions, schedules, numbers or prompts"),
        ("key" = String, Path, description = "The entry's name (a number's or an extension's number)"),
    ),
    responses((status = 204, description = "Removed"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, description = "Still referred to", body = crate::error::ErrorBody)))]
pub async fn delete(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, collection, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    visible(&caller, &enterprise)?;
    let section = section_of(&collection)?;
    // An enterprise admin removes its own prompts (an uploaded ringback it no longer
    // wants), though it writes them only by uploading their audio: a prompt entry's
    // other form names a file on the node, which is the operator's.
    let removes_own_prompt = section == "prompt" && caller.may_write();
    if !removes_own_prompt && may_write(&caller, section)?.is_some() {
        return Err(ApiError::Forbidden("only the operator removes this"));
    }
    let if_match = if_match(&headers)?;
    write(
        &api,
        &caller,
        &enterprise,
        section,
        &key,
        None,
        if_match,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the caller may write `section`: `None` for any of its fields, `Some` for only
/// these (of an entry that exists).
fn may_write(caller: &Caller, section: &str) -> Result<Option<&'static [&'static str]>, ApiError> {
    if !caller.may_write() {
        return Err(ApiError::Forbidden("a viewer reads only"));
    }
    if caller.is_operator() || ENTERPRISE_WRITABLE.contains(&section) {
        return Ok(None);
    }
    ENTERPRISE_EDITABLE_FIELDS
        .iter()
        .find(|(editable, _)| *editable == section)
        .map(|(_, fields)| Some(*fields))
        .ok_or(ApiError::Forbidden("only the operator changes this"))
}

/// `wanted` with every field outside `editable` as `existing` has it: such a field may
/// be left out (it is kept) or repeated unchanged; a change of one is refused, naming
/// each.
fn keep_fields_outside(
    editable: &[&str],
    existing: &TenantEntry,
    wanted: TenantEntry,
) -> Result<TenantEntry, ApiError> {
    let unparsable = || {
        ApiError::Internal(format!(
            "entry {} {} does not parse",
            existing.section, existing.key
        ))
    };
    let current = tenant::fields_of(existing).ok_or_else(unparsable)?;
    let mut asked = tenant::fields_of(&wanted).ok_or_else(unparsable)?;
    let mut refused = Vec::new();
    for (field, value) in &current {
        if editable.contains(&field.as_str()) {
            continue;
        }
        match asked.get(field) {
            None => {
                asked.insert(field.clone(), value.clone());
            }
            Some(given) if given == value => {}
            Some(_) => refused.push(field.clone()),
        }
    }
    refused.extend(
        asked
            .keys()
            .filter(|f| !editable.contains(&f.as_str()) && !current.contains_key(*f))
            .cloned(),
    );
    if !refused.is_empty() {
        return Err(ApiError::FieldsForbidden(
            refused
                .into_iter()
                .map(|field| FieldError {
                    entry: format!("{}/{}", existing.section, existing.key),
                    field,
                    message: format!(
                        "only the operator changes this; you may change {}",
                        editable.join(", ")
                    ),
                })
                .collect(),
        ));
    }
    tenant::entry_from_table(&existing.section, asked).map_err(ApiError::Internal)
}

pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::BadRequest("If-Match must be an entry's revision, e.g. \"12\"".into())
        })
}

/// Validates and applies one entry's change (`None`: its removal), audited; the new
/// revision and the entry as written. With `editable`, the change must be to an
/// existing entry and only of those fields.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write(
    api: &Api,
    caller: &Caller,
    enterprise: &str,
    section: &'static str,
    key: &str,
    wanted: Option<TenantEntry>,
    if_match: Option<i64>,
    editable: Option<&'static [&'static str]>,
) -> Result<(i64, Option<TenantEntry>), ApiError> {
    let (store, config_path) = (api.tenant.clone(), api.config_path.clone());
    let (enterprise, key) = (enterprise.to_owned(), key.to_owned());
    let actor = caller.user.login.clone();
    let source = caller.source.map(|ip| ip.to_string());
    blocking(
        move || -> Result<Result<(i64, Option<TenantEntry>), ApiError>, StoreError> {
            let data = store.tenant()?;
            // An [[enterprise]] written creates its enterprise (only an operator gets
            // here for one that does not exist).
            let creates_enterprise = section == "enterprise" && wanted.is_some();
            if !creates_enterprise && !exists(&data.entries, &enterprise) {
                return Ok(Err(ApiError::NotFound));
            }
            let existing = data
                .entries
                .iter()
                .find(|s| s.entry.section == section && s.entry.key == key);
            // A name another enterprise uses is taken; say so without saying whose.
            if let Some(other) = existing
                && other.entry.enterprise.as_deref() != Some(&enterprise)
            {
                return Ok(Err(ApiError::Invalid(vec![FieldError {
                    entry: format!("{section}/{key}"),
                    field: sihai_config::tenant_key_field(section)
                        .unwrap_or("name")
                        .to_owned(),
                    message: "already in use: choose another name".into(),
                }])));
            }
            if existing.is_none() && wanted.is_none() {
                return Ok(Err(ApiError::NotFound));
            }
            // Checked against the snapshot whose revision the write is applied at, so a
            // concurrent change makes it stale (409) rather than slip through.
            let wanted = match (editable, existing, wanted) {
                (Some(_), None, _) => {
                    return Ok(Err(ApiError::Forbidden("only the operator creates this")));
                }
                (Some(editable), Some(existing), Some(new)) => {
                    match keep_fields_outside(editable, &existing.entry, new) {
                        Ok(merged) => Some(merged),
                        Err(refused) => return Ok(Err(refused)),
                    }
                }
                (_, _, wanted) => wanted,
            };
            let wanted = match wanted {
                Some(new) => match settle_secrets(existing.map(|s| &s.entry), new) {
                    Ok(settled) => Some(settled),
                    Err(refused) => return Ok(Err(refused)),
                },
                None => None,
            };
            let mut entries: Vec<TenantEntry> =
                data.entries.iter().map(|s| s.entry.clone()).collect();
            match (
                &wanted,
                entries
                    .iter()
                    .position(|e| e.section == section && e.key == key),
            ) {
                (Some(new), Some(i)) => entries[i] = new.clone(),
                (Some(new), None) => entries.push(new.clone()),
                (None, Some(i)) => {
                    entries.remove(i);
                }
                (None, None) => {}
            }
            // The whole configuration, this change included, must pass the file's checks.
            let node_origin = config_path.display().to_string();
            let node_text = match std::fs::read_to_string(&config_path) {
                Ok(text) => text,
                Err(e) => {
                    return Ok(Err(ApiError::Internal(format!(
                        "reading {node_origin}: {e}"
                    ))));
                }
            };
            let rendered = tenant::render(&entries);
            if let Err(errors) =
                Config::from_parts(&node_text, &node_origin, &rendered, REQUEST_ORIGIN)
            {
                return Ok(Err(ApiError::Invalid(field_errors(
                    &errors.errors,
                    &entries,
                ))));
            }
            let base = if_match
                .or(existing.map(|s| s.revision))
                .unwrap_or(data.revision);
            let change = TenantChange {
                upserts: wanted.iter().cloned().collect(),
                removals: if wanted.is_none() {
                    vec![(section.to_owned(), key.clone())]
                } else {
                    Vec::new()
                },
                base_revision: Some(base),
                source: None,
                actor,
                actor_source: source,
                at: jiff::Timestamp::now(),
            };
            let applied = match store.apply_tenant(change) {
                Ok(applied) => applied,
                Err(StoreError::StaleTenant { changed, .. }) => {
                    let now = changed.first().map_or(0, |c| c.2);
                    return Ok(Err(ApiError::Conflict(format!(
                        "{section}/{key} changed since revision {base} (now {now}): read it again"
                    ))));
                }
                Err(other) => return Err(other),
            };
            let revision = if applied.changed > 0 {
                applied.revision
            } else {
                existing.map_or(applied.revision, |s| s.revision)
            };
            Ok(Ok((revision, wanted)))
        },
    )
    .await?
}

/// The validator's errors about the assembled text, as entry and field: `group[2].
/// phones[0].uri` is the third `[[group]]` of the rendering, whose key the entries give.
fn field_errors(errors: &[ConfigError], entries: &[TenantEntry]) -> Vec<FieldError> {
    errors
        .iter()
        .map(|e| {
            let (entry, field) =
                locate(&e.field, entries).unwrap_or_else(|| (String::new(), e.field.clone()));
            FieldError {
                entry,
                field,
                message: e.message.clone(),
            }
        })
        .collect()
}

fn locate(field: &str, entries: &[TenantEntry]) -> Option<(String, String)> {
    let (head, rest) = field.split_once('[')?;
    if !TENANT_SECTIONS.contains(&head) {
        return None;
    }
    let (index, tail) = rest.split_once(']')?;
    let index: usize = index.parse().ok()?;
    let entry = entries.iter().filter(|e| e.section == head).nth(index)?;
    Some((
        format!("{}/{}", entry.section, entry.key),
        tail.trim_start_matches('.').to_owned(),
    ))
}

/// `GET /api/v1/audit`: who changed what; an enterprise's users see their own.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    responses((status = 200, description = "Newest first", body = Vec<Object>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn audit(
    State(api): State<Api>,
    caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let scope = if caller.is_operator() {
        None
    } else {
        caller.user.enterprise.clone()
    };
    let access = api.access.clone();
    let log = blocking(move || access.audit_log(scope.as_deref(), 500)).await?;
    Ok(Json(
        log.into_iter()
            .map(|a| {
                serde_json::json!({
                    "at": a.at.to_string(),
                    "actor": a.actor,
                    "source": a.source,
                    "enterprise": a.enterprise,
                    "action": a.action,
                    "target": a.target,
                    "before": a.before.map(|text| shown(&a.action, &a.target, text)),
                    "after": a.after.map(|text| shown(&a.action, &a.target, text)),
                })
            })
            .collect(),
    ))
}

/// An audit entry's before or after as the API shows it: a tenant entry's secrets
/// hidden (the store keeps the full text, for the operator's database only).
fn shown(action: &str, target: &str, text: String) -> String {
    let section = target.split_once('/').map_or("", |(section, _)| section);
    if matches!(action, "put" | "delete") {
        tenant::hide_secrets_in_body(section, &text)
    } else {
        text
    }
}
