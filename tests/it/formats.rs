//! Every file format, and the SQL real migration files contain, run as psql and
//! the mariadb client would run them.

use crate::common::{Cmd, Dir, Engine, TestDb, engines};

fn applies(e: Engine, files: &[(&str, &str)], expect_tables: &[&str]) -> TestDb {
    let db = TestDb::new(e);
    let dir = Dir::new(files);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    for t in expect_tables {
        assert!(db.table_exists(t), "table {t} exists");
    }
    // And back down, where the format has down scripts.
    db
}

engines!(golang_migrate_and_sqlx_pairs, |e| {
    let db = applies(
        e,
        &[
            ("0001_a.up.sql", "CREATE TABLE a (id INT);"),
            ("0001_a.down.sql", "DROP TABLE a;"),
            ("2_b.sql", "CREATE TABLE b (id INT);"),
        ],
        &["a", "b"],
    );
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
});

engines!(refinery_files, |e| {
    applies(
        e,
        &[
            ("V1__a.sql", "CREATE TABLE a (id INT);"),
            ("V2__b.sql", "CREATE TABLE b (id INT);"),
        ],
        &["a", "b"],
    );
});

engines!(refinery_files_in_subfolders_are_applied, |e| {
    let db = applies(
        e,
        &[
            ("V1__a.sql", "CREATE TABLE a (id INT);"),
            ("V1-2/V2__add_cars.sql", "CREATE TABLE cars (id INT);"),
        ],
        &["a", "cars"],
    );
    assert_eq!(db.history(), ["1:applied", "2:applied"]);
});

engines!(a_nested_migration_of_a_top_level_format_is_refused, |e| {
    let db = TestDb::new(e);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("old/2_b.up.sql", "CREATE TABLE b (id INT);"),
    ]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(2)
        .has("old/2_b.up.sql")
        .has("subfolder");
    assert!(!db.table_exists("a"));
});

engines!(diesel_folders, |e| {
    let db = TestDb::new(e);
    let dir = Dir::new(&[
        ("2021-01-01-000000_a/up.sql", "CREATE TABLE a (id INT);"),
        ("2021-01-01-000000_a/down.sql", "DROP TABLE a;"),
        ("2021-02-01-000000_b/up.sql", "CREATE TABLE b (id INT);"),
        ("2021-02-01-000000_b/down.sql", "DROP TABLE b;"),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(
        db.history(),
        ["20210101000000:applied", "20210201000000:applied"]
    );
    Cmd::on(&db, &dir, &["down", "--yes"]).run().code(0);
    assert!(!db.table_exists("b") && db.table_exists("a"));
});

engines!(dbmate_sections, |e| {
    let db = TestDb::new(e);
    let dir = Dir::new(&[(
        "20200101000000_a.sql",
        "-- migrate:up\nCREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);\n\n-- migrate:down\nDROP TABLE a;\n",
    )]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.sql("SELECT count(*) FROM a"), "1");
    Cmd::on(&db, &dir, &["down", "--yes"]).run().code(0);
    assert!(!db.table_exists("a"));
    // A failure is reported at the file's own line, not the section's.
    dir.write(
        "20200102000000_b.sql",
        b"-- migrate:up\nCREATE TABLE b (id INT);\nSELECT nope FROM b;\n-- migrate:down\n",
    );
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("20200102000000_b.sql:3:");
});

engines!(goose_sections_with_statement_blocks, |e| {
    let body = match e {
        Engine::Pg => {
            "CREATE FUNCTION g() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;"
        }
        Engine::My => "CREATE PROCEDURE g() BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;",
    };
    let text = format!(
        "-- +goose Up\nCREATE TABLE a (id INT);\n-- +goose StatementBegin\n{body}\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE a;\n"
    );
    let db = TestDb::new(e);
    let dir = Dir::new(&[("00001_a.sql", &text)]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert!(db.table_exists("a"));
    Cmd::on(&db, &dir, &["down", "--yes"]).run().code(0);
    assert!(!db.table_exists("a"));
});

#[test]
fn postgres_bodies_do_blocks_and_concurrent_indexes() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[
        (
            "1_fn.up.sql",
            "CREATE TABLE t (id INT, note TEXT);\n\
             CREATE FUNCTION bump() RETURNS trigger AS $body$\nBEGIN\n  NEW.note := 'x;y';\n  RETURN NEW;\nEND;\n$body$ LANGUAGE plpgsql;\n\
             CREATE TRIGGER t_bump BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION bump();\n\
             DO $$ BEGIN INSERT INTO t (id) VALUES (1); END $$;\n\
             CREATE FUNCTION add1(i int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT i + 1; END;\n",
        ),
        (
            "2_idx.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
        ),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.sql("SELECT note FROM t"), "x;y");
    assert_eq!(db.sql("SELECT add1(1)"), "2");
    assert_eq!(
        db.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'"),
        "1"
    );
}

#[test]
fn postgres_concurrent_index_in_a_transaction_names_the_marker() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[
        ("1_t.up.sql", "CREATE TABLE t (id INT);\n"),
        (
            "2_idx.up.sql",
            "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
        ),
    ]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("[25001]")
        .has("2_idx.up.sql:1:")
        .has("put `-- no-transaction` on the first line of the up file")
        .has("rolled back");
    assert_eq!(db.history(), ["1:applied"]);
    // A marker where it is not recognized is an error naming the line.
    dir.write(
        "2_idx.up.sql",
        b"CREATE INDEX CONCURRENTLY t_id ON t (id);\n-- no-transaction\n",
    );
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(2)
        .has("2_idx.up.sql:2");
    dir.write(
        "2_idx.up.sql",
        b"-- no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    Cmd::on(&db, &dir, &["up"]).run().code(0);
}

#[test]
fn postgres_no_transaction_failure_half_way_is_dirty() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[(
        "1_nt.up.sql",
        "-- no-transaction\nCREATE TABLE nt (id INT);\nCREATE INDEX CONCURRENTLY nt_x ON nt (missing);\n",
    )]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(1)
        .has("1_nt.up.sql:3:")
        .has("dirty");
    assert_eq!(db.history(), ["1:failed"]);
    Cmd::on(&db, &dir, &["up"])
        .run()
        .code(5)
        .has("migrator force 1 --yes")
        .has("migrator force 0 --yes");
}

#[test]
fn mysql_routines_with_and_without_delimiter() {
    let db = TestDb::new(Engine::My);
    let dir = Dir::new(&[
        (
            "1_proc.up.sql",
            "CREATE TABLE t (id INT, note VARCHAR(20));\n\
             CREATE PROCEDURE fill(n INT)\nBEGIN\n  DECLARE i INT DEFAULT 0;\n  WHILE i < n DO\n    IF i % 2 = 0 THEN INSERT INTO t VALUES (i, 'even;'); ELSE INSERT INTO t VALUES (i, 'odd'); END IF;\n    SET i = i + 1;\n  END WHILE;\nEND;\n\
             CREATE TRIGGER t_note BEFORE INSERT ON t FOR EACH ROW SET NEW.note = CONCAT(NEW.note, '!');\n\
             CALL fill(4);\n",
        ),
        (
            "2_delim.up.sql",
            "DELIMITER //\nCREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC\nBEGIN\n  RETURN x * 2;\nEND//\nDELIMITER ;\nINSERT INTO t VALUES (twice(21), 'f');\n",
        ),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0);
    assert_eq!(db.sql("SELECT count(*) FROM t"), "5");
    assert_eq!(db.sql("SELECT note FROM t WHERE id = 0"), "even;!");
    assert_eq!(db.sql("SELECT id FROM t WHERE note = 'f!'"), "42");
}

#[test]
fn unmatched_files_are_listed_in_a_warning() {
    let db = TestDb::new(Engine::Pg);
    let dir = Dir::new(&[
        ("1_a.up.sql", "CREATE TABLE a (id INT);"),
        ("README.md", "notes"),
    ]);
    Cmd::on(&db, &dir, &["up"]).run().code(0).has("README.md");
}
