//! One keep-alive connection's task: connect, send, read the whole response, repeat until
//! the run ends; reconnect after a failure.
//!
//! It speaks HTTP/1.1 through hyper's low-level client connection and drives that
//! connection inside its own task (no second task per connection, no pool, no retries):
//! the client must cost as little CPU as possible, since the server is what is measured.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::expect::Expect;
use super::schedule::Schedule;
use super::stats::{ErrorKind, Stats};

/// The request every connection sends, over and over.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    /// Path and query only (origin form), as HTTP/1.1 sends it.
    pub uri: Uri,
    /// Includes `Host`.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What counts as a successful response.
    pub expect: Expect,
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// The run's timeline and rules, shared by all connections.
#[derive(Debug)]
pub struct Plan {
    pub start: Instant,
    pub window_start: Instant,
    /// When the window ends, in nanoseconds after `start`: planned up front, moved earlier by
    /// [`Plan::end_now`] (the run was told to stop).
    window_end_ns: AtomicU64,
    /// `Some` for an open loop.
    pub schedule: Option<Schedule>,
    pub timeout: Duration,
    /// Local addresses to bind, dealt round-robin over connections; empty = the kernel picks.
    pub source_ips: Vec<IpAddr>,
    /// Requests after which the client closes a connection and opens another; 0 = never.
    pub requests_per_connection: u64,
}

impl Plan {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        start: Instant,
        window_start: Instant,
        window_end: Instant,
        schedule: Option<Schedule>,
        timeout: Duration,
        source_ips: Vec<IpAddr>,
        requests_per_connection: u64,
    ) -> Self {
        let window_end_ns = u64::try_from((window_end - start).as_nanos()).unwrap_or(u64::MAX);
        Self {
            start,
            window_start,
            window_end_ns: AtomicU64::new(window_end_ns),
            schedule,
            timeout,
            source_ips,
            requests_per_connection,
        }
    }

    pub fn window_end(&self) -> Instant {
        self.start + Duration::from_nanos(self.window_end_ns.load(Ordering::Acquire))
    }

    /// Ends the window now (if it has not ended yet): connections stop after the request
    /// they have in flight.
    pub fn end_now(&self) {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.window_end_ns.fetch_min(now, Ordering::AcqRel);
    }

    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.window_end()
    }
}

/// Pause after a failed connect in a closed loop, so a refusing server is not spun on.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

type Connection = Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// Runs connection number `id` until the plan's window ends.
pub async fn run(id: usize, target: Arc<Target>, plan: Arc<Plan>, stats: Arc<Stats>) {
    let mut connection: Option<(SendRequest<Full<Bytes>>, Connection)> = None;
    let mut k = 0;
    // Requests answered on the current connection.
    let mut served: u64 = 0;
    loop {
        // Open loop: wait for the intended time, then measure from it even if we are late.
        // Closed loop: go now.
        let intended = match plan.schedule {
            Some(schedule) => {
                let at = plan.start + schedule.intended(id, k);
                k += 1;
                if at >= plan.window_end() {
                    return;
                }
                sleep_until(at).await;
                at
            }
            None => Instant::now(),
        };
        if intended >= plan.window_end() {
            return;
        }

        if connection.is_none() {
            served = 0;
            match timeout(plan.timeout, connect(&target, &plan, id)).await {
                Ok(Ok(open)) => connection = Some(open),
                Ok(Err(_)) | Err(_) => {
                    stats.error(ErrorKind::Connect, plan.in_window(Instant::now()));
                    if plan.schedule.is_none() {
                        sleep(RECONNECT_BACKOFF).await;
                    }
                    continue;
                }
            }
        }
        let Some((sender, conn)) = connection.as_mut() else {
            continue;
        };

        // The connection future does the actual reading and writing: poll it alongside. It
        // may finish first when the server answers with `Connection: close` (the response is
        // already handed over by then) or drops the connection (the exchange then fails):
        // either way the exchange says which.
        let outcome = {
            let mut exchange = std::pin::pin!(timeout(
                plan.timeout,
                exchange(sender, target.request(), &target.expect)
            ));
            tokio::select! {
                biased;
                outcome = &mut exchange => outcome,
                _ = conn.as_mut() => exchange.await,
            }
        };
        let done = Instant::now();
        let in_window = plan.in_window(done);
        match outcome {
            Ok(Ok((failure, keep_alive, record))) => {
                stats.response(id, failure, done - intended, in_window);
                if let Some(record) = record {
                    stats.record_id(record);
                }
                served += 1;
                let churn =
                    plan.requests_per_connection > 0 && served >= plan.requests_per_connection;
                if !keep_alive || churn {
                    connection = None;
                }
            }
            Ok(Err(())) => {
                stats.error(ErrorKind::Io, in_window);
                connection = None;
            }
            Err(_elapsed) => {
                stats.error(ErrorKind::Timeout, in_window);
                // Its state is unknown (a response may still arrive): start afresh.
                connection = None;
            }
        }
    }
}

async fn connect(
    target: &Target,
    plan: &Plan,
    id: usize,
) -> anyhow::Result<(SendRequest<Full<Bytes>>, Connection)> {
    let socket = match target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !plan.source_ips.is_empty() {
        let ip = plan.source_ips[id % plan.source_ips.len()];
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target.addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    Ok((sender, Box::pin(connection)))
}

/// Sends one request and reads its body to the end; returns why the response is not a
/// success (`None` if it is), whether the connection may be reused, and the body's id when
/// ids are recorded and the response is a success.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    expect: &Expect,
) -> Result<(Option<ErrorKind>, bool, Option<u64>), ()> {
    sender.ready().await.map_err(drop)?;
    let response = sender.send_request(request).await.map_err(drop)?;
    let status = response.status().as_u16();
    let keep_alive = !response
        .headers()
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut body = response.into_body();
    // Bodies are kept only when they are to be checked: the client must stay cheap.
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(drop)?;
        if expect.needs_body()
            && let Some(data) = frame.data_ref()
        {
            kept.extend_from_slice(data);
        }
    }
    let failure = expect.judge(status, &kept);
    let id = (expect.record_ids && failure.is_none())
        .then(|| super::expect::first_id(&kept))
        .flatten();
    Ok((failure, keep_alive, id))
}
