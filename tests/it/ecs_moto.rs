//! A moto server of the test's own (ECS, CloudWatch Logs, EC2), and a few plain
//! JSON calls to set it up and look at it afterwards.
//!
//! Each test starts its own server on a free port (`tests/it/moto_ecs.py`, which
//! is moto plus the task fields moto does not model; see its docstring): moto's
//! state-manager transitions are global to a server, so tests sharing one would
//! steer each other's tasks. The server is killed when the test ends.
//!
//! Where `python3 -c 'import moto'` fails, the tests print why and pass, unless
//! `MIGRATOR_TEST_REQUIRE_MOTO` is set (CI sets it).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{Cmd, free_port};

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub port: u16,
    child: Child,
    log: tempfile::NamedTempFile,
}

fn moto_installed() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import moto.server, moto.ecs"])
        .output()
        .map_err(|e| format!("python3 does not run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "moto is not installed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Moto {
    /// A running server, or `None` (after saying why) where moto is missing.
    pub fn start() -> Option<Self> {
        if let Err(why) = moto_installed() {
            if std::env::var_os("MIGRATOR_TEST_REQUIRE_MOTO").is_some() {
                panic!("{why} (MIGRATOR_TEST_REQUIRE_MOTO is set)");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        // A free port can be taken between our check and moto's bind: try again.
        for _ in 0..3 {
            if let Some(moto) = Self::spawn() {
                return Some(moto);
            }
        }
        panic!("moto did not start on three ports");
    }

    fn spawn() -> Option<Self> {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/moto_ecs.py");
        let mut child = Command::new("python3")
            .args([script, "-H", "127.0.0.1", "-p", &port.to_string()])
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
        panic!("moto did not listen on port {port} within 60 s");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The binary, configured for this server (and nothing else of AWS).
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        Cmd::new(args)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// The server's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// One HTTP request; (status, body).
    fn http(&self, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
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
