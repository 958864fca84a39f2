//! `migrator rotate`: the clone-rotation pipeline, clone → ready → scrub →
//! migrate → connect → clean, driven by `lifecycle` tags on the clusters.
//!
//! This module sequences the steps and does their IO; what each step does is
//! decided by `plan` (pure), AWS is reached through `aws::RotateAws`, the SQL
//! side of scrubbing is `scrub`. Every step reads its state from the clusters'
//! tags, so a step that crashed is simply run again, and a step run again after
//! it succeeded changes nothing.
//!
//! It must never change a cluster that is not ours: every changing call on a
//! cluster goes through [`Rotation::apply`], which re-reads the cluster's tags
//! and checks `migrator_core::rotate::plan::may_touch` right before the call, also in a dry run. A dry
//! run makes read calls only and prints each changing call it would make. No
//! password is ever printed: a new one is registered with `redact` when made.

pub mod probe;
pub mod scrub;
pub mod steps;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::aws::rotate::{Call, Made, RotateAws, Secret};
use crate::aws::wait::Deadline;
use crate::db::{self, ConnectPolicy};
use crate::interrupt::Interrupt;
use crate::settings::{OutputFormat, RotateSettings, Settings, Which};
use migrator_core::backoff::Backoff;
use migrator_core::error::{Error, Result};
use migrator_core::report::RunReport;
use migrator_core::rotate::plan::{
    Cluster, Day, Gate, LIFECYCLE_TAG, Lifecycle, Prefix, Step, Today,
};
use migrator_core::rotate::summary::{RotateReport, StepOutcome, StepResult};

/// Seconds since the epoch by the wall clock (never `--today`): what the
/// `released-at` tag holds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Runs `which` (one step, or all of them) and reports.
pub async fn run(
    settings: &Settings,
    which: Which,
    rotate: &RotateSettings,
    interrupt: &Interrupt,
) -> Result<()> {
    let (prefix, steps) = steps::preflight(rotate, which)?;
    if which != Which::Migrate {
        crate::notify::check(&settings.notify)?;
    }
    // With --today, "now" is midnight UTC at its start: ages are whole days.
    let now = rotate.today.map_or_else(unix_now, Day::midnight);
    let day = Day::of_unix(now);
    let sdk = crate::aws::Sdk::load().await?;
    let mut r = Rotation {
        aws: &sdk,
        settings,
        rotate,
        prefix,
        day,
        now,
        interrupt,
        calls: Vec::new(),
        assumed: None,
        migrate: None,
        alone: which != Which::Run,
    };
    let started = Instant::now();
    let mut results = Vec::new();
    let mut first_error = None;
    for step in steps {
        if first_error.is_some() {
            results.push(StepResult {
                step: step.name(),
                outcome: StepOutcome::NotRun,
                message: String::new(),
                calls: Vec::new(),
                duration_ms: 0,
            });
            continue;
        }
        tracing::info!(step = step.name(), clone = %r.clone_id(), "rotate step");
        let t = Instant::now();
        r.calls.clear();
        let result = r.step(&step).await;
        let (outcome, message) = match &result {
            Ok((o, m)) => (*o, m.clone()),
            Err(e @ Error::RotateRefused(_)) => (StepOutcome::Refused, e.to_string()),
            Err(e) => (StepOutcome::Failed, e.to_string()),
        };
        results.push(StepResult {
            step: step.name(),
            outcome,
            message: migrator_core::redact::scrub(&message).into_owned(),
            calls: std::mem::take(&mut r.calls),
            duration_ms: t.elapsed().as_millis() as u64,
        });
        if let Err(e) = result {
            first_error = Some(e);
        }
    }
    let mut report = RotateReport {
        schema: 1,
        command: format!("rotate {}", which.name()),
        environment: settings.env_label.clone(),
        clone: r.clone_id(),
        dry_run: rotate.dry_run,
        steps: results,
        exit_code: first_error.as_ref().map_or(0, |e| e.exit_status().code()),
        duration_ms: started.elapsed().as_millis() as u64,
        migrate: r.migrate.take(),
        notification: None,
    };
    let mut result = first_error.map_or(Ok(()), Err);
    if which != Which::Migrate {
        let payload = migrator_core::rotate::summary::slack_message(&report);
        let outcome = if report.bad() {
            "failed"
        } else if report.changed() {
            "success"
        } else {
            "nothing to do"
        };
        let n = crate::notify::deliver_payload(
            &settings.notify,
            payload,
            report.bad(),
            report.changed() && !rotate.dry_run,
            outcome,
        )
        .await;
        result = crate::notify::require(&settings.notify, &n, result);
        report.notification = Some(n);
    }
    if let Err(e) = &result {
        report.exit_code = e.exit_status().code();
    }
    match settings.output {
        OutputFormat::Json => crate::output::stdout(
            &serde_json::to_string_pretty(&report).expect("report serializes"),
        ),
        OutputFormat::Text => crate::output::stdout(report.text().trim_end()),
    }
    result
}

type Outcome = (StepOutcome, String);

/// One invocation's state.
pub struct Rotation<'a, A: RotateAws> {
    pub aws: &'a A,
    pub settings: &'a Settings,
    pub rotate: &'a RotateSettings,
    pub prefix: Prefix,
    pub day: Day,
    /// Seconds since the epoch (midnight of `--today` when given).
    pub now: i64,
    pub interrupt: &'a Interrupt,
    /// The changing calls of the current step (made, or printed in a dry run).
    pub calls: Vec<String>,
    /// In a dry run of `rotate run`: the lifecycle the earlier steps would have
    /// brought today's clone to.
    pub assumed: Option<Lifecycle>,
    pub migrate: Option<RunReport>,
    /// One step on its own (`rotate migrate` then notifies like `up`).
    pub alone: bool,
}

impl<A: RotateAws> Rotation<'_, A> {
    pub fn clone_id(&self) -> String {
        self.prefix.clone_id(self.day)
    }

    fn dry(&self) -> bool {
        self.rotate.dry_run
    }

    pub async fn step(&mut self, step: &steps::Step) -> Result<Outcome> {
        match step {
            steps::Step::Clone(s) => s.run(self).await,
            steps::Step::Ready(s) => s.run(self).await,
            steps::Step::Scrub(s) => s.run(self).await,
            steps::Step::Migrate(s) => s.run(self).await,
            steps::Step::Connect(s) => s.run(self).await,
            steps::Step::Clean(s) => s.run(self).await,
        }
    }

    /// Makes one changing call, or prints it in a dry run. A call on a cluster
    /// is made only if the cluster, read again now, is still ours.
    pub async fn apply(&mut self, call: Call) -> Result<Made> {
        if let Some((id, instance)) = call.guarded() {
            self.guard(id, instance).await?;
        }
        self.calls.push(call.to_string());
        if self.dry() {
            crate::output::stdout(&format!("would call: {call}"));
            return Ok(Made::default());
        }
        tracing::info!(call = %call, "AWS");
        self.aws.call(&call).await
    }

    /// The safety rule on fresh tags. In a dry run, a cluster that does not
    /// exist yet (it would be created) passes: there is nothing to protect.
    async fn guard(&self, id: &str, instance: bool) -> Result<()> {
        let Some(c) = self.fetch(id, instance).await? else {
            if self.dry() {
                return Ok(());
            }
            return Err(Error::usage(format!(
                "RDS {} `{id}` does not exist",
                if instance { "instance" } else { "cluster" }
            )));
        };
        let tags = self.aws.tags(&c.arn).await?;
        migrator_core::rotate::plan::may_touch(id, &tags, &self.prefix)
            .map(|_| ())
            .map_err(|why| {
                Error::RotateRefused(format!(
                    "`{id}`: {why}; the rotation never changes a cluster that lacks the prefix \
                     `{}` and a {LIFECYCLE_TAG} tag of its own",
                    self.prefix.as_str()
                ))
            })
    }

    async fn tag(
        &mut self,
        c: &Cluster,
        lifecycle: Lifecycle,
        more: &[(&str, &str)],
    ) -> Result<()> {
        let mut tags = vec![(LIFECYCLE_TAG.to_string(), lifecycle.as_str().to_string())];
        tags.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.apply(Call::AddTags {
            cluster: c.id.clone(),
            arn: c.arn.clone(),
            tags,
            instance: c.instance,
        })
        .await
        .map(|_| ())
    }

    /// Today's clone and its lifecycle; in a dry run of `rotate run`, as the
    /// earlier steps would have left it. `None` (dry run only): it would exist.
    async fn todays(&mut self, step: Step) -> Result<Option<(Cluster, Lifecycle)>> {
        let clusters = self.aws.clusters().await?;
        let id = self.clone_id();
        match migrator_core::rotate::plan::today(&clusters, &self.prefix, self.day) {
            Today::Missing if self.assumed.is_some() => Ok(None),
            Today::Missing => Err(Error::RotateRefused(format!(
                "today's clone `{id}` does not exist; run `migrator rotate clone` first (`{}` \
                 acts on it)",
                step.name()
            ))),
            Today::NotOurs(_, why) => Err(Error::RotateRefused(format!(
                "`{id}` exists but is not ours: {why}; not touching it"
            ))),
            Today::Ours(c, l) => {
                let l = self.assumed.map_or(l, |a| a.max(l));
                Ok(Some((c.clone(), l)))
            }
        }
    }

    /// Gates a step; `Ok(None)`: it was already done.
    async fn gated(&mut self, step: Step) -> Result<Option<(Option<Cluster>, Lifecycle)>> {
        let Some((c, at)) = self.todays(step).await? else {
            let at = self.assumed.expect("a dry run assumed the clone");
            return Ok(Some((None, at)));
        };
        match migrator_core::rotate::plan::gate(step, &c.id, at) {
            Gate::Run => Ok(Some((Some(c), at))),
            Gate::Done => Ok(None),
            Gate::Refuse(why) => Err(Error::RotateRefused(why)),
        }
    }

    /// After a dry-run step: the next one sees the clone as this one would leave it.
    fn assume(&mut self, l: Lifecycle) {
        if self.dry() && !self.alone {
            self.assumed = Some(self.assumed.map_or(l, |a| a.max(l)));
        }
    }

    /// "would have " in a dry run: messages say what did not happen.
    fn would(&self) -> &'static str {
        if self.dry() { "would have " } else { "" }
    }

    fn done(&self, message: String) -> Result<Outcome> {
        Ok((
            if self.dry() {
                StepOutcome::DryRun
            } else {
                StepOutcome::Done
            },
            message,
        ))
    }

    /// Sleeps before the next poll (from `poll`, doubling up to 15 s), or
    /// says why not: `--timeout` passed (exit 3) or a signal came (130/143).
    async fn pause(&self, attempt: &mut u32, deadline: Deadline, waiting_for: &str) -> Result<()> {
        crate::aws::wait::pause(
            self.interrupt,
            self.backoff(),
            attempt,
            deadline,
            waiting_for,
        )
        .await
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.rotate.poll, Duration::from_secs(15))
    }

    /// The end of a wait that starts now.
    fn deadline(&self) -> Deadline {
        Deadline::from_now(self.rotate.timeout, "--timeout")
    }

    /// Polls until the cluster and its writer (or the plain instance) are
    /// `available`.
    async fn wait_available(&self, c: &Cluster, deadline: Deadline) -> Result<Cluster> {
        let id = c.id.as_str();
        if c.instance {
            return self.wait_until_available(id, true, deadline).await;
        }
        crate::aws::wait::until_available(
            self.aws,
            id,
            Some(deadline),
            self.backoff(),
            self.interrupt,
        )
        .await
    }

    /// A cluster, or a plain instance (`instance`), as RDS tells it now.
    async fn fetch(&self, id: &str, instance: bool) -> Result<Option<Cluster>> {
        if instance {
            self.aws.standalone(id).await
        } else {
            self.aws.cluster(id).await
        }
    }

    /// Polls until the cluster itself is `available` (its writer may be missing
    /// or still starting). A cluster this run has just created may not be
    /// listed for a while (eventual consistency): until the deadline, not
    /// found means not yet.
    async fn wait_cluster(&self, id: &str, deadline: Deadline) -> Result<Cluster> {
        self.wait_until_available(id, false, deadline).await
    }

    /// [`Self::wait_cluster`] for a cluster or a plain instance.
    async fn wait_until_available(
        &self,
        id: &str,
        instance: bool,
        deadline: Deadline,
    ) -> Result<Cluster> {
        let mut attempt = 0;
        let mut last = String::new();
        loop {
            let seen = self.fetch(id, instance).await?;
            let status = seen
                .as_ref()
                .map_or("not listed yet", |c| c.status.as_str())
                .to_string();
            if status != last {
                tracing::info!(resource = id, status = %status, "RDS status");
                last = status.clone();
            }
            if let Some(c) = seen
                && c.status == "available"
            {
                return Ok(c);
            }
            self.pause(
                &mut attempt,
                deadline,
                &format!(
                    "RDS {} `{id}` ({status})",
                    if instance { "instance" } else { "cluster" }
                ),
            )
            .await?;
        }
    }

    /// After ModifyDBCluster with a new master password: polls until the
    /// change is in effect (`plan::password_in_effect`). AWS applies it
    /// asynchronously, `resetting-master-credentials` may show only after a
    /// while, and a login with the new password fails until then: an
    /// authentication error is final, so no login is tried before.
    async fn wait_password(
        &self,
        id: &str,
        instance: bool,
        made: &Made,
        deadline: Deadline,
    ) -> Result<Cluster> {
        let started = Instant::now();
        let mut seen = made.password_pending;
        let mut attempt = 0;
        let mut last = String::new();
        loop {
            let c = self
                .fetch(id, instance)
                .await?
                .ok_or_else(|| Error::usage(format!("RDS resource `{id}` not found")))?;
            let status = format!(
                "{}{}",
                c.status,
                if c.password_pending {
                    ", new master password pending"
                } else {
                    ""
                }
            );
            if status != last {
                tracing::info!(cluster = id, status = %status, "RDS cluster status");
                last = status.clone();
            }
            let settled = started.elapsed() >= PASSWORD_SETTLE;
            if migrator_core::rotate::plan::password_in_effect(&c, &mut seen, settled) {
                if !seen {
                    tracing::warn!(
                        cluster = id,
                        "the new master password never showed as pending; assuming it is in                          effect after {} s",
                        PASSWORD_SETTLE.as_secs()
                    );
                }
                return Ok(c);
            }
            self.pause(
                &mut attempt,
                deadline,
                &format!("the new master password of `{id}` ({status})"),
            )
            .await?;
        }
    }

    /// Preflight of the connection `scrub`, `migrate` and `ready` make to a
    /// clone like `c`: what the user's flags and URL leave to the cluster must
    /// be there (a source without DatabaseName, and no --db-name, fails here),
    /// and the TLS settings must hold (a verifying mode needs its CA). Checked
    /// before the first changing call of the step that needs it. The parts
    /// the clone's connection will have (no password).
    fn check_connection(&self, c: &Cluster) -> Result<migrator_core::conn::Parts> {
        let base = migrator_core::conn::Parts {
            engine: c.engine.as_deref().and_then(migrator_core::conn::engine_of),
            host: c.endpoint.clone(),
            port: c.port,
            dbname: c.database_name.clone(),
            user: c.master_username.clone(),
            ..Default::default()
        };
        let sources = format!(
            "cluster `{}`{}",
            c.id,
            if c.database_name.is_none() {
                ", which has no DatabaseName"
            } else {
                ""
            }
        );
        crate::db::resolve::preflight(self.settings, base, &sources)
    }

    /// The settings for reaching the clone's database: the clone as
    /// `--rds-cluster`, the master secret as `--db-secret`, under the user's
    /// URL and `--db-*` flags.
    fn clone_settings(&self, c: &Cluster, master_secret: &str) -> Settings {
        let mut s = self.settings.clone();
        // A plain instance: the secret names its endpoint.
        s.connection.rds_cluster = (!c.instance).then(|| c.id.clone());
        s.connection.db_secret = Some(master_secret.to_string());
        s
    }

    async fn connect_db(&self, c: &Cluster, master_secret: &str) -> Result<db::AnyDriver> {
        let s = self.clone_settings(c, master_secret);
        let (target, info, left) = crate::db::resolve::target(&s, self.interrupt).await?;
        db::connect(
            &target,
            info,
            ConnectPolicy {
                wait: left,
                timeout: s.connect_timeout,
            },
            &s.init_sql,
            self.interrupt,
        )
        .await
    }
}

/// How long `scrub` waits for a sign of the new master password (pending, or
/// `resetting-master-credentials`) before taking it as applied between looks.
const PASSWORD_SETTLE: Duration = Duration::from_secs(30);

/// A cluster known only by name: today's clone in a dry run, before it exists.
fn stub(id: &str) -> Cluster {
    Cluster {
        id: id.to_string(),
        ..Cluster::default()
    }
}

/// 32 characters from [A-Za-z0-9]: within what RDS accepts for a master
/// password (no `/`, `"`, `@` or space), from the system's secure random source.
pub fn new_password() -> Result<Secret> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut out = String::with_capacity(32);
    while out.len() < 32 {
        let mut bytes = [0u8; 64];
        provider
            .secure_random
            .fill(&mut bytes)
            .map_err(|_| Error::usage("the system's random source failed"))?;
        out.push_str(&password_chars(&bytes));
    }
    out.truncate(32);
    Ok(Secret::new(out))
}

/// Maps random bytes to [A-Za-z0-9], dropping those that would bias the result.
pub fn password_chars(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .filter(|&&b| usize::from(b) < 256 - 256 % ALPHABET.len())
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests;
