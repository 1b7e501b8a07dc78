//! Who is signed in: the session cookie → the store's session; the CSRF check of every form;
//! the cookies themselves.
//!
//! The session cookie (`vexil_session`) is `HttpOnly` (scripts cannot read it), `SameSite=Lax`
//! (not sent on cross-site POSTs), scoped to `/ui` and, when the request came through HTTPS
//! (`X-Forwarded-Proto: https` from the proxy terminating TLS), `Secure`. Every form carries
//! the session's CSRF token in a hidden `csrf` field, compared in constant time; the sign-in
//! form, which has no session yet, uses a double-submit cookie instead.

use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use chrono::Duration;
use vexil_store::{Actor, Session};

use super::page::UiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "vexil_session";
/// Name of the sign-in form's double-submit CSRF cookie.
pub const SIGNIN_CSRF_COOKIE: &str = "vexil_signin_csrf";
/// Name of the hidden form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::hours(12);
/// Largest form body the UI reads.
const MAX_FORM_BYTES: usize = 1 << 20;
/// Largest file-upload (multipart) form the UI reads: a static cohort's member CSV.
pub const MAX_UPLOAD_BYTES: usize = 8 << 20;

/// The signed-in user of a request: a page without one redirects to the sign-in page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The live session and its user.
    pub session: Session,
    /// The session id from the cookie (for sign-out).
    pub session_id: String,
}

impl Viewer {
    /// The activity log's name for changes this user makes in the UI.
    pub fn actor(&self) -> Actor {
        let user = &self.session.user;
        Actor::User {
            id: user.id,
            email: user.email.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(UiError::SignIn);
        };
        let now = state.settings.clock.now();
        match state.store.session(&id, now).await? {
            Some(session) => Ok(Viewer {
                session,
                session_id: id,
            }),
            None => Err(UiError::SignIn),
        }
    }
}

/// A submitted form of a signed-in user, its CSRF token checked: a form without the session's
/// token is refused (403) before anything else happens.
#[derive(Debug)]
pub struct UiForm {
    /// Who submitted it.
    pub viewer: Viewer,
    /// The form's fields, in order (a name may repeat).
    pub fields: Fields,
    /// Uploaded files of a multipart form, by field name (a file input left empty is absent).
    pub files: Vec<(String, axum::body::Bytes)>,
}

impl FromRequest<AppState> for UiForm {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, UiError> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let multipart = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("multipart/form-data"));
        let (fields, files) = if multipart {
            read_multipart(Request::from_parts(parts, body), state).await?
        } else {
            (Fields::read(body).await?, Vec::new())
        };
        let sent = fields.get(CSRF_FIELD).unwrap_or_default();
        if !same(sent, &viewer.session.csrf_token) {
            return Err(UiError::Csrf);
        }
        Ok(UiForm {
            viewer,
            fields,
            files,
        })
    }
}

/// A multipart form (file uploads) of at most [`MAX_UPLOAD_BYTES`]: its text fields and its
/// non-empty files.
async fn read_multipart(
    req: Request,
    state: &AppState,
) -> Result<(Fields, Vec<(String, axum::body::Bytes)>), UiError> {
    const TOO_LARGE: &str = "The upload could not be read or is larger than 8 MB.";
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map_err(|_| UiError::BadForm(TOO_LARGE))?;
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut form = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|_| UiError::BadForm("The form is not a valid multipart upload."))?;
    let (mut fields, mut files) = (Vec::new(), Vec::new());
    let malformed = |_| UiError::BadForm("The form is not a valid multipart upload.");
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        if field.file_name().is_some() {
            let data = field.bytes().await.map_err(malformed)?;
            if !data.is_empty() {
                files.push((name, data));
            }
        } else {
            fields.push((name, field.text().await.map_err(malformed)?));
        }
    }
    Ok((Fields(fields), files))
}

/// The fields of a URL-encoded form (or query string).
#[derive(Debug, Clone, Default)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// Reads and parses a form body.
    pub async fn read(body: axum::body::Body) -> Result<Fields, UiError> {
        let bytes = to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| UiError::BadForm("The form could not be read or is too large."))?;
        Ok(Fields::parse(&bytes))
    }

    /// Parses `a=1&b=2`.
    pub fn parse(bytes: &[u8]) -> Fields {
        Fields(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map_or("", str::trim)
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Constant-time equality of two tokens (lengths are not secret).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Whether the request reached the proxy in front of Vexil over HTTPS.
fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value for one of the UI's cookies (`max_age` 0 deletes it).
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if behind_https(headers) {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{name}={value}; Path=/ui; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Values are generated alphanumerics: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}
