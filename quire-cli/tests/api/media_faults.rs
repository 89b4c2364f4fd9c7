//! The media bucket going away: uploads answer 503 with a clear error, downloads fail fast,
//! readiness says so, nothing else waits on it, and everything works again when it is back.
//! The bucket is reached through a proxy the test cuts (the S3 server itself stays up).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{Backend, TestApp, TestDir, assert_error, test_settings};

/// A TCP proxy to `target` that refuses and cuts every connection while `down` is set.
async fn proxy(target: String, down: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if down.load(Ordering::SeqCst) {
                drop(client);
                continue;
            }
            let (target, down) = (target.clone(), down.clone());
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&target).await else {
                    return;
                };
                let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                let cut = async {
                    while !down.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    _ = copy => {}
                    () = cut => {}
                }
            });
        }
    });
    format!("http://{address}")
}

async fn upload(app: &TestApp, token: &str) -> (StatusCode, Value) {
    crate::media::upload(app, token, "image/png", crate::media::pattern(300_000)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bucket_gets_503s_fast_and_nothing_else_waits() {
    Backend::Postgres
        .run(async {
            let dir = TestDir::new().await;
            let mut settings = test_settings(&dir);
            let down = Arc::new(AtomicBool::new(false));
            let s3 = settings.s3_endpoint.clone().unwrap();
            let s3 = s3.trim_start_matches("http://").to_owned();
            settings.s3_endpoint = Some(proxy(s3, down.clone()).await);
            settings.s3_timeout = Duration::from_secs(2);
            let app = TestApp::start_in_with(dir, settings).await;
            let token = app.register("jake").await;
            let (status, body) = upload(&app, &token).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let id = body["media"]["id"].as_str().unwrap().to_owned();

            down.store(true, Ordering::SeqCst);
            let started = Instant::now();
            let (status, body) = upload(&app, &token).await;
            assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "media");
            let response = app
                .client
                .get(app.url(&format!("/media/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key("retry-after"));
            assert!(
                started.elapsed() < Duration::from_secs(12),
                "failed fast: {:?}",
                started.elapsed()
            );
            let ready = app
                .client
                .get(app.url("/health/ready"))
                .send()
                .await
                .unwrap();
            assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
            let ready: Value = ready.json().await.unwrap();
            assert_eq!(ready["reason"], "media storage unavailable");
            // Nothing else depends on the bucket.
            assert_eq!(app.get("/api/tags", None).await.0, StatusCode::OK);
            assert_eq!(app.get("/health/live", None).await.0, StatusCode::OK);

            down.store(false, Ordering::SeqCst);
            let (status, body) = upload(&app, &token).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let response = app
                .client
                .get(app.url(&format!("/media/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.bytes().await.unwrap().len(), 300_000);
            assert_eq!(app.get("/health/ready", None).await.0, StatusCode::OK);
            // The failed upload left nothing behind: one blob (both uploads are the same bytes).
            assert_eq!(app.test_dir().media_objects().await, (0, 1));
        })
        .await
}
