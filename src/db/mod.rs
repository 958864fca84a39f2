//! The database edge: one small trait, one implementation per engine.
//!
//! Drivers execute what the runner decided; they never decide what to run. Each
//! driver keeps the engine's bookkeeping rule: the history row is written in the
//! same transaction as the migration (one commit per migration), and where the
//! engine cannot roll back (MySQL DDL, no-transaction scripts) the row is marked
//! in progress first, so a crash or a failure half way leaves a dirty row behind.

pub mod mysql;
pub mod postgres;
pub mod resolve;

use std::time::Duration;

use crate::interrupt::Interrupt;
use migrator_core::adopt::Adopted;
use migrator_core::error::{Error, Result};
use migrator_core::history::HistoryRow;
use migrator_core::migration::{Engine, Migration, Script};
use migrator_core::plan::ForcePlan;
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
}

/// A parsed `--database-url` with its TLS setup. Holds the secret; its Debug
/// output does not.
pub enum Target {
    Postgres(
        tokio_postgres::Config,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    Mysql(sqlx::mysql::MySqlConnectOptions),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Postgres(..) => "Target::Postgres(..)",
            Target::Mysql(_) => "Target::Mysql(..)",
        })
    }
}

/// TLS for the connection: the mode and the CA file to verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: migrator_core::conn::TlsMode,
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: migrator_core::conn::TlsMode::Prefer,
            ca_file: None,
        }
    }
}

/// The URL without its TLS query parameters (`sslmode`, `sslrootcert`, …): those
/// are decided once, in `Tls`, for both drivers.
fn strip_tls_params(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            !matches!(
                k,
                "sslmode" | "ssl-mode" | "ssl_mode" | "sslrootcert" | "ssl-ca" | "ssl_ca"
            )
        })
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Parses a database URL with default TLS (prefer, the URL's own `sslmode`).
pub fn parse_url(url: &str) -> Result<(Target, DatabaseInfo)> {
    let parts = migrator_core::conn::parse_url(url)
        .map_err(|e| Error::usage(format!("--database-url: {e}")))?;
    let tls = Tls {
        mode: parts.tls.unwrap_or(migrator_core::conn::TlsMode::Prefer),
        ca_file: crate::tls::ca_file(parts.ca_file),
    };
    target(url, &tls)
}

/// Builds the driver target for a URL and TLS settings. The password (raw and
/// decoded) is registered with `migrator_core::redact` before anything else can print it.
pub fn target(url: &str, tls: &Tls) -> Result<(Target, DatabaseInfo)> {
    migrator_core::redact::register_url_password(url);
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    let url = &strip_tls_params(url);
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => postgres::parse_url(url, tls),
        Some("mysql" | "mariadb") => mysql::parse_url(url, tls),
        Some(other) => Err(Error::usage(format!(
            "--database-url: unsupported scheme `{other}://`; use postgres://, postgresql://, mysql:// or mariadb://"
        ))),
        None => Err(Error::usage(
            "--database-url is not a URL; expected e.g. postgres://user:password@host:5432/dbname",
        )),
    }
}

/// How long to keep retrying a connection that fails for a reason that may pass
/// (refused, timed out, the server starting up). Authentication errors are final.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub total: Duration,
}

/// Backoff between connection attempts: 250 ms doubling, capped at 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << attempt.min(5));
    Duration::from_millis(ms.min(5_000))
}

impl Target {
    pub fn engine(&self) -> Engine {
        match self {
            Target::Postgres(..) => Engine::Postgres,
            Target::Mysql(_) => Engine::Mysql,
        }
    }
}

/// A connected driver of either engine, so the command layer is written once.
pub enum AnyDriver {
    Postgres(postgres::Postgres),
    Mysql(mysql::Mysql),
}

/// Connects to the target (retrying per `wait`) and installs the statement
/// canceller on `interrupt`.
pub async fn connect(
    target: &Target,
    info: DatabaseInfo,
    wait: Option<WaitPolicy>,
    interrupt: &Interrupt,
) -> Result<AnyDriver> {
    Ok(match target {
        Target::Postgres(c, tls) => {
            AnyDriver::Postgres(postgres::connect(c, tls, info, wait, interrupt).await?)
        }
        Target::Mysql(o) => AnyDriver::Mysql(mysql::connect(o, info, wait, interrupt).await?),
    })
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
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }

    #[test]
    fn tls_params_are_stripped_and_others_kept() {
        assert_eq!(
            strip_tls_params(
                "postgres://h/d?sslmode=verify-full&application_name=x&sslrootcert=/c"
            ),
            "postgres://h/d?application_name=x"
        );
        assert_eq!(
            strip_tls_params("mysql://h/d?ssl-mode=required"),
            "mysql://h/d"
        );
        assert_eq!(strip_tls_params("mysql://h/d"), "mysql://h/d");
    }

    #[test]
    fn unsupported_schemes_are_usage_errors() {
        let err = parse_url("sqlite://x.db").unwrap_err();
        assert_eq!(err.exit_status().code(), 2);
        assert!(err.to_string().contains("sqlite://"));
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn urls_give_engine_host_and_database_but_no_credentials() {
        let (t, info) = parse_url("postgres://u:s3cret@db.example:6543/app").unwrap();
        assert_eq!(t.engine(), Engine::Postgres);
        assert_eq!(
            (info.host.as_str(), info.port, info.name.as_str()),
            ("db.example", 6543, "app")
        );
        assert!(!format!("{t:?}{info:?}").contains("s3cret"));
        let (t, info) = parse_url("mariadb://root:pw@127.0.0.1/shop").unwrap();
        assert_eq!(t.engine(), Engine::Mysql);
        assert_eq!((info.port, info.name.as_str()), (3306, "shop"));
    }
}
