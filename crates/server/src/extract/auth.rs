//! Credentials: the personal API key (`phx_…`) of the management API and the secret /
//! personal key of the local-evaluation feed. The public project token (`phc_…`) never
//! authorises either.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use vexil_store::{KeyKind, Project, ProjectId, PERSONAL_KEY_PREFIX, SECRET_KEY_PREFIX};

use crate::error::ApiError;
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
        let key = match bearer(&parts.headers) {
            Some(k) => k.to_owned(),
            None => query_param(parts.uri.query(), "personal_api_key").ok_or_else(|| {
                ApiError::not_authenticated("Authentication credentials were not provided.")
            })?,
        };
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

/// Authorises the local-evaluation feed for the project named by `token`: the project's secret
/// key (`phs_…`) or its personal key.
pub async fn definitions_access(
    state: &AppState,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Result<ProjectId, ApiError> {
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
    if state.store.verify_key(project, kind, credential).await? {
        Ok(project)
    } else {
        Err(ApiError::authentication_failed(failure))
    }
}

/// The `token` query parameter.
pub fn token_param(query: Option<&str>) -> Option<String> {
    query_param(query, "token")
}
