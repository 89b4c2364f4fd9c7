//! Cross-cutting layers around every route: request ids (taken from `X-Request-Id` or made,
//! and echoed back), the request lifecycle of [`crate::lifecycle`] (span with that id,
//! deadlines, metrics, one log line per request), the request body limit, panics turned into
//! the API's JSON 500 instead of a dropped connection, compression (gzip, brotli, zstd as the
//! client accepts) of JSON and HTML bodies over 1 KiB only (never media, event streams or
//! small answers), CORS for configured origins, and the rate limits of
//! [`crate::rate_limit`] (inside the lifecycle, so 429s are counted and logged).

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Response, header};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::CompressionLevel;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::lifecycle::LifecycleLayer;
use crate::{ApiError, AppState, HttpConfig};

/// The request id header: taken from the caller or made, echoed, and on every log line.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Compress JSON and HTML of at least 1 KiB; everything else (media, SSE, metrics) as is.
#[derive(Debug, Clone, Copy)]
struct TextBodies;

/// What quire writes as text: the API's JSON, the pages, their stylesheet and script, feeds
/// and the sitemap. Never media (uploads keep the type they were sent with, `text/plain`
/// among them, and are served byte for byte).
const COMPRESSED_TYPES: &[&str] = &[
    "application/json",
    "text/html",
    "text/css",
    "text/javascript",
    "application/atom+xml",
    "application/xml",
];

impl Predicate for TextBodies {
    fn should_compress<B: http_body::Body>(&self, response: &Response<B>) -> bool {
        let text = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| COMPRESSED_TYPES.iter().any(|t| ct.starts_with(t)));
        text && SizeAbove::new(1024).should_compress(response)
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(3600)),
    )
}

/// Wraps every route, outermost first: CORS (so every answer, errors and time-outs
/// included, carries its headers), the request id (made or taken, and echoed), panics as
/// JSON 500s, compression, the request's lifecycle (span, deadlines, metrics, access line:
/// [`crate::lifecycle`]), the rate limits, the body size limit.
pub fn wrap(router: Router, state: AppState, config: &HttpConfig) -> Router {
    let layers = ServiceBuilder::new()
        .option_layer(cors(&config.cors_origins))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("handler panicked").into_response()
        }))
        // The fastest level of each algorithm: bodies are dynamic and small, compressed anew
        // for every response, and brotli's default level cost about 100 µs per 8 KB page.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(TextBodies),
        )
        .layer(LifecycleLayer {
            request_timeout: config.request_timeout,
            body_read_timeout: config.body_read_timeout,
            export_traces: config.export_traces,
        });
    router
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::rate_limit::enforce,
        ))
        .layer(layers)
}
