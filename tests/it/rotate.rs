//! `migrator rotate` end to end: the real binary against moto (RDS, Route53,
//! Secrets Manager) made to behave like AWS by `moto_rds.py`, and the local
//! PostgreSQL / MariaDB standing in for the clone's database (`--database-url`
//! overrides the clone's endpoint, as a test-only host override would).
//!
//! The plain tests run on [`instant`]: moto's speed, with the states AWS shows
//! in between (a new password pending, Route53 changes PENDING). One test runs
//! two mornings under slow transitions, eventual consistency and throttling,
//! with the new master password valid in MariaDB only once RDS would have
//! applied it. What the harness does not have is covered by unit tests in
//! `src/commands/rotate/`: DescribeDBClusters never pages
//! (`aws::tests::every_page_of_clusters_is_read`), CloneGroupId is never set and
//! the 15-clone limit not enforced (`plan::tests::clone_respects_aurora_limit_of_fifteen`),
//! and clusters are never `backing-up`
//! (`tests::ready_waits_through_the_clones_states_then_tags_it`).
//!
//! The scrub step disables every login of the server that is not kept, and the
//! local servers are shared: each test keeps every login that exists when it
//! starts, except its own "personal" one, and these tests run one at a time so
//! that none disables another's.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::common::{Cmd, Dir, Engine, Run, TestDb, engines, unique};
use crate::moto::Moto;

const PREFIX: &str = "app-dev-";
const DNS: &str = "db.dev.internal";
const SECRET_ID: &str = "app/dev/master";
const DAY1: &str = "2026-11-22";
const DAY2: &str = "2026-11-23";

struct World {
    moto: Moto,
    db: TestDb,
    migrations: Dir,
    scrub: Dir,
    zone: String,
    personal: String,
    /// The query for every login but the test's own: run before each command, so
    /// that a role another test process made since (roles are cluster-wide on
    /// PostgreSQL) is kept too, and only `personal` is ever disabled.
    keep_sql: String,
    /// On the AWS-like harness: the clone's master, a login of its own whose
    /// password the harness changes when RDS would, and the URL without
    /// credentials (they come from the master secret).
    master: Option<String>,
    /// `--source-cluster` of every command (`None`: the test passes a source).
    source: Option<&'static str>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The seeded source cluster and its writer: there already, never `creating`.
const EXISTING: [&str; 2] = ["prod-db", "prod-db-1"];

/// moto as fast as it goes, but with the states AWS shows in between (a new
/// master password pending in the answer to ModifyDBCluster, Route53 changes
/// PENDING): the plain rotate tests.
fn instant() -> Value {
    json!({"rds": {"existing": EXISTING}, "route53": {}})
}

fn setup(engine: Engine) -> Option<World> {
    setup_like(engine, instant(), false)
}

/// A world on moto behaving as `like` says. `own_master`: the clone's master
/// is a MariaDB login of the test's own, whose password the harness changes
/// when RDS would apply the new one (`password_command`), and the binary
/// connects with the master secret's credentials only.
fn setup_like(engine: Engine, mut like: Value, own_master: bool) -> Option<World> {
    let serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::new(engine);
    let master_login = own_master.then(|| unique("rot_master"));
    if let Some(m) = &master_login {
        assert_eq!(engine, Engine::My, "only MariaDB checks passwords here");
        let mut create = String::new();
        let mut alter = String::new();
        for host in MYSQL_HOSTS {
            create.push_str(&format!(
                "CREATE USER '{m}'@'{host}' IDENTIFIED BY 'prod-password-1'; \
                 GRANT ALL PRIVILEGES ON *.* TO '{m}'@'{host}' WITH GRANT OPTION; "
            ));
            alter.push_str(&format!(
                "ALTER USER '{{user}}'@'{host}' IDENTIFIED BY '{{password}}'; "
            ));
        }
        db.sql(&create);
        let url = db.url();
        let port = url.rsplit_once(':').unwrap().1.split('/').next().unwrap();
        like["rds"]["password_command"] = json!([
            "mariadb",
            "-h",
            db.host(),
            "-P",
            port,
            "-u",
            "root",
            "-e",
            alter
        ]);
    }
    let moto = Moto::start_like(like)?;
    let personal = unique("rot_personal");
    let (rds_engine, master) = match (engine, &master_login) {
        (Engine::Pg, _) => ("aurora-postgresql", "postgres"),
        (Engine::My, Some(m)) => ("aurora-mysql", m.as_str()),
        (Engine::My, None) => ("aurora-mysql", "root"),
    };
    db.sql(
        "CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(200), phone VARCHAR(40)); \
         INSERT INTO users VALUES (1, 'alice@customer.example', '+44 7700 900123'), \
         (2, 'bob@customer.example', '+1 202 555 0147'); \
         CREATE TABLE audit_log (id INT, note VARCHAR(200)); \
         INSERT INTO audit_log VALUES (1, 'alice logged in from 203.0.113.9')",
    );
    let (keep_sql, scrub) = match engine {
        Engine::Pg => {
            db.sql(&format!("CREATE ROLE {personal} LOGIN"));
            (
                format!(
                    "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolcanlogin \
                     AND rolname <> '{personal}'"
                ),
                Dir::new(&[
                    (
                        "10_mask.sql",
                        "UPDATE users SET email = 'user' || id || '@example.invalid',\n\
                         phone = '+00 000 ' || lpad(id::text, 4, '0');",
                    ),
                    ("20_truncate.sql", "TRUNCATE audit_log;"),
                ]),
            )
        }
        Engine::My => {
            db.sql(&format!(
                "CREATE USER '{personal}'@'%' IDENTIFIED BY 'personal-pw-1'"
            ));
            (
                format!(
                    "SELECT GROUP_CONCAT(CONCAT(User, '@', Host)) FROM mysql.user \
                     WHERE is_role = 'N' AND User <> '{personal}'"
                ),
                Dir::new(&[
                    (
                        "10_mask.sql",
                        "UPDATE users SET email = CONCAT('user', id, '@example.invalid'),\n\
                         phone = CONCAT('+00 000 ', LPAD(id, 4, '0'));",
                    ),
                    ("20_truncate.sql", "TRUNCATE audit_log;"),
                ]),
            )
        }
    };
    let migrations = Dir::new(&[
        (
            "1_orders.up.sql",
            "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT);",
        ),
        (
            "2_users_name.up.sql",
            "ALTER TABLE users ADD COLUMN name VARCHAR(100);",
        ),
    ]);
    let zone = moto.boto(&format!(
        "rds.create_db_cluster(DBClusterIdentifier='prod-db', Engine='{rds_engine}', \
         MasterUsername='{master}', MasterUserPassword='prod-password-1', DatabaseName='{name}')\n\
         rds.create_db_instance(DBInstanceIdentifier='prod-db-1', DBClusterIdentifier='prod-db', \
         Engine='{rds_engine}', DBInstanceClass='db.r6g.large')\n\
         z = r53.create_hosted_zone(Name='dev.internal', CallerReference='t')['HostedZone']['Id']\n\
         print(z.split('/')[-1])",
        name = db.name
    ));
    Some(World {
        moto,
        db,
        migrations,
        scrub,
        zone,
        personal,
        keep_sql,
        master: master_login,
        source: Some("prod-db"),
        _one_at_a_time: serial,
    })
}

const MYSQL_HOSTS: [&str; 3] = ["%", "localhost", "127.0.0.1"];

impl Drop for World {
    fn drop(&mut self) {
        let drop = match self.db.engine {
            Engine::Pg => format!("DROP ROLE IF EXISTS {}", self.personal),
            Engine::My => format!("DROP USER IF EXISTS '{}'@'%'", self.personal),
        };
        let _ = self.db.try_sql(&drop);
        if let Some(m) = &self.master {
            for host in MYSQL_HOSTS {
                let _ = self
                    .db
                    .try_sql(&format!("DROP USER IF EXISTS '{m}'@'{host}'"));
            }
        }
    }
}

impl World {
    /// `migrator rotate STEP` with every flag, on `day`.
    fn cmd(&self, step: &str, day: &str, extra: &[&str]) -> Cmd {
        let mut args = vec!["rotate", step, "--name-prefix", PREFIX];
        if let Some(source) = self.source {
            args.extend(["--source-cluster", source]);
        }
        args.extend([
            "--today",
            day,
            "--master-secret",
            SECRET_ID,
            "--dns-name",
            DNS,
            "--hosted-zone-id",
            &self.zone,
            "--timeout",
            "60",
        ]);
        args.extend_from_slice(extra);
        let mut cmd = Cmd::on(&self.db, &self.migrations, &args)
            .env("MIGRATOR_TLS", "prefer")
            .env("MIGRATOR_ROTATE_TTL", "1")
            .env("MIGRATOR_ROTATE_SCRUB_DIR", self.scrub.path())
            .env("MIGRATOR_ROTATE_KEEP_LOGINS", self.db.sql(&self.keep_sql));
        if self.master.is_some() {
            // No credentials: they come from the master secret.
            let url = self.db.url();
            let (scheme, rest) = url.split_once("://").unwrap();
            cmd = cmd.env(
                "DATABASE_URL",
                format!("{scheme}://{}", rest.split_once('@').unwrap().1),
            );
        }
        self.moto.env(cmd)
    }

    fn run(&self, step: &str, day: &str, extra: &[&str]) -> Run {
        self.cmd(step, day, extra).run()
    }

    /// identifier → lifecycle tag (`-` without one).
    fn clusters(&self) -> BTreeMap<String, String> {
        self.moto
            .boto(
                "for c in rds.describe_db_clusters()['DBClusters']:\n    \
                 t = {x['Key']: x['Value'] for x in c.get('TagList', [])}\n    \
                 print(c['DBClusterIdentifier'], t.get('lifecycle', '-'))",
            )
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn endpoint(&self, id: &str) -> String {
        self.moto.boto(&format!(
            "print(rds.describe_db_clusters(DBClusterIdentifier='{id}')['DBClusters'][0]['Endpoint'])"
        ))
    }

    /// The CNAME's value, or "" without one.
    fn record(&self) -> String {
        self.moto.boto(&format!(
            "r = r53.list_resource_record_sets(HostedZoneId='{}')['ResourceRecordSets']\n\
             v = [x['ResourceRecords'][0]['Value'] for x in r \
             if x['Name'].rstrip('.') == '{DNS}' and x['Type'] == 'CNAME']\n\
             print(v[0] if v else '')",
            self.zone
        ))
    }

    /// The password `scrub` stored, or "" before it ran.
    fn stored_password(&self) -> String {
        self.moto.boto(&format!(
            "try:\n    print(json.loads(sm.get_secret_value(SecretId='{SECRET_ID}')['SecretString'])['password'])\n\
             except sm.exceptions.ResourceNotFoundException:\n    print('')"
        ))
    }

    fn personal_can_log_in(&self) -> bool {
        match self.db.engine {
            Engine::Pg => {
                self.db.sql(&format!(
                    "SELECT rolcanlogin FROM pg_roles WHERE rolname = '{}'",
                    self.personal
                )) == "t"
            }
            Engine::My => {
                let out = std::process::Command::new("mariadb")
                    .args(["-h", "127.0.0.1", "-u", &self.personal, "-ppersonal-pw-1"])
                    .args(["-N", "-B", "-e", "SELECT 1"])
                    .output()
                    .unwrap();
                out.status.success()
            }
        }
    }

    fn emails(&self) -> String {
        self.db.sql("SELECT email FROM users ORDER BY id")
    }
}

/// The harness's events (`moto-like {json}` lines of moto's log) named `name`.
fn events(moto: &Moto, name: &str) -> Vec<Value> {
    moto.log()
        .lines()
        .filter_map(|l| l.strip_prefix("moto-like "))
        .filter_map(|j| serde_json::from_str::<Value>(j).ok())
        .filter(|e| e["event"] == name)
        .collect()
}

fn day_id(day: &str) -> String {
    format!("{PREFIX}{}", day.replace('-', ""))
}

#[track_caller]
fn assert_no_password(w: &World, run: &Run) {
    let pw = w.stored_password();
    assert!(
        pw.is_empty() || !run.all().contains(&pw),
        "the master password was printed:\n{}",
        run.all()
    );
}

engines!(
    day_one_makes_a_scrubbed_migrated_clone_behind_the_name,
    |engine| {
        let Some(w) = setup(engine) else { return };
        let day1 = day_id(DAY1);
        assert!(w.personal_can_log_in(), "the personal login works before");

        let run = w.run("run", DAY1, &[]);
        run.code(0);
        assert_no_password(&w, &run);
        for step in [
            "clone: done",
            "ready: done",
            "scrub: done",
            "migrate: done",
            "connect: done",
        ] {
            run.has(step);
        }
        run.has("clean: nothing to do");

        let clusters = w.clusters();
        assert_eq!(
            clusters.get(&day1).map(String::as_str),
            Some("connected"),
            "{clusters:?}"
        );
        assert_eq!(
            w.record(),
            w.endpoint(&day1),
            "the name points at the clone"
        );
        let emails = w.emails();
        assert_eq!(
            emails, "user1@example.invalid\nuser2@example.invalid",
            "masked"
        );
        assert_eq!(w.db.sql("SELECT count(*) FROM audit_log"), "0", "truncated");
        assert!(!w.personal_can_log_in(), "the personal login is disabled");
        assert!(w.db.table_exists("orders"), "migrated");
        assert_eq!(w.db.history(), ["1:applied", "2:applied"]);
        let pw = w.stored_password();
        assert_eq!(pw.len(), 32, "a new master password is in the secret");
        assert!(!pw.contains("prod-password"));

        // Everything again, the same day: nothing changes.
        let again = w.run("run", DAY1, &["--output", "json"]);
        again.code(0);
        let report = again.json();
        for s in report["steps"].as_array().unwrap() {
            assert_eq!(s["outcome"], "nothing_to_do", "{s}");
            assert_eq!(s["calls"].as_array().unwrap().len(), 0, "{s}");
        }
        assert_eq!(w.stored_password(), pw, "the password was not reset again");
        assert_eq!(w.clusters(), clusters);
        // And each step on its own.
        for step in ["clone", "ready", "scrub", "migrate", "connect", "clean"] {
            let r = w.run(step, DAY1, &[]);
            r.code(0);
            r.has(&format!("{step}: nothing to do"));
        }
    }
);

#[test]
fn day_two_connects_the_new_clone_aborts_yesterdays_and_clean_deletes_it() {
    let Some(w) = setup(Engine::Pg) else { return };
    let (day1, day2) = (day_id(DAY1), day_id(DAY2));
    w.run("run", DAY1, &[]).code(0);

    // A scheduler runs the steps one by one.
    for step in ["clone", "ready", "scrub", "migrate", "connect"] {
        let r = w.run(step, DAY2, &[]);
        r.code(0);
        r.has(&format!("{step}: done"));
    }
    let clusters = w.clusters();
    assert_eq!(clusters.get(&day1).map(String::as_str), Some("aborted"));
    assert_eq!(clusters.get(&day2).map(String::as_str), Some("connected"));
    assert_eq!(w.record(), w.endpoint(&day2));

    let dry = w.run("clean", DAY2, &["--dry-run"]);
    dry.code(0).has(&format!(
        "would call: rds DeleteDBCluster DBClusterIdentifier={day1}"
    ));
    assert!(
        w.clusters().contains_key(&day1),
        "a dry run deletes nothing"
    );

    let clean = w.run("clean", DAY2, &[]);
    clean
        .code(0)
        .has(&format!("deleted `{day1}` (lifecycle=aborted)"));
    let clusters = w.clusters();
    assert!(!clusters.contains_key(&day1), "{clusters:?}");
    assert!(clusters.contains_key("prod-db"));
    assert_eq!(clusters.get(&day2).map(String::as_str), Some("connected"));
    let instances = w.moto.boto(
        "print(' '.join(sorted(i['DBInstanceIdentifier'] for i in rds.describe_db_instances()['DBInstances'])))",
    );
    assert_eq!(instances, format!("{day2}-writer prod-db-1"));
    w.run("clean", DAY2, &[])
        .code(0)
        .has("clean: nothing to do");
}

#[test]
fn a_run_resumes_after_a_crash_between_and_inside_steps() {
    let Some(w) = setup(Engine::Pg) else { return };
    let day1 = day_id(DAY1);
    // Killed after `clone`: the next run picks up from the tags.
    w.run("clone", DAY1, &[]).code(0).has("clone: done");
    assert_eq!(w.clusters().get(&day1).map(String::as_str), Some("created"));
    let run = w.run("run", DAY1, &[]);
    run.code(0).has("clone: nothing to do").has("ready: done");
    assert_eq!(
        w.clusters().get(&day1).map(String::as_str),
        Some("connected")
    );

    // Killed inside `clone` on day 2, between the restore and the writer.
    let day2 = day_id(DAY2);
    w.moto.boto(&format!(
        "rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier='{day2}', \
         SourceDBClusterIdentifier='prod-db', RestoreType='copy-on-write', \
         UseLatestRestorableTime=True, Tags=[{{'Key': 'lifecycle', 'Value': 'created'}}])"
    ));
    let run = w.run("run", DAY2, &[]);
    run.code(0)
        .has(&format!("without a writer; created `{day2}-writer`"))
        .has("connect: done");
    let clusters = w.clusters();
    assert_eq!(clusters.get(&day2).map(String::as_str), Some("connected"));
    assert!(
        !clusters.contains_key(&day1),
        "day 1 was aborted and cleaned"
    );
}

#[test]
fn clusters_without_the_prefix_or_our_tag_are_never_touched() {
    let Some(w) = setup(Engine::Pg) else { return };
    // Look like clones, or carry lifecycle=aborted, but are not ours.
    w.moto.boto(
        "def make(id, tags):\n    \
         rds.create_db_cluster(DBClusterIdentifier=id, Engine='aurora-postgresql', \
         MasterUsername='postgres', MasterUserPassword='other-password-1', Tags=tags)\n    \
         rds.create_db_instance(DBInstanceIdentifier=id + '-1', DBClusterIdentifier=id, \
         Engine='aurora-postgresql', DBInstanceClass='db.r6g.large')\n\
         make('reporting', [{'Key': 'lifecycle', 'Value': 'aborted'}])\n\
         make('app-dev-legacy', [{'Key': 'lifecycle', 'Value': 'aborted'}])\n\
         make('app-dev-20261101', [])\n\
         make('app-dev-20261102', [{'Key': 'lifecycle', 'Value': 'retired'}])\n\
         make('app-dev-20261103', [{'Key': 'Lifecycle', 'Value': 'aborted'}])",
    );
    let before = w.clusters();
    w.run("run", DAY1, &[]).code(0);
    w.run("run", DAY2, &["--max-age", "0d"]).code(0);
    w.run("clean", DAY2, &["--max-age", "0d"]).code(0);
    let after = w.clusters();
    for (id, tag) in &before {
        if id != "prod-db" {
            assert_eq!(after.get(id), Some(tag), "{id} was touched: {after:?}");
        }
    }
    let instances = w
        .moto
        .boto("print(len(rds.describe_db_instances()['DBInstances']))");
    assert_eq!(
        instances, "7",
        "five foreign writers, prod-db-1, day 2's writer"
    );

    // A foreign cluster with today's name: refused, and left alone.
    let day3 = "2026-11-24";
    w.moto.boto(&format!(
        "rds.create_db_cluster(DBClusterIdentifier='{}', Engine='aurora-postgresql', \
         MasterUsername='postgres', MasterUserPassword='other-password-1', \
         Tags=[{{'Key': 'owner', 'Value': 'qa'}}])",
        day_id(day3)
    ));
    let run = w.run("run", day3, &[]);
    run.code(7).has("is not ours").has("ready: not run");
    assert_eq!(
        w.clusters().get(&day_id(day3)).map(String::as_str),
        Some("-")
    );
}

#[test]
fn a_dry_run_prints_the_calls_and_changes_nothing() {
    let Some(w) = setup(Engine::Pg) else { return };
    let before = w.clusters();
    let run = w.run("run", DAY1, &["--dry-run"]);
    run.code(0)
        .has("would call: rds RestoreDBClusterToPointInTime DBClusterIdentifier=app-dev-20261122 SourceDBClusterIdentifier=prod-db RestoreType=copy-on-write")
        .has("would call: rds CreateDBInstance DBInstanceIdentifier=app-dev-20261122-writer")
        .has("would call: secretsmanager CreateSecret Name=app/dev/master SecretString=***")
        .has("would call: rds ModifyDBCluster DBClusterIdentifier=app-dev-20261122 MasterUserPassword=***")
        .has("would run scrub file 10_mask.sql")
        .has("would call: route53 ChangeResourceRecordSets")
        .has("Tags=lifecycle=connected");
    assert_eq!(w.clusters(), before, "no cluster made or tagged");
    assert_eq!(w.record(), "", "no record");
    assert_eq!(w.stored_password(), "", "no secret");
    assert!(w.personal_can_log_in());
    assert!(w.emails().contains("alice@customer.example"));
    assert!(!w.db.table_exists("orders"));
}

#[test]
fn from_snapshot_restores_the_latest_automated_snapshot() {
    let Some(w) = setup(Engine::Pg) else { return };
    let run = w.run(
        "clone",
        DAY1,
        &["--from-snapshot", "--instance-class", "db.t4g.medium"],
    );
    run.code(0).has("restore of snapshot `rds:prod-db-");
    let day1 = day_id(DAY1);
    assert_eq!(w.clusters().get(&day1).map(String::as_str), Some("created"));
    let class = w.moto.boto(&format!(
        "print(rds.describe_db_instances(DBInstanceIdentifier='{day1}-writer')['DBInstances'][0]['DBInstanceClass'])"
    ));
    assert_eq!(class, "db.t4g.medium");
}

#[test]
fn missing_flags_are_usage_errors_before_any_call() {
    let cmd = Cmd::new(&["rotate", "scrub", "--name-prefix", PREFIX]);
    cmd.run()
        .code(2)
        .has("`rotate scrub` needs --master-secret, --scrub-dir");
    Cmd::new(&["rotate", "clean", "--name-prefix", "App_"])
        .run()
        .code(2)
        .has("--name-prefix `App_`");
}

#[test]
fn one_slack_message_per_run_with_every_step() {
    use crate::common::WEBHOOK_TOKEN;
    use crate::fake_http::{FakeHttp, Reply};
    let Some(w) = setup(Engine::Pg) else { return };
    let slack = FakeHttp::script(vec![], Reply::ok());
    let webhook = slack.url(&format!("/services/T0TEST/B0TEST/{WEBHOOK_TOKEN}"));
    let run = w
        .cmd("run", DAY1, &["--env", "devqa"])
        .env("SLACK_WEBHOOK_URL", &webhook)
        .run();
    run.code(0);
    let posts = slack.requests();
    assert_eq!(
        posts.len(),
        1,
        "one message for the whole run, none from `up`"
    );
    let payload = posts[0].json();
    let text = payload["text"].as_str().unwrap();
    assert!(
        text.starts_with("✅ [devqa] migrator rotate run: app-dev-20261122 in "),
        "{text}"
    );
    let steps = payload["blocks"][1]["text"]["text"].as_str().unwrap();
    for step in ["clone", "ready", "scrub", "migrate", "connect", "clean"] {
        assert!(steps.contains(&format!("*{step}*")), "{steps}");
    }
    assert!(!payload.to_string().contains(&w.stored_password()));
    // A quiet morning stays quiet with --notify change.
    w.cmd("run", DAY1, &["--notify", "change"])
        .env("SLACK_WEBHOOK_URL", &webhook)
        .run()
        .code(0);
    assert_eq!(slack.requests().len(), 1);
}

/// AWS as it behaves: clusters and instances take seconds to be created and
/// are not listed at first, the new master password shows pending, then
/// `resetting-master-credentials`, and is valid (in the MariaDB standing in
/// for the clone) only after that; deletions take a while; Route53 changes
/// are PENDING before INSYNC; and 20 % of the binary's calls are throttled.
/// Two mornings of `rotate run` end as under the instant model, and:
/// CreateDBInstance never meets a cluster that is not available (the harness
/// would refuse it, and log it), `scrub` logs in with the new password only
/// once it is in effect (an earlier login fails: the old one is still set),
/// and `clean` deletes yesterday's clone only after INSYNC + TTL.
#[test]
fn rotate_run_rides_out_slow_transitions_eventual_consistency_and_throttling() {
    let like = json!({
        "throttle": 0.2,
        "seed": 15,
        "rds": {
            "existing": EXISTING,
            "cluster_creating": 3,
            "instance_creating": 2,
            "not_found": 1,
            "reset_appears": 2,
            "reset_takes": 2,
            "deleting": 2,
        },
        "route53": {"insync_after": 2},
    });
    let Some(w) = setup_like(Engine::My, like, true) else {
        return;
    };
    let (day1, day2) = (day_id(DAY1), day_id(DAY2));
    let run = w.run("run", DAY1, &[]);
    run.code(0);
    assert_no_password(&w, &run);
    for step in ["clone", "ready", "scrub", "migrate", "connect"] {
        run.has(&format!("{step}: done"));
    }
    assert_eq!(
        w.clusters().get(&day1).map(String::as_str),
        Some("connected")
    );
    assert_eq!(
        w.emails(),
        "user1@example.invalid\nuser2@example.invalid",
        "masked"
    );
    assert!(w.db.table_exists("orders"), "migrated");
    let applied = events(&w.moto, "password_applied");
    assert_eq!(applied.len(), 1, "{}", w.moto.log());
    assert_eq!(applied[0]["ok"], true, "the harness set the new password");

    let ttl = 3;
    let run = w.run("run", DAY2, &["--ttl", &ttl.to_string()]);
    run.code(0)
        .has("connect: done")
        .has(&format!("deleted `{day1}` (lifecycle=aborted)"));
    let clusters = w.clusters();
    assert!(!clusters.contains_key(&day1), "{clusters:?}");
    assert_eq!(clusters.get(&day2).map(String::as_str), Some("connected"));
    assert_eq!(w.record(), w.endpoint(&day2));

    let refused = events(&w.moto, "refused");
    assert!(refused.is_empty(), "AWS refused calls: {refused:?}");
    let changes = events(&w.moto, "change");
    let deleted = events(&w.moto, "delete_cluster");
    assert_eq!((changes.len(), deleted.len()), (2, 1), "{}", w.moto.log());
    let insync_at = changes[1]["insync_at"].as_f64().unwrap();
    let deleted_at = deleted[0]["t"].as_f64().unwrap();
    assert!(
        deleted_at >= insync_at + ttl as f64,
        "yesterday's clone was deleted {:.1} s after INSYNC, before the TTL ({ttl} s) passed",
        deleted_at - insync_at
    );
    assert!(w.moto.throttled() > 0, "{}", w.moto.like_stats());
}

#[test]
fn clean_keeps_the_replaced_clone_while_resolvers_may_hold_the_old_record() {
    let Some(w) = setup(Engine::Pg) else { return };
    let day1 = day_id(DAY1);
    w.run("run", DAY1, &[]).code(0);
    let run = w.run("run", DAY2, &["--ttl", "2h"]);
    run.code(0)
        .has("kept until migrator:released-at=")
        .has(&format!("kept `{day1}` for "))
        .has("clean: nothing to do");
    assert_eq!(w.clusters().get(&day1).map(String::as_str), Some("aborted"));
}

#[test]
fn ready_names_an_unreachable_database_after_the_bound() {
    let Some(w) = setup(Engine::Pg) else { return };
    w.run("clone", DAY1, &[]).code(0);
    let closed = crate::common::free_port().to_string();
    let started = std::time::Instant::now();
    let run = w.run(
        "ready",
        DAY1,
        &["--db-port", &closed, "--unreachable-after", "2s"],
    );
    run.code(3)
        .has("refused the connection")
        .has("after RDS said it is available")
        .has("--unreachable-after");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "not the whole --timeout"
    );
    assert_eq!(
        w.clusters().get(&day_id(DAY1)).map(String::as_str),
        Some("created")
    );
}

#[test]
fn scrub_checks_its_connection_settings_before_any_change() {
    let Some(w) = setup(Engine::Pg) else { return };
    w.run("clone", DAY1, &[]).code(0);
    w.run("ready", DAY1, &[]).code(0);
    let run = w.run(
        "scrub",
        DAY1,
        &["--tls", "verify-full", "--ca-file", "/nonexistent/ca.pem"],
    );
    run.code(2).has("/nonexistent/ca.pem");
    assert_eq!(w.stored_password(), "", "no secret was created");
    let report = w.run(
        "scrub",
        DAY1,
        &[
            "--output",
            "json",
            "--tls",
            "verify-full",
            "--ca-file",
            "/nonexistent/ca.pem",
        ],
    );
    let steps = report.json()["steps"].clone();
    assert_eq!(steps[0]["calls"], json!([]), "no changing call: {steps}");
    assert_eq!(
        w.clusters().get(&day_id(DAY1)).map(String::as_str),
        Some("ready")
    );
}

/// RDS for PostgreSQL, a plain instance: the newest automated snapshot is
/// restored (RestoreDBInstanceFromDBSnapshot), the new master password set with
/// ModifyDBInstance, then scrub, migrate, the name, and yesterday's instance
/// deleted (DeleteDBInstance) — under instances that take their time.
#[test]
fn an_rds_instance_rotates_from_its_newest_automated_snapshot() {
    let like = json!({
        "rds": {
            "existing": ["prod-db", "prod-db-1", "prod-pg"],
            "instance_creating": 2,
            "not_found": 1,
            "reset_appears": 1,
            "reset_takes": 1,
            "deleting": 1,
        },
        "route53": {"insync_after": 1},
    });
    let Some(mut w) = setup_like(Engine::Pg, like, false) else {
        return;
    };
    w.moto.boto(&format!(
        "rds.create_db_instance(DBInstanceIdentifier='prod-pg', Engine='postgres', \
         DBInstanceClass='db.t4g.medium', MasterUsername='postgres', \
         MasterUserPassword='prod-password-1', DBName='{}', AllocatedStorage=20)",
        w.db.name
    ));
    let instances = |w: &World| -> BTreeMap<String, String> {
        w.moto
            .boto(
                "for i in rds.describe_db_instances()['DBInstances']:\n    \
                 if i.get('DBClusterIdentifier'): continue\n    \
                 t = {x['Key']: x['Value'] for x in i.get('TagList', [])}\n    \
                 print(i['DBInstanceIdentifier'], t.get('lifecycle', '-'))",
            )
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let (day1, day2) = (day_id(DAY1), day_id(DAY2));
    // Found under --source-cluster: it is an instance.
    w.source = Some("prod-pg");
    let run = w.run("run", DAY1, &[]);
    run.code(0)
        .has("restore of snapshot `rds:prod-pg-")
        .has("of the RDS instance `prod-pg`");
    for step in ["ready", "scrub", "migrate", "connect"] {
        run.has(&format!("{step}: done"));
    }
    assert_eq!(
        instances(&w).get(&day1).map(String::as_str),
        Some("connected")
    );
    let endpoint = w.moto.boto(&format!(
        "print(rds.describe_db_instances(DBInstanceIdentifier='{day1}')['DBInstances'][0]['Endpoint']['Address'])"
    ));
    assert_eq!(w.record(), endpoint, "the name points at the instance");
    assert_eq!(
        w.emails(),
        "user1@example.invalid\nuser2@example.invalid",
        "masked"
    );
    assert!(w.db.table_exists("orders"), "migrated");
    assert_eq!(w.stored_password().len(), 32);
    assert_eq!(events(&w.moto, "password_applied")[0]["kind"], "instance");

    // Named as an instance.
    w.source = None;
    let run = w.run("run", DAY2, &["--source-instance", "prod-pg"]);
    run.code(0)
        .has("connect: done")
        .has(&format!("deleted `{day1}` (lifecycle=aborted)"));
    let after = instances(&w);
    assert!(!after.contains_key(&day1), "{after:?}");
    assert_eq!(after.get(&day2).map(String::as_str), Some("connected"));
    assert_eq!(after.get("prod-pg").map(String::as_str), Some("-"));
    assert!(events(&w.moto, "refused").is_empty(), "{}", w.moto.log());
}
