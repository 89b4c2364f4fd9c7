//! The OpenAPI 3.1 document of everything quire serves, served at `GET /api/openapi.json`.
//!
//! It cannot drift from the code: every route is registered through utoipa-axum's
//! `OpenApiRouter` with `routes!`, which takes each path and method from the handler's
//! `#[utoipa::path]`, so the router and the document are built from the same list; request
//! and response shapes are the types that parse and serialize them (`ToSchema`). This module
//! adds what no handler knows: the title, the `Token` security scheme and the error body.

use std::collections::BTreeMap;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// Every error: `{"errors": {"<field>": ["<message>", ...]}}` (the spec's
/// `GenericErrorModel`; 422 names the invalid fields, other statuses a subject such as
/// `body`, `token` or `server`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    pub errors: BTreeMap<String, Vec<String>>,
}

/// The errors any API call may meet besides its own: bad input, missing or bad token,
/// rate limits and overload.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// A body that stalled or broke off before it was whole.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// Missing, malformed or expired token where one is needed.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Body larger than the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Invalid or missing fields, each named; also a body that is not JSON or not sent as
    /// `application/json` (`body`), and malformed query or path parameters (`query`, `path`).
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// A rate limit was hit; `Retry-After` says when to come back.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
    TooManyRequests(ErrorBody),
    /// Overloaded, draining or too slow; `Retry-After` says when to come back.
    #[response(status = 503, headers(("Retry-After" = u64, description = "seconds to wait")))]
    Unavailable(ErrorBody),
}

/// A media type quire does not store (uploads only).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum UnsupportedMediaType {
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
}

/// An article, profile, comment or media item that does not exist.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum NotFound {
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The signed-in user may not change this resource.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Forbidden {
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "quire",
        description = "The RealWorld (Conduit) API, plus quire's extensions: profile dashboards, \
                       media, live updates, health and metrics.",
        license(name = "MIT")
    ),
    modifiers(&TokenScheme),
    components(schemas(ErrorBody))
)]
pub struct ApiDoc;

/// `Authorization: Token <jwt>` (the spec's `Token` scheme; `Bearer` is accepted too).
struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "Token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <jwt>` as returned by login and registration",
            ))),
        );
    }
}
