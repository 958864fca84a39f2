//! The database edge: one small trait, one implementation per engine.
//!
//! Drivers execute what the runner decided; they never decide what to run. Each
//! driver keeps the engine's bookkeeping rule: the history row is written in the
//! same transaction as the migration (one commit per migration), and where the
//! engine cannot roll back (MySQL DDL, no-transaction scripts) the row is marked
//! in progress first, so a crash or a failure half way leaves a dirty row behind.

pub mod link;
pub mod mysql;
pub mod postgres;
pub mod resolve;
pub mod target;

pub use target::{Target, Tls};

use std::time::{Duration, Instant};

use crate::interrupt::Interrupt;
use migrator_core::adopt::Adopted;
use migrator_core::backoff::Backoff;
use migrator_core::error::{Error, Result};
use migrator_core::history::HistoryRow;
use migrator_core::migration::{Migration, Script};
use migrator_core::plan::ForcePlan;
use migrator_core::rehearsal::{Capture, Schema};
pub use migrator_core::report::DatabaseInfo;
use migrator_core::report::Direction;
use migrator_core::split::Statement;

/// One migration to run in one direction.
pub struct Exec<'a> {
    pub migration: &'a Migration,
    pub direction: Direction,
    pub script: &'a Script,
    /// The script split into statements (same text as `script.sql`).
    pub statements: &'a [Statement<'a>],
}

/// What went wrong while running a script, in the driver's terms. The runner maps
/// it back into the file (line, column) for people.
#[derive(Debug, Clone, Default)]
pub struct ExecError {
    /// Index into `Exec::statements` of the statement that failed, when known.
    pub statement: Option<usize>,
    /// Byte offset into `Exec::script.sql` the server pointed at, when it did.
    pub offset: Option<usize>,
    pub code: Option<String>,
    pub message: String,
    pub detail: Option<String>,
    /// The database was left marked dirty.
    pub dirty: bool,
    /// The server cancelled the statement because we asked it to (a signal).
    pub cancelled: bool,
    /// The connection was lost half way.
    pub connection_lost: bool,
}

/// The contract a database engine fulfils. The runner is generic over it.
#[allow(async_fn_in_trait)]
pub trait Driver {
    fn info(&self) -> &DatabaseInfo;

    /// Takes the session-scoped migration lock, waiting at most `timeout`
    /// (`Error::LockTimeout` then). Interrupted by `interrupt` → `Error::Interrupted`.
    async fn lock(&mut self, timeout: Duration, interrupt: &Interrupt) -> Result<()>;

    async fn unlock(&mut self) -> Result<()>;

    /// The history rows, ascending by version; `None` when the table does not exist.
    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>>;

    /// Creates the history table (called only when about to write to it).
    async fn create_history(&mut self) -> Result<()>;

    /// Runs one migration with its bookkeeping; returns its execution time in ms.
    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError>;

    /// Runs several migrations in one transaction, all or nothing. On failure, the
    /// index of the failing one and its error; nothing stays applied.
    async fn execute_all(
        &mut self,
        execs: &[Exec<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<Vec<u64>, (usize, ExecError)>;

    /// Writes a `force` plan in one transaction. Runs no migration SQL.
    async fn force(&mut self, plan: &ForcePlan) -> Result<()>;

    /// Records migrations as applied without running them (adoption, baseline),
    /// in one transaction.
    async fn insert_applied(&mut self, rows: &[Adopted]) -> Result<()>;

    /// Runs a read-only query and returns its rows as text; `None` when a table it
    /// reads does not exist (or lacks a column it names).
    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>>;

    /// Runs statements in one transaction, with no bookkeeping (the scrub files
    /// of `rotate scrub`); rolls back on the first failure, whose index it names.
    /// On MySQL, DDL among them commits implicitly, as the `mysql` client would.
    async fn execute_plain(
        &mut self,
        statements: &[Statement<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError>;

    /// Who can tell, from a second connection, whether this session still
    /// works for us (a silent link does not close; see `link`).
    fn watch(&self) -> link::Watch {
        link::Watch::Off
    }

    /// Whether the session still answers (the caller bounds the wait).
    async fn alive(&mut self) -> bool {
        true
    }

    /// Replaces a lost session: opens a new one (bounded as connecting is),
    /// ends the old one on the server if it is still there and waits until it
    /// is gone, so that what the history says afterwards is final. The
    /// migration lock went with the old session.
    async fn reconnect(&mut self, _interrupt: &Interrupt) -> Result<()> {
        Err(Error::database(
            "reconnecting",
            "this driver cannot open a new session",
        ))
    }
    /// Whether [`Driver::execute`] measures the locks and rewrites of the
    /// migrations it runs from now on (on unless `--no-capture`).
    fn set_capture(&mut self, _on: bool) {}

    /// What was measured of the migration the last successful
    /// [`Driver::execute`] ran; `None` when this driver measures nothing.
    fn take_capture(&mut self) -> Option<Capture> {
        None
    }

    /// The schema as the catalogs describe it (`--verify-down`).
    async fn schema(&mut self) -> Result<Schema> {
        Err(Error::usage(
            "--verify-down: this database cannot read its schema",
        ))
    }

    /// `--verify-down`: runs `down` (an [`Exec`] in direction down) and reads
    /// the schema after it. `Ok((schema, true))`: the driver took the down back
    /// itself (PostgreSQL runs it in a transaction it rolls back), so the
    /// database is at the up state and the up need not run again;
    /// `Ok((schema, false))`: the down is applied (and recorded) and the caller
    /// runs the up again. A failed down is rolled back where the engine can.
    async fn rehearse_down(
        &mut self,
        down: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<(Schema, bool), ExecError> {
        self.execute(down, interrupt).await?;
        let schema = self.schema().await.map_err(|e| ExecError {
            message: e.to_string(),
            ..ExecError::default()
        })?;
        Ok((schema, false))
    }
}

/// How connecting is bounded: each attempt (TCP connect, TLS, authentication)
/// by `timeout`; all attempts together by `wait`, which a last attempt may
/// overrun by at most one `timeout`. Without `wait` the first failure is final.
#[derive(Debug, Clone, Copy)]
pub struct ConnectPolicy {
    pub wait: Option<Duration>,
    pub timeout: Duration,
}

/// Backoff between connection attempts: 250 ms doubling, capped at 5 s.
pub const CONNECT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(250), Duration::from_secs(5));

/// One failed connection attempt, as the driver judges it.
pub struct Failed {
    pub message: String,
    /// May pass if we wait (refused, the server starting up); authentication
    /// errors and the like are final.
    pub transient: bool,
}

/// Runs `once` until it connects, each attempt cut at `policy.timeout`,
/// retrying transient failures with `CONNECT_BACKOFF` while `policy.wait`
/// lasts. A signal ends it at once: a server that never answers must not keep
/// the run from reporting before ECS's SIGKILL. The one connect-retry loop for
/// both engines.
pub async fn retry_connect<T, F, Fut>(
    info: &DatabaseInfo,
    policy: ConnectPolicy,
    interrupt: &Interrupt,
    mut once: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, Failed>>,
{
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        let one = async { Ok(tokio::time::timeout(policy.timeout, once()).await) };
        let outcome = interrupt.cut(one, &format!("connecting to {info}")).await?;
        let failed = match outcome {
            Ok(Ok(connected)) => return Ok(connected),
            Ok(Err(failed)) => failed,
            Err(_) => Failed {
                message: format!(
                    "no answer within {} (--connect-timeout)",
                    migrator_core::duration::format(policy.timeout)
                ),
                transient: true,
            },
        };
        let left = policy
            .wait
            .map(|w| w.saturating_sub(started.elapsed()))
            .unwrap_or_default();
        if !failed.transient || left.is_zero() {
            return Err(Error::Unreachable {
                target: info.to_string(),
                message: explained(failed.message),
            });
        }
        let pause = CONNECT_BACKOFF.delay(attempt).min(left);
        attempt += 1;
        tracing::warn!(attempt, error = %failed.message, retry_in_ms = pause.as_millis() as u64, "database not reachable yet");
        interrupt.sleep(pause, &info.to_string()).await?;
    }
}

/// A server that closes the connection half way through the handshake is
/// reported in the drivers' own words ("bytes remaining on stream", "early
/// eof"), which name no cause: say what it means and what to check.
fn explained(message: String) -> String {
    const CLOSED: [&str; 4] = [
        "bytes remaining on stream",
        "early eof",
        "bytes at EOF",
        "connection closed",
    ];
    if message.contains("NotValidForName") || message.contains("not valid for name") {
        return format!(
            "{message}; the server's certificate does not name the host connected to: through \
             an alias of the database that is not a CNAME to its RDS endpoint (a CNAME is \
             followed), connect to the name the certificate holds, or use --tls verify-ca"
        );
    }
    if CLOSED.iter().any(|c| message.contains(c)) {
        format!(
            "the server closed the connection during the handshake ({message}); check that \
             the port is the database's and that --tls matches what the server accepts"
        )
    } else {
        message
    }
}

/// A connected driver of either engine, so the command layer is written once.
pub enum AnyDriver {
    Postgres(postgres::Postgres),
    Mysql(mysql::Mysql),
}

/// Connects to the target (bounded and retried per `policy`), runs `init_sql`
/// (`--init-sql`) on the new session and installs the statement canceller on
/// `interrupt`.
pub async fn connect(
    target: &Target,
    info: DatabaseInfo,
    policy: ConnectPolicy,
    init_sql: &[String],
    interrupt: &Interrupt,
) -> Result<AnyDriver> {
    Ok(match target {
        Target::Postgres(c, tls, link) => AnyDriver::Postgres(
            postgres::connect(c, tls, info, policy, init_sql, *link, interrupt).await?,
        ),
        Target::Mysql(o, link) => {
            AnyDriver::Mysql(mysql::connect(o, info, policy, init_sql, *link, interrupt).await?)
        }
    })
}

/// The error of an `--init-sql` value the server refused.
pub fn init_sql_failed(sql: &str, message: String) -> Error {
    Error::database(format!("running --init-sql `{}`", sql.trim()), message)
}

macro_rules! both {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDriver::Postgres($d) => $e,
            AnyDriver::Mysql($d) => $e,
        }
    };
}

impl Driver for AnyDriver {
    fn info(&self) -> &DatabaseInfo {
        both!(self, d => d.info())
    }
    async fn lock(&mut self, timeout: Duration, interrupt: &Interrupt) -> Result<()> {
        both!(self, d => d.lock(timeout, interrupt).await)
    }
    async fn unlock(&mut self) -> Result<()> {
        both!(self, d => d.unlock().await)
    }
    async fn history(&mut self) -> Result<Option<Vec<HistoryRow>>> {
        both!(self, d => d.history().await)
    }
    async fn create_history(&mut self) -> Result<()> {
        both!(self, d => d.create_history().await)
    }
    async fn execute(
        &mut self,
        exec: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        both!(self, d => d.execute(exec, interrupt).await)
    }
    async fn execute_all(
        &mut self,
        execs: &[Exec<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<Vec<u64>, (usize, ExecError)> {
        both!(self, d => d.execute_all(execs, interrupt).await)
    }
    async fn force(&mut self, plan: &ForcePlan) -> Result<()> {
        both!(self, d => d.force(plan).await)
    }
    async fn insert_applied(&mut self, rows: &[Adopted]) -> Result<()> {
        both!(self, d => d.insert_applied(rows).await)
    }
    async fn query_text(&mut self, sql: &str) -> Result<Option<Vec<Vec<Option<String>>>>> {
        both!(self, d => d.query_text(sql).await)
    }
    async fn execute_plain(
        &mut self,
        statements: &[Statement<'_>],
        interrupt: &Interrupt,
    ) -> std::result::Result<u64, ExecError> {
        both!(self, d => d.execute_plain(statements, interrupt).await)
    }
    fn watch(&self) -> link::Watch {
        both!(self, d => d.watch())
    }
    async fn alive(&mut self) -> bool {
        both!(self, d => d.alive().await)
    }
    async fn reconnect(&mut self, interrupt: &Interrupt) -> Result<()> {
        both!(self, d => d.reconnect(interrupt).await)
    }
    fn set_capture(&mut self, on: bool) {
        both!(self, d => d.set_capture(on))
    }
    fn take_capture(&mut self) -> Option<Capture> {
        both!(self, d => d.take_capture())
    }
    async fn schema(&mut self) -> Result<Schema> {
        both!(self, d => d.schema().await)
    }
    async fn rehearse_down(
        &mut self,
        down: &Exec<'_>,
        interrupt: &Interrupt,
    ) -> std::result::Result<(Schema, bool), ExecError> {
        both!(self, d => d.rehearse_down(down, interrupt).await)
    }
}

/// The error for a statement not started because a signal came first.
pub fn interrupted_before(i: usize, start: usize, interrupt: &Interrupt) -> ExecError {
    ExecError {
        statement: Some(i),
        offset: Some(start),
        message: format!(
            "interrupted by {} before this statement",
            interrupt
                .signal()
                .map_or("a signal".to_string(), |s| s.to_string())
        ),
        cancelled: true,
        ..ExecError::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        assert_eq!(CONNECT_BACKOFF.delay(0), Duration::from_millis(250));
        assert_eq!(CONNECT_BACKOFF.delay(2), Duration::from_millis(1000));
        assert_eq!(CONNECT_BACKOFF.delay(30), Duration::from_secs(5));
    }
}
