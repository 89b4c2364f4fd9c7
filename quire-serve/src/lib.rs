//! quire's HTTP engine: runs any tower service (an axum `Router`, say) on a bound listener.
//!
//! It is what `axum::serve` leaves out and what Ktor calls an engine: the accept loop is ours,
//! so the header-read timeout, keep-alive, HTTP/2 over cleartext (h2c, negotiated by prior
//! knowledge) and a ceiling on open connections are settings, and shutdown is a designed
//! mechanism: stop accepting, let in-flight requests finish within a grace period, then close
//! what remains. Knows nothing of blogs; must not import anything quire-specific.

pub mod systemd;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::{Service, ServiceExt};

/// The address of the client a request came from, put in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// How the engine treats connections.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Longest time a client may take to send a request's headers (slow-header defence).
    pub header_read_timeout: Duration,
    /// Keep HTTP/1.1 connections open between requests.
    pub keep_alive: bool,
    /// Accept HTTP/2 over cleartext (prior knowledge) beside HTTP/1.1.
    pub http2: bool,
    /// Most connections open at once; past it the engine stops accepting until one closes
    /// (new clients wait in the kernel's backlog instead of being dropped).
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before closing connections.
    pub shutdown_grace: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive: true,
            http2: true,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
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
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = hyper::body::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let protocols = Protocols::new(&config);
    let max_connections = config
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let permits = Arc::new(Semaphore::new(max_connections));
    // Every connection task watches this; sending on it asks each to finish its in-flight
    // request and close. The connection semaphore doubles as the count of open connections.
    let (drain, draining) = watch::channel(());
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
        let _ = stream.set_nodelay(true);
        let service = service
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            });
        let io = TokioIo::new(stream);
        let service = TowerToHyperService::new(service);
        let mut draining = draining.clone();
        // The arms differ only in the connection's type.
        macro_rules! run_connection {
            ($connection:expr) => {{
                let connection = $connection;
                metrics::counter!("http_connections_total").increment(1);
                metrics::gauge!("http_connections_open").increment(1.0);
                tokio::spawn(async move {
                    tokio::pin!(connection);
                    let result = tokio::select! {
                        result = connection.as_mut() => result,
                        _ = draining.changed() => {
                            connection.as_mut().graceful_shutdown();
                            connection.await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    metrics::gauge!("http_connections_open").decrement(1.0);
                    drop(permit);
                });
            }};
        }
        match &protocols {
            Protocols::Auto(builder) => {
                run_connection!(
                    builder
                        .serve_connection_with_upgrades(io, service)
                        .into_owned()
                );
            }
            Protocols::Http1Only(builder) => {
                run_connection!(builder.serve_connection(io, service).with_upgrades());
            }
        }
    }

    drop(listener);
    tracing::info!("stopped accepting; draining connections");
    let _ = drain.send(());
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!(grace = ?config.shutdown_grace, "grace period over; closing remaining connections");
        }
    }
}

/// The protocol builders. hyper-util's auto builder sniffs the HTTP/2 preface even when told
/// `http1_only` (for upgradeable connections), so HTTP/1-only uses hyper's own builder.
/// Neither upgradeable connection type works with hyper-util's `GracefulShutdown`, hence
/// the drain signal above.
enum Protocols {
    Auto(auto::Builder<TokioExecutor>),
    Http1Only(http1::Builder),
}

impl Protocols {
    fn new(config: &ServeConfig) -> Self {
        if !config.http2 {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_read_timeout)
                .keep_alive(config.keep_alive);
            return Self::Http1Only(builder);
        }
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout)
            .keep_alive(config.keep_alive);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20));
        Self::Auto(builder)
    }
}
