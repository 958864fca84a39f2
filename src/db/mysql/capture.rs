//! The rehearsal capture on MySQL and MariaDB: the queries of
//! `migrator_core::rehearsal::mysql`, run by the driver around a migration.
//! Kept apart so they can move with the statements they surround: the table
//! list before the in-progress row ([`Capture::before`]), the table list and
//! the session's metadata locks just before the final history update
//! ([`Capture::after`]). A query the server refuses (no PROCESS privilege, no
//! lock instrumentation) makes that part "not measured", never a failure, and
//! is not asked again in the session.

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Row};

use migrator_core::rehearsal::{self, Held, Relation, mysql::Flavor};

/// Every column of every row, as text.
pub async fn text_rows(
    conn: &mut MySqlConnection,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let rows = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.try_get::<Option<String>, _>(i))
                .collect()
        })
        .collect()
}

/// What the session knows of its server's capture sources.
#[derive(Debug, Default)]
pub struct Capture {
    flavor: Option<Flavor>,
    /// Why the table list cannot be read here, once known.
    no_tables: Option<String>,
    /// Why the locks cannot be read here, once known.
    no_locks: Option<String>,
    before: Option<Result<Vec<Relation>, String>>,
}

impl Capture {
    async fn flavor(&mut self, conn: &mut MySqlConnection) -> Flavor {
        if let Some(f) = self.flavor {
            return f;
        }
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(conn)
            .await
            .unwrap_or_default();
        let f = Flavor::of_version(&version);
        self.flavor = Some(f);
        f
    }

    async fn tables(&mut self, conn: &mut MySqlConnection) -> Result<Vec<Relation>, String> {
        if let Some(why) = &self.no_tables {
            return Err(why.clone());
        }
        let flavor = self.flavor(conn).await;
        match text_rows(conn, &flavor.tables()).await {
            Ok(rows) => Ok(rows
                .iter()
                .filter_map(|r| rehearsal::mysql::table_row(r))
                .collect()),
            Err(e) => {
                let why = format!(
                    "InnoDB's table list could not be read ({}; it needs the PROCESS privilege)",
                    super::describe(&e)
                );
                self.no_tables = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Before the migration's first statement.
    pub async fn before(&mut self, conn: &mut MySqlConnection) {
        self.before = Some(self.tables(conn).await);
    }

    /// Just before the final history update, in the migration's open
    /// transaction if it has one. `None` when [`Capture::before`] did not run.
    pub async fn after(&mut self, conn: &mut MySqlConnection) -> Option<rehearsal::Capture> {
        let before = self.before.take()?;
        let after = self.tables(conn).await;
        let held = self.locks(conn).await;
        Some(rehearsal::mysql::capture(before, after, held))
    }

    async fn locks(&mut self, conn: &mut MySqlConnection) -> Result<Vec<Held>, String> {
        if let Some(why) = &self.no_locks {
            return Err(why.clone());
        }
        let flavor = self.flavor(conn).await;
        if flavor == Flavor::Mysql {
            // Switched off, performance_schema answers with empty tables.
            let on: Option<i64> = sqlx::query_scalar("SELECT @@performance_schema")
                .fetch_one(&mut *conn)
                .await
                .ok();
            if on != Some(1) {
                let why = format!(
                    "the server has no metadata-lock instrumentation to read: {} (performance_schema is off)",
                    flavor.lock_source()
                );
                self.no_locks = Some(why.clone());
                return Err(why);
            }
        }
        match text_rows(conn, flavor.locks()).await {
            Ok(rows) => Ok(rows
                .iter()
                .filter_map(|r| rehearsal::mysql::lock_row(r))
                .collect()),
            Err(e) => {
                let why = format!(
                    "the server has no metadata-lock instrumentation to read: {} ({})",
                    flavor.lock_source(),
                    super::describe(&e)
                );
                self.no_locks = Some(why.clone());
                Err(why)
            }
        }
    }
}
