//! W3C trace context on incoming requests: a request carrying a valid `traceparent` (and
//! `tracestate`) is served as a child of that remote span; any other request starts a trace
//! of its own. The trace id is recorded on the request span (`trace_id`, and `span_id` when
//! quire's own spans are exported), so every log line of the request carries it and the logs
//! of many instances join up, whether or not quire exports spans itself.
//!
//! Costs nothing beyond one header lookup for a request without `traceparent` while spans
//! are not exported (the `--otlp-endpoint` default); with one, its trace id is checked and
//! given to the span as it is created, as it stands in the header (recording a field later
//! would make the JSON log layer re-parse the span's fields; the OpenTelemetry propagator,
//! with its contexts and allocations, is used only when spans are exported). Knows nothing of exporters: the
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

/// The trace id of the caller's valid `traceparent`, if any, for the request span of a
/// request whose span is not exported (nothing but the id is needed then).
pub(crate) fn caller_trace_id(headers: &HeaderMap) -> Option<&str> {
    trace_id(headers.get(TRACEPARENT)?.as_bytes())
}

/// For exported spans: makes `span` (a request's, declared with empty `trace_id`,
/// `span_id`, `otel.name` and `otel.kind` fields) part of the caller's trace, if `headers`
/// name a valid one, records the trace and span ids on it, names it after its route and
/// gives it the request's method and route as attributes.
pub(crate) fn join(span: &Span, headers: &HeaderMap, method: &Method, route: Option<&MatchedPath>) {
    if span.is_disabled() {
        return;
    }
    let remote = headers
        .contains_key(TRACEPARENT)
        .then(|| TraceContextPropagator::new().extract(&Headers(headers)))
        .filter(|cx| cx.span().span_context().is_valid());
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

/// The trace id of a valid W3C `traceparent` (`version-traceid-parentid-flags`, lowercase
/// hex; a later version read as version 00 is, as the spec asks), as its 32 hex digits.
fn trace_id(traceparent: &[u8]) -> Option<&str> {
    let hex = |part: &[u8]| part.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let zero = |part: &[u8]| part.iter().all(|&c| c == b'0');
    let (version, trace, parent, flags) = (
        traceparent.get(..2)?,
        traceparent.get(3..35)?,
        traceparent.get(36..52)?,
        traceparent.get(53..55)?,
    );
    let well_formed = [2, 35, 52].iter().all(|&i| traceparent[i] == b'-')
        && hex(version)
        && version != b"ff"
        && hex(trace)
        && !zero(trace)
        && hex(parent)
        && !zero(parent)
        && hex(flags)
        && match traceparent.get(55) {
            None => true,
            Some(&next) => version != b"00" && next == b'-',
        };
    well_formed
        .then(|| std::str::from_utf8(trace).ok())
        .flatten()
}

/// Records the answer's status on an exported request span; a 5xx marks it failed.
pub(crate) fn finish(span: &Span, status: StatusCode) {
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn trace_ids_are_read_from_valid_traceparents_only() {
        let valid = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
        ];
        for header in valid {
            assert_eq!(trace_id(header.as_bytes()), Some(ID), "{header}");
        }
        let invalid = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for header in invalid {
            assert_eq!(trace_id(header.as_bytes()), None, "{header}");
        }
    }
}
