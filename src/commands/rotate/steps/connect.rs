//! `rotate connect`: points `--dns-name` at the clone (`lifecycle=connected`);
//! the clone it pointed at before becomes `aborted`.

use super::super::{Outcome, Rotation, stub};
use crate::aws::rotate::{Call, RotateAws};
use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::{Cluster, LIFECYCLE_TAG, Lifecycle, Step};
use migrator_core::rotate::summary::StepOutcome;

/// What `connect` needs: the record to point and its zone.
#[derive(Debug)]
pub struct Connect {
    pub dns_name: String,
    pub hosted_zone_id: String,
}

impl Connect {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let (name, zone) = (self.dns_name.clone(), self.hosted_zone_id.clone());
        let Some((c, at)) = r.gated(Step::Connect).await? else {
            unreachable!("connect always checks the record and the previous clones");
        };
        let clusters = r.aws.clusters().await?;
        let c = &c.unwrap_or_else(|| Cluster {
            endpoint: Some(format!("{}.cluster-….rds.amazonaws.com", r.clone_id())),
            ..stub(&r.clone_id())
        });
        let endpoint = c
            .endpoint
            .clone()
            .ok_or_else(|| Error::usage(format!("`{}` has no endpoint", c.id)))?;
        let record = r.aws.cname(&zone, &name).await?;
        let plan = migrator_core::rotate::plan::plan_connect(
            &clusters,
            &r.prefix,
            c,
            at,
            &endpoint,
            &name,
            record.as_deref(),
        );
        let mut did = Vec::new();
        if plan.upsert {
            r.apply(Call::UpsertCname {
                zone: zone.clone(),
                name: name.clone(),
                value: endpoint.clone(),
                ttl: r.rotate.ttl,
            })
            .await?;
            did.push(format!(
                "{}{name} → {endpoint} (was {})",
                r.would(),
                record.as_deref().unwrap_or("not there")
            ));
        }
        if plan.tag_connected {
            r.tag(
                c,
                Lifecycle::Connected,
                &[(migrator_core::rotate::plan::DNS_TAG, &name)],
            )
            .await?;
            did.push(format!(
                "{}tagged `{}` {LIFECYCLE_TAG}=connected",
                r.would(),
                c.id
            ));
        }
        for old in &plan.abort {
            let o = clusters
                .iter()
                .find(|x| &x.id == old)
                .expect("planned from the list");
            r.tag(o, Lifecycle::Aborted, &[]).await?;
            did.push(format!(
                "{}tagged `{old}` {LIFECYCLE_TAG}=aborted",
                r.would()
            ));
        }
        r.assume(Lifecycle::Connected);
        if did.is_empty() {
            return Ok((
                StepOutcome::NothingToDo,
                format!("{name} already points at `{}`", c.id),
            ));
        }
        r.done(did.join("\n"))
    }
}
