//! The one error type of the crate and the one place where errors become exit codes.
//!
//! Every message names what is wrong, where, and what to do. No message ever carries
//! a password, token, secret value or webhook URL: messages are built from redacted
//! parts, and `crate::redact` scrubs whatever reaches an output anyway.

use std::fmt;

use crate::migration::Version;
use crate::source::SourceError;

/// Process exit codes, documented in README's table (a test keeps the two in step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Success, including "nothing to do".
    Success,
    /// A migration failed (rolled back, or recorded as dirty).
    MigrationFailed,
    /// Usage or configuration error; nothing changed.
    Usage,
    /// The database could not be reached (or refused the connection).
    Unreachable,
    /// The migration lock was not acquired within `--lock-timeout`.
    LockTimeout,
    /// Refused: the database disagrees with the files; nothing changed.
    Refused,
    /// The run itself was fine but the required notification failed (`--notify-required`).
    NotifyFailed,
    /// `ecs run`: RunTask started no task.
    TaskNotStarted,
    /// `ecs run`: the task stopped without the migration container's exit code
    /// (it failed to start, or the container never ran).
    TaskFailed,
    /// `ecs run`: `--timeout` was reached; the task was stopped.
    TaskTimeout,
    /// `ecs run`: the migration container's own non-zero exit code, passed through.
    TaskExit(u8),
    /// `ecs run`: the run ended while its task may still be running, and StopTask
    /// could not be sent: the task's ARN and the command that stops it are printed.
    TaskUnwatched,
    /// `rotate` refused: a cluster it would act on lacks the name prefix or our
    /// lifecycle tag, today's clone is not in a state the step can start from, or
    /// the source has no room for another clone. Nothing changed.
    RotateRefused,
    /// Interrupted by SIGINT.
    Interrupted,
    /// Terminated by SIGTERM.
    Terminated,
    /// A rehearsal gate failed (`--max-lock-ms`, `--fail-on-rewrite`,
    /// `--verify-down`); the database is left migrated.
    Rehearsal,
}

impl ExitStatus {
    /// Every status with a code of its own; `TaskExit` passes a container's
    /// code through and has none. README's exit-code table lists exactly these
    /// (tests/it/docs.rs checks it).
    pub const FIXED: [ExitStatus; 15] = [
        ExitStatus::Success,
        ExitStatus::MigrationFailed,
        ExitStatus::Usage,
        ExitStatus::Unreachable,
        ExitStatus::LockTimeout,
        ExitStatus::Refused,
        ExitStatus::NotifyFailed,
        ExitStatus::RotateRefused,
        ExitStatus::Rehearsal,
        ExitStatus::TaskNotStarted,
        ExitStatus::TaskFailed,
        ExitStatus::TaskTimeout,
        ExitStatus::Interrupted,
        ExitStatus::Terminated,
        ExitStatus::TaskUnwatched,
    ];

    /// A stable name for the status, for machines reading the logs
    /// (`--log-format json`): `usage`, `unreachable`, `lock_timeout`, ….
    pub fn name(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::MigrationFailed => "migration_failed",
            ExitStatus::Usage => "usage",
            ExitStatus::Unreachable => "unreachable",
            ExitStatus::LockTimeout => "lock_timeout",
            ExitStatus::Refused => "refused",
            ExitStatus::NotifyFailed => "notify_failed",
            ExitStatus::RotateRefused => "rotate_refused",
            ExitStatus::TaskNotStarted => "task_not_started",
            ExitStatus::TaskFailed => "task_failed",
            ExitStatus::TaskTimeout => "task_timeout",
            ExitStatus::TaskExit(_) => "task_exit",
            ExitStatus::TaskUnwatched => "task_unwatched",
            ExitStatus::Interrupted => "interrupted",
            ExitStatus::Terminated => "terminated",
            ExitStatus::Rehearsal => "rehearsal_failed",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::MigrationFailed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Unreachable => 3,
            ExitStatus::LockTimeout => 4,
            ExitStatus::Refused => 5,
            ExitStatus::NotifyFailed => 6,
            ExitStatus::RotateRefused => 7,
            ExitStatus::Rehearsal => 8,
            ExitStatus::TaskNotStarted => 10,
            ExitStatus::TaskFailed => 11,
            ExitStatus::TaskTimeout => 12,
            ExitStatus::TaskExit(code) => code,
            ExitStatus::TaskUnwatched => 9,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
        }
    }
}

/// Which signal stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Signal {
    Sigint,
    Sigterm,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Signal::Sigint => "SIGINT",
            Signal::Sigterm => "SIGTERM",
        })
    }
}

/// A server's detail and hint as [`Failure::detail`] holds them: one line each,
/// labelled the same way whichever error carries them.
pub fn detail_lines(detail: Option<&str>, hint: Option<&str>) -> Option<String> {
    let lines: Vec<String> = [("detail", detail), ("hint", hint)]
        .into_iter()
        .filter_map(|(label, text)| text.map(|t| format!("{label}: {}", t.trim())))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Where and why a migration's statement failed, mapped back into its file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub version: Version,
    pub name: String,
    /// Path of the script, relative to the migrations folder.
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The failing statement, whole (reports shorten it where they need to).
    pub statement: Option<String>,
    /// Server error code: SQLSTATE on PostgreSQL, error number on MySQL.
    pub code: Option<String>,
    pub message: String,
    /// Server-provided detail and hint, one labelled line each (`detail: …`,
    /// `hint: …`; see [`detail_lines`]), and our own hint, when any.
    pub detail: Option<String>,
    /// `true` when the database was left marked dirty (MySQL DDL, or a
    /// no-transaction migration that had already changed something).
    pub dirty: bool,
    /// The version before this migration, for the recovery command.
    pub previous_version: Option<Version>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "migration {}_{} failed at {}",
            self.version, self.name, self.file
        )?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        match &self.code {
            Some(code) => write!(f, ": [{code}] {}", self.message)?,
            None => write!(f, ": {}", self.message)?,
        }
        for line in self.detail.iter().flat_map(|d| d.lines()) {
            write!(f, "\n  {line}")?;
        }
        if let Some(stmt) = &self.statement {
            write!(f, "\n  statement: {}", crate::text::sql_excerpt(stmt, 300))?;
        }
        if self.dirty {
            write!(
                f,
                "\n  the database is marked dirty at version {v}: fix it by hand, then run \
                 `migrator force {v} --yes` if the migration is now complete, or \
                 `migrator force {p} --yes` if you undid it",
                v = self.version,
                p = self.previous_version.unwrap_or(0)
            )?;
        } else {
            write!(
                f,
                "\n  rolled back: the database is unchanged by this migration"
            )?;
        }
        Ok(())
    }
}

/// Why the database and the files disagree (exit 5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// A migration is recorded as started or failed and never finished.
    Dirty {
        version: Version,
        name: String,
        status: String,
        statement: Option<String>,
        error: Option<String>,
        recovery: String,
    },
    /// An applied migration's file changed since it was applied.
    ChecksumMismatch {
        version: Version,
        file: String,
        applied: String,
        current: String,
    },
    /// An applied migration has no file any more.
    MissingFile { version: Version, name: String },
    /// A pending migration has a version below the current one.
    OutOfOrder {
        version: Version,
        file: String,
        current: Version,
    },
    /// Another tool's history was found but is itself in a failed state.
    ForeignDirty { table: String, detail: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Dirty {
                version,
                name,
                status,
                statement,
                error,
                recovery,
            } => {
                write!(f, "database is dirty: migration {version}_{name} {status}")?;
                if let Some(e) = error {
                    write!(f, "\n  error: {e}")?;
                }
                if let Some(s) = statement {
                    write!(f, "\n  statement: {}", crate::text::sql_excerpt(s, 300))?;
                }
                write!(f, "\n  {recovery}")
            }
            Refusal::ChecksumMismatch {
                version,
                file,
                applied,
                current,
            } => write!(
                f,
                "{file}: migration {version} was changed after it was applied \
                 (checksum applied {applied}, file now {current}); restore the file, \
                 or write a new migration for the change (an edit that changes nothing \
                 the database sees: `migrator repair --yes` records the new checksum)"
            ),
            Refusal::MissingFile { version, name } => write!(
                f,
                "migration {version}_{name} is applied but its file is missing; restore it, \
                 or pass --ignore-missing"
            ),
            Refusal::OutOfOrder {
                version,
                file,
                current,
            } => write!(
                f,
                "{file}: migration {version} is pending but older than the current version \
                 {current}; give it a newer version, or pass --allow-out-of-order"
            ),
            Refusal::ForeignDirty { table, detail } => write!(
                f,
                "the history in {table} is in a failed state ({detail}); repair it with the tool \
                 that wrote it, or pass --no-adopt and baseline by hand"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line, configuration or environment. Nothing changed.
    #[error("{message}")]
    Usage { message: String },

    /// The migration files are unusable. Nothing changed.
    #[error("migration files are invalid:\n{0}")]
    Source(#[from] SourceError),

    /// A script could not be split into statements. Nothing changed.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// `down`/`force` without `--yes`: the plan was printed, nothing ran.
    #[error("{0}")]
    NotConfirmed(String),

    #[error("cannot connect to {target}: {message}")]
    Unreachable { target: String, message: String },

    #[error(
        "migration lock not acquired within {seconds}s{holder}; another runner is busy, \
         raise --lock-timeout or find the holder",
        holder = .holder.as_deref().map(|h| format!(" (held by {h})")).unwrap_or_default()
    )]
    LockTimeout {
        seconds: u64,
        holder: Option<String>,
    },

    #[error("refused, nothing changed:{}", .0.iter().map(|r| format!("\n- {r}")).collect::<String>())]
    Refused(Vec<Refusal>),

    #[error("{0}")]
    MigrationFailed(Box<Failure>),

    /// A database error outside a migration's own SQL (history table, lock, lost connection).
    #[error("database error while {doing}: {message}")]
    Database { doing: String, message: String },

    #[error("interrupted by {signal}{detail}", detail = .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Interrupted {
        signal: Signal,
        detail: Option<String>,
    },

    #[error("notification failed: {0}")]
    NotifyFailed(String),

    /// `ecs run`: RunTask started no task. Nothing ran.
    #[error("RunTask started no task of {task_definition} on cluster {cluster}: {reasons}")]
    TaskNotStarted {
        cluster: String,
        task_definition: String,
        reasons: String,
    },

    /// `ecs run`: the task stopped without an exit code for the migration container.
    #[error("{0}")]
    TaskFailed(String),

    /// `ecs run`: `--timeout` was reached and the task was stopped (or asked to stop).
    #[error("task {task} was still running after --timeout {timeout}: {stopped}")]
    TaskTimeout {
        task: String,
        timeout: String,
        stopped: String,
    },

    /// `ecs run`: the migration container exited non-zero; its code becomes ours.
    #[error("container `{container}` of task {task} exited with code {code}")]
    TaskExited {
        task: String,
        container: String,
        code: u8,
    },
    /// `ecs run`: we stop following a task that may still be running and could
    /// not stop it; the message names it and the command that stops it.
    #[error(
        "{why}; task {task} may still be running and migrator could not stop it: stop it with \
         `{command}`",
        command = crate::ecs::stop_command(.cluster, .task)
    )]
    TaskUnwatched {
        task: String,
        cluster: String,
        why: String,
    },
    /// The clone rotation would not act: the safety rule, the lifecycle order or
    /// the clone limit said no. Nothing changed.
    #[error("refused, nothing changed: {0}")]
    RotateRefused(String),
    /// A rehearsal gate failed: each line a finding with the gates it failed.
    /// Every migration ran; the database is left migrated.
    #[error(
        "rehearsal failed: what production would go through:{}\n  the database is left migrated",
        .0.iter().map(|f| format!("\n- {f}")).collect::<String>()
    )]
    Rehearsal(Vec<String>),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }

    pub fn database(doing: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Database {
            doing: doing.into(),
            message: message.to_string(),
        }
    }

    /// The single mapping from errors to process exit codes.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage { .. }
            | Error::Source(_)
            | Error::Syntax { .. }
            | Error::NotConfirmed(_) => ExitStatus::Usage,
            Error::Unreachable { .. } => ExitStatus::Unreachable,
            Error::LockTimeout { .. } => ExitStatus::LockTimeout,
            Error::Refused(_) => ExitStatus::Refused,
            Error::MigrationFailed(_) | Error::Database { .. } => ExitStatus::MigrationFailed,
            Error::Interrupted {
                signal: Signal::Sigint,
                ..
            } => ExitStatus::Interrupted,
            Error::Interrupted {
                signal: Signal::Sigterm,
                ..
            } => ExitStatus::Terminated,
            Error::NotifyFailed(_) => ExitStatus::NotifyFailed,
            Error::TaskNotStarted { .. } => ExitStatus::TaskNotStarted,
            Error::TaskFailed(_) => ExitStatus::TaskFailed,
            Error::TaskTimeout { .. } => ExitStatus::TaskTimeout,
            Error::TaskExited { code, .. } => ExitStatus::TaskExit(*code),
            Error::TaskUnwatched { .. } => ExitStatus::TaskUnwatched,
            Error::RotateRefused(_) => ExitStatus::RotateRefused,
            Error::Rehearsal(_) => ExitStatus::Rehearsal,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_table() {
        assert_eq!(Error::usage("x").exit_status().code(), 2);
        let unreachable = Error::Unreachable {
            target: "postgresql://h/db".into(),
            message: "refused".into(),
        };
        assert_eq!(unreachable.exit_status().code(), 3);
        let lock = Error::LockTimeout {
            seconds: 1,
            holder: None,
        };
        assert_eq!(lock.exit_status().code(), 4);
        let refused = Error::Refused(vec![Refusal::MissingFile {
            version: 1,
            name: "a".into(),
        }]);
        assert_eq!(refused.exit_status().code(), 5);
        let int = Error::Interrupted {
            signal: Signal::Sigint,
            detail: None,
        };
        assert_eq!(int.exit_status().code(), 130);
        let term = Error::Interrupted {
            signal: Signal::Sigterm,
            detail: None,
        };
        assert_eq!(term.exit_status().code(), 143);
        assert_eq!(Error::NotifyFailed("x".into()).exit_status().code(), 6);
        let not_started = Error::TaskNotStarted {
            cluster: "c".into(),
            task_definition: "td".into(),
            reasons: "RESOURCE:MEMORY".into(),
        };
        assert_eq!(not_started.exit_status().code(), 10);
        assert_eq!(Error::TaskFailed("x".into()).exit_status().code(), 11);
        let timeout = Error::TaskTimeout {
            task: "t".into(),
            timeout: "1m".into(),
            stopped: "stopped".into(),
        };
        assert_eq!(timeout.exit_status().code(), 12);
        for code in [1, 5, 143] {
            let exited = Error::TaskExited {
                task: "t".into(),
                container: "migrate".into(),
                code,
            };
            assert_eq!(exited.exit_status().code(), code, "passed through");
        }
        assert_eq!(Error::RotateRefused("x".into()).exit_status().code(), 7);
        let unwatched = Error::TaskUnwatched {
            task: "arn:aws:ecs:eu-west-1:1:task/deploy/abc".into(),
            cluster: "deploy".into(),
            why: "StopTask failed".into(),
        };
        assert_eq!(unwatched.exit_status().code(), 9);
        assert!(
            unwatched.to_string().contains(
                "`aws ecs stop-task --region eu-west-1 --cluster deploy --task \
                 arn:aws:ecs:eu-west-1:1:task/deploy/abc`"
            ),
            "{unwatched}"
        );
        assert_eq!(Error::Rehearsal(vec!["x".into()]).exit_status().code(), 8);
    }

    #[test]
    fn dirty_failure_names_the_recovery_command() {
        let f = Failure {
            version: 7,
            name: "add_users".into(),
            file: "7_add_users.up.sql".into(),
            line: Some(3),
            column: Some(5),
            statement: Some("CREATE TABLE x".into()),
            code: Some("1050".into()),
            message: "Table 'x' already exists".into(),
            detail: None,
            dirty: true,
            previous_version: Some(4),
        };
        let text = f.to_string();
        assert!(text.contains("7_add_users.up.sql:3:5"), "{text}");
        assert!(text.contains("[1050]"), "{text}");
        assert!(text.contains("migrator force 7 --yes"), "{text}");
        assert!(text.contains("migrator force 4 --yes"), "{text}");
    }
}
