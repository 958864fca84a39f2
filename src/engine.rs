//! The engine: the one sequence every changing command runs, written once
//! against the [`Driver`] trait.
//!
//! lock → history → read another tool's history → validate → plan → split the
//! planned scripts → create the history table and record adopted versions (only
//! now) → execute, one commit per migration → unlock. Nothing is written before the last check passed: bad SQL, a refused
//! plan or a missing `--yes` all end the run with the database as it was.
//!
//! It fills a [`RunReport`] and prints nothing; reading the files, connecting,
//! printing, `--report` and Slack are the command layer's. It never decides what a
//! driver does inside a migration, and never asks the user anything.

use std::time::Duration;

use crate::db::{Driver, Exec, ExecError};
use crate::interrupt::Interrupt;
use crate::settings::{Change, Rehearsal};
use migrator_core::adopt::{self, Adopted, Foreign, Tool};
use migrator_core::error::{Error, Failure, Result};
use migrator_core::history::{HistoryRow, current_version};
use migrator_core::migration::{Engine, Migration, Order, Script};
use migrator_core::plan::{self, Checks, DownTarget};
use migrator_core::rehearsal::{self, Schema, VerifyDown, VerifyOutcome};
use migrator_core::report::{Adoption, Direction, InDoubt, RunReport, Settled, StepReport};
use migrator_core::split::{self, Statement};

/// How the engine runs, besides what it runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Longest wait for another runner's lock.
    pub lock_timeout: Duration,
    pub checks: Checks,
    /// Take over another tool's history when ours does not exist yet.
    pub adopt: bool,
    /// `up --wait`: after a lost connection, reconnect and carry on from what
    /// the history records, for at most this long.
    pub resume: Option<Duration>,
    /// `--link-timeout`: bounds the waits no statement timeout covers (taking
    /// the lock past `lock_timeout`, releasing it) on a link gone silent.
    pub link_timeout: Option<Duration>,
    /// What to measure of each migration, and the gates on it.
    pub rehearsal: Rehearsal,
}

/// How long a run that was asked to stop (its statement cancelled) may take to
/// end by itself: past it, the connection is deemed dead and the run ends
/// anyway, so one SIGTERM always ends it within a second.
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// How long the lock release may take after a signal.
const UNLOCK_AFTER_SIGNAL: Duration = Duration::from_millis(150);

/// How a migration's failure starts when its connection was lost half way.
const LOST: &str = "the connection to the database was lost";

/// Reconnections one run makes at most (`up --wait`).
const MAX_RESUMES: u32 = 3;

/// Runs a changing command against a connected driver and fills `report`.
/// `files` are in version order, as `migrator_core::source::parse` returns them.
pub async fn run<D: Driver>(
    db: &mut D,
    files: &[Migration],
    change: &Change,
    options: &Options,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    report.database = Some(db.info().clone());
    if let Change::Up {
        single_transaction: true,
        ..
    } = change
        && db.info().engine == Engine::Mysql
    {
        return Err(single_transaction_on_mysql());
    }
    db.set_capture(options.rehearsal.capture);
    if let Err(e) = lock(db, options, interrupt).await {
        // The connection lost while taking the lock: nothing was in flight, so
        // `up --wait` takes a new one and the lock again (the lock's round trip
        // is where a run's first fault lands when it carries the history read).
        let resume = matches!(change, Change::Up { dry_run: false, .. })
            && options.resume.is_some()
            && lost(db, &e, interrupt).await;
        if !resume {
            return Err(e);
        }
        tracing::warn!(error = %e, "the connection to the database was lost while taking the lock; --wait: taking it again on a new one");
        interrupt
            .cut(
                db.reconnect(interrupt),
                "reconnecting after a lost connection",
            )
            .await?;
        lock(db, options, interrupt).await?;
    }
    let guards = Guards {
        checks: options.checks,
        adopt: options.adopt,
        verify_down: options.rehearsal.gates.verify_down,
    };
    let started = std::time::Instant::now();
    let mut ended = watched(db, files, change, guards, interrupt, report).await;
    let version_before = report.version_before;
    let mut resumes = 0;
    let result = loop {
        let why = match &ended {
            Ended::Silent(why) => Some(why.clone()),
            Ended::Done(Err(e)) if lost(db, e, interrupt).await => Some(match e {
                Error::MigrationFailed(f) => format!("{}_{}: {}", f.version, f.name, f.message),
                e => e.to_string(),
            }),
            _ => None,
        };
        let Some(why) = why else {
            break ended.into_result();
        };
        tracing::warn!(error = %why, "the connection to the database was lost; settling what was in flight on a new one");
        let err = match &ended {
            Ended::Done(Err(e)) => Some(e),
            _ => None,
        };
        let flight = in_flight(err, change, report);
        if let Err(e) = settle(db, files, flight, interrupt, report).await {
            tracing::error!(error = %e, "could not settle what was in flight");
            break Err(after_lost(ended, &why, report, Some(e)));
        }
        let resume = matches!(change, Change::Up { dry_run: false, .. })
            && options.resume.is_some_and(|w| started.elapsed() < w)
            && resumes < MAX_RESUMES
            && interrupt.signal().is_none();
        if !resume {
            break Err(after_lost(ended, &why, report, None));
        }
        resumes += 1;
        tracing::warn!(
            resume = resumes,
            "--wait: carrying on from what the history records"
        );
        if let Err(e) = lock(db, options, interrupt).await {
            break Err(e);
        }
        ended = watched(db, files, change, guards, interrupt, report).await;
    };
    if resumes > 0 {
        report.version_before = version_before;
    }
    let abandoned =
        matches!(result, Err(Error::Interrupted { .. })) && interrupt.signal().is_some();
    // Instant when the link works; bounded when it does not.
    let patience = match interrupt.signal() {
        Some(_) => Some(UNLOCK_AFTER_SIGNAL),
        None => options.link_timeout,
    };
    let unlocked = match patience {
        Some(p) => tokio::time::timeout(p, db.unlock())
            .await
            .unwrap_or_else(|_| Err(Error::database("releasing the lock", "no answer"))),
        None => db.unlock().await,
    };
    if let Err(e) = unlocked {
        // The lock is session-scoped: it goes with the connection anyway.
        tracing::debug!(error = %e, abandoned, "could not release the lock explicitly");
    }
    judge(report, options.rehearsal, result)
}

/// The findings of what ran, and the gates on them: a run that went well
/// fails (exit 8) when a finding fails a gate; one that failed keeps its error.
fn judge(report: &mut RunReport, rehearsal: Rehearsal, result: Result<()>) -> Result<()> {
    let why = if rehearsal.capture {
        "this database does not tell"
    } else {
        "--no-capture"
    };
    for s in &mut report.applied {
        if s.locks.is_none() && s.rewrites.is_none() && s.not_measured.is_none() {
            s.not_measured = Some(why.to_string());
        }
    }
    report.findings = rehearsal::findings(
        report.applied.iter().map(StepReport::measured),
        &report.verify_down,
        rehearsal.gates,
    );
    for f in &report.findings {
        let migration = format!("{}_{}", f.version, f.name);
        if f.gates.is_empty() {
            tracing::info!(migration = %migration, "{}", f.text);
        } else {
            tracing::warn!(migration = %migration, gate_failed = true, "{}", f.text);
        }
    }
    let failed = rehearsal::failed(&report.findings);
    match result {
        Ok(()) if !failed.is_empty() => Err(Error::Rehearsal(failed)),
        other => other,
    }
}

/// How the history is checked and what is verified, between lock and unlock.
#[derive(Debug, Clone, Copy)]
struct Guards {
    checks: Checks,
    adopt: bool,
    /// `--verify-down`: each up's down is run and its schema compared.
    verify_down: bool,
}

/// How the changing part of a run ended.
enum Ended {
    Done(Result<()>),
    /// The link went silent (the watch's finding).
    Silent(String),
    /// A signal came and the run did not end within [`STOP_GRACE`].
    Abandoned(Error),
}

impl Ended {
    fn into_result(self) -> Result<()> {
        match self {
            Ended::Done(r) => r,
            Ended::Abandoned(e) => Err(e),
            Ended::Silent(why) => Err(Error::database("running the migrations", why)),
        }
    }
}

/// Everything between lock and unlock, raced against the watch on a silent
/// link and against a signal that the database does not act on.
async fn watched<D: Driver>(
    db: &mut D,
    files: &[Migration],
    change: &Change,
    guards: Guards,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Ended {
    let watch = db.watch();
    let body = async {
        match change {
            Change::Redo { yes } => redo(db, files, *yes, guards, interrupt, report).await,
            _ => locked(db, files, change, guards, interrupt, report).await,
        }
    };
    tokio::select! {
        done = body => Ended::Done(done),
        why = watch.dead() => Ended::Silent(why),
        () = interrupt.grace(STOP_GRACE) => Ended::Abandoned(interrupt.interrupted(
            "the database did not answer the cancel request; what was in flight is in doubt: \
             run `migrator status`".to_string(),
        )),
    }
    .fixup(report)
}

impl Ended {
    /// A run cut short keeps the report's lists as a finished one has them.
    fn fixup(self, report: &mut RunReport) -> Ended {
        if !matches!(self, Ended::Done(_)) {
            let applied = &report.applied;
            report.not_run.retain(|n| {
                !applied
                    .iter()
                    .any(|a| a.version == n.version && a.direction == n.direction)
            });
        }
        self
    }
}

/// Whether `err` came from a connection that is gone (rather than from the
/// server's answer). A session that still answers is not lost.
async fn lost<D: Driver>(db: &mut D, err: &Error, interrupt: &Interrupt) -> bool {
    // The driver saw it (and may have replaced the session already, as MySQL's
    // does to read the row back): settle it all the same.
    if let Error::MigrationFailed(f) = err
        && f.message.starts_with(LOST)
        && interrupt.signal().is_none()
    {
        return true;
    }
    if interrupt.signal().is_some()
        || !matches!(err, Error::MigrationFailed(_) | Error::Database { .. })
    {
        return false;
    }
    !tokio::time::timeout(Duration::from_secs(2), db.alive())
        .await
        .unwrap_or(false)
}

/// The migration that may have been in flight when the connection was lost: the
/// failed one, else the first still planned (maybe not started: then its row
/// says so).
fn in_flight(err: Option<&Error>, change: &Change, report: &RunReport) -> Option<InFlight> {
    if let Some(Error::MigrationFailed(f)) = err {
        let direction = match change {
            Change::Down { .. } => Direction::Down,
            Change::Redo { .. } if report.applied.is_empty() => Direction::Down,
            _ => Direction::Up,
        };
        return Some((f.version, f.name.clone(), direction));
    }
    report
        .not_run
        .first()
        .map(|s| (s.version, s.name.clone(), s.direction))
}

type InFlight = (migrator_core::migration::Version, String, Direction);

/// On a new session (the old one ended on the server first), reads the history
/// and settles the migration that was in flight: its row, not a guess, says
/// what became of it. One settled applied joins `applied`.
async fn settle<D: Driver>(
    db: &mut D,
    files: &[Migration],
    in_flight: Option<InFlight>,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let rows = interrupt
        .cut(
            async {
                db.reconnect(interrupt).await?;
                db.history().await
            },
            "reconnecting after a lost connection",
        )
        .await;
    let Some((version, name, direction)) = in_flight else {
        return rows.map(|_| ());
    };
    let mut doubt = InDoubt {
        version,
        name,
        direction,
        settled: Settled::Unknown,
    };
    let rows = match rows {
        Ok(rows) => rows.unwrap_or_default(),
        Err(e) => {
            report.in_doubt.push(doubt);
            return Err(e);
        }
    };
    let row = rows.iter().find(|r| r.version == version);
    doubt.settled = match (direction, row) {
        (_, Some(r)) if r.status.is_dirty() => Settled::Dirty,
        (Direction::Up, Some(_)) | (Direction::Down, None) => Settled::Applied,
        (Direction::Up, None) | (Direction::Down, Some(_)) => Settled::NotApplied,
    };
    tracing::warn!(migration = %format!("{}_{}", doubt.version, doubt.name), settled = doubt.settled.label(), "in doubt, settled");
    if doubt.settled == Settled::Applied {
        report
            .not_run
            .retain(|s| !(s.version == version && s.direction == direction));
        let mut settled = StepReport::new(version, &doubt.name, direction, 0);
        settled.not_measured =
            Some("the connection was lost: settled from the history, nothing measured".into());
        report.applied.push(settled);
    }
    report.version_after = current_version(&rows, Order::of(files));
    report.in_doubt.push(doubt);
    Ok(())
}

/// The error of a run that lost its connection and does not carry on: what
/// was lost, and what the history said of the migration in flight.
fn after_lost(ended: Ended, why: &str, report: &RunReport, settling: Option<Error>) -> Error {
    let doubt = report.in_doubt.last().filter(|_| true);
    let said = doubt.map(|d| format!("; {d}")).unwrap_or_default();
    if let Some(e) = settling {
        // Could not reconnect (exit 3), or the old session would not end.
        return match e {
            Error::Unreachable { target, message } => Error::Unreachable {
                target,
                message: format!(
                    "{message} (reconnecting after the connection was lost: {why}){said}; run \
                     `migrator status` once it is reachable"
                ),
            },
            other => other,
        };
    }
    match ended {
        Ended::Done(Err(Error::MigrationFailed(mut f)))
            if doubt.is_none_or(|d| d.settled != Settled::Applied) =>
        {
            f.message = format!("{}{said}", f.message);
            f.dirty |= doubt.is_some_and(|d| d.settled == Settled::Dirty);
            Error::MigrationFailed(f)
        }
        _ if why.contains(LOST) => {
            Error::database("running the migrations", format!("{why}{said}"))
        }
        _ => Error::database("running the migrations", format!("{LOST}: {why}{said}")),
    }
}

/// `--single-transaction` asked of MySQL: refused before anything runs.
pub fn single_transaction_on_mysql() -> Error {
    Error::usage(
        "--single-transaction is PostgreSQL only: MySQL commits every DDL statement implicitly, \
         so all-or-nothing cannot be had there",
    )
}

/// The history as `status`, `version` and `validate` show it: ours (`read`,
/// what [`Driver::history`] returned), or another tool's that `up` would adopt.
/// Read-only: no lock, nothing created.
pub async fn history<D: Driver>(
    db: &mut D,
    read: Option<Vec<HistoryRow>>,
    files: &[Migration],
    adopt: bool,
) -> Result<Vec<HistoryRow>> {
    Ok(match read {
        Some(rows) => rows,
        None if adopt => match find_foreign(db, files).await? {
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
    })
}

/// Everything between lock and unlock. The lock timeout is spent by now: of the
/// options, only the checks and `adopt` matter here.
async fn locked<D: Driver>(
    db: &mut D,
    files: &[Migration],
    change: &Change,
    guards: Guards,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let Guards {
        checks,
        adopt,
        verify_down,
    } = guards;
    let order = Order::of(files);
    let history = db.history().await?;
    let mut table_exists = history.is_some();
    let mut rows = history.unwrap_or_default();
    let mut to_adopt: Option<Vec<Adopted>> = None;

    if let Change::Force { .. } | Change::Baseline { .. } | Change::Repair { .. } = change {
        report.version_before = current_version(&rows, order);
        return bookkeeping(db, files, &rows, change, table_exists, report).await;
    }
    if !table_exists && adopt && matches!(change, Change::Up { .. }) {
        let dry_run = matches!(change, Change::Up { dry_run: true, .. });
        if let Some((adoption, adopted)) = find_foreign(db, files).await? {
            tracing::warn!(
                tool = adoption.tool.label(),
                table = %adoption.table,
                versions = adoption.versions,
                "adopted another tool's history: its versions count as applied; its table is left untouched"
            );
            rows = adopted_rows(&adopted);
            report.adopted = Some(adoption);
            // Written only once every check below has passed, and never in a dry run.
            if !dry_run {
                to_adopt = Some(adopted);
            }
        }
    }
    report.version_before = current_version(&rows, order);
    report.version_after = report.version_before;

    let problems = plan::validate(files, &rows, checks);
    if !problems.is_empty() {
        return Err(Error::Refused(problems));
    }
    let engine = db.info().engine;
    let (direction, planned, dry_run) = match change {
        Change::Up { to, dry_run, .. } => {
            (Direction::Up, plan::plan_up(files, &rows, *to)?, *dry_run)
        }
        Change::Down {
            target, dry_run, ..
        } => (
            Direction::Down,
            plan::plan_down(files, &rows, *target)?,
            *dry_run,
        ),
        Change::Force { .. } | Change::Baseline { .. } | Change::Repair { .. } => {
            unreachable!("handled above")
        }
        Change::Redo { .. } => unreachable!("run as down, then up"),
    };
    let prepared = prepare(&planned, direction, engine)?;
    // The downs `--verify-down` will run are split now, before any write.
    let downs = match (verify_down, direction) {
        (true, Direction::Up) => prepare_downs(&planned, engine)?,
        _ => Vec::new(),
    };
    report.dry_run = dry_run;
    report.not_run = planned.iter().map(|m| step(m, direction, 0)).collect();

    if let Change::Down {
        yes: false,
        target,
        dry_run: false,
    } = change
    {
        return Err(not_confirmed(&planned, *target));
    }
    if dry_run {
        return Ok(());
    }
    if let (Some(first), Some(signal)) = (planned.first(), interrupt.signal()) {
        // Before the first write, not only before the first migration.
        return Err(Error::Interrupted {
            signal,
            detail: Some(format!(
                "stopped before {}; nothing was applied",
                first.label()
            )),
        });
    }
    // Every check passed: the first write of the run.
    if let Some(adopted) = to_adopt {
        db.create_history().await?;
        db.insert_applied(&adopted).await?;
        table_exists = true;
    }
    if planned.is_empty() {
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
    let down_execs: Vec<Option<Exec<'_>>> = downs
        .iter()
        .map(|d| {
            d.as_ref().map(|p| Exec {
                migration: p.migration,
                direction: Direction::Down,
                script: p.script,
                statements: &p.statements,
            })
        })
        .collect();
    let single = matches!(
        change,
        Change::Up {
            single_transaction: true,
            ..
        }
    );
    if single {
        run_single_transaction(db, &execs, &rows, order, interrupt, report).await
    } else {
        run_each(db, &execs, &down_execs, &rows, order, interrupt, report).await
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
            prepared(m, script, engine)
        })
        .collect()
}

/// `--verify-down`: the down script of each planned migration that has one.
fn prepare_downs<'a>(
    planned: &[&'a Migration],
    engine: Engine,
) -> Result<Vec<Option<Prepared<'a>>>> {
    planned
        .iter()
        .map(|m| m.down.as_ref().map(|d| prepared(m, d, engine)).transpose())
        .collect()
}

fn prepared<'a>(m: &'a Migration, script: &'a Script, engine: Engine) -> Result<Prepared<'a>> {
    let statements =
        split::split(&script.sql, engine, script.goose_annotations).map_err(|e| Error::Syntax {
            file: script.path.clone(),
            line: script.first_line + e.line - 1,
            column: e.column,
            message: e.message.clone(),
        })?;
    Ok(Prepared {
        migration: m,
        script,
        statements,
    })
}

fn step(m: &Migration, direction: Direction, execution_ms: u64) -> StepReport {
    StepReport::new(m.version, &m.name, direction, execution_ms)
}

/// A step that ran, with what the driver measured of it.
fn measured_step(
    m: &Migration,
    direction: Direction,
    ms: u64,
    capture: Option<rehearsal::Capture>,
) -> StepReport {
    let mut s = step(m, direction, ms);
    if let Some(c) = capture {
        s.locks = c.locks;
        s.rewrites = c.rewrites;
        s.not_measured = c.not_measured;
    }
    s
}

/// The version once `done` more steps have finished, given the rows before.
fn version_after(
    rows: &[HistoryRow],
    done: &[StepReport],
    order: Order,
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
    order.last(applied)
}

async fn run_each<D: Driver>(
    db: &mut D,
    execs: &[Exec<'_>],
    downs: &[Option<Exec<'_>>],
    rows: &[HistoryRow],
    order: Order,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let before = report.applied.len();
    let result = run_steps(db, execs, downs, interrupt, report).await;
    // Once, at the end (not per step: that would be quadratic in the plan).
    let done = report.applied.len() - before;
    report.not_run.drain(..done.min(report.not_run.len()));
    report.version_after = version_after(rows, &report.applied, order);
    result.map_err(|(exec, err)| match err {
        Ok(err) => err,
        Err(err) => failed_not_run(
            exec_failed(exec, err, interrupt, report.version_after),
            report,
        ),
    })
}

/// What stopped a run of steps: the step, and the error or the driver's failure.
type Stopped<'e> = (&'e Exec<'e>, std::result::Result<Error, ExecError>);

/// Runs the steps in order; on failure, the step and what went wrong. A step
/// with a down in `downs` (`--verify-down`) has it verified right after.
async fn run_steps<'e, D: Driver>(
    db: &mut D,
    execs: &'e [Exec<'e>],
    downs: &'e [Option<Exec<'e>>],
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> std::result::Result<(), Stopped<'e>> {
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
        let down = downs.get(i).and_then(Option::as_ref);
        let before = match down {
            Some(_) => Some(db.schema().await.map_err(|e| (exec, Ok(e)))?),
            None => None,
        };
        match db.execute(exec, interrupt).await {
            Ok(ms) => {
                tracing::info!(migration = %label, elapsed_ms = ms, "done");
                let capture = db.take_capture();
                report
                    .applied
                    .push(measured_step(exec.migration, exec.direction, ms, capture));
            }
            Err(err) => return Err((exec, Err(err))),
        }
        if let (Some(down), Some(before)) = (down, before) {
            let after_up = db.schema().await.map_err(|e| (exec, Ok(e)))?;
            verify_down(db, exec, down, [&before, &after_up], interrupt, report).await?;
        }
    }
    Ok(())
}

/// `--verify-down` for one migration just applied: its down runs, the schema
/// after it is compared with `before` (the schema before the up), and the
/// database goes back to the up state: the driver rolls the down back; or the
/// down changed no schema at all (`after_up` is what it left), and only the
/// history row is written again; or the up runs again. A down that failed half
/// way where nothing rolls back (MySQL DDL) stops the run: the database is not
/// at the up state then.
async fn verify_down<'e, D: Driver>(
    db: &mut D,
    up: &'e Exec<'e>,
    down: &'e Exec<'e>,
    [before, after_up]: [&Schema; 2],
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> std::result::Result<(), Stopped<'e>> {
    let m = up.migration;
    tracing::info!(migration = %m.label(), "verifying its down");
    let mut entry = VerifyDown {
        version: m.version,
        name: m.name.clone(),
        outcome: VerifyOutcome::Ok,
        file: None,
        line: None,
        message: None,
        differences: Vec::new(),
    };
    match db.rehearse_down(down, interrupt).await {
        Ok((after, undone)) => {
            entry.differences = rehearsal::diff(before, &after);
            if !entry.differences.is_empty() {
                entry.outcome = VerifyOutcome::SchemaDiffers;
            }
            report.verify_down.push(entry);
            if undone {
                return Ok(());
            }
            if after == *after_up {
                // Running the up again would collide with what the down left.
                tracing::info!(migration = %m.label(), "its down changed no schema: recording it as applied again");
                let row = (m.version, m.name.clone(), m.checksum.clone());
                return db.insert_applied(&[row]).await.map_err(|e| (up, Ok(e)));
            }
            tracing::info!(migration = %m.label(), "applying again after its down");
            db.execute(up, interrupt).await.map_err(|e| (up, Err(e)))?;
            db.take_capture();
            Ok(())
        }
        Err(err) if err.cancelled && interrupt.signal().is_some() => Err((down, Err(err))),
        Err(err) => {
            let f = failure(down, err.clone(), None);
            entry.outcome = VerifyOutcome::DownFailed;
            entry.file = Some(f.file.clone());
            entry.line = f.line;
            entry.message = Some(match &f.code {
                Some(c) => format!("[{c}] {}", f.message),
                None => f.message.clone(),
            });
            report.verify_down.push(entry);
            if err.dirty {
                return Err((down, Err(err)));
            }
            Ok(())
        }
    }
}

async fn run_single_transaction<D: Driver>(
    db: &mut D,
    execs: &[Exec<'_>],
    rows: &[HistoryRow],
    order: Order,
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
                let mut s = step(exec.migration, exec.direction, ms);
                s.not_measured = Some(
                    "--single-transaction: the migrations share one transaction, so its locks \
                     are not one migration's"
                        .into(),
                );
                report.applied.push(s);
            }
            report.not_run.clear();
            report.version_after = version_after(rows, &report.applied, order);
            Ok(())
        }
        Err((i, err)) => Err(failed_not_run(
            exec_failed(&execs[i], err, interrupt, report.version_before),
            report,
        )),
    }
}

/// Errors of a statement that cannot run inside a transaction: PostgreSQL's
/// SQLSTATE 25001 (CREATE INDEX CONCURRENTLY, VACUUM …); MySQL's 1179 ("not
/// allowed … in a transaction") and 1568 (transaction characteristics).
const NO_TRANSACTION_CODES: [&str; 3] = ["25001", "1179", "1568"];

/// A migration that failed ran (and was rolled back, or is dirty): the report
/// names it in `failure`, not in `not_run`. One cut short by a signal stays there.
fn failed_not_run(err: Error, report: &mut RunReport) -> Error {
    if let Error::MigrationFailed(f) = &err {
        report.not_run.retain(|s| s.version != f.version);
    }
    err
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
        message = format!("{LOST}: {message}");
    }
    let mut detail = err.detail;
    if exec.migration.transactional
        && err
            .code
            .as_deref()
            .is_some_and(|c| NO_TRANSACTION_CODES.contains(&c))
    {
        // CREATE INDEX CONCURRENTLY and the like: the file has to say so.
        let hint = format!(
            "hint: this statement cannot run inside a transaction; {} to run the migration \
             without one",
            exec.migration.format.no_transaction_marker()
        );
        detail = Some(match detail {
            Some(d) => format!("{d}\n{hint}"),
            None => hint,
        });
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
        detail,
        dirty: err.dirty,
        previous_version,
    }
}

/// `redo`: the last migration reverted and applied again, under the one lock
/// taken for both, so no other runner comes between them.
async fn redo<D: Driver>(
    db: &mut D,
    files: &[Migration],
    yes: bool,
    guards: Guards,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    let down = Change::Down {
        target: DownTarget::Steps(1),
        yes,
        dry_run: false,
    };
    match locked(db, files, &down, guards, interrupt, report).await {
        Err(Error::NotConfirmed(_)) => {
            let what = report.not_run.first().map_or_else(
                || "nothing to redo: no migration is applied".to_string(),
                |s| format!("redo would revert and apply again {}_{}", s.version, s.name),
            );
            return Err(Error::NotConfirmed(format!(
                "{what}\nnothing was changed: `redo` needs --yes; run `migrator redo --yes`"
            )));
        }
        other => other?,
    }
    let Some(reverted) = report.applied.last().map(|s| s.version) else {
        return Ok(());
    };
    let before = report.version_before;
    let up = Change::Up {
        to: Some(reverted),
        single_transaction: false,
        dry_run: false,
    };
    let result = locked(db, files, &up, guards, interrupt, report).await;
    report.version_before = before;
    result
}

/// Takes the lock; when another runner holds it past a second, says so once,
/// so a run waiting on it is not mistaken for a hung one. The server answers
/// within the lock timeout; past it by the link timeout, the link is dead.
async fn lock<D: Driver>(db: &mut D, options: &Options, interrupt: &Interrupt) -> Result<()> {
    // A dead link never answers the cancel a signal sends. The watch needs our
    // session's id, which both drivers read in the lock's own round trip: known
    // here from an earlier lock of the session, else the driver watches the
    // wait itself once the id is in (and the bound below holds before that).
    let watch = db.watch();
    tokio::select! {
        taken = lock_bounded(db, options, interrupt) => taken,
        why = watch.dead() => Err(Error::database("taking the lock", why)),
        () = interrupt.grace(STOP_GRACE) => Err(interrupt.interrupted(
            "while waiting for the migration lock".to_string(),
        )),
    }
}

async fn lock_bounded<D: Driver>(
    db: &mut D,
    options: &Options,
    interrupt: &Interrupt,
) -> Result<()> {
    let timeout = options.lock_timeout;
    let name = db.info().to_string();
    let lock = db.lock(timeout, interrupt);
    tokio::pin!(lock);
    tokio::select! {
        taken = &mut lock => return taken,
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
    }
    tracing::info!(
        database = %name,
        lock_timeout_s = timeout.as_secs(),
        "waiting for the migration lock: another runner holds it"
    );
    let Some(link) = options.link_timeout else {
        return lock.await;
    };
    let deadline = (timeout + link).saturating_sub(std::time::Duration::from_secs(1));
    tokio::time::timeout(deadline, lock).await.unwrap_or_else(|_| {
        Err(Error::database(
            "taking the lock",
            format!(
                "no answer within --lock-timeout {} and --link-timeout {}: the link went silent",
                migrator_core::duration::format(timeout),
                migrator_core::duration::format(link)
            ),
        ))
    })
}

/// `force` and `baseline`: they write the history without running any SQL.
/// Each checks and asks for `--yes` first; then the table is created if need be.
async fn bookkeeping<D: Driver>(
    db: &mut D,
    files: &[Migration],
    rows: &[HistoryRow],
    change: &Change,
    table_exists: bool,
    report: &mut RunReport,
) -> Result<()> {
    enum Write {
        Force(plan::ForcePlan),
        Baseline(Vec<Adopted>),
    }
    let (write, version) = match *change {
        Change::Force { version, yes } => {
            let plan = plan::plan_force(files, rows, version)?;
            if !yes {
                let removed: Vec<String> = rows
                    .iter()
                    .filter(|r| r.version > version)
                    .map(|r| format!("{}_{}", r.version, r.name))
                    .collect();
                return Err(Error::NotConfirmed(format!(
                    "force {version} would record version {version} as applied (running no SQL), \
                     clear the dirty state{}\nnothing was changed: run `migrator force {version} --yes`",
                    if removed.is_empty() {
                        String::new()
                    } else {
                        format!(" and forget {}", removed.join(", "))
                    }
                )));
            }
            (Write::Force(plan), Some(version))
        }
        Change::Repair { yes } => {
            let plan = plan::plan_repair(files, rows);
            if !yes {
                let edited: Vec<String> = plan
                    .upsert
                    .iter()
                    .map(|(v, name, _)| format!("{v}_{name}"))
                    .collect();
                let what = if edited.is_empty() {
                    "nothing: every applied file matches its recorded checksum".to_string()
                } else {
                    format!("the current checksum of {}", edited.join(", "))
                };
                return Err(Error::NotConfirmed(format!(
                    "repair would record {what} (running no SQL)\n\
                     nothing was changed: run `migrator repair --yes`"
                )));
            }
            (Write::Force(plan), None)
        }
        Change::Baseline { version, yes } => {
            let recorded: Vec<_> = rows.iter().map(|r| r.version).collect();
            let marked = adopt::baseline(files, &recorded, version).map_err(Error::usage)?;
            if !yes {
                return Err(Error::NotConfirmed(format!(
                    "baseline {version} would record {} migration(s) as applied without running them\n\
                     nothing was changed: run `migrator baseline {version} --yes`",
                    marked.len()
                )));
            }
            (Write::Baseline(marked), Some(version))
        }
        Change::Up { .. } | Change::Down { .. } | Change::Redo { .. } => {
            unreachable!("only force, baseline and repair")
        }
    };
    if let (Write::Force(plan), None) = (&write, version)
        && plan.upsert.is_empty()
    {
        // repair, and every file matches its row: nothing to write.
        report.version_after = current_version(rows, Order::of(files));
        return Ok(());
    }
    if !table_exists {
        db.create_history().await?;
    }
    match write {
        Write::Force(plan) => {
            db.force(&plan).await?;
            report.history_changes = plan.changes(rows);
            report.version_after = match version {
                Some(0) => None,
                Some(v) => Some(v),
                None => current_version(rows, Order::of(files)),
            };
            tracing::warn!(
                version,
                changes = %report.history_changes,
                "{} written; no migration SQL was run",
                change.name()
            );
        }
        Write::Baseline(marked) => {
            db.insert_applied(&marked).await?;
            report.history_changes.added = marked.iter().map(|m| m.0).collect();
            let mut all = rows.to_vec();
            all.extend(adopted_rows(&marked));
            report.version_after = current_version(&all, Order::of(files));
            tracing::warn!(
                version,
                count = marked.len(),
                "baseline recorded; no migration SQL was run"
            );
        }
    }
    Ok(())
}

/// Looks for another tool's history; the first one found wins (a warning names
/// the others).
pub async fn find_foreign<D: Driver>(
    db: &mut D,
    files: &[Migration],
) -> Result<Option<(Adoption, Vec<Adopted>)>> {
    let engine = db.info().engine;
    let mut found: Vec<Foreign> = Vec::new();
    let present: Vec<String> = db
        .query_text(&adopt::present_query(engine))
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|row| row.into_iter().next().flatten())
        .collect();
    for tool in Tool::ALL {
        if !present.iter().any(|t| t == tool.table()) {
            continue;
        }
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

pub fn adopted_rows(adopted: &[Adopted]) -> Vec<HistoryRow> {
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

#[cfg(test)]
mod tests;
