//! `migrator ecs run`: the CI side of a deploy. Starts the migration task on ECS,
//! follows it until its migration container has exited, shows its status
//! changes and that container's log lines on stdout, and exits with that
//! container's exit code, so that a failed migration fails the build. It does
//! not wait for the rest of the task (a sidecar, the network interface's
//! deprovisioning) once the verdict is known.
//!
//! This module only sequences IO (`client`); every judgement is `decide`'s, and
//! the request is `spec`'s. It never connects to a database, never reads
//! migration files, and stops no task but the one it started, and that one only
//! when `--timeout` is reached, a signal arrives, or it can no longer follow it.
//! It never ends while its task may still run without either having stopped it
//! or naming the task and the command that stops it (exit 9).

pub mod decide;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ecs::types::Task;

use self::decide::{STOPPED, Target};
use crate::aws::ecs::{Ecs, Logs, RunRequest};
use crate::interrupt::Interrupt;
use crate::output;
use migrator_core::ecs::RunSpec;
use migrator_core::error::{Error, ExitStatus, Result, Signal};

/// How often the log stream is read while the task runs.
const LOG_POLL: Duration = Duration::from_secs(2);
/// Once the migration container has exited, the log stream is read again every
/// [`DRAIN_PAUSE`] until a read brings nothing new, for at most [`DRAIN_BOUND`]:
/// the `awslogs` driver ships a container's last lines shortly after it exited.
const DRAIN_PAUSE: Duration = Duration::from_secs(1);
const DRAIN_BOUND: Duration = Duration::from_secs(3);
/// Pages read in one go; the next read continues where this one stopped.
const MAX_PAGES: usize = 50;
/// AWS refusing DescribeTasks this many times in a row (after the SDK's own
/// retries; access denied, no such cluster) ends the wait: the task is stopped,
/// or named with its stop command. Not reaching AWS, and DescribeTasks not
/// knowing the task yet (MISSING), do not count: those are waited out until
/// `--timeout`.
const MAX_DESCRIBE_REFUSALS: u32 = 5;
/// After StopTask on timeout, how long to keep following the task (and showing
/// its last log lines) for it to reach STOPPED. Longer than ECS's largest
/// container `stopTimeout` (120 s).
const STOP_GRACE: Duration = Duration::from_secs(150);

/// Runs `spec` through the AWS SDK.
pub async fn run(spec: &RunSpec, interrupt: &Interrupt) -> Result<()> {
    spec.check().map_err(Error::usage)?;
    let sdk = crate::aws::Sdk::load().await?;
    let ecs = crate::aws::ecs::SdkEcs::new(&sdk.config);
    let td = ecs.task_definition(&spec.task_definition).await?;
    let target = decide::target(&td, spec.container.as_deref())
        .map_err(|e| Error::usage(format!("task definition `{}`: {e}", spec.task_definition)))?;
    decide::preflight(&td, spec)
        .map_err(|e| Error::usage(format!("task definition `{}`: {e}", spec.task_definition)))?;
    let logs = match (&target.logs, spec.logs) {
        (_, false) => None,
        (decide::Logs::Unavailable(why), true) => {
            tracing::warn!("{why}");
            None
        }
        (decide::Logs::Awslogs(source), true) => Some((
            crate::aws::ecs::SdkLogs::new(&sdk.config, source.region.as_deref()),
            source.clone(),
        )),
    };
    let td_arn = td
        .task_definition_arn()
        .unwrap_or(&spec.task_definition)
        .to_string();
    execute(&ecs, logs, spec, &target, &td_arn, interrupt).await
}

/// Starts the task and follows it to its end; `logs`: where to read the
/// migration container's log lines, if anywhere.
pub async fn execute<E: Ecs, L: Logs>(
    ecs: &E,
    logs: Option<(L, decide::LogSource)>,
    spec: &RunSpec,
    target: &Target,
    task_definition_arn: &str,
    interrupt: &Interrupt,
) -> Result<()> {
    if let Some(signal) = interrupt.signal() {
        return Err(Error::Interrupted {
            signal,
            detail: Some("no task was started".to_string()),
        });
    }
    let token = client_token();
    let (tasks, failures) = ecs
        .run_task(RunRequest {
            spec,
            task_definition_arn,
            container: &target.container,
            client_token: &token,
        })
        .await?;
    let task = decide::started(&tasks, &failures).map_err(|reasons| Error::TaskNotStarted {
        cluster: spec.cluster.clone(),
        task_definition: task_definition_arn.to_string(),
        reasons,
    })?;
    let arn = task
        .task_arn()
        .ok_or_else(|| Error::usage("RunTask returned a task without an ARN"))?
        .to_string();
    let mut follower =
        logs.map(|(client, source)| Follower::new(client, &source, &target.container, &arn));
    output::stdout(&format!(
        "{} started task {arn} of {task_definition_arn}; migration container `{}`",
        decide::timestamp(SystemTime::now()),
        target.container
    ));
    let watch = Watch {
        ecs,
        spec,
        target,
        arn: &arn,
        interrupt,
    };
    let (ended, timed_out) = watch.follow(task, follower.as_mut()).await?;
    if let Some(f) = follower.as_mut() {
        f.drain(interrupt).await;
    }
    let verdict = decide::verdict(&ended, target);
    for line in &verdict.containers {
        output::stdout(line);
    }
    for warning in &verdict.warnings {
        tracing::warn!("{warning}");
    }
    if decide::status(&ended) != STOPPED {
        output::stdout(&format!(
            "{} task {} is still {} (its other containers and network interface stop on \
             their own): not waiting for STOPPED, the migration container has exited",
            decide::timestamp(SystemTime::now()),
            decide::task_id(&arn),
            decide::status(&ended)
        ));
    }
    if timed_out {
        return Err(Error::TaskTimeout {
            task: arn,
            timeout: migrator_core::duration::format(spec.timeout),
            stopped: "stopped it with StopTask".to_string(),
        });
    }
    verdict.result()
}

/// A token for RunTask's idempotency: unique per run of this process.
fn client_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("migrator-{}-{nanos:x}", std::process::id())
}

/// `fut`, unless a signal arrives first.
async fn unless_interrupted<T>(interrupt: &Interrupt, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = interrupt.wait() => None,
        value = fut => Some(value),
    }
}

struct Watch<'a, E> {
    ecs: &'a E,
    spec: &'a RunSpec,
    target: &'a Target,
    arn: &'a str,
    interrupt: &'a Interrupt,
}

impl<E: Ecs> Watch<'_, E> {
    /// Polls the task until its migration container has exited or the task is
    /// STOPPED: the last answer, and whether `--timeout` made us stop the task.
    async fn follow<L: Logs>(
        &self,
        first: &Task,
        mut follower: Option<&mut Follower<L>>,
    ) -> Result<(Task, bool)> {
        let mut status = decide::status(first).to_string();
        output::stdout(&decide::status_line(SystemTime::now(), first));
        if status == STOPPED || decide::migration_exited(first, self.target) {
            return Ok((first.clone(), false));
        }
        let mut deadline = Instant::now() + self.spec.timeout;
        let mut timed_out = false;
        let mut delay = decide::FIRST_POLL;
        let mut missing: Option<Duration> = None;
        let mut next_describe = Instant::now() + delay;
        let mut next_logs = Instant::now();
        let mut refusals = 0;
        loop {
            if let Some(signal) = self.interrupt.signal() {
                return Err(self.stop_on_signal(signal).await);
            }
            let now = Instant::now();
            if now >= deadline {
                if timed_out {
                    return Err(Error::TaskTimeout {
                        task: self.arn.to_string(),
                        timeout: migrator_core::duration::format(self.spec.timeout),
                        stopped: format!(
                            "StopTask was sent, but the task had not stopped {}s later; if it \
                             still runs: {}",
                            STOP_GRACE.as_secs(),
                            migrator_core::ecs::stop_command(&self.spec.cluster, self.arn)
                        ),
                    });
                }
                self.stop_on_timeout().await?;
                timed_out = true;
                deadline = now + STOP_GRACE;
                next_describe = now;
                continue;
            }
            if now >= next_describe {
                let Some(answer) = unless_interrupted(
                    self.interrupt,
                    self.ecs.describe_task(&self.spec.cluster, self.arn),
                )
                .await
                else {
                    continue;
                };
                match answer {
                    Ok(Some(task)) => {
                        refusals = 0;
                        if missing.take().is_some() {
                            tracing::info!(task = self.arn, "DescribeTasks knows the task now");
                        }
                        let changed = decide::status(&task) != status;
                        if changed {
                            status = decide::status(&task).to_string();
                            output::stdout(&decide::status_line(SystemTime::now(), &task));
                        }
                        if status == STOPPED || decide::migration_exited(&task, self.target) {
                            return Ok((task, timed_out));
                        }
                        delay = decide::next_poll(delay, changed, &status);
                    }
                    Ok(None) => {
                        // Right after RunTask, DescribeTasks may not know the task
                        // for a while (eventual consistency): it runs all the same,
                        // so we keep asking, less often, until --timeout.
                        if missing.is_none() {
                            tracing::warn!(
                                task = self.arn,
                                "DescribeTasks does not know the task (yet): still following it"
                            );
                        }
                        let pause = decide::missing_poll(missing);
                        missing = Some(pause);
                        delay = pause;
                    }
                    Err(e) if e.exit_status() == ExitStatus::Unreachable => {
                        tracing::warn!(error = %e, "DescribeTasks failed; trying again");
                        delay = decide::missing_poll(Some(delay));
                    }
                    Err(e) => {
                        refusals += 1;
                        tracing::warn!(error = %e, "DescribeTasks refused; trying again");
                        if refusals >= MAX_DESCRIBE_REFUSALS {
                            return Err(self
                                .abandon(&format!(
                                    "DescribeTasks was refused {MAX_DESCRIBE_REFUSALS} times in \
                                     a row: {e}"
                                ))
                                .await);
                        }
                        delay = decide::missing_poll(Some(delay));
                    }
                }
                next_describe = Instant::now() + delay;
            }
            let reading = decide::may_have_logs(&status);
            if let Some(f) = follower.as_deref_mut()
                && reading
                && Instant::now() >= next_logs
            {
                unless_interrupted(self.interrupt, f.poll()).await;
                next_logs = Instant::now() + LOG_POLL;
            }
            let mut wake = next_describe.min(deadline);
            if follower.is_some() && reading {
                wake = wake.min(next_logs);
            }
            unless_interrupted(
                self.interrupt,
                tokio::time::sleep_until(tokio::time::Instant::from_std(wake)),
            )
            .await;
        }
    }

    /// We can no longer follow the task: stop it, or else name it and the
    /// command that stops it.
    async fn abandon(&self, why: &str) -> Error {
        let reason = "migrator ecs run: cannot follow the task".to_string();
        match self
            .ecs
            .stop_task(&self.spec.cluster, self.arn, &reason)
            .await
        {
            Ok(()) => Error::Unreachable {
                target: "ECS".to_string(),
                message: format!(
                    "cannot follow task {}: {why}; stopped it with StopTask",
                    self.arn
                ),
            },
            Err(e) => Error::TaskUnwatched {
                task: self.arn.to_string(),
                cluster: self.spec.cluster.clone(),
                why: format!("{why}; StopTask failed too: {e}"),
            },
        }
    }

    async fn stop_on_timeout(&self) -> Result<()> {
        let timeout = migrator_core::duration::format(self.spec.timeout);
        tracing::error!(
            task = self.arn,
            "--timeout {timeout} reached: stopping the task"
        );
        let reason = format!("migrator ecs run: --timeout {timeout} reached");
        self.ecs
            .stop_task(&self.spec.cluster, self.arn, &reason)
            .await
            .map_err(|e| Error::TaskUnwatched {
                task: self.arn.to_string(),
                cluster: self.spec.cluster.clone(),
                why: format!("--timeout {timeout} reached, and StopTask failed: {e}"),
            })
    }

    /// Stops the task (the build running us is being cancelled) and says how
    /// that went, as the run's error.
    async fn stop_on_signal(&self, signal: Signal) -> Error {
        let reason = format!("migrator ecs run received {signal}");
        let detail = match self
            .ecs
            .stop_task(&self.spec.cluster, self.arn, &reason)
            .await
        {
            Ok(()) => format!("stopped task {} (StopTask)", self.arn),
            Err(e) => format!(
                "StopTask failed, task {} may still be running: {e}; stop it with `{}`",
                self.arn,
                migrator_core::ecs::stop_command(&self.spec.cluster, self.arn)
            ),
        };
        Error::Interrupted {
            signal,
            detail: Some(detail),
        }
    }
}

/// Follows one CloudWatch log stream, printing each message as a line on stdout.
struct Follower<L> {
    logs: L,
    group: String,
    stream: String,
    token: Option<String>,
    found: bool,
    warned: bool,
}

impl<L: Logs> Follower<L> {
    fn new(logs: L, source: &decide::LogSource, container: &str, task_arn: &str) -> Self {
        Follower {
            logs,
            group: source.group.clone(),
            stream: source.stream(container, task_arn),
            token: None,
            found: false,
            warned: false,
        }
    }

    /// Prints what was written since the last call; how many lines.
    async fn poll(&mut self) -> usize {
        let mut printed = 0;
        for _ in 0..MAX_PAGES {
            let page = self
                .logs
                .page(&self.group, &self.stream, self.token.as_deref())
                .await;
            match page {
                Ok(Some(page)) => {
                    self.found = true;
                    for message in &page.messages {
                        output::stdout(message.trim_end_matches(['\n', '\r']));
                    }
                    printed += page.messages.len();
                    // CloudWatch hands back the token it was given once there is
                    // nothing more to read.
                    let caught_up = page.next_token.is_none() || page.next_token == self.token;
                    if page.next_token.is_some() {
                        self.token = page.next_token;
                    }
                    if caught_up {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if !self.warned {
                        tracing::warn!(
                            error = %e,
                            "cannot read the migration's log lines; still waiting for the task"
                        );
                        self.warned = true;
                    }
                    break;
                }
            }
        }
        printed
    }

    /// Once the migration container has exited: reads until a read brings
    /// nothing new, for at most [`DRAIN_BOUND`].
    async fn drain(&mut self, interrupt: &Interrupt) {
        let bound = Instant::now() + DRAIN_BOUND;
        if unless_interrupted(interrupt, self.poll()).await.is_none() {
            return;
        }
        while Instant::now() + DRAIN_PAUSE <= bound {
            if unless_interrupted(interrupt, tokio::time::sleep(DRAIN_PAUSE))
                .await
                .is_none()
            {
                return;
            }
            match unless_interrupted(interrupt, self.poll()).await {
                None => return,
                Some(0) => break,
                Some(_) => {}
            }
        }
        if !self.found {
            tracing::info!(
                group = %self.group,
                stream = %self.stream,
                "no log stream: the migration container wrote nothing (or never started)"
            );
        }
    }
}
