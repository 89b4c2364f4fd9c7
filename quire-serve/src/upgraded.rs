//! The plain socket under a connection that hyper upgraded (a WebSocket, say).
//!
//! hyper hands an upgraded connection over as `Upgraded`: its I/O in a box of its own, behind
//! dynamic dispatch, with any bytes read past the request kept in front. A WebSocket that sits
//! idle for hours pays for that box, so a plain connection can be taken back as the
//! `TcpStream` it started as. TLS connections stay `Upgraded`.

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use quire_zerocopy::ZeroCopyStream;
use tokio::net::TcpStream;

use crate::stall::StallGuard;

/// The I/O the engine serves plain connections over.
pub(crate) type PlainIo = TokioIo<StallGuard<ZeroCopyStream>>;

/// The TCP socket of an upgraded plain connection, with the bytes hyper had already read
/// from it (usually none: a WebSocket client waits for the 101 before it sends). The socket
/// leaves the write-stall guard behind: whoever takes it times its own writes. An upgraded
/// TLS connection comes back unchanged as the error.
pub fn into_plain_socket(upgraded: Upgraded) -> Result<(TcpStream, Bytes), Upgraded> {
    let parts = upgraded.downcast::<PlainIo>()?;
    let socket = parts.io.into_inner().into_inner().into_inner();
    Ok((socket, parts.read_buf))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http::{Request, Response, StatusCode, header};
    use http_body_util::Empty;
    use hyper::body::Incoming;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::*;
    use crate::{ServeConfig, serve};

    /// Serves one upgrade over a real socket; whether its connection came back bare.
    async fn upgraded_socket_is_plain(http2: bool) -> bool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            let on_upgrade = hyper::upgrade::on(&mut request);
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let _ = tx.send(into_plain_socket(upgraded).is_ok());
                }
            });
            async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::SWITCHING_PROTOCOLS)
                        .header(header::CONNECTION, "upgrade")
                        .header(header::UPGRADE, "test")
                        .body(Empty::<Bytes>::new())
                        .unwrap(),
                )
            }
        });
        let config = ServeConfig {
            http2,
            ..ServeConfig::default()
        };
        tokio::spawn(serve(listener, service, config, std::future::pending()));
        let mut client = TcpStream::connect(address).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        client.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
        rx.recv().await.unwrap()
    }

    /// With h2c on (the default) too: the engine must not serve plain HTTP/1 through a
    /// wrapper that hides the socket's type.
    #[tokio::test]
    async fn an_upgraded_plain_connection_gives_back_its_socket_with_or_without_h2c() {
        assert!(upgraded_socket_is_plain(false).await);
        assert!(upgraded_socket_is_plain(true).await);
    }
}
