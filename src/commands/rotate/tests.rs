//! The steps against a scripted AWS: the states and timings moto does not have
//! (a clone that takes a while, `backing-up`, instances and clusters that stay
//! `deleting`), tags that change between listing and acting, and dry runs.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use super::*;
use crate::aws::Clusters;
use crate::aws::rotate::{Call, Instance, Made, Record, RotateAws, Snapshot};
use crate::settings::Action;
use migrator_core::rotate::plan::{Cluster, DNS_TAG, Day, LIFECYCLE_TAG, Member, Prefix};

#[derive(Default)]
struct Fake {
    clusters: RefCell<Vec<Cluster>>,
    instances: RefCell<HashMap<String, Instance>>,
    /// Statuses a cluster shows on its next describes, then its own.
    cluster_script: RefCell<HashMap<String, VecDeque<String>>>,
    /// Statuses an instance shows on its next describes, then gone (if deleting).
    instance_script: RefCell<HashMap<String, VecDeque<String>>>,
    /// Describes a deleted cluster still answers (`deleting`) before it is gone.
    deleting_for: usize,
    /// Tags ListTagsForResource answers instead of the listed ones.
    fresh_tags: RefCell<HashMap<String, Vec<(String, String)>>>,
    record: RefCell<Option<String>>,
    made: RefCell<Vec<Call>>,
}

impl Fake {
    fn with(clusters: Vec<Cluster>) -> Self {
        let fake = Fake {
            clusters: RefCell::new(clusters.clone()),
            ..Fake::default()
        };
        for c in clusters {
            for m in c.members {
                fake.instances.borrow_mut().insert(
                    m.id.clone(),
                    Instance {
                        id: m.id,
                        status: "available".into(),
                        class: Some("db.r6g.large".into()),
                    },
                );
            }
        }
        fake
    }

    fn made(&self) -> Vec<String> {
        self.made.borrow().iter().map(|c| c.to_string()).collect()
    }
}

impl Clusters for Fake {
    async fn cluster(&self, id: &str) -> Result<Option<Cluster>> {
        let mut clusters = self.clusters.borrow_mut();
        let Some(i) = clusters.iter().position(|c| c.id == id) else {
            return Ok(None);
        };
        if let Some(next) = self
            .cluster_script
            .borrow_mut()
            .get_mut(id)
            .and_then(|q| q.pop_front())
        {
            if next == "gone" {
                clusters.remove(i);
                return Ok(None);
            }
            clusters[i].status = next;
        }
        Ok(Some(clusters[i].clone()))
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        let mut instances = self.instances.borrow_mut();
        if let Some(next) = self
            .instance_script
            .borrow_mut()
            .get_mut(id)
            .and_then(|q| q.pop_front())
            && let Some(i) = instances.get_mut(id)
        {
            i.status = next;
        }
        Ok(instances.get(id).cloned())
    }
}

impl RotateAws for Fake {
    async fn clusters(&self) -> Result<Vec<Cluster>> {
        Ok(self.clusters.borrow().clone())
    }

    async fn tags(&self, arn: &str) -> Result<Vec<(String, String)>> {
        if let Some(t) = self.fresh_tags.borrow().get(arn) {
            return Ok(t.clone());
        }
        Ok(self
            .clusters
            .borrow()
            .iter()
            .find(|c| c.arn == arn)
            .map(|c| c.tags.clone())
            .unwrap_or_default())
    }

    async fn latest_snapshot(&self, _cluster: &str) -> Result<Option<Snapshot>> {
        Ok(None)
    }

    async fn standalone(&self, _id: &str) -> Result<Option<Cluster>> {
        Ok(None)
    }

    async fn latest_instance_snapshot(&self, _id: &str) -> Result<Option<Snapshot>> {
        Ok(None)
    }

    async fn cname(&self, _zone: &str, _name: &str) -> Result<Option<Record>> {
        Ok(self.record.borrow().clone().map(|value| Record {
            value,
            ttl: Some(60),
        }))
    }

    async fn change_insync(&self, _id: &str) -> Result<bool> {
        Ok(true)
    }

    async fn secret_exists(&self, _id: &str) -> Result<bool> {
        Ok(true)
    }

    async fn call(&self, call: &Call) -> Result<Made> {
        self.made.borrow_mut().push(call.clone());
        let mut clusters = self.clusters.borrow_mut();
        match call {
            Call::AddTags { cluster, tags, .. } => {
                let c = clusters.iter_mut().find(|c| &c.id == cluster).unwrap();
                for (k, v) in tags {
                    c.tags.retain(|(key, _)| key != k);
                    c.tags.push((k.clone(), v.clone()));
                }
            }
            Call::CreateWriter { id, cluster, .. } => {
                let c = clusters.iter_mut().find(|c| &c.id == cluster).unwrap();
                assert_eq!(
                    c.status, "available",
                    "RDS refuses CreateDBInstance in a cluster that is not available"
                );
                self.instances.borrow_mut().insert(
                    id.clone(),
                    Instance {
                        id: id.clone(),
                        status: "creating".into(),
                        class: None,
                    },
                );
                c.members.push(Member {
                    id: id.clone(),
                    writer: true,
                });
            }
            Call::DeleteInstance { id, cluster } => {
                // Deleting for two describes, then gone from the cluster.
                let mut script = VecDeque::from(["deleting".to_string(), "deleting".to_string()]);
                script.push_back("gone".into());
                self.instance_script.borrow_mut().insert(id.clone(), script);
                let c = clusters.iter_mut().find(|c| &c.id == cluster).unwrap();
                c.members.retain(|m| &m.id != id);
                self.instances.borrow_mut().remove(id);
            }
            Call::DeleteCluster { id } => {
                let c = clusters.iter_mut().find(|c| &c.id == id).unwrap();
                assert!(
                    c.members.is_empty(),
                    "RDS refuses to delete a cluster with members"
                );
                c.status = "deleting".into();
                let mut script: VecDeque<String> =
                    std::iter::repeat_n("deleting".to_string(), self.deleting_for).collect();
                script.push_back("gone".into());
                self.cluster_script.borrow_mut().insert(id.clone(), script);
            }
            Call::UpsertCname { value, .. } => *self.record.borrow_mut() = Some(value.clone()),
            _ => {}
        }
        Ok(Made::default())
    }
}

fn cluster(id: &str, lifecycle: Option<&str>) -> Cluster {
    Cluster {
        id: id.into(),
        arn: format!("arn:aws:rds:us-east-1:1:cluster:{id}"),
        status: "available".into(),
        tags: lifecycle
            .map(|l| vec![(LIFECYCLE_TAG.to_string(), l.to_string())])
            .unwrap_or_default(),
        endpoint: Some(format!("{id}.cluster-x.us-east-1.rds.amazonaws.com")),
        port: Some(5432),
        engine: Some("aurora-postgresql".into()),
        members: vec![Member {
            id: format!("{id}-writer"),
            writer: true,
        }],
        ..Cluster::default()
    }
}

fn parse(args: &[&str]) -> (Settings, RotateSettings) {
    let mut full = vec!["migrator", "rotate"];
    full.extend_from_slice(args);
    let (settings, action) = crate::cli::parse_from(full).unwrap();
    let Action::Rotate { mut rotate, .. } = action else {
        panic!("a rotate action")
    };
    rotate.poll = Duration::from_millis(1);
    (settings, *rotate)
}

struct Env {
    settings: Settings,
    rotate: RotateSettings,
    interrupt: Interrupt,
}

impl Env {
    fn new(args: &[&str]) -> Self {
        let (settings, rotate) = parse(args);
        Env {
            settings,
            rotate,
            interrupt: Interrupt::default(),
        }
    }

    fn step(&self, which: Which) -> steps::Step {
        steps::Step::new(&self.rotate, which).expect("the step's flags are given")
    }

    fn rotation<'a>(&'a self, aws: &'a Fake) -> Rotation<'a, Fake> {
        let day = self.rotate.today.unwrap();
        Rotation {
            aws,
            settings: &self.settings,
            rotate: &self.rotate,
            prefix: Prefix::new(&self.rotate.prefix).unwrap(),
            day,
            now: day.midnight(),
            interrupt: &self.interrupt,
            calls: Vec::new(),
            assumed: None,
            migrate: None,
            alone: true,
        }
    }
}

const TODAY: &str = "2026-11-22";

/// A server that answers PostgreSQL's SSLRequest with `N`, as one without TLS does.
async fn fake_postgres() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 8];
            if s.read_exact(&mut buf).await.is_ok() {
                let _ = s.write_all(b"N").await;
            }
        }
    });
    port
}

#[tokio::test]
async fn ready_waits_through_the_clones_states_then_tags_it() {
    let port = fake_postgres().await.to_string();
    let env = Env::new(&[
        "ready",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--db-host",
        "127.0.0.1",
        "--db-port",
        &port,
    ]);
    let fake = Fake::with(vec![cluster("app-dev-20261122", Some("created"))]);
    fake.cluster_script.borrow_mut().insert(
        "app-dev-20261122".into(),
        ["creating", "creating", "backing-up", "available"]
            .map(String::from)
            .into(),
    );
    fake.instance_script.borrow_mut().insert(
        "app-dev-20261122-writer".into(),
        ["creating", "configuring-enhanced-monitoring", "available"]
            .map(String::from)
            .into(),
    );
    let mut r = env.rotation(&fake);
    let (outcome, message) = r.step(&env.step(Which::Ready)).await.unwrap();
    assert_eq!(outcome, StepOutcome::Done, "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert_eq!(
        fake.made(),
        ["rds AddTagsToResource ResourceName=app-dev-20261122 Tags=lifecycle=ready"]
    );
    // Again: nothing to do, nothing called.
    let mut again = env.rotation(&fake);
    let (outcome, _) = again.step(&env.step(Which::Ready)).await.unwrap();
    assert_eq!(outcome, StepOutcome::NothingToDo);
    assert_eq!(fake.made().len(), 1);
}

/// `clone` ended before the restored cluster was available: `ready` creates
/// the writer once it is, never before.
#[tokio::test]
async fn ready_creates_a_missing_writer_once_the_cluster_is_available() {
    let port = fake_postgres().await.to_string();
    let env = Env::new(&[
        "ready",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--instance-class",
        "db.t4g.medium",
        "--db-host",
        "127.0.0.1",
        "--db-port",
        &port,
    ]);
    let mut clone = cluster("app-dev-20261122", Some("created"));
    clone.members.clear();
    clone.status = "creating".into();
    let fake = Fake::with(vec![clone]);
    fake.cluster_script.borrow_mut().insert(
        "app-dev-20261122".into(),
        ["creating", "creating", "available"]
            .map(String::from)
            .into(),
    );
    fake.instance_script.borrow_mut().insert(
        "app-dev-20261122-writer".into(),
        ["creating", "available"].map(String::from).into(),
    );
    let mut r = env.rotation(&fake);
    let (outcome, message) = r.step(&env.step(Which::Ready)).await.unwrap();
    assert_eq!(outcome, StepOutcome::Done, "{message}");
    assert!(message.contains("created its missing writer"), "{message}");
    assert_eq!(
        fake.made(),
        [
            "rds CreateDBInstance DBInstanceIdentifier=app-dev-20261122-writer \
             DBClusterIdentifier=app-dev-20261122 Engine=aurora-postgresql \
             DBInstanceClass=db.t4g.medium",
            "rds AddTagsToResource ResourceName=app-dev-20261122 Tags=lifecycle=ready"
        ]
    );
}

#[tokio::test]
async fn ready_gives_up_after_the_timeout_with_exit_3() {
    let env = Env::new(&[
        "ready",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--timeout",
        "0",
    ]);
    let mut c = cluster("app-dev-20261122", Some("created"));
    c.status = "creating".into();
    let fake = Fake::with(vec![c]);
    let err = env
        .rotation(&fake)
        .step(&env.step(Which::Ready))
        .await
        .unwrap_err();
    assert_eq!(err.exit_status().code(), 3, "{err}");
    assert!(err.to_string().contains("cluster creating"), "{err}");
    assert!(fake.made().is_empty());
}

#[tokio::test]
async fn clean_deletes_instances_first_and_waits_for_the_cluster_to_go() {
    let env = Env::new(&["clean", "--name-prefix", "app-dev-", "--today", TODAY]);
    let fake = Fake {
        deleting_for: 3,
        ..Fake::with(vec![
            cluster("app-dev-20261121", Some("aborted")),
            cluster("app-dev-20261122", Some("connected")),
            cluster("prod-db", Some("aborted")),
        ])
    };
    let (outcome, message) = env
        .rotation(&fake)
        .step(&env.step(Which::Clean))
        .await
        .unwrap();
    assert_eq!(outcome, StepOutcome::Done);
    assert_eq!(
        message, "deleted `app-dev-20261121` (lifecycle=aborted)",
        "{message}"
    );
    assert_eq!(
        fake.made(),
        [
            "rds DeleteDBInstance DBInstanceIdentifier=app-dev-20261121-writer",
            "rds DeleteDBCluster DBClusterIdentifier=app-dev-20261121 SkipFinalSnapshot=true",
        ]
    );
    let left: Vec<_> = fake
        .clusters
        .borrow()
        .iter()
        .map(|c| c.id.clone())
        .collect();
    assert_eq!(left, ["app-dev-20261122", "prod-db"]);
    let (outcome, _) = env
        .rotation(&fake)
        .step(&env.step(Which::Clean))
        .await
        .unwrap();
    assert_eq!(outcome, StepOutcome::NothingToDo);
}

#[tokio::test]
async fn clean_resumes_a_deletion_already_under_way() {
    let env = Env::new(&["clean", "--name-prefix", "app-dev-", "--today", TODAY]);
    let mut c = cluster("app-dev-20261120", Some("aborted"));
    c.status = "deleting".into();
    c.members.clear();
    let fake = Fake::with(vec![c]);
    fake.cluster_script.borrow_mut().insert(
        "app-dev-20261120".into(),
        ["deleting", "gone"].map(String::from).into(),
    );
    env.rotation(&fake)
        .step(&env.step(Which::Clean))
        .await
        .unwrap();
    assert!(fake.made().is_empty(), "{:?}", fake.made());
    assert!(fake.clusters.borrow().is_empty());
}

#[tokio::test]
async fn a_cluster_whose_tag_changed_since_listing_is_not_touched() {
    let env = Env::new(&["clean", "--name-prefix", "app-dev-", "--today", TODAY]);
    let fake = Fake::with(vec![cluster("app-dev-20261121", Some("aborted"))]);
    // Someone took it over between DescribeDBClusters and the delete.
    fake.fresh_tags.borrow_mut().insert(
        "arn:aws:rds:us-east-1:1:cluster:app-dev-20261121".into(),
        vec![("owner".into(), "qa-team".into())],
    );
    let err = env
        .rotation(&fake)
        .step(&env.step(Which::Clean))
        .await
        .unwrap_err();
    assert_eq!(err.exit_status().code(), 7, "{err}");
    assert!(err.to_string().contains("no `lifecycle` tag"), "{err}");
    assert!(fake.made().is_empty());
}

#[tokio::test]
async fn dry_runs_make_no_changing_call() {
    let fake = Fake::with(vec![
        cluster("app-dev-20261121", Some("aborted")),
        cluster("app-dev-20261122", Some("migrated")),
        {
            let mut c = cluster("app-dev-20261120", Some("connected"));
            c.tags.push((DNS_TAG.into(), "db.dev.internal".into()));
            c
        },
    ]);
    let env = Env::new(&[
        "connect",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--dns-name",
        "db.dev.internal",
        "--hosted-zone-id",
        "Z1",
        "--dry-run",
    ]);
    let mut r = env.rotation(&fake);
    let (outcome, _) = r.step(&env.step(Which::Connect)).await.unwrap();
    assert_eq!(outcome, StepOutcome::DryRun);
    assert_eq!(r.calls.len(), 3, "{:?}", r.calls);
    assert!(
        r.calls[0].starts_with("route53 ChangeResourceRecordSets"),
        "{:?}",
        r.calls
    );
    let (outcome, message) = r.step(&env.step(Which::Clean)).await.unwrap();
    assert_eq!(outcome, StepOutcome::DryRun);
    assert!(
        message.contains("would delete `app-dev-20261121`"),
        "{message}"
    );
    assert!(fake.made().is_empty(), "{:?}", fake.made());
}

#[tokio::test]
async fn clone_finishes_a_clone_left_without_its_writer() {
    let env = Env::new(&[
        "clone",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--source-cluster",
        "prod-db",
    ]);
    let mut half = cluster("app-dev-20261122", Some("created"));
    half.members.clear();
    let fake = Fake::with(vec![cluster("prod-db", None), half]);
    let (outcome, message) = env
        .rotation(&fake)
        .step(&env.step(Which::Clone))
        .await
        .unwrap();
    assert_eq!(outcome, StepOutcome::Done, "{message}");
    assert_eq!(
        fake.made(),
        [
            "rds CreateDBInstance DBInstanceIdentifier=app-dev-20261122-writer \
          DBClusterIdentifier=app-dev-20261122 Engine=aurora-postgresql \
          DBInstanceClass=db.r6g.large"
        ]
    );
    let (outcome, _) = env
        .rotation(&fake)
        .step(&env.step(Which::Clone))
        .await
        .unwrap();
    assert_eq!(outcome, StepOutcome::NothingToDo);
}

#[tokio::test]
async fn steps_out_of_order_are_refused_with_exit_7() {
    let env = Env::new(&[
        "scrub",
        "--name-prefix",
        "app-dev-",
        "--today",
        TODAY,
        "--master-secret",
        "s",
        "--scrub-dir",
        "/nonexistent",
    ]);
    let fake = Fake::with(vec![cluster("app-dev-20261122", Some("created"))]);
    let err = env
        .rotation(&fake)
        .step(&env.step(Which::Scrub))
        .await
        .unwrap_err();
    assert_eq!(err.exit_status().code(), 7, "{err}");
    assert!(
        err.to_string()
            .contains("run `migrator rotate ready` first"),
        "{err}"
    );
    let none = Fake::default();
    let err = env
        .rotation(&none)
        .step(&env.step(Which::Scrub))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(Day::parse(TODAY).unwrap().to_compact(), "20261122");
}

#[test]
fn passwords_are_long_unbiased_and_plain() {
    let all: Vec<u8> = (0..=255).collect();
    let chars = password_chars(&all);
    assert_eq!(chars.len(), 248, "bytes 248..=255 are dropped");
    assert!(chars.chars().all(|c| c.is_ascii_alphanumeric()));
    let a = new_password().unwrap();
    let b = new_password().unwrap();
    assert_eq!(a.expose().len(), 32);
    assert_ne!(a.expose(), b.expose());
    assert_eq!(format!("{a}"), "***");
}
