//! `bench/proxy` from the tests: a TCP proxy in front of the database under test
//! that counts round trips (flights) and messages, adds delay, and cuts or
//! silences a connection at a chosen message. One tool for the benchmarks and the
//! tests; its own doc comment describes what it counts and how a fault fires.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Cmd, Dir, Engine, TestDb};

/// A running `bench/proxy`; killed when dropped.
pub struct Proxy {
    child: Child,
    port: u16,
    target: String,
    stats: tempfile::TempPath,
}

impl Proxy {
    /// A proxy in front of `db`'s server, framing its protocol, with more of
    /// `bench/proxy`'s flags in `args` (`--delay-ms`, `--fault`, ...).
    pub fn start(db: &TestDb, args: &[&str]) -> Proxy {
        let protocol = match db.engine {
            Engine::Pg => "pg",
            Engine::My => "mysql",
        };
        let target = format!("{}:{}", db.host(), db.port());
        let stats = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "bench", "proxy"]
            .iter()
            .collect();
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--target", &target, "--protocol", protocol, "--stats"])
            .arg(&stats)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs bench/proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("bench/proxy did not say where it listens: {line:?}"));
        Proxy {
            child,
            port,
            target,
            stats,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `db`'s URL, through this proxy.
    pub fn url(&self, db: &TestDb) -> String {
        self.url_on(db, "127.0.0.1")
    }

    /// `db`'s URL, through this proxy listening on `host` (`--listen-host`).
    pub fn url_on(&self, db: &TestDb, host: &str) -> String {
        let url = db.url();
        let through = format!("{host}:{}", self.port);
        assert!(url.contains(&self.target), "{url} names {}", self.target);
        url.replacen(&self.target, &through, 1)
    }

    /// The statistics as last written (after a connection closed).
    pub fn stats(&self) -> Value {
        let text = std::fs::read_to_string(&self.stats).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Waits until every connection so far has closed (at most 10 s), then
    /// returns the statistics: the client's last bytes are counted by then.
    pub fn settled(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = self.stats();
            let open = stats["connections"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["closed"] != true);
            if !open || Instant::now() > deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The proxy's counts are what the other tests assert on: check them against
    /// a client whose round trips are known. psql -c "SELECT 1" over plain TCP
    /// with trust auth: the startup packet, then the query, then Terminate, each
    /// sent after the server spoke: three flights, and the messages framed.
    #[test]
    fn the_proxy_counts_the_flights_of_a_known_client() {
        let db = TestDb::new(Engine::Pg);
        let proxy = Proxy::start(&db, &[]);
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &proxy.port().to_string(),
                "-U",
                "postgres",
                "-d",
                &db.name,
                "-c",
                "SELECT 1",
            ])
            .env("PGSSLMODE", "disable")
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{out:?}");
        let stats = proxy.settled();
        let conn = &stats["connections"][0];
        assert_eq!(conn["flights"], 3, "{stats}");
        // Client: StartupMessage, Query, Terminate.
        assert_eq!(conn["c2s_messages"], 3, "{stats}");
        assert_eq!(conn["tls"], false, "{stats}");
    }

    /// A reset after the K-th client message ends the client's connection
    /// there, and later connections pass: migrator's first attempt fails, the
    /// second (the proxy's next connection) runs.
    #[test]
    fn a_reset_fault_cuts_one_connection_after_the_kth_message() {
        let db = TestDb::new(Engine::Pg);
        let dir = Dir::new(&[("1_one.up.sql", "CREATE TABLE one (id int);")]);
        // Message 1 is the startup packet, 2 the first query.
        let proxy = Proxy::start(
            &db,
            &[
                "--fault",
                "reset",
                "--direction",
                "c2s",
                "--after-messages",
                "2",
            ],
        );
        let url = proxy.url(&db);
        let args = ["up", "--database-url", &url, "--tls", "disable"];
        let first = Cmd::new(&args).env("MIGRATOR_PATH", dir.path()).run();
        assert_ne!(first.code, 0, "{}", first.all());
        let stats = proxy.settled();
        assert_eq!(stats["fault"]["fired"], true, "{stats}");
        assert_eq!(stats["fault"]["connection"], 0, "{stats}");
        assert!(!db.table_exists("one"));
        Cmd::new(&args)
            .env("MIGRATOR_PATH", dir.path())
            .run()
            .code(0);
        assert!(db.table_exists("one"));
    }
}
