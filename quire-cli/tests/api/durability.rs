//! Nothing acknowledged is lost: across a graceful restart, across `kill -9` in the middle of a
//! stream of writes, and tokens stay valid across restarts. The process-level tests run the
//! real `quire` binary; a drain turns readiness 503 at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, register_at, sigterm, spawn_quire};

api_test! {
async fn a_restart_keeps_data_and_tokens_valid() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "persisted", &["kept"]).await;
    let dir = app.stop().await;

    let app = TestApp::start_in(dir).await;
    let (status, body) = app.get("/api/user", Some(&jake)).await;
    assert_eq!(status, StatusCode::OK, "token survives a restart: {body}");
    let (status, body) = app.get("/api/articles/persisted", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["article"]["tagList"], json!(["kept"]));
    // Beside the SQLite file, or in PostgreSQL's `secrets` table.
    assert!(app.test_dir().token_secret().await.len() >= 32);
}
}

api_test! {
async fn kill_9_loses_no_acknowledged_write() {
    let dir = crate::support::TestDir::new().await;
    let mut quire = spawn_quire(&dir, &[]).await;
    let client = reqwest::Client::new();
    let token = register_at(&client, &quire.base, "writer").await;

    // 16 clients write as fast as they can; every 201 is recorded.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, base, token) = (client.clone(), quire.base.clone(), token.clone());
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if Instant::now() > stop_at + Duration::from_secs(5) {
                        break;
                    }
                    let title = format!("w{w} n{i}");
                    let sent = client
                        .post(format!("{base}/api/articles"))
                        .header("Authorization", format!("Token {token}"))
                        .json(
                            &json!({"article": {"title": title, "description": "d", "body": "b"}}),
                        )
                        .send()
                        .await;
                    let Ok(response) = sent else { break };
                    if response.status() != StatusCode::CREATED {
                        break;
                    }
                    let Ok(body) = response.json::<Value>().await else {
                        break;
                    };
                    let slug = body["article"]["slug"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().push(slug);
                }
            })
        })
        .collect();

    tokio::time::sleep_until(stop_at.into()).await;
    quire.child.start_kill().unwrap();
    quire.child.wait().await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "the load produced writes: {}",
        acknowledged.len()
    );

    let quire = spawn_quire(&dir, &[]).await;
    let (status, body) = get(&client, &quire.base, "/api/articles?limit=1", None).await;
    assert_eq!(status, StatusCode::OK);
    let stored = body["articlesCount"].as_u64().unwrap();
    assert!(
        stored >= acknowledged.len() as u64,
        "{stored} stored < {} acknowledged",
        acknowledged.len()
    );
    for slug in &acknowledged {
        let (status, _) = get(&client, &quire.base, &format!("/api/articles/{slug}"), None).await;
        assert_eq!(status, StatusCode::OK, "acknowledged article {slug} lost");
    }
    let (status, _) = get(&client, &quire.base, "/api/user", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "token valid after the crash");
}
}

async fn get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

api_test! {
async fn sigterm_drains_and_exits_0() {
    let dir = crate::support::TestDir::new().await;
    let mut quire = spawn_quire(&dir, &[]).await;
    let client = reqwest::Client::new();
    register_at(&client, &quire.base, "jake").await;
    sigterm(&quire.child).await;
    let status = tokio::time::timeout(Duration::from_secs(15), quire.child.wait())
        .await
        .expect("quire exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
}

api_test! {
async fn systemd_hears_ready_watchdog_pings_and_stopping() {
    let dir = crate::support::TestDir::new().await;
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let socket_env = socket_path.to_str().unwrap().to_owned();
    let mut quire = crate::support::spawn_quire_with_env(
        &dir,
        &[],
        &[("NOTIFY_SOCKET", &socket_env), ("WATCHDOG_USEC", "200000")],
    )
    .await;
    let mut seen = Vec::new();
    let receive_until = async |wanted: &str, seen: &mut Vec<String>| {
        tokio::time::timeout(Duration::from_secs(5), async {
            let mut buf = [0u8; 256];
            loop {
                let n = socket.recv(&mut buf).await.unwrap();
                let message = String::from_utf8_lossy(&buf[..n]).to_string();
                seen.push(message.clone());
                if message.contains(wanted) {
                    return;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {wanted} from quire; got {seen:?}"));
    };
    receive_until("READY=1", &mut seen).await;
    // Pings every 100 ms (half of WatchdogSec=200 ms): several within half a second.
    receive_until("WATCHDOG=1", &mut seen).await;
    receive_until("WATCHDOG=1", &mut seen).await;
    sigterm(&quire.child).await;
    receive_until("STOPPING=1", &mut seen).await;
    let status = quire.child.wait().await.unwrap();
    assert_eq!(status.code(), Some(0));
}
}

api_test! {
async fn readiness_turns_503_as_soon_as_a_drain_starts() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = crate::support::TestDir::new().await;
    let mut quire = spawn_quire(&dir, &["--drain-linger", "3s"]).await;
    // A connection open before the drain keeps being served during the linger.
    let mut stream = tokio::net::TcpStream::connect(&quire.address)
        .await
        .unwrap();
    let mut ask = async |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: quire\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert!(ask("/health/ready").await.starts_with("HTTP/1.1 200"));
    sigterm(&quire.child).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = ask("/health/ready").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("shutting down"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "draining answers close their connection: {answer}"
    );
    let status = tokio::time::timeout(Duration::from_secs(15), quire.child.wait())
        .await
        .expect("quire exits after the drain")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
}
