//! MySQL 8, MariaDB and Aurora MySQL through sqlx's MySQL driver.
//!
//! MySQL commits DDL implicitly, so a migration cannot be atomic. The driver opens
//! a transaction and writes an "in progress" row first: a DDL statement's implicit
//! commit persists that row before anything else changes, so a crash or failure
//! half way is visible on the next run; a DML-only migration stays one
//! transaction with its history row. After a failure the driver rolls back and
//! reads the row back: present means something was committed (dirty), absent means
//! nothing changed; present after the migration's first statement failed means only
//! that statement's implicit commit wrote it, and it is taken back. A session the
//! server closed is replaced to read the row back. Statements run one by one over the text protocol, as the
//! `mysql` client sends them.

mod capture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use super::{ConnectPolicy, Driver, Exec, ExecError};
use crate::interrupt::Interrupt;
use migrator_core::adopt::Adopted;
use migrator_core::error::{Error, Result};
use migrator_core::history::{HistoryRow, RowStatus};
use migrator_core::plan::ForcePlan;
use migrator_core::rehearsal::{Capture, Schema};
use migrator_core::report::{DatabaseInfo, Direction};
use migrator_core::split::Statement;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS migrator_history (
    version BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    checksum CHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'applied',
    applied_at DATETIME(6) NOT NULL,
    execution_ms BIGINT NOT NULL DEFAULT 0,
    failed_statement MEDIUMTEXT NULL,
    error TEXT NULL
) ENGINE=InnoDB";

const SELECT_HISTORY: &str = "SELECT version, name, checksum, status, \
    DATE_FORMAT(applied_at, '%Y-%m-%dT%H:%i:%s.%fZ'), execution_ms, failed_statement, error \
    FROM migrator_history ORDER BY version";

/// MySQL error numbers we act on.
/// A migration recorded as applied without running it (force, adoption, baseline).
const INSERT_APPLIED: &str = "INSERT INTO migrator_history \
     (version, name, checksum, status, applied_at, execution_ms) \
     VALUES (?, ?, ?, 'applied', UTC_TIMESTAMP(6), 0)";

/// Runs `sql` (an [`INSERT_APPLIED`]) for one `(version, name, checksum)` row.
async fn record_applied(
    conn: &mut MySqlConnection,
    sql: &str,
    (version, name, checksum): &Adopted,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(sql))
        .bind(*version)
        .bind(name)
        .bind(checksum)
        .execute(conn)
        .await
        .map(drop)
}

const ER_NO_SUCH_TABLE: u16 = 1146;
const ER_BAD_FIELD: u16 = 1054;
const ER_QUERY_INTERRUPTED: u16 = 1317;
const ER_TOO_MANY_CONNECTIONS: u16 = 1040;
const ER_SERVER_SHUTDOWN: u16 = 1053;
const ER_NET_PACKET_TOO_LARGE: u16 = 1153;

fn db_error(e: &sqlx::Error) -> Option<&MySqlDatabaseError> {
    match e {
        sqlx::Error::Database(db) => db.try_downcast_ref::<MySqlDatabaseError>(),
        _ => None,
    }
}

fn describe(e: &sqlx::Error) -> String {
    match db_error(e) {
        Some(db) => format!("[{}] {}", db.number(), db.message()),
        None => e.to_string(),
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match db_error(e) {
        Some(db) => matches!(db.number(), ER_TOO_MANY_CONNECTIONS | ER_SERVER_SHUTDOWN),
        None => matches!(
            e,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut
        ),
    }
}

pub struct Mysql {
    conn: MySqlConnection,
    /// To open a new session after the server closed ours, bounded as the
    /// first one was.
    options: Box<MySqlConnectOptions>,
    policy: ConnectPolicy,
    /// `--init-sql`, run on every session.
    init_sql: Vec<String>,
    info: DatabaseInfo,
    lock_name: String,
    /// Measure rewrites and locks (`capture`); what the last migration measured.
    capture_on: bool,
    capture: capture::Capture,
    captured: Option<Capture>,
}

pub async fn connect(
    options: &MySqlConnectOptions,
    info: DatabaseInfo,
    policy: ConnectPolicy,
    init_sql: &[String],
    interrupt: &Interrupt,
) -> Result<Mysql> {
    let mut conn = open(options, &info, policy, interrupt).await?;
    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| Error::database("starting the session", describe(&e)))?;
    let killer = options.clone();
    interrupt.set_canceller(Arc::new(move || {
        let killer = killer.clone();
        Box::pin(async move {
            // KILL QUERY needs a second connection.
            let result = async {
                let mut c = killer.connect().await?;
                sqlx::raw_sql(AssertSqlSafe(format!("KILL QUERY {id}")))
                    .execute(&mut c)
                    .await?;
                c.close().await
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %describe(&e), "could not cancel the running statement");
            }
        })
    }));
    // GET_LOCK is server-wide: name it after the database.
    let mut lock_name = format!("migrator:{}", info.name);
    if lock_name.len() > 64 {
        lock_name = format!(
            "migrator:{}",
            &migrator_core::source::checksum(&info.name)[..32]
        );
    }
    let mut db = Mysql {
        conn,
        options: Box::new(options.clone()),
        policy,
        init_sql: init_sql.to_vec(),
        info,
        lock_name,
        capture_on: true,
        capture: capture::Capture::default(),
        captured: None,
    };
    db.start_session().await?;
    Ok(db)
}

/// One session, each attempt bounded by `policy.timeout` and retried while
/// `policy.wait` lasts (`retry_connect`): the first connection and the one that
/// replaces a session the server closed.
async fn open(
    options: &MySqlConnectOptions,
    info: &DatabaseInfo,
    policy: ConnectPolicy,
    interrupt: &Interrupt,
) -> Result<MySqlConnection> {
    super::retry_connect(info, policy, interrupt, || async {
        options.connect().await.map_err(|e| super::Failed {
            message: describe(&e),
            transient: is_transient(&e),
        })
    })
    .await
}

/// A string as a hex literal (`X'6162'`): safe to inline whatever the text and
/// whatever the server's `sql_mode` (no quoting or backslash rules apply).
fn hex_literal(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    let mut out = String::with_capacity(s.len() * 2 + 3);
    out.push_str("X'");
    for b in s.bytes() {
        out.push_str(&format!("{b:02X}"));
    }
    out.push('\'');
    out
}

/// Statements that never commit implicitly (so they can share a transaction
/// with the history row). Anything else may: DDL, GRANT, LOCK TABLES, `SET
/// autocommit`, CALL (a procedure may commit), …
fn is_dml(sql: &str) -> bool {
    let first = sql
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "INSERT" | "UPDATE" | "DELETE" | "REPLACE" | "SELECT" | "WITH" | "DO" | "VALUES"
    )
}

/// Where in `stmt` MySQL's "... near '<text>' at line N" points: the byte offset
/// into the statement, when the message says.
fn near_offset(stmt: &str, message: &str) -> Option<usize> {
    let (head, line) = message.rsplit_once("' at line ")?;
    let line: usize = line.trim().parse().ok()?;
    let line_start = if line <= 1 {
        0
    } else {
        stmt.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)?
    };
    let near = head.split_once("near '").map(|(_, n)| n).unwrap_or("");
    if near.is_empty() {
        // "near '' at line N": the statement ended too early.
        return Some(stmt.len());
    }
    Some(
        stmt[line_start..]
            .find(near)
            .map_or(line_start, |i| line_start + i),
    )
}

fn exec_error(e: &sqlx::Error, stmt: Option<(usize, &Statement<'_>)>) -> ExecError {
    let mut err = ExecError {
        message: describe(e),
        ..ExecError::default()
    };
    if let Some(db) = db_error(e) {
        err.code = Some(db.number().to_string());
        err.message = db.message().to_string();
        err.cancelled = db.number() == ER_QUERY_INTERRUPTED;
        // The server says so, then closes the session.
        err.connection_lost = db.number() == ER_NET_PACKET_TOO_LARGE;
    } else {
        err.connection_lost = matches!(e, sqlx::Error::Io(_) | sqlx::Error::Protocol(_));
    }
    if let Some((i, s)) = stmt {
        err.statement = Some(i);
        err.offset = Some(s.start + near_offset(s.sql, &err.message).unwrap_or(0));
    }
    err
}

impl Mysql {
    /// What every new session runs first: `--init-sql`.
    async fn start_session(&mut self) -> Result<()> {
        for sql in &self.init_sql {
            sqlx::raw_sql(AssertSqlSafe(sql.as_str()))
                .execute(&mut self.conn)
                .await
                .map_err(|e| super::init_sql_failed(sql, describe(&e)))?;
        }
        Ok(())
    }

    async fn run(&mut self, sql: &str) -> std::result::Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    async fn status_of(
        &mut self,
        version: u64,
    ) -> std::result::Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT status FROM migrator_history WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut self.conn)
            .await
    }

    /// The server closed the session during `failed`: open a new one, say whether
    /// the statement was larger than `max_allowed_packet` (then it never ran), and
    /// read the history row back as [`Self::after_failure`] does. Unknown stays dirty.
    async fn after_lost_connection(
        &mut self,
        exec: &Exec<'_>,
        failed: &Statement<'_>,
        first: bool,
        interrupt: &Interrupt,
        err: &mut ExecError,
    ) {
        err.dirty = true;
        match open(&self.options, &self.info, self.policy, interrupt).await {
            Ok(conn) => self.conn = conn,
            Err(e) => {
                tracing::error!(error = %e, "could not reconnect to read the history row back");
                return;
            }
        }
        if let Err(e) = self.start_session().await {
            tracing::error!(error = %e, "could not start a new session to read the history row back");
            return;
        }
        let limit: Option<u64> = sqlx::query_scalar("SELECT @@max_allowed_packet")
            .fetch_one(&mut self.conn)
            .await
            .ok();
        let sent = failed.sql.len() as u64;
        let too_big = limit.is_some_and(|max| sent > max);
        if let (true, Some(max)) = (too_big, limit) {
            err.message = format!(
                "{}; the statement is {sent} bytes, larger than the server's max_allowed_packet \
                 ({max} bytes), so the server closed the connection without running it: raise \
                 max_allowed_packet or split the statement",
                err.message
            );
        }
        // The lock went with the old session; write nothing unless we hold it again.
        if self.lock(Duration::ZERO, interrupt).await.is_err() {
            tracing::error!("could not take the lock again; the history row is left as it is");
            return;
        }
        self.after_failure(exec, failed, first && too_big, err)
            .await;
    }

    /// After a failed statement: roll back, then find out whether anything had been
    /// committed (the in-progress row survived) and record the failure if so.
    /// `no_effect`: the failing statement was the first one that could have changed
    /// anything, and it did not; the surviving row was committed by its implicit
    /// commit alone, so it is taken back and the failure is clean.
    async fn after_failure(
        &mut self,
        exec: &Exec<'_>,
        failed: &Statement<'_>,
        no_effect: bool,
        err: &mut ExecError,
    ) {
        let version = exec.migration.version;
        if exec.migration.transactional {
            let _ = self.run("ROLLBACK").await;
        }
        let status = match self.status_of(version).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %describe(&e), "could not read back the history row after the failure");
                err.dirty = true;
                return;
            }
        };
        let in_progress = match exec.direction {
            Direction::Up => status.is_some(),
            Direction::Down => status.as_deref() == Some("reverting"),
        };
        err.dirty = in_progress;
        if !in_progress {
            return;
        }
        if no_effect {
            let undo = match exec.direction {
                Direction::Up => format!("DELETE FROM migrator_history WHERE version = {version}"),
                Direction::Down => format!(
                    "UPDATE migrator_history SET status = 'applied' WHERE version = {version}"
                ),
            };
            match self.run(&undo).await {
                Ok(()) => {
                    err.dirty = false;
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %describe(&e), "could not take back the history row of a migration that changed nothing");
                }
            }
        }
        let status = match exec.direction {
            Direction::Up => "failed",
            Direction::Down => "revert_failed",
        };
        let error = match &err.code {
            Some(c) => format!("[{c}] {}", err.message),
            None => err.message.clone(),
        };
        let write = sqlx::query(
            "UPDATE migrator_history SET status = ?, failed_statement = ?, error = ? WHERE version = ?",
        )
        .bind(status)
        .bind(failed.sql)
        .bind(error)
        .bind(version)
        .execute(&mut self.conn)
        .await;
        if let Err(e) = write {
            tracing::error!(error = %describe(&e), "could not record the failure in the history table");
        }
    }
}

impl Driver for Mysql {
    fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    async fn lock(&mut self, timeout: Duration, interrupt: &Interrupt) -> Result<()> {
        let got: std::result::Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
                .bind(&self.lock_name)
                .bind(timeout.as_secs_f64())
                .fetch_one(&mut self.conn)
                .await;
        match got {
            Ok(Some(1)) => Ok(()),
            Ok(Some(_)) => {
                let holder: Option<String> = sqlx::query_scalar(
                    "SELECT CONCAT('connection ', p.ID, ' (', p.USER, '@', p.HOST, ')') \
                     FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(?)",
                )
                .bind(&self.lock_name)
                .fetch_optional(&mut self.conn)
                .await
                .ok()
                .flatten();
                Err(Error::LockTimeout {
                    seconds: timeout.as_secs(),
                    holder,
                })
            }
            _ if interrupt.signal().is_some() => Err(Error::Interrupted {
                signal: interrupt
                    .signal()
                    .unwrap_or(migrator_core::error::Signal::Sigterm),
                detail: Some("while waiting for the migration lock".into()),
            }),
            Ok(None) => Err(Error::database("taking the lock", "GET_LOCK returned NULL")),
            Err(e) => Err(Error::database("taking the lock", describe(&e))),
        }
    }

    async fn unlock(&mut self) -> Result<()> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&self.lock_name)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
            .map_err(|e| Error::database("releasing the lock", describe(&e)))
    }

    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        let doing = "reading the history table";
        let rows = match sqlx::query(SELECT_HISTORY).fetch_all(&mut self.conn).await {
            Ok(rows) => rows,
            Err(e) if db_error(&e).is_some_and(|d| d.number() == ER_NO_SUCH_TABLE) => {
                return Ok(None);
            }
            Err(e) => return Err(Error::database(doing, describe(&e))),
        };
        rows.iter()
            .map(|r| {
                let get = |e: sqlx::Error| Error::database(doing, describe(&e));
                let status: String = r.try_get(3).map_err(get)?;
                Ok(HistoryRow {
                    version: r.try_get(0).map_err(get)?,
                    name: r.try_get(1).map_err(get)?,
                    checksum: r.try_get(2).map_err(get)?,
                    status: RowStatus::parse(&status).ok_or_else(|| {
                        Error::database(doing, format!("unknown status `{status}`"))
                    })?,
                    applied_at: r.try_get(4).map_err(get)?,
                    execution_ms: r.try_get(5).map_err(get)?,
                    failed_statement: r.try_get(6).map_err(get)?,
                    error: r.try_get(7).map_err(get)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    async fn create_history(&mut self) -> Result<()> {
        self.run(CREATE_TABLE)
            .await
            .map_err(|e| Error::database("creating the history table", describe(&e)))
    }

    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        let plain = |e: sqlx::Error| exec_error(&e, None);
        self.captured = None;
        self.capture.start();
        let begin = if m.transactional {
            "START TRANSACTION; "
        } else {
            ""
        };
        // One round trip: open the transaction and write the in-progress row.
        let mark = match exec.direction {
            Direction::Up => format!(
                "{begin}INSERT INTO migrator_history (version, name, checksum, status, applied_at) \
                 VALUES ({}, {}, {}, 'running', UTC_TIMESTAMP(6))",
                m.version,
                hex_literal(&m.name),
                hex_literal(&m.checksum)
            ),
            Direction::Down => format!(
                "{begin}UPDATE migrator_history SET status = 'reverting' WHERE version = {}",
                m.version
            ),
        };
        self.run(&mark).await.map_err(plain)?;
        // Whether a transaction is open: a statement that may commit implicitly
        // (DDL and the like) ends it; the next DML opens a new one, so trailing
        // DML and the final history update share one commit.
        let mut in_tx = m.transactional;
        let started = Instant::now();
        for (i, stmt) in exec.statements.iter().enumerate() {
            let dml = is_dml(stmt.sql);
            let result = if interrupt.signal().is_some() {
                Err(super::interrupted_before(i, stmt.start, interrupt))
            } else {
                let reopen = if m.transactional && dml && !in_tx {
                    self.run("START TRANSACTION").await
                } else {
                    Ok(())
                };
                if self.capture_on {
                    // Capture: a table this statement may rebuild, its id before.
                    self.capture.before(&mut self.conn, stmt.sql).await;
                }
                let ran = match reopen {
                    Ok(()) => self
                        .run(stmt.sql)
                        .await
                        .map_err(|e| exec_error(&e, Some((i, stmt)))),
                    Err(e) => Err(exec_error(&e, Some((i, stmt)))),
                };
                if self.capture_on && ran.is_ok() {
                    self.capture.after(&mut self.conn).await;
                }
                ran
            };
            in_tx = m.transactional && dml;
            if let Err(mut err) = result {
                // A failing statement changes nothing (MySQL 8 and MariaDB run one
                // DDL statement atomically); the first one fails before anything of
                // the migration took effect.
                let first = i == 0;
                if !err.connection_lost {
                    self.after_failure(exec, stmt, first, &mut err).await;
                } else {
                    self.after_lost_connection(exec, stmt, first, interrupt, &mut err)
                        .await;
                }
                return Err(err);
            }
        }
        let ms = started.elapsed().as_millis() as u64;
        if self.capture_on {
            // Capture "after": the open transaction's metadata locks, just
            // before the history update and its commit.
            self.captured = Some(self.capture.finish(&mut self.conn, in_tx).await);
        }
        let done = match exec.direction {
            Direction::Up => format!(
                "UPDATE migrator_history SET status = 'applied', execution_ms = {ms}, \
                 applied_at = UTC_TIMESTAMP(6) WHERE version = {}",
                m.version
            ),
            Direction::Down => {
                format!("DELETE FROM migrator_history WHERE version = {}", m.version)
            }
        };
        // One round trip: the history update and the commit it shares.
        let done = if in_tx {
            format!("{done}; COMMIT")
        } else {
            done
        };
        self.run(&done).await.map_err(plain)?;
        Ok(ms)
    }

    async fn execute_all(
        &mut self,
        _execs: &[Exec<'_>],
        _interrupt: &Interrupt,
    ) -> std::result::Result<Vec<u64>, (usize, ExecError)> {
        // The runner refuses --single-transaction on MySQL before connecting.
        Err((
            0,
            ExecError {
                message: "--single-transaction is not possible on MySQL: DDL commits implicitly"
                    .into(),
                ..ExecError::default()
            },
        ))
    }

    async fn force(&mut self, plan: &ForcePlan) -> Result<()> {
        let doing = "writing the forced version";
        let db = |e: sqlx::Error| Error::database(doing, describe(&e));
        let mut tx = self.conn.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM migrator_history WHERE version > ?")
            .bind(plan.delete_above)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for v in &plan.clear {
            sqlx::query(
                "UPDATE migrator_history SET status = 'applied', failed_statement = NULL, error = NULL \
                 WHERE version = ?",
            )
            .bind(*v)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        for row in &plan.upsert {
            let upsert = format!(
                "{INSERT_APPLIED} ON DUPLICATE KEY UPDATE status = 'applied', \
                 name = VALUES(name), checksum = VALUES(checksum), \
                 failed_statement = NULL, error = NULL"
            );
            record_applied(&mut tx, &upsert, row).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn insert_applied(&mut self, rows: &[Adopted]) -> Result<()> {
        let doing = "recording migrations as applied";
        let db = |e: sqlx::Error| Error::database(doing, describe(&e));
        let mut tx = self.conn.begin().await.map_err(db)?;
        for row in rows {
            record_applied(&mut tx, INSERT_APPLIED, row)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn execute_plain(
        &mut self,
        statements: &[Statement<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let started = Instant::now();
        let plain = |e: sqlx::Error| exec_error(&e, None);
        self.run("START TRANSACTION").await.map_err(plain)?;
        for (i, stmt) in statements.iter().enumerate() {
            let result = if interrupt.signal().is_some() {
                Err(super::interrupted_before(i, stmt.start, interrupt))
            } else {
                self.run(stmt.sql)
                    .await
                    .map_err(|e| exec_error(&e, Some((i, stmt))))
            };
            if let Err(err) = result {
                let _ = self.run("ROLLBACK").await;
                return Err(err);
            }
        }
        self.run("COMMIT").await.map_err(plain)?;
        Ok(started.elapsed().as_millis() as u64)
    }

    fn set_capture(&mut self, on: bool) {
        self.capture_on = on;
    }

    fn take_capture(&mut self) -> Option<Capture> {
        self.captured.take()
    }

    async fn schema(&mut self) -> Result<Schema> {
        capture::text_rows(&mut self.conn, migrator_core::rehearsal::mysql::SCHEMA)
            .await
            .map(|rows| Schema::from_rows(&rows))
            .map_err(|e| Error::database("reading the schema for --verify-down", describe(&e)))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
        match sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(&mut self.conn)
            .await
        {
            Ok(rows) => rows
                .iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            r.try_get::<Option<String>, _>(i).map_err(|e| {
                                Error::database("reading another tool's history", describe(&e))
                            })
                        })
                        .collect()
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Err(e)
                if db_error(&e)
                    .is_some_and(|d| matches!(d.number(), ER_NO_SUCH_TABLE | ER_BAD_FIELD)) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::database(
                "reading another tool's history",
                describe(&e),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_offset_points_into_the_statement() {
        let stmt = "CREATE TABLE t (\n  id INT,\n  oops garbage here\n)";
        let msg = "You have an error in your SQL syntax; check the manual that corresponds to your \
                   MariaDB server version for the right syntax to use near 'garbage here\n)' at line 3";
        let off = near_offset(stmt, msg).unwrap();
        assert_eq!(&stmt[off..off + 7], "garbage");
        assert_eq!(near_offset(stmt, "Table 'x' doesn't exist"), None);
        assert_eq!(
            near_offset("SELECT (", "... near '' at line 1"),
            Some("SELECT (".len())
        );
    }

    #[test]
    fn hex_literals_and_dml_classification() {
        assert_eq!(hex_literal("a'b"), "X'612762'");
        assert_eq!(hex_literal(""), "''");
        assert!(is_dml("INSERT INTO t VALUES (1)"));
        assert!(is_dml("with x as (select 1) select * from x"));
        assert!(!is_dml("CREATE TABLE t (id INT)"));
        assert!(!is_dml("SET autocommit = 1"));
        assert!(!is_dml("CALL p()"));
    }
}
