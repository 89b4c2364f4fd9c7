//! Live updates over WebSocket and SSE: each subscription kind gets exactly its events, auth,
//! ping/pong and dead peers, slow consumers, ceilings, shutdown, no leaked sockets.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::TestApp;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/api/live{query}", app.base.replace("http://", "ws://"))
}

async fn connect(app: &TestApp, query: &str, token: Option<&str>) -> Ws {
    let mut request = ws_url(app, query).into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("Authorization", format!("Token {token}").parse().unwrap());
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status(), 101);
    ws
}

/// The next JSON text message, skipping pings; panics after 5 s.
async fn next_json(ws: &mut Ws) -> Value {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await.expect("socket open").expect("no error") {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("a message within 5 s")
}

/// Asserts nothing but pings arrive for a short while.
async fn assert_quiet(ws: &mut Ws) {
    let waited = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await;
    assert!(waited.is_err(), "unexpected message: {waited:?}");
}

api_test! {
async fn each_subscription_kind_gets_exactly_its_events() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    let viewer = app.register("viewer").await;
    app.post("/api/profiles/anna/follow", Some(&viewer), json!({}))
        .await;

    let mut by_tag = connect(&app, "?tag=rust", None).await;
    let mut by_author = connect(&app, "?author=Jake", None).await;
    let mut feed = connect(&app, "?feed=true", Some(&viewer)).await;
    let mut everything = connect(&app, "", None).await;

    app.create_article(&anna, "anna on go", &["go"]).await;
    app.create_article(&jake, "jake on rust", &["rust"]).await;

    let event = next_json(&mut by_tag).await;
    assert_eq!(event["type"], "article.created");
    assert_eq!(event["slug"], "jake-on-rust");
    assert_eq!(event["article"]["tagList"], json!(["rust"]));
    assert_eq!(event["article"]["author"]["username"], "jake");
    assert!(event["id"].is_u64());
    assert_eq!(event["at"].as_str().unwrap().len(), 24);
    assert_quiet(&mut by_tag).await;

    assert_eq!(next_json(&mut by_author).await["slug"], "jake-on-rust");
    assert_quiet(&mut by_author).await;
    assert_eq!(next_json(&mut feed).await["slug"], "anna-on-go");
    assert_quiet(&mut feed).await;
    assert_eq!(next_json(&mut everything).await["slug"], "anna-on-go");
    assert_eq!(next_json(&mut everything).await["slug"], "jake-on-rust");

    // An article subscription sees its comments, updates, favorites and deletion.
    let mut by_article = connect(&app, "?article=jake-on-rust", None).await;
    let (_, comment) = app
        .post(
            "/api/articles/jake-on-rust/comments",
            Some(&anna),
            json!({"comment": {"body": "nice"}}),
        )
        .await;
    let event = next_json(&mut by_article).await;
    assert_eq!(event["type"], "comment.created");
    assert_eq!(event["comment"]["body"], "nice");
    assert_eq!(event["comment"]["id"], comment["comment"]["id"]);
    app.post(
        "/api/articles/jake-on-rust/favorite",
        Some(&anna),
        json!({}),
    )
    .await;
    let event = next_json(&mut by_article).await;
    assert_eq!(event["type"], "favorite.changed");
    assert_eq!(event["article"]["favoritesCount"], 1);
    let id = comment["comment"]["id"].as_i64().unwrap();
    app.delete(
        &format!("/api/articles/jake-on-rust/comments/{id}"),
        Some(&anna),
    )
    .await;
    let event = next_json(&mut by_article).await;
    assert_eq!(event["type"], "comment.deleted");
    assert_eq!(event["commentId"], id);
    app.put(
        "/api/articles/jake-on-rust",
        Some(&jake),
        json!({"article": {"body": "more"}}),
    )
    .await;
    assert_eq!(next_json(&mut by_article).await["type"], "article.updated");
    app.delete("/api/articles/jake-on-rust", Some(&jake)).await;
    assert_eq!(next_json(&mut by_article).await["type"], "article.deleted");
    // The tag subscriber saw the article events but not the comments.
    assert_eq!(next_json(&mut by_tag).await["type"], "favorite.changed");
    assert_eq!(next_json(&mut by_tag).await["type"], "article.updated");
    assert_eq!(next_json(&mut by_tag).await["type"], "article.deleted");
}
}

api_test! {
async fn subscriptions_change_by_message() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let mut ws = connect(&app, "?tag=nothing", None).await;
    ws.send(Message::text(r#"{"action":"subscribe","tag":["go"]}"#))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "ack", "action": "subscribe"})
    );
    app.create_article(&jake, "go", &["go"]).await;
    assert_eq!(next_json(&mut ws).await["slug"], "go");
    ws.send(Message::text(r#"{"action":"unsubscribe","tag":["go"]}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "ack");
    app.create_article(&jake, "go again", &["go"]).await;
    assert_quiet(&mut ws).await;

    ws.send(Message::text("not json")).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "error");
    ws.send(Message::text(r#"{"action":"dance"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "error");
    // The feed needs a signed-in user.
    ws.send(Message::text(r#"{"action":"subscribe","feed":true}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "error");
}
}

api_test! {
async fn a_first_message_sent_with_the_handshake_is_answered() {
    // A client may send its first frame in the same packet as the upgrade request; the bytes
    // hyper read past the request must reach the WebSocket.
    let app = TestApp::start().await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut raw = TcpStream::connect(&address).await.unwrap();
    let payload = br#"{"action":"subscribe","tag":["early"]}"#;
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut bytes = format!(
        "GET /api/live?tag=nothing HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    // One masked text frame (a client must mask), FIN set, length under 126.
    bytes.extend([0x81, 0x80 | payload.len() as u8]);
    bytes.extend(mask);
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    raw.write_all(&bytes).await.unwrap();

    let mut received = Vec::new();
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let mut chunk = [0u8; 512];
            let n = raw.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&chunk[..n]);
            let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let frame = &received[end + 4..];
            // An unmasked text frame whose length fits in 7 bits.
            if frame.len() >= 2 && frame.len() >= 2 + usize::from(frame[1]) {
                assert_eq!(frame[0], 0x81, "a final text frame");
                return (
                    String::from_utf8_lossy(&received[..end]).into_owned(),
                    serde_json::from_slice::<Value>(&frame[2..2 + usize::from(frame[1])]).unwrap(),
                );
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    assert!(answer.0.starts_with("HTTP/1.1 101"), "{}", answer.0);
    assert!(
        answer.0.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "RFC 6455's accept key for its sample key: {}",
        answer.0
    );
    assert_eq!(answer.1, json!({"type": "ack", "action": "subscribe"}));
}
}

api_test! {
async fn a_request_that_is_not_an_upgrade_gets_a_400() {
    let app = TestApp::start().await;
    let response = app
        .client
        .get(format!("{}/api/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    let message = body["errors"]["upgrade"][0].as_str().unwrap_or_default();
    assert!(message.contains("Connection must include upgrade"), "{body}");
}
}

api_test! {
async fn auth_by_header_or_query_and_bad_tokens_are_refused_before_upgrade() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    let anna = app.register("anna").await;
    app.post("/api/profiles/anna/follow", Some(&jake), json!({}))
        .await;
    let mut by_query = connect(&app, &format!("?feed=true&token={jake}"), None).await;
    app.create_article(&anna, "for the feed", &[]).await;
    assert_eq!(next_json(&mut by_query).await["slug"], "for-the-feed");

    for (query, header) in [
        ("?token=garbage".to_owned(), None),
        (String::new(), Some("Token garbage")),
        ("?feed=true".to_owned(), None),
    ] {
        let mut request = ws_url(&app, &query).into_client_request().unwrap();
        if let Some(header) = header {
            request
                .headers_mut()
                .insert("Authorization", header.parse().unwrap());
        }
        let error = tokio_tungstenite::connect_async(request).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("expected an HTTP refusal, got {error}")
        };
        assert_eq!(response.status(), 401, "{query} {header:?}");
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert!(body["errors"]["token"].is_array(), "{body}");
    }
}
}

api_test! {
async fn server_pings_and_closes_dead_peers() {
    let app = TestApp::start_with(|s| s.live_ping_interval = Duration::from_millis(100)).await;
    // A live client answers pings (tungstenite does, while it reads) and stays connected.
    let mut ws = connect(&app, "", None).await;
    let ping = tokio::time::timeout(Duration::from_secs(2), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(ping, Message::Ping(_)), "{ping:?}");
    // Client pings get pongs.
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Message::Pong(data) = ws.next().await.unwrap().unwrap() {
                return data;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong.as_ref(), b"hi");
    // Keep reading (and so answering pings) in the background.
    let (texts, mut received) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                let _ = texts.send(text.to_string());
            }
        }
    });

    // A peer that completes the handshake and then never answers is closed.
    let mut raw = raw_upgrade(&app).await;
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 1024];
        loop {
            match raw.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "dead peer still connected");
    // The live one is still connected and receiving.
    let jake = app.register("jake").await;
    app.create_article(&jake, "still here", &[]).await;
    let text = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(text.contains("still-here"), "{text}");
    reader.abort();
}
}

async fn raw_upgrade(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut raw = TcpStream::connect(&address).await.unwrap();
    let request = format!(
        "GET /api/live HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    raw.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    raw
}

api_test! {
async fn a_client_that_does_not_read_is_closed_with_1008() {
    let app = TestApp::start_with(|s| {
        s.live_send_timeout = Duration::from_millis(300);
        s.live_lag_limit = 16;
    })
    .await;
    let jake = app.register("jake").await;
    // A client with a tiny receive buffer that reads nothing for a while.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = app.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(address).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        ws_url(&app, "?article=busy"),
        MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    app.create_article(&jake, "busy", &[]).await;
    // 600 comments of 10,000 characters: more than the kernel buffers on both sides hold.
    let text = "c".repeat(10_000);
    for batch in 0..20 {
        let posts = (0..30).map(|_| {
            let (app, jake, text) = (&app, &jake, &text);
            async move {
                app.post(
                    "/api/articles/busy/comments",
                    Some(jake),
                    json!({"comment": {"body": text}}),
                )
                .await
            }
        });
        futures_util::future::join_all(posts).await;
        if batch == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut received = 0;
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(_)) => received += 1,
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(e) => panic!("connection broke without a close frame: {e}"),
            }
        }
        None
    })
    .await
    .expect("closed within 10 s");
    assert_eq!(close.expect("a close frame").code, CloseCode::Policy);
    assert!(received < 600, "a slow client got everything ({received})");
}
}

api_test! {
async fn connection_ceilings_answer_503() {
    let app = TestApp::start_with(|s| {
        s.live_max_connections = Some(3);
        s.live_max_per_ip = 2;
    })
    .await;
    let _a = connect(&app, "", None).await;
    let b = connect(&app, "", None).await;
    let refused = tokio_tungstenite::connect_async(ws_url(&app, ""))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = refused else {
        panic!("{refused}")
    };
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    // Existing connections are untouched; a freed place can be taken again.
    drop(b);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok((ws, _)) = tokio_tungstenite::connect_async(ws_url(&app, "")).await {
            again = Some(ws);
            break;
        }
    }
    assert!(again.is_some(), "the freed place was not reusable");
}
}

api_test! {
async fn shutdown_closes_live_sockets_with_1001() {
    let app = TestApp::start().await;
    let mut ws = connect(&app, "", None).await;
    let stopping = tokio::spawn(app.stop());
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed on shutdown");
    assert_eq!(close.unwrap().code, CloseCode::Away);
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .unwrap()
        .unwrap();
}
}

/// The kernel's states (`/proc/net/tcp`'s hex codes) of the IPv4 sockets whose local port is
/// `port`. Panics if the table cannot be read: a count of zero must mean "none", never "unknown".
fn socket_states_on(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)?
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            (local_port == Some(port)).then(|| fields.get(3).map(|s| s.to_string()))?
        })
        .collect()
}

/// Sockets on `port` in CLOSE_WAIT (`08`: the server never closed its side).
fn close_wait_on(port: u16) -> usize {
    let states = socket_states_on(port);
    // The listening socket (`0A`) is always there: finding it shows the table was parsed.
    assert!(
        states.iter().any(|s| s == "0A"),
        "listener on port {port} not found in /proc/net/tcp: {states:?}"
    );
    states.iter().filter(|s| *s == "08").count()
}

api_test! {
async fn clients_that_vanish_leave_no_sockets_behind() {
    let app = TestApp::start().await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    for _ in 0..20 {
        let ws = connect(&app, "", None).await;
        // Drop the TCP connection without a close handshake.
        drop(ws);
    }
    let mut raws = Vec::new();
    for _ in 0..20 {
        raws.push(raw_upgrade(&app).await);
    }
    drop(raws);
    let mut lingering = usize::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        lingering = close_wait_on(port);
        if lingering == 0 {
            break;
        }
    }
    assert_eq!(lingering, 0, "sockets left in CLOSE_WAIT");
}
}

api_test! {
async fn sse_streams_and_resumes_from_last_event_id() {
    let app = TestApp::start().await;
    let jake = app.register("jake").await;
    app.create_article(&jake, "before", &["x"]).await;
    app.create_article(&jake, "other", &["y"]).await;
    // Resuming from 0 replays the backlog, filtered by subscription.
    let response = app
        .client
        .get(app.url("/api/live/sse?tag=x"))
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut read_until = async |needle: &str| {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !text.contains(needle) {
                text.push_str(&String::from_utf8_lossy(
                    &body.next().await.unwrap().unwrap(),
                ));
            }
        })
        .await
        .expect("event arrived");
        text.clone()
    };
    let seen = read_until("\"slug\":\"before\"").await;
    assert!(
        seen.lines().any(|line| line == "id: 1" || line == "id:1"),
        "{seen}"
    );
    app.create_article(&jake, "after", &["x"]).await;
    let seen = read_until("\"slug\":\"after\"").await;
    assert!(!seen.contains("\"slug\":\"other\""), "{seen}");

    let (status, body) = app.get("/api/live/sse?token=bad", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}
}
