//! `rotate clean`: deletes aborted clones, and never-connected ones older than
//! `--max-age`: instances first, then the cluster, without a final snapshot.
//! A clone `connect` replaced is kept until its `released-at` tag (INSYNC +
//! TTL): `clean` waits for it when that is within `--timeout` (`rotate run`
//! right after `connect`), else leaves it to a later run.

use std::time::Duration;

use super::super::{Outcome, Rotation, unix_now};
use crate::aws::rotate::{Call, RotateAws};
use migrator_core::error::Result;
use migrator_core::rotate::plan::{Cluster, RELEASED_TAG, released_in};
use migrator_core::rotate::summary::StepOutcome;

/// `clean` needs no flag of its own.
#[derive(Debug)]
pub struct Clean;

impl Clean {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let clusters = r.aws.clusters().await?;
        let deletions =
            migrator_core::rotate::plan::plan_clean(&clusters, &r.prefix, r.now, r.rotate.max_age);
        if deletions.is_empty() {
            return Ok((StepOutcome::NothingToDo, "nothing to delete".to_string()));
        }
        let mut lines = Vec::new();
        let mut deleted = 0;
        for d in &deletions {
            let c = clusters
                .iter()
                .find(|c| c.id == d.id)
                .expect("planned from the list");
            if let Some(secs) = released_in(c, unix_now()) {
                let wait = Duration::from_secs(secs as u64);
                if wait > r.rotate.timeout {
                    lines.push(format!(
                        "kept `{}` for {secs} s more: resolvers may still hand out the record \
                         that pointed at it ({RELEASED_TAG})",
                        d.id
                    ));
                    continue;
                }
                if r.dry() {
                    lines.push(format!(
                        "would wait {secs} s (until no resolver holds the old record)"
                    ));
                } else {
                    tracing::info!(cluster = %d.id, secs, "waiting until the old record's TTL has passed");
                    r.interrupt
                        .sleep(
                            wait,
                            &format!("the old record's TTL before deleting `{}`", d.id),
                        )
                        .await?;
                }
            }
            delete(r, c).await?;
            deleted += 1;
            lines.push(format!(
                "{} `{}` ({})",
                if r.dry() { "would delete" } else { "deleted" },
                d.id,
                d.reason
            ));
        }
        if deleted == 0 {
            return Ok((StepOutcome::NothingToDo, lines.join("\n")));
        }
        r.done(lines.join("\n"))
    }
}

/// Deletes a clone: its instances, then (once they are gone) the cluster
/// without a final snapshot, then waits until RDS no longer knows it.
async fn delete<A: RotateAws>(r: &mut Rotation<'_, A>, c: &Cluster) -> Result<()> {
    let deadline = r.deadline();
    if c.instance {
        if c.status != "deleting" {
            r.apply(Call::DeleteStandalone { id: c.id.clone() }).await?;
        }
        if r.dry() {
            return Ok(());
        }
        let mut attempt = 0;
        while r.aws.standalone(&c.id).await?.is_some() {
            r.pause(&mut attempt, deadline, &format!("`{}` to be deleted", c.id))
                .await?;
        }
        tracing::info!(instance = %c.id, "deleted");
        return Ok(());
    }
    if c.status != "deleting" {
        for m in &c.members {
            let status = r.aws.instance(&m.id).await?.map(|i| i.status);
            if status.as_deref().is_none_or(|s| s == "deleting") {
                continue;
            }
            r.apply(Call::DeleteInstance {
                id: m.id.clone(),
                cluster: c.id.clone(),
            })
            .await?;
        }
        if r.dry() {
            return r
                .apply(Call::DeleteCluster { id: c.id.clone() })
                .await
                .map(|_| ());
        }
        let mut attempt = 0;
        loop {
            let now = r.aws.cluster(&c.id).await?;
            let Some(now) = now else { return Ok(()) };
            if now.members.is_empty() {
                break;
            }
            r.pause(
                &mut attempt,
                deadline,
                &format!("the instances of `{}` to be deleted", c.id),
            )
            .await?;
        }
        r.apply(Call::DeleteCluster { id: c.id.clone() }).await?;
    } else if r.dry() {
        return Ok(());
    }
    let mut attempt = 0;
    while r.aws.cluster(&c.id).await?.is_some() {
        r.pause(&mut attempt, deadline, &format!("`{}` to be deleted", c.id))
            .await?;
    }
    tracing::info!(cluster = %c.id, "deleted");
    Ok(())
}
