//! The core runner on both engines: up, down, status, version, force, failures,
//! locks, concurrency and bad input.

use std::time::{Duration, Instant};

use crate::common::{Cmd, Dir, Engine, TestDb, engines, wait};

/// Three reversible migrations that work on both engines.
fn three() -> Dir {
    Dir::new(&[
        (
            "1_users.up.sql",
            "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100));\nINSERT INTO users VALUES (1, 'a@example.com');\n",
        ),
        ("1_users.down.sql", "DROP TABLE users;\n"),
        (
            "2_orders.up.sql",
            "CREATE TABLE orders (id INT PRIMARY KEY);\nCREATE INDEX orders_id ON orders (id);\n",
        ),
        ("2_orders.down.sql", "DROP TABLE orders;\n"),
        ("10_items.up.sql", "CREATE TABLE items (id INT);\n"),
        ("10_items.down.sql", "DROP TABLE items;\n"),
    ])
}

engines!(up_applies_everything_in_numeric_order_once, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(0)
        .has("version none -> 10");
    assert_eq!(db.history(), ["1:applied", "2:applied", "10:applied"]);
    assert_eq!(db.sql("SELECT count(*) FROM users"), "1");
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(0)
        .has("nothing to do: version 10");
    assert_eq!(
        db.sql("SELECT count(*) FROM users"),
        "1",
        "nothing ran twice"
    );
});

engines!(up_to_stops_at_the_version, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up", "--to", "2"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    Cmd::on(&db, &dir, &["up", "--to", "7"])
        .run()
        .code(2)
        .has("no migration file has version 7");
});

engines!(dry_run_changes_nothing, |e| {
    let db = TestDb::new(e);
    let dir = three();
    let r = Cmd::on(&db, &dir, &["up", "--dry-run", "--output", "json"]).run();
    r.code(0);
    assert_eq!(r.json()["not_run"].as_array().unwrap().len(), 3);
    assert!(
        !db.table_exists("migrator_history"),
        "dry run created nothing"
    );
});

engines!(down_steps_to_and_all, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    Cmd::on(&db, &dir, &["down", "--yes"])
        .run()
        .code(0)
        .has("version 10 -> 2");
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    assert!(!db.table_exists("items"));
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    Cmd::on(&db, &dir, &["down", "2", "--yes"]).run().code(0);
    assert_eq!(db.history(), ["1:applied"]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    Cmd::on(&db, &dir, &["down", "--to", "1", "--yes"])
        .run()
        .code(0);
    assert_eq!(db.history(), ["1:applied"]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    Cmd::on(&db, &dir, &["down", "--all", "--yes"])
        .run()
        .code(0)
        .has("version 10 -> none");
    assert!(db.history().is_empty());
    assert!(!db.table_exists("users"));
});

engines!(down_without_yes_prints_the_plan_and_changes_nothing, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    let r = Cmd::on(&db, &dir, &["down", "2"]).run();
    r.code(2)
        .has("10_items")
        .has("2_orders")
        .has("migrator down 2 --yes");
    assert!(!r.all().contains("1_users"), "only what it would revert");
    assert_eq!(db.history(), ["1:applied", "2:applied", "10:applied"]);
});

engines!(status_json_and_version, |e| {
    let db = TestDb::new(e);
    let dir = three();
    let r = Cmd::on(&db, &dir, &["status", "--output", "json"]).run();
    let j = r.code(0).json();
    assert!(j["current_version"].is_null());
    assert_eq!(j["pending"].as_array().unwrap().len(), 3);
    assert!(!db.table_exists("migrator_history"), "status is read-only");
    Cmd::on(&db, &dir, &["version"]).run().code(0);
    assert_eq!(Cmd::on(&db, &dir, &["version"]).run().stdout.trim(), "none");
    Cmd::on(&db, &dir, &["up", "--to", "2"]).run().code(0);
    let j = Cmd::on(&db, &dir, &["status", "--output", "json"])
        .run()
        .json();
    assert_eq!(j["current_version"], 2);
    assert_eq!(j["dirty"], false);
    let applied = j["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 2);
    for key in ["version", "name", "checksum", "applied_at", "execution_ms"] {
        assert!(!applied[0][key].is_null(), "applied[0].{key}");
    }
    assert_eq!(applied[1]["name"], "orders");
    assert_eq!(applied[0]["checksum"].as_str().unwrap().len(), 64);
    assert_eq!(j["pending"][0]["version"], 10);
    assert_eq!(j["pending"][0]["name"], "items");
    assert_eq!(Cmd::on(&db, &dir, &["version"]).run().stdout.trim(), "2");
});

engines!(up_output_json_is_the_run_report, |e| {
    let db = TestDb::new(e);
    let dir = three();
    let r = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
    let j = r.code(0).json();
    assert_eq!(j["outcome"], "success");
    assert!(j["version_before"].is_null());
    assert_eq!(j["version_after"], 10);
    let applied = j["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 3);
    assert!(applied[0]["execution_ms"].is_u64());
    let j = Cmd::on(&db, &dir, &["up", "--output", "json"]).run().json();
    assert_eq!(j["outcome"], "nothing_to_do");
});

/// A migration whose third statement fails (line 4, column 8 on PostgreSQL: the table name).
fn failing(e: Engine) -> Dir {
    let _ = e;
    Dir::new(&[
        ("1_ok.up.sql", "CREATE TABLE ok (id INT);\n"),
        (
            "2_bad.up.sql",
            "CREATE TABLE half (id INT);\nINSERT INTO ok VALUES (1);\nSELECT *\n  FROM no_such_table;\n",
        ),
        ("3_after.up.sql", "CREATE TABLE after3 (id INT);\n"),
    ])
}

#[test]
fn failing_migration_on_postgres_leaves_no_trace() {
    let db = TestDb::new(Engine::Pg);
    let dir = failing(Engine::Pg);
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(1)
        .has("2_bad.up.sql:4:8")
        .has("42P01")
        .has("no_such_table")
        .has("rolled back");
    assert_eq!(db.history(), ["1:applied"]);
    assert!(
        !db.table_exists("half"),
        "the failed migration's DDL rolled back"
    );
    assert_eq!(db.sql("SELECT count(*) FROM ok"), "0");
    assert!(!db.table_exists("after3"), "nothing after the failure ran");
    // Fixed, it applies.
    dir.write("2_bad.up.sql", b"CREATE TABLE half (id INT);\n");
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
}

#[test]
fn failing_migration_on_mysql_is_dirty_then_refused_until_forced() {
    let db = TestDb::new(Engine::My);
    let dir = failing(Engine::My);
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(1)
        .has("2_bad.up.sql:3:1")
        .has("1146")
        .has("no_such_table")
        .has("migrator force 2 --yes")
        .has("migrator force 1 --yes");
    assert_eq!(db.history(), ["1:applied", "2:failed"]);
    assert!(db.table_exists("half"), "MySQL DDL committed");
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(5)
        .has("dirty")
        .has("2_bad")
        .has("no_such_table")
        .has("migrator force");
    assert!(!db.table_exists("after3"));
    Cmd::on(&db, &dir, &["force", "1"])
        .run()
        .code(2)
        .has("--yes");
    assert_eq!(
        db.history(),
        ["1:applied", "2:failed"],
        "force without --yes changed nothing"
    );
    db.sql("DROP TABLE half");
    Cmd::on(&db, &dir, &["force", "1", "--yes"]).run().code(0);
    assert_eq!(db.history(), ["1:applied"]);
    dir.write("2_bad.up.sql", b"CREATE TABLE half (id INT);\n");
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
}

#[test]
fn mysql_dml_only_failure_rolls_back_cleanly() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[
        (
            "1_t.up.sql",
            "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB;\n",
        ),
        (
            "2_rows.up.sql",
            "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n",
        ),
    ]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("2_rows.up.sql:2:1")
        .has("1062")
        .has("rolled back");
    assert_eq!(
        db.history(),
        ["1:applied"],
        "no dirty row: nothing was committed"
    );
    assert_eq!(db.sql("SELECT count(*) FROM t"), "0");
}

engines!(force_sets_the_version_without_running_sql, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["force", "2", "--yes"]).run().code(0);
    assert_eq!(db.history(), ["2:applied"]);
    assert!(!db.table_exists("orders"), "force runs no SQL");
    Cmd::on(&db, &dir, &["force", "99", "--yes"])
        .run()
        .code(2)
        .has("no migration file has version 99");
    // It rewrote the history: not "nothing to do".
    Cmd::on(&db, &dir, &["force", "0", "--yes"])
        .run()
        .code(0)
        .has("force: version 2 -> none; history rewritten");
    assert!(db.history().is_empty());
});

engines!(two_runners_at_once_apply_each_migration_once, |e| {
    let db = TestDb::new(e);
    let sleep = db.sleep_sql(1.0);
    let dir = Dir::new(&[
        ("1_counter.up.sql", "CREATE TABLE counter (n INT);\n"),
        (
            "2_slow.up.sql",
            &format!("{sleep};\nINSERT INTO counter VALUES (1);\n"),
        ),
        ("3_more.up.sql", "INSERT INTO counter VALUES (3);\n"),
    ]);
    let a = Cmd::on(&db, &dir, &["up"]).spawn();
    let b = Cmd::on(&db, &dir, &["up"]).spawn();
    let (a, b) = (wait(a), wait(b));
    a.code(0);
    b.code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
    assert_eq!(
        db.sql("SELECT count(*) FROM counter"),
        "2",
        "each insert ran once"
    );
    assert!(
        a.all().contains("nothing to do") || b.all().contains("nothing to do"),
        "the runner that waited found nothing to do"
    );
});

engines!(lock_timeout_exits_4, |e| {
    let db = TestDb::new(e);
    let sleep = db.sleep_sql(4.0);
    let dir = Dir::new(&[("1_slow.up.sql", &format!("{sleep};\n"))]);
    let holder = Cmd::on(&db, &dir, &["up"]).spawn();
    std::thread::sleep(Duration::from_millis(800));
    let started = Instant::now();
    let r = Cmd::on(&db, &dir, &["up", "--lock-timeout", "1"]).run();
    r.code(4).has("lock");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up after about 1 s"
    );
    wait(holder).code(0);
});

engines!(unreachable_server_exits_3, |e| {
    let url = match e {
        Engine::Pg => "postgres://u:Sup3r-S3cret-pw-4711@127.0.0.1:1/db",
        Engine::My => "mysql://u:Sup3r-S3cret-pw-4711@127.0.0.1:1/db",
    };
    let dir = three();
    let r = Cmd::new(&["up"])
        .env("DATABASE_URL", url)
        .env("MIGRATOR_PATH", dir.path())
        .run();
    r.code(3).has("cannot connect").has("127.0.0.1:1");
});

/// Bad input: exit 2, naming the files, and the database untouched.
fn assert_bad_input(e: Engine, files: &[(&str, &[u8])], needles: &[&str]) {
    let db = TestDb::new(e);
    let dir = Dir::new(&[]);
    for (name, bytes) in files {
        dir.write(name, bytes);
    }
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(2);
    for n in needles {
        r.has(n);
    }
    assert!(!db.table_exists("migrator_history"), "database untouched");
    assert!(!db.table_exists("a"), "no migration ran");
}

engines!(duplicate_versions_are_refused, |e| assert_bad_input(
    e,
    &[
        ("1_a.up.sql", b"CREATE TABLE a (id INT);"),
        ("01_b.up.sql", b"CREATE TABLE b (id INT);")
    ],
    &["1_a.up.sql", "01_b.up.sql"]
));

engines!(down_without_up_is_refused, |e| assert_bad_input(
    e,
    &[
        ("1_a.up.sql", b"CREATE TABLE a (id INT);"),
        ("2_b.down.sql", b"DROP TABLE b;")
    ],
    &["2_b.down.sql"]
));

engines!(non_utf8_file_is_refused, |e| assert_bad_input(
    e,
    &[
        ("1_a.up.sql", b"CREATE TABLE a (id INT);"),
        ("2_b.up.sql", b"SELECT '\xff\xfe';")
    ],
    &["2_b.up.sql", "UTF-8"]
));

engines!(mixed_formats_are_refused, |e| assert_bad_input(
    e,
    &[
        ("1_a.up.sql", b"CREATE TABLE a (id INT);"),
        ("V2__b.sql", b"CREATE TABLE b (id INT);")
    ],
    &["1_a.up.sql", "V2__b.sql"]
));

engines!(unterminated_quote_is_refused_with_its_line, |e| {
    assert_bad_input(
        e,
        &[(
            "1_a.up.sql",
            b"CREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);\nSELECT 'oops;\n",
        )],
        &["1_a.up.sql:3:8"],
    )
});

engines!(missing_database_url_is_a_usage_error, |e| {
    let _ = e;
    let dir = three();
    Cmd::new(&["up"])
        .env("MIGRATOR_PATH", dir.path())
        .run()
        .code(2)
        .has("DATABASE_URL");
});

engines!(edited_applied_file_is_refused_with_both_checksums, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up", "--to", "2"]).run().code(0);
    // CRLF and a BOM are not a change.
    let crlf = "\u{feff}CREATE TABLE orders (id INT PRIMARY KEY);\r\nCREATE INDEX orders_id ON orders (id);\r\n";
    dir.write("2_orders.up.sql", crlf.as_bytes());
    Cmd::on(&db, &dir, &["validate"]).run().code(0).has("agree");
    dir.write(
        "2_orders.up.sql",
        b"CREATE TABLE orders (id BIGINT PRIMARY KEY);\n",
    );
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(5)
        .has("2_orders.up.sql")
        .has("changed after it was applied");
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
    Cmd::on(&db, &dir, &["validate"]).run().code(5);
    let j = Cmd::on(&db, &dir, &["status", "--output", "json"])
        .run()
        .json();
    assert_eq!(j["applied"][1]["file"], "changed");
});

engines!(
    missing_file_and_out_of_order_are_refused_unless_allowed,
    |e| {
        let db = TestDb::new(e);
        let dir = three();
        Cmd::on(&db, &dir, &["up"]).run().code(0);
        dir.remove("10_items.up.sql");
        dir.remove("10_items.down.sql");
        Cmd::on(&db, &dir, &["up"])
            .run()
            .code(5)
            .has("10_items")
            .has("--ignore-missing");
        Cmd::on(&db, &dir, &["up", "--ignore-missing"])
            .run()
            .code(0);
        dir.write("10_items.up.sql", b"CREATE TABLE items (id INT);\n");
        dir.write("5_late.up.sql", b"CREATE TABLE late (id INT);\n");
        Cmd::on(&db, &dir, &["up"])
            .run()
            .code(5)
            .has("5_late.up.sql")
            .has("--allow-out-of-order");
        assert!(!db.table_exists("late"));
        Cmd::on(&db, &dir, &["up", "--allow-out-of-order"])
            .run()
            .code(0);
        assert!(db.table_exists("late"));
    }
);

#[test]
fn single_transaction_is_all_or_nothing_on_postgres() {
    let db = TestDb::new(Engine::Pg);
    let dir = failing(Engine::Pg);
    Cmd::on(&db, &dir, &["up", "--single-transaction"])
        .run()
        .code(1)
        .has("2_bad.up.sql:4:8");
    assert!(db.history().is_empty(), "nothing applied");
    assert!(!db.table_exists("ok"));
    dir.write("2_bad.up.sql", b"CREATE TABLE half (id INT);\n");
    Cmd::on(&db, &dir, &["up", "--single-transaction"])
        .run()
        .code(0);
    assert_eq!(db.history(), ["1:applied", "2:applied", "3:applied"]);
}

#[test]
fn single_transaction_is_refused_on_mysql() {
    let db = TestDb::new(Engine::My);
    let dir = three();
    Cmd::on(&db, &dir, &["up", "--single-transaction"])
        .run()
        .code(2)
        .has("PostgreSQL only");
    assert!(!db.table_exists("migrator_history"));
}

#[test]
fn new_scaffolds_a_pair_in_the_folder_format() {
    let dir = Dir::new(&[("1_a.up.sql", "SELECT 1;")]);
    let r = Cmd::new(&["new", "add_users", "--path", dir.path().to_str().unwrap()]).run();
    r.code(0)
        .has("_add_users.up.sql")
        .has("_add_users.down.sql");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    Cmd::new(&["new", "Bad Name", "--path", dir.path().to_str().unwrap()])
        .run()
        .code(2);
}

#[test]
fn new_never_reuses_a_version() {
    let dir = Dir::new(&[]);
    let path = dir.path().to_str().unwrap();
    // Two in one second (and a third through the `create` alias): three versions.
    for name in ["one", "two"] {
        Cmd::new(&["new", name, "--path", path]).run().code(0);
    }
    Cmd::new(&["create", "three", "--path", path]).run().code(0);
    let mut versions: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".up.sql"))
        .map(|n| n.split('_').next().unwrap().to_string())
        .collect();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 3, "{versions:?}");
    Cmd::new(&[
        "status",
        "--path",
        path,
        "--database-url",
        "postgres://u@127.0.0.1:1/x",
    ])
    .run()
    .code(3);
    let numbered = Dir::new(&[
        ("0001_a.up.sql", "SELECT 1;"),
        ("0002_b.up.sql", "SELECT 2;"),
    ]);
    Cmd::new(&[
        "new",
        "c",
        "--sequential",
        "--path",
        numbered.path().to_str().unwrap(),
    ])
    .run()
    .code(0)
    .has("0003_c.up.sql");
}

#[test]
fn completions_bash_prints_a_completion_script() {
    let r = Cmd::new(&["completions", "bash"]).run();
    r.code(0).has("_migrator()").has("complete -F _migrator");
    for word in ["up", "down", "force", "--connect-timeout"] {
        assert!(r.stdout.contains(word), "{word} missing");
    }
    let checked = std::process::Command::new("bash")
        .args(["-n", "-c", &r.stdout])
        .status()
        .unwrap();
    assert!(checked.success(), "bash -n refuses the script");
    Cmd::new(&["completions", "zsh"])
        .run()
        .code(0)
        .has("#compdef migrator");
}

engines!(protected_environments_need_the_name_typed_again, |e| {
    let db = TestDb::new(e);
    let dir = three();
    Cmd::on(&db, &dir, &["up", "--env", "prod"]).run().code(0);
    Cmd::on(&db, &dir, &["down", "--yes", "--env", "prod"])
        .run()
        .code(2)
        .has("--confirm-env prod");
    Cmd::on(
        &db,
        &dir,
        &["down", "--yes", "--env", "prod", "--confirm-env", "dev"],
    )
    .run()
    .code(2)
    .has("does not match");
    Cmd::on(&db, &dir, &["force", "1", "--yes"])
        .env("MIGRATOR_ENV", "production")
        .run()
        .code(2);
    assert_eq!(
        db.history(),
        ["1:applied", "2:applied", "10:applied"],
        "nothing changed"
    );
    Cmd::on(&db, &dir, &["down", "--yes", "--env", "staging-1"])
        .run()
        .code(0);
    Cmd::on(
        &db,
        &dir,
        &["down", "--yes", "--env", "prod", "--confirm-env", "prod"],
    )
    .run()
    .code(0);
    Cmd::on(&db, &dir, &["down", "--yes", "--env", "nightly"])
        .env("MIGRATOR_PROTECTED_ENVS", "nightly")
        .run()
        .code(2);
    assert_eq!(db.history(), ["1:applied"]);
});

#[test]
fn mysql_a_first_statement_that_fails_leaves_no_dirty_state() {
    // The failing DDL's implicit commit persisted the `running` row, yet nothing
    // of the migration took effect: the failure is clean and the next run retries.
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
        (
            "2_b.up.sql",
            "ALTER TABLE non_existent ADD COLUMN x INT;\nCREATE TABLE b (id INT);\n",
        ),
    ]);
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(1).has("2_b.up.sql:1:");
    assert!(!r.all().contains("dirty"), "{}", r.all());
    assert_eq!(db.history(), ["1:applied"]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("non_existent");
    // A failure after a statement took effect is still dirty.
    dir.write(
        "2_b.up.sql",
        b"CREATE TABLE b (id INT);\nALTER TABLE non_existent ADD COLUMN x INT;\n",
    );
    Cmd::on(&db, &dir, &["up"]).run().code(1).has("dirty");
    assert_eq!(db.history(), ["1:applied", "2:failed"]);
}

#[test]
fn mysql_a_statement_over_max_allowed_packet_is_named_and_not_dirty() {
    let db = TestDb::new(Engine::My);
    let max: usize = db.sql("SELECT @@max_allowed_packet").parse().unwrap();
    let big = format!(
        "INSERT INTO a VALUES ('{}');\n",
        "x".repeat(max + 1024 * 1024)
    );
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (v LONGTEXT);\n"),
        ("2_big.up.sql", &big),
    ]);
    let r = Cmd::on(&db, &dir, &["up"]).run();
    r.code(1).has("max_allowed_packet");
    assert!(!r.all().contains("marked dirty"), "{}", r.all());
    assert_eq!(db.history(), ["1:applied"]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("max_allowed_packet");
}

#[test]
fn mysql_init_sql_lets_a_table_reference_one_created_after_it() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[(
        "1_fk.up.sql",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, \
         FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB;\n\
         CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB;\n",
    )]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("1_fk.up.sql:1:");
    assert!(!db.table_exists("child"));
    let secret_sql = format!("SET @note = '{}'", crate::common::SECRET);
    let r = Cmd::on(
        &db,
        &dir,
        &[
            "up",
            "--output",
            "json",
            "--init-sql",
            "SET FOREIGN_KEY_CHECKS=0",
            "--init-sql",
            &secret_sql,
        ],
    )
    .run();
    let j = r.code(0).json();
    assert!(db.table_exists("child") && db.table_exists("parent"));
    assert_eq!(
        j["init_sql"],
        serde_json::json!(["SET FOREIGN_KEY_CHECKS=0", "SET @note = '***'"])
    );
}

#[test]
fn postgres_init_sql_runs_on_every_session_before_the_lock() {
    let db = TestDb::new(Engine::Pg);
    db.sql("CREATE SCHEMA app");
    let dir = Dir::new(&[("1_t.up.sql", "CREATE TABLE t (id INT);\n")]);
    Cmd::on(&db, &dir, &["up"])
        .env("MIGRATOR_INIT_SQL", "SET search_path TO app")
        .run()
        .code(0);
    assert_eq!(
        db.sql("SELECT table_schema FROM information_schema.tables WHERE table_name = 't'"),
        "app"
    );
    // status opens a session too: it finds the history in `app`.
    Cmd::on(&db, &dir, &["status"])
        .env("MIGRATOR_INIT_SQL", "SET search_path TO app")
        .run()
        .code(0)
        .has("1 applied, 0 pending");
    Cmd::on(&db, &dir, &["up", "--init-sql", "SET nonsense_setting = 1"])
        .run()
        .code(1)
        .has("--init-sql `SET nonsense_setting = 1`");
}

engines!(
    failure_messages_keep_lines_and_leave_the_failed_one_out_of_not_run,
    |e| {
        let db = TestDb::new(e);
        let dir = Dir::new(&[
            ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
            (
                "2_b.up.sql",
                "CREATE TABLE b (id INT);\nSELECT -- the column\n  nope FROM b;\n",
            ),
            ("3_c.up.sql", "CREATE TABLE c (id INT);\n"),
        ]);
        let r = Cmd::on(&db, &dir, &["up", "--output", "json"]).run();
        let j = r.code(1).json();
        let not_run = crate::common::step_versions(&j["not_run"]);
        assert_eq!(not_run, [3], "the failed one ran: it is in `failure`");
        assert_eq!(j["failure"]["version"], 2);
        assert!(
            r.stderr
                .contains("statement: SELECT -- the column ⏎ nope FROM b"),
            "{}",
            r.stderr
        );
        let status = Cmd::on(&db, &dir, &["status"]).run();
        status.code(0);
        if e == Engine::My {
            // CREATE TABLE b committed: the row is dirty, and not counted as applied.
            assert!(
                status
                    .stdout
                    .starts_with("version 1 (dirty): 1 applied, 1 dirty, 1 pending"),
                "{}",
                status.stdout
            );
            assert!(
                status
                    .stdout
                    .lines()
                    .any(|l| l.trim_start().starts_with("failed")),
                "{}",
                status.stdout
            );
            assert!(!status.stdout.contains("[FAILED]"), "{}", status.stdout);
        }
    }
);
