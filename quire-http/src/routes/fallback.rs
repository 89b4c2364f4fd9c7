//! Answers for unknown routes (404) and wrong methods (405), in the API's error shape.

use axum::http::{StatusCode, Uri};

use crate::ApiError;

pub async fn not_found(uri: Uri) -> ApiError {
    tracing::debug!(path = uri.path(), "no such route");
    ApiError::new(StatusCode::NOT_FOUND, "route", "not found")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "is not allowed on this route",
    )
}
