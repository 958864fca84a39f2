//! The one moto harness: real AWS APIs (Secrets Manager, RDS, Route53, ECS,
//! CloudWatch Logs, EC2) on 127.0.0.1 for the binary under test, made to behave
//! like AWS where the test asks for it.
//!
//! Every server runs moto with `tests/it/moto_like.py` loaded, which reads the
//! behaviour from `MOTO_LIKE` (a JSON object; see its docstring): throttling on
//! a share of the binary's calls (`moto_throttle.py`), ECS task timelines with
//! MISSING answers and slow transitions (`moto_ecs.py`, which also adds the task
//! fields moto does not model), and RDS/Route53 behaviour (`moto_rds.py`, when
//! present). Nothing configured: moto's own instant behaviour.
//!
//! - [`Moto::start_like`]: a server of the test's own with that behaviour.
//! - [`Moto::start`] / [`Moto::start_ecs`]: the same with nothing configured, for
//!   tests that change global moto state (rotate; moto's state-manager
//!   transitions, which the plain ECS tests steer, are global to a server).
//! - [`Moto::shared`]: one server for the whole test process, for tests that
//!   only create uniquely named things (connect).
//!
//! Every server runs with a watcher that ends it when the test process is gone,
//! and is killed when its `Moto` is dropped. [`Moto::env`] / [`Moto::aws_env`]
//! give the binary the endpoint, region and fake credentials; [`Moto::boto`]
//! seeds and reads the server with boto3; the ECS and Logs calls below speak
//! the JSON protocol directly; [`Moto::like_stats`] says what the harness did.
//!
//! Where python3 cannot import moto's server and boto3, every constructor
//! returns `None` after `common::unavailable(Component::Moto, ..)`: the test
//! skips, or fails where `MIGRATOR_TEST_REQUIRE_MOTO` says moto is required.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{Cmd, Component, free_port, unavailable};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub port: u16,
    child: Child,
    log: tempfile::NamedTempFile,
}

/// Runs moto's server in Python with `moto_like.py` (from the folder in the
/// second argument) loaded, and exits when its parent (the test process) is
/// gone, so that no server outlives the tests (the shared one is never dropped).
const LAUNCHER: &str = "\
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.path.insert(0, sys.argv[2])
import moto_like
from moto.server import main
main(['-H', '127.0.0.1', '-p', sys.argv[1]])
";

/// Whether python3 has moto's server (with its ECS models) and boto3; why not.
fn installed() -> Result<(), String> {
    static FOUND: OnceLock<Result<(), String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import moto.server, moto.ecs, boto3"])
                .output()
                .map_err(|e| format!("python3 does not run: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                let stderr = String::from_utf8_lossy(&out.stderr);
                Err(format!(
                    "moto is not installed (pip install 'moto[server]' boto3): {}",
                    stderr.trim().lines().last().unwrap_or_default()
                ))
            }
        })
        .clone()
}

impl Moto {
    /// A plain moto server of this test's own, or `None` (said) without moto.
    pub fn start() -> Option<Moto> {
        Self::launch(&json!({}))
    }

    /// A moto server of this test's own for the ECS tests, or `None` (said)
    /// without moto. The same as [`Self::start`]: the ECS shim is always loaded.
    pub fn start_ecs() -> Option<Moto> {
        Self::launch(&json!({}))
    }

    /// A moto server of this test's own that behaves as `like` says (the
    /// `MOTO_LIKE` object of `tests/it/moto_like.py`, e.g.
    /// `{"throttle": 0.2, "ecs": {"missing": 60}}`), or `None` (said) without moto.
    pub fn start_like(like: Value) -> Option<Moto> {
        assert!(like.is_object(), "MOTO_LIKE is a JSON object: {like}");
        Self::launch(&like)
    }

    /// The plain server shared by this test process, or `None` (said) without moto.
    pub fn shared() -> Option<&'static Moto> {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        if let Err(why) = installed() {
            unavailable(Component::Moto, &why);
            return None;
        }
        Some(SHARED.get_or_init(|| Self::launch(&json!({})).expect("moto is installed")))
    }

    fn launch(like: &Value) -> Option<Moto> {
        if let Err(why) = installed() {
            unavailable(Component::Moto, &why);
            return None;
        }
        // A free port can be taken between our check and moto's bind: try again.
        for _ in 0..3 {
            if let Some(moto) = Self::spawn(like) {
                return Some(moto);
            }
        }
        panic!("moto did not start on three ports");
    }

    /// A server on a free port; `None` when it exited before listening.
    fn spawn(like: &Value) -> Option<Moto> {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new("python3")
            .args([
                "-c",
                LAUNCHER,
                &port.to_string(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it"),
            ])
            .env("MOTO_LIKE", like.to_string())
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("python3 starts");
        // Importing moto takes seconds on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                eprintln!(
                    "moto exited early:\n{}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
                return None;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Moto { port, child, log });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "moto did not listen on port {port} within 60 s:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points an AWS client at this server (and nothing
    /// else of AWS): endpoint, region, fake credentials, no instance metadata.
    pub fn aws_env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
    }

    /// `cmd` with [`Self::aws_env`].
    pub fn env(&self, mut cmd: Cmd) -> Cmd {
        for (k, v) in self.aws_env() {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    /// The binary with `args`, configured for this server.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        self.env(Cmd::new(args))
    }

    /// What the harness counted of the binary's calls:
    /// `{"calls": {"ecs:DescribeTasks": 12, ..}, "throttled": {..}}`.
    pub fn like_stats(&self) -> Value {
        let (status, body) = self.get("/moto-like/stats");
        assert_eq!(status, 200, "/moto-like/stats: {body}");
        serde_json::from_str(&body).expect("stats are JSON")
    }

    /// How many of the binary's calls were refused with a throttling error.
    pub fn throttled(&self) -> u64 {
        let stats = self.like_stats();
        stats["throttled"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Runs Python with boto3 clients `sm`, `rds`, `r53`, `ecs` and `logs` (and
    /// `json`) bound to this server; returns what it printed, trimmed. Fails the
    /// test on a Python error.
    pub fn boto(&self, code: &str) -> String {
        let prelude = format!(
            "import boto3, json\n\
             kw = dict(endpoint_url='{}', region_name='{REGION}', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             sm = boto3.client('secretsmanager', **kw)\n\
             rds = boto3.client('rds', **kw)\n\
             r53 = boto3.client('route53', **kw)\n\
             ecs = boto3.client('ecs', **kw)\n\
             logs = boto3.client('logs', **kw)\n",
            self.endpoint()
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{prelude}{code}"))
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "boto3 call failed:\n{code}\n{}",
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

/// ECS, CloudWatch Logs and EC2 by plain JSON/query calls (no boto3 process per
/// call: the `ecs run` tests poll).
impl Moto {
    /// One POST request; (status, body).
    fn http(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        self.request("POST", path, headers, body)
    }

    /// One GET request; (status, body).
    fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[], "")
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, body.to_string())
    }

    /// An AWS JSON-protocol call, signed well enough for moto (which checks no
    /// signature but routes by the credential scope's service name).
    fn aws_json(&self, service: &str, target: &str, body: Value) -> Value {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let (status, text) = self.http(
            "/",
            &[
                ("Authorization", &auth),
                ("X-Amz-Target", target),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            &body.to_string(),
        );
        assert_eq!(status, 200, "{target}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub fn ecs(&self, action: &str, body: Value) -> Value {
        self.aws_json(
            "ecs",
            &format!("AmazonEC2ContainerServiceV20141113.{action}"),
            body,
        )
    }

    pub fn logs(&self, action: &str, body: Value) -> Value {
        self.aws_json("logs", &format!("Logs_20140328.{action}"), body)
    }

    /// Task status transitions (all tasks of this server): a task stays RUNNING
    /// until [`Self::stop_tasks_now`].
    pub fn hold_tasks_running(&self) {
        self.transition(json!({"progression": "manual", "times": 1_000_000}));
    }

    /// The next DescribeTasks shows every task STOPPED.
    pub fn stop_tasks_now(&self) {
        self.transition(json!({"progression": "immediate"}));
    }

    fn transition(&self, transition: Value) {
        let body = json!({"model_name": "ecs::task", "transition": transition});
        let (status, text) = self.http(
            "/moto-api/state-manager/set-transition",
            &[("Content-Type", "application/json")],
            &body.to_string(),
        );
        assert_eq!(status, 201, "set-transition: {text}");
    }

    pub fn create_cluster(&self, name: &str) {
        self.ecs("CreateCluster", json!({"clusterName": name}));
    }

    /// Registers a task definition; its ARN.
    pub fn register(&self, family: &str, containers: Value) -> String {
        let out = self.ecs(
            "RegisterTaskDefinition",
            json!({"family": family, "containerDefinitions": containers}),
        );
        out["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// An EC2 instance registered as a container instance of `cluster`.
    pub fn add_container_instance(&self, cluster: &str) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let (status, xml) = self.http(
            "/",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "Action=RunInstances&Version=2016-11-15&ImageId=ami-12c6146b&MinCount=1&MaxCount=1",
        );
        assert_eq!(status, 200, "RunInstances: {xml}");
        let id = xml
            .split("<instanceId>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("RunInstances names the instance");
        self.ecs(
            "RegisterContainerInstance",
            json!({
                "cluster": cluster,
                "instanceIdentityDocument": json!({"instanceId": id}).to_string(),
            }),
        );
    }

    pub fn task_arns(&self, cluster: &str) -> Vec<String> {
        self.ecs("ListTasks", json!({"cluster": cluster}))["taskArns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    }

    /// The ARN of the one task of `cluster`, once the binary has started it.
    pub fn wait_for_task(&self, cluster: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(arn) = self.task_arns(cluster).into_iter().next() {
                return arn;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no task was started on {cluster}");
    }

    pub fn describe_task(&self, cluster: &str, arn: &str) -> Value {
        self.ecs("DescribeTasks", json!({"cluster": cluster, "tasks": [arn]}))["tasks"][0].clone()
    }

    /// Writes `lines` to a log stream as the awslogs driver would.
    pub fn put_log_lines(&self, group: &str, stream: &str, lines: &[&str]) {
        let groups = self.logs("DescribeLogGroups", json!({"logGroupNamePrefix": group}));
        let exists = groups["logGroups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["logGroupName"] == group));
        if !exists {
            self.logs("CreateLogGroup", json!({"logGroupName": group}));
        }
        let streams = self.logs(
            "DescribeLogStreams",
            json!({"logGroupName": group, "logStreamNamePrefix": stream}),
        );
        let exists = streams["logStreams"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["logStreamName"] == stream));
        if !exists {
            self.logs(
                "CreateLogStream",
                json!({"logGroupName": group, "logStreamName": stream}),
            );
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let events: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| json!({"timestamp": now + i as i64, "message": line}))
            .collect();
        self.logs(
            "PutLogEvents",
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": events}),
        );
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
