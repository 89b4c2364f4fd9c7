//! The cache audit watches the caches as Meta's Polaris watches TAO's: a sampled fraction of
//! hits is read again from the database and compared. A value changed behind quire's back
//! (the one way its caches can be wrong) is found, counted and logged with its key; writes
//! made through quire, however they race with the audit, are never reported as mismatches.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Backend, QuireProcess, TestDir, get_json, metric, register_at, spawn_quire};

/// Every hit audited; a difference must outlive 300 ms to be a mismatch.
const AUDIT_EVERY_HIT: [&str; 6] = [
    "--cache",
    "on",
    "--cache-audit-sample",
    "1",
    "--cache-audit-grace",
    "300ms",
];

async fn audits(client: &reqwest::Client, quire: &QuireProcess, result: &str) -> f64 {
    metric(
        client,
        &quire.base,
        &format!("cache_audits_total{{cache=\"articles\",result=\"{result}\"}}"),
    )
    .await
}

/// Polls until `audits(result)` reaches `at_least`, for up to 15 s; returns the last count.
async fn await_audits(
    client: &reqwest::Client,
    quire: &QuireProcess,
    result: &str,
    at_least: f64,
) -> f64 {
    let mut seen = 0.0;
    for _ in 0..150 {
        seen = audits(client, quire, result).await;
        if seen >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Changes an article's body in the database itself, as another program would.
async fn tamper(dir: &TestDir, slug: &str, body: &str) {
    match Backend::current() {
        Backend::Sqlite => {
            let path = dir.path().join("quire.db");
            let (slug, body) = (slug.to_owned(), body.to_owned());
            tokio::task::spawn_blocking(move || {
                let db = rusqlite::Connection::open(path).unwrap();
                db.busy_timeout(Duration::from_secs(5)).unwrap();
                let changed = db
                    .execute(
                        "UPDATE articles SET body = ?1 WHERE slug = ?2",
                        (body, slug),
                    )
                    .unwrap();
                assert_eq!(changed, 1);
            })
            .await
            .unwrap();
        }
        Backend::Postgres => {
            let changed = dir
                .postgres()
                .await
                .execute(
                    "UPDATE articles SET body = $1 WHERE slug = $2",
                    &[&body, &slug],
                )
                .await
                .unwrap();
            assert_eq!(changed, 1);
        }
    }
}

api_test! {
async fn a_value_changed_behind_quires_back_is_reported_as_a_mismatch() {
    let dir = TestDir::new().await;
    let quire = spawn_quire(&dir, &AUDIT_EVERY_HIT).await;
    let client = reqwest::Client::new();
    let token = register_at(&client, &quire.base, "writer").await;
    let response = client
        .post(format!("{}/api/articles", quire.base))
        .header("Authorization", format!("Token {token}"))
        .json(&json!({"article": {"title": "audited", "description": "d", "body": "original"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let url = format!("{}/api/articles/audited", quire.base);
    for _ in 0..3 {
        assert_eq!(get_json(&client, &url).await["article"]["body"], "original");
    }
    let consistent = await_audits(&client, &quire, "consistent", 1.0).await;
    assert!(consistent >= 1.0, "no hit was audited as consistent");
    assert_eq!(audits(&client, &quire, "mismatch").await, 0.0);

    tamper(&dir, "audited", "changed behind quire's back").await;
    // The cache still serves what it holds: nothing told it of the change...
    assert_eq!(get_json(&client, &url).await["article"]["body"], "original");
    // ...but the audit notices, once the difference outlives the grace period.
    let mismatches = await_audits(&client, &quire, "mismatch", 1.0).await;
    assert!(mismatches >= 1.0, "the stale value was never reported");
    let logged = quire.logs.lock().unwrap().iter().any(|line| {
        line.contains("cache audit") && line.contains("\"cache\":\"articles\"")
    });
    assert!(logged, "the mismatch is logged with its cache and key");
}
}

api_test! {
async fn writes_racing_with_audits_are_never_reported_as_mismatches() {
    let dir = TestDir::new().await;
    let quire = spawn_quire(&dir, &AUDIT_EVERY_HIT).await;
    let client = reqwest::Client::new();
    let token = register_at(&client, &quire.base, "writer").await;
    let reader = register_at(&client, &quire.base, "reader").await;
    let auth = format!("Token {token}");
    let response = client
        .post(format!("{}/api/articles", quire.base))
        .header("Authorization", &auth)
        .json(&json!({"article": {"title": "busy", "description": "v0", "body": "b", "tagList": ["t"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // Edits, favorites and follows land while readers keep the caches hot and audited.
    let reads = async {
        for _ in 0..400 {
            for path in ["/api/articles/busy", "/api/articles?tag=t", "/api/profiles/writer", "/api/tags"] {
                let response = client
                    .get(format!("{}{path}", quire.base))
                    .header("Authorization", format!("Token {reader}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }
    };
    let writes = async {
        for round in 0..100 {
            let put = client
                .put(format!("{}/api/articles/busy", quire.base))
                .header("Authorization", &auth)
                .json(&json!({"article": {"description": format!("v{round}")}}))
                .send()
                .await
                .unwrap();
            assert_eq!(put.status(), StatusCode::OK);
            let (method, follow) = if round % 2 == 0 {
                (reqwest::Method::POST, reqwest::Method::POST)
            } else {
                (reqwest::Method::DELETE, reqwest::Method::DELETE)
            };
            for (method, path) in [(method, "/api/articles/busy/favorite"), (follow, "/api/profiles/writer/follow")] {
                let response = client
                    .request(method, format!("{}{path}", quire.base))
                    .header("Authorization", format!("Token {reader}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK);
            }
        }
    };
    tokio::join!(reads, writes);
    // Let every audit still in its grace period finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = metric(&client, &quire.base, "cache_audits_total").await;
    let text = client.get(format!("{}/metrics", quire.base)).send().await.unwrap().text().await.unwrap();
    let mismatch_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("cache_audits_total") && l.contains("result=\"mismatch\""))
        .collect();
    assert!(mismatch_lines.is_empty(), "mismatches reported: {mismatch_lines:?}");
    let consistent = audits(&client, &quire, "consistent").await;
    assert!(consistent > 50.0 && all > 200.0, "audits: {all} in all, {consistent} consistent on articles");
}
}
