//! The WebSocket handshake of `/api/live` (and of the Autobahn echo peer), made here instead
//! of by axum's `WebSocketUpgrade`, because an idle connection's memory is quire's to keep
//! small: axum spawns a task of its own whose state keeps the upgrade's settings and the
//! callback beside the session, and it leaves the socket in hyper's boxed `Upgraded`. Here the
//! caller spawns the session's task itself, and a plain connection's socket comes back as a
//! bare `TcpStream` ([`quire_serve::into_plain_socket`]) that the WebSocket holds inline.
//!
//! The request checks are RFC 6455's (section 4.2.1), the ones axum makes; the protocol
//! itself stays tungstenite's.

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::ApiError;

/// A request that asked for a WebSocket and may have one.
pub struct Upgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// An open WebSocket: over the bare TCP socket on a plain connection, over hyper's upgraded
/// I/O on a TLS one.
pub enum Socket {
    Plain(WebSocketStream<TcpStream>),
    Tunneled(WebSocketStream<TokioIo<Upgraded>>),
}

impl Upgrade {
    /// Checks that the request is a WebSocket upgrade (GET over HTTP/1.1 with `Connection:
    /// upgrade`, `Upgrade: websocket`, a key and version 13) and takes hold of the connection.
    pub fn from_parts(parts: &mut Parts) -> Result<Self, ApiError> {
        let refuse = |message: &str| {
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "upgrade",
                format!("must be a WebSocket upgrade request: {message}"),
            ))
        };
        if parts.version != Version::HTTP_11 {
            return refuse("WebSockets are opened over HTTP/1.1");
        }
        if parts.method != Method::GET {
            return refuse("the method must be GET");
        }
        if !lists_token(&parts.headers, header::CONNECTION, "upgrade") {
            return refuse("Connection must include upgrade");
        }
        if !lists_token(&parts.headers, header::UPGRADE, "websocket") {
            return refuse("Upgrade must be websocket");
        }
        if !is(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return refuse("Sec-WebSocket-Version must be 13");
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
            return refuse("Sec-WebSocket-Key is missing");
        };
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .expect("base64 is a valid header value");
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return refuse("this connection cannot be upgraded");
        };
        Ok(Self { accept, on_upgrade })
    }

    /// The `101 Switching Protocols` answer that completes the handshake.
    pub fn response(&self) -> Response {
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (header::SEC_WEBSOCKET_ACCEPT, self.accept.clone()),
            ],
        )
            .into_response()
    }

    /// Waits until hyper has sent the 101 and handed the connection over, and opens the
    /// WebSocket on it; `None` if the connection ended first.
    pub async fn open(self, config: WebSocketConfig) -> Option<Socket> {
        let upgraded = self.on_upgrade.await.ok()?;
        Some(match quire_serve::into_plain_socket(upgraded) {
            // Not `from_partially_read` with nothing: its input buffer starts larger, and the
            // live memory test (tests/api/live_memory.rs) saw 7 KB per idle connection.
            Ok((socket, read)) if read.is_empty() => Socket::Plain(
                WebSocketStream::from_raw_socket(socket, Role::Server, Some(config)).await,
            ),
            Ok((socket, read)) => Socket::Plain(
                WebSocketStream::from_partially_read(
                    socket,
                    read.to_vec(),
                    Role::Server,
                    Some(config),
                )
                .await,
            ),
            Err(upgraded) => Socket::Tunneled(
                WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await,
            ),
        })
    }
}

/// quire's WebSocket settings: a small read buffer (clients send little; most connections are
/// idle, and tungstenite allocates and zero-fills the whole buffer up front: its default
/// 128 KiB would dominate their memory; 64 bytes take a typical subscribe message in one or two
/// reads and a 4 KiB message, the largest accepted, in 64), no write buffering (each frame goes
/// straight to the socket), and a message size limit. The Autobahn echo peer
/// (`examples/ws_echo.rs`) uses the same settings.
pub fn settings(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// Whether a header's comma-separated values include `token` (any case).
fn lists_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&byte| byte == b',')
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether a header is exactly `value` (any case).
fn is(headers: &HeaderMap, name: HeaderName, value: &str) -> bool {
    headers
        .get(name)
        .is_some_and(|found| found.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::get("/api/live");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    const GOOD: [(&str, &str); 4] = [
        ("connection", "keep-alive, Upgrade"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn refusal(headers: &[(&str, &str)]) -> String {
        match Upgrade::from_parts(&mut parts(headers)) {
            Ok(_) => panic!("accepted {headers:?}"),
            Err(error) => format!("{error:?}"),
        }
    }

    /// Every missing piece is named; a request with all of them gets as far as the
    /// connection, which a request built in a test does not have.
    #[test]
    fn each_part_of_the_handshake_is_checked() {
        for (missing, (name, _)) in GOOD.iter().enumerate() {
            let headers: Vec<_> = GOOD
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != missing)
                .map(|(_, header)| *header)
                .collect();
            let error = refusal(&headers);
            assert!(
                error.to_ascii_lowercase().contains(name),
                "without {name}: {error}"
            );
        }
        assert!(refusal(&GOOD).contains("cannot be upgraded"));
        let mut wrong_version = GOOD;
        wrong_version[2].1 = "8";
        assert!(refusal(&wrong_version).contains("Version must be 13"));
    }
}
