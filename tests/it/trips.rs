//! Round trips, counted: through `bench/proxy`, plain TCP, the flights (bursts
//! the client sends after the server last spoke) of whole runs, connecting and
//! closing included. Counts, not timings: they hold on a loaded machine.

use crate::common::{Cmd, Dir, Engine, TestDb, engines};
use crate::proxy::Proxy;

/// Twenty migrations of three statements each (DDL, then DML), reversible.
fn twenty(db: &TestDb) -> Dir {
    let dir = Dir::new(&[]);
    for v in 1..=20 {
        add(db, &dir, v);
    }
    dir
}

fn add(db: &TestDb, dir: &Dir, v: u32) {
    let text = match db.engine {
        Engine::Pg => "TEXT",
        Engine::My => "VARCHAR(20)",
    };
    dir.write(
        &format!("{v}_m{v}.up.sql"),
        format!(
            "CREATE TABLE t{v} (id INT PRIMARY KEY, name {text});\n\
             CREATE INDEX t{v}_name ON t{v} (name);\n\
             INSERT INTO t{v} VALUES (1, 'a'), (2, 'b');\n"
        )
        .as_bytes(),
    );
    dir.write(
        &format!("{v}_m{v}.down.sql"),
        format!("DROP TABLE t{v};\n").as_bytes(),
    );
}

/// The flights of one successful run of `args` against `db`, through a fresh
/// proxy.
fn flights(db: &TestDb, dir: &Dir, args: &[&str], tls: &str) -> u64 {
    let proxy = Proxy::start(db, &[]);
    let url = proxy.url(db);
    let mut all = args.to_vec();
    all.extend(["--database-url", &url, "--tls", tls]);
    let run = Cmd::new(&all).env("MIGRATOR_PATH", dir.path()).run();
    assert_eq!(run.code, 0, "{}", run.all());
    let stats = proxy.settled();
    let count = stats["flights"].as_u64().unwrap();
    assert_eq!(stats["connections"].as_array().unwrap().len(), 1, "{stats}");
    count
}

engines!(flights_per_migration_and_per_no_op_run, |e| {
    let db = TestDb::new(e);
    let dir = twenty(&db);
    // PostgreSQL: BEGIN, script, history row and COMMIT in one message; MySQL:
    // the in-progress row, the statements and the final update in one.
    let (per_migration, no_op_limit, fresh_limit) = match e {
        Engine::Pg => (1, 4, 26),
        Engine::My => (2, 5, 46),
    };
    let fresh = flights(&db, &dir, &["up"], "disable");
    assert!(fresh <= fresh_limit, "20 fresh migrations: {fresh} flights");
    assert_eq!(db.history().len(), 20);
    let no_op = flights(&db, &dir, &["up"], "disable");
    assert!(no_op <= no_op_limit, "no-op run: {no_op} flights");
    // One more migration costs at most `per_migration` over the no-op run.
    add(&db, &dir, 21);
    let one = flights(&db, &dir, &["up"], "disable");
    assert!(
        one <= no_op + per_migration,
        "one migration: {one} flights, no-op {no_op}"
    );
    // Down migrations too.
    let down = flights(&db, &dir, &["down", "--all", "--yes"], "disable");
    assert!(
        down <= no_op + 21 * per_migration,
        "21 down migrations: {down} flights, no-op {no_op}"
    );
    assert!(db.history().is_empty());
    // status: connect, read, close.
    let status = flights(&db, &dir, &["status"], "disable");
    assert!(status < no_op_limit, "status: {status} flights");
    eprintln!(
        "flights ({e:?}): 20 fresh {fresh}, no-op {no_op}, one {one}, 21 down {down}, status {status}"
    );
});

/// TLS adds its own negotiation and handshake and nothing after them (here:
/// `prefer`, so the count holds whether the server offers TLS or not).
#[test]
fn tls_adds_only_its_handshake_on_postgres() {
    let db = TestDb::new(Engine::Pg);
    let dir = twenty(&db);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    let plain = flights(&db, &dir, &["up"], "disable");
    let tls = flights(&db, &dir, &["up"], "prefer");
    // SSLRequest, ClientHello, the client's Finished (with the startup message).
    assert!(
        tls <= plain + 3,
        "no-op: {tls} flights with TLS, {plain} without"
    );
}

// The execution time recorded is the server's, and the report carries it.
engines!(the_execution_time_is_measured_by_the_server, |e| {
    let db = TestDb::new(e);
    let sleep = db.sleep_sql(0.3);
    let dir = Dir::new(&[(
        "1_slow.up.sql",
        &format!("CREATE TABLE s (id INT);\n{sleep};\n"),
    )]);
    let r = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    r.code(0);
    let reported = r.json()["applied"][0]["execution_ms"].as_u64().unwrap();
    let stored: u64 = db
        .sql("SELECT execution_ms FROM migrator_history WHERE version = 1")
        .parse()
        .unwrap();
    assert!((300..5000).contains(&stored), "stored {stored} ms");
    assert_eq!(reported, stored);
});
