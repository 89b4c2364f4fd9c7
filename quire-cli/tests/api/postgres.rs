//! What only the PostgreSQL store does: several instances sharing one database (one
//! migration, one token secret), refusing to start on a database it cannot use, and
//! replacing pooled connections the server closed. These are `#[tokio::test]`s running on
//! PostgreSQL alone because SQLite has no such situations (one file, one process).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::Command;

use crate::support::{Backend, TestApp, TestDir, register_at, spawn_quire_with_env};

#[tokio::test]
async fn two_instances_starting_at_once_migrate_once_and_share_the_secret() {
    Backend::Postgres
        .run(async {
            let dir = TestDir::new().await;
            let env = [("RUST_LOG", "info")];
            let (a, b) = tokio::join!(
                spawn_quire_with_env(&dir, &[], &env),
                spawn_quire_with_env(&dir, &[], &env)
            );
            let applied = [&a, &b]
                .iter()
                .flat_map(|q| q.logs.lock().unwrap().clone())
                .filter(|line| line.contains("applied schema migration"))
                .count();
            let newest = quire_store::postgres::MIGRATIONS.len();
            assert_eq!(applied, newest, "each migration applied exactly once");
            let db = dir.postgres().await;
            let version: i32 = db
                .query_one("SELECT version FROM schema_version", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(version as usize, newest);
            let secrets: i64 = db
                .query_one("SELECT count(*) FROM secrets", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(secrets, 1);

            // A token signed by one instance is accepted by the other.
            let token = register_at(&reqwest::Client::new(), &a.base, "shared").await;
            let response = reqwest::Client::new()
                .get(format!("{}/api/user", b.base))
                .header("Authorization", format!("Token {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        })
        .await
}

/// Runs `quire migrate` on `database` and returns its exit success and stderr.
async fn migrate(database: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(["migrate", "--log-format", "json", "--database", database])
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_database_it_cannot_use_stops_the_start_with_one_clear_line() {
    Backend::Postgres
        .run(async {
            let dir = TestDir::new().await;
            let url = dir.database_url();
            let (ok, stderr) = migrate(&url).await;
            assert!(ok, "{stderr}");

            let (base, _) = url.rsplit_once('/').unwrap();
            let missing = format!("{base}/quire_no_such_database");
            let (ok, stderr) = migrate(&missing).await;
            assert!(!ok);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("does not exist"), "{stderr}");

            let (ok, stderr) = migrate("postgres://root@127.0.0.1:1/test").await;
            assert!(!ok);
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.contains("cannot connect"), "{stderr}");

            let with_password = format!(
                "postgres://root:hunter2-secret@{}",
                base.split_once('@').map_or(base, |(_, host)| host)
            );
            let (ok, stderr) = migrate(&format!("{with_password}/quire_no_such_database")).await;
            assert!(!ok);
            assert!(
                !stderr.contains("hunter2-secret"),
                "password shown: {stderr}"
            );

            dir.postgres()
                .await
                .execute("UPDATE schema_version SET version = 999", &[])
                .await
                .unwrap();
            let (ok, stderr) = migrate(&url).await;
            assert!(!ok);
            assert!(stderr.contains("newer than this binary"), "{stderr}");
        })
        .await
}

#[tokio::test]
async fn connections_the_server_closed_are_replaced() {
    Backend::Postgres
        .run(async {
            let app = TestApp::start().await;
            let jake = app.register("jake").await;
            app.create_article(&jake, "survives", &[]).await;
            let closed: i64 = app
                .test_dir()
                .postgres()
                .await
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert!(closed > 0, "quire held connections");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (status, body) = app.get("/health/ready", None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let (status, body) = app.get("/api/articles?author=jake", None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["articlesCount"], 1);
        })
        .await
}

#[tokio::test]
async fn a_statement_past_the_timeout_is_shed_with_503_and_rolled_back() {
    Backend::Postgres
        .run(async {
            let app =
                TestApp::start_with(|s| s.pg_statement_timeout = Duration::from_millis(300)).await;
            let jake = app.register("jake").await;
            let slug = app.create_article(&jake, "contended", &["t"]).await["slug"]
                .as_str()
                .unwrap()
                .to_owned();
            // Another client of the database holds the favorites table: quire's insert waits
            // on the lock until the server cancels it.
            let mut holder = app.test_dir().postgres().await;
            let lock = holder.transaction().await.unwrap();
            lock.batch_execute("LOCK TABLE favorites IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            let response = app
                .client
                .post(app.url(&format!("/api/articles/{slug}/favorite")))
                .header("Authorization", format!("Token {jake}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "1");
            // Unrelated requests are served meanwhile.
            let (status, _) = app.get("/api/user", Some(&jake)).await;
            assert_eq!(status, StatusCode::OK);
            lock.rollback().await.unwrap();

            let (status, body) = app
                .post(
                    &format!("/api/articles/{slug}/favorite"),
                    Some(&jake),
                    json!({}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body["article"]["favoritesCount"], 1,
                "the shed attempt left nothing"
            );
        })
        .await
}

#[tokio::test]
async fn concurrent_creates_and_deletes_sharing_tags_keep_counts_exact() {
    Backend::Postgres
        .run(async {
            let app = TestApp::start().await;
            let jake = app.register("jake").await;
            let tags = ["alpha", "beta", "gamma", "delta"];
            let mut slugs = Vec::new();
            for n in 0..24 {
                let article = app.create_article(&jake, &format!("old {n}"), &tags).await;
                slugs.push(article["slug"].as_str().unwrap().to_owned());
            }
            // Deletes (whose cascades touch the tag counts in storage order) race creates
            // (which touch them in tag order).
            let deletes = slugs.iter().map(|slug| {
                let app = &app;
                let jake = &jake;
                async move { app.delete(&format!("/api/articles/{slug}"), Some(jake)).await.0 }
            });
            let creates = (0..24).map(|n| {
                let app = &app;
                let jake = &jake;
                async move {
                    app.post(
                        "/api/articles",
                        Some(jake),
                        json!({"article": {"title": format!("new {n}"), "description": "d",
                                           "body": "b", "tagList": ["delta", "gamma", "beta", "alpha"]}}),
                    )
                    .await
                    .0
                }
            });
            let (deleted, created) = tokio::join!(
                futures_util::future::join_all(deletes),
                futures_util::future::join_all(creates)
            );
            assert!(deleted.iter().all(|s| *s == StatusCode::NO_CONTENT), "{deleted:?}");
            assert!(created.iter().all(|s| *s == StatusCode::CREATED), "{created:?}");
            let (_, body) = app.get("/api/articles?tag=beta&limit=1", None).await;
            assert_eq!(body["articlesCount"], 24);
            let db = app.test_dir().postgres().await;
            let counts: Vec<(String, i64)> = db
                .query("SELECT tag, articles FROM tag_counts ORDER BY tag", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let expected: Vec<(String, i64)> = ["alpha", "beta", "delta", "gamma"]
                .iter()
                .map(|t| (t.to_string(), 24))
                .collect();
            assert_eq!(counts, expected);
            let total: i64 = db
                .query_one("SELECT value FROM article_total", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(total, 24);
        })
        .await
}
