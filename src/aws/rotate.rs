//! The AWS edge of the clone rotation: RDS, Route53 and Secrets Manager.
//!
//! [`RotateAws`] is the whole contract: reads (clusters, instances, tags, the
//! latest automated snapshot, a CNAME, whether a secret exists) and one entry
//! for everything that changes something, [`RotateAws::call`], which takes a
//! [`Call`]. A call is plain data that prints as the AWS operation and its key
//! parameters, so a dry run prints exactly what a real run would send. Every
//! list call follows its markers to the end (the SDK's paginators; [`all_pages`]
//! where it has none).
//!
//! This module decides nothing and never checks whether a cluster may be
//! touched: the steps do that (`plan::may_touch`) before handing it a call. It
//! never prints a secret value: [`Secret`] shows as `***`.

use std::fmt;
use std::future::Future;

use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, Tag};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::operation::BuildError;

use crate::aws::{Clusters, Sdk, sdk_error};
use crate::settings::Placement;
use migrator_core::error::{Error, Result};

use migrator_core::rotate::plan::{Cluster, Member};

/// A value never shown: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it with `migrator_core::redact` first.
    pub fn new(value: String) -> Self {
        migrator_core::redact::register(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(migrator_core::redact::MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(migrator_core::redact::MASK)
    }
}

/// One AWS operation that changes something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// RDS RestoreDBClusterToPointInTime, copy-on-write, latest restorable time.
    RestoreToPointInTime {
        id: String,
        source: String,
        placement: Placement,
        tags: Vec<(String, String)>,
    },
    /// RDS RestoreDBClusterFromSnapshot.
    RestoreFromSnapshot {
        id: String,
        snapshot: String,
        engine: String,
        engine_version: Option<String>,
        placement: Placement,
        tags: Vec<(String, String)>,
    },
    /// RDS RestoreDBInstanceFromDBSnapshot: a plain RDS instance's clone.
    RestoreInstanceFromSnapshot {
        id: String,
        snapshot: String,
        class: String,
        subnet_group: Option<String>,
        security_groups: Vec<String>,
        parameter_group: Option<String>,
        tags: Vec<(String, String)>,
    },
    /// RDS CreateDBInstance, the clone's writer.
    CreateWriter {
        id: String,
        cluster: String,
        engine: String,
        class: String,
    },
    /// RDS AddTagsToResource on a cluster (or a plain instance: `instance`).
    AddTags {
        cluster: String,
        arn: String,
        tags: Vec<(String, String)>,
        instance: bool,
    },
    /// RDS ModifyDBCluster (ModifyDBInstance for a plain instance): a new
    /// master password, applied immediately.
    ResetMasterPassword {
        cluster: String,
        password: Secret,
        instance: bool,
    },
    /// Secrets Manager CreateSecret (`create`) or PutSecretValue.
    StoreSecret {
        secret_id: String,
        value: Secret,
        create: bool,
    },
    /// Route53 ChangeResourceRecordSets: UPSERT a CNAME.
    UpsertCname {
        zone: String,
        name: String,
        value: String,
        ttl: i64,
    },
    /// RDS DeleteDBInstance, a member of `cluster`.
    DeleteInstance { id: String, cluster: String },
    /// RDS DeleteDBCluster, without a final snapshot.
    DeleteCluster { id: String },
    /// RDS DeleteDBInstance of a plain instance (a clone), without a final
    /// snapshot and with its automated backups.
    DeleteStandalone { id: String },
}

impl Call {
    /// The existing cluster this call changes: the one the safety rule is
    /// checked on, on fresh tags, right before the call.
    pub fn cluster(&self) -> Option<&str> {
        self.guarded().map(|(id, _)| id)
    }

    /// The existing cluster, or plain instance (`true`), this call changes.
    pub fn guarded(&self) -> Option<(&str, bool)> {
        match self {
            Call::CreateWriter { cluster, .. } | Call::DeleteInstance { cluster, .. } => {
                Some((cluster, false))
            }
            Call::AddTags {
                cluster, instance, ..
            }
            | Call::ResetMasterPassword {
                cluster, instance, ..
            } => Some((cluster, *instance)),
            Call::DeleteCluster { id } => Some((id, false)),
            Call::DeleteStandalone { id } => Some((id, true)),
            Call::RestoreToPointInTime { .. }
            | Call::RestoreFromSnapshot { .. }
            | Call::RestoreInstanceFromSnapshot { .. }
            | Call::StoreSecret { .. }
            | Call::UpsertCname { .. } => None,
        }
    }
}

fn tags_text(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn placement_text(p: &Placement) -> String {
    let mut out = String::new();
    if let Some(s) = &p.subnet_group {
        out.push_str(&format!(" DBSubnetGroupName={s}"));
    }
    if !p.security_groups.is_empty() {
        out.push_str(&format!(
            " VpcSecurityGroupIds={}",
            p.security_groups.join(",")
        ));
    }
    if let Some(g) = &p.parameter_group {
        out.push_str(&format!(" DBClusterParameterGroupName={g}"));
    }
    out
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::RestoreToPointInTime {
                id,
                source,
                placement,
                tags,
            } => write!(
                f,
                "rds RestoreDBClusterToPointInTime DBClusterIdentifier={id} \
                 SourceDBClusterIdentifier={source} RestoreType=copy-on-write \
                 UseLatestRestorableTime=true{} Tags={}",
                placement_text(placement),
                tags_text(tags)
            ),
            Call::RestoreFromSnapshot {
                id,
                snapshot,
                engine,
                engine_version,
                placement,
                tags,
            } => write!(
                f,
                "rds RestoreDBClusterFromSnapshot DBClusterIdentifier={id} \
                 SnapshotIdentifier={snapshot} Engine={engine}{}{} Tags={}",
                engine_version
                    .as_deref()
                    .map(|v| format!(" EngineVersion={v}"))
                    .unwrap_or_default(),
                placement_text(placement),
                tags_text(tags)
            ),
            Call::RestoreInstanceFromSnapshot {
                id,
                snapshot,
                class,
                subnet_group,
                security_groups,
                parameter_group,
                tags,
            } => write!(
                f,
                "rds RestoreDBInstanceFromDBSnapshot DBInstanceIdentifier={id} \
                 DBSnapshotIdentifier={snapshot} DBInstanceClass={class}{}{}{} Tags={}",
                subnet_group
                    .as_deref()
                    .map(|g| format!(" DBSubnetGroupName={g}"))
                    .unwrap_or_default(),
                if security_groups.is_empty() {
                    String::new()
                } else {
                    format!(" VpcSecurityGroupIds={}", security_groups.join(","))
                },
                parameter_group
                    .as_deref()
                    .map(|g| format!(" DBParameterGroupName={g}"))
                    .unwrap_or_default(),
                tags_text(tags)
            ),
            Call::CreateWriter {
                id,
                cluster,
                engine,
                class,
            } => write!(
                f,
                "rds CreateDBInstance DBInstanceIdentifier={id} DBClusterIdentifier={cluster} \
                 Engine={engine} DBInstanceClass={class}"
            ),
            Call::AddTags { cluster, tags, .. } => write!(
                f,
                "rds AddTagsToResource ResourceName={cluster} Tags={}",
                tags_text(tags)
            ),
            Call::ResetMasterPassword {
                cluster,
                password,
                instance: false,
            } => write!(
                f,
                "rds ModifyDBCluster DBClusterIdentifier={cluster} MasterUserPassword={password} \
                 ApplyImmediately=true"
            ),
            Call::ResetMasterPassword {
                cluster, password, ..
            } => write!(
                f,
                "rds ModifyDBInstance DBInstanceIdentifier={cluster} MasterUserPassword={password} \
                 ApplyImmediately=true"
            ),
            Call::StoreSecret {
                secret_id,
                value,
                create: true,
            } => write!(
                f,
                "secretsmanager CreateSecret Name={secret_id} SecretString={value}"
            ),
            Call::StoreSecret {
                secret_id, value, ..
            } => write!(
                f,
                "secretsmanager PutSecretValue SecretId={secret_id} SecretString={value}"
            ),
            Call::UpsertCname {
                zone,
                name,
                value,
                ttl,
            } => write!(
                f,
                "route53 ChangeResourceRecordSets HostedZoneId={zone} Action=UPSERT Name={name} \
                 Type=CNAME TTL={ttl} Value={value}"
            ),
            Call::DeleteInstance { id, .. } => {
                write!(f, "rds DeleteDBInstance DBInstanceIdentifier={id}")
            }
            Call::DeleteCluster { id } => write!(
                f,
                "rds DeleteDBCluster DBClusterIdentifier={id} SkipFinalSnapshot=true"
            ),
            Call::DeleteStandalone { id } => write!(
                f,
                "rds DeleteDBInstance DBInstanceIdentifier={id} SkipFinalSnapshot=true \
                 DeleteAutomatedBackups=true"
            ),
        }
    }
}

/// A DB instance, as DescribeDBInstances tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub status: String,
    pub class: Option<String>,
}

/// An automated cluster snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub arn: Option<String>,
    pub created: Option<i64>,
    pub status: String,
}

/// What a changing call answered that a step waits on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    /// Route53's change (`/change/…`), to follow with GetChange until INSYNC.
    pub change_id: Option<String>,
    /// ModifyDBCluster/ModifyDBInstance showed the new master password pending.
    pub password_pending: bool,
}

/// A CNAME record: its value and TTL (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: String,
    pub ttl: Option<i64>,
}

/// What the rotation asks of AWS.
#[allow(async_fn_in_trait)]
pub trait RotateAws: Clusters {
    /// Every cluster of the account and region (DescribeDBClusters, all pages),
    /// and every plain instance (DescribeDBInstances, those in no cluster), in
    /// the one model.
    async fn clusters(&self) -> Result<Vec<Cluster>>;
    /// The tags of a cluster, read afresh (ListTagsForResource).
    async fn tags(&self, arn: &str) -> Result<Vec<(String, String)>>;
    /// The newest available automated snapshot of `cluster` (all pages).
    async fn latest_snapshot(&self, cluster: &str) -> Result<Option<Snapshot>>;
    /// A plain RDS instance (one in no cluster), in the cluster model;
    /// `None` when RDS does not know it or it belongs to a cluster.
    async fn standalone(&self, id: &str) -> Result<Option<Cluster>>;
    /// The newest available automated snapshot of the plain instance `id`.
    async fn latest_instance_snapshot(&self, id: &str) -> Result<Option<Snapshot>>;
    /// The CNAME `name` in `zone`, if there is one (all pages).
    async fn cname(&self, zone: &str, name: &str) -> Result<Option<Record>>;
    /// Whether a Route53 change is INSYNC (GetChange).
    async fn change_insync(&self, id: &str) -> Result<bool>;
    /// Whether the secret exists (DescribeSecret).
    async fn secret_exists(&self, id: &str) -> Result<bool>;
    /// Makes one changing call.
    async fn call(&self, call: &Call) -> Result<Made>;
}

/// Follows a list operation's markers to the end. `fetch` gets the marker of
/// the page to read (`None` first) and returns its items and the next marker.
/// A marker that comes back twice is an error, not an endless loop.
///
/// Only for ListResourceRecordSets: the SDK has no paginator for it (its
/// marker is three fields, and the search stops once past the name). The RDS
/// listings use the SDK's paginators.
pub async fn all_pages<T, M, F, Fut>(what: &str, mut fetch: F) -> Result<Vec<T>>
where
    M: Clone + PartialEq + fmt::Debug,
    F: FnMut(Option<M>) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<M>)>>,
{
    let mut out = Vec::new();
    let mut seen: Vec<M> = Vec::new();
    let mut marker = None;
    loop {
        let (items, next) = fetch(marker.take()).await?;
        out.extend(items);
        match next {
            None => return Ok(out),
            Some(m) if seen.contains(&m) => {
                return Err(Error::usage(format!(
                    "{what}: AWS returned the marker {m:?} twice; stopping instead of looping"
                )));
            }
            Some(m) => {
                seen.push(m.clone());
                marker = Some(m);
            }
        }
    }
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
        .collect()
}

fn sdk_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// A cluster from DescribeDBClusters' answer.
pub fn cluster_from(c: &DbCluster) -> Cluster {
    Cluster {
        id: c.db_cluster_identifier().unwrap_or_default().to_string(),
        arn: c.db_cluster_arn().unwrap_or_default().to_string(),
        status: c.status().unwrap_or("unknown").to_string(),
        tags: pairs(c.tag_list()),
        created: c.cluster_create_time().map(|t| t.secs()),
        endpoint: c.endpoint().map(str::to_string),
        port: c.port().and_then(|p| u16::try_from(p).ok()),
        engine: c.engine().map(str::to_string),
        engine_version: c.engine_version().map(str::to_string),
        database_name: c.database_name().map(str::to_string),
        master_username: c.master_username().map(str::to_string),
        members: c
            .db_cluster_members()
            .iter()
            .filter_map(|m| {
                Some(Member {
                    id: m.db_instance_identifier()?.to_string(),
                    writer: m.is_cluster_writer() == Some(true),
                })
            })
            .collect(),
        clone_group_id: c.clone_group_id().map(str::to_string),
        subnet_group: c.db_subnet_group().map(str::to_string),
        security_groups: c
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        parameter_group: c.db_cluster_parameter_group().map(str::to_string),
        password_pending: c
            .pending_modified_values()
            .is_some_and(|p| p.master_user_password().is_some()),
        instance: false,
    }
}

/// A plain instance from DescribeDBInstances' answer; `None` for a member of
/// a cluster.
pub fn instance_from(i: &aws_sdk_rds::types::DbInstance) -> Option<Cluster> {
    if i.db_cluster_identifier().is_some() {
        return None;
    }
    Some(Cluster {
        id: i.db_instance_identifier()?.to_string(),
        arn: i.db_instance_arn().unwrap_or_default().to_string(),
        status: i.db_instance_status().unwrap_or("unknown").to_string(),
        tags: pairs(i.tag_list()),
        created: i.instance_create_time().map(|t| t.secs()),
        endpoint: i.endpoint().and_then(|e| e.address()).map(str::to_string),
        port: i
            .endpoint()
            .and_then(|e| e.port())
            .and_then(|p| u16::try_from(p).ok()),
        engine: i.engine().map(str::to_string),
        engine_version: i.engine_version().map(str::to_string),
        database_name: i.db_name().map(str::to_string),
        master_username: i.master_username().map(str::to_string),
        members: Vec::new(),
        clone_group_id: None,
        subnet_group: i
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        security_groups: i
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
            .collect(),
        parameter_group: i
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_string),
        password_pending: i
            .pending_modified_values()
            .is_some_and(|p| p.master_user_password().is_some()),
        instance: true,
    })
}

/// An automated snapshot from DescribeDBClusterSnapshots' answer.
pub fn snapshot_from(s: &DbClusterSnapshot) -> Option<Snapshot> {
    Some(Snapshot {
        id: s.db_cluster_snapshot_identifier()?.to_string(),
        arn: s.db_cluster_snapshot_arn().map(str::to_string),
        created: s.snapshot_create_time().map(|t| t.secs()),
        status: s.status().unwrap_or("unknown").to_string(),
    })
}

/// The newest available snapshot.
pub fn newest(snapshots: Vec<Snapshot>) -> Option<Snapshot> {
    snapshots
        .into_iter()
        .filter(|s| s.status == "available")
        .max_by_key(|s| (s.created, s.id.clone()))
}

/// Where ListResourceRecordSets goes on: name, type, set identifier.
pub type RecordMarker = (String, Option<String>, Option<String>);

/// One page of ListResourceRecordSets started at `name`: the CNAME values of
/// `name` on it, and the next marker while the listing is still at `name`
/// (records are sorted by name, so a page past it ends the search).
pub fn records_page(
    out: &aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput,
    name: &str,
) -> (Vec<Record>, Option<RecordMarker>) {
    let same = |n: &str| migrator_core::rotate::plan::same_host(n, name);
    let values = out
        .resource_record_sets()
        .iter()
        .filter(|r| same(r.name()) && *r.r#type() == RrType::Cname)
        .flat_map(|r| {
            r.resource_records().iter().map(|v| Record {
                value: v.value().to_string(),
                ttl: r.ttl(),
            })
        })
        .collect();
    let next = match (out.is_truncated(), out.next_record_name()) {
        (true, Some(n)) if same(n) => Some((
            n.to_string(),
            out.next_record_type().map(|t| t.as_str().to_string()),
            out.next_record_identifier().map(str::to_string),
        )),
        _ => None,
    };
    (values, next)
}

impl Sdk {
    fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config)
    }
}

impl Clusters for Sdk {
    async fn cluster(&self, id: &str) -> Result<Option<Cluster>> {
        let result = self
            .rds()
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .db_clusters()
                .iter()
                .map(cluster_from)
                .find(|c| c.id == id)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&format!("describing RDS cluster `{id}`"), e)),
        }
    }

    async fn instance(&self, id: &str) -> Result<Option<Instance>> {
        let result = self
            .rds()
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.db_instances().first().map(|i| Instance {
                id: i.db_instance_identifier().unwrap_or(id).to_string(),
                status: i.db_instance_status().unwrap_or("unknown").to_string(),
                class: i.db_instance_class().map(str::to_string),
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&format!("describing RDS instance `{id}`"), e)),
        }
    }
}

/// The clone's placement and tags on a restore request. The two restores
/// Sends one request; its error names the call (`what`).
macro_rules! send {
    ($request:expr, $what:expr) => {
        $request.send().await.map_err(|e| sdk_error($what, e))?
    };
}

/// (point in time, snapshot) are distinct SDK builder types with the same setters.
macro_rules! placed {
    ($request:expr, $placement:expr, $tags:expr) => {
        $request
            .set_db_subnet_group_name($placement.subnet_group.clone())
            .set_vpc_security_group_ids(
                (!$placement.security_groups.is_empty())
                    .then(|| $placement.security_groups.clone()),
            )
            .set_db_cluster_parameter_group_name($placement.parameter_group.clone())
            .set_tags(Some(sdk_tags($tags)))
    };
}

impl RotateAws for Sdk {
    async fn clusters(&self) -> Result<Vec<Cluster>> {
        let clusters: Vec<_> = self
            .rds()
            .describe_db_clusters()
            .into_paginator()
            .page_size(100)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("listing RDS clusters", e))?;
        let instances: Vec<_> = self
            .rds()
            .describe_db_instances()
            .into_paginator()
            .page_size(100)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("listing RDS instances", e))?;
        Ok(clusters
            .iter()
            .map(cluster_from)
            .chain(instances.iter().filter_map(instance_from))
            .collect())
    }

    async fn standalone(&self, id: &str) -> Result<Option<Cluster>> {
        let result = self
            .rds()
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out
                .db_instances()
                .iter()
                .filter_map(instance_from)
                .find(|c| c.id == id)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&format!("describing RDS instance `{id}`"), e)),
        }
    }

    async fn latest_instance_snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        let all: Vec<_> = self
            .rds()
            .describe_db_snapshots()
            .db_instance_identifier(id)
            .snapshot_type("automated")
            .into_paginator()
            .page_size(100)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error(&format!("listing the automated snapshots of `{id}`"), e))?;
        Ok(newest(
            all.iter()
                .filter_map(|s| {
                    Some(Snapshot {
                        id: s.db_snapshot_identifier()?.to_string(),
                        arn: s.db_snapshot_arn().map(str::to_string),
                        created: s.snapshot_create_time().map(|t| t.secs()),
                        status: s.status().unwrap_or("unknown").to_string(),
                    })
                })
                .collect(),
        ))
    }

    async fn tags(&self, arn: &str) -> Result<Vec<(String, String)>> {
        let out = self
            .rds()
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("listing the tags of `{arn}`"), e))?;
        Ok(pairs(out.tag_list()))
    }

    async fn latest_snapshot(&self, cluster: &str) -> Result<Option<Snapshot>> {
        let all: Vec<_> = self
            .rds()
            .describe_db_cluster_snapshots()
            .db_cluster_identifier(cluster)
            .snapshot_type("automated")
            .into_paginator()
            .page_size(100)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| {
                sdk_error(
                    &format!("listing the automated snapshots of `{cluster}`"),
                    e,
                )
            })?;
        Ok(newest(all.iter().filter_map(snapshot_from).collect()))
    }

    async fn cname(&self, zone: &str, name: &str) -> Result<Option<Record>> {
        let client = aws_sdk_route53::Client::new(&self.config);
        let values = all_pages("ListResourceRecordSets", |marker: Option<RecordMarker>| {
            let (start, kind, ident) =
                marker.unwrap_or_else(|| (name.to_string(), Some("CNAME".to_string()), None));
            let request = client
                .list_resource_record_sets()
                .hosted_zone_id(zone)
                .start_record_name(start)
                .set_start_record_type(kind.map(|k| RrType::from(k.as_str())))
                .set_start_record_identifier(ident)
                .max_items(100);
            async move {
                let out = request.send().await.map_err(|e| {
                    sdk_error(&format!("reading `{name}` in hosted zone `{zone}`"), e)
                })?;
                Ok(records_page(&out, name))
            }
        })
        .await?;
        Ok(values.into_iter().next())
    }

    async fn change_insync(&self, id: &str) -> Result<bool> {
        let out = aws_sdk_route53::Client::new(&self.config)
            .get_change()
            .id(id)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("reading Route53 change `{id}`"), e))?;
        Ok(out
            .change_info()
            .is_some_and(|c| *c.status() == aws_sdk_route53::types::ChangeStatus::Insync))
    }

    async fn secret_exists(&self, id: &str) -> Result<bool> {
        let client = aws_sdk_secretsmanager::Client::new(&self.config);
        match client.describe_secret().secret_id(id).send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(&format!("describing secret `{id}`"), e)),
        }
    }

    async fn call(&self, call: &Call) -> Result<Made> {
        let what = call.to_string();
        let mut made = Made::default();
        let failed = |e: BuildError| Error::usage(format!("{what}: {}", DisplayErrorContext(&e)));
        match call {
            Call::RestoreToPointInTime {
                id,
                source,
                placement,
                tags,
            } => {
                let request = self
                    .rds()
                    .restore_db_cluster_to_point_in_time()
                    .db_cluster_identifier(id)
                    .source_db_cluster_identifier(source)
                    .restore_type("copy-on-write")
                    .use_latest_restorable_time(true);
                send!(placed!(request, placement, tags), &what);
            }
            Call::RestoreFromSnapshot {
                id,
                snapshot,
                engine,
                engine_version,
                placement,
                tags,
            } => {
                let request = self
                    .rds()
                    .restore_db_cluster_from_snapshot()
                    .db_cluster_identifier(id)
                    .snapshot_identifier(snapshot)
                    .engine(engine)
                    .set_engine_version(engine_version.clone());
                send!(placed!(request, placement, tags), &what);
            }
            Call::RestoreInstanceFromSnapshot {
                id,
                snapshot,
                class,
                subnet_group,
                security_groups,
                parameter_group,
                tags,
            } => {
                send!(
                    self.rds()
                        .restore_db_instance_from_db_snapshot()
                        .db_instance_identifier(id)
                        .db_snapshot_identifier(snapshot)
                        .db_instance_class(class)
                        .set_db_subnet_group_name(subnet_group.clone())
                        .set_vpc_security_group_ids(
                            (!security_groups.is_empty()).then(|| security_groups.clone())
                        )
                        .set_db_parameter_group_name(parameter_group.clone())
                        .set_tags(Some(sdk_tags(tags))),
                    &what
                );
            }
            Call::CreateWriter {
                id,
                cluster,
                engine,
                class,
            } => {
                send!(
                    self.rds()
                        .create_db_instance()
                        .db_instance_identifier(id)
                        .db_cluster_identifier(cluster)
                        .engine(engine)
                        .db_instance_class(class),
                    &what
                );
            }
            Call::AddTags { arn, tags, .. } => {
                send!(
                    self.rds()
                        .add_tags_to_resource()
                        .resource_name(arn)
                        .set_tags(Some(sdk_tags(tags))),
                    &what
                );
            }
            Call::ResetMasterPassword {
                cluster,
                password,
                instance: true,
            } => {
                let out = send!(
                    self.rds()
                        .modify_db_instance()
                        .db_instance_identifier(cluster)
                        .master_user_password(password.expose())
                        .apply_immediately(true),
                    &what
                );
                made.password_pending = out
                    .db_instance()
                    .and_then(|c| c.pending_modified_values())
                    .is_some_and(|p| p.master_user_password().is_some());
            }
            Call::ResetMasterPassword {
                cluster, password, ..
            } => {
                let out = send!(
                    self.rds()
                        .modify_db_cluster()
                        .db_cluster_identifier(cluster)
                        .master_user_password(password.expose())
                        .apply_immediately(true),
                    &what
                );
                made.password_pending = out
                    .db_cluster()
                    .and_then(|c| c.pending_modified_values())
                    .is_some_and(|p| p.master_user_password().is_some());
            }
            Call::StoreSecret {
                secret_id,
                value,
                create,
            } => {
                let client = aws_sdk_secretsmanager::Client::new(&self.config);
                if *create {
                    send!(
                        client
                            .create_secret()
                            .name(secret_id)
                            .description("Master user of the newest clone (migrator rotate scrub)")
                            .secret_string(value.expose()),
                        &what
                    );
                } else {
                    send!(
                        client
                            .put_secret_value()
                            .secret_id(secret_id)
                            .secret_string(value.expose()),
                        &what
                    );
                }
            }
            Call::UpsertCname {
                zone,
                name,
                value,
                ttl,
            } => {
                let record = ResourceRecordSet::builder()
                    .name(name)
                    .r#type(RrType::Cname)
                    .ttl(*ttl)
                    .resource_records(
                        ResourceRecord::builder()
                            .value(value)
                            .build()
                            .map_err(failed)?,
                    )
                    .build()
                    .map_err(failed)?;
                let batch = ChangeBatch::builder()
                    .comment("migrator rotate connect")
                    .changes(
                        Change::builder()
                            .action(ChangeAction::Upsert)
                            .resource_record_set(record)
                            .build()
                            .map_err(failed)?,
                    )
                    .build()
                    .map_err(failed)?;
                let out = send!(
                    aws_sdk_route53::Client::new(&self.config)
                        .change_resource_record_sets()
                        .hosted_zone_id(zone)
                        .change_batch(batch),
                    &what
                );
                made.change_id = out.change_info().map(|c| c.id().to_string());
            }
            Call::DeleteInstance { id, .. } => {
                send!(
                    self.rds().delete_db_instance().db_instance_identifier(id),
                    &what
                );
            }
            Call::DeleteCluster { id } => {
                send!(
                    self.rds()
                        .delete_db_cluster()
                        .db_cluster_identifier(id)
                        .skip_final_snapshot(true),
                    &what
                );
            }
            Call::DeleteStandalone { id } => {
                send!(
                    self.rds()
                        .delete_db_instance()
                        .db_instance_identifier(id)
                        .skip_final_snapshot(true)
                        .delete_automated_backups(true),
                    &what
                );
            }
        }
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::types::{DbClusterMember, DbClusterSnapshot, VpcSecurityGroupMembership};
    use aws_sdk_route53::operation::list_resource_record_sets::ListResourceRecordSetsOutput;
    use aws_smithy_types::DateTime;

    use super::*;

    fn sdk_cluster(id: &str, status: &str) -> DbCluster {
        DbCluster::builder()
            .db_cluster_identifier(id)
            .db_cluster_arn(format!("arn:aws:rds:eu-west-1:1:cluster:{id}"))
            .status(status)
            .build()
    }

    /// Fields moto does not fill (CloneGroupId, security groups, states other
    /// than creating/available) come through as RDS sends them.
    #[test]
    fn clusters_convert_with_tags_members_and_clone_group() {
        let c = DbCluster::builder()
            .db_cluster_identifier("app-dev-20261122")
            .db_cluster_arn("arn:aws:rds:eu-west-1:1:cluster:app-dev-20261122")
            .status("resetting-master-credentials")
            .cluster_create_time(DateTime::from_secs(1_795_307_045))
            .endpoint("app-dev-20261122.cluster-abc.eu-west-1.rds.amazonaws.com")
            .port(5432)
            .engine("aurora-postgresql")
            .engine_version("16.4")
            .master_username("postgres")
            .database_name("app")
            .clone_group_id("3b8f-clone-group")
            .db_subnet_group("private")
            .db_cluster_parameter_group("app-pg16")
            .vpc_security_groups(
                VpcSecurityGroupMembership::builder()
                    .vpc_security_group_id("sg-1")
                    .status("active")
                    .build(),
            )
            .db_cluster_members(
                DbClusterMember::builder()
                    .db_instance_identifier("reader")
                    .is_cluster_writer(false)
                    .build(),
            )
            .db_cluster_members(
                DbClusterMember::builder()
                    .db_instance_identifier("app-dev-20261122-writer")
                    .is_cluster_writer(true)
                    .build(),
            )
            .tag_list(Tag::builder().key("lifecycle").value("ready").build())
            .tag_list(Tag::builder().key("team").build())
            .build();
        let got = cluster_from(&c);
        assert_eq!(got.status, "resetting-master-credentials");
        assert_eq!(got.created, Some(1_795_307_045));
        assert_eq!(got.clone_group_id.as_deref(), Some("3b8f-clone-group"));
        assert_eq!(got.security_groups, ["sg-1"]);
        assert_eq!(got.writer(), Some("app-dev-20261122-writer"));
        assert_eq!(got.tag("lifecycle"), Some("ready"));
        assert_eq!(got.tag("team"), Some(""));
        assert_eq!(got.port, Some(5432));
    }

    /// moto answers every listing in one page; AWS pages them. The RDS
    /// listings use the SDK's paginators; `all_pages` (ListResourceRecordSets)
    /// is exercised here on cluster pages.
    #[tokio::test]
    async fn every_page_of_clusters_is_read() {
        let pages = [
            (None, vec!["a", "b"], Some("m1")),
            (Some("m1"), vec!["c"], Some("m2")),
            (Some("m2"), vec!["d"], Some("")),
        ];
        let asked = RefCell::new(Vec::new());
        let got = all_pages("test", |marker: Option<String>| {
            asked.borrow_mut().push(marker.clone());
            let (_, ids, next) = pages
                .iter()
                .find(|(m, _, _)| m.map(str::to_string) == marker)
                .expect("a known marker")
                .clone();
            let mut out = DescribeDbClustersOutput::builder();
            for id in ids {
                out = out.db_clusters(sdk_cluster(id, "available"));
            }
            if let Some(n) = next {
                out = out.marker(n);
            }
            let out = out.build();
            let page: Vec<Cluster> = out.db_clusters().iter().map(cluster_from).collect();
            let next = out.marker().filter(|m| !m.is_empty()).map(str::to_string);
            async move { Ok((page, next)) }
        })
        .await
        .unwrap();
        let ids: Vec<_> = got.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d"]);
        assert_eq!(
            *asked.borrow(),
            [None, Some("m1".to_string()), Some("m2".to_string())]
        );
    }

    #[tokio::test]
    async fn a_repeated_marker_stops_the_listing() {
        let err = all_pages("DescribeDBClusters", |_m: Option<String>| async {
            Ok((vec![1], Some("same".to_string())))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn the_newest_available_snapshot_wins() {
        let snap = |id: &str, secs: i64, status: &str| {
            DbClusterSnapshot::builder()
                .db_cluster_snapshot_identifier(id)
                .db_cluster_snapshot_arn(format!("arn:aws:rds:eu-west-1:1:cluster-snapshot:{id}"))
                .snapshot_create_time(DateTime::from_secs(secs))
                .status(status)
                .build()
        };
        let out = DescribeDbClusterSnapshotsOutput::builder()
            .db_cluster_snapshots(snap("rds:prod-2026-11-20", 100, "available"))
            .db_cluster_snapshots(snap("rds:prod-2026-11-22", 300, "creating"))
            .db_cluster_snapshots(snap("rds:prod-2026-11-21", 200, "available"))
            .build();
        let items = out
            .db_cluster_snapshots()
            .iter()
            .filter_map(snapshot_from)
            .collect();
        let best = newest(items).unwrap();
        assert_eq!(best.id, "rds:prod-2026-11-21");
        assert_eq!(newest(Vec::new()), None);
    }

    #[test]
    fn record_pages_stop_once_past_the_name() {
        let set = |name: &str, kind: RrType, value: &str| {
            ResourceRecordSet::builder()
                .name(name)
                .r#type(kind)
                .ttl(60)
                .resource_records(ResourceRecord::builder().value(value).build().unwrap())
                .build()
                .unwrap()
        };
        let out = ListResourceRecordSetsOutput::builder()
            .resource_record_sets(set(
                "db.dev.internal.",
                RrType::Cname,
                "old.rds.amazonaws.com",
            ))
            .resource_record_sets(set("db.dev.internal.", RrType::Txt, "\"x\""))
            .is_truncated(true)
            .next_record_name("db.dev.internal.")
            .next_record_type(RrType::Cname)
            .next_record_identifier("weighted-2")
            .max_items(2)
            .build()
            .unwrap();
        let (values, next) = records_page(&out, "db.dev.internal");
        assert_eq!(
            values,
            [Record {
                value: "old.rds.amazonaws.com".into(),
                ttl: Some(60)
            }]
        );
        assert_eq!(
            next,
            Some((
                "db.dev.internal.".to_string(),
                Some("CNAME".to_string()),
                Some("weighted-2".to_string())
            ))
        );
        let past = ListResourceRecordSetsOutput::builder()
            .resource_record_sets(set("dc.dev.internal.", RrType::Cname, "x"))
            .is_truncated(true)
            .next_record_name("dd.dev.internal.")
            .max_items(1)
            .build()
            .unwrap();
        assert_eq!(records_page(&past, "db.dev.internal"), (vec![], None));
    }

    #[test]
    fn calls_print_as_operations_and_never_show_secrets() {
        let pw = Secret::new("Pw-never-shown-81724".into());
        let calls = [
            Call::ResetMasterPassword {
                cluster: "app-dev-20261122".into(),
                password: pw.clone(),
                instance: false,
            },
            Call::StoreSecret {
                secret_id: "app/dev/master".into(),
                value: pw.clone(),
                create: false,
            },
        ];
        for c in &calls {
            let text = format!("{c} {c:?}");
            assert!(!text.contains("Pw-never-shown"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
        let restore = Call::RestoreToPointInTime {
            id: "app-dev-20261122".into(),
            source: "prod".into(),
            placement: Placement {
                subnet_group: Some("private".into()),
                security_groups: vec!["sg-1".into(), "sg-2".into()],
                parameter_group: None,
            },
            tags: vec![("lifecycle".into(), "created".into())],
        };
        assert_eq!(
            restore.to_string(),
            "rds RestoreDBClusterToPointInTime DBClusterIdentifier=app-dev-20261122 \
             SourceDBClusterIdentifier=prod RestoreType=copy-on-write \
             UseLatestRestorableTime=true DBSubnetGroupName=private \
             VpcSecurityGroupIds=sg-1,sg-2 Tags=lifecycle=created"
        );
        assert_eq!(restore.cluster(), None);
        assert_eq!(
            Call::DeleteCluster { id: "x".into() }.cluster(),
            Some("x"),
            "the guard checks the cluster being deleted"
        );
    }
}
