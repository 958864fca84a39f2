//! The result of one `rotate` invocation: each step's outcome and time, as
//! text (stdout), JSON (`--output json`) and one Slack message.
//!
//! Pure: built from the step results alone, no IO, no clock. Messages come from
//! the steps, which never put a secret in them; Slack's payload is scrubbed
//! again on its way out (`notify`).

use serde::Serialize;
use serde_json::{Value, json};

use crate::report::{Notification, RunReport};
use crate::slack::{duration, escape};
use crate::text::excerpt;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It changed something.
    Done,
    /// Already done; nothing changed.
    NothingToDo,
    /// `--dry-run`: it printed what it would do.
    DryRun,
    Failed,
    /// The safety rule, the lifecycle order or the clone limit said no.
    Refused,
    /// An earlier step failed.
    NotRun,
}

impl StepOutcome {
    pub fn label(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::NothingToDo => "nothing to do",
            StepOutcome::DryRun => "dry run",
            StepOutcome::Failed => "failed",
            StepOutcome::Refused => "refused",
            StepOutcome::NotRun => "not run",
        }
    }

    fn emoji(self) -> &'static str {
        match self {
            StepOutcome::Done => "✅",
            StepOutcome::NothingToDo => "☑️",
            StepOutcome::DryRun => "📝",
            StepOutcome::Failed => "❌",
            StepOutcome::Refused => "⛔",
            StepOutcome::NotRun => "⏭️",
        }
    }

    fn bad(self) -> bool {
        matches!(self, StepOutcome::Failed | StepOutcome::Refused)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    pub step: &'static str,
    pub outcome: StepOutcome,
    /// One or a few sentences of what happened.
    pub message: String,
    /// The changing AWS calls made (or, in a dry run, that would be made).
    pub calls: Vec<String>,
    pub duration_ms: u64,
}

/// The whole invocation.
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    pub schema: u32,
    /// `rotate run`, `rotate clone`, …
    pub command: String,
    pub environment: Option<String>,
    /// Today's clone.
    pub clone: String,
    pub dry_run: bool,
    pub steps: Vec<StepResult>,
    pub exit_code: u8,
    pub duration_ms: u64,
    /// The migrate step's run report, when it ran.
    pub migrate: Option<RunReport>,
    pub notification: Option<Notification>,
}

impl RotateReport {
    /// Some step failed or was refused.
    pub fn bad(&self) -> bool {
        self.steps.iter().any(|s| s.outcome.bad())
    }

    /// Some step changed something.
    pub fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.outcome == StepOutcome::Done)
    }

    /// `rotate run: connected app-dev-20261122` and the like, for the headline.
    fn headline(&self) -> String {
        let failed = self.steps.iter().find(|s| s.outcome.bad());
        match failed {
            Some(s) => format!(
                "{} at `{}`: {}",
                s.outcome.label(),
                s.step,
                first_line(&s.message)
            ),
            None if self.dry_run => "dry run: nothing was changed".to_string(),
            None if self.changed() => format!("{} in {}", self.clone, duration(self.duration_ms)),
            None => format!("nothing to do for {}", self.clone),
        }
    }

    /// The text printed on stdout: one line per step, its messages indented.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(&format!(
                "{}: {} ({})\n",
                s.step,
                s.outcome.label(),
                duration(s.duration_ms)
            ));
            for line in s.message.lines().filter(|l| !l.trim().is_empty()) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

/// The Slack payload: a headline, then one line per step with its time.
pub fn slack_message(report: &RotateReport) -> Value {
    let emoji = if report.bad() {
        "❌"
    } else if report.dry_run {
        "📝"
    } else {
        "✅"
    };
    let env = report
        .environment
        .as_deref()
        .map(|e| format!(" on *{}*", escape(&excerpt(e, 100))))
        .unwrap_or_default();
    let title = format!(
        "{emoji} `migrator {}`{env}\n{}",
        escape(&report.command),
        escape(&excerpt(&report.headline(), 500))
    );
    let steps: Vec<String> = report
        .steps
        .iter()
        .map(|s| {
            let mut line = format!(
                "{} *{}* {} · {}",
                s.outcome.emoji(),
                s.step,
                s.outcome.label(),
                duration(s.duration_ms)
            );
            let msg = first_line(&s.message);
            if !msg.is_empty() {
                line.push_str(&format!("\n      {}", escape(&excerpt(&msg, 300))));
            }
            line
        })
        .collect();
    let fallback = format!(
        "{emoji} {}migrator {}: {}",
        report
            .environment
            .as_deref()
            .map(|e| format!("[{}] ", excerpt(e, 60)))
            .unwrap_or_default(),
        report.command,
        report.headline()
    );
    json!({
        "text": escape(&excerpt(&fallback, 300)),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": title } },
            { "type": "section", "text": { "type": "mrkdwn", "text": steps.join("\n") } },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: &'static str, outcome: StepOutcome, message: &str, ms: u64) -> StepResult {
        StepResult {
            step,
            outcome,
            message: message.into(),
            calls: vec![],
            duration_ms: ms,
        }
    }

    fn report(steps: Vec<StepResult>) -> RotateReport {
        RotateReport {
            schema: 1,
            command: "rotate run".into(),
            environment: Some("devqa".into()),
            clone: "app-dev-20261122".into(),
            dry_run: false,
            steps,
            exit_code: 0,
            duration_ms: 245_000,
            migrate: None,
            notification: None,
        }
    }

    #[test]
    fn a_good_run_lists_every_step_with_its_time() {
        let r = report(vec![
            step("clone", StepOutcome::Done, "created app-dev-20261122", 1200),
            step("ready", StepOutcome::Done, "available after 4 min", 240_000),
            step("scrub", StepOutcome::Done, "1 login disabled, 2 files", 900),
            step(
                "migrate",
                StepOutcome::NothingToDo,
                "version 3 is current",
                80,
            ),
            step(
                "connect",
                StepOutcome::Done,
                "db.dev.internal → app-dev-20261122",
                300,
            ),
            step("clean", StepOutcome::NothingToDo, "nothing to delete", 50),
        ]);
        assert!(!r.bad() && r.changed());
        let m = slack_message(&r);
        let text = m["text"].as_str().unwrap();
        assert_eq!(
            text,
            "✅ [devqa] migrator rotate run: app-dev-20261122 in 4 min 05 s"
        );
        let steps = m["blocks"][1]["text"]["text"].as_str().unwrap();
        assert_eq!(steps.lines().filter(|l| l.contains('*')).count(), 6);
        assert!(steps.contains("*ready* done · 4 min 00 s"), "{steps}");
        assert!(
            steps.contains("db.dev.internal → app-dev-20261122"),
            "{steps}"
        );
    }

    #[test]
    fn a_failed_run_names_the_step_and_escapes_text() {
        let r = report(vec![
            step("clone", StepOutcome::NothingToDo, "exists", 100),
            step(
                "scrub",
                StepOutcome::Failed,
                "running scrub file 10_mask.sql:3:1: <users> & co",
                900,
            ),
            step("migrate", StepOutcome::NotRun, "", 0),
        ]);
        assert!(r.bad());
        let m = slack_message(&r);
        let title = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            title.starts_with("❌ `migrator rotate run` on *devqa*"),
            "{title}"
        );
        assert!(title.contains("failed at `scrub`"), "{title}");
        assert!(title.contains("&lt;users&gt; &amp; co"), "{title}");
        assert!(r.text().contains("migrate: not run"), "{}", r.text());
    }
}
