//! Static cohort member lists as clients send them: a CSV upload (multipart field `csv`, one
//! distinct id per line in the first column, or in the `distinct_id` column when a header row
//! names it) or, as Vexil's JSON alternative, `{"distinct_ids": ["a", "b"]}`.

use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{Fields, Payload};

/// Longest distinct id accepted (PostHog truncates at 200 characters).
pub const MAX_DISTINCT_ID_CHARS: usize = 200;

/// Header cells that mark the first CSV row as a header.
const HEADER_CELLS: &[&str] = &["distinct_id", "person_id", "email"];

/// The member list a request carries, if any: the uploaded CSV (or a `csv` text field) and
/// `distinct_ids`, trimmed, without blanks and duplicates, in order.
pub fn requested_members(body: &Payload) -> Result<Option<Vec<String>>, ApiError> {
    let mut ids: Option<Vec<String>> = None;
    if let Some(csv) = &body.csv {
        ids = Some(parse_csv(csv)?);
    } else if let Some(Value::String(text)) = body.fields.get("csv") {
        ids = Some(parse_csv(text.as_bytes())?);
    }
    if let Some(list) = body.fields.string_list_field("distinct_ids")? {
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
            .attr(if body.csv.is_some() {
                "csv"
            } else {
                "distinct_ids"
            }));
        }
        out.push(id.to_owned());
    }
    Ok(Some(out))
}

/// The distinct ids of a CSV file.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut column = 0;
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            ApiError::invalid(format!("The CSV file could not be read: {e}.")).attr("csv")
        })?;
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
            out.push(cell.to_owned());
        }
    }
    Ok(out)
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
}
