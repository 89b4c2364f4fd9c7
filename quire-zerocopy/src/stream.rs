//! [`ZeroCopyStream`]: a TCP stream whose writes send [`FileWindow`](crate::FileWindow)
//! bytes with `sendfile(2)` and copy everything else as usual.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::window::{self, InFile};

/// A plain TCP connection that sends mapped file windows from the file.
pub struct ZeroCopyStream {
    stream: TcpStream,
    /// The last `sendfile` filled the socket's buffer (it sent less than asked).
    filled: bool,
    /// Bytes this connection sent with `sendfile(2)`, for the tests only: every plain
    /// connection (idle WebSockets too) carries this struct.
    #[cfg(test)]
    sent_from_files: u64,
}

impl ZeroCopyStream {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            filled: false,
            #[cfg(test)]
            sent_from_files: 0,
        }
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket itself, for a connection that leaves HTTP (an upgraded WebSocket).
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }

    /// Sends `len` bytes of `from` (the bytes of `slice`) with `sendfile(2)`; falls back to
    /// copying `slice` where the kernel cannot send the file.
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        slice: &[u8],
        from: InFile,
    ) -> Poll<io::Result<usize>> {
        #[cfg(target_os = "linux")]
        loop {
            std::task::ready!(self.stream.poll_write_ready(cx))?;
            let mut offset = from.offset;
            let filled = self.filled;
            let sent = self.stream.try_io(tokio::io::Interest::WRITABLE, || {
                // After a short send the buffer is most likely still full, and a `sendfile`
                // into a full socket reads pages from the file only to drop them: ask first
                // (a `poll` with no wait), and when there is no room, wait for the kernel
                // to say so like after any `EAGAIN`.
                if filled && !has_room(&self.stream)? {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                rustix::fs::sendfile(&self.stream, &*from.file, Some(&mut offset), slice.len())
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => break,
                Ok(n) => {
                    self.filled = n < slice.len();
                    #[cfg(test)]
                    {
                        self.sent_from_files += n as u64;
                    }
                    metrics::counter!("http_sendfile_bytes_total").increment(n as u64);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.filled = false;
                    continue;
                }
                Err(e) if unsupported(&e) => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = from;
        Pin::new(&mut self.stream).poll_write(cx, slice)
    }
}

/// Whether the kernel would take more bytes on `stream` now (`POLLOUT`, the same test as
/// the readiness tokio waits for).
#[cfg(target_os = "linux")]
fn has_room(stream: &TcpStream) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(stream, PollFlags::OUT)];
    let no_wait = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&no_wait))?;
    Ok(fds[0]
        .revents()
        .intersects(PollFlags::OUT | PollFlags::ERR | PollFlags::HUP))
}

/// An error that says `sendfile(2)` cannot serve these descriptors (not that the
/// connection failed): the bytes are then copied instead.
#[cfg(target_os = "linux")]
fn unsupported(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS | rustix::io::Errno::OPNOTSUPP)
    )
}

/// The first non-empty slice of `bufs` that lies in a file window, with its index.
fn first_window(bufs: &[IoSlice<'_>]) -> Option<(usize, InFile)> {
    bufs.iter()
        .enumerate()
        .find_map(|(i, buf)| window::find(buf).map(|found| (i, found)))
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match window::find(buf) {
            Some(from) => self.poll_send_file(cx, buf, from),
            None => Pin::new(&mut self.stream).poll_write(cx, buf),
        }
    }

    /// What precedes the first window (a response head, say) is written on its own, then
    /// the window is sent from its file on the next call.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match first_window(bufs) {
            None => Pin::new(&mut self.stream).poll_write_vectored(cx, bufs),
            Some((at, from)) if bufs[..at].iter().all(|b| b.is_empty()) => {
                let slice: &[u8] = &bufs[at];
                self.poll_send_file(cx, slice, from)
            }
            Some((at, _)) => Pin::new(&mut self.stream).poll_write_vectored(cx, &bufs[..at]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;
    use crate::window::tests::window;

    /// A connected pair: the server side wrapped, the client side plain.
    async fn pair() -> (ZeroCopyStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (ZeroCopyStream::new(server), client)
    }

    #[tokio::test]
    async fn a_head_then_a_window_arrive_as_written_and_the_window_from_its_file() {
        let content: Vec<u8> = (0..64 * 4096).map(|i| (i * 7 % 253) as u8).collect();
        let window = window(&content, 8192, 60 * 4096);
        let body = &window.as_ref()[10..];
        let head = b"HEAD\r\n";
        let (mut server, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let (total, mut written) = (head.len() + body.len(), 0);
        while written < total {
            let bufs = if written < head.len() {
                vec![IoSlice::new(&head[written..]), IoSlice::new(body)]
            } else {
                vec![IoSlice::new(&body[written - head.len()..])]
            };
            let n = std::future::poll_fn(|cx| Pin::new(&mut server).poll_write_vectored(cx, &bufs))
                .await
                .unwrap();
            assert!(n > 0);
            written += n;
        }
        server.shutdown().await.unwrap();
        let from_files = server.sent_from_files;
        drop(server);
        let got = reader.await.unwrap();
        assert_eq!(&got[..head.len()], head);
        assert!(got[head.len()..] == content[8192 + 10..8192 + 60 * 4096]);
        if cfg!(target_os = "linux") {
            assert_eq!(from_files, body.len() as u64, "the window went by sendfile");
        }
    }

    /// A window larger than the socket's buffer, to a reader that starts slowly: the sends
    /// fall short, the stream waits for room, and every byte still arrives in order.
    #[tokio::test]
    async fn a_window_larger_than_the_socket_buffer_reaches_a_slow_reader_whole() {
        let content: Vec<u8> = (0..4096 * 4096).map(|i| (i * 31 % 251) as u8).collect();
        let window = window(&content, 0, content.len());
        let (mut server, mut client) = pair().await;
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            for _ in 0..8 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let n = client.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let (mut written, mut calls) = (0, 0);
        while written < content.len() {
            let rest = &window.as_ref()[written..];
            written += std::future::poll_fn(|cx| Pin::new(&mut server).poll_write(cx, rest))
                .await
                .unwrap();
            calls += 1;
        }
        server.shutdown().await.unwrap();
        let from_files = server.sent_from_files;
        drop(server);
        assert!(reader.await.unwrap() == content);
        assert!(calls > 1, "the socket's buffer took 16 MiB at once");
        if cfg!(target_os = "linux") {
            assert_eq!(
                from_files,
                content.len() as u64,
                "the window went by sendfile"
            );
        }
    }

    #[tokio::test]
    async fn ordinary_memory_is_copied() {
        let (mut server, mut client) = pair().await;
        let data = vec![42u8; 100_000];
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        server.write_all(&data).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        assert!(reader.await.unwrap() == data);
    }
}
