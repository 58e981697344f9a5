//! Small formatting rules shared by the commands' output, following Java's `UtilAll` and
//! `PermName` so that scripts written against Java's mqadmin keep parsing ours.

/// `UtilAll.timeMillisToHumanString2`: `yyyy-MM-dd HH:mm:ss,SSS`. Java prints the JVM's
/// local time; we print UTC, since containers run in UTC and a zone database would be a
/// dependency for one column.
pub fn human_time_millis(millis: i64) -> String {
    let t = CivilTime::from_unix_millis(millis);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

/// `UtilAll.YYYY_MM_DD_HH_MM_SS` (`yyyy-MM-dd HH:mm:ss`), UTC.
pub fn human_time_seconds(millis: i64) -> String {
    let t = CivilTime::from_unix_millis(millis);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// A time argument as Java's tools take it: `now`, milliseconds since the epoch, or
/// `yyyy-MM-dd#HH:mm:ss:SSS` (read as UTC, like everything this tool prints).
pub fn parse_time_arg(raw: &str, now_millis: i64) -> Result<i64, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("now") {
        return Ok(now_millis);
    }
    if let Ok(ms) = raw.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || format!("{raw:?} is neither now, milliseconds, nor yyyy-MM-dd#HH:mm:ss:SSS");
    let (date, time) = raw.split_once('#').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let (&[y, mo, da], &[h, mi, se, ms]) = (d.as_slice(), t.as_slice()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || h > 23
        || mi > 59
        || se > 59
        || ms > 999
    {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo as u32, da as u32) * 86_400_000
        + ((h * 60 + mi) * 60 + se) * 1000
        + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A UTC calendar date and time of day.
struct CivilTime {
    year: i64,
    month: u32,
    day: u32,
    hour: i64,
    minute: i64,
    second: i64,
    milli: i64,
}

impl CivilTime {
    fn from_unix_millis(millis: i64) -> Self {
        let (year, month, day) = civil_from_days(millis.div_euclid(86_400_000));
        let in_day = millis.rem_euclid(86_400_000);
        Self {
            year,
            month,
            day,
            hour: in_day / 3_600_000,
            minute: in_day / 60_000 % 60,
            second: in_day / 1000 % 60,
            milli: in_day % 1000,
        }
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `PermName.perm2String`: `R`, `W` and `X` (inherit) flags, `-` where unset.
pub fn perm_to_string(perm: i32) -> String {
    let flag = |bit: i32, c: char| if perm & bit != 0 { c } else { '-' };
    [flag(4, 'R'), flag(2, 'W'), flag(1, 'X')].iter().collect()
}

/// `UtilAll.frontStringAtLeast`: at most `max` characters of `s` (despite Java's name, it
/// truncates), so one long name cannot shift every column after it.
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_match_java_layout() {
        assert_eq!(human_time_millis(0), "1970-01-01 00:00:00,000");
        // 2023-11-14T22:13:20.123Z
        assert_eq!(
            human_time_millis(1_700_000_000_123),
            "2023-11-14 22:13:20,123"
        );
        assert_eq!(human_time_seconds(1_700_000_000_123), "2023-11-14 22:13:20");
        // Leap day and the end of a leap year.
        assert_eq!(
            human_time_millis(951_782_400_000),
            "2000-02-29 00:00:00,000"
        );
        assert_eq!(
            human_time_millis(1_735_689_599_999),
            "2024-12-31 23:59:59,999"
        );
        assert_eq!(human_time_millis(-1), "1969-12-31 23:59:59,999");
        for ms in [0, 1_700_000_000_123, 951_782_400_000, 1_735_689_599_999] {
            let t = CivilTime::from_unix_millis(ms);
            let text = format!(
                "{:04}-{:02}-{:02}#{:02}:{:02}:{:02}:{:03}",
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
            );
            assert_eq!(parse_time_arg(&text, 0), Ok(ms), "{text}");
        }
        assert_eq!(parse_time_arg("now", 42), Ok(42));
        assert_eq!(parse_time_arg("1700000000000", 0), Ok(1_700_000_000_000));
        assert!(parse_time_arg("2024-13-01#00:00:00:000", 0).is_err());
        assert!(parse_time_arg("yesterday", 0).is_err());
    }

    #[test]
    fn perms_and_truncation() {
        assert_eq!(perm_to_string(6), "RW-");
        assert_eq!(perm_to_string(7), "RWX");
        assert_eq!(perm_to_string(2), "-W-");
        assert_eq!(perm_to_string(0), "---");
        assert_eq!(truncate("broker-a", 4), "brok");
        assert_eq!(truncate("ab", 4), "ab");
        assert_eq!(truncate("héllo", 2), "hé");
    }
}
