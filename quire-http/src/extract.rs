//! Extractors: JSON, path and query that reject in the RealWorld error shape, and the
//! `AuthUser` / `MaybeAuthUser` extractors that make authentication visible in a handler's
//! signature.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use quire_app::{AuthFailure, Viewer};
use quire_domain::UserId;

use crate::{ApiError, AppState};

/// `axum::Json`, but a bad body answers in the API's error shape: 413 past the body limit, and
/// 422 for everything else a client got wrong (not JSON, no JSON content type, wrong fields):
/// the RealWorld spec documents 422 as every operation's answer to bad input, so a client
/// written against it needs no other status.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with the API's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with the API's error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::MissingJsonContentType(_) => {
                "must be sent with Content-Type: application/json".to_owned()
            }
            JsonRejection::JsonSyntaxError(_) => {
                format!("is not valid JSON: {}", rejection.body_text())
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "is too large".to_owned(),
            _ => rejection.body_text(),
        };
        let status = if status == StatusCode::PAYLOAD_TOO_LARGE {
            status
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, "body", message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "path",
            rejection.body_text(),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "query",
            rejection.body_text(),
        )
    }
}

/// The token of an `Authorization: Token <jwt>` or `Bearer <jwt>` header, if any.
pub(crate) fn token_from(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthFailure::Invalid)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Invalid)?;
    let known = scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer");
    let token = token.trim();
    if !known || token.is_empty() {
        return Err(AuthFailure::Invalid);
    }
    Ok(Some(token))
}

/// The user a request's token names, put in its extensions by the middleware that checked
/// the signature first (the per-user rate limit), so the extractors do not check it again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VerifiedToken(pub UserId);

async fn viewer_from(parts: &Parts, state: &AppState) -> Result<Option<Viewer>, ApiError> {
    let Some(token) = token_from(&parts.headers).map_err(ApiError::unauthorized)? else {
        return Ok(None);
    };
    let viewer = match parts.extensions.get::<VerifiedToken>() {
        Some(VerifiedToken(id)) => state.app.viewer(*id, token).await?,
        None => state.app.authenticate(token).await?,
    };
    Ok(Some(viewer))
}

/// A signed-in user; requests without a valid token get 401.
pub struct AuthUser(pub Viewer);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        viewer_from(parts, state)
            .await?
            .map(Self)
            .ok_or_else(|| ApiError::unauthorized(AuthFailure::Missing))
    }
}

/// A signed-in user if there is a token. A token that is present but invalid still gets 401:
/// a client that believes it is signed in must learn that it is not.
pub struct MaybeAuthUser(pub Option<Viewer>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        viewer_from(parts, state).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn authorization_schemes() {
        assert_eq!(token_from(&HeaderMap::new()), Ok(None));
        assert_eq!(token_from(&headers("Token abc")), Ok(Some("abc")));
        assert_eq!(token_from(&headers("Bearer abc")), Ok(Some("abc")));
        assert_eq!(token_from(&headers("bearer  abc ")), Ok(Some("abc")));
        assert_eq!(token_from(&headers("abc")), Err(AuthFailure::Invalid));
        assert_eq!(token_from(&headers("Basic abc")), Err(AuthFailure::Invalid));
        assert_eq!(token_from(&headers("Token ")), Err(AuthFailure::Invalid));
    }
}
