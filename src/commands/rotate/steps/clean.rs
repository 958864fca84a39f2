//! `rotate clean`: deletes aborted clones, and never-connected ones older than
//! `--max-age`: instances first, then the cluster, without a final snapshot.

use super::super::{Outcome, Rotation};
use crate::aws::rotate::{Call, RotateAws};
use migrator_core::error::Result;
use migrator_core::rotate::plan::Cluster;
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
        for d in &deletions {
            let c = clusters
                .iter()
                .find(|c| c.id == d.id)
                .expect("planned from the list");
            delete(r, c).await?;
            lines.push(format!(
                "{} `{}` ({})",
                if r.dry() { "would delete" } else { "deleted" },
                d.id,
                d.reason
            ));
        }
        r.done(lines.join("\n"))
    }
}

/// Deletes a clone: its instances, then (once they are gone) the cluster
/// without a final snapshot, then waits until RDS no longer knows it.
async fn delete<A: RotateAws>(r: &mut Rotation<'_, A>, c: &Cluster) -> Result<()> {
    let deadline = r.deadline();
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
            return r.apply(Call::DeleteCluster { id: c.id.clone() }).await;
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
