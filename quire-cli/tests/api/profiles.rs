//! Profiles, follow and unfollow.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_error};

api_test! {
async fn profiles_show_following_per_viewer() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;

    let (status, body) = app.get("/api/profiles/anna", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"profile": {"username": "anna", "bio": null, "image": null, "following": false}})
    );

    let (status, body) = app
        .post(
            "/api/profiles/anna/follow",
            Some(&jake),
            json!({"stray": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile"]["following"], true);
    // Following twice is harmless.
    let (status, _) = app
        .post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        app.get("/api/profiles/anna", Some(&jake)).await.1["profile"]["following"],
        true
    );
    assert_eq!(
        app.get("/api/profiles/ANNA", Some(&jake)).await.1["profile"]["following"],
        true
    );
    assert_eq!(
        app.get("/api/profiles/anna", Some(&anna)).await.1["profile"]["following"],
        false
    );
    assert_eq!(
        app.get("/api/profiles/anna", None).await.1["profile"]["following"],
        false
    );
    assert_eq!(
        app.get("/api/profiles/jake", Some(&anna)).await.1["profile"]["following"],
        false
    );

    let (status, body) = app.delete("/api/profiles/anna/follow", Some(&jake)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["profile"]["following"], false);
    assert_eq!(
        app.get("/api/profiles/anna", Some(&jake)).await.1["profile"]["following"],
        false
    );
}
}

api_test! {
async fn profile_errors() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let (status, body) = app.get("/api/profiles/nobody", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "profile");
    let (status, body) = app.get("/api/profiles/not%20a%20name", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "profile");
    let (status, body) = app
        .post("/api/profiles/nobody/follow", Some(&jake), json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "profile");
    let (status, body) = app.delete("/api/profiles/nobody/follow", Some(&jake)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "profile");
    let (status, body) = app.post("/api/profiles/jake/follow", None, json!({})).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    let (status, body) = app
        .post("/api/profiles/jake/follow", Some(&jake), json!({}))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "username");
    let (status, body) = app.get("/api/profiles/jake", Some("bad-token")).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
}
}

api_test! {
async fn dashboard_shows_profile_numbers_and_latest_articles() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    for i in 0..7 {
        app.create_article(&jake, &format!("post {i}"), &[]).await;
    }
    app.post("/api/articles/post-1/favorite", Some(&anna), json!({}))
        .await;
    app.post("/api/articles/post-2/favorite", Some(&anna), json!({}))
        .await;
    app.post("/api/articles/post-2/favorite", Some(&bob), json!({}))
        .await;
    app.post("/api/profiles/jake/follow", Some(&anna), json!({}))
        .await;
    app.post("/api/profiles/jake/follow", Some(&bob), json!({}))
        .await;
    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;

    let (status, body) = app.get("/api/profiles/jake/dashboard", Some(&anna)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dashboard = &body["dashboard"];
    assert_eq!(dashboard["profile"]["username"], "jake");
    assert_eq!(dashboard["profile"]["following"], true);
    assert_eq!(
        dashboard["stats"],
        json!({"articles": 7, "favoritesReceived": 3, "followers": 2, "following": 1})
    );
    let latest: Vec<&str> = dashboard["latestArticles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect();
    assert_eq!(latest, ["post-6", "post-5", "post-4", "post-3", "post-2"]);
    assert_eq!(dashboard["latestArticles"][4]["favorited"], true);
    assert!(dashboard["latestArticles"][0].get("body").is_none());

    // The numbers are cached, and every write that changes them is seen at once, by the
    // writer and by others.
    let stats = |user: &'static str, reader: Option<String>| {
        let app = &app;
        async move {
            let path = format!("/api/profiles/{user}/dashboard");
            app.get(&path, reader.as_deref()).await.1["dashboard"]["stats"].clone()
        }
    };
    let numbers = |a: u64, f: u64, fr: u64, fg: u64| json!({"articles": a, "favoritesReceived": f, "followers": fr, "following": fg});
    app.post("/api/articles/post-3/favorite", Some(&bob), json!({}))
        .await;
    assert_eq!(stats("jake", Some(bob.clone())).await, numbers(7, 4, 2, 1));
    app.delete("/api/articles/post-3/favorite", Some(&bob))
        .await;
    assert_eq!(stats("jake", None).await, numbers(7, 3, 2, 1));
    app.delete("/api/profiles/jake/follow", Some(&bob)).await;
    assert_eq!(stats("jake", Some(bob.clone())).await, numbers(7, 3, 1, 1));
    app.delete("/api/profiles/anna/follow", Some(&jake)).await;
    assert_eq!(stats("jake", Some(jake.clone())).await, numbers(7, 3, 1, 0));
    assert_eq!(stats("anna", None).await, numbers(0, 0, 0, 1));
    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    assert_eq!(stats("anna", None).await, numbers(0, 0, 1, 1));
    app.create_article(&jake, "post 7", &[]).await;
    assert_eq!(stats("jake", None).await, numbers(8, 3, 1, 1));
    app.delete("/api/articles/post-2", Some(&jake)).await;
    assert_eq!(stats("jake", Some(anna.clone())).await, numbers(7, 1, 1, 1));

    let (status, body) = app.get("/api/profiles/nobody/dashboard", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "profile");
}
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

api_test! {
async fn a_dashboard_abandoned_by_its_client_stops_its_remaining_work() {
    use tokio::io::AsyncWriteExt;
    // One reader thread, kept busy, so the dashboard's queries wait in the queue.
    let app = TestApp::start_with(|s| s.sqlite_readers = 1).await;
    let jake = app.register("jake").await;
    for i in 0..30 {
        app.create_article(&jake, &format!("post {i}"), &["t"])
            .await;
        // Each favorite makes every list the flood below asks for a longer store read.
        app.post(
            &format!("/api/articles/post-{i}/favorite"),
            Some(&jake),
            json!({}),
        )
        .await;
    }
    app.post(
        "/api/profiles/jake/follow",
        Some(&app.register("anna").await),
        json!({}),
    )
    .await;
    let bob = app.register("bob").await;
    app.get("/api/profiles/jake", None).await;
    let before = app.text("/metrics").await;

    // Whether one attempt catches the dashboard mid-way depends on timing (more so on a busy
    // machine); several attempts make it certain, while a server that never drops abandoned work
    // fails every one.
    let abandoned = |after: &str| {
        metric(after, "dashboard_abandoned_total") - metric(&before, "dashboard_abandoned_total")
    };
    let mut after = String::new();
    for attempt in 0..10 {
        // An attempt that completed cached jake's numbers: a follow change forgets them, so
        // this attempt's dashboard counts in the store again.
        let (status, _) = if attempt % 2 == 0 {
            app.post("/api/profiles/jake/follow", Some(&bob), json!({}))
                .await
        } else {
            app.delete("/api/profiles/jake/follow", Some(&bob)).await
        };
        assert_eq!(status, StatusCode::OK);
        let flood: Vec<_> = (0..300)
            .map(|_| {
                // Lists filtered by favorites are never cached: each is a page of store reads.
                let (client, url, token) = (
                    app.client.clone(),
                    app.url("/api/articles?favorited=jake"),
                    jake.clone(),
                );
                tokio::spawn(async move {
                    let _ = client
                        .get(url)
                        .header("Authorization", format!("Token {token}"))
                        .send()
                        .await;
                })
            })
            .collect();
        // Wait until the flood is queued in the server.
        for _ in 0..200 {
            let text = app.text("/metrics").await;
            if metric(&text, "http_requests_in_flight") >= 250.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let address = app.base.trim_start_matches("http://").to_owned();
        let mut raw = tokio::net::TcpStream::connect(&address).await.unwrap();
        raw.write_all(b"GET /api/profiles/jake/dashboard HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Hang up at once: the server reads the request and the hang-up together, while the
        // dashboard waits for its counts in the store, behind the flood.
        drop(raw);
        for request in flood {
            request.await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = app.text("/metrics").await;
        if abandoned(&after) >= 1.0 {
            break;
        }
    }
    assert!(
        abandoned(&after) >= 1.0,
        "the dashboard was not abandoned:\n{after}"
    );
    // Its queued store reads are then skipped (shown in quire-store's pool tests).
    // And a complete dashboard still works afterwards.
    assert_eq!(
        app.get("/api/profiles/jake/dashboard", None).await.0,
        StatusCode::OK
    );
}
}
