//! The rehearsal capture on MySQL and MariaDB: the queries of
//! `migrator_core::rehearsal::mysql` around a migration's statements.
//!
//! In the one-message path (the driver's `Batch`) they are pieces of the
//! message: the table's id read right before and right after each ALTER or
//! OPTIMIZE TABLE ([`Capture::table_sql`]), the transaction's locks right
//! before the final history update ([`Capture::locks_sql`]); no round trip of
//! their own. A failing piece would stop the whole message, so a piece goes in
//! only once the session's [`Capture::probe`] (one round trip, on the first
//! migration that runs) found its query answered. The statement-by-statement
//! path runs them on their own: [`Capture::start`], [`Capture::before`] and
//! [`Capture::after`] around each statement, [`Capture::finish`] at the end.
//! A query the server refuses (no PROCESS privilege, no lock instrumentation)
//! makes that part "not measured", never a failure, and is not asked again in
//! the session.

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

/// [`Flavor::table`]'s two `?` filled with `table` as a literal, for a
/// multi-statement message (text protocol: no parameters).
fn fill(sql: &str, table: &str) -> String {
    sql.replace('?', &super::text_literal(table))
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
    /// Whether [`Capture::probe`] ran in this session.
    probed: bool,
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

    /// The server's `VERSION()`, read with the lock: which dictionary tables
    /// to read, without a round trip of its own.
    pub fn set_version(&mut self, version: &str) {
        self.flavor = Some(Flavor::of_version(version));
    }

    /// Whether the pieces' queries still have to be tried in this session.
    pub fn needs_probe(&self) -> bool {
        !self.probed
    }

    /// One round trip, once per session: the table and lock queries the
    /// message's pieces would carry, tried on their own, so that a refused
    /// one is left out (and noted) instead of stopping a migration.
    pub async fn probe(&mut self, conn: &mut MySqlConnection) {
        use futures_util::TryStreamExt;
        self.probed = true;
        let flavor = self.flavor(conn).await;
        let table = fill(&flavor.table(), "");
        let mut parts = vec![table.as_str()];
        if flavor == Flavor::Mysql {
            // Switched off, performance_schema answers with empty tables.
            parts.push("SELECT @@performance_schema");
        }
        parts.push(flavor.locks());
        let text = parts.join(";\n");
        let (mut completed, mut schema_on, mut failed) = (0usize, None, None);
        {
            let mut stream = sqlx::raw_sql(AssertSqlSafe(text)).fetch_many(&mut *conn);
            loop {
                match stream.try_next().await {
                    Ok(Some(sqlx::Either::Left(_))) => completed += 1,
                    Ok(Some(sqlx::Either::Right(row))) => {
                        if flavor == Flavor::Mysql && completed == 1 {
                            schema_on = row.try_get_unchecked::<Option<i64>, _>(0).ok().flatten();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        let no_locks = |source: &str, why: String| {
            format!("the server has no metadata-lock instrumentation to read: {source} ({why})")
        };
        match (completed, failed) {
            (0, Some(e)) => {
                self.no_tables = Some(format!(
                    "InnoDB's table ids could not be read ({}; it needs the PROCESS privilege)",
                    super::describe(&e)
                ));
                // The lock query did not run: asked on its own.
                let _ = self.locks(conn).await;
            }
            (_, Some(e)) => {
                self.no_locks = Some(no_locks(flavor.lock_source(), super::describe(&e)));
            }
            (_, None) if flavor == Flavor::Mysql && schema_on != Some(1) => {
                self.no_locks = Some(no_locks(
                    flavor.lock_source(),
                    "performance_schema is off".into(),
                ));
            }
            _ => {}
        }
    }

    /// A piece's query failed inside a migration's message although the
    /// probe had it answered (`locks`: the lock query, else the table one):
    /// it is not asked again in this session.
    pub fn refused(&mut self, locks: bool, why: String) {
        match locks {
            true => self.no_locks = Some(format!("the lock query failed: {why}")),
            false => self.no_tables = Some(format!("InnoDB's table ids could not be read ({why})")),
        }
    }

    /// The query reading `table`'s id and size, for a piece of the message;
    /// `None` when table ids cannot be read here (or were not tried yet).
    pub fn table_sql(&self, table: &str) -> Option<String> {
        match (self.probed, &self.no_tables, self.flavor) {
            (true, None, Some(f)) => Some(fill(&f.table(), table)),
            _ => None,
        }
    }

    /// The query reading the open transaction's locks, for a piece of the
    /// message; `None` when they cannot be read here (or were not tried yet).
    pub fn locks_sql(&self) -> Option<&'static str> {
        match (self.probed, &self.no_locks, self.flavor) {
            (true, None, Some(f)) => Some(f.locks()),
            _ => None,
        }
    }

    /// What a migration sent as one message measured: the rebuilt tables,
    /// the locks read before its final update (`None`: not read), whether a
    /// transaction was open then, and the tables it created.
    pub fn of_message(
        &self,
        rewrites: Vec<Rewrite>,
        held: Option<Vec<(String, String)>>,
        in_tx: bool,
        created: &[String],
    ) -> rehearsal::Capture {
        let held = match (in_tx, held) {
            (false, _) => Ok(None),
            (true, Some(h)) => Ok(Some(h)),
            (true, None) => Err(self
                .no_locks
                .clone()
                .unwrap_or_else(|| "the locks were not read".into())),
        };
        let rewrites = match &self.no_tables {
            Some(why) => Err(why.clone()),
            None => Ok(rewrites),
        };
        mysql::capture(rewrites, held, created)
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
