//! Everything the process prints goes through here or through the log writer,
//! both of which scrub registered secrets. stdout carries results only; stderr
//! carries logs and errors.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;
use migrator_core::error::ExitStatus;

/// Prints one result line (or block) on stdout. A closed pipe is not an error.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", migrator_core::redact::scrub(text));
}

/// Prints many lines on stdout as they come (each masked like [`stdout`]),
/// buffered: a 10,000-line `status` never sits in memory as one text.
pub fn stdout_lines(lines: impl IntoIterator<Item = String>) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in lines {
        if writeln!(out, "{}", migrator_core::redact::scrub(&line)).is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// Prints an error on stderr.
pub fn stderr_error(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {}", migrator_core::redact::scrub(text));
}

/// A stderr writer that masks secrets in every log line.
pub struct ScrubbingStderr;

impl Write for ScrubbingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(migrator_core::redact::scrub(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ScrubbingStderr {
    type Writer = ScrubbingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingStderr
    }
}

/// Installs the log subscriber: human text by default, JSON lines for CloudWatch.
/// `MIGRATOR_LOG` (error, warn, info, debug, trace) sets the level; default info.
/// The MySQL driver's own "slow statement" warnings (any statement or lock wait
/// over a second) only show at debug: a long migration is no warning of ours.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = std::env::var("MIGRATOR_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let driver = if level >= tracing::Level::DEBUG {
        LevelFilter::from_level(level)
    } else {
        LevelFilter::ERROR
    };
    let targets = Targets::new()
        .with_default(level)
        .with_target("sqlx", driver);
    let builder = tracing_subscriber::fmt()
        .with_writer(ScrubbingStderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(colors())
            .finish()
            .with(targets)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .finish()
            .with(targets)
            .try_init(),
    };
}

/// Colours on stderr: only on a terminal, and never with `NO_COLOR` set (to
/// anything but nothing).
fn colors() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The run's final error, on stderr: `error: …` in text; with `--log-format
/// json` one more JSON line like every other, carrying the exit code and its
/// name, so CloudWatch users can filter on it.
pub fn final_error(format: LogFormat, message: &str, status: ExitStatus) {
    match format {
        LogFormat::Text => stderr_error(message),
        LogFormat::Json => {
            tracing::error!(code = status.name(), exit_code = status.code(), "{message}")
        }
    }
}
