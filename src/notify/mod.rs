//! Telling people how a run ended: a Slack message built from the run report.
//!
//! `message` builds the payload and is pure; `slack` posts it and is the only code
//! that uses the webhook URL; `context` finds where the run happens (CodeBuild
//! variables, ECS task metadata). This module decides whether to post, posts
//! through the [`Notifier`] trait, and records the result in the report.
//!
//! It must never make a good run fail (unless `--notify-required`), never keep a
//! run past its budget, never turn a failed run's exit code into another one, and
//! never print the webhook URL: `main` registers it as a secret as soon as it is
//! read, and no message, log line or error here is built from it.

pub mod context;
pub mod slack;

use std::future::Future;

use serde_json::Value;

use crate::settings::NotifySettings;
use migrator_core::error::{Error, Result};
use migrator_core::report::{Notification, NotificationStatus, RunReport};

pub use context::context_from_env;

/// A payload was delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// HTTP requests it took.
    pub attempts: u32,
}

/// A payload was not delivered. `reason` carries Slack's status and answer, or
/// the network error, and never the webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct NotifyError {
    pub attempts: u32,
    pub reason: String,
}

/// Delivers one payload somewhere, retrying as it sees fit within its own limits.
pub trait Notifier {
    fn send(&self, payload: &Value) -> impl Future<Output = Result<Delivery, NotifyError>>;
}

/// Checked before a changing command touches anything: `--notify-required`
/// without a webhook, or a webhook that is not an http(s) URL, is a
/// configuration error (exit 2), not a surprise after the migrations ran.
pub fn check(settings: &NotifySettings) -> Result<()> {
    match &settings.webhook {
        None if settings.required => Err(Error::usage(
            "--notify-required needs a Slack webhook: pass --slack-webhook or set SLACK_WEBHOOK_URL",
        )),
        None => Ok(()),
        // A webhook that can never be posted to is a configuration error,
        // found before the run changes anything rather than after.
        Some(w) => slack::check_url(w)
            .map(drop)
            .map_err(|e| Error::usage(format!("--slack-webhook: {e}"))),
    }
}

/// Posts the run to Slack when wanted and records what became of it in the
/// report. With `--notify-required`, a good run whose notification failed
/// becomes [`Error::NotifyFailed`]; any other result is returned unchanged.
pub async fn notify(
    settings: &NotifySettings,
    report: &mut RunReport,
    result: Result<()>,
) -> Result<()> {
    report.notification = deliver(settings, report).await;
    let result = require(settings, &report.notification, result);
    if let Err(e) = &result {
        report.exit_code = e.exit_status().code();
    }
    result
}

/// Decides, builds and sends. Never fails: the outcome is in the returned record.
pub async fn deliver(settings: &NotifySettings, report: &RunReport) -> Notification {
    let Some(webhook) = &settings.webhook else {
        tracing::info!("no Slack webhook (--slack-webhook, SLACK_WEBHOOK_URL): no notification");
        return Notification::skipped("no Slack webhook configured");
    };
    if !settings.when.wants(report) {
        tracing::info!(
            outcome = report.outcome.label(),
            "not notifying Slack: --notify {}",
            settings.when.flag()
        );
        return Notification::skipped(format!(
            "--notify {} and the outcome was {}",
            settings.when.flag(),
            report.outcome.label()
        ));
    }
    match slack::SlackWebhook::new(webhook, settings.timeout, settings.budget) {
        Ok(slack) => send(&slack, report, settings.required).await,
        Err(e) => failed(e, settings.required),
    }
}

/// Posts a payload built elsewhere (the clone rotation's summary) when the
/// policy wants a run that went `bad` or `changed` something; `outcome` names
/// it for the record when it is not posted. Never fails.
pub async fn deliver_payload(
    settings: &NotifySettings,
    payload: Value,
    bad: bool,
    changed: bool,
    outcome: &str,
) -> Notification {
    let Some(webhook) = &settings.webhook else {
        tracing::info!("no Slack webhook (--slack-webhook, SLACK_WEBHOOK_URL): no notification");
        return Notification::skipped("no Slack webhook configured");
    };
    if !settings.when.wants_outcome(bad, changed) {
        tracing::info!(
            outcome,
            "not notifying Slack: --notify {}",
            settings.when.flag()
        );
        return Notification::skipped(format!(
            "--notify {} and the outcome was {outcome}",
            settings.when.flag()
        ));
    }
    match slack::SlackWebhook::new(webhook, settings.timeout, settings.budget) {
        Ok(slack) => send_payload(&slack, payload, settings.required).await,
        Err(e) => failed(e, settings.required),
    }
}

/// Builds the message of `report` and hands it to `notifier`.
pub async fn send(notifier: &impl Notifier, report: &RunReport, required: bool) -> Notification {
    send_payload(notifier, migrator_core::slack::build(report), required).await
}

/// Hands `payload`, scrubbed of every registered secret, to `notifier`.
pub async fn send_payload(
    notifier: &impl Notifier,
    payload: Value,
    required: bool,
) -> Notification {
    let payload = scrubbed(payload);
    match notifier.send(&payload).await {
        Ok(d) => {
            tracing::info!(attempts = d.attempts, "Slack notified");
            Notification {
                status: NotificationStatus::Sent,
                detail: None,
                attempts: d.attempts,
            }
        }
        Err(e) => failed(e, required),
    }
}

fn failed(e: NotifyError, required: bool) -> Notification {
    let reason = migrator_core::redact::scrub(&e.reason).into_owned();
    if required {
        tracing::error!(attempts = e.attempts, error = %reason, "Slack notification failed");
    } else {
        tracing::warn!(
            attempts = e.attempts,
            error = %reason,
            "Slack notification failed; the exit code is unchanged (--notify-required would make it 6)"
        );
    }
    Notification {
        status: NotificationStatus::Failed,
        detail: Some(reason),
        attempts: e.attempts,
    }
}

/// `--notify-required` turns a good run with a failed notification into exit 6;
/// a run that failed on its own keeps its error and exit code.
pub fn require(
    settings: &NotifySettings,
    notification: &Notification,
    result: Result<()>,
) -> Result<()> {
    match result {
        Ok(()) if settings.required && notification.status == NotificationStatus::Failed => {
            Err(Error::NotifyFailed(
                notification
                    .detail
                    .clone()
                    .unwrap_or_else(|| "Slack was not told".into()),
            ))
        }
        other => other,
    }
}

/// The payload with every registered secret masked in every string.
fn scrubbed(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::String(s) => {
                if let std::borrow::Cow::Owned(clean) = migrator_core::redact::scrub(s) {
                    *s = clean;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            Value::Object(m) => m.values_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::settings::{Webhook, When};

    /// Answers from a script and keeps what it was given.
    struct Fake {
        answer: Result<Delivery, NotifyError>,
        got: RefCell<Vec<Value>>,
    }

    impl Notifier for Fake {
        async fn send(&self, payload: &Value) -> Result<Delivery, NotifyError> {
            self.got.borrow_mut().push(payload.clone());
            self.answer.clone()
        }
    }

    fn report(result: Result<()>) -> RunReport {
        let mut r = RunReport::new("up");
        r.finish(&result);
        r
    }

    fn refused() -> Result<()> {
        Err(Error::Refused(Vec::new()))
    }

    #[test]
    fn policy_decides_which_outcomes_are_posted() {
        let nothing = report(Ok(()));
        let mut success = RunReport::new("up");
        success.applied.push(migrator_core::report::StepReport::new(
            1,
            "a",
            migrator_core::report::Direction::Up,
            1,
        ));
        success.finish(&Ok(()));
        let bad = report(refused());
        assert!(When::Always.wants(&nothing));
        assert!(!When::Failure.wants(&nothing) && !When::Failure.wants(&success));
        assert!(When::Failure.wants(&bad));
        assert!(!When::Change.wants(&nothing));
        assert!(When::Change.wants(&success) && When::Change.wants(&bad));
    }

    #[tokio::test]
    async fn sent_and_failed_are_recorded_with_attempts() {
        let ok = Fake {
            answer: Ok(Delivery { attempts: 2 }),
            got: RefCell::default(),
        };
        let n = send(&ok, &report(Ok(())), false).await;
        assert_eq!((n.status, n.attempts), (NotificationStatus::Sent, 2));
        assert_eq!(ok.got.borrow().len(), 1);
        assert!(ok.got.borrow()[0]["text"].is_string());

        let down = Fake {
            answer: Err(NotifyError {
                attempts: 3,
                reason: "Slack answered 500: oops".into(),
            }),
            got: RefCell::default(),
        };
        let n = send(&down, &report(Ok(())), false).await;
        assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 3));
        assert_eq!(n.detail.as_deref(), Some("Slack answered 500: oops"));
    }

    #[tokio::test]
    async fn no_webhook_or_unwanted_outcome_is_skipped() {
        let n = deliver(&NotifySettings::default(), &report(Ok(()))).await;
        assert_eq!(n.status, NotificationStatus::Skipped);
        let settings = NotifySettings {
            webhook: Some(Webhook::new("http://127.0.0.1:9/never-called".into())),
            when: When::Failure,
            ..NotifySettings::default()
        };
        let n = deliver(&settings, &report(Ok(()))).await;
        assert_eq!(n.status, NotificationStatus::Skipped);
        assert!(n.detail.unwrap().contains("--notify failure"));
    }

    #[test]
    fn required_changes_only_a_good_run() {
        let failed = Notification {
            status: NotificationStatus::Failed,
            detail: Some("no answer".into()),
            attempts: 3,
        };
        let required = NotifySettings {
            required: true,
            ..NotifySettings::default()
        };
        let e = require(&required, &failed, Ok(())).unwrap_err();
        assert_eq!(e.exit_status().code(), 6);
        let e = require(&required, &failed, refused()).unwrap_err();
        assert_eq!(e.exit_status().code(), 5, "a refused run stays refused");
        assert!(require(&NotifySettings::default(), &failed, Ok(())).is_ok());
        let sent = Notification {
            status: NotificationStatus::Sent,
            detail: None,
            attempts: 1,
        };
        assert!(require(&required, &sent, Ok(())).is_ok());
    }

    #[test]
    fn required_without_a_webhook_is_a_usage_error() {
        let mut s = NotifySettings {
            required: true,
            ..NotifySettings::default()
        };
        assert_eq!(check(&s).unwrap_err().exit_status().code(), 2);
        s.webhook = Some(Webhook::new("not a url with-secret-part".into()));
        let e = check(&s).unwrap_err().to_string();
        assert!(!e.contains("with-secret-part"), "{e}");
        s.webhook = Some(Webhook::new("https://hooks.example.test/services/x".into()));
        assert!(check(&s).is_ok());
        assert!(!format!("{s:?}").contains("hooks.example"));
    }

    #[test]
    fn flags_become_settings() {
        let parse = |args: &[&str]| {
            let mut full = vec!["migrator"];
            full.extend_from_slice(args);
            crate::cli::parse_from(full).map(|(settings, _)| settings.notify)
        };
        let s = parse(&["up"]).unwrap();
        assert!(s.webhook.is_none() && !s.required && s.when == When::Always);
        assert_eq!((s.timeout.as_secs(), s.budget.as_secs()), (5, 20));
        let s = parse(&[
            "up",
            "--slack-webhook",
            " https://hooks.example.test/x ",
            "--notify",
            "change",
            "--notify-required",
            "--notify-timeout",
            "2",
            "--notify-budget",
            "9",
        ])
        .unwrap();
        assert_eq!(s.webhook.unwrap().expose(), "https://hooks.example.test/x");
        assert!(s.required && s.when == When::Change);
        assert_eq!((s.timeout.as_secs(), s.budget.as_secs()), (2, 9));
        assert!(
            parse(&["up", "--slack-webhook", ""])
                .unwrap()
                .webhook
                .is_none()
        );
        assert!(parse(&["up", "--notify-timeout", "0"]).is_err());
        assert!(parse(&["up", "--notify", "sometimes"]).is_err());
    }

    #[test]
    fn payload_strings_are_scrubbed() {
        migrator_core::redact::register("Payl0ad-Secret-77");
        let v = scrubbed(serde_json::json!({"a": ["x Payl0ad-Secret-77 y"], "b": 1}));
        assert_eq!(v["a"][0], "x *** y");
    }
}
