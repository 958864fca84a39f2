//! The run report: the facts of one run, for `--output json`, `--report FILE` and
//! Slack. Field names are a public, documented schema (README): add, never rename.
//!
//! Pure data and formatting; writing it anywhere is the caller's job.

use serde::Serialize;

use crate::error::{Error, Failure, Refusal};
use crate::migration::{Engine, Version};
use crate::rehearsal::{Finding, Lock, Rewrite, VerifyDown};

/// Bumped only on an incompatible change of the schema below. 2: the outcome
/// `rehearsal_failed` (exit 8), and each applied step's `locks`, `rewrites`
/// and `not_measured`; `findings` and `verify_down`.
pub const REPORT_SCHEMA: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    NothingToDo,
    Failed,
    Refused,
    Interrupted,
    /// Configuration, connection or lock errors: nothing ran.
    Error,
    /// Every migration ran, and a rehearsal gate (`--max-lock-ms`,
    /// `--fail-on-rewrite`, `--verify-down`) failed: exit 8.
    RehearsalFailed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::NothingToDo => "nothing to do",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Interrupted => "interrupted",
            Outcome::Error => "error",
            Outcome::RehearsalFailed => "rehearsal failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// The database, as it may be shown: never a user name or a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub name: String,
}

impl std::fmt::Display for DatabaseInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{}/{}",
            self.engine, self.host, self.port, self.name
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub version: Version,
    pub name: String,
    pub direction: Direction,
    pub execution_ms: u64,
    /// The locks it held on relations that existed before it, strongest per
    /// relation; `None`: not measured (`not_measured` says why).
    pub locks: Option<Vec<Lock>>,
    /// The pre-existing tables it rewrote; `None`: not measured.
    pub rewrites: Option<Vec<Rewrite>>,
    /// What of `locks` and `rewrites` the server could not tell, and why.
    pub not_measured: Option<String>,
}

impl StepReport {
    /// A step with nothing measured (yet): planned, or run without capture.
    pub fn new(version: Version, name: &str, direction: Direction, execution_ms: u64) -> Self {
        StepReport {
            version,
            name: name.to_string(),
            direction,
            execution_ms,
            locks: None,
            rewrites: None,
            not_measured: None,
        }
    }

    /// What the findings are computed from.
    pub fn measured(&self) -> crate::rehearsal::Measured<'_> {
        crate::rehearsal::Measured {
            version: self.version,
            name: &self.name,
            execution_ms: self.execution_ms,
            locks: self.locks.as_deref(),
            rewrites: self.rewrites.as_deref(),
            not_measured: self.not_measured.as_deref(),
        }
    }
}

/// Where the run happened, as far as the environment tells: CodeBuild and the
/// ECS task. Every field is optional; an empty context is the norm on a laptop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Context {
    /// `CODEBUILD_BUILD_ID`.
    pub build_id: Option<String>,
    /// `CODEBUILD_BUILD_URL`: the build's console page.
    pub build_url: Option<String>,
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: the commit being deployed.
    pub commit: Option<String>,
    /// The ECS task ARN, from the task metadata endpoint.
    pub task_arn: Option<String>,
    /// The CloudWatch log group and stream of this container (awslogs driver).
    pub log_group: Option<String>,
    pub log_stream: Option<String>,
    /// A console link to the log stream.
    pub log_url: Option<String>,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

/// What became of the Slack notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Not tried yet: the report file is written once before the notification
    /// is tried and rewritten after.
    Pending,
    Sent,
    /// Not configured, or not wanted for this outcome (`--notify`).
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub status: NotificationStatus,
    /// Why it was skipped, or why it failed (Slack's status and answer).
    pub detail: Option<String>,
    /// HTTP requests made.
    pub attempts: u32,
}

impl Notification {
    pub fn pending() -> Self {
        Notification {
            status: NotificationStatus::Pending,
            detail: None,
            attempts: 0,
        }
    }

    pub fn skipped(why: impl Into<String>) -> Self {
        Notification {
            status: NotificationStatus::Skipped,
            detail: Some(why.into()),
            attempts: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub schema: u32,
    pub migrator_version: &'static str,
    pub command: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub environment: Option<String>,
    pub database: Option<DatabaseInfo>,
    pub dry_run: bool,
    pub version_before: Option<Version>,
    pub version_after: Option<Version>,
    /// What ran and finished (for `down`: what was reverted), in order.
    pub applied: Vec<StepReport>,
    /// What was planned and did not run (the rest after a failure, or all of a dry run).
    pub not_run: Vec<StepReport>,
    pub failure: Option<Failure>,
    pub refusals: Vec<Refusal>,
    /// Another tool's history taken over by this run, if any.
    pub adopted: Option<Adoption>,
    /// `--init-sql` values run at the start of every session, in order (a value
    /// containing a registered secret shows it masked).
    pub init_sql: Vec<String>,
    /// History rows `force`, `baseline` and `repair` wrote without running
    /// migration SQL.
    pub history_changes: HistoryChanges,
    /// What production would go through, one line per migration and relation
    /// (locks that block writers, rewrites), then what `--verify-down` found
    /// wrong; each with the gates it failed.
    pub findings: Vec<Finding>,
    /// `--verify-down`: one entry per migration applied with a down script.
    pub verify_down: Vec<VerifyDown>,
    /// The error message for any other error (connection, lock, configuration).
    pub error: Option<String>,
    pub duration_ms: u64,
    pub context: Context,
    pub notification: Notification,
    /// Migrations whose fate a lost connection left in doubt (it broke after
    /// the request was sent), and what the history said on a new connection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_doubt: Vec<InDoubt>,
}

/// A migration in flight when the connection was lost, settled by reading its
/// history row on a new connection once the old session was gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InDoubt {
    pub version: Version,
    pub name: String,
    pub direction: Direction,
    pub settled: Settled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settled {
    /// Its history row says applied (down: the row is gone): it committed.
    Applied,
    /// As before the run: nothing of it committed.
    NotApplied,
    /// Its row says running/failed: half applied, `force` recovers.
    Dirty,
    /// Not settled: no new connection could be opened to read the row.
    Unknown,
}

impl Settled {
    pub fn label(self) -> &'static str {
        match self {
            Settled::Applied => "applied",
            Settled::NotApplied => "not applied",
            Settled::Dirty => "dirty (half applied)",
            Settled::Unknown => "unknown (no new connection)",
        }
    }
}

impl std::fmt::Display for InDoubt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match (self.direction, self.settled) {
            (Direction::Down, Settled::Applied) => "reverted",
            (Direction::Down, Settled::NotApplied) => "not reverted",
            (_, s) => s.label(),
        };
        write!(
            f,
            "{}_{}: in doubt, settled: {what}",
            self.version, self.name
        )
    }
}

impl RunReport {
    pub fn new(command: &str) -> Self {
        RunReport {
            schema: REPORT_SCHEMA,
            migrator_version: env!("CARGO_PKG_VERSION"),
            command: command.to_string(),
            outcome: Outcome::Success,
            exit_code: 0,
            environment: None,
            database: None,
            dry_run: false,
            version_before: None,
            version_after: None,
            applied: Vec::new(),
            not_run: Vec::new(),
            failure: None,
            refusals: Vec::new(),
            adopted: None,
            init_sql: Vec::new(),
            history_changes: HistoryChanges::default(),
            findings: Vec::new(),
            verify_down: Vec::new(),
            error: None,
            duration_ms: 0,
            context: Context::default(),
            notification: Notification::pending(),
            in_doubt: Vec::new(),
        }
    }

    /// Records how the run ended: the outcome, exit code and error facts.
    pub fn finish(&mut self, result: &Result<(), Error>) {
        match result {
            Ok(()) => {
                // force and baseline write the history without running anything;
                // any history row written (repair too) is a change.
                self.outcome = if self.applied.is_empty()
                    && self.history_changes.is_empty()
                    && !self.bookkeeping()
                {
                    Outcome::NothingToDo
                } else {
                    Outcome::Success
                };
                self.exit_code = 0;
            }
            Err(err) => {
                self.exit_code = err.exit_status().code();
                self.outcome = match err {
                    Error::MigrationFailed(f) => {
                        self.failure = Some((**f).clone());
                        Outcome::Failed
                    }
                    Error::Refused(r) => {
                        self.refusals = r.clone();
                        Outcome::Refused
                    }
                    Error::Interrupted { .. } => Outcome::Interrupted,
                    Error::Rehearsal(_) => Outcome::RehearsalFailed,
                    _ => Outcome::Error,
                };
                if !matches!(err, Error::MigrationFailed(_) | Error::Refused(_)) {
                    self.error = Some(err.to_string());
                }
            }
        }
    }

    /// `force` or `baseline`: history written, no migration SQL run.
    fn bookkeeping(&self) -> bool {
        matches!(self.command.as_str(), "force" | "baseline")
    }

    /// The human summary printed on stdout at the end of `up`/`down`.
    pub fn summary(&self) -> String {
        let version = |v: Option<Version>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        let verb = if self.command == "down" {
            "reverted"
        } else {
            "applied"
        };
        let mut out = String::new();
        if self.dry_run {
            if self.not_run.is_empty() {
                out.push_str("dry run: nothing to do\n");
            } else {
                out.push_str(&format!(
                    "dry run: would have {verb} {} migration(s):\n",
                    self.not_run.len()
                ));
                for s in &self.not_run {
                    out.push_str(&format!("  {}_{}\n", s.version, s.name));
                }
            }
            out.push_str(&format!("version {}\n", version(self.version_before)));
            return out;
        }
        match self.outcome {
            // force, baseline, repair: what the history now says, and the rows.
            Outcome::Success
                if self.applied.is_empty()
                    && (self.bookkeeping() || !self.history_changes.is_empty()) =>
            {
                out.push_str(&format!(
                    "{}: version {} -> {}; history rewritten, no migration SQL was run\n",
                    self.command,
                    version(self.version_before),
                    version(self.version_after)
                ));
                if !self.history_changes.is_empty() {
                    out.push_str(&format!("  {}\n", self.history_changes));
                }
            }
            Outcome::NothingToDo => out.push_str(&format!(
                "nothing to do: version {}\n",
                version(self.version_after)
            )),
            _ => {
                out.push_str(&format!(
                    "{}: {verb} {} migration(s) in {} ms, version {} -> {}\n",
                    self.outcome.label(),
                    self.applied.len(),
                    self.duration_ms,
                    version(self.version_before),
                    version(self.version_after)
                ));
                for s in &self.applied {
                    out.push_str(&format!(
                        "  {}_{} ({} ms)\n",
                        s.version, s.name, s.execution_ms
                    ));
                }
            }
        }
        for d in &self.in_doubt {
            out.push_str(&format!("  {d}\n"));
        }
        if !self.findings.is_empty() {
            out.push_str("findings:\n");
            for f in &self.findings {
                let failed: Vec<&str> = f.gates.iter().map(|g| g.flag()).collect();
                if failed.is_empty() {
                    out.push_str(&format!("  {}\n", f.text));
                } else {
                    out.push_str(&format!("  {} (fails {})\n", f.text, failed.join(", ")));
                }
            }
        }
        let ok = self
            .verify_down
            .iter()
            .filter(|v| v.outcome == crate::rehearsal::VerifyOutcome::Ok)
            .count();
        if ok > 0 {
            out.push_str(&format!(
                "verify-down: {ok} of {} down script(s) undo their up\n",
                self.verify_down.len()
            ));
        }
        out
    }
}

/// The history rows a run wrote without running migration SQL (`force`,
/// `baseline`), by version: a change like any other, for the report and Slack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryChanges {
    /// Versions recorded as applied.
    pub added: Vec<Version>,
    /// Versions whose row was deleted (forgotten).
    pub removed: Vec<Version>,
    /// Versions whose row was rewritten: a dirty state cleared, a checksum recorded.
    pub updated: Vec<Version>,
}

impl HistoryChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.updated.is_empty()
    }
}

/// `rows added 1, 2; removed 3; updated 4`, naming only what happened.
impl std::fmt::Display for HistoryChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            ("added", &self.added),
            ("removed", &self.removed),
            ("updated", &self.updated),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(what, v)| format!("{what} {}", versions_list(v)))
        .collect();
        if parts.is_empty() {
            f.write_str("history unchanged")
        } else {
            write!(f, "history rows {}", parts.join("; "))
        }
    }
}

/// How many runs of versions [`versions_list`] names before it counts the rest.
const LISTED_RUNS: usize = 10;

/// `1, 2, 5-9, 12`: consecutive versions as one range, and past [`LISTED_RUNS`]
/// runs only a count (`baseline 10000` records 10,000 rows; the summary and
/// Slack's 3,000-character section must still hold the line).
fn versions_list(versions: &[Version]) -> String {
    let mut runs: Vec<(Version, Version)> = Vec::new();
    for &v in versions {
        match runs.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(v) => *end = v,
            _ => runs.push((v, v)),
        }
    }
    let shown: Vec<String> = runs
        .iter()
        .take(LISTED_RUNS)
        .map(|&(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a}, {b}"),
            _ => format!("{a}-{b}"),
        })
        .collect();
    let mut out = shown.join(", ");
    if runs.len() > LISTED_RUNS {
        out.push_str(&format!(", … ({} versions in all)", versions.len()));
    }
    out
}

/// Another tool's history, taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adoption {
    pub tool: crate::adopt::Tool,
    pub table: String,
    /// How many versions were recorded as applied.
    pub versions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_changes_name_runs_of_versions_as_ranges_and_count_past_ten() {
        let c = HistoryChanges {
            added: (1..=10_000).collect(),
            removed: vec![3, 4, 7],
            updated: vec![20260101000000, 20260102000000],
        };
        assert_eq!(
            c.to_string(),
            "history rows added 1-10000; removed 3, 4, 7; updated 20260101000000, 20260102000000"
        );
        let spread = HistoryChanges {
            added: (1..=12).map(|v| v * 10).collect(),
            ..Default::default()
        };
        assert_eq!(
            spread.to_string(),
            "history rows added 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, … (12 versions in all)"
        );
    }

    #[test]
    fn finish_maps_errors_to_outcomes_and_codes() {
        let mut r = RunReport::new("up");
        r.finish(&Ok(()));
        assert_eq!(r.outcome, Outcome::NothingToDo);
        let mut r = RunReport::new("up");
        r.finish(&Err(Error::LockTimeout {
            seconds: 1,
            holder: None,
        }));
        assert_eq!((r.outcome, r.exit_code), (Outcome::Error, 4));
        assert!(r.error.unwrap().contains("lock"));
    }

    #[test]
    fn force_is_a_change_even_without_applied_migrations() {
        let mut r = RunReport::new("force");
        r.version_before = Some(3);
        r.finish(&Ok(()));
        assert_eq!(r.outcome, Outcome::Success);
        assert_eq!(
            r.summary(),
            "force: version 3 -> none; history rewritten, no migration SQL was run\n"
        );
    }

    #[test]
    fn history_changes_are_a_change() {
        let mut r = RunReport::new("force");
        r.history_changes.removed = vec![2, 3];
        r.history_changes.updated = vec![1];
        r.finish(&Ok(()));
        assert_eq!(r.outcome, Outcome::Success);
        assert_eq!(
            r.history_changes.to_string(),
            "history rows removed 2, 3; updated 1"
        );
        assert_eq!(
            r.summary(),
            "force: version none -> none; history rewritten, no migration SQL was run\n  \
             history rows removed 2, 3; updated 1\n"
        );
    }

    #[test]
    fn repair_that_rewrote_nothing_is_nothing_to_do() {
        let mut r = RunReport::new("repair");
        r.finish(&Ok(()));
        assert_eq!(r.outcome, Outcome::NothingToDo);
        r.history_changes.updated = vec![2];
        r.finish(&Ok(()));
        assert_eq!(r.outcome, Outcome::Success);
        assert!(
            r.summary()
                .starts_with("repair: version none -> none; history rewritten")
        );
    }
}
