//! The `on_event` hook: every event with the name of its job.
//!
//! Spans carrying a `job` field (`job`, `snapshotter`, `conn`, …) store the
//! job's name in their extensions when created (or when `job` is recorded
//! later); an event's job is the one of its nearest such span.

use std::fmt;
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The callback of [`super::LogOptions::on_event`]: level and job name.
pub type EventCallback = Arc<dyn Fn(Level, Option<&str>) + Send + Sync>;

/// The span field naming the job.
const JOB_FIELD: &str = "job";

/// A span's job name, in its extensions.
struct JobName(String);

/// Whether `m` is a span with a `job` field.
pub(crate) fn is_job_span(m: &Metadata<'_>) -> bool {
    m.is_span() && m.fields().field(JOB_FIELD).is_some()
}

/// Calls the callback for each event it sees.
pub(crate) struct JobLayer {
    cb: EventCallback,
}

impl JobLayer {
    pub(crate) fn new(cb: EventCallback) -> Self {
        JobLayer { cb }
    }
}

#[derive(Default)]
struct JobVisitor(Option<String>);

impl Visit for JobVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == JOB_FIELD {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == JOB_FIELD {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for JobLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_job_span(attrs.metadata()) {
            return;
        }
        let mut v = JobVisitor::default();
        attrs.record(&mut v);
        if let (Some(job), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().replace(JobName(job));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut v = JobVisitor::default();
        values.record(&mut v);
        if let (Some(job), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().replace(JobName(job));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let ext = span.extensions();
                if let Some(job) = ext.get::<JobName>() {
                    (self.cb)(level, Some(&job.0));
                    return;
                }
            }
        }
        (self.cb)(level, None);
    }
}
