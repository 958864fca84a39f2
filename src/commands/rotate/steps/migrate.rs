//! `rotate migrate`: `up` against the clone; tagged `lifecycle=migrated`.

use super::super::{Outcome, Rotation};
use crate::aws::rotate::RotateAws;
use crate::commands::migrate::{Tail, tell};
use crate::settings::Change;
use migrator_core::error::Result;
use migrator_core::rotate::plan::{LIFECYCLE_TAG, Lifecycle, Step};
use migrator_core::rotate::summary::StepOutcome;

/// What `migrate` needs: the secret that opens the clone.
#[derive(Debug)]
pub struct Migrate {
    pub master_secret: String,
}

impl Migrate {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let Some((c, at)) = r.gated(Step::Migrate).await? else {
            unreachable!("migrate is never done: `up` finds out");
        };
        let Some(c) = c else {
            r.assume(Lifecycle::Migrated);
            return r.done(format!(
                "would run `up` against `{}` once it exists",
                r.clone_id()
            ));
        };
        let mut s = r.clone_settings(&c, &self.master_secret);
        let up = Change::Up {
            to: None,
            single_transaction: false,
            dry_run: r.dry(),
        };
        if !r.alone {
            // `rotate run` posts one message with every step.
            s.notify.webhook = None;
        }
        let (mut report, result) = crate::commands::changing(&s, &up, r.interrupt).await;
        // Alone, it tells Slack like `up`; in `rotate run` the run's one
        // message does. The rotation prints its own report.
        let tail = Tail {
            slack: r.alone,
            print: false,
        };
        let result = tell(&s, &mut report, result, tail).await?;
        let text = report.summary().trim_end().to_string();
        let changed = !report.applied.is_empty();
        r.migrate = Some(report);
        if let Err(e) = result {
            if r.dry() {
                r.assume(Lifecycle::Migrated);
                return r.done(format!("would run `up` (cannot plan it now: {e})"));
            }
            return Err(e);
        }
        if r.dry() {
            r.assume(Lifecycle::Migrated);
            if at < Lifecycle::Migrated {
                r.tag(&c, Lifecycle::Migrated, &[]).await?;
            }
            return r.done(text);
        }
        if at < Lifecycle::Migrated {
            r.tag(&c, Lifecycle::Migrated, &[]).await?;
            return r.done(format!("{text}\ntagged {LIFECYCLE_TAG}=migrated"));
        }
        Ok((
            if changed {
                StepOutcome::Done
            } else {
                StepOutcome::NothingToDo
            },
            text,
        ))
    }
}
