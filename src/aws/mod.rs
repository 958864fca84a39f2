//! The AWS edge: Secrets Manager, RDS cluster lookup (and the wait for one to
//! be available) and IAM auth tokens.
//!
//! One small trait ([`Aws`]) with the SDK behind it. Credentials and region come
//! from the standard chain (env, profile, ECS task role, IMDS); `AWS_ENDPOINT_URL`
//! is honoured (that is how tests reach moto). Calls are bounded by timeouts and
//! retried by the SDK's standard retry policy with more attempts than its
//! default (see `retries`). AWS endpoints are trusted through roots
//! compiled into the binary. Nothing here logs a secret value or a token.

pub mod ecs;
pub mod rotate;
pub mod wait;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_types::SdkConfig;

use migrator_core::error::{Error, Result};
use migrator_core::rotate::plan::Cluster;

/// Reading RDS clusters and instances: what `--rds-cluster` and the rotation
/// both ask, answered in the one model, `migrator_core::rotate::plan::Cluster`.
#[allow(async_fn_in_trait)]
pub trait Clusters {
    /// One cluster; `None` when RDS says it does not exist.
    async fn cluster(&self, id: &str) -> Result<Option<Cluster>>;
    /// One instance; `None` when RDS says it does not exist.
    async fn instance(&self, id: &str) -> Result<Option<rotate::Instance>>;
}

#[allow(async_fn_in_trait)]
pub trait Aws {
    /// The secret's string value.
    async fn secret_string(&self, id: &str) -> Result<String>;
    /// A short-lived IAM database auth token for `user` at `host:port`.
    async fn iam_token(&self, host: &str, port: u16, user: &str) -> Result<String>;
}

/// The AWS SDK, configured from the environment.
pub struct Sdk {
    pub config: SdkConfig,
}

impl Sdk {
    /// The configuration from the standard chain; a missing region is a
    /// configuration error (exit 2) naming what to set, before any call.
    pub async fn load() -> Result<Self> {
        let trust = TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(crate::tls::compiled_in_roots_pem());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(
                TlsContext::builder()
                    .with_trust_store(trust)
                    .build()
                    .expect("compiled-in roots form a trust store"),
            )
            .build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(retries())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(15))
                    .operation_timeout(Duration::from_secs(45))
                    .build(),
            )
            .load()
            .await;
        if config.region().is_none() {
            return Err(Error::usage(MISSING_REGION));
        }
        Ok(Sdk { config })
    }
}

/// The SDK's standard retry mode (throttling and transient errors, with
/// jittered exponential backoff and its retry quota), with 8 attempts instead of
/// 3: a run that polls ECS for an hour makes thousands of calls, and with 3
/// attempts one throttled call in five (what a busy account sees) fails one call
/// in 125. The backoff is 0.5 s doubling to 10 s, so that all 8 attempts fit in
/// the 45 s operation timeout below.
fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(8)
        .with_initial_backoff(Duration::from_millis(500))
        .with_max_backoff(Duration::from_secs(10))
}

/// Maps an SDK error (of any AWS service) to one line: the operation, then the
/// service's error code, message and request id, or what kept us from AWS. The
/// service's answer (not found, access denied) is a configuration problem (exit
/// 2), and so are a missing region or missing credentials, named with what to
/// set; not reaching AWS at all is exit 3. The SDK's whole answer (headers,
/// body) is logged at `MIGRATOR_LOG=debug` only.
pub(crate) fn sdk_error<E, R>(what: &str, e: aws_sdk_rds::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
    use aws_types::request_id::RequestId;
    tracing::debug!(error = %DisplayErrorContext(&e), "{what}: the SDK's whole answer");
    if let Some(missing) = missing_setup(&e) {
        return Error::usage(format!("{what}: {missing}"));
    }
    match &e {
        SdkError::ServiceError(_) => {
            let meta = e.meta();
            let id = meta
                .request_id()
                .map(|id| format!(" (request id {id})"))
                .unwrap_or_default();
            Error::usage(format!(
                "{what}: {}: {}{id}",
                meta.code().unwrap_or("error"),
                meta.message().unwrap_or("no message").trim()
            ))
        }
        SdkError::TimeoutError(_) => Error::Unreachable {
            target: "AWS".to_string(),
            message: format!("{what}: no answer in time"),
        },
        _ => Error::Unreachable {
            target: "AWS".to_string(),
            message: format!("{what}: {}", one_line(&DisplayErrorContext(&e).to_string())),
        },
    }
}

const MISSING_REGION: &str = "no AWS region: set AWS_REGION (or AWS_PROFILE, a profile with one)";

/// What a missing piece of the AWS setup needs, found in an error's causes.
fn missing_setup(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return Some(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or \
                 AWS_PROFILE, or run with a task role",
            );
        }
        if c.to_string().contains("Missing Region") {
            return Some(MISSING_REGION);
        }
        cause = c.source();
    }
    None
}

/// The first line of a message, at most 300 characters: a cause, never a dump.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

impl Aws for Sdk {
    async fn secret_string(&self, id: &str) -> Result<String> {
        let client = aws_sdk_secretsmanager::Client::new(&self.config);
        let out = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("reading secret `{id}` from Secrets Manager"), e))?;
        match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => Ok(s.to_string()),
            (None, Some(b)) => String::from_utf8(b.as_ref().to_vec())
                .map_err(|_| Error::usage(format!("secret `{id}` is binary and not UTF-8 text"))),
            (None, None) => Err(Error::usage(format!("secret `{id}` has no value"))),
        }
    }

    async fn iam_token(&self, host: &str, port: u16, user: &str) -> Result<String> {
        iam_token(&self.config, host, port, user).await
    }
}

/// Makes an IAM auth token with the SDK's generator (clock and credentials come
/// from `config`, so tests can fix them).
pub async fn iam_token(config: &SdkConfig, host: &str, port: u16, user: &str) -> Result<String> {
    use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
    let region = config.region().cloned().ok_or_else(|| {
        Error::usage("--iam-auth needs an AWS region: set AWS_REGION (or a profile with one)")
    })?;
    let generator = AuthTokenGenerator::new(
        Config::builder()
            .hostname(host)
            .port(u64::from(port))
            .username(user)
            .region(region)
            .build()
            .map_err(|e| Error::usage(format!("--iam-auth: {e}")))?,
    );
    let token = generator
        .auth_token(config)
        .await
        .map_err(|e| Error::usage(format!("--iam-auth: cannot make a token: {e}")))?;
    let token = token.as_str().to_string();
    migrator_core::redact::register(&token);
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_async::time::{SharedTimeSource, StaticTimeSource};
    use aws_types::region::Region;
    use std::time::UNIX_EPOCH;

    fn fixed() -> SdkConfig {
        SdkConfig::builder()
            .region(Region::new("eu-west-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                None,
                None,
                "test",
            )))
            .time_source(SharedTimeSource::new(StaticTimeSource::new(
                UNIX_EPOCH + Duration::from_secs(1_795_307_045),
            )))
            .behavior_version(BehaviorVersion::latest())
            .build()
    }

    #[tokio::test]
    async fn iam_tokens_are_stable_url_safe_and_short_lived() {
        let config = fixed();
        let a = iam_token(
            &config,
            "db.cluster.eu-west-1.rds.amazonaws.com",
            5432,
            "app",
        )
        .await
        .unwrap();
        let b = iam_token(
            &config,
            "db.cluster.eu-west-1.rds.amazonaws.com",
            5432,
            "app",
        )
        .await
        .unwrap();
        assert_eq!(a, b, "same clock and credentials, same token");
        assert!(
            a.starts_with("db.cluster.eu-west-1.rds.amazonaws.com:5432/?"),
            "{a}"
        );
        assert!(a.contains("Action=connect"), "{a}");
        assert!(a.contains("DBUser=app"), "{a}");
        assert!(a.contains("X-Amz-Date=20261122T002405Z"), "{a}");
        assert!(
            a.contains(
                "X-Amz-Credential=AKIDEXAMPLE%2F20261122%2Feu-west-1%2Frds-db%2Faws4_request"
            ),
            "{a}"
        );
        let expires: u64 = a
            .split('&')
            .find_map(|kv| kv.strip_prefix("X-Amz-Expires="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(expires <= 900, "expires in {expires} s");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~:/?&=%".contains(c)),
            "URL-safe: {a}"
        );
        let other_user = iam_token(
            &config,
            "db.cluster.eu-west-1.rds.amazonaws.com",
            5432,
            "other",
        )
        .await
        .unwrap();
        assert_ne!(a, other_user);
    }
}
