//! The command layer: one module per command family, each taking the plain
//! [`Settings`]. Commands read the files, connect, hand changing work to the
//! [`engine`](crate::engine), and own everything the user sees: stdout, the
//! `--report` file and the Slack message. Nothing below this layer prints a result.

pub mod ecs;
mod inspect;
mod migrate;
mod new;
pub mod rotate;

pub use migrate::changing;

use crate::db::{self, AnyDriver, ConnectPolicy, Driver};
use crate::files;
use crate::interrupt::Interrupt;
use crate::settings::{Action, Settings};
use migrator_core::error::{Error, Result};
use migrator_core::history::HistoryRow;
use migrator_core::migration::Migration;
use migrator_core::report::RunReport;
use migrator_core::source::{self, Parsed};

/// Runs one command. Results go to stdout; the caller prints the error.
pub async fn run(settings: &Settings, action: Action, interrupt: &Interrupt) -> Result<()> {
    match action {
        Action::New { name, sequential } => new::run(settings, &name, sequential),
        Action::EcsRun(spec) => ecs::run(&spec, interrupt).await,
        Action::Completions(script) => {
            crate::output::stdout(script.trim_end());
            Ok(())
        }
        Action::Status | Action::Version | Action::Validate => {
            inspect::run(settings, &action, interrupt).await
        }
        // Boxed: the rotation's future is large, and rarely needed.
        Action::Rotate { step, rotate } => {
            Box::pin(rotate::run(settings, step, &rotate, interrupt)).await
        }
        Action::Change(change) => migrate::run(settings, &change, interrupt).await,
    }
}

/// Writes `--report FILE`.
pub fn write_report(settings: &Settings, report: &RunReport) -> Result<()> {
    let Some(path) = &settings.report else {
        return Ok(());
    };
    let json = serde_json::to_string_pretty(report).expect("report serializes");
    let text = migrator_core::redact::scrub(&json).into_owned();
    std::fs::write(path, text + "\n").map_err(|e| unwritable(path, e))
}

/// Opens `--report FILE` for writing, changing nothing in it: a report that
/// cannot be written stops the run before the database is touched, so exit 2
/// keeps meaning "nothing changed".
pub fn check_report(settings: &Settings) -> Result<()> {
    let Some(path) = &settings.report else {
        return Ok(());
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(drop)
        .map_err(|e| unwritable(path, e))
}

fn unwritable(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::usage(format!(
        "cannot write the report to {}: {e}",
        path.display()
    ))
}

/// Reads the migration files: the folder when it exists, else the embedded set.
pub(crate) fn load(settings: &Settings) -> Result<Vec<Migration>> {
    let entries = if settings.path.is_dir() {
        files::read_dir(&settings.path)?
    } else if settings.path_explicit {
        let what = if settings.path.exists() {
            "is a file, not a folder: name the folder that holds the migrations"
        } else {
            "no such folder"
        };
        return Err(Error::usage(format!(
            "--path {}: {what}",
            settings.path.display()
        )));
    } else {
        let embedded = files::embedded();
        if embedded.is_empty() {
            return Err(Error::usage(format!(
                "no migrations: there is no {} folder and none were embedded at build time; \
                 pass --path DIR (or MIGRATOR_PATH)",
                settings.path.display()
            )));
        }
        tracing::info!(
            count = embedded.len(),
            "using the migrations embedded in the binary"
        );
        embedded
    };
    let Parsed {
        migrations,
        ignored,
        format,
    } = source::parse(&entries)?;
    if migrations.is_empty() {
        tracing::warn!(path = %settings.path.display(), "no migrations in the folder");
    }
    for m in &migrations {
        for script in std::iter::once(&m.up).chain(m.down.as_ref()) {
            if script.sql.trim().is_empty() {
                tracing::warn!(file = %script.path, "the file is empty: it runs nothing");
            }
        }
    }
    if !ignored.is_empty() {
        tracing::warn!(files = %ignored.join(", "), "files that match no migration format were ignored");
    }
    if let Some(format) = format {
        tracing::debug!(%format, count = migrations.len(), "migrations read");
    }
    Ok(migrations)
}

/// Reads the files on a blocking thread while connecting: both take milliseconds,
/// and a no-op run is mostly these two. A file error wins over a connection error
/// (exit 2 before 3), and nothing is written either way.
pub(crate) async fn load_and_connect(
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<(Vec<Migration>, AnyDriver)> {
    let for_load = settings.clone();
    let files = tokio::task::spawn_blocking(move || load(&for_load));
    let (files, db) = tokio::join!(files, connect(settings, interrupt));
    let files =
        files.map_err(|e| Error::usage(format!("reading the migrations failed: {e}")))??;
    Ok((files, db?))
}

/// [`load_and_connect`] for the read-only commands, with the history read as
/// soon as the session is up instead of after the files are parsed: over
/// 10,000 migrations, parsing alone takes 12–16 ms, and the server reads the
/// rows meanwhile. The same precedence: a file error wins over a connection or
/// read error.
pub(crate) async fn load_connect_and_read(
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<(Vec<Migration>, AnyDriver, Option<Vec<HistoryRow>>)> {
    let for_load = settings.clone();
    let files = tokio::task::spawn_blocking(move || load(&for_load));
    let read = async {
        let mut db = connect(settings, interrupt).await?;
        let rows = db.history().await?;
        Ok::<_, Error>((db, rows))
    };
    let (files, read) = tokio::join!(files, read);
    let files =
        files.map_err(|e| Error::usage(format!("reading the migrations failed: {e}")))??;
    let (db, rows) = read?;
    Ok((files, db, rows))
}

/// Connects where the settings say: the URL alone, or the URL and the
/// `--db-*` flags layered over `--db-secret` over `--rds-cluster` (`resolve`).
pub async fn connect(settings: &Settings, interrupt: &Interrupt) -> Result<AnyDriver> {
    let (target, info, left) = crate::db::resolve::target(settings, interrupt).await?;
    let policy = ConnectPolicy {
        wait: left,
        timeout: settings.connect_timeout,
    };
    tracing::debug!(database = %info, "connecting");
    db::connect(&target, info, policy, &settings.init_sql, interrupt).await
}
