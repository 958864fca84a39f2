//! Text helpers shared by messages, reports and errors.

/// A one-line excerpt of a statement, at most `max` chars, whitespace folded.
pub fn excerpt(sql: &str, max: usize) -> String {
    cut(sql.split_whitespace().collect::<Vec<_>>().join(" "), max)
}

/// [`excerpt`] for SQL: line ends become ` ⏎ `, so a `--` comment visibly ends
/// where its line did instead of seeming to swallow the rest of the statement.
pub fn sql_excerpt(sql: &str, max: usize) -> String {
    let folded = sql
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ");
    cut(folded, max)
}

fn cut(folded: String, max: usize) -> String {
    if folded.chars().count() <= max {
        return folded;
    }
    let mut cut: String = folded.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_folds_whitespace_and_cuts_on_chars() {
        assert_eq!(excerpt("SELECT   1,\t2", 100), "SELECT 1, 2");
        assert_eq!(excerpt("SELECT\n   1,\t2", 100), "SELECT 1, 2");
        assert_eq!(
            sql_excerpt("SELECT 1, -- one\n\n  2", 100),
            "SELECT 1, -- one ⏎ 2"
        );
        assert_eq!(excerpt("ééééé", 3), "éé…");
    }
}
