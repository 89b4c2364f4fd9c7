//! Comments: list, add, delete.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_error, assert_timestamp};

api_test! {
async fn add_list_and_delete_comments() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.create_article(&jake, "talked about", &[]).await;
    let path = "/api/articles/talked-about/comments";

    let (status, body) = app.get(path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"comments": []}));

    let (status, body) = app
        .post(path, Some(&anna), json!({"comment": {"body": "first!"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = body["comment"].clone();
    assert!(first["id"].is_i64());
    assert_eq!(first["body"], "first!");
    assert_eq!(
        first["author"],
        json!({"username": "anna", "bio": null, "image": null, "following": false})
    );
    assert_timestamp(&first["createdAt"]);
    assert_timestamp(&first["updatedAt"]);
    let (_, body) = app
        .post(path, Some(&jake), json!({"comment": {"body": "second"}}))
        .await;
    let second = body["comment"].clone();

    let (_, body) = app.get(path, Some(&jake)).await;
    let comments = body["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0]["id"], second["id"], "newest first");
    assert_eq!(comments[1]["id"], first["id"]);

    // Author flags follow the viewer.
    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    let (_, body) = app.get(path, Some(&jake)).await;
    assert_eq!(body["comments"][1]["author"]["following"], true);

    let first_path = format!("{path}/{}", first["id"]);
    let (status, body) = app.delete(&first_path, Some(&jake)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "comment");
    let (status, body) = app.delete(&first_path, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    let (status, body) = app.delete(&first_path, Some(&anna)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(body.is_null());
    let (_, body) = app.get(path, None).await;
    assert_eq!(body["comments"].as_array().unwrap().len(), 1);
    let (status, body) = app.delete(&first_path, Some(&anna)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "comment");
}
}

api_test! {
async fn comment_errors() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "one", &[]).await;
    app.create_article(&jake, "two", &[]).await;
    let (_, body) = app
        .post(
            "/api/articles/one/comments",
            Some(&jake),
            json!({"comment": {"body": "on one"}}),
        )
        .await;
    let id = body["comment"]["id"].as_i64().unwrap();

    let (status, body) = app.get("/api/articles/none/comments", None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
    let (status, body) = app
        .post(
            "/api/articles/none/comments",
            Some(&jake),
            json!({"comment": {"body": "x"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
    for comment in [json!({}), json!({"body": "   "})] {
        let (status, body) = app
            .post(
                "/api/articles/one/comments",
                Some(&jake),
                json!({ "comment": comment }),
            )
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "body");
    }
    let (status, body) = app
        .post(
            "/api/articles/one/comments",
            None,
            json!({"comment": {"body": "x"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    // A comment is addressed through its own article only.
    let (status, body) = app
        .delete(&format!("/api/articles/two/comments/{id}"), Some(&jake))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "comment");
    let (status, body) = app
        .delete(&format!("/api/articles/none/comments/{id}"), Some(&jake))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "article");
    for bad in ["abc", "99999", "-1", "1.5"] {
        let (status, body) = app
            .delete(&format!("/api/articles/one/comments/{bad}"), Some(&jake))
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "comment");
    }
    assert_eq!(
        app.get("/api/articles/one/comments", None).await.1["comments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
}
