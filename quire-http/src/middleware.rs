//! Cross-cutting layers around every route: request ids (taken from `X-Request-Id` or made,
//! and echoed back), one log line per request inside a span carrying that id, the request
//! body limit, panics turned into the API's JSON 500 instead of a dropped connection,
//! compression (gzip, brotli, zstd as the client accepts) of JSON and HTML bodies over 1 KiB
//! only (never media, event streams or small answers), CORS for configured origins, and the
//! rate limits of [`crate::rate_limit`] (inside the metrics layer, so 429s are counted).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutBody;
use tracing::Instrument;

use crate::{ApiError, AppState, HttpConfig};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Compress JSON and HTML of at least 1 KiB; everything else (media, SSE, metrics) as is.
#[derive(Debug, Clone, Copy)]
struct TextBodies;

impl Predicate for TextBodies {
    fn should_compress<B: http_body::Body>(&self, response: &Response<B>) -> bool {
        let text = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
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

/// Whether `path` streams for as long as its client wants (no overall deadline).
fn streams(path: &str) -> bool {
    path.starts_with("/api/media") || path.starts_with("/media/") || path.starts_with("/api/live")
}

/// Fails a request body that sends nothing for `limit` (a stalled uploader), so no request
/// waits forever on its body; the handler sees a body error and answers 4xx.
async fn body_read_deadline(limit: Duration, request: Request<Body>, next: Next) -> Response<Body> {
    next.run(request.map(|body| Body::new(TimeoutBody::new(limit, body))))
        .await
}

/// Answers 503 when a handler has not answered within `limit`; its work is dropped.
async fn deadline(limit: Duration, request: Request<Body>, next: Next) -> Response<Body> {
    if streams(request.uri().path()) {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "request", "took too long")
                .into_response()
        }
    }
}

/// Runs the request inside a span holding its id, so every line logged while serving it
/// carries `request_id`, then logs one `request done` line. The span holds only the id:
/// the JSON formatter re-reads span fields for every line, so the request's other facts go
/// on the one line that needs them.
async fn access_log(request: Request<Body>, next: Next) -> Response<Body> {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!("request", request_id);
    if span.is_disabled() || !tracing::enabled!(tracing::Level::INFO) {
        return next.run(request).instrument(span).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path,
            route = route.as_ref().map_or("-", MatchedPath::as_str),
            status = response.status().as_u16(),
            latency_ms = start.elapsed().as_secs_f64() * 1000.0,
            "request done"
        );
    });
    response
}

pub fn wrap(router: Router, state: AppState, config: &HttpConfig) -> Router {
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(axum::middleware::from_fn(access_log))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::internal("handler panicked").into_response()
        }))
        .option_layer(cors(&config.cors_origins))
        .layer(CompressionLayer::new().compress_when(TextBodies));
    let request_timeout = config.request_timeout;
    let body_read_timeout = config.body_read_timeout;
    router
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn(move |request, next| {
            deadline(request_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            body_read_deadline(body_read_timeout, request, next)
        }))
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::rate_limit::enforce,
        ))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(layers)
}
