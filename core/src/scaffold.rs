//! `migrator new`: the files of a new migration, in the folder's own format.
//!
//! Pure: the clock is an argument; the app's `files::write_new` writes them and
//! never overwrites one.

use crate::error::{Error, Result};
use crate::migration::{Format, Migration, Version};

/// `YYYYMMDDHHMMSS` in UTC for a number of seconds since the Unix epoch.
pub fn timestamp(unix_seconds: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::date::utc(unix_seconds);
    format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}")
}

/// The version of a new migration, as its file name spells it: never one the
/// folder already has. By default the UTC timestamp of `unix_seconds`, bumped
/// past the newest existing version (two `new` in one second, a clock behind);
/// `sequential`: the newest version plus one, zero-padded as wide as the
/// folder's widest version (4 digits in an empty folder: 0001).
pub fn version(existing: &[Migration], unix_seconds: u64, sequential: bool) -> String {
    let newest: Option<Version> = existing.iter().map(|m| m.version).max();
    if sequential {
        let width = existing
            .iter()
            .map(|m| {
                let file = m.up.path.rsplit('/').next().unwrap_or(&m.up.path);
                file.trim_start_matches('V')
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .count()
            })
            .max()
            .unwrap_or(4);
        return format!("{:0width$}", newest.map_or(1, |v| v + 1));
    }
    let stamp = timestamp(unix_seconds);
    match newest {
        Some(v) if stamp.parse::<Version>().is_ok_and(|s| s <= v) => (v + 1).to_string(),
        _ => stamp,
    }
}

/// The (relative path, contents) of a new migration named `name` at version `v`
/// (from [`version`]).
pub fn files(format: Format, name: &str, v: &str) -> Result<Vec<(String, String)>> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::usage(format!(
            "migration name `{name}`: use lowercase letters, digits and underscores, e.g. add_users"
        )));
    }
    Ok(match format {
        Format::GolangMigrate => vec![
            (format!("{v}_{name}.up.sql"), format!("-- {name}: up\n")),
            (format!("{v}_{name}.down.sql"), format!("-- {name}: down\n")),
        ],
        Format::Refinery => vec![(format!("V{v}__{name}.sql"), format!("-- {name}\n"))],
        Format::Diesel if v.len() != 14 => {
            return Err(Error::usage(format!(
                "version {v}: diesel folders are named by a UTC timestamp (YYYY-MM-DD-HHMMSS); \
                 drop --sequential"
            )));
        }
        Format::Diesel => {
            let dir = format!(
                "{}-{}-{}-{}_{name}",
                &v[0..4],
                &v[4..6],
                &v[6..8],
                &v[8..14]
            );
            vec![
                (format!("{dir}/up.sql"), format!("-- {name}: up\n")),
                (format!("{dir}/down.sql"), format!("-- {name}: down\n")),
            ]
        }
        Format::Dbmate => vec![(
            format!("{v}_{name}.sql"),
            "-- migrate:up\n\n-- migrate:down\n".to_string(),
        )],
        Format::Goose => vec![(
            format!("{v}_{name}.sql"),
            "-- +goose Up\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n\n-- +goose Down\n-- +goose StatementBegin\n\n-- +goose StatementEnd\n"
                .to_string(),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "19700101000000");
        assert_eq!(timestamp(951_782_400), "20000229000000");
        assert_eq!(timestamp(1_795_307_045), "20261122002405");
    }

    #[test]
    fn each_format_gets_its_own_layout() {
        let t = timestamp(1_795_307_045);
        let names = |f| -> Vec<String> {
            files(f, "add_users", &t)
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        };
        assert_eq!(
            names(Format::GolangMigrate),
            [
                "20261122002405_add_users.up.sql",
                "20261122002405_add_users.down.sql"
            ]
        );
        assert_eq!(names(Format::Refinery), ["V20261122002405__add_users.sql"]);
        assert_eq!(
            names(Format::Diesel)[0],
            "2026-11-22-002405_add_users/up.sql"
        );
        assert!(files(Format::Dbmate, "Bad Name", &t).is_err());
        assert!(files(Format::Diesel, "add_users", "0002").is_err());
    }

    #[test]
    fn a_new_version_is_never_one_the_folder_has() {
        let t = 1_795_307_045;
        let at = |version: Version, path: &str| {
            let mut m = crate::plan::tests::file(version, true);
            m.up.path = path.to_string();
            m
        };
        assert_eq!(version(&[], t, false), "20261122002405");
        let same_second = [at(20261122002405, "20261122002405_a.up.sql")];
        assert_eq!(version(&same_second, t, false), "20261122002406");
        let older = [at(20261101000000, "20261101000000_a.up.sql")];
        assert_eq!(version(&older, t, false), "20261122002405");
        assert_eq!(version(&[], t, true), "0001");
        let numbered = [at(1, "0001_a.up.sql"), at(2, "0002_b.up.sql")];
        assert_eq!(version(&numbered, t, true), "0003");
        assert_eq!(version(&[at(7, "V7__a.sql")], t, true), "8");
    }
}
