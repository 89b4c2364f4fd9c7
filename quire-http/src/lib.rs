//! quire's HTTP layer: the axum [`Router`] for the RealWorld API, health probes and the
//! cross-cutting middleware (request ids, logging, body limits, panics as JSON 500s).
//!
//! Handlers are thin: extract, call one `App` function, turn the result into JSON. This crate
//! never touches the store, cache or event bus directly; it talks to `quire_app::App` only.
//! Every error becomes the RealWorld body in one place, [`error`].

pub mod client_ip;
mod conditional;
pub mod error;
mod extract;
mod lifecycle;
pub mod live;
pub mod metrics;
mod middleware;
pub mod openapi;
mod range;
pub mod rate_limit;
mod render;
mod routes;
pub mod sign_in_guard;
mod trace_context;
mod views;
pub mod web;

use std::sync::Arc;

use axum::Router;
use quire_app::App;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Origins allowed to call the API from browsers (CORS); `*` allows any; empty: none.
    pub cors_origins: Vec<String>,
    /// Longest a request may take to be answered (streams excepted: media bodies and live
    /// connections run as long as their clients keep up); past it, 503.
    pub request_timeout: std::time::Duration,
    /// Longest a request body may send nothing (uploads included); past it the request
    /// fails and its connection closes.
    pub body_read_timeout: std::time::Duration,
    /// Whether request spans are exported (`--otlp-endpoint`): they then carry the route,
    /// method and status as attributes. The trace id reaches the logs either way.
    pub export_traces: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            cors_origins: Vec::new(),
            request_timeout: std::time::Duration::from_secs(30),
            body_read_timeout: std::time::Duration::from_secs(30),
            export_traces: false,
        }
    }
}

/// Whether the process is draining: `/health/ready` turns 503 so load balancers move away,
/// and live connections close with 1001.
#[derive(Debug)]
pub struct Draining(watch::Sender<bool>);

impl Default for Draining {
    fn default() -> Self {
        Self(watch::Sender::new(false))
    }
}

impl Draining {
    pub fn start(&self) {
        self.0.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver that changes when draining starts.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// The state every handler receives: one pointer to the shared handles, so the clones axum
/// makes per request (each middleware and handler takes its own) cost one atomic increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] points to.
pub struct Shared {
    /// The use cases and their backends.
    pub app: Arc<App>,
    /// Set when shutdown begins.
    pub draining: Arc<Draining>,
    /// Settings of live connections, shared by every session.
    pub live: Arc<live::LiveConfig>,
    /// Ping times and the start of draining, for WebSocket sessions.
    pub live_clock: Arc<live::LiveClock>,
    /// Open live connections, against their ceilings.
    pub live_limits: Arc<live::LiveLimits>,
    /// Upgraded WebSocket sessions, which outlive their HTTP request: shutdown waits for
    /// them (after they have been told to close) as it waits for requests.
    pub sessions: TaskTracker,
    /// Request rate limits and the trusted proxies that name client IPs.
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// The tag list's JSON, rendered once per version of the list.
    pub tags_json: render::TagsJson,
    /// Settings of the web pages.
    pub web: web::WebConfig,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        app: Arc<App>,
        live: live::LiveConfig,
        rate_limits: Arc<rate_limit::RateLimits>,
        web: web::WebConfig,
    ) -> Self {
        Self(Arc::new(Shared {
            app,
            draining: Arc::new(Draining::default()),
            live_limits: live::LiveLimits::new(live.max_connections, live.max_per_ip),
            live_clock: Arc::new(live::LiveClock::new(live.ping_interval)),
            live: Arc::new(live),
            sessions: TaskTracker::new(),
            rate_limits,
            tags_json: render::TagsJson::default(),
            web,
        }))
    }
}

/// The whole HTTP surface of quire, with its middleware, and `GET /api/openapi.json`.
pub fn router(state: AppState, config: &HttpConfig) -> Router {
    let (routes, document) = routes().split_for_parts();
    let document = axum::Json(document);
    let app = routes
        .route(
            "/api/openapi.json",
            axum::routing::get(move || std::future::ready(document.clone())),
        )
        .fallback(routes::fallback::not_found)
        .method_not_allowed_fallback(routes::fallback::method_not_allowed)
        .with_state(state.clone());
    middleware::wrap(app, state, config)
}

/// Every route and, built from the same list, its OpenAPI description. The API's routes
/// carry their `/api` prefix themselves rather than being nested under it: a nested router
/// costs every request a rewritten URI, a second match and a clone of the inner router.
pub fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(routes::users::router())
        .merge(routes::profiles::router())
        .merge(routes::articles::router())
        .merge(routes::comments::router())
        .merge(routes::tags::router())
        .merge(routes::search::router())
        .merge(routes::media::api_router())
        .merge(live::router());
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(api)
        .merge(routes::health::router())
        .merge(routes::media::public_router())
        .merge(web::router())
        .routes(routes!(metrics::render))
}

/// The OpenAPI document, as served at `/api/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}
