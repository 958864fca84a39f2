//! `migrator ecs run`: the CI side of a deploy. Starts the migration task on ECS,
//! follows it until it stops, and exits with its migration container's exit code.
//!
//! Every judgement is `decide`'s, and the request is `spec`'s; both are pure.

pub mod decide;
pub mod spec;
