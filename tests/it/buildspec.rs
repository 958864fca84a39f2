//! `buildspec.yml` cannot run here (no CodeBuild, no Docker engine), so these
//! tests hold it to what can be checked: it is YAML of CodeBuild's shape, every
//! command is valid bash, every `migrator` command uses flags the binary has, and
//! its migration step, run by bash with a stand-in `docker` against moto, fails
//! with the migration's exit code and is skipped by RUN_MIGRATIONS alone.
//!
//! The YAML is read by python3's PyYAML (moto brings it); where it is missing
//! these tests skip through `common::unavailable` (component PYYAML), which fails
//! instead where `MIGRATOR_TEST_REQUIRE_PYYAML` (or `_ALL`) is set.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Component, assert_no_secret, bin, unavailable};
use crate::moto::Moto;

fn buildspec_path() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/buildspec.yml"))
}

/// buildspec.yml as JSON, or `None` (after saying why) without PyYAML.
fn buildspec() -> Option<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(buildspec_path())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            Some(serde_json::from_slice(&out.stdout).expect("python3 printed JSON"))
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named 'yaml'") => {
            skip("python3 has no PyYAML")
        }
        Ok(out) => panic!(
            "buildspec.yml is not valid YAML:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => skip(&format!("python3 does not run: {e}")),
    }
}

fn skip(why: &str) -> Option<Value> {
    unavailable(Component::Pyyaml, why);
    None
}

/// Every command of every phase, in order: (phase, command).
fn commands(spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for phase in ["install", "pre_build", "build", "post_build"] {
        if let Some(list) = spec["phases"][phase]["commands"].as_array() {
            for c in list {
                out.push((phase.to_string(), c.as_str().unwrap().to_string()));
            }
        }
    }
    out
}

/// The `--flags` of every `migrator ecs run` in `command` (continuation lines joined).
fn ecs_run_flags(command: &str) -> Vec<String> {
    let joined = command.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.split_once("migrator ecs run").map(|(_, rest)| rest))
        .flat_map(|rest| rest.split_whitespace())
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

/// The post_build command that runs the migrations.
fn migration_step(spec: &Value) -> String {
    let steps: Vec<String> = commands(spec)
        .into_iter()
        .filter(|(_, c)| c.contains("migrator ecs run"))
        .map(|(phase, c)| {
            assert_eq!(phase, "post_build", "migrations run after the push");
            c
        })
        .collect();
    assert_eq!(steps.len(), 1, "one migration step: {steps:?}");
    steps.into_iter().next().unwrap()
}

#[test]
fn it_is_a_codebuild_spec_with_the_documented_variables_and_valid_bash() {
    let Some(spec) = buildspec() else { return };
    assert_eq!(spec["version"], json!(0.2), "buildspec version 0.2");
    for variable in [
        "STAGE",
        "IMAGE_TAG",
        "RUN_MIGRATIONS",
        "ECS_CLUSTER",
        "MIGRATION_TASK_DEFINITION",
        "SUBNETS",
        "SECURITY_GROUPS",
    ] {
        assert!(
            spec["env"]["variables"][variable].is_string(),
            "env.variables.{variable}"
        );
    }
    assert_eq!(spec["env"]["shell"], "bash");
    for phase in ["pre_build", "build"] {
        assert_eq!(
            spec["phases"][phase]["on-failure"], "ABORT",
            "{phase}: a failed build must not push or migrate"
        );
    }
    let all = commands(&spec);
    assert!(
        all.iter()
            .any(|(p, c)| p == "build" && c.contains("docker build"))
    );
    let push = all
        .iter()
        .position(|(p, c)| p == "post_build" && c.contains("docker push"))
        .expect("the image is pushed in post_build");
    let migrate = all
        .iter()
        .position(|(_, c)| c.contains("migrator ecs run"))
        .unwrap();
    assert!(push < migrate, "pushed before the migration task needs it");
    assert!(
        all.iter()
            .any(|(_, c)| c.contains("${IMAGE_TAG:-$CODEBUILD_RESOLVED_SOURCE_VERSION}")),
        "IMAGE_TAG defaults to the commit"
    );
    for (phase, command) in &all {
        let out = Command::new("bash")
            .args(["-n", "-c", command])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{phase}: not valid bash: {command}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn its_migrator_commands_use_real_flags() {
    let Some(spec) = buildspec() else { return };
    let step = migration_step(&spec);
    assert!(
        step.trim_start()
            .starts_with("if [ \"$RUN_MIGRATIONS\" = true ]; then"),
        "one variable switches the step: {step}"
    );
    let flags = ecs_run_flags(&step);
    assert!(flags.len() >= 3, "{flags:?}");
    let help = Command::new(bin())
        .args(["ecs", "run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    let known: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    for flag in &flags {
        assert!(
            known.contains(&flag.as_str()),
            "buildspec.yml uses {flag}, which `migrator ecs run` does not have"
        );
    }
    for required in ["--cluster", "--task-definition", "--timeout"] {
        assert!(flags.iter().any(|f| f == required), "{required}: {flags:?}");
    }
}

/// Runs the migration step as CodeBuild would (bash, the variables set), with a
/// `docker` that hands out this build's binary as the image's migrator and
/// writes what it pushes to `pushed` (one image a line): (exit code, output,
/// pushed images).
fn run_step(moto: &Moto, step: &str, run_migrations: &str) -> (i32, String, String) {
    let fake = tempfile::tempdir().unwrap();
    let docker = fake.path().join("docker");
    let pushed = fake.path().join("pushed");
    std::fs::write(
        &docker,
        format!(
            "#!/usr/bin/env bash\n\
             case \"$1\" in\n\
               create) echo c0ffee ;;\n\
               cp) cp '{}' \"$3\" ;;\n\
               rm) ;;\n\
               push) echo \"$2\" >> '{}' ;;\n\
               *) echo \"unexpected: docker $*\" >&2; exit 99 ;;\n\
             esac\n",
            bin().display(),
            pushed.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&docker)
        .status()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = Command::new("bash");
    bash.args(["-c", step])
        .current_dir(work.path())
        .env_clear()
        .env("PATH", path)
        .env("RUN_MIGRATIONS", run_migrations)
        .env("IMAGE", "registry.test/shop:abc123")
        .env("IMAGE_REPO_URI", "registry.test/shop")
        .env("IMAGE_MIGRATOR_PATH", "/usr/local/bin/migrator")
        .env("STAGE", "staging-1")
        .env("ECS_CLUSTER", "deploy")
        .env("MIGRATION_TASK_DEFINITION", "shop-migrate")
        .env("MIGRATION_CONTAINER", "")
        .env("LAUNCH_TYPE", "FARGATE")
        .env("CAPACITY_PROVIDER_STRATEGY", "")
        .env("PLATFORM_VERSION", "")
        .env("SUBNETS", "")
        .env("SECURITY_GROUPS", "")
        .env("MIGRATION_TIMEOUT", "5m")
        .envs(moto.aws_env());
    let out = bash.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&text);
    let pushed = std::fs::read_to_string(&pushed).unwrap_or_default();
    (out.status.code().unwrap_or(-1), text, pushed)
}

#[test]
fn its_migration_step_fails_with_the_migration_and_is_switched_by_one_variable() {
    let Some(spec) = buildspec() else { return };
    let Some(moto) = Moto::start_ecs() else {
        return;
    };
    moto.create_cluster("deploy");
    moto.register(
        "shop-migrate",
        json!([{
            "name": "migrate",
            "image": "registry.test/shop:staging-1",
            "essential": true,
            "memory": 128,
            "dockerLabels": {"moto.exit-code": "3"},
        }]),
    );
    moto.stop_tasks_now();
    let step = migration_step(&spec);

    let (code, text, pushed) = run_step(&moto, &step, "false");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("the migrations were not run"), "{text}");
    assert!(
        moto.task_arns("deploy").is_empty(),
        "no task when switched off"
    );
    assert_eq!(
        pushed, "registry.test/shop:staging-1\n",
        "switched off: STAGE"
    );

    let (code, text, pushed) = run_step(&moto, &step, "true");
    assert_eq!(
        code, 3,
        "the build fails with the migration's code:\n{text}"
    );
    assert_eq!(pushed, "", "a failed migration leaves STAGE where it was");
    assert!(
        text.contains("container migrate (migration): exit code 3"),
        "{text}"
    );
    let arn = moto.task_arns("deploy").pop().expect("a task was started");
    let task = moto.describe_task("deploy", &arn);
    assert_eq!(
        task["overrides"]["containerOverrides"][0]["environment"],
        json!([{"name": "MIGRATOR_ENV", "value": "staging-1"}])
    );

    // The migration passes (a new revision exits 0): only then STAGE is pushed.
    moto.register(
        "shop-migrate",
        json!([{
            "name": "migrate",
            "image": "registry.test/shop:staging-1-migrate",
            "essential": true,
            "memory": 128,
        }]),
    );
    let (code, text, pushed) = run_step(&moto, &step, "true");
    assert_eq!(code, 0, "{text}");
    assert_eq!(pushed, "registry.test/shop:staging-1\n", "{text}");
}

/// The image tags are pushed in this order: the build's own and the migration
/// task's before the migration, STAGE only after it succeeded.
#[test]
fn stage_is_pushed_only_after_the_migrations_succeeded() {
    let Some(spec) = buildspec() else { return };
    let all = commands(&spec);
    let position = |needle: &str| {
        all.iter()
            .position(|(_, c)| c.contains(needle))
            .unwrap_or_else(|| panic!("no command with {needle}"))
    };
    assert!(position("docker push \"$IMAGE\"") < position("migrator ecs run"));
    assert!(
        position("docker push \"$IMAGE_REPO_URI:$MIGRATION_IMAGE_TAG\"")
            < position("migrator ecs run")
    );
    let step = migration_step(&spec);
    let run = step.find("migrator ecs run").unwrap();
    let stage = step
        .find("docker push \"$IMAGE_REPO_URI:$STAGE\"")
        .expect("STAGE is pushed by the migration step");
    assert!(run < stage, "{step}");
    assert!(
        step[..stage].trim_end().ends_with("&&"),
        "STAGE is pushed only when ecs run succeeded: {step}"
    );
    assert_eq!(
        all.iter()
            .filter(|(_, c)| c.contains("docker push \"$IMAGE_REPO_URI:$STAGE\""))
            .count(),
        1,
        "STAGE is pushed nowhere else"
    );
}
