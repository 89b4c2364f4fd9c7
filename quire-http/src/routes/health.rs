//! `GET /health/live` (the process runs) and `GET /health/ready` (the store and,
//! when configured, Redis answer, and the process is not draining), for load balancers and orchestrators.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::views::HealthBody;

/// Longest a readiness probe waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

#[utoipa::path(get, path = "/health/live", tag = "Operations", operation_id = "Live",
    responses((status = 200, description = "the process runs", body = HealthBody)))]
async fn live() -> Json<HealthBody> {
    Json(HealthBody {
        status: "live",
        reason: None,
    })
}

/// Whether the media store answers within the readiness timeout.
async fn media_ready(state: &AppState) -> bool {
    match tokio::time::timeout(READY_TIMEOUT, state.app.blobs.ready()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "readiness: media storage unavailable");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: media storage timed out");
            false
        }
    }
}

#[utoipa::path(get, path = "/health/ready", tag = "Operations", operation_id = "Ready",
    responses(
        (status = 200, description = "the store answers and the process is not draining", body = HealthBody),
        (status = 503, description = "draining, or the store, Redis or the media bucket is unavailable", body = HealthBody),
    ))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthBody>) {
    let unavailable = |reason: &'static str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthBody {
                status: "unavailable",
                reason: Some(reason),
            }),
        )
    };
    if state.draining.is_draining() {
        return unavailable("shutting down");
    }
    match tokio::time::timeout(READY_TIMEOUT, state.app.store.ping()).await {
        Ok(Ok(())) if !state.app.peers_ready().await => {
            tracing::warn!("readiness: Redis unavailable");
            unavailable("redis unavailable")
        }
        Ok(Ok(())) if !media_ready(&state).await => unavailable("media storage unavailable"),
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(HealthBody {
                status: "ready",
                reason: None,
            }),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store unavailable");
            unavailable("store unavailable")
        }
        Err(_) => unavailable("store timed out"),
    }
}
