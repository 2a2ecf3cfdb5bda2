//! Log lines on stderr: one JSON object per event carrying the current
//! OpenTelemetry `trace_id` and `span_id`, so a log line leads to its trace.
//! Stderr, because a child process whose stdout pipe nobody drains blocks
//! (STACK.md).

use std::fmt::{self, Write as _};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The JSON-lines layer services log with.
pub(crate) fn json_layer<S>() -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .fmt_fields(JsonFragments)
        .event_format(JsonLines)
}

/// Stores a span's fields as a JSON object's inside without the braces
/// (`"a":1,"b":"x"`), so that recording more fields later only appends:
/// `JsonFields` re-parses and re-serializes on every `record`, which the RPC
/// spans (recorded into when their status is known) would pay per call.
/// The event formatter puts the braces back when a line is written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonFragments;

impl<'writer> FormatFields<'writer> for JsonFragments {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FragmentVisitor {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }

    fn add_fields(&self, current: &'writer mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut visitor = FragmentVisitor {
            writer: &mut writer,
            first,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Writes `"name":value` pairs, comma-separated.
struct FragmentVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl FragmentVisitor<'_, '_> {
    /// Writes `"name":` (with the comma before it when needed); false when
    /// an earlier write failed.
    fn key(&mut self, field: &Field) -> bool {
        if self.result.is_err() {
            return false;
        }
        if !self.first {
            self.result = self.writer.write_char(',');
        }
        self.first = false;
        if self.result.is_ok() {
            self.result =
                write_json_str(self.writer, field.name()).and_then(|()| self.writer.write_char(':'));
        }
        self.result.is_ok()
    }

    fn display(&mut self, field: &Field, value: impl fmt::Display) {
        if self.key(field) {
            self.result = write!(self.writer, "{value}");
        }
    }

    fn string(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            self.result = write_json_str(self.writer, value);
        }
    }
}

// Written straight into the span's buffer, escaped on the fly: building a
// `serde_json::Value` per field (and a `String` per `Debug`/`Display` field)
// was most of what the JSON layer cost a span.
impl Visit for FragmentVisitor<'_, '_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.display(field, value);
        } else {
            self.display(field, "null");
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.display(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.display(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.display(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.result = self
                .writer
                .write_char('"')
                .and_then(|()| write!(Escaping(&mut *self.writer), "{value:?}"))
                .and_then(|()| self.writer.write_char('"'));
        }
    }
}

/// Writes `s` as a JSON string, quotes included.
fn write_json_str(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaping(&mut *w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaping<'a, W: ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => {
                    self.0.write_str(&s[start..i])?;
                    write!(self.0, "\\u{b:04x}")?;
                    start = i + 1;
                    continue;
                }
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            self.0.write_str(escaped)?;
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// The human-readable layer the CLI logs with when asked to.
pub(crate) fn compact_layer<S>() -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .compact()
}

/// Formats an event as one JSON object: `timestamp`, `level`, `target`,
/// the event's fields (`message` among them), `span` (the current span's
/// name and fields), `spans` (names from the root), `trace_id`, `span_id`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), Value::String(timestamp));
        line.insert("level".into(), Value::String(meta.level().as_str().into()));
        line.insert("target".into(), Value::String(meta.target().into()));
        event.record(&mut JsonVisitor(&mut line));

        let mut ids = None;
        if let Some(scope) = ctx.event_scope() {
            let mut names = Vec::new();
            let mut current = None;
            for span in scope {
                if ids.is_none() {
                    ids = crate::context::ids_of(&span);
                }
                if current.is_none() {
                    let mut fields = Map::new();
                    fields.insert("name".into(), Value::String(span.name().into()));
                    if let Some(formatted) = span.extensions().get::<FormattedFields<N>>()
                        && !formatted.fields.is_empty()
                        && let Ok(Value::Object(map)) =
                            serde_json::from_str::<Value>(&format!("{{{}}}", formatted.fields))
                    {
                        fields.extend(map);
                    }
                    current = Some(fields);
                }
                names.push(Value::String(span.name().into()));
            }
            names.reverse();
            if let Some(fields) = current {
                line.insert("span".into(), Value::Object(fields));
            }
            line.insert("spans".into(), Value::Array(names));
        }

        // The event's span's context ([`ContextLayer`]), else that of the
        // span this thread is in (when the log filter hides the span the
        // context layer sees), else OpenTelemetry's current context.
        let ids = ids.or_else(crate::context::entered_ids).or_else(|| {
            let cx = opentelemetry::Context::current();
            let span = cx.span();
            let sc = span.span_context();
            sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
        });
        if let Some((trace_id, span_id)) = ids {
            line.insert("trace_id".into(), Value::String(trace_id.to_string()));
            line.insert("span_id".into(), Value::String(span_id.to_string()));
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Collects an event's fields into a JSON object.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::{Config, Pipeline};

    /// A writer that keeps what was written, for reading the lines back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_json_with_the_current_trace_and_span_ids() {
        let pipeline = Pipeline::new(&Config::from_lookup("t", |_| None)).unwrap();
        lines_carry_ids(pipeline.otel_layer());
        // What a service without an exporter runs: the context layer.
        lines_carry_ids(crate::context::ContextLayer::new(crate::Sampling::default()));
    }

    fn lines_carry_ids(
        span_layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    ) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(span_layer).with(
            tracing_subscriber::fmt::layer()
                .with_writer(move || writer.clone())
                .fmt_fields(JsonFragments)
                .event_format(JsonLines),
        );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "handle",
                tile = "riverflow",
                wave = tracing::field::Empty,
                note = "a \"q\"\n\u{1}\\",
                list = ?["x\"y"],
                ratio = 0.5,
                nan = f64::NAN,
                ok = true,
            );
            span.record("wave", 4);
            let _entered = span.enter();
            tracing::info!(count = 3, "did \"it\"");
            (crate::trace_id_of_current(), crate::current_origin().traceparent)
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "did \"it\"");
        assert_eq!(line["count"], 3);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"]["name"], "handle");
        assert_eq!(line["span"]["tile"], "riverflow");
        assert_eq!(line["span"]["wave"], 4);
        assert_eq!(line["span"]["note"], "a \"q\"\n\u{1}\\");
        assert_eq!(line["span"]["list"], r#"["x\"y"]"#);
        assert_eq!(line["span"]["ratio"], 0.5);
        assert_eq!(line["span"]["nan"], Value::Null);
        assert_eq!(line["span"]["ok"], true);
        assert_eq!(line["trace_id"], Value::String(trace_id.clone()));
        assert_eq!(trace_id.len(), 32);
        let logged_span_id = line["span_id"].as_str().unwrap();
        assert!(span_id.contains(logged_span_id), "{span_id} vs {logged_span_id}");
    }
}
