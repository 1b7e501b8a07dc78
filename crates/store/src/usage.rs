//! How much each flag is used, by UTC day: server evaluations (`/flags`, `/decide`, OFREP),
//! which every node counts in memory and adds here periodically, so the nodes of a cluster sum
//! up; and `$feature_flag_called` calls, counted as their events are stored.

use chrono::{DateTime, NaiveDate, Utc};

/// A UTC calendar day, stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

const SECONDS_PER_DAY: i64 = 86_400;

impl Day {
    /// The UTC day `at` falls on.
    pub fn of(at: DateTime<Utc>) -> Day {
        Day(at.timestamp().div_euclid(SECONDS_PER_DAY))
    }

    /// The day `days` before this one.
    pub fn minus(self, days: i64) -> Day {
        Day(self.0.saturating_sub(days))
    }

    /// The calendar date (`None` past chrono's range).
    pub fn date(self) -> Option<NaiveDate> {
        let seconds = self.0.checked_mul(SECONDS_PER_DAY)?;
        DateTime::from_timestamp(seconds, 0).map(|at| at.date_naive())
    }
}

/// Server evaluations of one flag on one day, to add to the stored count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationCount {
    /// The flag's key.
    pub flag_key: String,
    /// The day they happened.
    pub day: Day,
    /// How many.
    pub count: u64,
}

/// One flag's use on one day ([`crate::Store::flag_usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDay {
    /// The flag's key.
    pub flag_key: String,
    /// The day.
    pub day: Day,
    /// Evaluations answered by servers.
    pub evaluations: u64,
    /// `$feature_flag_called` events stored (SDKs evaluating locally report only these).
    pub calls: u64,
}

/// What a stored usage row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Server evaluations.
    Evaluations,
    /// `$feature_flag_called` events.
    Calls,
}

impl Source {
    /// The stored column value. Each source has its own rows, so a node adding evaluations
    /// and a capture transaction adding calls never wait on (or deadlock over) the same row.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Evaluations => "evaluations",
            Source::Calls => "calls",
        }
    }
}

/// Folds `(flag key, day, source, count)` rows into one [`UsageDay`] per flag and day, in
/// key then day order.
pub(crate) fn fold(rows: impl IntoIterator<Item = (String, i64, String, i64)>) -> Vec<UsageDay> {
    let mut days: std::collections::BTreeMap<(String, i64), (u64, u64)> = Default::default();
    for (key, day, source, count) in rows {
        let count = u64::try_from(count).unwrap_or(0);
        let entry = days.entry((key, day)).or_default();
        if source == Source::Calls.as_str() {
            entry.1 += count;
        } else {
            entry.0 += count;
        }
    }
    days.into_iter()
        .map(|((flag_key, day), (evaluations, calls))| UsageDay {
            flag_key,
            day: Day(day),
            evaluations,
            calls,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_are_utc_calendar_days() {
        let midnight = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(
            Day::of(midnight),
            Day::of(midnight + chrono::Duration::hours(23))
        );
        assert_eq!(
            Day::of(midnight).minus(1),
            Day::of(midnight - chrono::Duration::seconds(1))
        );
        assert_eq!(Day::of(midnight).date(), Some(midnight.date_naive()));
        assert_eq!(Day(0).date(), NaiveDate::from_ymd_opt(1970, 1, 1));
        assert_eq!(
            Day::of(Utc.with_ymd_and_hms(1969, 12, 31, 23, 0, 0).unwrap()),
            Day(-1)
        );
    }
}
