//! `GET /metrics`: the node's figures for Prometheus, and the count of this API's own
//! requests by route and status that goes into them.
//!
//! The endpoint is the operator's, like `GET /api/v1/node`: a Prometheus server scrapes
//! it with an operator's API key (`authorization: { credentials_file: … }` in its scrape
//! configuration sends `Authorization: Bearer …`), so the API's listener can face the
//! enterprises without handing them the node's traffic.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Api;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::operator::operator_only;

/// The content type of what `prometheus-client` writes: OpenMetrics text 1.0.0, which
/// Prometheus reads (counters end in `_total`, the text ends with `# EOF`).
const TEXT_FORMAT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`: every metric of the node, in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operator",
    responses((status = 200, description = "The node's metrics, Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::error::ErrorBody),
        (status = 403, description = "Not the operator", body = crate::error::ErrorBody)))]
pub async fn metrics(State(api): State<Api>, caller: Caller) -> Result<Response, ApiError> {
    operator_only(&caller)?;
    let text = sihai_server::metrics::render(&api.node, &api.requests);
    Ok(([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

/// Counts every request by its route's template (a concrete path would make a label
/// value per enterprise) and the status it was answered with.
pub async fn count_requests(State(api): State<Api>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    api.requests.count(&route, response.status().as_u16());
    response
}
