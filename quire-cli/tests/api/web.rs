//! The server-rendered blog pages: content, escaping, security headers.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

api_test! {
async fn home_and_article_pages_render_escaped_html() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let (status, _) = app
        .post(
            "/api/articles",
            Some(&jake),
            json!({"article": {"title": "Hello <b>world</b>", "description": "a \"quoted\" description",
                   "body": "<script>alert(1)</script>\nsecond line", "tagList": ["rust"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let home = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert_eq!(home.headers()["content-type"], "text/html; charset=utf-8");
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert_eq!(home.headers()["x-content-type-options"], "nosniff");
    assert_eq!(home.headers()["x-frame-options"], "DENY");
    let html = home.text().await.unwrap();
    // askama escapes with numeric references.
    assert!(html.contains("Hello &#60;b&#62;world&#60;/b&#62;"), "{html}");
    assert!(html.contains("a &#34;quoted&#34; description"), "{html}");
    assert!(
        html.contains("href=\"/articles/hello-b-world-b\""),
        "{html}"
    );
    assert!(!html.contains("<b>world"));

    let page = app
        .client
        .get(app.url("/articles/hello-b-world-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    // The body is Markdown: its raw HTML goes through the sanitizer, which drops scripts.
    assert!(!html.contains("alert(1)"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(html.contains("second line"));
    assert!(html.contains("By <a href=\"/profile/jake\">jake</a>"), "{html}");

    let missing = app
        .client
        .get(app.url("/articles/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("Not found"));
}
}

api_test! {
async fn home_pages_through_older_articles() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    for i in 0..25 {
        app.create_article(&jake, &format!("post {i}"), &[]).await;
    }
    let first = app.text("/").await;
    assert!(
        first.contains("post 24") && !first.contains("post 4<"),
        "newest 20 first"
    );
    assert!(first.contains("href=\"/?page=2\""));
    let second = app.text("/?page=2").await;
    assert!(second.contains("post 0<") && second.contains("href=\"/?page=1\""));
    let junk = app.client.get(app.url("/?page=abc")).send().await.unwrap();
    assert_eq!(junk.status(), StatusCode::OK);
}
}

api_test! {
async fn a_malformed_page_query_gets_the_api_error_shape() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(app.url("/?page=null&page=null"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert!(body["errors"].is_object(), "{body}");
}
}
