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
mod upgrade;

use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use quire_app::{AuthFailure, LiveFilter, LiveTopics, Viewer};

pub use clock::LiveClock;
pub use limits::LiveLimits;
pub use upgrade::{Socket, Upgrade, settings};

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
    let upgrade = Upgrade::from_parts(&mut parts)?;
    let response = upgrade.response();
    let session = session::Session {
        app: state.app.clone(),
        viewer: viewer.map(Box::new),
        filter,
        subscription: state.app.live_subscribe(),
        config: state.live.clone(),
        beat: state.live_clock.subscribe(&state.draining),
        _guard: guard,
    };
    let pending = Box::new(Pending {
        settings: settings(state.live.max_message_bytes),
        upgrade,
        session,
    });
    state.sessions.spawn(session_task(pending));
    Ok(response)
}

/// The task of one WebSocket session. Its state is what every idle connection costs: a
/// pointer while the upgrade is pending, then the session's future.
async fn session_task(pending: Box<Pending>) {
    // Boxed: opening holds the session, its settings and the WebSocket being made, none of
    // which may stay in the task's state once the session runs.
    let Some(opened) = Box::pin(pending.open()).await else {
        return;
    };
    match opened {
        Opened::Plain(live) => session::run(live).await,
        Opened::Tunneled(live) => session::run(live).await,
    }
}

/// A session waiting for its connection, boxed: a task keeps whatever it captures, and whatever
/// an `async` block holds across an `await`, for its whole life, so all of this stays one
/// pointer there and is gone once the WebSocket is open.
struct Pending {
    upgrade: Upgrade,
    settings: tokio_tungstenite::tungstenite::protocol::WebSocketConfig,
    session: session::Session,
}

/// An open session, boxed with its socket of either kind.
enum Opened {
    Plain(Box<session::Live<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>>),
    Tunneled(Box<session::Live<tokio_tungstenite::WebSocketStream<TokioIo<Upgraded>>>>),
}

impl Pending {
    /// Waits for the upgrade; `None` if the connection ended first.
    async fn open(self: Box<Self>) -> Option<Opened> {
        let Pending {
            upgrade,
            settings,
            session,
        } = *self;
        let opened = match upgrade.open(settings).await? {
            Socket::Plain(socket) => Opened::Plain(Box::new(session::Live { socket, session })),
            Socket::Tunneled(socket) => {
                Opened::Tunneled(Box::new(session::Live { socket, session }))
            }
        };
        Some(opened)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, F>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The task of every idle connection holds this future. tokio aligns a task to 128 bytes
    /// and adds its own header: a future of up to 256 bytes makes a task of 384, up to about
    /// 376 one of 512, and more one of 640 (read with a counting allocator, tokio 1.x on
    /// x86_64, spawned through a `TaskTracker` as here). Measured in the debug build, where
    /// futures are largest.
    #[test]
    fn a_session_task_fits_tokios_384_byte_cell() {
        let task = future_size(session_task);
        eprintln!("session task: {task} bytes");
        assert!(task <= 256, "the session task grew to {task} bytes");
    }

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
