//! `quire-bench ws-peer`: the WebSocket peer quire's live connections are compared with. A
//! plain axum 0.8 server with tungstenite's DEFAULT settings (128 KiB read buffer, 128 KiB
//! write buffer) that accepts an upgrade on any path and keeps it idle, echoing any message.
//! It is what an axum WebSocket costs when nobody tunes it.

use std::io::Write as _;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use tokio::net::TcpListener;

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
    let app = Router::new().fallback(upgrade);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

/// Echoes data messages until the client goes; pings are answered by tungstenite.
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
