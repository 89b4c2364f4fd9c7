//! W3C trace context on incoming requests: a request carrying a valid `traceparent` (and
//! `tracestate`) is served as a child of that remote span; any other request starts a trace
//! of its own. The trace id is recorded on the request span (`trace_id`, and `span_id` when
//! quire's own spans are exported), so every log line of the request carries it and the logs
//! of many instances join up, whether or not quire exports spans itself.
//!
//! Costs nothing beyond one header lookup for a request without `traceparent` while spans
//! are not exported (the `--otlp-endpoint` default). Knows nothing of exporters: the
//! OpenTelemetry layer installed by quire-cli, if any, does the rest.

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing::field::display;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The request's headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Makes `span` (a request's, declared with empty `trace_id`, `span_id`, `otel.name` and
/// `otel.kind` fields) part of the caller's trace, if `headers` name a valid one, and
/// records the trace id on it. With `exporting`, also names the span after its route and
/// gives it the request's method and route as attributes.
pub(crate) fn join(
    span: &Span,
    headers: &HeaderMap,
    method: &Method,
    route: Option<&MatchedPath>,
    exporting: bool,
) {
    if span.is_disabled() {
        return;
    }
    let remote = headers
        .contains_key(TRACEPARENT)
        .then(|| TraceContextPropagator::new().extract(&Headers(headers)))
        .filter(|cx| cx.span().span_context().is_valid());
    if !exporting {
        // Nothing will export this span: the caller's trace id is all there is to log.
        if let Some(remote) = remote {
            span.record("trace_id", display(remote.span().span_context().trace_id()));
        }
        return;
    }
    let route = route.map_or("unmatched", MatchedPath::as_str);
    span.record("otel.kind", "server");
    span.record("otel.name", display(format_args!("{method} {route}")));
    span.set_attribute("http.request.method", method.as_str().to_owned());
    span.set_attribute("http.route", route.to_owned());
    if let Some(remote) = remote {
        // Only fails when no OpenTelemetry layer is installed; then there is nothing to join.
        let _ = span.set_parent(remote);
    }
    // Starts the span, so its ids (the trace's, inherited or new) are known from here on.
    let context = span.context();
    let ids = context.span().span_context().clone();
    if ids.is_valid() {
        span.record("trace_id", display(ids.trace_id()));
        span.record("span_id", display(ids.span_id()));
    }
}

/// Records the answer's status on an exported request span; a 5xx marks it failed.
pub(crate) fn finish(span: &Span, status: StatusCode) {
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
}
