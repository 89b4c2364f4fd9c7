//! Zero-downtime restarts on one box: a new quire takes over the listening socket it
//! inherits (systemd socket activation's protocol) while the old one drains, and clients
//! reading and writing throughout see no failed request and lose no acknowledged write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::support::{QuireProcess, spawn_quire_on};

async fn sigterm_and_wait(mut quire: QuireProcess) {
    let killed = Command::new("kill")
        .args(["-TERM", &quire.child.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), quire.child.wait())
        .await
        .expect("the old process exits after draining")
        .unwrap();
    assert!(status.success(), "{status}");
}

api_test! {
async fn restarts_on_an_inherited_socket_fail_no_request() {
    let dir = crate::support::TestDir::new().await;
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", socket.local_addr().unwrap());
    let mut quire = spawn_quire_on(&socket, &dir, &["--drain-linger", "500ms"]).await;

    let client = reqwest::Client::new();
    let user = json!({"user": {"username": "writer", "email": "writer@example.com",
                               "password": "password-writer"}});
    let response = client
        .post(format!("{base}/api/users"))
        .json(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let token = response.json::<Value>().await.unwrap()["user"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let article = json!({"article": {"title": "Restarts", "description": "d", "body": "b"}});
    let response = client
        .post(format!("{base}/api/articles"))
        .header("Authorization", format!("Token {token}"))
        .json(&article)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let acknowledged = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut clients = Vec::new();
    for n in 0..6 {
        let (stop, answered, failures, acknowledged) = (
            stop.clone(),
            answered.clone(),
            failures.clone(),
            acknowledged.clone(),
        );
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let outcome = if n == 0 {
                    // One writer: every acknowledged comment must survive the restarts.
                    let comment = json!({"comment": {"body": format!("comment {i}")}});
                    client
                        .post(format!("{base}/api/articles/restarts/comments"))
                        .header("Authorization", format!("Token {token}"))
                        .json(&comment)
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{base}/api/articles/restarts"))
                        .send()
                        .await
                };
                match outcome {
                    Ok(response) if response.status().is_success() => {
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        if let Some(id) = body["comment"]["id"].as_i64() {
                            acknowledged.lock().await.push(id);
                        }
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => failures
                        .lock()
                        .await
                        .push(format!("status {}", response.status())),
                    Err(e) => failures.lock().await.push(format!("{e:?}")),
                }
            }
        }));
    }

    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let next = spawn_quire_on(&socket, &dir, &["--drain-linger", "500ms"]).await;
        sigterm_and_wait(std::mem::replace(&mut quire, next)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let failures = failures.lock().await;
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        answered.load(Ordering::Relaxed) > 50,
        "the clients kept being answered"
    );

    let (status, comments) = {
        let response = client
            .get(format!("{base}/api/articles/restarts/comments"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    let stored: Vec<i64> = comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let acknowledged = acknowledged.lock().await;
    assert!(!acknowledged.is_empty());
    for id in acknowledged.iter() {
        assert!(stored.contains(id), "acknowledged comment {id} is missing");
    }
    sigterm_and_wait(quire).await;
}
}
