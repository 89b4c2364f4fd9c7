//! Media: streamed upload and download, dedup, limits, ranges, caching headers, deletion.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, assert_error};

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

pub(crate) async fn upload(
    app: &TestApp,
    token: &str,
    content_type: &str,
    data: Vec<u8>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url("/api/media"))
        .header("Authorization", format!("Token {token}"))
        .header("Content-Type", content_type)
        .body(data)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

api_test! {
async fn upload_and_download_round_trip_with_hash() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let data = pattern(3 * 1024 * 1024 + 17);
    let (status, body) = upload(&app, &token, "image/png", data.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let media = &body["media"];
    let id = media["id"].as_str().unwrap();
    assert_eq!(media["size"], data.len());
    assert_eq!(media["contentType"], "image/png");
    assert_eq!(media["sha256"], sha256_hex(&data));
    assert_eq!(media["url"], format!("/media/{id}"));

    let response = app
        .client
        .get(app.url(&format!("/media/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], data.len().to_string().as_str());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["etag"],
        format!("\"{}\"", sha256_hex(&data)).as_str()
    );
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());

    // A profile can use the media URL as its image.
    let (status, body) = app
        .put(
            "/api/user",
            Some(&token),
            serde_json::json!({"user": {"image": format!("/media/{id}")}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["image"], format!("/media/{id}"));
}
}

api_test! {
async fn identical_uploads_are_stored_once() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let data = pattern(100_000);
    let (_, first) = upload(&app, &jake, "application/pdf", data.clone()).await;
    let (_, second) = upload(&app, &anna, "application/pdf", data.clone()).await;
    assert_ne!(first["media"]["id"], second["media"]["id"]);
    assert_eq!(first["media"]["sha256"], second["media"]["sha256"]);
    assert_eq!(app.test_dir().media_objects().await, (0, 1));

    // Deleting one keeps the bytes for the other; deleting both removes them.
    let first_id = first["media"]["id"].as_str().unwrap();
    let second_id = second["media"]["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/media/{first_id}"), Some(&jake))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let response = app
        .client
        .get(app.url(&format!("/media/{second_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
    assert_eq!(
        app.delete(&format!("/api/media/{second_id}"), Some(&anna))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.test_dir().media_objects().await, (0, 0));
}
}

api_test! {
async fn oversized_uploads_get_413_and_leave_nothing() {
    let app = TestApp::start_with(|s| s.max_media_bytes = 1024 * 1024).await;
    let token = app.register("jake").await;
    // Announced too large: refused before reading.
    let (status, body) = upload(&app, &token, "image/png", pattern(2 * 1024 * 1024)).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "body");
    // Streamed without a length: refused once the limit is crossed. The client sends 1.25 MiB
    // and then holds the body open without finishing it, so the only way this request ends is
    // the server answering 413 on its own (a client that had finished sending could instead see
    // its connection reset, and the answer would be a matter of timing).
    use futures_util::StreamExt;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(pattern(64 * 1024))).collect();
    let body = futures_util::stream::iter(chunks).chain(futures_util::stream::pending());
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        app.client
            .post(app.url("/api/media"))
            .header("Authorization", format!("Token {token}"))
            .header("Content-Type", "image/png")
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("the server answered while the upload was still open")
    .expect("an HTTP answer, not a transport error");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "body");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.test_dir().media_objects().await, (0, 0));
    // Just under the limit passes.
    let (status, _) = upload(&app, &token, "image/png", pattern(1024 * 1024)).await;
    assert_eq!(status, StatusCode::CREATED);
}
}

api_test! {
async fn a_client_that_disconnects_mid_upload_leaves_nothing() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/media HTTP/1.1\r\nHost: {address}\r\nAuthorization: Token {token}\r\n\
         Content-Type: image/png\r\nContent-Length: 10000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&pattern(3 * 1024 * 1024)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tmp, _) = app.test_dir().media_objects().await;
    assert_eq!(tmp, 1, "the upload is being staged");
    drop(stream);
    let mut staged = 1;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        staged = app.test_dir().media_objects().await.0;
        if staged == 0 {
            break;
        }
    }
    assert_eq!(staged, 0, "the staged upload was removed");
    assert_eq!(app.test_dir().media_objects().await.1, 0);
}
}

api_test! {
async fn multipart_form_uploads_take_the_file_part() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let data = pattern(200_000);
    let part = reqwest::multipart::Part::bytes(data.clone())
        .file_name("photo.jpg")
        .mime_str("image/jpeg")
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let response = app
        .client
        .post(app.url("/api/media"))
        .header("Authorization", format!("Token {token}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["media"]["contentType"], "image/jpeg");
    assert_eq!(body["media"]["sha256"], sha256_hex(&data));
}
}

api_test! {
async fn upload_needs_auth_and_an_accepted_type() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let (status, body) = upload(&app, &token, "text/html", b"<script>".to_vec()).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "contentType",
    );
    let (status, body) = upload(&app, &token, "image/svg+xml", b"<svg/>".to_vec()).await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "contentType",
    );
    let response = app
        .client
        .post(app.url("/api/media"))
        .header("Content-Type", "image/png")
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.test_dir().media_objects().await, (0, 0));
}
}

api_test! {
async fn ranges_conditionals_and_head() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let data = pattern(1000);
    let (_, body) = upload(&app, &token, "text/plain", data.clone()).await;
    let url = app.url(&format!("/media/{}", body["media"]["id"].as_str().unwrap()));
    let etag = format!("\"{}\"", sha256_hex(&data));

    let get_range = |range: &'static str| app.client.get(&url).header("Range", range).send();
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 10),
        ("bytes=990-", 990, 1000),
        ("bytes=-5", 995, 1000),
        ("bytes=500-5000", 500, 1000),
    ];
    for (range, start, end) in cases.iter().copied() {
        let response = get_range(range).await.unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {start}-{}/1000", end - 1).as_str()
        );
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            &data[start..end],
            "{range}"
        );
    }
    for range in ["bytes=1000-", "bytes=2000-3000", "bytes=-0"] {
        let response = get_range(range).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(response.headers()["content-range"], "bytes */1000");
        let body: Value = response.json().await.unwrap();
        assert!(body["errors"]["range"].is_array());
    }
    // Multiple ranges are served whole.
    let response = get_range("bytes=0-1,5-6").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), 1000);

    let response = app
        .client
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()["etag"], etag.as_str());
    assert!(response.bytes().await.unwrap().is_empty());
    let response = app
        .client
        .get(&url)
        .header("If-None-Match", "\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = app.client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert!(response.bytes().await.unwrap().is_empty());
}
}

api_test! {
async fn unknown_and_malicious_ids_are_404() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    for id in [
        "0123456789abcdef0123456789abcdef",
        "nothing",
        "..%2F..%2Fquire.db",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "....%2F%2F....%2F%2Fquire.db",
    ] {
        let (status, body) = app.get(&format!("/media/{id}"), None).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "media");
        let (status, body) = app.delete(&format!("/api/media/{id}"), Some(&token)).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "media");
    }
    // A raw traversal path never reaches the database file.
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"GET /media/../quire.db HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(!response.contains("SQLite"));
}
}

api_test! {
async fn only_the_uploader_deletes() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let (_, body) = upload(&app, &jake, "image/gif", pattern(10)).await;
    let id = body["media"]["id"].as_str().unwrap();
    let path = format!("/api/media/{id}");
    let (status, body) = app.delete(&path, Some(&anna)).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "media");
    let (status, body) = app.delete(&path, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "token");
    let app = &app;
    let status_of = |id: String| async move {
        app.client
            .get(app.url(&format!("/media/{id}")))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status_of(id.to_owned()).await, StatusCode::OK);
    assert_eq!(
        app.delete(&path, Some(&jake)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/media/{id}"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.test_dir().media_objects().await, (0, 0));
}
}

api_test! {
/// With a buffer budget of one part for all uploads (the bucket store), concurrent uploads of
/// several parts each take turns and all complete, byte for byte (none waits forever on a
/// share another holds).
async fn concurrent_uploads_share_a_small_buffer_budget() {
    let app = TestApp::start_with(|settings| settings.s3_upload_buffer_mib = 5).await;
    let token = app.register("jake").await;
    let uploads = (0..3u8).map(|i| {
        let mut data = pattern(17 * 1024 * 1024);
        data[0] = i;
        let (app, token) = (&app, &token);
        async move {
            let (status, body) = upload(app, token, "application/octet-stream", data.clone()).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            assert_eq!(body["media"]["sha256"], sha256_hex(&data));
            let id = body["media"]["id"].as_str().unwrap().to_owned();
            let back = app.client.get(app.url(&format!("/media/{id}"))).send().await.unwrap();
            assert!(back.bytes().await.unwrap() == data, "upload {i} differs");
        }
    });
    futures_util::future::join_all(uploads).await;
}
}

/// SQLite runs keep media in a directory, whose windows go out by sendfile(2) on plain
/// HTTP/1; PostgreSQL runs keep it in a bucket, which streams through memory.
#[tokio::test]
async fn plain_downloads_are_sent_from_the_file_byte_for_byte() {
    let app = TestApp::start().await;
    let token = app.register("jake").await;
    let data = pattern(5 * 1024 * 1024 + 333);
    let (status, body) = upload(&app, &token, "application/pdf", data.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["media"]["id"].as_str().unwrap().to_owned();
    let sent_from_files =
        || crate::support::metric(&app.client, &app.base, "http_sendfile_bytes_total");
    let before = sent_from_files().await;

    let whole = app
        .client
        .get(app.url(&format!("/media/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert!(whole.bytes().await.unwrap() == data);
    let after_whole = sent_from_files().await;
    assert!(
        after_whole - before >= data.len() as f64,
        "the body went by sendfile: {before} -> {after_whole}"
    );

    // A range starting mid-window and ending in another.
    let (start, end) = (300_001usize, 4_500_000usize);
    let part = app
        .client
        .get(app.url(&format!("/media/{id}")))
        .header("Range", format!("bytes={start}-{end}"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert!(part.bytes().await.unwrap() == data[start..=end]);
    assert!(sent_from_files().await - after_whole >= (end - start + 1) as f64);

    // Many at once, each intact.
    let downloads = (0..8).map(|_| {
        let (client, url) = (app.client.clone(), app.url(&format!("/media/{id}")));
        async move { client.get(url).send().await.unwrap().bytes().await.unwrap() }
    });
    for got in futures_util::future::join_all(downloads).await {
        assert!(got == data);
    }
}
