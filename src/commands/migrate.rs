//! `up`, `down`, `force`, `baseline`: preflight, files ∥ connect, the engine,
//! then the report, the summary and Slack.

use std::time::Instant;

use super::load_and_connect;
use crate::engine;
use crate::interrupt::Interrupt;
use crate::settings::{Change, OutputFormat, Settings};
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::report::RunReport;

/// Runs a changing command and tells about it: the report file and the summary
/// first, then Slack, then the report file again with the notification's fate.
pub(super) async fn run(settings: &Settings, change: &Change, interrupt: &Interrupt) -> Result<()> {
    let (mut report, result) = changing(settings, change, interrupt).await;
    let tail = Tail {
        slack: true,
        print: true,
    };
    tell(settings, &mut report, result, tail).await?
}

/// What [`tell`] does besides writing the report file.
pub(super) struct Tail {
    /// Post to Slack (when configured), then rewrite the file with its fate.
    pub slack: bool,
    /// Print the report on stdout.
    pub print: bool,
}

/// The tail of every changing run (`up` and `rotate migrate`): the report
/// file, then Slack and the file again. The outer error: the report file could
/// not be written; the inner one is the run's, as Slack leaves it.
pub(super) async fn tell(
    settings: &Settings,
    report: &mut RunReport,
    result: Result<()>,
    tail: Tail,
) -> Result<Result<()>> {
    // The report is written (and the summary shown) before Slack is tried,
    // so a webhook that hangs never loses it; the file is rewritten, and
    // the JSON printed, once the notification's fate is known.
    super::write_report(settings, report)?;
    let (ok, text) = (result.is_ok(), settings.output == OutputFormat::Text);
    if tail.print && text {
        print_report(settings, report, ok);
    }
    let mut result = result;
    if tail.slack {
        result = crate::notify::notify(&settings.notify, report, result).await;
        super::write_report(settings, report)?;
    }
    if tail.print && !text {
        print_report(settings, report, ok);
    }
    Ok(result)
}

/// Runs a changing command (`up`, `down`, `force`, `baseline`) and fills its
/// report, without printing it or telling Slack: the caller does.
pub async fn changing(
    settings: &Settings,
    change: &Change,
    interrupt: &Interrupt,
) -> (RunReport, Result<()>) {
    // Read while the run goes on; it waits on nothing the run needs.
    let context = tokio::spawn(crate::notify::context_from_env());
    let mut report = RunReport::new(change.name());
    report.environment = settings.env_label.clone();
    report.init_sql = settings
        .init_sql
        .iter()
        .map(|s| migrator_core::redact::scrub(s).into_owned())
        .collect();
    let started = Instant::now();
    let result = prepare_and_run(settings, change, interrupt, &mut report).await;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.finish(&result);
    report.context = context.await.unwrap_or_default();
    (report, result)
}

/// Checks what can be checked without the database (the report file first),
/// then reads, connects and hands over to the engine.
async fn prepare_and_run(
    settings: &Settings,
    change: &Change,
    interrupt: &Interrupt,
    report: &mut RunReport,
) -> Result<()> {
    super::check_report(settings)?;
    crate::notify::check(&settings.notify)?;
    guard_protected(settings, change)?;
    guard_verify_down(settings, change)?;
    if let Change::Up {
        single_transaction: true,
        ..
    } = change
        && engine_of(settings) == Some(Engine::Mysql)
    {
        return Err(engine::single_transaction_on_mysql());
    }
    let (files, mut db) = load_and_connect(settings, interrupt).await?;
    let options = engine::Options {
        lock_timeout: settings.lock_timeout,
        checks: settings.checks,
        adopt: settings.adopt,
        resume: settings.wait,
        link_timeout: settings.link_timeout,
        rehearsal: settings.rehearsal,
    };
    engine::run(&mut db, &files, change, &options, interrupt, report).await
}

/// In a protected environment, destructive commands need the environment's name
/// typed again; a dry run is not destructive. Names are compared without case
/// (`cli` already trimmed them), so "PROD" is as protected as "prod".
fn guard_protected(settings: &Settings, change: &Change) -> Result<()> {
    let destructive = change.destructive();
    let Some(env) = settings.env_label.as_deref() else {
        return Ok(());
    };
    if !destructive
        || !settings
            .protected_envs
            .iter()
            .any(|p| p.eq_ignore_ascii_case(env))
    {
        return Ok(());
    }
    match settings.confirm_env.as_deref() {
        Some(c) if c.eq_ignore_ascii_case(env) => Ok(()),
        Some(c) => Err(Error::usage(format!(
            "--confirm-env {c} does not match the environment `{env}`; nothing was changed"
        ))),
        None => Err(Error::usage(format!(
            "`{env}` is a protected environment: `{}` also needs --confirm-env {env}; nothing was changed",
            change.name()
        ))),
    }
}

/// `--verify-down` runs down scripts: never where the environment is
/// protected (not even with `--confirm-env`), and not inside
/// `--single-transaction`, whose migrations share one transaction.
fn guard_verify_down(settings: &Settings, change: &Change) -> Result<()> {
    if !settings.rehearsal.gates.verify_down {
        return Ok(());
    }
    if let Some(env) = settings.env_label.as_deref()
        && settings
            .protected_envs
            .iter()
            .any(|p| p.eq_ignore_ascii_case(env))
    {
        return Err(Error::usage(format!(
            "--verify-down runs down scripts, and `{env}` is a protected environment: rehearse \
             on a clone (another --env), not here; nothing was changed"
        )));
    }
    if let Change::Up {
        single_transaction: true,
        ..
    } = change
    {
        return Err(Error::usage(
            "--verify-down cannot run inside --single-transaction: each down is checked right \
             after its own up; drop one of the two",
        ));
    }
    Ok(())
}

/// Prints the report on stdout: the text summary or the JSON.
fn print_report(settings: &Settings, report: &RunReport, ok: bool) {
    match settings.output {
        OutputFormat::Json => {
            crate::output::stdout(&serde_json::to_string_pretty(report).expect("report serializes"))
        }
        OutputFormat::Text if ok || !report.applied.is_empty() => {
            crate::output::stdout(report.summary().trim_end())
        }
        OutputFormat::Text => {}
    }
}

/// The engine, when the URL alone says (before any AWS call).
fn engine_of(settings: &Settings) -> Option<Engine> {
    let url = settings.database_url.as_deref()?;
    migrator_core::conn::parse_url(url)
        .ok()
        .and_then(|p| p.engine)
}
