//! The edges of a run in a container (issue 14): servers that never answer,
//! one SIGTERM while connecting, checks before the first change, variables as
//! task definitions write them.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{Cmd, Dir, Engine, SECRET, engines, free_port, signal, wait};

/// A server on 127.0.0.1 that accepts connections and never says a word, as a
/// blackholed or hung database looks to a client. Lives as long as the test.
struct Silent {
    port: u16,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        Silent { port }
    }

    fn url(&self, e: Engine) -> String {
        let scheme = match e {
            Engine::Pg => "postgres",
            Engine::My => "mysql",
        };
        format!("{scheme}://app:{SECRET}@127.0.0.1:{}/app", self.port)
    }
}

fn one_file() -> Dir {
    Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);")])
}

fn reversible() -> Dir {
    Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("1_a.down.sql", "DROP TABLE a;"),
    ])
}

/// Runs `up` with `args` against a silent server; the run and how long it took.
fn up_against_silent(e: Engine, args: &[&str]) -> (crate::common::Run, Duration) {
    let silent = Silent::start();
    let dir = one_file();
    let mut all = vec!["up"];
    all.extend_from_slice(args);
    let started = Instant::now();
    let r = Cmd::new(&all)
        .env("DATABASE_URL", silent.url(e))
        .env("MIGRATOR_PATH", dir.path())
        .run();
    (r, started.elapsed())
}

engines!(a_silent_server_fails_after_the_connect_timeout, |e| {
    let (r, took) = up_against_silent(e, &["--connect-timeout", "2"]);
    r.code(3).has("no answer within 2s");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
});

engines!(wait_is_a_deadline_even_against_a_silent_server, |e| {
    let (r, took) = up_against_silent(e, &["--connect-timeout", "2", "--wait", "5"]);
    r.code(3).has("attempt");
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(7),
        "{took:?}"
    );
});

engines!(one_sigterm_while_connecting_ends_the_run, |e| {
    let silent = Silent::start();
    let dir = one_file();
    let report = dir.path().join("report.json");
    let child = Cmd::new(&["up", "--wait", "60", "--report", report.to_str().unwrap()])
        .env("DATABASE_URL", silent.url(e))
        .env("MIGRATOR_PATH", dir.path())
        .spawn();
    std::thread::sleep(Duration::from_millis(800));
    let sent = Instant::now();
    signal(&child, "TERM");
    let r = wait(child);
    let took = sent.elapsed();
    r.code(143).has("SIGTERM");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let j = crate::common::report_file(&report);
    assert_eq!(j["outcome"], "interrupted");
    assert_eq!(j["exit_code"], 143);
});

engines!(an_unwritable_report_stops_the_run_before_any_change, |e| {
    let db = crate::common::TestDb::new(e);
    let dir = one_file();
    Cmd::on(&db, &dir, &["up", "--report", "/nonexistent/dir/r.json"])
        .run()
        .code(2)
        .has("cannot write the report to /nonexistent/dir/r.json");
    assert!(!db.table_exists("migrator_history"));
    assert!(!db.table_exists("a"));
});

#[test]
fn a_webhook_that_is_no_url_stops_the_run_before_any_change() {
    let db = crate::common::TestDb::new(Engine::Pg);
    let dir = one_file();
    Cmd::on(&db, &dir, &["up"])
        .env("SLACK_WEBHOOK_URL", "hooks.example.invalid/services/x")
        .run()
        .code(2)
        .has("--slack-webhook");
    assert!(!db.table_exists("migrator_history"));
}

engines!(
    protected_environment_names_are_trimmed_and_case_blind,
    |e| {
        let db = crate::common::TestDb::new(e);
        let dir = reversible();
        Cmd::on(&db, &dir, &["up"]).run().code(0);
        Cmd::on(&db, &dir, &["down", "--yes", "--env", " PROD"])
            .run()
            .code(2)
            .has("--confirm-env");
        Cmd::on(&db, &dir, &["down", "--yes"])
            .env("MIGRATOR_ENV", "prod\n")
            .run()
            .code(2)
            .has("--confirm-env prod");
        assert_eq!(db.history(), ["1:applied"], "nothing reverted");
        Cmd::on(
            &db,
            &dir,
            &["down", "--yes", "--env", "Prod ", "--confirm-env", "prod"],
        )
        .run()
        .code(0);
        assert!(db.history().is_empty());
    }
);

#[test]
fn variables_as_task_definitions_write_them() {
    let db = crate::common::TestDb::new(Engine::My);
    let dir = reversible();
    // Empty variables count as unset, beside the flag or instead of it.
    Cmd::new(&["up", "--path", dir.path().to_str().unwrap()])
        .env("DATABASE_URL", db.url())
        .env("MIGRATOR_PATH", "")
        .env("MIGRATOR_LOCK_TIMEOUT", "")
        .env("MIGRATOR_WAIT", "")
        .env("MIGRATOR_TLS", "")
        .env("MIGRATOR_DRY_RUN", "")
        .env("MIGRATOR_ENV", " ")
        .env("MIGRATOR_INIT_SQL", " ")
        .run()
        .code(0);
    assert_eq!(db.history(), ["1:applied"]);
    // Booleans: 1/0, true/false, yes/no.
    Cmd::on(&db, &dir, &["down"])
        .env("MIGRATOR_YES", "no")
        .run()
        .code(2)
        .has("--yes");
    Cmd::on(&db, &dir, &["down"])
        .env("MIGRATOR_DRY_RUN", "1")
        .env("MIGRATOR_YES", "1")
        .run()
        .code(0);
    assert_eq!(db.history(), ["1:applied"], "a dry run");
    Cmd::on(&db, &dir, &["down"])
        .env("MIGRATOR_DRY_RUN", "0")
        .env("MIGRATOR_YES", "1")
        .run()
        .code(0);
    assert!(db.history().is_empty());
}

/// Every line on stderr is one JSON object; the last is the final error.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

engines!(json_logs_end_with_the_error_as_json, |e| {
    let db = crate::common::TestDb::new(e);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (id INT);\nSELECT no_such_column FROM b;\n",
        ),
    ]);
    let r = Cmd::on(&db, &dir, &["up", "--log-format", "json"]).run();
    r.code(1);
    let lines = json_lines(&r.stderr);
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    assert_eq!(last["code"], "migration_failed");
    assert_eq!(last["exit_code"], 1);
    assert!(
        last["message"].as_str().unwrap().contains("2_b.up.sql:2"),
        "{last}"
    );
    // Unreachable, and a command line clap refuses.
    let (r, _) = up_against_silent(e, &["--log-format", "json", "--connect-timeout", "1"]);
    r.code(3);
    assert_eq!(json_lines(&r.stderr).last().unwrap()["code"], "unreachable");
    let r = Cmd::new(&["up", "--no-such-flag"])
        .env("MIGRATOR_LOG_FORMAT", "json")
        .run();
    r.code(2);
    let last = json_lines(&r.stderr).pop().unwrap();
    assert_eq!(
        (last["code"].as_str(), last["exit_code"].as_u64()),
        (Some("usage"), Some(2))
    );
});

#[test]
fn the_drivers_slow_statement_warnings_stay_quiet() {
    let db = crate::common::TestDb::new(Engine::My);
    let dir = Dir::new(&[("1_a.up.sql", "SELECT SLEEP(1.5);\n")]);
    let r = Cmd::on(&db, &dir, &["up", "--log-format", "json"]).run();
    r.code(0);
    assert!(!r.stderr.contains("slow statement"), "{}", r.stderr);
    json_lines(&r.stderr);
}

#[test]
fn the_smaller_messages_say_what_is_wrong() {
    let db = crate::common::TestDb::new(Engine::Pg);
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);")]);
    let url = db.url().replace(":5432/", ":99999/");
    Cmd::on(&db, &dir, &["up"])
        .env("DATABASE_URL", url)
        .run()
        .code(2)
        .has("port `99999` is out of range");
    let file = dir.path().join("1_a.up.sql");
    Cmd::on(&db, &dir, &["up", "--path", file.to_str().unwrap()])
        .run()
        .code(2)
        .has("is a file, not a folder");
    let bad = Dir::new(&[("001-init.sql", "SELECT 1;")]);
    Cmd::on(&db, &bad, &["up"])
        .run()
        .code(2)
        .has("rename it to 001_init.sql");
    let empty = Dir::new(&[]);
    Cmd::on(&db, &empty, &["up"])
        .run()
        .code(0)
        .has("no migrations in the folder");
    let blank = Dir::new(&[("1_a.up.sql", "\n")]);
    Cmd::on(&db, &blank, &["up"])
        .run()
        .code(0)
        .has("the file is empty");
}

engines!(redo_reverts_and_applies_the_last_migration_again, |e| {
    let db = crate::common::TestDb::new(e);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("1_a.down.sql", "DROP TABLE a;"),
        ("2_b.up.sql", "CREATE TABLE b (id INT);"),
        ("2_b.down.sql", "DROP TABLE b;"),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    Cmd::on(&db, &dir, &["redo"])
        .run()
        .code(2)
        .has("redo would revert and apply again 2_b");
    db.sql("INSERT INTO b VALUES (1)");
    let j = Cmd::on(&db, &dir, &["redo", "--yes", "--output", "json"])
        .run()
        .code(0)
        .json();
    let steps: Vec<(u64, String)> = j["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["version"].as_u64().unwrap(),
                s["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(steps, [(2, "down".to_string()), (2, "up".to_string())]);
    assert_eq!(
        (j["version_before"].as_u64(), j["version_after"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    assert_eq!(
        db.sql("SELECT count(*) FROM b"),
        "0",
        "b was dropped and made again"
    );
    Cmd::on(&db, &dir, &["redo", "--yes", "--env", "prod"])
        .run()
        .code(2)
        .has("--confirm-env prod");
});

engines!(a_server_closing_during_the_handshake_is_named, |e| {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            // Half a message, then gone: as a proxy or a wrong service might.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
            let _ = stream.read(&mut [0u8; 512]);
            let _ = stream.write_all(b"R\0\0");
        }
    });
    let scheme = if e == Engine::Pg { "postgres" } else { "mysql" };
    let dir = one_file();
    Cmd::new(&["up", "--tls", "disable"])
        .env(
            "DATABASE_URL",
            format!("{scheme}://app:{SECRET}@127.0.0.1:{port}/app"),
        )
        .env("MIGRATOR_PATH", dir.path())
        .run()
        .code(3)
        .has("the server closed the connection during the handshake");
});

#[test]
fn read_only_commands_refuse_the_flags_they_would_ignore() {
    let dir = one_file();
    let path = dir.path().to_str().unwrap();
    Cmd::new(&["status", "--report", "/tmp/r.json", "--path", path])
        .run()
        .code(2)
        .has("drop --report");
    Cmd::new(&["--notify-required", "validate", "--path", path])
        .run()
        .code(2)
        .has("drop --notify-required");
    // From the environment, as a task definition sets them for every command.
    Cmd::new(&["new", "x", "--path", path])
        .env("MIGRATOR_REPORT", "/tmp/r.json")
        .run()
        .code(0);
}

#[test]
fn read_only_commands_report_a_bad_file_before_an_unreachable_database() {
    // status reads the history while the files are parsed; a file error still
    // wins (exit 2, naming the file), as it does for `up`.
    let dir = Dir::new(&[("1_a.up.sql", "SELECT 1;\n")]);
    dir.write("2_b.up.sql", b"SELECT \xff;\n");
    let port = free_port();
    for command in ["status", "version", "validate", "up"] {
        Cmd::new(&[command, "--connect-timeout", "2s"])
            .env(
                "DATABASE_URL",
                format!("postgres://app@127.0.0.1:{port}/app"),
            )
            .env("MIGRATOR_PATH", dir.path())
            .run()
            .code(2)
            .has("2_b.up.sql")
            .has("not valid UTF-8");
    }
}
