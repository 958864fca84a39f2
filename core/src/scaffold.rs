//! `migrator new`: the files of a new migration, in the folder's own format.
//!
//! `files` is pure (the clock is an argument); `write` only creates files and
//! never overwrites one.

use crate::error::{Error, Result};
use crate::migration::Format;

/// `YYYYMMDDHHMMSS` in UTC for a number of seconds since the Unix epoch.
pub fn timestamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
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
