//! A WebSocket echo peer built from quire's WebSocket layer (the same upgrade settings and the
//! same engine as `/api/live`), for the Autobahn conformance suite: `scripts/autobahn.sh`.
//! Not part of the product.
//!
//! Usage: `cargo run --release -p quire-http --example ws_echo -- 127.0.0.1:9001`

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use quire_http::live::{Socket, Upgrade, settings};
use quire_serve::{ServeConfig, serve};
use tokio_tungstenite::tungstenite::{Error, Message};

/// Autobahn's case 9 sends messages up to 16 MiB.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

async fn echo(request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let upgrade = match Upgrade::from_parts(&mut parts) {
        Ok(upgrade) => upgrade,
        Err(error) => return error.into_response(),
    };
    let response = upgrade.response();
    tokio::spawn(async move {
        match upgrade.open(settings(MAX_MESSAGE)).await {
            Some(Socket::Plain(socket)) => run(socket).await,
            Some(Socket::Tunneled(socket)) => run(socket).await,
            None => {}
        }
    });
    response
}

async fn run<S>(mut socket: S)
where
    S: Stream<Item = Result<Message, Error>> + Sink<Message> + Unpin,
{
    while let Some(Ok(message)) = socket.next().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            // The protocol layer answers pings and close frames itself; reading on until the
            // stream ends lets it finish the closing handshake cleanly.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => continue,
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
