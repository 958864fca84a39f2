//! The core model: what a migration is once its files have been read.
//!
//! Pure data. Nothing here reads files or talks to a database.

use std::fmt;

/// A migration version. Versions compare as numbers (`9 < 10`); a 14-digit
/// UTC timestamp (`20261122005600`) fits comfortably.
pub type Version = u64;

/// The largest version: PostgreSQL's `bigint` (the history table's column)
/// stops here, below `u64::MAX`.
pub const MAX_VERSION: Version = i64::MAX as u64;

/// How versions are ordered: as the tool the files come from orders them.
/// Versions stay numbers everywhere (the history table, messages, `--to`); only
/// their order differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// As numbers (`9 < 10`): golang-migrate, sqlx, refinery, dbmate, goose.
    #[default]
    Numeric,
    /// As text, the way diesel compares its versions once the dashes are
    /// removed: `202511190914440000` (`2025-11-19-091444-0000`) comes before
    /// `20260120162913` (`2026-01-20-162913`).
    Text,
}

impl Order {
    /// The order of a folder's migrations (one format per folder).
    pub fn of(files: &[Migration]) -> Order {
        match files.first().map(|m| m.format) {
            Some(Format::Diesel) => Order::Text,
            _ => Order::Numeric,
        }
    }

    pub fn cmp(self, a: Version, b: Version) -> std::cmp::Ordering {
        match self {
            Order::Numeric => a.cmp(&b),
            Order::Text => {
                // Compare the decimal digits as text without building strings:
                // scale the shorter one to the longer one's length; on a tie
                // ("123" and "1230") the shorter is first.
                let digits = |v: Version| v.checked_ilog10().unwrap_or(0) + 1;
                let (da, db) = (digits(a), digits(b));
                let scaled = |v: Version, by: u32| u128::from(v) * 10u128.pow(by);
                scaled(a, db.saturating_sub(da))
                    .cmp(&scaled(b, da.saturating_sub(db)))
                    .then(da.cmp(&db))
            }
        }
    }

    /// `a < b` in this order.
    pub fn lt(self, a: Version, b: Version) -> bool {
        self.cmp(a, b).is_lt()
    }

    /// The last of `versions` in this order.
    pub fn last(self, versions: impl IntoIterator<Item = Version>) -> Option<Version> {
        versions.into_iter().max_by(|a, b| self.cmp(*a, *b))
    }
}

/// One SQL script (the up or the down half of a migration), as it will be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Path shown to people, relative to the migrations folder
    /// (`3_add_users.up.sql`, `2021-01-01-000000_init/down.sql`).
    pub path: String,
    /// The SQL text, normalised: no byte-order mark, `\r\n` turned into `\n`.
    pub sql: String,
    /// 1-based line of the file on which `sql` starts. It is 1 for a whole file
    /// and the line after the section marker for dbmate/goose sections, so
    /// that a line inside `sql` maps back to a line of the file.
    pub first_line: usize,
    /// Lines `-- +goose StatementBegin` / `-- +goose StatementEnd` delimit
    /// statements in this script (goose format).
    pub goose_annotations: bool,
}

/// One versioned migration: an up script and, when reversible, a down script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: Version,
    /// Human name, from the file name (`add_users`).
    pub name: String,
    pub up: Script,
    pub down: Option<Script>,
    /// SHA-256 (lowercase hex) of the normalised up SQL: what was applied.
    pub checksum: String,
    /// `false` when the files carry a no-transaction marker; such a migration
    /// runs statement by statement, outside a transaction.
    pub transactional: bool,
    /// The layout its files follow (the folder's one format).
    pub format: Format,
}

impl Migration {
    /// `3_add_users`: how a migration is named in logs and messages.
    pub fn label(&self) -> String {
        format!("{}_{}", self.version, self.name)
    }
}

/// The on-disk layout a migrations folder uses. A folder uses exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// golang-migrate / sqlx: `{v}_{name}.up.sql` + `{v}_{name}.down.sql`, or up-only `{v}_{name}.sql`.
    GolangMigrate,
    /// refinery: `V{v}__{name}.sql`.
    Refinery,
    /// diesel: `{v}_{name}/up.sql` + `down.sql` (+ `metadata.toml`).
    Diesel,
    /// dbmate: one file with `-- migrate:up` / `-- migrate:down` sections.
    Dbmate,
    /// goose: one file with `-- +goose Up` / `-- +goose Down` sections.
    Goose,
}

impl Format {
    /// How a file of this format says "run me outside a transaction", and where
    /// the marker must stand: the hint for a statement that cannot run in one.
    pub fn no_transaction_marker(self) -> &'static str {
        match self {
            Format::GolangMigrate => {
                "put `-- no-transaction` on the first line of the up file (sqlx's marker)"
            }
            Format::Refinery => "add a line `-- refinery:noTransaction` to the file",
            Format::Diesel => {
                "add `run_in_transaction = false` to the migration folder's metadata.toml"
            }
            Format::Dbmate => "write the up marker as `-- migrate:up transaction:false`",
            Format::Goose => "add a line `-- +goose NO TRANSACTION` above `-- +goose Up`",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::GolangMigrate => "golang-migrate/sqlx",
            Format::Refinery => "refinery",
            Format::Diesel => "diesel",
            Format::Dbmate => "dbmate",
            Format::Goose => "goose",
        })
    }
}

/// Which SQL dialect a script is split and run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[serde(rename = "postgresql")]
    Postgres,
    Mysql,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgresql",
            Engine::Mysql => "mysql",
        })
    }
}
