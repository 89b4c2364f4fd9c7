//! Read replicas: quire on a private primary with a real streaming replica made by
//! `pg_basebackup` (see `pg_server`). Reads use the replica, yet a client always reads its own
//! writes, even while the replica's replay is paused (then it is skipped once it lags), and a
//! replica that goes down is skipped without a failed request. PostgreSQL only.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::pg_server::PgServer;
use crate::support::{QuireProcess, TestDir, get_json, metric, register_at, spawn_quire_with_env};

/// Waits until the replica-usable gauge reads `value`.
async fn replica_usable_becomes(client: &reqwest::Client, quire: &QuireProcess, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(client, &quire.base, "store_replica_usable").await != value {
        assert!(
            Instant::now() < deadline,
            "store_replica_usable never became {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes and reads back at once, `rounds` times: a comment (its list must hold it) and a
/// favorite toggle (the uncached `favorited=` list must agree). Panics on any stale read.
async fn write_then_read(client: &reqwest::Client, base: &str, token: &str, rounds: usize) {
    let auth = format!("Token {token}");
    for round in 0..rounds {
        let response = client
            .post(format!("{base}/api/articles/replicated/comments"))
            .header("Authorization", &auth)
            .json(&json!({"comment": {"body": format!("round {round}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.json::<Value>().await.unwrap()["comment"]["id"].clone();
        let comments: Value =
            get_json(client, &format!("{base}/api/articles/replicated/comments")).await;
        assert_eq!(
            comments["comments"][0]["id"], id,
            "round {round}: the new comment is not read back"
        );

        let favorite = round % 2 == 0;
        let request = if favorite {
            client.post(format!("{base}/api/articles/replicated/favorite"))
        } else {
            client.delete(format!("{base}/api/articles/replicated/favorite"))
        };
        let response = request.header("Authorization", &auth).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let list: Value = get_json(client, &format!("{base}/api/articles?favorited=reader")).await;
        let expected = u64::from(favorite);
        assert_eq!(
            list["articlesCount"], expected,
            "round {round}: the favorite is not read back"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_go_to_a_streaming_replica_and_clients_always_read_their_writes() {
    let primary = PgServer::primary().await;
    let dir = TestDir::new_on_server(primary.url("postgres")).await;
    let database = dir.database_url().rsplit_once('/').unwrap().1.to_owned();
    let replica = PgServer::replica_of(&primary).await;
    let quire = spawn_quire_with_env(
        &dir,
        &[
            "--database-replica",
            &replica.url(&database),
            "--replica-max-lag",
            "300ms",
        ],
        &[("RUST_LOG", "warn,quire_cli=info,quire_store=info")],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = quire.base.clone();
    replica_usable_becomes(&client, &quire, 1.0).await;

    let token = register_at(&client, &base, "reader").await;
    let response = client
        .post(format!("{base}/api/articles"))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"article": {"title": "replicated", "description": "d", "body": "b"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // Replaying: the replica serves reads, and every write is read back at once.
    let before = metric(
        &client,
        &quire.base,
        "store_reads_total{target=\"replica\"}",
    )
    .await;
    write_then_read(&client, &base, &token, 100).await;
    let after = metric(
        &client,
        &quire.base,
        "store_reads_total{target=\"replica\"}",
    )
    .await;
    assert!(
        after > before,
        "reads went to the replica ({before} -> {after})"
    );

    // Replay paused: the replica falls behind, yet no write is missed; once it lags past the
    // limit it is skipped altogether.
    let on_replica = replica.client(&database).await;
    on_replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    write_then_read(&client, &base, &token, 30).await;
    let stale: i64 = on_replica
        .query_one(
            "SELECT count(*) FROM comments c JOIN articles a ON a.id = c.article_id
             WHERE a.slug = 'replicated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stale < 130,
        "the paused replica is behind ({stale} comments)"
    );
    replica_usable_becomes(&client, &quire, 0.0).await;
    write_then_read(&client, &base, &token, 10).await;
    on_replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    replica_usable_becomes(&client, &quire, 1.0).await;

    // Replica down: reads go to the primary, no request fails.
    drop(on_replica);
    replica.stop().await;
    write_then_read(&client, &base, &token, 20).await;
    replica_usable_becomes(&client, &quire, 0.0).await;
    let status = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK, "the primary is enough to be ready");
    drop(quire);
}
