//! The one `tracing` layer a process runs besides OpenTelemetry's: it gives
//! spans their W3C context when nothing is exported, keeps the fields of the
//! spans logs want, writes JSON log lines, and is the subscriber's only
//! filter.
//!
//! One layer rather than a context layer and a log layer, each behind a
//! per-layer filter, because of what that cost every call: with per-layer
//! filters every span enter and exit looks the span up once per filter, and
//! a span is entered on every poll of the future it instruments
//! (BENCHMARKS.md, "Telemetry overhead"). Here entering a span costs this
//! layer nothing: the registry keeps the stack, and a log line finds its
//! span's context through it.

use std::cell::RefCell;
use std::fmt;
use std::io::Write as _;

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::context_gen::ContextGen;
use crate::log::{FragmentVisitor, SpanFields, write_json_str};

/// Targets whose spans never get a trace context of their own: the
/// transport the exporter itself uses, and the SDK, so that exporting cannot
/// feed itself.
pub(crate) const QUIET_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
];

/// The spans that get a trace context: INFO and above, except
/// [`QUIET_TARGETS`].
pub(crate) fn span_targets() -> Targets {
    let mut targets = Targets::new().with_default(LevelFilter::INFO);
    for target in QUIET_TARGETS {
        targets = targets.with_target(*target, LevelFilter::OFF);
    }
    targets
}

/// What logs want, from `RUST_LOG`.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per process, read on every span")]
pub(crate) enum LogFilter {
    /// No logs.
    Off,
    /// Plain `target=level` directives: decided once per callsite.
    Targets(Targets),
    /// Directives on spans or fields, which only [`EnvFilter`] handles.
    Env(Box<EnvFilter>),
}

impl LogFilter {
    /// Parses `RUST_LOG`-style directives.
    pub(crate) fn parse(directives: &str) -> crate::Result<Self> {
        // `Targets` would read a span directive (`[span{f=v}]=debug`) as an
        // odd target name rather than refuse it.
        let plain = !directives.contains(['[', ']', '{', '}', '"']);
        match directives.parse::<Targets>() {
            Ok(targets) if plain => Ok(LogFilter::Targets(targets)),
            _ => Ok(LogFilter::Env(Box::new(EnvFilter::try_new(directives)?))),
        }
    }

    fn interest(&self, meta: &'static Metadata<'static>) -> Interest {
        match self {
            LogFilter::Off => Interest::never(),
            LogFilter::Targets(t) => {
                if t.would_enable(meta.target(), meta.level()) {
                    Interest::always()
                } else {
                    Interest::never()
                }
            }
            LogFilter::Env(env) => Layer::<tracing_subscriber::Registry>::register_callsite(env, meta),
        }
    }

    fn enabled<S: Subscriber>(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        match self {
            LogFilter::Off => false,
            LogFilter::Targets(t) => t.would_enable(meta.target(), meta.level()),
            LogFilter::Env(env) => env.enabled(meta, ctx),
        }
    }

    fn max_level(&self) -> LevelFilter {
        match self {
            LogFilter::Off => LevelFilter::OFF,
            LogFilter::Targets(t) => {
                Layer::<tracing_subscriber::Registry>::max_level_hint(t).unwrap_or(LevelFilter::TRACE)
            }
            LogFilter::Env(env) => EnvFilter::max_level_hint(env).unwrap_or(LevelFilter::TRACE),
        }
    }

    fn env(&self) -> Option<&EnvFilter> {
        match self {
            LogFilter::Env(env) => Some(env),
            _ => None,
        }
    }
}

/// What the [`LocalLayer`] keeps in a span's extensions.
#[derive(Debug)]
pub(crate) struct SpanState {
    /// The span's W3C context, when this layer makes contexts (nothing is
    /// exported).
    pub(crate) context: Option<SpanContext>,
    /// The span's fields, when JSON logs want the span.
    fields: Option<SpanFields>,
}

/// See the module documentation.
pub(crate) struct LocalLayer {
    /// Makes span contexts; `None` when OpenTelemetry's layer does.
    context: Option<ContextGen>,
    /// Which spans and events logs want.
    logs: LogFilter,
    /// Where JSON lines go; `None` when another layer writes the logs (or
    /// none does).
    json: Option<BoxMakeWriter>,
    /// Which spans get a context (when `context` is set) and must not be
    /// filtered out for OpenTelemetry's layer (when it is not).
    spans: Targets,
}

impl fmt::Debug for LocalLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLayer")
            .field("context", &self.context)
            .field("logs", &self.logs)
            .field("json", &self.json.is_some())
            .finish_non_exhaustive()
    }
}

impl LocalLayer {
    /// `context`: make span contexts (no exporter). `logs`: what logs want;
    /// `json`: write them as JSON lines there.
    pub(crate) fn new(context: Option<ContextGen>, logs: LogFilter, json: Option<BoxMakeWriter>) -> Self {
        LocalLayer {
            context,
            logs,
            json,
            spans: span_targets(),
        }
    }

    pub(crate) fn context_gen(&self) -> Option<&ContextGen> {
        self.context.as_ref()
    }

    fn wants_span(&self, meta: &Metadata<'_>) -> bool {
        meta.is_span() && self.spans.would_enable(meta.target(), meta.level())
    }
}

impl<S> Layer<S> for LocalLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if self.wants_span(meta) {
            // Even when logs pass it over, an env filter keeps track of it.
            if let Some(env) = self.logs.env() {
                let _ = Layer::<S>::register_callsite(env, meta);
            }
            return Interest::always();
        }
        self.logs.interest(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.wants_span(meta) || self.logs.enabled(meta, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(std::cmp::max(LevelFilter::INFO, self.logs.max_level()))
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(env) = self.logs.env() {
            env.on_new_span(attrs, id, ctx.clone());
        }
        let logged = self.json.is_some() && self.logs.enabled(attrs.metadata(), ctx.clone());
        let Some(span) = ctx.span(id) else {
            return;
        };
        let context = self.context.as_ref().map(|contexts| {
            let parent = span.parent().and_then(|p| {
                p.extensions()
                    .get::<SpanState>()
                    .and_then(|state| state.context.clone())
            });
            contexts.child_of(parent.as_ref())
        });
        let fields = logged.then(|| {
            let mut fields = SpanFields::with_capacity(attrs.metadata().fields().len());
            attrs.record(&mut fields);
            fields
        });
        if context.is_some() || fields.is_some() {
            span.extensions_mut().insert(SpanState { context, fields });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(env) = self.logs.env() {
            env.on_record(id, values, ctx.clone());
        }
        if self.json.is_none() {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(SpanState {
            fields: Some(fields), ..
        }) = extensions.get_mut::<SpanState>()
        {
            values.record(fields);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(env) = self.logs.env() {
            env.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(env) = self.logs.env() {
            env.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(env) = self.logs.env() {
            env.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(make_writer) = &self.json else {
            return;
        };
        // The global filter let the event through for logs or, when an
        // OpenTelemetry layer shares the subscriber, maybe only for it.
        if !self.logs.enabled(event.metadata(), ctx.clone()) {
            return;
        }
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        LINE.with(|line| {
            // A log line written while writing one (a writer that logs)
            // finds the buffer taken and uses a fresh one.
            let mut fresh = String::new();
            let mut taken = line.try_borrow_mut();
            let buf = match taken.as_deref_mut() {
                Ok(buf) => buf,
                Err(_) => &mut fresh,
            };
            buf.clear();
            if json_line(buf, event, &ctx).is_ok() {
                let _ = make_writer
                    .make_writer_for(event.metadata())
                    .write_all(buf.as_bytes());
            }
        });
    }
}

/// Writes `event` as one JSON object and a newline: `timestamp`, `level`,
/// `target`, the event's fields (`message` among them), `span` (the
/// innermost logged span's name and fields), `spans` (logged span names from
/// the root), `trace_id` and `span_id` (of the innermost span that has a
/// context).
fn json_line<S>(buf: &mut String, event: &Event<'_>, ctx: &Context<'_, S>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    use fmt::Write as _;
    let meta = event.metadata();
    buf.push_str("{\"timestamp\":\"");
    SystemTime.format_time(&mut Writer::new(&mut *buf))?;
    buf.push_str("\",\"level\":\"");
    buf.push_str(meta.level().as_str());
    buf.push_str("\",\"target\":");
    write_json_str(buf, meta.target())?;
    let mut fields = String::new();
    event.record(&mut FragmentVisitor::new(&mut fields));
    if !fields.is_empty() {
        buf.push(',');
        buf.push_str(&fields);
    }

    let mut ids = None;
    if let Some(scope) = ctx.event_scope(event) {
        let mut names: Vec<&'static str> = Vec::new();
        let mut innermost = true;
        for span in scope {
            let extensions = span.extensions();
            let state = extensions.get::<SpanState>();
            if ids.is_none() {
                ids = state
                    .and_then(|s| s.context.as_ref())
                    .map(|sc| (sc.trace_id(), sc.span_id()));
            }
            let Some(fields) = state.and_then(|s| s.fields.as_ref()) else {
                continue;
            };
            if innermost {
                innermost = false;
                buf.push_str(",\"span\":{\"name\":");
                write_json_str(buf, span.name())?;
                fields.write_json(buf);
                buf.push('}');
            }
            names.push(span.name());
        }
        if !names.is_empty() {
            buf.push_str(",\"spans\":[");
            for (i, name) in names.iter().rev().enumerate() {
                if i > 0 {
                    buf.push(',');
                }
                write_json_str(buf, name)?;
            }
            buf.push(']');
        }
    }
    // Without local contexts, OpenTelemetry's layer keeps them.
    let ids = ids.or_else(|| {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
    });
    if let Some((trace_id, span_id)) = ids {
        write!(buf, ",\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"")?;
    }
    buf.push_str("}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::{Config, Pipeline, Sampling};

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

    impl Captured {
        fn writer(&self) -> BoxMakeWriter {
            let writer = self.clone();
            BoxMakeWriter::new(move || writer.clone())
        }

        fn lines(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        }
    }

    /// A service's subscriber without an exporter, JSON lines captured.
    fn service(rust_log: &str, captured: &Captured) -> impl Subscriber + Send + Sync + 'static {
        let config = Config::from_lookup("t", |k| (k == "RUST_LOG").then(|| rust_log.to_owned()));
        let pipeline = Pipeline::new(&config).unwrap();
        assert!(!pipeline.exports());
        pipeline
            .subscriber_with_writer(&config, captured.writer())
            .unwrap()
    }

    #[test]
    fn lines_are_json_with_the_current_trace_and_span_ids() {
        // Without an exporter: this layer keeps the contexts.
        let captured = Captured::default();
        lines_carry_ids(service("info", &captured), &captured);
        // With one: OpenTelemetry's layer keeps them, this one only logs.
        let captured = Captured::default();
        let pipeline = Pipeline::new(&Config::from_lookup("t", |_| None)).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(pipeline.otel_layer())
            .with(LocalLayer::new(
                None,
                LogFilter::parse("info").unwrap(),
                Some(captured.writer()),
            ));
        lines_carry_ids(subscriber, &captured);
    }

    fn lines_carry_ids(subscriber: impl Subscriber + Send + Sync + 'static, captured: &Captured) {
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let outer = tracing::info_span!("outer");
            let _outer = outer.enter();
            let span = tracing::info_span!(
                "handle",
                tile = "riverflow",
                wave = tracing::field::Empty,
                note = "a \"q\"\n\u{1}\\",
                list = ?["x\"y"],
                ratio = 0.5,
                nan = f64::NAN,
                ok = true,
                big = u64::MAX,
                neg = -3i64,
            );
            span.record("wave", 4);
            let _entered = span.enter();
            tracing::info!(count = 3, "did \"it\"");
            tracing::debug!("below the filter");
            (crate::trace_id_of_current(), crate::current_origin().traceparent)
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["message"], "did \"it\"");
        assert_eq!(line["count"], 3);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].as_str().unwrap().starts_with("20"));
        assert_eq!(line["span"]["name"], "handle");
        assert_eq!(line["span"]["tile"], "riverflow");
        assert_eq!(line["span"]["wave"], 4);
        assert_eq!(line["span"]["note"], "a \"q\"\n\u{1}\\");
        assert_eq!(line["span"]["list"], r#"["x\"y"]"#);
        assert_eq!(line["span"]["ratio"], 0.5);
        assert_eq!(line["span"]["nan"], Value::Null);
        assert_eq!(line["span"]["ok"], true);
        assert_eq!(line["span"]["big"], u64::MAX);
        assert_eq!(line["span"]["neg"], -3);
        assert_eq!(line["spans"], serde_json::json!(["outer", "handle"]));
        assert_eq!(line["trace_id"], Value::String(trace_id.clone()));
        assert_eq!(trace_id.len(), 32);
        let logged_span_id = line["span_id"].as_str().unwrap();
        assert_eq!(logged_span_id.len(), 16);
        assert!(span_id.contains(logged_span_id), "{span_id} vs {logged_span_id}");
    }

    #[test]
    fn with_logs_turned_down_spans_keep_their_context_and_only_what_logs_want_is_written() {
        let captured = Captured::default();
        let (trace_id, traceparent) = tracing::subscriber::with_default(service("warn", &captured), || {
            let span = tracing::info_span!("handle", tile = "riverflow");
            let _entered = span.enter();
            tracing::info!("not written");
            tracing::warn!("written");
            (crate::trace_id_of_current(), crate::current_origin().traceparent)
        });
        assert_eq!(
            trace_id.len(),
            32,
            "INFO spans get a context whatever RUST_LOG says"
        );
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["message"], "written");
        assert_eq!(lines[0]["trace_id"], Value::String(trace_id));
        assert!(traceparent.contains(lines[0]["span_id"].as_str().unwrap()));
        assert!(lines[0].get("span").is_none(), "the span is not logged at warn");
    }

    #[test]
    fn span_directives_fall_back_to_the_env_filter() {
        let filter = LogFilter::parse("warn,[special]=debug").unwrap();
        assert!(matches!(filter, LogFilter::Env(_)));
        assert!(matches!(
            LogFilter::parse("info,h2=off,tilewave::rpc=debug").unwrap(),
            LogFilter::Targets(_)
        ));
        assert!(LogFilter::parse("info,[[[").is_err());

        let captured = Captured::default();
        tracing::subscriber::with_default(service("warn,[special]=debug", &captured), || {
            tracing::debug!("outside: not written");
            let special = tracing::info_span!("special");
            special.in_scope(|| tracing::debug!("inside: written"));
            let other = tracing::info_span!("other");
            other.in_scope(|| tracing::debug!("other: not written"));
        });
        let messages: Vec<Value> = captured.lines().iter().map(|l| l["message"].clone()).collect();
        assert_eq!(messages, vec![Value::from("inside: written")]);
    }

    #[test]
    fn a_process_without_logs_still_gives_spans_contexts() {
        let pipeline = Pipeline::new(&Config::from_lookup("t", |_| None)).unwrap();
        let layer = LocalLayer::new(Some(ContextGen::new(Sampling::default())), LogFilter::Off, None);
        assert!(format!("{layer:?}").contains("json: false"));
        tracing::subscriber::with_default(pipeline.subscriber(), || {
            let span = tracing::info_span!("a");
            assert_eq!(span.in_scope(crate::trace_id_of_current).len(), 32);
            // Quiet targets and levels below INFO get no span at all.
            assert!(tracing::debug_span!("b").is_disabled());
            assert!(tracing::info_span!(target: "h2::proto", "c").is_disabled());
        });
    }
}
