//! HTTPS in the process: ALPN picks HTTP/2 or HTTP/1.1, answers carry HSTS, and SIGHUP
//! swaps the certificate for new connections while open ones keep working; a broken pair on
//! reload is refused and the old one kept.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Certificate, StatusCode, Version};
use tokio::process::Command;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{QuireProcess, spawn_quire};

/// A self-signed certificate for `localhost`: (certificate PEM, key PEM, certificate DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (
        certified.cert.pem(),
        certified.signing_key.serialize_pem(),
        certified.cert.der().to_vec(),
    )
}

fn client(quire: &QuireProcess, root_pem: &str, http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(Certificate::from_pem(root_pem.as_bytes()).unwrap())
        .resolve("localhost", quire.address.parse().unwrap())
        .tls_info(true);
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

fn url(quire: &QuireProcess, path: &str) -> String {
    let port = quire.address.rsplit(':').next().unwrap();
    format!("https://localhost:{port}{path}")
}

/// The DER of the certificate the server presented on a new connection.
async fn presented(quire: &QuireProcess, root_pem: &str) -> Option<Vec<u8>> {
    let response = client(quire, root_pem, false)
        .get(url(quire, "/health/live"))
        .send()
        .await
        .ok()?;
    let info = response.extensions().get::<reqwest::tls::TlsInfo>()?;
    info.peer_certificate().map(<[u8]>::to_vec)
}

async fn hangup(quire: &QuireProcess) {
    let sent = Command::new("kill")
        .args(["-HUP", &quire.child.id().unwrap().to_string()])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// quire serving HTTPS with the pair [`write_pair`] put in `dir`.
async fn spawn_over_tls(dir: &crate::support::TestDir) -> QuireProcess {
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    spawn_quire(
        dir,
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    )
    .await
}

api_test! {
async fn serves_https_with_alpn_hsts_and_reloads_the_certificate_on_sighup() {
    let dir = crate::support::TestDir::new().await;
    let (cert1, key1, der1) = self_signed();
    write_pair(dir.path(), &cert1, &key1);
    let key_path = dir.path().join("key.pem");
    let quire = spawn_over_tls(&dir).await;

    let h2 = client(&quire, &cert1, false);
    let response = h2.get(url(&quire, "/api/tags")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2, "ALPN chose h2");
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let h1 = client(&quire, &cert1, true);
    let response = h1.get(url(&quire, "/api/tags")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(presented(&quire, &cert1).await, Some(der1.clone()));

    // A new pair, then SIGHUP: new connections get it, open ones keep working.
    let (cert2, key2, der2) = self_signed();
    write_pair(dir.path(), &cert2, &key2);
    hangup(&quire).await;
    let mut reloaded = false;
    for _ in 0..100 {
        if presented(&quire, &cert2).await == Some(der2.clone()) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "new connections see the new certificate");
    for open in [&h2, &h1] {
        let response = open.get(url(&quire, "/api/tags")).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "open connections survive the reload"
        );
    }

    // A broken pair is refused; the server keeps the last good one.
    std::fs::write(&key_path, "not a key").unwrap();
    hangup(&quire).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(presented(&quire, &cert2).await, Some(der2));
}
}

api_test! {
async fn live_websockets_work_over_tls() {
    // Over TLS the upgraded connection stays hyper's; the session must read and write it.
    let dir = crate::support::TestDir::new().await;
    let (cert, key, der) = self_signed();
    write_pair(dir.path(), &cert, &key);
    let quire = spawn_over_tls(&dir).await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(der)).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&quire.address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let live = url(&quire, "/api/live?tag=nothing").replace("https://", "wss://");
    let (mut ws, response) = tokio_tungstenite::client_async(live, tls).await.unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text(r#"{"action":"subscribe","tag":["secure"]}"#))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await.expect("open").expect("no error") {
                Message::Text(text) => return text,
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"type": "ack", "action": "subscribe"})
    );
}
}

api_test! {
async fn a_bad_certificate_stops_the_start_with_a_clear_error() {
    let dir = crate::support::TestDir::new().await;
    std::fs::write(dir.path().join("cert.pem"), "garbage").unwrap();
    std::fs::write(dir.path().join("key.pem"), "garbage").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(dir.database_args())
        .args(["--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TLS certificate"), "{stderr}");
}
}
