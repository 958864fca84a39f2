//! Planning and validation: which migrations run, in which order, and whether the
//! database and the files agree at all.
//!
//! Pure functions of (files, history rows, options). No IO, no clock, no database:
//! everything here is unit-tested with plain values.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Refusal};
use crate::history::{HistoryRow, RowStatus, current_version, dirty_row};
use crate::migration::{Migration, Order, Version};
use crate::report::HistoryChanges;

/// Which checks may be relaxed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// An applied version without a file is allowed.
    pub ignore_missing: bool,
    /// A pending version below the current one is allowed (and applied).
    pub allow_out_of_order: bool,
}

/// Everything that makes the database disagree with the files, dirty state first.
pub fn validate(files: &[Migration], rows: &[HistoryRow], checks: Checks) -> Vec<Refusal> {
    let mut problems = Vec::new();
    if let Some(row) = dirty_row(rows) {
        problems.push(dirty_refusal(row, rows));
    }
    let by_version: BTreeMap<Version, &Migration> = files.iter().map(|m| (m.version, m)).collect();
    for row in rows.iter().filter(|r| r.status == RowStatus::Applied) {
        match by_version.get(&row.version) {
            Some(m) if m.checksum != row.checksum && !row.checksum.is_empty() => {
                problems.push(Refusal::ChecksumMismatch {
                    version: row.version,
                    file: m.up.path.clone(),
                    applied: row.checksum.clone(),
                    current: m.checksum.clone(),
                });
            }
            Some(_) => {}
            None if checks.ignore_missing => {}
            None => problems.push(Refusal::MissingFile {
                version: row.version,
                name: row.name.clone(),
            }),
        }
    }
    let order = Order::of(files);
    if !checks.allow_out_of_order
        && let Some(current) = current_version(rows, order)
    {
        let recorded: BTreeSet<Version> = rows.iter().map(|r| r.version).collect();
        for m in files
            .iter()
            .filter(|m| order.lt(m.version, current) && !recorded.contains(&m.version))
        {
            problems.push(Refusal::OutOfOrder {
                version: m.version,
                file: m.up.path.clone(),
                current,
            });
        }
    }
    problems
}

fn dirty_refusal(row: &HistoryRow, rows: &[HistoryRow]) -> Refusal {
    let previous = rows
        .iter()
        .filter(|r| r.version < row.version && r.status == RowStatus::Applied)
        .map(|r| r.version)
        .max()
        .unwrap_or(0);
    let (done, undone) = match row.status {
        RowStatus::Reverting | RowStatus::RevertFailed => ("reverted", "restored"),
        _ => ("completed", "undid"),
    };
    let recovery = match row.status {
        RowStatus::Reverting | RowStatus::RevertFailed => format!(
            "fix the database by hand, then run `migrator force {previous} --yes` if you {done} it, \
             or `migrator force {v} --yes` if you {undone} it",
            v = row.version
        ),
        _ => format!(
            "fix the database by hand, then run `migrator force {v} --yes` if you {done} it, \
             or `migrator force {previous} --yes` if you {undone} it",
            v = row.version
        ),
    };
    Refusal::Dirty {
        version: row.version,
        name: row.name.clone(),
        status: match row.status {
            RowStatus::Running => "was started and never finished (the process died half way)",
            RowStatus::Failed => "failed half way",
            RowStatus::Reverting => "was being reverted and never finished",
            RowStatus::RevertFailed => "failed half way while being reverted",
            RowStatus::Applied => "is applied",
        }
        .to_string(),
        statement: row.failed_statement.clone(),
        error: row.error.clone(),
        recovery,
    }
}

/// The migrations `up` applies, in ascending order: every file not recorded in the
/// history, up to and including `to`.
pub fn plan_up<'a>(
    files: &'a [Migration],
    rows: &[HistoryRow],
    to: Option<Version>,
) -> Result<Vec<&'a Migration>, Error> {
    if let Some(to) = to
        && !files.iter().any(|m| m.version == to)
    {
        return Err(Error::usage(format!(
            "--to {to}: no migration file has version {to}; run `migrator status` to list them"
        )));
    }
    let recorded: BTreeSet<Version> = rows.iter().map(|r| r.version).collect();
    Ok(files
        .iter()
        .filter(|m| !recorded.contains(&m.version))
        .filter(|m| to.is_none_or(|to| !Order::of(files).lt(to, m.version)))
        .collect())
}

/// How far `down` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTarget {
    /// Revert the N most recent migrations (default 1).
    Steps(usize),
    /// Revert everything applied above this version (0 reverts all).
    To(Version),
    /// Revert everything.
    All,
}

/// The migrations `down` reverts, most recent first. Every one must still have a
/// file with a down script; otherwise nothing runs.
pub fn plan_down<'a>(
    files: &'a [Migration],
    rows: &[HistoryRow],
    target: DownTarget,
) -> Result<Vec<&'a Migration>, Error> {
    let mut applied: Vec<&HistoryRow> = rows
        .iter()
        .filter(|r| r.status == RowStatus::Applied)
        .collect();
    let order = Order::of(files);
    applied.sort_by(|a, b| order.cmp(b.version, a.version));
    let chosen: Vec<&HistoryRow> = match target {
        DownTarget::Steps(0) => {
            return Err(Error::usage(
                "down 0 reverts nothing; give a positive number of steps",
            ));
        }
        DownTarget::Steps(n) if n > applied.len() => {
            return Err(Error::usage(format!(
                "down {n}: only {} migration(s) are applied; use `down --all` to revert them all",
                applied.len()
            )));
        }
        DownTarget::Steps(n) => applied.into_iter().take(n).collect(),
        DownTarget::To(v) => {
            if v != 0 && !applied.iter().any(|r| r.version == v) {
                return Err(Error::usage(format!(
                    "--to {v}: version {v} is not applied; run `migrator status` to list applied versions \
                     (--to 0 reverts everything)"
                )));
            }
            applied
                .into_iter()
                .filter(|r| order.lt(v, r.version))
                .collect()
        }
        DownTarget::All => applied,
    };
    let by_version: BTreeMap<Version, &Migration> = files.iter().map(|m| (m.version, m)).collect();
    let mut plan = Vec::with_capacity(chosen.len());
    let mut problems = Vec::new();
    // The applied version below each chosen one, for the recovery command.
    let below = |v: Version| {
        order.last(
            rows.iter()
                .filter(|r| r.status == RowStatus::Applied && order.lt(r.version, v))
                .map(|r| r.version),
        )
    };
    for (i, row) in chosen.iter().enumerate() {
        match by_version.get(&row.version) {
            Some(m) if m.down.is_some() => plan.push(*m),
            // `--to` its own version reverts only what is above it: worth
            // saying only when something above it is reverted first.
            Some(m) if i > 0 => problems.push(format!(
                "{}: migration {} has no down script, so it cannot be reverted; add one, or stop \
                 before it with --to {}",
                m.up.path, m.version, m.version
            )),
            Some(m) => problems.push(format!(
                "{}: migration {} has no down script, so it cannot be reverted, and it is the \
                 newest applied one: add a down script, or undo it by hand and record that with \
                 `migrator force {} --yes`",
                m.up.path,
                m.version,
                below(m.version).unwrap_or(0)
            )),
            None => problems.push(format!(
                "migration {}_{} is applied but its file is missing, so it cannot be reverted",
                row.version, row.name
            )),
        }
    }
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Error::usage(problems.join("\n")))
    }
}

/// What `force VERSION` writes: the history rows to delete and the one to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcePlan {
    /// Rows above the version, deleted.
    pub delete_above: Version,
    /// Rows recorded as applied with the file's name and checksum: the forced
    /// version itself (none for `force 0`), or the edited files of `repair`.
    pub upsert: Vec<(Version, String, String)>,
    /// Dirty rows at or below the version that become applied.
    pub clear: Vec<Version>,
}

impl ForcePlan {
    /// What writing this plan over `rows` changes, row by row.
    pub fn changes(&self, rows: &[HistoryRow]) -> HistoryChanges {
        let mut changes = HistoryChanges {
            removed: rows
                .iter()
                .filter(|r| r.version > self.delete_above)
                .map(|r| r.version)
                .collect(),
            updated: self.clear.clone(),
            ..HistoryChanges::default()
        };
        for (version, _, checksum) in &self.upsert {
            match rows.iter().find(|r| r.version == *version) {
                None => changes.added.push(*version),
                Some(r) if r.status.is_dirty() || r.checksum != *checksum => {
                    changes.updated.push(*version)
                }
                Some(_) => {}
            }
        }
        changes
    }
}

/// `force VERSION`: the database is declared to be at VERSION. That version (when
/// not 0) must have a file; rows above it are removed, dirty rows at or below it
/// become applied. Versions below it that were never recorded stay unrecorded
/// (use `baseline` to mark a whole range applied).
pub fn plan_force(
    files: &[Migration],
    rows: &[HistoryRow],
    version: Version,
) -> Result<ForcePlan, Error> {
    let upsert = if version == 0 {
        Vec::new()
    } else {
        let m = files.iter().find(|m| m.version == version).ok_or_else(|| {
            Error::usage(format!(
                "force {version}: no migration file has version {version}; \
                 run `migrator status` to list them (force 0 means nothing applied)"
            ))
        })?;
        vec![(m.version, m.name.clone(), m.checksum.clone())]
    };
    let clear = rows
        .iter()
        .filter(|r| r.version < version && r.status.is_dirty())
        .map(|r| r.version)
        .collect();
    Ok(ForcePlan {
        delete_above: version,
        upsert,
        clear,
    })
}

/// `repair`: the files' current checksums recorded for applied migrations
/// whose file was edited since (Flyway's `repair`). Deletes nothing, touches no
/// dirty row (that is `force`), runs no SQL.
pub fn plan_repair(files: &[Migration], rows: &[HistoryRow]) -> ForcePlan {
    let upsert = rows
        .iter()
        .filter(|r| r.status == RowStatus::Applied)
        .filter_map(|r| {
            let m = files.iter().find(|m| m.version == r.version)?;
            (m.checksum != r.checksum).then(|| (m.version, m.name.clone(), m.checksum.clone()))
        })
        .collect();
    ForcePlan {
        delete_above: rows.iter().map(|r| r.version).max().unwrap_or(0),
        upsert,
        clear: Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::migration::{Format, Script};

    const LONG: Version = 202_511_190_914_440_000; // 2025-11-19-091444-0000
    const SHORT: Version = 20_260_120_162_913; // 2026-01-20-162913

    fn diesel(versions: &[Version]) -> Vec<Migration> {
        versions
            .iter()
            .map(|v| Migration {
                format: Format::Diesel,
                ..file(*v, true)
            })
            .collect()
    }

    #[test]
    fn text_order_is_diesels_and_numeric_order_the_others() {
        assert!(Order::Text.lt(LONG, SHORT) && Order::Numeric.lt(SHORT, LONG));
        assert!(Order::Text.lt(0, 1) && Order::Text.lt(123, 1230) && Order::Text.lt(19, 2));
        assert!(Order::Text.cmp(u64::MAX, u64::MAX).is_eq());
        assert_eq!(Order::Text.last([SHORT, LONG, 9]), Some(9));
        assert_eq!(Order::of(&diesel(&[1])), Order::Text);
        assert_eq!(Order::of(&[file(1, true)]), Order::Numeric);
    }

    #[test]
    fn a_short_diesel_version_after_a_long_one_is_pending_not_out_of_order() {
        let files = diesel(&[LONG, SHORT]);
        let rows = [row(LONG, RowStatus::Applied)];
        assert_eq!(validate(&files, &rows, Checks::default()), []);
        let planned: Vec<Version> = plan_up(&files, &rows, None)
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(planned, [SHORT]);
        assert_eq!(current_version(&rows, Order::Text), Some(LONG));
        let both = [
            row(LONG, RowStatus::Applied),
            row(SHORT, RowStatus::Applied),
        ];
        assert_eq!(current_version(&both, Order::Text), Some(SHORT));
        let down: Vec<Version> = plan_down(&files, &both, DownTarget::Steps(1))
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(
            down,
            [SHORT],
            "the newest in diesel's order is reverted first"
        );
        // And the other way round, a long version after a short one is out of order.
        let rows = [row(SHORT, RowStatus::Applied)];
        assert!(matches!(
            validate(&files, &rows, Checks::default())[..],
            [Refusal::OutOfOrder {
                version: LONG,
                current: SHORT,
                ..
            }]
        ));
    }

    pub(crate) fn file(version: Version, reversible: bool) -> Migration {
        let script = |kind: &str| Script {
            path: format!("{version}_m.{kind}.sql"),
            sql: format!("SELECT {version};"),
            first_line: 1,
            goose_annotations: false,
        };
        Migration {
            version,
            name: "m".into(),
            up: script("up"),
            down: reversible.then(|| script("down")),
            checksum: format!("sum{version}"),
            transactional: true,
            format: crate::migration::Format::GolangMigrate,
        }
    }

    pub(crate) fn row(version: Version, status: RowStatus) -> HistoryRow {
        HistoryRow {
            version,
            name: "m".into(),
            checksum: format!("sum{version}"),
            status,
            applied_at: "2026-01-01T00:00:00.000Z".into(),
            execution_ms: 1,
            failed_statement: None,
            error: None,
        }
    }

    fn versions(plan: &[&Migration]) -> Vec<Version> {
        plan.iter().map(|m| m.version).collect()
    }

    #[test]
    fn up_applies_pending_in_numeric_order_up_to_target() {
        let files: Vec<_> = [1, 2, 9, 10, 20260101000000].map(|v| file(v, true)).into();
        let rows = vec![row(1, RowStatus::Applied)];
        assert_eq!(
            versions(&plan_up(&files, &rows, None).unwrap()),
            [2, 9, 10, 20260101000000]
        );
        assert_eq!(versions(&plan_up(&files, &rows, Some(9)).unwrap()), [2, 9]);
        assert!(plan_up(&files, &rows, Some(3)).is_err(), "unknown target");
        let all: Vec<_> = [1, 2, 9, 10, 20260101000000]
            .map(|v| row(v, RowStatus::Applied))
            .into();
        assert!(plan_up(&files, &all, None).unwrap().is_empty());
    }

    #[test]
    fn down_defaults_to_one_step_and_goes_most_recent_first() {
        let files: Vec<_> = (1..=4).map(|v| file(v, true)).collect();
        let rows: Vec<_> = (1..=3).map(|v| row(v, RowStatus::Applied)).collect();
        let plan = |t| plan_down(&files, &rows, t).map(|p| versions(&p));
        assert_eq!(plan(DownTarget::Steps(1)).unwrap(), [3]);
        assert_eq!(plan(DownTarget::Steps(2)).unwrap(), [3, 2]);
        assert_eq!(plan(DownTarget::To(1)).unwrap(), [3, 2]);
        assert_eq!(plan(DownTarget::To(0)).unwrap(), [3, 2, 1]);
        assert_eq!(plan(DownTarget::All).unwrap(), [3, 2, 1]);
        assert!(plan(DownTarget::Steps(0)).is_err());
        assert!(
            plan(DownTarget::Steps(4)).is_err(),
            "more steps than applied"
        );
        assert!(plan(DownTarget::To(4)).is_err(), "target not applied");
    }

    #[test]
    fn down_refuses_irreversible_migrations_before_running_anything() {
        let files = vec![file(1, true), file(2, false), file(3, true)];
        let rows: Vec<_> = (1..=3).map(|v| row(v, RowStatus::Applied)).collect();
        let err = plan_down(&files, &rows, DownTarget::All).unwrap_err();
        assert!(err.to_string().contains("2_m.up.sql"), "{err}");
        assert!(err.to_string().contains("--to 2"), "3 reverts first: {err}");
        assert_eq!(
            versions(&plan_down(&files, &rows, DownTarget::Steps(1)).unwrap()),
            [3]
        );
        // The newest applied one is up-only: `--to 2` would revert nothing.
        let err = plan_down(&files, &rows[..2], DownTarget::Steps(1)).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("--to"), "{text}");
        assert!(text.contains("migrator force 1 --yes"), "{text}");
    }

    #[test]
    fn validate_reports_dirty_changed_missing_and_out_of_order() {
        let mut files: Vec<_> = [1, 2, 3, 5].map(|v| file(v, true)).into();
        files[1].checksum = "edited".into();
        let rows = vec![
            row(1, RowStatus::Applied),
            row(2, RowStatus::Applied),
            row(4, RowStatus::Applied),
            row(6, RowStatus::Failed),
        ];
        let problems = validate(&files, &rows, Checks::default());
        assert!(matches!(problems[0], Refusal::Dirty { version: 6, .. }));
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Refusal::ChecksumMismatch { version: 2, .. }))
        );
        assert!(
            problems
                .iter()
                .any(|p| matches!(p, Refusal::MissingFile { version: 4, .. }))
        );
        assert!(problems.iter().any(|p| matches!(
            p,
            Refusal::OutOfOrder {
                version: 3,
                current: 4,
                ..
            }
        )));
        let relaxed = validate(
            &files,
            &rows,
            Checks {
                ignore_missing: true,
                allow_out_of_order: true,
            },
        );
        assert_eq!(relaxed.len(), 2, "{relaxed:?}");
    }

    #[test]
    fn dirty_refusal_names_both_recovery_commands() {
        let rows = vec![row(3, RowStatus::Applied), row(7, RowStatus::Running)];
        let p = validate(&[file(3, true), file(7, true)], &rows, Checks::default());
        let text = p[0].to_string();
        assert!(text.contains("migrator force 7 --yes"), "{text}");
        assert!(text.contains("migrator force 3 --yes"), "{text}");
    }

    #[test]
    fn force_removes_rows_above_and_records_the_version() {
        let files: Vec<_> = (1..=3).map(|v| file(v, true)).collect();
        let rows = vec![row(1, RowStatus::Running), row(3, RowStatus::Failed)];
        let p = plan_force(&files, &rows, 2).unwrap();
        assert_eq!(p.delete_above, 2);
        assert_eq!(p.upsert, [(2, "m".into(), "sum2".into())]);
        assert_eq!(p.clear, [1]);
        assert!(plan_force(&files, &rows, 9).is_err());
        assert!(plan_force(&files, &rows, 0).unwrap().upsert.is_empty());
        let changes = p.changes(&rows);
        assert_eq!(
            (changes.added, changes.removed, changes.updated),
            (vec![2], vec![3], vec![1])
        );
        let all_gone = plan_force(&files, &rows, 0).unwrap().changes(&rows);
        assert_eq!(all_gone.removed, [1, 3], "force 0 says what it forgot");
    }

    #[test]
    fn repair_records_edited_files_only() {
        let files: Vec<_> = (1..=3).map(|v| file(v, true)).collect();
        let mut edited = row(2, RowStatus::Applied);
        edited.checksum = "old".into();
        let rows = vec![
            row(1, RowStatus::Applied),
            edited,
            row(3, RowStatus::Failed),
        ];
        let p = plan_repair(&files, &rows);
        assert_eq!(p.upsert, [(2, "m".into(), "sum2".into())]);
        let changes = p.changes(&rows);
        assert!(changes.removed.is_empty() && changes.added.is_empty());
        assert_eq!(changes.updated, [2]);
    }
}
