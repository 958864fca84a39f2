//! The pure modules under fuzzing, compiled from the main crate's own files:
//! the same source, without the drivers and the AWS SDK in the sanitizer build.

#[path = "../../src/migration.rs"]
pub mod migration;

#[path = "../../src/sql/split.rs"]
pub mod split;

#[path = "../../src/source/parse.rs"]
pub mod parse;
