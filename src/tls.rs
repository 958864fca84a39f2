//! Where database TLS finds its trust anchors.
//!
//! For now only the default location of the Amazon RDS CA bundle lives here;
//! the TLS setup of the drivers is to read it. The binary is static and runs in
//! images that have no system CA store, so database certificates are verified
//! against this bundle (or `--ca-file`), never against files the image may or
//! may not have. This module must never fall back to an OpenSSL or system store.

/// Default path of the Amazon RDS CA bundle (`global-bundle.pem`) inside the
/// image: the `Dockerfile` copies the pinned bundle here, and an application
/// image that takes the binary copies it to the same path.
pub const RDS_CA_BUNDLE: &str = "/etc/migrator/rds-ca-bundle.pem";
