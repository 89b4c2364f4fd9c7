//! Trace export over OTLP (HTTP, protobuf) when `--otlp-endpoint` is given: the
//! OpenTelemetry tracer provider behind the `tracing` layer that [`crate::telemetry`]
//! installs.
//!
//! - **Never blocks a request.** Finished spans go to the SDK's batch processor (its own
//!   thread, a bounded queue of [`QUEUE`] spans, batches of [`BATCH`] at least every
//!   [`DELAY`]); the POST itself runs on quire's runtime through reqwest, bounded by
//!   [`EXPORT_TIMEOUT`].
//! - **Drops are counted**, in `otlp_spans_dropped_total`: `reason="queue_full"` for spans
//!   refused because the queue was full (the SDK keeps that count to itself, so
//!   [`Bounded`] keeps the queue's occupancy beside it and refuses first, at the same
//!   bound), `reason="export_failed"` for spans in a batch the collector did not take.
//! - **Only requests start traces.** Store, cache and Redis spans outside any request
//!   (background work) are never exported: [`RequestsOnly`] drops root spans that are not
//!   servers. Request traces are sampled parent-based with `--otlp-sample-ratio`.
//! - **Shutdown flushes** what is queued, waiting at most [`FLUSH_TIMEOUT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, SamplingResult, SdkTracer,
    SdkTracerProvider, ShouldSample, Span, SpanData, SpanExporter, SpanProcessor,
};

/// Finished spans that may wait for export; more are dropped (and counted).
pub const QUEUE: usize = 8192;
/// Spans sent in one export request at most.
const BATCH: usize = 512;
/// Longest a finished span waits before its batch is sent.
const DELAY: Duration = Duration::from_secs(1);
/// Longest one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest quire waits, when it stops, for queued spans to be sent.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What `--otlp-*` says.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The collector's traces URL (`.../v1/traces`).
    pub endpoint: String,
    pub service_name: String,
    /// Fraction of the traces quire starts that are exported.
    pub sample_ratio: f64,
}

/// The exporting tracer provider and a tracer of it for the `tracing` layer. Spans are
/// sent through `runtime`, which must outlive the provider's shutdown.
pub fn provider(
    settings: &OtlpSettings,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<(SdkTracerProvider, SdkTracer)> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .connect_timeout(EXPORT_TIMEOUT)
        .build()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OnRuntime { client, runtime })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let queued = Arc::new(AtomicUsize::new(0));
    let batches = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        queued: queued.clone(),
        failing: AtomicBool::new(false),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .with_max_export_batch_size(BATCH)
            .with_scheduled_delay(DELAY)
            .build(),
    )
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Bounded {
            inner: batches,
            queued,
        })
        .with_sampler(RequestsOnly(Sampler::ParentBased(Box::new(
            Sampler::TraceIdRatioBased(settings.sample_ratio),
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("quire");
    Ok((provider, tracer))
}

/// Counts a dropped span (see the module documentation).
fn dropped(reason: &'static str, spans: usize) {
    metrics::counter!("otlp_spans_dropped_total", "reason" => reason).increment(spans as u64);
}

/// Makes `otlp_spans_dropped_total` show (at 0) from the start.
pub fn register_metrics() {
    for reason in ["queue_full", "export_failed"] {
        dropped(reason, 0);
    }
}

/// The SDK's batch processor behind a count of the spans it holds: a span that would
/// overflow its queue is refused here, and counted, instead of being dropped silently there.
/// The count rises when a span is handed over and falls when its batch reaches the
/// exporter ([`Counted`]), so the SDK's queue never holds more than this bound.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= QUEUE {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            dropped("queue_full", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, releasing [`Bounded`]'s count for each batch it is given and counting
/// the spans of batches the collector did not take.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
    /// Whether the last export failed (to log a failure once, not once a batch).
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        self.queued.fetch_sub(spans, Ordering::AcqRel);
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("trace export works again");
                }
            }
            Err(error) => {
                dropped("export_failed", spans);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, spans, "trace export failed; spans are dropped until it works");
                }
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Starts traces at requests only (server spans); defers to the inner sampler for those and
/// for every span with a parent.
#[derive(Debug, Clone)]
struct RequestsOnly(Sampler);

impl ShouldSample for RequestsOnly {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let has_parent = parent_context.is_some_and(|cx| cx.has_active_span());
        if !has_parent && *span_kind != SpanKind::Server {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// reqwest on quire's runtime, for the exporter, which runs on the batch processor's thread
/// (where there is no runtime to run a client on).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.bytes().await?))
            })
            .await??;
        Ok(http::Response::builder().status(status).body(body)?)
    }
}
