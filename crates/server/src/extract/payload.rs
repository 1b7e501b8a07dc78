//! The management API's write request (JSON or multipart body, authenticated) and typed access
//! to its fields, with errors naming the field (`attr`).

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::{header, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::auth::{bearer, ManagedProject};
use super::body::read;
use crate::budget::{Endpoint, MAX_UNAUTHENTICATED_BODY_BYTES};
use crate::error::ApiError;
use crate::state::AppState;

/// A write request: the caller's project and the body's fields.
///
/// The body is a JSON object or a `multipart/form-data` form (text fields become JSON values;
/// a file field named `csv` is kept as bytes). An empty body is an empty object. Besides the
/// `Authorization` header, the key may come as `personal_api_key` in a JSON body (spec §2); in
/// the query string it is refused.
#[derive(Debug)]
pub struct Payload {
    /// The authenticated project.
    pub project: ManagedProject,
    /// The body's fields.
    pub fields: Map<String, Value>,
    /// The uploaded `csv` file of a multipart body.
    pub csv: Option<Bytes>,
}

impl FromRequest<AppState> for Payload {
    type Rejection = ApiError;

    /// The key is checked before the body is read: from the `Authorization` header when there
    /// is one, else from the body's `personal_api_key`, skimmed (not parsed) from a body of at
    /// most [`MAX_UNAUTHENTICATED_BODY_BYTES`].
    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let multipart = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
        let (project, bytes) = if bearer(&parts.headers).is_some() {
            let project = ManagedProject::from_request_parts(&mut parts, state).await?;
            let limit = state.settings.max_body_bytes;
            let bytes = to_bytes(body, limit).await.map_err(|_| {
                ApiError::too_large(format!(
                    "The request body could not be read or exceeds {limit} bytes."
                ))
            })?;
            (project, bytes)
        } else {
            let raw = read(
                Request::from_parts(parts.clone(), body),
                state,
                Endpoint::Unauthenticated,
            )
            .await
            .map_err(|e| {
                if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::not_authenticated(format!(
                        "Authentication credentials were not provided: send the key in the \
                         `Authorization` header (a key in the body is read only from bodies of \
                         at most {MAX_UNAUTHENTICATED_BODY_BYTES} bytes)."
                    ))
                } else {
                    e
                }
            })?;
            let body_key = (!multipart)
                .then(|| serde_json::from_slice::<BodyKey<'_>>(&raw.bytes).ok())
                .flatten()
                .and_then(|k| k.personal_api_key)
                .and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok());
            if let Some(value) = body_key {
                parts.headers.insert(header::AUTHORIZATION, value);
            }
            let project = ManagedProject::from_request_parts(&mut parts, state).await?;
            (project, raw.bytes)
        };
        if multipart {
            let req = Request::from_parts(parts, Body::from(bytes));
            let form = Multipart::from_request(req, state)
                .await
                .map_err(|e| ApiError::parse(format!("Malformed multipart body: {e}.")))?;
            let (fields, csv) = read_form(form).await?;
            return Ok(Payload {
                project,
                fields,
                csv,
            });
        }
        let fields = if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    return Err(ApiError::parse(format!(
                        "Invalid data. Expected a JSON object, but got {}.",
                        json_type(&other)
                    )))
                }
                Err(e) => return Err(ApiError::parse(format!("JSON parse error - {e}."))),
            }
        };
        Ok(Payload {
            project,
            fields,
            csv: None,
        })
    }
}

/// The one field read from an unauthenticated body; every other is skipped unparsed.
#[derive(serde::Deserialize)]
struct BodyKey<'a> {
    #[serde(borrow, default)]
    personal_api_key: Option<std::borrow::Cow<'a, str>>,
}

/// Form fields whose text is JSON (objects, lists) or a boolean.
const JSON_FORM_FIELDS: &[&str] = &["filters", "groups", "distinct_ids"];
const BOOL_FORM_FIELDS: &[&str] = &["is_static", "deleted"];

async fn read_form(mut form: Multipart) -> Result<(Map<String, Value>, Option<Bytes>), ApiError> {
    let mut fields = Map::new();
    let mut csv = None;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::parse(format!("Malformed multipart body: {e}."))
    };
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        if name == "csv" {
            csv = Some(field.bytes().await.map_err(malformed)?);
            continue;
        }
        let text = field.text().await.map_err(malformed)?;
        let value = if JSON_FORM_FIELDS.contains(&name.as_str()) {
            serde_json::from_str(&text).map_err(|e| {
                ApiError::parse(format!("Field {name} is not valid JSON: {e}.")).attr(&name)
            })?
        } else if BOOL_FORM_FIELDS.contains(&name.as_str()) {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" | "" => Value::Bool(false),
                _ => return Err(ApiError::invalid("Must be a valid boolean.").attr(&name)),
            }
        } else {
            Value::String(text)
        };
        fields.insert(name, value);
    }
    Ok((fields, csv))
}

/// JSON's name for a value's type, for error messages.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Typed reads of body fields; `null` reads as absent.
pub trait Fields {
    /// A boolean field.
    fn bool_field(&self, name: &str) -> Result<Option<bool>, ApiError>;
    /// A string field.
    fn string_field(&self, name: &str) -> Result<Option<String>, ApiError>;
    /// An integer field (a number or a numeric string).
    fn int_field(&self, name: &str) -> Result<Option<i64>, ApiError>;
    /// A list of strings.
    fn string_list_field(&self, name: &str) -> Result<Option<Vec<String>>, ApiError>;
}

impl Fields for Map<String, Value> {
    fn bool_field(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid("Must be a valid boolean.").attr(name)),
        }
    }

    fn string_field(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid("Not a valid string.").attr(name)),
        }
    }

    fn int_field(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
            Some(_) => Err(ApiError::invalid("A valid integer is required.").attr(name)),
        }
    }

    fn string_list_field(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| ApiError::invalid("Expected a list of strings.").attr(name)),
            Some(other) => Err(ApiError::invalid(format!(
                "Expected a list of items but got type \"{}\".",
                json_type(other)
            ))
            .attr(name)),
        }
    }
}
