//! A cheap guard on issue 4's memory goal (≤ 2 KiB of server RSS per idle, subscribed
//! WebSocket): the real `quire` binary gets 3,000 idle `/api/live?tag=` connections and the
//! test fails when its resident memory grows by more than twice the goal per connection.
//! `scripts/bench-ws.sh` measures the goal itself at 18,000 connections.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::support::spawn_quire;

/// Twice the goal: allocator noise must not fail CI, a regression to tungstenite's
/// defaults (about 130 KiB) or a doubled session must.
const LIMIT_BYTES_PER_CONNECTION: u64 = 4096;
const WARM_UP: usize = 500;
const MEASURED: usize = 3_000;

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The soft limit on open files, from `/proc/self/limits`.
fn open_file_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok())
        .unwrap_or(0)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `n` idle subscribers, 64 handshakes at a time.
async fn subscribe(address: &str, n: usize) -> Vec<Socket> {
    let url = format!("ws://{address}/api/live?tag=memory");
    stream::iter(0..n)
        .map(|_| {
            let url = url.clone();
            async move {
                // A small client buffer: the test process holds every client end.
                let config = WebSocketConfig::default().read_buffer_size(1024);
                let (socket, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                        .await
                        .expect("live connection");
                socket
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

api_test! {
[flavor = "multi_thread", worker_threads = 2]
async fn an_idle_subscriber_costs_at_most_twice_the_goal() {
    // Both ends of every connection live on this machine: ours and quire's descriptors.
    let needed = (WARM_UP + MEASURED) as u64 + 200;
    // Never skipped: a limit too low fails loudly (`.ci/run` raises the soft limit).
    assert!(
        open_file_limit() >= needed,
        "needs {needed} open files, the limit is {}: run `ulimit -n {needed}` first",
        open_file_limit()
    );
    let dir = crate::support::TestDir::new().await;
    let quire = spawn_quire(&dir, &["--live-max-per-ip", "100000"]).await;
    let (child, address) = (quire.child, quire.address);
    let pid = child.id().unwrap();

    // The first connections grow the allocator's arenas and tokio's slabs: not measured.
    let warm = subscribe(&address, WARM_UP).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_bytes(pid);
    let measured = subscribe(&address, MEASURED).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes(pid);

    let per_connection = after.saturating_sub(before) / MEASURED as u64;
    eprintln!("quire RSS per idle subscribed WebSocket: {per_connection} bytes");
    assert!(
        per_connection <= LIMIT_BYTES_PER_CONNECTION,
        "an idle live connection costs quire {per_connection} bytes of RSS; the goal is 2048, \
         this check fails above {LIMIT_BYTES_PER_CONNECTION}"
    );
    drop((warm, measured));
}
}
