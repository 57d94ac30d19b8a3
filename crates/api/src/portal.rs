//! The web portal (`portal/` at the repository's top), served from the API's own listener
//! from the files embedded in the binary (`sihai_portal`): one origin for the page and the
//! API, so the session cookie stays `SameSite=Strict` and no CORS is needed.
//!
//! Everything that is not under `/api/` and no other route takes comes here: a file of
//! the build, or the page itself (the portal routes in the URL's fragment, so any other
//! path without an extension is the page too). Files named by their content's hash are
//! cached forever; the page never, so a new binary's portal is seen at the next load.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// What the page may load: its own scripts and styles (Element Plus sets inline styles),
/// its own API, recordings as blobs; no frame may embed it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
     font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            name.eq_ignore_ascii_case("gzip") && !refused
        })
}

/// The fallback of every route: the portal's files for `GET`/`HEAD`, `404` otherwise.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" {
        return ApiError::NotFound.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::NotFound.into_response();
    }
    let last = path.rsplit('/').next().unwrap_or("");
    let asset = match sihai_portal::asset(path) {
        Some(asset) => asset,
        // The page for a path of its own (a bookmark without the fragment, say).
        None if !last.contains('.') => sihai_portal::index(),
        None => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    let mut response_headers = HeaderMap::new();
    let static_header = |value: &'static str| HeaderValue::from_static(value);
    response_headers.insert(header::CONTENT_TYPE, static_header(asset.content_type));
    response_headers.insert(
        header::CACHE_CONTROL,
        static_header(if asset.immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff"));
    response_headers.insert(header::REFERRER_POLICY, static_header("same-origin"));
    if asset.content_type.starts_with("text/html") {
        response_headers.insert(
            header::CONTENT_SECURITY_POLICY,
            static_header(CONTENT_SECURITY_POLICY),
        );
        response_headers.insert(header::X_FRAME_OPTIONS, static_header("DENY"));
    }
    let mut body = asset.bytes;
    if let Some(gzip) = asset.gzip {
        response_headers.insert(header::VARY, static_header("Accept-Encoding"));
        if accepts_gzip(&headers) {
            response_headers.insert(header::CONTENT_ENCODING, static_header("gzip"));
            body = gzip;
        }
    }
    if method == Method::HEAD {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        return (StatusCode::OK, response_headers).into_response();
    }
    (StatusCode::OK, response_headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_sent_only_to_those_who_accept_it() {
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, GZIP;q=0.5")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
