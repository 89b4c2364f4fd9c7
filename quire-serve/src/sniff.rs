//! Telling an h2c connection (HTTP/2 with prior knowledge) from an HTTP/1 one by peeking at
//! its first bytes, without reading them.
//!
//! hyper-util's auto builder reads those bytes and keeps them in a wrapper of its own around
//! the socket, for the connection's whole life. That wrapper is a private type, so a
//! connection that leaves HTTP (a WebSocket) could not be taken back as the engine's own
//! socket ([`crate::into_plain_socket`]), and every HTTP/1 read and write went through it.
//! Peeking leaves the bytes in the kernel for whichever protocol reads them.

use std::time::Duration;

use tokio::net::TcpStream;

/// The first bytes of every HTTP/2 connection (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait before peeking again when the client has sent part of the preface.
const RETRY: Duration = Duration::from_millis(1);

/// Whether the client opened with the HTTP/2 preface: `Some(true)` once all of it is there,
/// `Some(false)` at the first byte that differs (or if the client closed); `None` if it sent
/// neither within `limit`, or the socket failed.
pub(crate) async fn opens_with_h2_preface(stream: &TcpStream, limit: Duration) -> Option<bool> {
    let sniff = async {
        let mut seen = [0u8; PREFACE.len()];
        loop {
            let n = stream.peek(&mut seen).await.ok()?;
            if n == 0 || seen[..n] != PREFACE[..n] {
                return Some(false);
            }
            if n == PREFACE.len() {
                return Some(true);
            }
            // Only part of the preface so far: peeking again at once would spin.
            tokio::time::sleep(RETRY).await;
        }
    };
    tokio::time::timeout(limit, sniff).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A connected pair: (the client's end, the server's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn http1_requests_are_told_at_their_first_differing_byte() {
        for opening in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST /api/users",
            b"PUT /x",
            b"PRIX",
        ] {
            let (mut client, server) = pair().await;
            client.write_all(opening).await.unwrap();
            assert_eq!(
                opens_with_h2_preface(&server, LIMIT).await,
                Some(false),
                "{opening:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_preface_sent_in_pieces_is_recognized_and_left_unread() {
        let (mut client, server) = pair().await;
        client.write_all(&PREFACE[..5]).await.unwrap();
        let sniff = tokio::spawn(async move {
            let verdict = opens_with_h2_preface(&server, LIMIT).await;
            (verdict, server)
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        client.write_all(&PREFACE[5..]).await.unwrap();
        let (verdict, server) = sniff.await.unwrap();
        assert_eq!(verdict, Some(true));
        let mut still_there = [0u8; PREFACE.len()];
        assert_eq!(server.peek(&mut still_there).await.unwrap(), PREFACE.len());
        assert_eq!(&still_there, PREFACE);
    }

    #[tokio::test]
    async fn silence_is_given_up_on_and_a_close_is_http1s_to_see() {
        let (client, server) = pair().await;
        assert_eq!(
            opens_with_h2_preface(&server, Duration::from_millis(50)).await,
            None
        );
        drop(client);
        assert_eq!(opens_with_h2_preface(&server, LIMIT).await, Some(false));
    }
}
