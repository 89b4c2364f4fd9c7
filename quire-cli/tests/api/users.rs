//! Register, login, current user, update user.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, assert_error};

api_test! {
async fn register_answers_201_with_the_user() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "jake", "email": "Jake@Jake.jake", "password": "jakejake"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let user = &body["user"];
    assert_eq!(user["username"], "jake");
    assert_eq!(user["email"], "jake@jake.jake");
    assert!(user["bio"].is_null() && user.get("bio").is_some());
    assert!(user["image"].is_null() && user.get("image").is_some());
    assert_eq!(user["token"].as_str().unwrap().split('.').count(), 3);
    assert!(user.get("password").is_none());
}
}

api_test! {
async fn register_rejects_each_bad_field_with_422() {
    let app = TestApp::start().await;
    let (status, body) = app.post("/api/users", None, json!({"user": {}})).await;
    for field in ["username", "email", "password"] {
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    let cases = [
        (
            json!({"username": "", "email": "a@b.co", "password": "longenough"}),
            "username",
        ),
        (
            json!({"username": "has space", "email": "a@b.co", "password": "longenough"}),
            "username",
        ),
        (
            json!({"username": "ok", "email": "not-an-email", "password": "longenough"}),
            "email",
        ),
        (
            json!({"username": "ok", "email": "a@b.co", "password": "short"}),
            "password",
        ),
    ];
    for (user, field) in cases {
        let (status, body) = app.post("/api/users", None, json!({ "user": user })).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, field);
    }
}
}

api_test! {
async fn register_rejects_taken_username_and_email_ignoring_case() {
    let app = TestApp::start().await;
    app.register("jake").await;
    let (status, body) = app
        .post(
            "/api/users",
            None,
            json!({"user": {"username": "JAKE", "email": "JAKE@example.com", "password": "12345678"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "username");
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "email");
    assert_eq!(body["errors"]["email"][0], "has already been taken");
}
}

api_test! {
async fn login_succeeds_with_the_right_password_only() {
    let app = TestApp::start().await;
    app.register("jake").await;
    let (status, body) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "JAKE@example.com", "password": "password-jake"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["username"], "jake");
    let token = body["user"]["token"].as_str().unwrap();
    let (status, _) = app.get("/api/user", Some(token)).await;
    assert_eq!(status, StatusCode::OK);

    for (email, password) in [
        ("jake@example.com", "wrong-password"),
        ("nobody@example.com", "password-jake"),
    ] {
        let (status, body) = app
            .post(
                "/api/users/login",
                None,
                json!({"user": {"email": email, "password": password}}),
            )
            .await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "email or password");
    }
    let (status, body) = app
        .post("/api/users/login", None, json!({"user": {}}))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "email");
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "password");
}
}

api_test! {
async fn current_user_needs_a_valid_token() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;

    let (status, body) = app.get("/api/user", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["username"], "jake");
    assert_eq!(body["user"]["token"], token.as_str());

    let bearer = app
        .client
        .get(app.url("/api/user"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    let missing = app.client.get(app.url("/api/user")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Token");
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body, json!({"errors": {"token": ["is missing"]}}));

    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [tampered.as_str(), "garbage", "a.b.c"] {
        let (status, body) = app.get("/api/user", Some(bad)).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    }
    let basic = app
        .client
        .get(app.url("/api/user"))
        .header("Authorization", "Basic amFrZTpqYWtl")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}
}

api_test! {
async fn update_user_changes_only_given_fields() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"bio": "I like to skateboard", "image": "https://i.test/jake.png"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["bio"], "I like to skateboard");
    assert_eq!(body["user"]["image"], "https://i.test/jake.png");
    assert_eq!(body["user"]["username"], "jake");
    assert_eq!(body["user"]["token"], token.as_str());

    // Own email is not "taken"; null clears the bio.
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"email": "jake@example.com", "bio": null}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["user"]["bio"].is_null());
    assert_eq!(body["user"]["image"], "https://i.test/jake.png");

    // The profile shows the change.
    let (_, profile) = app.get("/api/profiles/jake", None).await;
    assert_eq!(profile["profile"]["image"], "https://i.test/jake.png");
}
}

api_test! {
async fn update_user_rejects_taken_and_invalid_values() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    app.register("anna").await;
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"email": "anna@example.com"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "email");
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"username": "Anna"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "username");
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"image": "javascript:alert(1)"}}),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "image");
    let (status, body) = app
        .put("/api/user", Some(&token), json!({"user": {}}))
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "user");
    let (status, body) = app
        .put("/api/user", None, json!({"user": {"bio": "x"}}))
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    // Nothing changed.
    let (_, body) = app.get("/api/user", Some(&token)).await;
    assert_eq!(body["user"]["email"], "jake@example.com");
}
}

api_test! {
async fn changed_password_and_username_take_effect() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let (status, _) = app
        .put(
            "/api/user",
            Some(&token),
            json!({"user": {"password": "a-new-password", "username": "jacob"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let login = |password: &'static str| {
        app.post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jake@example.com", "password": password}}),
        )
    };
    assert_eq!(login("password-jake").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = login("a-new-password").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["username"], "jacob");
    assert_eq!(
        app.get("/api/profiles/jake", None).await.0,
        StatusCode::NOT_FOUND
    );
}
}
