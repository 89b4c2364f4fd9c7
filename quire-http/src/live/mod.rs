//! Live updates (an extension of the spec): `GET /api/live` (WebSocket of JSON text events)
//! and `GET /api/live/sse` (the same as Server-Sent Events, resumable with `Last-Event-ID`).
//!
//! Subscriptions come from the query (`tag`, `author`, `article` repeatable; `feed=true`;
//! `all=true`; no topic at all means `all`) and, on the WebSocket, from messages
//! `{"action":"subscribe"|"unsubscribe", "tag":[...], "author":[...], "article":[...],
//! "feed":true, "all":true}`, each acknowledged with `{"type":"ack",...}`. Auth is the API's
//! `Authorization` header or a `token` query parameter (browsers cannot set headers on a
//! WebSocket); a bad token is refused with 401 before the upgrade.

mod clock;
mod limits;
mod session;
mod sse;

use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use quire_app::{AuthFailure, LiveFilter, LiveTopics, Viewer};

pub use clock::LiveClock;
pub use limits::LiveLimits;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{CommonErrors, ErrorBody};
use crate::{ApiError, AppState};

/// Settings of live connections.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// How often the server pings; a peer that misses two pongs is closed.
    pub ping_interval: Duration,
    /// Longest a send may wait on a client that does not read before it is closed.
    pub send_timeout: Duration,
    /// Largest client message accepted.
    pub max_message_bytes: usize,
    /// Live connections (WebSocket and SSE) at most, in all.
    pub max_connections: usize,
    /// Live connections at most from one IP address.
    pub max_per_ip: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            max_message_bytes: 4096,
            max_connections: 50_000,
            max_per_ip: 1_000,
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live_websocket))
        .routes(routes!(sse::live_sse))
}

/// quire's WebSocket settings: a small read buffer (clients send little; most connections are
/// idle, and tungstenite allocates and zero-fills the whole buffer up front: its default
/// 128 KiB would dominate their memory; 64 bytes take a typical subscribe message in one or two
/// reads and a 4 KiB message, the largest accepted, in 64), no write
/// buffering (each frame goes straight to the socket), and a message size limit. The Autobahn
/// echo peer (`examples/ws_echo.rs`) uses the same settings.
pub fn configure_upgrade(upgrade: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    upgrade
        .read_buffer_size(64)
        .write_buffer_size(0)
        .max_message_size(max_message_bytes)
        .max_frame_size(max_message_bytes)
}

/// The query parameters of the live endpoints, for the OpenAPI document ([`parse_query`]
/// reads them).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct LiveParams {
    /// Events of articles with this tag (repeatable).
    tag: Option<Vec<String>>,
    /// Events of this author's articles (repeatable).
    author: Option<Vec<String>>,
    /// Events of the article with this slug (repeatable).
    article: Option<Vec<String>>,
    /// Events of authors the signed-in user follows.
    feed: Option<bool>,
    /// Every event (the default when no topic is given).
    all: Option<bool>,
    /// The JWT, for clients that cannot set headers.
    token: Option<String>,
}

/// Topics and token from the query string; repeated keys add topics.
pub(crate) fn parse_query(query: Option<&str>) -> Result<(LiveTopics, Option<String>), ApiError> {
    let mut topics = LiveTopics::default();
    let mut token = None;
    let flag = |value: &str| -> Result<bool, ApiError> {
        match value {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "query",
                "flags must be true or false",
            )),
        }
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let value = value.trim().to_owned();
        match key.as_ref() {
            "tag" if !value.is_empty() => topics.tag.push(value),
            "author" if !value.is_empty() => topics.author.push(value),
            "article" if !value.is_empty() => topics.article.push(value),
            "feed" => topics.feed = flag(&value)?,
            "all" => topics.all = flag(&value)?,
            "token" => token = Some(value),
            _ => {}
        }
    }
    if topics.is_empty() {
        topics.all = true;
    }
    Ok((topics, token))
}

/// Authenticates a live request by header or `token` parameter.
pub(crate) async fn viewer_of(
    state: &AppState,
    parts: &mut Parts,
    query_token: Option<String>,
) -> Result<Option<Viewer>, ApiError> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        let crate::extract::MaybeAuthUser(viewer) =
            crate::extract::MaybeAuthUser::from_request_parts(parts, state).await?;
        return Ok(viewer);
    }
    match query_token {
        None => Ok(None),
        Some(token) if token.is_empty() => Err(ApiError::unauthorized(AuthFailure::Invalid)),
        Some(token) => Ok(Some(state.app.authenticate(&token).await?)),
    }
}

/// Parses, authenticates and builds the filter a live request asks for.
pub(crate) async fn prepare(
    state: &AppState,
    parts: &mut Parts,
) -> Result<(Option<Viewer>, LiveFilter), ApiError> {
    let (topics, token) = parse_query(parts.uri.query())?;
    let viewer = viewer_of(state, parts, token).await?;
    let mut filter = LiveFilter::default();
    state
        .app
        .live_subscribe_to(&mut filter, viewer.as_ref(), topics)
        .await?;
    Ok((viewer, filter))
}

#[utoipa::path(get, path = "/api/live", tag = "Live", operation_id = "LiveWebSocket",
    description = "A WebSocket of JSON text events (article and comment changes) for the chosen topics; subscriptions can change by message.",
    params(LiveParams),
    security((), ("Token" = [])),
    responses(
        (status = 101, description = "upgraded to a WebSocket"),
        (status = 400, description = "not a WebSocket upgrade request", body = ErrorBody),
        CommonErrors))]
async fn live_websocket(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let (viewer, filter) = prepare(&state, &mut parts).await?;
    let guard = state.live_limits.admit(&parts)?;
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
        .await
        .map_err(|rejection| {
            ApiError::new(
                rejection.status(),
                "upgrade",
                "must be a WebSocket upgrade request",
            )
        })?;
    let max_message_bytes = state.live.max_message_bytes;
    let subscription = state.app.live_subscribe();
    let session = session::Session {
        app: state.app.clone(),
        viewer: viewer.map(Box::new),
        filter,
        subscription,
        config: state.live.clone(),
        beat: state.live_clock.subscribe(&state.draining),
    };
    let tracker = state.sessions.clone();
    // Boxed before the upgrade: axum's upgrade task keeps this closure's captures for the
    // connection's whole life, so they must be a pointer, not the session itself.
    let pending = Box::new((session, guard));
    Ok(
        configure_upgrade(upgrade, max_message_bytes).on_upgrade(move |socket| {
            let (session, guard) = *pending;
            let live = Box::new(session::Live { socket, session });
            tracker.track_future(async move {
                session::run(live).await;
                drop(guard);
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let (topics, token) = parse_query(Some("tag=rust&tag=go&author=jake&token=abc")).unwrap();
        assert_eq!(topics.tag, ["rust", "go"]);
        assert_eq!(topics.author, ["jake"]);
        assert!(!topics.all && !topics.feed);
        assert_eq!(token.as_deref(), Some("abc"));
        let (topics, token) = parse_query(None).unwrap();
        assert!(topics.all && token.is_none());
        let (topics, _) = parse_query(Some("feed=true&article=a%20b")).unwrap();
        assert!(topics.feed);
        assert_eq!(topics.article, ["a b"]);
        assert!(parse_query(Some("feed=maybe")).is_err());
    }
}
