//! A moto server (AWS APIs on 127.0.0.1) per test, and boto3 to seed and read it.
//!
//! `Moto::start()` runs `python3 -m moto.server` on a free port and waits for
//! it; dropping it stops the server. Where moto is not installed the caller
//! skips with a message, unless `MIGRATOR_TEST_REQUIRE_MOTO` is set (CI sets
//! it; `scripts/test` installs moto). Generic: nothing here knows a test.

#![allow(dead_code)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Cmd, free_port};

pub struct Moto {
    child: Child,
    pub port: u16,
}

/// Whether `python3 -m moto.server` and boto3 can be had here.
fn available() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Moto {
    /// A running server, or `None` (with a message) where moto is missing.
    pub fn start() -> Option<Moto> {
        if !available() {
            assert!(
                std::env::var_os("MIGRATOR_TEST_REQUIRE_MOTO").is_none(),
                "moto is required (MIGRATOR_TEST_REQUIRE_MOTO) but `python3 -m moto.server` \
                 cannot be imported: pip install 'moto[server]' boto3"
            );
            eprintln!("skipped: moto is not installed (pip install 'moto[server]' boto3)");
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 starts");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment the binary needs to reach this server.
    pub fn env(&self, cmd: Cmd) -> Cmd {
        cmd.env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// Runs Python with boto3 clients `rds`, `r53` and `sm` bound to this
    /// server; returns what it printed, trimmed. Panics on a Python error.
    pub fn py(&self, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             rds = boto3.client('rds', **kw)\n\
             r53 = boto3.client('route53', **kw)\n\
             sm = boto3.client('secretsmanager', **kw)\n",
            self.endpoint()
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{prelude}{code}"))
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "python failed:\n{code}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
