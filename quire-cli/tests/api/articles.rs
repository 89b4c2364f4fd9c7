//! Articles: create, get, list with filters and pagination, feed, update, delete, favorites,
//! tags.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error, assert_timestamp};

fn slugs(body: &Value) -> Vec<String> {
    body["articles"]
        .as_array()
        .unwrap_or_else(|| panic!("no articles in {body}"))
        .iter()
        .map(|a| a["slug"].as_str().unwrap().to_owned())
        .collect()
}

api_test! {
async fn create_answers_201_with_the_full_article() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let (status, body) = app
        .post(
            "/api/articles",
            Some(&jake),
            json!({"article": {"title": "How to train your dragon", "description": "Ever wonder how?",
                   "body": "You have to believe", "tagList": ["training", "dragons", "dragons"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let article = &body["article"];
    assert_eq!(article["slug"], "how-to-train-your-dragon");
    assert_eq!(article["title"], "How to train your dragon");
    assert_eq!(article["description"], "Ever wonder how?");
    assert_eq!(article["body"], "You have to believe");
    assert_eq!(article["tagList"], json!(["dragons", "training"]));
    assert_eq!(article["favorited"], false);
    assert_eq!(article["favoritesCount"], 0);
    assert_eq!(
        article["author"],
        json!({"username": "jake", "bio": null, "image": null, "following": false})
    );
    assert_timestamp(&article["createdAt"]);
    assert_timestamp(&article["updatedAt"]);

    let (status, fetched) = app
        .get("/api/articles/how-to-train-your-dragon", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["article"], *article);
}
}

api_test! {
async fn create_validates_each_field() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let (status, body) = app
        .post("/api/articles", Some(&jake), json!({"article": {}}))
        .await;
    for field in ["title", "description", "body"] {
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let (status, body) = app
        .post(
            "/api/articles",
            Some(&jake),
            json!({"article": {"title": " ", "description": "d", "body": "b", "tagList": ["", "x"]}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "title");
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "tagList");
    let (status, body) = app
        .post(
            "/api/articles",
            None,
            json!({"article": {"title": "t", "description": "d", "body": "b"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    // Nothing was created.
    assert_eq!(app.get("/api/articles", None).await.1["articlesCount"], 0);
}
}

api_test! {
async fn repeated_titles_get_unique_slugs() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let article = app.create_article(&jake, "Same title", &[]).await;
        let slug = article["slug"].as_str().unwrap().to_owned();
        assert!(slug.starts_with("same-title"), "{slug}");
        assert!(seen.insert(slug));
    }
    for slug in &seen {
        assert_eq!(
            app.get(&format!("/api/articles/{slug}"), None).await.0,
            StatusCode::OK
        );
    }
}
}

api_test! {
async fn unknown_article_is_404() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/api/articles/no-such-article", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
}
}

api_test! {
async fn lists_are_newest_first_without_bodies_and_count_all_matches() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "one", &["rust", "web"]).await;
    app.create_article(&anna, "two", &["rust"]).await;
    app.create_article(&jake, "three", &["go"]).await;

    let (status, body) = app.get("/api/articles", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&body), ["three", "two", "one"]);
    assert_eq!(body["articlesCount"], 3);
    for article in body["articles"].as_array().unwrap() {
        assert!(article.get("body").is_none(), "{article}");
        assert!(article.get("tagList").is_some());
    }

    let list = |query: &'static str| app.get(query, None);
    assert_eq!(
        slugs(&list("/api/articles?tag=rust").await.1),
        ["two", "one"]
    );
    assert_eq!(
        slugs(&list("/api/articles?author=jake").await.1),
        ["three", "one"]
    );
    assert_eq!(
        slugs(&list("/api/articles?author=jake&tag=rust").await.1),
        ["one"]
    );
    assert_eq!(
        slugs(&list("/api/articles?tag=nothing").await.1),
        Vec::<String>::new()
    );
    let (_, body) = list("/api/articles?author=nobody").await;
    assert_eq!(body, json!({"articles": [], "articlesCount": 0}));

    // articlesCount is the total matching, not the page length.
    let (_, body) = list("/api/articles?limit=1").await;
    assert_eq!(slugs(&body), ["three"]);
    assert_eq!(body["articlesCount"], 3);
    let (_, body) = list("/api/articles?limit=1&offset=1").await;
    assert_eq!(slugs(&body), ["two"]);
    let (_, body) = list("/api/articles?tag=rust&limit=1&offset=1").await;
    assert_eq!(slugs(&body), ["one"]);
    assert_eq!(body["articlesCount"], 2);

    // Favorited filter.
    app.post("/api/articles/one/favorite", Some(&anna), json!({}))
        .await;
    app.post("/api/articles/three/favorite", Some(&anna), json!({}))
        .await;
    assert_eq!(
        slugs(&list("/api/articles?favorited=anna").await.1),
        ["three", "one"]
    );
    assert_eq!(
        slugs(&list("/api/articles?favorited=jake").await.1),
        Vec::<String>::new()
    );
    assert_eq!(
        slugs(
            &list("/api/articles?favorited=anna&author=jake&tag=go")
                .await
                .1
        ),
        ["three"]
    );
}
}

api_test! {
async fn pagination_edges() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    for i in 0..3 {
        app.create_article(&jake, &format!("article {i}"), &[])
            .await;
    }
    let (status, body) = app.get("/api/articles?offset=10", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"articles": [], "articlesCount": 3}));
    for bad in ["limit=0", "limit=-1", "limit=ten", "offset=-1", "offset=x"] {
        let field = bad.split('=').next().unwrap();
        let (status, body) = app.get(&format!("/api/articles?{bad}"), None).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, field);
        let (status, body) = app
            .get(&format!("/api/articles/feed?{bad}"), Some(&jake))
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
}
}

api_test! {
async fn limit_above_the_maximum_is_clamped_to_100() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let creates = (0..105).map(|i| {
        let (app, jake) = (&app, &jake);
        async move { app.create_article(jake, &format!("bulk {i}"), &[]).await }
    });
    futures_util::future::join_all(creates).await;
    let (status, body) = app.get("/api/articles?limit=1000", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["articles"].as_array().unwrap().len(), 100);
    assert_eq!(body["articlesCount"], 105);
    let (_, body) = app.get("/api/articles", None).await;
    assert_eq!(body["articles"].as_array().unwrap().len(), 20);
}
}

api_test! {
async fn feed_follows_follows() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let bob = app.register("bob").await;
    app.create_article(&anna, "anna writes", &[]).await;
    app.create_article(&bob, "bob writes", &[]).await;
    app.create_article(&anna, "anna again", &[]).await;

    let (status, body) = app.get("/api/articles/feed", Some(&jake)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"articles": [], "articlesCount": 0}));

    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    let (_, body) = app.get("/api/articles/feed", Some(&jake)).await;
    assert_eq!(slugs(&body), ["anna-again", "anna-writes"]);
    assert_eq!(body["articlesCount"], 2);
    assert_eq!(body["articles"][0]["author"]["following"], true);
    assert!(body["articles"][0].get("body").is_none());
    let (_, body) = app
        .get("/api/articles/feed?limit=1&offset=1", Some(&jake))
        .await;
    assert_eq!(slugs(&body), ["anna-writes"]);
    assert_eq!(body["articlesCount"], 2);

    app.post("/api/profiles/bob/follow", Some(&jake), json!({}))
        .await;
    assert_eq!(
        app.get("/api/articles/feed", Some(&jake)).await.1["articlesCount"],
        3
    );
    app.delete("/api/profiles/anna/follow", Some(&jake)).await;
    let (_, body) = app.get("/api/articles/feed", Some(&jake)).await;
    assert_eq!(slugs(&body), ["bob-writes"]);
    // Others' feeds are their own.
    assert_eq!(
        app.get("/api/articles/feed", Some(&bob)).await.1["articlesCount"],
        0
    );

    let (status, body) = app.get("/api/articles/feed", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
}
}

api_test! {
async fn only_the_author_updates_and_a_new_title_gives_a_new_slug() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let created = app.create_article(&jake, "Old title", &["t"]).await;

    let (status, body) = app
        .put(
            "/api/articles/old-title",
            Some(&anna),
            json!({"article": {"body": "hijacked"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "article");
    let (status, body) = app
        .put(
            "/api/articles/old-title",
            None,
            json!({"article": {"body": "x"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    let (status, body) = app
        .put(
            "/api/articles/no-such",
            Some(&jake),
            json!({"article": {"body": "x"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
    let (status, body) = app
        .put(
            "/api/articles/old-title",
            Some(&jake),
            json!({"article": {"title": ""}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "title");

    let (status, body) = app
        .put(
            "/api/articles/old-title",
            Some(&jake),
            json!({"article": {"body": "new body"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["slug"], "old-title");
    assert_eq!(body["article"]["body"], "new body");
    assert_eq!(body["article"]["description"], created["description"]);
    assert_eq!(body["article"]["tagList"], json!(["t"]));
    assert_eq!(body["article"]["createdAt"], created["createdAt"]);
    assert!(body["article"]["updatedAt"].as_str() >= created["updatedAt"].as_str());

    let (status, body) = app
        .put(
            "/api/articles/old-title",
            Some(&jake),
            json!({"article": {"title": "New title"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["article"]["slug"], "new-title");
    assert_eq!(
        app.get("/api/articles/new-title", None).await.1["article"]["body"],
        "new body"
    );
    assert_eq!(
        app.get("/api/articles/old-title", None).await.0,
        StatusCode::NOT_FOUND
    );
}
}

api_test! {
async fn only_the_author_deletes_and_everything_goes_with_it() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "doomed", &["only-here"]).await;
    app.post("/api/articles/doomed/favorite", Some(&anna), json!({}))
        .await;
    app.post(
        "/api/articles/doomed/comments",
        Some(&anna),
        json!({"comment": {"body": "hi"}}),
    )
    .await;

    let (status, body) = app.delete("/api/articles/doomed", Some(&anna)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "article");
    let (status, body) = app.delete("/api/articles/doomed", None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");

    let (status, body) = app.delete("/api/articles/doomed", Some(&jake)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_null());
    assert_eq!(
        app.get("/api/articles/doomed", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete("/api/articles/doomed", Some(&jake)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/articles?favorited=anna", None).await.1["articlesCount"],
        0
    );
    assert_eq!(app.get("/api/tags", None).await.1, json!({"tags": []}));
}
}

api_test! {
async fn favorites_flag_and_count() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "liked", &[]).await;

    let (status, body) = app
        .post("/api/articles/liked/favorite", Some(&anna), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["article"]["favorited"], true);
    assert_eq!(body["article"]["favoritesCount"], 1);
    // Idempotent.
    let (_, body) = app
        .post("/api/articles/liked/favorite", Some(&anna), json!({}))
        .await;
    assert_eq!(body["article"]["favoritesCount"], 1);

    let (_, body) = app.get("/api/articles/liked", Some(&jake)).await;
    assert_eq!(body["article"]["favorited"], false);
    assert_eq!(body["article"]["favoritesCount"], 1);
    let (_, body) = app.get("/api/articles", Some(&anna)).await;
    assert_eq!(body["articles"][0]["favorited"], true);

    let (status, body) = app
        .delete("/api/articles/liked/favorite", Some(&anna))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["article"]["favorited"], false);
    assert_eq!(body["article"]["favoritesCount"], 0);
    let (_, body) = app
        .delete("/api/articles/liked/favorite", Some(&anna))
        .await;
    assert_eq!(body["article"]["favoritesCount"], 0);

    let (status, body) = app
        .post("/api/articles/nothing/favorite", Some(&anna), json!({}))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
    let (status, body) = app
        .post("/api/articles/liked/favorite", None, json!({}))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
}
}

api_test! {
async fn concurrent_favorites_are_counted_exactly() {
    let app = TestApp::start().await;
    let author = app.register("author").await;
    app.create_article(&author, "popular", &[]).await;
    let users = futures_util::future::join_all((0..40).map(|i| {
        let app = &app;
        async move { app.register(&format!("fan{i}")).await }
    }))
    .await;
    // Everyone favorites twice at once; then half unfavorite at once.
    let favorites = users.iter().chain(users.iter()).map(|token| {
        let app = &app;
        async move {
            app.post("/api/articles/popular/favorite", Some(token), json!({}))
                .await
                .0
        }
    });
    for status in futures_util::future::join_all(favorites).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        app.get("/api/articles/popular", None).await.1["article"]["favoritesCount"],
        40
    );
    let unfavorites = users.iter().take(15).map(|token| {
        let app = &app;
        async move {
            app.delete("/api/articles/popular/favorite", Some(token))
                .await
                .0
        }
    });
    for status in futures_util::future::join_all(unfavorites).await {
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        app.get("/api/articles/popular", None).await.1["article"]["favoritesCount"],
        25
    );
    let (_, list) = app.get("/api/articles", None).await;
    assert_eq!(list["articles"][0]["favoritesCount"], 25);
}
}

api_test! {
async fn tags_are_distinct_and_sorted() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/api/tags", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"tags": []}));
    let jake = app.register("jake").await;
    app.create_article(&jake, "a", &["zebra", "apple"]).await;
    app.create_article(&jake, "b", &["mango", "apple"]).await;
    assert_eq!(
        app.get("/api/tags", None).await.1,
        json!({"tags": ["apple", "mango", "zebra"]})
    );
}
}

api_test! {
/// `tagList` in an update (an extension of the spec) replaces the tags; tag lists, the tag
/// list and the article all show the new ones at once (the caches included).
async fn an_update_can_replace_the_tags() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "Retagged", &["old", "kept"]).await;
    // Read everything once so the caches hold the old tags.
    for path in ["/api/articles/retagged", "/api/tags", "/api/articles?tag=old", "/api/articles?tag=new"] {
        let (status, _) = app.get(path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let (status, body) = app
        .put("/api/articles/retagged", Some(&jake), json!({"article": {"tagList": ["kept", "new"]}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["article"]["tagList"], json!(["kept", "new"]));
    let (_, article) = app.get("/api/articles/retagged", None).await;
    assert_eq!(article["article"]["tagList"], json!(["kept", "new"]));
    let (_, tags) = app.get("/api/tags", None).await;
    let tags: Vec<&str> = tags["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tags.contains(&"new") && !tags.contains(&"old"), "{tags:?}");
    let (_, old) = app.get("/api/articles?tag=old", None).await;
    assert_eq!(old["articlesCount"], 0);
    let (_, new) = app.get("/api/articles?tag=new", None).await;
    assert_eq!(new["articlesCount"], 1);
    let (status, body) = app
        .put("/api/articles/retagged", Some(&jake), json!({"article": {"tagList": ["bad tag\u{0}"]}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
}
