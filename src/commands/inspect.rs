//! `status`, `version`, `validate`: read-only; no lock, nothing created.

use super::load_connect_and_read;
use crate::interrupt::Interrupt;
use crate::settings::{Action, OutputFormat, Settings};
use migrator_core::error::{Error, Result};
use migrator_core::{plan, status};

/// `status`, `version`, `validate`: read-only, no lock, never create anything.
pub(super) async fn run(settings: &Settings, action: &Action, interrupt: &Interrupt) -> Result<()> {
    let (files, mut db, read) = load_connect_and_read(settings, interrupt).await?;
    let rows = crate::engine::history(&mut db, read, &files, settings.adopt).await?;
    let json = settings.output == OutputFormat::Json;
    match action {
        Action::Status => {
            let s = status::build(&files, &rows);
            if json {
                crate::output::stdout(
                    &serde_json::to_string_pretty(&s).expect("status serializes"),
                );
            } else {
                crate::output::stdout_lines(s.lines());
            }
            Ok(())
        }
        Action::Version => {
            let s = status::build(&files, &rows);
            if json {
                let v = serde_json::json!({"version": s.current_version, "dirty": s.dirty});
                crate::output::stdout(&v.to_string());
            } else {
                let v = s
                    .current_version
                    .map_or_else(|| "none".into(), |v| v.to_string());
                crate::output::stdout(&format!("{v}{}", if s.dirty { " (dirty)" } else { "" }));
            }
            Ok(())
        }
        _ => {
            let problems = plan::validate(&files, &rows, settings.checks);
            if !problems.is_empty() {
                if json {
                    let v = serde_json::json!({"ok": false, "refusals": problems});
                    crate::output::stdout(&v.to_string());
                }
                return Err(Error::Refused(problems));
            }
            let pending = plan::plan_up(&files, &rows, None)?.len();
            if json {
                let v = serde_json::json!({"ok": true, "applied": rows.len(), "pending": pending});
                crate::output::stdout(&v.to_string());
            } else {
                crate::output::stdout(&format!(
                    "ok: {} applied, {pending} pending; the database and the files agree",
                    rows.len()
                ));
            }
            Ok(())
        }
    }
}
