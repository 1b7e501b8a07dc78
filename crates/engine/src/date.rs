//! Date operands of `is_date_before` / `is_date_after` / `is_date_exact` (UTC semantics).

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// A date filter value, parsed once; relative values resolve against the context's `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateFilter {
    Absolute(DateTime<Utc>),
    Relative { amount: u32, unit: RelativeUnit },
    Invalid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelativeUnit {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl DateFilter {
    pub(crate) fn parse(s: &str) -> DateFilter {
        if let Some((amount, unit)) = parse_relative(s) {
            return DateFilter::Relative { amount, unit };
        }
        match parse_absolute(s) {
            Some(d) => DateFilter::Absolute(d),
            None => DateFilter::Invalid,
        }
    }

    pub(crate) fn resolve(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match *self {
            DateFilter::Absolute(d) => Some(d),
            DateFilter::Relative { amount, unit } => relative_to(now, amount, unit),
            DateFilter::Invalid => None,
        }
    }
}

/// `^-?(\d+)([hdwmy])$` with a number below 10 000.
fn parse_relative(s: &str) -> Option<(u32, RelativeUnit)> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let unit = match body.as_bytes().last()? {
        b'h' => RelativeUnit::Hour,
        b'd' => RelativeUnit::Day,
        b'w' => RelativeUnit::Week,
        b'm' => RelativeUnit::Month,
        b'y' => RelativeUnit::Year,
        _ => return None,
    };
    let digits = &body[..body.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u32 = digits.parse().ok()?;
    (amount < 10_000).then_some((amount, unit))
}

fn relative_to(now: DateTime<Utc>, amount: u32, unit: RelativeUnit) -> Option<DateTime<Utc>> {
    match unit {
        RelativeUnit::Hour => now.checked_sub_signed(Duration::hours(amount.into())),
        RelativeUnit::Day => now.checked_sub_signed(Duration::days(amount.into())),
        RelativeUnit::Week => now.checked_sub_signed(Duration::weeks(amount.into())),
        // Calendar-aware, one step at a time, clamping the day to the month's end at each step.
        RelativeUnit::Month => {
            (0..amount).try_fold(now, |d, _| d.checked_sub_months(Months::new(1)))
        }
        RelativeUnit::Year => (0..amount).try_fold(now, |d, _| {
            d.with_year(d.year() - 1)
                .or_else(|| d.checked_sub_months(Months::new(12)))
        }),
    }
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];

/// Extra formats accepted as a permissive fallback (all UTC).
const FALLBACK_FORMATS: &[&str] = &[
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S%.fZ",
];

fn parse_absolute(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(d) = bare_date(s) {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    for fmt in NAIVE_FORMATS.iter().chain(FALLBACK_FORMATS) {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(s, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y/%m/%d") {
        return Some(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?));
    }
    None
}

/// `YYYY-MM-DD` without chrono's format-string machinery (the common case on the hot path).
fn bare_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// A property value as an instant: numbers and numeric strings are Unix seconds; other strings
/// parse like filter values (relative forms included).
pub(crate) fn property_instant(value: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => match s.parse::<f64>() {
            Ok(secs) => from_unix_seconds(secs),
            Err(_) => DateFilter::parse(s).resolve(now),
        },
        Value::Number(n) => from_unix_seconds(n.as_f64()?),
        _ => None,
    }
}

fn from_unix_seconds(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() || secs.abs() > 1e15 {
        return None;
    }
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_forms() {
        let now = Utc.with_ymd_and_hms(2024, 3, 31, 12, 0, 0).unwrap();
        let at = |s: &str| DateFilter::parse(s).resolve(now).unwrap();
        assert_eq!(
            at("-7d"),
            Utc.with_ymd_and_hms(2024, 3, 24, 12, 0, 0).unwrap()
        );
        assert_eq!(
            at("-1m"),
            Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap()
        );
        assert_eq!(
            at("-2m"),
            Utc.with_ymd_and_hms(2024, 1, 29, 12, 0, 0).unwrap()
        );
        assert_eq!(
            at("-1y"),
            Utc.with_ymd_and_hms(2023, 3, 31, 12, 0, 0).unwrap()
        );
        assert_eq!(DateFilter::parse("-10000d"), DateFilter::Invalid);
        assert_eq!(DateFilter::parse("2024-02-30"), DateFilter::Invalid);
        assert_eq!(DateFilter::parse("2024-0a-01"), DateFilter::Invalid);
    }

    #[test]
    fn absolute_forms() {
        for s in [
            "2022-05-01",
            "2022-05-01T00:00:00Z",
            "2022-05-01 00:00",
            "2022-05-01T02:00:00+02:00",
        ] {
            assert_eq!(
                DateFilter::parse(s),
                DateFilter::Absolute(Utc.with_ymd_and_hms(2022, 5, 1, 0, 0, 0).unwrap()),
                "{s}"
            );
        }
    }
}
