//! quire's HTTP engine: runs any tower service (an axum `Router`, say) on a bound listener.
//!
//! It is what `axum::serve` leaves out and what Ktor calls an engine: the accept loop is ours,
//! so the header-read timeout, keep-alive, HTTP/2 over cleartext (h2c, negotiated by prior
//! knowledge) and a ceiling on open connections are settings, and shutdown is a designed
//! mechanism: stop accepting, let in-flight requests finish within a grace period, then close
//! what remains. Knows nothing of blogs; must not import anything quire-specific.
//!
//! Draining is built for restarts without a failed request: once it starts, every HTTP/1.1
//! response says `Connection: close`, so busy keep-alive clients leave after an answer
//! instead of racing a close; only connections still open after [`ServeConfig::drain_linger`]
//! are shut (HTTP/2 with GOAWAY). With an inherited listening socket the replacement process
//! accepts from the same queue meanwhile (see [`listener`]).

pub mod listener;
pub mod per_ip;
mod sniff;
pub mod stall;
pub mod systemd;
pub mod tls;
mod upgraded;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderValue, Request, Response, Version, header};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ipnet::IpNet;
use quire_zerocopy::ZeroCopyStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

use crate::per_ip::PerIpLimit;
use crate::stall::StallGuard;
pub use crate::upgraded::into_plain_socket;

/// The address of the client a request came from, put in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// How the engine treats connections.
#[derive(Clone)]
pub struct ServeConfig {
    /// Longest time a client may take to send a request's headers (slow-header defence).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted; also the most an HTTP/1.1
    /// connection buffers while reading (a body streams through it), so it bounds each
    /// upload's read buffer. Larger heads get 431.
    pub max_header_bytes: usize,
    /// Keep HTTP/1.1 connections open between requests.
    pub keep_alive: bool,
    /// Longest a write may stay blocked because the client stopped reading; past it the
    /// connection is closed (slow-reader defence).
    pub write_stall_timeout: Duration,
    /// Accept HTTP/2 over cleartext (prior knowledge) beside HTTP/1.1.
    pub http2: bool,
    /// Most connections open at once; past it the engine stops accepting until one closes
    /// (new clients wait in the kernel's backlog instead of being dropped).
    pub max_connections: usize,
    /// Most connections open at once from one IP address; past it new ones from that
    /// address are answered 503 and closed at once.
    pub max_connections_per_ip: usize,
    /// Networks exempt from the per-IP ceiling (the proxies in front of the server).
    pub per_ip_exempt: Vec<IpNet>,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
    /// Serve HTTPS with this certificate instead of cleartext.
    pub tls: Option<tls::Tls>,
    /// While draining, how long connections keep being served (each HTTP/1.1 answer closing
    /// its connection) before idle ones are shut; capped by `shutdown_grace`.
    pub drain_linger: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            keep_alive: true,
            write_stall_timeout: Duration::from_secs(30),
            http2: true,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            per_ip_exempt: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            drain_linger: Duration::from_secs(1),
            tls: None,
        }
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains.
///
/// Returns once every connection has closed or the grace period has run out.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) where
    S: AppService<B>,
    B: ResponseBody,
{
    let protocols = Arc::new(Protocols::new(&config));
    let max_connections = config
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let permits = Arc::new(Semaphore::new(max_connections));
    let per_ip = PerIpLimit::new(config.max_connections_per_ip, config.per_ip_exempt.clone());
    let linger = config.drain_linger.min(config.shutdown_grace);
    // Every connection task watches this; sending on it asks each to finish its in-flight
    // request and close. The connection semaphore doubles as the count of open connections.
    let (drain, draining) = watch::channel(());
    let closing = Arc::new(AtomicBool::new(false));
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a transient network error: back off briefly
                    // instead of spinning on a failing accept.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(ip_guard) = per_ip.admit(peer.ip()) else {
            refuse(stream, peer);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let stall_limit = config.write_stall_timeout;
        let service = ConnectionService {
            inner: service.clone(),
            peer,
            closing: closing.clone(),
            hsts: config.tls.is_some(),
        };
        let connection = Connection {
            protocols: protocols.clone(),
            draining: draining.clone(),
            linger,
            peer,
        };
        let tls = config.tls.clone();
        let handshake_timeout = config.header_read_timeout;
        metrics::counter!("http_connections_total").increment(1);
        metrics::gauge!("http_connections_open").increment(1.0);
        tokio::spawn(async move {
            match tls {
                None => {
                    let h2 = if connection.protocols.http2.is_none() {
                        Some(false)
                    } else {
                        // h2c is told from HTTP/1 by a peek, so hyper gets the socket itself.
                        sniff::opens_with_h2_preface(&stream, handshake_timeout).await
                    };
                    if let Some(h2) = h2 {
                        // Plain connections send media windows with sendfile(2).
                        let stream = StallGuard::new(ZeroCopyStream::new(stream), stall_limit);
                        let io: upgraded::PlainIo = TokioIo::new(stream);
                        connection.serve(io, h2, service).await
                    } else {
                        tracing::debug!(%peer, "no request before the header-read timeout");
                    }
                }
                Some(tls) => {
                    // The handshake counts against the header-read timeout: a client that
                    // opens a connection and says nothing is dropped all the same.
                    let stream = StallGuard::new(stream, stall_limit);
                    match tokio::time::timeout(handshake_timeout, tls.acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => {
                            // ALPN offers h2 only when HTTP/2 is on (`tls.rs`).
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            connection.serve(TokioIo::new(stream), h2, service).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            metrics::gauge!("http_connections_open").decrement(1.0);
            drop(ip_guard);
            drop(permit);
        });
    }

    drop(listener);
    tracing::info!("stopped accepting; draining connections");
    closing.store(true, Ordering::Relaxed);
    let _ = drain.send(());
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace = ?config.shutdown_grace, "grace period over; closing remaining connections");
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the engine serves: a cloneable tower service from hyper's requests to responses,
/// every clone usable on any connection task.
pub trait AppService<B>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S, B> AppService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A response body hyper can send from any task.
pub trait ResponseBody:
    http_body::Body<Data = hyper::body::Bytes, Error: Into<BoxError>> + Send + 'static
{
}

impl<B> ResponseBody for B where
    B: http_body::Body<Data = hyper::body::Bytes, Error: Into<BoxError>> + Send + 'static
{
}

/// What a connection's task needs besides its socket and service.
struct Connection {
    protocols: Arc<Protocols>,
    draining: watch::Receiver<()>,
    linger: Duration,
    peer: SocketAddr,
}

impl Connection {
    /// Serves one connection (plain or TLS) until it closes or draining shuts it.
    /// `h2`: the client opened with HTTP/2 (its preface on a plain connection, ALPN's `h2`
    /// over TLS).
    async fn serve<I, S, B>(self, io: TokioIo<I>, h2: bool, service: ConnectionService<S>)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        S: AppService<B>,
        B: ResponseBody,
    {
        let Connection {
            protocols,
            mut draining,
            linger,
            peer,
        } = self;
        // The arms differ only in the connection's type.
        macro_rules! run {
            ($connection:expr) => {{
                let connection = $connection;
                tokio::pin!(connection);
                let result: Result<(), BoxError> = tokio::select! {
                    result = connection.as_mut() => result.map_err(Into::into),
                    _ = draining.changed() => {
                        // Answers now close their connections; give busy clients a moment
                        // to take theirs, then shut whatever is left.
                        match tokio::time::timeout(linger, connection.as_mut()).await {
                            Ok(result) => result.map_err(Into::into),
                            Err(_) => {
                                connection.as_mut().graceful_shutdown();
                                connection.await.map_err(Into::into)
                            }
                        }
                    }
                };
                result
            }};
        }
        let result = match (h2, &protocols.http2) {
            (true, Some(builder)) => run!(builder.serve_connection(io, service)),
            _ => run!(
                protocols
                    .http1
                    .serve_connection(io, service)
                    .with_upgrades()
            ),
        };
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// The answer to a connection over its address's ceiling, written if the socket takes it
/// at once (it is new, so its send buffer is empty), then the connection is closed.
const TOO_MANY_FROM_ADDRESS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 73\r\n\r\n\
{\"errors\":{\"connections\":[\"too many open from this address, try later\"]}}";

fn refuse(stream: TcpStream, peer: SocketAddr) {
    metrics::counter!("http_connections_refused_total", "reason" => "per_ip").increment(1);
    tracing::debug!(%peer, "connection refused: too many from this address");
    let _ = stream.try_write(TOO_MANY_FROM_ADDRESS);
}

/// The per-connection service: puts the peer's address in each request and, once the
/// server drains, marks HTTP/1 answers `Connection: close`.
#[derive(Clone)]
struct ConnectionService<S> {
    inner: S,
    peer: SocketAddr,
    closing: Arc<AtomicBool>,
    /// Over TLS: tell browsers to use HTTPS only from now on.
    hsts: bool,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnectionService<S>
where
    // Spelled out (not `AppService<B>`): `B` must appear in a direct bound to be constrained.
    S: AppService<B> + Service<Request<Incoming>, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = ConnectionResponse<tower::util::Oneshot<S, Request<Incoming>>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr(self.peer));
        // Connection-level headers exist only in HTTP/1.
        let closing = (request.version() < Version::HTTP_2).then(|| self.closing.clone());
        ConnectionResponse {
            call: self.inner.clone().oneshot(request),
            closing,
            hsts: self.hsts,
        }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way, with the connection-level headers to add to it (a named
    /// future, so no request pays for a boxed one).
    pub struct ConnectionResponse<F> {
        #[pin]
        call: F,
        // Read when the answer is ready, not when the request came: a drain that starts
        // meanwhile must still close this connection after the answer.
        closing: Option<Arc<AtomicBool>>,
        hsts: bool,
    }
}

impl<F, B> Future for ConnectionResponse<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = Result<Response<B>, Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = std::task::ready!(this.call.poll(cx));
        let headers = response.headers_mut();
        if *this.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            );
        }
        if this
            .closing
            .as_ref()
            .is_some_and(|closing| closing.load(Ordering::Relaxed))
        {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        std::task::Poll::Ready(Ok(response))
    }
}

/// hyper's smallest read buffer.
const MIN_BUF: usize = 8192;

/// The protocol builders: hyper's own for HTTP/1 and, with HTTP/2 on, for HTTP/2. A plain
/// connection's protocol is told by a peek at its first bytes (`sniff.rs`), a TLS one's by
/// ALPN, so hyper serves the socket itself: hyper-util's auto builder would read the first
/// bytes into a wrapper of its own around the socket, kept for the connection's life
/// (`into_plain_socket` could not take such a socket back). Neither upgradeable connection
/// type works with hyper-util's `GracefulShutdown`, hence the drain signal above.
struct Protocols {
    http1: http1::Builder,
    http2: Option<http2::Builder<TokioExecutor>>,
}

impl Protocols {
    fn new(config: &ServeConfig) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .max_buf_size(config.max_header_bytes.max(MIN_BUF))
            .keep_alive(config.keep_alive);
        let http2 = config.http2.then(|| {
            let mut h2 = http2::Builder::new(TokioExecutor::new());
            h2.max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(H2_PING_INTERVAL))
                .keep_alive_timeout(H2_PING_TIMEOUT);
            h2
        });
        Self { http1, http2 }
    }
}

/// HTTP/2 connections are pinged this often, and closed when a ping is not answered in
/// [`H2_PING_TIMEOUT`].
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
