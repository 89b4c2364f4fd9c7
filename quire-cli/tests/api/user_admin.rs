//! `quire user`, run as an operator would while quire serves: a disabled account's token is
//! refused within the watch period and it cannot sign in (its content stays), enabling it
//! again works, a new password replaces the old one, accounts can be created, and deleting a
//! user takes their content or hands it to another user, leaving counts right.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::support::{TestApp, TestDir, quire_json, stdout_json};

/// `quire user <args> --json` with `stdin` as its standard input.
async fn quire_user(dir: &TestDir, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quire"))
        .arg("user")
        .args(args)
        .args([
            "--json",
            "--log-format",
            "json",
            "--argon2-memory-kib",
            "1024",
        ])
        .args(dir.database_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn ok(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(output)
}

/// Waits (up to 5 s) until `GET /api/user` with `token` answers `expected`.
async fn until_user_answers(app: &TestApp, token: &str, expected: StatusCode) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = app.get("/api/user", Some(token)).await;
        if status == expected {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {status} after 5 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Value) {
    app.post(
        "/api/users/login",
        None,
        json!({"user": {"email": email, "password": password}}),
    )
    .await
}

api_test! {
async fn an_operator_fixes_accounts_while_quire_serves() {
    let app = TestApp::start().await;
    let dir = app.test_dir();
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let article = app.create_article(&jake, "still readable", &["kept"]).await;
    let slug = article["slug"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(&format!("/api/articles/{slug}/comments"), Some(&anna), json!({"comment": {"body": "hi"}}))
        .await;
    assert!(status.is_success());
    let (status, _) = app.post(&format!("/api/articles/{slug}/favorite"), Some(&anna), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Warm the caches the change must reach.
    until_user_answers(&app, &jake, StatusCode::OK).await;

    let listed = ok(&quire_json(dir, &["user", "list"]).await);
    let users = listed["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["username"], "jake");
    assert_eq!(users[0]["articles"], 1);
    assert_eq!(users[1]["comments"], 1);

    // Disable: the token stops working on the running server, sign-in is refused, the
    // article stays readable.
    let disabled = ok(&quire_json(dir, &["user", "disable", "jake"]).await);
    assert_eq!(disabled["user"]["disabled"], true);
    let body = until_user_answers(&app, &jake, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["errors"]["account"], json!(["is disabled"]));
    let (status, body) = login(&app, "jake@example.com", "password-jake").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app.get(&format!("/api/articles/{slug}"), None).await;
    assert_eq!(status, StatusCode::OK);
    // Enable (by email): the same token works again.
    ok(&quire_json(dir, &["user", "enable", "jake@example.com"]).await);
    until_user_answers(&app, &jake, StatusCode::OK).await;

    // A new password from standard input.
    ok(&quire_user(dir, &["set-password", "jake"], "a-brand-new-secret\n").await);
    let (status, _) = login(&app, "jake@example.com", "a-brand-new-secret").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = login(&app, "jake@example.com", "password-jake").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let short = quire_user(dir, &["set-password", "jake"], "short\n").await;
    assert_eq!(short.status.code(), Some(2));

    // Create, and refuse a taken name.
    let created = ok(&quire_user(dir, &["create", "--username", "carol", "--email", "carol@example.com"], "carols-password\n").await);
    assert_eq!(created["user"]["username"], "carol");
    let (status, body) = login(&app, "carol@example.com", "carols-password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let taken = quire_user(dir, &["create", "--username", "carol", "--email", "c2@example.com"], "carols-password\n").await;
    assert_eq!(taken.status.code(), Some(3));

    // Delete needs --yes, and says what it would do.
    let asked = quire_json(dir, &["user", "delete", "anna"]).await;
    assert_eq!(asked.status.code(), Some(3));
    assert!(stdout_json(&asked)["error"].as_str().unwrap().contains("1 comments"));
    // anna goes; her comment goes to carol, her favorite goes with her.
    let deleted = ok(&quire_json(dir, &["user", "delete", "anna", "--reassign-to", "carol", "--yes"]).await);
    assert_eq!(deleted["reassigned_to"], "carol");
    let started = Instant::now();
    loop {
        let (_, comments) = app.get(&format!("/api/articles/{slug}/comments"), None).await;
        let (_, read) = app.get(&format!("/api/articles/{slug}"), None).await;
        if comments["comments"][0]["author"]["username"] == "carol" && read["article"]["favoritesCount"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{comments} {read}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_user_answers(&app, &anna, StatusCode::UNAUTHORIZED).await;

    // jake goes with his article and its tag.
    let deleted = ok(&quire_json(dir, &["user", "delete", "jake", "--yes"]).await);
    assert_eq!(deleted["removed"]["articles"], 1);
    let started = Instant::now();
    loop {
        let (status, _) = app.get(&format!("/api/articles/{slug}"), None).await;
        let (_, tags) = app.get("/api/tags", None).await;
        if status == StatusCode::NOT_FOUND && tags["tags"] == json!([]) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articlesCount"], 0);

    let missing = quire_json(dir, &["user", "disable", "nobody"]).await;
    assert_eq!(missing.status.code(), Some(2));
    app.stop().await;
}
}
