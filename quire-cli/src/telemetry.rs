//! Logging setup: `tracing` to stdout (stderr for sub-commands, whose stdout is their
//! result), pretty on a terminal and JSON otherwise (or as
//! `--log-format` says), filtered by `RUST_LOG` (default `info`); and, with
//! `--otlp-endpoint`, trace export ([`crate::otlp`]) from the same spans.
//!
//! Lines are formatted where they are logged but written by a dedicated thread
//! (tracing-appender), in batches through a buffer: no async worker waits on stdout (a slow
//! journald or a full pipe), and a busy server makes one write per batch instead of one per
//! request. Should the writer fall behind by [`BUFFERED_LINES`], new lines are dropped
//! rather than stalling requests, and counted in `log_lines_dropped_total`.
//!
//! Without trace export, `RUST_LOG` filters everything, as one global filter. With it, the
//! filter is the log writer's alone, and the OpenTelemetry layer has its own
//! ([`QuireSpans`]): quire's spans down to DEBUG (requests, store, cache, Redis) are exported
//! whatever the log level. Those DEBUG spans cost one cached callsite check when neither
//! wants them.

use std::io::{BufWriter, IsTerminal};
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::LogFormat;
use crate::json_lines::JsonLines;
use crate::otlp::{self, OtlpSettings};

/// Lines that may wait for the writer thread before new ones are dropped.
pub const BUFFERED_LINES: usize = 65_536;

/// Lines dropped because the writer fell behind (set once logging is installed).
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the log writer thread (and trace export) running; dropping it writes out the log
/// lines still queued. Queued spans need [`Telemetry::flush_traces`].
#[must_use = "dropping the guard stops the log writer"]
pub struct Telemetry {
    _writer: Option<WorkerGuard>,
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued, waiting at most [`otlp::FLUSH_TIMEOUT`], and stops
    /// exporting. Call it while the runtime given to [`init`] still runs.
    pub async fn flush_traces(&mut self) {
        let Some(provider) = self.traces.take() else {
            return;
        };
        let flushed = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(otlp::FLUSH_TIMEOUT)
        })
        .await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "queued spans not all exported");
        }
    }
}

/// Installs the global subscriber, exporting traces when `traces` is given (through
/// `runtime`); `to_stderr` for sub-commands, whose standard output is their result. Safe to call more than once (later calls do nothing).
pub fn init(
    format: Option<LogFormat>,
    to_stderr: bool,
    traces: Option<OtlpSettings>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let format = format.unwrap_or(if terminal {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("quire-log")
        .finish(BufWriter::with_capacity(
            64 * 1024,
            if to_stderr {
                Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>
            } else {
                Box::new(std::io::stdout())
            },
        ));
    let dropped = writer.error_counter();
    let (installed, provider) = match traces {
        None => (
            Registry::default()
                .with(filter)
                .with(log_lines(format, writer))
                .try_init(),
            None,
        ),
        Some(settings) => {
            let (provider, tracer) = otlp::provider(&settings, runtime.clone())?;
            let spans = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false);
            let installed = Registry::default()
                .with(log_lines(format, writer).with_filter(filter))
                .with(spans.with_filter(QuireSpans))
                .try_init();
            (installed, Some(provider))
        }
    };
    if installed.is_err() {
        return Ok(Telemetry {
            _writer: None,
            traces: None,
        });
    }
    let _ = DROPPED.set(dropped);
    Ok(Telemetry {
        _writer: Some(guard),
        traces: provider,
    })
}

/// The layer writing log lines in `format`. JSON lines carry the fields of the span they
/// were logged in: a request's id, and its trace id when it has one.
fn log_lines<S>(format: LogFormat, writer: NonBlocking) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Pretty => layer.boxed(),
        LogFormat::Json => layer
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .boxed(),
    }
}

/// What the OpenTelemetry layer sees: quire's spans down to DEBUG, and quire's warnings
/// and errors (as events of the span they happen in). Decided once per callsite.
struct QuireSpans;

impl QuireSpans {
    fn wants(meta: &Metadata<'_>) -> bool {
        let most_verbose = if meta.is_span() {
            Level::DEBUG
        } else {
            Level::WARN
        };
        meta.target().starts_with("quire") && *meta.level() <= most_verbose
    }
}

impl<S> Filter<S> for QuireSpans {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        Self::wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::DEBUG)
    }
}

/// Publishes the dropped-line count as a metric every few seconds, for as long as the
/// runtime runs.
pub fn spawn_dropped_lines_reporter() {
    let Some(dropped) = DROPPED.get().cloned() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics::counter!("log_lines_dropped_total").absolute(dropped.dropped_lines() as u64);
        }
    });
}
