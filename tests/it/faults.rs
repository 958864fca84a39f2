//! Faults at every point of a run (#18): a link that goes silent ends the run
//! by itself, one SIGTERM ends it within a second even then, and the CI-sized
//! subset of `bench/faults` (cut connections at points spread over a run,
//! silent links, kill -9) leaves no silent partial state and nothing the next
//! `up` cannot finish.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Cmd, Dir, Engine, TestDb, engines, signal, wait};
use crate::proxy::Proxy;

fn three() -> Dir {
    Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
        (
            "2_b.up.sql",
            "CREATE TABLE b (id INT);\nINSERT INTO b VALUES (1), (2);\n",
        ),
        ("3_c.up.sql", "CREATE TABLE c (id INT);\n"),
    ])
}

/// Messages of a whole uncut `up` through the proxy, in one direction
/// (`"s2c"` or `"c2s"`): the fault points below are fractions of it, so they
/// hold whatever the apply path.
fn messages_of_a_run(engine: Engine, direction: &str) -> u64 {
    let db = TestDb::new(engine);
    let dir = three();
    let proxy = Proxy::start(&db, &[]);
    Cmd::on(&db, &dir, &["up", "--tls", "disable"])
        .env("DATABASE_URL", proxy.url(&db))
        .run()
        .code(0);
    let stats = proxy.settled();
    stats["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c[format!("{direction}_messages").as_str()]
                .as_u64()
                .unwrap()
        })
        .sum()
}

/// History rows applied ⇔ their table exists: no silent partial state.
fn consistent(db: &TestDb) {
    let history = db.history();
    for (v, table) in [(1, "a"), (2, "b"), (3, "c")] {
        let recorded = history.iter().any(|h| h == &format!("{v}:applied"));
        let dirty = history
            .iter()
            .any(|h| h.starts_with(&format!("{v}:")) && !h.ends_with(":applied"));
        assert!(
            dirty || recorded == db.table_exists(table),
            "version {v}: recorded {recorded}, table {table} exists {}; history {history:?}",
            db.table_exists(table)
        );
    }
}

engines!(a_silent_link_ends_the_run_with_exit_1_or_3, |engine| {
    let half = messages_of_a_run(engine, "s2c") / 2;
    let db = TestDb::new(engine);
    let dir = three();
    let after = half.to_string();
    let proxy = Proxy::start(
        &db,
        &[
            "--fault",
            "silent",
            "--direction",
            "s2c",
            "--after-messages",
            &after,
        ],
    );
    let started = Instant::now();
    let run = Cmd::on(&db, &dir, &["up", "--tls", "disable"])
        .env("DATABASE_URL", proxy.url(&db))
        .env("MIGRATOR_LINK_TIMEOUT", "3s")
        .run();
    let took = started.elapsed();
    let code = run.code;
    assert!(matches!(code, 1 | 3), "exit {code}: {}", run.all());
    eprintln!("{engine:?}: silent link, exit {code} after {took:?}");
    assert!(took < Duration::from_secs(60), "ended after {took:?}");
    assert!(run.all().contains("went silent"), "{}", run.all());
    drop(proxy);
    consistent(&db);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
});

engines!(
    one_sigterm_on_a_silent_link_exits_143_within_a_second,
    |engine| {
        let half = messages_of_a_run(engine, "s2c") / 2;
        let db = TestDb::new(engine);
        let dir = three();
        let after = half.to_string();
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "silent",
                "--direction",
                "s2c",
                "--after-messages",
                &after,
            ],
        );
        // The default link timeout (30 s): only the signal can end it in time.
        let mut child = Cmd::on(&db, &dir, &["up", "--tls", "disable"])
            .env("DATABASE_URL", proxy.url(&db))
            .spawn();
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run should be stuck on the silent link"
        );
        let sent = Instant::now();
        signal(&child, "TERM");
        let run = wait(child);
        let took = sent.elapsed();
        run.code(143);
        eprintln!("{engine:?}: exit 143 {took:?} after SIGTERM on a silent link");
        assert!(
            took < Duration::from_secs(1),
            "exited {took:?} after SIGTERM"
        );
        drop(proxy);
        // The old session may still hold the lock until the server notices it is gone.
        Cmd::on(&db, &dir, &["up", "--lock-timeout", "30"])
            .run()
            .code(0);
        assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    }
);

/// `bench/faults --quick` for one engine: a few dozen faults (resets and
/// silences at points spread over a five-migration run, both directions, and
/// kill -9 at random times), each followed by the state check and the next `up`.
fn sweep(engine: &str) {
    let script = [env!("CARGO_MANIFEST_DIR"), "bench", "faults"]
        .iter()
        .collect::<std::path::PathBuf>();
    let out = Command::new("python3")
        .arg(script)
        .args(["--quick", "--engines", engine, "--bin"])
        .arg(crate::common::bin())
        .output()
        .expect("python3 runs bench/faults");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" 0 silent partial states"), "{text}");
}

#[test]
fn quick_fault_sweep_on_postgres() {
    sweep("pg");
}

#[test]
fn quick_fault_sweep_on_mysql() {
    sweep("my");
}

/// `up --wait` after a connection reset mid-run: the migration in flight is
/// settled from its history row on a new connection, and the run carries on
/// from what is recorded to the end.
#[test]
fn up_wait_carries_on_after_a_lost_connection() {
    let n = messages_of_a_run(Engine::Pg, "c2s");
    let mut settled = 0;
    for k in [n / 2, n * 2 / 3, n * 5 / 6] {
        let db = TestDb::new(Engine::Pg);
        let dir = three();
        let after = k.to_string();
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "reset",
                "--direction",
                "c2s",
                "--after-messages",
                &after,
            ],
        );
        let run = Cmd::on(&db, &dir, &["up", "--tls", "disable", "--wait", "30"])
            .env("DATABASE_URL", proxy.url(&db))
            .run();
        run.code(0);
        assert_eq!(
            db.history(),
            ["1:applied", "2:applied", "3:applied"],
            "K={k}: {}",
            run.all()
        );
        consistent(&db);
        if run.stdout.contains("in doubt, settled: ") {
            settled += 1;
        }
    }
    assert!(settled > 0, "no run had a migration in flight");
}

// Silent from the session's first query on (the lock's message): the watch
// needs the server's answer naming our session, so until that answer the wait
// is bounded by the link timeout itself, not by `--lock-timeout` plus it.
engines!(
    a_link_silent_before_the_lock_answers_ends_within_the_link_timeout,
    |engine| {
        let db = TestDb::new(engine);
        let dir = three();
        // PostgreSQL (trust): client message 1 is the login, 2 the first
        // query. MySQL: the login takes two (the answer to the server's
        // greeting and to its auth switch), the first query is 3.
        let first_query = match engine {
            Engine::Pg => "2",
            Engine::My => "3",
        };
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "silent",
                "--direction",
                "c2s",
                "--after-messages",
                first_query,
            ],
        );
        let started = Instant::now();
        let run = Cmd::on(
            &db,
            &dir,
            &["up", "--tls", "disable", "--lock-timeout", "60"],
        )
        .env("DATABASE_URL", proxy.url(&db))
        .env("MIGRATOR_LINK_TIMEOUT", "3s")
        .run();
        let took = started.elapsed();
        assert!(
            matches!(run.code, 1 | 3),
            "exit {}: {}",
            run.code,
            run.all()
        );
        assert!(run.all().contains("went silent"), "{}", run.all());
        assert!(took < Duration::from_secs(15), "ended after {took:?}");
        drop(proxy);
        Cmd::on(&db, &dir, &["up", "--lock-timeout", "30"])
            .run()
            .code(0);
    }
);
