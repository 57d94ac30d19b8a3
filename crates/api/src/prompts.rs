//! An enterprise's prompts' audio (彩铃, menu announcements): uploaded as a WAV or MP3
//! file, converted to 8 kHz mono 16-bit PCM (what the network carries), stored by its
//! digest, and named by the prompt's entry; played back as the stored WAV.
//!
//! An upload is a tenant write like any other: the prompt's entry `{name, enterprise,
//! audio = "sha256:…"}` goes through the same validation (`Config::from_parts`), the
//! same revision check (`If-Match`) and the same audit as `PUT …/{collection}/{key}`,
//! so the next call after the daemon's reload (within a second) plays the new audio.
//! The recording is stored before the entry is written: a refused write leaves an
//! unreferenced recording behind (content-addressed, harmless), never an entry naming
//! audio that is not there.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sihai_media::{UploadFormat, convert_upload, encode_wav_mono};
use sihai_store::TenantEntry;

use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::tenant::{etag, exists, if_match, to_json, visible, write};
use crate::{Api, blocking};

/// The largest upload accepted: 20 MiB, ten minutes of 16 kHz stereo WAV or hours of
/// MP3 (whose length [`sihai_media::MAX_UPLOAD_SECONDS`] bounds).
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

const SECTION: &str = "prompt";

/// `PUT /api/v1/enterprises/{enterprise}/prompts/{key}/audio`: the body is the
/// recording itself.
#[utoipa::path(put, path = "/api/v1/enterprises/{enterprise}/prompts/{key}/audio", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("key" = String, Path, description = "The prompt's name"),
    ),
    request_body(description = "A WAV or MP3 file of at most 20 MiB and 10 minutes; any rate and channels (converted to 8 kHz mono)",
        content((Vec<u8> = "audio/wav"), (Vec<u8> = "audio/x-wav"), (Vec<u8> = "audio/mpeg"))),
    responses((status = 200, description = "The prompt's entry, naming the stored audio", body = crate::tenant::EntryJson),
        (status = 401, body = crate::error::ErrorBody), (status = 403, description = "A viewer", body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "Changed since If-Match", body = crate::error::ErrorBody),
        (status = 413, description = "Over 20 MiB", body = crate::error::ErrorBody),
        (status = 422, description = "Not usable audio, or refused by the configuration's checks", body = crate::error::ErrorBody)))]
pub async fn upload(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Who may, before the body is read: another enterprise's is 404 whatever it sent.
    visible(&caller, &enterprise)?;
    if !caller.may_write() {
        return Err(ApiError::Forbidden("a viewer reads only"));
    }
    let store = api.tenant.clone();
    let owner = enterprise.clone();
    if !blocking(move || store.tenant().map(|data| exists(&data.entries, &owner))).await? {
        return Err(ApiError::NotFound);
    }
    let if_match = if_match(&headers)?;
    let bytes: Bytes = axum::body::to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::TooLarge(format!(
                "the recording is over {} MiB: send a shorter or compressed one",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            ))
        })?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(UploadFormat::from_media_type);
    let entry_name = format!("{SECTION}/{key}");
    // Decoding and resampling take a while: not on the API's async threads.
    let converted =
        tokio::task::spawn_blocking(move || convert_upload(&bytes, declared).map(|a| a.samples))
            .await?;
    let samples = converted.map_err(|e| {
        ApiError::Invalid(vec![FieldError {
            entry: entry_name.clone(),
            field: "audio".into(),
            message: e.to_string(),
        }])
    })?;
    let wav = encode_wav_mono(&samples);
    let audio = api.audio.clone();
    let digest = blocking(move || audio.put_audio(&wav, jiff::Timestamp::now())).await?;

    let mut fields = toml::Table::new();
    fields.insert("name".into(), toml::Value::String(key.clone()));
    fields.insert("enterprise".into(), toml::Value::String(enterprise.clone()));
    fields.insert("audio".into(), toml::Value::String(digest));
    let entry = sihai_config::tenant::entry_from_table(SECTION, fields).map_err(|message| {
        ApiError::Invalid(vec![FieldError {
            entry: entry_name.clone(),
            field: String::new(),
            message,
        }])
    })?;
    let (revision, written) = write(
        &api,
        &caller,
        &enterprise,
        SECTION,
        &key,
        Some(entry),
        if_match,
        // Every field of the entry is the upload's: name, enterprise, audio.
        None,
    )
    .await?;
    let written = written.ok_or_else(|| ApiError::Internal("the written entry is gone".into()))?;
    let mut response = axum::Json(to_json(&written, revision)?).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    Ok(response)
}

/// `GET /api/v1/enterprises/{enterprise}/prompts/{key}/audio`: the uploaded recording
/// as stored (8 kHz mono 16-bit PCM WAV), to play back.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/prompts/{key}/audio", tag = "tenant", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("key" = String, Path, description = "The prompt's name"),
    ),
    responses((status = 200, description = "The recording", content_type = "audio/wav", body = Vec<u8>),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "No such prompt of this enterprise, or its audio is a file on the node rather than an upload", body = crate::error::ErrorBody)))]
pub async fn download(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    visible(&caller, &enterprise)?;
    let store = api.tenant.clone();
    let entry: Option<TenantEntry> = blocking(move || {
        store.tenant().map(|data| {
            data.entries
                .into_iter()
                .map(|stored| stored.entry)
                .find(|e| {
                    e.section == SECTION
                        && e.key == key
                        && e.enterprise.as_deref() == Some(enterprise.as_str())
                })
        })
    })
    .await?;
    let digest = entry
        .as_ref()
        .and_then(sihai_config::tenant::fields_of)
        .and_then(|fields| fields.get("audio")?.as_str().map(str::to_owned))
        .ok_or(ApiError::NotFound)?;
    let audio = api.audio.clone();
    let wav = blocking(move || audio.audio(&digest))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "audio/wav"),
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        wav,
    )
        .into_response())
}
