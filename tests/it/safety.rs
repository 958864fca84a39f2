//! Safety: taking over other tools' history, baseline.

use crate::common::{Cmd, Dir, Engine, TestDb, engines};

fn files() -> Dir {
    Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("2_b.up.sql", "CREATE TABLE b (id INT);"),
        ("3_c.up.sql", "CREATE TABLE c (id INT);"),
    ])
}

/// The schema of versions 1 and 2 exists, as another tool left it.
fn existing_schema(db: &TestDb) {
    db.sql("CREATE TABLE a (id INT)");
    db.sql("CREATE TABLE b (id INT)");
}

fn adopts(db: &TestDb, dir: &Dir, tool_table: &str, tool: &str) {
    let before = db.sql(&format!("SELECT count(*) FROM {tool_table}"));
    let r = Cmd::on(db, dir, &["up", "--output", "json"]).run();
    let j = r.code(0).json();
    assert_eq!(j["adopted"]["tool"], tool);
    assert_eq!(j["adopted"]["table"], tool_table);
    assert_eq!(j["version_before"], 2);
    assert_eq!(
        j["applied"].as_array().unwrap().len(),
        1,
        "only the newer migration ran"
    );
    assert_eq!(j["applied"][0]["version"], 3);
    assert!(
        r.stderr.contains("adopted another tool's history"),
        "{}",
        r.stderr
    );
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    assert_eq!(
        db.sql(&format!("SELECT count(*) FROM {tool_table}")),
        before,
        "their table untouched"
    );
}

engines!(adopts_golang_migrate, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    db.sql("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)");
    db.sql("INSERT INTO schema_migrations (version, dirty) VALUES (2, false)");
    adopts(&db, &files(), "schema_migrations", "golang-migrate");
});

engines!(refuses_dirty_golang_migrate, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    db.sql("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)");
    db.sql("INSERT INTO schema_migrations (version, dirty) VALUES (2, true)");
    Cmd::on(&db, &files(), &["up"])
        .run()
        .code(5)
        .has("schema_migrations")
        .has("version 2 is dirty");
    assert!(!db.table_exists("migrator_history"));
    assert!(!db.table_exists("c"));
});

engines!(a_refused_takeover_writes_nothing, |e| {
    // refinery recorded 1 and 3; file 2 was never applied: out of order, refused
    // before adoption writes anything.
    let db = TestDb::new(e);
    let int = if e == Engine::Pg { "INT4" } else { "INT" };
    db.sql(&format!("CREATE TABLE refinery_schema_history (version {int} PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255))"));
    db.sql("INSERT INTO refinery_schema_history VALUES (1, 'a', '2026-01-01T00:00:00Z', '1'), (3, 'c', '2026-01-02T00:00:00Z', '3')");
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a1 (id INT);"),
        ("3_c.up.sql", "CREATE TABLE c (id INT);"),
        ("2_b.up.sql", "CREATE TABLE b2 (id INT);"),
        ("4_d.up.sql", "CREATE TABLE d (id INT);"),
    ]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(5)
        .has("older than the current version 3");
    assert!(!db.table_exists("migrator_history"));
    assert!(!db.table_exists("d"));
});

engines!(adopts_sqlx_and_refuses_a_failed_row, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    let ddl = match e {
        Engine::Pg => {
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)"
        }
        Engine::My => {
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)"
        }
    };
    db.sql(ddl);
    let sum = match e {
        Engine::Pg => "'\\x00ff'::bytea",
        Engine::My => "X'00ff'",
    };
    db.sql(&format!("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (1, 'a', true, {sum}, 1200), (2, 'b', false, {sum}, 800)"));
    Cmd::on(&db, &files(), &["up"])
        .run()
        .code(5)
        .has("_sqlx_migrations")
        .has("version 2 is recorded as failed");
    db.sql("UPDATE _sqlx_migrations SET success = true WHERE version = 2");
    adopts(&db, &files(), "_sqlx_migrations", "sqlx");
});

engines!(adopts_refinery, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    let int = if e == Engine::Pg { "INT4" } else { "INT" };
    db.sql(&format!("CREATE TABLE refinery_schema_history (version {int} PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255))"));
    db.sql("INSERT INTO refinery_schema_history VALUES (1, 'a', '2026-01-01T00:00:00Z', '123'), (2, 'b', '2026-01-02T00:00:00Z', '456')");
    adopts(&db, &files(), "refinery_schema_history", "refinery");
});

engines!(adopts_diesel, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    db.sql("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    db.sql("INSERT INTO __diesel_schema_migrations (version) VALUES ('1'), ('2')");
    // Before adoption, status shows their versions, without a time of ours.
    let j = Cmd::on(&db, &files(), &["status", "--output", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(j["applied"][0]["applied_at"], serde_json::Value::Null);
    adopts(&db, &files(), "__diesel_schema_migrations", "diesel");
});

/// diesel folders mixing a long version (`-0000` suffix) with a later short one.
fn diesel_mixed() -> Dir {
    Dir::new(&[
        (
            "2025-11-19-091444-0000_x/up.sql",
            "CREATE TABLE x (id INT PRIMARY KEY);",
        ),
        ("2025-11-19-091444-0000_x/down.sql", "DROP TABLE x;"),
        (
            "2026-01-20-162913_y/up.sql",
            "CREATE TABLE y (id INT REFERENCES x (id));",
        ),
        ("2026-01-20-162913_y/down.sql", "DROP TABLE y;"),
    ])
}

engines!(diesel_versions_apply_in_diesels_order, |e| {
    // y references x: y first would fail.
    let db = TestDb::new(e);
    let r = Cmd::on(&db, &diesel_mixed(), &["up", "--output", "json"]).run();
    let j = r.code(0).json();
    let applied = crate::common::step_versions(&j["applied"]);
    assert_eq!(applied, [202511190914440000, 20260120162913]);
    assert_eq!(j["version_after"], 20260120162913u64);
    Cmd::on(&db, &diesel_mixed(), &["down", "--yes"])
        .run()
        .code(0);
    assert!(db.table_exists("x") && !db.table_exists("y"));
});

engines!(diesel_takeover_applies_a_newer_short_version, |e| {
    let db = TestDb::new(e);
    db.sql("CREATE TABLE x (id INT PRIMARY KEY)");
    db.sql("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)");
    db.sql("INSERT INTO __diesel_schema_migrations (version) VALUES ('202511190914440000')");
    Cmd::on(&db, &diesel_mixed(), &["up"])
        .run()
        .code(0)
        .has("20260120162913_y")
        .has("version 202511190914440000 -> 20260120162913");
    assert!(db.table_exists("y"));
    assert_eq!(
        db.history(),
        ["20260120162913:applied", "202511190914440000:applied"]
    );
});

engines!(no_adopt_leaves_other_tools_alone, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    db.sql("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)");
    db.sql("INSERT INTO schema_migrations (version, dirty) VALUES (2, false)");
    // Without adoption, version 1 runs again and fails on the existing table.
    Cmd::on(&db, &files(), &["up", "--no-adopt"])
        .run()
        .code(1)
        .has("1_a.up.sql");
});

engines!(baseline_marks_existing_schema_applied, |e| {
    let db = TestDb::new(e);
    existing_schema(&db);
    let dir = files();
    Cmd::on(&db, &dir, &["baseline", "2"])
        .run()
        .code(2)
        .has("baseline 2 --yes");
    assert!(!db.table_exists("migrator_history"));
    Cmd::on(&db, &dir, &["baseline", "2", "--yes"])
        .run()
        .code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    Cmd::on(&db, &dir, &["baseline", "3", "--yes", "--env", "prod"])
        .run()
        .code(2)
        .has("--confirm-env prod");
});

engines!(repair_records_an_edited_files_checksum, |e| {
    let db = TestDb::new(e);
    let dir = files();
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    dir.write("2_b.up.sql", b"-- the b table\nCREATE TABLE b (id INT);");
    Cmd::on(&db, &dir, &["validate"])
        .run()
        .code(5)
        .has("migrator repair --yes");
    let refused = Cmd::on(&db, &dir, &["validate", "--output", "json"]).run();
    assert_eq!(refused.code(5).json()["ok"], false);
    Cmd::on(&db, &dir, &["repair"])
        .run()
        .code(2)
        .has("the current checksum of 2_b");
    Cmd::on(&db, &dir, &["repair", "--yes", "--env", "prod"])
        .run()
        .code(2)
        .has("--confirm-env prod");
    Cmd::on(&db, &dir, &["repair", "--yes", "--output", "json"])
        .run()
        .code(0)
        .json()["history_changes"]["updated"]
        .as_array()
        .map(|v| assert_eq!(v, &[serde_json::json!(2)]))
        .unwrap();
    Cmd::on(&db, &dir, &["validate"]).run().code(0);
    let j = Cmd::on(&db, &dir, &["validate", "--output", "json"])
        .run()
        .code(0)
        .json();
    assert_eq!(
        (j["ok"].as_bool(), j["applied"].as_u64()),
        (Some(true), Some(3))
    );
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    Cmd::on(&db, &dir, &["repair", "--yes"])
        .run()
        .code(0)
        .has("nothing to do");
});
