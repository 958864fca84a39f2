//! The moto server: real AWS APIs (Secrets Manager, RDS, ECS, Route53, …) on
//! 127.0.0.1 for tests. One shared server per test process (tests use unique
//! names); it exits by itself when the test process does.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{Cmd, free_port};

pub struct Moto {
    pub port: u16,
    child: Child,
}

/// Runs moto's server in-process in Python and exits when its parent (the test
/// process) is gone, so no server outlives the tests.
const LAUNCHER: &str = "\
import os, sys, threading, time
from moto.server import main
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
main(['-H', '127.0.0.1', '-p', sys.argv[1]])
";

impl Moto {
    /// A server of this test's own (for tests that change global moto state).
    pub fn start() -> Moto {
        let port = free_port();
        let child = Command::new("python3")
            .args(["-c", LAUNCHER, &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (moto is installed with it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { port, child }
    }

    /// The server shared by this test process.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
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

    /// Runs Python with boto3 clients `sm`, `rds`, `ecs`, `logs`, `r53` bound to
    /// this server; returns stdout. Fails the test on an error.
    pub fn boto(&self, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             sm = boto3.client('secretsmanager', **kw)\n\
             rds = boto3.client('rds', **kw)\n\
             ecs = boto3.client('ecs', **kw)\n\
             logs = boto3.client('logs', **kw)\n\
             r53 = boto3.client('route53', **kw)\n",
            self.endpoint()
        );
        let out = Command::new("python3")
            .args(["-c", &format!("{prelude}{code}")])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "boto3 call failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stores a secret string.
    pub fn secret(&self, name: &str, value: &str) {
        self.boto(&format!(
            "sm.create_secret(Name={}, SecretString={})",
            py(name),
            py(value)
        ));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Python string literal.
pub fn py(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}
