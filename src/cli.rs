//! The command line: clap types, and their conversion into plain settings.
//!
//! clap types never leave this module. Every flag has an environment variable, so
//! a container can be configured from its task definition alone. Nothing here ever
//! prompts: a destructive command without `--yes` prints its plan and exits 2.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use migrator_core::duration;

use crate::settings::{
    Action, Change, Connection, Format, LogFormat, NotifySettings, OutputFormat, Placement,
    Rehearsal, RotateSettings, Settings, Webhook, When, Which,
};
use migrator_core::conn::TlsMode;
use migrator_core::ecs::RunSpec;
use migrator_core::migration::Version;
use migrator_core::plan::{Checks, DownTarget};

// Every line fits 80 columns, so `wrap_help` never breaks one (a test checks).
const EXAMPLES: &str = "\
Examples:
  migrator up
      apply every pending migration
  migrator up --to 20261101000000 --dry-run
      show what would run up to a version
  migrator down --yes
      revert the last migration (default: 1 step)
  migrator down --to 20261101000000 --yes
      revert everything above a version
  migrator status --output json
      applied and pending migrations as JSON
  migrator force 20261101000000 --yes
      declare a version after a manual fix
  migrator new add_users
      scaffold an up/down pair
  migrator ecs run --cluster deploy --task-definition shop-migrate
      run the migration task on ECS from CI; exit with its code
  migrator rotate run --source-cluster prod --name-prefix app-dev- \\
    --master-secret app/dev/master --scrub-dir scrub \\
    --dns-name db.dev.internal --hosted-zone-id Z123
      clone, ready, scrub, migrate, connect, clean

Connection: --database-url or DATABASE_URL, e.g.
postgres://user:pass@host:5432/db or mysql://user:pass@host:3306/db.
Exit codes: 0 ok, 1 migration failed, 2 usage, 3 unreachable,
4 lock timeout, 5 refused (database disagrees with files),
6 notification failed (--notify-required), 7 rotate refused,
8 rehearsal gate failed (up --max-lock-ms, --fail-on-rewrite, --verify-down),
130/143 interrupted; `ecs run`: the migration container's own code,
10 no task started, 11 task failed to start, 12 timeout (task stopped).";

const UP_EXAMPLES: &str = "\
Examples:
  migrator up
  migrator up --to 20261101000000 --dry-run
  migrator up --wait 5m --connect-timeout 5 --output json";
const DOWN_EXAMPLES: &str = "\
Examples:
  migrator down --yes
  migrator down 3 --yes
  migrator down --to 20261101000000 --dry-run";
const STATUS_EXAMPLES: &str = "\
Examples:
  migrator status
  migrator status --output json";
const VALIDATE_EXAMPLES: &str = "\
Examples:
  migrator validate
  migrator validate --output json";
const FORCE_EXAMPLES: &str = "\
Examples:
  migrator force 20261101000000
  migrator force 20261101000000 --yes
  migrator force 0 --yes --env prod --confirm-env prod";
const REDO_EXAMPLES: &str = "\
Examples:
  migrator redo
  migrator redo --yes";
const BASELINE_EXAMPLES: &str = "\
Examples:
  migrator baseline 20261101000000
  migrator baseline 20261101000000 --yes";
const REPAIR_EXAMPLES: &str = "\
Examples:
  migrator repair
  migrator repair --yes";
const NEW_EXAMPLES: &str = "\
Examples:
  migrator new add_users
  migrator create add_orders --path db/migrations
  migrator new add_users --sequential";
const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  migrator completions bash > /etc/bash_completion.d/migrator
  migrator completions zsh > ~/.zfunc/_migrator
  migrator completions fish > ~/.config/fish/completions/migrator.fish";

#[derive(Debug, Parser)]
#[command(
    name = "migrator",
    version,
    about = "Apply versioned SQL migrations to PostgreSQL and MySQL, non-interactively.",
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

// The plain settings enums, as the command line names them. clap is implemented
// here, on the settings' own types, so no mirror enum repeats them.

impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        &[Format::Text, Format::Json]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Format::Text => PossibleValue::new("text"),
            Format::Json => PossibleValue::new("json"),
        })
    }
}

impl ValueEnum for Which {
    fn value_variants<'a>() -> &'a [Self] {
        use Which::*;
        &[Clone, Ready, Scrub, Migrate, Connect, Clean, Run]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Which::Clone => {
                "Create today's clone of --source-cluster and its writer (tag lifecycle=created)"
            }
            Which::Ready => {
                "Wait until the clone and its writer are available and the database answers (ready)"
            }
            Which::Scrub => {
                "New master password in --master-secret, disable logins, run --scrub-dir (scrubbed)"
            }
            Which::Migrate => "Run `up` against the clone (migrated)",
            Which::Connect => {
                "Point --dns-name at the clone (connected); the previous clone becomes aborted"
            }
            Which::Clean => "Delete aborted clones, and never-connected ones older than --max-age",
            Which::Run => "All of the above, in order, stopping at the first failure",
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

/// `--tls`: a core type (no clap impl possible here), read with the core's parser
/// from the names clap lists.
fn tls_mode() -> impl clap::builder::TypedValueParser<Value = TlsMode> {
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("disable").help("Plain TCP"),
        PossibleValue::new("prefer")
            .help("TLS when the server offers it, certificate not verified"),
        PossibleValue::new("require").help("TLS, certificate not verified"),
        PossibleValue::new("verify-ca")
            .help("TLS, certificate chain verified against the CA; host name not checked"),
        PossibleValue::new("verify-full").help("TLS, chain and host name verified"),
    ])
    .map(|name| TlsMode::parse(&name).expect("every listed name parses"))
}

#[derive(Debug, Args)]
pub struct Global {
    /// Database URL (postgres://, postgresql://, mysql://, mariadb://).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Secrets Manager secret (ARN or name) holding a connection URL or the RDS JSON format.
    #[arg(long, env = "MIGRATOR_DB_SECRET", global = true, value_name = "ID")]
    pub db_secret: Option<String>,

    /// RDS cluster whose writer endpoint and port to connect to (DescribeDBClusters).
    #[arg(long, env = "MIGRATOR_RDS_CLUSTER", global = true, value_name = "ID")]
    pub rds_cluster: Option<String>,

    /// Log in with a short-lived IAM database auth token instead of a password.
    #[arg(long, env = "MIGRATOR_IAM_AUTH", global = true)]
    pub iam_auth: bool,

    /// TLS mode (default prefer for a plain URL; verify-full with --db-secret, --rds-cluster or --iam-auth).
    #[arg(
        long,
        env = "MIGRATOR_TLS",
        global = true,
        value_parser = tls_mode(),
        value_name = "MODE"
    )]
    pub tls: Option<TlsMode>,

    /// PEM file of CA certificates to verify the database against; replaces the
    /// Amazon RDS roots compiled in (the default with an AWS source).
    #[arg(long, env = "MIGRATOR_CA_FILE", global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Database host (overrides the URL, the secret and the cluster lookup).
    #[arg(long, env = "MIGRATOR_DB_HOST", global = true, value_name = "HOST")]
    pub db_host: Option<String>,

    /// Database port (overrides the URL, the secret and the cluster lookup).
    #[arg(long, env = "MIGRATOR_DB_PORT", global = true, value_name = "PORT")]
    pub db_port: Option<u16>,

    /// Database name (overrides the URL, the secret and the cluster lookup).
    #[arg(long, env = "MIGRATOR_DB_NAME", global = true, value_name = "NAME")]
    pub db_name: Option<String>,

    /// Database user (overrides the URL, the secret and the cluster lookup).
    #[arg(long, env = "MIGRATOR_DB_USER", global = true, value_name = "USER")]
    pub db_user: Option<String>,

    /// Migrations folder; when it does not exist, the migrations embedded at build time are used.
    #[arg(long, env = "MIGRATOR_PATH", global = true, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// How long to wait for the migration lock held by another runner (90, 90s, 2m).
    #[arg(
        long,
        env = "MIGRATOR_LOCK_TIMEOUT",
        global = true,
        default_value = "60",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub lock_timeout: Duration,

    /// Keep retrying to connect this long (a database that is still starting); `up` also
    /// reconnects after a connection lost mid-run and carries on from what is recorded.
    #[arg(long, env = "MIGRATOR_WAIT", global = true, value_parser = duration::parse, value_name = "DURATION")]
    pub wait: Option<Duration>,

    /// Give up one connection attempt (TCP connect, TLS, authentication) after this long;
    /// with --wait, try again while the wait lasts.
    #[arg(
        long,
        env = "MIGRATOR_CONNECT_TIMEOUT",
        global = true,
        default_value = "10",
        value_parser = duration::parse_positive,
        value_name = "DURATION"
    )]
    pub connect_timeout: Duration,

    /// Declare a database connection dead once it has been silent this long (a
    /// partition, a vanished writer): TCP keepalive probes and TCP_USER_TIMEOUT on
    /// every connection, and a check of the session from a second connection while
    /// an answer is awaited. 0 turns all three off.
    #[arg(
        long,
        env = "MIGRATOR_LINK_TIMEOUT",
        global = true,
        default_value = "30",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub link_timeout: Duration,

    /// Log format on stderr: human text, or JSON lines for CloudWatch.
    #[arg(
        long,
        env = "MIGRATOR_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// Result format on stdout.
    #[arg(
        long,
        env = "MIGRATOR_OUTPUT",
        global = true,
        value_enum,
        default_value_t = OutputFormat::Text
    )]
    pub output: OutputFormat,

    /// Also write the run report (JSON) to this file, whatever the outcome.
    #[arg(long, env = "MIGRATOR_REPORT", global = true, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Environment label for this run (dev, nightly, devqa, staging-1, prod); shown in
    /// logs, the report and Slack.
    #[arg(long = "env", env = "MIGRATOR_ENV", global = true, value_name = "NAME")]
    pub env_label: Option<String>,

    /// Environments where `down`, `force` and `baseline` also need --confirm-env NAME.
    #[arg(
        long,
        env = "MIGRATOR_PROTECTED_ENVS",
        global = true,
        value_delimiter = ',',
        default_value = "prod,production",
        value_name = "LIST"
    )]
    pub protected_envs: Vec<String>,

    /// Repeat the environment's name to run a destructive command in a protected environment.
    #[arg(long, env = "MIGRATOR_CONFIRM_ENV", global = true, value_name = "NAME")]
    pub confirm_env: Option<String>,

    /// SQL to run at the start of every database session, before the lock (SET
    /// FOREIGN_KEY_CHECKS=0, SET search_path …); may be given more than once.
    #[arg(
        long = "init-sql",
        env = "MIGRATOR_INIT_SQL",
        global = true,
        value_name = "SQL"
    )]
    pub init_sql: Vec<String>,

    /// Do not take over another tool's history table (golang-migrate, sqlx, refinery, diesel).
    #[arg(long, env = "MIGRATOR_NO_ADOPT", global = true)]
    pub no_adopt: bool,

    /// Allow applied migrations whose files are gone.
    #[arg(long, env = "MIGRATOR_IGNORE_MISSING", global = true)]
    pub ignore_missing: bool,

    /// Allow (and apply) pending migrations older than the current version.
    #[arg(long, env = "MIGRATOR_ALLOW_OUT_OF_ORDER", global = true)]
    pub allow_out_of_order: bool,

    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// When `up`, `down` and `force` post their result to Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyWhen {
    /// Every run.
    Always,
    /// Runs that did not succeed (failed, refused, interrupted, error).
    Failure,
    /// Runs that changed the schema or did not succeed; quiet on "nothing to do" and dry runs.
    Change,
}

/// Slack notification of `up`, `down` and `force`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Notification")]
pub struct NotifyArgs {
    /// Slack incoming-webhook URL to post the result to (a secret: never printed).
    #[arg(
        long,
        env = "SLACK_WEBHOOK_URL",
        global = true,
        hide_env_values = true,
        value_name = "URL"
    )]
    pub slack_webhook: Option<String>,

    /// Which runs are posted.
    #[arg(
        long,
        env = "MIGRATOR_NOTIFY",
        global = true,
        value_enum,
        default_value_t = NotifyWhen::Always
    )]
    pub notify: NotifyWhen,

    /// Exit 6 when the run succeeded but Slack could not be told (a failed run keeps its own code).
    #[arg(long, env = "MIGRATOR_NOTIFY_REQUIRED", global = true)]
    pub notify_required: bool,

    /// How long one attempt to post to Slack may take.
    #[arg(
        long,
        env = "MIGRATOR_NOTIFY_TIMEOUT",
        global = true,
        default_value = "5",
        value_parser = duration::parse_positive,
        value_name = "DURATION"
    )]
    pub notify_timeout: Duration,

    /// How long all attempts together may take; then the notification is given up.
    #[arg(
        long,
        env = "MIGRATOR_NOTIFY_BUDGET",
        global = true,
        default_value = "20",
        value_parser = duration::parse_positive,
        value_name = "DURATION"
    )]
    pub notify_budget: Duration,
}

impl NotifyArgs {
    fn into_settings(self) -> NotifySettings {
        NotifySettings {
            webhook: self
                .slack_webhook
                .filter(|u| !u.trim().is_empty())
                .map(Webhook::new),
            when: match self.notify {
                NotifyWhen::Always => When::Always,
                NotifyWhen::Failure => When::Failure,
                NotifyWhen::Change => When::Change,
            },
            required: self.notify_required,
            timeout: self.notify_timeout,
            budget: self.notify_budget,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, oldest first.
    #[command(after_help = UP_EXAMPLES)]
    Up {
        /// Stop after this version.
        #[arg(long, env = "MIGRATOR_TO", value_name = "VERSION")]
        to: Option<Version>,
        /// PostgreSQL only: all pending migrations in one transaction, all or nothing.
        #[arg(long, env = "MIGRATOR_SINGLE_TRANSACTION")]
        single_transaction: bool,
        /// Print what would run; change nothing.
        #[arg(long, env = "MIGRATOR_DRY_RUN")]
        dry_run: bool,
        #[command(flatten)]
        rehearsal: RehearsalArgs,
    },
    /// Revert applied migrations, newest first (default: one).
    #[command(after_help = DOWN_EXAMPLES)]
    Down {
        /// How many migrations to revert.
        #[arg(value_name = "N", conflicts_with_all = ["to", "all"])]
        steps: Option<usize>,
        /// Revert everything applied above this version (0: everything).
        #[arg(
            long,
            env = "MIGRATOR_DOWN_TO",
            value_name = "VERSION",
            conflicts_with = "all"
        )]
        to: Option<Version>,
        /// Revert every applied migration.
        #[arg(long)]
        all: bool,
        /// Really do it. Without it, the plan is printed and the exit code is 2.
        #[arg(long, env = "MIGRATOR_YES")]
        yes: bool,
        /// Print what would be reverted; change nothing.
        #[arg(long, env = "MIGRATOR_DRY_RUN")]
        dry_run: bool,
    },
    /// Show applied and pending migrations and any disagreement.
    #[command(after_help = STATUS_EXAMPLES)]
    Status,
    /// Print the current version, or "none".
    Version,
    /// Check that the database and the files agree (exit 5 when not).
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate,
    /// Declare the database to be at VERSION and clear the dirty state. Runs no SQL.
    #[command(after_help = FORCE_EXAMPLES)]
    Force {
        /// The version (0: nothing applied).
        #[arg(value_name = "VERSION")]
        forced: Version,
        /// Really do it.
        #[arg(long, env = "MIGRATOR_YES")]
        yes: bool,
    },
    /// Mark every migration up to VERSION as applied, without running it, on a
    /// database that already has that schema.
    #[command(after_help = BASELINE_EXAMPLES)]
    Baseline {
        #[arg(value_name = "VERSION")]
        upto: Version,
        /// Really do it.
        #[arg(long, env = "MIGRATOR_YES")]
        yes: bool,
    },
    /// Revert the last migration and apply it again, under one lock (while writing it).
    #[command(after_help = REDO_EXAMPLES)]
    Redo {
        /// Really do it. Without it, the migration is named and the exit code is 2.
        #[arg(long, env = "MIGRATOR_YES")]
        yes: bool,
    },
    /// Record the files' current checksums for applied migrations whose file was
    /// edited since (a comment, a reformat). Runs no SQL.
    #[command(after_help = REPAIR_EXAMPLES)]
    Repair {
        /// Really do it. Without it, the edited files are listed and the exit code is 2.
        #[arg(long, env = "MIGRATOR_YES")]
        yes: bool,
    },
    /// Scaffold a new migration in the folder's format, versioned by UTC timestamp
    /// (past the newest version, never reusing one).
    #[command(visible_alias = "create")]
    #[command(after_help = NEW_EXAMPLES)]
    New {
        /// Lowercase letters, digits and underscores.
        name: String,
        /// Number it after the newest migration (0001, 0002, …) instead of by timestamp.
        #[arg(long, env = "MIGRATOR_SEQUENTIAL")]
        sequential: bool,
    },
    /// Print a shell completion script: `migrator completions bash > /etc/bash_completion.d/migrator`.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Amazon ECS, from CI: run the migration task and wait for it.
    Ecs {
        #[command(subcommand)]
        command: EcsCommand,
    },
    /// Clone rotation: a fresh, scrubbed, migrated clone of production behind a
    /// stable DNS name, one step at a time or all in order (`run`).
    Rotate {
        #[arg(value_enum, value_name = "STEP")]
        step: Which,
        #[command(flatten)]
        args: Box<RotateArgs>,
    },
}

/// `up`'s rehearsal on a clone: gates on what each migration would cost
/// production, and the check that each down undoes its up.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rehearsal (on a clone)")]
pub struct RehearsalArgs {
    /// Fail (exit 8) when a migration held ACCESS EXCLUSIVE (PostgreSQL) or an exclusive
    /// metadata lock (MySQL) on a pre-existing table for longer than this many ms.
    #[arg(long, env = "MIGRATOR_MAX_LOCK_MS", value_name = "MS")]
    pub max_lock_ms: Option<u64>,
    /// Fail (exit 8) when a migration rewrote a pre-existing table.
    #[arg(long, env = "MIGRATOR_FAIL_ON_REWRITE")]
    pub fail_on_rewrite: bool,
    /// After each migration's up: run its down, compare the schema with the one
    /// before the up, and leave the database at the up state; exit 8 when a down
    /// fails or leaves the schema different. Refused in protected environments.
    #[arg(long, env = "MIGRATOR_VERIFY_DOWN")]
    pub verify_down: bool,
    /// Do not read each migration's locks and rewrites (the report says "not measured").
    #[arg(long, env = "MIGRATOR_NO_CAPTURE")]
    pub no_capture: bool,
}

impl RehearsalArgs {
    fn into_settings(self) -> Rehearsal {
        Rehearsal {
            gates: migrator_core::rehearsal::Gates {
                max_lock_ms: self.max_lock_ms,
                fail_on_rewrite: self.fail_on_rewrite,
                verify_down: self.verify_down,
            },
            capture: !self.no_capture,
        }
    }
}

/// The flags of `migrator rotate`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Rotation")]
pub struct RotateArgs {
    /// Clones are named {prefix}YYYYMMDD; the rotation never changes a cluster whose
    /// identifier is not of that form or that lacks its lifecycle tag.
    #[arg(long, env = "MIGRATOR_ROTATE_NAME_PREFIX", value_name = "PREFIX")]
    pub name_prefix: String,
    /// The cluster to clone (`clone`).
    #[arg(long, env = "MIGRATOR_ROTATE_SOURCE_CLUSTER", value_name = "ID")]
    pub source_cluster: Option<String>,
    /// A plain RDS instance to clone (`clone`) from its newest automated snapshot
    /// (RDS for PostgreSQL/MySQL); `--source-cluster` naming an instance does the same.
    #[arg(long, env = "MIGRATOR_ROTATE_SOURCE_INSTANCE", value_name = "ID")]
    pub source_instance: Option<String>,
    /// Restore the source's latest automated snapshot instead of a copy-on-write clone.
    #[arg(long, env = "MIGRATOR_ROTATE_FROM_SNAPSHOT")]
    pub from_snapshot: bool,
    /// DB subnet group of the clone (default: the source's).
    #[arg(long, env = "MIGRATOR_ROTATE_SUBNET_GROUP", value_name = "NAME")]
    pub subnet_group: Option<String>,
    /// VPC security groups of the clone, comma-separated (default: the source's).
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_SECURITY_GROUPS",
        value_delimiter = ',',
        value_name = "IDS"
    )]
    pub security_groups: Vec<String>,
    /// DB cluster parameter group of the clone (default: the source's).
    #[arg(long, env = "MIGRATOR_ROTATE_PARAMETER_GROUP", value_name = "NAME")]
    pub parameter_group: Option<String>,
    /// Instance class of the clone's writer (default: the source writer's).
    #[arg(long, env = "MIGRATOR_ROTATE_INSTANCE_CLASS", value_name = "CLASS")]
    pub instance_class: Option<String>,
    /// How long any wait may take (the clone becoming available, a deletion).
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_TIMEOUT",
        default_value = "1h",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub timeout: Duration,
    /// Secrets Manager secret that receives the clone's new master password (`scrub`),
    /// and that `scrub` and `migrate` connect with.
    #[arg(long, env = "MIGRATOR_ROTATE_MASTER_SECRET", value_name = "ID")]
    pub master_secret: Option<String>,
    /// Logins `scrub` leaves enabled, comma-separated: `name`, or `user@host` on MySQL.
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_KEEP_LOGINS",
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub keep_logins: Vec<String>,
    /// Folder of .sql files `scrub` runs in name order, each in a transaction.
    #[arg(long, env = "MIGRATOR_ROTATE_SCRUB_DIR", value_name = "DIR")]
    pub scrub_dir: Option<PathBuf>,
    /// The stable DNS name `connect` points at today's clone (a CNAME).
    #[arg(long, env = "MIGRATOR_ROTATE_DNS_NAME", value_name = "NAME")]
    pub dns_name: Option<String>,
    /// Route53 hosted zone of --dns-name.
    #[arg(long, env = "MIGRATOR_ROTATE_HOSTED_ZONE_ID", value_name = "ID")]
    pub hosted_zone_id: Option<String>,
    /// TTL of the CNAME (60, 5m; at most 2d).
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_TTL",
        default_value = "60",
        value_parser = parse_ttl,
        value_name = "DURATION"
    )]
    pub ttl: i64,
    /// `clean` deletes never-connected clones older than this: 2d, 36h, 90m (a bare number is days).
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_MAX_AGE",
        default_value = "2d",
        value_parser = parse_max_age,
        value_name = "AGE"
    )]
    pub max_age: i64,
    /// Print the AWS calls each step would make; change nothing.
    #[arg(long, env = "MIGRATOR_DRY_RUN")]
    pub dry_run: bool,
    /// The day whose clone the steps act on (YYYY-MM-DD; default: today, UTC). For tests.
    #[arg(long, env = "MIGRATOR_ROTATE_TODAY", value_parser = parse_day, value_name = "DATE")]
    pub today: Option<migrator_core::rotate::plan::Day>,
    /// `ready` fails (exit 3) when the database stays unreachable this long once
    /// RDS says it is available: a name that does not resolve, a refused
    /// connection, no route, no answer (a security group).
    #[arg(
        long,
        env = "MIGRATOR_ROTATE_UNREACHABLE_AFTER",
        default_value = "5m",
        value_parser = duration::parse,
        value_name = "DURATION"
    )]
    pub unreachable_after: Duration,
}

/// Route53 takes a TTL in whole seconds, up to two days.
fn parse_ttl(s: &str) -> Result<i64, String> {
    let ttl = duration::parse(s)?;
    if ttl > Duration::from_secs(172_800) {
        return Err(format!("`{s}`: a DNS TTL is at most 2d (172800 seconds)"));
    }
    Ok(ttl.as_secs() as i64)
}

fn parse_max_age(s: &str) -> Result<i64, String> {
    migrator_core::rotate::plan::parse_age(s)
}

fn parse_day(s: &str) -> Result<migrator_core::rotate::plan::Day, String> {
    migrator_core::rotate::plan::Day::parse(s)
        .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

impl RotateArgs {
    fn into_settings(self) -> RotateSettings {
        let list = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let some = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        RotateSettings {
            prefix: self.name_prefix,
            source: some(self.source_cluster),
            source_instance: some(self.source_instance),
            from_snapshot: self.from_snapshot,
            placement: Placement {
                subnet_group: some(self.subnet_group),
                security_groups: list(self.security_groups),
                parameter_group: some(self.parameter_group),
            },
            instance_class: some(self.instance_class),
            timeout: self.timeout,
            master_secret: some(self.master_secret),
            keep_logins: list(self.keep_logins),
            scrub_dir: self.scrub_dir,
            dns_name: some(self.dns_name),
            hosted_zone_id: some(self.hosted_zone_id),
            ttl: self.ttl,
            max_age: self.max_age,
            dry_run: self.dry_run,
            today: self.today,
            poll: Duration::from_secs(1),
            unreachable_after: self.unreachable_after,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EcsCommand {
    /// Start the migration task, print its status changes and its log lines, and
    /// exit with its migration container's exit code. Needs no database URL and no
    /// migrations folder.
    Run(Box<EcsRunArgs>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EcsLaunchType {
    #[value(name = "FARGATE")]
    Fargate,
    #[value(name = "EC2")]
    Ec2,
}

/// `--launch-type`: FARGATE or EC2 (any case); blank (a pipeline variable set
/// to "") means none: the cluster's default capacity provider strategy.
fn launch_type(text: &str) -> Result<LaunchChoice, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(LaunchChoice(None));
    }
    EcsLaunchType::from_str(text, true)
        .map(|l| LaunchChoice(Some(l)))
        .map_err(|_| format!("`{text}` is not a launch type: FARGATE, EC2, or empty for the cluster's default capacity provider strategy"))
}

/// `--launch-type`'s value; `None`: blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchChoice(pub Option<EcsLaunchType>);

/// `--capacity-provider-strategy`'s items (none for a blank value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strategy(pub Vec<migrator_core::ecs::CapacityProvider>);

fn strategy(text: &str) -> Result<Strategy, String> {
    migrator_core::ecs::parse_capacity_providers(text).map(Strategy)
}

/// The words of `--command`, split like a shell would; none for a blank value
/// (an unset pipeline variable), which means "not given".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandWords(pub Vec<String>);

fn command_words(text: &str) -> Result<CommandWords, String> {
    if text.trim().is_empty() {
        return Ok(CommandWords(Vec::new()));
    }
    migrator_core::ecs::split_command(text).map(CommandWords)
}

/// One `--container-env` value; `None` for a blank one (a trailing newline in
/// `MIGRATOR_ECS_CONTAINER_ENV`, an unset pipeline variable).
fn env_entry(text: &str) -> Result<Option<(String, String)>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    migrator_core::ecs::parse_env_pair(text).map(Some)
}

#[derive(Debug, Args)]
#[command(next_help_heading = "ECS task")]
pub struct EcsRunArgs {
    /// Cluster to run the task on (name or ARN).
    #[arg(long, env = "MIGRATOR_ECS_CLUSTER", value_name = "CLUSTER")]
    pub cluster: String,

    /// Task definition: family (its latest ACTIVE revision), family:revision, or ARN.
    #[arg(long, env = "MIGRATOR_ECS_TASK_DEFINITION", value_name = "TD")]
    pub task_definition: String,

    /// The migration container, whose exit code becomes ours (default: the task
    /// definition's only essential container).
    #[arg(long, env = "MIGRATOR_ECS_CONTAINER", value_name = "NAME")]
    pub container: Option<String>,

    /// Replaces the migration container's command, which ECS runs after its
    /// entryPoint: "up --to 20261101000000" when the entryPoint is the migrator
    /// binary; split into words like a shell, nothing expanded.
    #[arg(
        long,
        env = "MIGRATOR_ECS_COMMAND",
        value_name = "COMMAND",
        value_parser = command_words
    )]
    pub command: Option<CommandWords>,

    /// NAME=VALUE added to the migration container's environment; repeat the flag
    /// (the variable: one per line).
    #[arg(
        long,
        env = "MIGRATOR_ECS_CONTAINER_ENV",
        value_name = "NAME=VALUE",
        value_parser = env_entry,
        value_delimiter = '\n'
    )]
    pub container_env: Vec<Option<(String, String)>>,

    /// Launch type: FARGATE or EC2; empty or not given: the cluster's default
    /// capacity provider strategy.
    #[arg(
        long,
        env = "MIGRATOR_ECS_LAUNCH_TYPE",
        value_parser = launch_type,
        value_name = "TYPE"
    )]
    pub launch_type: Option<LaunchChoice>,

    /// Capacity providers instead of a launch type, comma-separated
    /// NAME, NAME:WEIGHT or NAME:WEIGHT:BASE, e.g. FARGATE_SPOT:3,FARGATE:1:1.
    #[arg(
        long,
        env = "MIGRATOR_ECS_CAPACITY_PROVIDER_STRATEGY",
        value_parser = strategy,
        value_name = "STRATEGY"
    )]
    pub capacity_provider_strategy: Option<Strategy>,

    /// Fargate platform version (1.4.0, LATEST); default: ECS's.
    #[arg(long, env = "MIGRATOR_ECS_PLATFORM_VERSION", value_name = "VERSION")]
    pub platform_version: Option<String>,

    /// Subnets for awsvpc networking, comma-separated (needed by Fargate).
    #[arg(
        long,
        env = "MIGRATOR_ECS_SUBNETS",
        value_delimiter = ',',
        value_name = "IDS"
    )]
    pub subnets: Vec<String>,

    /// Security groups for awsvpc networking, comma-separated (with --subnets).
    #[arg(
        long,
        env = "MIGRATOR_ECS_SECURITY_GROUPS",
        value_delimiter = ',',
        value_name = "IDS"
    )]
    pub security_groups: Vec<String>,

    /// Give the task a public IP (with --subnets): a public subnet without a NAT gateway.
    #[arg(long, env = "MIGRATOR_ECS_ASSIGN_PUBLIC_IP")]
    pub assign_public_ip: bool,

    /// Stop the task and exit 12 when it has not stopped after this long (90s, 45m, 2h, 1h30m).
    #[arg(
        long,
        env = "MIGRATOR_ECS_TIMEOUT",
        default_value = "60m",
        value_parser = migrator_core::duration::parse_positive,
        value_name = "DURATION"
    )]
    pub timeout: Duration,

    /// Do not show the migration container's CloudWatch log lines.
    #[arg(long, env = "MIGRATOR_ECS_NO_LOGS")]
    pub no_logs: bool,
}

impl EcsRunArgs {
    fn into_spec(self: Box<Self>) -> RunSpec {
        let ids = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let subnets = ids(self.subnets);
        let security_groups = ids(self.security_groups);
        let network = (!subnets.is_empty() || !security_groups.is_empty() || self.assign_public_ip)
            .then_some(migrator_core::ecs::Network {
                subnets,
                security_groups,
                assign_public_ip: self.assign_public_ip,
            });
        RunSpec {
            cluster: self.cluster,
            task_definition: self.task_definition,
            container: self.container.filter(|c| !c.is_empty()),
            command: self.command.map(|c| c.0).filter(|words| !words.is_empty()),
            environment: self.container_env.into_iter().flatten().collect(),
            launch_type: self.launch_type.and_then(|l| l.0).map(|l| match l {
                EcsLaunchType::Fargate => migrator_core::ecs::LaunchType::Fargate,
                EcsLaunchType::Ec2 => migrator_core::ecs::LaunchType::Ec2,
            }),
            capacity_providers: self
                .capacity_provider_strategy
                .map(|s| s.0)
                .unwrap_or_default(),
            platform_version: trimmed(self.platform_version),
            network,
            timeout: self.timeout,
            logs: !self.no_logs,
        }
    }
}

/// A name without surrounding blanks; `None` when nothing is left.
fn trimmed(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())
}

impl Cli {
    pub fn into_parts(self) -> (Settings, Action) {
        let g = self.global;
        let mut settings = Settings {
            database_url: g.database_url.filter(|u| !u.is_empty()),
            connection: Connection {
                db_secret: g.db_secret.filter(|s| !s.is_empty()),
                rds_cluster: g.rds_cluster.filter(|s| !s.is_empty()),
                iam_auth: g.iam_auth,
                tls: g.tls,
                ca_file: g.ca_file,
                host: g.db_host,
                port: g.db_port,
                name: g.db_name,
                user: g.db_user,
            },
            path_explicit: g.path.is_some(),
            path: g.path.unwrap_or_else(|| PathBuf::from("migrations")),
            lock_timeout: g.lock_timeout,
            wait: g.wait,
            connect_timeout: g.connect_timeout,
            link_timeout: Some(g.link_timeout).filter(|d| !d.is_zero()),
            output: g.output,
            report: g.report,
            checks: Checks {
                ignore_missing: g.ignore_missing,
                allow_out_of_order: g.allow_out_of_order,
            },
            adopt: !g.no_adopt,
            // A blank MIGRATOR_INIT_SQL is unset (tolerant); a blank value given
            // on the command line runs nothing either.
            init_sql: g
                .init_sql
                .into_iter()
                .filter(|s| !s.trim().is_empty())
                .collect(),
            // Names as people and task definitions type them: "prod ", "PROD\n".
            env_label: trimmed(g.env_label),
            protected_envs: g
                .protected_envs
                .into_iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            confirm_env: trimmed(g.confirm_env),
            notify: g.notify.into_settings(),
            rehearsal: Rehearsal::default(),
        };
        let action = match self.command {
            Command::Up {
                to,
                single_transaction,
                dry_run,
                rehearsal,
            } => {
                settings.rehearsal = rehearsal.into_settings();
                Action::Change(Change::Up {
                    to,
                    single_transaction,
                    dry_run,
                })
            }
            Command::Down {
                steps,
                to,
                all,
                yes,
                dry_run,
            } => Action::Change(Change::Down {
                target: match (steps, to, all) {
                    (_, _, true) => DownTarget::All,
                    (_, Some(v), _) => DownTarget::To(v),
                    (n, None, false) => DownTarget::Steps(n.unwrap_or(1)),
                },
                yes,
                dry_run,
            }),
            Command::Status => Action::Status,
            Command::Version => Action::Version,
            Command::Validate => Action::Validate,
            Command::Force { forced, yes } => Action::Change(Change::Force {
                version: forced,
                yes,
            }),
            Command::Baseline { upto, yes } => {
                Action::Change(Change::Baseline { version: upto, yes })
            }
            Command::Repair { yes } => Action::Change(Change::Repair { yes }),
            Command::Redo { yes } => Action::Change(Change::Redo { yes }),
            Command::New { name, sequential } => Action::New { name, sequential },
            Command::Completions { shell } => {
                let mut script = Vec::new();
                let mut cli = command();
                clap_complete::generate(shell, &mut cli, "migrator", &mut script);
                Action::Completions(String::from_utf8_lossy(&script).into_owned())
            }
            Command::Ecs {
                command: EcsCommand::Run(args),
            } => Action::EcsRun(Box::new(args.into_spec())),
            Command::Rotate { step, args } => Action::Rotate {
                step,
                rotate: Box::new(args.into_settings()),
            },
        };
        (settings, action)
    }
}

/// The command line as task definitions and buildspecs feed it: a variable set
/// to nothing (or only blanks) counts as unset, so it neither fails parsing nor
/// stands in for a default, and every on/off flag reads 1/0, true/false,
/// yes/no (and on/off) from its variable. Applied to every subcommand.
fn tolerant(cmd: clap::Command) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let arg = if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
            arg.value_parser(clap::builder::BoolishValueParser::new())
        } else {
            arg
        };
        let blank = arg.get_env().is_some_and(|name| {
            std::env::var_os(name).is_some_and(|v| v.to_string_lossy().trim().is_empty())
        });
        if blank {
            arg.env(None::<&'static str>)
        } else {
            arg
        }
    });
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names
        .into_iter()
        .fold(cmd, |cmd, name| cmd.mut_subcommand(name, tolerant))
}

/// The command as it is parsed: [`tolerant`], and each subcommand [`scoped`] to
/// the shared flags it uses.
fn command() -> clap::Command {
    use clap::CommandFactory;
    tolerant(scoped(Cli::command()))
}

fn try_parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::FromArgMatches;
    let mut cmd = command();
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    if let Some(message) = unused_flag(&matches) {
        return Err(cmd.error(clap::error::ErrorKind::ArgumentConflict, message));
    }
    Cli::from_arg_matches_mut(&mut matches)
}

// The shared flags (those of `Global`, accepted before or after the subcommand),
// by clap id, in the groups the commands use them in.

/// Every command logs.
const LOGS: &[&str] = &["log_format"];
/// Where the database is and how to reach it.
const CONNECTION: &[&str] = &[
    "database_url",
    "db_secret",
    "rds_cluster",
    "iam_auth",
    "tls",
    "ca_file",
    "db_host",
    "db_port",
    "db_name",
    "db_user",
    "connect_timeout",
    "wait",
    "init_sql",
    "link_timeout",
];
const PATH: &[&str] = &["path"];
/// How the history is read and checked against the files.
const CHECKS: &[&str] = &["ignore_missing", "allow_out_of_order", "no_adopt"];
const OUTPUT: &[&str] = &["output"];
/// A run that may change the database: the lock, the report, the label.
const RUN: &[&str] = &["lock_timeout", "report", "env_label"];
/// The guard on destructive commands in protected environments.
const PROTECT: &[&str] = &["protected_envs", "confirm_env"];
const NOTIFY: &[&str] = &[
    "slack_webhook",
    "notify",
    "notify_required",
    "notify_timeout",
    "notify_budget",
];

/// The shared flags each command uses (what `commands::*` reads of `Settings`).
/// A command's `--help` hides the others, and its command line refuses them
/// (exit 2); from the environment they are ignored, as a task definition sets
/// its variables for every command it runs. A parent command (`ecs`) uses what
/// its subcommands use.
const USES: &[(&str, &[&[&str]])] = &[
    (
        "up",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    (
        "down",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    (
        "redo",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    (
        "force",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    (
        "baseline",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    (
        "repair",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY],
    ),
    // Read-only: no lock, no report, nothing posted.
    ("status", &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT]),
    ("version", &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT]),
    ("validate", &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT]),
    // Reads the folder only.
    ("new", &[LOGS, PATH]),
    ("completions", &[LOGS]),
    // Talks to ECS, never to the database: the task's own variables configure it.
    ("ecs run", &[LOGS]),
    // `migrate` runs `up` against the clone (report and Slack as `up`); nothing
    // destructive, so no protected-environment guard.
    (
        "rotate",
        &[LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, NOTIFY],
    ),
];

/// Whether the command at `path` ("up", "ecs run", "ecs") uses the shared flag
/// `id`; the top level takes them all.
fn uses(path: &str, id: &str) -> bool {
    let below = |p: &str| {
        p.strip_prefix(path)
            .is_some_and(|rest| rest.starts_with(' '))
    };
    let rows: Vec<_> = match USES.iter().find(|(p, _)| *p == path) {
        _ if path.is_empty() => return true,
        Some(row) => vec![row],
        None => USES.iter().filter(|(p, _)| below(p)).collect(),
    };
    rows.iter()
        .any(|(_, groups)| groups.iter().any(|g| g.contains(&id)))
}

/// Hides from each subcommand's `--help` (and completions) the shared flags it
/// does not use. clap copies a global flag into a subcommand only when that
/// subcommand has no argument of its id, so a hidden copy placed first is what
/// the subcommand (and its own subcommands) gets; parsing, the environment and
/// the value's way between the levels stay those of the global flag.
fn scoped(cmd: clap::Command) -> clap::Command {
    scope_below(cmd, "", &shared_flags())
}

fn scope_below(cmd: clap::Command, path: &str, shared: &[clap::Arg]) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    names.into_iter().fold(cmd, |cmd, name| {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd.mut_subcommand(&name, |sub| {
            let unused: Vec<clap::Arg> = shared
                .iter()
                .filter(|a| !uses(&sub_path, a.get_id().as_str()))
                .filter(|a| sub.get_arguments().all(|b| b.get_id() != a.get_id()))
                .map(|a| a.clone().hide(true))
                .collect();
            scope_below(sub.args(unused), &sub_path, shared)
        })
    })
}

/// A shared flag given on the command line of a command that does not use it
/// (the report to `status`, the lock timeout to `ecs run`): refused rather than
/// silently ignored. From the environment it stays harmless, as a task
/// definition sets its variables for every command it runs.
fn unused_flag(matches: &clap::ArgMatches) -> Option<String> {
    let mut levels = vec![matches];
    let mut path = Vec::new();
    while let Some((name, sub)) = levels.last().and_then(|m| m.subcommand()) {
        path.push(name);
        levels.push(sub);
    }
    let path = path.join(" ");
    let given = |id: &str| {
        levels.iter().any(|m| {
            m.try_contains_id(id).unwrap_or(false)
                && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
    };
    let shared = shared_flags();
    let arg = shared
        .iter()
        .find(|a| !uses(&path, a.get_id().as_str()) && given(a.get_id().as_str()))?;
    let flag = format!("--{}", arg.get_long().unwrap_or_default());
    let env = arg
        .get_env()
        .map(|e| format!(" (from {}, it is ignored)", e.to_string_lossy()))
        .unwrap_or_default();
    Some(format!(
        "`{path}` does not use {flag}: drop {flag} from its command line{env}"
    ))
}

/// The flags of `Global`, accepted by every command before or after its name.
fn shared_flags() -> Vec<clap::Arg> {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect()
}

/// Parses the process's command line. On `--help`, `--version` or a usage
/// error, clap's text is printed here and the exit code returned (0 or 2).
pub fn parse() -> Result<Cli, u8> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    try_parse_from(args.iter().cloned()).map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print();
            return 0;
        }
        let usage = migrator_core::error::ExitStatus::Usage;
        if wants_json_logs(&args) {
            // Even a command line clap refuses ends in one JSON line there.
            let text = e.render().to_string();
            let message = text.trim().trim_start_matches("error: ");
            crate::output::init_logging(LogFormat::Json);
            crate::output::final_error(LogFormat::Json, message, usage);
        } else {
            let _ = e.print();
        }
        usage.code()
    })
}

/// `--log-format json` (or `MIGRATOR_LOG_FORMAT=json`) in a command line clap
/// could not parse.
fn wants_json_logs(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let flag = words
        .windows(2)
        .any(|w| w[0] == "--log-format" && w[1].trim().eq_ignore_ascii_case("json"))
        || words
            .iter()
            .any(|w| w.eq_ignore_ascii_case("--log-format=json"));
    let env =
        std::env::var("MIGRATOR_LOG_FORMAT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"));
    flag || env
}

/// Parses a command line (`argv[0]` first) into settings and action; clap's
/// message on error. For callers that hold words, not a process (tests).
pub fn parse_from<I, T>(args: I) -> Result<(Settings, Action), String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    try_parse_from(args)
        .map(Cli::into_parts)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Action {
        let mut full = vec!["migrator"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).unwrap().into_parts().1
    }

    #[test]
    fn every_changing_or_reading_subcommand_shows_examples_that_never_wrap() {
        for line in EXAMPLES.lines() {
            assert!(
                line.chars().count() <= 80,
                "too long for 80 columns: {line}"
            );
        }
        let mut cli = Cli::command();
        for name in [
            "up",
            "down",
            "status",
            "validate",
            "force",
            "baseline",
            "redo",
            "repair",
            "new",
            "completions",
        ] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            let examples = help.split("Examples:").nth(1).unwrap_or_default();
            let shown = examples.lines().filter(|l| l.contains("migrator ")).count();
            assert!((2..=3).contains(&shown), "{name}: {shown} examples\n{help}");
        }
    }

    #[test]
    fn down_defaults_to_one_step() {
        assert_eq!(
            parse(&["down"]),
            Action::Change(Change::Down {
                target: DownTarget::Steps(1),
                yes: false,
                dry_run: false
            })
        );
        assert!(matches!(
            parse(&["down", "--all", "--yes"]),
            Action::Change(Change::Down {
                target: DownTarget::All,
                yes: true,
                ..
            })
        ));
        assert!(matches!(
            parse(&["down", "--to", "3"]),
            Action::Change(Change::Down {
                target: DownTarget::To(3),
                ..
            })
        ));
        assert!(Cli::try_parse_from(["migrator", "down", "2", "--all"]).is_err());
    }

    #[test]
    fn ecs_run_flags_make_the_run_spec() {
        let Action::EcsRun(spec) = parse(&[
            "ecs",
            "run",
            "--cluster",
            "deploy",
            "--task-definition",
            "shop-migrate:7",
            "--container",
            "migrate",
            "--command",
            "migrator up --to '20261101000000'",
            "--container-env",
            "MIGRATOR_ENV=staging-1",
            "--container-env",
            "MIGRATOR_WAIT=60",
            "--launch-type",
            "fargate",
            "--subnets",
            "subnet-1, subnet-2",
            "--security-groups",
            "sg-1",
            "--assign-public-ip",
            "--timeout",
            "1h30m",
            "--no-logs",
        ]) else {
            panic!("not ecs run")
        };
        assert_eq!(spec.cluster, "deploy");
        assert_eq!(spec.task_definition, "shop-migrate:7");
        assert_eq!(spec.container.as_deref(), Some("migrate"));
        assert_eq!(
            spec.command.unwrap(),
            ["migrator", "up", "--to", "20261101000000"]
        );
        assert_eq!(
            spec.environment,
            [
                ("MIGRATOR_ENV".to_string(), "staging-1".to_string()),
                ("MIGRATOR_WAIT".to_string(), "60".to_string())
            ]
        );
        assert_eq!(
            spec.launch_type,
            Some(migrator_core::ecs::LaunchType::Fargate)
        );
        let network = spec.network.unwrap();
        assert_eq!(network.subnets, ["subnet-1", "subnet-2"]);
        assert_eq!(network.security_groups, ["sg-1"]);
        assert!(network.assign_public_ip);
        assert_eq!(spec.timeout, Duration::from_secs(5400));
        assert!(!spec.logs);
    }

    #[test]
    fn ecs_run_defaults_and_refusals() {
        let Action::EcsRun(spec) =
            parse(&["ecs", "run", "--cluster", "c", "--task-definition", "t"])
        else {
            panic!("not ecs run")
        };
        assert_eq!(spec.timeout, Duration::from_secs(3600));
        assert!(spec.logs);
        assert_eq!(
            (spec.container, spec.command, spec.network),
            (None, None, None)
        );
        assert_eq!(spec.launch_type, None);
        let fails = |extra: &[&str]| {
            let mut args = vec![
                "migrator",
                "ecs",
                "run",
                "--cluster",
                "c",
                "--task-definition",
                "t",
            ];
            args.extend_from_slice(extra);
            Cli::try_parse_from(args).is_err()
        };
        assert!(fails(&["--timeout", "0"]));
        assert!(fails(&["--command", "'open"]));
        let Action::EcsRun(blank) = parse(&[
            "ecs",
            "run",
            "--cluster",
            "c",
            "--task-definition",
            "t",
            "--command",
            " ",
            "--container",
            "",
            "--container-env",
            "A=1\n\nB=2\n",
            "--subnets",
            "",
        ]) else {
            panic!("not ecs run")
        };
        assert_eq!(
            (blank.command, blank.container, blank.network),
            (None, None, None)
        );
        assert_eq!(
            blank.environment,
            [
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "2".to_string())
            ]
        );
        assert!(fails(&["--container-env", "NOVALUE"]));
        assert!(fails(&["--launch-type", "EXTERNAL"]));
        assert!(fails(&["--capacity-provider-strategy", "FARGATE_SPOT:x"]));
        let Action::EcsRun(default) = parse(&[
            "ecs",
            "run",
            "--cluster",
            "c",
            "--task-definition",
            "t",
            "--launch-type",
            "",
            "--capacity-provider-strategy",
            "FARGATE_SPOT:3,FARGATE:1:1",
            "--platform-version",
            "1.4.0",
        ]) else {
            panic!("not ecs run")
        };
        assert_eq!(default.launch_type, None, "blank: the cluster's default");
        assert_eq!(default.capacity_providers.len(), 2);
        assert_eq!(default.capacity_providers[0].name, "FARGATE_SPOT");
        assert_eq!(default.platform_version.as_deref(), Some("1.4.0"));
        assert!(Cli::try_parse_from(["migrator", "ecs", "run", "--cluster", "c"]).is_err());
    }

    fn help_of(path: &[&str]) -> String {
        let mut cmd = command();
        cmd.build();
        let mut sub = &mut cmd;
        for name in path {
            sub = sub.find_subcommand_mut(name).unwrap();
        }
        sub.render_long_help().to_string()
    }

    #[test]
    fn the_scoped_command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_shared_flag_is_in_a_group_and_every_group_names_shared_flags() {
        let shared: Vec<String> = shared_flags()
            .iter()
            .map(|a| a.get_id().to_string())
            .collect();
        let grouped: Vec<&str> =
            [LOGS, CONNECTION, PATH, CHECKS, OUTPUT, RUN, PROTECT, NOTIFY].concat();
        for id in &shared {
            assert!(grouped.contains(&id.as_str()), "{id} is in no group");
        }
        for id in &grouped {
            assert!(shared.iter().any(|s| s == id), "{id} is no shared flag");
        }
        let cmd = Cli::command();
        for (path, _) in USES {
            let mut sub = &cmd;
            for name in path.split(' ') {
                sub = sub.find_subcommand(name).unwrap();
            }
        }
        for sub in cmd.get_subcommands() {
            let name = sub.get_name();
            let known = USES
                .iter()
                .any(|(p, _)| *p == name || p.starts_with(&format!("{name} ")));
            assert!(known, "`{name}` is not in USES");
        }
    }

    #[test]
    fn each_help_shows_the_shared_flags_its_command_uses() {
        let ecs = help_of(&["ecs", "run"]);
        assert!(!ecs.contains("--database-url"), "{ecs}");
        assert!(!ecs.contains("--lock-timeout"), "{ecs}");
        assert!(ecs.contains("--task-definition") && ecs.contains("--log-format"));
        assert!(!help_of(&["ecs"]).contains("--path"));
        let new = help_of(&["new"]);
        assert!(new.contains("--path"), "{new}");
        assert!(!new.contains("--lock-timeout") && !new.contains("--database-url"));
        let completions = help_of(&["completions"]);
        assert!(!completions.contains("--path"), "{completions}");
        let status = help_of(&["status"]);
        assert!(status.contains("--database-url") && status.contains("--ignore-missing"));
        assert!(!status.contains("--report") && !status.contains("--slack-webhook"));
        assert!(!status.contains("--lock-timeout"), "{status}");
        for name in ["up", "down", "redo", "force", "baseline", "repair"] {
            let help = help_of(&[name]);
            for flag in [
                "--lock-timeout",
                "--report",
                "--confirm-env",
                "--notify-budget",
            ] {
                assert!(help.contains(flag), "{name} --help lacks {flag}");
            }
        }
        let rotate = help_of(&["rotate"]);
        assert!(rotate.contains("--master-secret") && rotate.contains("--slack-webhook"));
        assert!(!rotate.contains("--confirm-env"), "{rotate}");
        let top = help_of(&[]);
        assert!(top.contains("--lock-timeout") && top.contains("--database-url"));
    }

    #[test]
    fn a_shared_flag_a_command_does_not_use_is_refused_on_its_command_line_only() {
        let ecs = ["ecs", "run", "--cluster", "c", "--task-definition", "t"];
        for args in [
            [&["migrator"][..], &ecs[..], &["--lock-timeout", "5"][..]].concat(),
            [&["migrator", "--lock-timeout", "5"][..], &ecs[..]].concat(),
            [&["migrator", "ecs", "--lock-timeout", "5"][..], &ecs[1..]].concat(),
        ] {
            let e = try_parse_from(args).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(
                text.contains("`ecs run`") && text.contains("--lock-timeout"),
                "{text}"
            );
        }
        let e = try_parse_from(["migrator", "new", "x", "--database-url", "postgres://h/d"])
            .unwrap_err();
        assert!(
            e.to_string().contains("`new` does not use --database-url"),
            "{e}"
        );
        assert!(try_parse_from(["migrator", "validate", "--lock-timeout", "5"]).is_err());
        assert!(
            try_parse_from([
                "migrator",
                "rotate",
                "run",
                "--name-prefix",
                "a-",
                "--confirm-env",
                "x"
            ])
            .is_err()
        );
        // Used flags: before and after the subcommand.
        for args in [
            ["migrator", "--database-url", "postgres://h/d", "up"],
            ["migrator", "up", "--database-url", "postgres://h/d"],
        ] {
            let (settings, _) = try_parse_from(args).unwrap().into_parts();
            assert_eq!(settings.database_url.as_deref(), Some("postgres://h/d"));
        }
        let (settings, _) = try_parse_from(["migrator", "new", "x", "--path", "db"])
            .unwrap()
            .into_parts();
        assert_eq!(settings.path, PathBuf::from("db"));
        assert!(
            try_parse_from(["migrator", "--log-format", "json", "completions", "bash"]).is_ok()
        );
    }

    #[test]
    fn a_shared_flag_from_the_environment_is_ignored_where_unused() {
        // The variable is set the way a task definition sets it: for the whole
        // process. So the test runs again in a child process that has it,
        // rather than change this process's environment under other tests.
        const CHILD: &str = "MIGRATOR_CLI_TEST_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let name = "cli::tests::a_shared_flag_from_the_environment_is_ignored_where_unused";
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--test-threads", "1"])
                .env(CHILD, "1")
                .env("MIGRATOR_LOCK_TIMEOUT", "5")
                .env("MIGRATOR_REPORT", "/tmp/report.json")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        let ecs = try_parse_from([
            "migrator",
            "ecs",
            "run",
            "--cluster",
            "c",
            "--task-definition",
            "t",
        ]);
        assert!(matches!(ecs.unwrap().command, Command::Ecs { .. }));
        assert!(try_parse_from(["migrator", "status"]).is_ok());
        let (up, _) = try_parse_from(["migrator", "up"]).unwrap().into_parts();
        assert_eq!(up.lock_timeout, Duration::from_secs(5));
        assert_eq!(up.report, Some(PathBuf::from("/tmp/report.json")));
    }
}
