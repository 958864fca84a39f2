//! The pure core of `migrator`: everything that decides, and nothing that does IO.
//!
//! Migration files are parsed here (`source`, `split`), the history table is
//! modelled (`history`), runs are planned and checked (`plan`, `adopt`), and
//! results are described (`report`, `status`, `slack`, `rotate::summary`), and a
//! rehearsal's measurements are judged (`rehearsal`). The
//! clone rotation's decisions (`rotate::plan`) and the `ecs run` spec (`ecs`) live
//! here too. Nothing in this crate opens a file, a socket or a clock: callers pass
//! bytes, rows and `now` in. The package's dependency list (serde, serde_json,
//! sha2, thiserror) is what keeps it so.

pub mod adopt;
pub mod backoff;
pub mod conn;
pub mod date;
pub mod duration;
pub mod ecs;
pub mod error;
pub mod history;
pub mod migration;
pub mod plan;
pub mod redact;
pub mod rehearsal;
pub mod report;
pub mod rotate;
pub mod scaffold;
pub mod slack;
pub mod source;
pub mod split;
pub mod status;
pub mod text;
