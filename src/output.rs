//! Everything the process prints goes through here or through the log writer,
//! both of which scrub registered secrets. stdout carries results only; stderr
//! carries logs and errors.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;

/// Prints one result line (or block) on stdout. A closed pipe is not an error.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", migrator_core::redact::scrub(text));
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
pub fn init_logging(format: LogFormat) {
    let level = std::env::var("MIGRATOR_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt()
        .with_writer(ScrubbingStderr)
        .with_max_level(level)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
