//! PostgreSQL (and Aurora PostgreSQL) through tokio-postgres.
//!
//! A transactional migration costs one round trip: `BEGIN`, the whole script (the
//! server splits it, as psql's statements would run), the history row with the
//! execution time the server measured, and `COMMIT`, in one simple-protocol
//! message (`transactional_message`). A failed statement is located by the
//! server's error position or, failing that, by counting the statements the server
//! completed; then one more round trip rolls back. No-transaction scripts run
//! statement by statement between an "in progress" row and its completion.
//!
//! The lock, and the history read right behind it, share one round trip: the
//! server answers in order, so the read sees what the lock holder may see.
//!
//! The rehearsal capture (`capture`) rides in the same message: its "before"
//! fragment right after `BEGIN` (`Part::Before`), its "after" fragment between
//! the script and the history row (`Part::After`); no round trip of its own.
//! A no-transaction migration pipelines "before" with its in-progress row and
//! the rewrite check with its completion.

mod capture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_postgres::error::{ErrorPosition, SqlState};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, SimpleQueryMessage};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::link::{Link, Watch};
use super::{ConnectPolicy, Driver, Exec, ExecError};
use crate::interrupt::Interrupt;
use migrator_core::adopt::Adopted;
use migrator_core::error::{Error, Result};
use migrator_core::history::{HistoryRow, RowStatus, TABLE};
use migrator_core::plan::ForcePlan;
use migrator_core::rehearsal::pg::literal;
use migrator_core::rehearsal::{Capture, Schema, pg};
use migrator_core::report::{DatabaseInfo, Direction};
use migrator_core::split::{self, Statement};

/// Key of the session-level advisory lock ("migrator" in ASCII). Advisory locks
/// are per database, so runners on different databases of one server never wait
/// for each other.
const LOCK_KEY: i64 = 0x6d69_6772_6174_6f72;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS migrator_history (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'applied',
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    execution_ms BIGINT NOT NULL DEFAULT 0,
    failed_statement TEXT,
    error TEXT
)";

const SELECT_HISTORY: &str = "SELECT version, name, checksum, status, \
    to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
    execution_ms, failed_statement, error FROM migrator_history ORDER BY version";

/// Our server process and its start time.
const SESSION: &str = "SELECT pid::text, backend_start::text FROM pg_stat_activity \
    WHERE pid = pg_backend_pid()";

pub struct Postgres {
    client: Client,
    info: DatabaseInfo,
    /// The history as read right behind the lock (same round trip), for the
    /// `history` call that follows it; any other call drops it.
    read_ahead: Option<Result<Option<Vec<HistoryRow>>>>,
    /// How to open another session (a lost one replaced, the watch).
    config: Box<Config>,
    tls: MakeRustlsConnect,
    policy: ConnectPolicy,
    init_sql: Vec<String>,
    link: Link,
    /// The server process of our session and when it started, once known
    /// (read with the lock): a pid alone may be reused by then.
    session: Option<(i32, String)>,
    /// Measure locks and rewrites (`capture`); what the last migration measured.
    capture: bool,
    captured: Option<Capture>,
    /// The generation of the capture's statements prepared in this session
    /// (`pg::prepare`), once they are; the last generation used.
    prepared: Option<u32>,
    generation: u32,
    /// Why the capture stopped for this session (it failed a migration's
    /// message, which then ran again without it).
    capture_refused: Option<String>,
}

/// Whether a connection error may pass if we wait (the server is starting, the
/// network is not there yet), as opposed to a final answer (bad password, no such
/// database).
fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => matches!(
            *db.code(),
            SqlState::CANNOT_CONNECT_NOW | SqlState::TOO_MANY_CONNECTIONS
        ),
        None => true,
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("[{}] {}", db.code().code(), db.message()),
        None => {
            // The source chain carries the useful part ("Connection refused").
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            msg
        }
    }
}

pub async fn connect(
    config: &Config,
    tls: &MakeRustlsConnect,
    info: DatabaseInfo,
    policy: ConnectPolicy,
    init_sql: &[String],
    link: Link,
    interrupt: &Interrupt,
) -> Result<Postgres> {
    let client = open(config, tls, &info, policy, init_sql, interrupt).await?;
    Ok(Postgres {
        client,
        info,
        read_ahead: None,
        config: Box::new(config.clone()),
        tls: tls.clone(),
        policy,
        init_sql: init_sql.to_vec(),
        link,
        session: None,
        capture: true,
        captured: None,
        prepared: None,
        generation: 0,
        capture_refused: None,
    })
}

/// One session: connected (bounded and retried per `policy`), `--init-sql` run,
/// and its canceller installed on `interrupt`.
async fn open(
    config: &Config,
    tls: &MakeRustlsConnect,
    info: &DatabaseInfo,
    policy: ConnectPolicy,
    init_sql: &[String],
    interrupt: &Interrupt,
) -> Result<Client> {
    let (client, connection) = super::retry_connect(info, policy, interrupt, || async {
        config
            .connect(tls.clone())
            .await
            .map_err(|e| super::Failed {
                message: describe(&e),
                transient: is_transient(&e),
            })
    })
    .await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection closed");
        }
    });
    // Each value bounded as connecting is (a link gone silent right after the
    // handshake) and cut short by a signal.
    for sql in init_sql {
        let run = async {
            match tokio::time::timeout(policy.timeout, client.batch_execute(sql)).await {
                Ok(done) => done.map_err(|e| super::init_sql_failed(sql, describe(&e))),
                Err(_) => Err(super::init_sql_failed(
                    sql,
                    "no answer within --connect-timeout".into(),
                )),
            }
        };
        interrupt.cut(run, "running --init-sql").await?;
    }
    let token = client.cancel_token();
    let cancel_tls = tls.clone();
    interrupt.set_canceller(Arc::new(move || {
        let token = token.clone();
        let tls = cancel_tls.clone();
        Box::pin(async move {
            if let Err(e) = token.cancel_query(tls).await {
                tracing::warn!(error = %e, "could not cancel the running statement");
            }
        })
    }));
    Ok(client)
}

fn interrupted(interrupt: &Interrupt, detail: Option<String>) -> Error {
    Error::Interrupted {
        signal: interrupt
            .signal()
            .unwrap_or(migrator_core::error::Signal::Sigterm),
        detail,
    }
}

fn text(row: &tokio_postgres::SimpleQueryRow, i: usize) -> Option<String> {
    row.get(i).map(str::to_string)
}

/// The history table's rows, each parsed as it arrives (10 000 rows never sit
/// in memory twice); `None` when the table does not exist.
async fn read_history(client: &Client) -> Result<Option<Vec<HistoryRow>>> {
    let missing_or = |e: tokio_postgres::Error| {
        if e.as_db_error().map(|d| d.code()) == Some(&SqlState::UNDEFINED_TABLE) {
            Ok(None)
        } else {
            Err(Error::database("reading the history table", describe(&e)))
        }
    };
    let stream = match client.simple_query_raw(SELECT_HISTORY).await {
        Ok(stream) => stream,
        Err(e) => return missing_or(e),
    };
    futures_util::pin_mut!(stream);
    let mut rows = Vec::new();
    while let Some(message) = stream.next().await {
        match message {
            Ok(SimpleQueryMessage::Row(r)) => rows.push(parse_row(&r)?),
            Ok(_) => {}
            Err(e) => return missing_or(e),
        }
    }
    Ok(Some(rows))
}

/// The execution time the server measured, from the history write's row.
fn server_ms(message: &Message, rows: &[Vec<tokio_postgres::SimpleQueryRow>]) -> Option<u64> {
    let i = message.index_of(Part::Record)?;
    rows.get(i)?.first()?.get(0)?.parse().ok()
}

fn parse_row(r: &tokio_postgres::SimpleQueryRow) -> Result<HistoryRow> {
    let bad = || Error::database("reading the history table", "unexpected row shape");
    let status_text = text(r, 3).ok_or_else(bad)?;
    Ok(HistoryRow {
        version: text(r, 0).and_then(|v| v.parse().ok()).ok_or_else(bad)?,
        name: text(r, 1).unwrap_or_default(),
        checksum: text(r, 2).unwrap_or_default(),
        status: RowStatus::parse(&status_text).ok_or_else(|| {
            Error::database(
                "reading the history table",
                format!("unknown status `{status_text}`"),
            )
        })?,
        applied_at: text(r, 4).unwrap_or_default(),
        execution_ms: text(r, 5).and_then(|v| v.parse().ok()).unwrap_or(0),
        failed_statement: text(r, 6),
        error: text(r, 7),
    })
}

/// Maps a server error on `sent` (the text sent; `skip_chars` of it precede the
/// script) into an ExecError. `base` is the byte offset of `sent`'s script part in
/// the script.
fn exec_error(
    e: &tokio_postgres::Error,
    script_part: &str,
    skip_chars: usize,
    base: usize,
) -> ExecError {
    let mut err = ExecError {
        message: describe(e),
        connection_lost: e.is_closed() || e.as_db_error().is_none(),
        ..ExecError::default()
    };
    if let Some(db) = e.as_db_error() {
        err.code = Some(db.code().code().to_string());
        err.message = db.message().to_string();
        err.detail = migrator_core::error::detail_lines(db.detail(), db.hint());
        err.cancelled = *db.code() == SqlState::QUERY_CANCELED;
        if let Some(ErrorPosition::Original(pos)) = db.position() {
            let pos = (*pos as usize).saturating_sub(skip_chars);
            if pos > 0 {
                err.offset = Some(base + split::char_pos_to_byte(script_part, pos));
            }
        }
    }
    err
}

/// A part of a transactional message, in the order it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Begin,
    /// The capture's statements prepared for the session (first migration).
    Prepare,
    /// A capture read right after BEGIN (the rehearsal's "before" fragment).
    Before,
    /// The migration's own SQL.
    Script,
    /// A capture read after the script (the rehearsal's "after" fragment).
    After,
    /// The history row (written or deleted), with the execution time the
    /// server measured.
    Record,
    Commit,
}

/// One part of a [`Message`]: where it is in the text and how many statements
/// (CommandCompletes) the server answers it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    part: Part,
    /// 0-based char position of the part in the message (the server's error
    /// positions count chars, from 1).
    start_char: usize,
    /// Statements of the message before this part.
    first_statement: usize,
    statements: usize,
}

/// Several parts joined into one simple-query message, and where each one is.
#[derive(Debug)]
struct Message {
    text: String,
    spans: Vec<Span>,
}

impl Message {
    /// Joins `parts` (part, SQL, its number of statements). Every part ends on
    /// its own line, so a script's closing `--` comment cannot swallow the
    /// separator; an empty statement (`;;`) gets no answer from the server, so
    /// a script's own terminator does no harm.
    fn join(parts: &[(Part, &str, usize)]) -> Message {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(parts.len());
        let (mut chars, mut first_statement) = (0, 0);
        for &(part, sql, statements) in parts {
            spans.push(Span {
                part,
                start_char: chars,
                first_statement,
                statements,
            });
            text.push_str(sql);
            text.push_str("\n;\n");
            chars += sql.chars().count() + 3;
            first_statement += statements;
        }
        Message { text, spans }
    }

    /// Index of `part` in `spans` (and in the rows [`Postgres::send`] returns).
    fn index_of(&self, part: Part) -> Option<usize> {
        self.spans.iter().position(|s| s.part == part)
    }

    /// The part a 1-based server char position falls in, and the position
    /// (1-based) inside that part.
    fn at_position(&self, pos: usize) -> Option<(&Span, usize)> {
        let index = pos.checked_sub(1)?;
        let span = self.spans.iter().rfind(|s| s.start_char <= index)?;
        Some((span, index - span.start_char + 1))
    }

    /// The part running when `completed` statements of the message had
    /// completed, and the statement's index inside that part.
    fn at_statement(&self, completed: usize) -> Option<(&Span, usize)> {
        self.spans
            .iter()
            .find(|s| completed < s.first_statement + s.statements)
            .map(|s| (s, completed - s.first_statement))
    }
}

/// The one message of a transactional migration: BEGIN, an optional capture
/// before the script, the script, an optional capture after it, the history
/// row and COMMIT. One round trip when it succeeds. `before` and `after` may
/// hold several statements and return rows: each part's rows are told apart by
/// counting CommandCompletes (see [`Message::at_statement`]).
fn transactional_message(
    prepare: Option<&str>,
    before: Option<&str>,
    script: (&str, usize),
    after: Option<&str>,
    record: &str,
) -> Message {
    let mut parts = vec![(Part::Begin, "BEGIN", 1)];
    parts.extend(prepare.map(|sql| (Part::Prepare, sql, statements_in(sql))));
    parts.extend(before.map(|sql| (Part::Before, sql, statements_in(sql))));
    parts.push((Part::Script, script.0, script.1));
    parts.extend(after.map(|sql| (Part::After, sql, statements_in(sql))));
    parts.push((Part::Record, record, 1));
    parts.push((Part::Commit, "COMMIT", 1));
    Message::join(&parts)
}

/// Statements in a fragment of ours, as the server will count them.
fn statements_in(sql: &str) -> usize {
    split::split(sql, migrator_core::migration::Engine::Postgres, false).map_or(1, |s| s.len())
}

/// Milliseconds since the server received the current message: the script's
/// execution time, measured where it ran.
const SERVER_MS: &str =
    "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint";

/// The history write of one migration (`up`: the row, `down`: its removal),
/// answering one row with the execution time it measured.
fn record_sql(exec: &Exec<'_>) -> String {
    let m = exec.migration;
    match exec.direction {
        Direction::Up => format!(
            "INSERT INTO migrator_history (version, name, checksum, status, execution_ms) \
             VALUES ({}, {}, {}, 'applied', {SERVER_MS}) RETURNING execution_ms",
            m.version as i64,
            literal(&m.name),
            literal(&m.checksum)
        ),
        Direction::Down => format!(
            "WITH gone AS (DELETE FROM migrator_history WHERE version = {}) SELECT {SERVER_MS}",
            m.version as i64
        ),
    }
}

impl Postgres {
    async fn simple(&self, sql: &str, doing: &str) -> Result<Vec<SimpleQueryMessage>> {
        self.client
            .simple_query(sql)
            .await
            .map_err(|e| Error::database(doing, describe(&e)))
    }

    /// Ends a session we lost (if the server still runs it: a silent link) and
    /// waits until it is gone, so that its transaction is over either way.
    async fn end_session(
        &self,
        (pid, started): (i32, String),
        interrupt: &Interrupt,
    ) -> Result<()> {
        let doing = "ending the lost session";
        let same = format!(
            "pid = {pid} AND backend_start::text = '{}'",
            started.replace('\'', "")
        );
        let _ = self
            .simple(
                &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {same}"),
                doing,
            )
            .await?;
        let patience = self
            .link
            .timeout
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_secs(5));
        let until = Instant::now() + patience;
        loop {
            let rows = self
                .simple(
                    &format!("SELECT 1 FROM pg_stat_activity WHERE {same}"),
                    doing,
                )
                .await?;
            if !rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))) {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(Error::database(
                    doing,
                    format!(
                        "the server still runs our lost session (pid {pid}) after {} s; its last migration stays in doubt",
                        patience.as_secs()
                    ),
                ));
            }
            interrupt
                .sleep(Duration::from_millis(50), "the lost session to end")
                .await?;
        }
    }

    async fn lock_holder(&self) -> Option<String> {
        let sql = format!(
            "SELECT a.pid::text, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'), \
             to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.database = \
             (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND l.classid = {} AND l.objid = {} AND l.objsubid = 1 LIMIT 1",
            (LOCK_KEY >> 32) as u32,
            (LOCK_KEY & 0xffff_ffff) as u32
        );
        let rows = self.client.simple_query(&sql).await.ok()?;
        rows.into_iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(format!(
                "pid {} ({}) from {} since {}",
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?
            )),
            _ => None,
        })
    }

    /// Sends `message` (whose `Part::Script` is `exec`'s script) and reads its
    /// answers: the rows of each part, in the order of `message.spans`. On
    /// failure, the error located in the script, or in the part of ours that
    /// failed. Rolls nothing back.
    async fn send(
        &self,
        message: &Message,
        exec: &Exec<'_>,
    ) -> std::result::Result<Vec<Vec<tokio_postgres::SimpleQueryRow>>, ExecError> {
        self.send_located(message, exec).await.map_err(|(e, _)| e)
    }

    /// [`Postgres::send`], with the part of the message that failed.
    async fn send_located(
        &self,
        message: &Message,
        exec: &Exec<'_>,
    ) -> std::result::Result<Vec<Vec<tokio_postgres::SimpleQueryRow>>, (ExecError, Option<Part>)>
    {
        let fail = |e: &tokio_postgres::Error, completed: usize| {
            let position = e.as_db_error().and_then(|db| match db.position() {
                Some(ErrorPosition::Original(pos)) => Some(*pos as usize),
                _ => None,
            });
            let located = match position {
                Some(pos) => message
                    .at_position(pos)
                    .map(|(s, p)| (s.part, None, Some(p))),
                None => message
                    .at_statement(completed)
                    .map(|(s, i)| (s.part, Some(i), None)),
            };
            let mut err = exec_error(e, "", 0, 0);
            match located {
                Some((Part::Script, index, pos)) => {
                    if let Some(pos) = pos {
                        let off = split::char_pos_to_byte(&exec.script.sql, pos);
                        err.offset = Some(off);
                        err.statement = exec
                            .statements
                            .iter()
                            .rposition(|s| s.start <= off)
                            .or(Some(0));
                    } else {
                        err.statement = index;
                    }
                }
                Some((Part::Record, ..)) => {
                    err.message = format!("recording the migration in {TABLE}: {}", err.message);
                }
                Some((Part::Prepare | Part::Before | Part::After, ..)) => {
                    err.message =
                        format!("reading the capture around the migration: {}", err.message);
                }
                Some((Part::Begin | Part::Commit, ..)) | None => {}
            }
            (err, located.map(|(part, ..)| part))
        };
        let stream = self
            .client
            .simple_query_raw(&message.text)
            .await
            .map_err(|e| fail(&e, 0))?;
        futures_util::pin_mut!(stream);
        let mut rows: Vec<Vec<tokio_postgres::SimpleQueryRow>> =
            message.spans.iter().map(|_| Vec::new()).collect();
        let mut completed = 0usize;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(SimpleQueryMessage::CommandComplete(_)) => completed += 1,
                Ok(SimpleQueryMessage::Row(row)) => {
                    if let Some(i) = message
                        .spans
                        .iter()
                        .position(|s| completed < s.first_statement + s.statements)
                    {
                        rows[i].push(row);
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(fail(&e, completed)),
            }
        }
        Ok(rows)
    }

    /// Runs one statement on its own (no-transaction scripts, scrub files); a
    /// failure names the statement and the server's position in it.
    async fn statement(
        &self,
        i: usize,
        stmt: &Statement<'_>,
    ) -> std::result::Result<(), ExecError> {
        self.client
            .simple_query(stmt.sql)
            .await
            .map(|_| ())
            .map_err(|e| {
                let mut err = exec_error(&e, stmt.sql, 0, stmt.start);
                err.statement = Some(i);
                err
            })
    }

    async fn rollback(&self) {
        if let Err(e) = self.client.simple_query("ROLLBACK").await {
            tracing::debug!(error = %e, "rollback failed (connection gone?)");
        }
    }

    async fn execute_transactional(
        &mut self,
        exec: &Exec<'_>,
    ) -> std::result::Result<u64, ExecError> {
        let started = Instant::now();
        let record = record_sql(exec);
        let script = &exec.script.sql;
        let capture = self.capture && self.capture_refused.is_none();
        // The capture's splice points: "before" right after BEGIN, "after"
        // between the script and the history row; same message, same round
        // trip. Both are statements prepared for the session, unless the
        // script may drop those (then inline, prepared again next time).
        let (mut preparing, mut before, mut after) = (None, None, None);
        let names = if capture {
            pg::names(script)
        } else {
            Vec::new()
        };
        if capture && pg::resets_session(&names) {
            self.prepared = None;
            before = Some(pg::before(&names));
            after = Some(pg::AFTER.to_string());
        } else if capture {
            let generation = match self.prepared {
                Some(g) => g,
                None => {
                    self.generation += 1;
                    preparing = Some(self.generation);
                    self.generation
                }
            };
            before = Some(pg::execute_before(generation, &names));
            after = Some(pg::execute_after(generation));
        }
        let prepare = preparing.map(pg::prepare);
        let message = transactional_message(
            prepare.as_deref(),
            before.as_deref(),
            (script, exec.statements.len()),
            after.as_deref(),
            &record,
        );
        match self.send_located(&message, exec).await {
            Ok(rows) => {
                if preparing.is_some() {
                    self.prepared = preparing;
                }
                if capture {
                    let mut captured = capture::Rows::default();
                    for part in [Part::Before, Part::After] {
                        if let Some(i) = message.index_of(part) {
                            rows[i].iter().for_each(|r| captured.take_row(r));
                        }
                    }
                    self.captured = Some(captured.capture());
                } else if let Some(why) = &self.capture_refused {
                    self.captured = Some(Capture::not_measured(why.clone()));
                }
                Ok(server_ms(&message, &rows)
                    .unwrap_or_else(|| started.elapsed().as_millis() as u64))
            }
            Err((e, part)) => {
                if !e.connection_lost {
                    self.rollback().await;
                }
                // Prepared or not, a new generation next time.
                self.prepared = None;
                // The capture never fails a migration: its part failed, the
                // transaction rolled back with nothing of the migration in
                // effect, so the migration runs again without it, and the
                // session stops measuring.
                if capture
                    && !e.connection_lost
                    && !e.cancelled
                    && matches!(part, Some(Part::Prepare | Part::Before | Part::After))
                {
                    tracing::warn!(
                        version = exec.migration.version,
                        error = %e.message,
                        "the rehearsal capture failed in the migration's message; \
                         the migration runs again without it"
                    );
                    self.capture_refused =
                        Some(format!("the capture failed in this session: {}", e.message));
                    return Box::pin(self.execute_transactional(exec)).await;
                }
                Err(e)
            }
        }
    }

    async fn execute_statementwise(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        let version = m.version as i64;
        // No transaction to read locks in: the rewrites since a watermark,
        // read in the in-progress row's round trip (pipelined).
        let capture = self.capture;
        let watermark = async {
            match capture {
                true => Some(
                    self.client
                        .simple_query(&pg::before(&pg::names(&exec.script.sql)))
                        .await,
                ),
                false => None,
            }
        };
        let mark = async {
            match exec.direction {
            Direction::Up => self
                .client
                .execute(
                    "INSERT INTO migrator_history (version, name, checksum, status) VALUES ($1, $2, $3, 'running')",
                    &[&version, &m.name, &m.checksum],
                )
                .await,
            Direction::Down => self
                .client
                .execute(
                    "UPDATE migrator_history SET status = 'reverting' WHERE version = $1",
                    &[&version],
                )
                .await,
        }
        };
        let (watermark, mark) = tokio::join!(watermark, mark);
        mark.map_err(|e| exec_error(&e, "", 0, 0))?;
        // `None` when not capturing or when pg_class could not be read (logged:
        // the capture never fails a migration).
        let before = match watermark {
            Some(Ok(messages)) => {
                let before = capture::Rows::from(&messages).before;
                before.watermark.map(|w| (before, w))
            }
            Some(Err(e)) => {
                tracing::warn!(error = %describe(&e), "could not read pg_class for the rehearsal capture");
                None
            }
            None => None,
        };
        let started = Instant::now();
        for (i, stmt) in exec.statements.iter().enumerate() {
            let result = if interrupt.signal().is_some() {
                Err(super::interrupted_before(i, stmt.start, interrupt))
            } else {
                self.statement(i, stmt).await
            };
            if let Err(mut err) = result {
                // Nothing is committed before the first statement, except what a
                // failed CREATE INDEX CONCURRENTLY leaves behind (an invalid index).
                let untouched = i == 0 && !stmt.sql.to_ascii_uppercase().contains("CONCURRENTLY");
                err.dirty = !untouched;
                let restore = match (exec.direction, untouched) {
                    (Direction::Up, true) => {
                        self.client
                            .execute(
                                "DELETE FROM migrator_history WHERE version = $1",
                                &[&version],
                            )
                            .await
                    }
                    (Direction::Down, true) => {
                        self.client
                            .execute(
                                "UPDATE migrator_history SET status = 'applied' WHERE version = $1",
                                &[&version],
                            )
                            .await
                    }
                    (direction, false) => {
                        let status = match direction {
                            Direction::Up => "failed",
                            Direction::Down => "revert_failed",
                        };
                        let error = match &err.code {
                            Some(c) => format!("[{c}] {}", err.message),
                            None => err.message.clone(),
                        };
                        self.client
                            .execute(
                                "UPDATE migrator_history SET status = $2, failed_statement = $3, error = $4 WHERE version = $1",
                                &[&version, &status, &stmt.sql, &error],
                            )
                            .await
                    }
                };
                if let Err(e) = restore {
                    tracing::error!(error = %describe(&e), "could not record the failure in the history table");
                    err.dirty = true;
                }
                return Err(err);
            }
        }
        let ms = started.elapsed().as_millis() as u64;
        let done = async {
            match exec.direction {
            Direction::Up => self
                .client
                .execute(
                    "UPDATE migrator_history SET status = 'applied', execution_ms = $2, applied_at = now() WHERE version = $1",
                    &[&version, &(ms as i64)],
                )
                .await,
            Direction::Down => self
                .client
                .execute("DELETE FROM migrator_history WHERE version = $1", &[&version])
                .await,
        }
        };
        // The rewrites since the watermark, pipelined with the completion.
        let rewritten = async {
            match &before {
                Some((_, watermark)) => Some(
                    self.client
                        .simple_query(&pg::rewritten_since(*watermark))
                        .await,
                ),
                None => None,
            }
        };
        let (done, rewritten) = tokio::join!(done, rewritten);
        done.map_err(|e| {
            let mut err = exec_error(&e, "", 0, 0);
            err.dirty = true;
            err
        })?;
        if let (Some((before, _)), Some(after)) = (&before, rewritten) {
            self.captured = Some(match after {
                Ok(after) => pg::capture_statementwise(before, &capture::Rows::from(&after).locked),
                Err(_) => Capture::not_measured("reading pg_class after the migration failed"),
            });
        }
        Ok(ms)
    }
}

impl Driver for Postgres {
    fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    async fn lock(&mut self, timeout: Duration, interrupt: &Interrupt) -> Result<()> {
        let seconds = timeout.as_secs();
        // The server waits for us (no polling), bounded by a transaction-local
        // lock_timeout; the advisory lock itself is session-scoped.
        let sql = if timeout.is_zero() {
            format!("SELECT pg_try_advisory_lock({LOCK_KEY})")
        } else {
            format!(
                "SET LOCAL lock_timeout = '{}ms'; SELECT pg_advisory_lock({LOCK_KEY})",
                timeout.as_millis()
            )
        };
        // PostgreSQL 14+: notice a vanished client (kill -9, lost network) while a
        // statement runs, so its session lock goes with it. Older servers do not
        // know the setting; that is fine. Pipelined with the lock: one round trip.
        // The history read goes in the same round trip, behind the lock: the
        // server answers in order, so it runs once the lock is held (and is
        // dropped when it was not). Our server process, for the watch and for
        // ending this session from another one if its link dies: also pipelined.
        // The four go out in one flight (each is sent when first polled, in
        // order); the lock's answer is then awaited under the session watch,
        // which needs the process id the second one reads.
        let mut lock = std::pin::pin!(self.client.simple_query(&sql));
        let mut history = std::pin::pin!(read_history(&self.client));
        let first_answers = async {
            tokio::join!(
                self.client
                    .simple_query("SET client_connection_check_interval = 1000"),
                self.client.simple_query(SESSION),
                std::future::poll_fn(|cx| std::task::Poll::Ready(lock.as_mut().poll(cx))),
                std::future::poll_fn(|cx| std::task::Poll::Ready(history.as_mut().poll(cx)))
            )
        };
        // The watch needs the process id, so until it is read a silent link is
        // bounded here: the first two answers come at once from a live server,
        // whoever holds the lock.
        let (check, session, first, history_first) = match self.link.timeout {
            Some(limit) => tokio::time::timeout(limit, first_answers)
                .await
                .map_err(|_| {
                    Error::database(
                        "taking the lock",
                        format!(
                            "no answer within --link-timeout ({}): the link to the server went silent",
                            migrator_core::duration::format(limit)
                        ),
                    )
                })?,
            None => first_answers.await,
        };
        self.read_ahead = None;
        if let Err(e) = check {
            tracing::debug!(error = %describe(&e), "client_connection_check_interval not set");
        }
        self.session = session.ok().and_then(|rows| {
            rows.iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((r.get(0)?.parse().ok()?, r.get(1)?.to_string()))
                }
                _ => None,
            })
        });
        let locked = match first {
            std::task::Poll::Ready(done) => done,
            std::task::Poll::Pending => {
                let watch = self.watch();
                tokio::select! {
                    done = &mut lock => done,
                    why = watch.dead() => return Err(Error::database("taking the lock", why)),
                }
            }
        };
        match locked {
            // pg_try_advisory_lock answers false instead of waiting.
            Ok(rows)
                if rows
                    .iter()
                    .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("f"))) =>
            {
                Err(Error::LockTimeout {
                    seconds,
                    holder: self.lock_holder().await,
                })
            }
            Ok(_) => {
                let history = match history_first {
                    std::task::Poll::Ready(done) => done,
                    std::task::Poll::Pending => history.await,
                };
                self.read_ahead = Some(history);
                Ok(())
            }
            Err(e) => match e.as_db_error().map(|db| db.code().clone()) {
                Some(SqlState::LOCK_NOT_AVAILABLE) => Err(Error::LockTimeout {
                    seconds,
                    holder: self.lock_holder().await,
                }),
                Some(SqlState::QUERY_CANCELED) if interrupt.signal().is_some() => Err(interrupted(
                    interrupt,
                    Some("while waiting for the migration lock".into()),
                )),
                _ => Err(Error::database("taking the lock", describe(&e))),
            },
        }
    }

    fn watch(&self) -> Watch {
        match &self.session {
            Some((pid, _)) => Watch::Postgres {
                config: self.config.clone(),
                tls: self.tls.clone(),
                pid: *pid,
                link: self.link,
            },
            None => Watch::Off,
        }
    }

    async fn alive(&mut self) -> bool {
        !self.client.is_closed() && self.client.simple_query("").await.is_ok()
    }

    async fn reconnect(&mut self, interrupt: &Interrupt) -> Result<()> {
        self.client = open(
            &self.config,
            &self.tls,
            &self.info,
            self.policy,
            &self.init_sql,
            interrupt,
        )
        .await?;
        // What was read on the old session may be stale, and what was prepared
        // there is gone.
        self.read_ahead = None;
        self.prepared = None;
        match self.session.take() {
            Some(old) => self.end_session(old, interrupt).await,
            None => Ok(()),
        }
    }

    async fn unlock(&mut self) -> Result<()> {
        self.read_ahead = None;
        self.simple(
            &format!("SELECT pg_advisory_unlock({LOCK_KEY})"),
            "releasing the lock",
        )
        .await
        .map(|_| ())
    }

    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        match self.read_ahead.take() {
            Some(read) => read,
            None => read_history(&self.client).await,
        }
    }

    async fn create_history(&mut self) -> Result<()> {
        self.read_ahead = None;
        self.simple(CREATE_TABLE, "creating the history table")
            .await
            .map(|_| ())
    }

    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        self.read_ahead = None;
        self.captured = None;
        if exec.migration.transactional {
            self.execute_transactional(exec).await
        } else {
            self.execute_statementwise(exec, interrupt).await
        }
    }

    async fn execute_all(
        &mut self,
        execs: &[Exec<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<Vec<u64>, (usize, ExecError)> {
        self.read_ahead = None;
        self.client
            .simple_query("BEGIN")
            .await
            .map_err(|e| (0, exec_error(&e, "", 0, 0)))?;
        let mut times = Vec::with_capacity(execs.len());
        for (i, exec) in execs.iter().enumerate() {
            if interrupt.signal().is_some() {
                self.rollback().await;
                return Err((
                    i,
                    ExecError {
                        message: "stopped before this migration".into(),
                        cancelled: true,
                        ..ExecError::default()
                    },
                ));
            }
            // The script and its history row: one round trip per migration.
            let started = Instant::now();
            let record = record_sql(exec);
            let message = Message::join(&[
                (Part::Script, &exec.script.sql, exec.statements.len()),
                (Part::Record, &record, 1),
            ]);
            match self.send(&message, exec).await {
                Ok(rows) => times.push(
                    server_ms(&message, &rows)
                        .unwrap_or_else(|| started.elapsed().as_millis() as u64),
                ),
                Err(e) => {
                    self.rollback().await;
                    return Err((i, e));
                }
            }
        }
        self.client
            .simple_query("COMMIT")
            .await
            .map_err(|e| (execs.len().saturating_sub(1), exec_error(&e, "", 0, 0)))?;
        Ok(times)
    }

    async fn force(&mut self, plan: &ForcePlan) -> Result<()> {
        self.read_ahead = None;
        let doing = "writing the forced version";
        let tx = self
            .client
            .transaction()
            .await
            .map_err(|e| Error::database(doing, describe(&e)))?;
        let above = plan.delete_above as i64;
        let db = |e: tokio_postgres::Error| Error::database(doing, describe(&e));
        tx.execute("DELETE FROM migrator_history WHERE version > $1", &[&above])
            .await
            .map_err(db)?;
        let clear: Vec<i64> = plan.clear.iter().map(|v| *v as i64).collect();
        tx.execute(
            "UPDATE migrator_history SET status = 'applied', failed_statement = NULL, error = NULL \
             WHERE version = ANY($1)",
            &[&clear],
        )
        .await
        .map_err(db)?;
        for (version, name, checksum) in &plan.upsert {
            tx.execute(
                "INSERT INTO migrator_history (version, name, checksum, status, execution_ms) \
                 VALUES ($1, $2, $3, 'applied', 0) ON CONFLICT (version) DO UPDATE SET \
                 status = 'applied', name = EXCLUDED.name, checksum = EXCLUDED.checksum, \
                 failed_statement = NULL, error = NULL",
                &[&(*version as i64), name, checksum],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn insert_applied(&mut self, rows: &[Adopted]) -> Result<()> {
        self.read_ahead = None;
        let doing = "recording migrations as applied";
        let db = |e: tokio_postgres::Error| Error::database(doing, describe(&e));
        let tx = self.client.transaction().await.map_err(db)?;
        let stmt = tx
            .prepare_typed(
                "INSERT INTO migrator_history (version, name, checksum, status, execution_ms) \
                 VALUES ($1, $2, $3, 'applied', 0)",
                &[Type::INT8, Type::TEXT, Type::TEXT],
            )
            .await
            .map_err(db)?;
        for (version, name, checksum) in rows {
            tx.execute(&stmt, &[&(*version as i64), name, checksum])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn execute_plain(
        &mut self,
        statements: &[split::Statement<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        self.read_ahead = None;
        let started = Instant::now();
        self.client
            .simple_query("BEGIN")
            .await
            .map_err(|e| exec_error(&e, "", 0, 0))?;
        for (i, stmt) in statements.iter().enumerate() {
            let result = if interrupt.signal().is_some() {
                Err(super::interrupted_before(i, stmt.start, interrupt))
            } else {
                self.statement(i, stmt).await
            };
            if let Err(err) = result {
                self.rollback().await;
                return Err(err);
            }
        }
        self.client
            .simple_query("COMMIT")
            .await
            .map_err(|e| exec_error(&e, "", 0, 0))?;
        Ok(started.elapsed().as_millis() as u64)
    }

    fn set_capture(&mut self, on: bool) {
        self.capture = on;
    }

    fn take_capture(&mut self) -> Option<Capture> {
        self.captured.take()
    }

    async fn schema(&mut self) -> Result<Schema> {
        self.read_ahead = None;
        let messages = self
            .simple(pg::SCHEMA, "reading the schema for --verify-down")
            .await?;
        Ok(Schema::from_rows(&capture::all_rows(&messages)))
    }

    /// A transactional down runs in a transaction that is rolled back once
    /// the schema is read: the database never leaves the up state. A
    /// no-transaction down really runs; the caller applies the up again.
    async fn rehearse_down(
        &mut self,
        down: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<(Schema, bool), ExecError> {
        let lift = |e: Error| ExecError {
            message: e.to_string(),
            ..ExecError::default()
        };
        self.read_ahead = None;
        self.captured = None;
        if !down.migration.transactional {
            self.execute_statementwise(down, interrupt).await?;
            self.captured = None;
            return Ok((self.schema().await.map_err(lift)?, false));
        }
        // BEGIN and the down in one message, then the schema, then ROLLBACK.
        let message = Message::join(&[
            (Part::Begin, "BEGIN", 1),
            (Part::Script, &down.script.sql, down.statements.len()),
        ]);
        if let Err(e) = self.send(&message, down).await {
            if !e.connection_lost {
                self.rollback().await;
            }
            return Err(e);
        }
        let schema = self.schema().await;
        self.rollback().await;
        Ok((schema.map_err(lift)?, true))
    }

    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
        self.read_ahead = None;
        match self.client.simple_query(sql).await {
            Ok(messages) => Ok(Some(
                messages
                    .into_iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| text(&r, i)).collect())
                        }
                        _ => None,
                    })
                    .collect(),
            )),
            Err(e)
                if matches!(
                    e.as_db_error().map(|d| d.code()),
                    Some(&SqlState::UNDEFINED_TABLE | &SqlState::UNDEFINED_COLUMN)
                ) =>
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
    fn the_message_says_which_part_a_position_or_a_count_falls_in() {
        let script = "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1); -- done";
        let m = transactional_message(
            None,
            Some("SELECT 1; SELECT 2"),
            (script, 2),
            Some("SELECT 3"),
            "INSERT INTO migrator_history VALUES (1)",
        );
        assert!(
            m.text
                .starts_with("BEGIN\n;\nSELECT 1; SELECT 2\n;\nCREATE TABLE t"),
            "{}",
            m.text
        );
        // The closing comment cannot swallow the separator.
        assert!(m.text.contains("-- done\n;\n"));
        assert!(m.text.ends_with("COMMIT\n;\n"));
        let parts: Vec<(Part, usize)> = m.spans.iter().map(|s| (s.part, s.statements)).collect();
        assert_eq!(
            parts,
            [
                (Part::Begin, 1),
                (Part::Before, 2),
                (Part::Script, 2),
                (Part::After, 1),
                (Part::Record, 1),
                (Part::Commit, 1)
            ]
        );
        // BEGIN and the two capture statements completed: the script's first.
        let (span, i) = m.at_statement(3).unwrap();
        assert_eq!((span.part, i), (Part::Script, 0));
        assert_eq!(
            m.at_statement(4).map(|(s, i)| (s.part, i)),
            Some((Part::Script, 1))
        );
        assert_eq!(m.at_statement(6).map(|(s, _)| s.part), Some(Part::Record));
        assert_eq!(m.at_statement(8), None);
        // A server position (1-based chars) inside the script, back to it.
        let insert = m.text.find("INSERT INTO t").unwrap() + 1;
        let (span, pos) = m.at_position(insert).unwrap();
        assert_eq!(span.part, Part::Script);
        assert_eq!(
            &script[split::char_pos_to_byte(script, pos)..][..13],
            "INSERT INTO t"
        );
        let record = m.text.find("INSERT INTO migrator_history").unwrap() + 1;
        assert_eq!(m.at_position(record).unwrap().0.part, Part::Record);
    }

    #[test]
    fn literals_are_escaped_whatever_the_server_settings() {
        assert_eq!(literal("it's"), "E'it''s'");
        assert_eq!(literal("a\\b"), "E'a\\\\b'");
        assert_eq!(literal(""), "E''");
    }
}
