//! Tracing across instances, against the real binary: a request's W3C `traceparent` makes
//! quire's request span its child, the spans reach an OTLP/HTTP collector (a small one run
//! here, decoding what quire sends with opentelemetry-proto), store and cache spans hang
//! under the request span, and log lines carry the trace id. A collector that is down costs
//! requests nothing and does not hold up shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::support::{QuireProcess, TestDir, metric, sigterm, spawn_quire_with_env};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP trace receiver on a loopback port, keeping every span it is sent.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(spans.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, spans }
    }

    /// The spans received so far once `done` holds for them, waiting up to 15 s.
    async fn wait_for(&self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not get the spans: {:#?}",
                summary(&spans)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut kept = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.clone());
        assert!(
            matches!(service.and_then(|v| v.value), Some(AnyValue::StringValue(s)) if s == "quire-test"),
            "spans carry --otlp-service-name"
        );
        for scope in resource.scope_spans {
            kept.extend(scope.spans);
        }
    }
    Vec::new()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span's attribute as text (strings as they are, integers in decimal).
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn summary(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} trace={} id={} parent={}",
                s.name,
                hex(&s.trace_id),
                hex(&s.span_id),
                hex(&s.parent_span_id)
            )
        })
        .collect()
}

fn is_request(span: &Span) -> bool {
    attribute(span, "http.route").as_deref() == Some("/api/tags")
}

fn is_store(span: &Span) -> bool {
    span.name.starts_with("sqlite.") || span.name.starts_with("postgres.")
}

/// Whether `span` descends from `ancestor` among `spans`.
fn descends(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    for _ in 0..16 {
        if parent == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == parent) {
            Some(up) => parent = up.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// `GET /api/tags` as a caller in trace [`TRACE_ID`] (span [`PARENT_ID`], sampled) asks.
async fn traced_get(client: &reqwest::Client, quire: &QuireProcess) {
    let answer = client
        .get(format!("{}/api/tags", quire.base))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

api_test! {
async fn a_traceparent_makes_the_request_a_child_and_spans_reach_the_collector() {
    let collector = Collector::start().await;
    let dir = TestDir::new().await;
    let quire = spawn_quire_with_env(
        &dir,
        &["--otlp-endpoint", &collector.endpoint, "--otlp-service-name", "quire-test"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let client = reqwest::Client::new();
    let traced = client
        .get(format!("{}/api/tags", quire.base))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("tracestate", "vendor=opaque")
        .header("X-Request-Id", "traced-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    let fresh = client
        .get(format!("{}/api/tags", quire.base))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);

    let spans = collector
        .wait_for(|spans| {
            spans.iter().filter(|s| is_request(s)).count() >= 2
                && spans.iter().any(|s| hex(&s.trace_id) == TRACE_ID && is_store(s))
        })
        .await;
    let request = spans
        .iter()
        .find(|s| is_request(s) && hex(&s.trace_id) == TRACE_ID)
        .unwrap_or_else(|| panic!("the traced request's span: {:#?}", summary(&spans)));
    assert_eq!(hex(&request.parent_span_id), PARENT_ID, "the caller's span is the parent");
    assert_eq!(request.name, "GET /api/tags");
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(request.trace_state, "vendor=opaque", "tracestate is carried on");
    assert_eq!(attribute(request, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(request, "request_id").as_deref(), Some("traced-request-1"));

    let in_trace: Vec<&Span> = spans.iter().filter(|s| hex(&s.trace_id) == TRACE_ID).collect();
    let cache = in_trace
        .iter()
        .find(|s| s.name == "cache.load")
        .unwrap_or_else(|| panic!("a cache load span: {:#?}", summary(&spans)));
    assert_eq!(cache.parent_span_id, request.span_id, "the cache load is the request's child");
    assert_eq!(attribute(cache, "cache").as_deref(), Some("tags"));
    let store = in_trace.iter().find(|s| is_store(s)).unwrap();
    assert!(
        descends(&spans, store, request),
        "the store call hangs under the request: {:#?}",
        summary(&spans)
    );

    let untraced = spans
        .iter()
        .find(|s| is_request(s) && hex(&s.trace_id) != TRACE_ID)
        .expect("the second request's span");
    assert!(untraced.parent_span_id.is_empty(), "without traceparent quire's span is the root");
    assert_ne!(hex(&untraced.trace_id), "0".repeat(32));

    // The trace id (and the request span's id) are on the request's log lines.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = quire.logs.lock().unwrap().clone();
        if lines.iter().filter(|l| l.contains("request done")).count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "request done" && l["route"] == "/api/tags")
        .collect();
    let traced_line = done
        .iter()
        .find(|l| l["span"]["request_id"] == "traced-request-1")
        .unwrap_or_else(|| panic!("the traced request's line: {lines:#?}"));
    assert_eq!(traced_line["span"]["trace_id"], TRACE_ID);
    assert_eq!(traced_line["span"]["span_id"].as_str(), Some(hex(&request.span_id).as_str()));
    let other_line = done
        .iter()
        .find(|l| l["span"]["request_id"] != "traced-request-1")
        .expect("the untraced request's line");
    assert_eq!(other_line["span"]["trace_id"].as_str(), Some(hex(&untraced.trace_id).as_str()));
}
}

/// Without an exporter a `traceparent` still puts its trace id on the request's log lines.
#[tokio::test]
async fn the_callers_trace_id_is_logged_without_export() {
    let dir = TestDir::new().await;
    let quire = spawn_quire_with_env(&dir, &[], &[("RUST_LOG", "info")]).await;
    traced_get(&reqwest::Client::new(), &quire).await;
    let mut logged = false;
    for _ in 0..100 {
        logged = quire.logs.lock().unwrap().iter().any(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|l| l["message"] == "request done" && l["span"]["trace_id"] == TRACE_ID)
        });
        if logged {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        logged,
        "the trace id is logged: {:#?}",
        quire.logs.lock().unwrap()
    );
}

/// A collector that is down: requests are answered at once, the lost spans are counted, and
/// quire still stops within its grace period.
#[tokio::test]
async fn a_collector_that_is_down_costs_requests_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = TestDir::new().await;
    let mut quire = spawn_quire_with_env(
        &dir,
        &["--otlp-endpoint", &endpoint, "--shutdown-grace", "2s"],
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..50 {
        traced_get(&client, &quire).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "50 requests took {:?}",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let failed = metric(
            &client,
            &quire.base,
            "otlp_spans_dropped_total{reason=\"export_failed\"}",
        )
        .await;
        if failed >= 50.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failed exports are counted ({failed})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&quire.child).await;
    let stopping = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), quire.child.wait())
        .await
        .expect("quire stops")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "stopping took {:?}",
        stopping.elapsed()
    );
}
