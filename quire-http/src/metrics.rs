//! Prometheus metrics: the recorder, the per-request figures (recorded by the request
//! middleware, labelled by matched route, never by raw path, so label cardinality stays
//! bounded) and `GET /metrics`, which adds
//! process and live-connection gauges read at scrape time. Other crates record through the
//! `metrics` facade (the engine: connections; the store: queue depth, query time, batch size).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets, in seconds: 100 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("seconds".into()), BUCKETS)
                    .expect("static buckets are valid")
            };
            builder().install_recorder().unwrap_or_else(|e| {
                // Another recorder owns the process (an embedding program): render ours anyway.
                tracing::warn!(error = %e, "metrics recorder already installed");
                builder().build_recorder().handle()
            })
        })
        .clone()
}

/// The in-flight gauge, looked up once (the registry hashes its key on every lookup).
pub(crate) fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("http_requests_in_flight"))
}

/// Counts a request in flight until dropped (so also when the request is cancelled).
pub(crate) struct InFlight;

impl InFlight {
    pub(crate) fn start() -> Self {
        in_flight().increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().decrement(1.0);
    }
}

/// One route's and method's metric handles: the latency histogram and a counter per status.
struct RouteMetrics {
    duration: metrics::Histogram,
    by_status: HashMap<u16, metrics::Counter>,
}

thread_local! {
    /// Handles by method and route, per worker thread: a request records through handles it
    /// already holds instead of building label sets and looking them up in the registry. Both
    /// keys are bounded (matched routes, not raw paths; methods axum routes).
    static HANDLES: RefCell<HashMap<Method, HashMap<Box<str>, RouteMetrics>>> =
        RefCell::new(HashMap::new());
}

/// Records one answered request: its latency and its count by status.
pub(crate) fn record(method: &Method, route: &str, status: u16, seconds: f64) {
    HANDLES.with_borrow_mut(|handles| {
        let routes = handles.entry(method.clone()).or_default();
        // Looked up by `&str` first: the key is allocated only for a route's first request.
        if !routes.contains_key(route) {
            let duration = metrics::histogram!("http_request_duration_seconds",
                "method" => method.as_str().to_owned(), "route" => route.to_owned());
            let by_status = HashMap::new();
            routes.insert(
                route.into(),
                RouteMetrics {
                    duration,
                    by_status,
                },
            );
        }
        if let Some(entry) = routes.get_mut(route) {
            entry.duration.record(seconds);
            entry
                .by_status
                .entry(status)
                .or_insert_with(|| {
                    metrics::counter!("http_requests_total", "method" => method.as_str().to_owned(),
                        "route" => route.to_owned(), "status" => status.to_string())
                })
                .increment(1);
        }
    });
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "Metrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn render(State(state): State<AppState>) -> Response {
    metrics::gauge!("live_connections_open").set(state.live_limits.open() as f64);
    let runtime = tokio::runtime::Handle::current().metrics();
    metrics::gauge!("runtime_alive_tasks").set(runtime.num_alive_tasks() as f64);
    metrics::gauge!("runtime_global_queue_depth").set(runtime.global_queue_depth() as f64);
    // /proc reads are file I/O: off the async threads like any other.
    let process = tokio::task::spawn_blocking(|| {
        let fds = std::fs::read_dir("/proc/self/fd")
            .map(|fds| fds.count())
            .ok();
        (resident_bytes(), fds)
    })
    .await;
    if let Ok((rss, fds)) = process {
        if let Some(rss) = rss {
            metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
        }
        if let Some(fds) = fds {
            metrics::gauge!("process_open_fds").set(fds as f64);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        recorder().render(),
    )
        .into_response()
}

/// Resident set size from `/proc/self/statm` (pages × 4 KiB pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Drains recorded histogram samples into their buckets every 5 s. The recorder keeps each
/// sample until its histogram is next drained, and `install_recorder` spawns nothing that
/// drains: without this, a server nobody scrapes grows by 8 bytes per sample (about 0.15 MB
/// per 10 s at 550 req/s, seen in a soak) for ever.
pub fn spawn_upkeep() {
    let handle = recorder();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Measures how late a 100 ms timer fires: the event loop's lag, a sign of blocked workers.
pub fn spawn_lag_probe() {
    tokio::spawn(async {
        let period = Duration::from_millis(100);
        loop {
            let start = Instant::now();
            tokio::time::sleep(period).await;
            let lag = start.elapsed().saturating_sub(period);
            metrics::histogram!("runtime_event_loop_lag_seconds").record(lag.as_secs_f64());
        }
    });
}
