//! Each outlet's line format as a `fmt` layer over any `MakeWriter`.
//!
//! - `human`: tracing-subscriber's default format (`time` and `color`
//!   honoured), spans as `job{job=…}:attempt{n=1}:filesystem{fs=…}:`.
//! - `json`: tracing-subscriber's JSON, with the current span and the span
//!   list.
//! - `logfmt`: `tracing-logfmt` (`ts=… level=… target=… span=…
//!   span_path=job>attempt>… message=… job=… n=… fs=…`).

use std::fmt;

use tracing::span::Record;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::{FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::Layer;
use zrelay_config::LogFormat;

use super::BoxLayer;

/// Formatting options of one outlet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FormatOpts {
    /// Include a timestamp.
    pub time: bool,
    /// ANSI colours (human only).
    pub ansi: bool,
}

impl FormatOpts {
    /// No colours.
    pub(crate) fn plain(time: bool) -> Self {
        FormatOpts { time, ansi: false }
    }
}

/// The layer writing `format` lines to `writer`.
pub(crate) fn layer<W>(format: LogFormat, o: FormatOpts, writer: W) -> BoxLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    match format {
        LogFormat::Human => {
            let l = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_ansi(o.ansi);
            // Span fields are formatted once per field formatter type, so
            // coloured ones get their own type and never leak ANSI escapes
            // into an uncoloured outlet.
            match (o.time, o.ansi) {
                (true, false) => l.boxed(),
                (false, false) => l.without_time().boxed(),
                (true, true) => l.fmt_fields(ColorFields::default()).boxed(),
                (false, true) => l.without_time().fmt_fields(ColorFields::default()).boxed(),
            }
        }
        LogFormat::Json => {
            let l = tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .with_ansi(false)
                .with_writer(writer);
            if o.time {
                l.boxed()
            } else {
                l.without_time().boxed()
            }
        }
        LogFormat::Logfmt => tracing_logfmt::builder()
            .with_timestamp(o.time)
            .with_span_name(true)
            .with_span_path(true)
            .layer()
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// [`DefaultFields`] for coloured outlets (a distinct type, see above).
#[derive(Debug, Default)]
struct ColorFields(DefaultFields);

impl<'w> FormatFields<'w> for ColorFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        self.0.format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        self.format_fields(current.as_writer(), fields)
    }
}
