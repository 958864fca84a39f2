//! PostgreSQL (and Aurora PostgreSQL) through tokio-postgres.
//!
//! A transactional migration costs two round trips: `BEGIN;` + the whole script in
//! one simple-protocol message (the server splits it, as psql's statements would
//! run), then the history row and `COMMIT` pipelined. A failed statement is located
//! by the server's error position or, failing that, by counting the statements the
//! server completed. No-transaction scripts run statement by statement between an
//! "in progress" row and its completion.

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
    insert: Option<tokio_postgres::Statement>,
    delete: Option<tokio_postgres::Statement>,
    /// How to open another session (a lost one replaced, the watch).
    config: Box<Config>,
    tls: MakeRustlsConnect,
    policy: ConnectPolicy,
    init_sql: Vec<String>,
    link: Link,
    /// The server process of our session and when it started, once known
    /// (read with the lock): a pid alone may be reused by then.
    session: Option<(i32, String)>,
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
        insert: None,
        delete: None,
        config: Box::new(config.clone()),
        tls: tls.clone(),
        policy,
        init_sql: init_sql.to_vec(),
        link,
        session: None,
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

fn parse_rows(messages: Vec<SimpleQueryMessage>) -> Result<Vec<HistoryRow>> {
    let mut rows = Vec::new();
    for m in messages {
        let SimpleQueryMessage::Row(r) = m else {
            continue;
        };
        let bad = || Error::database("reading the history table", "unexpected row shape");
        let status_text = text(&r, 3).ok_or_else(bad)?;
        rows.push(HistoryRow {
            version: text(&r, 0).and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            name: text(&r, 1).unwrap_or_default(),
            checksum: text(&r, 2).unwrap_or_default(),
            status: RowStatus::parse(&status_text).ok_or_else(|| {
                Error::database(
                    "reading the history table",
                    format!("unknown status `{status_text}`"),
                )
            })?,
            applied_at: text(&r, 4).unwrap_or_default(),
            execution_ms: text(&r, 5).and_then(|v| v.parse().ok()).unwrap_or(0),
            failed_statement: text(&r, 6),
            error: text(&r, 7),
        });
    }
    Ok(rows)
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

    async fn prepared(&mut self, direction: Direction) -> Result<tokio_postgres::Statement> {
        let slot = match direction {
            Direction::Up => &mut self.insert,
            Direction::Down => &mut self.delete,
        };
        if let Some(s) = slot {
            return Ok(s.clone());
        }
        let (sql, types): (&str, &[Type]) = match direction {
            Direction::Up => (
                "INSERT INTO migrator_history (version, name, checksum, status, execution_ms) \
                 VALUES ($1, $2, $3, 'applied', $4)",
                &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8],
            ),
            Direction::Down => (
                "DELETE FROM migrator_history WHERE version = $1",
                &[Type::INT8],
            ),
        };
        let stmt = self
            .client
            .prepare_typed(sql, types)
            .await
            .map_err(|e| Error::database("preparing the history statement", describe(&e)))?;
        *slot = Some(stmt.clone());
        Ok(stmt)
    }

    /// Runs the script's SQL in one message; on failure, locates the statement.
    async fn run_script(
        &self,
        exec: &Exec<'_>,
        prefix: &str,
    ) -> std::result::Result<(), ExecError> {
        let sent = format!("{prefix}{}", exec.script.sql);
        let prefix_statements = usize::from(!prefix.is_empty());
        let fail = |e: &tokio_postgres::Error, completed: usize| {
            let mut err = exec_error(e, &exec.script.sql, prefix.chars().count(), 0);
            if err.offset.is_none() {
                err.statement = completed.checked_sub(prefix_statements);
            }
            if let Some(off) = err.offset {
                err.statement = exec
                    .statements
                    .iter()
                    .rposition(|s| s.start <= off)
                    .or(Some(0));
            }
            err
        };
        let stream = self
            .client
            .simple_query_raw(&sent)
            .await
            .map_err(|e| fail(&e, 0))?;
        futures_util::pin_mut!(stream);
        let mut completed = 0usize;
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(SimpleQueryMessage::CommandComplete(_)) => completed += 1,
                Ok(_) => {}
                Err(e) => return Err(fail(&e, completed)),
            }
        }
        Ok(())
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
        if let Err(e) = self.run_script(exec, "BEGIN;\n").await {
            self.rollback().await;
            return Err(e);
        }
        let ms = started.elapsed().as_millis() as u64;
        // The history row and COMMIT go out together: one round trip, one commit.
        let commit = self.client.simple_query("COMMIT");
        let (book, commit) = tokio::join!(self.record(exec, ms), commit);
        if let Err(e) = book {
            self.rollback().await;
            return Err(e);
        }
        commit.map_err(|e| exec_error(&e, "", 0, 0))?;
        Ok(ms)
    }

    /// Writes (up) or deletes (down) the history row with the prepared statement,
    /// borrowing `self` immutably so that it can be pipelined with COMMIT.
    async fn record(&self, exec: &Exec<'_>, ms: u64) -> std::result::Result<(), ExecError> {
        let stmt = match exec.direction {
            Direction::Up => self.insert.clone(),
            Direction::Down => self.delete.clone(),
        }
        .expect("history statement prepared before use");
        let m = exec.migration;
        let version = m.version as i64;
        let ms = ms as i64;
        let result = match exec.direction {
            Direction::Up => {
                self.client
                    .execute(&stmt, &[&version, &m.name, &m.checksum, &ms])
                    .await
            }
            Direction::Down => self.client.execute(&stmt, &[&version]).await,
        };
        result.map(|_| ()).map_err(|e| {
            let mut err = exec_error(&e, "", 0, 0);
            err.message = format!("recording the migration in {TABLE}: {}", err.message);
            err
        })
    }

    async fn execute_statementwise(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        let m = exec.migration;
        let version = m.version as i64;
        let mark = match exec.direction {
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
        };
        mark.map_err(|e| exec_error(&e, "", 0, 0))?;
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
        let done = match exec.direction {
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
        };
        done.map_err(|e| {
            let mut err = exec_error(&e, "", 0, 0);
            err.dirty = true;
            err
        })?;
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
        // Our server process, for the watch and for ending this session from
        // another one if its link dies: also pipelined.
        // The three go out in one flight (each is sent when first polled, in
        // order); the lock's answer is then awaited under the session watch,
        // which needs the process id the second one reads.
        let mut lock = std::pin::pin!(self.client.simple_query(&sql));
        let (check, session, first) = tokio::join!(
            self.client
                .simple_query("SET client_connection_check_interval = 1000"),
            self.client.simple_query(SESSION),
            std::future::poll_fn(|cx| std::task::Poll::Ready(lock.as_mut().poll(cx)))
        );
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
            Ok(_) => Ok(()),
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
        // Prepared statements belonged to the old session.
        self.insert = None;
        self.delete = None;
        match self.session.take() {
            Some(old) => self.end_session(old, interrupt).await,
            None => Ok(()),
        }
    }

    async fn unlock(&mut self) -> Result<()> {
        self.simple(
            &format!("SELECT pg_advisory_unlock({LOCK_KEY})"),
            "releasing the lock",
        )
        .await
        .map(|_| ())
    }

    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        match self.client.simple_query(SELECT_HISTORY).await {
            Ok(rows) => parse_rows(rows).map(Some),
            Err(e) if e.as_db_error().map(|d| d.code()) == Some(&SqlState::UNDEFINED_TABLE) => {
                Ok(None)
            }
            Err(e) => Err(Error::database("reading the history table", describe(&e))),
        }
    }

    async fn create_history(&mut self) -> Result<()> {
        self.simple(CREATE_TABLE, "creating the history table")
            .await
            .map(|_| ())
    }

    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        if exec.migration.transactional {
            self.prepared(exec.direction).await.map_err(|e| ExecError {
                message: e.to_string(),
                ..ExecError::default()
            })?;
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
        let lift = |e: Error| ExecError {
            message: e.to_string(),
            ..ExecError::default()
        };
        if let Some(e) = execs.first() {
            self.prepared(e.direction).await.map_err(|e| (0, lift(e)))?;
        }
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
            let started = Instant::now();
            let result = match self.run_script(exec, "").await {
                Ok(()) => {
                    let ms = started.elapsed().as_millis() as u64;
                    self.record(exec, ms).await.map(|()| ms)
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(ms) => times.push(ms),
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

    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
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
