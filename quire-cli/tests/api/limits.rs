//! Rate limits and per-address connection ceilings as a client meets them: 429 with
//! `Retry-After` and `X-RateLimit-*`, a strict limit on sign-in and registration, clients
//! behind a trusted proxy told apart by `X-Forwarded-For` (and nobody else able to claim an
//! address), and a 503 for connections past an address's ceiling.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, assert_error};

/// Sends `GET path` with optional extra headers; returns the response.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.request(Method::GET, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

api_test! {
async fn requests_past_the_per_ip_burst_get_429_with_retry_after() {
    let app = TestApp::start_with(|s| {
        s.rate_limit_ip = 1;
        s.rate_limit_ip_burst = 3;
    })
    .await;
    for remaining in [2, 1, 0] {
        let response = get_with(&app, "/api/tags", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "x-ratelimit-limit"), 3);
        assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
        assert!(header(&response, "x-ratelimit-reset") <= 3);
    }
    let response = get_with(&app, "/api/tags", &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after = header(&response, "retry-after");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&response, "x-ratelimit-remaining"), 0);
    let body: Value = response.json().await.unwrap();
    assert_error(
        StatusCode::TOO_MANY_REQUESTS,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "rate",
    );
    // Probes and metrics are never limited.
    for path in ["/health/live", "/health/ready", "/metrics"] {
        assert_eq!(
            get_with(&app, path, &[]).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // The bucket refills at its rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get_with(&app, "/api/tags", &[]).await.status(),
        StatusCode::OK
    );
    assert!(
        app.text("/metrics")
            .await
            .contains("http_rate_limited_total{limit=\"ip\"}")
    );
}
}

api_test! {
async fn sign_ins_are_limited_by_failures_and_registrations_by_a_budget_by_default() {
    let defaults = quire_cli::Settings::defaults();
    let app = TestApp::start_with(|s| {
        s.rate_limit_auth = defaults.rate_limit_auth;
        s.rate_limit_auth_burst = defaults.rate_limit_auth_burst;
        s.sign_in_failures = defaults.sign_in_failures;
        s.sign_in_failures_ip = defaults.sign_in_failures_ip;
    })
    .await;
    app.register("first").await;
    // A test suite signing in again and again is never limited.
    let right = json!({"user": {"email": "first@example.com", "password": "password-first"}});
    for _ in 0..100 {
        let (status, body) = app.post("/api/users/login", None, right.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Guessing one account's password is: refused well before the 30th wrong password.
    let wrong = json!({"user": {"email": "First@example.com", "password": "wrong-password"}});
    let allowed = defaults.sign_in_failures as usize;
    assert!((3..30).contains(&allowed), "{allowed}");
    for _ in 0..allowed {
        let (status, _) = app.post("/api/users/login", None, wrong.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app.post("/api/users/login", None, wrong.clone()).await;
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate");
    // Registrations have a budget a test suite fits in, and no more.
    let budget = defaults.rate_limit_auth_burst as usize;
    assert!(budget >= 10, "{budget}");
    for n in 1..budget {
        let new_user = json!({"user": {"username": format!("user{n}"),
                                       "email": format!("user{n}@example.com"),
                                       "password": "password-user"}});
        let (status, body) = app.post("/api/users", None, new_user).await;
        assert_eq!(status, StatusCode::CREATED, "registration {n}: {body}");
    }
    let one_more = json!({"user": {"username": "late", "email": "late@example.com",
                                   "password": "password-late"}});
    let (status, _) = app.post("/api/users", None, one_more).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Reading is not signing in: other routes still answer.
    assert_eq!(app.get("/api/tags", None).await.0, StatusCode::OK);
}
}

api_test! {
async fn clients_behind_a_trusted_proxy_have_their_own_buckets() {
    let app = TestApp::start_with(|s| {
        s.rate_limit_ip = 1;
        s.rate_limit_ip_burst = 1;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    let b = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(
        get_with(&app, "/api/tags", &a).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&app, "/api/tags", &a).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get_with(&app, "/api/tags", &b).await.status(),
        StatusCode::OK
    );

    // Without the proxy trusted, the header is the client's claim and is ignored.
    let untrusted = TestApp::start_with(|s| {
        s.rate_limit_ip = 1;
        s.rate_limit_ip_burst = 1;
    })
    .await;
    assert_eq!(
        get_with(&untrusted, "/api/tags", &a).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&untrusted, "/api/tags", &b).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
}

api_test! {
async fn a_signed_in_user_is_limited_whatever_its_address() {
    let app = TestApp::start_with(|s| {
        s.rate_limit_user = 1;
        s.rate_limit_user_burst = 2;
        s.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    let token = app.register("busy").await;
    let auth = format!("Token {token}");
    let mut statuses = Vec::new();
    for ip in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let response = get_with(
            &app,
            "/api/user",
            &[("authorization", &auth), ("x-forwarded-for", ip)],
        )
        .await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Someone else is not affected, and neither are anonymous requests.
    let other = app.register("calm").await;
    assert_eq!(app.get("/api/user", Some(&other)).await.0, StatusCode::OK);
    assert_eq!(app.get("/api/tags", None).await.0, StatusCode::OK);
}
}

api_test! {
async fn connections_past_an_address_ceiling_get_503_and_are_closed() {
    let app = TestApp::start_with(|s| s.max_connections_per_ip = 2).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut extra = TcpStream::connect(&address).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer))
        .await
        .expect("the extra connection is closed at once")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert!(body["errors"]["connections"].is_array(), "{body}");
    // A place comes back when a held connection closes.
    drop(held.pop());
    let mut answered = false;
    for _ in 0..50 {
        if app
            .client
            .get(app.url("/health/live"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "a freed place is given to the next connection");
}
}

api_test! {
/// A request head past `--max-header-bytes` is refused with 431, and the server keeps serving.
async fn an_oversized_request_head_gets_431() {
    let app = TestApp::start_with(|settings| settings.max_header_bytes = 16 * 1024).await;
    let address = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "GET /api/tags HTTP/1.1\r\nHost: quire\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let (status, _) = app.get("/api/tags", None).await;
    assert_eq!(status, StatusCode::OK);
    let small = format!("a{}", "b".repeat(8 * 1024));
    let response = app.client.get(app.url("/api/tags")).header("X-Padding", small).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a head under the limit is served");
}
}
