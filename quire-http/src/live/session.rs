//! One WebSocket session, written over any `Stream + Sink` of messages so it can be driven
//! without a socket. It forwards matching events, applies subscribe/unsubscribe messages,
//! pings every `ping_interval` and closes a peer that missed two pongs, closes a client that
//! cannot keep up (1008), and closes with 1001 when the server shuts down.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use quire_app::{App, LiveFilter, LiveTopics, Next, Subscription, Viewer};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::LiveConfig;

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
    pub viewer: Option<Viewer>,
    pub filter: LiveFilter,
    pub subscription: Subscription,
    pub config: LiveConfig,
    pub draining: watch::Receiver<bool>,
}

/// A client message.
#[derive(Deserialize)]
struct Command {
    action: String,
    #[serde(flatten)]
    topics: LiveTopics,
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
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Runs the session until either side ends it.
pub async fn run<S, E>(mut socket: S, mut session: Session)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
{
    let mut ticker = tokio::time::interval(session.config.ping_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut unanswered_pings = 0u32;
    if *session.draining.borrow() {
        let _ = socket
            .send(close(CLOSE_GOING_AWAY, "server shutting down"))
            .await;
        return;
    }
    let end = loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    unanswered_pings = 0;
                    let reply = handle_command(&mut session, text.as_str()).await;
                    if !send(&mut socket, Message::text(reply.to_string()), &session.config).await {
                        break End::Gone;
                    }
                }
                Some(Ok(Message::Binary(_))) => break End::Close(CLOSE_UNSUPPORTED, "text messages only"),
                Some(Ok(Message::Close(_))) => break End::ClientClosed,
                Some(Err(_)) | None => break End::Gone,
                // Pings are answered by the protocol layer; any frame shows the peer is alive.
                Some(Ok(_)) => unanswered_pings = 0,
            },
            next = session.subscription.next() => match next {
                Next::Event(event) => {
                    if session.filter.matches(&event) {
                        let text = Utf8Bytes::from(event.text());
                        match tokio::time::timeout(session.config.send_timeout, socket.send(Message::Text(text))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break End::Gone,
                            Err(_) => {
                                tracing::info!("live client not reading; closing");
                                metrics::counter!("live_slow_consumers_closed_total").increment(1);
                                break End::Close(CLOSE_TOO_SLOW, "too slow to keep up");
                            }
                        }
                    }
                }
                Next::Lagged(missed) => {
                    tracing::info!(missed, "live client too slow; closing");
                    metrics::counter!("live_slow_consumers_closed_total").increment(1);
                    break End::Close(CLOSE_TOO_SLOW, "too slow to keep up");
                }
                Next::Closed => break End::Close(CLOSE_GOING_AWAY, "server shutting down"),
            },
            _ = ticker.tick() => {
                if unanswered_pings >= 2 {
                    tracing::debug!("live client missed two pongs; closing");
                    break End::Gone;
                }
                unanswered_pings += 1;
                if !send(&mut socket, Message::Ping(Default::default()), &session.config).await {
                    break End::Gone;
                }
            },
            _ = session.draining.changed() => break End::Close(CLOSE_GOING_AWAY, "server shutting down"),
        }
    };
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
            .live_subscribe_to(&mut session.filter, session.viewer.as_ref(), command.topics)
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
