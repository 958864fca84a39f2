//! The plain, resolved settings every command receives.
//!
//! `cli` builds them from the command line and the environment; nothing else
//! knows clap. This module imports no other module of the crate: it is the leaf
//! every layer may read.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use migrator_core::conn::TlsMode;
use migrator_core::ecs::RunSpec;
use migrator_core::migration::Version;
use migrator_core::plan::{Checks, DownTarget};
use migrator_core::rehearsal::Gates;
use migrator_core::report::{Outcome, RunReport};
use migrator_core::rotate::plan::Day;

/// Human text or JSON: the form of the results on stdout (`--output`) and of
/// the log lines on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// `--log-format`.
pub type LogFormat = Format;
/// `--output`.
pub type OutputFormat = Format;

/// Where the connection comes from, besides `--database-url`.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub db_secret: Option<String>,
    pub rds_cluster: Option<String>,
    pub iam_auth: bool,
    pub tls: Option<TlsMode>,
    pub ca_file: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub name: Option<String>,
    pub user: Option<String>,
}

impl Connection {
    /// Any AWS source in play: then TLS defaults to verify-full.
    pub fn uses_aws(&self) -> bool {
        self.db_secret.is_some() || self.rds_cluster.is_some() || self.iam_auth
    }
}

/// Settings shared by every command, free of clap.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: Option<String>,
    pub connection: Connection,
    /// The migrations folder, and whether the user named it (flag or env).
    pub path: PathBuf,
    pub path_explicit: bool,
    pub lock_timeout: Duration,
    pub wait: Option<Duration>,
    /// Bounds one connection attempt: TCP connect, TLS and authentication.
    pub connect_timeout: Duration,
    /// `--link-timeout`: how long a connection may stay silent before it is
    /// declared dead (keepalive, TCP_USER_TIMEOUT, the session check); `None`: never.
    pub link_timeout: Option<Duration>,
    pub output: OutputFormat,
    pub report: Option<PathBuf>,
    pub checks: Checks,
    pub adopt: bool,
    /// `--init-sql`: run at the start of every session, in order.
    pub init_sql: Vec<String>,
    pub env_label: Option<String>,
    pub protected_envs: Vec<String>,
    pub confirm_env: Option<String>,
    pub notify: NotifySettings,
    /// `up`'s rehearsal gates and the capture switch.
    pub rehearsal: Rehearsal,
}

/// What a run measures of its migrations and which findings fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rehearsal {
    /// `--max-lock-ms`, `--fail-on-rewrite`, `--verify-down` (`up` only).
    pub gates: Gates,
    /// Read each migration's locks and rewrites (off: `--no-capture`).
    pub capture: bool,
}

impl Default for Rehearsal {
    fn default() -> Self {
        Rehearsal {
            gates: Gates::default(),
            capture: true,
        }
    }
}

/// What to do, free of clap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `up`, `down`, `force`, `baseline`: the commands that may change the database.
    Change(Change),
    Status,
    Version,
    Validate,
    New {
        name: String,
        /// Number the new migration after the newest (0001, 0002) instead of
        /// by UTC timestamp.
        sequential: bool,
    },
    EcsRun(Box<RunSpec>),
    /// A shell completion script, ready to print.
    Completions(String),
    Rotate {
        step: Which,
        rotate: Box<RotateSettings>,
    },
}

/// A command that may change the database; what the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Up {
        to: Option<Version>,
        single_transaction: bool,
        dry_run: bool,
    },
    Down {
        target: DownTarget,
        yes: bool,
        dry_run: bool,
    },
    Force {
        version: Version,
        yes: bool,
    },
    Baseline {
        version: Version,
        yes: bool,
    },
    /// Record the files' current checksums for applied migrations edited since.
    Repair {
        yes: bool,
    },
    /// Revert the last migration and apply it again, under one lock.
    Redo {
        yes: bool,
    },
}

impl Change {
    pub fn name(&self) -> &'static str {
        match self {
            Change::Up { .. } => "up",
            Change::Down { .. } => "down",
            Change::Force { .. } => "force",
            Change::Baseline { .. } => "baseline",
            Change::Repair { .. } => "repair",
            Change::Redo { .. } => "redo",
        }
    }

    /// Changes the schema or the history without `--dry-run`.
    pub fn destructive(&self) -> bool {
        match self {
            Change::Down { dry_run, .. } => !dry_run,
            Change::Force { .. }
            | Change::Baseline { .. }
            | Change::Repair { .. }
            | Change::Redo { .. } => true,
            Change::Up { .. } => false,
        }
    }
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Change(c) => c.name(),
            Action::Status => "status",
            Action::Version => "version",
            Action::Validate => "validate",
            Action::New { .. } => "new",
            Action::EcsRun(_) => "ecs run",
            Action::Completions(_) => "completions",
            Action::Rotate { .. } => "rotate",
        }
    }
}

/// Which step to run; `run` runs them all in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Create today's clone of --source-cluster and its writer (tag lifecycle=created).
    Clone,
    /// Wait until the clone and its writer are available and the database answers (ready).
    Ready,
    /// New master password in --master-secret, disable logins, run --scrub-dir (scrubbed).
    Scrub,
    /// Run `up` against the clone (migrated).
    Migrate,
    /// Point --dns-name at the clone (connected); the previous clone becomes aborted.
    Connect,
    /// Delete aborted clones, and never-connected ones older than --max-age.
    Clean,
    /// All of the above, in order, stopping at the first failure.
    Run,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Clone => "clone",
            Which::Ready => "ready",
            Which::Scrub => "scrub",
            Which::Migrate => "migrate",
            Which::Connect => "connect",
            Which::Clean => "clean",
            Which::Run => "run",
        }
    }

    pub fn steps(self) -> Vec<Which> {
        match self {
            Which::Run => vec![
                Which::Clone,
                Which::Ready,
                Which::Scrub,
                Which::Migrate,
                Which::Connect,
                Which::Clean,
            ],
            one => vec![one],
        }
    }
}

/// The rotation's settings, free of clap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateSettings {
    pub prefix: String,
    pub source: Option<String>,
    /// `--source-instance`: the source is a plain RDS instance.
    pub source_instance: Option<String>,
    pub from_snapshot: bool,
    pub placement: Placement,
    pub instance_class: Option<String>,
    /// Bound of every wait (a clone becoming available, a deletion).
    pub timeout: Duration,
    pub master_secret: Option<String>,
    pub keep_logins: Vec<String>,
    pub scrub_dir: Option<PathBuf>,
    pub dns_name: Option<String>,
    pub hosted_zone_id: Option<String>,
    pub ttl: i64,
    /// `--max-age`, in seconds.
    pub max_age: i64,
    pub dry_run: bool,
    /// `--today`: the day whose clone the steps act on.
    pub today: Option<Day>,
    /// First pause between polls (doubling up to 15 s).
    pub poll: Duration,
    /// `ready`: how long the database may stay unreachable (DNS, refused, no
    /// route, no answer) once RDS says it is available.
    pub unreachable_after: Duration,
}

/// A Slack incoming-webhook URL. A secret: `Debug` never shows it.
#[derive(Clone)]
pub struct Webhook(String);

impl Webhook {
    pub fn new(url: String) -> Self {
        Webhook(url.trim().to_string())
    }

    /// The URL itself, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Webhook({})", migrator_core::redact::MASK)
    }
}

/// Which runs are posted (`--notify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only runs that did not succeed.
    Failure,
    /// Runs that changed the schema, and runs that did not succeed.
    Change,
}

impl When {
    pub fn wants(self, report: &RunReport) -> bool {
        let bad = !matches!(report.outcome, Outcome::Success | Outcome::NothingToDo);
        self.wants_outcome(bad, report.outcome == Outcome::Success && !report.dry_run)
    }

    /// The policy on a run that went `bad` (did not succeed) or `changed` something.
    pub fn wants_outcome(self, bad: bool, changed: bool) -> bool {
        match self {
            When::Always => true,
            When::Failure => bad,
            When::Change => bad || changed,
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            When::Always => "always",
            When::Failure => "failure",
            When::Change => "change",
        }
    }
}

/// Notification settings, free of clap.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub webhook: Option<Webhook>,
    pub when: When,
    /// A good run whose notification failed exits 6.
    pub required: bool,
    /// Time allowed to one HTTP attempt.
    pub timeout: Duration,
    /// Time allowed to all attempts together.
    pub budget: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            webhook: None,
            when: When::Always,
            required: false,
            timeout: Duration::from_secs(5),
            budget: Duration::from_secs(20),
        }
    }
}

/// Network placement of a new clone; `None`/empty: as the source has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
}
