//! What `status` shows: every applied and pending migration and how each one
//! stands against its file. Pure: built from files and history rows.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{HistoryRow, RowStatus, current_version, dirty_row};
use crate::migration::{Migration, Order, Version};

/// How an applied migration stands against its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    Ok,
    /// The file changed after it was applied.
    Changed,
    /// The file is gone.
    Missing,
}

/// One history row, as `status` shows it. Borrows from the rows: `status`
/// over 10,000 applied migrations holds each name and checksum once.
#[derive(Debug, Clone, Serialize)]
pub struct Applied<'a> {
    pub version: Version,
    pub name: &'a str,
    pub checksum: &'a str,
    /// `None` for a version taken over from another tool without a time.
    pub applied_at: Option<&'a str>,
    pub execution_ms: i64,
    pub status: RowStatus,
    pub file: FileState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pending<'a> {
    pub version: Version,
    pub name: &'a str,
    /// Older than the current version: refused unless --allow-out-of-order.
    pub out_of_order: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status<'a> {
    pub current_version: Option<Version>,
    pub dirty: bool,
    pub applied: Vec<Applied<'a>>,
    pub pending: Vec<Pending<'a>>,
}

pub fn build<'a>(files: &'a [Migration], rows: &'a [HistoryRow]) -> Status<'a> {
    let by_version: BTreeMap<Version, &Migration> = files.iter().map(|m| (m.version, m)).collect();
    let order = Order::of(files);
    let current = current_version(rows, order);
    let recorded: BTreeSet<Version> = rows.iter().map(|r| r.version).collect();
    Status {
        current_version: current,
        dirty: dirty_row(rows).is_some(),
        applied: {
            let mut in_order: Vec<&HistoryRow> = rows.iter().collect();
            in_order.sort_by(|a, b| order.cmp(a.version, b.version));
            in_order
        }
        .into_iter()
        .map(|r| Applied {
            version: r.version,
            name: &r.name,
            checksum: &r.checksum,
            applied_at: Some(r.applied_at.as_str()).filter(|t| !t.is_empty()),
            execution_ms: r.execution_ms,
            status: r.status,
            file: match by_version.get(&r.version) {
                None => FileState::Missing,
                Some(m) if m.checksum != r.checksum => FileState::Changed,
                Some(_) => FileState::Ok,
            },
            error: r.error.as_deref(),
        })
        .collect(),
        pending: files
            .iter()
            .filter(|m| !recorded.contains(&m.version))
            .map(|m| Pending {
                version: m.version,
                name: &m.name,
                out_of_order: current.is_some_and(|c| order.lt(m.version, c)),
            })
            .collect(),
    }
}

impl Status<'_> {
    /// The human table printed by `status`, line by line (no line ends): a
    /// caller prints them as they come instead of holding the whole text.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        let current = self
            .current_version
            .map_or_else(|| "none".to_string(), |v| v.to_string());
        // A dirty row is not applied: it is counted and labelled by its status.
        let applied = self
            .applied
            .iter()
            .filter(|a| a.status == RowStatus::Applied)
            .count();
        let dirty = self.applied.len() - applied;
        let head = format!(
            "version {current}{}: {applied} applied, {}{} pending",
            if self.dirty { " (dirty)" } else { "" },
            if dirty > 0 {
                format!("{dirty} dirty, ")
            } else {
                String::new()
            },
            self.pending.len()
        );
        let applied = self.applied.iter().map(|a| {
            let note = match a.file {
                FileState::Ok => "",
                FileState::Changed => "  [FILE CHANGED]",
                FileState::Missing => "  [FILE MISSING]",
            };
            format!(
                "  {:<13}  {:>14}  {:<40} {:<24}  {:>6} ms{note}",
                a.status.as_str(),
                a.version,
                a.name,
                a.applied_at.unwrap_or("-"),
                a.execution_ms,
            )
        });
        let pending = self.pending.iter().map(|p| {
            format!(
                "  {:<13}  {:>14}  {}{}",
                "pending",
                p.version,
                p.name,
                if p.out_of_order {
                    "  [OUT OF ORDER]"
                } else {
                    ""
                }
            )
        });
        std::iter::once(head).chain(applied).chain(pending)
    }

    /// The whole table as one text (each line ended).
    pub fn render(&self) -> String {
        self.lines().map(|l| l + "\n").collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{file, row};

    #[test]
    fn status_marks_changed_missing_dirty_and_out_of_order() {
        let mut files: Vec<_> = [1, 2, 3, 5].map(|v| file(v, true)).into();
        files[0].checksum = "edited".into();
        let rows = vec![
            row(1, RowStatus::Applied),
            row(4, RowStatus::Applied),
            row(5, RowStatus::Failed),
        ];
        let s = build(&files, &rows);
        assert_eq!(s.current_version, Some(4));
        assert!(s.dirty);
        let states: Vec<_> = s.applied.iter().map(|a| a.file).collect();
        assert_eq!(
            states,
            [FileState::Changed, FileState::Missing, FileState::Ok]
        );
        let pending: Vec<_> = s
            .pending
            .iter()
            .map(|p| (p.version, p.out_of_order))
            .collect();
        assert_eq!(pending, [(2, true), (3, true)]);
        let text = s.render();
        assert!(
            text.contains("FILE CHANGED") && text.contains("OUT OF ORDER"),
            "{text}"
        );
        // The failed row is not counted as applied, nor shown as "applied".
        assert!(
            text.starts_with("version 4 (dirty): 2 applied, 1 dirty, 2 pending\n"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with("failed") && l.contains(" 5 ")),
            "{text}"
        );
        assert!(!text.contains("FAILED"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["current_version"], 4);
        assert_eq!(json["applied"][0]["file"], "changed");

        let mut adopted = row(1, RowStatus::Applied);
        adopted.applied_at = String::new();
        let json = serde_json::to_value(build(&files, &[adopted])).unwrap();
        assert_eq!(json["applied"][0]["applied_at"], serde_json::Value::Null);
    }
}
