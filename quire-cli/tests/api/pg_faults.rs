//! PostgreSQL going away under load: quire on a private server (see `pg_server`) that the
//! test stops and starts again while clients write. Requests fail fast with 503 while it is
//! down, readiness says so, nothing hangs or crashes, quire recovers by itself, and every
//! write it acknowledged is there afterwards. PostgreSQL only: a SQLite file cannot go away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pg_server::PgServer;
use crate::support::{TestDir, get_json, register_at, spawn_quire};

/// What the writers saw.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<i64>,
    unavailable: usize,
    /// Any other outcome: another status, a transport error, a request past its timeout.
    other: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_database_gives_fast_503s_and_quire_recovers_without_losing_writes() {
    let server = PgServer::primary().await;
    let dir = TestDir::new_on_server(server.url("postgres")).await;
    let quire = spawn_quire(&dir, &["--pg-acquire-timeout", "1s"]).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = register_at(&client, &quire.base, "writer").await;
    let response = client
        .post(format!("{}/api/articles", quire.base))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"article": {"title": "target", "description": "d", "body": "b"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let comments_url = format!("{}/api/articles/target/comments", quire.base);

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, url, token, stop) = (
                client.clone(),
                comments_url.clone(),
                token.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let sent = client
                        .post(&url)
                        .header("Authorization", format!("Token {token}"))
                        .json(&json!({"comment": {"body": format!("w{w} n{n}")}}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == StatusCode::OK => {
                            let body: Value = r.json().await.unwrap();
                            tally
                                .acknowledged
                                .push(body["comment"]["id"].as_i64().unwrap());
                        }
                        Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                            assert!(r.headers().contains_key("retry-after"));
                            let body: Value = r.json().await.unwrap();
                            assert!(body["errors"].is_object(), "{body}");
                            tally.unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => tally.other.push(format!("status {}", r.status())),
                        Err(e) => tally.other.push(format!("{e}")),
                    }
                }
                tally
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    server.stop().await;

    // While it is down: readiness is 503 and a write fails fast, not after a hang.
    let ready = client
        .get(format!("{}/health/ready", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let started = Instant::now();
    let response = client
        .post(&comments_url)
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"comment": {"body": "while down"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a write while the database is down took {:?}",
        started.elapsed()
    );
    // Requests that need no database are still served.
    let live = client
        .get(format!("{}/health/live", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = client
            .get(format!("{}/health/ready", quire.base))
            .send()
            .await
            .unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "quire never became ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Writes go through again.
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for writer in writers {
        let mut one = writer.await.unwrap();
        tally.acknowledged.append(&mut one.acknowledged);
        tally.unavailable += one.unavailable;
        tally.other.append(&mut one.other);
    }
    assert!(
        tally.other.is_empty(),
        "unexpected outcomes: {:?}",
        tally.other
    );
    assert!(tally.unavailable > 0, "the writers saw the database down");

    // Every acknowledged comment is in the database.
    let comments: Value = get_json(&client, &comments_url).await;
    let mut stored: Vec<i64> = comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    stored.sort_unstable();
    tally.acknowledged.sort_unstable();
    let lost: Vec<_> = tally
        .acknowledged
        .iter()
        .filter(|id| stored.binary_search(id).is_err())
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(tally.acknowledged.len() > 20, "the writers made progress");
    drop(quire);
}
