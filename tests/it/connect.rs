//! Connecting to a fresh clone: Secrets Manager, RDS cluster lookup, TLS.

use std::path::Path;
use std::process::Command;

use crate::common::{Cmd, Dir, Engine, SECRET, TestDb, ThrowawayPg, engines, unique};
use crate::moto::{Moto, py};

fn one() -> Dir {
    Dir::new(&[("1_a.up.sql", "CREATE TABLE a (id INT);\n")])
}

/// host, port, user of the test database's URL.
fn parts(db: &TestDb) -> (String, u16, String) {
    let url = db.url();
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, hostport) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap().to_string();
    let hostport = hostport.split('/').next().unwrap();
    let (host, port) = hostport.rsplit_once(':').unwrap();
    (host.to_string(), port.parse().unwrap(), user)
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Pg => "postgres",
        Engine::My => "mysql",
    }
}

/// `migrator up` with only AWS-side configuration (no DATABASE_URL).
fn up(moto: &Moto, dir: &Dir, args: &[&str]) -> crate::common::Run {
    let mut full = vec!["up", "--tls", "disable"];
    full.extend_from_slice(args);
    moto.env(Cmd::new(&full))
        .env("MIGRATOR_PATH", dir.path())
        .run()
}

engines!(a_url_secret_leads_to_a_successful_up, |e| {
    let Some(moto) = Moto::shared() else { return };
    let db = TestDb::new(e);
    let name = unique("url");
    moto.secret(&name, &db.url());
    up(moto, &one(), &["--db-secret", &name]).code(0);
    assert_eq!(db.history(), ["1:applied"]);
});

engines!(an_rds_json_secret_with_port_as_number_or_string, |e| {
    let Some(moto) = Moto::shared() else { return };
    for quoted in [false, true] {
        let db = TestDb::new(e);
        let (host, port, user) = parts(&db);
        let port = if quoted {
            format!("\"{port}\"")
        } else {
            port.to_string()
        };
        let json = format!(
            r#"{{"engine":"{}","host":"{host}","username":"{user}","password":"{SECRET}","dbname":"{}","port":{port}}}"#,
            engine_name(e),
            db.name
        );
        let name = unique("json");
        moto.secret(&name, &json);
        up(moto, &one(), &["--db-secret", &name]).code(0);
        assert_eq!(db.history(), ["1:applied"]);
    }
});

engines!(
    a_secret_missing_its_password_is_named_and_changes_nothing,
    |e| {
        let Some(moto) = Moto::shared() else { return };
        let db = TestDb::new(e);
        let (host, port, user) = parts(&db);
        let json = format!(
            r#"{{"engine":"{}","host":"{host}","username":"{user}","dbname":"{}","port":{port}}}"#,
            engine_name(e),
            db.name
        );
        let name = unique("nopw");
        moto.secret(&name, &json);
        let r = up(moto, &one(), &["--db-secret", &name]);
        r.code(2).has("missing password").has(&name);
        assert!(!db.table_exists("migrator_history"));
    }
);

#[test]
fn an_unknown_secret_is_a_clear_error() {
    let Some(moto) = Moto::shared() else { return };
    let r = up(moto, &one(), &["--db-secret", "no/such/secret"]);
    r.code(2).has("no/such/secret").has("ResourceNotFound");
    // One line: the operation, the service's code and message; no raw answer.
    let error = r.stderr.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        error.contains(
            "reading secret `no/such/secret` from Secrets Manager: ResourceNotFoundException: "
        ),
        "{error}"
    );
    assert!(
        !r.stderr.contains("headers") && !r.stderr.contains("raw:"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_region_or_missing_credentials_is_configuration() {
    let dir = one();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Cmd::new(&["up", "--db-secret", "app/master"])
            .env("MIGRATOR_PATH", dir.path())
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    };
    run(&[]).code(2).has("no AWS region: set AWS_REGION");
    run(&[("AWS_REGION", "eu-west-1")])
        .code(2)
        .has("no AWS credentials found: set AWS_ACCESS_KEY_ID");
}

#[test]
fn a_malformed_secret_is_refused_without_showing_it() {
    let Some(moto) = Moto::shared() else { return };
    let name = unique("bad");
    moto.secret(
        &name,
        &format!("{{\"password\": \"{SECRET}\", \"port\": \"x\"}}"),
    );
    up(moto, &one(), &["--db-secret", &name])
        .code(2)
        .has("port");
}

engines!(
    a_cluster_lookup_waits_for_available_and_flags_override_its_host,
    |e| {
        let Some(moto) = Moto::shared() else { return };
        let db = TestDb::new(e);
        let (_, port, user) = parts(&db);
        let cluster = unique("clu").replace('_', "-");
        let engine = match e {
            Engine::Pg => "aurora-postgresql",
            Engine::My => "aurora-mysql",
        };
        moto.boto(&format!(
        "rds.create_db_cluster(DBClusterIdentifier={c}, Engine={engine}, MasterUsername={user}, \
         MasterUserPassword='placeholder-pw', DatabaseName={name}, Port={port})\n\
         rds.create_db_instance(DBInstanceIdentifier={c} + '-w', DBClusterIdentifier={c}, \
         Engine={engine}, DBInstanceClass='db.r6g.large')",
        c = py(&cluster),
        engine = py(engine),
        user = py(&user),
        name = py(&db.name),
    ));
        // An RDS-managed master secret holds only username and password.
        let secret = unique("master");
        moto.secret(
            &secret,
            &format!(r#"{{"username":"{user}","password":"{SECRET}"}}"#),
        );
        // The cluster is stopped when the runner starts, and started while it waits.
        let dir = one();
        moto.boto(&format!(
            "rds.stop_db_cluster(DBClusterIdentifier={})",
            py(&cluster)
        ));
        let child = moto
            .env(Cmd::new(&[
                "up",
                "--tls",
                "disable",
                "--rds-cluster",
                &cluster,
                "--db-secret",
                &secret,
                "--db-host",
                "127.0.0.1",
                "--wait",
                "30",
            ]))
            .env("MIGRATOR_PATH", dir.path())
            .spawn();
        std::thread::sleep(std::time::Duration::from_secs(2));
        assert!(
            db.history().is_empty(),
            "nothing ran while the cluster was stopped"
        );
        moto.boto(&format!(
            "rds.start_db_cluster(DBClusterIdentifier={})",
            py(&cluster)
        ));
        let r = crate::common::wait(child);
        r.code(0)
            .has("RDS cluster status")
            .has("status=stopped")
            .has("status=available");
        assert_eq!(db.history(), ["1:applied"]);
        // Without the host override, the cluster's own endpoint is used (and cannot be
        // reached here): proof that the lookup supplied it.
        let r = up(
            moto,
            &one(),
            &["--rds-cluster", &cluster, "--db-secret", &secret],
        );
        r.code(3).has(".rds.amazonaws.com");
    }
);

#[test]
fn iam_auth_refuses_plain_text() {
    let Some(moto) = Moto::shared() else { return };
    let r = moto
        .env(Cmd::new(&[
            "up",
            "--iam-auth",
            "--tls",
            "disable",
            "--database-url",
            "postgres://app@127.0.0.1/x",
        ]))
        .env("MIGRATOR_PATH", one().path())
        .run();
    r.code(2).has("--iam-auth").has("TLS");
}

/// A CA and a server certificate for `localhost` signed by it, made with openssl.
fn make_certs(dir: &Path, ca: &str, host: &str) {
    let sh = |script: &str| {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    sh(&format!(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN={ca}' -keyout {ca}.key -out {ca}.pem \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
    ));
    if !host.is_empty() {
        sh(&format!(
            "openssl req -newkey rsa:2048 -nodes -subj '/CN={host}' -keyout server.key -out server.csr && \
             printf 'subjectAltName=DNS:{host}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext && \
             openssl x509 -req -in server.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial -days 2 -out server.crt -extfile ext"
        ));
    }
}

#[test]
fn tls_verify_full_accepts_the_right_name_and_refuses_a_wrong_name_or_another_ca() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path(), "test-ca", "localhost");
    make_certs(certs.path(), "other-ca", "");
    let conf = |f: &str| certs.path().join(f).display().to_string();
    let Some(pg) = ThrowawayPg::init(&[
        "ssl = on".to_string(),
        format!("ssl_cert_file = '{}'", conf("server.crt")),
        format!("ssl_key_file = '{}'", conf("server.key")),
    ]) else {
        return;
    };
    // The key must belong to the server's user and be private.
    for cmd in [
        format!("chown postgres {}", conf("server.key")),
        format!("chmod 600 {}", conf("server.key")),
        format!("chmod 755 {}", certs.path().display()),
        format!("chmod 644 {}", conf("server.crt")),
    ] {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .status()
                .unwrap()
                .success()
        );
    }
    pg.start();
    let dir = one();
    let run = |host: &str, args: &[&str]| {
        let mut full = vec!["status"];
        full.extend_from_slice(args);
        Cmd::new(&full)
            .env("DATABASE_URL", pg.url(host))
            .env("MIGRATOR_PATH", dir.path())
            .run()
    };
    let ca = conf("test-ca.pem");
    let other = conf("other-ca.pem");
    run("localhost", &["--tls", "verify-full", "--ca-file", &ca]).code(0);
    run("127.0.0.1", &["--tls", "verify-full", "--ca-file", &ca])
        .code(3)
        .has("certificate");
    run("127.0.0.1", &["--tls", "verify-ca", "--ca-file", &ca]).code(0);
    run("localhost", &["--tls", "verify-full", "--ca-file", &other])
        .code(3)
        .has("certificate");
    run("localhost", &["--tls", "verify-full"])
        .code(2)
        .has("--ca-file");
    // The URL's own sslmode and sslrootcert are honoured.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        pg.url("localhost")
    );
    Cmd::new(&["status"])
        .env("DATABASE_URL", url)
        .env("MIGRATOR_PATH", dir.path())
        .run()
        .code(0);

    // An AWS source verifies by default (verify-full) against the Amazon RDS roots
    // compiled in, which did not sign this server; --ca-file replaces them.
    let Some(moto) = Moto::shared() else { return };
    let secret = unique("tls");
    moto.secret(&secret, &pg.url("localhost"));
    let aws = |args: &[&str]| {
        let mut full = vec!["status", "--db-secret", &secret];
        full.extend_from_slice(args);
        moto.env(Cmd::new(&full))
            .env("MIGRATOR_PATH", dir.path())
            .run()
    };
    aws(&[]).code(3).has("certificate");
    aws(&["--ca-file", &ca]).code(0);
    aws(&["--ca-file", &other]).code(3).has("certificate");
}
