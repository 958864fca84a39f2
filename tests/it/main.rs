//! Integration tests: the real binary against real PostgreSQL and MariaDB.
//!
//! Servers are addressed by `MIGRATOR_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`) and `MIGRATOR_TEST_MYSQL` (default
//! `mysql://root@127.0.0.1:3306`); `scripts/test` starts them when they are down.
//! Every test makes its own uniquely named database and drops it.
//! `static_binary` runs the binary in an empty chroot; where chroot is refused
//! (not root) it skips with a message, unless `MIGRATOR_TEST_REQUIRE_CHROOT` is set.
//! `ecs` runs `migrator ecs run` against a moto server per test (`moto`); where
//! moto is not installed it skips with a message, unless `MIGRATOR_TEST_REQUIRE_MOTO`
//! is set.

mod buildspec;
mod common;
mod connect;
mod dockerfile;
mod ecs;
mod fake_http;
mod formats;
mod moto;
mod notify;
mod rotate;
mod runner;
mod safety;
mod signals;
mod static_binary;
