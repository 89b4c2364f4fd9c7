//! One WebSocket session, written over any `Stream + Sink` of messages so it can be driven
//! without a socket. It forwards matching events, applies subscribe/unsubscribe messages,
//! pings at every beat of the shared [`LiveClock`](super::clock::LiveClock) (once per
//! `ping_interval`) and closes a peer that missed two pongs, closes a client that cannot keep
//! up (1008), and closes with 1001 when the server shuts down.
//!
//! Memory: most connections sit idle for hours, so what an idle session holds is what
//! thousands of them cost. The socket and session live in one box that the task only points
//! to (an async fn's arguments would otherwise be stored twice in its state), and everything
//! that awaits while handling a wake-up (sends, store lookups, the close handshake) runs in a
//! boxed future that exists only while the connection is busy. The idle state is the three
//! waits of the select and nothing else: no timer of its own (the clock is shared), the
//! settings behind one `Arc`, and a filter of a few words.

use std::sync::Arc;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use quire_app::{App, LiveFilter, LiveTopics, Next, Subscription, Viewer};
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::LiveConfig;
use super::clock::Beat;

/// Close code for a client that fell too far behind (policy violation).
pub const CLOSE_TOO_SLOW: u16 = 1008;
/// Close code for server shutdown.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a message the server cannot accept.
pub const CLOSE_UNSUPPORTED: u16 = 1003;

/// Longest the server waits to deliver its close frame.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything a session needs.
pub struct Session {
    pub app: Arc<App>,
    /// Boxed: only subscribe messages need it, and most sessions are anonymous and idle.
    pub viewer: Option<Box<Viewer>>,
    pub filter: LiveFilter,
    pub subscription: Subscription,
    pub config: Arc<LiveConfig>,
    /// Ping times, and the start of draining.
    pub beat: Beat,
    /// The connection's place under the live ceilings, given back when the session ends.
    pub _guard: super::limits::LiveGuard,
}

/// A client message.
#[derive(Deserialize)]
struct Command {
    action: String,
    #[serde(flatten)]
    topics: LiveTopics,
}

/// A session and its socket, boxed once at the upgrade.
pub struct Live<S> {
    pub socket: S,
    pub session: Session,
}

/// What woke an idle session.
enum Wake<E> {
    Incoming(Option<Result<Message, E>>),
    Bus(Next),
    Beat,
}

/// Why the session ends.
enum End {
    /// The client vanished or broke the protocol: nothing more to send.
    Gone,
    /// The client sent a close frame: the protocol layer answers it; finish the handshake.
    ClientClosed,
    /// Send a close frame with this code and reason.
    Close(u16, &'static str),
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Runs the session until either side ends it.
pub async fn run<S, E>(mut live: Box<Live<S>>)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let Live { socket, session } = &mut *live;
    let mut unanswered_pings = 0u32;
    if session.beat.draining() {
        Box::pin(finish(
            socket,
            End::Close(CLOSE_GOING_AWAY, "server shutting down"),
        ))
        .await;
        return;
    }
    let end = loop {
        let wake = tokio::select! {
            incoming = socket.next() => Wake::Incoming(incoming),
            next = session.subscription.next() => Wake::Bus(next),
            () = session.beat.next() => Wake::Beat,
        };
        // Boxed: its state must not weigh on every idle connection's task.
        if let Some(end) = Box::pin(handle(wake, socket, session, &mut unanswered_pings)).await {
            break end;
        }
    };
    Box::pin(finish(socket, end)).await;
}

/// Acts on one wake-up; `Some` ends the session.
async fn handle<S, E>(
    wake: Wake<E>,
    socket: &mut S,
    session: &mut Session,
    unanswered_pings: &mut u32,
) -> Option<End>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    match wake {
        Wake::Incoming(incoming) => match incoming {
            Some(Ok(Message::Text(text))) => {
                *unanswered_pings = 0;
                let reply = handle_command(session, text.as_str()).await;
                if !send(socket, Message::text(reply.to_string()), &session.config).await {
                    return Some(End::Gone);
                }
                None
            }
            Some(Ok(Message::Binary(_))) => {
                Some(End::Close(CLOSE_UNSUPPORTED, "text messages only"))
            }
            Some(Ok(Message::Close(_))) => Some(End::ClientClosed),
            Some(Err(_)) | None => Some(End::Gone),
            // Pings are answered by the protocol layer; any frame shows the peer is alive.
            Some(Ok(_)) => {
                *unanswered_pings = 0;
                None
            }
        },
        Wake::Bus(Next::Event(event)) => {
            if !session.filter.matches(&event) {
                return None;
            }
            // The event's own bytes, shared: no copy per subscriber.
            let text = Utf8Bytes::try_from(event.json().clone()).unwrap_or_default();
            match tokio::time::timeout(
                session.config.send_timeout,
                socket.send(Message::Text(text)),
            )
            .await
            {
                Ok(Ok(())) => None,
                Ok(Err(_)) => Some(End::Gone),
                Err(_) => {
                    tracing::info!("live client not reading; closing");
                    metrics::counter!("live_slow_consumers_closed_total").increment(1);
                    Some(End::Close(CLOSE_TOO_SLOW, "too slow to keep up"))
                }
            }
        }
        Wake::Bus(Next::Lagged(missed)) => {
            tracing::info!(missed, "live client too slow; closing");
            metrics::counter!("live_slow_consumers_closed_total").increment(1);
            Some(End::Close(CLOSE_TOO_SLOW, "too slow to keep up"))
        }
        Wake::Bus(Next::Closed) => Some(End::Close(CLOSE_GOING_AWAY, "server shutting down")),
        Wake::Beat if session.beat.draining() => {
            Some(End::Close(CLOSE_GOING_AWAY, "server shutting down"))
        }
        Wake::Beat => {
            if *unanswered_pings >= 2 {
                tracing::debug!("live client missed two pongs; closing");
                return Some(End::Gone);
            }
            *unanswered_pings += 1;
            if !send(socket, Message::Ping(Default::default()), &session.config).await {
                return Some(End::Gone);
            }
            None
        }
    }
}

/// Ends the session the way `end` says.
async fn finish<S, E>(socket: &mut S, end: End)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    match end {
        End::Close(code, reason) => {
            // A slow client may need a while to read up to the close frame.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(close(code, reason))).await;
        }
        End::ClientClosed => {
            // Reading on flushes the automatic close reply and sees the stream end.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                while let Some(Ok(_)) = socket.next().await {}
            })
            .await;
            return;
        }
        End::Gone => {}
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close()).await;
}

/// Sends one message; `false` if the client is gone or did not take it in time.
async fn send<S: Sink<Message> + Unpin>(
    socket: &mut S,
    message: Message,
    config: &LiveConfig,
) -> bool {
    matches!(
        tokio::time::timeout(config.send_timeout, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn handle_command(session: &mut Session, text: &str) -> serde_json::Value {
    let command: Command = match serde_json::from_str(text) {
        Ok(command) => command,
        Err(e) => return json!({"type": "error", "message": format!("bad message: {e}")}),
    };
    let action = command.action.clone();
    let result = match command.action.as_str() {
        "subscribe" => session
            .app
            .live_subscribe_to(
                &mut session.filter,
                session.viewer.as_deref(),
                command.topics,
            )
            .await
            .map_err(|e| e.to_string()),
        "unsubscribe" => {
            session
                .app
                .live_unsubscribe_from(&mut session.filter, command.topics);
            Ok(())
        }
        other => Err(format!(
            "unknown action {other:?}: use subscribe or unsubscribe"
        )),
    };
    match result {
        Ok(()) => json!({"type": "ack", "action": action}),
        Err(message) => json!({"type": "error", "action": action, "message": message}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, F>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection's task holds this future; the module comment says how it is
    /// kept small. Measured in the debug build, where futures are largest.
    #[test]
    fn an_idle_session_future_is_small() {
        type Plain = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
        let size = future_size(run::<Plain, tokio_tungstenite::tungstenite::Error>);
        eprintln!(
            "session future: {size} bytes; live box: {} bytes",
            std::mem::size_of::<Live<Plain>>()
        );
        assert!(size <= 512, "the session future grew to {size} bytes");
    }
}
