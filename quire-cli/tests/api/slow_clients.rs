//! Slow and stalled clients cannot hold a connection: slow headers, idle keep-alive, a
//! stalled upload body and a download nobody reads are each cut after their timeout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::TestApp;

const SHORT: Duration = Duration::from_secs(1);
/// How long a test waits for the server to act, far past [`SHORT`].
const PATIENCE: Duration = Duration::from_secs(10);

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes; returns the bytes read and when it closed.
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    (received, Instant::now())
}

api_test! {
async fn headers_sent_too_slowly_get_the_connection_closed() {
    let app = TestApp::start_with(|s| s.header_read_timeout = SHORT).await;
    let mut stream = connect(&app).await;
    let start = Instant::now();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: quire\r\n")
        .await
        .unwrap();
    let (received, closed) = read_until_closed(&mut stream).await;
    assert!(closed - start >= SHORT - Duration::from_millis(100));
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "no answer or 408, got {text:?}"
    );
}
}

api_test! {
async fn idle_keep_alive_connections_are_closed() {
    let app = TestApp::start_with(|s| s.header_read_timeout = SHORT).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: quire\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    let (rest, closed) = read_until_closed(&mut stream).await;
    assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"));
    assert!(closed - answered >= SHORT - Duration::from_millis(100));
}
}

api_test! {
async fn a_stalled_upload_fails_and_leaves_nothing_staged() {
    let app = TestApp::start_with(|s| s.body_read_timeout = SHORT).await;
    let token = app.register("jake").await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /api/media HTTP/1.1\r\nHost: quire\r\nAuthorization: Token {token}\r\n\
         Content-Type: image/png\r\nContent-Length: 1000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[1u8; 1000]).await.unwrap();
    let start = Instant::now();
    let (received, closed) = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains(r#"{"errors":{"body":["#), "{text}");
    assert!(closed - start >= SHORT - Duration::from_millis(100));
    let tmp = app.dir().join("media").join("tmp");
    let staged = std::fs::read_dir(tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staged, 0, "the stalled upload's file is removed");
}
}

api_test! {
async fn a_download_nobody_reads_is_cut_after_the_stall_timeout() {
    let app = TestApp::start_with(|s| s.write_stall_timeout = SHORT).await;
    let token = app.register("jake").await;
    // Far more than the socket buffers of both ends can hold.
    let size = 64 * 1024 * 1024;
    let uploaded: serde_json::Value = app
        .client
        .post(app.url("/api/media"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", "application/octet-stream")
        .body(vec![9u8; size])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = uploaded["media"]["url"].as_str().unwrap().to_owned();
    let path = url.trim_start_matches(&app.base).to_owned();

    let mut stream = connect(&app).await;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: quire\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Read nothing for well past the stall timeout, then take what was sent.
    tokio::time::sleep(SHORT * 3).await;
    let (received, _) = read_until_closed(&mut stream).await;
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert!(
        received.len() < size,
        "the server gave up before sending everything ({} bytes arrived)",
        received.len()
    );
    // The server is fine afterwards.
    let (status, _) = app.get("/health/live", None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
}
}
