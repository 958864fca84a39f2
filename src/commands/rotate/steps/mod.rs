//! One file per step. Each step is a struct of what it requires, built once by
//! [`preflight`] from the settings: a step that runs has every flag it needs,
//! so none of them is an `Option` any more.

pub mod clean;
pub mod clone;
pub mod connect;
pub mod migrate;
pub mod ready;
pub mod scrub;

use crate::settings::{RotateSettings, Which};
use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::Prefix;

pub use clean::Clean;
pub use clone::CloneFrom;
pub use connect::Connect;
pub use migrate::Migrate;
pub use ready::Ready;
pub use scrub::Scrub;

/// A step with its inputs.
#[derive(Debug)]
pub enum Step {
    Clone(CloneFrom),
    Ready(Ready),
    Scrub(Scrub),
    Migrate(Migrate),
    Connect(Connect),
    Clean(Clean),
}

/// `value`, or `None` with `flag` noted as missing.
fn given<T: std::clone::Clone>(
    missing: &mut Vec<&'static str>,
    flag: &'static str,
    value: &Option<T>,
) -> Option<T> {
    if value.is_none() {
        missing.push(flag);
    }
    value.clone()
}

impl Step {
    /// The step `which` (not `run`) with its inputs, or the flags it lacks.
    pub fn new(
        rotate: &RotateSettings,
        which: Which,
    ) -> std::result::Result<Step, Vec<&'static str>> {
        let m = &mut Vec::new();
        let step = match which {
            Which::Clone => match (&rotate.source, &rotate.source_instance) {
                (Some(_), Some(_)) => {
                    m.push("only one of --source-cluster and --source-instance");
                    None
                }
                (None, Some(i)) => Some(Step::Clone(CloneFrom {
                    source: i.clone(),
                    instance: true,
                })),
                _ => given(m, "--source-cluster (or --source-instance)", &rotate.source).map(
                    |source| {
                        Step::Clone(CloneFrom {
                            source,
                            instance: false,
                        })
                    },
                ),
            },
            Which::Ready => Some(Step::Ready(Ready)),
            Which::Scrub => given(m, "--master-secret", &rotate.master_secret)
                .zip(given(m, "--scrub-dir", &rotate.scrub_dir))
                .map(|(master_secret, scrub_dir)| {
                    Step::Scrub(Scrub {
                        master_secret,
                        scrub_dir,
                    })
                }),
            Which::Migrate => given(m, "--master-secret", &rotate.master_secret)
                .map(|master_secret| Step::Migrate(Migrate { master_secret })),
            Which::Connect => given(m, "--dns-name", &rotate.dns_name)
                .zip(given(m, "--hosted-zone-id", &rotate.hosted_zone_id))
                .map(|(dns_name, hosted_zone_id)| {
                    Step::Connect(Connect {
                        dns_name,
                        hosted_zone_id,
                    })
                }),
            Which::Clean => Some(Step::Clean(Clean)),
            Which::Run => unreachable!("`run` is expanded into its steps"),
        };
        step.ok_or_else(|| std::mem::take(m))
    }

    pub fn which(&self) -> Which {
        match self {
            Step::Clone(_) => Which::Clone,
            Step::Ready(_) => Which::Ready,
            Step::Scrub(_) => Which::Scrub,
            Step::Migrate(_) => Which::Migrate,
            Step::Connect(_) => Which::Connect,
            Step::Clean(_) => Which::Clean,
        }
    }

    pub fn name(&self) -> &'static str {
        self.which().name()
    }
}

/// The prefix and the steps of `which`, checked before any call: every
/// missing flag is named in one usage error, and the scrub files are read.
pub fn preflight(rotate: &RotateSettings, which: Which) -> Result<(Prefix, Vec<Step>)> {
    let prefix = Prefix::new(&rotate.prefix).map_err(Error::usage)?;
    let names = which.steps();
    let mut steps = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    for w in &names {
        match Step::new(rotate, *w) {
            Ok(s) => steps.push(s),
            Err(flags) => {
                for f in flags {
                    if !missing.contains(&f) {
                        missing.push(f);
                    }
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "`rotate {}` needs {}",
            names
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(", "),
            missing.join(", ")
        )));
    }
    for s in &steps {
        if let Step::Scrub(s) = s {
            super::scrub::read_files(&s.scrub_dir)?;
        }
    }
    Ok((prefix, steps))
}
