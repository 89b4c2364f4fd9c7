//! Profiles, follow and unfollow.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_error};

#[tokio::test]
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

#[tokio::test]
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
