//! The connection target: connection parts (from a URL, flags, a secret, a
//! cluster lookup, merged by `migrator_core::conn`) turned directly into a
//! `tokio_postgres::Config` or `MySqlConnectOptions`, with TLS decided once for
//! both engines. No URL string is built here: a password never has to survive
//! encoding and parsing back.

use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use tokio_postgres::Config;
use tokio_postgres::config::{
    ChannelBinding, Host, LoadBalanceHosts, SslMode, SslNegotiation, TargetSessionAttrs,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::link::Link;
use crate::tls::Ca;
use migrator_core::conn::{Parts, TlsMode};
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::report::DatabaseInfo;

/// What a driver connects to. Holds the secret; its Debug output does not.
pub enum Target {
    Postgres(Config, MakeRustlsConnect, Link),
    Mysql(MySqlConnectOptions, Link),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Postgres(..) => "Target::Postgres(..)",
            Target::Mysql(..) => "Target::Mysql(..)",
        })
    }
}

impl Target {
    pub fn engine(&self) -> Engine {
        match self {
            Target::Postgres(..) => Engine::Postgres,
            Target::Mysql(..) => Engine::Mysql,
        }
    }

    /// Bounds how long the connections to this target may stay silent
    /// (`--link-timeout`; see `db::link`).
    pub fn set_link(&mut self, link: Link) {
        match self {
            Target::Postgres(config, _, l) => {
                link.configure_postgres(config);
                *l = link;
            }
            Target::Mysql(_, l) => *l = link,
        }
    }
}

/// TLS for the connection: the mode and what to verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    pub ca: Option<Ca>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: TlsMode::Prefer,
            ca: None,
        }
    }
}

/// The driver target for `parts` (whose password the caller has already
/// registered with `migrator_core::redact`). `parts.tls`/`parts.ca_file` are not
/// read: `tls` is the decision.
pub fn target(parts: Parts, tls: &Tls) -> Result<(Target, DatabaseInfo)> {
    match parts.engine {
        Some(Engine::Postgres) => postgres(parts, tls),
        Some(Engine::Mysql) => mysql(parts, tls),
        None => Err(Error::usage(
            "the connection names no engine; use a postgres:// or mysql:// URL",
        )),
    }
}

fn postgres(parts: Parts, tls: &Tls) -> Result<(Target, DatabaseInfo)> {
    let mut config = Config::new();
    if let Some(h) = &parts.host {
        config.host(h);
    }
    if let Some(p) = parts.port {
        config.port(p);
    }
    if let Some(d) = &parts.dbname {
        config.dbname(d);
    }
    if let Some(u) = &parts.user {
        config.user(u);
    }
    if let Some(p) = &parts.password {
        config.password(p);
    }
    for (k, v) in &parts.params {
        postgres_param(&mut config, k, v)?;
    }
    if config.get_application_name().is_none() {
        config.application_name("migrator");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.ssl_mode(match tls.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    let connector = MakeRustlsConnect::new(crate::tls::client_config(tls.mode, tls.ca.as_ref())?);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let name = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_string();
    let info = DatabaseInfo {
        engine: Engine::Postgres,
        host,
        port,
        name,
    };
    Ok((Target::Postgres(config, connector, Link::default()), info))
}

/// The URL query parameters libpq and tokio-postgres know (TLS ones aside,
/// which `Tls` decides). An unknown one is refused, as tokio-postgres does.
fn postgres_param(config: &mut Config, key: &str, value: &str) -> Result<()> {
    let invalid = || {
        Error::usage(format!(
            "--database-url: invalid value for the PostgreSQL parameter `{key}`"
        ))
    };
    let secs = || -> Result<Option<Duration>> {
        let n: i64 = value.parse().map_err(|_| invalid())?;
        Ok((n > 0).then(|| Duration::from_secs(n as u64)))
    };
    match key {
        "user" => {
            config.user(value);
        }
        "password" => {
            migrator_core::redact::register(value);
            config.password(value);
        }
        "dbname" => {
            config.dbname(value);
        }
        "options" => {
            config.options(value);
        }
        "application_name" => {
            config.application_name(value);
        }
        "host" => {
            for h in value.split(',') {
                config.host(h);
            }
        }
        "hostaddr" => {
            for a in value.split(',') {
                config.hostaddr(a.parse().map_err(|_| invalid())?);
            }
        }
        "port" => {
            for p in value.split(',') {
                config.port(if p.is_empty() {
                    5432
                } else {
                    p.parse().map_err(|_| invalid())?
                });
            }
        }
        "connect_timeout" | "tcp_user_timeout" | "keepalives_idle" | "keepalives_interval" => {
            // Zero or less means "none", as libpq reads it.
            if let Some(d) = secs()? {
                match key {
                    "connect_timeout" => config.connect_timeout(d),
                    "tcp_user_timeout" => config.tcp_user_timeout(d),
                    "keepalives_idle" => config.keepalives_idle(d),
                    _ => config.keepalives_interval(d),
                };
            }
        }
        "keepalives" => {
            let n: u64 = value.parse().map_err(|_| invalid())?;
            config.keepalives(n != 0);
        }
        "keepalives_retries" => {
            config.keepalives_retries(value.parse().map_err(|_| invalid())?);
        }
        "target_session_attrs" => {
            use TargetSessionAttrs::*;
            let named = [
                ("any", Any),
                ("read-write", ReadWrite),
                ("read-only", ReadOnly),
            ];
            config.target_session_attrs(one_of(value, &named).ok_or_else(invalid)?);
        }
        "channel_binding" => {
            use ChannelBinding::*;
            let named = [
                ("disable", Disable),
                ("prefer", Prefer),
                ("require", Require),
            ];
            config.channel_binding(one_of(value, &named).ok_or_else(invalid)?);
        }
        "load_balance_hosts" => {
            use LoadBalanceHosts::*;
            let named = [("disable", Disable), ("random", Random)];
            config.load_balance_hosts(one_of(value, &named).ok_or_else(invalid)?);
        }
        "sslnegotiation" => {
            use SslNegotiation::*;
            let named = [("postgres", Postgres), ("direct", Direct)];
            config.ssl_negotiation(one_of(value, &named).ok_or_else(invalid)?);
        }
        _ => {
            return Err(Error::usage(format!(
                "--database-url: unknown PostgreSQL parameter `{key}`"
            )));
        }
    }
    Ok(())
}

/// The value that `value` names among `named`.
fn one_of<T: Copy>(value: &str, named: &[(&str, T)]) -> Option<T> {
    named.iter().find(|(n, _)| *n == value).map(|(_, v)| *v)
}

fn mysql(parts: Parts, tls: &Tls) -> Result<(Target, DatabaseInfo)> {
    let mut options = MySqlConnectOptions::new();
    if let Some(h) = &parts.host {
        options = options.host(h);
    }
    if let Some(p) = parts.port {
        options = options.port(p);
    }
    if let Some(u) = &parts.user {
        options = options.username(u);
    }
    if let Some(p) = &parts.password {
        options = options.password(p);
    }
    if let Some(d) = &parts.dbname {
        options = options.database(d);
    }
    // The URL parameters sqlx reads; others are ignored, as sqlx ignores them.
    // A `timezone` is not honoured: the server's own is kept (below).
    for (k, v) in &parts.params {
        options = match k.as_str() {
            "charset" => options.charset(v),
            "collation" => options.collation(v),
            "sslca" => options.ssl_ca(v),
            "sslcert" | "ssl-cert" => options.ssl_client_cert(v),
            "sslkey" | "ssl-key" => options.ssl_client_key(v),
            "statement-cache-capacity" => {
                options.statement_cache_capacity(v.parse().map_err(|_| {
                    Error::usage("--database-url: statement-cache-capacity is not a number")
                })?)
            }
            "socket" => options.socket(v),
            _ => options,
        };
    }
    let options = options
        // Run scripts as the mysql client would: keep the server's sql_mode and
        // time zone instead of sqlx's defaults (which turn `||` into CONCAT).
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .timezone(None)
        .ssl_mode(match tls.mode {
            TlsMode::Disable => MySqlSslMode::Disabled,
            TlsMode::Prefer => MySqlSslMode::Preferred,
            TlsMode::Require => MySqlSslMode::Required,
            TlsMode::VerifyCa => MySqlSslMode::VerifyCa,
            TlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
        });
    let options = match &tls.ca {
        Some(Ca::File(ca)) => {
            crate::tls::load_roots(ca)?;
            options.ssl_ca(ca)
        }
        Some(Ca::Rds) => options.ssl_ca_from_pem(crate::tls::RDS_ROOTS_PEM.to_vec()),
        None if tls.mode.verifies() => return Err(crate::tls::needs_a_ca(tls.mode)),
        None => options,
    };
    let Some(name) = options.get_database().map(str::to_string) else {
        return Err(Error::usage(
            "--database-url names no database; add it to the path: mysql://user:password@host:3306/dbname",
        ));
    };
    let info = DatabaseInfo {
        engine: Engine::Mysql,
        host: options.get_host().to_string(),
        port: options.get_port(),
        name,
    };
    Ok((Target::Mysql(options, Link::default()), info))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL with default TLS (prefer), as `--database-url` alone gives.
    fn parse_url(url: &str) -> Result<(Target, DatabaseInfo)> {
        let parts = migrator_core::conn::parse_url(url)
            .map_err(|e| Error::usage(format!("--database-url: {e}")))?;
        target(parts, &Tls::default())
    }

    #[test]
    fn unsupported_schemes_are_usage_errors() {
        let err = parse_url("sqlite://x.db").unwrap_err();
        assert_eq!(err.exit_status().code(), 2);
        assert!(err.to_string().contains("sqlite://"));
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn urls_give_engine_host_and_database_but_no_credentials() {
        let (t, info) = parse_url("postgres://u:s3cret@db.example:6543/app").unwrap();
        assert_eq!(t.engine(), Engine::Postgres);
        assert_eq!(
            (info.host.as_str(), info.port, info.name.as_str()),
            ("db.example", 6543, "app")
        );
        assert!(!format!("{t:?}{info:?}").contains("s3cret"));
        let (t, info) = parse_url("mariadb://root:pw@127.0.0.1/shop").unwrap();
        assert_eq!(t.engine(), Engine::Mysql);
        assert_eq!((info.port, info.name.as_str()), (3306, "shop"));
    }

    #[test]
    fn mariadb_scheme_and_missing_database() {
        let (_, info) = parse_url("mariadb://root@localhost:3307/app").unwrap();
        assert_eq!((info.host.as_str(), info.port), ("localhost", 3307));
        let err = parse_url("mysql://root@localhost").unwrap_err();
        assert!(err.to_string().contains("names no database"), "{err}");
    }

    #[test]
    fn tls_params_are_left_to_tls_and_others_kept() {
        let (t, _) = parse_url(
            "postgres://h/d?sslmode=verify-full&application_name=x&sslrootcert=/c&connect_timeout=3",
        )
        .unwrap();
        let Target::Postgres(c, ..) = t else {
            panic!("postgres")
        };
        assert_eq!(c.get_application_name(), Some("x"));
        assert_eq!(c.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(
            c.get_ssl_mode(),
            SslMode::Prefer,
            "Tls decides, not the URL"
        );
        let (t, _) = parse_url("postgres://h/d").unwrap();
        let Target::Postgres(c, ..) = t else {
            panic!("postgres")
        };
        assert_eq!(c.get_application_name(), Some("migrator"));
        assert!(parse_url("postgres://h/d?bogus=1").is_err());
        assert!(
            parse_url("postgres://h/d?target_session_attrs=read-write&keepalives_idle=30").is_ok()
        );
        let err = parse_url("postgres://h/d?target_session_attrs=primary").unwrap_err();
        assert!(err.to_string().contains("target_session_attrs"), "{err}");
        assert!(parse_url("mysql://h/d?ssl-mode=required&charset=utf8mb4").is_ok());
    }

    #[test]
    fn passwords_with_reserved_characters_reach_the_driver_as_they_are() {
        let parts = Parts {
            engine: Some(Engine::Postgres),
            host: Some("h".into()),
            user: Some("u".into()),
            password: Some("a@b:c/d?e%f".into()),
            dbname: Some("d".into()),
            ..Parts::default()
        };
        let (t, _) = target(parts, &Tls::default()).unwrap();
        let Target::Postgres(c, ..) = t else {
            panic!("postgres")
        };
        assert_eq!(c.get_password(), Some(&b"a@b:c/d?e%f"[..]));
    }
}
