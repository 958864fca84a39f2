//! `rotate ready`: waits until the clone and its writer are available and its
//! database answers, then tags it `lifecycle=ready`. A clone still without a
//! writer (its `clone` ended before the cluster was available) gets it here,
//! once the cluster is available. A database that stays unreachable once RDS
//! says it is available (DNS, refused, no route, no answer) fails the step
//! after `--unreachable-after` (exit 3), named as such.

use std::time::{Duration, Instant};

use super::super::{Outcome, Rotation, probe, stub};
use crate::aws::rotate::RotateAws;
use migrator_core::conn::Parts;
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::rotate::plan::{Cluster, LIFECYCLE_TAG, Lifecycle, SOURCE_TAG, Step};
use migrator_core::rotate::summary::StepOutcome;

/// `ready` needs no flag of its own.
#[derive(Debug)]
pub struct Ready;

impl Ready {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let Some((c, _)) = r.gated(Step::Ready).await? else {
            return Ok((
                StepOutcome::NothingToDo,
                format!("`{}` is already ready", r.clone_id()),
            ));
        };
        let id = r.clone_id();
        if r.dry() {
            let c = c.unwrap_or_else(|| stub(&id));
            r.tag(&c, Lifecycle::Ready, &[]).await?;
            r.assume(Lifecycle::Ready);
            return r.done(format!(
                "would wait (at most {} s) for `{id}` and its writer to be available and its \
                 database to answer, then tag it ready",
                r.rotate.timeout.as_secs()
            ));
        }
        let c = c.expect("today's clone exists outside a dry run");
        let started = Instant::now();
        let deadline = r.deadline();
        let mut wrote = String::new();
        if !c.instance && c.writer().is_none() {
            let c = r.wait_cluster(&c.id, deadline).await?;
            if c.writer().is_none() {
                writer_for(r, &c).await?;
                wrote = format!(
                    "; created its missing writer `{}`",
                    migrator_core::rotate::plan::writer_id(&c.id)
                );
            }
        }
        let c = r.wait_available(&c, deadline).await?;
        let (engine, host, port) = address(r, &c)?;
        let mut attempt = 0;
        let available = Instant::now();
        loop {
            let left = deadline.at.saturating_duration_since(Instant::now());
            let limit = left.clamp(Duration::from_millis(100), Duration::from_secs(10));
            match probe::probe(engine, &host, port, limit).await {
                probe::Answer::Accepting => break,
                probe::Answer::NotYet(why) => {
                    tracing::info!(host = %host, port, why = %why, "database not answering yet");
                }
                probe::Answer::Unreachable(why) => {
                    if available.elapsed() >= r.rotate.unreachable_after {
                        return Err(Error::Unreachable {
                            target: format!("the database of `{}` at {host}:{port}", c.id),
                            message: format!(
                                "{why}, {} s after RDS said it is available: check the name \
                                 (DNS), the security groups and the route from here \
                                 (--unreachable-after)",
                                available.elapsed().as_secs()
                            ),
                        });
                    }
                    tracing::info!(host = %host, port, why = %why, "database unreachable");
                }
            }
            r.pause(
                &mut attempt,
                deadline,
                &format!("the database at {host}:{port}"),
            )
            .await?;
        }
        r.tag(&c, Lifecycle::Ready, &[]).await?;
        r.done(format!(
            "`{}` available and its database answering at {host}:{port} after {} s{wrote}; \
             tagged {LIFECYCLE_TAG}=ready",
            c.id,
            started.elapsed().as_secs()
        ))
    }
}

/// Creates the writer a clone lacks: of `--instance-class`, else of the class
/// of its source's writer (the source is in the clone's tags).
async fn writer_for<A: RotateAws>(r: &mut Rotation<'_, A>, c: &Cluster) -> Result<()> {
    let engine = c
        .engine
        .clone()
        .ok_or_else(|| Error::usage(format!("`{}`: RDS names no engine", c.id)))?;
    let class = match &r.rotate.instance_class {
        Some(class) => class.clone(),
        None => {
            let source_id = c.tag(SOURCE_TAG).ok_or_else(|| {
                Error::usage(format!(
                    "`{}` has no writer and no {SOURCE_TAG} tag to copy the class from; pass \
                     --instance-class",
                    c.id
                ))
            })?;
            let source = r.aws.cluster(source_id).await?.ok_or_else(|| {
                Error::usage(format!(
                    "`{}` has no writer, and its source `{source_id}` is gone; pass \
                     --instance-class",
                    c.id
                ))
            })?;
            super::clone::instance_class(r, &source).await?
        }
    };
    let writer = migrator_core::rotate::plan::writer_id(&c.id);
    super::clone::create_writer(r, &writer, &c.id, engine, class).await
}

/// Where to reach the clone's database: the writer endpoint, unless
/// `--db-host`/`--db-port` or `--database-url` say otherwise.
fn address<A: RotateAws>(r: &Rotation<'_, A>, c: &Cluster) -> Result<(Engine, String, u16)> {
    let url = match r.settings.database_url.as_deref() {
        Some(u) => migrator_core::conn::parse_url(u)
            .map_err(|e| Error::usage(format!("--database-url: {e}")))?,
        None => Parts::default(),
    };
    let flags = &r.settings.connection;
    let engine = c
        .engine
        .as_deref()
        .and_then(migrator_core::conn::engine_of)
        .or(url.engine)
        .ok_or_else(|| Error::usage(format!("`{}`: unknown engine", c.id)))?;
    let host = flags
        .host
        .clone()
        .or(url.host)
        .or(c.endpoint.clone())
        .ok_or_else(|| Error::usage(format!("`{}` has no endpoint yet", c.id)))?;
    let port = flags.port.or(url.port).or(c.port).unwrap_or(match engine {
        Engine::Postgres => 5432,
        Engine::Mysql => 3306,
    });
    Ok((engine, host, port))
}
