//! The read cache is invisible: every write is seen at once, by the writer and by others,
//! even while other clients keep the cache hot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

api_test! {
async fn edits_deletes_and_favorites_are_seen_at_once() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "cached", &["t1"]).await;
    // Warm every cache.
    for token in [None, Some(anna.as_str()), Some(jake.as_str())] {
        app.get("/api/articles/cached", token).await;
        app.get("/api/articles", token).await;
        app.get("/api/articles?tag=t1", token).await;
        app.get("/api/profiles/jake", token).await;
    }
    app.get("/api/tags", None).await;

    app.put(
        "/api/articles/cached",
        Some(&jake),
        json!({"article": {"body": "edited", "description": "new"}}),
    )
    .await;
    for token in [None, Some(anna.as_str()), Some(jake.as_str())] {
        let (_, body) = app.get("/api/articles/cached", token).await;
        assert_eq!(body["article"]["body"], "edited");
        let (_, body) = app.get("/api/articles", token).await;
        assert_eq!(body["articles"][0]["description"], "new");
    }

    app.post("/api/articles/cached/favorite", Some(&anna), json!({}))
        .await;
    let (_, body) = app.get("/api/articles/cached", Some(&anna)).await;
    assert_eq!(
        (
            body["article"]["favorited"].clone(),
            body["article"]["favoritesCount"].clone()
        ),
        (json!(true), json!(1))
    );
    let (_, body) = app.get("/api/articles/cached", Some(&jake)).await;
    assert_eq!(
        (
            body["article"]["favorited"].clone(),
            body["article"]["favoritesCount"].clone()
        ),
        (json!(false), json!(1))
    );
    let (_, body) = app.get("/api/articles?tag=t1", None).await;
    assert_eq!(body["articles"][0]["favoritesCount"], 1);
    assert_eq!(
        app.get("/api/articles?favorited=anna", None).await.1["articlesCount"],
        1
    );

    app.put(
        "/api/articles/cached",
        Some(&jake),
        json!({"article": {"title": "renamed"}}),
    )
    .await;
    assert_eq!(
        app.get("/api/articles/cached", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/articles/renamed", None).await.1["article"]["body"],
        "edited"
    );

    app.create_article(&jake, "second", &["t2"]).await;
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 2);
    assert_eq!(
        app.get("/api/tags", None).await.1,
        json!({"tags": ["t1", "t2"]})
    );

    app.delete("/api/articles/renamed", Some(&jake)).await;
    assert_eq!(
        app.get("/api/articles/renamed", Some(&anna)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 1);
    assert_eq!(
        app.get("/api/articles?tag=t1", None).await.1["articlesCount"],
        0
    );
    assert_eq!(app.get("/api/tags", None).await.1, json!({"tags": ["t2"]}));
}
}

api_test! {
async fn follows_and_profile_changes_are_seen_at_once() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "by jake", &[]).await;
    app.get("/api/profiles/jake", Some(&anna)).await;
    app.get("/api/articles/by-jake", Some(&anna)).await;
    // Looked up before it exists, then created: not cached as missing.
    assert_eq!(
        app.get("/api/profiles/late", None).await.0,
        StatusCode::NOT_FOUND
    );
    app.register("late").await;
    assert_eq!(app.get("/api/profiles/late", None).await.0, StatusCode::OK);

    app.post("/api/profiles/jake/follow", Some(&anna), json!({}))
        .await;
    assert_eq!(
        app.get("/api/profiles/jake", Some(&anna)).await.1["profile"]["following"],
        true
    );
    assert_eq!(
        app.get("/api/profiles/jake", None).await.1["profile"]["following"],
        false
    );
    assert_eq!(
        app.get("/api/articles/by-jake", Some(&anna)).await.1["article"]["author"]["following"],
        true
    );

    app.put(
        "/api/user",
        Some(&jake),
        json!({"user": {"bio": "new bio", "username": "jacob"}}),
    )
    .await;
    assert_eq!(
        app.get("/api/profiles/jacob", None).await.1["profile"]["bio"],
        "new bio"
    );
    assert_eq!(
        app.get("/api/profiles/jake", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, body) = app.get("/api/articles/by-jake", None).await;
    assert_eq!(body["article"]["author"]["username"], "jacob");
    assert_eq!(body["article"]["author"]["bio"], "new bio");
    assert_eq!(
        app.get("/api/articles?author=jacob", None).await.1["articlesCount"],
        1
    );
    assert_eq!(
        app.get("/api/articles?author=jake", None).await.1["articlesCount"],
        0
    );
}
}

api_test! {
async fn a_writer_never_reads_its_own_write_stale_under_concurrent_readers() {
    let app = Arc::new(TestApp::start().await);
    let jake = app.register("jake").await;
    app.create_article(&jake, "hot", &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    app.get("/api/articles/hot", None).await;
                    app.get("/api/articles", None).await;
                }
            })
        })
        .collect();
    for i in 0..40 {
        let body = format!("version {i}");
        let (status, _) = app
            .put(
                "/api/articles/hot",
                Some(&jake),
                json!({"article": {"body": body, "description": body}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, read) = app.get("/api/articles/hot", Some(&jake)).await;
        assert_eq!(read["article"]["body"], body, "stale read after write {i}");
        let (_, list) = app.get("/api/articles", None).await;
        assert_eq!(
            list["articles"][0]["description"], body,
            "stale list after write {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
}
}

api_test! {
async fn the_feed_follows_new_articles_favorites_and_follows_at_once() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    app.create_article(&anna, "first", &[]).await;
    assert_eq!(
        app.get("/api/articles/feed", Some(&jake)).await.1["articlesCount"],
        1
    );
    app.create_article(&anna, "second", &[]).await;
    let (_, feed) = app.get("/api/articles/feed", Some(&jake)).await;
    assert_eq!(feed["articlesCount"], 2);
    assert_eq!(feed["articles"][0]["slug"], "second");
    assert_eq!(feed["articles"][0]["favorited"], false);
    app.post("/api/articles/second/favorite", Some(&jake), json!({}))
        .await;
    let (_, feed) = app.get("/api/articles/feed", Some(&jake)).await;
    assert_eq!(feed["articles"][0]["favorited"], true);
    assert_eq!(feed["articles"][0]["favoritesCount"], 1);
    app.delete("/api/articles/first", Some(&anna)).await;
    assert_eq!(
        app.get("/api/articles/feed", Some(&jake)).await.1["articlesCount"],
        1
    );
    app.delete("/api/profiles/anna/follow", Some(&jake)).await;
    assert_eq!(
        app.get("/api/articles/feed", Some(&jake)).await.1["articlesCount"],
        0
    );
}
}

api_test! {
    async fn with_the_cache_off_a_change_made_behind_quires_back_is_seen_at_once() {
        let app = TestApp::start_with(|s| s.cache = quire_cli::CacheMode::Off).await;
        let jake = app.register("jake").await;
        app.create_article(&jake, "Before", &[]).await;
        let (_, body) = app.get("/api/articles/before", None).await;
        assert_eq!(body["article"]["title"], "Before");

        // Another writer (another instance, an operator's SQL) changes the row directly.
        let sql = "UPDATE articles SET title = 'After' WHERE slug = 'before'";
        match crate::support::Backend::current() {
            crate::support::Backend::Sqlite => {
                let db = rusqlite::Connection::open(app.dir().join("quire.db")).unwrap();
                assert_eq!(db.execute(sql, []).unwrap(), 1);
            }
            crate::support::Backend::Postgres => {
                let db = app.test_dir().postgres().await;
                assert_eq!(db.execute(sql, &[]).await.unwrap(), 1);
            }
        }
        let (status, body) = app.get("/api/articles/before", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["article"]["title"], "After");
        let (_, body) = app.get("/api/articles?limit=1", None).await;
        assert_eq!(body["articles"][0]["title"], "After");
    }
}
