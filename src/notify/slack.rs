//! Posting a payload to a Slack incoming webhook: a time limit per attempt,
//! retries with backoff on 5xx and network errors, `Retry-After` on 429, and a
//! total budget after which it gives up.
//!
//! The only code that uses the webhook URL. It must never put it in an error or
//! a log line: HTTP client errors carry the URL, so they are only ever shown
//! through [`describe`], which drops it. Whether to retry is decided by the pure
//! [`decide`]; the loop around it is the only place that sleeps.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use tokio::time::Instant;

use super::{Delivery, Notifier, NotifyError};
use crate::settings::Webhook;
use migrator_core::backoff::Backoff;

/// The wait between attempts: 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s...
pub const BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));
/// An attempt is not started with less time than this left in the budget.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);
/// Characters of Slack's answer kept in errors and logs.
const ANSWER_EXCERPT: usize = 300;

/// What one HTTP attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answered {
        status: u16,
        retry_after: Option<Duration>,
        /// Slack's answer (`ok`, `invalid_payload`, `no_service`...), shortened.
        body: String,
    },
    /// No complete answer within the attempt's time limit.
    TimedOut(Duration),
    /// Connection refused, reset, DNS, TLS...: described without the URL.
    Network(String),
}

impl Attempt {
    pub fn describe(&self) -> String {
        match self {
            Attempt::Answered { status, body, .. } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let mut s = format!("Slack answered {status} {reason}")
                    .trim_end()
                    .to_string();
                if !body.trim().is_empty() {
                    s.push_str(&format!(": {}", body.trim()));
                }
                s
            }
            Attempt::TimedOut(t) => format!("Slack did not answer within {}", secs(*t)),
            Attempt::Network(e) => format!("cannot reach Slack: {e}"),
        }
    }
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    /// Try again after this wait (if the budget allows).
    Retry(Duration),
    /// Retrying would not help (Slack refused the payload or the URL).
    GiveUp,
}

/// Pure retry policy. `attempt` counts from 1.
pub fn decide(result: &Attempt, attempt: u32) -> Decision {
    match result {
        Attempt::Answered { status, .. } if (200..300).contains(status) => Decision::Delivered,
        Attempt::Answered {
            status: 429,
            retry_after,
            ..
        } => Decision::Retry(retry_after.unwrap_or_else(|| backoff(attempt))),
        Attempt::Answered { status, .. } if *status >= 500 => Decision::Retry(backoff(attempt)),
        Attempt::Answered { .. } => Decision::GiveUp,
        Attempt::TimedOut(_) | Attempt::Network(_) => Decision::Retry(backoff(attempt)),
    }
}

/// The wait after the `attempt`-th attempt (counted from 1) failed.
pub fn backoff(attempt: u32) -> Duration {
    BACKOFF.delay(attempt.saturating_sub(1))
}

/// `Retry-After` in seconds. (The HTTP-date form is not used by Slack; it
/// falls back to the backoff.)
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A reqwest error's chain of causes, without the URL reqwest puts in it.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    migrator_core::redact::scrub(&out).into_owned()
}

/// The webhook as a URL, or why it is not one (without repeating it).
pub fn check_url(webhook: &Webhook) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(webhook.expose())
        .map_err(|_| "the Slack webhook is not a valid URL".to_string())?;
    match url.scheme() {
        "https" | "http" => Ok(url),
        _ => Err("the Slack webhook must be an https:// URL".into()),
    }
}

pub struct SlackWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    budget: Duration,
}

impl SlackWebhook {
    pub fn new(
        webhook: &Webhook,
        timeout: Duration,
        budget: Duration,
    ) -> Result<Self, NotifyError> {
        let url = check_url(webhook).map_err(|reason| NotifyError {
            attempts: 0,
            reason,
        })?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("migrator/", env!("CARGO_PKG_VERSION")))
            // Roots compiled into the binary: the image has no system CA store.
            .tls_certs_only(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .filter_map(|c| reqwest::Certificate::from_der(c).ok()),
            )
            // A webhook does not redirect; following one could send the payload elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .map_err(|e| NotifyError {
                attempts: 0,
                reason: format!("cannot set up the HTTP client: {}", describe(e)),
            })?;
        Ok(SlackWebhook {
            client,
            url,
            timeout,
            budget,
        })
    }

    /// One POST, bounded by `limit` from start to the last byte of the answer.
    async fn attempt(&self, body: &[u8], limit: Duration) -> Attempt {
        let until = Instant::now() + limit;
        let request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_vec())
            .timeout(limit)
            .send();
        let response = match tokio::time::timeout_at(until, request).await {
            Err(_) => return Attempt::TimedOut(limit),
            Ok(Err(e)) if e.is_timeout() => return Attempt::TimedOut(limit),
            Ok(Err(e)) => return Attempt::Network(describe(e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = match tokio::time::timeout_at(until, response.text()).await {
            Ok(Ok(text)) => migrator_core::text::excerpt(&text, ANSWER_EXCERPT),
            // The status is what matters; an answer cut short is not a failure.
            _ => String::new(),
        };
        Attempt::Answered {
            status,
            retry_after,
            body,
        }
    }
}

impl Notifier for SlackWebhook {
    async fn send(&self, payload: &Value) -> Result<Delivery, NotifyError> {
        let body = serde_json::to_vec(payload).expect("a JSON value serializes");
        let deadline = Instant::now() + self.budget;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let result = self.attempt(&body, self.timeout.min(left)).await;
            let wait = match decide(&result, attempts) {
                Decision::Delivered => return Ok(Delivery { attempts }),
                Decision::GiveUp => {
                    return Err(NotifyError {
                        attempts,
                        reason: result.describe(),
                    });
                }
                Decision::Retry(wait) => wait,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if wait + MIN_ATTEMPT > left {
                let why = if matches!(result, Attempt::Answered { status: 429, .. }) {
                    format!(
                        "; Slack asked to wait {} more, past the {} budget",
                        secs(wait),
                        secs(self.budget)
                    )
                } else {
                    format!("; gave up within the {} budget", secs(self.budget))
                };
                return Err(NotifyError {
                    attempts,
                    reason: format!(
                        "{}{why} ({attempts} attempt{})",
                        result.describe(),
                        if attempts == 1 { "" } else { "s" }
                    ),
                });
            }
            tracing::info!(
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                error = %result.describe(),
                "Slack notification not delivered yet; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, retry_after: Option<u64>) -> Attempt {
        Attempt::Answered {
            status,
            retry_after: retry_after.map(Duration::from_secs),
            body: "x".into(),
        }
    }

    #[test]
    fn success_server_errors_rate_limits_and_refusals() {
        assert_eq!(decide(&answered(200, None), 1), Decision::Delivered);
        assert_eq!(
            decide(&answered(500, None), 1),
            Decision::Retry(Duration::from_millis(500))
        );
        assert_eq!(
            decide(&answered(503, None), 3),
            Decision::Retry(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&answered(429, Some(7)), 1),
            Decision::Retry(Duration::from_secs(7))
        );
        assert_eq!(
            decide(&answered(429, None), 2),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(decide(&answered(400, None), 1), Decision::GiveUp);
        assert_eq!(decide(&answered(404, None), 1), Decision::GiveUp);
        assert_eq!(decide(&answered(302, None), 1), Decision::GiveUp);
        assert_eq!(
            decide(&Attempt::TimedOut(Duration::from_secs(5)), 2),
            Decision::Retry(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&Attempt::Network("refused".into()), 1),
            Decision::Retry(Duration::from_millis(500))
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let waits: Vec<u128> = (1..=7).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff(u32::MAX), BACKOFF.max);
    }

    #[test]
    fn retry_after_is_seconds() {
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn descriptions_carry_status_and_answer() {
        let a = Attempt::Answered {
            status: 400,
            retry_after: None,
            body: "invalid_blocks".into(),
        };
        assert_eq!(
            a.describe(),
            "Slack answered 400 Bad Request: invalid_blocks"
        );
        assert_eq!(
            Attempt::TimedOut(Duration::from_millis(1500)).describe(),
            "Slack did not answer within 1.5 s"
        );
    }

    #[tokio::test]
    async fn network_errors_never_show_the_url() {
        // Nothing listens on port 9 of 127.0.0.1 (discard): connection refused.
        // Not registered as a secret: `describe` itself must leave the URL out.
        let url = "http://127.0.0.1:9/services/T0/B0/NetErr-Token-31337";
        let slack = SlackWebhook::new(
            &Webhook::new(url.into()),
            Duration::from_secs(1),
            Duration::from_millis(800),
        )
        .unwrap();
        let e = slack
            .send(&serde_json::json!({"text": "x"}))
            .await
            .unwrap_err();
        assert!(e.attempts >= 1);
        assert!(e.reason.contains("cannot reach Slack"), "{}", e.reason);
        assert!(!e.reason.contains("NetErr-Token"), "{}", e.reason);
        assert!(!e.reason.contains("/services/"), "{}", e.reason);
    }
}
