//! Signals, crashes, waiting for the database, and concurrent runners.

use std::time::{Duration, Instant};

use crate::common::{Cmd, Dir, Engine, TestDb, ThrowawayPg, engines, free_port, signal, wait};

/// Version 1 quick, version 2 long (a sleep between two DDL statements).
fn slow(db: &TestDb) -> Dir {
    let sleep = db.sleep_sql(30.0);
    Dir::new(&[
        ("1_first.up.sql", "CREATE TABLE first (id INT);\n"),
        (
            "2_slow.up.sql",
            &format!("CREATE TABLE x (id INT);\n{sleep};\nCREATE TABLE y (id INT);\n"),
        ),
        ("3_third.up.sql", "CREATE TABLE third (id INT);\n"),
    ])
}

/// Waits until the history shows version 1 applied and version 2 running.
fn until_running(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if db.table_exists("x") || (db.engine == Engine::Pg && db.history() == ["1:applied"]) {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("migration 2 never started");
}

#[test]
fn sigterm_on_postgres_cancels_rolls_back_and_frees_the_lock() {
    let db = TestDb::new(Engine::Pg);
    let dir = slow(&db);
    let report = dir.path().join("report.json");
    let child = Cmd::on(&db, &dir, &["up", "--report", report.to_str().unwrap()]).spawn();
    until_running(&db);
    let sent = Instant::now();
    signal(&child, "TERM");
    let r = wait(child);
    let took = sent.elapsed();
    r.code(143).has("SIGTERM").has("2_slow was rolled back");
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    assert_eq!(db.history(), ["1:applied"], "nothing of 2 applied");
    assert!(!db.table_exists("x"));
    let j = crate::common::report_file(&report);
    assert_eq!(j["outcome"], "interrupted");
    assert_eq!(j["exit_code"], 143);
    // The lock is free: a second runner proceeds at once.
    dir.write("2_slow.up.sql", b"CREATE TABLE x (id INT);\n");
    let started = Instant::now();
    Cmd::on(&db, &dir, &["up", "--lock-timeout", "0"])
        .run()
        .code(0);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
}

#[test]
fn sigint_exits_130() {
    let db = TestDb::new(Engine::Pg);
    let dir = slow(&db);
    let child = Cmd::on(&db, &dir, &["up"]).spawn();
    until_running(&db);
    signal(&child, "INT");
    wait(child).code(130).has("SIGINT");
}

#[test]
fn sigterm_on_mysql_leaves_the_cut_migration_dirty_and_says_so() {
    let db = TestDb::new(Engine::My);
    let dir = slow(&db);
    let child = Cmd::on(&db, &dir, &["up", "--output", "json"]).spawn();
    until_running(&db);
    let sent = Instant::now();
    signal(&child, "TERM");
    let r = wait(child);
    assert!(sent.elapsed() < Duration::from_secs(5));
    r.code(143).has("marked dirty");
    assert_eq!(r.json()["outcome"], "interrupted");
    assert_eq!(db.history(), ["1:applied", "2:failed"]);
    assert!(!db.table_exists("y"), "stopped before the next statement");
    Cmd::on(&db, &dir, &["up", "--lock-timeout", "0"])
        .run()
        .code(5)
        .has("migrator force 2 --yes");
}

engines!(kill_9_mid_migration_then_a_second_run, |e| {
    let db = TestDb::new(e);
    let dir = slow(&db);
    if e == Engine::My {
        // The whole migration is one message: without its client, the server
        // runs it on (a SLEEP ends early, without an error, when its client is
        // gone). A statement failing there, with nobody to record it, leaves
        // the in-progress row: this one fails (the table exists).
        let sleep = db.sleep_sql(30.0);
        dir.write(
            "2_slow.up.sql",
            format!("CREATE TABLE x (id INT);\n{sleep};\nCREATE TABLE x (id INT);\n").as_bytes(),
        );
    }
    let mut child = Cmd::on(&db, &dir, &["up"]).spawn();
    until_running(&db);
    child.kill().unwrap();
    child.wait().unwrap();
    dir.write("2_slow.up.sql", b"CREATE TABLE x2 (id INT);\n");
    let r = Cmd::on(&db, &dir, &["up", "--lock-timeout", "15"]).run();
    match e {
        // The killed transaction never committed: the migration runs again.
        Engine::Pg => {
            r.code(0);
            assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
            assert!(!db.table_exists("x") && db.table_exists("x2"));
        }
        // The in-progress row survived the DDL's implicit commit.
        Engine::My => {
            r.code(5)
                .has("2_slow")
                .has("never finished")
                .has("migrator force 2 --yes")
                .has("migrator force 1 --yes");
            assert_eq!(db.history(), ["1:applied", "2:running"]);
        }
    }
});

#[test]
fn wait_retries_until_the_server_comes_up() {
    let Some(pg) = ThrowawayPg::init(&[]) else {
        return;
    };
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE waited (id INT);")]);
    let child = Cmd::new(&["up", "--wait", "30"])
        .env("DATABASE_URL", pg.url("127.0.0.1"))
        .env("MIGRATOR_PATH", dir.path())
        .spawn();
    std::thread::sleep(Duration::from_millis(1500));
    pg.start();
    let r = wait(child);
    r.code(0).has("database not reachable yet").has("attempt");
}

#[test]
fn wait_gives_up_with_exit_3() {
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);")]);
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/db",
        crate::common::SECRET,
        free_port()
    );
    let started = Instant::now();
    let r = Cmd::new(&["up", "--wait", "2"])
        .env("DATABASE_URL", url)
        .env("MIGRATOR_PATH", dir.path())
        .run();
    r.code(3).has("cannot connect").has("attempt");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn authentication_errors_are_not_retried() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);")]);
    let url = db
        .url()
        .replace(crate::common::SECRET, "wrong-password-123");
    let started = Instant::now();
    let r = Cmd::new(&["up", "--wait", "20"])
        .env("DATABASE_URL", url)
        .env("MIGRATOR_PATH", dir.path())
        .run();
    r.code(3).has("1045");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retries on a bad password"
    );
    assert!(!r.all().contains("wrong-password-123"));
}

engines!(eight_runners_apply_fifty_migrations_exactly_once, |e| {
    let db = TestDb::new(e);
    db.sql("CREATE TABLE applied_log (v INT)");
    let files: Vec<(String, String)> = (1..=50)
        .map(|v| {
            (
                format!("{v}_m{v}.up.sql"),
                format!("CREATE TABLE t{v} (id INT);\nINSERT INTO applied_log VALUES ({v});\n"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = Dir::new(&refs);
    let children: Vec<_> = (0..8)
        .map(|_| Cmd::on(&db, &dir, &["up"]).spawn())
        .collect();
    for c in children {
        wait(c).code(0);
    }
    assert_eq!(db.history().len(), 50);
    assert_eq!(db.sql("SELECT count(*) FROM applied_log"), "50");
    assert_eq!(db.sql("SELECT count(DISTINCT v) FROM applied_log"), "50");
});

engines!(one_sigterm_while_waiting_for_the_lock_ends_the_run, |e| {
    let db = TestDb::new(e);
    let dir = slow(&db);
    let holder = Cmd::on(&db, &dir, &["up"]).spawn();
    until_running(&db);
    let report = dir.path().join("waiter.json");
    let waiter = Cmd::on(
        &db,
        &dir,
        &[
            "up",
            "--lock-timeout",
            "60",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .spawn();
    std::thread::sleep(Duration::from_millis(2000));
    let sent = Instant::now();
    signal(&waiter, "TERM");
    let r = wait(waiter);
    let took = sent.elapsed();
    r.code(143)
        .has("migration lock")
        .has("waiting for the migration lock: another runner holds it");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let j = crate::common::report_file(&report);
    assert_eq!(j["outcome"], "interrupted");
    signal(&holder, "TERM");
    wait(holder).code(143);
});
