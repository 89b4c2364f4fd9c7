//! The engine and operations side: health probes, request ids, HTTP/2, graceful shutdown,
//! ceilings, metrics, compression, CORS, timeouts and load shedding.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

api_test! {
async fn health_probes_answer_json() {
    let app = TestApp::start().await;
    assert_eq!(
        app.get("/health/live", None).await,
        (StatusCode::OK, json!({"status": "live"}))
    );
    assert_eq!(
        app.get("/health/ready", None).await,
        (StatusCode::OK, json!({"status": "ready"}))
    );
}
}

api_test! {
async fn request_ids_are_echoed_or_made() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/api/tags"))
        .header("X-Request-Id", "my-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "my-id-123");
    let response = app
        .client
        .get(app.url("/api/nothing"))
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 36, "a UUID: {made}");
}
}

api_test! {
async fn speaks_http2_with_prior_knowledge() {
    let app = TestApp::start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(app.url("/api/tags")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
}
}

api_test! {
async fn http2_can_be_turned_off() {
    let app = TestApp::start_with(|s| s.http2 = false).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let h2 = client.get(app.url("/api/tags")).send().await;
    assert!(h2.is_err(), "{h2:?}");
    assert_eq!(app.get("/api/tags", None).await.0, StatusCode::OK);
}
}

api_test! {
async fn shutdown_stops_accepting_and_returns() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let base = app.base.clone();
    let dir = tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("graceful shutdown finished within its grace period");
    let refused = reqwest::Client::new()
        .get(format!("{base}/health/live"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(refused.is_err(), "still accepting after shutdown");
    drop((dir, token));
}
}

api_test! {
async fn connection_ceiling_holds_extra_clients_until_a_slot_frees() {
    let app = TestApp::start_with(|s| s.max_connections = Some(1)).await;
    // One client holds the only slot with a keep-alive connection.
    let holder = reqwest::Client::new();
    assert_eq!(
        holder
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let waiting = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(
        waiting.get(app.url("/health/live")).send().await.is_err(),
        "ceiling not enforced"
    );
    drop(holder);
    let later = reqwest::Client::new();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        later.get(app.url("/health/live")).send(),
    )
    .await
    .expect("a freed slot lets the next client in")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
}

api_test! {
async fn metrics_are_labelled_by_route_not_path() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "measured article", &[]).await;
    // Twice: a cache miss, then a hit.
    for _ in 0..2 {
        assert_eq!(
            app.get("/api/articles/measured-article", None).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get("/api/articles/no-such-thing", None).await.0,
        StatusCode::NOT_FOUND
    );
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let mut text = response.text().await.unwrap();
    // The event-loop probe reports every 100 ms: give it its first period.
    for _ in 0..20 {
        if text.contains("runtime_event_loop_lag_seconds") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = app.text("/metrics").await;
    }
    let store_needles: &[&str] = match crate::support::Backend::current() {
        crate::support::Backend::Sqlite => &[
            "store_query_seconds",
            "store_queue_wait_seconds",
            "store_queue_depth",
        ],
        crate::support::Backend::Postgres => &[
            "store_pool_acquire_seconds",
            r#"store_pool_connections{state="in_use"}"#,
            r#"store_pool_connections{state="idle"}"#,
            "store_pool_waiting",
        ],
    };
    for needle in [
        r#"http_requests_total{method="GET",route="/api/articles/{slug}",status="200"}"#,
        r#"http_requests_total{method="GET",route="/api/articles/{slug}",status="404"}"#,
        "http_request_duration_seconds_bucket",
        "http_connections_open",
        "process_resident_memory_bytes",
        "process_open_fds",
        "live_connections_open",
        "http_requests_in_flight",
        "cache_hits_total",
        "cache_misses_total",
        "runtime_event_loop_lag_seconds",
        "runtime_alive_tasks",
        "runtime_global_queue_depth",
    ]
    .iter()
    .chain(store_needles)
    {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    assert!(
        !text.contains("measured-article"),
        "raw paths leak into labels"
    );
}
}

api_test! {
async fn large_json_is_compressed_small_answers_and_media_are_not() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    for i in 0..10 {
        app.create_article(&jake, &format!("compressible {i}"), &["t"])
            .await;
    }
    let get = |path: String, encoding: &'static str| {
        app.client
            .get(app.url(&path))
            .header("Accept-Encoding", encoding)
            .send()
    };
    for encoding in ["gzip", "br", "zstd"] {
        let response = get("/api/articles".into(), encoding).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-encoding"], encoding);
        assert_eq!(response.headers()["content-type"], "application/json");
    }
    // The pages' assets and feeds too.
    for path in ["/assets/quire.css", "/assets/quire.js", "/feed.atom", "/sitemap.xml", "/"] {
        let response = get(path.into(), "gzip").await.unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip", "{path}");
    }
    let identity = get("/api/articles".into(), "identity").await.unwrap();
    assert!(identity.headers().get("content-encoding").is_none());
    let small = get("/api/tags".into(), "gzip").await.unwrap();
    assert!(
        small.headers().get("content-encoding").is_none(),
        "tiny bodies stay as they are"
    );

    let upload = app
        .client
        .post(app.url("/api/media"))
        .header("Authorization", format!("Token {jake}"))
        .header("Content-Type", "text/plain")
        .body("x".repeat(100_000))
        .send()
        .await
        .unwrap();
    let media: serde_json::Value = upload.json().await.unwrap();
    let id = media["media"]["id"].as_str().unwrap().to_owned();
    let download = get(format!("/media/{id}"), "gzip").await.unwrap();
    assert!(
        download.headers().get("content-encoding").is_none(),
        "media is never compressed"
    );
    assert_eq!(download.bytes().await.unwrap().len(), 100_000);
}
}

api_test! {
async fn cors_answers_configured_origins_only() {
    let app = TestApp::start_with(|s| s.cors_origins = vec!["https://blog.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/articles"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let allowed = preflight("https://blog.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://blog.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let plain = TestApp::start().await;
    let response = plain
        .client
        .get(plain.url("/api/tags"))
        .header("Origin", "https://blog.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
}

api_test! {
async fn requests_past_the_timeout_get_503_and_streams_are_exempt() {
    // 5 ms: probes answer well within it; a registration with production-strength password
    // hashing (tens of milliseconds) cannot.
    let app = TestApp::start_with(|s| {
        s.request_timeout = Duration::from_millis(5);
        s.argon2_memory_kib = 19 * 1024;
        s.argon2_iterations = 2;
    })
    .await;
    assert_eq!(app.get("/health/live", None).await.0, StatusCode::OK);
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "slow", "email": "slow@example.com", "password": "password-slow"}}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, json!({"errors": {"request": ["took too long"]}}));
    // Live connections are not cut by the request deadline.
    let url = format!("{}/api/live", app.base.replace("http://", "ws://"));
    let (mut ws, response) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(response.status(), 101);
    // Well past the 5 ms deadline, the socket still answers: a send alone would succeed on a
    // socket the server had already closed, so the acknowledgement is read back.
    tokio::time::sleep(Duration::from_millis(100)).await;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::text(r#"{"action":"subscribe","tag":["x"]}"#))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    let Some(Ok(Message::Text(text))) = reply else {
        panic!("live socket did not answer after the request deadline: {reply:?}");
    };
    let ack: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ack, json!({"type": "ack", "action": "subscribe"}));
}
}

api_test! {
async fn full_store_queues_shed_load_with_503_and_retry_after() {
    // SQLite: one reader thread and a queue of one. PostgreSQL: one pooled connection and
    // an acquire timeout of a millisecond (the wait that --pg-acquire-timeout bounds).
    let app = TestApp::start_with(|s| {
        s.sqlite_readers = 1;
        s.store_queue_depth = 1;
        s.pg_pool_size = 1;
        s.pg_acquire_timeout = Duration::from_millis(1);
    })
    .await;
    let token = app.register("jake").await;
    for n in 0..5 {
        app.create_article(&token, &format!("Shed {n}"), &["load"])
            .await;
    }
    // Far more uncached reads at once than one reader and a queue of one can take: on one
    // HTTP/2 connection they arrive together. Whether a given burst overflows depends on
    // timing, so bursts repeat (up to ten) until one does.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let (mut ok, mut shed) = (0, 0);
    for _burst in 0..10 {
        let calls: Vec<_> = (0..300)
            .map(|n| {
                let client = h2.clone();
                let url = app.url(&format!("/api/articles?favorited=nobody{n}"));
                tokio::spawn(async move { client.get(url).send().await.unwrap() })
            })
            .collect();
        for call in calls {
            let response = call.await.unwrap();
            match response.status() {
                StatusCode::OK => ok += 1,
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(response.headers()["retry-after"], "1");
                    let body: serde_json::Value = response.json().await.unwrap();
                    assert!(body["errors"]["server"].is_array(), "{body}");
                    shed += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
        if shed > 0 {
            break;
        }
    }
    assert!(ok > 0, "some reads were served");
    assert!(
        shed > 0,
        "some reads were shed instead of queued without bound"
    );
    // Once the burst is over, everything is served again.
    let (status, _) = app.get("/api/articles?favorited=nobody", None).await;
    assert_eq!(status, StatusCode::OK);
}
}

/// Started from a shell whose soft open-files limit is the common 1,024, quire raises it to
/// the hard limit and sizes its connection ceiling from that. One backend: about the process.
#[tokio::test]
async fn a_low_soft_open_files_limit_is_raised_and_the_ceiling_follows_it() {
    use tokio::io::AsyncBufReadExt;
    let dir = crate::support::TestDir::new_for(crate::support::Backend::Sqlite).await;
    let hard: u64 = String::from_utf8(
        std::process::Command::new("bash")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .expect("a finite hard limit");
    assert!(
        hard > 1024,
        "the machine's hard limit {hard} leaves nothing to raise"
    );
    let script = format!(
        "ulimit -Sn 1024 && exec {} --listen 127.0.0.1:0 --log-format json --database {}",
        env!("CARGO_BIN_EXE_quire"),
        dir.database_url()
    );
    let mut child = tokio::process::Command::new("bash")
        .args(["-c", &script])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let log = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let log: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if log["message"] == "open-files limit" {
                return log;
            }
        }
        panic!("quire exited without logging its open-files limit");
    })
    .await
    .unwrap();
    assert_eq!(log["open_files_before"], 1024);
    assert_eq!(log["open_files"], hard);
    assert_eq!(log["max_connections"], hard - 512);
}
