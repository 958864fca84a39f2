//! `rotate connect`: points `--dns-name` at the clone (`lifecycle=connected`);
//! the clone it pointed at before becomes `aborted`. The step ends once Route53
//! says the change is INSYNC (GetChange), and tags the replaced clone with
//! when no resolver can still hold the old answer (now + the record's TTL,
//! the longer of the old and the new): `clean` keeps it until then.

use super::super::{Outcome, Rotation, stub};
use crate::aws::rotate::{Call, RotateAws};
use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::{Cluster, LIFECYCLE_TAG, Lifecycle, RELEASED_TAG, Step};
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
        let old_ttl = record.as_ref().and_then(|x| x.ttl).unwrap_or(0);
        let record = record.map(|x| x.value);
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
            let made = r
                .apply(Call::UpsertCname {
                    zone: zone.clone(),
                    name: name.clone(),
                    value: endpoint.clone(),
                    ttl: r.rotate.ttl,
                })
                .await?;
            if let Some(change) = made.change_id {
                insync(r, &change).await?;
            }
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
        // Resolvers may hold the old answer for its TTL after INSYNC.
        let released = (super::super::unix_now() + old_ttl.max(r.rotate.ttl)).to_string();
        for old in &plan.abort {
            let o = clusters
                .iter()
                .find(|x| &x.id == old)
                .expect("planned from the list");
            r.tag(o, Lifecycle::Aborted, &[(RELEASED_TAG, &released)])
                .await?;
            did.push(format!(
                "{}tagged `{old}` {LIFECYCLE_TAG}=aborted (kept until {RELEASED_TAG}={released}: \
                 INSYNC + TTL)",
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

/// Polls GetChange until Route53 says the change reached all its servers
/// (INSYNC), at most `--timeout`.
async fn insync<A: RotateAws>(r: &Rotation<'_, A>, change: &str) -> Result<()> {
    let deadline = r.deadline();
    let mut attempt = 0;
    while !r.aws.change_insync(change).await? {
        tracing::info!(change, "Route53 change pending");
        r.pause(
            &mut attempt,
            deadline,
            &format!("Route53 change `{change}` to be INSYNC"),
        )
        .await?;
    }
    tracing::info!(change, "Route53 change INSYNC");
    Ok(())
}
