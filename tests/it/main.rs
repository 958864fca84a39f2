//! Integration tests: the real binary against real PostgreSQL and MariaDB.
//!
//! Servers are addressed by `MIGRATOR_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`) and `MIGRATOR_TEST_MYSQL` (default
//! `mysql://root@127.0.0.1:3306`); `scripts/test` starts them when they are down.
//! Every test makes its own uniquely named database and drops it.
//!
//! Skipping. Some tests need more of the machine than the two servers: moto
//! (`moto`: one harness for the AWS tests), PyYAML (`buildspec`), chroot and
//! `ldd` and a DNS server on 127.0.0.1:53 (`static_binary`), a throwaway
//! PostgreSQL cluster run as root (`connect`'s TLS test, `signals`' `--wait`
//! test). A test whose component is missing calls
//! `common::unavailable(Component::X, why)` and returns; that is the only way a
//! test may skip. It prints `skipped: ...` on stderr, unless
//! `MIGRATOR_TEST_REQUIRE_<NAME>` is set (MOTO, PYYAML, CHROOT, LDD, FAKE_DNS,
//! PG_THROWAWAY; `MIGRATOR_TEST_REQUIRE_ALL` for every one), where it fails the
//! test instead. CI (`.ci/run`) sets `MIGRATOR_TEST_REQUIRE_ALL`, so nothing
//! skips there.

mod buildspec;
mod common;
mod connect;
mod doc_commands;
mod dockerfile;
mod docs;
mod ecs;
mod edges;
mod fake_http;
mod faults;
mod formats;
mod layers;
mod moto;
mod moto_like;
mod notify;
mod proxy;
mod rehearsal;
mod rotate;
mod runner;
mod safety;
mod signals;
mod static_binary;
mod trips;
