//! `rotate scrub`: a new master password in `--master-secret`, every login not
//! kept disabled, the `--scrub-dir` files run; tagged `lifecycle=scrubbed`.

use std::path::PathBuf;

use super::super::{Outcome, Rotation, new_password, scrub, stub};
use crate::aws::rotate::{Call, RotateAws, Secret};
use crate::db::Driver;
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::rotate::plan::{Cluster, LIFECYCLE_TAG, Lifecycle, Step};
use migrator_core::rotate::summary::StepOutcome;

/// What `scrub` needs: where the new password goes and the files to run.
#[derive(Debug)]
pub struct Scrub {
    pub master_secret: String,
    pub scrub_dir: PathBuf,
}

impl Scrub {
    pub async fn run<A: RotateAws>(&self, r: &mut Rotation<'_, A>) -> Result<Outcome> {
        let Some((c, _)) = r.gated(Step::Scrub).await? else {
            return Ok((
                StepOutcome::NothingToDo,
                format!("`{}` is already scrubbed", r.clone_id()),
            ));
        };
        let secret_id = self.master_secret.clone();
        let files = scrub::read_files(&self.scrub_dir)?;
        if r.dry() {
            return dry_run(r, c, &secret_id, &files).await;
        }
        let c = c.expect("today's clone exists outside a dry run");
        let engine = c
            .engine
            .as_deref()
            .and_then(migrator_core::conn::engine_of)
            .ok_or_else(|| Error::usage(format!("`{}`: unknown engine", c.id)))?;
        scrub::check_files(&files, engine)?;
        // Preflight: the connection made after the password change must be
        // possible before anything changes.
        let parts = r.check_connection(&c)?;
        // The secret first: a crash after it leaves the clone unscrubbed, and
        // the next run makes a new password; never a password set but not kept.
        let password = new_password()?;
        let create = !r.aws.secret_exists(&secret_id).await?;
        r.apply(Call::StoreSecret {
            secret_id: secret_id.clone(),
            value: Secret::new(secret_json(&c, parts.dbname.as_deref(), &password)),
            create,
        })
        .await?;
        let made = r
            .apply(Call::ResetMasterPassword {
                cluster: c.id.clone(),
                password,
                instance: c.instance,
            })
            .await?;
        let deadline = r.deadline();
        r.wait_password(&c.id, c.instance, &made, deadline).await?;
        let c = r.wait_available(&c, deadline).await?;
        let mut db = r.connect_db(&c, &secret_id).await?;
        let disable = to_disable(r, &mut db, engine, &c).await?;
        for a in &disable {
            let sql = scrub::disable_sql(engine, a);
            let statements = migrator_core::split::split(&sql, engine, false)
                .expect("a generated statement splits");
            db.execute_plain(&statements, r.interrupt)
                .await
                .map_err(|e| Error::database(format!("disabling login `{a}`"), e.message))?;
            tracing::info!(login = %a, "login disabled");
        }
        let mut ran = Vec::new();
        for f in &files {
            let ms = scrub::run_file(&mut db, f, r.interrupt).await?;
            tracing::info!(file = %f.name, elapsed_ms = ms, "scrub file done");
            ran.push(f.name.clone());
        }
        r.tag(&c, Lifecycle::Scrubbed, &[]).await?;
        let names: Vec<String> = disable.iter().map(|a| a.to_string()).collect();
        r.done(format!(
            "`{}`: new master password in `{secret_id}`; {} login(s) disabled{}; ran {}; tagged \
             {LIFECYCLE_TAG}=scrubbed",
            c.id,
            disable.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            },
            ran.join(", ")
        ))
    }
}

async fn dry_run<A: RotateAws>(
    r: &mut Rotation<'_, A>,
    c: Option<Cluster>,
    secret_id: &str,
    files: &[scrub::ScrubFile],
) -> Result<Outcome> {
    let id = r.clone_id();
    let placeholder = Secret::new("(new random password)".to_string());
    let create = !r.aws.secret_exists(secret_id).await?;
    let target = c.clone().unwrap_or_else(|| stub(&id));
    r.apply(Call::StoreSecret {
        secret_id: secret_id.to_string(),
        value: placeholder.clone(),
        create,
    })
    .await?;
    r.apply(Call::ResetMasterPassword {
        cluster: id.clone(),
        password: placeholder,
        instance: target.instance,
    })
    .await?;
    let mut lines = Vec::new();
    // Listing the logins needs a connection: with the secret as it is now
    // (or the flags), which may not open the clone yet.
    let engine = target
        .engine
        .as_deref()
        .and_then(migrator_core::conn::engine_of);
    match (&c, engine) {
        (Some(c), Some(engine)) => {
            scrub::check_files(files, engine)?;
            match r.connect_db(c, secret_id).await {
                Ok(mut db) => {
                    let disable = to_disable(r, &mut db, engine, c).await?;
                    if disable.is_empty() {
                        lines.push("would disable no login".to_string());
                    }
                    for a in disable {
                        lines.push(format!("would run: {}", scrub::disable_sql(engine, &a)));
                    }
                }
                Err(e) => lines.push(format!(
                    "would disable every login not kept (cannot list them now: {e})"
                )),
            }
        }
        _ => lines.push("would disable every login not kept".to_string()),
    }
    for f in files {
        lines.push(format!("would run scrub file {}", f.name));
    }
    r.tag(&target, Lifecycle::Scrubbed, &[]).await?;
    r.assume(Lifecycle::Scrubbed);
    r.done(lines.join("\n"))
}

/// The secret's JSON: what `--db-secret` reads (RDS's format). `dbname`: the
/// cluster's, else the one the user's flags or URL name.
fn secret_json(c: &Cluster, dbname: Option<&str>, password: &Secret) -> String {
    let engine = match c.engine.as_deref().and_then(migrator_core::conn::engine_of) {
        Some(Engine::Mysql) => "mysql",
        _ => "postgres",
    };
    serde_json::json!({
        "engine": engine,
        "host": c.endpoint,
        "port": c.port,
        "username": c.master_username,
        "password": password.expose(),
        "dbname": c.database_name.as_deref().or(dbname),
        "dbClusterIdentifier": (!c.instance).then_some(&c.id),
        "dbInstanceIdentifier": c.instance.then_some(&c.id),
    })
    .to_string()
}

/// The logins of the clone's database that are not kept: every one but
/// `--keep-login`s, the master user and the login connected.
async fn to_disable<A: RotateAws>(
    r: &Rotation<'_, A>,
    db: &mut crate::db::AnyDriver,
    engine: Engine,
    c: &Cluster,
) -> Result<Vec<scrub::Account>> {
    let (accounts, me) = scrub::logins(db).await?;
    Ok(scrub::to_disable(
        engine,
        &accounts,
        &r.rotate.keep_logins,
        c.master_username.as_deref(),
        &me,
    ))
}
