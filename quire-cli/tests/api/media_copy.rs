//! `quire media copy`: every blob moved between the filesystem and a bucket (the sqlite runs
//! copy their directory into a bucket, the postgres runs their bucket into a directory) while
//! quire serves; served from the new store, every media item reads back byte for byte; a
//! second run copies nothing; a blob damaged in the source stops the copy and is named.

use std::process::Output;

use reqwest::StatusCode;
use tokio::process::Command;

use crate::media::{pattern, upload};
use crate::support::{
    Backend, TestApp, TestDir, create_bucket, s3_endpoint, s3_flags, test_settings,
};

/// Runs `quire media copy` as a user would; its output.
async fn media_copy(from: &str, to: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(["media", "copy", "--from", from, "--to", to])
        .args(["--log-format", "json"])
        .args(s3_flags())
        .output()
        .await
        .unwrap()
}

/// The summary line the copy printed (log lines aside).
fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.starts_with("copied "))
        .unwrap_or_default()
        .to_owned()
}

/// A store of the other kind than the test's own: a bucket (under a prefix) for the
/// filesystem runs, a directory for the bucket runs.
async fn other_store(dir: &TestDir, name: &str) -> String {
    match Backend::current() {
        Backend::Sqlite => format!("s3://{}/{name}", create_bucket().await),
        Backend::Postgres => dir.path().join(name).display().to_string(),
    }
}

/// Restarts quire on `dir`'s database with its media in `store`.
async fn serve_from(dir: TestDir, store: &str) -> TestApp {
    let mut settings = test_settings(&dir);
    if store.starts_with("s3://") {
        settings.media_store = Some(store.to_owned());
        settings.s3_endpoint = Some(s3_endpoint());
        settings.s3_region = Some("us-east-1".to_owned());
        settings.s3_access_key_id = Some("test".to_owned());
        settings.s3_secret_access_key = Some("test".to_owned());
    } else {
        settings.media_store = None;
        settings.media_dir = Some(store.into());
    }
    TestApp::start_in_with(dir, settings).await
}

/// Overwrites the blob `sha256` in `store` with other bytes, behind quire's back.
async fn damage(store: &str, sha256: &str) {
    match store.strip_prefix("s3://") {
        Some(bucket) => {
            use object_store::{ObjectStoreExt as _, PutPayload};
            let (bucket, prefix) = bucket.split_once('/').unwrap_or((bucket, ""));
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let s3 = object_store::aws::AmazonS3Builder::new()
                .with_endpoint(s3_endpoint())
                .with_allow_http(true)
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("test")
                .with_secret_access_key("test")
                .build()
                .unwrap();
            let key = object_store::path::Path::from(format!("{prefix}blobs/{sha256}"));
            s3.put(&key, PutPayload::from_static(b"not what was uploaded"))
                .await
                .unwrap();
        }
        None => {
            let path = std::path::Path::new(store)
                .join("blobs")
                .join(&sha256[..2])
                .join(sha256);
            std::fs::write(path, b"not what was uploaded").unwrap();
        }
    }
}

api_test! {
async fn media_moves_between_the_filesystem_and_a_bucket() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    // 12 MiB spans two parts of a multipart upload; the two small items share one blob.
    let files = [
        ("image/png", pattern((12 << 20) + 5)),
        ("text/plain", b"hello, bucket".to_vec()),
        ("application/pdf", b"hello, bucket".to_vec()),
    ];
    let mut uploaded = Vec::new();
    for (content_type, data) in &files {
        let (status, body) = upload(&app, &token, content_type, data.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let media = &body["media"];
        uploaded.push((
            media["id"].as_str().unwrap().to_owned(),
            media["sha256"].as_str().unwrap().to_owned(),
            *content_type,
            data.clone(),
        ));
    }
    let source = app.test_dir().media_store();
    let target = other_store(app.test_dir(), "moved").await;

    // While quire serves on the source.
    let copied = media_copy(&source, &target).await;
    assert!(copied.status.success(), "{copied:?}");
    assert!(stdout(&copied).starts_with("copied 2 blobs (12.6 MB)"), "{}", stdout(&copied));
    let again = media_copy(&source, &target).await;
    assert!(again.status.success(), "{again:?}");
    assert!(stdout(&again).starts_with("copied 0 blobs (0.0 MB)"), "{}", stdout(&again));
    assert!(stdout(&again).contains("2 blobs (12.6 MB) were already there"), "{}", stdout(&again));

    let app = serve_from(app.stop().await, &target).await;
    for (id, sha256, content_type, data) in &uploaded {
        let response = app.client.get(app.url(&format!("/media/{id}"))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{id}");
        assert_eq!(response.headers()["content-type"], *content_type);
        assert_eq!(response.headers()["etag"], format!("\"{sha256}\"").as_str());
        assert!(response.bytes().await.unwrap() == data.as_slice(), "{id} differs after the move");
    }
    let (big, ..) = &uploaded[0];
    let ranged = app
        .client
        .get(app.url(&format!("/media/{big}")))
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert!(ranged.bytes().await.unwrap() == files[0].1[1000..2000]);

    // A blob whose bytes no longer match its name stops the copy, which names it.
    damage(&source, &uploaded[1].1).await;
    let elsewhere = other_store(app.test_dir(), "elsewhere").await;
    let failed = media_copy(&source, &elsewhere).await;
    assert!(!failed.status.success(), "{failed:?}");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains(&format!("blob {} is damaged in the source", uploaded[1].1)),
        "{stderr}"
    );
}
}

#[tokio::test]
async fn a_directory_that_holds_no_media_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here").display().to_string();
    let to = dir.path().join("to").display().to_string();
    let output = media_copy(&missing, &to).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a media directory"), "{stderr}");
}
