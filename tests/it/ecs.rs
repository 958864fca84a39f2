//! `migrator ecs run` against moto (ECS and CloudWatch Logs): the real binary
//! starts a task, follows it, shows its log lines and exits with the migration
//! container's code.
//!
//! The first tests use moto's instant tasks, steered by its state manager
//! (`hold_tasks_running`, `stop_tasks_now`); `tests/it/moto_ecs.py` adds what moto
//! does not model (container exit codes, several containers, `stopCode`, RunTask
//! `failures`), steered by docker labels in the test's task definitions
//! (`moto.exit-code`, `moto.stop-code`, ...). The judgements themselves are
//! unit-tested on SDK values in `src/commands/ecs/decide.rs`.
//!
//! The tests after them run under `Moto::start_like`: ECS as it behaves (the task
//! MISSING for a while after RunTask, PROVISIONING → PENDING → RUNNING, the
//! container's exit code before the task is DEPROVISIONING and then STOPPED, with
//! the delays each test sets) and 20 % of the binary's calls throttled.
//!
//! Not covered here: logs that arrive after the container stopped (the drain
//! reads the same stream the same way, until a read brings nothing new);
//! `--subnets` on a real VPC (moto would need one set up; the request is
//! unit-tested in `src/aws/ecs.rs`).
//!
//! None of these runs needs a database or a migrations folder: `Cmd` removes
//! `DATABASE_URL` and every `MIGRATOR_*` variable.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{signal, wait};
use crate::moto::Moto;

const CLUSTER: &str = "deploy";
const GROUP: &str = "/ecs/shop-migrate";

/// A container definition; `labels` steer how moto_ecs.py stops it.
fn container(name: &str, essential: bool, logs: bool, labels: Value) -> Value {
    let mut c = json!({
        "name": name,
        "image": "registry.test/shop:1.4.0",
        "essential": essential,
        "memory": 128,
        "dockerLabels": labels,
    });
    if logs {
        c["logConfiguration"] = json!({
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": GROUP,
                "awslogs-region": crate::moto::REGION,
                "awslogs-stream-prefix": "migrate",
            },
        });
    }
    c
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

/// Starts moto with a cluster, or skips the test.
macro_rules! moto {
    () => {{
        let Some(moto) = Moto::start_ecs() else {
            return;
        };
        moto.create_cluster(CLUSTER);
        moto
    }};
}

#[test]
fn exit_zero_passes_with_the_log_lines_streamed_while_it_runs() {
    let moto = moto!();
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, true, json!({}))]),
    );
    moto.hold_tasks_running();
    let child = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "FARGATE",
            "--command",
            "up --to 20261101000000",
        ])
        .env(
            "MIGRATOR_ECS_CONTAINER_ENV",
            "MIGRATOR_ENV=staging-1\nMIGRATOR_WAIT=60",
        )
        .spawn();
    let arn = moto.wait_for_task(CLUSTER);
    let stream = format!("migrate/migrate/{}", task_id(&arn));
    moto.put_log_lines(
        GROUP,
        &stream,
        &[
            "applied 20261001000000_create_users (12 ms)",
            "applied 20261101000000_add_email (3 ms)",
        ],
    );
    // Two log polls' worth of running, then the task stops.
    std::thread::sleep(Duration::from_secs(5));
    moto.stop_tasks_now();
    let r = wait(child);
    r.code(0)
        .has("applied 20261001000000_create_users (12 ms)")
        .has("applied 20261101000000_add_email (3 ms)")
        .has("container migrate (migration): exit code 0");
    let line = |needle: &str| {
        r.stdout
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{}", r.stdout))
    };
    assert!(
        line("add_email") < line(": STOPPED"),
        "log lines are shown while the task runs, not only at the end:\n{}",
        r.stdout
    );
    let running = &r.stdout.lines().nth(line(": RUNNING")).unwrap();
    assert!(
        running.len() > 21 && running.as_bytes()[10] == b'T' && running.as_bytes()[19] == b'Z',
        "status lines start with a UTC timestamp: {running}"
    );
    assert!(running.contains(task_id(&arn)), "{running}");
    // The overrides reached RunTask.
    let task = moto.describe_task(CLUSTER, &arn);
    let o = &task["overrides"]["containerOverrides"][0];
    assert_eq!(o["name"], "migrate");
    assert_eq!(o["command"], json!(["up", "--to", "20261101000000"]));
    assert_eq!(
        o["environment"],
        json!([
            {"name": "MIGRATOR_ENV", "value": "staging-1"},
            {"name": "MIGRATOR_WAIT", "value": "60"},
        ])
    );
    assert_eq!(task["startedBy"], "migrator");
}

#[test]
fn the_migration_containers_exit_code_passes_through() {
    let moto = moto!();
    // No log configuration: said, and the run carries on.
    moto.register(
        "shop-migrate",
        json!([container(
            "migrate",
            true,
            false,
            json!({"moto.exit-code": "5", "moto.stop-code": "EssentialContainerExited"})
        )]),
    );
    moto.stop_tasks_now();
    let r = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "FARGATE",
        ])
        .run();
    r.code(5)
        .has("has no log configuration")
        .has("STOPPED (EssentialContainerExited)")
        .has("container `migrate` of task")
        .has("exited with code 5");
}

#[test]
fn a_sidecar_listed_first_does_not_hide_a_failed_migration() {
    let moto = moto!();
    moto.register(
        "shop-migrate",
        json!([
            container("log-router", true, false, json!({"moto.exit-code": "0"})),
            container(
                "migrate",
                true,
                true,
                json!({
                    "moto.exit-code": "1",
                    "moto.stop-code": "EssentialContainerExited",
                    "moto.stopped-reason": "Essential container in task exited",
                })
            ),
        ]),
    );
    moto.stop_tasks_now();
    let args = [
        "ecs",
        "run",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "shop-migrate",
        "--launch-type",
        "fargate",
    ];
    // Two essential containers and no name: refused before anything starts.
    moto.cmd(&args)
        .run()
        .code(2)
        .has("several essential containers (`log-router`, `migrate`)")
        .has("--container");
    assert!(moto.task_arns(CLUSTER).is_empty(), "no task was started");

    let r = moto
        .cmd(&args)
        .env("MIGRATOR_ECS_CONTAINER", "migrate")
        .run();
    r.code(1)
        .has("container log-router (essential): exit code 0")
        .has("container migrate (migration): exit code 1")
        .has("container `migrate` of task");
}

#[test]
fn a_task_that_failed_to_start_exits_11_with_both_reasons() {
    let moto = moto!();
    let reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s)";
    moto.register(
        "shop-migrate",
        json!([container(
            "migrate",
            true,
            true,
            json!({
                "moto.exit-code": "none",
                "moto.stop-code": "TaskFailedToStart",
                "moto.stopped-reason": "Task failed to start",
                "moto.reason": reason,
            })
        )]),
    );
    moto.stop_tasks_now();
    let r = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "FARGATE",
        ])
        .run();
    r.code(11)
        .has("failed to start (stop code TaskFailedToStart): Task failed to start")
        .has(&format!("container `migrate`: {reason}"))
        .has("container migrate (migration): no exit code");
}

#[test]
fn a_run_task_failure_exits_10_with_the_reason() {
    let moto = moto!();
    moto.add_container_instance(CLUSTER);
    let mut big = container("migrate", true, false, json!({}));
    big["memory"] = json!(1_000_000);
    moto.register("shop-migrate", json!([big]));
    let r = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "EC2",
        ])
        .run();
    r.code(10)
        .has("RunTask started no task")
        .has("RESOURCE:MEMORY");
    assert!(moto.task_arns(CLUSTER).is_empty());
}

#[test]
fn the_timeout_stops_the_task_and_exits_12() {
    let moto = moto!();
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, true, json!({}))]),
    );
    moto.hold_tasks_running();
    let started = Instant::now();
    let r = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "FARGATE",
            "--timeout",
            "3s",
        ])
        .run();
    r.code(12)
        .has("--timeout 3s")
        .has("stopped it with StopTask");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    let arn = &moto.task_arns(CLUSTER)[0];
    let task = moto.describe_task(CLUSTER, arn);
    assert_eq!(task["lastStatus"], "STOPPED", "{task}");
    assert_eq!(task["desiredStatus"], "STOPPED", "{task}");
    assert_eq!(
        task["stoppedReason"], "migrator ecs run: --timeout 3s reached",
        "{task}"
    );
}

#[test]
fn sigterm_while_waiting_stops_the_task_and_exits_143() {
    let moto = moto!();
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, true, json!({}))]),
    );
    moto.hold_tasks_running();
    let child = moto
        .cmd(&[
            "ecs",
            "run",
            "--cluster",
            CLUSTER,
            "--task-definition",
            "shop-migrate",
            "--launch-type",
            "FARGATE",
        ])
        .spawn();
    let arn = moto.wait_for_task(CLUSTER);
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    signal(&child, "TERM");
    let r = wait(child);
    r.code(143).has("SIGTERM").has("stopped task");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
    let task = moto.describe_task(CLUSTER, &arn);
    assert_eq!(task["lastStatus"], "STOPPED", "{task}");
    assert_eq!(
        task["stoppedReason"], "migrator ecs run received SIGTERM",
        "{task}"
    );
}

// Under tests/it/moto_like.py: ECS as it behaves (a task MISSING at first, slow
// transitions, exit codes before STOPPED) and throttling.

/// `ecs run` against `moto` with the family `shop-migrate` registered.
fn run_like(moto: &Moto, extra: &[&str]) -> crate::common::Cmd {
    let mut args = vec![
        "ecs",
        "run",
        "--cluster",
        CLUSTER,
        "--task-definition",
        "shop-migrate",
    ];
    args.extend_from_slice(extra);
    moto.cmd(&args)
}

#[test]
fn rides_out_60s_of_missing_under_20_percent_throttling() {
    // AWS: DescribeTasks may not know a task for a while after RunTask. Here it
    // is MISSING for the first 60 s (the real figure, not scaled down: the test
    // takes about 70 s), and one call in five of the binary is throttled.
    let Some(moto) = Moto::start_like(json!({
        "throttle": 0.2,
        "ecs": {"missing": 60, "provisioning": 2, "pending": 2, "running": 5,
                "deprovisioning": 5},
    })) else {
        return;
    };
    moto.create_cluster(CLUSTER);
    moto.register(
        "shop-migrate",
        json!([container(
            "migrate",
            true,
            true,
            json!({"moto.exit-code": "3"})
        )]),
    );
    let started = Instant::now();
    let child = run_like(&moto, &["--launch-type", "FARGATE", "--timeout", "5m"]).spawn();
    let arn = moto.wait_for_task(CLUSTER);
    let stream = format!("migrate/migrate/{}", task_id(&arn));
    moto.put_log_lines(
        GROUP,
        &stream,
        &["applied 20261001000000_create_users (12 ms)"],
    );
    let r = wait(child);
    let took = started.elapsed();
    r.code(3)
        .has("does not know the task (yet): still following it")
        .has("applied 20261001000000_create_users (12 ms)")
        .has("container migrate (migration): exit code 3")
        .has("exited with code 3");
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(80),
        "followed the task through 60 s of MISSING, then ended: {took:?}"
    );
    assert!(
        !r.stderr.contains("DescribeTasks refused"),
        "the SDK retried every throttled call itself:\n{}",
        r.stderr
    );
    let stats = moto.like_stats();
    let throttled = moto.throttled();
    assert!(throttled > 0, "no call was throttled: {stats}");
    assert!(
        stats["calls"]["ecs:DescribeTasks"].as_u64().unwrap_or(0) >= 8,
        "{stats}"
    );
    eprintln!("took {took:?}; harness: {stats}");
}

#[test]
fn returns_when_the_migration_container_exits_not_when_the_task_stops() {
    // Fargate deprovisions the network interface for 30-60 s after the last
    // container stopped; here 45 s, and the container exits 5 s after RunTask.
    let Some(moto) = Moto::start_like(json!({
        "ecs": {"missing": 1, "provisioning": 1, "pending": 1, "running": 3,
                "deprovisioning": 45},
    })) else {
        return;
    };
    moto.create_cluster(CLUSTER);
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, true, json!({}))]),
    );
    let started = Instant::now();
    let r = run_like(&moto, &["--launch-type", "FARGATE"]).run();
    let took = started.elapsed();
    r.code(0)
        .has("container migrate (migration): exit code 0")
        .has("is still DEPROVISIONING")
        .has("not waiting for STOPPED");
    // The container exited 5 s after RunTask: within 5 s of that, not 45 s later.
    assert!(took < Duration::from_secs(10), "{took:?}");
    let arn = &moto.task_arns(CLUSTER)[0];
    assert_eq!(
        moto.describe_task(CLUSTER, arn)["lastStatus"],
        "DEPROVISIONING",
        "the task had not stopped when we returned"
    );
    eprintln!("returned {took:?} after starting; the container exited at 5 s");
}

#[test]
fn a_sidecar_still_running_does_not_delay_the_verdict() {
    let Some(moto) = Moto::start_like(json!({
        "ecs": {"provisioning": 1, "pending": 1, "running": 2, "deprovisioning": 30},
    })) else {
        return;
    };
    moto.create_cluster(CLUSTER);
    moto.register(
        "shop-migrate",
        json!([
            container("envoy", false, false, json!({"moto.runs": "60"})),
            container("migrate", true, true, json!({"moto.exit-code": "1"})),
        ]),
    );
    let started = Instant::now();
    let r = run_like(&moto, &["--launch-type", "FARGATE"]).run();
    let took = started.elapsed();
    r.code(1)
        .has("container envoy: still RUNNING")
        .has("container migrate (migration): exit code 1")
        .has("is still RUNNING");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_task_that_stays_missing_and_cannot_be_stopped_exits_9_with_the_stop_command() {
    // Missing past --timeout, and StopTask does not know it either: we cannot
    // stop what may be running, so we name it and the command that stops it.
    let Some(moto) = Moto::start_like(json!({"ecs": {"missing": 600}})) else {
        return;
    };
    moto.create_cluster(CLUSTER);
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, false, json!({}))]),
    );
    let r = run_like(&moto, &["--launch-type", "FARGATE", "--timeout", "4s"]).run();
    let arn = &moto.task_arns(CLUSTER)[0];
    r.code(9).has("may still be running").has(&format!(
        "aws ecs stop-task --region {} --cluster {CLUSTER} --task {arn}",
        crate::moto::REGION
    ));
}

#[test]
fn awsvpc_without_subnets_is_refused_before_run_task() {
    let moto = moto!();
    let out = moto.ecs(
        "RegisterTaskDefinition",
        json!({
            "family": "shop-migrate",
            "networkMode": "awsvpc",
            "containerDefinitions": [container("migrate", true, false, json!({}))],
        }),
    );
    assert_eq!(out["taskDefinition"]["networkMode"], "awsvpc", "{out}");
    run_like(&moto, &["--launch-type", "FARGATE"])
        .run()
        .code(2)
        .has("awsvpc network mode")
        .has("--subnets");
    assert!(moto.task_arns(CLUSTER).is_empty(), "no task was started");
}

#[test]
fn blank_launch_type_with_a_capacity_provider_strategy_and_platform_version() {
    let moto = moto!();
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, false, json!({}))]),
    );
    moto.stop_tasks_now();
    run_like(
        &moto,
        &[
            "--launch-type",
            "",
            "--capacity-provider-strategy",
            "FARGATE_SPOT:3,FARGATE:1:1",
            "--platform-version",
            "1.4.0",
        ],
    )
    .run()
    .code(0);
    let arn = &moto.task_arns(CLUSTER)[0];
    let task = moto.describe_task(CLUSTER, arn);
    assert_eq!(task["capacityProviderName"], "FARGATE_SPOT", "{task}");
    assert_eq!(task["platformVersion"], "1.4.0", "{task}");
    // Blank and nothing else: the cluster's default strategy, no error.
    run_like(&moto, &["--launch-type", " "]).run().code(0);
    run_like(
        &moto,
        &[
            "--launch-type",
            "FARGATE",
            "--capacity-provider-strategy",
            "FARGATE_SPOT",
        ],
    )
    .run()
    .code(2)
    .has("exclude each other");
}

#[test]
fn sigterm_while_the_task_is_missing_names_the_stop_command() {
    // StopTask does not know the task yet either: exit 143 all the same (one
    // SIGTERM always ends a run), with the task and the command that stops it.
    let Some(moto) = Moto::start_like(json!({"ecs": {"missing": 600}})) else {
        return;
    };
    moto.create_cluster(CLUSTER);
    moto.register(
        "shop-migrate",
        json!([container("migrate", true, false, json!({}))]),
    );
    let child = run_like(&moto, &["--launch-type", "FARGATE"]).spawn();
    let arn = moto.wait_for_task(CLUSTER);
    std::thread::sleep(Duration::from_millis(2500));
    let sent = Instant::now();
    signal(&child, "TERM");
    let r = wait(child);
    r.code(143).has("StopTask failed").has(&format!(
        "aws ecs stop-task --region {} --cluster {CLUSTER} --task {arn}",
        crate::moto::REGION
    ));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "{:?}",
        sent.elapsed()
    );
}
