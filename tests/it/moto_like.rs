//! The harness itself (`tests/it/moto_like.py`): its throttling errors have the
//! shape each protocol uses, so that the binary's SDK classifies them as
//! throttling and retries them (a run comes out as it would unthrottled),
//! and a test can read what was refused.

use serde_json::json;

use crate::common::{Cmd, Dir, Engine, SECRET, TestDb, unique};
use crate::moto::{Moto, py};

#[test]
fn throttled_rds_and_secrets_manager_calls_are_retried_by_the_sdk() {
    // Half of the binary's calls refused, in a fixed sequence (the binary
    // calls one at a time, so the same calls are refused on every run).
    let Some(moto) = Moto::start_like(json!({"throttle": 0.5, "seed": 15})) else {
        return;
    };
    let db = TestDb::new(Engine::Pg);
    let url = db.url();
    let user = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['@', ':']).next())
        .unwrap()
        .to_string();
    let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
    let cluster = unique("clu").replace('_', "-");
    moto.boto(&format!(
        "rds.create_db_cluster(DBClusterIdentifier={c}, Engine='aurora-postgresql', \
         MasterUsername={user}, MasterUserPassword='placeholder-pw', DatabaseName={name}, \
         Port={port})\n\
         rds.create_db_instance(DBInstanceIdentifier={c} + '-w', DBClusterIdentifier={c}, \
         Engine='aurora-postgresql', DBInstanceClass='db.r6g.large')",
        c = py(&cluster),
        user = py(&user),
        name = py(&db.name),
    ));
    let secret = unique("master");
    moto.secret(
        &secret,
        &format!(r#"{{"username":"{user}","password":"{SECRET}"}}"#),
    );
    let dir = Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);\n")]);
    for _ in 0..3 {
        moto.env(Cmd::new(&[
            "up",
            "--tls",
            "disable",
            "--rds-cluster",
            &cluster,
            "--db-secret",
            &secret,
            "--db-host",
            "127.0.0.1",
        ]))
        .env("MIGRATOR_PATH", dir.path())
        .run()
        .code(0);
    }
    assert_eq!(db.history(), ["1:applied"]);
    let stats = moto.like_stats();
    for refused in ["rds:DescribeDBClusters", "secretsmanager:GetSecretValue"] {
        assert!(
            stats["throttled"][refused].as_u64().unwrap_or(0) > 0,
            "{refused} was never refused: {stats}"
        );
    }
}
