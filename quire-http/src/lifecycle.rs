//! One layer for what every request goes through from the moment it is routed: a tracing
//! span holding its request id (so every line logged while serving it carries the id) and,
//! when there is a trace, its trace id (see [`crate::trace_context`]), the
//! in-flight gauge, a deadline on the answer (503 past `--request-timeout`; streams
//! excepted), a deadline on each read of its body (`--body-read-timeout`), and, once
//! answered, its metrics and one `request done` log line.
//!
//! Written as a tower service with a named future rather than four `from_fn` middlewares:
//! each of those clones the boxed route and boxes a future per request, which showed in the
//! profile of the cheapest reads.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use http_body::Body as _;
use tower::{Layer, Service};
use tower_http::timeout::TimeoutBody;
use tracing::Span;

use crate::ApiError;
use crate::metrics::{InFlight, record};
use crate::middleware::REQUEST_ID;
use crate::trace_context;

/// Whether `path` streams for as long as its client wants (no overall deadline).
fn streams(path: &str) -> bool {
    path.starts_with("/api/media") || path.starts_with("/media/") || path.starts_with("/api/live")
}

/// See the module documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LifecycleLayer {
    /// Longest a request may take to be answered (streams excepted).
    pub request_timeout: Duration,
    /// Longest a request body may send nothing.
    pub body_read_timeout: Duration,
    /// Whether request spans are exported (OTLP): then they get their route, method and
    /// status as attributes.
    pub export_traces: bool,
}

impl<S> Layer<S> for LifecycleLayer {
    type Service = Lifecycle<S>;

    fn layer(&self, inner: S) -> Lifecycle<S> {
        Lifecycle {
            inner,
            settings: *self,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Lifecycle<S> {
    inner: S,
    settings: LifecycleLayer,
}

impl<S> Service<Request<Body>> for Lifecycle<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = LifecycleFuture<quire_cache::RequestScoped<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let exported = self.settings.export_traces;
        // Without export the caller's trace id is known now, and cheapest given at creation.
        let trace_id = if exported {
            None
        } else {
            trace_context::caller_trace_id(request.headers())
        };
        let span = tracing::info_span!(
            "request",
            request_id,
            trace_id,
            span_id = tracing::field::Empty,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
        );
        // The path is copied only when the `request done` line will be written.
        let logged_path = (!span.is_disabled() && tracing::enabled!(tracing::Level::INFO))
            .then(|| request.uri().path().to_owned());
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        if exported {
            trace_context::join(&span, request.headers(), &method, route.as_ref());
        }
        let deadline = (!streams(request.uri().path()))
            .then(|| tokio::time::sleep(self.settings.request_timeout));
        // A body that has ended already (most GETs) has nothing to wait for.
        let request = if request.body().is_end_stream() {
            request
        } else {
            let limit = self.settings.body_read_timeout;
            request.map(|body| Body::new(TimeoutBody::new(limit, body)))
        };
        let in_flight = InFlight::start();
        let start = Instant::now();
        // The request's own memo of whether the caches may serve it (one fence per request
        // when instances share a database; free for one instance).
        let inner = quire_cache::request_scope(span.in_scope(|| self.inner.call(request)));
        LifecycleFuture {
            inner,
            deadline,
            span,
            done: Some(Done {
                start,
                method,
                route,
                logged_path,
                exported,
                _in_flight: in_flight,
            }),
            timeout: self.settings.request_timeout,
        }
    }
}

/// What is recorded once the answer is ready.
struct Done {
    start: Instant,
    method: Method,
    route: Option<MatchedPath>,
    /// Set when the `request done` line is to be written.
    logged_path: Option<String>,
    /// Whether the request's span is exported.
    exported: bool,
    _in_flight: InFlight,
}

impl Done {
    fn finish(self, span: &Span, status: StatusCode) {
        if self.exported {
            trace_context::finish(span, status);
        }
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        let elapsed = self.start.elapsed();
        let status = status.as_u16();
        record(&self.method, route, status, elapsed.as_secs_f64());
        if let Some(path) = self.logged_path {
            tracing::info!(
                method = %self.method,
                path,
                route,
                status,
                // Whole microseconds: `1.172`, not `1.1719999999999999`.
                latency_ms = elapsed.as_micros() as f64 / 1000.0,
                "request done"
            );
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered: the route's future, raced against the deadline, inside the
    /// request's span.
    pub(crate) struct LifecycleFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        span: Span,
        done: Option<Done>,
        timeout: Duration,
    }

    impl<F> PinnedDrop for LifecycleFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // A panic in the route unwinds through here on its way to the layer that answers it
            // with a 500: count and log the request as that 500. (A request dropped because its
            // client went away is neither answered nor logged.)
            if std::thread::panicking()
                && let Some(done) = this.done.take()
            {
                let _entered = this.span.enter();
                done.finish(this.span, StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    }
}

impl<F> Future for LifecycleFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Pending => {
                let Some(deadline) = this.deadline.as_pin_mut() else {
                    return Poll::Pending;
                };
                ready!(deadline.poll(cx));
                // The route's work is dropped with this future.
                tracing::warn!(
                    limit_ms = this.timeout.as_millis() as u64,
                    "request timed out"
                );
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "request", "took too long")
                    .into_response()
            }
        };
        if let Some(done) = this.done.take() {
            done.finish(this.span, response.status());
        }
        Poll::Ready(Ok(response))
    }
}
