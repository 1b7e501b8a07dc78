//! Static cohort member lists as clients send them: a CSV upload (multipart field `csv`, one
//! distinct id per line in the first column, or in the `distinct_id` column when a header row
//! names it) or, as Vexil's JSON alternative, `{"distinct_ids": ["a", "b"]}`.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::extract::Fields;

/// Longest distinct id accepted (PostHog truncates at 200 characters).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// Header cells that mark the first CSV row as a header.
const HEADER_CELLS: &[&str] = &["distinct_id", "person_id", "email"];

/// The member list a request carries, if any: the uploaded CSV (or a `csv` text field) and
/// `distinct_ids`, trimmed, without blanks and duplicates, in order.
pub fn requested_members(
    fields: &Map<String, Value>,
    csv: Option<&[u8]>,
) -> Result<Option<Vec<String>>, ApiError> {
    let mut ids: Option<Vec<String>> = None;
    if let Some(csv) = csv {
        ids = Some(parse_csv(csv)?);
    } else if let Some(Value::String(text)) = fields.get("csv") {
        ids = Some(parse_csv(text.as_bytes())?);
    }
    if let Some(list) = fields.string_list_field("distinct_ids")? {
        ids.get_or_insert_with(Vec::new).extend(list);
    }
    let Some(ids) = ids else {
        return Ok(None);
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim();
        if id.is_empty() || !seen.insert(id.to_owned()) {
            continue;
        }
        if id.chars().count() > MAX_DISTINCT_ID_CHARS {
            return Err(ApiError::invalid(format!(
                "Distinct ids are at most {MAX_DISTINCT_ID_CHARS} characters."
            ))
            .attr(if csv.is_some() { "csv" } else { "distinct_ids" }));
        }
        out.push(id.to_owned());
    }
    Ok(Some(out))
}

/// The distinct ids of a CSV file.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    csv_rows(bytes)
        .map(|rows| rows.into_iter().map(|(_, id)| id).collect())
        .map_err(|(_, e)| {
            ApiError::invalid(format!("The CSV file could not be read: {e}.")).attr("csv")
        })
}

/// The distinct ids of a CSV file with the line each is on, or the line that could not be read
/// and why.
pub fn csv_rows(bytes: &[u8]) -> Result<Vec<(u64, String)>, (u64, csv::Error)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut column = 0;
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(row as u64 + 1, |p| p.line());
            (line, e)
        })?;
        let line = record.position().map_or(row as u64 + 1, |p| p.line());
        if row == 0 {
            let cells: Vec<String> = record
                .iter()
                .map(|c| c.trim().to_ascii_lowercase())
                .collect();
            if cells.iter().any(|c| HEADER_CELLS.contains(&c.as_str())) {
                column = cells.iter().position(|c| c == "distinct_id").unwrap_or(0);
                continue;
            }
        }
        if let Some(cell) = record.get(column).map(str::trim).filter(|c| !c.is_empty()) {
            out.push((line, cell.to_owned()));
        }
    }
    Ok(out)
}

/// Every problem of an uploaded member list, one sentence per bad line (`Line 3: …`), or its
/// distinct ids when it has none.
pub fn check_csv(bytes: &[u8]) -> Result<Vec<String>, Vec<String>> {
    let rows = csv_rows(bytes)
        .map_err(|(line, e)| vec![format!("Line {line}: the CSV could not be read ({e}).")])?;
    let mut problems = Vec::new();
    for (line, id) in &rows {
        if id.chars().count() > MAX_DISTINCT_ID_CHARS {
            problems.push(format!(
                "Line {line}: the distinct id is longer than {MAX_DISTINCT_ID_CHARS} characters."
            ));
        } else if id.chars().any(char::is_control) {
            problems.push(format!(
                "Line {line}: the distinct id contains a control character."
            ));
        }
    }
    if problems.is_empty() {
        Ok(rows.into_iter().map(|(_, id)| id).collect())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_first_column_and_headers() {
        assert_eq!(parse_csv(b"a\nb\r\n\n c \n").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            parse_csv(b"\xEF\xBB\xBFemail,distinct_id\nx@y,u1\n\"q,z\",u2\n").unwrap(),
            ["u1", "u2"]
        );
        assert_eq!(parse_csv(b"Distinct_ID\nu1,extra\n").unwrap(), ["u1"]);
        assert_eq!(parse_csv(b"\"u,1\"\n").unwrap(), ["u,1"]);
    }

    #[test]
    fn csv_problems_name_their_lines() {
        let long = "x".repeat(MAX_DISTINCT_ID_CHARS + 1);
        let text = format!("distinct_id\nok\n{long}\nfine\nbad\u{7}id\n");
        assert_eq!(
            check_csv(text.as_bytes()).unwrap_err(),
            [
                "Line 3: the distinct id is longer than 200 characters.",
                "Line 5: the distinct id contains a control character."
            ]
        );
        assert_eq!(check_csv(b"a\n\nb\n").unwrap(), ["a", "b"]);
    }
}
