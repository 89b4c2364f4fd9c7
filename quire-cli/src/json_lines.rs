//! The JSON log line, written straight into the line's buffer.
//!
//! The shape is tracing-subscriber's `json()` format with the event's fields flattened and the
//! current span: `timestamp`, `level`, the event's fields, `target`, then `span` (the current
//! span's fields and its `name`). Every request logs one such line, and that format made it
//! the largest single cost of a cached read (15% of the server's CPU for `GET /api/tags`, by
//! `perf record`): it parses each span's stored fields back from JSON to write them again and
//! sends every value through a generic serializer. Here the span's fields, stored as JSON
//! when the span was made, are spliced in as they are, and values are written as they are
//! visited; serde_json still does the escaping and the numbers, so values read the same.

use std::fmt;
use std::io;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format of quire's JSON lines; span fields must be stored by [`JsonFields`].
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Lines that came from the `log` crate carry their real target in their fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut writer)?;
        write!(writer, "\",\"level\":\"{}\"", meta.level())?;
        let mut fields = Fields {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str(",\"target\":")?;
        json(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            let stored = extensions
                .get::<FormattedFields<JsonFields>>()
                .map(|stored| stored.fields.as_str())
                .and_then(|object| object.strip_prefix('{')?.strip_suffix('}'))
                .unwrap_or_default();
            if !stored.is_empty() {
                writer.write_str(stored)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            json(&mut writer, span.name())?;
            writer.write_char('}')?;
        }
        writer.write_str("}\n")
    }
}

/// Writes each field of an event as `,"name":value`.
struct Fields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    fn entry(&mut self, field: &Field, value: &(impl serde::Serialize + ?Sized)) {
        let name = field.name();
        // `log.target` and the like are already in the metadata (see `NormalizeEvent`).
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            self.writer.write_char(',')?;
            json(self.writer, name)?;
            self.writer.write_char(':')?;
            json(self.writer, value)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entry(field, &value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, &value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, &value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, &value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.entry(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, &format!("{value:?}"));
    }
}

/// Writes `value` as JSON into a `fmt::Write`.
fn json(writer: &mut Writer<'_>, value: &(impl serde::Serialize + ?Sized)) -> fmt::Result {
    serde_json::to_writer(IoWriter(writer), value).map_err(|_| fmt::Error)
}

/// A `fmt::Write` as the `io::Write` serde_json writes to; serde_json writes only UTF-8.
struct IoWriter<'a, 'w>(&'a mut Writer<'w>);

impl io::Write for IoWriter<'_, '_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let text = std::str::from_utf8(bytes).map_err(io::Error::other)?;
        self.0.write_str(text).map_err(io::Error::other)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Logs the same events, some inside spans, through `subscriber`; its lines as JSON
    /// values without their time stamps (the one thing that must differ).
    fn lines_of(subscriber: impl Subscriber + Send + Sync, lines: &Lines) -> Vec<Value> {
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                status = 200u16,
                latency_ms = 0.0011719999999999999,
                "outside any span"
            );
            let span = tracing::info_span!(
                "request",
                request_id = "a \"quoted\" id",
                trace_id = tracing::field::Empty
            );
            let _entered = span.enter();
            tracing::info!(
                method = %"GET",
                path = "/api/tags\n",
                ok = true,
                below = -3i64,
                nothing = f64::NAN,
                error = ?std::io::Error::other("disk full"),
                "request done"
            );
            span.record("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
            tracing::warn!(r#type = "late", "after a field was recorded");
            let inner = tracing::info_span!("inner");
            let _inner = inner.enter();
            tracing::info!("in a span without fields");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| {
                let mut value: Value = serde_json::from_str(line).unwrap();
                let stamp = value["timestamp"].as_str().unwrap().to_owned();
                assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
                value.as_object_mut().unwrap().remove("timestamp");
                value
            })
            .collect()
    }

    /// Every line reads exactly as tracing-subscriber's own JSON format writes it.
    #[test]
    fn lines_match_tracing_subscribers_json_format() {
        let ours = Lines::default();
        let theirs = Lines::default();
        let our_lines = lines_of(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(ours.clone())
                    .fmt_fields(JsonFields::new())
                    .event_format(JsonLines),
            ),
            &ours,
        );
        let their_lines = lines_of(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .with_writer(theirs.clone())
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
            &theirs,
        );
        assert_eq!(our_lines.len(), 4);
        assert_eq!(our_lines, their_lines);
        assert_eq!(our_lines[1]["span"]["request_id"], "a \"quoted\" id");
        assert_eq!(our_lines[1]["path"], "/api/tags\n");
        assert_eq!(our_lines[1]["nothing"], Value::Null);
        assert_eq!(
            our_lines[2]["span"]["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(our_lines[3]["span"], serde_json::json!({"name": "inner"}));
    }
}
