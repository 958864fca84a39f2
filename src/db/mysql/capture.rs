//! The rehearsal capture on MySQL and MariaDB: the queries of
//! `migrator_core::rehearsal::mysql`, run by the driver around a migration's
//! statements. Kept apart so they can move with the statements they surround:
//! [`Capture::start`] before the first one, [`Capture::before`] and
//! [`Capture::after`] around each (only ALTER/OPTIMIZE TABLE cost a query),
//! [`Capture::finish`] just before the final history update. A query the
//! server refuses (no PROCESS privilege, no lock instrumentation) makes that
//! part "not measured", never a failure, and is not asked again in the session.

use sqlx::mysql::MySqlConnection;
use sqlx::{AssertSqlSafe, Row};

use migrator_core::rehearsal::mysql::{self, Flavor, Touch};
use migrator_core::rehearsal::{self, Rewrite};

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

/// A table's InnoDB id and size (bytes), as [`Flavor::table`] reads them.
type Table = (Option<u64>, Option<u64>);

/// What the session knows of its server's capture sources, and what the
/// running migration has measured so far.
#[derive(Debug, Default)]
pub struct Capture {
    flavor: Option<Flavor>,
    /// Why table ids cannot be read here, once known.
    no_tables: Option<String>,
    /// Why the locks cannot be read here, once known.
    no_locks: Option<String>,
    rewrites: Vec<Rewrite>,
    created: Vec<String>,
    /// The table the running statement may rebuild: its id and size before.
    pending: Option<(String, Table)>,
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

    /// A new migration starts.
    pub fn start(&mut self) {
        self.rewrites.clear();
        self.created.clear();
        self.pending = None;
    }

    async fn table(&mut self, conn: &mut MySqlConnection, table: &str) -> Option<Table> {
        if self.no_tables.is_some() {
            return None;
        }
        let flavor = self.flavor(conn).await;
        let sql = flavor.table();
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(table)
            .bind(table)
            .fetch_one(&mut *conn)
            .await
            .and_then(|r| {
                (0..r.len())
                    .map(|i| r.try_get::<Option<String>, _>(i))
                    .collect::<Result<Vec<_>, _>>()
            });
        match row {
            Ok(row) => Some(mysql::table_row(&row)),
            Err(e) => {
                self.no_tables = Some(format!(
                    "InnoDB's table ids could not be read ({}; it needs the PROCESS privilege)",
                    super::describe(&e)
                ));
                None
            }
        }
    }

    /// Before one of the migration's statements.
    pub async fn before(&mut self, conn: &mut MySqlConnection, sql: &str) {
        self.pending = None;
        match mysql::touch(sql) {
            Some(Touch::Rebuilds(table)) => {
                if let Some(before) = self.table(conn, &table).await {
                    self.pending = Some((table, before));
                }
            }
            Some(Touch::Creates(table)) => self.created.push(table),
            None => {}
        }
    }

    /// After the statement [`Capture::before`] saw ran.
    pub async fn after(&mut self, conn: &mut MySqlConnection) {
        let Some((table, before)) = self.pending.take() else {
            return;
        };
        if let Some((after_id, _)) = self.table(conn, &table).await {
            self.rewrites
                .extend(mysql::rebuilt(&table, before, after_id));
        }
    }

    /// Just before the final history update: the locks of the open
    /// transaction (`in_tx`), and what the migration measured.
    pub async fn finish(&mut self, conn: &mut MySqlConnection, in_tx: bool) -> rehearsal::Capture {
        let held = match in_tx {
            true => self.locks(conn).await.map(Some),
            false => Ok(None),
        };
        let rewrites = match &self.no_tables {
            Some(why) => Err(why.clone()),
            None => Ok(std::mem::take(&mut self.rewrites)),
        };
        mysql::capture(rewrites, held, &self.created)
    }

    async fn locks(&mut self, conn: &mut MySqlConnection) -> Result<Vec<(String, String)>, String> {
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
            Ok(rows) => Ok(rows.iter().filter_map(|r| mysql::lock_row(r)).collect()),
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
