//! Slack notification and the run report, end to end: the real binary, a real
//! database, and a fake Slack (an HTTP server on 127.0.0.1 inside the test)
//! whose received payloads are asserted on.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::{
    Cmd, Dir, Engine, MYSQL_USER, Run, TestDb, WEBHOOK_TOKEN, assert_no_secret, engines, wait,
};
use crate::fake_http::{FakeHttp, Reply, Request};

/// Slack's limits on one message.
const MAX_BLOCKS: usize = 50;
const MAX_TEXT: usize = 3000;

/// The webhook URL of a fake Slack; it carries the secret-looking token.
fn webhook(slack: &FakeHttp) -> String {
    slack.url(&format!("/services/T0TEST/B0TEST/{WEBHOOK_TOKEN}"))
}

/// `cmd` posting to `slack`, writing its report into `out` (a folder of its own:
/// not the migrations folder, where it would be one more file to ignore).
fn notifying(cmd: Cmd, slack: &FakeHttp, out: &TempDir) -> Cmd {
    cmd.env("SLACK_WEBHOOK_URL", webhook(slack))
        .env("MIGRATOR_REPORT", report_path(out))
}

fn report_path(out: &TempDir) -> PathBuf {
    out.path().join("report.json")
}

/// The report file, checked for secrets.
fn report(out: &TempDir) -> Value {
    let text = std::fs::read_to_string(report_path(out)).expect("the report was written");
    assert_no_secret(&text);
    serde_json::from_str(&text).unwrap()
}

/// The only payload Slack received, checked for secrets and Slack's limits.
fn the_payload(slack: &FakeHttp) -> Value {
    let got = slack.requests();
    assert_eq!(got.len(), 1, "one request: {got:#?}");
    payload(&got[0])
}

fn payload(r: &Request) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/services/T0TEST/B0TEST/{WEBHOOK_TOKEN}"),
        "posted to the webhook's path"
    );
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    let v = r.json();
    assert_no_secret(&v.to_string());
    assert_fits_slack(&v);
    v
}

/// Every `text` anywhere in the payload.
fn texts(v: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match x {
                        Value::String(s) if k == "text" => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn all_text(v: &Value) -> String {
    texts(v).join("\n")
}

#[track_caller]
fn assert_fits_slack(v: &Value) {
    let blocks = v["blocks"].as_array().expect("blocks");
    assert!(
        !blocks.is_empty() && blocks.len() <= MAX_BLOCKS,
        "{} blocks",
        blocks.len()
    );
    let fallback = v["text"].as_str().expect("a top-level text");
    assert!(!fallback.trim().is_empty(), "empty notification text");
    for t in texts(v) {
        assert!(!t.trim().is_empty(), "an empty text in {v:#}");
        assert!(t.chars().count() <= MAX_TEXT, "{} chars", t.chars().count());
    }
}

#[track_caller]
fn has(v: &Value, needle: &str) {
    let all = all_text(v);
    assert!(all.contains(needle), "the message lacks {needle:?}:\n{all}");
}

fn three() -> Dir {
    Dir::new(&[
        ("1_users.up.sql", "CREATE TABLE users (id INT);\n"),
        ("2_orders.up.sql", "CREATE TABLE orders (id INT);\n"),
        ("10_items.up.sql", "CREATE TABLE items (id INT);\n"),
    ])
}

engines!(success_with_three_migrations_is_posted, |e| {
    let db = TestDb::new(e);
    let dir = three();
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::ok());
    let r = notifying(
        Cmd::on(&db, &dir, &["up", "--env", "staging-1"]),
        &slack,
        &out,
    )
    .run();
    r.code(0).has("Slack notified");
    let v = the_payload(&slack);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "✅ [staging-1] migrator up succeeded: applied 3 migrations, version none → 10"
        ),
        "{text}"
    );
    for needle in [
        "`1_users`",
        "`2_orders`",
        "`10_items`",
        "none → 10",
        "*Environment*\nstaging-1",
        "127.0.0.1",
        &db.name,
        " ms",
    ] {
        has(&v, needle);
    }
    has(
        &v,
        if e == Engine::Pg {
            "postgresql"
        } else {
            "mysql"
        },
    );
    if e == Engine::My {
        assert!(!v.to_string().contains(MYSQL_USER), "no user name: {v:#}");
    }
    let j = report(&out);
    assert_eq!(j["outcome"], "success");
    assert_eq!(
        j["notification"],
        json!({"status": "sent", "detail": null, "attempts": 1})
    );
    assert_eq!(
        j["context"],
        json!({"build_id": null, "build_url": null, "commit": null, "task_arn": null,
               "log_group": null, "log_stream": null, "log_url": null})
    );
});

#[test]
fn nothing_to_do_is_posted_unless_the_policy_skips_it() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    let slack = FakeHttp::script(vec![], Reply::ok());
    notifying(Cmd::on(&db, &dir, &["up"]), &slack, &out)
        .run()
        .code(0);
    let v = the_payload(&slack);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("migrator up had nothing to do: version 10 is current"),
        "{text}"
    );
    has(&v, "Nothing to do");

    for policy in ["change", "failure"] {
        let quiet = FakeHttp::script(vec![], Reply::ok());
        let r = notifying(
            Cmd::on(&db, &dir, &["up", "--notify", policy]),
            &quiet,
            &out,
        )
        .run();
        r.code(0).has(&format!("--notify {policy}"));
        assert!(quiet.requests().is_empty(), "--notify {policy} posted");
        let n = &report(&out)["notification"];
        assert_eq!(n["status"], "skipped", "{n}");
    }
}

engines!(failure_is_posted_with_file_line_code_and_statement, |e| {
    let db = TestDb::new(e);
    let dir = Dir::new(&[
        ("1_ok.up.sql", "CREATE TABLE ok (id INT);\n"),
        (
            "2_bad.up.sql",
            "CREATE TABLE half (id INT);\nINSERT INTO ok VALUES (1);\nSELECT *\n  FROM no_such_table;\n",
        ),
        ("3_after.up.sql", "CREATE TABLE after3 (id INT);\n"),
    ]);
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::ok());
    let r = notifying(Cmd::on(&db, &dir, &["up", "--env", "dev"]), &slack, &out).run();
    r.code(1);
    let v = the_payload(&slack);
    let (at, code) = match e {
        Engine::Pg => ("2_bad.up.sql:4:8", "42P01"),
        Engine::My => ("2_bad.up.sql:3:1", "1146"),
    };
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("❌ [dev] migrator up failed: {at} [{code}]")),
        "{text}"
    );
    has(&v, &format!("`{at}`"));
    has(&v, &format!("*Error* `{code}`"));
    has(&v, "no_such_table");
    has(&v, "```SELECT * ⏎ FROM no_such_table```");
    has(&v, "*Applied before the failure* (1):\n• `1_ok`");
    has(&v, "*Not run* (1): `3_after`");
    has(
        &v,
        if e == Engine::Pg {
            "Rolled back"
        } else {
            "Dirty"
        },
    );
    let j = report(&out);
    assert_eq!(j["outcome"], "failed");
    assert_eq!(j["exit_code"], 1);
    assert_eq!(j["notification"]["status"], "sent");
});

#[test]
fn required_never_changes_a_failed_runs_exit_code() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[("1_bad.up.sql", "SELECT * FROM no_such_table;\n")]);
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::status(500, "internal_error"));
    let r = notifying(
        Cmd::on(
            &db,
            &dir,
            &["up", "--notify-required", "--notify-budget", "2"],
        ),
        &slack,
        &out,
    )
    .run();
    r.code(1).has("42P01").has("Slack answered 500");
    assert!(slack.requests().len() >= 2, "retried");
    let j = report(&out);
    assert_eq!(
        (j["exit_code"].clone(), j["notification"]["status"].clone()),
        (json!(1), json!("failed"))
    );
}

#[test]
fn refused_dirty_state_is_posted() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[
        ("1_ok.up.sql", "CREATE TABLE ok (id INT);\n"),
        (
            "2_bad.up.sql",
            "CREATE TABLE half (id INT);\nSELECT * FROM no_such_table;\n",
        ),
    ]);
    let out = TempDir::new().unwrap();
    Cmd::on(&db, &dir, &["up"]).run().code(1);
    let slack = FakeHttp::script(vec![], Reply::ok());
    notifying(
        Cmd::on(&db, &dir, &["up", "--env", "nightly"]),
        &slack,
        &out,
    )
    .run()
    .code(5);
    let v = the_payload(&slack);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "⛔ [nightly] migrator up was refused: database is dirty: migration 2_bad"
        ),
        "{text}"
    );
    has(&v, "*Refused, nothing changed:*");
    has(&v, "no_such_table");
    has(&v, "migrator force");
    let j = report(&out);
    assert_eq!(j["outcome"], "refused");
    assert_eq!(j["refusals"][0]["kind"], "dirty");
}

/// Waits until PostgreSQL runs a statement containing `needle`.
fn wait_for_statement(db: &TestDb, needle: &str) {
    let started = Instant::now();
    let q = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{needle}%' \
         AND pid <> pg_backend_pid()"
    );
    while db.sql(&q) == "0" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{needle} never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigterm_interruption_is_posted() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[
        ("1_ok.up.sql", "CREATE TABLE ok (id INT);\n"),
        ("2_slow.up.sql", "SELECT pg_sleep(30);\n"),
        ("3_after.up.sql", "CREATE TABLE after3 (id INT);\n"),
    ]);
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::ok());
    let child = notifying(Cmd::on(&db, &dir, &["up", "--env", "dev"]), &slack, &out).spawn();
    wait_for_statement(&db, "pg_sleep(30)");
    let started = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let r: Run = wait(child);
    r.code(143);
    eprintln!("SIGTERM to exit, Slack told: {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly, notification included"
    );
    let v = the_payload(&slack);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("⚠️ [dev] migrator up stopped: interrupted by SIGTERM"),
        "{text}"
    );
    has(&v, "2_slow was rolled back");
    has(&v, "*Applied before the interruption* (1):\n• `1_ok`");
    has(&v, "*Not run* (2): `2_slow`, `3_after`");
    let j = report(&out);
    assert_eq!(j["outcome"], "interrupted");
    assert_eq!(j["exit_code"], 143);
    assert_eq!(j["notification"]["status"], "sent");
}

#[test]
fn sixty_migrations_stay_within_slack_limits() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[]);
    let out = TempDir::new().unwrap();
    for i in 1..=60 {
        dir.write(
            &format!("{i}_create_a_table_with_a_rather_long_descriptive_name_{i}.up.sql"),
            format!("CREATE TABLE t{i} (id INT);\n").as_bytes(),
        );
    }
    let slack = FakeHttp::script(vec![], Reply::ok());
    notifying(Cmd::on(&db, &dir, &["up"]), &slack, &out)
        .run()
        .code(0);
    let v = the_payload(&slack); // checks ≤ 50 blocks and ≤ 3000 characters per text
    has(&v, "*Applied* (60):");
    has(
        &v,
        "`20_create_a_table_with_a_rather_long_descriptive_name_20`",
    );
    has(&v, "…and 40 more");
    assert!(!all_text(&v).contains("`21_create"), "only the first 20");
    assert_eq!(report(&out)["applied"].as_array().unwrap().len(), 60);
}

#[test]
fn server_error_then_success_is_retried_once() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![Reply::status(500, "internal_error")], Reply::ok());
    let r = notifying(Cmd::on(&db, &dir, &["up"]), &slack, &out).run();
    r.code(0).has("Slack answered 500").has("internal_error");
    let got = slack.requests();
    assert_eq!(got.len(), 2, "one retry");
    assert_eq!(payload(&got[0]), payload(&got[1]), "the same message again");
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(500),
        "backed off"
    );
    let n = &report(&out)["notification"];
    assert_eq!(*n, json!({"status": "sent", "detail": null, "attempts": 2}));
}

#[test]
fn rate_limit_waits_for_retry_after_then_delivers() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(
        vec![Reply::status(429, "rate_limited").header("Retry-After", "1")],
        Reply::ok(),
    );
    notifying(Cmd::on(&db, &dir, &["up"]), &slack, &out)
        .run()
        .code(0)
        .has("429");
    let got = slack.requests();
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    assert_eq!(report(&out)["notification"]["status"], "sent");
}

#[test]
fn slack_refusing_the_payload_is_not_retried_and_not_fatal() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::status(400, "invalid_blocks"));
    notifying(Cmd::on(&db, &dir, &["up"]), &slack, &out)
        .run()
        .code(0)
        .has("Slack answered 400 Bad Request: invalid_blocks");
    assert_eq!(slack.requests().len(), 1);
    let n = &report(&out)["notification"];
    assert_eq!(n["status"], "failed");
    assert_eq!(
        n["detail"],
        "Slack answered 400 Bad Request: invalid_blocks"
    );
}

#[test]
fn slack_that_never_answers_costs_at_most_the_budget() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    let slack = FakeHttp::script(vec![], Reply::Hang);
    let started = Instant::now();
    let mut child = notifying(
        Cmd::on(
            &db,
            &dir,
            &["up", "--notify-timeout", "1", "--notify-budget", "3"],
        ),
        &slack,
        &out,
    )
    .spawn();
    // The report is on disk while Slack is still being tried.
    loop {
        if let Ok(text) = std::fs::read_to_string(report_path(&out))
            && let Ok(j) = serde_json::from_str::<Value>(&text)
        {
            assert_eq!(j["outcome"], "success");
            assert_eq!(j["notification"]["status"], "pending");
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited before the report was seen"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = wait(child);
    let took = started.elapsed();
    r.code(0).has("Slack did not answer within 1 s");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    eprintln!("never-answering Slack: 1 s per attempt, 3 s budget: run took {took:?}");
    let n = &report(&out)["notification"];
    assert_eq!(n["status"], "failed");
    assert!(n["attempts"].as_u64().unwrap() >= 2, "{n}");

    // The defaults: 5 s per attempt, 20 s in all; required: exit 6 (after
    // the run succeeded: the migrations are applied).
    let db = TestDb::new(Engine::Pg);
    let slack = FakeHttp::script(vec![], Reply::Hang);
    let started = Instant::now();
    let r = notifying(
        Cmd::on(&db, &dir, &["up", "--notify-required"]),
        &slack,
        &out,
    )
    .run();
    let took = started.elapsed();
    r.code(6).has("notification failed");
    assert!(took >= Duration::from_secs(15), "took {took:?}");
    assert!(took < Duration::from_secs(23), "took {took:?}");
    assert_eq!(db.history(), ["1:applied", "2:applied", "10:applied"]);
    let j = report(&out);
    assert_eq!(
        (j["outcome"].clone(), j["exit_code"].clone()),
        (json!("success"), json!(6))
    );
    eprintln!("never-answering Slack: defaults took {took:?}");
}

#[test]
fn required_without_a_webhook_changes_nothing() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    Cmd::on(&db, &dir, &["up", "--notify-required"])
        .run()
        .code(2)
        .has("--notify-required needs a Slack webhook");
    assert!(db.history().is_empty(), "nothing ran");
}

#[test]
fn no_webhook_is_said_once_and_recorded() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let r = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    r.code(0);
    assert_eq!(
        r.stderr.matches("no Slack webhook").count(),
        1,
        "{}",
        r.stderr
    );
    let j = r.json();
    assert_eq!(j["notification"]["status"], "skipped");
    assert_eq!(j["notification"]["detail"], "no Slack webhook configured");
}

#[test]
fn build_and_ecs_context_reach_the_message_and_the_report() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let out = TempDir::new().unwrap();
    let arn = "arn:aws:ecs:eu-west-1:123456789012:task/deploy/8d1e5c2a9f";
    let ecs = FakeHttp::start(move |_, r: &Request| match r.path.as_str() {
        "/v4/abc/task" => Reply::json(json!({"TaskARN": arn, "Family": "migrator"})),
        "/v4/abc" => Reply::json(json!({
            "Name": "migrator",
            "LogDriver": "awslogs",
            "LogOptions": {
                "awslogs-group": "/ecs/migrator",
                "awslogs-region": "eu-west-1",
                "awslogs-stream": "ecs/migrator/8d1e5c2a9f"
            }
        })),
        _ => Reply::status(404, "not found"),
    });
    let slack = FakeHttp::script(vec![], Reply::ok());
    let r = notifying(
        Cmd::on(&db, &dir, &["up", "--output", "json"]),
        &slack,
        &out,
    )
    .env("CODEBUILD_BUILD_ID", "deploy:5b7e")
    .env(
        "CODEBUILD_BUILD_URL",
        "https://console.example/codebuild/builds/deploy:5b7e?region=eu-west-1",
    )
    .env(
        "CODEBUILD_RESOLVED_SOURCE_VERSION",
        "9fceb02d0ae598e95dc970b74767f19372d61af8",
    )
    .env("ECS_CONTAINER_METADATA_URI_V4", ecs.url("/v4/abc"))
    .run();
    r.code(0);
    let log_url = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1\
                   #logsV2:log-groups/log-group/$252Fecs$252Fmigrator/log-events/ecs$252Fmigrator$252F8d1e5c2a9f";
    let v = the_payload(&slack);
    has(
        &v,
        "Build <https://console.example/codebuild/builds/deploy:5b7e?region=eu-west-1|deploy:5b7e>",
    );
    has(&v, "Commit `9fceb02d0ae5`");
    has(&v, "Task `8d1e5c2a9f`");
    has(&v, &format!("<{log_url}|Logs>"));
    let expected = json!({
        "build_id": "deploy:5b7e",
        "build_url": "https://console.example/codebuild/builds/deploy:5b7e?region=eu-west-1",
        "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",
        "task_arn": arn,
        "log_group": "/ecs/migrator",
        "log_stream": "ecs/migrator/8d1e5c2a9f",
        "log_url": log_url,
    });
    // stdout (printed once the notification is done) and the file agree.
    let printed = r.json();
    assert_eq!(printed["context"], expected);
    assert_eq!(printed["notification"]["status"], "sent");
    assert_eq!(report(&out), printed);
    let paths: Vec<String> = ecs.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&"/v4/abc/task".to_string()), "{paths:?}");
}

#[test]
fn unreachable_ecs_metadata_costs_little_and_breaks_nothing() {
    let db = TestDb::new(Engine::Pg);
    let dir = three();
    let ecs = FakeHttp::script(vec![], Reply::Hang);
    let started = Instant::now();
    let r = Cmd::on(&db, &dir, &["up", "--output", "json"])
        .env("ECS_CONTAINER_METADATA_URI_V4", ecs.url("/v4/abc"))
        .run();
    r.code(0);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(r.json()["context"]["task_arn"].is_null());
}

engines!(force_and_baseline_report_their_rows_as_a_change, |e| {
    let db = TestDb::new(e);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("2_b.up.sql", "CREATE TABLE b (id INT);"),
        ("3_c.up.sql", "CREATE TABLE c (id INT);"),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    let slack = FakeHttp::script(vec![], Reply::ok());
    let out = TempDir::new().unwrap();
    let r = notifying(Cmd::on(&db, &dir, &["force", "1", "--yes"]), &slack, &out)
        .env("MIGRATOR_NOTIFY", "change")
        .run();
    r.code(0).has("history rows removed 2, 3");
    let j = report(&out);
    assert_eq!(j["outcome"], "success");
    assert_eq!(j["history_changes"]["removed"], json!([2, 3]));
    let posted = texts(&the_payload(&slack)).join("\n");
    assert!(posted.contains("history rows removed 2, 3"), "{posted}");
    assert_eq!(db.history(), ["1:applied"]);

    let slack = FakeHttp::script(vec![], Reply::ok());
    let r = notifying(
        Cmd::on(&db, &dir, &["baseline", "3", "--yes"]),
        &slack,
        &out,
    )
    .env("MIGRATOR_NOTIFY", "change")
    .run();
    r.code(0).has("history rows added 2, 3");
    assert_eq!(report(&out)["history_changes"]["added"], json!([2, 3]));
    assert_eq!(slack.requests().len(), 1, "posted under --notify change");
});
