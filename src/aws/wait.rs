//! Waiting on RDS: one pause between polls, bounded by a deadline and cut short
//! by a signal, and one wait until a cluster and its writer are `available`,
//! used by `--rds-cluster --wait` and by the rotation.

use std::time::{Duration, Instant};

use super::Clusters;
use crate::interrupt::Interrupt;
use migrator_core::backoff::Backoff;
use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::{Cluster, Readiness};

/// Where a wait ends: the instant, and the flag that set it (for the error).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub after: Duration,
    pub flag: &'static str,
}

impl Deadline {
    pub fn from_now(after: Duration, flag: &'static str) -> Self {
        Deadline {
            at: Instant::now() + after,
            after,
            flag,
        }
    }
}

/// Sleeps before poll `attempt + 1`, or says why not: the deadline passed
/// (exit 3) or a signal came (130/143).
pub async fn pause(
    interrupt: &Interrupt,
    backoff: Backoff,
    attempt: &mut u32,
    deadline: Deadline,
    waiting_for: &str,
) -> Result<()> {
    let now = Instant::now();
    if now >= deadline.at {
        return Err(Error::Unreachable {
            target: waiting_for.to_string(),
            message: format!(
                "not there after waiting {} s ({})",
                deadline.after.as_secs(),
                deadline.flag
            ),
        });
    }
    let pause = backoff.delay(*attempt).min(deadline.at - now);
    *attempt += 1;
    interrupt.sleep(pause, waiting_for).await
}

/// Describes the cluster and polls (logging each status seen) until it and its
/// writer are available. Without a deadline it looks once and returns the
/// cluster as it is, with a warning when it is not available.
pub async fn until_available(
    aws: &impl Clusters,
    id: &str,
    deadline: Option<Deadline>,
    backoff: Backoff,
    interrupt: &Interrupt,
) -> Result<Cluster> {
    let mut last = String::new();
    let mut attempt = 0;
    loop {
        let c = aws
            .cluster(id)
            .await?
            .ok_or_else(|| Error::usage(format!("RDS cluster `{id}` not found")))?;
        let writer = match c.writer() {
            Some(w) => aws.instance(w).await?.map(|i| (w.to_string(), i.status)),
            None => None,
        };
        let now = Readiness {
            status: c.status.clone(),
            writer,
        };
        let seen = now.describe();
        if seen != last {
            tracing::info!(cluster = id, status = %seen, "RDS cluster status");
            last = seen;
        }
        if now.ready() {
            return Ok(c);
        }
        let Some(deadline) = deadline else {
            tracing::warn!(cluster = id, status = %last, "cluster not available; trying anyway (pass --wait DURATION to wait for it)");
            return Ok(c);
        };
        pause(
            interrupt,
            backoff,
            &mut attempt,
            deadline,
            &format!("RDS cluster `{id}` (cluster {last})"),
        )
        .await?;
    }
}
