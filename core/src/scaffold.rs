//! `migrator new`: the files of a new migration, in the folder's own format.
//!
//! Pure: the clock is an argument; the app's `files::write_new` writes them and
//! never overwrites one.

use crate::error::{Error, Result};
use crate::migration::Format;

/// `YYYYMMDDHHMMSS` in UTC for a number of seconds since the Unix epoch.
pub fn timestamp(unix_seconds: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::date::utc(unix_seconds);
    format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}")
}

/// The (relative path, contents) of a new migration named `name` at `unix_seconds`.
pub fn files(format: Format, name: &str, unix_seconds: u64) -> Result<Vec<(String, String)>> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::usage(format!(
            "migration name `{name}`: use lowercase letters, digits and underscores, e.g. add_users"
        )));
    }
    let v = timestamp(unix_seconds);
    Ok(match format {
        Format::GolangMigrate => vec![
            (format!("{v}_{name}.up.sql"), format!("-- {name}: up\n")),
            (format!("{v}_{name}.down.sql"), format!("-- {name}: down\n")),
        ],
        Format::Refinery => vec![(format!("V{v}__{name}.sql"), format!("-- {name}\n"))],
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
        let t = 1_795_307_045;
        let names = |f| -> Vec<String> {
            files(f, "add_users", t)
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
        assert!(files(Format::Dbmate, "Bad Name", t).is_err());
    }
}
