//! `rotate clone`: today's clone of `--source-cluster` and its writer, tagged
//! `lifecycle=created`. The writer is created once the restored cluster is
//! `available`: RDS refuses CreateDBInstance before (InvalidDBClusterStateFault).
//! Everything the calls need (engine, the writer's class) is found before the
//! first one.

use super::super::{Outcome, Rotation};
use crate::aws::rotate::{Call, RotateAws};
use crate::settings::Placement;
use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::{ClonePlan, Cluster, LIFECYCLE_TAG, Lifecycle};
use migrator_core::rotate::summary::StepOutcome;

/// What `clone` needs: the cluster (or plain instance) to clone.
#[derive(Debug)]
pub struct CloneFrom {
    pub source: String,
    /// `--source-instance`: a plain RDS instance.
    pub instance: bool,
}

impl CloneFrom {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let source_id = self.source.clone();
        let cluster = if self.instance {
            None
        } else {
            r.aws.cluster(&source_id).await?
        };
        let Some(source) = cluster else {
            // A plain RDS instance: named so, or found under --source-cluster.
            if let Some(source) = r.aws.standalone(&source_id).await? {
                if !self.instance {
                    tracing::info!(source = %source_id, "the source is a plain RDS instance");
                }
                return clone_instance(r, &source).await;
            }
            return Err(Error::usage(format!(
                "{} `{source_id}`: no such RDS {}",
                if self.instance {
                    "--source-instance"
                } else {
                    "--source-cluster"
                },
                if self.instance {
                    "instance (in no cluster)"
                } else {
                    "cluster or instance"
                }
            )));
        };
        let clusters = r.aws.clusters().await?;
        let copy_on_write = !r.rotate.from_snapshot;
        let plan = migrator_core::rotate::plan::plan_clone(
            &clusters,
            &source,
            &r.prefix,
            r.day,
            copy_on_write,
        )
        .map_err(Error::RotateRefused)?;
        let engine = source
            .engine
            .clone()
            .ok_or_else(|| Error::usage(format!("`{source_id}`: RDS names no engine")))?;
        match plan {
            ClonePlan::Exists {
                id,
                lifecycle,
                create_writer: None,
            } => {
                r.assume(lifecycle);
                Ok((
                    StepOutcome::NothingToDo,
                    format!(
                        "today's clone `{id}` already exists ({LIFECYCLE_TAG}={lifecycle}); not \
                         creating another"
                    ),
                ))
            }
            ClonePlan::Exists {
                id,
                lifecycle,
                create_writer: Some(writer),
            } => {
                let class = instance_class(r, &source).await?;
                create_writer(r, &writer, &id, engine, class).await?;
                r.assume(lifecycle);
                r.done(format!(
                    "today's clone `{id}` already exists ({LIFECYCLE_TAG}={lifecycle}) without a \
                     writer; created `{writer}`"
                ))
            }
            ClonePlan::Create { id } => {
                // Preflight: what the writer needs, before the restore.
                let class = instance_class(r, &source).await?;
                let placement = Placement {
                    subnet_group: r
                        .rotate
                        .placement
                        .subnet_group
                        .clone()
                        .or(source.subnet_group.clone()),
                    security_groups: if r.rotate.placement.security_groups.is_empty() {
                        source.security_groups.clone()
                    } else {
                        r.rotate.placement.security_groups.clone()
                    },
                    parameter_group: r
                        .rotate
                        .placement
                        .parameter_group
                        .clone()
                        .or(source.parameter_group.clone()),
                };
                let tags = vec![
                    (
                        LIFECYCLE_TAG.to_string(),
                        Lifecycle::Created.as_str().to_string(),
                    ),
                    (
                        migrator_core::rotate::plan::SOURCE_TAG.to_string(),
                        source_id.clone(),
                    ),
                ];
                let how = if copy_on_write {
                    r.apply(Call::RestoreToPointInTime {
                        id: id.clone(),
                        source: source_id.clone(),
                        placement,
                        tags,
                    })
                    .await?;
                    "copy-on-write clone".to_string()
                } else {
                    let snap = r.aws.latest_snapshot(&source_id).await?.ok_or_else(|| {
                        Error::usage(format!(
                            "--from-snapshot: `{source_id}` has no available automated snapshot"
                        ))
                    })?;
                    let how = format!("restore of snapshot `{}`", snap.id);
                    r.apply(Call::RestoreFromSnapshot {
                        id: id.clone(),
                        snapshot: snap.id,
                        engine: engine.clone(),
                        engine_version: source.engine_version.clone(),
                        placement,
                        tags,
                    })
                    .await?;
                    how
                };
                let writer = migrator_core::rotate::plan::writer_id(&id);
                create_writer(r, &writer, &id, engine, class).await?;
                r.assume(Lifecycle::Created);
                r.done(format!(
                    "{}created `{id}` ({how} of `{source_id}`) and its writer `{writer}`, \
                     tagged {LIFECYCLE_TAG}=created",
                    r.would()
                ))
            }
        }
    }
}

/// The clone's writer, once the cluster is available (waiting at most
/// `--timeout`; in a dry run, not at all).
pub async fn create_writer<A: RotateAws>(
    r: &mut Rotation<'_, A>,
    writer: &str,
    cluster: &str,
    engine: String,
    class: String,
) -> Result<()> {
    if !r.dry() {
        r.wait_cluster(cluster, r.deadline()).await?;
    }
    r.apply(Call::CreateWriter {
        id: writer.to_string(),
        cluster: cluster.to_string(),
        engine,
        class,
    })
    .await
    .map(|_| ())
}

/// `--instance-class`, else the source writer's class.
pub async fn instance_class<A: RotateAws>(r: &Rotation<'_, A>, source: &Cluster) -> Result<String> {
    if let Some(c) = &r.rotate.instance_class {
        return Ok(c.clone());
    }
    let writer = source.writer().ok_or_else(|| {
        Error::usage(format!(
            "`{}` has no writer instance to copy the class from; pass --instance-class",
            source.id
        ))
    })?;
    r.aws
        .instance(writer)
        .await?
        .and_then(|i| i.class)
        .ok_or_else(|| {
            Error::usage(format!(
                "cannot read the class of `{writer}`; pass --instance-class"
            ))
        })
}

/// A plain RDS instance's clone: RestoreDBInstanceFromDBSnapshot of its newest
/// automated snapshot, of `--instance-class` or the source's class, with the
/// source's subnet group, security groups and DB parameter group unless flags
/// say otherwise. An instance has no writer to add.
async fn clone_instance<A: RotateAws>(
    r: &mut Rotation<'_, A>,
    source: &Cluster,
) -> Result<Outcome> {
    let source_id = source.id.clone();
    let clusters = r.aws.clusters().await?;
    let plan = migrator_core::rotate::plan::plan_clone(&clusters, source, &r.prefix, r.day, false)
        .map_err(Error::RotateRefused)?;
    let id = match plan {
        ClonePlan::Exists { id, lifecycle, .. } => {
            r.assume(lifecycle);
            return Ok((
                StepOutcome::NothingToDo,
                format!(
                    "today's clone `{id}` already exists ({LIFECYCLE_TAG}={lifecycle}); not \
                     creating another"
                ),
            ));
        }
        ClonePlan::Create { id } => id,
    };
    // Preflight: the class and the snapshot, before the restore.
    let class = match &r.rotate.instance_class {
        Some(c) => c.clone(),
        None => r
            .aws
            .instance(&source_id)
            .await?
            .and_then(|i| i.class)
            .ok_or_else(|| {
                Error::usage(format!(
                    "cannot read the class of `{source_id}`; pass --instance-class"
                ))
            })?,
    };
    let snap = r
        .aws
        .latest_instance_snapshot(&source_id)
        .await?
        .ok_or_else(|| {
            Error::usage(format!(
                "`{source_id}` has no available automated snapshot (are automated backups on?)"
            ))
        })?;
    let p = &r.rotate.placement;
    let call = Call::RestoreInstanceFromSnapshot {
        id: id.clone(),
        snapshot: snap.id.clone(),
        class,
        subnet_group: p.subnet_group.clone().or(source.subnet_group.clone()),
        security_groups: if p.security_groups.is_empty() {
            source.security_groups.clone()
        } else {
            p.security_groups.clone()
        },
        parameter_group: p.parameter_group.clone().or(source.parameter_group.clone()),
        tags: vec![
            (
                LIFECYCLE_TAG.to_string(),
                Lifecycle::Created.as_str().to_string(),
            ),
            (
                migrator_core::rotate::plan::SOURCE_TAG.to_string(),
                source_id.clone(),
            ),
        ],
    };
    r.apply(call).await?;
    if !r.dry() {
        // A new instance may not be listed for a while: the next step looks
        // for it by listing.
        let deadline = r.deadline();
        let mut attempt = 0;
        while r.aws.standalone(&id).await?.is_none() {
            r.pause(&mut attempt, deadline, &format!("RDS to list `{id}`"))
                .await?;
        }
    }
    r.assume(Lifecycle::Created);
    r.done(format!(
        "{}created `{id}` (restore of snapshot `{}` of the RDS instance `{source_id}`), \
         tagged {LIFECYCLE_TAG}=created",
        r.would(),
        snap.id
    ))
}
