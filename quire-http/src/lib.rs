//! quire's HTTP layer: the axum [`Router`] for the RealWorld API, health probes and the
//! cross-cutting middleware (request ids, logging, body limits, panics as JSON 500s).
//!
//! Handlers are thin: extract, call one `App` function, turn the result into JSON. This crate
//! never touches the store, cache or event bus directly; it talks to `quire_app::App` only.
//! Every error becomes the RealWorld body in one place, [`error`].

pub mod error;
mod extract;
mod middleware;
mod range;
mod routes;
mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use quire_app::App;

pub use error::ApiError;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

/// Whether the process is draining: `/health/ready` turns 503 so load balancers move away.
#[derive(Debug, Default)]
pub struct Draining(AtomicBool);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The state every handler receives: one cheap clone of shared handles.
#[derive(Clone)]
pub struct AppState {
    /// The use cases and their backends.
    pub app: Arc<App>,
    /// Set when shutdown begins.
    pub draining: Arc<Draining>,
}

/// The whole HTTP surface of quire, with its middleware.
pub fn router(state: AppState, config: &HttpConfig) -> Router {
    let api = Router::new()
        .merge(routes::users::router())
        .merge(routes::profiles::router())
        .merge(routes::articles::router())
        .merge(routes::comments::router())
        .merge(routes::tags::router())
        .merge(routes::media::api_router());
    let app = Router::new()
        .nest("/api", api)
        .merge(routes::health::router())
        .merge(routes::media::public_router())
        .fallback(routes::fallback::not_found)
        .method_not_allowed_fallback(routes::fallback::method_not_allowed)
        .with_state(state);
    middleware::wrap(app, config)
}
