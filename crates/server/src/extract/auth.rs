//! Credentials: the personal API key (`phx_…`) of the management API and the secret /
//! personal key of the local-evaluation feed. The public project token (`phc_…`) never
//! authorises either.
//!
//! Keys are accepted only in the `Authorization: Bearer` header (or, for management writes, a
//! JSON body field): a key in the URL is refused, since URLs end up in access logs, proxies and
//! browser history. Every check reads the store, so a key rotated or revoked by any process
//! sharing the database is refused from the next request on; only while the database cannot be
//! reached does the feed accept the key the store last accepted ([`crate::verified`]).

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use vexil_store::{KeyKind, Project, ProjectId, PERSONAL_KEY_PREFIX, SECRET_KEY_PREFIX};

use crate::error::ApiError;
use crate::overload::Bucket;
use crate::state::AppState;

/// The bearer credential of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// Query parameters that name a key (PostHog's `personal_api_key`, and its secret twin).
const KEY_PARAMS: [&str; 2] = ["personal_api_key", "secret_api_key"];

/// The 401 detail of a key sent in the URL.
const KEY_IN_QUERY: &str = "API keys are not accepted in the URL: send the key in the `Authorization: Bearer <key>` header instead (and rotate it, since URLs are logged).";

/// Whether `value` has the shape of a secret or personal key: its prefix and at least 32 key
/// characters (generated keys have 43), so ordinary values starting with `phx_` are not caught.
fn looks_like_key(value: &str) -> bool {
    [PERSONAL_KEY_PREFIX, SECRET_KEY_PREFIX]
        .iter()
        .filter_map(|prefix| value.strip_prefix(prefix))
        .any(|rest| {
            rest.len() >= 32
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Refuses (401) a request that carries a secret or personal key in its query string: a
/// `personal_api_key` / `secret_api_key` parameter, or any parameter whose value is a key. The
/// public project token (`?token=phc_…`, which SDKs send) is not a key and passes.
pub fn refuse_key_in_query(query: Option<&str>) -> Result<(), ApiError> {
    let Some(query) = query else {
        return Ok(());
    };
    let leaked = form_urlencoded::parse(query.as_bytes())
        .any(|(name, value)| KEY_PARAMS.contains(&name.as_ref()) || looks_like_key(&value));
    if leaked {
        Err(ApiError::authentication_failed(KEY_IN_QUERY))
    } else {
        Ok(())
    }
}

/// A management-API request authenticated by a personal key, scoped to the `{project_id}` of
/// its path (`@current` or the key's own project id). Anything else is 401/404 without
/// revealing whether another project's ids exist.
#[derive(Debug, Clone)]
pub struct ManagedProject {
    /// The key's project.
    pub project: Project,
    /// A label for the activity log: the key's visible prefix.
    pub actor: String,
}

impl FromRequestParts<AppState> for ManagedProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        refuse_key_in_query(parts.uri.query())?;
        let key = bearer(&parts.headers)
            .ok_or_else(|| {
                ApiError::not_authenticated("Authentication credentials were not provided.")
            })?
            .to_owned();
        if !key.starts_with(PERSONAL_KEY_PREFIX) {
            return Err(ApiError::authentication_failed(
                "Only personal API keys (phx_…) can use this API.",
            ));
        }
        let project = state
            .store
            .project_by_personal_key(&key)
            .await?
            .ok_or_else(|| ApiError::authentication_failed("Personal API key is invalid."))?;
        state.overload.check(Bucket::Management, project.id).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("Project"))?;
        if let Some((_, wanted)) = params.iter().find(|(name, _)| *name == "project_id") {
            let matches = wanted == "@current" || wanted.parse::<i64>().ok() == Some(project.id.0);
            if !matches {
                return Err(ApiError::not_found("Project"));
            }
        }
        let actor = format!(
            "personal key {}…",
            key.get(..8).unwrap_or(PERSONAL_KEY_PREFIX)
        );
        Ok(ManagedProject { project, actor })
    }
}

/// Authorises the local-evaluation feed for the project named by the `token` query parameter:
/// the project's secret key (`phs_…`) or its personal key, in the `Authorization` header.
pub async fn definitions_access(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<ProjectId, ApiError> {
    Ok(server_key_access(state, headers, query).await?.0)
}

/// [`definitions_access`], also saying which kind of key it was: `remote_config` gives an
/// encrypted payload only to a personal key.
pub async fn server_key_access(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(ProjectId, KeyKind), ApiError> {
    refuse_key_in_query(query)?;
    let token = query_param(query, "token");
    let token = token.as_deref();
    let Some(credential) = bearer(headers) else {
        return Err(ApiError::not_authenticated(
            "Authentication credentials were not provided.",
        ));
    };
    let project = match token {
        Some(token) => state
            .catalog
            .by_token(token)
            .map(|s| s.project.id)
            .ok_or_else(|| {
                ApiError::authentication_failed(
                    "The provided API key is invalid or has expired. Please check your API key and try again.",
                )
            })?,
        // Older SDKs send only the personal key: it names its project.
        None => {
            if !credential.starts_with(PERSONAL_KEY_PREFIX) {
                return Err(ApiError::authentication_failed(
                    "The token query parameter is required with a secret key.",
                ));
            }
            state
                .store
                .project_by_personal_key(credential)
                .await?
                .ok_or_else(|| ApiError::authentication_failed("Personal API key is invalid."))?
                .id
        }
    };
    let (kind, failure) = if credential.starts_with(SECRET_KEY_PREFIX) {
        (KeyKind::Secret, "Secret API token is invalid.")
    } else {
        (KeyKind::Personal, "Personal API key is invalid.")
    };
    let accepted = match state.store.verify_key(project, kind, credential).await {
        Ok(accepted) => {
            state
                .verified_keys
                .record(project, kind, credential, accepted);
            accepted
        }
        // The feed is served from memory: while the database cannot be reached, a key it
        // accepted last is still good (nothing can revoke it meanwhile).
        Err(e) if e.is_unreachable() => {
            if !state.verified_keys.accepted(project, kind, credential) {
                return Err(e.into());
            }
            true
        }
        Err(e) => return Err(e.into()),
    };
    if accepted {
        Ok((project, kind))
    } else {
        Err(ApiError::authentication_failed(failure))
    }
}
