//! The command layer: loads files, connects, locks, asks the planner, drives the
//! driver, and fills the run report. The only module that sequences IO.
//!
//! Order of every changing command: read files → connect → lock → read history →
//! validate → plan → split the planned scripts (bad SQL is found here, before any
//! change) → create the history table if needed → execute → unlock. Nothing is
//! written before the last check has passed.

pub mod ecs;
pub mod rotate;

use std::time::Instant;

use crate::db::{self, AnyDriver, Driver, Exec, ExecError, WaitPolicy};
use crate::files;
use crate::interrupt::Interrupt;
use crate::settings::{Action, OutputFormat, Settings};
use migrator_core::adopt::{self, Adopted, Foreign, Tool};
use migrator_core::error::{Error, Failure, Result};
use migrator_core::history::{HistoryRow, current_version};
use migrator_core::migration::{Engine, Migration, Script};
use migrator_core::plan::{self, DownTarget};
use migrator_core::report::{Adoption, Direction, RunReport, StepReport};
use migrator_core::source::{self, Parsed};
use migrator_core::split::{self, Statement};
use migrator_core::status;

/// Runs one command. Results go to stdout; the caller prints the error.
pub async fn run(settings: &Settings, action: Action, interrupt: &Interrupt) -> Result<()> {
    match action {
        Action::New { name } => new_migration(settings, &name),
        Action::EcsRun(spec) => ecs::run(&spec, interrupt).await,
        Action::Status | Action::Version | Action::Validate => {
            inspect(settings, &action, interrupt).await
        }
        // Boxed: the rotation's future is large, and rarely needed.
        Action::Rotate { step, rotate } => {
            Box::pin(rotate::run(settings, step, &rotate, interrupt)).await
        }
        Action::Up { .. }
        | Action::Down { .. }
        | Action::Force { .. }
        | Action::Baseline { .. } => {
            let (mut report, result) = changing(settings, &action, interrupt).await;
            // The report is written (and the summary shown) before Slack is tried,
            // so a webhook that hangs never loses it; the file is rewritten, and
            // the JSON printed, once the notification's fate is known.
            write_report(settings, &report)?;
            let (ok, text) = (result.is_ok(), settings.output == OutputFormat::Text);
            if text {
                print_report(settings, &report, ok);
            }
            let result = crate::notify::notify(&settings.notify, &mut report, result).await;
            write_report(settings, &report)?;
            if !text {
                print_report(settings, &report, ok);
            }
            result
        }
    }
}

/// Runs a changing command (`up`, `down`, `force`, `baseline`) and fills its
/// report, without printing it or telling Slack: the caller does.
pub async fn changing(
    settings: &Settings,
    action: &Action,
    interrupt: &Interrupt,
) -> (RunReport, Result<()>) {
    // Read while the run goes on; it waits on nothing the run needs.
    let context = tokio::spawn(crate::notify::context_from_env());
    let mut report = RunReport::new(action.name());
    report.environment = settings.env_label.clone();
    let started = Instant::now();
    let result = change(settings, action, interrupt, &mut report).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.finish(&result);
    report.context = context.await.unwrap_or_default();
    (report, result)
}

/// Writes `--report FILE`.
pub fn write_report(settings: &Settings, report: &RunReport) -> Result<()> {
    let Some(path) = &settings.report else {
        return Ok(());
    };
    let json = serde_json::to_string_pretty(report).expect("report serializes");
    let text = migrator_core::redact::scrub(&json).into_owned();
    std::fs::write(path, text + "\n").map_err(|e| {
        Error::usage(format!(
            "cannot write the report to {}: {e}",
            path.display()
        ))
    })
}

/// Prints the report on stdout: the text summary or the JSON.
fn print_report(settings: &Settings, report: &RunReport, ok: bool) {
    match settings.output {
        OutputFormat::Json => {
            crate::output::stdout(&serde_json::to_string_pretty(report).expect("report serializes"))
        }
        OutputFormat::Text if ok || !report.applied.is_empty() => {
            crate::output::stdout(report.summary().trim_end())
        }
        OutputFormat::Text => {}
    }
}

/// Reads the migration files: the folder when it exists, else the embedded set.
fn load(settings: &Settings) -> Result<Vec<Migration>> {
    let entries = if settings.path.is_dir() {
        files::read_dir(&settings.path)?
    } else if settings.path_explicit {
        return Err(Error::usage(format!(
            "--path {}: no such folder",
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
    if !ignored.is_empty() {
        tracing::warn!(files = %ignored.join(", "), "files that match no migration format were ignored");
    }
    if let Some(format) = format {
        tracing::debug!(%format, count = migrations.len(), "migrations read");
    }
    if let Some(m) = migrations.iter().find(|m| m.version > i64::MAX as u64) {
        return Err(Error::usage(format!(
            "{}: version {} is too large (the largest is {})",
            m.up.path,
            m.version,
            i64::MAX
        )));
    }
    Ok(migrations)
}

/// Reads the files on a blocking thread while connecting: both take milliseconds,
/// and a no-op run is mostly these two. A file error wins over a connection error
/// (exit 2 before 3), and nothing is written either way.
async fn load_and_connect(
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

/// Connects where the settings say: the URL alone, or the URL and the
/// `--db-*` flags layered over `--db-secret` over `--rds-cluster` (`resolve`).
pub async fn connect(settings: &Settings, interrupt: &Interrupt) -> Result<AnyDriver> {
    let (target, info, left) = crate::db::resolve::target(settings, interrupt).await?;
    let wait = left.map(|total| WaitPolicy { total });
    tracing::debug!(database = %info, "connecting");
    db::connect(&target, info, wait, interrupt).await
}

/// The engine, when the URL alone says (before any AWS call).
fn engine_of(settings: &Settings) -> Option<Engine> {
    let url = settings.database_url.as_deref()?;
    migrator_core::conn::parse_url(url)
        .ok()
        .and_then(|p| p.engine)
}

/// `status`, `version`, `validate`: read-only, no lock, never create anything.
async fn inspect(settings: &Settings, action: &Action, interrupt: &Interrupt) -> Result<()> {
    let (files, mut db) = load_and_connect(settings, interrupt).await?;
    let rows = match db.history().await? {
        Some(rows) => rows,
        None if settings.adopt => match find_foreign(&mut db, &files).await? {
            Some((adoption, adopted)) => {
                tracing::info!(
                    tool = adoption.tool.label(),
                    table = %adoption.table,
                    "showing another tool's history; `up` will adopt it"
                );
                adopted_rows(&adopted)
            }
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let json = settings.output == OutputFormat::Json;
    match action {
        Action::Status => {
            let s = status::build(&files, &rows);
            if json {
                crate::output::stdout(
                    &serde_json::to_string_pretty(&s).expect("status serializes"),
                );
            } else {
                crate::output::stdout(s.render().trim_end());
            }
            Ok(())
        }
        Action::Version => {
            let s = status::build(&files, &rows);
            if json {
                let v = serde_json::json!({"version": s.current_version, "dirty": s.dirty});
                crate::output::stdout(&v.to_string());
            } else {
                let v = s
                    .current_version
                    .map_or_else(|| "none".into(), |v| v.to_string());
                crate::output::stdout(&format!("{v}{}", if s.dirty { " (dirty)" } else { "" }));
            }
            Ok(())
        }
        _ => {
            let problems = plan::validate(&files, &rows, settings.checks);
            if !problems.is_empty() {
                return Err(Error::Refused(problems));
            }
            let pending = plan::plan_up(&files, &rows, None)?.len();
            crate::output::stdout(&format!(
                "ok: {} applied, {pending} pending; the database and the files agree",
                rows.len()
            ));
            Ok(())
        }
    }
}

/// `up`, `down`, `force`: lock, check, plan, run.
async fn change(
    settings: &Settings,
    action: &Action,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    crate::notify::check(&settings.notify)?;
    guard_protected(settings, action)?;
    if let Action::Up {
        single_transaction: true,
        ..
    } = action
        && engine_of(settings) == Some(Engine::Mysql)
    {
        return Err(Error::usage(
            "--single-transaction is PostgreSQL only: MySQL commits every DDL statement implicitly, \
             so all-or-nothing cannot be had there",
        ));
    }
    let (files, mut db) = load_and_connect(settings, interrupt).await?;
    report.database = Some(db.info().clone());
    if let Action::Up {
        single_transaction: true,
        ..
    } = action
        && db.info().engine == Engine::Mysql
    {
        // The engine came from a secret or a cluster, not from the URL.
        return Err(Error::usage(
            "--single-transaction is PostgreSQL only: MySQL commits every DDL statement implicitly",
        ));
    }
    db.lock(settings.lock_timeout, interrupt).await?;
    let result = locked(&mut db, &files, settings, action, interrupt, report).await;
    if let Err(e) = db.unlock().await {
        // The lock is session-scoped: it goes with the connection anyway.
        tracing::debug!(error = %e, "could not release the lock explicitly");
    }
    result
}

async fn locked(
    db: &mut AnyDriver,
    files: &[Migration],
    settings: &Settings,
    action: &Action,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let history = db.history().await?;
    let mut table_exists = history.is_some();
    let mut rows = history.unwrap_or_default();

    if let Action::Force { version, yes } = action {
        report.version_before = current_version(&rows);
        return force(db, files, &rows, *version, *yes, table_exists, report).await;
    }
    if let Action::Baseline { version, yes } = action {
        report.version_before = current_version(&rows);
        return baseline(db, files, &rows, *version, *yes, table_exists, report).await;
    }
    if !table_exists && settings.adopt && matches!(action, Action::Up { .. }) {
        let dry_run = matches!(action, Action::Up { dry_run: true, .. });
        if let Some((adoption, adopted)) = find_foreign(db, files).await? {
            if !dry_run {
                db.create_history().await?;
                db.insert_applied(&adopted).await?;
                table_exists = true;
            }
            tracing::warn!(
                tool = adoption.tool.label(),
                table = %adoption.table,
                versions = adoption.versions,
                "adopted another tool's history: its versions count as applied; its table is left untouched"
            );
            rows = adopted_rows(&adopted);
            report.adopted = Some(adoption);
        }
    }
    report.version_before = current_version(&rows);
    report.version_after = report.version_before;

    let problems = plan::validate(files, &rows, settings.checks);
    if !problems.is_empty() {
        return Err(Error::Refused(problems));
    }
    let engine = db.info().engine;
    let (direction, planned, dry_run) = match action {
        Action::Up { to, dry_run, .. } => {
            (Direction::Up, plan::plan_up(files, &rows, *to)?, *dry_run)
        }
        Action::Down {
            target, dry_run, ..
        } => (
            Direction::Down,
            plan::plan_down(files, &rows, *target)?,
            *dry_run,
        ),
        _ => unreachable!("only changing commands get here"),
    };
    let prepared = prepare(&planned, direction, engine)?;
    report.dry_run = dry_run;
    report.not_run = planned.iter().map(|m| step(m, direction, 0)).collect();

    if let Action::Down {
        yes: false,
        target,
        dry_run: false,
    } = action
    {
        return Err(not_confirmed(&planned, *target));
    }
    if dry_run || planned.is_empty() {
        return Ok(());
    }
    if !table_exists {
        db.create_history().await?;
    }
    let execs: Vec<Exec<'_>> = prepared
        .iter()
        .map(|p| Exec {
            migration: p.migration,
            direction,
            script: p.script,
            statements: &p.statements,
        })
        .collect();
    let single = matches!(
        action,
        Action::Up {
            single_transaction: true,
            ..
        }
    );
    if single {
        run_single_transaction(db, &execs, &rows, interrupt, report).await
    } else {
        run_each(db, &execs, &rows, interrupt, report).await
    }
}

/// In a protected environment, destructive commands need the environment's name
/// typed again; a dry run is not destructive.
fn guard_protected(settings: &Settings, action: &Action) -> Result<()> {
    let destructive = match action {
        Action::Down { dry_run, .. } => !dry_run,
        Action::Force { .. } | Action::Baseline { .. } => true,
        _ => false,
    };
    let Some(env) = settings.env_label.as_deref() else {
        return Ok(());
    };
    if !destructive
        || !settings
            .protected_envs
            .iter()
            .any(|p| p.eq_ignore_ascii_case(env))
    {
        return Ok(());
    }
    match settings.confirm_env.as_deref() {
        Some(c) if c == env => Ok(()),
        Some(c) => Err(Error::usage(format!(
            "--confirm-env {c} does not match the environment `{env}`; nothing was changed"
        ))),
        None => Err(Error::usage(format!(
            "`{env}` is a protected environment: `{}` also needs --confirm-env {env}; nothing was changed",
            action.name()
        ))),
    }
}

fn not_confirmed(planned: &[&Migration], target: DownTarget) -> Error {
    let what = if planned.is_empty() {
        "nothing to revert".to_string()
    } else {
        let list: Vec<String> = planned.iter().map(|m| format!("  {}", m.label())).collect();
        format!("down would revert, newest first:\n{}", list.join("\n"))
    };
    let again = match target {
        DownTarget::Steps(1) => "migrator down --yes".to_string(),
        DownTarget::Steps(n) => format!("migrator down {n} --yes"),
        DownTarget::To(v) => format!("migrator down --to {v} --yes"),
        DownTarget::All => "migrator down --all --yes".to_string(),
    };
    Error::NotConfirmed(format!(
        "{what}\nnothing was changed: `down` needs --yes; run `{again}`"
    ))
}

struct Prepared<'a> {
    migration: &'a Migration,
    script: &'a Script,
    statements: Vec<Statement<'a>>,
}

/// Splits the scripts that are about to run; a malformed one stops everything
/// before any change, naming file, line and column.
fn prepare<'a>(
    planned: &[&'a Migration],
    direction: Direction,
    engine: Engine,
) -> Result<Vec<Prepared<'a>>> {
    planned
        .iter()
        .map(|m| {
            let script = match direction {
                Direction::Up => &m.up,
                Direction::Down => m
                    .down
                    .as_ref()
                    .expect("planner only picks reversible migrations"),
            };
            let statements =
                split::split(&script.sql, engine, script.goose_annotations).map_err(|e| {
                    Error::Syntax {
                        file: script.path.clone(),
                        line: script.first_line + e.line - 1,
                        column: e.column,
                        message: e.message.clone(),
                    }
                })?;
            Ok(Prepared {
                migration: m,
                script,
                statements,
            })
        })
        .collect()
}

fn step(m: &Migration, direction: Direction, execution_ms: u64) -> StepReport {
    StepReport {
        version: m.version,
        name: m.name.clone(),
        direction,
        execution_ms,
    }
}

/// The version once `done` more steps have finished, given the rows before.
fn version_after(
    rows: &[HistoryRow],
    done: &[StepReport],
) -> Option<migrator_core::migration::Version> {
    let mut applied: std::collections::BTreeSet<_> = rows
        .iter()
        .filter(|r| !r.status.is_dirty())
        .map(|r| r.version)
        .collect();
    for s in done {
        match s.direction {
            Direction::Up => applied.insert(s.version),
            Direction::Down => applied.remove(&s.version),
        };
    }
    applied.last().copied()
}

async fn run_each(
    db: &mut AnyDriver,
    execs: &[Exec<'_>],
    rows: &[HistoryRow],
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let result = run_steps(db, execs, interrupt, report).await;
    // Once, at the end (not per step: that would be quadratic in the plan).
    let done = report.applied.len();
    report.not_run.drain(..done.min(report.not_run.len()));
    report.version_after = version_after(rows, &report.applied);
    result.map_err(|(exec, err)| match err {
        Ok(err) => err,
        Err(err) => exec_failed(exec, err, interrupt, report.version_after),
    })
}

/// Runs the steps in order; on failure, the step and what went wrong.
#[allow(clippy::type_complexity)]
async fn run_steps<'e>(
    db: &mut AnyDriver,
    execs: &'e [Exec<'e>],
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> std::result::Result<(), (&'e Exec<'e>, std::result::Result<Error, ExecError>)> {
    let total = execs.len();
    for (i, exec) in execs.iter().enumerate() {
        if let Some(signal) = interrupt.signal() {
            let stopped = Error::Interrupted {
                signal,
                detail: Some(format!(
                    "stopped before {}; {i} of {total} done",
                    exec.migration.label()
                )),
            };
            return Err((exec, Ok(stopped)));
        }
        let label = exec.migration.label();
        let verb = match exec.direction {
            Direction::Up => "applying",
            Direction::Down => "reverting",
        };
        tracing::info!(migration = %label, step = i + 1, of = total, "{verb}");
        match db.execute(exec, interrupt).await {
            Ok(ms) => {
                tracing::info!(migration = %label, elapsed_ms = ms, "done");
                report
                    .applied
                    .push(step(exec.migration, exec.direction, ms));
            }
            Err(err) => return Err((exec, Err(err))),
        }
    }
    Ok(())
}

async fn run_single_transaction(
    db: &mut AnyDriver,
    execs: &[Exec<'_>],
    rows: &[HistoryRow],
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    if let Some(m) = execs.iter().find(|e| !e.migration.transactional) {
        return Err(Error::usage(format!(
            "{}: a no-transaction migration cannot run inside --single-transaction; \
             apply it on its own first (`migrator up --to {}`)",
            m.script.path, m.migration.version
        )));
    }
    tracing::info!(count = execs.len(), "applying in one transaction");
    match db.execute_all(execs, interrupt).await {
        Ok(times) => {
            for (exec, ms) in execs.iter().zip(times) {
                tracing::info!(migration = %exec.migration.label(), elapsed_ms = ms, "done");
                report
                    .applied
                    .push(step(exec.migration, exec.direction, ms));
            }
            report.not_run.clear();
            report.version_after = version_after(rows, &report.applied);
            Ok(())
        }
        Err((i, err)) => Err(exec_failed(
            &execs[i],
            err,
            interrupt,
            report.version_before,
        )),
    }
}

/// Maps a driver failure back into the file for people.
fn exec_failed(
    exec: &Exec<'_>,
    err: ExecError,
    interrupt: &Interrupt,
    previous_version: Option<migrator_core::migration::Version>,
) -> Error {
    let label = exec.migration.label();
    if err.cancelled
        && let Some(signal) = interrupt.signal()
    {
        let state = if err.dirty {
            format!(
                "{label} was cut half way and is marked dirty; run `migrator status` and \
                     repair it before the next run"
            )
        } else {
            format!("{label} was rolled back; nothing of it is applied")
        };
        return Error::Interrupted {
            signal,
            detail: Some(state),
        };
    }
    Error::MigrationFailed(Box::new(failure(exec, err, previous_version)))
}

fn failure(
    exec: &Exec<'_>,
    err: ExecError,
    previous_version: Option<migrator_core::migration::Version>,
) -> Failure {
    let stmt = err.statement.and_then(|i| exec.statements.get(i));
    let offset = err.offset.or(stmt.map(|s| s.start));
    let (line, column) = match offset {
        Some(o) => {
            let (l, c) = split::line_col(&exec.script.sql, o);
            (Some(exec.script.first_line + l - 1), Some(c))
        }
        None => (None, None),
    };
    let mut message = err.message;
    if err.connection_lost {
        message = format!("the connection to the database was lost: {message}");
    }
    Failure {
        version: exec.migration.version,
        name: exec.migration.name.clone(),
        file: exec.script.path.clone(),
        line,
        column,
        statement: stmt.map(|s| s.sql.to_string()),
        code: err.code,
        message,
        detail: err.detail,
        dirty: err.dirty,
        previous_version,
    }
}

async fn force(
    db: &mut AnyDriver,
    files: &[Migration],
    rows: &[HistoryRow],
    version: migrator_core::migration::Version,
    yes: bool,
    table_exists: bool,
    report: &mut RunReport,
) -> Result<()> {
    let plan = plan::plan_force(files, rows, version)?;
    if !yes {
        let removed: Vec<String> = rows
            .iter()
            .filter(|r| r.version > version)
            .map(|r| format!("{}_{}", r.version, r.name))
            .collect();
        return Err(Error::NotConfirmed(format!(
            "force {version} would record version {version} as applied (running no SQL), clear the \
             dirty state{}\nnothing was changed: run `migrator force {version} --yes`",
            if removed.is_empty() {
                String::new()
            } else {
                format!(" and forget {}", removed.join(", "))
            }
        )));
    }
    if !table_exists {
        db.create_history().await?;
    }
    db.force(&plan).await?;
    report.version_after = if version == 0 { None } else { Some(version) };
    tracing::warn!(version, "version forced; no migration SQL was run");
    Ok(())
}

/// Looks for another tool's history; the first one found wins (a warning names
/// the others).
async fn find_foreign(
    db: &mut AnyDriver,
    files: &[Migration],
) -> Result<Option<(Adoption, Vec<Adopted>)>> {
    let engine = db.info().engine;
    let mut found: Vec<Foreign> = Vec::new();
    for tool in Tool::ALL {
        if let Some(rows) = db.query_text(&tool.query(engine)).await? {
            let rows = rows
                .into_iter()
                .map(|r| {
                    let col = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                    (col(0), col(1), col(2))
                })
                .collect();
            found.push(Foreign { tool, rows });
        }
    }
    let Some(first) = found.first() else {
        return Ok(None);
    };
    if found.len() > 1 {
        let others: Vec<&str> = found[1..].iter().map(|f| f.tool.table()).collect();
        tracing::warn!(
            adopting = first.tool.table(),
            ignored = %others.join(", "),
            "several tools' history tables found"
        );
    }
    let adopted = adopt::adopt(first, files).map_err(|r| Error::Refused(vec![*r]))?;
    Ok(Some((
        Adoption {
            tool: first.tool,
            table: first.tool.table().to_string(),
            versions: adopted.len(),
        },
        adopted,
    )))
}

fn adopted_rows(adopted: &[Adopted]) -> Vec<HistoryRow> {
    adopted
        .iter()
        .map(|(version, name, checksum)| HistoryRow {
            version: *version,
            name: name.clone(),
            checksum: checksum.clone(),
            status: migrator_core::history::RowStatus::Applied,
            applied_at: String::new(),
            execution_ms: 0,
            failed_statement: None,
            error: None,
        })
        .collect()
}

async fn baseline(
    db: &mut AnyDriver,
    files: &[Migration],
    rows: &[HistoryRow],
    version: migrator_core::migration::Version,
    yes: bool,
    table_exists: bool,
    report: &mut RunReport,
) -> Result<()> {
    let recorded: Vec<_> = rows.iter().map(|r| r.version).collect();
    let marked = adopt::baseline(files, &recorded, version).map_err(Error::usage)?;
    if !yes {
        return Err(Error::NotConfirmed(format!(
            "baseline {version} would record {} migration(s) as applied without running them
             nothing was changed: run `migrator baseline {version} --yes`",
            marked.len()
        )));
    }
    if !table_exists {
        db.create_history().await?;
    }
    db.insert_applied(&marked).await?;
    let mut all = rows.to_vec();
    all.extend(adopted_rows(&marked));
    report.version_after = current_version(&all);
    tracing::warn!(
        version,
        count = marked.len(),
        "baseline recorded; no migration SQL was run"
    );
    Ok(())
}

fn new_migration(settings: &Settings, name: &str) -> Result<()> {
    let format = if settings.path.is_dir() {
        source::parse(&files::read_dir(&settings.path)?)?.format
    } else {
        None
    };
    let written = crate::files::write_new(
        &settings.path,
        format.unwrap_or(migrator_core::migration::Format::GolangMigrate),
        name,
    )?;
    for path in written {
        crate::output::stdout(&path);
    }
    Ok(())
}
