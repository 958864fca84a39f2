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

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::aws::rotate::{Call, RotateAws, Secret};
use crate::db::{self, Driver, WaitPolicy};
use crate::interrupt::Interrupt;
use crate::settings::{Change, OutputFormat, Placement, RotateSettings, Settings, Which};
use migrator_core::conn::Parts;
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::report::RunReport;
use migrator_core::rotate::plan::{
    ClonePlan, Cluster, Day, Gate, LIFECYCLE_TAG, Lifecycle, Prefix, Step, Today,
};
use migrator_core::rotate::summary::{RotateReport, StepOutcome, StepResult};

impl RotateSettings {
    /// Flags each step needs, checked before any call.
    fn check(&self, steps: &[Which]) -> Result<Prefix> {
        let prefix = Prefix::new(&self.prefix).map_err(Error::usage)?;
        let mut missing = Vec::new();
        for s in steps {
            let needs: &[(&str, bool)] = match s {
                Which::Clone => &[("--source-cluster", self.source.is_some())],
                Which::Scrub => &[
                    ("--master-secret", self.master_secret.is_some()),
                    ("--scrub-dir", self.scrub_dir.is_some()),
                ],
                Which::Migrate => &[("--master-secret", self.master_secret.is_some())],
                Which::Connect => &[
                    ("--dns-name", self.dns_name.is_some()),
                    ("--hosted-zone-id", self.hosted_zone_id.is_some()),
                ],
                _ => &[],
            };
            for (flag, given) in needs {
                if !given && !missing.contains(flag) {
                    missing.push(*flag);
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "`rotate {}` needs {}",
                steps
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.join(", ")
            )));
        }
        if let Some(dir) = &self.scrub_dir
            && steps.contains(&Which::Scrub)
        {
            scrub::read_files(dir)?;
        }
        Ok(prefix)
    }
}

fn unix_now() -> i64 {
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
    let steps = which.steps();
    let prefix = rotate.check(&steps)?;
    if which != Which::Migrate {
        crate::notify::check(&settings.notify)?;
    }
    // With --today, "now" is midnight UTC at its start: ages are whole days.
    let now = rotate.today.map_or_else(unix_now, Day::midnight);
    let day = Day::of_unix(now);
    let sdk = crate::aws::Sdk::load().await;
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
        let result = r.step(step).await;
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

    pub async fn step(&mut self, which: Which) -> Result<Outcome> {
        match which {
            Which::Clone => self.clone_step().await,
            Which::Ready => self.ready().await,
            Which::Scrub => self.scrub().await,
            Which::Migrate => self.migrate().await,
            Which::Connect => self.connect().await,
            Which::Clean => self.clean().await,
            Which::Run => unreachable!("`run` is expanded into its steps"),
        }
    }

    /// Makes one changing call, or prints it in a dry run. A call on a cluster
    /// is made only if the cluster, read again now, is still ours.
    pub async fn apply(&mut self, call: Call) -> Result<()> {
        if let Some(id) = call.cluster() {
            self.guard(id).await?;
        }
        self.calls.push(call.to_string());
        if self.dry() {
            crate::output::stdout(&format!("would call: {call}"));
            return Ok(());
        }
        tracing::info!(call = %call, "AWS");
        self.aws.call(&call).await
    }

    /// The safety rule on fresh tags. In a dry run, a cluster that does not
    /// exist yet (it would be created) passes: there is nothing to protect.
    async fn guard(&self, id: &str) -> Result<()> {
        let Some(c) = self.aws.cluster(id).await? else {
            if self.dry() {
                return Ok(());
            }
            return Err(Error::usage(format!("RDS cluster `{id}` does not exist")));
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
        })
        .await
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

    async fn clone_step(&mut self) -> Result<Outcome> {
        let source_id = self.rotate.source.clone().expect("checked");
        let Some(source) = self.aws.cluster(&source_id).await? else {
            return Err(Error::usage(format!(
                "--source-cluster `{source_id}`: no such RDS cluster"
            )));
        };
        let clusters = self.aws.clusters().await?;
        let copy_on_write = !self.rotate.from_snapshot;
        let plan = migrator_core::rotate::plan::plan_clone(
            &clusters,
            &source,
            &self.prefix,
            self.day,
            copy_on_write,
        )
        .map_err(Error::RotateRefused)?;
        let engine = source
            .engine
            .clone()
            .ok_or_else(|| Error::usage(format!("`{source_id}`: RDS names no engine")))?;
        match plan {
            ClonePlan::Exists {
                id,
                lifecycle,
                create_writer: None,
            } => {
                self.assume(lifecycle);
                Ok((
                    StepOutcome::NothingToDo,
                    format!(
                        "today's clone `{id}` already exists ({LIFECYCLE_TAG}={lifecycle}); not \
                         creating another"
                    ),
                ))
            }
            ClonePlan::Exists {
                id,
                lifecycle,
                create_writer: Some(writer),
            } => {
                let class = self.instance_class(&source).await?;
                self.apply(Call::CreateWriter {
                    id: writer.clone(),
                    cluster: id.clone(),
                    engine,
                    class,
                })
                .await?;
                self.assume(lifecycle);
                self.done(format!(
                    "today's clone `{id}` already exists ({LIFECYCLE_TAG}={lifecycle}) without a \
                     writer; created `{writer}`"
                ))
            }
            ClonePlan::Create { id } => {
                let placement = Placement {
                    subnet_group: self
                        .rotate
                        .placement
                        .subnet_group
                        .clone()
                        .or(source.subnet_group.clone()),
                    security_groups: if self.rotate.placement.security_groups.is_empty() {
                        source.security_groups.clone()
                    } else {
                        self.rotate.placement.security_groups.clone()
                    },
                    parameter_group: self
                        .rotate
                        .placement
                        .parameter_group
                        .clone()
                        .or(source.parameter_group.clone()),
                };
                let tags = vec![
                    (
                        LIFECYCLE_TAG.to_string(),
                        Lifecycle::Created.as_str().to_string(),
                    ),
                    (
                        migrator_core::rotate::plan::SOURCE_TAG.to_string(),
                        source_id.clone(),
                    ),
                ];
                let how = if copy_on_write {
                    self.apply(Call::RestoreToPointInTime {
                        id: id.clone(),
                        source: source_id.clone(),
                        placement,
                        tags,
                    })
                    .await?;
                    "copy-on-write clone".to_string()
                } else {
                    let snap = self.aws.latest_snapshot(&source_id).await?.ok_or_else(|| {
                        Error::usage(format!(
                            "--from-snapshot: `{source_id}` has no available automated snapshot"
                        ))
                    })?;
                    let how = format!("restore of snapshot `{}`", snap.id);
                    self.apply(Call::RestoreFromSnapshot {
                        id: id.clone(),
                        snapshot: snap.id,
                        engine: engine.clone(),
                        engine_version: source.engine_version.clone(),
                        placement,
                        tags,
                    })
                    .await?;
                    how
                };
                let writer = migrator_core::rotate::plan::writer_id(&id);
                let class = self.instance_class(&source).await?;
                self.apply(Call::CreateWriter {
                    id: writer.clone(),
                    cluster: id.clone(),
                    engine,
                    class,
                })
                .await?;
                self.assume(Lifecycle::Created);
                self.done(format!(
                    "{}created `{id}` ({how} of `{source_id}`) and its writer `{writer}`, \
                     tagged {LIFECYCLE_TAG}=created",
                    self.would()
                ))
            }
        }
    }

    /// `--instance-class`, else the source writer's class.
    async fn instance_class(&self, source: &Cluster) -> Result<String> {
        if let Some(c) = &self.rotate.instance_class {
            return Ok(c.clone());
        }
        let writer = source.writer().ok_or_else(|| {
            Error::usage(format!(
                "`{}` has no writer instance to copy the class from; pass --instance-class",
                source.id
            ))
        })?;
        self.aws
            .instance(writer)
            .await?
            .and_then(|i| i.class)
            .ok_or_else(|| {
                Error::usage(format!(
                    "cannot read the class of `{writer}`; pass --instance-class"
                ))
            })
    }

    /// Sleeps before the next poll, or says why not: the deadline passed
    /// (exit 3) or a signal came (130/143).
    async fn pause(&self, attempt: &mut u32, deadline: Instant, waiting_for: &str) -> Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Unreachable {
                target: waiting_for.to_string(),
                message: format!(
                    "not there after waiting {} s (--timeout)",
                    self.rotate.timeout.as_secs()
                ),
            });
        }
        let pause = self
            .rotate
            .poll
            .saturating_mul(1 << (*attempt).min(6))
            .min(Duration::from_secs(15))
            .min(deadline - now);
        *attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(pause) => Ok(()),
            _ = self.interrupt.wait() => Err(Error::Interrupted {
                signal: self.interrupt.signal().unwrap_or(migrator_core::error::Signal::Sigterm),
                detail: Some(format!("while waiting for {waiting_for}")),
            }),
        }
    }

    /// Polls until the cluster and its writer are `available`.
    async fn wait_available(&self, id: &str, deadline: Instant) -> Result<Cluster> {
        let mut attempt = 0;
        let mut last = String::new();
        loop {
            let c = self
                .aws
                .cluster(id)
                .await?
                .ok_or_else(|| Error::usage(format!("RDS cluster `{id}` disappeared")))?;
            let writer = match c.writer() {
                Some(w) => self.aws.instance(w).await?.map(|i| i.status),
                None => None,
            };
            let seen = format!(
                "cluster {}, writer {}",
                c.status,
                writer.as_deref().unwrap_or("not there yet")
            );
            if seen != last {
                tracing::info!(cluster = id, status = %seen, "waiting for the clone");
                last = seen;
            }
            if c.status == "available" && writer.as_deref() == Some("available") {
                return Ok(c);
            }
            self.pause(
                &mut attempt,
                deadline,
                &format!("RDS cluster `{id}` ({last})"),
            )
            .await?;
        }
    }

    /// Where to reach the clone's database: the writer endpoint, unless
    /// `--db-host`/`--db-port` or `--database-url` say otherwise.
    fn address(&self, c: &Cluster) -> Result<(Engine, String, u16)> {
        let url = match self.settings.database_url.as_deref() {
            Some(u) => migrator_core::conn::parse_url(u)
                .map_err(|e| Error::usage(format!("--database-url: {e}")))?,
            None => Parts::default(),
        };
        let flags = &self.settings.connection;
        let engine = c
            .engine
            .as_deref()
            .and_then(migrator_core::conn::engine_of)
            .or(url.engine)
            .ok_or_else(|| Error::usage(format!("`{}`: unknown engine", c.id)))?;
        let host = flags
            .host
            .clone()
            .or(url.host)
            .or(c.endpoint.clone())
            .ok_or_else(|| Error::usage(format!("`{}` has no endpoint yet", c.id)))?;
        let port = flags.port.or(url.port).or(c.port).unwrap_or(match engine {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        });
        Ok((engine, host, port))
    }

    async fn ready(&mut self) -> Result<Outcome> {
        let Some((c, _)) = self.gated(Step::Ready).await? else {
            return Ok((
                StepOutcome::NothingToDo,
                format!("`{}` is already ready", self.clone_id()),
            ));
        };
        let id = self.clone_id();
        if self.dry() {
            let c = c.unwrap_or_else(|| stub(&id));
            self.tag(&c, Lifecycle::Ready, &[]).await?;
            self.assume(Lifecycle::Ready);
            return self.done(format!(
                "would wait (at most {} s) for `{id}` and its writer to be available and its \
                 database to answer, then tag it ready",
                self.rotate.timeout.as_secs()
            ));
        }
        let c = c.expect("today's clone exists outside a dry run");
        let started = Instant::now();
        let deadline = started + self.rotate.timeout;
        let c = self.wait_available(&c.id, deadline).await?;
        let (engine, host, port) = self.address(&c)?;
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = left.clamp(Duration::from_millis(100), Duration::from_secs(10));
            match probe::probe(engine, &host, port, limit).await {
                probe::Answer::Accepting => break,
                probe::Answer::NotYet(why) => {
                    tracing::info!(host = %host, port, why = %why, "database not answering yet");
                    self.pause(
                        &mut attempt,
                        deadline,
                        &format!("the database at {host}:{port}"),
                    )
                    .await?;
                }
            }
        }
        self.tag(&c, Lifecycle::Ready, &[]).await?;
        self.done(format!(
            "`{}` available and its database answering at {host}:{port} after {} s; tagged \
             {LIFECYCLE_TAG}=ready",
            c.id,
            started.elapsed().as_secs()
        ))
    }

    /// The settings for reaching the clone's database: the clone as
    /// `--rds-cluster`, the master secret as `--db-secret`, under the user's
    /// URL and `--db-*` flags.
    fn clone_settings(&self, id: &str) -> Settings {
        let mut s = self.settings.clone();
        s.connection.rds_cluster = Some(id.to_string());
        s.connection.db_secret = self.rotate.master_secret.clone();
        s
    }

    async fn connect_db(&self, id: &str) -> Result<db::AnyDriver> {
        let s = self.clone_settings(id);
        let (target, info, left) = crate::db::resolve::target(&s, self.interrupt).await?;
        db::connect(
            &target,
            info,
            left.map(|total| WaitPolicy { total }),
            self.interrupt,
        )
        .await
    }

    /// The secret's JSON: what `--db-secret` reads (RDS's format).
    fn secret_json(c: &Cluster, password: &Secret) -> String {
        let engine = match c.engine.as_deref().and_then(migrator_core::conn::engine_of) {
            Some(Engine::Mysql) => "mysql",
            _ => "postgres",
        };
        serde_json::json!({
            "engine": engine,
            "host": c.endpoint,
            "port": c.port,
            "username": c.master_username,
            "password": password.expose(),
            "dbname": c.database_name,
            "dbClusterIdentifier": c.id,
        })
        .to_string()
    }

    async fn scrub(&mut self) -> Result<Outcome> {
        let Some((c, _)) = self.gated(Step::Scrub).await? else {
            return Ok((
                StepOutcome::NothingToDo,
                format!("`{}` is already scrubbed", self.clone_id()),
            ));
        };
        let secret_id = self.rotate.master_secret.clone().expect("checked");
        let files = scrub::read_files(self.rotate.scrub_dir.as_deref().expect("checked"))?;
        if self.dry() {
            return self.scrub_dry(c, &secret_id, &files).await;
        }
        let c = c.expect("today's clone exists outside a dry run");
        let engine = c
            .engine
            .as_deref()
            .and_then(migrator_core::conn::engine_of)
            .ok_or_else(|| Error::usage(format!("`{}`: unknown engine", c.id)))?;
        scrub::check_files(&files, engine)?;
        // The secret first: a crash after it leaves the clone unscrubbed, and
        // the next run makes a new password; never a password set but not kept.
        let password = new_password()?;
        let create = !self.aws.secret_exists(&secret_id).await?;
        self.apply(Call::StoreSecret {
            secret_id: secret_id.clone(),
            value: Secret::new(Self::secret_json(&c, &password)),
            create,
        })
        .await?;
        self.apply(Call::ResetMasterPassword {
            cluster: c.id.clone(),
            password,
        })
        .await?;
        let deadline = Instant::now() + self.rotate.timeout;
        tokio::time::sleep(self.rotate.poll).await;
        let c = self.wait_available(&c.id, deadline).await?;
        let mut db = self.connect_db(&c.id).await?;
        let (accounts, me) = scrub::logins(&mut db).await?;
        let disable = scrub::to_disable(
            engine,
            &accounts,
            &self.rotate.keep_logins,
            c.master_username.as_deref(),
            &me,
        );
        for a in &disable {
            let sql = scrub::disable_sql(engine, a);
            let statements = migrator_core::split::split(&sql, engine, false)
                .expect("a generated statement splits");
            db.execute_plain(&statements, self.interrupt)
                .await
                .map_err(|e| Error::database(format!("disabling login `{a}`"), e.message))?;
            tracing::info!(login = %a, "login disabled");
        }
        let mut ran = Vec::new();
        for f in &files {
            let ms = scrub::run_file(&mut db, f, self.interrupt).await?;
            tracing::info!(file = %f.name, elapsed_ms = ms, "scrub file done");
            ran.push(f.name.clone());
        }
        self.tag(&c, Lifecycle::Scrubbed, &[]).await?;
        let names: Vec<String> = disable.iter().map(|a| a.to_string()).collect();
        self.done(format!(
            "`{}`: new master password in `{secret_id}`; {} login(s) disabled{}; ran {}; tagged \
             {LIFECYCLE_TAG}=scrubbed",
            c.id,
            disable.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            ran.join(", ")
        ))
    }

    async fn scrub_dry(
        &mut self,
        c: Option<Cluster>,
        secret_id: &str,
        files: &[scrub::ScrubFile],
    ) -> Result<Outcome> {
        let id = self.clone_id();
        let placeholder = Secret::new("(new random password)".to_string());
        let create = !self.aws.secret_exists(secret_id).await?;
        let target = c.clone().unwrap_or_else(|| stub(&id));
        self.apply(Call::StoreSecret {
            secret_id: secret_id.to_string(),
            value: placeholder.clone(),
            create,
        })
        .await?;
        self.apply(Call::ResetMasterPassword {
            cluster: id.clone(),
            password: placeholder,
        })
        .await?;
        let mut lines = Vec::new();
        // Listing the logins needs a connection: with the secret as it is now
        // (or the flags), which may not open the clone yet.
        let engine = target
            .engine
            .as_deref()
            .and_then(migrator_core::conn::engine_of);
        match (&c, engine) {
            (Some(c), Some(engine)) => {
                scrub::check_files(files, engine)?;
                match self.connect_db(&c.id).await {
                    Ok(mut db) => {
                        let (accounts, me) = scrub::logins(&mut db).await?;
                        let disable = scrub::to_disable(
                            engine,
                            &accounts,
                            &self.rotate.keep_logins,
                            c.master_username.as_deref(),
                            &me,
                        );
                        if disable.is_empty() {
                            lines.push("would disable no login".to_string());
                        }
                        for a in disable {
                            lines.push(format!("would run: {}", scrub::disable_sql(engine, &a)));
                        }
                    }
                    Err(e) => lines.push(format!(
                        "would disable every login not kept (cannot list them now: {e})"
                    )),
                }
            }
            _ => lines.push("would disable every login not kept".to_string()),
        }
        for f in files {
            lines.push(format!("would run scrub file {}", f.name));
        }
        self.tag(&target, Lifecycle::Scrubbed, &[]).await?;
        self.assume(Lifecycle::Scrubbed);
        self.done(lines.join("\n"))
    }

    async fn migrate(&mut self) -> Result<Outcome> {
        let Some((c, at)) = self.gated(Step::Migrate).await? else {
            unreachable!("migrate is never done: `up` finds out");
        };
        let Some(c) = c else {
            self.assume(Lifecycle::Migrated);
            return self.done(format!(
                "would run `up` against `{}` once it exists",
                self.clone_id()
            ));
        };
        let mut s = self.clone_settings(&c.id);
        let up = Change::Up {
            to: None,
            single_transaction: false,
            dry_run: self.dry(),
        };
        if !self.alone {
            // `rotate run` posts one message with every step.
            s.notify.webhook = None;
        }
        let (mut report, mut result) = super::changing(&s, &up, self.interrupt).await;
        super::write_report(&s, &report)?;
        if self.alone {
            result = crate::notify::notify(&s.notify, &mut report, result).await;
            super::write_report(&s, &report)?;
        }
        let text = report.summary().trim_end().to_string();
        let changed = !report.applied.is_empty();
        self.migrate = Some(report);
        if let Err(e) = result {
            if self.dry() {
                self.assume(Lifecycle::Migrated);
                return self.done(format!("would run `up` (cannot plan it now: {e})"));
            }
            return Err(e);
        }
        if self.dry() {
            self.assume(Lifecycle::Migrated);
            if at < Lifecycle::Migrated {
                self.tag(&c, Lifecycle::Migrated, &[]).await?;
            }
            return self.done(text);
        }
        if at < Lifecycle::Migrated {
            self.tag(&c, Lifecycle::Migrated, &[]).await?;
            return self.done(format!("{text}\ntagged {LIFECYCLE_TAG}=migrated"));
        }
        Ok((
            if changed {
                StepOutcome::Done
            } else {
                StepOutcome::NothingToDo
            },
            text,
        ))
    }

    async fn connect(&mut self) -> Result<Outcome> {
        let name = self.rotate.dns_name.clone().expect("checked");
        let zone = self.rotate.hosted_zone_id.clone().expect("checked");
        let Some((c, at)) = self.gated(Step::Connect).await? else {
            unreachable!("connect always checks the record and the previous clones");
        };
        let clusters = self.aws.clusters().await?;
        let c = &c.unwrap_or_else(|| Cluster {
            endpoint: Some(format!("{}.cluster-….rds.amazonaws.com", self.clone_id())),
            ..stub(&self.clone_id())
        });
        let endpoint = c
            .endpoint
            .clone()
            .ok_or_else(|| Error::usage(format!("`{}` has no endpoint", c.id)))?;
        let record = self.aws.cname(&zone, &name).await?;
        let plan = migrator_core::rotate::plan::plan_connect(
            &clusters,
            &self.prefix,
            c,
            at,
            &endpoint,
            &name,
            record.as_deref(),
        );
        let mut did = Vec::new();
        if plan.upsert {
            self.apply(Call::UpsertCname {
                zone: zone.clone(),
                name: name.clone(),
                value: endpoint.clone(),
                ttl: self.rotate.ttl,
            })
            .await?;
            did.push(format!(
                "{}{name} → {endpoint} (was {})",
                self.would(),
                record.as_deref().unwrap_or("not there")
            ));
        }
        if plan.tag_connected {
            self.tag(
                c,
                Lifecycle::Connected,
                &[(migrator_core::rotate::plan::DNS_TAG, &name)],
            )
            .await?;
            did.push(format!(
                "{}tagged `{}` {LIFECYCLE_TAG}=connected",
                self.would(),
                c.id
            ));
        }
        for old in &plan.abort {
            let o = clusters
                .iter()
                .find(|x| &x.id == old)
                .expect("planned from the list");
            self.tag(o, Lifecycle::Aborted, &[]).await?;
            did.push(format!(
                "{}tagged `{old}` {LIFECYCLE_TAG}=aborted",
                self.would()
            ));
        }
        self.assume(Lifecycle::Connected);
        if did.is_empty() {
            return Ok((
                StepOutcome::NothingToDo,
                format!("{name} already points at `{}`", c.id),
            ));
        }
        self.done(did.join("\n"))
    }

    async fn clean(&mut self) -> Result<Outcome> {
        let clusters = self.aws.clusters().await?;
        let deletions = migrator_core::rotate::plan::plan_clean(
            &clusters,
            &self.prefix,
            self.now,
            self.rotate.max_age,
        );
        if deletions.is_empty() {
            return Ok((StepOutcome::NothingToDo, "nothing to delete".to_string()));
        }
        let mut lines = Vec::new();
        for d in &deletions {
            let c = clusters
                .iter()
                .find(|c| c.id == d.id)
                .expect("planned from the list");
            self.delete(c).await?;
            lines.push(format!(
                "{} `{}` ({})",
                if self.dry() {
                    "would delete"
                } else {
                    "deleted"
                },
                d.id,
                d.reason
            ));
        }
        self.done(lines.join("\n"))
    }

    /// Deletes a clone: its instances, then (once they are gone) the cluster
    /// without a final snapshot, then waits until RDS no longer knows it.
    async fn delete(&mut self, c: &Cluster) -> Result<()> {
        let deadline = Instant::now() + self.rotate.timeout;
        if c.status != "deleting" {
            for m in &c.members {
                let status = self.aws.instance(&m.id).await?.map(|i| i.status);
                if status.as_deref().is_none_or(|s| s == "deleting") {
                    continue;
                }
                self.apply(Call::DeleteInstance {
                    id: m.id.clone(),
                    cluster: c.id.clone(),
                })
                .await?;
            }
            if self.dry() {
                return self.apply(Call::DeleteCluster { id: c.id.clone() }).await;
            }
            let mut attempt = 0;
            loop {
                let now = self.aws.cluster(&c.id).await?;
                let Some(now) = now else { return Ok(()) };
                if now.members.is_empty() {
                    break;
                }
                self.pause(
                    &mut attempt,
                    deadline,
                    &format!("the instances of `{}` to be deleted", c.id),
                )
                .await?;
            }
            self.apply(Call::DeleteCluster { id: c.id.clone() }).await?;
        } else if self.dry() {
            return Ok(());
        }
        let mut attempt = 0;
        while self.aws.cluster(&c.id).await?.is_some() {
            self.pause(&mut attempt, deadline, &format!("`{}` to be deleted", c.id))
                .await?;
        }
        tracing::info!(cluster = %c.id, "deleted");
        Ok(())
    }
}

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
