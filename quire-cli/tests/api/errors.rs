//! Bad input of every kind gets a 4xx in the RealWorld error shape, never a 5xx.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error};

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Token {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

// The RealWorld spec answers bad input with 422 on every operation, so malformed bodies and
// wrong content types do too (field `body`), not HTTP's more specific 400 and 415.
api_test! {
async fn malformed_json_is_422() {
    let app = TestApp::start().await;
    for body in [&b"{bad"[..], b"", br#"{"user":"#, b"\xff\xfe"] {
        let (status, json) = raw(
            &app,
            reqwest::Method::POST,
            "/api/users",
            Some("application/json"),
            body.to_vec(),
            None,
        )
        .await;
        assert_error(status, &json, StatusCode::UNPROCESSABLE_ENTITY, "body");
    }
}
}

api_test! {
async fn wrong_shapes_are_422() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    for (path, body) in [
        ("/api/users", json!({})),
        ("/api/users", json!({"user": "jake"})),
        (
            "/api/users",
            json!({"user": {"username": 5, "email": "a@b.co", "password": "12345678"}}),
        ),
        ("/api/users", json!([1, 2, 3])),
        (
            "/api/articles",
            json!({"article": {"title": "t", "description": "d", "body": "b", "tagList": "x"}}),
        ),
        (
            "/api/articles",
            json!({"article": {"title": ["t"], "description": "d", "body": "b"}}),
        ),
    ] {
        let (status, json) = app.post(path, Some(&token), body.clone()).await;
        assert_error(status, &json, StatusCode::UNPROCESSABLE_ENTITY, "body");
    }
}
}

api_test! {
async fn wrong_content_type_is_422() {
    let app = TestApp::start().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let body = br#"{"user":{"username":"a","email":"a@b.co","password":"12345678"}}"#;
        let (status, json) = raw(
            &app,
            reqwest::Method::POST,
            "/api/users",
            content_type,
            body.to_vec(),
            None,
        )
        .await;
        assert_error(status, &json, StatusCode::UNPROCESSABLE_ENTITY, "body");
    }
}
}

api_test! {
async fn oversized_bodies_are_413() {
    let app = TestApp::start_with(|s| s.max_body_bytes = 64 * 1024).await;
    let token = app.register("jake").await;
    let big = "x".repeat(100 * 1024);
    let body = json!({"article": {"title": "t", "description": "d", "body": big}});
    let (status, json) = app.post("/api/articles", Some(&token), body).await;
    assert_error(status, &json, StatusCode::PAYLOAD_TOO_LARGE, "body");
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 0);
    // A body under the limit passes.
    let body =
        json!({"article": {"title": "t", "description": "d", "body": "x".repeat(32 * 1024)}});
    assert_eq!(
        app.post("/api/articles", Some(&token), body).await.0,
        StatusCode::CREATED
    );
}
}

api_test! {
async fn default_body_limit_is_2_mib() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let big = "x".repeat(2 * 1024 * 1024 + 1);
    let body = json!({"article": {"title": "t", "description": "d", "body": big}});
    let (status, json) = app.post("/api/articles", Some(&token), body).await;
    assert_error(status, &json, StatusCode::PAYLOAD_TOO_LARGE, "body");
}
}

api_test! {
async fn a_stray_non_json_body_on_follow_is_ignored() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    app.register("anna").await;
    let (status, json) = raw(
        &app,
        reqwest::Method::POST,
        "/api/profiles/anna/follow",
        Some("text/plain"),
        b"hello".to_vec(),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["profile"]["following"], true);
}
}

api_test! {
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/api/nothing-here", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "route");
    let (status, body) = app
        .call(reqwest::Method::PATCH, "/api/tags", None, None)
        .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, "method");
}
}
