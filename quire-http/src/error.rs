//! Every error quire answers with, mapped to a status and the RealWorld body
//! `{"errors":{"<field>":["<message>"]}}` here and nowhere else.
//!
//! Server-side failures are logged (inside the request's span, so with its request id) and
//! answered with a generic message: internals never reach a client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quire_app::{AppError, AuthFailure};
use quire_domain::FieldErrors;
use serde_json::{Map, Value, json};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<(String, String)>,
    /// Seconds for `Retry-After` (429 and 503; 503 defaults to 1).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with one field and message.
    pub fn new(status: StatusCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![(field.into(), message.into())],
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, what, "not found")
    }

    pub fn unauthorized(failure: AuthFailure) -> Self {
        let (field, message) = match failure {
            AuthFailure::Missing => ("token", "is missing"),
            AuthFailure::Invalid => ("token", "is invalid"),
            AuthFailure::Expired => ("token", "has expired"),
            AuthFailure::BadCredentials => ("email or password", "is invalid"),
            AuthFailure::Disabled => ("account", "is disabled"),
        };
        Self::new(StatusCode::UNAUTHORIZED, field, message)
    }

    fn validation(errors: &FieldErrors) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            errors: errors
                .iter()
                .flat_map(|(field, messages)| {
                    messages.iter().map(move |m| (field.to_owned(), m.clone()))
                })
                .collect(),
            retry_after: None,
        }
    }

    /// A generic 500; the cause is logged, not shown.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server",
            "internal error",
        )
    }

    /// 429: a rate limit refused the request; `retry_after` whole seconds until it may.
    pub fn too_many_requests(retry_after: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate",
            format!("limit exceeded, retry in {retry_after} s"),
        )
        .retry_after(retry_after)
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The errors as one sentence for people: `title can't be blank; body is too long`.
    pub fn summary(&self) -> String {
        self.errors
            .iter()
            .map(|(field, message)| format!("{field} {message}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn body(&self) -> Value {
        let mut fields = Map::new();
        for (field, message) in &self.errors {
            let entry = fields
                .entry(field.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(messages) = entry {
                messages.push(Value::String(message.clone()));
            }
        }
        json!({ "errors": fields })
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Validation(errors) => Self::validation(&errors),
            AppError::Unauthorized(failure) => Self::unauthorized(failure),
            AppError::Forbidden(what) => Self::new(
                StatusCode::FORBIDDEN,
                what,
                "may only be changed by its author",
            ),
            AppError::NotFound(what) => Self::not_found(what),
            AppError::TooLarge { limit } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body",
                format!("is too large (maximum is {limit} bytes)"),
            ),
            AppError::UnsupportedMediaType(message) => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "contentType", message)
            }
            AppError::Interrupted(cause) => Self::new(
                StatusCode::BAD_REQUEST,
                "body",
                format!("was interrupted: {cause}"),
            ),
            AppError::Overloaded => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server",
                "is busy, try again shortly",
            ),
            AppError::MediaUnavailable(cause) => {
                tracing::warn!(cause = %cause, "media storage unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "media",
                    "storage is unavailable, try again shortly",
                )
            }
            AppError::Internal(cause) => Self::internal(&cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                let seconds = self.retry_after.unwrap_or(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_domain::FieldError;

    #[test]
    fn bodies_group_messages_by_field() {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new("email", "is invalid"));
        errors.push(FieldError::blank("username"));
        errors.push(FieldError::new("email", "has already been taken"));
        let error = ApiError::from(AppError::Validation(errors));
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            error.body(),
            json!({"errors": {
                "email": ["is invalid", "has already been taken"],
                "username": ["can't be blank"],
            }})
        );
    }

    #[test]
    fn unauthorized_asks_for_a_token() {
        let response = ApiError::unauthorized(AuthFailure::Missing).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Token");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = ApiError::from(AppError::Internal("disk I/O error at /secret".into()));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.body().to_string().contains("secret"));
    }
}
