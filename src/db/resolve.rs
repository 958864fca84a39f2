//! Turning settings into a connection target: the URL alone, or the URL and
//! flags layered over a Secrets Manager secret over an RDS cluster lookup, with
//! IAM auth and TLS decided once. IO (AWS calls, the cluster wait); the merging
//! itself is `migrator_core::conn`.

use std::time::{Duration, Instant};

use crate::aws::Aws;
use crate::aws::wait::Deadline;
use crate::db::{self, DatabaseInfo, Target, Tls};
use crate::interrupt::Interrupt;
use crate::settings::Settings;
use crate::tls::Ca;
use migrator_core::backoff::Backoff;
use migrator_core::conn::{Parts, TlsMode};
use migrator_core::error::{Error, Result};

/// The target, and how much of `--wait` is left for connecting. A signal ends
/// it at once, whichever AWS call it is waiting for.
pub async fn target(
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<(Target, DatabaseInfo, Option<Duration>)> {
    let (mut target, info, left) = interrupt
        .cut(resolve(settings, interrupt), "resolving the database")
        .await?;
    target.set_link(db::link::Link {
        timeout: settings.link_timeout,
    });
    Ok((target, info, left))
}

async fn resolve(
    settings: &Settings,
    interrupt: &Interrupt,
) -> Result<(Target, DatabaseInfo, Option<Duration>)> {
    let started = Instant::now();
    let c = &settings.connection;
    let url_parts = match settings.database_url.as_deref() {
        Some(url) => {
            migrator_core::redact::register_url_password(url);
            Some(
                migrator_core::conn::parse_url(url)
                    .map_err(|e| Error::usage(format!("--database-url: {e}")))?,
            )
        }
        None => None,
    };
    let flags = Parts {
        host: c.host.clone(),
        port: c.port,
        dbname: c.name.clone(),
        user: c.user.clone(),
        ..Parts::default()
    };
    let plain = !c.uses_aws();
    if plain && flags == Parts::default() {
        let mut parts = url_parts.ok_or_else(|| {
            Error::usage("no database: pass --database-url or set DATABASE_URL (or --db-secret / --rds-cluster)")
        })?;
        let tls = tls(
            c.tls.or(parts.tls),
            c.ca_file.clone().or(parts.ca_file.clone()),
            false,
        );
        if tls.mode == TlsMode::VerifyFull
            && let Some(host) = parts.host.as_mut()
        {
            follow_rds_alias(host).await;
        }
        let (t, info) = db::target::target(parts, &tls)?;
        return Ok((t, info, settings.wait));
    }
    let aws = if plain {
        None
    } else {
        Some(crate::aws::Sdk::load().await?)
    };
    let mut sources = Vec::new();
    let secret = match (&c.db_secret, &aws) {
        (Some(id), Some(aws)) => {
            sources.push(format!("secret `{id}`"));
            let text = aws.secret_string(id).await?;
            migrator_core::redact::register(&text);
            let (parts, values) = migrator_core::conn::parse_secret(&text)
                .map_err(|e| Error::usage(format!("secret `{id}`: {e}")))?;
            for v in values {
                migrator_core::redact::register(&v);
            }
            parts
        }
        _ => Parts::default(),
    };
    let cluster = match (&c.rds_cluster, &aws) {
        (Some(id), Some(aws)) => {
            sources.push(format!("cluster `{id}`"));
            let deadline = settings.wait.map(|w| Deadline::from_now(w, "--wait"));
            let info =
                crate::aws::wait::until_available(aws, id, deadline, CLUSTER_POLL, interrupt)
                    .await?;
            Parts {
                engine: info
                    .engine
                    .as_deref()
                    .and_then(migrator_core::conn::engine_of),
                host: info.endpoint,
                port: info.port,
                dbname: info.database_name,
                user: info.master_username,
                ..Parts::default()
            }
        }
        _ => Parts::default(),
    };
    if settings.database_url.is_some() {
        sources.insert(0, "--database-url".into());
    }
    let merged = flags
        .over(url_parts.unwrap_or_default())
        .over(secret.over(cluster));
    let tls = tls(
        c.tls.or(merged.tls),
        c.ca_file.clone().or(merged.ca_file.clone()),
        !plain,
    );
    if c.iam_auth && tls.mode == TlsMode::Disable {
        return Err(Error::usage(
            "--iam-auth sends a token as the password: it needs TLS; drop --tls disable",
        ));
    }
    let mut resolved = migrator_core::conn::complete(merged, !c.iam_auth, &sources.join(", "))?;
    if c.iam_auth || tls.mode == TlsMode::VerifyFull {
        follow_rds_alias(&mut resolved.host).await;
    }
    if c.iam_auth {
        let aws = aws.as_ref().expect("aws loaded for --iam-auth");
        resolved.password = Some(
            aws.iam_token(&resolved.host, resolved.port, &resolved.user)
                .await?,
        );
        tracing::info!(user = %resolved.user, "using an IAM auth token");
    }
    let (t, info) = db::target::target(resolved.into(), &tls)?;
    let left = settings.wait.map(|w| w.saturating_sub(started.elapsed()));
    Ok((t, info, left))
}

/// Checks, before anything is changed, that the settings layered over `base`
/// (what AWS says of a database whose password is not made yet: a clone
/// before `scrub`) make a connection: engine, host, user, database name, the
/// TLS mode and its CA. Connects to nothing and needs no password. The
/// merged parts, for what the caller stores.
pub fn preflight(settings: &Settings, base: Parts, sources: &str) -> Result<Parts> {
    let c = &settings.connection;
    let url_parts = match settings.database_url.as_deref() {
        Some(url) => {
            migrator_core::redact::register_url_password(url);
            migrator_core::conn::parse_url(url)
                .map_err(|e| Error::usage(format!("--database-url: {e}")))?
        }
        None => Parts::default(),
    };
    let flags = Parts {
        host: c.host.clone(),
        port: c.port,
        dbname: c.name.clone(),
        user: c.user.clone(),
        ..Parts::default()
    };
    let merged = flags.over(url_parts).over(base);
    let tls = tls(
        c.tls.or(merged.tls),
        c.ca_file.clone().or(merged.ca_file.clone()),
        true,
    );
    if c.iam_auth && tls.mode == TlsMode::Disable {
        return Err(Error::usage(
            "--iam-auth sends a token as the password: it needs TLS; drop --tls disable",
        ));
    }
    let resolved = migrator_core::conn::complete(merged.clone(), false, sources)?;
    db::target::target(resolved.into(), &tls)?;
    Ok(merged)
}

/// A host that is a CNAME to an RDS endpoint (the rotation's stable name) is
/// replaced by that endpoint: its certificate names the endpoint, and RDS
/// checks IAM tokens against it. The address is the same; the log says so.
async fn follow_rds_alias(host: &mut String) {
    if migrator_core::conn::is_rds_endpoint(host) {
        return;
    }
    let name = host.clone();
    let canonical = tokio::task::spawn_blocking(move || canonical_name(&name))
        .await
        .ok()
        .flatten();
    if let Some(endpoint) = canonical.and_then(|c| migrator_core::conn::rds_alias_target(host, &c))
    {
        tracing::info!(
            alias = %host,
            endpoint = %endpoint,
            "the host is a CNAME to an RDS endpoint: connecting to the endpoint, verifying TLS \
             against it and signing IAM tokens for it"
        );
        *host = endpoint;
    }
}

/// The resolver's canonical name for `host` (getaddrinfo with AI_CANONNAME:
/// the end of its CNAME chain), or `None` when it does not resolve.
fn canonical_name(host: &str) -> Option<String> {
    let c_host = std::ffi::CString::new(host).ok()?;
    // SAFETY: an all-zero addrinfo is the documented "no hints" value; the
    // fields set after it are plain integers.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut found: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `c_host` is a NUL-terminated string that outlives the call, the
    // service is NULL (allowed with a node), and `found` receives a list that
    // is freed below exactly once.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut found) };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: `found` is the non-null head of the list getaddrinfo returned;
    // its ai_canonname, when not NULL, is a NUL-terminated string owned by the
    // list, copied before the list is freed.
    unsafe {
        let p = (*found).ai_canonname;
        let name =
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned());
        libc::freeaddrinfo(found);
        name
    }
}

/// The TLS decision. An AWS source (`--db-secret`, `--rds-cluster`, `--iam-auth`)
/// defaults to verify-full against the RDS roots compiled in; a CA file replaces
/// those roots. Anything else defaults to prefer, and verifies only against a CA file.
fn tls(mode: Option<TlsMode>, ca: Option<std::path::PathBuf>, aws: bool) -> Tls {
    let default = if aws {
        TlsMode::VerifyFull
    } else {
        TlsMode::Prefer
    };
    Tls {
        mode: mode.unwrap_or(default),
        ca: ca.map(Ca::File).or(aws.then_some(Ca::Rds)),
    }
}

/// How often `--wait` looks at the cluster again.
const CLUSTER_POLL: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[tokio::test]
    async fn a_name_that_is_no_alias_of_an_rds_endpoint_stays() {
        assert!(canonical_name("localhost").is_some());
        assert_eq!(canonical_name("no-such-host.invalid"), None);
        let mut host = "localhost".to_string();
        follow_rds_alias(&mut host).await;
        assert_eq!(host, "localhost");
    }

    #[test]
    fn aws_sources_verify_against_the_rds_roots_unless_a_ca_file_replaces_them() {
        let file = || Some(PathBuf::from("/ca.pem"));
        let aws = tls(None, None, true);
        assert_eq!((aws.mode, aws.ca), (TlsMode::VerifyFull, Some(Ca::Rds)));
        let aws = tls(Some(TlsMode::VerifyCa), file(), true);
        assert_eq!(
            (aws.mode, aws.ca),
            (TlsMode::VerifyCa, Some(Ca::File("/ca.pem".into())))
        );
        let plain = tls(None, None, false);
        assert_eq!((plain.mode, plain.ca), (TlsMode::Prefer, None));
        let plain = tls(Some(TlsMode::VerifyFull), file(), false);
        assert_eq!(plain.ca, Some(Ca::File("/ca.pem".into())));
    }
}
