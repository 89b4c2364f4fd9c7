//! `GET /api/live/sse`: the live stream as Server-Sent Events. Each event carries its id;
//! a client reconnecting with `Last-Event-ID` first gets what it missed from the bus's short
//! backlog. A client too slow to keep up is disconnected and resumes the same way.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use quire_app::{Event, LiveFilter, Next, Subscription};
use tokio::sync::watch;

use super::LiveParams;
use crate::openapi::CommonErrors;
use crate::{ApiError, AppState};

struct Stream {
    replay: VecDeque<Arc<Event>>,
    last_sent: u64,
    subscription: Subscription,
    filter: LiveFilter,
    draining: watch::Receiver<bool>,
    _guard: super::limits::LiveGuard,
}

fn to_sse(event: &Event) -> SseEvent {
    SseEvent::default()
        .id(event.id.to_string())
        .data(event.text())
}

#[utoipa::path(get, path = "/api/live/sse", tag = "Live", operation_id = "LiveEvents",
    description = "The same events as Server-Sent Events, resumable with `Last-Event-ID`.",
    params(LiveParams),
    security((), ("Token" = [])),
    responses(
        (status = 200, description = "an event stream", content_type = "text/event-stream", body = String),
        CommonErrors))]
pub async fn live_sse(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    let (_viewer, filter) = super::prepare(&state, &mut parts).await?;
    let guard = state.live_limits.admit(&parts)?;
    // Subscribe before reading the backlog, so nothing falls between the two.
    let subscription = state.app.live_subscribe();
    let last_id = parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let replay = last_id
        .map(|id| state.app.live_since(id))
        .unwrap_or_default();
    let start = Stream {
        replay: replay.into(),
        last_sent: last_id.unwrap_or(0),
        subscription,
        filter,
        draining: state.draining.watch(),
        _guard: guard,
    };
    let events = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if let Some(event) = s.replay.pop_front() {
                s.last_sent = event.id;
                if s.filter.matches(&event) {
                    return Some((Ok::<_, Infallible>(to_sse(&event)), s));
                }
                continue;
            }
            if *s.draining.borrow() {
                return None;
            }
            let next = tokio::select! {
                next = s.subscription.next() => next,
                _ = s.draining.changed() => return None,
            };
            match next {
                // Already replayed from the backlog.
                Next::Event(event) if event.id <= s.last_sent => {}
                Next::Event(event) => {
                    s.last_sent = event.id;
                    if s.filter.matches(&event) {
                        return Some((Ok(to_sse(&event)), s));
                    }
                }
                Next::Lagged(_) | Next::Closed => return None,
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.live.ping_interval))
        .into_response())
}
