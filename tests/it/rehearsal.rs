//! Rehearsal on a clone: locks and rewrites measured per migration, the gates
//! (`--max-lock-ms`, `--fail-on-rewrite`, exit 8) and `--verify-down`, on the
//! real servers.

use serde_json::Value;

use crate::common::{Cmd, Dir, Engine, TestDb};

/// A PostgreSQL database with `t (id, v)` of `rows` rows, analyzed as
/// autovacuum would have it on a clone of production.
fn pg_with_rows(rows: u32) -> TestDb {
    let db = TestDb::new(Engine::Pg);
    db.sql(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, v int); \
         INSERT INTO t SELECT g, g FROM generate_series(1, {rows}) g; ANALYZE t"
    ));
    db
}

fn step(report: &Value, version: u64) -> &Value {
    report["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .find(|s| s["version"] == version)
        .unwrap_or_else(|| panic!("no applied step {version}: {report:#}"))
}

/// `[(relation, mode)]` of a step's locks.
fn locks(step: &Value) -> Vec<(String, String)> {
    step["locks"]
        .as_array()
        .unwrap_or_else(|| panic!("locks measured: {step:#}"))
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap().to_string(),
                l["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn rewritten(step: &Value) -> Vec<String> {
    step["rewrites"]
        .as_array()
        .unwrap_or_else(|| panic!("rewrites measured: {step:#}"))
        .iter()
        .map(|r| r["relation"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn postgres_names_the_locks_and_rewrites_of_each_migration_on_100k_rows() {
    let db = pg_with_rows(100_000);
    let dir = Dir::new(&[
        (
            "1_retype.up.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
        ),
        ("2_index.up.sql", "CREATE INDEX t_v ON t (v);\n"),
        (
            "3_add_column.up.sql",
            "ALTER TABLE t ADD COLUMN c int DEFAULT 0;\n",
        ),
        (
            "4_concurrently.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n",
        ),
        (
            "5_new_table.up.sql",
            "CREATE TABLE n (id int);\nCREATE INDEX n_id ON n (id);\n",
        ),
        (
            "6_vacuum_full.up.sql",
            "-- no-transaction\nVACUUM FULL t;\n",
        ),
    ]);
    let run = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    run.code(0);
    let r = run.json();
    assert_eq!(r["schema"], 2);

    let retype = step(&r, 1);
    assert_eq!(
        locks(retype),
        [("t".to_string(), "AccessExclusiveLock".to_string())]
    );
    assert_eq!(rewritten(retype), ["t"]);
    let size = retype["rewrites"][0]["bytes_before"].as_u64().unwrap();
    assert!(
        (3_000_000..6_000_000).contains(&size),
        "100,000 rows of (int, int) are about 3.5 MB: {size}"
    );

    let index = step(&r, 2);
    assert_eq!(locks(index), [("t".to_string(), "ShareLock".to_string())]);
    assert!(rewritten(index).is_empty(), "CREATE INDEX rewrites nothing");

    let add = step(&r, 3);
    assert!(
        rewritten(add).is_empty(),
        "ADD COLUMN with a constant default rewrites nothing"
    );
    assert_eq!(
        locks(add),
        [("t".to_string(), "AccessExclusiveLock".to_string())]
    );

    let concurrently = step(&r, 4);
    assert!(rewritten(concurrently).is_empty());
    assert!(
        concurrently["locks"].is_null(),
        "no transaction to read locks in: not measured, not empty"
    );
    assert!(
        concurrently["not_measured"]
            .as_str()
            .unwrap()
            .contains("no-transaction"),
        "{concurrently:#}"
    );
    assert!(!concurrently.to_string().contains("ShareLock"));

    let fresh = step(&r, 5);
    assert!(
        locks(fresh).is_empty() && rewritten(fresh).is_empty(),
        "a table the migration created is nobody else's: {fresh:#}"
    );

    let vacuum = step(&r, 6);
    assert_eq!(
        rewritten(vacuum),
        ["t"],
        "a no-transaction rewrite is seen too: {vacuum:#}"
    );
    assert!(vacuum["locks"].is_null());

    let findings: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(
        findings[0].starts_with("1_retype would hold ACCESS EXCLUSIVE on t for ")
            && findings[0].ends_with(" MB)")
            && findings[0].contains(" and rewrite it (3."),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("2_index would hold SHARE on t for ")),
        "{findings:?}"
    );
    assert!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["gates"].as_array().unwrap().is_empty())
    );
}

#[test]
fn postgres_gates_exit_8_with_the_finding_and_leave_the_database_migrated() {
    let db = pg_with_rows(20_000);
    let dir = Dir::new(&[
        (
            "1_retype.up.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
        ),
        ("2_index.up.sql", "CREATE INDEX t_v ON t (v);\n"),
    ]);
    let report = dir.path().join("report.json");
    let run = Cmd::on(
        &db,
        &dir,
        &[
            "up",
            "--to",
            "1",
            "--fail-on-rewrite",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .run();
    run.code(8)
        .has("rehearsal failed")
        .has("1_retype would hold ACCESS EXCLUSIVE on t for ")
        .has("and rewrite it (")
        .has("(--fail-on-rewrite)")
        .has("the database is left migrated");
    assert_eq!(
        db.history(),
        ["1:applied"],
        "a gate leaves the clone migrated"
    );
    let r = crate::common::report_file(&report);
    assert_eq!(r["outcome"], "rehearsal_failed");
    assert_eq!(r["exit_code"], 8);
    assert_eq!(r["findings"][0]["gates"][0], "fail_on_rewrite");

    // CREATE INDEX holds SHARE, not ACCESS EXCLUSIVE: --max-lock-ms lets it be.
    Cmd::on(&db, &dir, &["up", "--max-lock-ms", "0"])
        .run()
        .code(0)
        .has("2_index would hold SHARE on t for");

    let db = pg_with_rows(20_000);
    let run = Cmd::on(&db, &dir, &["up", "--to", "1", "--max-lock-ms", "0"]).run();
    run.code(8)
        .has("1_retype would hold ACCESS EXCLUSIVE on t for ")
        .has("(--max-lock-ms)");
    let db = pg_with_rows(20_000);
    Cmd::on(&db, &dir, &["up", "--to", "1", "--max-lock-ms", "600000"])
        .run()
        .code(0);
}

#[test]
fn mariadb_tells_a_copying_alter_from_an_instant_one() {
    let db = TestDb::new(Engine::My);
    db.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; \
         INSERT INTO t SELECT seq, seq FROM seq_1_to_20000; ANALYZE TABLE t",
    );
    let dir = Dir::new(&[
        ("1_copy.up.sql", "ALTER TABLE t MODIFY v BIGINT;\n"),
        (
            "2_instant.up.sql",
            "ALTER TABLE t ADD COLUMN c INT DEFAULT 0;\n",
        ),
    ]);
    let run = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    run.code(0);
    let r = run.json();
    let copy = step(&r, 1);
    assert_eq!(rewritten(copy), ["t"], "{copy:#}");
    assert!(copy["rewrites"][0]["bytes_before"].as_u64().unwrap() > 100_000);
    let instant = step(&r, 2);
    assert!(rewritten(instant).is_empty(), "{instant:#}");
    // A DDL statement's metadata locks end at its implicit commit: said, not
    // guessed.
    assert!(instant["locks"].is_null(), "{instant:#}");
    assert!(
        instant["not_measured"]
            .as_str()
            .unwrap()
            .contains("locks unknown: no open transaction"),
        "{instant:#}"
    );
    let gated = TestDb::new(Engine::My);
    gated.sql("CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 1)");
    Cmd::on(&gated, &dir, &["up", "--fail-on-rewrite"])
        .run()
        .code(8)
        .has("1_copy would rewrite t (");
    assert_eq!(gated.history(), ["1:applied", "2:applied"]);
}

/// Three pairs: a correct one, a down that forgets the index, a down that fails.
fn three_downs() -> Dir {
    Dir::new(&[
        (
            "1_base.up.sql",
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);\n",
        ),
        ("1_base.down.sql", "DROP TABLE t;\n"),
        ("2_index.up.sql", "CREATE INDEX t_v ON t (v);\n"),
        ("2_index.down.sql", "-- forgot the index\nSELECT 1;\n"),
        (
            "3_items.up.sql",
            "CREATE TABLE items (id INT);\nCREATE TABLE tags (id INT);\n",
        ),
        (
            "3_items.down.sql",
            "DROP TABLE items;\nDROP TABLE no_such_table;\nDROP TABLE tags;\n",
        ),
    ])
}

fn verify_outcomes(r: &Value) -> Vec<(u64, String)> {
    r["verify_down"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn verify_down_on_postgres_tells_ok_schema_differs_and_down_failed() {
    let db = TestDb::new(Engine::Pg);
    let dir = three_downs();
    let run = Cmd::on(&db, &dir, &["up", "--verify-down", "--output", "json"]).run();
    run.code(8);
    let r = run.json();
    assert_eq!(r["outcome"], "rehearsal_failed");
    assert_eq!(
        verify_outcomes(&r),
        [
            (1, "ok".to_string()),
            (2, "schema_differs".to_string()),
            (3, "down_failed".to_string())
        ]
    );
    let differs = &r["verify_down"][1]["differences"][0];
    assert_eq!(
        (&differs["kind"], &differs["name"], &differs["change"]),
        (
            &Value::from("index"),
            &Value::from("t_v"),
            &Value::from("left_behind")
        )
    );
    let failed = &r["verify_down"][2];
    assert_eq!(failed["file"], "3_items.down.sql");
    assert_eq!(failed["line"], 2);
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .contains("no_such_table")
    );
    // Every case ends at the up state.
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    for table in ["t", "items", "tags"] {
        assert!(db.table_exists(table), "{table} is there");
    }
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 't_v'"),
        "1"
    );
    let text = Cmd::on(&db, &dir, &["status"]).run();
    text.code(0);

    // The text of the failure, one line per finding.
    let db = TestDb::new(Engine::Pg);
    Cmd::on(&db, &dir, &["up", "--verify-down"])
        .run()
        .code(8)
        .has("2_index: down does not undo up: index t_v left behind")
        .has("3_items: down failed at 3_items.down.sql:2: [42P01]");
}

#[test]
fn verify_down_with_correct_pairs_passes_and_is_refused_in_production() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[
        (
            "1_base.up.sql",
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);\n",
        ),
        ("1_base.down.sql", "DROP TABLE t;\n"),
        (
            "2_col.up.sql",
            "ALTER TABLE t ADD COLUMN w text NOT NULL DEFAULT 'x';\nCREATE INDEX t_w ON t (w);\n",
        ),
        ("2_col.down.sql", "ALTER TABLE t DROP COLUMN w;\n"),
    ]);
    Cmd::on(&db, &dir, &["up", "--verify-down", "--env", "prod"])
        .run()
        .code(2)
        .has("protected environment")
        .has("nothing was changed");
    assert!(!db.table_exists("migrator_history"));
    let run = Cmd::on(&db, &dir, &["up", "--verify-down", "--output", "json"]).run();
    run.code(0);
    assert_eq!(
        verify_outcomes(&run.json()),
        [(1, "ok".to_string()), (2, "ok".to_string())]
    );
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 't'"),
        "3"
    );
}

#[test]
fn verify_down_on_mariadb_ends_at_the_up_state() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[
        (
            "1_base.up.sql",
            "CREATE TABLE t (id INT PRIMARY KEY, v INT);\n",
        ),
        ("1_base.down.sql", "DROP TABLE t;\n"),
        ("2_index.up.sql", "CREATE INDEX t_v ON t (v);\n"),
        ("2_index.down.sql", "SELECT 1;\n"),
    ]);
    let run = Cmd::on(&db, &dir, &["up", "--verify-down", "--output", "json"]).run();
    run.code(8);
    let r = run.json();
    assert_eq!(
        verify_outcomes(&r),
        [(1, "ok".to_string()), (2, "schema_differs".to_string())]
    );
    assert_eq!(r["verify_down"][1]["differences"][0]["name"], "t.t_v");
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    assert_eq!(
        db.sql("SELECT count(*) FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = 't_v'"),
        "1"
    );
}

#[test]
fn no_capture_says_not_measured() {
    let db = pg_with_rows(10);
    let dir = Dir::new(&[("1_add.up.sql", "ALTER TABLE t ADD COLUMN c int;\n")]);
    let run = Cmd::on(&db, &dir, &["up", "--no-capture", "--output", "json"]).run();
    run.code(0);
    let s = step(&run.json(), 1).clone();
    assert!(s["locks"].is_null() && s["rewrites"].is_null());
    assert_eq!(s["not_measured"], "--no-capture");
}

/// The table query passed the session's probe, then fails inside a
/// migration's message (the script shrank the session's temporary tables,
/// which information_schema needs): the migration is applied all the same,
/// its capture says why it is missing, and later migrations go without it.
#[test]
fn mariadb_a_capture_query_failing_mid_message_never_fails_the_migration() {
    let db = TestDb::new(Engine::My);
    db.sql("CREATE TABLE t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO t VALUES (1, 1)");
    let dir = Dir::new(&[
        ("1_first.up.sql", "ALTER TABLE t ADD COLUMN a INT;\n"),
        (
            "2_tuned.up.sql",
            "SET SESSION tmp_disk_table_size = 1024;\n\
             SET SESSION tmp_memory_table_size = 1024;\n\
             ALTER TABLE t MODIFY v BIGINT;\n\
             INSERT INTO t (id, v) VALUES (2, 2);\n",
        ),
        ("3_after.up.sql", "ALTER TABLE t ADD COLUMN b INT;\n"),
    ]);
    let run = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    run.code(0);
    let r = run.json();
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    // Every statement ran once, after the failed piece as before it.
    assert_eq!(db.sql("SELECT CONCAT(COUNT(*), ':', MAX(v)) FROM t"), "2:2");
    assert_eq!(
        db.sql("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'v'"),
        "bigint"
    );
    assert!(rewritten(step(&r, 1)).is_empty(), "{r:#}");
    let tuned = step(&r, 2);
    assert!(tuned["rewrites"].is_null(), "{tuned:#}");
    let why = tuned["not_measured"].as_str().unwrap_or_default();
    assert!(why.contains("is full"), "{tuned:#}");
    // Not asked again in the session: said, not failed.
    let after = step(&r, 3);
    assert!(after["rewrites"].is_null(), "{after:#}");
    assert!(
        after["not_measured"]
            .as_str()
            .unwrap_or_default()
            .contains("is full"),
        "{after:#}"
    );
}

/// The capture's queries are prepared once per session: a script that drops
/// the session's prepared statements gets its capture inline and the next
/// migration prepares them again; a capture that fails inside a migration's
/// message (here the script spoils the watermark the "after" query reads)
/// never fails the migration: it runs again without the capture.
#[test]
fn postgres_capture_survives_deallocate_and_never_fails_a_migration() {
    let db = pg_with_rows(1000);
    let dir = Dir::new(&[
        ("1_add.up.sql", "ALTER TABLE t ADD COLUMN a int;\n"),
        (
            "2_deallocate.up.sql",
            "DEALLOCATE ALL;\nALTER TABLE t ADD COLUMN b int;\n",
        ),
        (
            "3_retype.up.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n",
        ),
        (
            "4_spoil.up.sql",
            "SELECT set_config('migrator.watermark', 'not a number', true);\n\
             CREATE TABLE u (id int);\n",
        ),
        (
            "5_after.up.sql",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint;\n",
        ),
    ]);
    let run = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    run.code(0);
    let r = run.json();
    assert_eq!(
        db.history(),
        [
            "1:applied",
            "2:applied",
            "3:applied",
            "4:applied",
            "5:applied"
        ]
    );
    for v in [1, 2, 3] {
        let s = step(&r, v);
        assert!(
            locks(s).contains(&("t".to_string(), "AccessExclusiveLock".to_string())),
            "{s:#}"
        );
    }
    assert_eq!(rewritten(step(&r, 3)), ["t"]);
    // 4 ran once, without the capture; the session measures no more.
    assert_eq!(db.sql("SELECT count(*) FROM u"), "0");
    for v in [4, 5] {
        let s = step(&r, v);
        assert!(s["locks"].is_null(), "{s:#}");
        assert!(
            s["not_measured"]
                .as_str()
                .unwrap_or_default()
                .contains("the capture failed in this session"),
            "{s:#}"
        );
    }
}
