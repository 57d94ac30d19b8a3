//! A call's recording, downloaded: `GET /api/v1/enterprises/{enterprise}/cdrs/{call_id}/recording`.
//!
//! The file is the one the call's CDR names (`recording`, relative to `[media]
//! recordings`, e.g. `acme/2026-03-01/ab12cd.wav`): nothing of the request becomes part
//! of a path, and a name that is not a plain relative path under the CDR's enterprise
//! is refused, so no request reaches another file. It is streamed from disk a chunk at
//! a time, whole or one byte range (`Range: bytes=a-b`, `a-`, `-n`: `206` with
//! `Content-Range`; a range past the end `416` with `Content-Range: bytes */LENGTH`),
//! so a player can seek and a broken download resume.
//!
//! Recordings are personal data: every access (whole, a range, or a range past the
//! end) is written to the audit log before a byte is sent, as `recording.download` of
//! the call, with what was asked in `after`. A viewer may download.

use std::path::{Component, Path as FsPath};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use sihai_store::{CdrFilter, NewAudit};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::running::running_config;
use crate::{Api, blocking};

/// What a download reads from the file at a time: the most of a recording held in
/// memory per download, however long the call was.
const CHUNK_BYTES: usize = 64 * 1024;

/// The part of a file of `len` bytes a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No range, or one this server ignores (RFC 9110 section 14.2: another unit, a
    /// malformed or multi-part range): the whole file, `200`.
    Whole,
    /// Bytes `first..=last`, both within the file: `206`.
    Part { first: u64, last: u64 },
    /// A range that starts past the end (or an empty suffix): `416`.
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `len` bytes: `bytes=a-b` (the last byte
/// capped at the end), `bytes=a-` (to the end), `bytes=-n` (the last n bytes).
pub fn byte_range(header: Option<&str>, len: u64) -> ByteRange {
    let Some(header) = header else {
        return ByteRange::Whole;
    };
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return ByteRange::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if len == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part {
                first: len.saturating_sub(n),
                last: len - 1,
            },
        },
        (first, last) => {
            let Some(first) = number(first) else {
                return ByteRange::Whole;
            };
            let last = match last {
                "" => None,
                text => match number(text) {
                    Some(last) if last >= first => Some(last),
                    _ => return ByteRange::Whole,
                },
            };
            if first >= len {
                return ByteRange::Unsatisfiable;
            }
            ByteRange::Part {
                first,
                last: last.map_or(len - 1, |l| l.min(len - 1)),
            }
        }
    }
}

/// Whether `name` (a CDR's `recording`) is a plain relative path inside `enterprise`'s
/// directory: no root, no `..`, no `.`, its first part the enterprise.
fn under_enterprise(name: &str, enterprise: &str) -> bool {
    let path = FsPath::new(name);
    let mut components = path.components();
    matches!(components.next(), Some(Component::Normal(first)) if first == enterprise)
        && components.all(|c| matches!(c, Component::Normal(_)))
        && path.components().count() >= 2
}

/// The file name offered to the browser: the recording's own, when it is plain.
fn download_name(name: &str) -> String {
    let file = FsPath::new(name)
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or("");
    let plain = !file.is_empty()
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if plain {
        file.to_owned()
    } else {
        "recording.wav".to_owned()
    }
}

/// An HTTP date (RFC 9110 section 5.6.7), e.g. `Sun, 01 Mar 2026 02:00:00 GMT`.
fn http_date(at: Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// `count` bytes of `file` from where it is, a chunk at a time; a read error ends the
/// body with the error, so the client sees a broken transfer rather than a short file.
fn file_body(file: tokio::fs::File, count: u64) -> Body {
    let reader = Some(file.take(count));
    let chunks = futures_util::stream::unfold(reader, |reader| async move {
        let mut reader = reader?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(reader)))
            }
            Err(err) => Some((Err::<Bytes, std::io::Error>(err), None)),
        }
    });
    Body::from_stream(chunks)
}

/// `GET /api/v1/enterprises/{enterprise}/cdrs/{call_id}/recording`: the call's
/// recording (WAV), whole or one byte range; every access audited.
#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise}/cdrs/{call_id}/recording", tag = "records", params(
        ("enterprise" = String, Path, description = "The enterprise's id"),
        ("call_id" = String, Path, description = "The call's id, as in its CDR"),
        ("Range" = Option<String>, Header, description = "One byte range: bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX"),
        ("If-Range" = Option<String>, Header, description = "The Last-Modified of a previous answer: the range is served only if the file is unchanged, the whole file otherwise"),
    ),
    responses(
        (status = 200, description = "The whole recording (Accept-Ranges: bytes)", content_type = "audio/wav"),
        (status = 206, description = "The byte range asked for, with Content-Range", content_type = "audio/wav"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 404, description = "Not your enterprise, no such call, or the call has no recording (not recorded, or deleted after its retention)", body = crate::error::ErrorBody),
        (status = 416, description = "The range starts past the end: Content-Range: bytes */LENGTH"),
    ))]
pub async fn recording(
    State(api): State<Api>,
    caller: Caller,
    Path((enterprise, call_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !caller.sees(&enterprise) {
        return Err(ApiError::NotFound);
    }
    let (cdrs, tenant, config_path) = (
        api.cdrs.clone(),
        api.tenant.clone(),
        api.config_path.clone(),
    );
    let (id, owner) = (call_id.clone(), enterprise.clone());
    let located = blocking(move || {
        let found = cdrs.query(&CdrFilter {
            call_id: Some(id),
            enterprise: Some(owner),
            limit: 1,
            ..CdrFilter::default()
        })?;
        let Some(name) = found.into_iter().next().and_then(|cdr| cdr.recording) else {
            return Ok(Ok(None));
        };
        // The directory as the daemon runs it now (`[media] recordings`).
        Ok(running_config(&*tenant, &config_path)
            .map(|config| Some((name, config.media.recordings))))
    })
    .await??;
    let Some((name, directory)) = located else {
        return Err(ApiError::NotFound);
    };
    if !under_enterprise(&name, &enterprise) {
        tracing::error!(call = %call_id, %enterprise, recording = %name,
            "a CDR names a recording outside its enterprise's directory; refused");
        return Err(ApiError::NotFound);
    }
    let path = directory.join(&name);
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(file) => file,
        // Deleted after the enterprise's retention: the call has no recording any more.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::NotFound),
        Err(err) => {
            return Err(ApiError::Internal(format!(
                "opening {}: {err}",
                path.display()
            )));
        }
    };
    let meta = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("reading {}: {e}", path.display())))?;
    let len = meta.len();
    let last_modified = meta
        .modified()
        .ok()
        .and_then(|m| Timestamp::try_from(m).ok())
        .map(http_date);
    let asked = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A resumed download names the version it has: a range of another is no use to it.
    let same_version = match headers.get(header::IF_RANGE) {
        None => true,
        Some(sent) => last_modified
            .as_deref()
            .is_some_and(|lm| sent.to_str().ok() == Some(lm)),
    };
    let range = if same_version {
        byte_range(asked, len)
    } else {
        ByteRange::Whole
    };
    let served = match range {
        ByteRange::Whole => format!("bytes 0-{}/{len}", len.saturating_sub(1)),
        ByteRange::Part { first, last } => format!("bytes {first}-{last}/{len}"),
        ByteRange::Unsatisfiable => format!("bytes */{len}: unsatisfiable {}", asked.unwrap_or("")),
    };
    let access = api.access.clone();
    let audit = NewAudit {
        at: Timestamp::now(),
        actor: caller.user.login.clone(),
        source: caller.source.map(|ip| ip.to_string()),
        enterprise: Some(enterprise.clone()),
        action: "recording.download".into(),
        target: call_id.clone(),
        before: None,
        after: Some(served),
    };
    // Audited before a byte is sent: an access the log cannot record does not happen.
    blocking(move || access.audit(audit)).await?;

    let mut response = match range {
        ByteRange::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
        ByteRange::Whole => {
            let mut response = (StatusCode::OK, file_body(file, len)).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            response
        }
        ByteRange::Part { first, last } => {
            file.seek(std::io::SeekFrom::Start(first))
                .await
                .map_err(|e| ApiError::Internal(format!("seeking {}: {e}", path.display())))?;
            let count = last - first + 1;
            let mut response =
                (StatusCode::PARTIAL_CONTENT, file_body(file, count)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range != ByteRange::Unsatisfiable {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
        if let Ok(value) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"",
            download_name(&name)
        )) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    if let Some(value) = last_modified.and_then(|lm| HeaderValue::from_str(&lm).ok()) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_byte_ranges_are_read_and_the_rest_ignored_or_unsatisfiable() {
        use ByteRange::*;
        let part = |first, last| Part { first, last };
        for (header, expected) in [
            (None, Whole),
            (Some("bytes=0-99"), part(0, 99)),
            (Some("bytes=100-199"), part(100, 199)),
            (Some("Bytes = 10-10"), part(10, 10)),
            (Some("bytes=900-5000"), part(900, 999)),
            (Some("bytes=500-"), part(500, 999)),
            (Some("bytes=-100"), part(900, 999)),
            (Some("bytes=-5000"), part(0, 999)),
            (Some("bytes=999-"), part(999, 999)),
            (Some("bytes=1000-"), Unsatisfiable),
            (Some("bytes=1000-2000"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            // Ignored: the whole file.
            (Some("bytes=0-9,20-29"), Whole),
            (Some("items=0-9"), Whole),
            (Some("bytes=9-0"), Whole),
            (Some("bytes=x-9"), Whole),
            (Some("bytes=-"), Whole),
            (Some("bytes=+1-2"), Whole),
            (Some("bytes=1-+2"), Whole),
            (Some("bytes 0-9"), Whole),
            (Some("bytes=99999999999999999999999-"), Whole),
        ] {
            assert_eq!(byte_range(header, 1000), expected, "{header:?}");
        }
        assert_eq!(byte_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-1"), 0), Unsatisfiable);
    }

    #[test]
    fn only_a_plain_path_inside_the_enterprise_is_served() {
        assert!(under_enterprise("acme/2026-03-01/ab12.wav", "acme"));
        for bad in [
            "beta/2026-03-01/ab12.wav",
            "acme/../beta/x.wav",
            "/acme/x.wav",
            "acme",
            "",
            "../acme/x.wav",
            "acmex/x.wav",
        ] {
            assert!(!under_enterprise(bad, "acme"), "{bad}");
        }
    }

    #[test]
    fn the_download_name_is_the_files_when_plain() {
        assert_eq!(download_name("acme/2026-03-01/ab-12.wav"), "ab-12.wav");
        assert_eq!(download_name("acme/d/a\"b.wav"), "recording.wav");
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at: Timestamp = "2026-03-01T02:00:00Z".parse().unwrap();
        assert_eq!(http_date(at), "Sun, 01 Mar 2026 02:00:00 GMT");
    }
}
