//! The SQL side of `rotate scrub`: which logins to disable, and the scrub files.
//!
//! Pure where it decides (which accounts to disable, the statement that disables
//! one, the order of the files); IO only where it must (listing accounts and
//! running statements through the crate's drivers, reading the folder). It
//! never disables the master user, the user it is connected as, an account in
//! `--keep-logins`, or an account the engine or RDS needs:
//!
//! - PostgreSQL: roles that can log in (`rolcanlogin`), except `pg_*` and
//!   `rds*` (RDS's own `rdsadmin`, `rdsrepladmin`, `rdstopmgr`, `rds_*`);
//!   disabled with `ALTER ROLE … NOLOGIN`.
//! - MySQL / MariaDB: accounts of `mysql.user` (roles excluded on MariaDB),
//!   except `mysql.*` and `mariadb.*` system accounts (and MariaDB's
//!   `mysql@localhost`, made by its installer), `rdsadmin` and the other
//!   `rds*` accounts, and Aurora's `AWS_*` roles; locked with
//!   `ALTER USER … ACCOUNT LOCK`. `root` is not special: on RDS it does not
//!   exist, and on a server of your own it is usually the master; otherwise name
//!   it in `--keep-logins`.
//!
//! Scrub files run in file-name order, each in one transaction, and any error
//! fails the step. A crash in the middle leaves the clone untagged, so the next
//! run does it all again: scrub files must be safe to run twice (masking that
//! derives the value from the row's key is; appending to a value is not).

use std::path::Path;

use crate::db::{AnyDriver, Driver};
use crate::interrupt::Interrupt;
use migrator_core::error::{Error, Result};
use migrator_core::migration::Engine;
use migrator_core::split;

/// A login: a PostgreSQL role, or a MySQL `user@host` account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    /// MySQL's host part; `None` on PostgreSQL.
    pub host: Option<String>,
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{}@{h}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

impl Account {
    /// `user` or `user@host` (`CURRENT_USER()` on MySQL, a `--keep-logins` entry).
    pub fn parse(text: &str, engine: Engine) -> Account {
        match (engine, text.rsplit_once('@')) {
            (Engine::Mysql, Some((u, h))) => Account {
                user: u.to_string(),
                host: Some(h.to_string()),
            },
            _ => Account {
                user: text.to_string(),
                host: None,
            },
        }
    }

    /// Whether `pattern` (`user` for any host, or `user@host`) names this account.
    fn matches(&self, pattern: &Account) -> bool {
        self.user == pattern.user
            && match (&pattern.host, &self.host) {
                (None, _) => true,
                (Some(p), Some(h)) => p.eq_ignore_ascii_case(h),
                (Some(_), None) => false,
            }
    }
}

/// Accounts the engine or RDS itself needs, never disabled.
pub fn is_system(engine: Engine, user: &str) -> bool {
    let lower = user.to_ascii_lowercase();
    match engine {
        Engine::Postgres => lower.starts_with("pg_") || lower.starts_with("rds"),
        Engine::Mysql => {
            lower == "mysql"
                || lower.starts_with("mysql.")
                || lower.starts_with("mariadb.")
                || lower.starts_with("rds")
                || user.starts_with("AWS_")
        }
    }
}

/// The accounts to disable: every login but the system accounts, the master
/// user (any host), the current user and `keep`.
pub fn to_disable(
    engine: Engine,
    accounts: &[Account],
    keep: &[String],
    master: Option<&str>,
    current: &Account,
) -> Vec<Account> {
    let keep: Vec<Account> = keep.iter().map(|k| Account::parse(k, engine)).collect();
    accounts
        .iter()
        .filter(|a| !is_system(engine, &a.user))
        .filter(|a| Some(a.user.as_str()) != master)
        .filter(|a| !a.matches(current))
        .filter(|a| !keep.iter().any(|k| a.matches(k)))
        .cloned()
        .collect()
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// The statement that stops `account` from logging in.
pub fn disable_sql(engine: Engine, account: &Account) -> String {
    match engine {
        Engine::Postgres => format!("ALTER ROLE {} NOLOGIN", quote_ident(&account.user)),
        Engine::Mysql => format!(
            "ALTER USER {}@{} ACCOUNT LOCK",
            quote_string(&account.user),
            quote_string(account.host.as_deref().unwrap_or("%"))
        ),
    }
}

fn column(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

async fn rows(db: &mut AnyDriver, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
    db.query_text(sql)
        .await?
        .ok_or_else(|| Error::database("listing the logins", format!("`{sql}` found no table")))
}

/// The logins of the server, and who we are connected as.
pub async fn logins(db: &mut AnyDriver) -> Result<(Vec<Account>, Account)> {
    let engine = db.info().engine;
    match engine {
        Engine::Postgres => {
            let all = rows(
                db,
                "SELECT rolname FROM pg_roles WHERE rolcanlogin ORDER BY rolname",
            )
            .await?;
            let me = rows(db, "SELECT current_user").await?;
            Ok((
                all.iter()
                    .map(|r| Account::parse(&column(r, 0), engine))
                    .collect(),
                Account::parse(
                    &me.first().map(|r| column(r, 0)).unwrap_or_default(),
                    engine,
                ),
            ))
        }
        Engine::Mysql => {
            let version = rows(db, "SELECT VERSION()").await?;
            let mariadb = version
                .first()
                .is_some_and(|r| column(r, 0).to_ascii_lowercase().contains("mariadb"));
            let sql = if mariadb {
                "SELECT User, Host FROM mysql.user WHERE is_role = 'N' ORDER BY User, Host"
            } else {
                "SELECT User, Host FROM mysql.user ORDER BY User, Host"
            };
            let all = rows(db, sql).await?;
            let me = rows(db, "SELECT CURRENT_USER()").await?;
            Ok((
                all.iter()
                    .map(|r| Account {
                        user: column(r, 0),
                        host: Some(column(r, 1)),
                    })
                    .collect(),
                Account::parse(
                    &me.first().map(|r| column(r, 0)).unwrap_or_default(),
                    engine,
                ),
            ))
        }
    }
}

/// A scrub file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrubFile {
    pub name: String,
    pub sql: String,
}

/// The `*.sql` files of `dir`, in file-name order. A folder without one is an
/// error: a clone is not called scrubbed without its data masked.
pub fn read_files(dir: &Path) -> Result<Vec<ScrubFile>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("--scrub-dir {}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::usage(format!("--scrub-dir {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sql") || !entry.path().is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .map_err(|e| Error::usage(format!("{}: {e}", entry.path().display())))?;
        let sql = String::from_utf8(bytes)
            .map_err(|_| Error::usage(format!("{}: not UTF-8", entry.path().display())))?;
        files.push(ScrubFile { name, sql });
    }
    if files.is_empty() {
        return Err(Error::usage(format!(
            "--scrub-dir {}: no .sql files; a clone is only called scrubbed once its data is masked",
            dir.display()
        )));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Splits every file for `engine`: a bad file stops the step before anything runs.
pub fn check_files(files: &[ScrubFile], engine: Engine) -> Result<()> {
    for f in files {
        split::split(&f.sql, engine, false).map_err(|e| Error::Syntax {
            file: f.name.clone(),
            line: e.line,
            column: e.column,
            message: e.message.clone(),
        })?;
    }
    Ok(())
}

/// Runs one file in one transaction; a failure names file, line and statement.
pub async fn run_file(db: &mut AnyDriver, file: &ScrubFile, interrupt: &Interrupt) -> Result<u64> {
    let engine = db.info().engine;
    let statements = split::split(&file.sql, engine, false).map_err(|e| Error::Syntax {
        file: file.name.clone(),
        line: e.line,
        column: e.column,
        message: e.message.clone(),
    })?;
    db.execute_plain(&statements, interrupt).await.map_err(|e| {
        if e.cancelled
            && let Some(signal) = interrupt.signal()
        {
            return Error::Interrupted {
                signal,
                detail: Some(format!("scrub file {} rolled back", file.name)),
            };
        }
        let at = e
            .offset
            .or_else(|| e.statement.and_then(|i| statements.get(i)).map(|s| s.start));
        let place = match at {
            Some(o) => {
                let (l, c) = split::line_col(&file.sql, o);
                format!("{}:{l}:{c}", file.name)
            }
            None => file.name.clone(),
        };
        let code = e.code.map(|c| format!("[{c}] ")).unwrap_or_default();
        Error::database(
            format!("running scrub file {place} (rolled back)"),
            format!("{code}{}", e.message),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(names: &[&str]) -> Vec<Account> {
        names
            .iter()
            .map(|n| Account::parse(n, Engine::Postgres))
            .collect()
    }

    fn my(accounts: &[(&str, &str)]) -> Vec<Account> {
        accounts
            .iter()
            .map(|(u, h)| Account {
                user: u.to_string(),
                host: Some(h.to_string()),
            })
            .collect()
    }

    fn names(a: &[Account]) -> Vec<String> {
        a.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn postgres_keeps_master_current_kept_and_rds_roles() {
        let all = pg(&[
            "alice",
            "app_ro",
            "ci",
            "migrator",
            "pg_monitor",
            "postgres",
            "rds_superuser",
            "rdsadmin",
            "rdsrepladmin",
            "rdstopmgr",
            "svc_reports",
        ]);
        let got = to_disable(
            Engine::Postgres,
            &all,
            &["ci".into(), "svc_reports".into()],
            Some("postgres"),
            &Account::parse("migrator", Engine::Postgres),
        );
        assert_eq!(names(&got), ["alice", "app_ro"]);
    }

    #[test]
    fn mysql_keeps_system_accounts_and_matches_hosts() {
        let all = my(&[
            ("admin", "%"),
            ("alice", "%"),
            ("alice", "localhost"),
            ("bob", "10.0.%"),
            ("mariadb.sys", "localhost"),
            ("mysql.infoschema", "localhost"),
            ("mysql.session", "localhost"),
            ("mysql.sys", "localhost"),
            ("mysql", "localhost"),
            ("rdsadmin", "localhost"),
            ("AWS_LOAD_S3_ACCESS", "%"),
            ("rds_superuser_role", "%"),
            ("root", "localhost"),
            ("svc", "%"),
            ("", "localhost"),
        ]);
        let got = to_disable(
            Engine::Mysql,
            &all,
            &["svc".into(), "alice@localhost".into()],
            Some("admin"),
            &Account::parse("root@localhost", Engine::Mysql),
        );
        assert_eq!(names(&got), ["alice@%", "bob@10.0.%", "@localhost"]);
    }

    #[test]
    fn disabling_statements_quote_names() {
        assert_eq!(
            disable_sql(
                Engine::Postgres,
                &Account::parse("we\"ird", Engine::Postgres)
            ),
            "ALTER ROLE \"we\"\"ird\" NOLOGIN"
        );
        assert_eq!(
            disable_sql(
                Engine::Mysql,
                &Account {
                    user: "o'neil\\".into(),
                    host: Some("%".into())
                }
            ),
            "ALTER USER 'o''neil\\\\'@'%' ACCOUNT LOCK"
        );
    }

    #[test]
    fn scrub_files_are_read_in_name_order_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_files(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no .sql files"), "{err}");
        for (name, text) in [
            ("20_truncate.sql", "TRUNCATE audit_log;"),
            ("10_mask.sql", "UPDATE users SET email = 'x';"),
            ("README.md", "not sql"),
        ] {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let files = read_files(dir.path()).unwrap();
        let order: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(order, ["10_mask.sql", "20_truncate.sql"]);
        assert!(check_files(&files, Engine::Postgres).is_ok());
        let bad = [ScrubFile {
            name: "30_bad.sql".into(),
            sql: "UPDATE users SET email = 'unterminated;".into(),
        }];
        let err = check_files(&bad, Engine::Postgres).unwrap_err();
        assert!(err.to_string().starts_with("30_bad.sql:1:"), "{err}");
        assert_eq!(err.exit_status().code(), 2);
    }
}
