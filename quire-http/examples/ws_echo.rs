//! A WebSocket echo peer built from quire's WebSocket layer (the same upgrade settings and the
//! same engine as `/api/live`), for the Autobahn conformance suite: `scripts/autobahn.sh`.
//! Not part of the product.
//!
//! Usage: `cargo run --release -p quire-http --example ws_echo -- 127.0.0.1:9001`

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::StreamExt;
use quire_serve::{ServeConfig, serve};

/// Autobahn's case 9 sends messages up to 16 MiB.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    quire_http::live::configure_upgrade(upgrade, MAX_MESSAGE).on_upgrade(run)
}

async fn run(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // The protocol layer answers pings and close frames itself; reading on until the
            // stream ends lets it finish the closing handshake cleanly.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("ws_echo listening on {}", listener.local_addr()?);
    let router = Router::new().fallback(echo);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, router, ServeConfig::default(), shutdown).await;
    Ok(())
}
