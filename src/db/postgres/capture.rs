//! The rehearsal capture on PostgreSQL: where the fragments of
//! `migrator_core::rehearsal::pg` go in what the driver sends, and how their
//! rows come back. Kept apart so the splice points stay obvious:
//!
//! - "before" ([`pg::BEFORE`]) goes right after `BEGIN` in the message that
//!   carries the script ([`begin`]);
//! - "after" ([`pg::AFTER`]) goes just before the history row and `COMMIT`,
//!   pipelined with them: the same round trip, no extra one per migration.
//!
//! Whoever sends BEGIN, the script, the history row and COMMIT in one message
//! puts [`begin`] first and [`pg::AFTER`] between the script and the history
//! row, and hands every row of the results to [`Rows::take`].

use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

use migrator_core::rehearsal::{Capture, pg};

/// What opens a transactional migration: `BEGIN;`, then the "before"
/// fragment when capturing. Contains one `;` per statement (the driver counts
/// them to locate a failing statement by the server's count).
pub fn begin(capture: bool) -> String {
    if capture {
        format!("BEGIN;\n{};\n", pg::BEFORE)
    } else {
        "BEGIN;\n".to_string()
    }
}

fn text(row: &SimpleQueryRow) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| row.get(i).map(str::to_string))
        .collect()
}

fn tagged(row: &SimpleQueryRow, tag: &str) -> bool {
    row.columns().first().is_some_and(|c| c.name() == tag)
}

/// The capture's rows among the results of a message that also carries the
/// script (whose own SELECTs return rows too): told apart by the first
/// column's name.
#[derive(Debug, Default)]
pub struct Rows {
    pub before: pg::Before,
    pub locked: Vec<pg::Locked>,
}

impl Rows {
    /// Keeps `msg` when it is a row of either fragment.
    pub fn take(&mut self, msg: &SimpleQueryMessage) {
        let SimpleQueryMessage::Row(row) = msg else {
            return;
        };
        if tagged(row, pg::BEFORE_TAG) {
            self.before.take(&text(row));
        } else if tagged(row, pg::AFTER_TAG) {
            self.locked.extend(pg::after_row(&text(row)));
        }
    }

    pub fn capture(&self) -> Capture {
        pg::capture(&self.before, &self.locked)
    }

    /// The rows of whole messages (the no-transaction path runs the
    /// fragments on their own).
    pub fn from(messages: &[SimpleQueryMessage]) -> Rows {
        let mut rows = Rows::default();
        for m in messages {
            rows.take(m);
        }
        rows
    }
}

/// Every row as text, for the schema query.
pub fn all_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(text(r)),
            _ => None,
        })
        .collect()
}
