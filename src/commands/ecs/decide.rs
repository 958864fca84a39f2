//! The decisions of `migrator ecs run`, made on the ECS API's own types: which
//! container is the migration, where its log lines are, whether RunTask started
//! a task, what a DescribeTasks answer changes, how long to wait before the next
//! one, and what a stopped task means as an exit code.
//!
//! Pure: no IO and no clock (the time of a status line is passed in). Unit-tested
//! with `Task`, `Container` and `TaskDefinition` values built by the SDK's builders.

use migrator_core::backoff::Backoff;
use std::time::{Duration, SystemTime};

use aws_sdk_ecs::types::{
    Container, ContainerDefinition, Failure, LogDriver, NetworkMode, Task, TaskDefinition,
    TaskStopCode,
};

use migrator_core::ecs::RunSpec;

use migrator_core::error::{Error, Result};

/// The last status of a task that has stopped.
pub const STOPPED: &str = "STOPPED";

/// The first wait between two DescribeTasks calls, and after every status change.
pub const FIRST_POLL: Duration = Duration::from_secs(1);
/// The longest wait between two DescribeTasks calls.
pub const MAX_POLL: Duration = Duration::from_secs(10);
/// The longest wait between two DescribeTasks calls while the task runs: the
/// migration container's exit is seen this soon after it happened.
pub const RUNNING_POLL: Duration = Duration::from_secs(2);
/// The first wait after DescribeTasks did not know the task (eventual
/// consistency right after RunTask): it then doubles up to [`MAX_POLL`].
pub const FIRST_MISSING_POLL: Duration = Duration::from_secs(2);

/// The container whose exit code is the migration's, and where its logs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub container: String,
    /// Every essential container of the task definition, the migration's included.
    pub essential: Vec<String>,
    pub logs: Logs,
}

/// Where the migration container's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logs {
    /// The `awslogs` driver: CloudWatch Logs, readable while the task runs.
    Awslogs(LogSource),
    /// Not readable from here; the reason, for the user.
    Unavailable(String),
}

/// The `awslogs` options of a container definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub group: String,
    /// `awslogs-region`; `None`: the task's own region.
    pub region: Option<String>,
    pub prefix: String,
}

impl LogSource {
    /// The stream the `awslogs` driver writes a container of a task to.
    pub fn stream(&self, container: &str, task_arn: &str) -> String {
        format!("{}/{container}/{}", self.prefix, task_id(task_arn))
    }
}

/// The task ID: the last part of its ARN (old and new ARN formats alike).
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// ECS treats a container whose `essential` is unset as essential.
fn essential(c: &ContainerDefinition) -> bool {
    c.essential().unwrap_or(true)
}

/// Picks the migration container: the named one, or else the only essential one.
/// Several essential containers and no name is refused before anything starts:
/// the exit code would be a guess.
pub fn target(td: &TaskDefinition, wanted: Option<&str>) -> Result<Target, String> {
    let defs = td.container_definitions();
    let names = |filter: &dyn Fn(&ContainerDefinition) -> bool| {
        defs.iter()
            .filter(|c| filter(c))
            .filter_map(|c| c.name())
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match wanted {
        Some(name) => defs
            .iter()
            .find(|c| c.name() == Some(name))
            .ok_or_else(|| {
                format!(
                    "the task definition has no container `{name}`; its containers: {}",
                    names(&|_| true)
                )
            })?,
        None => {
            let essentials: Vec<&ContainerDefinition> =
                defs.iter().filter(|c| essential(c)).collect();
            match essentials.as_slice() {
                [one] => *one,
                [] => {
                    return Err("the task definition has no essential container".to_string());
                }
                _ => {
                    return Err(format!(
                        "the task definition has several essential containers ({}): name the \
                         migration container with --container",
                        names(&essential)
                    ));
                }
            }
        }
    };
    let container = chosen
        .name()
        .ok_or("the task definition has a container without a name")?
        .to_string();
    Ok(Target {
        logs: logs_of(chosen, &container),
        essential: defs
            .iter()
            .filter(|c| essential(c))
            .filter_map(|c| c.name())
            .map(str::to_string)
            .collect(),
        container,
    })
}

fn logs_of(def: &ContainerDefinition, name: &str) -> Logs {
    let Some(config) = def.log_configuration() else {
        return Logs::Unavailable(format!(
            "container `{name}` has no log configuration: its output cannot be shown here"
        ));
    };
    if *config.log_driver() != LogDriver::Awslogs {
        return Logs::Unavailable(format!(
            "container `{name}` logs through `{}`, not `awslogs`: its output cannot be shown here",
            config.log_driver().as_str()
        ));
    }
    let option = |key: &str| {
        config
            .options()
            .and_then(|o| o.get(key))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    match (option("awslogs-group"), option("awslogs-stream-prefix")) {
        (Some(group), Some(prefix)) => Logs::Awslogs(LogSource {
            group,
            region: option("awslogs-region"),
            prefix,
        }),
        (None, _) => Logs::Unavailable(format!(
            "container `{name}` uses awslogs without `awslogs-group`: its output cannot be shown here"
        )),
        (_, None) => Logs::Unavailable(format!(
            "container `{name}` uses awslogs without `awslogs-stream-prefix`, so its stream name \
             is not known: its output cannot be shown here"
        )),
    }
}

/// What RunTask would refuse, found in the task definition before any task is
/// started: a task definition in the `awsvpc` network mode (every Fargate one)
/// needs `--subnets`.
pub fn preflight(td: &TaskDefinition, spec: &RunSpec) -> Result<(), String> {
    let awsvpc = td.network_mode() == Some(&NetworkMode::Awsvpc);
    if awsvpc && spec.network.is_none() {
        return Err(
            "it uses the awsvpc network mode, so RunTask needs a network configuration: give \
             --subnets (MIGRATOR_ECS_SUBNETS), and --security-groups unless the VPC's default \
             group will do"
                .to_string(),
        );
    }
    Ok(())
}

/// The task RunTask started, or why it started none.
pub fn started<'a>(tasks: &'a [Task], failures: &[Failure]) -> Result<&'a Task, String> {
    if let Some(task) = tasks.first() {
        return Ok(task);
    }
    if failures.is_empty() {
        return Err("RunTask returned neither a task nor a failure".to_string());
    }
    Err(failures
        .iter()
        .map(|f| {
            let mut text = f.reason().unwrap_or("no reason given").to_string();
            if let Some(detail) = f.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(arn) = f.arn() {
                text.push_str(&format!(" [{arn}]"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; "))
}

/// The task's last status as ECS reports it.
pub fn status(task: &Task) -> &str {
    task.last_status().unwrap_or("UNKNOWN")
}

/// Whether the migration container can have written log lines yet: not while
/// the task is still being provisioned or its images pulled.
pub fn may_have_logs(status: &str) -> bool {
    !matches!(status, "PROVISIONING" | "PENDING" | "ACTIVATING")
}

/// The wait before the next DescribeTasks: short right after a change (more
/// follow: PENDING → RUNNING), then doubling up to [`MAX_POLL`], or up to
/// [`RUNNING_POLL`] while the task runs (its end is what we wait for). No cap
/// on how long we keep polling: `--timeout` is the only limit.
pub fn next_poll(previous: Duration, changed: bool, status: &str) -> Duration {
    let max = if status == "RUNNING" {
        RUNNING_POLL
    } else {
        MAX_POLL
    };
    if changed {
        FIRST_POLL.min(max)
    } else {
        Backoff::new(FIRST_POLL, max).after(previous)
    }
}

/// The wait before asking again about a task DescribeTasks did not know:
/// doubling from [`FIRST_MISSING_POLL`] up to [`MAX_POLL`] while it stays unknown.
pub fn missing_poll(previous: Option<Duration>) -> Duration {
    match previous {
        None => FIRST_MISSING_POLL,
        Some(p) => Backoff::new(FIRST_MISSING_POLL, MAX_POLL).after(p),
    }
}

/// Whether the migration container has stopped with an exit code: the verdict
/// is known, whatever the task's other containers (a sidecar) and its network
/// interface still take to stop.
pub fn migration_exited(task: &Task, target: &Target) -> bool {
    task.containers()
        .iter()
        .any(|c| c.name() == Some(target.container.as_str()) && c.exit_code().is_some())
}

/// `2026-11-22T01:48:12Z` (UTC, whole seconds).
pub fn timestamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// The line printed when the task's status changes: time, task ID, status, and
/// for a stopped task its stop code and reason.
pub fn status_line(at: SystemTime, task: &Task) -> String {
    let mut line = format!(
        "{} task {}: {}",
        timestamp(at),
        task_id(task.task_arn().unwrap_or("?")),
        status(task)
    );
    if status(task) == STOPPED {
        let code = task.stop_code().map(TaskStopCode::as_str);
        let reason = task.stopped_reason().filter(|r| !r.is_empty());
        match (code, reason) {
            (Some(c), Some(r)) => line.push_str(&format!(" ({c}: {r})")),
            (Some(c), None) => line.push_str(&format!(" ({c})")),
            (None, Some(r)) => line.push_str(&format!(" ({r})")),
            (None, None) => {}
        }
    }
    line
}

/// What the stopped task means for the migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The migration container ran and exited with this code.
    Exited(i32),
    /// The task stopped without an exit code for the migration container: it
    /// failed to start (`TaskFailedToStart`, an image that cannot be pulled, a
    /// secret that cannot be read) or was never started. The explanation.
    NoExitCode(String),
}

/// The verdict on a stopped task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub task_arn: String,
    pub container: String,
    pub outcome: Outcome,
    /// One line per container of the task, in the task's order.
    pub containers: Vec<String>,
    /// Other essential containers that exited non-zero (reported, not our exit code).
    pub warnings: Vec<String>,
}

fn container_line(c: &Container, migration: &str, essential: &[String]) -> String {
    let name = c.name().unwrap_or("?");
    let mut line = format!("  container {name}");
    if name == migration {
        line.push_str(" (migration)");
    } else if essential.iter().any(|e| e == name) {
        line.push_str(" (essential)");
    }
    match (c.exit_code(), c.last_status()) {
        (Some(code), _) => line.push_str(&format!(": exit code {code}")),
        (None, Some(status)) if status != STOPPED => {
            line.push_str(&format!(": still {status}"));
        }
        (None, _) => line.push_str(": no exit code"),
    }
    if let Some(reason) = c.reason().filter(|r| !r.is_empty()) {
        line.push_str(&format!(" ({reason})"));
    }
    line
}

/// Judges a stopped task by its migration container, and only by it: a sidecar
/// listed first does not speak for the migration.
pub fn verdict(task: &Task, target: &Target) -> Verdict {
    let migration = target.container.as_str();
    let task_arn = task.task_arn().unwrap_or("?").to_string();
    let containers = task
        .containers()
        .iter()
        .map(|c| container_line(c, migration, &target.essential))
        .collect();
    let warnings = task
        .containers()
        .iter()
        .filter(|c| c.name() != Some(migration))
        .filter(|c| {
            target
                .essential
                .iter()
                .any(|e| Some(e.as_str()) == c.name())
        })
        .filter_map(|c| {
            let code = c.exit_code().filter(|code| *code != 0)?;
            let mut text = format!(
                "essential container `{}` exited with code {code}",
                c.name().unwrap_or("?")
            );
            if let Some(reason) = c.reason().filter(|r| !r.is_empty()) {
                text.push_str(&format!(" ({reason})"));
            }
            Some(text)
        })
        .collect();
    let container = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(migration));
    let failed_to_start = task.stop_code() == Some(&TaskStopCode::TaskFailedToStart);
    let outcome = match container.and_then(Container::exit_code) {
        Some(code) if !failed_to_start => Outcome::Exited(code),
        _ => Outcome::NoExitCode(no_exit_code(task, migration, container, failed_to_start)),
    };
    Verdict {
        task_arn,
        container: migration.to_string(),
        outcome,
        containers,
        warnings,
    }
}

fn no_exit_code(
    task: &Task,
    migration: &str,
    container: Option<&Container>,
    failed_to_start: bool,
) -> String {
    let id = task_id(task.task_arn().unwrap_or("?"));
    let mut text = if failed_to_start {
        format!("task {id} failed to start")
    } else {
        format!("task {id} stopped without an exit code for container `{migration}`")
    };
    if let Some(code) = task.stop_code() {
        text.push_str(&format!(" (stop code {})", code.as_str()));
    }
    if let Some(reason) = task.stopped_reason().filter(|r| !r.is_empty()) {
        text.push_str(&format!(": {reason}"));
    }
    match container {
        None => text.push_str(&format!(
            "; the task has no container `{migration}` in its description"
        )),
        Some(c) => {
            if let Some(reason) = c.reason().filter(|r| !r.is_empty()) {
                text.push_str(&format!("; container `{migration}`: {reason}"));
            }
        }
    }
    text
}

impl Verdict {
    /// Our exit: the migration container's own code (0 is success), or a
    /// failure to start.
    pub fn result(&self) -> Result<()> {
        match &self.outcome {
            Outcome::Exited(0) => Ok(()),
            Outcome::Exited(code) => match u8::try_from(*code) {
                Ok(code) => Err(Error::TaskExited {
                    task: task_id(&self.task_arn).to_string(),
                    container: self.container.clone(),
                    code,
                }),
                Err(_) => Err(Error::TaskFailed(format!(
                    "container `{}` of task {} exited with code {code}, which is not a \
                     process exit code",
                    self.container,
                    task_id(&self.task_arn)
                ))),
            },
            Outcome::NoExitCode(why) => Err(Error::TaskFailed(why.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::LogConfiguration;

    const ARN: &str = "arn:aws:ecs:eu-west-1:123456789012:task/deploy/8d1e5c2a9f0b4c3d";

    fn def(name: &str, essential: Option<bool>) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .set_essential(essential)
            .build()
    }

    fn awslogs(name: &str, options: &[(&str, &str)]) -> ContainerDefinition {
        let mut config = LogConfiguration::builder().log_driver(LogDriver::Awslogs);
        for (k, v) in options {
            config = config.options(*k, *v);
        }
        ContainerDefinition::builder()
            .name(name)
            .essential(true)
            .log_configuration(config.build().unwrap())
            .build()
    }

    fn td(defs: Vec<ContainerDefinition>) -> TaskDefinition {
        TaskDefinition::builder()
            .family("shop-migrate")
            .revision(3)
            .set_container_definitions(Some(defs))
            .build()
    }

    fn container(name: &str, exit: Option<i32>, reason: Option<&str>) -> Container {
        Container::builder()
            .name(name)
            .last_status(STOPPED)
            .set_exit_code(exit)
            .set_reason(reason.map(str::to_string))
            .build()
    }

    fn stopped(
        containers: Vec<Container>,
        code: Option<TaskStopCode>,
        reason: Option<&str>,
    ) -> Task {
        Task::builder()
            .task_arn(ARN)
            .last_status(STOPPED)
            .desired_status(STOPPED)
            .set_stop_code(code)
            .set_stopped_reason(reason.map(str::to_string))
            .set_containers(Some(containers))
            .build()
    }

    fn target_of(container: &str, essential: &[&str]) -> Target {
        Target {
            container: container.to_string(),
            essential: essential.iter().map(|s| s.to_string()).collect(),
            logs: Logs::Unavailable(String::new()),
        }
    }

    #[test]
    fn the_only_essential_container_is_the_migration() {
        let t = target(
            &td(vec![def("log-router", Some(false)), def("migrate", None)]),
            None,
        )
        .unwrap();
        assert_eq!(t.container, "migrate");
        assert_eq!(t.essential, ["migrate"]);
    }

    #[test]
    fn several_essential_containers_without_a_name_are_refused() {
        let defs = td(vec![def("log-router", Some(true)), def("migrate", None)]);
        let err = target(&defs, None).unwrap_err();
        assert!(err.contains("`log-router`, `migrate`"), "{err}");
        assert!(err.contains("--container"), "{err}");
        let t = target(&defs, Some("migrate")).unwrap();
        assert_eq!(t.container, "migrate");
        assert_eq!(t.essential, ["log-router", "migrate"]);
    }

    #[test]
    fn a_named_container_must_exist() {
        let err = target(&td(vec![def("app", None)]), Some("migrate")).unwrap_err();
        assert!(err.contains("no container `migrate`"), "{err}");
        assert!(err.contains("`app`"), "{err}");
        let err = target(&td(vec![def("app", Some(false))]), None).unwrap_err();
        assert!(err.contains("no essential container"), "{err}");
    }

    #[test]
    fn awslogs_options_give_the_stream() {
        let t = target(
            &td(vec![awslogs(
                "migrate",
                &[
                    ("awslogs-group", "/ecs/shop-migrate"),
                    ("awslogs-region", "eu-central-1"),
                    ("awslogs-stream-prefix", "migrate"),
                ],
            )]),
            None,
        )
        .unwrap();
        let Logs::Awslogs(source) = t.logs else {
            panic!("{:?}", t.logs)
        };
        assert_eq!(source.group, "/ecs/shop-migrate");
        assert_eq!(source.region.as_deref(), Some("eu-central-1"));
        assert_eq!(
            source.stream("migrate", ARN),
            "migrate/migrate/8d1e5c2a9f0b4c3d"
        );
        assert_eq!(
            source.stream("migrate", "arn:aws:ecs:us-east-1:1:task/abc"),
            "migrate/migrate/abc"
        );
    }

    #[test]
    fn logs_that_cannot_be_read_say_why() {
        let why = |d: ContainerDefinition| match target(&td(vec![d]), None).unwrap().logs {
            Logs::Unavailable(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(def("m", None)).contains("no log configuration"));
        assert!(why(awslogs("m", &[("awslogs-group", "g")])).contains("awslogs-stream-prefix"));
        assert!(why(awslogs("m", &[("awslogs-stream-prefix", "p")])).contains("awslogs-group"));
        let firelens = ContainerDefinition::builder()
            .name("m")
            .log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awsfirelens)
                    .build()
                    .unwrap(),
            )
            .build();
        assert!(why(firelens).contains("awsfirelens"));
    }

    #[test]
    fn run_task_failures_are_reported() {
        let task = Task::builder().task_arn(ARN).build();
        assert_eq!(
            started(std::slice::from_ref(&task), &[])
                .unwrap()
                .task_arn(),
            Some(ARN)
        );
        let failures = [
            Failure::builder()
                .arn("arn:aws:ecs:eu-west-1:1:container-instance/c/1")
                .reason("RESOURCE:MEMORY")
                .build(),
            Failure::builder()
                .reason("MISSING")
                .detail("capacity provider")
                .build(),
        ];
        let err = started(&[], &failures).unwrap_err();
        assert_eq!(
            err,
            "RESOURCE:MEMORY [arn:aws:ecs:eu-west-1:1:container-instance/c/1]; \
             MISSING (capacity provider)"
        );
        assert!(started(&[], &[]).unwrap_err().contains("neither"));
    }

    #[test]
    fn polling_backs_off_to_ten_seconds_and_restarts_on_change() {
        let mut d = FIRST_POLL;
        let mut seen = vec![];
        for _ in 0..6 {
            d = next_poll(d, false, "PENDING");
            seen.push(d.as_secs());
        }
        assert_eq!(seen, [2, 4, 8, 10, 10, 10]);
        assert_eq!(next_poll(MAX_POLL, true, "PENDING"), FIRST_POLL);
        assert_eq!(
            next_poll(MAX_POLL, false, "RUNNING"),
            RUNNING_POLL,
            "a running task is asked about often enough to see its end within seconds"
        );
    }

    #[test]
    fn a_missing_task_is_asked_about_with_a_growing_pause() {
        let mut seen = vec![];
        let mut d = None;
        for _ in 0..5 {
            let next = missing_poll(d);
            seen.push(next.as_secs());
            d = Some(next);
        }
        assert_eq!(seen, [2, 4, 8, 10, 10]);
    }

    #[test]
    fn the_verdict_comes_when_the_migration_container_exits() {
        let running = |name: &str| {
            Container::builder()
                .name(name)
                .last_status("RUNNING")
                .build()
        };
        let task = |containers: Vec<Container>| {
            Task::builder()
                .task_arn(ARN)
                .last_status("RUNNING")
                .desired_status(STOPPED)
                .set_containers(Some(containers))
                .build()
        };
        let target = target_of("migrate", &["migrate"]);
        assert!(!migration_exited(
            &task(vec![running("migrate"), running("envoy")]),
            &target
        ));
        let sidecar = task(vec![container("migrate", Some(3), None), running("envoy")]);
        assert!(
            migration_exited(&sidecar, &target),
            "a sidecar does not delay it"
        );
        let v = verdict(&sidecar, &target);
        assert_eq!(v.outcome, Outcome::Exited(3));
        assert_eq!(
            v.containers,
            [
                "  container migrate (migration): exit code 3",
                "  container envoy: still RUNNING"
            ]
        );
        assert!(!migration_exited(
            &task(vec![container("envoy", Some(0), None), running("migrate")]),
            &target
        ));
    }

    #[test]
    fn awsvpc_without_subnets_is_caught_before_run_task() {
        let awsvpc = TaskDefinition::builder()
            .network_mode(NetworkMode::Awsvpc)
            .build();
        let spec = RunSpec::new("deploy", "shop-migrate", Duration::from_secs(60));
        let err = preflight(&awsvpc, &spec).unwrap_err();
        assert!(err.contains("awsvpc") && err.contains("--subnets"), "{err}");
        let with_network = RunSpec {
            network: Some(migrator_core::ecs::Network {
                subnets: vec!["subnet-1".into()],
                security_groups: vec![],
                assign_public_ip: false,
            }),
            ..spec.clone()
        };
        assert_eq!(preflight(&awsvpc, &with_network), Ok(()));
        let bridge = TaskDefinition::builder()
            .network_mode(NetworkMode::Bridge)
            .build();
        assert_eq!(preflight(&bridge, &spec), Ok(()));
    }

    #[test]
    fn status_lines_carry_time_status_and_stop_reason() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_307_045);
        let pending = Task::builder().task_arn(ARN).last_status("PENDING").build();
        assert_eq!(
            status_line(at, &pending),
            "2026-11-22T00:24:05Z task 8d1e5c2a9f0b4c3d: PENDING"
        );
        let task = stopped(
            vec![],
            Some(TaskStopCode::EssentialContainerExited),
            Some("Essential container in task exited"),
        );
        assert_eq!(
            status_line(at, &task),
            "2026-11-22T00:24:05Z task 8d1e5c2a9f0b4c3d: STOPPED \
             (EssentialContainerExited: Essential container in task exited)"
        );
        assert!(!may_have_logs("PROVISIONING"));
        assert!(!may_have_logs("PENDING"));
        assert!(may_have_logs("RUNNING"));
        assert!(may_have_logs(STOPPED));
    }

    #[test]
    fn exit_zero_is_success() {
        let task = stopped(
            vec![container("migrate", Some(0), None)],
            Some(TaskStopCode::EssentialContainerExited),
            None,
        );
        let v = verdict(&task, &target_of("migrate", &["migrate"]));
        assert_eq!(v.outcome, Outcome::Exited(0));
        assert!(v.result().is_ok());
        assert!(v.warnings.is_empty());
        assert_eq!(
            v.containers,
            ["  container migrate (migration): exit code 0"]
        );
    }

    #[test]
    fn the_migration_containers_code_passes_through() {
        for code in [1, 5, 143] {
            let task = stopped(vec![container("migrate", Some(code), None)], None, None);
            let err = verdict(&task, &target_of("migrate", &["migrate"]))
                .result()
                .unwrap_err();
            assert_eq!(i32::from(err.exit_status().code()), code);
            assert!(err.to_string().contains("exited with code"), "{err}");
        }
    }

    #[test]
    fn a_sidecar_listed_first_does_not_speak_for_the_migration() {
        let task = stopped(
            vec![
                container("log-router", Some(0), None),
                container("migrate", Some(1), None),
            ],
            Some(TaskStopCode::EssentialContainerExited),
            Some("Essential container in task exited"),
        );
        let v = verdict(&task, &target_of("migrate", &["log-router", "migrate"]));
        assert_eq!(v.outcome, Outcome::Exited(1));
        assert_eq!(v.result().unwrap_err().exit_status().code(), 1);
        assert!(v.warnings.is_empty());
        assert_eq!(
            v.containers,
            [
                "  container log-router (essential): exit code 0",
                "  container migrate (migration): exit code 1"
            ]
        );
    }

    #[test]
    fn another_essential_container_failing_is_reported_not_our_code() {
        let task = stopped(
            vec![
                container("migrate", Some(0), None),
                container("proxy", Some(2), Some("OutOfMemoryError")),
                container("helper", Some(9), None),
            ],
            None,
            None,
        );
        let v = verdict(&task, &target_of("migrate", &["migrate", "proxy"]));
        assert!(v.result().is_ok());
        assert_eq!(
            v.warnings,
            ["essential container `proxy` exited with code 2 (OutOfMemoryError)"]
        );
    }

    #[test]
    fn task_failed_to_start_is_its_own_code_with_both_reasons() {
        let task = stopped(
            vec![container(
                "migrate",
                None,
                Some("CannotPullContainerError: pull image manifest has been retried 5 time(s)"),
            )],
            Some(TaskStopCode::TaskFailedToStart),
            Some("CannotPullContainerError: pull image manifest has been retried 5 time(s)"),
        );
        let v = verdict(&task, &target_of("migrate", &["migrate"]));
        let err = v.result().unwrap_err();
        assert_eq!(err.exit_status().code(), 11);
        let text = err.to_string();
        assert!(
            text.contains("task 8d1e5c2a9f0b4c3d failed to start"),
            "{text}"
        );
        assert!(text.contains("(stop code TaskFailedToStart)"), "{text}");
        assert!(
            text.contains("; container `migrate`: CannotPullContainerError"),
            "{text}"
        );
    }

    #[test]
    fn failed_to_start_wins_over_a_stray_exit_code() {
        let task = stopped(
            vec![container("migrate", Some(0), None)],
            Some(TaskStopCode::TaskFailedToStart),
            Some("ResourceInitializationError: unable to pull secrets"),
        );
        let v = verdict(&task, &target_of("migrate", &["migrate"]));
        assert!(matches!(v.outcome, Outcome::NoExitCode(_)));
        assert_eq!(v.result().unwrap_err().exit_status().code(), 11);
    }

    #[test]
    fn a_missing_exit_code_is_a_failure_to_start() {
        let task = stopped(
            vec![container("migrate", None, None)],
            Some(TaskStopCode::UserInitiated),
            Some("Task stopped by user"),
        );
        let err = verdict(&task, &target_of("migrate", &["migrate"]))
            .result()
            .unwrap_err();
        assert_eq!(err.exit_status().code(), 11);
        assert!(
            err.to_string()
                .contains("stopped without an exit code for container `migrate`"),
            "{err}"
        );
        assert!(err.to_string().contains("Task stopped by user"), "{err}");

        let without = stopped(vec![container("sidecar", Some(0), None)], None, None);
        let err = verdict(&without, &target_of("migrate", &["migrate"]))
            .result()
            .unwrap_err();
        assert_eq!(err.exit_status().code(), 11);
        assert!(
            err.to_string().contains("has no container `migrate`"),
            "{err}"
        );
    }

    #[test]
    fn an_exit_code_beyond_255_is_not_passed_through() {
        let task = stopped(vec![container("migrate", Some(256), None)], None, None);
        let err = verdict(&task, &target_of("migrate", &["migrate"]))
            .result()
            .unwrap_err();
        assert_eq!(err.exit_status().code(), 11);
    }
}
