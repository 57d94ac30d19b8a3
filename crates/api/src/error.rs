//! What a request that fails gets: a status and a JSON body saying why.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One problem of a rejected write: the entry (`group/sales`), the field path within
/// it (`phones[0].uri`), and what is wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub entry: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not logged in")]
    Unauthenticated,
    /// Also what anything of another enterprise answers: its existence is not disclosed.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    /// A write that changes fields the caller may not change: `403` naming each.
    #[error("the write changes {} field(s) only the operator changes", .0.len())]
    FieldsForbidden(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("the write was refused: {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    /// A body over a route's limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("too many failed logins; try again in {0} s")]
    TooManyAttempts(u64),
    #[error("internal error")]
    Internal(String),
}

/// What every error answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in a sentence.
    error: String,
    /// For a `422` (and a `403` naming fields): every problem of the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) | ApiError::FieldsForbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(detail) => {
                // The detail is for the operator's log, not for the client.
                tracing::error!(%detail, "API request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let errors = match &self {
            ApiError::Invalid(errors) | ApiError::FieldsForbidden(errors) => Some(errors.clone()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
                errors,
            }),
        )
            .into_response();
        if let ApiError::TooManyAttempts(seconds) = self
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

impl From<sihai_store::StoreError> for ApiError {
    fn from(e: sihai_store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}
