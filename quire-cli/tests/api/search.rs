//! Full-text search (`GET /api/search`, the search page): ranked, stemmed, paged matches with
//! escaped, highlighted snippets; exact after edits and deletes; any input is words, never
//! query syntax.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_error};

async fn write(app: &TestApp, token: &str, title: &str, description: &str, body: &str) -> String {
    let (status, created) = app
        .post(
            "/api/articles",
            Some(token),
            json!({"article": {"title": title, "description": description, "body": body}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["article"]["slug"].as_str().unwrap().to_owned()
}

fn slugs(found: &Value) -> Vec<&str> {
    found["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["slug"].as_str().unwrap())
        .collect()
}

api_test! {
async fn search_finds_ranked_stemmed_matches_with_snippets() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let garden = write(&app, &jake, "Gardening notes", "tomatoes", "Water the tomatoes early; rust on leaves is a fungus.").await;
    let runtimes = write(&app, &jake, "Rust async runtimes", "runtimes compared", "Tokio is a runtime for writing async code in Rust.").await;
    let other = write(&app, &jake, "Unrelated", "nothing", "Nothing to see <script>alert(1)</script> here.").await;

    let (status, found) = app.get("/api/search?q=rust", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["articlesCount"], 2);
    // A title match ranks above a body match.
    assert_eq!(slugs(&found), [runtimes.as_str(), garden.as_str()]);
    for article in found["articles"].as_array().unwrap() {
        assert!(article.get("body").is_none(), "no bodies in results: {article}");
        let snippet = article["snippet"].as_str().unwrap();
        assert!(snippet.to_lowercase().contains("<mark>rust</mark>"), "{snippet}");
        assert_eq!(article["favorited"], false);
        assert_eq!(article["author"]["username"], "jake");
    }
    // Stemming: "writes" finds "writing".
    let (_, found) = app.get("/api/search?q=writes", None).await;
    assert_eq!(slugs(&found), [runtimes.as_str()]);
    // Every word must match.
    let (_, found) = app.get("/api/search?q=rust%20tomatoes", None).await;
    assert_eq!(slugs(&found), [garden.as_str()]);
    // Snippets are escaped text with highlights only.
    let (_, found) = app.get("/api/search?q=nothing", None).await;
    assert_eq!(slugs(&found), [other.as_str()]);
    let snippet = found["articles"][0]["snippet"].as_str().unwrap();
    assert!(!snippet.contains("<script>"), "{snippet}");
    // Paging.
    let (_, found) = app.get("/api/search?q=rust&limit=1&offset=1", None).await;
    assert_eq!(found["articlesCount"], 2);
    assert_eq!(slugs(&found), [garden.as_str()]);
}
}

api_test! {
async fn any_query_text_is_words_and_a_wordless_query_is_refused() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let slug = write(&app, &jake, "Quoting rules", "about quotes", "AND OR NOT NEAR are words too").await;
    for query in ["%22quoting%22%20AND%20-(", "NEAR(quoting", "rules%3Aquoting*", "quoting%5E%20%7C%7C%20'"] {
        let (status, found) = app.get(&format!("/api/search?q={query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {found}");
        assert_eq!(slugs(&found), [slug.as_str()], "{query}");
    }
    for query in ["", "%20%20", "%22%22%20()%20*"] {
        let (status, body) = app.get(&format!("/api/search?q={query}"), None).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "q");
    }
    let (status, body) = app.get("/api/search", None).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "q");
    let many = vec!["word"; 17].join("%20");
    let (status, body) = app.get(&format!("/api/search?q={many}"), None).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "q");
}
}

api_test! {
async fn search_follows_edits_and_deletes_at_once() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let slug = write(&app, &jake, "Before the edit", "old words", "zebra crossing").await;
    let (status, updated) = app
        .put(&format!("/api/articles/{slug}"), Some(&jake), json!({"article": {"body": "giraffe neck"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (_, found) = app.get("/api/search?q=zebra", None).await;
    assert_eq!(found["articlesCount"], 0, "{found}");
    let (_, found) = app.get("/api/search?q=giraffe", None).await;
    assert_eq!(slugs(&found), [slug.as_str()]);
    let (status, _) = app.delete(&format!("/api/articles/{slug}"), Some(&jake)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, found) = app.get("/api/search?q=giraffe", None).await;
    assert_eq!(found["articlesCount"], 0, "{found}");
}
}

api_test! {
async fn the_search_page_shows_highlighted_matches() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    write(&app, &jake, "Rust & friends", "a <b>bold</b> claim", "Rust everywhere").await;
    let html = app.text("/search?q=rust").await;
    assert!(html.contains("1 article matches"), "{html}");
    assert!(html.contains("<mark>"), "{html}");
    assert!(html.contains("href=\"/articles/rust-friends\""), "{html}");
    assert!(!html.contains("<b>bold</b>"), "{html}");
    let empty = app.client.get(app.url("/search?q=%22%22")).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let blank = app.text("/search").await;
    assert!(blank.contains("role=\"search\""), "{blank}");
}
}
