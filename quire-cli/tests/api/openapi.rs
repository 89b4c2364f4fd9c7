//! `GET /api/openapi.json`: the document generated from the router covers every RealWorld
//! operation of the spec with the spec's required fields, and every route quire serves.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

/// The RealWorld spec quire follows (a copy of `../shared/realworld/openapi.yml`, kept in
/// the repository so the test runs wherever it is cloned).
const SPEC: &str = include_str!("realworld-openapi.yml");

/// `(METHOD, path)` of every operation in the RealWorld spec, paths under `/api`. The spec is
/// YAML; its `paths:` section is regular enough to read line by line (two-space path keys,
/// four-space method keys), which spares a YAML parser.
fn spec_operations() -> BTreeSet<(String, String)> {
    let spec = SPEC;
    let mut operations = BTreeSet::new();
    let mut in_paths = false;
    let mut path = String::new();
    for line in spec.lines() {
        if !line.starts_with(' ') {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && key.starts_with('/')
        {
            path = format!("/api{key}");
        } else if let Some(method) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && ["get", "post", "put", "delete"].contains(&method)
        {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

fn document_operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

api_test! {
async fn the_document_covers_the_spec_and_everything_served() {
    let app = TestApp::start().await;
    let (status, document) = app.get("/api/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let served = document_operations(&document);

    let spec = spec_operations();
    assert_eq!(spec.len(), 19, "the spec's operations were read: {spec:?}");
    let missing: Vec<_> = spec.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "spec operations not documented: {missing:?}"
    );

    // quire's own routes are documented too.
    for (method, path) in [
        ("GET", "/api/profiles/{username}/dashboard"),
        ("POST", "/api/media"),
        ("DELETE", "/api/media/{id}"),
        ("GET", "/media/{id}"),
        ("GET", "/api/live"),
        ("GET", "/api/live/sse"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
        ("GET", "/"),
        ("GET", "/articles/{slug}"),
    ] {
        assert!(
            served.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not documented"
        );
    }

    // Every documented operation is really served: none answers 404 "route not found" or 405.
    for (method, path) in &served {
        let url = app.url(&path.replace('{', "x").replace('}', ""));
        let request = app
            .client
            .request(method.parse().unwrap(), url)
            .header("Content-Type", "application/json")
            .body("{}");
        let response = request.send().await.unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            // The router's fallback answers {"errors":{"route":...}}; a handler's own 404
            // (an unknown slug, say) names something else, or is an HTML page.
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                body["errors"]["route"].is_null(),
                "{method} {path} is documented but not routed"
            );
        }
    }
}
}

api_test! {
async fn request_and_response_shapes_follow_the_spec() {
    let app = TestApp::start().await;
    let (_, document) = app.get("/api/openapi.json", None).await;
    let schemas = &document["components"]["schemas"];
    // A schema must exist and be an object schema; only then does a missing `required` list
    // mean "no required fields" (a vanished schema must fail, not pass as empty).
    let required = |name: &str| -> BTreeSet<String> {
        let schema = &schemas[name];
        assert_eq!(schema["type"], "object", "schema {name} is documented");
        assert!(
            schema["properties"]
                .as_object()
                .is_some_and(|p| !p.is_empty()),
            "schema {name} lists its properties"
        );
        match &schema["required"] {
            Value::Null => BTreeSet::new(),
            list => list
                .as_array()
                .unwrap_or_else(|| panic!("{name}.required is a list"))
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
        }
    };
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<BTreeSet<_>>()
    };
    // The spec's required properties, schema by schema.
    assert_eq!(
        required("NewUserInput"),
        set(&["email", "password", "username"])
    );
    assert_eq!(required("LoginInput"), set(&["email", "password"]));
    assert_eq!(required("UpdateUserInput"), set(&[]));
    assert_eq!(
        required("NewArticleInput"),
        set(&["body", "description", "title"])
    );
    assert_eq!(required("UpdateArticleInput"), set(&[]));
    assert_eq!(required("NewCommentInput"), set(&["body"]));
    assert_eq!(
        required("UserView"),
        set(&["bio", "email", "image", "token", "username"])
    );
    assert_eq!(
        required("ProfileView"),
        set(&["bio", "following", "image", "username"])
    );
    assert_eq!(
        required("ArticleView"),
        set(&[
            "author",
            "createdAt",
            "description",
            "favorited",
            "favoritesCount",
            "slug",
            "tagList",
            "title",
            "updatedAt"
        ])
    );
    assert_eq!(
        required("CommentView"),
        set(&["author", "body", "createdAt", "id", "updatedAt"])
    );
    // Errors have one shape, documented once.
    let login = &document["paths"]["/api/users/login"]["post"]["responses"];
    assert_eq!(
        login["422"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert!(
        document["components"]["securitySchemes"]["Token"].is_object(),
        "the Token scheme is declared"
    );
}
}
