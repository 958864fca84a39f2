//! The Slack message of a run: Block Kit blocks plus a one-line `text` that a
//! phone shows as the notification, built from the run report alone.
//!
//! Pure: no IO, no clock, no environment; the same report gives the same message.
//! It shows only what the report holds, so never a user name, a password or the
//! webhook URL. It must never produce a message Slack rejects or cuts badly: at
//! most [`MAX_BLOCKS`] blocks, section texts of at most [`MAX_SECTION_TEXT`]
//! characters, fields of at most [`MAX_FIELD_TEXT`], `&`, `<` and `>` escaped,
//! and never an empty text.

use serde_json::{Value, json};

use crate::error::Refusal;
use crate::migration::Version;
use crate::report::{Context, Outcome, RunReport, StepReport};
use crate::text::sql_excerpt;

/// Slack's limit on blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on the text of a section block.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Slack's limit on the text of one field of a section (and of a context element).
pub const MAX_FIELD_TEXT: usize = 2000;
/// Migrations listed by name before "and N more".
pub const MAX_LISTED: usize = 20;
/// The notification line: what fits on a lock screen, and a little more.
const MAX_FALLBACK: usize = 300;
/// Characters of the failing statement shown.
const STATEMENT_EXCERPT: usize = 500;
/// Characters of one error message or refusal shown.
const MESSAGE_EXCERPT: usize = 1000;

/// The webhook payload for `report`.
pub fn build(report: &RunReport) -> Value {
    let mut blocks = Vec::new();
    blocks.extend(section(title(report)));
    // What production would go through comes before everything else.
    blocks.extend(findings(report).and_then(section));
    blocks.extend(facts(report));
    match report.outcome {
        Outcome::Failed => {
            blocks.extend(failure(report).and_then(section));
            let heading = format!("{} before the failure", applied_verb(report));
            blocks.extend(section(applied(report, &heading)));
            blocks.extend(not_run(report).and_then(section));
        }
        Outcome::Refused => {
            blocks.extend(section(refusals(&report.refusals)));
        }
        Outcome::Interrupted => {
            blocks.extend(error(report).and_then(section));
            let heading = format!("{} before the interruption", applied_verb(report));
            blocks.extend(section(applied(report, &heading)));
            blocks.extend(not_run(report).and_then(section));
        }
        Outcome::Error => {
            blocks.extend(error(report).and_then(section));
        }
        Outcome::Success | Outcome::RehearsalFailed => {
            blocks.extend(section(applied(report, applied_verb(report))));
        }
        Outcome::NothingToDo => {
            if report.dry_run && !report.not_run.is_empty() {
                blocks.extend(section(list("Would run", &report.not_run, false)));
            }
        }
    }
    blocks.extend(context(report));
    blocks.truncate(MAX_BLOCKS);
    json!({ "text": fallback(report), "blocks": blocks })
}

/// `&`, `<` and `>` as Slack wants them in any text it parses.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` escaped, and cut to at most `max` characters (escapes counted as
/// written, never split) ending in `…` when it was longer.
fn escape_within(text: &str, max: usize) -> String {
    let full = escape(text);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4]));
        let n = piece.chars().count();
        if used + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('…');
    out
}

/// Inline code, or plain escaped text where a backtick would break it.
fn code(text: &str, max: usize) -> String {
    if text.contains('`') || text.is_empty() {
        escape_within(text, max)
    } else {
        format!("`{}`", escape_within(text, max.saturating_sub(2)))
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// A mrkdwn section; `None` for an empty text. The text is cut at a line
/// boundary if a builder below ever produced too much (they are built to fit).
fn section(text: String) -> Option<Value> {
    if text.trim().is_empty() {
        return None;
    }
    Some(json!({
        "type": "section",
        "text": { "type": "mrkdwn", "text": fit_lines(text, MAX_SECTION_TEXT) },
    }))
}

/// `text` if it fits in `max` characters, else its first lines that do, and `…`.
/// Lines are where escapes, links and inline code never break.
fn fit_lines(text: String, max: usize) -> String {
    if chars(&text) <= max {
        return text;
    }
    let mut out = String::new();
    for line in text.lines() {
        if chars(&out) + chars(line) + 3 > max {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    if out.is_empty() {
        // One enormous line: a builder bug; still send something valid.
        return "…".into();
    }
    out.push('…');
    out
}

/// What `up` applies, `down` reverts.
fn applied_verb(report: &RunReport) -> &'static str {
    if report.command == "down" {
        "Reverted"
    } else {
        "Applied"
    }
}

fn emoji(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "✅",
        Outcome::NothingToDo => "☑️",
        Outcome::Failed => "❌",
        Outcome::Refused => "⛔",
        Outcome::Interrupted => "⚠️",
        Outcome::Error => "❌",
        Outcome::RehearsalFailed => "🚧",
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn version(v: Option<Version>) -> String {
    v.map_or_else(|| "none".to_string(), |v| v.to_string())
}

/// `850 ms`, `12.3 s`, `4 min 05 s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        let s = ms / 1000;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

fn command(report: &RunReport) -> String {
    if report.dry_run {
        format!("{} --dry-run", report.command)
    } else {
        report.command.clone()
    }
}

/// Who the run was for: the environment label, else the database name.
fn target(report: &RunReport) -> Option<String> {
    report
        .environment
        .clone()
        .or_else(|| report.database.as_ref().map(|d| d.name.clone()))
}

/// The first line, bold: outcome, command, environment.
fn title(report: &RunReport) -> String {
    let mut t = format!(
        "{} *{}*: `migrator {}`",
        emoji(report.outcome),
        capitalized(report.outcome.label()),
        escape_within(&command(report), 100)
    );
    if let Some(env) = &report.environment {
        t.push_str(&format!(" on *{}*", escape_within(env, 200)));
    }
    t.push('\n');
    t.push_str(&escape_within(&summary(report), MESSAGE_EXCERPT));
    t
}

/// How the notification line says the outcome: "migrator up failed: ...".
fn verb(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "succeeded",
        Outcome::NothingToDo => "had nothing to do",
        Outcome::Failed => "failed",
        Outcome::Refused => "was refused",
        Outcome::Interrupted => "stopped",
        Outcome::Error => "stopped with an error",
        Outcome::RehearsalFailed => "failed its rehearsal",
    }
}

/// One plain sentence of what happened, after the outcome: the heart of the
/// phone notification.
fn summary(report: &RunReport) -> String {
    let n = report.applied.len();
    let move_ = format!(
        "version {} → {}",
        version(report.version_before),
        version(report.version_after)
    );
    let took = duration(report.duration_ms);
    let verb = applied_verb(report).to_lowercase();
    match report.outcome {
        Outcome::Success if n == 0 && !report.history_changes.is_empty() => format!(
            "{move_} by {} (no migration SQL run): {}, in {took}",
            report.command, report.history_changes
        ),
        Outcome::Success if report.command == "force" => {
            format!("{move_} forced (no SQL run), in {took}")
        }
        Outcome::Success => format!("{verb} {n} migration{}, {move_}, in {took}", plural(n)),
        Outcome::NothingToDo if report.dry_run => match report.not_run.len() {
            0 => format!(
                "dry run: nothing to run at version {}",
                version(report.version_before)
            ),
            w => format!(
                "dry run: would run {w} migration{} from version {}",
                plural(w),
                version(report.version_before)
            ),
        },
        Outcome::NothingToDo => format!("version {} is current", version(report.version_after)),
        Outcome::Failed => match &report.failure {
            Some(f) => {
                let mut s = location(f);
                if let Some(code) = &f.code {
                    s.push_str(&format!(" [{code}]"));
                }
                s.push_str(&format!(" {}", first_line(&f.message)));
                if n > 0 {
                    s.push_str(&format!(" ({n} {verb} before it)"));
                }
                s
            }
            None => "a migration failed".into(),
        },
        Outcome::Refused => {
            let first = report
                .refusals
                .first()
                .map(|r| first_line(&r.to_string()))
                .unwrap_or_else(|| "the database and the files disagree".into());
            match report.refusals.len() {
                0 | 1 => format!("{first} (nothing changed)"),
                k => format!("{first} (and {} more; nothing changed)", k - 1),
            }
        }
        Outcome::RehearsalFailed => {
            let failed: Vec<&crate::rehearsal::Finding> = report
                .findings
                .iter()
                .filter(|f| !f.gates.is_empty())
                .collect();
            match failed.as_slice() {
                [] => format!("a rehearsal gate failed ({n} {verb})"),
                [one] => format!("{} ({n} {verb})", one.text),
                [first, rest @ ..] => {
                    format!("{} (and {} more; {n} {verb})", first.text, rest.len())
                }
            }
        }
        Outcome::Interrupted | Outcome::Error => {
            let e = report
                .error
                .as_deref()
                .map(first_line)
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "the run stopped".into());
            if n > 0 {
                format!("{e} ({n} {verb} before it)")
            } else {
                e
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

fn label(version: Version, name: &str) -> String {
    format!("{version}_{name}")
}

fn location(f: &crate::error::Failure) -> String {
    match (f.line, f.column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", f.file),
        (Some(l), None) => format!("{}:{l}", f.file),
        _ => f.file.clone(),
    }
}

/// The notification line (top-level `text`): never empty, at most [`MAX_FALLBACK`].
fn fallback(report: &RunReport) -> String {
    let mut s = format!("{} ", emoji(report.outcome));
    if let Some(t) = target(report) {
        s.push_str(&format!("[{t}] "));
    }
    s.push_str(&format!(
        "migrator {} {}: {}",
        command(report),
        verb(report.outcome),
        summary(report)
    ));
    escape_within(&s, MAX_FALLBACK)
}

/// Environment, database, command, versions, counts, duration, as fields.
fn facts(report: &RunReport) -> Option<Value> {
    let mut fields = Vec::new();
    let mut field = |name: &str, value: String| {
        fields.push(json!({
            "type": "mrkdwn",
            "text": format!("*{name}*\n{value}"),
        }));
    };
    if let Some(env) = &report.environment {
        field("Environment", escape_within(env, 200));
    }
    if let Some(db) = &report.database {
        field(
            "Database",
            format!(
                "{} on {}, {}",
                db.engine,
                escape_within(&db.host, 300),
                code(&db.name, 300)
            ),
        );
    }
    field(
        "Command",
        code(&format!("migrator {}", command(report)), 200),
    );
    field(
        "Version",
        format!(
            "{} → {}",
            version(report.version_before),
            version(report.version_after)
        ),
    );
    if report.command != "force" {
        field(applied_verb(report), report.applied.len().to_string());
    }
    field("Duration", duration(report.duration_ms));
    Some(json!({ "type": "section", "fields": fields }))
}

/// "*Applied* (3)" and the steps, with their durations.
fn applied(report: &RunReport, heading: &str) -> String {
    if report.applied.is_empty() {
        return match report.outcome {
            Outcome::Success | Outcome::NothingToDo => String::new(),
            _ => format!("*{heading}:* none"),
        };
    }
    list(heading, &report.applied, true)
}

/// A heading and up to [`MAX_LISTED`] steps, one a line (with how long each
/// took when `times`), then "and N more", within a section's limit.
fn list(heading: &str, steps: &[StepReport], times: bool) -> String {
    let mut out = format!("*{heading}* ({}):", steps.len());
    // Room kept for the last line.
    let reserve = "\n…and 00000000000000000000 more".len();
    let mut shown = 0;
    for s in steps.iter().take(MAX_LISTED) {
        let line = if times {
            format!(
                "\n• {}  {}",
                code(&label(s.version, &s.name), 300),
                duration(s.execution_ms)
            )
        } else {
            format!("\n• {}", code(&label(s.version, &s.name), 300))
        };
        if chars(&out) + chars(&line) + reserve > MAX_SECTION_TEXT {
            break;
        }
        out.push_str(&line);
        shown += 1;
    }
    if shown < steps.len() {
        out.push_str(&format!("\n…and {} more", steps.len() - shown));
    }
    out
}

/// The planned migrations that never ran.
fn not_run(report: &RunReport) -> Option<String> {
    // The failure section names the failed migration; the engine's report
    // leaves it out of `not_run`, a report built elsewhere may not.
    let failed = report.failure.as_ref().map(|f| f.version);
    let rest: Vec<&StepReport> = report
        .not_run
        .iter()
        .filter(|s| Some(s.version) != failed)
        .collect();
    if rest.is_empty() {
        return None;
    }
    let mut names: Vec<String> = rest
        .iter()
        .take(5)
        .map(|s| code(&label(s.version, &s.name), 200))
        .collect();
    if rest.len() > 5 {
        names.push(format!("and {} more", rest.len() - 5));
    }
    Some(format!("*Not run* ({}): {}", rest.len(), names.join(", ")))
}

/// Where and why the migration failed, the statement, and the state it left.
fn failure(report: &RunReport) -> Option<String> {
    let f = report.failure.as_ref()?;
    let mut out = format!(
        "*Failed:* {} at {}",
        code(&label(f.version, &f.name), 300),
        code(&location(f), 400)
    );
    out.push_str("\n*Error*");
    if let Some(c) = &f.code {
        out.push_str(&format!(" {}", code(c, 40)));
    }
    out.push_str(&format!(": {}", escape_within(&f.message, MESSAGE_EXCERPT)));
    if let Some(d) = &f.detail {
        // Already labelled, one line each (`detail: …`, `hint: …`).
        out.push_str(&format!("\n{}", escape_within(d, 300)));
    }
    if let Some(stmt) = &f.statement {
        // One line (the excerpt folds whitespace and marks line ends), so a code
        // block never spans a cut.
        let shown = sql_excerpt(stmt, STATEMENT_EXCERPT).replace("```", "'''");
        out.push_str(&format!(
            "\n```{}```",
            escape_within(&shown, STATEMENT_EXCERPT + 100)
        ));
    }
    if f.dirty {
        out.push_str(&format!(
            "\n*Dirty:* the database is marked dirty at version {v}. Fix it by hand, then \
             `migrator force {v} --yes` if the migration is complete, or \
             `migrator force {p} --yes` if you undid it.",
            v = f.version,
            p = f.previous_version.unwrap_or(0)
        ));
    } else {
        out.push_str("\n*Rolled back:* the database is unchanged by this migration.");
    }
    Some(out)
}

/// Why the run was refused, one bullet per disagreement.
fn refusals(refusals: &[Refusal]) -> String {
    if refusals.is_empty() {
        return "*Refused*: the database and the files disagree; nothing changed.".into();
    }
    let mut out = String::from("*Refused, nothing changed:*");
    let reserve = "\n…and 0000000000 more".len();
    let mut shown = 0;
    for r in refusals.iter().take(MAX_LISTED) {
        // Each refusal may span lines (error, statement, recovery): keep them,
        // as sub-lines, each escaped and cut on its own.
        let text = r.to_string();
        let mut item = String::new();
        for (i, line) in text.lines().enumerate() {
            item.push_str(if i == 0 { "\n• " } else { "\n    " });
            item.push_str(&escape_within(line.trim(), 600));
        }
        if chars(&out) + chars(&item) + reserve > MAX_SECTION_TEXT {
            break;
        }
        out.push_str(&item);
        shown += 1;
    }
    if shown < refusals.len() {
        out.push_str(&format!("\n…and {} more", refusals.len() - shown));
    }
    out
}

/// The findings, failed gates first marked with 🚧, then the rest; and how
/// many down scripts `--verify-down` found to undo their up.
fn findings(report: &RunReport) -> Option<String> {
    let ok = report
        .verify_down
        .iter()
        .filter(|v| v.outcome == crate::rehearsal::VerifyOutcome::Ok)
        .count();
    if report.findings.is_empty() && ok == 0 {
        return None;
    }
    let mut out = format!("*Findings* ({}):", report.findings.len());
    let reserve = "\n…and 0000000000 more".len() + 100;
    let mut shown = 0;
    let failed = report.findings.iter().filter(|f| !f.gates.is_empty());
    let told = report.findings.iter().filter(|f| f.gates.is_empty());
    for f in failed.chain(told).take(MAX_LISTED) {
        let line = if f.gates.is_empty() {
            format!("\n• {}", escape_within(&f.text, 600))
        } else {
            let flags: Vec<&str> = f.gates.iter().map(|g| g.flag()).collect();
            format!(
                "\n🚧 {} (fails `{}`)",
                escape_within(&f.text, 600),
                flags.join("`, `")
            )
        };
        if chars(&out) + chars(&line) + reserve > MAX_SECTION_TEXT {
            break;
        }
        out.push_str(&line);
        shown += 1;
    }
    if shown < report.findings.len() {
        out.push_str(&format!("\n…and {} more", report.findings.len() - shown));
    }
    if ok > 0 {
        out.push_str(&format!(
            "\n*Verify down:* {ok} of {} down script(s) undo their up",
            report.verify_down.len()
        ));
    }
    Some(out)
}

/// The error of an interrupted or otherwise stopped run.
fn error(report: &RunReport) -> Option<String> {
    let e = report.error.as_deref()?;
    let mut out = String::from(if report.outcome == Outcome::Interrupted {
        "*Interrupted:*"
    } else {
        "*Error:*"
    });
    let mut used = chars(&out);
    for line in e.lines().take(20) {
        let line = escape_within(line.trim_end(), MESSAGE_EXCERPT);
        if used + chars(&line) + 2 > MAX_SECTION_TEXT {
            break;
        }
        used += chars(&line) + 1;
        out.push('\n');
        out.push_str(&line);
    }
    Some(out)
}

/// `<url|label>` when `url` is a plain http(s) URL, else the label alone.
fn link(url: &str, label: &str) -> String {
    let safe = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains(['<', '>', '|', ' ', '\n'])
        && url.len() <= 1500;
    let label = escape_within(&label.replace('|', "/"), 200);
    if safe {
        format!("<{}|{label}>", escape(url))
    } else {
        label
    }
}

/// Build, commit, task and logs, as a small grey line under the message.
fn context(report: &RunReport) -> Option<Value> {
    let Context {
        build_id,
        build_url,
        commit,
        task_arn,
        log_group,
        log_stream,
        log_url,
    } = &report.context;
    let mut parts = Vec::new();
    match (build_id, build_url) {
        (Some(id), Some(url)) => parts.push(format!("Build {}", link(url, id))),
        (Some(id), None) => parts.push(format!("Build {}", code(id, 300))),
        (None, Some(url)) => parts.push(link(url, "Build")),
        (None, None) => {}
    }
    if let Some(c) = commit {
        let short: String = c.chars().take(12).collect();
        parts.push(format!("Commit {}", code(&short, 40)));
    }
    if let Some(arn) = task_arn {
        let id = arn.rsplit('/').next().unwrap_or(arn);
        parts.push(format!("Task {}", code(id, 300)));
    }
    match (log_url, log_group, log_stream) {
        (Some(url), _, _) => parts.push(link(url, "Logs")),
        (None, Some(g), Some(s)) => parts.push(format!("Logs {}", code(&format!("{g} {s}"), 600))),
        _ => {}
    }
    parts.push(format!(
        "migrator {}",
        escape_within(report.migrator_version, 40)
    ));
    let elements: Vec<Value> = parts
        .into_iter()
        .take(10)
        .map(|t| json!({ "type": "mrkdwn", "text": fit_lines(t, MAX_FIELD_TEXT) }))
        .collect();
    Some(json!({ "type": "context", "elements": elements }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Failure, Signal};
    use crate::migration::Engine;
    use crate::report::{DatabaseInfo, Direction};

    fn step(version: Version, name: &str, ms: u64) -> StepReport {
        StepReport::new(version, name, Direction::Up, ms)
    }

    fn base() -> RunReport {
        let mut r = RunReport::new("up");
        r.migrator_version = "0.0.0-test";
        r.environment = Some("prod".into());
        r.database = Some(DatabaseInfo {
            engine: Engine::Postgres,
            host: "db.internal".into(),
            port: 5432,
            name: "app".into(),
        });
        r.duration_ms = 1234;
        r
    }

    fn success() -> RunReport {
        let mut r = base();
        r.applied = vec![
            step(1, "users", 12),
            step(2, "orders", 340),
            step(10, "items", 7),
        ];
        r.version_after = Some(10);
        r.context = Context {
            build_id: Some("deploy:4f1c".into()),
            build_url: Some("https://console.example/codebuild?region=eu-west-1&x=1#build".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            task_arn: Some("arn:aws:ecs:eu-west-1:123456789012:task/cluster/0a1b2c".into()),
            log_group: Some("/ecs/migrator".into()),
            log_stream: Some("ecs/migrator/0a1b2c".into()),
            log_url: Some("https://logs.example/stream".into()),
        };
        r.finish(&Ok(()));
        r
    }

    #[test]
    fn findings_come_first_and_a_failed_gate_leads_the_notification() {
        use crate::rehearsal::{Gate, Gates, Lock, Rewrite, findings};
        let mut r = base();
        r.environment = Some("nightly".into());
        let mut s = step(20261110000000, "add_not_null", 48_200);
        s.locks = Some(vec![Lock {
            relation: "orders".into(),
            mode: "AccessExclusiveLock".into(),
        }]);
        s.rewrites = Some(vec![Rewrite {
            relation: "orders".into(),
            bytes_before: Some(2_254_857_830),
        }]);
        let mut first = step(1, "users", 12);
        (first.locks, first.rewrites) = (Some(Vec::new()), Some(Vec::new()));
        r.applied = vec![first, s];
        let gates = Gates {
            fail_on_rewrite: true,
            ..Gates::default()
        };
        r.findings = findings(r.applied.iter().map(StepReport::measured), &[], gates);
        assert_eq!(r.findings[0].gates, [Gate::FailOnRewrite]);
        let failed = crate::rehearsal::failed(&r.findings);
        r.finish(&Err(Error::Rehearsal(failed)));
        assert_eq!(r.outcome, Outcome::RehearsalFailed);
        assert_eq!(r.exit_code, 8);
        let msg = build(&r);
        let second = msg["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            second.starts_with("*Findings* (1):\n🚧 20261110000000_add_not_null would hold ACCESS EXCLUSIVE on orders for 48 s and rewrite it (2.1 GB) (fails `--fail-on-rewrite`)"),
            "{second}"
        );
        assert_eq!(
            msg["text"],
            "🚧 [nightly] migrator up failed its rehearsal: 20261110000000_add_not_null would \
             hold ACCESS EXCLUSIVE on orders for 48 s and rewrite it (2.1 GB) (2 applied)"
        );
    }

    fn failed() -> RunReport {
        let mut r = base();
        r.version_before = Some(1);
        r.applied = vec![step(2, "ok", 15)];
        r.version_after = Some(2);
        r.not_run = vec![step(3, "bad", 0), step(4, "after", 0)];
        let f = Failure {
            version: 3,
            name: "bad".into(),
            file: "3_bad.up.sql".into(),
            line: Some(4),
            column: Some(8),
            statement: Some("SELECT *\n  FROM no_such_table\n WHERE a < 1 && b > 2".into()),
            code: Some("42P01".into()),
            message: "relation \"no_such_table\" does not exist".into(),
            detail: None,
            dirty: false,
            previous_version: Some(2),
        };
        r.finish(&Err(Error::MigrationFailed(Box::new(f))));
        r
    }

    /// Every `text` string anywhere in the payload.
    fn texts(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match x {
                            Value::String(s) if k == "text" => out.push(s.clone()),
                            _ => walk(x, out),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(v, &mut out);
        out
    }

    /// What Slack would reject: too many blocks, long or empty texts, raw `<`.
    fn assert_within_limits(v: &Value) {
        let blocks = v["blocks"].as_array().unwrap();
        assert!(
            !blocks.is_empty() && blocks.len() <= MAX_BLOCKS,
            "{}",
            blocks.len()
        );
        assert!(!v["text"].as_str().unwrap().trim().is_empty());
        for t in texts(v) {
            assert!(!t.trim().is_empty(), "empty text in {v:#}");
            assert!(chars(&t) <= MAX_SECTION_TEXT, "{} chars: {t}", chars(&t));
        }
        for b in blocks {
            for f in b["fields"].as_array().into_iter().flatten() {
                assert!(chars(f["text"].as_str().unwrap()) <= MAX_FIELD_TEXT);
            }
            for e in b["elements"].as_array().into_iter().flatten() {
                assert!(chars(e["text"].as_str().unwrap()) <= MAX_FIELD_TEXT);
            }
        }
    }

    #[test]
    fn success_snapshot() {
        let v = build(&success());
        assert_within_limits(&v);
        insta::assert_json_snapshot!("success", v);
    }

    #[test]
    fn failure_snapshot() {
        let v = build(&failed());
        assert_within_limits(&v);
        insta::assert_json_snapshot!("failure", v);
    }

    #[test]
    fn failure_names_file_line_code_statement_and_what_ran_before() {
        let v = build(&failed());
        let all = texts(&v).join("\n");
        assert!(all.contains("3_bad.up.sql:4:8"), "{all}");
        assert!(all.contains("42P01"), "{all}");
        assert!(
            all.contains("SELECT * ⏎ FROM no_such_table ⏎ WHERE a &lt; 1 &amp;&amp; b &gt; 2"),
            "{all}"
        );
        assert!(all.contains("Applied before the failure"), "{all}");
        assert!(all.contains("2_ok"), "{all}");
        assert!(all.contains("*Not run* (1): `4_after`"), "{all}");
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("3_bad.up.sql:4:8 [42P01] relation"), "{text}");
        assert!(text.starts_with("❌ [prod] migrator up failed: "), "{text}");
    }

    #[test]
    fn user_text_is_escaped_everywhere() {
        let mut r = success();
        r.environment = Some("a<b>&c".into());
        r.applied[0].name = "x<y".into();
        let v = build(&r);
        let all = format!("{}\n{}", v["text"], texts(&v).join("\n"));
        assert!(all.contains("a&lt;b&gt;&amp;c"), "{all}");
        assert!(all.contains("1_x&lt;y"), "{all}");
        assert!(!all.contains("a<b>"), "{all}");
        // The build URL's `&` is escaped inside the link, the link itself kept.
        assert!(
            all.contains(
                "<https://console.example/codebuild?region=eu-west-1&amp;x=1#build|deploy:4f1c>"
            ),
            "{all}"
        );
    }

    #[test]
    fn escape_within_never_splits_an_escape() {
        assert_eq!(escape_within("a&b", 10), "a&amp;b");
        assert_eq!(escape_within("abc&def", 6), "abc…");
        assert_eq!(escape_within("&&&&", 12), "&amp;&amp;…");
        assert!(chars(&escape_within(&"<".repeat(5000), 3000)) <= 3000);
    }

    #[test]
    fn many_migrations_list_the_first_and_count_the_rest() {
        let mut r = base();
        r.applied = (1..=60).map(|i| step(i, &format!("m{i}"), i)).collect();
        r.finish(&Ok(()));
        let v = build(&r);
        assert_within_limits(&v);
        let all = texts(&v).join("\n");
        assert!(all.contains("`20_m20`"), "{all}");
        assert!(!all.contains("`21_m21`"), "{all}");
        assert!(all.contains("…and 40 more"), "{all}");
    }

    #[test]
    fn long_names_and_messages_stay_within_slack_limits() {
        let long = "n".repeat(2500);
        let mut r = failed();
        r.applied = (1..=1000).map(|i| step(i, &long, i)).collect();
        r.not_run = r.applied.clone();
        r.environment = Some("&".repeat(5000));
        let f = r.failure.as_mut().unwrap();
        f.message = "<".repeat(20_000);
        f.statement = Some(">".repeat(20_000));
        f.file = "f".repeat(5000);
        f.detail = Some("d".repeat(5000));
        r.context.commit = Some("c".repeat(5000));
        r.context.build_id = Some("b".repeat(5000));
        assert_within_limits(&build(&r));

        let mut r = base();
        r.finish(&Err(Error::Refused(
            (0..500)
                .map(|i| Refusal::MissingFile {
                    version: i,
                    name: long.clone(),
                })
                .collect(),
        )));
        let v = build(&r);
        assert_within_limits(&v);
        assert!(texts(&v).join("\n").contains("more"));
    }

    #[test]
    fn every_outcome_has_a_non_empty_notification_line() {
        let interrupted = Error::Interrupted {
            signal: Signal::Sigterm,
            detail: Some("2_slow was rolled back; nothing of it is applied".into()),
        };
        let results: Vec<Result<(), Error>> = vec![
            Ok(()),
            Err(interrupted),
            Err(Error::usage("")),
            Err(Error::Refused(Vec::new())),
        ];
        for result in results {
            // A bare report: no database, no environment, nothing applied.
            let mut r = RunReport::new("up");
            r.finish(&result);
            let v = build(&r);
            assert_within_limits(&v);
        }
        let mut r = RunReport::new("up");
        r.finish(&Err(Error::Interrupted {
            signal: Signal::Sigterm,
            detail: Some("stopped".into()),
        }));
        let text = build(&r)["text"].as_str().unwrap().to_string();
        assert!(text.contains("interrupted by SIGTERM"), "{text}");
    }

    #[test]
    fn nothing_to_do_and_dry_run_say_so() {
        let mut r = base();
        r.version_before = Some(10);
        r.version_after = Some(10);
        r.finish(&Ok(()));
        let text = build(&r)["text"].as_str().unwrap().to_string();
        assert!(
            text.contains("up had nothing to do: version 10 is current"),
            "{text}"
        );

        let mut r = base();
        r.dry_run = true;
        r.not_run = vec![step(11, "next", 0)];
        r.finish(&Ok(()));
        let v = build(&r);
        let all = texts(&v).join("\n");
        assert!(all.contains("would run 1 migration"), "{all}");
        assert!(all.contains("`11_next`"), "{all}");
        assert!(all.contains("migrator up --dry-run"), "{all}");
    }

    #[test]
    fn unsafe_urls_are_not_made_links() {
        assert_eq!(link("javascript:alert(1)", "Logs"), "Logs");
        assert_eq!(link("https://x/a|b", "Logs"), "Logs");
        assert_eq!(
            link("https://x/a?b=1&c=2", "L|x"),
            "<https://x/a?b=1&amp;c=2|L/x>"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 ms");
        assert_eq!(duration(999), "999 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 05 s");
    }
}
