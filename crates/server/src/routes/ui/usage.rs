//! A flag's use over the last week, on the flag list and a flag's page: evaluations answered
//! by servers and `$feature_flag_called` calls reported by SDKs, per UTC day
//! ([`vexil_store::Store::flag_usage`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use vexil_store::{Day, ProjectId};

use super::page::UiError;
use crate::state::AppState;

/// Days shown, today included.
pub const DAYS: usize = 7;

/// One flag's week, oldest day first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Week {
    /// `(day, server evaluations, reported calls)`, one entry per day.
    pub days: [(Day, u64, u64); DAYS],
}

impl Week {
    fn empty(today: Day) -> Week {
        Week {
            days: std::array::from_fn(|i| (today.minus((DAYS - 1 - i) as i64), 0, 0)),
        }
    }

    /// Evaluations and calls over the week.
    pub fn totals(&self) -> (u64, u64) {
        self.days
            .iter()
            .fold((0, 0), |(e, c), (_, de, dc)| (e + de, c + dc))
    }
}

/// The weeks ending `now`'s day of the flags `keys` (a flag with no use has an empty week).
pub async fn weeks(
    state: &AppState,
    project: ProjectId,
    keys: &[&str],
    now: DateTime<Utc>,
) -> Result<HashMap<String, Week>, UiError> {
    let today = Day::of(now);
    let first = today.minus((DAYS - 1) as i64);
    let rows = state.store.flag_usage(project, keys, first).await?;
    let mut weeks: HashMap<String, Week> = keys
        .iter()
        .map(|k| ((*k).to_owned(), Week::empty(today)))
        .collect();
    for row in rows {
        let Some(week) = weeks.get_mut(&row.flag_key) else {
            continue;
        };
        let Ok(at) = usize::try_from(row.day.0 - first.0) else {
            continue;
        };
        if let Some(day) = week.days.get_mut(at) {
            day.1 += row.evaluations;
            day.2 += row.calls;
        }
    }
    Ok(weeks)
}

fn label(day: Day) -> String {
    day.date()
        .map(|d| d.format("%a %-d %b").to_string())
        .unwrap_or_default()
}

/// The list's cell: the week's evaluations and calls, and a bar per day (decorative: the
/// numbers are in the text and in the title).
pub fn cell(week: &Week) -> Markup {
    let (evaluations, calls) = week.totals();
    let peak = week
        .days
        .iter()
        .map(|d| d.1 + d.2)
        .max()
        .unwrap_or(0)
        .max(1);
    let title = week
        .days
        .iter()
        .map(|(day, e, c)| format!("{}: {e} evaluated, {c} reported", label(*day)))
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        span class="usage" title=(title) {
            span class="spark" aria-hidden="true" {
                @for (_, e, c) in &week.days {
                    // At least a sliver for a day with any use, so it shows.
                    @let height = if e + c == 0 { 0 } else { ((e + c) * 100 / peak).max(8) };
                    span style=(format!("height:{height}%")) {}
                }
            }
            span class="usage-total" { (evaluations) " evaluated · " (calls) " reported" }
        }
    }
}

/// The flag page's section: a row per day.
pub fn section(week: &Week, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    let (evaluations, calls) = week.totals();
    html! {
        section aria-labelledby="usage" {
            h2 id="usage" { "Usage" }
            p { "Last evaluated: " strong id="last-evaluated" { (ago(last, now)) } }
            table class="usage-days" {
                caption { "Evaluations per day, last " (DAYS) " days (UTC)" }
                thead { tr {
                    th scope="col" { "Day" }
                    th scope="col" { "Server evaluations" }
                    th scope="col" { "Reported by SDKs" }
                } }
                tbody {
                    @for (day, e, c) in week.days.iter().rev() {
                        tr {
                            th scope="row" { (label(*day)) }
                            td { (e) }
                            td { (c) }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { "Total" }
                    td id="usage-evaluations" { (evaluations) }
                    td id="usage-calls" { (calls) }
                } }
            }
            p class="hint" { "Server evaluations are " code { "/flags" } ", " code { "/decide" } " and OFREP answers, written every few seconds; SDKs evaluating locally report theirs as " code { "$feature_flag_called" } " events." }
        }
    }
}

/// `5 min ago`, `3 h ago`, `never`.
pub fn ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let minutes = (now - at).num_minutes();
    match minutes {
        m if m < 1 => "just now".to_owned(),
        m if m < 60 => format!("{m} min ago"),
        m if m < 48 * 60 => format!("{} h ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_week_ends_today() {
        let week = Week::empty(Day(100));
        assert_eq!(week.days[0].0, Day(94));
        assert_eq!(week.days[DAYS - 1].0, Day(100));
        assert_eq!(week.totals(), (0, 0));
    }
}
