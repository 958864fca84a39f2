//! Taking over another tool's history without re-running anything.
//!
//! When `migrator_history` does not exist yet and the database holds the history
//! table of golang-migrate, sqlx, refinery or diesel, `up` records what that tool
//! applied as applied here, and leaves the other table untouched. Pure: the driver
//! reads the rows (as text) with the queries below; this module decides.

use crate::error::Refusal;
use crate::migration::{Engine, Migration, Order, Version};

/// A migration tool whose history we can adopt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    GolangMigrate,
    Sqlx,
    Refinery,
    Diesel,
}

impl Tool {
    pub const ALL: [Tool; 4] = [
        Tool::GolangMigrate,
        Tool::Sqlx,
        Tool::Refinery,
        Tool::Diesel,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Tool::GolangMigrate => "schema_migrations",
            Tool::Sqlx => "_sqlx_migrations",
            Tool::Refinery => "refinery_schema_history",
            Tool::Diesel => "__diesel_schema_migrations",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tool::GolangMigrate => "golang-migrate",
            Tool::Sqlx => "sqlx",
            Tool::Refinery => "refinery",
            Tool::Diesel => "diesel",
        }
    }

    /// The query that reads the tool's table as text columns:
    /// `version, name, ok` (`ok` false means a dirty/failed record).
    pub fn query(self, engine: Engine) -> String {
        let t = |col: &str| match engine {
            Engine::Postgres => format!("CAST({col} AS TEXT)"),
            Engine::Mysql => format!("CAST({col} AS CHAR)"),
        };
        match self {
            // One row: the current version and whether it is dirty.
            Tool::GolangMigrate => format!(
                "SELECT {}, '', {} FROM schema_migrations",
                t("version"),
                t("dirty")
            ),
            Tool::Sqlx => format!(
                "SELECT {}, description, {} FROM _sqlx_migrations ORDER BY version",
                t("version"),
                t("success")
            ),
            Tool::Refinery => format!(
                "SELECT {}, name, 'true' FROM refinery_schema_history ORDER BY version",
                t("version")
            ),
            Tool::Diesel => {
                "SELECT version, '', 'true' FROM __diesel_schema_migrations ORDER BY version"
                    .to_string()
            }
        }
    }
}

/// One query naming which of the tools' tables exist (one row each, the
/// table's name first), so that a database holding none of them, the usual
/// case, costs one round trip instead of one per tool.
pub fn present_query(engine: Engine) -> String {
    let names: Vec<String> = Tool::ALL
        .iter()
        .map(|t| format!("'{}'", t.table()))
        .collect();
    let names = names.join(", ");
    match engine {
        // to_regclass resolves a name as the tools' queries do (search_path).
        Engine::Postgres => {
            format!("SELECT t FROM unnest(ARRAY[{names}]) AS t WHERE to_regclass(t) IS NOT NULL")
        }
        Engine::Mysql => format!(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() AND table_name IN ({names})"
        ),
    }
}

/// What another tool recorded, as read from its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    pub tool: Tool,
    /// `(version, name, ok)` rows as text.
    pub rows: Vec<(String, String, String)>,
}

/// A history row to record as applied: version, name, checksum.
pub type Adopted = (Version, String, String);

fn truthy(s: &str) -> bool {
    matches!(s.trim().to_ascii_lowercase().as_str(), "t" | "true" | "1")
}

fn version(tool: Tool, s: &str) -> Option<Version> {
    let digits: String = match tool {
        // diesel stores the folder prefix, possibly with dashes.
        Tool::Diesel => s.chars().filter(|c| *c != '-').collect(),
        _ => s.trim().to_string(),
    };
    digits.parse().ok()
}

/// Turns another tool's records into rows of our history, or refuses when that
/// tool's own state is failed. Checksums are the files' (so later edits are
/// caught from now on); a recorded version without a file keeps an empty checksum.
pub fn adopt(foreign: &Foreign, files: &[Migration]) -> Result<Vec<Adopted>, Box<Refusal>> {
    let table = foreign.tool.table().to_string();
    let name_of = |v: Version, recorded: &str| {
        files
            .iter()
            .find(|m| m.version == v)
            .map(|m| (m.name.clone(), m.checksum.clone()))
            .unwrap_or_else(|| (recorded.to_string(), String::new()))
    };
    let mut out = Vec::new();
    for (v, name, ok) in &foreign.rows {
        let Some(ver) = version(foreign.tool, v) else {
            return Err(Box::new(Refusal::ForeignDirty {
                table,
                detail: format!("version `{v}` is not a number"),
            }));
        };
        // golang-migrate's third column is `dirty`; the others' is `success`.
        let failed = match foreign.tool {
            Tool::GolangMigrate => truthy(ok),
            _ => !truthy(ok),
        };
        if failed {
            let detail = match foreign.tool {
                Tool::GolangMigrate => format!("version {ver} is dirty"),
                _ => format!("version {ver} is recorded as failed"),
            };
            return Err(Box::new(Refusal::ForeignDirty { table, detail }));
        }
        match foreign.tool {
            // golang-migrate keeps only the current version: every file up to it
            // was applied.
            Tool::GolangMigrate => {
                for m in files.iter().filter(|m| m.version <= ver) {
                    out.push((m.version, m.name.clone(), m.checksum.clone()));
                }
                if !files.iter().any(|m| m.version == ver) {
                    out.push((ver, "adopted".to_string(), String::new()));
                }
            }
            _ => {
                let (n, sum) = name_of(ver, name);
                out.push((ver, if n.is_empty() { "adopted".into() } else { n }, sum));
            }
        }
    }
    out.sort_by_key(|r| r.0);
    out.dedup_by_key(|r| r.0);
    Ok(out)
}

/// `baseline VERSION`: every file up to VERSION not yet recorded.
pub fn baseline(
    files: &[Migration],
    recorded: &[Version],
    version: Version,
) -> Result<Vec<Adopted>, String> {
    if !files.iter().any(|m| m.version == version) {
        return Err(format!(
            "baseline {version}: no migration file has version {version}; run `migrator status` to list them"
        ));
    }
    Ok(files
        .iter()
        .filter(|m| !Order::of(files).lt(version, m.version) && !recorded.contains(&m.version))
        .map(|m| (m.version, m.name.clone(), m.checksum.clone()))
        .collect())
}

#[cfg(test)]
mod tests {

    #[test]
    fn one_query_names_every_tools_table() {
        for engine in [Engine::Postgres, Engine::Mysql] {
            let q = present_query(engine);
            for tool in Tool::ALL {
                assert!(q.contains(&format!("'{}'", tool.table())), "{q}");
            }
        }
    }
    use super::*;
    use crate::plan::tests::file;

    fn rows(r: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        r.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    }

    #[test]
    fn golang_migrate_version_means_every_file_up_to_it() {
        let files: Vec<_> = [1, 2, 3, 4].map(|v| file(v, true)).into();
        let f = Foreign {
            tool: Tool::GolangMigrate,
            rows: rows(&[("3", "", "false")]),
        };
        let adopted = adopt(&f, &files).unwrap();
        assert_eq!(adopted.iter().map(|a| a.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(adopted[0].2, "sum1", "checksums come from the files");
        let dirty = Foreign {
            tool: Tool::GolangMigrate,
            rows: rows(&[("3", "", "t")]),
        };
        assert!(matches!(
            adopt(&dirty, &files).map_err(|r| *r),
            Err(Refusal::ForeignDirty { .. })
        ));
    }

    #[test]
    fn sqlx_failed_rows_are_refused_and_others_adopted_as_recorded() {
        let files: Vec<_> = [1, 2, 3].map(|v| file(v, true)).into();
        let ok = Foreign {
            tool: Tool::Sqlx,
            rows: rows(&[("1", "m", "1"), ("2", "m", "true")]),
        };
        assert_eq!(adopt(&ok, &files).unwrap().len(), 2);
        let failed = Foreign {
            tool: Tool::Sqlx,
            rows: rows(&[("1", "m", "true"), ("2", "m", "false")]),
        };
        let err = adopt(&failed, &files).unwrap_err();
        assert!(
            err.to_string().contains("version 2 is recorded as failed"),
            "{err}"
        );
    }

    #[test]
    fn diesel_versions_lose_their_dashes_and_unknown_files_keep_their_name() {
        let files = vec![file(20210101000000, true)];
        let f = Foreign {
            tool: Tool::Diesel,
            rows: rows(&[
                ("2021-01-01-000000", "", "true"),
                ("20200101000000", "", "true"),
            ]),
        };
        let a = adopt(&f, &files).unwrap();
        assert_eq!(a[0], (20200101000000, "adopted".into(), String::new()));
        assert_eq!(a[1].0, 20210101000000);
    }

    #[test]
    fn baseline_marks_unrecorded_files_up_to_the_version() {
        let files: Vec<_> = [1, 2, 3].map(|v| file(v, true)).into();
        let b = baseline(&files, &[1], 2).unwrap();
        assert_eq!(b.iter().map(|a| a.0).collect::<Vec<_>>(), [2]);
        assert!(baseline(&files, &[], 9).is_err());
    }
}
