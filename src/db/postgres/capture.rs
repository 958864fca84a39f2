//! The rehearsal capture on PostgreSQL: how the rows of the fragments of
//! `migrator_core::rehearsal::pg` come back. Where they go is the driver's
//! message (`transactional_message`):
//!
//! - "before" ([`pg::before`]) right after `BEGIN` (`Part::Before`);
//! - "after" ([`pg::AFTER`]) between the script and the history row
//!   (`Part::After`): the same round trip, no extra one per migration.
//!
//! Every row of those parts goes to [`Rows::take_row`]; the rows are also
//! told apart from the script's own by the first column's name.

use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

use migrator_core::rehearsal::{Capture, pg};

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
        if let SimpleQueryMessage::Row(row) = msg {
            self.take_row(row);
        }
    }

    /// Keeps `row` when it is a row of either fragment.
    pub fn take_row(&mut self, row: &SimpleQueryRow) {
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
