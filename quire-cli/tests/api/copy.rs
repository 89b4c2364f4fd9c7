//! `quire copy`: a blog moved to another database reads exactly as before (same articles,
//! follows, favorites, comments, media rows; the same passwords and signed-in sessions), a
//! non-empty target is refused, and a copy that fails leaves the target as it was.
//!
//! Each test's source is on the test's backend and its target on the other one, so the
//! `sqlite` runs copy SQLite to PostgreSQL and the `postgres` runs copy back.

use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{Backend, TestApp, TestDir};

/// The backend a test's copies go to: the other one.
pub(crate) fn other_backend() -> Backend {
    match Backend::current() {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    }
}

/// Runs `quire copy` as a user would; its output.
async fn quire_copy(from: &str, to: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(["copy", "--from", from, "--to", to, "--log-format", "json"])
        .args(extra)
        .output()
        .await
        .unwrap()
}

/// Everything a reader and a signed-in user see, to compare before and after a move.
async fn snapshot(app: &TestApp, anna: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for (path, token) in [
        ("/api/articles", None),
        ("/api/articles", Some(anna)),
        ("/api/articles/feed", Some(anna)),
        ("/api/articles?favorited=anna", None),
        ("/api/profiles/jake", Some(anna)),
        ("/api/articles/moved-one/comments", Some(anna)),
        ("/api/tags", None),
        ("/api/user", Some(anna)),
    ] {
        let (status, body) = app.get(path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push(body);
    }
    seen
}

/// A small blog with a row of every kind; returns anna's token.
pub(crate) async fn write_a_blog(app: &TestApp) -> String {
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "moved one", &["rust", "db"])
        .await;
    app.create_article(&jake, "moved two", &["rust"]).await;
    let (status, _) = app
        .post("/api/profiles/jake/follow", Some(&anna), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .post("/api/articles/moved-one/favorite", Some(&anna), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/api/articles/moved-one/comments",
            Some(&anna),
            json!({"comment": {"body": "still here after the move"}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let response = app
        .client
        .post(app.url("/api/media"))
        .header("Authorization", format!("Token {anna}"))
        .header("Content-Type", "image/png")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    anna
}

api_test! {
async fn a_copied_blog_reads_the_same_and_keeps_its_sessions() {
    let app = TestApp::start().await;
    let anna = write_a_blog(&app).await;
    let before = snapshot(&app, &anna).await;
    let source = app.stop().await;

    let target = TestDir::new_for(other_backend()).await;
    let output = quire_copy(&source.database_url(), &target.database_url(), &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("committed"), "{stdout}");
    assert!(stdout.contains("users") && stdout.contains("2 rows"), "{stdout}");

    let moved = TestApp::start_in(target).await;
    // Same answers, read with the token issued before the move.
    assert_eq!(snapshot(&moved, &anna).await, before);
    // The password hash moved too.
    let (status, body) = moved
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "anna@example.com", "password": "password-anna"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // New rows get new ids after the copied ones.
    let newcomer = moved.register("newcomer").await;
    let article = moved.create_article(&newcomer, "after the move", &[]).await;
    assert_eq!(article["slug"], "after-the-move");
    let (status, body) = moved
        .post(
            "/api/articles/after-the-move/comments",
            Some(&newcomer),
            json!({"comment": {"body": "a new comment"}}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (_, list) = moved.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 3);
    let (_, tags) = moved.get("/api/tags", None).await;
    assert_eq!(tags, before[6]);
}
}

api_test! {
async fn a_non_empty_target_is_refused_and_kept() {
    let first = TestApp::start().await;
    let anna = write_a_blog(&first).await;
    let source = first.stop().await;
    let target = TestDir::new_for(other_backend()).await;
    let second = TestApp::start_in(target).await;
    second.register("resident").await;
    let target = second.stop().await;

    let output = quire_copy(&source.database_url(), &target.database_url(), &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not empty") && stderr.contains("--replace"), "{stderr}");
    let kept = TestApp::start_in(target).await;
    let (status, _) = kept.get("/api/profiles/resident", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = kept.get("/api/profiles/jake", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let target = kept.stop().await;

    // --replace empties it and copies, in one transaction.
    let output = quire_copy(
        &source.database_url(),
        &target.database_url(),
        &["--replace"],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let replaced = TestApp::start_in(target).await;
    let (status, _) = replaced.get("/api/profiles/resident", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Replaced means replaced: the source's signing secret came along, so its sessions hold.
    let (status, body) = replaced.get("/api/articles/feed", Some(&anna)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["articlesCount"], 2);
}
}

api_test! {
async fn a_copy_that_fails_leaves_the_target_untouched() {
    // The source is SQLite, where a row no foreign key allows can be written behind quire's
    // back; the target (this test's backend) refuses it, and with it everything copied before.
    let source = TestDir::new_for(Backend::Sqlite).await;
    let app = TestApp::start_in(source).await;
    write_a_blog(&app).await;
    let source = app.stop().await;
    let db = rusqlite::Connection::open(source.path().join("quire.db")).unwrap();
    db.execute_batch(
        "PRAGMA foreign_keys = OFF; \
         INSERT INTO comments (article_id, author_id, body, created_at, updated_at) \
         VALUES (999999, 1, 'orphan', 0, 0);",
    )
    .unwrap();
    drop(db);

    let target = TestDir::new().await;
    let output = quire_copy(&source.database_url(), &target.database_url(), &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("left as it was"), "{stderr}");
    let untouched = TestApp::start_in(target).await;
    let (_, list) = untouched.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0, "{list}");
    let (status, _) = untouched.get("/api/profiles/jake", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, tags) = untouched.get("/api/tags", None).await;
    assert_eq!(tags, json!({"tags": []}));
}
}

#[tokio::test]
async fn copying_needs_an_existing_source() {
    // About a missing SQLite file, so SQLite only.
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
    let target = format!("sqlite://{}", dir.path().join("quire.db").display());
    let output = quire_copy(&missing, &target, &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no database to copy from"), "{stderr}");
    assert!(!dir.path().join("missing.db").exists());
}
