//! `quire-bench ws-peer`: the WebSocket peer quire's live connections are compared with. A
//! plain axum 0.8 server with tungstenite's DEFAULT settings (128 KiB read buffer, 128 KiB
//! write buffer) that accepts an upgrade on any path and keeps it idle, echoing any message.
//! It is what an axum WebSocket costs when nobody tunes it.
//!
//! Like quire's live connections, each one is subscribed: `POST /api/articles` (what the
//! fan-out probe sends to quire) broadcasts the request's body as one text message to every
//! connection, through a `tokio::sync::broadcast` channel, the way a plain axum server fans
//! out, and answers 201 once it is sent to the channel. The same probe then times both.

use std::io::Write as _;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The channel every connection is subscribed to.
type Events = broadcast::Sender<Utf8Bytes>;

/// Serves forever on `listen`; prints the bound address as the first line of stdout.
pub fn run(listen: SocketAddr) -> anyhow::Result<()> {
    // 18,000 connections need 18,000 descriptors; the soft limit is often 1024.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", listener.local_addr()?)?;
        stdout.flush()?;
        drop(stdout);
        serve(listener).await
    })
}

/// Accepts WebSocket upgrades on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) -> anyhow::Result<()> {
    let (events, _) = broadcast::channel(16);
    let app = Router::new()
        .route("/api/articles", post(publish))
        .fallback(upgrade)
        .with_state(events);
    axum::serve(listener, app).await?;
    Ok(())
}

/// One event for every connection: the request's body as a text message.
async fn publish(State(events): State<Events>, body: String) -> StatusCode {
    let _ = events.send(Utf8Bytes::from(body));
    StatusCode::CREATED
}

async fn upgrade(State(events): State<Events>, upgrade: WebSocketUpgrade) -> Response {
    let events = events.subscribe();
    upgrade.on_upgrade(move |socket| echo(socket, events))
}

/// Echoes data messages and forwards events until the client goes; pings are answered by
/// tungstenite.
async fn echo(mut socket: WebSocket, mut events: broadcast::Receiver<Utf8Bytes>) {
    loop {
        let reply = tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => message,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            event = events.recv() => match event {
                Ok(text) => Message::Text(text),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
