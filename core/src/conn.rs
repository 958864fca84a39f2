//! Where the connection comes from: a URL, a Secrets Manager secret, an RDS
//! cluster lookup, or several of them layered.
//!
//! Pure: parses URLs and secrets into [`Parts`], merges layers (flags override
//! the secret, which overrides the cluster lookup), and names what is missing.
//! It never prints a value: only key names appear in its errors.

use std::path::PathBuf;

use crate::error::Error;
use crate::migration::Engine;

/// How the database connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, certificate not verified.
    Prefer,
    /// TLS, certificate not verified.
    Require,
    /// TLS, certificate chain verified against the CA; host name not checked.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

impl TlsMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" | "preferred" => TlsMode::Prefer,
            "require" | "required" => TlsMode::Require,
            "verify-ca" | "verify_ca" => TlsMode::VerifyCa,
            "verify-full" | "verify_identity" => TlsMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn verifies(self) -> bool {
        matches!(self, TlsMode::VerifyCa | TlsMode::VerifyFull)
    }
}

/// Connection parameters from one source; `None` means "this source does not say".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub engine: Option<Engine>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub dbname: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `sslmode` / `ssl-mode` from a URL.
    pub tls: Option<TlsMode>,
    /// `sslrootcert` / `ssl-ca` from a URL.
    pub ca_file: Option<PathBuf>,
    /// Other URL query parameters, passed on as they were (`key=value`).
    pub params: Vec<(String, String)>,
}

impl Parts {
    /// `self`, with every field it does not set taken from `lower`.
    pub fn over(self, lower: Parts) -> Parts {
        let mut params = self.params;
        for (k, v) in lower.params {
            if !params.iter().any(|(pk, _)| *pk == k) {
                params.push((k, v));
            }
        }
        Parts {
            engine: self.engine.or(lower.engine),
            host: self.host.or(lower.host),
            port: self.port.or(lower.port),
            dbname: self.dbname.or(lower.dbname),
            user: self.user.or(lower.user),
            password: self.password.or(lower.password),
            tls: self.tls.or(lower.tls),
            ca_file: self.ca_file.or(lower.ca_file),
            params,
        }
    }
}

/// An engine name as RDS, Secrets Manager or a URL scheme spells it.
/// Whether `name` is an Amazon RDS endpoint (`….rds.amazonaws.com`, China's
/// `….rds.amazonaws.com.cn`): the names RDS certificates hold and IAM tokens
/// are checked against.
pub fn is_rds_endpoint(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n.ends_with(".rds.amazonaws.com") || n.ends_with(".rds.amazonaws.com.cn")
}

/// The RDS endpoint behind `host` when the resolver's canonical name for it
/// (the end of its CNAME chain) is one and `host` is not: a stable name such
/// as the rotation's, through which TLS must be verified against, and IAM
/// tokens signed for, the endpoint.
pub fn rds_alias_target(host: &str, canonical: &str) -> Option<String> {
    let same = host
        .trim_end_matches('.')
        .eq_ignore_ascii_case(canonical.trim_end_matches('.'));
    (!same && is_rds_endpoint(canonical) && !is_rds_endpoint(host))
        .then(|| canonical.trim_end_matches('.').to_string())
}

pub fn engine_of(name: &str) -> Option<Engine> {
    match name.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "aurora-postgresql" => Some(Engine::Postgres),
        "mysql" | "mariadb" | "aurora" | "aurora-mysql" => Some(Engine::Mysql),
        _ => None,
    }
}

/// Decodes `%XX` escapes (invalid ones are kept as they are).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `scheme://[user[:password]@]host[:port][/dbname][?k=v&…]`.
pub fn parse_url(url: &str) -> Result<Parts, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL; expected e.g. postgres://user:password@host:5432/dbname")?;
    let engine = engine_of(scheme).ok_or_else(|| {
        format!("unsupported scheme `{scheme}://`; use postgres://, postgresql://, mysql:// or mariadb://")
    })?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(u)), None),
        },
        None => (None, None),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => Some(p.parse::<u16>().map_err(|_| match p.parse::<u64>() {
            Ok(_) => format!("port `{p}` is out of range (1-65535)"),
            Err(_) => format!("port `{p}` is not a number"),
        })?),
        _ => None,
    };
    let mut parts = Parts {
        engine: Some(engine),
        host: (!host.is_empty()).then(|| percent_decode(&host)),
        port,
        dbname: (!path.is_empty()).then(|| percent_decode(path)),
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
        ..Parts::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "sslmode" | "ssl-mode" | "ssl_mode" => {
                parts.tls = Some(TlsMode::parse(&v.to_ascii_lowercase()).ok_or_else(|| {
                    format!("{k}={v} is not a TLS mode; use disable, prefer, require, verify-ca or verify-full")
                })?);
            }
            "sslrootcert" | "ssl-ca" | "ssl_ca" => parts.ca_file = Some(PathBuf::from(v)),
            _ => parts.params.push((k.to_string(), v)),
        }
    }
    Ok(parts)
}

/// A secret's text: a connection URL, or the RDS JSON format
/// (`engine`, `host`, `username`, `password`, `dbname`, `port` as number or
/// string). Returns the parts and every string value (to be redacted).
pub fn parse_secret(text: &str) -> Result<(Parts, Vec<String>), String> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        let parts = parse_url(trimmed)
            .map_err(|e| format!("the secret is neither JSON nor a URL ({e})"))?;
        let mut secrets = vec![trimmed.to_string()];
        secrets.extend(parts.password.clone());
        return Ok((parts, secrets));
    }
    let value: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| {
        format!(
            "the secret is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let obj = value
        .as_object()
        .ok_or("the secret's JSON is not an object")?;
    let text_of = |key: &str| -> Result<Option<String>, String> {
        match obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(serde_json::Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(format!("key `{key}` is neither a string nor a number")),
        }
    };
    let engine = match text_of("engine")? {
        Some(e) => Some(
            engine_of(&e)
                .ok_or_else(|| format!("key `engine` names an engine we do not support (`{e}`)"))?,
        ),
        None => None,
    };
    let port = match text_of("port")? {
        Some(p) => Some(
            p.trim()
                .parse::<u16>()
                .map_err(|_| "key `port` is not a port number".to_string())?,
        ),
        None => None,
    };
    let parts = Parts {
        engine,
        host: text_of("host")?,
        port,
        dbname: match text_of("dbname")? {
            Some(d) => Some(d),
            None => text_of("database")?,
        },
        user: text_of("username")?,
        password: text_of("password")?,
        ..Parts::default()
    };
    let secrets = obj
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|s| Some(s) == parts.password.as_ref())
        .collect();
    Ok((parts, secrets))
}

/// A complete set of connection parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
    pub params: Vec<(String, String)>,
}

impl From<Resolved> for Parts {
    /// The complete parts, for the one builder of driver targets.
    fn from(r: Resolved) -> Parts {
        Parts {
            engine: Some(r.engine),
            host: Some(r.host),
            port: Some(r.port),
            dbname: Some(r.dbname),
            user: Some(r.user),
            password: r.password,
            tls: None,
            ca_file: None,
            params: r.params,
        }
    }
}

/// Checks that the merged parts are complete. `password_needed` is false with
/// IAM auth (the token is made afterwards). `sources` says where to add what is
/// missing, for the message.
pub fn complete(parts: Parts, password_needed: bool, sources: &str) -> Result<Resolved, Error> {
    let mut missing = Vec::new();
    if parts.engine.is_none() {
        missing.push("engine");
    }
    if parts.host.is_none() {
        missing.push("host");
    }
    if parts.user.is_none() {
        missing.push("username");
    }
    if password_needed && parts.password.is_none() {
        missing.push("password");
    }
    if parts.dbname.is_none() {
        missing.push("dbname");
    }
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "the connection is missing {} ({sources}); add the key(s) to the secret or pass \
             --db-host/--db-port/--db-name/--db-user (the engine comes from the URL scheme, the \
             secret's `engine`, or the cluster)",
            missing.join(", ")
        )));
    }
    let engine = parts.engine.expect("checked");
    Ok(Resolved {
        engine,
        host: parts.host.expect("checked"),
        port: parts.port.unwrap_or(match engine {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }),
        dbname: parts.dbname.expect("checked"),
        user: parts.user.expect("checked"),
        password: parts.password,
        params: parts.params,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cname_to_an_rds_endpoint_is_followed() {
        let endpoint = "app-dev-20261122.cluster-abc.eu-west-1.rds.amazonaws.com";
        assert_eq!(
            super::rds_alias_target("db.dev.internal", &format!("{endpoint}.")),
            Some(endpoint.to_string())
        );
        assert_eq!(super::rds_alias_target(endpoint, endpoint), None);
        assert_eq!(
            super::rds_alias_target("db.dev.internal", "db.dev.internal"),
            None
        );
        assert_eq!(
            super::rds_alias_target("db.dev.internal", "lb.example.com"),
            None
        );
        assert!(super::is_rds_endpoint(
            "x.cluster-y.cn-north-1.rds.amazonaws.com.cn"
        ));
    }

    use super::*;

    #[test]
    fn urls_parse_into_parts_with_tls_params_split_off() {
        let p = parse_url("postgres://app:p%40ss@db.x:6543/app?sslmode=verify-full&sslrootcert=/ca.pem&application_name=m").unwrap();
        assert_eq!(p.engine, Some(Engine::Postgres));
        assert_eq!(p.password.as_deref(), Some("p@ss"));
        assert_eq!((p.host.as_deref(), p.port), (Some("db.x"), Some(6543)));
        assert_eq!(p.tls, Some(TlsMode::VerifyFull));
        assert_eq!(p.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            p.params,
            [("application_name".to_string(), "m".to_string())]
        );
        assert!(parse_url("postgres://h/db?sslmode=bogus").is_err());
        let v6 = parse_url("mysql://u@[::1]:3307/d").unwrap();
        assert_eq!((v6.host.as_deref(), v6.port), (Some("::1"), Some(3307)));
    }

    #[test]
    fn rds_json_secrets_take_port_as_number_or_string() {
        for port in ["5433", "\"5433\""] {
            let text = format!(
                r#"{{"engine":"aurora-postgresql","host":"h","username":"u","password":"pw-1234","dbname":"d","port":{port}}}"#
            );
            let (p, secrets) = parse_secret(&text).unwrap();
            assert_eq!(p.port, Some(5433));
            assert_eq!(p.engine, Some(Engine::Postgres));
            assert_eq!(secrets, ["pw-1234"]);
        }
        let (p, _) = parse_secret(r#"{"username":"admin","password":"x-y-z-w"}"#).unwrap();
        assert_eq!((p.user.as_deref(), p.host), (Some("admin"), None));
        let (p, s) = parse_secret("mysql://u:pw-5678@h:3306/d").unwrap();
        assert_eq!(p.engine, Some(Engine::Mysql));
        assert!(s.contains(&"pw-5678".to_string()));
        assert!(parse_secret(r#"{"port":"abc"}"#).is_err());
        assert!(
            parse_secret("{not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }

    #[test]
    fn flags_override_the_secret_which_overrides_the_cluster() {
        let cluster = Parts {
            engine: Some(Engine::Postgres),
            host: Some("writer.cluster".into()),
            port: Some(5432),
            dbname: Some("app".into()),
            user: Some("master".into()),
            ..Parts::default()
        };
        let secret = Parts {
            user: Some("app_user".into()),
            password: Some("s3cret-pw".into()),
            ..Parts::default()
        };
        let flags = Parts {
            host: Some("127.0.0.1".into()),
            ..Parts::default()
        };
        let r = complete(flags.over(secret.over(cluster)), true, "test").unwrap();
        assert_eq!(r.host, "127.0.0.1");
        assert_eq!(r.user, "app_user");
        assert_eq!(r.dbname, "app");
        assert_eq!(r.port, 5432, "the engine's default port");
        assert_eq!(r.password.as_deref(), Some("s3cret-pw"));
    }

    #[test]
    fn missing_keys_are_named_and_values_are_not() {
        let p = Parts {
            engine: Some(Engine::Mysql),
            host: Some("h".into()),
            user: Some("u".into()),
            dbname: Some("d".into()),
            ..Parts::default()
        };
        let err = complete(p.clone(), true, "secret `app/db`")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing password"), "{err}");
        assert!(err.contains("secret `app/db`"), "{err}");
        assert!(
            complete(p, false, "x").is_ok(),
            "IAM auth needs no password"
        );
    }

    #[test]
    fn resolved_parts_keep_every_value() {
        let r = Resolved {
            engine: Engine::Mysql,
            host: "h".into(),
            port: 3306,
            dbname: "d".into(),
            user: "u".into(),
            password: Some("a@b:c/d?e%f".into()),
            params: vec![],
        };
        let back = Parts::from(r);
        assert_eq!(back.password.as_deref(), Some("a@b:c/d?e%f"));
        assert_eq!(back.port, Some(3306));
    }
}
