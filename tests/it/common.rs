//! Test harness: throwaway databases, migration folders, and a runner for the
//! real binary that checks no secret ever reaches its output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The password every test URL carries; no output may ever contain it.
pub const SECRET: &str = "Sup3r-S3cret-pw-4711";
/// The token in every test Slack webhook URL; no output may ever contain it.
pub const WEBHOOK_TOKEN: &str = "xoxWebh00k-T0ken-9f8e7d6c5b4a";
pub const MYSQL_USER: &str = "migrator_test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Pg,
    My,
}

fn pg_base() -> String {
    std::env::var("MIGRATOR_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn my_base() -> String {
    std::env::var("MIGRATOR_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// host, port, user of a base URL like `postgres://user@host:port`.
fn parts(base: &str) -> (String, String, String) {
    let rest = base.split_once("://").unwrap().1;
    let (user, hostport) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap().to_string();
    let (host, port) = hostport.trim_end_matches('/').split_once(':').unwrap();
    (host.to_string(), port.to_string(), user)
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        nanos & 0xfffff
    )
}

/// A database created for one test and dropped when it ends.
pub struct TestDb {
    pub engine: Engine,
    pub name: String,
}

impl TestDb {
    pub fn new(engine: Engine) -> Self {
        let name = unique("mt");
        let db = TestDb { engine, name };
        match engine {
            Engine::Pg => db.admin(&format!("CREATE DATABASE {}", db.name)),
            Engine::My => {
                ensure_mysql_user();
                db.admin(&format!("CREATE DATABASE {}", db.name));
            }
        }
        db
    }

    /// The URL the binary gets: with a password (ignored by the trust-auth
    /// PostgreSQL, required by the MySQL test user).
    pub fn url(&self) -> String {
        match self.engine {
            Engine::Pg => {
                let (host, port, user) = parts(&pg_base());
                format!("postgres://{user}:{SECRET}@{host}:{port}/{}", self.name)
            }
            Engine::My => {
                let (host, port, _) = parts(&my_base());
                format!("mysql://{MYSQL_USER}:{SECRET}@{host}:{port}/{}", self.name)
            }
        }
    }

    /// The host the server was configured with (`MIGRATOR_TEST_PG` or
    /// `MIGRATOR_TEST_MYSQL`).
    pub fn host(&self) -> String {
        match self.engine {
            Engine::Pg => parts(&pg_base()).0,
            Engine::My => parts(&my_base()).0,
        }
    }

    /// The port the server was configured with.
    pub fn port(&self) -> String {
        match self.engine {
            Engine::Pg => parts(&pg_base()).1,
            Engine::My => parts(&my_base()).1,
        }
    }

    /// [`Self::url`] with the host replaced, e.g. by a name to resolve.
    pub fn url_with_host(&self, host: &str) -> String {
        let url = self.url();
        let (head, rest) = url.split_once('@').expect("the URL has credentials");
        let (_, port_and_path) = rest.split_once(':').expect("the URL has a port");
        format!("{head}@{host}:{port_and_path}")
    }

    fn client(&self, database: Option<&str>, sql: &str) -> Output {
        let mut cmd = match self.engine {
            Engine::Pg => {
                let (host, port, user) = parts(&pg_base());
                let mut c = Command::new("psql");
                c.args([
                    "-h", &host, "-p", &port, "-U", &user, "-X", "-q", "-t", "-A",
                ]);
                c.args([
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    database.unwrap_or("postgres"),
                    "-c",
                    sql,
                ]);
                c
            }
            Engine::My => {
                let (host, port, user) = parts(&my_base());
                let mut c = Command::new("mariadb");
                c.args(["-h", &host, "-P", &port, "-u", &user, "-N", "-B", "-e", sql]);
                if let Some(d) = database {
                    c.arg(d);
                }
                c
            }
        };
        cmd.output().expect("database client runs")
    }

    fn admin(&self, sql: &str) {
        let out = self.client(None, sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs SQL in the test database; the trimmed output, or the error text.
    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let out = self.client(Some(&self.name), sql);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub fn table_exists(&self, table: &str) -> bool {
        let q = match self.engine {
            Engine::Pg => format!(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = '{table}'"
            ),
            Engine::My => format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{table}'"
            ),
        };
        self.sql(&q) == "1"
    }

    /// `version:status` of every history row, ascending.
    pub fn history(&self) -> Vec<String> {
        if !self.table_exists("migrator_history") {
            return Vec::new();
        }
        let q = match self.engine {
            Engine::Pg => "SELECT version || ':' || status FROM migrator_history ORDER BY version",
            Engine::My => {
                "SELECT CONCAT(version, ':', status) FROM migrator_history ORDER BY version"
            }
        };
        self.sql(q)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// A statement that sleeps this many seconds, and fails when cancelled as
    /// real work does. (A bare `DO SLEEP` cut by KILL QUERY just returns early,
    /// without an error, and the rest of the migration's message runs.)
    pub fn sleep_sql(&self, secs: f64) -> String {
        match self.engine {
            Engine::Pg => format!("SELECT pg_sleep({secs})"),
            Engine::My => format!("SELECT SLEEP({secs}) FROM (SELECT 1) AS t"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = match self.engine {
            Engine::Pg => format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            Engine::My => format!("DROP DATABASE IF EXISTS {}", self.name),
        };
        let _ = self.client(None, &sql);
    }
}

fn ensure_mysql_user() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let db = TestDb {
            engine: Engine::My,
            name: String::new(),
        };
        for host in ["%", "localhost", "127.0.0.1"] {
            db.admin(&format!(
                "CREATE USER IF NOT EXISTS '{MYSQL_USER}'@'{host}' IDENTIFIED BY '{SECRET}'; \
                 GRANT ALL PRIVILEGES ON *.* TO '{MYSQL_USER}'@'{host}' WITH GRANT OPTION"
            ));
        }
        std::mem::forget(db);
    });
}

/// A migrations folder.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir { dir };
        for (name, text) in files {
            d.write(name, text.as_bytes());
        }
        d
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The result of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code, expected,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn has(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The `version` of every step in a report list (`applied`, `not_run`).
pub fn step_versions(list: &serde_json::Value) -> Vec<u64> {
    list.as_array()
        .expect("a list of steps")
        .iter()
        .map(|s| s["version"].as_u64().expect("a numeric version"))
        .collect()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_migrator"))
}

/// A command line for the binary, with a clean environment.
pub struct Cmd {
    cmd: Command,
}

impl Cmd {
    pub fn new(args: &[&str]) -> Self {
        let mut cmd = Command::new(bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("MIGRATOR_")
                || k == "DATABASE_URL"
                || k.starts_with("AWS_")
                || k == "SLACK_WEBHOOK_URL"
                || k.starts_with("CODEBUILD_")
                || k.starts_with("ECS_CONTAINER_METADATA_URI")
            {
                cmd.env_remove(k);
            }
        }
        cmd.args(args);
        cmd.stdin(Stdio::null());
        Cmd { cmd }
    }

    /// Any command line (e.g. the binary run through `chroot`), with the same
    /// output checks as the binary's own.
    pub fn wrap(cmd: Command) -> Self {
        Cmd { cmd }
    }

    /// `migrator --path DIR` against `db`.
    pub fn on(db: &TestDb, dir: &Dir, args: &[&str]) -> Self {
        let mut c = Cmd::new(args);
        c.cmd
            .env("DATABASE_URL", db.url())
            .env("MIGRATOR_PATH", dir.path());
        c
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn run(mut self) -> Run {
        let out = self.cmd.output().expect("binary runs");
        finish(out)
    }

    pub fn spawn(mut self) -> Child {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.spawn().expect("binary starts")
    }
}

/// Collects a spawned run's output (asserting no secret in it).
pub fn wait(child: Child) -> Run {
    finish(child.wait_with_output().unwrap())
}

fn finish(out: Output) -> Run {
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_secret(&run.all());
    run
}

/// The `--report` file a run wrote, checked for secrets.
pub fn report_file(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the report was written");
    assert_no_secret(&text);
    serde_json::from_str(&text).expect("the report is JSON")
}

/// Neither the database password nor the webhook token is in `text`.
#[track_caller]
pub fn assert_no_secret(text: &str) {
    for secret in [SECRET, WEBHOOK_TOKEN] {
        assert!(!text.contains(secret), "a secret was printed:\n{text}");
    }
}

/// Declares one test per engine: `engines!(name, |engine| { ... })`.
macro_rules! engines {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn postgres() {
                ($body)($crate::common::Engine::Pg)
            }
            #[test]
            fn mysql() {
                ($body)($crate::common::Engine::My)
            }
        }
    };
}
pub(crate) use engines;

/// Sends a signal to a child process.
pub fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Something a test needs from the machine beyond the two database servers.
/// Where it is missing the test skips through [`unavailable`], which fails
/// instead when `MIGRATOR_TEST_REQUIRE_<NAME>` or `MIGRATOR_TEST_REQUIRE_ALL` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// python3 with moto's server and boto3: AWS APIs on 127.0.0.1.
    Moto,
    /// python3 with PyYAML, to read buildspec.yml.
    Pyyaml,
    /// `chroot` into an empty folder (root, or CAP_SYS_CHROOT).
    Chroot,
    /// A PostgreSQL cluster of the test's own: the server binaries under
    /// /usr/lib/postgresql and root, to run initdb and pg_ctl as `postgres`.
    PgThrowaway,
    /// The system's `ldd`.
    Ldd,
    /// A DNS server of the test's own on 127.0.0.1:53 that can send the binary
    /// to the PostgreSQL under test (so that server must be on loopback).
    FakeDns,
}

impl Component {
    /// The `<NAME>` of `MIGRATOR_TEST_REQUIRE_<NAME>`.
    pub fn name(self) -> &'static str {
        match self {
            Component::Moto => "MOTO",
            Component::Pyyaml => "PYYAML",
            Component::Chroot => "CHROOT",
            Component::PgThrowaway => "PG_THROWAWAY",
            Component::Ldd => "LDD",
            Component::FakeDns => "FAKE_DNS",
        }
    }
}

/// The one way a test skips: `component` is not available here, for `why`.
/// Panics when the component is required (`MIGRATOR_TEST_REQUIRE_<NAME>` or
/// `MIGRATOR_TEST_REQUIRE_ALL` set and not empty, as CI does), so that a skip
/// can never hide a missing component where it must be there; otherwise says
/// `skipped: ...` on stderr and the caller returns.
#[track_caller]
pub fn unavailable(component: Component, why: &str) {
    let own = format!("MIGRATOR_TEST_REQUIRE_{}", component.name());
    for var in [own.as_str(), "MIGRATOR_TEST_REQUIRE_ALL"] {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            panic!("{why}; {var} is set, so {} is required", component.name());
        }
    }
    eprintln!(
        "skipped: {why} ({} unavailable; set {own} to make this a failure)",
        component.name()
    );
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server of our own, on a free port, in a temporary folder owned
/// by the `postgres` user (initdb refuses to run as root). Stopped on drop.
pub struct ThrowawayPg {
    pub port: u16,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
    bin: PathBuf,
}

impl ThrowawayPg {
    /// Initialises a cluster; `conf` lines are appended to postgresql.conf.
    /// `None` when this machine cannot run one (no server binaries, or no root
    /// to switch to the postgres user), after [`unavailable`] said so: the
    /// caller returns.
    pub fn init(conf: &[String]) -> Option<Self> {
        match Self::try_init(conf) {
            Ok(pg) => Some(pg),
            Err(why) => {
                unavailable(Component::PgThrowaway, &why);
                None
            }
        }
    }

    fn try_init(conf: &[String]) -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL server binaries: /usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .ok_or("no initdb under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run chown: {e}"))?;
        if !chown.status.success() {
            return Err(format!(
                "cannot give a folder to the postgres user (needs root): {}",
                String::from_utf8_lossy(&chown.stderr).trim()
            ));
        }
        let port = free_port();
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| format!("cannot run runuser (needs root): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut lines = vec![
            format!("port = {port}"),
            "listen_addresses = '127.0.0.1'".to_string(),
            format!("unix_socket_directories = '{}'", dir.path().display()),
            "fsync = off".to_string(),
        ];
        lines.extend_from_slice(conf);
        let conf_path = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap();
        text.push('\n');
        text.push_str(&lines.join("\n"));
        std::fs::write(&conf_path, text).unwrap();
        Ok(ThrowawayPg {
            port,
            data,
            _dir: dir,
            bin,
        })
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    fn ctl(&self, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-l"])
            .arg(self.data.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn start(&self) {
        assert!(
            self.ctl(&["-w", "start"]),
            "throwaway server starts: {}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    /// A URL for the `postgres` database (password ignored: trust auth).
    pub fn url(&self, host: &str) -> String {
        format!("postgres://postgres:{SECRET}@{host}:{}/postgres", self.port)
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        self.ctl(&["-m", "immediate", "stop"]);
    }
}
