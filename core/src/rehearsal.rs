//! Rehearsal on a clone: what each migration would cost production (the locks
//! it held on tables that existed before it, the tables it rewrote), the gates
//! that fail a run on them, and whether a down script really undoes its up
//! (the schema compared as catalog rows, not as dump text).
//!
//! Pure. The drivers send the SQL of [`pg`] and [`mysql`] and hand the rows
//! back as text; everything decided about them is decided here. The capture
//! is written as fragments ("before": right after the transaction opens;
//! "after": just before the history row and COMMIT) so that a driver can
//! splice them into whatever message it sends.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::migration::Version;

/// A lock a migration held on a relation that existed before it started: the
/// strongest one per relation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    pub relation: String,
    /// As the server names it: `AccessExclusiveLock`, `ShareLock` (PostgreSQL's
    /// `pg_locks`); `MDL_SHARED_WRITE`, `EXCLUSIVE` (MySQL's metadata locks).
    pub mode: String,
}

/// A table that existed before the migration and was rewritten by it (new
/// storage: PostgreSQL's file node, InnoDB's table id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    pub relation: String,
    /// Its size before, as the catalog knew it (`None`: the catalog did not say).
    pub bytes_before: Option<u64>,
}

/// What was measured of one migration. `None` is "not measured", and then
/// `not_measured` says why; a partial measurement says what it missed there too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capture {
    pub locks: Option<Vec<Lock>>,
    pub rewrites: Option<Vec<Rewrite>>,
    pub not_measured: Option<String>,
}

impl Capture {
    /// Nothing measured, for `why`.
    pub fn not_measured(why: impl Into<String>) -> Self {
        Capture {
            locks: None,
            rewrites: None,
            not_measured: Some(why.into()),
        }
    }
}

/// Our own bookkeeping table: never a finding.
const HISTORY: &str = "migrator_history";

fn is_history(name: &str) -> bool {
    name == HISTORY || name.ends_with(".migrator_history")
}

/// How strong a lock mode is: 0 unknown, 8 the strongest (PostgreSQL's
/// ACCESS EXCLUSIVE, MySQL's EXCLUSIVE metadata lock). Modes from 5 up block
/// writers to the relation.
pub fn strength(mode: &str) -> u8 {
    match mode.trim_start_matches("MDL_") {
        "AccessShareLock" | "INTENTION_EXCLUSIVE" | "SHARED" | "SHARED_HIGH_PRIO" => 1,
        "RowShareLock" | "SHARED_READ" => 2,
        "RowExclusiveLock" | "SHARED_WRITE" | "SHARED_WRITE_LOW_PRIO" => 3,
        "ShareUpdateExclusiveLock" | "SHARED_UPGRADABLE" => 4,
        "ShareLock" | "SHARED_READ_ONLY" => 5,
        "ShareRowExclusiveLock" | "SHARED_NO_WRITE" => 6,
        "ExclusiveLock" | "SHARED_NO_READ_WRITE" => 7,
        "AccessExclusiveLock" | "EXCLUSIVE" => 8,
        _ => 0,
    }
}

/// The mode that `--max-lock-ms` counts: nothing else can touch the relation.
pub fn is_exclusive(mode: &str) -> bool {
    strength(mode) == 8
}

/// The mode blocks writers (and maybe readers) for as long as it is held.
pub fn blocks_writes(mode: &str) -> bool {
    strength(mode) >= 5
}

/// `AccessExclusiveLock` → `ACCESS EXCLUSIVE`; `MDL_EXCLUSIVE` → `EXCLUSIVE
/// metadata`, as the documentation of each server writes them.
pub fn display_mode(mode: &str) -> String {
    if let Some(pg) = mode.strip_suffix("Lock") {
        let mut out = String::new();
        for (i, c) in pg.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push(' ');
            }
            out.extend(c.to_uppercase());
        }
        out
    } else {
        format!(
            "{} metadata",
            mode.trim_start_matches("MDL_").replace('_', " ")
        )
    }
}

/// The strongest lock per relation name, sorted by name (our history table
/// left out).
pub fn strongest<'a>(locks: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Lock> {
    let mut best: BTreeMap<&str, &str> = BTreeMap::new();
    for (relation, mode) in locks {
        if is_history(relation) {
            continue;
        }
        let slot = best.entry(relation).or_insert(mode);
        if strength(mode) > strength(slot) {
            *slot = mode;
        }
    }
    best.into_iter()
        .map(|(relation, mode)| Lock {
            relation: relation.to_string(),
            mode: mode.to_string(),
        })
        .collect()
}

fn col(row: &[Option<String>], i: usize) -> Option<&str> {
    row.get(i).and_then(|c| c.as_deref())
}

fn num(row: &[Option<String>], i: usize) -> Option<u64> {
    col(row, i).and_then(|v| v.trim().parse().ok())
}

/// PostgreSQL: the fragments and their rows.
///
/// "before" reads no table of the database's and scans no catalog: its cost
/// must not grow with the schema (a production clone has thousands of
/// relations, and the capture runs once per migration). It records a
/// watermark, the highest oid or file node of any relation, read from the
/// ends of `pg_class`'s two indexes (the oid one, and the file node one per
/// tablespace), in a transaction-local setting. Oids and file nodes come from
/// one counter, so a relation whose oid is at most the watermark existed
/// before the migration, and one whose file node is above it got new storage:
/// it was rewritten (a rewrite takes ACCESS EXCLUSIVE, so it is among the
/// locked relations). "before" also returns the catalog's size (`relpages`:
/// as of the last VACUUM, ANALYZE or CREATE INDEX; reading the size on disk
/// would lock every table) of the non-empty tables whose names the script
/// mentions ([`names`](pg::names)), looked up by name in the index: a rewrite reached only
/// through a name the script does not spell (dynamic SQL) reports its size as
/// unknown. "after" lists the relation locks of the migration's own backend on
/// pre-existing relations, with their names and whether they were rewritten.
/// Neither takes a lock on a user table.
pub mod pg {
    use super::*;

    /// First column's name: how a driver tells these rows from the script's.
    pub const BEFORE_TAG: &str = "migrator_capture_before";
    pub const AFTER_TAG: &str = "migrator_capture_after";

    /// At most this many names of a script are looked up for sizes (the
    /// first ones, in order): a data migration's thousands of words cost
    /// nothing, and the tables a schema change names come first.
    pub const MAX_NAMES: usize = 1000;

    /// Right after BEGIN (the migration's own transaction), for `script`: one
    /// row, the watermark (also kept in a transaction-local setting for
    /// [`AFTER`]) and `oid:relpages` of each non-empty table among the
    /// script's [`names`]. Index reads only: no condition on the oid there,
    /// or the planner walks the oid index over every user relation (1.3 ms at
    /// 3,000); a system table among the sizes is never a rewrite's (those
    /// are at or above 16384, [`AFTER`]).
    pub fn before(names: &[String]) -> String {
        before_sql(&names_array(names))
    }

    /// [`before`] with the names as `names` (an expression of type `name[]`).
    fn before_sql(names: &str) -> String {
        format!(
            "SELECT NULL::oid AS migrator_capture_before, \
             set_config('migrator.watermark', greatest((SELECT max(oid) FROM pg_class)::int8, \
             (SELECT max((SELECT c.relfilenode FROM pg_class c WHERE c.reltablespace = s.oid \
             ORDER BY c.relfilenode DESC LIMIT 1)) FROM (SELECT 0::oid AS oid UNION ALL \
             SELECT oid FROM pg_tablespace) s)::int8)::text, true)::int8, \
             (SELECT string_agg(c.oid::text || ':' || c.relpages::text, ',') FROM pg_class c \
             WHERE c.relname = ANY({names}) \
             AND c.relkind IN ('r','m') AND c.relpages > 0), current_setting('block_size')"
        )
    }

    /// A script's [`names`] as a `name[]` literal.
    fn names_array(names: &[String]) -> String {
        let list = names
            .iter()
            .map(|n| literal(n))
            .collect::<Vec<_>>()
            .join(",");
        format!("ARRAY[{list}]::name[]")
    }

    /// Both fragments as prepared statements of the session, under names
    /// numbered `generation` (two statements). Planning them costs more
    /// than running them (0.5 and 0.3 ms against about 0.1 ms each, measured
    /// with pgbench on 3,000 relations): prepared once, each migration pays
    /// only the run ([`execute_before`], [`execute_after`]). A prepared
    /// statement outlives a rolled-back transaction.
    pub fn prepare(generation: u32) -> String {
        format!(
            "PREPARE migrator_capture_before_{generation}(name[]) AS {};\n\
             PREPARE migrator_capture_after_{generation} AS {AFTER}",
            before_sql("$1")
        )
    }

    /// [`before`] for a script's [`names`], through the statement [`prepare`]d.
    pub fn execute_before(generation: u32, names: &[String]) -> String {
        format!(
            "EXECUTE migrator_capture_before_{generation}({})",
            names_array(names)
        )
    }

    /// [`AFTER`], through the statement [`prepare`]d.
    pub fn execute_after(generation: u32) -> String {
        format!("EXECUTE migrator_capture_after_{generation}")
    }

    /// Whether a script (its [`names`]) may drop the session's prepared
    /// statements (`DISCARD ALL`, `DEALLOCATE`): its capture then goes inline
    /// and the statements are prepared again for the next migration.
    pub fn resets_session(names: &[String]) -> bool {
        names.iter().any(|n| n == "discard" || n == "deallocate")
    }

    /// The names a script may give a table, in order of first mention, at
    /// most [`MAX_NAMES`]: its unquoted words folded to lower case and its
    /// quoted identifiers as written; comments and string literals skipped,
    /// dollar-quoted bodies (function code) read.
    pub fn names(script: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut keep = |name: String| {
            if out.len() < MAX_NAMES && !name.is_empty() && seen.insert(name.clone()) {
                out.push(name);
            }
        };
        let b = script.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'-' && b.get(i + 1) == Some(&b'-') {
                i = script[i..].find('\n').map_or(b.len(), |n| i + n);
            } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            } else if c == b'\'' {
                // E'..' literals escape with a backslash; the lexer's prefix
                // word was already read, so look back for it.
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E');
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                    } else if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            } else if c == b'"' {
                let mut name = String::new();
                let mut j = i + 1;
                loop {
                    match script[j..].find('"') {
                        Some(n) => {
                            name.push_str(&script[j..j + n]);
                            j += n + 1;
                            if b.get(j) == Some(&b'"') {
                                name.push('"');
                                j += 1;
                            } else {
                                break;
                            }
                        }
                        None => {
                            j = b.len();
                            break;
                        }
                    }
                }
                keep(name);
                i = j;
            } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
                let end = script[i..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .map_or(b.len(), |n| i + n);
                keep(script[i..end].to_lowercase());
                i = end;
            } else if c == b'$' {
                // A dollar quote's tag is skipped; its body is code and read on.
                let tag_end = script[i + 1..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .map_or(b.len(), |n| i + 1 + n);
                i = if b.get(tag_end) == Some(&b'$') {
                    tag_end + 1
                } else {
                    i + 1
                };
            } else {
                i += 1;
            }
        }
        out
    }

    /// A string literal whatever `standard_conforming_strings` says: in an
    /// `E''` literal both the quote and the backslash are escaped.
    pub fn literal(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 3);
        out.push_str("E'");
        for c in s.chars() {
            match c {
                '\'' => out.push_str("''"),
                '\\' => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    }

    /// Just before the history row and COMMIT, in the same transaction.
    pub const AFTER: &str = "SELECT l.relation AS migrator_capture_after, l.mode, \
        c.relkind IN ('r','m') AND c.relfilenode::int8 > NULLIF(current_setting('migrator.watermark', true), '')::int8, \
        l.relation::regclass::text \
        FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
        WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted \
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
        AND l.relation >= 16384 AND l.relation::int8 <= NULLIF(current_setting('migrator.watermark', true), '')::int8 \
        AND c.relkind IN ('r','p','m','v','S','f')";

    /// No-transaction migrations: the tables rewritten since `watermark` (read
    /// by [`before`] before the first statement), after the last one.
    pub fn rewritten_since(watermark: u64) -> String {
        format!(
            "SELECT c.oid AS migrator_capture_after, 'none', true, c.oid::regclass::text \
             FROM pg_class c WHERE c.oid >= 16384 AND c.oid::int8 <= {watermark} \
             AND c.relfilenode::int8 > {watermark} AND c.relkind IN ('r','m')"
        )
    }

    /// What [`before`] returned.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Before {
        pub watermark: Option<u64>,
        /// The catalog's size of each non-empty table, by oid.
        pub bytes: HashMap<String, u64>,
    }

    impl Before {
        /// Takes the row of [`before`].
        pub fn take(&mut self, row: &[Option<String>]) {
            self.watermark = num(row, 1);
            let block = num(row, 3).unwrap_or(8192);
            for entry in col(row, 2).unwrap_or_default().split(',') {
                if let Some((oid, pages)) = entry.split_once(':')
                    && let Ok(pages) = pages.parse::<u64>()
                {
                    self.bytes.insert(oid.to_string(), pages * block);
                }
            }
        }
    }

    /// One row of [`AFTER`] (or of [`rewritten_since`]).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Locked {
        pub oid: String,
        pub name: String,
        pub mode: String,
        pub rewritten: bool,
    }

    pub fn after_row(row: &[Option<String>]) -> Option<Locked> {
        Some(Locked {
            oid: col(row, 0)?.to_string(),
            mode: col(row, 1)?.to_string(),
            rewritten: col(row, 2) == Some("t"),
            name: col(row, 3)?.to_string(),
        })
    }

    fn rewrites(before: &Before, locked: &[Locked]) -> Vec<Rewrite> {
        let mut out: Vec<Rewrite> = locked
            .iter()
            .filter(|l| l.rewritten && !is_history(&l.name))
            .map(|l| Rewrite {
                relation: l.name.clone(),
                bytes_before: before.bytes.get(&l.oid).copied(),
            })
            .collect();
        out.sort_by(|a, b| a.relation.cmp(&b.relation));
        out.dedup();
        out
    }

    /// A transactional migration: locks and rewrites from the two fragments.
    pub fn capture(before: &Before, locked: &[Locked]) -> Capture {
        if before.watermark.is_none() {
            return Capture::not_measured("pg_class could not be read before the migration");
        }
        Capture {
            locks: Some(strongest(
                locked.iter().map(|l| (l.name.as_str(), l.mode.as_str())),
            )),
            rewrites: Some(rewrites(before, locked)),
            not_measured: None,
        }
    }

    /// A no-transaction migration: [`before`] run before its first statement,
    /// [`rewritten_since`] after its last; each statement commits on its own,
    /// so its locks are gone before they can be read.
    pub fn capture_statementwise(before: &Before, rewritten: &[Locked]) -> Capture {
        Capture {
            locks: None,
            rewrites: Some(rewrites(before, rewritten)),
            not_measured: Some(NO_TRANSACTION.into()),
        }
    }

    pub const NO_TRANSACTION: &str = "locks: a no-transaction migration commits each statement \
        on its own, so its locks end before they can be read";

    /// The schema as [`super::Schema`] reads it: `(kind, name, definition)`.
    pub const SCHEMA: &str = "\
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' \
WHEN 'f' THEN 'foreign table' ELSE 'table' END, c.oid::regclass::text, \
CASE WHEN c.relkind IN ('v','m') THEN pg_get_viewdef(c.oid) ELSE c.relkind::text END \
FROM pg_class c WHERE c.oid >= 16384 AND c.relkind IN ('r','p','v','m','S','f') \
AND c.relpersistence <> 't' AND c.relname <> 'migrator_history' \
UNION ALL \
SELECT 'column', c.oid::regclass::text || '.' || quote_ident(a.attname), \
format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END \
|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') \
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.oid >= 16384 AND c.relkind IN ('r','p','v','m','f') \
AND c.relpersistence <> 't' AND c.relname <> 'migrator_history' \
UNION ALL \
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
WHERE c.oid >= 16384 AND c.relkind IN ('r','p','m') AND c.relpersistence <> 't' AND c.relname <> 'migrator_history' \
UNION ALL \
SELECT 'constraint', c.oid::regclass::text || '.' || quote_ident(k.conname), pg_get_constraintdef(k.oid) \
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
WHERE c.oid >= 16384 AND c.relpersistence <> 't' AND c.relname <> 'migrator_history' \
UNION ALL \
SELECT 'sequence', s.seqrelid::regclass::text || ' options', format_type(s.seqtypid, NULL) \
|| ' start ' || s.seqstart || ' increment ' || s.seqincrement || ' min ' || s.seqmin \
|| ' max ' || s.seqmax || ' cache ' || s.seqcache || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END \
FROM pg_sequence s WHERE s.seqrelid >= 16384 \
UNION ALL \
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END, \
p.oid::regprocedure::text, pg_get_function_result(p.oid) || ' ' || l.lanname || ' ' || md5(p.prosrc) \
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid >= 16384 \
UNION ALL \
SELECT 'trigger', c.oid::regclass::text || '.' || quote_ident(t.tgname), pg_get_triggerdef(t.oid) \
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal AND t.oid >= 16384 \
UNION ALL \
SELECT CASE t.typtype WHEN 'e' THEN 'enum' ELSE 'domain' END, t.oid::regtype::text, \
CASE WHEN t.typtype = 'e' THEN (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) \
FROM pg_enum e WHERE e.enumtypid = t.oid) ELSE format_type(t.typbasetype, t.typtypmod) \
|| CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END END \
FROM pg_type t WHERE t.oid >= 16384 AND t.typtype IN ('e','d') \
UNION ALL \
SELECT 'schema', quote_ident(n.nspname), '' FROM pg_namespace n WHERE n.oid >= 16384 \
AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";
}

/// MySQL and MariaDB: what InnoDB's dictionary and the metadata-lock
/// instrumentation tell.
///
/// Rewrites: a table rebuilt by ALTER TABLE (copied, or rebuilt in place) gets
/// a new InnoDB table id; an instant or in-place change without rebuild keeps
/// it. Only the statements that can rebuild a table (ALTER TABLE, OPTIMIZE
/// TABLE) pay for it: the table's id and size just before the statement
/// ([`mysql::Flavor::table`]), its id again just after. The id needs the PROCESS
/// privilege.
///
/// Locks: MySQL 8's `performance_schema.metadata_locks`, MariaDB's
/// `METADATA_LOCK_INFO` (the metadata_lock_info plugin). Read just before the
/// final history update, when the migration has an open transaction; a DDL
/// statement's metadata locks end at its implicit commit, so what is read is
/// the locks of the migration's open transaction (its DML), and DDL locks stay
/// unknown. Tables the migration created (its CREATE TABLE statements) are
/// left out.
pub mod mysql {
    use super::*;

    /// Which server's dictionary tables to read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Flavor {
        Mysql,
        Mariadb,
    }

    impl Flavor {
        pub fn of_version(version: &str) -> Flavor {
            if version.to_ascii_lowercase().contains("mariadb") {
                Flavor::Mariadb
            } else {
                Flavor::Mysql
            }
        }

        /// One table of the current database: its InnoDB table id and its
        /// size (data and indexes, as InnoDB's statistics have it). `?` binds
        /// the table name, twice.
        pub fn table(self) -> String {
            let tables = match self {
                Flavor::Mariadb => "INNODB_SYS_TABLES",
                Flavor::Mysql => "INNODB_TABLES",
            };
            format!(
                "SELECT CAST((SELECT i.TABLE_ID FROM information_schema.{tables} i \
                 WHERE i.NAME = CONCAT(DATABASE(), '/', ?)) AS CHAR), \
                 CAST((SELECT t.DATA_LENGTH + t.INDEX_LENGTH FROM information_schema.TABLES t \
                 WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ?) AS CHAR)"
            )
        }

        /// The session's own metadata locks on tables of the current database.
        pub fn locks(self) -> &'static str {
            match self {
                Flavor::Mariadb => {
                    "SELECT TABLE_NAME, LOCK_MODE FROM information_schema.METADATA_LOCK_INFO \
                     WHERE THREAD_ID = CONNECTION_ID() AND TABLE_SCHEMA = DATABASE()"
                }
                Flavor::Mysql => {
                    "SELECT OBJECT_NAME, LOCK_TYPE FROM performance_schema.metadata_locks \
                     WHERE OWNER_THREAD_ID = PS_CURRENT_THREAD_ID() AND OBJECT_TYPE = 'TABLE' \
                     AND OBJECT_SCHEMA = DATABASE() AND LOCK_STATUS = 'GRANTED'"
                }
            }
        }

        /// Where the locks would have been read, for the "unknown" note.
        pub fn lock_source(self) -> &'static str {
            match self {
                Flavor::Mariadb => {
                    "information_schema.METADATA_LOCK_INFO (the metadata_lock_info plugin)"
                }
                Flavor::Mysql => "performance_schema.metadata_locks",
            }
        }
    }

    /// What a statement does to a table, as far as the capture cares.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Touch {
        /// ALTER TABLE or OPTIMIZE TABLE: may rebuild it.
        Rebuilds(String),
        /// CREATE TABLE: the migration's own.
        Creates(String),
    }

    /// Skips blanks and comments (`-- `, `#`, `/* */`) at the start of `sql`.
    fn skip_blank(mut sql: &str) -> &str {
        loop {
            let t = sql.trim_start();
            if let Some(rest) = t.strip_prefix("--").or_else(|| t.strip_prefix('#')) {
                sql = rest.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(rest) = t.strip_prefix("/*") {
                sql = rest.split_once("*/").map_or("", |(_, r)| r);
            } else {
                return t;
            }
        }
    }

    /// The next word (letters, digits, `_`, `$`), uppercased, and the rest.
    fn word(sql: &str) -> (String, &str) {
        let sql = skip_blank(sql);
        let end = sql
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .unwrap_or(sql.len());
        (sql[..end].to_ascii_uppercase(), &sql[end..])
    }

    /// A table name, maybe `quoted` and maybe qualified (`db`.`t`): the last part.
    fn name(sql: &str) -> Option<String> {
        let mut rest = skip_blank(sql);
        let mut last = None;
        loop {
            let (part, after) = if let Some(q) = rest.strip_prefix('`') {
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == '`' {
                        if q[i + 1..].starts_with('`') {
                            out.push('`');
                            chars.next();
                        } else {
                            end = Some(i + 1);
                            break;
                        }
                    } else {
                        out.push(c);
                    }
                }
                (out, &q[end?..])
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                    .unwrap_or(rest.len());
                if end == 0 {
                    return last;
                }
                (rest[..end].to_string(), &rest[end..])
            };
            last = Some(part);
            match after.trim_start().strip_prefix('.') {
                Some(more) => rest = more.trim_start(),
                None => return last,
            }
        }
    }

    /// What `sql` (one statement) does to a table, when the capture cares.
    pub fn touch(sql: &str) -> Option<Touch> {
        let (first, mut rest) = word(sql);
        let mut next = || {
            let (w, r) = word(rest);
            rest = r;
            w
        };
        match first.as_str() {
            "ALTER" | "OPTIMIZE" => {
                let mut w = next();
                while matches!(
                    w.as_str(),
                    "ONLINE" | "IGNORE" | "NO_WRITE_TO_BINLOG" | "LOCAL"
                ) {
                    w = next();
                }
                if w != "TABLE" {
                    return None;
                }
                let save = rest;
                let (w1, r1) = word(rest);
                let (w2, r2) = word(r1);
                let rest = if w1 == "IF" && w2 == "EXISTS" {
                    r2
                } else {
                    save
                };
                name(rest).map(Touch::Rebuilds)
            }
            "CREATE" => {
                let mut w = next();
                while matches!(w.as_str(), "OR" | "REPLACE" | "TEMPORARY") {
                    w = next();
                }
                if w != "TABLE" {
                    return None;
                }
                let save = rest;
                let (w1, r1) = word(rest);
                let (w2, r2) = word(r1);
                let (w3, r3) = word(r2);
                let rest = if (w1.as_str(), w2.as_str(), w3.as_str()) == ("IF", "NOT", "EXISTS") {
                    r3
                } else {
                    save
                };
                name(rest).map(Touch::Creates)
            }
            _ => None,
        }
    }

    /// One row of [`Flavor::table`]: table id and bytes.
    pub fn table_row(row: &[Option<String>]) -> (Option<u64>, Option<u64>) {
        (num(row, 0), num(row, 1).filter(|b| *b > 0))
    }

    /// A rebuild, from the table's id before and after its statement.
    pub fn rebuilt(
        table: &str,
        before: (Option<u64>, Option<u64>),
        after_id: Option<u64>,
    ) -> Option<Rewrite> {
        match (before.0, after_id) {
            (Some(a), Some(b)) if a != b && !is_history(table) => Some(Rewrite {
                relation: table.to_string(),
                bytes_before: before.1,
            }),
            _ => None,
        }
    }

    /// One row of [`Flavor::locks`]: `(table, mode)`.
    pub fn lock_row(row: &[Option<String>]) -> Option<(String, String)> {
        Some((col(row, 0)?.to_string(), col(row, 1)?.to_string()))
    }

    /// What a MySQL migration's capture says. `rewrites`: `Err` says why they
    /// could not be read. `held`: `Ok(None)` when there was no open
    /// transaction to read locks in. `created`: the tables it created.
    pub fn capture(
        rewrites: Result<Vec<Rewrite>, String>,
        held: Result<Option<Vec<(String, String)>>, String>,
        created: &[String],
    ) -> Capture {
        let mut notes = Vec::new();
        let rewrites = match rewrites {
            Ok(mut r) => {
                r.sort_by(|a, b| a.relation.cmp(&b.relation));
                r.dedup_by(|a, b| a.relation == b.relation);
                Some(r)
            }
            Err(e) => {
                notes.push(format!("rewrites: {e}"));
                None
            }
        };
        let locks = match held {
            Ok(Some(h)) => {
                notes.push(DDL_LOCKS.to_string());
                Some(strongest(
                    h.iter()
                        .filter(|(t, _)| !created.contains(t))
                        .map(|(t, m)| (t.as_str(), m.as_str())),
                ))
            }
            Ok(None) => {
                notes.push(
                    "locks unknown: no open transaction to read them in (a DDL statement's \
                     metadata locks end at its implicit commit)"
                        .to_string(),
                );
                None
            }
            Err(e) => {
                notes.push(format!("locks unknown: {e}"));
                None
            }
        };
        Capture {
            locks,
            rewrites,
            not_measured: (!notes.is_empty()).then(|| notes.join("; ")),
        }
    }

    pub const DDL_LOCKS: &str = "locks: only those of the open transaction (DML); a DDL \
        statement's metadata locks end at its implicit commit and are not seen";

    /// The schema as [`super::Schema`] reads it: `(kind, name, definition)`.
    pub const SCHEMA: &str = "\
SELECT CAST(IF(TABLE_TYPE = 'SEQUENCE', 'sequence', 'table') AS CHAR), CAST(TABLE_NAME AS CHAR), \
CAST(CONCAT(TABLE_TYPE, ' ', COALESCE(ENGINE, '')) AS CHAR) FROM information_schema.TABLES \
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'VIEW' AND TABLE_NAME <> 'migrator_history' \
UNION ALL \
SELECT 'column', CAST(CONCAT(TABLE_NAME, '.', COLUMN_NAME) AS CHAR), CAST(CONCAT(COLUMN_TYPE, \
IF(IS_NULLABLE = 'NO', ' NOT NULL', ''), COALESCE(CONCAT(' DEFAULT ', COLUMN_DEFAULT), ''), \
IF(EXTRA <> '', CONCAT(' ', EXTRA), '')) AS CHAR) FROM information_schema.COLUMNS \
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'migrator_history' \
UNION ALL \
SELECT 'index', CAST(CONCAT(TABLE_NAME, '.', INDEX_NAME) AS CHAR), CAST(CONCAT(IF(NON_UNIQUE = 0, \
'UNIQUE ', ''), INDEX_TYPE, ' (', GROUP_CONCAT(CONCAT(COLUMN_NAME, COALESCE(CONCAT('(', SUB_PART, \
')'), '')) ORDER BY SEQ_IN_INDEX SEPARATOR ', '), ')') AS CHAR) FROM information_schema.STATISTICS \
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'migrator_history' \
GROUP BY TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE \
UNION ALL \
SELECT 'constraint', CAST(CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) AS CHAR), \
CAST(CONSTRAINT_TYPE AS CHAR) FROM information_schema.TABLE_CONSTRAINTS \
WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME <> 'migrator_history' \
UNION ALL \
SELECT 'foreign key', CAST(CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) AS CHAR), \
CAST(CONCAT('REFERENCES ', REFERENCED_TABLE_NAME, ' ON UPDATE ', UPDATE_RULE, ' ON DELETE ', \
DELETE_RULE) AS CHAR) FROM information_schema.REFERENTIAL_CONSTRAINTS \
WHERE CONSTRAINT_SCHEMA = DATABASE() \
UNION ALL \
SELECT 'check', CAST(CONSTRAINT_NAME AS CHAR), CAST(CHECK_CLAUSE AS CHAR) \
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
UNION ALL \
SELECT 'view', CAST(TABLE_NAME AS CHAR), CAST(VIEW_DEFINITION AS CHAR) FROM information_schema.VIEWS \
WHERE TABLE_SCHEMA = DATABASE() \
UNION ALL \
SELECT CAST(LOWER(ROUTINE_TYPE) AS CHAR), CAST(ROUTINE_NAME AS CHAR), \
CAST(MD5(COALESCE(ROUTINE_DEFINITION, '')) AS CHAR) FROM information_schema.ROUTINES \
WHERE ROUTINE_SCHEMA = DATABASE() \
UNION ALL \
SELECT 'trigger', CAST(TRIGGER_NAME AS CHAR), CAST(CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION, \
' ON ', EVENT_OBJECT_TABLE, ' ', MD5(ACTION_STATEMENT)) AS CHAR) FROM information_schema.TRIGGERS \
WHERE TRIGGER_SCHEMA = DATABASE()";
}

/// The schema as the catalogs describe it: `(kind, name)` → definition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema(BTreeMap<(String, String), String>);

impl Schema {
    /// From `(kind, name, definition)` rows ([`pg::SCHEMA`], [`mysql::SCHEMA`]).
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> Schema {
        Schema(
            rows.iter()
                .filter_map(|r| {
                    Some((
                        (col(r, 0)?.to_string(), col(r, 1)?.to_string()),
                        col(r, 2).unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How one object differs between the schema before an up and after its down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// There after the down, not before the up: the down forgot it.
    LeftBehind,
    /// There before the up, gone after the down: the down dropped too much.
    Missing,
    /// There in both, defined differently.
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `table`, `column`, `index`, `constraint`, `view`, `function`, ….
    pub kind: String,
    pub name: String,
    pub change: Change,
    /// The definition before the up (`None`: it did not exist).
    pub before: Option<String>,
    /// The definition after the down (`None`: it does not exist).
    pub after: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let def = |d: &Option<String>| {
            d.as_deref()
                .filter(|d| !d.is_empty() && d.len() <= 120)
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        };
        match self.change {
            Change::LeftBehind => write!(
                f,
                "{} {} left behind{}",
                self.kind,
                self.name,
                def(&self.after)
            ),
            Change::Missing => write!(
                f,
                "{} {} missing{}",
                self.kind,
                self.name,
                def(&self.before)
            ),
            Change::Changed => write!(
                f,
                "{} {} changed: {} → {}",
                self.kind,
                self.name,
                self.before.as_deref().unwrap_or(""),
                self.after.as_deref().unwrap_or("")
            ),
        }
    }
}

/// What differs between `before` (the schema before an up) and `after` (after
/// its down), in catalog order (kind, name).
pub fn diff(before: &Schema, after: &Schema) -> Vec<Difference> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&(String, String)> =
        before.0.keys().chain(after.0.keys()).collect();
    for key in keys {
        let (b, a) = (before.0.get(key), after.0.get(key));
        let change = match (b, a) {
            (Some(b), Some(a)) if b == a => continue,
            (Some(_), Some(_)) => Change::Changed,
            (None, Some(_)) => Change::LeftBehind,
            (Some(_), None) => Change::Missing,
            (None, None) => continue,
        };
        out.push(Difference {
            kind: key.0.clone(),
            name: key.1.clone(),
            change,
            before: b.cloned(),
            after: a.cloned(),
        });
    }
    out
}

/// `--verify-down`'s verdict on one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// The down ran and left the schema as it was before the up.
    Ok,
    /// The down failed (file:line in the entry).
    DownFailed,
    /// The down ran, and the schema differs from the one before the up.
    SchemaDiffers,
}

/// One entry of the report's `verify_down`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyDown {
    pub version: Version,
    pub name: String,
    pub outcome: VerifyOutcome,
    /// `down_failed`: where and why.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: Option<String>,
    /// `schema_differs`: what differs.
    pub differences: Vec<Difference>,
}

impl VerifyDown {
    pub fn label(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }

    /// One line: `3_add_index: down leaves index public.t_v left behind`.
    pub fn text(&self) -> String {
        match self.outcome {
            VerifyOutcome::Ok => format!("{}: down undoes up", self.label()),
            VerifyOutcome::DownFailed => {
                let at = match (&self.file, self.line) {
                    (Some(f), Some(l)) => format!(" at {f}:{l}"),
                    (Some(f), None) => format!(" at {f}"),
                    _ => String::new(),
                };
                format!(
                    "{}: down failed{at}: {}",
                    self.label(),
                    self.message.as_deref().unwrap_or("")
                )
            }
            VerifyOutcome::SchemaDiffers => {
                let shown: Vec<String> = self
                    .differences
                    .iter()
                    .take(5)
                    .map(Difference::to_string)
                    .collect();
                let more = match self.differences.len() {
                    n if n > 5 => format!(" and {} more", n - 5),
                    _ => String::new(),
                };
                format!(
                    "{}: down does not undo up: {}{more}",
                    self.label(),
                    shown.join("; ")
                )
            }
        }
    }
}

/// The CI gates (`--max-lock-ms`, `--fail-on-rewrite`, `--verify-down`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gates {
    pub max_lock_ms: Option<u64>,
    pub fail_on_rewrite: bool,
    pub verify_down: bool,
}

impl Gates {
    pub fn any(&self) -> bool {
        self.max_lock_ms.is_some() || self.fail_on_rewrite || self.verify_down
    }
}

/// Which gate a finding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    MaxLockMs,
    FailOnRewrite,
    VerifyDown,
}

impl Gate {
    pub fn flag(self) -> &'static str {
        match self {
            Gate::MaxLockMs => "--max-lock-ms",
            Gate::FailOnRewrite => "--fail-on-rewrite",
            Gate::VerifyDown => "--verify-down",
        }
    }
}

/// One line of what production would go through, e.g. "20261110_add_not_null
/// would hold ACCESS EXCLUSIVE on orders for 48 s and rewrite it (2.1 GB)".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub version: Version,
    pub name: String,
    pub text: String,
    /// The gates this finding failed (empty: told, not failed).
    pub gates: Vec<Gate>,
}

/// What the findings are computed from, per applied migration.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    pub version: Version,
    pub name: &'a str,
    /// How long the migration's transaction held its locks, at most.
    pub execution_ms: u64,
    pub locks: Option<&'a [Lock]>,
    pub rewrites: Option<&'a [Rewrite]>,
    pub not_measured: Option<&'a str>,
}

/// The findings of a run, in migration order: per migration and relation, the
/// locks that block writers and the rewrites; then what `--verify-down` found
/// wrong; each marked with the gates it fails.
pub fn findings<'a>(
    steps: impl IntoIterator<Item = Measured<'a>>,
    verify: &[VerifyDown],
    gates: Gates,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in steps {
        let label = format!("{}_{}", s.version, s.name);
        let locks = s.locks.unwrap_or_default();
        let rewrites = s.rewrites.unwrap_or_default();
        let mut relations: Vec<&str> = locks
            .iter()
            .filter(|l| blocks_writes(&l.mode))
            .map(|l| l.relation.as_str())
            .chain(rewrites.iter().map(|r| r.relation.as_str()))
            .collect();
        relations.sort_unstable();
        relations.dedup();
        for rel in relations {
            let lock = locks
                .iter()
                .find(|l| l.relation == rel && blocks_writes(&l.mode));
            let rewrite = rewrites.iter().find(|r| r.relation == rel);
            let mut gates_failed = Vec::new();
            let mut text = label.clone();
            text.push_str(" would");
            if let Some(l) = lock {
                text.push_str(&format!(
                    " hold {} on {rel} for {}",
                    display_mode(&l.mode),
                    held(s.execution_ms)
                ));
                if !is_exclusive(&l.mode) {
                    text.push_str(" (blocking writes)");
                }
                if is_exclusive(&l.mode)
                    && gates.max_lock_ms.is_some_and(|max| s.execution_ms > max)
                {
                    gates_failed.push(Gate::MaxLockMs);
                }
            }
            if let Some(r) = rewrite {
                let size = r
                    .bytes_before
                    .map(|b| format!(" ({})", bytes(b)))
                    .unwrap_or_default();
                if lock.is_some() {
                    text.push_str(&format!(" and rewrite it{size}"));
                } else {
                    text.push_str(&format!(" rewrite {rel}{size}"));
                }
                if gates.fail_on_rewrite {
                    gates_failed.push(Gate::FailOnRewrite);
                }
            }
            out.push(Finding {
                version: s.version,
                name: s.name.to_string(),
                text,
                gates: gates_failed,
            });
        }
        let unchecked = match (
            gates.max_lock_ms,
            s.locks,
            gates.fail_on_rewrite,
            s.rewrites,
        ) {
            (Some(_), None, _, _) => Some("--max-lock-ms"),
            (_, _, true, None) => Some("--fail-on-rewrite"),
            _ => None,
        };
        if let Some(flag) = unchecked {
            out.push(Finding {
                version: s.version,
                name: s.name.to_string(),
                text: format!(
                    "{label}: not measured ({}); {flag} could not check it",
                    s.not_measured.unwrap_or("no capture")
                ),
                gates: Vec::new(),
            });
        }
    }
    for v in verify.iter().filter(|v| v.outcome != VerifyOutcome::Ok) {
        out.push(Finding {
            version: v.version,
            name: v.name.clone(),
            text: v.text(),
            gates: if gates.verify_down {
                vec![Gate::VerifyDown]
            } else {
                Vec::new()
            },
        });
    }
    out
}

/// The findings that failed a gate, one line each with the gates named.
pub fn failed(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| !f.gates.is_empty())
        .map(|f| {
            let flags: Vec<&str> = f.gates.iter().map(|g| g.flag()).collect();
            format!("{} ({})", f.text, flags.join(", "))
        })
        .collect()
}

/// How long a lock was held: `850 ms`, `4.2 s`, `48 s`, `2 min 05 s`.
pub fn held(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 10_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else if ms < 60_000 {
        format!("{} s", (ms + 500) / 1000)
    } else {
        let s = (ms + 500) / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// A size as PostgreSQL's `pg_size_pretty` would round it, with one decimal:
/// `512 bytes`, `8.0 kB`, `3.4 MB`, `2.1 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_are_ordered_by_what_they_block() {
        let pg = [
            "AccessShareLock",
            "RowShareLock",
            "RowExclusiveLock",
            "ShareUpdateExclusiveLock",
            "ShareLock",
            "ShareRowExclusiveLock",
            "ExclusiveLock",
            "AccessExclusiveLock",
        ];
        for w in pg.windows(2) {
            assert!(strength(w[0]) < strength(w[1]), "{w:?}");
        }
        assert!(is_exclusive("AccessExclusiveLock") && is_exclusive("MDL_EXCLUSIVE"));
        assert!(blocks_writes("ShareLock") && !blocks_writes("ShareUpdateExclusiveLock"));
        assert!(blocks_writes("MDL_SHARED_NO_WRITE") && !blocks_writes("MDL_SHARED_WRITE"));
        assert_eq!(strength("SomethingNew"), 0);
        assert_eq!(display_mode("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(display_mode("ShareLock"), "SHARE");
        assert_eq!(display_mode("MDL_EXCLUSIVE"), "EXCLUSIVE metadata");
    }

    #[test]
    fn pg_names_are_the_words_a_script_could_name_a_table_with() {
        let script = "-- ALTER TABLE commented\n\
            ALTER TABLE Orders ALTER COLUMN v TYPE bigint; /* a /* nested */ \"Skipped\" */\n\
            UPDATE \"Mixed\"\"Case\" SET note = 'not_a_table' || E'it\\'s_data';\n\
            DO $body$ BEGIN EXECUTE 'x'; ALTER TABLE public.items ADD c int; END $body$;\n\
            ALTER TABLE orders ADD d int;";
        let names = pg::names(script);
        assert_eq!(
            names,
            [
                "alter",
                "table",
                "orders",
                "column",
                "v",
                "type",
                "bigint",
                "update",
                "Mixed\"Case",
                "set",
                "note",
                "e",
                "do",
                "begin",
                "execute",
                "public",
                "items",
                "add",
                "c",
                "int",
                "end",
                "d",
            ]
        );
        // Nothing from comments or literals; the quoted name as written.
        for absent in [
            "commented",
            "skipped",
            "Skipped",
            "not_a_table",
            "it",
            "s_data",
            "x",
        ] {
            assert!(!names.iter().any(|n| n == absent), "{absent} in {names:?}");
        }
        // A data migration's words stop at the limit, first ones kept.
        let many: String = (0..3000).map(|i| format!("w{i} ")).collect();
        let names = pg::names(&format!("ALTER TABLE big ADD c int; {many}"));
        assert_eq!(names.len(), pg::MAX_NAMES);
        assert_eq!(&names[..3], ["alter", "table", "big"]);
        // Unterminated quotes and comments end the scan, never a panic.
        for broken in ["'open", "\"open", "/* open", "$tag", "E'\\", "caf\u{e9} x"] {
            let _ = pg::names(broken);
        }
        assert_eq!(pg::names("caf\u{e9}s"), ["caf\u{e9}s"]);
    }

    #[test]
    fn pg_before_looks_up_only_the_scripts_names() {
        let sql = pg::before(&pg::names("ALTER TABLE it's"));
        assert!(
            sql.contains("ARRAY[E'alter',E'table',E'it']::name[]"),
            "{sql}"
        );
        // No scan of pg_class without an index condition.
        assert!(
            sql.contains("max(oid) FROM pg_class")
                && sql.contains("ORDER BY c.relfilenode DESC LIMIT 1")
        );
        assert!(pg::before(&[]).contains("ARRAY[]::name[]"));
        // Prepared once per session, then only executed.
        let prepare = pg::prepare(3);
        assert!(prepare.starts_with("PREPARE migrator_capture_before_3(name[]) AS SELECT"));
        assert!(prepare.contains("relname = ANY($1)"));
        assert!(prepare.contains(&format!(
            "PREPARE migrator_capture_after_3 AS {}",
            pg::AFTER
        )));
        assert_eq!(
            pg::execute_before(3, &pg::names("ALTER TABLE t")),
            "EXECUTE migrator_capture_before_3(ARRAY[E'alter',E'table',E't']::name[])"
        );
        assert_eq!(pg::execute_after(3), "EXECUTE migrator_capture_after_3");
        assert!(pg::resets_session(&pg::names("SELECT 1; DISCARD ALL;")));
        assert!(pg::resets_session(&pg::names("DEALLOCATE PREPARE x")));
        assert!(!pg::resets_session(&pg::names("SELECT 'discard all'")));
    }

    #[test]
    fn pg_rows_parse_and_capture() {
        let row = |v: &[&str]| -> Vec<Option<String>> {
            v.iter()
                .map(|s| (!s.is_empty()).then(|| s.to_string()))
                .collect()
        };
        let mut before = pg::Before::default();
        before.take(&row(&["", "16500", "16400:432,16401:1", "8192"]));
        assert_eq!(before.bytes.get("16401"), Some(&8192));
        assert_eq!(before.watermark, Some(16500));
        let locked: Vec<pg::Locked> = [
            row(&["16400", "AccessExclusiveLock", "t", "t"]),
            row(&["16400", "RowExclusiveLock", "t", "t"]),
            row(&["16410", "AccessShareLock", "f", "v"]),
            row(&["16420", "ShareLock", "f", "small"]),
        ]
        .iter()
        .filter_map(|r| pg::after_row(r))
        .collect();
        let c = pg::capture(&before, &locked);
        assert_eq!(
            c.locks.unwrap(),
            [
                Lock {
                    relation: "small".into(),
                    mode: "ShareLock".into()
                },
                Lock {
                    relation: "t".into(),
                    mode: "AccessExclusiveLock".into()
                },
                Lock {
                    relation: "v".into(),
                    mode: "AccessShareLock".into()
                },
            ]
        );
        assert_eq!(
            c.rewrites.unwrap(),
            [Rewrite {
                relation: "t".into(),
                bytes_before: Some(3_538_944)
            }]
        );
        let c = pg::capture_statementwise(&before, &[]);
        assert_eq!(c.locks, None);
        assert_eq!(c.rewrites, Some(Vec::new()));
        assert!(c.not_measured.unwrap().contains("no-transaction"));
        assert!(pg::capture(&pg::Before::default(), &locked).locks.is_none());
        assert!(pg::rewritten_since(16500).contains("<= 16500"));
    }

    #[test]
    fn mysql_capture_says_what_it_could_not_read() {
        use mysql::{Touch, touch};
        let r = mysql::rebuilt("t", (Some(40), Some(1_605_632)), Some(41)).unwrap();
        assert_eq!(r.bytes_before, Some(1_605_632));
        assert_eq!(mysql::rebuilt("t", (Some(40), None), Some(40)), None);
        let c = mysql::capture(
            Ok(vec![r.clone(), r]),
            Err("the server has no metadata-lock instrumentation".into()),
            &[],
        );
        assert_eq!(c.rewrites.unwrap().len(), 1);
        assert_eq!(c.locks, None);
        assert!(c.not_measured.unwrap().contains("locks unknown"));
        let held = vec![
            ("t".to_string(), "MDL_SHARED_WRITE".to_string()),
            ("n".to_string(), "MDL_SHARED_WRITE".to_string()),
        ];
        let c = mysql::capture(Err("PROCESS".into()), Ok(Some(held)), &["n".to_string()]);
        assert_eq!(c.rewrites, None);
        assert_eq!(
            c.locks.unwrap(),
            [Lock {
                relation: "t".into(),
                mode: "MDL_SHARED_WRITE".into()
            }]
        );
        assert_eq!(
            touch("-- why\nALTER ONLINE TABLE `my``t` MODIFY v BIGINT"),
            Some(Touch::Rebuilds("my`t".into()))
        );
        assert_eq!(
            touch("alter table IF EXISTS app.orders add column c int"),
            Some(Touch::Rebuilds("orders".into()))
        );
        assert_eq!(touch("OPTIMIZE TABLE t"), Some(Touch::Rebuilds("t".into())));
        assert_eq!(
            touch("CREATE TABLE IF NOT EXISTS `n` (id INT)"),
            Some(Touch::Creates("n".into()))
        );
        assert_eq!(touch("CREATE INDEX t_v ON t (v)"), None);
        assert_eq!(touch("ALTER VIEW v AS SELECT 1"), None);
        assert_eq!(touch("INSERT INTO t VALUES (1)"), None);
        assert_eq!(
            mysql::Flavor::of_version("10.11.19-MariaDB-0+deb12u1"),
            mysql::Flavor::Mariadb
        );
        assert_eq!(mysql::Flavor::of_version("8.0.36"), mysql::Flavor::Mysql);
    }

    fn schema(rows: &[(&str, &str, &str)]) -> Schema {
        let rows: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|(k, n, d)| {
                vec![
                    Some(k.to_string()),
                    Some(n.to_string()),
                    Some(d.to_string()),
                ]
            })
            .collect();
        Schema::from_rows(&rows)
    }

    #[test]
    fn the_schema_diff_names_what_the_down_left_dropped_or_changed() {
        let before = schema(&[
            ("table", "t", "r"),
            ("column", "t.v", "integer"),
            (
                "index",
                "t_pkey",
                "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)",
            ),
        ]);
        let after = schema(&[
            ("table", "t", "r"),
            ("column", "t.v", "bigint"),
            (
                "index",
                "t_v_idx",
                "CREATE INDEX t_v_idx ON public.t USING btree (v)",
            ),
        ]);
        let d = diff(&before, &after);
        let text: Vec<String> = d.iter().map(Difference::to_string).collect();
        assert_eq!(
            text,
            [
                "column t.v changed: integer → bigint",
                "index t_pkey missing (CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id))",
                "index t_v_idx left behind (CREATE INDEX t_v_idx ON public.t USING btree (v))",
            ]
        );
        assert!(diff(&before, &before).is_empty());
    }

    #[test]
    fn findings_read_as_what_production_would_go_through() {
        let locks = [
            Lock {
                relation: "orders".into(),
                mode: "AccessExclusiveLock".into(),
            },
            Lock {
                relation: "items".into(),
                mode: "ShareLock".into(),
            },
            Lock {
                relation: "users".into(),
                mode: "RowExclusiveLock".into(),
            },
        ];
        let rewrites = [Rewrite {
            relation: "orders".into(),
            bytes_before: Some(2_254_857_830),
        }];
        let step = Measured {
            version: 20261110,
            name: "add_not_null",
            execution_ms: 48_200,
            locks: Some(&locks),
            rewrites: Some(&rewrites),
            not_measured: None,
        };
        let none = findings([step], &[], Gates::default());
        let text: Vec<&str> = none.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(
            text,
            [
                "20261110_add_not_null would hold SHARE on items for 48 s (blocking writes)",
                "20261110_add_not_null would hold ACCESS EXCLUSIVE on orders for 48 s and rewrite it (2.1 GB)",
            ]
        );
        assert!(failed(&none).is_empty(), "no gate, no failure");

        let gated = findings(
            [step],
            &[],
            Gates {
                max_lock_ms: Some(48_200),
                fail_on_rewrite: true,
                verify_down: false,
            },
        );
        assert_eq!(
            gated[1].gates,
            [Gate::FailOnRewrite],
            "48.2 s is not over 48.2 s"
        );
        let gated = findings(
            [step],
            &[],
            Gates {
                max_lock_ms: Some(1000),
                ..Gates::default()
            },
        );
        assert_eq!(
            failed(&gated),
            [
                "20261110_add_not_null would hold ACCESS EXCLUSIVE on orders for 48 s and rewrite it (2.1 GB) (--max-lock-ms)"
            ]
        );
    }

    #[test]
    fn an_unmeasured_migration_is_said_not_passed_silently() {
        let step = Measured {
            version: 3,
            name: "ix",
            execution_ms: 5,
            locks: None,
            rewrites: Some(&[]),
            not_measured: Some(pg::NO_TRANSACTION),
        };
        let f = findings(
            [step],
            &[],
            Gates {
                max_lock_ms: Some(1),
                ..Gates::default()
            },
        );
        assert_eq!(f.len(), 1);
        assert!(
            f[0].text.contains("--max-lock-ms could not check it"),
            "{}",
            f[0].text
        );
        assert!(f[0].gates.is_empty());
    }

    #[test]
    fn verify_down_findings_fail_their_gate() {
        let bad = VerifyDown {
            version: 2,
            name: "ix".into(),
            outcome: VerifyOutcome::SchemaDiffers,
            file: None,
            line: None,
            message: None,
            differences: vec![Difference {
                kind: "index".into(),
                name: "t_v".into(),
                change: Change::LeftBehind,
                before: None,
                after: Some("CREATE INDEX t_v ON public.t USING btree (v)".into()),
            }],
        };
        let failed_down = VerifyDown {
            version: 3,
            name: "bad".into(),
            outcome: VerifyOutcome::DownFailed,
            file: Some("3_bad.down.sql".into()),
            line: Some(2),
            message: Some("[42P01] relation \"nope\" does not exist".into()),
            differences: Vec::new(),
        };
        let ok = VerifyDown {
            outcome: VerifyOutcome::Ok,
            differences: Vec::new(),
            ..bad.clone()
        };
        let gates = Gates {
            verify_down: true,
            ..Gates::default()
        };
        let f = findings([], &[bad, failed_down, ok], gates);
        assert_eq!(
            failed(&f),
            [
                "2_ix: down does not undo up: index t_v left behind (CREATE INDEX t_v ON public.t USING btree (v)) (--verify-down)",
                "3_bad: down failed at 3_bad.down.sql:2: [42P01] relation \"nope\" does not exist (--verify-down)",
            ]
        );
    }

    #[test]
    fn sizes_and_times_read_like_a_person_would_write_them() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(8192), "8.0 kB");
        assert_eq!(bytes(3_538_944), "3.4 MB");
        assert_eq!(bytes(2_254_857_830), "2.1 GB");
        assert_eq!(held(850), "850 ms");
        assert_eq!(held(4_230), "4.2 s");
        assert_eq!(held(48_200), "48 s");
        assert_eq!(held(125_000), "2 min 05 s");
    }
}
