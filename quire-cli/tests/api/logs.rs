//! The real binary's JSON logs: one object per line, the request id on every line logged
//! while serving a request, and no secret (password, token, signing key) anywhere.

use serde_json::{Value, json};

use crate::support::spawn_quire_with_env;

api_test! {
async fn json_lines_carry_the_request_id_and_never_a_secret() {
    let dir = crate::support::TestDir::new().await;
    let quire = spawn_quire_with_env(&dir, &[], &[("RUST_LOG", "info")]).await;
    let client = reqwest::Client::new();
    let password = "correct-horse-battery-9";
    let registered: Value = client
        .post(format!("{}/api/users", quire.base))
        .json(&json!({"user": {"username": "jake", "email": "jake@example.com", "password": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["user"]["token"].as_str().unwrap().to_owned();
    let wrong = client
        .post(format!("{}/api/users/login", quire.base))
        .header("X-Request-Id", "trace-me-42")
        .json(&json!({"user": {"email": "jake@example.com", "password": "not-the-password-7"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let me = client
        .get(format!("{}/api/user", quire.base))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // A token in the query string (how browsers authenticate live connections).
    let sse = client
        .get(format!("{}/api/live/sse?token={token}&x=1", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    drop(sse);

    let secret = dir.token_secret().await;
    let secret = secret.as_str();
    assert!(secret.len() >= 32);
    let mut deadline = 100;
    let lines = loop {
        let lines = quire.logs.lock().unwrap().clone();
        let done = lines.iter().filter(|l| l.contains("request done")).count() >= 4;
        if done || deadline == 0 {
            break lines;
        }
        deadline -= 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    let mut request_lines = 0;
    for line in &lines {
        let log: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        for needle in [password, "not-the-password-7", token.as_str(), secret] {
            assert!(!line.contains(needle), "a secret was logged: {line}");
        }
        if let Some(span) = log.get("span") {
            request_lines += 1;
            let id = span["request_id"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "a line in a request without its id: {line}");
        }
        if let Some(latency) = log.get("latency_ms") {
            // Whole microseconds, written as such: at most three decimals.
            let text = latency.to_string();
            let decimals = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
            assert!(latency.is_f64() && decimals <= 3, "latency_ms {text}: {line}");
        }
    }
    assert!(request_lines >= 4, "request lines were logged: {lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("trace-me-42") && l.contains("\"status\":401")),
        "the caller's request id is the one logged: {lines:#?}"
    );
}
}
