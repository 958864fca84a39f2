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
//! server closed is replaced to read the row back.
//!
//! A migration is one round trip: the in-progress row, the statements (each as the
//! `mysql` client sends it, over the text protocol) and the final update with its
//! commit go in one multi-statement message ([`Mysql::execute`]); the server stops
//! at the first failure, and counting the results it sent back says which
//! statement that was. The lock, the session's id and the history read share one
//! round trip too. Scripts whose statements may answer with several results
//! (`CALL`), or too large for one packet, run statement by statement.
//!
//! The rehearsal capture (`capture`) rides in the migration's message as pieces
//! of its own (a table's id around each ALTER/OPTIMIZE TABLE, the locks before
//! the final update); the session's first migration first tries those queries
//! once, so that one the server refuses never stops a migration.

mod capture;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::Either;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};

use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};

use super::link::{self, Link, Watch};
use super::{ConnectPolicy, Driver, Exec, ExecError};
use crate::interrupt::Interrupt;
use migrator_core::adopt::Adopted;
use migrator_core::error::{Error, Result};
use migrator_core::history::{HistoryRow, RowStatus};
use migrator_core::plan::ForcePlan;
use migrator_core::rehearsal::mysql::Touch;
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
    link: Link,
    /// This session's id, for `KILL QUERY` and the watch from a second
    /// connection and for ending the session after its link died; 0 until read
    /// (with the lock, or before the first statement of a run without one).
    id: Arc<AtomicU64>,
    /// The server's `max_allowed_packet`, read with the lock: a migration larger
    /// than that is sent statement by statement.
    max_packet: Option<u64>,
    /// The history as read right behind the lock (same round trip), for the
    /// `history` call that follows it; any other call drops it.
    read_ahead: Option<Result<Option<Vec<HistoryRow>>>>,
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
    link: Link,
    interrupt: &Interrupt,
) -> Result<Mysql> {
    let conn = open(options, &info, policy, link, interrupt).await?;
    let id = Arc::new(AtomicU64::new(0));
    let killer = options.clone();
    let session = id.clone();
    interrupt.set_canceller(Arc::new(move || {
        let killer = killer.clone();
        let id = session.load(Ordering::SeqCst);
        Box::pin(async move {
            if id == 0 {
                tracing::warn!(
                    "could not cancel the running statement: its session id is not known yet"
                );
                return;
            }
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
        link,
        id,
        max_packet: None,
        read_ahead: None,
        capture_on: true,
        capture: capture::Capture::default(),
        captured: None,
    };
    db.start_session(interrupt).await?;
    Ok(db)
}

/// One session, each attempt bounded by `policy.timeout` and retried while
/// `policy.wait` lasts (`retry_connect`): the first connection and the one that
/// replaces a session the server closed. Keepalive is set inside the attempt.
/// The session's id is not asked for here (a round trip of its own): it comes
/// with the lock ([`Mysql::lock_and_read`]), and nothing but `--init-sql` (bounded
/// as connecting is) runs before that.
async fn open(
    options: &MySqlConnectOptions,
    info: &DatabaseInfo,
    policy: ConnectPolicy,
    link: Link,
    interrupt: &Interrupt,
) -> Result<MySqlConnection> {
    super::retry_connect(info, policy, interrupt, || async {
        let conn = options.connect().await.map_err(|e| super::Failed {
            message: describe(&e),
            transient: is_transient(&e),
        })?;
        if link.timeout.is_some() && options.get_socket().is_none() {
            link.configure_sockets(&link::peers(options.get_host(), options.get_port()).await);
        }
        Ok(conn)
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
            .or_else(|| running_on(&stmt[line_start..], near))
            .map_or(line_start, |i| line_start + i),
    )
}

/// Where in `rest` the server's `near` quote starts when the quote runs on past
/// the statement's end (into the next statement of a multi-statement message).
fn running_on(rest: &str, near: &str) -> Option<usize> {
    rest.char_indices()
        .map(|(i, _)| i)
        .find(|&i| !rest[i..].trim().is_empty() && near.starts_with(&rest[i..]))
}

/// The server's message with its `near '...'` quote cut at the statement's
/// end: what follows belongs to the next statement of the message (or to our
/// bookkeeping), not to what failed.
fn near_in_statement(stmt: &str, message: &str) -> Option<String> {
    let (head, line) = message.rsplit_once("' at line ")?;
    let (before, near) = head.split_once("near '")?;
    if stmt.contains(near) {
        return None;
    }
    let at = running_on(stmt, near)?;
    Some(format!("{before}near '{}' at line {line}", &stmt[at..]))
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
        if let Some(message) = near_in_statement(s.sql, &err.message) {
            err.message = message;
        }
    }
    err
}

/// When the server's `max_allowed_packet` is not known: the smallest default of
/// the servers we support (MySQL 5.7, 4 MiB).
const UNKNOWN_PACKET_LIMIT: u64 = 4 * 1024 * 1024;
/// Room left in a packet for what the protocol adds to the text.
const PACKET_SLACK: u64 = 1024;

/// A statement of a [`Batch`], in the order sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Begin,
    /// The in-progress row (`running`, `reverting`).
    Mark,
    /// `START TRANSACTION` again before statement `i` (DML after DDL).
    Reopen(usize),
    /// The script's statement `i`.
    Statement(usize),
    /// The final history update (or the row's removal).
    Done,
    Commit,
    /// The execution time the server recorded, read back.
    Took,
    /// Capture: the id of the table statement `i` may rebuild, before it.
    TableBefore(usize),
    /// Capture: the same table's id after statement `i`.
    TableAfter(usize),
    /// Capture: the open transaction's locks, before the final update.
    Locks,
}

/// One migration as one multi-statement message: the same statements, in the
/// same order and with the same transaction boundaries as the statement-by-
/// statement path sends them. The server answers each statement with one
/// result and stops at the first failure, so the number of results says which
/// piece failed.
struct Batch {
    text: String,
    pieces: Vec<Piece>,
    /// No statement may answer with several results (`CALL`, `EXECUTE`): only
    /// then does counting results locate a failure.
    one_answer_each: bool,
    /// Whether a transaction is still open at the final update.
    ends_in_tx: bool,
    /// The tables the migration creates (their locks are its own).
    created: Vec<String>,
}

impl Batch {
    /// `capture`: the session's capture, when measuring (its pieces go in
    /// where its queries are known to be answered).
    fn of(exec: &Exec<'_>, capture: Option<&capture::Capture>) -> Batch {
        Batch::from(exec, capture, 0)
    }

    /// What is left of a message that stopped at a failed capture piece:
    /// the migration's own pieces from `resume` on (an index into a message
    /// without capture pieces, [`Batch::resume_at`]), with no capture.
    fn rest(exec: &Exec<'_>, resume: usize) -> Batch {
        Batch::from(exec, None, resume)
    }

    /// Where a message without capture pieces goes on after a capture piece
    /// failed at `at`: that piece's statement (before it ran), the piece
    /// after its statement (after it ran), or the final update.
    fn resume_at(exec: &Exec<'_>, at: Piece) -> Option<usize> {
        let plain = Batch::of(exec, None).pieces;
        match at {
            Piece::TableBefore(i) => plain.iter().position(|p| *p == Piece::Statement(i)),
            Piece::TableAfter(i) => plain
                .iter()
                .position(|p| *p == Piece::Statement(i))
                .map(|k| k + 1),
            Piece::Locks => plain.iter().position(|p| *p == Piece::Done),
            _ => None,
        }
    }

    fn from(exec: &Exec<'_>, capture: Option<&capture::Capture>, skip: usize) -> Batch {
        let m = exec.migration;
        let mut parts: Vec<(Piece, std::borrow::Cow<'_, str>)> = Vec::new();
        if m.transactional {
            parts.push((Piece::Begin, "START TRANSACTION".into()));
        }
        parts.push((Piece::Mark, mark_sql(exec).into()));
        let mut in_tx = m.transactional;
        let mut one_answer_each = true;
        let mut created = Vec::new();
        for (i, stmt) in exec.statements.iter().enumerate() {
            let dml = is_dml(stmt.sql);
            if m.transactional && dml && !in_tx {
                parts.push((Piece::Reopen(i), "START TRANSACTION".into()));
            }
            let table = match (capture, migrator_core::rehearsal::mysql::touch(stmt.sql)) {
                (Some(c), Some(Touch::Rebuilds(t))) => c.table_sql(&t),
                (_, Some(Touch::Creates(t))) => {
                    created.push(t);
                    None
                }
                _ => None,
            };
            if let Some(sql) = &table {
                parts.push((Piece::TableBefore(i), sql.clone().into()));
            }
            parts.push((Piece::Statement(i), stmt.sql.into()));
            if let Some(sql) = table {
                parts.push((Piece::TableAfter(i), sql.into()));
            }
            in_tx = m.transactional && dml;
            one_answer_each &= !may_answer_many(stmt.sql);
        }
        if in_tx && let Some(sql) = capture.and_then(capture::Capture::locks_sql) {
            parts.push((Piece::Locks, sql.into()));
        }
        let done = match exec.direction {
            // Timed on the server, from the in-progress row's timestamp.
            Direction::Up => format!(
                "UPDATE migrator_history SET status = 'applied', \
                 execution_ms = TIMESTAMPDIFF(MICROSECOND, applied_at, UTC_TIMESTAMP(6)) DIV 1000, \
                 applied_at = UTC_TIMESTAMP(6) WHERE version = {}",
                m.version
            ),
            Direction::Down => {
                format!("DELETE FROM migrator_history WHERE version = {}", m.version)
            }
        };
        parts.push((Piece::Done, done.into()));
        if in_tx {
            parts.push((Piece::Commit, "COMMIT".into()));
        }
        if exec.direction == Direction::Up {
            parts.push((
                Piece::Took,
                format!(
                    "SELECT execution_ms FROM migrator_history WHERE version = {}",
                    m.version
                )
                .into(),
            ));
        }
        parts.drain(..skip.min(parts.len()));
        // Each statement ends on its own line: a closing `--` comment cannot
        // swallow the separator.
        let mut text = String::new();
        for (i, (_, sql)) in parts.iter().enumerate() {
            if i > 0 {
                text.push_str("\n;\n");
            }
            text.push_str(sql);
        }
        Batch {
            text,
            pieces: parts.into_iter().map(|(p, _)| p).collect(),
            one_answer_each,
            ends_in_tx: in_tx,
            created,
        }
    }
}

/// The in-progress row of a migration about to run (inside its transaction,
/// when it has one).
fn mark_sql(exec: &Exec<'_>) -> String {
    let m = exec.migration;
    match exec.direction {
        Direction::Up => format!(
            "INSERT INTO migrator_history (version, name, checksum, status, applied_at) \
             VALUES ({}, {}, {}, 'running', UTC_TIMESTAMP(6))",
            m.version,
            hex_literal(&m.name),
            hex_literal(&m.checksum)
        ),
        Direction::Down => format!(
            "UPDATE migrator_history SET status = 'reverting' WHERE version = {}",
            m.version
        ),
    }
}

/// Statements that may answer with more than one result: a procedure's result
/// sets and its own status.
fn may_answer_many(sql: &str) -> bool {
    let first = sql
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(first.as_str(), "CALL" | "EXECUTE")
}

const READING_HISTORY: &str = "reading the history table";

/// A history row from [`SELECT_HISTORY`]'s answer (text protocol).
fn history_row(r: &sqlx::mysql::MySqlRow) -> Result<HistoryRow> {
    let get = |e: sqlx::Error| Error::database(READING_HISTORY, describe(&e));
    let status: String = r.try_get(3).map_err(get)?;
    Ok(HistoryRow {
        version: r.try_get(0).map_err(get)?,
        name: r.try_get(1).map_err(get)?,
        checksum: r.try_get(2).map_err(get)?,
        status: RowStatus::parse(&status).ok_or_else(|| {
            Error::database(READING_HISTORY, format!("unknown status `{status}`"))
        })?,
        applied_at: r.try_get(4).map_err(get)?,
        execution_ms: r.try_get(5).map_err(get)?,
        failed_statement: r.try_get(6).map_err(get)?,
        error: r.try_get(7).map_err(get)?,
    })
}

/// A failed history read: `None` when the table does not exist.
fn missing_or(e: sqlx::Error) -> Result<Option<Vec<HistoryRow>>> {
    if db_error(&e).is_some_and(|d| d.number() == ER_NO_SUCH_TABLE) {
        Ok(None)
    } else {
        Err(Error::database(READING_HISTORY, describe(&e)))
    }
}

/// A string as a character-string literal in the connection's character set,
/// whatever the server's `sql_mode` (no quoting or backslash rules apply).
fn text_literal(s: &str) -> String {
    format!("CONVERT({} USING utf8mb4)", hex_literal(s))
}

/// Why [`Mysql::lock_and_read`] did not answer.
enum LockFailed {
    Sql(sqlx::Error),
    /// The watch found the session silent while it waited (what it saw).
    Silent(String),
}

impl From<sqlx::Error> for LockFailed {
    fn from(e: sqlx::Error) -> Self {
        LockFailed::Sql(e)
    }
}

impl Mysql {
    /// One round trip: the session's id and `max_allowed_packet`, the lock
    /// (waiting at most `timeout`, on the server) and, behind it, the history.
    /// The id is stored as soon as it arrives, so a signal during the wait can
    /// cancel it; the server's version tells the capture which tables to read.
    /// Returns GET_LOCK's answer and the history read.
    ///
    /// Once the id is in, the rest (the lock wait) is awaited under the
    /// session watch: a link gone silent during the wait ends it within about
    /// the link timeout ([`LockFailed::Silent`]).
    async fn lock_and_read(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<(Option<i64>, Result<Option<Vec<HistoryRow>>>), LockFailed> {
        let sql = format!(
            "SELECT CONNECTION_ID(), @@max_allowed_packet, VERSION(); SELECT GET_LOCK({}, {}); \
             {SELECT_HISTORY}",
            text_literal(&self.lock_name),
            timeout.as_secs_f64()
        );
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_many(&mut self.conn);
        let (mut completed, mut got, mut rows) = (0usize, None, Vec::new());
        // Each history row is parsed as it arrives (10 000 rows never sit in
        // memory twice); the first bad one is the answer.
        let mut history = Ok(());
        let mut watch = Watch::Off;
        // The watch needs the session id, the first answer; until it comes a
        // silent link is bounded here (a live server answers it at once).
        let limit = self.link.timeout;
        let first_by = tokio::time::Instant::now() + limit.unwrap_or_default();
        loop {
            let waiting_first = limit.is_some() && matches!(watch, Watch::Off);
            let next = tokio::select! {
                next = stream.try_next() => next,
                why = watch.dead() => return Err(LockFailed::Silent(why)),
                () = tokio::time::sleep_until(first_by), if waiting_first => {
                    return Err(LockFailed::Silent(format!(
                        "no answer within --link-timeout ({}): the link to the server went silent",
                        migrator_core::duration::format(limit.unwrap_or_default())
                    )));
                }
            };
            match next {
                Ok(Some(Either::Left(_))) => completed += 1,
                Ok(Some(Either::Right(row))) => match completed {
                    0 => {
                        let id: u64 = row.try_get_unchecked(0)?;
                        self.id.store(id, Ordering::SeqCst);
                        watch = Watch::Mysql {
                            options: self.options.clone(),
                            id,
                            link: self.link,
                        };
                        self.max_packet = row.try_get_unchecked(1).ok();
                        if let Ok(version) = row.try_get_unchecked::<String, _>(2) {
                            self.capture.set_version(&version);
                        }
                    }
                    1 => got = row.try_get_unchecked::<Option<i64>, _>(0)?,
                    _ if history.is_ok() => match history_row(&row) {
                        Ok(r) => rows.push(r),
                        Err(e) => history = Err(e),
                    },
                    _ => {}
                },
                Ok(None) => break,
                // The history read failing (no table yet) does not undo the lock.
                Err(e) if completed >= 2 => {
                    drop(stream);
                    return Ok((got, missing_or(e)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        drop(stream);
        let history = history.map(|()| Some(rows));
        Ok((got, history))
    }

    /// Reads this session's id if no lock call did (a run without the lock).
    async fn ensure_id(&mut self) -> std::result::Result<(), sqlx::Error> {
        if self.id.load(Ordering::SeqCst) == 0 {
            let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
                .fetch_one(&mut self.conn)
                .await?;
            self.id.store(id, Ordering::SeqCst);
        }
        Ok(())
    }

    /// [`Batch`]: the whole migration in one round trip. After a failure, as
    /// [`Mysql::execute_each`] does: roll back, read the row back, record.
    async fn execute_batch(
        &mut self,
        exec: &Exec<'_>,
        batch: &Batch,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let started = Instant::now();
        let (mut completed, mut took, mut failure) = (0usize, None, None);
        let mut captured: Vec<(Piece, Vec<Option<String>>)> = Vec::new();
        {
            let mut stream =
                sqlx::raw_sql(AssertSqlSafe(batch.text.clone())).fetch_many(&mut self.conn);
            loop {
                match stream.try_next().await {
                    Ok(Some(Either::Left(_))) => completed += 1,
                    Ok(Some(Either::Right(row))) => match batch.pieces.get(completed) {
                        Some(Piece::Took) => took = row.try_get_unchecked::<i64, _>(0).ok(),
                        Some(p @ (Piece::TableBefore(_) | Piece::TableAfter(_) | Piece::Locks)) => {
                            captured.push((
                                *p,
                                (0..row.len())
                                    .map(|i| row.try_get::<Option<String>, _>(i).ok().flatten())
                                    .collect(),
                            ))
                        }
                        _ => {}
                    },
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        let elapsed = || started.elapsed().as_millis() as u64;
        let at = batch.pieces.get(completed).copied();
        // A capture piece that failed (the session's probe makes that rare)
        // stopped the message where it stands: before the statement it
        // precedes, or before the final update.
        let capture_failed = matches!(
            at,
            Some(Piece::TableBefore(_) | Piece::TableAfter(_) | Piece::Locks)
        );
        // The capture never fails a migration: what the message did so far
        // stands (an open transaction stays open after an error), the rest
        // goes as a message of its own without capture, and the session stops
        // asking the query that failed.
        if let (true, Some(piece), Some(e)) = (capture_failed, at, &failure)
            && !exec_error(e, None).connection_lost
            && let Some(resume) = Batch::resume_at(exec, piece)
        {
            let why = describe(e);
            tracing::warn!(
                version = exec.migration.version,
                error = %why,
                "the rehearsal capture's query failed inside the migration's message; \
                 the migration goes on without it"
            );
            self.capture.refused(piece == Piece::Locks, why.clone());
            let rest = Batch::rest(exec, resume);
            let took = Box::pin(self.execute_batch(exec, &rest, interrupt)).await?;
            if self.capture_on {
                self.captured = Some(Capture::not_measured(format!(
                    "the capture's query failed during this migration: {why}"
                )));
            }
            return Ok(took);
        }
        let at = match at {
            Some(Piece::TableBefore(i)) => Some(Piece::Statement(i)),
            Some(Piece::TableAfter(i)) if i + 1 < exec.statements.len() => {
                Some(Piece::Statement(i + 1))
            }
            Some(Piece::TableAfter(_) | Piece::Locks) => Some(Piece::Done),
            other => other,
        };
        let (i, mut err) = match (at, failure) {
            (None | Some(Piece::Took), _) => {
                if self.capture_on {
                    self.captured = Some(self.capture_of(exec, batch, captured));
                }
                return Ok(took.map_or_else(elapsed, |t| t.max(0) as u64));
            }
            (Some(Piece::Statement(i) | Piece::Reopen(i)), Some(e)) if capture_failed => {
                let mut err = exec_error(&e, None);
                err.statement = Some(i);
                err.message = format!(
                    "reading the rehearsal capture (before this statement ran): {}",
                    err.message
                );
                (i, err)
            }
            (Some(Piece::Statement(i) | Piece::Reopen(i)), Some(e)) => {
                (i, exec_error(&e, Some((i, &exec.statements[i]))))
            }
            // The server stopped between statements without an error: a KILL
            // QUERY (our signal) that landed after one statement ended.
            (Some(Piece::Statement(i) | Piece::Reopen(i)), None) => (
                i,
                super::interrupted_before(i, exec.statements[i].start, interrupt),
            ),
            (Some(Piece::Begin | Piece::Mark), failure) => {
                let _ = self.run("ROLLBACK").await;
                return Err(match failure {
                    Some(e) => exec_error(&e, None),
                    None => super::interrupted_before(0, 0, interrupt),
                });
            }
            // The script ran; its bookkeeping did not: the row stays in progress.
            // (Capture pieces were mapped to what they precede above.)
            (
                Some(
                    Piece::Done
                    | Piece::Commit
                    | Piece::TableBefore(_)
                    | Piece::TableAfter(_)
                    | Piece::Locks,
                ),
                failure,
            ) => {
                let mut err = match failure {
                    Some(e) => exec_error(&e, None),
                    None => super::interrupted_before(exec.statements.len(), 0, interrupt),
                };
                if capture_failed {
                    err.message = format!("reading the rehearsal capture: {}", err.message);
                }
                let Some(last) = exec.statements.len().checked_sub(1) else {
                    return Err(err);
                };
                (last, err)
            }
        };
        let stmt = &exec.statements[i];
        // As in `execute_each`: the first statement fails before anything of
        // the migration took effect.
        let first = i == 0 && matches!(at, Some(Piece::Statement(_) | Piece::Reopen(_)));
        if !err.connection_lost {
            self.after_failure(exec, stmt, first, &mut err).await;
        } else {
            self.after_lost_connection(exec, stmt, first, interrupt, &mut err)
                .await;
        }
        Err(err)
    }

    /// What the capture pieces of `batch` answered, as the migration's capture.
    fn capture_of(
        &self,
        exec: &Exec<'_>,
        batch: &Batch,
        rows: Vec<(Piece, Vec<Option<String>>)>,
    ) -> Capture {
        use migrator_core::rehearsal::mysql;
        let mut before = std::collections::HashMap::new();
        let mut rewrites = Vec::new();
        let mut held = Vec::new();
        for (piece, row) in rows {
            match piece {
                Piece::TableBefore(i) => {
                    before.insert(i, mysql::table_row(&row));
                }
                Piece::TableAfter(i) => {
                    if let (Some(Touch::Rebuilds(table)), Some(b)) =
                        (mysql::touch(exec.statements[i].sql), before.get(&i))
                    {
                        rewrites.extend(mysql::rebuilt(&table, *b, mysql::table_row(&row).0));
                    }
                }
                Piece::Locks => held.extend(mysql::lock_row(&row)),
                _ => {}
            }
        }
        let read_locks = batch.pieces.contains(&Piece::Locks);
        self.capture.of_message(
            rewrites,
            read_locks.then_some(held),
            batch.ends_in_tx,
            &batch.created,
        )
    }

    /// The migration statement by statement: a round trip each, with a check
    /// for a signal before each one. For scripts the one-message path cannot
    /// take (see [`Mysql::execute`]).
    async fn execute_each(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        let plain = |e: sqlx::Error| exec_error(&e, None);
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

    /// What every new session runs first: `--init-sql`, each value bounded by
    /// the connect timeout (a silent link right after connecting) and cut
    /// short by a signal.
    async fn start_session(&mut self, interrupt: &Interrupt) -> Result<()> {
        let limit = self.policy.timeout;
        for sql in &self.init_sql {
            let run = async {
                match tokio::time::timeout(
                    limit,
                    sqlx::raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut self.conn),
                )
                .await
                {
                    Ok(done) => done
                        .map(drop)
                        .map_err(|e| super::init_sql_failed(sql, describe(&e))),
                    Err(_) => Err(super::init_sql_failed(
                        sql,
                        "no answer within --connect-timeout".into(),
                    )),
                }
            };
            interrupt.cut(run, "running --init-sql").await?;
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
        if let Err(e) = self.reconnect(interrupt).await {
            tracing::error!(error = %e, "could not reconnect to read the history row back");
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
        let relocked = self.lock(Duration::ZERO, interrupt).await;
        self.read_ahead = None;
        if relocked.is_err() {
            tracing::error!("could not take the lock again; the history row is left as it is");
            return;
        }
        self.after_failure(exec, failed, first && too_big, err)
            .await;
    }

    /// Ends a connection we lost (if the server still runs it: a silent link)
    /// and waits until it is gone, so that its transaction is over either way.
    async fn end_session(&mut self, old: u64, interrupt: &Interrupt) -> Result<()> {
        let doing = "ending the lost session";
        if let Err(e) = self.run(&format!("KILL {old}")).await {
            // 1094: no such thread, it is gone already.
            if db_error(&e).is_none_or(|d| d.number() != 1094) {
                return Err(Error::database(doing, describe(&e)));
            }
        }
        let patience = self
            .link
            .timeout
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_secs(5));
        let until = Instant::now() + patience;
        loop {
            let there: Option<i64> =
                sqlx::query_scalar("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?")
                    .bind(old)
                    .fetch_optional(&mut self.conn)
                    .await
                    .map_err(|e| Error::database(doing, describe(&e)))?;
            if there.is_none() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(Error::database(
                    doing,
                    format!(
                        "the server still runs our lost connection {old} after {} s; its last \
                         migration stays in doubt",
                        patience.as_secs()
                    ),
                ));
            }
            interrupt
                .sleep(Duration::from_millis(50), "the lost session to end")
                .await?;
        }
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
        // An `applied` row means the final update committed: the migration
        // is done, and only its answer was lost (a link back in time for our
        // reconnect). Only a row still marked in progress is ours to fail.
        let in_progress = match exec.direction {
            Direction::Up => status.is_some_and(|s| s != "applied"),
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
        self.read_ahead = None;
        let got = match self.lock_and_read(timeout).await {
            Ok((got, history)) => {
                if got == Some(1) {
                    self.read_ahead = Some(history);
                }
                Ok(got)
            }
            Err(LockFailed::Sql(e)) => Err(e),
            Err(LockFailed::Silent(why)) => return Err(Error::database("taking the lock", why)),
        };
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

    fn watch(&self) -> Watch {
        // Known once the lock was taken (same round trip), which is before
        // anything is watched; unknown, there is no session to ask about.
        match self.id.load(Ordering::SeqCst) {
            0 => Watch::Off,
            id => Watch::Mysql {
                options: self.options.clone(),
                id,
                link: self.link,
            },
        }
    }

    async fn alive(&mut self) -> bool {
        self.conn.ping().await.is_ok()
    }

    async fn reconnect(&mut self, interrupt: &Interrupt) -> Result<()> {
        let conn = open(&self.options, &self.info, self.policy, self.link, interrupt).await?;
        // The new session's id comes with its lock, as the first one's did
        // (the canceller reads it from the same cell).
        let old = self.id.swap(0, Ordering::SeqCst);
        // Dropped, not closed: a goodbye on a dead link would wait.
        drop(std::mem::replace(&mut self.conn, conn));
        // What was read on the old session may be stale.
        self.read_ahead = None;
        self.start_session(interrupt).await?;
        match old {
            // Never known: the link died before the lock's answer began, so
            // no migration ran on that session; a lock it may hold ends when
            // the server drops it.
            0 => Ok(()),
            old => self.end_session(old, interrupt).await,
        }
    }

    async fn unlock(&mut self) -> Result<()> {
        self.read_ahead = None;
        let sql = format!("DO RELEASE_LOCK({})", text_literal(&self.lock_name));
        self.run(&sql)
            .await
            .map_err(|e| Error::database("releasing the lock", describe(&e)))
    }

    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        if let Some(read) = self.read_ahead.take() {
            return read;
        }
        let mut stream = sqlx::raw_sql(AssertSqlSafe(SELECT_HISTORY)).fetch(&mut self.conn);
        let mut rows = Vec::new();
        loop {
            match stream.try_next().await {
                Ok(Some(row)) => rows.push(history_row(&row)?),
                Ok(None) => return Ok(Some(rows)),
                Err(e) => return missing_or(e),
            }
        }
    }

    async fn create_history(&mut self) -> Result<()> {
        self.read_ahead = None;
        self.run(CREATE_TABLE)
            .await
            .map_err(|e| Error::database("creating the history table", describe(&e)))
    }

    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        self.read_ahead = None;
        self.captured = None;
        self.capture.start();
        self.ensure_id().await.map_err(|e| exec_error(&e, None))?;
        let mut batch = Batch::of(exec, None);
        if self.capture_on {
            // Pieces only where there is something to read: a table that may be
            // rebuilt, or a transaction open at the end.
            let rebuilds = exec.statements.iter().any(|s| {
                matches!(
                    migrator_core::rehearsal::mysql::touch(s.sql),
                    Some(Touch::Rebuilds(_))
                )
            });
            if (rebuilds || batch.ends_in_tx) && self.capture.needs_probe() {
                self.capture.probe(&mut self.conn).await;
            }
            batch = Batch::of(exec, Some(&self.capture));
        }
        let limit = self.max_packet.unwrap_or(UNKNOWN_PACKET_LIMIT);
        if batch.one_answer_each && (batch.text.len() as u64) < limit.saturating_sub(PACKET_SLACK) {
            self.execute_batch(exec, &batch, interrupt).await
        } else {
            self.execute_each(exec, interrupt).await
        }
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
        self.read_ahead = None;
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
        self.read_ahead = None;
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
        self.read_ahead = None;
        self.ensure_id().await.map_err(|e| exec_error(&e, None))?;
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
        self.read_ahead = None;
        capture::text_rows(&mut self.conn, migrator_core::rehearsal::mysql::SCHEMA)
            .await
            .map(|rows| Schema::from_rows(&rows))
            .map_err(|e| Error::database("reading the schema for --verify-down", describe(&e)))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
        self.read_ahead = None;
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
    fn a_near_quote_running_into_the_next_statement_is_cut_at_the_end() {
        let stmt = "CREATE TABLE b (\n  id INT,\n  , x INT\n)";
        let msg = "You have an error in your SQL syntax; check the manual that corresponds to \
                   your MariaDB server version for the right syntax to use near ' x INT\n)\n;\n\
                   UPDATE migrator_history SET status = 'applied', execution_ms = TIM...' at line 3";
        let off = near_offset(stmt, msg).unwrap();
        assert_eq!(&stmt[off..], " x INT\n)");
        let cut = near_in_statement(stmt, msg).unwrap();
        assert!(cut.ends_with("near ' x INT\n)' at line 3"), "{cut}");
        assert!(!cut.contains("migrator_history"));
        assert_eq!(near_in_statement(stmt, "near ' x INT' at line 3"), None);
    }

    #[test]
    fn a_batch_keeps_the_transaction_boundaries_of_the_statements() {
        use migrator_core::migration::{Format, Migration, Script};
        let sql = "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\nUPDATE t SET id = 2;\n";
        let m = Migration {
            version: 7,
            name: "seven".into(),
            up: Script {
                path: "7_seven.up.sql".into(),
                sql: sql.into(),
                first_line: 1,
                goose_annotations: false,
            },
            down: None,
            checksum: "ab".into(),
            transactional: true,
            format: Format::GolangMigrate,
        };
        let statements =
            migrator_core::split::split(sql, migrator_core::migration::Engine::Mysql, false)
                .unwrap();
        let exec = Exec {
            migration: &m,
            direction: Direction::Up,
            script: &m.up,
            statements: &statements,
        };
        let batch = Batch::of(&exec, None);
        assert_eq!(
            batch.pieces,
            [
                Piece::Begin,
                Piece::Mark,
                Piece::Statement(0),
                Piece::Reopen(1),
                Piece::Statement(1),
                Piece::Statement(2),
                Piece::Done,
                Piece::Commit,
                Piece::Took,
            ]
        );
        assert!(batch.one_answer_each);
        assert_eq!(batch.text.split("\n;\n").count(), batch.pieces.len());
        assert!(
            batch.text.contains("VALUES (7, X'736576656E', "),
            "{}",
            batch.text
        );
        assert!(may_answer_many("call p()") && !may_answer_many("CREATE PROCEDURE p() BEGIN END"));
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
