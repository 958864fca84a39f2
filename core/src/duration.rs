//! The one duration grammar of every flag that takes a duration.
//!
//! `90`, `90s`, `45m`, `2h`, `2d`, `1h30m`: a bare number is seconds (so every
//! flag that used to take seconds reads the same values as before); units come
//! largest first, each once.

use std::time::Duration;

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3600), ('m', 60), ('s', 1)];

/// A duration, zero allowed.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("`{text}` is not a duration (examples: 90, 90s, 45m, 2h, 2d, 1h30m)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut last_unit: Option<u64> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = UNITS
            .iter()
            .find(|(name, _)| *name == c)
            .map(|(_, secs)| *secs)
            .ok_or_else(bad)?;
        // Units must come largest first, each once: 1h30m, not 30m1h or 1m1m.
        if number.is_empty() || last_unit.is_some_and(|u| u <= unit) {
            return Err(bad());
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
        last_unit = Some(unit);
    }
    if !number.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// A duration longer than zero.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d.is_zero() {
        Err(format!("`{}`: must be longer than zero", text.trim()))
    } else {
        Ok(d)
    }
}

/// A duration as [`parse`] reads it back: `1h30m`, `45m`, `2d`; 90 s → `1m30s`.
pub fn format(d: Duration) -> String {
    let mut left = d.as_secs();
    let mut out = String::new();
    for (name, secs) in UNITS {
        let n = left / secs;
        left %= secs;
        if n > 0 {
            out.push_str(&format!("{n}{name}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |t: &str| parse_positive(t).map(|d| d.as_secs());
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("45m"), Ok(2700));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("2d"), Ok(172_800));
        assert_eq!(secs("1d12h"), Ok(129_600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("1h0m5s"), Ok(3605));
        assert_eq!(secs(" 60m "), Ok(3600));
        for bad in [
            "", "m", "1x", "1.5h", "30m1h", "1m1m", "1h30", "-5m", "0", "0s", "1h1d",
        ] {
            assert!(parse_positive(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn zero_is_a_duration_but_not_a_positive_one() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert!(
            parse_positive("0")
                .unwrap_err()
                .contains("longer than zero")
        );
    }

    #[test]
    fn durations_format_as_they_parse() {
        for (secs, text) in [
            (3600, "1h"),
            (5400, "1h30m"),
            (90, "1m30s"),
            (7, "7s"),
            (172_800, "2d"),
        ] {
            assert_eq!(format(Duration::from_secs(secs)), text);
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)));
        }
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
