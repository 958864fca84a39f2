//! What the database remembers: rows of the history table, as the core sees them.
//!
//! Pure data. The SQL that reads and writes the table lives in the drivers (the `migrator` package's `db` module).

use crate::migration::{Order, Version};

/// Name of the history table (same on every engine; documented in README).
pub const TABLE: &str = "migrator_history";

/// The state of one history row. Anything but `Applied` makes the database dirty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Finished and committed.
    Applied,
    /// Started and never finished: the process died half way (MySQL DDL, no-transaction migrations).
    Running,
    /// Failed half way, after part of it was committed.
    Failed,
    /// A `down` started and never finished.
    Reverting,
    /// A `down` failed half way.
    RevertFailed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Applied => "applied",
            RowStatus::Running => "running",
            RowStatus::Failed => "failed",
            RowStatus::Reverting => "reverting",
            RowStatus::RevertFailed => "revert_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "applied" => RowStatus::Applied,
            "running" => RowStatus::Running,
            "failed" => RowStatus::Failed,
            "reverting" => RowStatus::Reverting,
            "revert_failed" => RowStatus::RevertFailed,
            _ => return None,
        })
    }

    pub fn is_dirty(self) -> bool {
        self != RowStatus::Applied
    }
}

/// One row of the history table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryRow {
    pub version: Version,
    pub name: String,
    pub checksum: String,
    pub status: RowStatus,
    /// UTC, RFC 3339 (`2026-11-22T01:02:03.456Z`), formatted by the server.
    pub applied_at: String,
    pub execution_ms: i64,
    pub failed_statement: Option<String>,
    pub error: Option<String>,
}

/// The last applied version in `order`, or `None` when nothing is applied.
pub fn current_version(rows: &[HistoryRow], order: Order) -> Option<Version> {
    order.last(
        rows.iter()
            .filter(|r| r.status == RowStatus::Applied)
            .map(|r| r.version),
    )
}

/// The row that makes the database dirty, if any (the highest one when several are).
pub fn dirty_row(rows: &[HistoryRow]) -> Option<&HistoryRow> {
    rows.iter()
        .filter(|r| r.status.is_dirty())
        .max_by_key(|r| r.version)
}
