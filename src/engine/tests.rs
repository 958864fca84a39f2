//! The engine against an in-memory driver: what runs, in what order, and what is
//! written on each kind of failure. The driver records every call, so a test
//! asserts on the whole conversation with the database, not only on the result.

use std::time::Duration;

use super::{Options, history, run};
use crate::db::{DatabaseInfo, Driver, Exec, ExecError};
use crate::interrupt::Interrupt;
use crate::settings::Change;
use migrator_core::adopt::{Adopted, Tool};
use migrator_core::error::{Error, Refusal, Result, Signal};
use migrator_core::history::{HistoryRow, RowStatus};
use migrator_core::migration::{Engine, Migration, Script, Version};
use migrator_core::plan::{Checks, DownTarget, ForcePlan};
use migrator_core::report::{Direction, RunReport, StepReport};
use migrator_core::split::Statement;

/// One call the engine made, with what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Lock,
    Unlock,
    History,
    CreateHistory,
    Execute(Version, Direction),
    ExecuteAll(Vec<Version>),
    Force(ForcePlan),
    InsertApplied(Vec<Version>),
    QueryText(String),
    Reconnect,
}

use Call::*;

/// A database in memory: the history table (`None` until created), the tables
/// of other tools, and the log of every call.
struct MemDriver {
    info: DatabaseInfo,
    rows: Option<Vec<HistoryRow>>,
    foreign: Vec<(Tool, Vec<Vec<Option<String>>>)>,
    calls: Vec<Call>,
    /// The migration whose `execute` fails, and how.
    fail: Option<(Version, ExecError)>,
    lock_times_out: bool,
    /// Triggered while the migration of this version runs (after it commits,
    /// or before its failure is returned).
    signal_at: Option<(Version, Interrupt)>,
    /// The migration whose COMMIT goes through but whose answer is lost with
    /// the connection.
    lost_after_commit: Option<Version>,
    /// The session is gone (until `reconnect`).
    dead: bool,
}

impl MemDriver {
    fn new(engine: Engine) -> Self {
        MemDriver {
            info: DatabaseInfo {
                engine,
                host: "mem".into(),
                port: 0,
                name: "test".into(),
            },
            rows: None,
            foreign: Vec::new(),
            calls: Vec::new(),
            fail: None,
            lock_times_out: false,
            signal_at: None,
            lost_after_commit: None,
            dead: false,
        }
    }

    fn postgres() -> Self {
        Self::new(Engine::Postgres)
    }

    /// A history table holding these rows.
    fn with_rows(mut self, rows: Vec<HistoryRow>) -> Self {
        self.rows = Some(rows);
        self
    }

    fn failing(mut self, version: Version, err: ExecError) -> Self {
        self.fail = Some((version, err));
        self
    }

    /// Another tool's table, as `Tool::query` reads it: `version, name, ok`.
    fn with_foreign(mut self, tool: Tool, rows: &[(&str, &str, &str)]) -> Self {
        let rows = rows
            .iter()
            .map(|(v, n, ok)| {
                vec![
                    Some(v.to_string()),
                    Some(n.to_string()),
                    Some(ok.to_string()),
                ]
            })
            .collect();
        self.foreign.push((tool, rows));
        self
    }

    /// Versions in the history table with their status, ascending.
    fn recorded(&self) -> Vec<(Version, RowStatus)> {
        let mut v: Vec<_> = self
            .rows
            .iter()
            .flatten()
            .map(|r| (r.version, r.status))
            .collect();
        v.sort_by_key(|r| r.0);
        v
    }

    /// The calls that change the database.
    fn writes(&self) -> Vec<&Call> {
        self.calls
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    CreateHistory | Execute(..) | ExecuteAll(_) | Force(_) | InsertApplied(_)
                )
            })
            .collect()
    }

    fn record(&mut self, version: Version, name: &str, checksum: &str, status: RowStatus) {
        let rows = self.rows.as_mut().expect("history table exists");
        rows.retain(|r| r.version != version);
        rows.push(HistoryRow {
            status,
            ..row(version, name, checksum)
        });
        rows.sort_by_key(|r| r.version);
    }

    fn apply(&mut self, exec: &Exec<'_>) {
        let m = exec.migration;
        match exec.direction {
            Direction::Up => self.record(m.version, &m.name, &m.checksum, RowStatus::Applied),
            Direction::Down => self
                .rows
                .as_mut()
                .expect("history table exists")
                .retain(|r| r.version != m.version),
        }
    }

    /// One migration's effect on the rows, or its configured failure (a dirty
    /// one leaves its row behind, as the drivers' bookkeeping does).
    fn run_one(&mut self, exec: &Exec<'_>) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        if let Some((v, err)) = &self.fail
            && *v == m.version
        {
            let err = err.clone();
            if err.dirty {
                let status = match exec.direction {
                    Direction::Up => RowStatus::Failed,
                    Direction::Down => RowStatus::RevertFailed,
                };
                self.record(m.version, &m.name, &m.checksum, status);
            }
            return Err(err);
        }
        self.apply(exec);
        if self.lost_after_commit == Some(m.version) {
            self.lost_after_commit = None;
            self.dead = true;
            return Err(ExecError {
                message: "connection closed".into(),
                connection_lost: true,
                ..ExecError::default()
            });
        }
        Ok(Self::ms(m.version))
    }

    /// Execution time reported for a migration: distinct per version, so the
    /// report can be checked to carry the driver's figure.
    fn ms(version: Version) -> u64 {
        version * 10
    }
}

impl Driver for MemDriver {
    fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    async fn lock(&mut self, timeout: Duration, _interrupt: &Interrupt) -> Result<()> {
        self.calls.push(Lock);
        if self.lock_times_out {
            return Err(Error::LockTimeout {
                seconds: timeout.as_secs(),
                holder: Some("another runner".into()),
            });
        }
        Ok(())
    }

    async fn unlock(&mut self) -> Result<()> {
        self.calls.push(Unlock);
        Ok(())
    }

    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        self.calls.push(History);
        Ok(self.rows.clone())
    }

    async fn create_history(&mut self) -> Result<()> {
        self.calls.push(CreateHistory);
        assert!(self.rows.is_none(), "history table created twice");
        self.rows = Some(Vec::new());
        Ok(())
    }

    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        _interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        self.calls.push(Execute(m.version, exec.direction));
        let result = self.run_one(exec);
        if let Some((v, interrupt)) = &self.signal_at
            && *v == m.version
        {
            interrupt.trigger(Signal::Sigterm).await;
        }
        result
    }

    async fn execute_all(
        &mut self,
        execs: &[Exec<'_>],
        _interrupt: &Interrupt,
    ) -> std::result::Result<Vec<u64>, (usize, ExecError)> {
        self.calls.push(ExecuteAll(
            execs.iter().map(|e| e.migration.version).collect(),
        ));
        if let Some((v, err)) = &self.fail
            && let Some(i) = execs.iter().position(|e| e.migration.version == *v)
        {
            // All or nothing: no row is touched.
            return Err((i, err.clone()));
        }
        for e in execs {
            self.apply(e);
        }
        Ok(execs
            .iter()
            .map(|e| Self::ms(e.migration.version))
            .collect())
    }

    async fn alive(&mut self) -> bool {
        !self.dead
    }

    async fn reconnect(&mut self, _interrupt: &Interrupt) -> Result<()> {
        self.calls.push(Reconnect);
        self.dead = false;
        Ok(())
    }

    async fn force(&mut self, plan: &ForcePlan) -> Result<()> {
        self.calls.push(Force(plan.clone()));
        let rows = self.rows.as_mut().expect("history table exists");
        rows.retain(|r| r.version <= plan.delete_above);
        for r in rows.iter_mut().filter(|r| plan.clear.contains(&r.version)) {
            r.status = RowStatus::Applied;
        }
        for (v, name, sum) in &plan.upsert {
            self.record(*v, name, sum, RowStatus::Applied);
        }
        Ok(())
    }

    async fn insert_applied(&mut self, rows: &[Adopted]) -> Result<()> {
        self.calls
            .push(InsertApplied(rows.iter().map(|r| r.0).collect()));
        for (v, name, sum) in rows {
            self.record(*v, name, sum, RowStatus::Applied);
        }
        Ok(())
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
        self.calls.push(QueryText(sql.to_string()));
        let engine = self.info.engine;
        if sql == migrator_core::adopt::present_query(engine) {
            // The tables of the tools with rows here.
            return Ok(Some(
                self.foreign
                    .iter()
                    .map(|(tool, _)| vec![Some(tool.table().to_string())])
                    .collect(),
            ));
        }
        Ok(self
            .foreign
            .iter()
            .find(|(tool, _)| tool.query(engine) == sql)
            .map(|(_, rows)| rows.clone()))
    }

    async fn execute_plain(
        &mut self,
        _statements: &[Statement<'_>],
        _interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        unreachable!("the engine never runs plain statements")
    }
}

/// A reversible migration whose scripts are one statement each.
fn file(version: Version) -> Migration {
    file_with(version, &format!("CREATE TABLE t{version} (id int);\n"))
}

/// A reversible migration with this up SQL.
fn file_with(version: Version, up_sql: &str) -> Migration {
    let script = |kind: &str, sql: &str| Script {
        path: format!("{version}_m.{kind}.sql"),
        sql: sql.to_string(),
        first_line: 1,
        goose_annotations: false,
    };
    Migration {
        version,
        name: "m".into(),
        up: script("up", up_sql),
        down: Some(script("down", &format!("DROP TABLE t{version};\n"))),
        checksum: format!("sum{version}"),
        transactional: true,
        format: migrator_core::migration::Format::GolangMigrate,
    }
}

fn files(versions: &[Version]) -> Vec<Migration> {
    versions.iter().map(|&v| file(v)).collect()
}

fn row(version: Version, name: &str, checksum: &str) -> HistoryRow {
    HistoryRow {
        version,
        name: name.to_string(),
        checksum: checksum.to_string(),
        status: RowStatus::Applied,
        applied_at: "2026-01-01T00:00:00.000Z".into(),
        execution_ms: 1,
        failed_statement: None,
        error: None,
    }
}

/// Applied rows matching `file(v)`.
fn applied(versions: &[Version]) -> Vec<HistoryRow> {
    versions
        .iter()
        .map(|&v| row(v, "m", &format!("sum{v}")))
        .collect()
}

fn options() -> Options {
    Options {
        lock_timeout: Duration::from_secs(7),
        checks: Checks::default(),
        adopt: true,
        resume: None,
        link_timeout: None,
        rehearsal: crate::settings::Rehearsal::default(),
    }
}

fn up() -> Change {
    Change::Up {
        to: None,
        single_transaction: false,
        dry_run: false,
    }
}

fn versions(steps: &[StepReport]) -> Vec<Version> {
    steps.iter().map(|s| s.version).collect()
}

/// Runs `change` with no signal and a fresh report.
async fn go(db: &mut MemDriver, files: &[Migration], change: Change) -> (Result<()>, RunReport) {
    go_with(db, files, change, &Interrupt::default()).await
}

async fn go_with(
    db: &mut MemDriver,
    files: &[Migration],
    change: Change,
    interrupt: &Interrupt,
) -> (Result<()>, RunReport) {
    let mut report = RunReport::new(change.name());
    let result = run(db, files, &change, &options(), interrupt, &mut report).await;
    (result, report)
}

#[tokio::test]
async fn fresh_database_applies_everything_in_version_order_under_the_lock() {
    let mut db = MemDriver::postgres();
    // Sorted by version, as `source::parse` hands them over (the plan keeps
    // the files' order).
    let files = files(&[1, 2, 10]);
    let (result, report) = go(&mut db, &files, up()).await;
    result.unwrap();
    assert_eq!(
        db.calls,
        [
            Lock,
            History,
            // No other tool's table: one query says so, none is read.
            QueryText(migrator_core::adopt::present_query(Engine::Postgres)),
            CreateHistory,
            Execute(1, Direction::Up),
            Execute(2, Direction::Up),
            Execute(10, Direction::Up),
            Unlock,
        ]
    );
    assert_eq!(db.recorded(), [1, 2, 10].map(|v| (v, RowStatus::Applied)));
    assert_eq!(versions(&report.applied), [1, 2, 10]);
    assert_eq!(
        report
            .applied
            .iter()
            .map(|s| s.execution_ms)
            .collect::<Vec<_>>(),
        [10, 20, 100],
        "the driver's timings"
    );
    assert!(report.applied.iter().all(|s| s.direction == Direction::Up));
    assert!(report.not_run.is_empty());
    assert_eq!(report.version_before, None);
    assert_eq!(report.version_after, Some(10));
    assert_eq!(report.database.as_ref().unwrap().engine, Engine::Postgres);
    assert!(report.adopted.is_none());
}

#[tokio::test]
async fn up_to_a_version_stops_there_and_nothing_pending_writes_nothing() {
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let change = Change::Up {
        to: Some(2),
        single_transaction: false,
        dry_run: false,
    };
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change).await;
    result.unwrap();
    assert_eq!(db.writes(), [&Execute(2, Direction::Up)]);
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(1), Some(2))
    );
    assert_eq!(versions(&report.not_run), [] as [Version; 0]);

    let mut db = MemDriver::postgres().with_rows(applied(&[1, 2, 3]));
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), up()).await;
    result.unwrap();
    assert_eq!(db.calls, [Lock, History, Unlock]);
    assert!(report.applied.is_empty());
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(3), Some(3))
    );

    // A fresh database and no files: not even the history table is created.
    let mut db = MemDriver::postgres();
    let (result, _) = go(&mut db, &[], up()).await;
    result.unwrap();
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert_eq!(db.calls.last(), Some(&Unlock));
}

/// Runs `up` against `rows` and checks it was refused with nothing written.
async fn assert_refused(rows: Vec<HistoryRow>, files: &[Migration]) -> Vec<Refusal> {
    let mut db = MemDriver::postgres().with_rows(rows.clone());
    let (result, report) = go(&mut db, files, up()).await;
    let Err(Error::Refused(problems)) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    assert_eq!(db.calls, [Lock, History, Unlock], "nothing but reading");
    assert_eq!(db.rows, Some(rows), "history untouched");
    assert!(report.applied.is_empty() && report.not_run.is_empty());
    problems
}

#[tokio::test]
async fn refused_runs_write_nothing_and_still_unlock() {
    let mut changed = applied(&[1, 2]);
    changed[1].checksum = "edited-since".into();
    let problems = assert_refused(changed, &files(&[1, 2, 3])).await;
    assert!(
        matches!(problems[..], [Refusal::ChecksumMismatch { version: 2, .. }]),
        "{problems:?}"
    );

    let problems = assert_refused(applied(&[1, 2]), &files(&[1, 3])).await;
    assert!(
        matches!(problems[..], [Refusal::MissingFile { version: 2, .. }]),
        "{problems:?}"
    );

    let problems = assert_refused(applied(&[1, 3]), &files(&[1, 2, 3, 4])).await;
    assert!(
        matches!(
            problems[..],
            [Refusal::OutOfOrder {
                version: 2,
                current: 3,
                ..
            }]
        ),
        "{problems:?}"
    );

    let mut dirty = applied(&[1, 2]);
    dirty[1].status = RowStatus::Failed;
    let problems = assert_refused(dirty, &files(&[1, 2, 3])).await;
    assert!(
        matches!(problems[..], [Refusal::Dirty { version: 2, .. }]),
        "{problems:?}"
    );
}

#[tokio::test]
async fn a_script_that_does_not_split_stops_the_run_before_any_write() {
    // The bad script is the second of three, on a fresh database: neither the
    // first migration nor the history table may be written.
    let mut bad = file_with(
        2,
        "CREATE TABLE a (id int);\nINSERT INTO a VALUES ('oops);\n",
    );
    // As in a dbmate/goose section starting on line 5 of its file.
    bad.up.first_line = 5;
    let files = vec![file(1), bad, file(3)];
    let mut db = MemDriver::postgres();
    let (result, report) = go(&mut db, &files, up()).await;
    let Err(Error::Syntax {
        file: path, line, ..
    }) = &result
    else {
        panic!("expected a syntax error, got {result:?}");
    };
    assert_eq!(path, "2_m.up.sql");
    assert_eq!(*line, 6, "line 2 of the section, which starts on line 5");
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert!(report.applied.is_empty());

    // An unterminated dollar quote, on an existing database.
    let files = vec![
        file(1),
        file_with(2, "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1;\n"),
    ];
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let (result, _) = go(&mut db, &files, up()).await;
    assert!(
        matches!(&result, Err(Error::Syntax { file, line: 1, .. }) if file == "2_m.up.sql"),
        "{result:?}"
    );
    assert_eq!(db.calls, [Lock, History, Unlock]);
}

#[tokio::test]
async fn a_failing_migration_keeps_the_ones_before_and_stops_the_rest() {
    let second = "CREATE TABLE a (id int);\n\nINSERT INTO a\n  VALUES (1, 2);\nSELECT 1;\n";
    let files = vec![file(1), file_with(2, second), file(3)];
    let err = ExecError {
        statement: Some(1),
        code: Some("42601".into()),
        message: "INSERT has more expressions than target columns".into(),
        dirty: true,
        ..ExecError::default()
    };
    let mut db = MemDriver::postgres().failing(2, err);
    let (result, report) = go(&mut db, &files, up()).await;
    let Err(Error::MigrationFailed(failure)) = &result else {
        panic!("expected a migration failure, got {result:?}");
    };
    assert_eq!(
        db.calls[db.calls.len() - 3..],
        [Execute(1, Direction::Up), Execute(2, Direction::Up), Unlock]
    );
    assert!(!db.calls.contains(&Execute(3, Direction::Up)));
    assert_eq!((failure.version, failure.file.as_str()), (2, "2_m.up.sql"));
    assert_eq!(
        (failure.line, failure.column),
        (Some(3), Some(1)),
        "statement 1 starts on line 3"
    );
    assert_eq!(
        failure.statement.as_deref(),
        Some("INSERT INTO a\n  VALUES (1, 2)")
    );
    assert_eq!(failure.code.as_deref(), Some("42601"));
    assert!(failure.dirty, "dirty comes from the driver");
    assert_eq!(failure.previous_version, Some(1));
    assert_eq!(versions(&report.applied), [1]);
    assert_eq!(
        versions(&report.not_run),
        [3],
        "the rest; the failed one ran and is in `failure`"
    );
    assert_eq!(report.version_after, Some(1));
    assert_eq!(
        db.recorded(),
        [(1, RowStatus::Applied), (2, RowStatus::Failed)]
    );
}

#[tokio::test]
async fn a_server_offset_wins_over_the_statement_start_and_clean_failures_stay_clean() {
    let sql = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1, 2);\n";
    let offset = sql.find("2)").unwrap();
    let err = ExecError {
        statement: Some(1),
        offset: Some(offset),
        message: "boom".into(),
        connection_lost: true,
        ..ExecError::default()
    };
    let mut db = MemDriver::postgres().failing(1, err);
    let (result, report) = go(&mut db, &[file_with(1, sql)], up()).await;
    let Err(Error::MigrationFailed(failure)) = &result else {
        panic!("expected a migration failure, got {result:?}");
    };
    assert_eq!((failure.line, failure.column), (Some(2), Some(26)));
    assert!(!failure.dirty);
    assert_eq!(failure.previous_version, None);
    assert!(
        failure
            .message
            .contains("connection to the database was lost"),
        "{}",
        failure.message
    );
    assert!(report.applied.is_empty());
    assert_eq!(db.recorded(), [], "rolled back, no row");
}

#[tokio::test]
async fn a_statement_that_cannot_run_in_a_transaction_names_the_formats_marker() {
    let sql = "CREATE INDEX CONCURRENTLY i ON t (id);\n";
    let err = ExecError {
        statement: Some(0),
        code: Some("25001".into()),
        message: "CREATE INDEX CONCURRENTLY cannot run inside a transaction block".into(),
        detail: Some("detail: from the server".into()),
        ..ExecError::default()
    };
    let mut refinery = file_with(1, sql);
    refinery.format = migrator_core::migration::Format::Refinery;
    let mut db = MemDriver::postgres().failing(1, err.clone());
    let (result, _) = go(&mut db, &[refinery], up()).await;
    let Err(Error::MigrationFailed(failure)) = &result else {
        panic!("expected a migration failure, got {result:?}");
    };
    let detail = failure.detail.as_deref().unwrap_or_default();
    assert!(
        detail.starts_with("detail: from the server\nhint: "),
        "{detail}"
    );
    assert!(detail.contains("-- refinery:noTransaction"), "{detail}");

    // Already outside a transaction: the hint would be wrong.
    let mut no_tx = file_with(1, sql);
    no_tx.transactional = false;
    let mut db = MemDriver::postgres().failing(1, err);
    let (result, _) = go(&mut db, &[no_tx], up()).await;
    let Err(Error::MigrationFailed(failure)) = &result else {
        panic!("expected a migration failure, got {result:?}");
    };
    assert_eq!(failure.detail.as_deref(), Some("detail: from the server"));
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_lists_the_plan() {
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let change = Change::Up {
        to: None,
        single_transaction: false,
        dry_run: true,
    };
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change.clone()).await;
    result.unwrap();
    assert_eq!(db.calls, [Lock, History, Unlock]);
    assert!(report.dry_run);
    assert!(report.applied.is_empty());
    assert_eq!(versions(&report.not_run), [2, 3]);
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(1), Some(1))
    );

    // Nor is the history table created on a fresh database.
    let mut db = MemDriver::postgres();
    let (result, report) = go(&mut db, &files(&[1, 2]), change).await;
    result.unwrap();
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert_eq!(versions(&report.not_run), [1, 2]);

    let change = Change::Down {
        target: DownTarget::All,
        yes: false,
        dry_run: true,
    };
    let mut db = MemDriver::postgres().with_rows(applied(&[1, 2]));
    let (result, report) = go(&mut db, &files(&[1, 2]), change).await;
    result.unwrap();
    assert_eq!(db.calls, [Lock, History, Unlock]);
    assert_eq!(versions(&report.not_run), [2, 1]);
    assert!(
        report
            .not_run
            .iter()
            .all(|s| s.direction == Direction::Down)
    );
}

#[tokio::test]
async fn down_needs_yes_and_then_reverts_newest_first() {
    let change = |yes| Change::Down {
        target: DownTarget::Steps(2),
        yes,
        dry_run: false,
    };
    let mut db = MemDriver::postgres().with_rows(applied(&[1, 2, 3]));
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change(false)).await;
    let Err(Error::NotConfirmed(message)) = &result else {
        panic!("expected NotConfirmed, got {result:?}");
    };
    assert!(message.contains("`migrator down 2 --yes`"), "{message}");
    let (three, two) = (message.find("3_m").unwrap(), message.find("2_m").unwrap());
    assert!(three < two, "newest first: {message}");
    assert!(!message.contains("1_m"), "{message}");
    assert_eq!(db.calls, [Lock, History, Unlock]);
    assert!(report.applied.is_empty());

    let mut db = MemDriver::postgres().with_rows(applied(&[1, 2, 3]));
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change(true)).await;
    result.unwrap();
    assert_eq!(
        db.calls,
        [
            Lock,
            History,
            Execute(3, Direction::Down),
            Execute(2, Direction::Down),
            Unlock
        ]
    );
    assert_eq!(versions(&report.applied), [3, 2]);
    assert!(
        report
            .applied
            .iter()
            .all(|s| s.direction == Direction::Down)
    );
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(3), Some(1))
    );
    assert_eq!(db.recorded(), [(1, RowStatus::Applied)]);
}

#[tokio::test]
async fn not_confirmed_names_the_command_for_each_target() {
    for (target, again) in [
        (DownTarget::Steps(1), "`migrator down --yes`"),
        (DownTarget::To(1), "`migrator down --to 1 --yes`"),
        (DownTarget::All, "`migrator down --all --yes`"),
    ] {
        let mut db = MemDriver::postgres().with_rows(applied(&[1, 2]));
        let change = Change::Down {
            target,
            yes: false,
            dry_run: false,
        };
        let (result, _) = go(&mut db, &files(&[1, 2]), change).await;
        assert!(
            matches!(&result, Err(Error::NotConfirmed(m)) if m.contains(again)),
            "{target:?}: {result:?}"
        );
        assert!(db.writes().is_empty());
    }
}

#[tokio::test]
async fn a_lock_timeout_ends_the_run_at_the_lock() {
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    db.lock_times_out = true;
    let (result, report) = go(&mut db, &files(&[1, 2]), up()).await;
    assert!(
        matches!(result, Err(Error::LockTimeout { seconds: 7, .. })),
        "the configured timeout is passed on: {result:?}"
    );
    assert_eq!(
        db.calls,
        [Lock],
        "no history, no write, no unlock of a lock not held"
    );
    assert!(report.applied.is_empty() && report.not_run.is_empty());
}

#[tokio::test]
async fn single_transaction_is_refused_on_mysql_before_the_lock() {
    let mut db = MemDriver::new(Engine::Mysql).with_rows(applied(&[1]));
    let change = Change::Up {
        to: None,
        single_transaction: true,
        dry_run: false,
    };
    let (result, report) = go(&mut db, &files(&[1, 2]), change).await;
    let Err(err @ Error::Usage { .. }) = &result else {
        panic!("expected a usage error, got {result:?}");
    };
    assert!(err.to_string().contains("PostgreSQL only"), "{err}");
    assert!(db.calls.is_empty(), "{:?}", db.calls);
    assert_eq!(report.database.unwrap().engine, Engine::Mysql);
}

#[tokio::test]
async fn single_transaction_runs_all_at_once_or_records_none() {
    let change = Change::Up {
        to: None,
        single_transaction: true,
        dry_run: false,
    };
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change.clone()).await;
    result.unwrap();
    assert_eq!(db.calls, [Lock, History, ExecuteAll(vec![2, 3]), Unlock]);
    assert_eq!(versions(&report.applied), [2, 3]);
    assert!(report.not_run.is_empty());
    assert_eq!(report.version_after, Some(3));

    let err = ExecError {
        statement: Some(0),
        message: "boom".into(),
        ..ExecError::default()
    };
    let mut db = MemDriver::postgres()
        .with_rows(applied(&[1]))
        .failing(3, err);
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change.clone()).await;
    let Err(Error::MigrationFailed(failure)) = &result else {
        panic!("expected a migration failure, got {result:?}");
    };
    assert_eq!((failure.version, failure.line), (3, Some(1)));
    assert_eq!(failure.previous_version, Some(1), "all rolled back");
    assert!(report.applied.is_empty());
    assert_eq!(versions(&report.not_run), [2]);
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert_eq!(db.recorded(), [(1, RowStatus::Applied)]);

    // A no-transaction migration cannot join: refused before any write.
    let mut files = files(&[1, 2]);
    files[1].transactional = false;
    let mut db = MemDriver::postgres();
    let (result, _) = go(&mut db, &files, change).await;
    assert!(matches!(result, Err(Error::Usage { .. })), "{result:?}");
    assert!(
        !db.calls
            .iter()
            .any(|c| matches!(c, Execute(..) | ExecuteAll(_))),
        "{:?}",
        db.calls
    );
}

#[tokio::test]
async fn another_tools_history_is_adopted_then_only_the_rest_runs() {
    let mut db =
        MemDriver::postgres().with_foreign(Tool::Sqlx, &[("1", "m", "true"), ("2", "m", "true")]);
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), up()).await;
    result.unwrap();
    assert_eq!(
        db.writes(),
        [
            &CreateHistory,
            &InsertApplied(vec![1, 2]),
            &Execute(3, Direction::Up)
        ]
    );
    assert!(
        db.calls
            .contains(&QueryText(Tool::Sqlx.query(Engine::Postgres)))
    );
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert_eq!(db.recorded(), [1, 2, 3].map(|v| (v, RowStatus::Applied)));
    let adopted = report.adopted.as_ref().expect("adoption reported");
    assert_eq!(
        (adopted.tool, adopted.table.as_str(), adopted.versions),
        (Tool::Sqlx, "_sqlx_migrations", 2)
    );
    assert_eq!(versions(&report.applied), [3]);
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(2), Some(3))
    );
}

#[tokio::test]
async fn adoption_in_a_dry_run_writes_nothing() {
    let mut db = MemDriver::new(Engine::Mysql).with_foreign(Tool::GolangMigrate, &[("2", "", "0")]);
    let change = Change::Up {
        to: None,
        single_transaction: false,
        dry_run: true,
    };
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change).await;
    result.unwrap();
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert!(db.rows.is_none(), "no history table");
    assert!(
        db.calls
            .contains(&QueryText(Tool::GolangMigrate.query(Engine::Mysql))),
        "the engine's dialect: {:?}",
        db.calls
    );
    assert_eq!(report.adopted.as_ref().map(|a| a.versions), Some(2));
    assert_eq!(versions(&report.not_run), [3]);
    assert_eq!(report.version_before, Some(2));
}

#[tokio::test]
async fn adoption_is_not_tried_without_the_option_or_over_our_own_table() {
    let foreign = [("1", "m", "true")];
    let mut db = MemDriver::postgres().with_foreign(Tool::Refinery, &foreign);
    let mut report = RunReport::new("up");
    let no_adopt = Options {
        adopt: false,
        ..options()
    };
    let interrupt = Interrupt::default();
    run(
        &mut db,
        &files(&[1]),
        &up(),
        &no_adopt,
        &interrupt,
        &mut report,
    )
    .await
    .unwrap();
    assert!(!db.calls.iter().any(|c| matches!(c, QueryText(_))));
    assert_eq!(db.writes(), [&CreateHistory, &Execute(1, Direction::Up)]);

    let mut db = MemDriver::postgres()
        .with_rows(Vec::new())
        .with_foreign(Tool::Refinery, &foreign);
    let (result, report) = go(&mut db, &files(&[1]), up()).await;
    result.unwrap();
    assert!(!db.calls.iter().any(|c| matches!(c, QueryText(_))));
    assert!(report.adopted.is_none());
    assert_eq!(db.writes(), [&Execute(1, Direction::Up)]);
}

#[tokio::test]
async fn a_failed_foreign_history_is_refused_before_anything_is_written() {
    let mut db = MemDriver::postgres().with_foreign(Tool::GolangMigrate, &[("2", "", "true")]);
    let (result, _) = go(&mut db, &files(&[1, 2, 3]), up()).await;
    assert!(
        matches!(&result, Err(Error::Refused(r)) if matches!(r[..], [Refusal::ForeignDirty { .. }])),
        "{result:?}"
    );
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert_eq!(db.calls.last(), Some(&Unlock));
}

#[tokio::test]
async fn a_refused_run_over_a_foreign_history_adopts_nothing() {
    // Adoption is a write: it waits for every check, so a refusal leaves no table.
    let mut db =
        MemDriver::postgres().with_foreign(Tool::Sqlx, &[("1", "m", "true"), ("3", "m", "true")]);
    let (result, report) = go(&mut db, &files(&[1, 2, 3, 4]), up()).await;
    assert!(
        matches!(&result, Err(Error::Refused(r)) if matches!(r[..], [Refusal::OutOfOrder { version: 2, .. }])),
        "{result:?}"
    );
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert!(db.rows.is_none(), "no history table");
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert!(report.applied.is_empty());
}

#[tokio::test]
async fn history_shows_a_foreign_history_without_writing() {
    let mut db = MemDriver::postgres().with_foreign(Tool::Diesel, &[("1", "", "true")]);
    let read = db.history().await.unwrap();
    let rows = history(&mut db, read, &files(&[1, 2]), true).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.version, r.checksum.as_str()))
            .collect::<Vec<_>>(),
        [(1, "sum1")]
    );
    assert!(db.writes().is_empty());
    assert!(!db.calls.contains(&Lock), "read-only: no lock");

    let mut db = MemDriver::postgres().with_foreign(Tool::Diesel, &[("1", "", "true")]);
    let read = db.history().await.unwrap();
    assert!(
        history(&mut db, read, &files(&[1]), false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.calls, [History]);
}

#[tokio::test]
async fn force_writes_its_plan_and_runs_no_sql() {
    let mut rows = applied(&[1, 2, 3, 4]);
    rows[1].status = RowStatus::Failed;
    rows[3].status = RowStatus::Failed;
    let force = |yes| Change::Force { version: 3, yes };

    let mut db = MemDriver::postgres().with_rows(rows.clone());
    let (result, _) = go(&mut db, &files(&[1, 2, 3, 4]), force(false)).await;
    let Err(Error::NotConfirmed(message)) = &result else {
        panic!("expected NotConfirmed, got {result:?}");
    };
    assert!(message.contains("forget 4_m"), "{message}");
    assert!(message.contains("`migrator force 3 --yes`"), "{message}");
    assert_eq!(db.calls, [Lock, History, Unlock]);

    let mut db = MemDriver::postgres().with_rows(rows);
    let (result, report) = go(&mut db, &files(&[1, 2, 3, 4]), force(true)).await;
    result.unwrap();
    let plan = ForcePlan {
        delete_above: 3,
        upsert: vec![(3, "m".into(), "sum3".into())],
        clear: vec![2],
    };
    assert_eq!(db.calls, [Lock, History, Force(plan), Unlock]);
    assert_eq!(db.recorded(), [1, 2, 3].map(|v| (v, RowStatus::Applied)));
    assert_eq!(
        (report.version_before, report.version_after),
        (Some(3), Some(3))
    );
    assert!(report.applied.is_empty(), "no migration ran");

    // On a fresh database the table is created first; force 0 means nothing applied.
    let mut db = MemDriver::postgres();
    let change = Change::Force {
        version: 0,
        yes: true,
    };
    let (result, report) = go(&mut db, &files(&[1]), change).await;
    result.unwrap();
    assert_eq!(db.writes()[0], &CreateHistory);
    assert!(matches!(db.writes()[1], Force(p) if p.upsert.is_empty()));
    assert_eq!(report.version_after, None);
}

#[tokio::test]
async fn baseline_records_files_up_to_the_version_without_running_them() {
    let mut db = MemDriver::postgres();
    let change = Change::Baseline {
        version: 2,
        yes: true,
    };
    let (result, report) = go(&mut db, &files(&[1, 2, 3]), change.clone()).await;
    result.unwrap();
    assert_eq!(
        db.calls,
        [
            Lock,
            History,
            CreateHistory,
            InsertApplied(vec![1, 2]),
            Unlock
        ]
    );
    assert_eq!(db.recorded(), [1, 2].map(|v| (v, RowStatus::Applied)));
    assert_eq!(
        (report.version_before, report.version_after),
        (None, Some(2))
    );

    // Recorded versions are kept, not recorded twice.
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let (result, _) = go(&mut db, &files(&[1, 2, 3]), change).await;
    result.unwrap();
    assert_eq!(db.writes(), [&InsertApplied(vec![2])]);

    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let change = Change::Baseline {
        version: 3,
        yes: false,
    };
    let (result, _) = go(&mut db, &files(&[1, 2, 3]), change).await;
    let Err(Error::NotConfirmed(message)) = &result else {
        panic!("expected NotConfirmed, got {result:?}");
    };
    assert!(message.contains("record 2 migration(s)"), "{message}");
    assert!(message.contains("`migrator baseline 3 --yes`"), "{message}");
    assert_eq!(db.calls, [Lock, History, Unlock]);
}

#[tokio::test]
async fn baseline_not_confirmed_lines_are_not_indented() {
    let mut db = MemDriver::postgres();
    let change = Change::Baseline {
        version: 1,
        yes: false,
    };
    let (result, _) = go(&mut db, &files(&[1]), change).await;
    let Err(Error::NotConfirmed(message)) = &result else {
        panic!("expected NotConfirmed, got {result:?}");
    };
    for line in message.lines() {
        assert_eq!(line, line.trim_start(), "{message:?}");
    }
}

#[tokio::test]
async fn a_signal_between_migrations_stops_before_the_next_one() {
    let interrupt = Interrupt::default();
    let mut db = MemDriver::postgres().with_rows(Vec::new());
    db.signal_at = Some((1, interrupt.clone()));
    let (result, report) = go_with(&mut db, &files(&[1, 2, 3]), up(), &interrupt).await;
    let Err(Error::Interrupted { signal, detail }) = &result else {
        panic!("expected Interrupted, got {result:?}");
    };
    assert_eq!(*signal, Signal::Sigterm);
    let detail = detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("before 2_m") && detail.contains("1 of 3 done"),
        "{detail}"
    );
    assert_eq!(db.writes(), [&Execute(1, Direction::Up)]);
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert_eq!(versions(&report.applied), [1]);
    assert_eq!(versions(&report.not_run), [2, 3]);
    assert_eq!(report.version_after, Some(1));
}

#[tokio::test]
async fn a_signal_before_the_first_migration_runs_none() {
    let interrupt = Interrupt::default();
    interrupt.trigger(Signal::Sigint).await;
    let mut db = MemDriver::postgres().with_rows(applied(&[1]));
    let (result, report) = go_with(&mut db, &files(&[1, 2]), up(), &interrupt).await;
    assert!(
        matches!(
            result,
            Err(Error::Interrupted {
                signal: Signal::Sigint,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(db.writes().is_empty(), "{:?}", db.calls);
    assert_eq!(db.calls.last(), Some(&Unlock));
    assert!(report.applied.is_empty());
    assert_eq!(versions(&report.not_run), [2]);
}

#[tokio::test]
async fn a_statement_cancelled_by_a_signal_is_reported_as_interrupted() {
    for (dirty, says) in [(false, "was rolled back"), (true, "is marked dirty")] {
        let interrupt = Interrupt::default();
        let err = ExecError {
            statement: Some(0),
            message: "canceling statement due to user request".into(),
            cancelled: true,
            dirty,
            ..ExecError::default()
        };
        // The signal comes while 1 runs, after the engine's check before it.
        let mut db = MemDriver::postgres().failing(1, err);
        db.signal_at = Some((1, interrupt.clone()));
        let (result, report) = go_with(&mut db, &files(&[1, 2]), up(), &interrupt).await;
        let Err(Error::Interrupted { detail, .. }) = &result else {
            panic!("expected Interrupted, got {result:?}");
        };
        let detail = detail.as_deref().unwrap_or_default();
        assert!(detail.contains("1_m") && detail.contains(says), "{detail}");
        assert_eq!(db.writes(), [&CreateHistory, &Execute(1, Direction::Up)]);
        assert_eq!(db.calls.last(), Some(&Unlock));
        assert!(report.applied.is_empty());
    }
}

#[tokio::test]
async fn a_signal_on_a_fresh_database_creates_no_history_table() {
    let interrupt = Interrupt::default();
    interrupt.trigger(Signal::Sigterm).await;
    let mut db = MemDriver::postgres();
    let (result, _) = go_with(&mut db, &files(&[1, 2]), up(), &interrupt).await;
    assert!(
        matches!(
            result,
            Err(Error::Interrupted {
                signal: Signal::Sigterm,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(!db.calls.contains(&CreateHistory), "{:?}", db.calls);
    assert!(db.writes().is_empty(), "{:?}", db.calls);
}

/// The answer to a COMMIT is lost with the connection: the engine reads the row
/// on a new session instead of guessing, and reports it settled.
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_settled_from_the_history() {
    use migrator_core::report::Settled;
    let files = files(&[1, 2, 3]);
    let mut db = MemDriver::postgres();
    db.lost_after_commit = Some(2);
    let (result, report) = go(&mut db, &files, up()).await;
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("2_m: in doubt, settled: applied"),
        "{err}"
    );
    assert_eq!(report.in_doubt.len(), 1);
    assert_eq!(report.in_doubt[0].settled, Settled::Applied);
    assert_eq!(versions(&report.applied), [1, 2]);
    assert_eq!(versions(&report.not_run), [3]);
    assert!(db.calls.contains(&Reconnect));
    assert_eq!(
        db.recorded(),
        [(1, RowStatus::Applied), (2, RowStatus::Applied)]
    );
}

/// `up --wait`: after settling, the run takes the lock again and carries on.
#[tokio::test]
async fn up_wait_carries_on_after_the_lost_connection() {
    let files = files(&[1, 2, 3]);
    let mut db = MemDriver::postgres();
    db.lost_after_commit = Some(2);
    let mut report = RunReport::new("up");
    let resume = Options {
        resume: Some(Duration::from_secs(30)),
        ..options()
    };
    let result = run(
        &mut db,
        &files,
        &up(),
        &resume,
        &Interrupt::default(),
        &mut report,
    )
    .await;
    result.unwrap();
    assert_eq!(versions(&report.applied), [1, 2, 3]);
    assert!(report.not_run.is_empty());
    assert_eq!(report.version_before, None);
    assert_eq!(report.version_after, Some(3));
    assert_eq!(db.calls.iter().filter(|c| **c == Lock).count(), 2);
    assert_eq!(db.recorded().len(), 3);
}
