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
use vexil_store::{
    Actor, KeyKind, KeyRef, Project, ProjectId, User, UserKey, PERSONAL_KEY_PREFIX,
    SECRET_KEY_PREFIX,
};

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

/// Who a personal key (`phx_…`) is: a project's own key, or a key of a user.
#[derive(Debug, Clone)]
pub enum KeyHolder {
    /// The project's personal key: reaches that project only.
    Project(Project),
    /// A user's key: reaches the projects the user belongs to (an administrator's: all).
    User(User, UserKey),
}

impl KeyHolder {
    /// The holder of the personal key in the `Authorization` header: 401 without one, with
    /// another kind of key, or with an unknown or revoked key (checked against the store on
    /// every request, so a revocation counts from the next one on every node).
    pub async fn of(parts: &Parts, state: &AppState) -> Result<KeyHolder, ApiError> {
        refuse_key_in_query(parts.uri.query())?;
        let key = bearer(&parts.headers).ok_or_else(|| {
            ApiError::not_authenticated("Authentication credentials were not provided.")
        })?;
        if !key.starts_with(PERSONAL_KEY_PREFIX) {
            return Err(ApiError::authentication_failed(
                "Only personal API keys (phx_…) can use this API.",
            ));
        }
        Self::find(state, key)
            .await?
            .ok_or_else(|| ApiError::authentication_failed("Personal API key is invalid."))
    }

    /// The holder of personal key `key`, if it is one.
    pub async fn find(state: &AppState, key: &str) -> Result<Option<KeyHolder>, ApiError> {
        if let Some(project) = state.store.project_by_personal_key(key).await? {
            return Ok(Some(KeyHolder::Project(project)));
        }
        let now = state.settings.clock.now();
        Ok(state
            .store
            .user_by_key(key, now)
            .await?
            .map(|(user, key)| KeyHolder::User(user, key)))
    }

    /// The activity log's name for changes made with this key (`key` is its value).
    fn actor(&self, key: &str) -> Actor {
        match self {
            KeyHolder::Project(_) => Actor::ProjectKey {
                prefix: key.get(..8).unwrap_or(PERSONAL_KEY_PREFIX).to_owned(),
            },
            KeyHolder::User(user, key) => Actor::UserKey {
                user: user.id,
                email: user.email.clone(),
                key: KeyRef {
                    id: key.id,
                    label: key.label.clone(),
                    mask: key.mask.clone(),
                },
            },
        }
    }

    /// The project `wanted` (a path's `{project_id}`: an id or `@current`) if this key reaches
    /// it. `@current` is a project key's own project, or the first project of the user.
    pub async fn project(
        &self,
        state: &AppState,
        wanted: Option<&str>,
    ) -> Result<Option<Project>, ApiError> {
        let wanted = match wanted {
            None | Some("@current") => None,
            Some(id) => match id.parse::<i64>() {
                Ok(id) => Some(ProjectId(id)),
                Err(_) => return Ok(None),
            },
        };
        match self {
            KeyHolder::Project(project) => Ok(wanted
                .is_none_or(|w| w == project.id)
                .then(|| project.clone())),
            KeyHolder::User(user, _) => match wanted {
                Some(id) if user.access.allows(id) => Ok(state.store.get_project(id).await?),
                Some(_) => Ok(None),
                None => Ok(state
                    .store
                    .list_projects()
                    .await?
                    .into_iter()
                    .find(|p| user.access.allows(p.id))),
            },
        }
    }
}

/// A management-API request authenticated by a personal key, scoped to the `{project_id}` of
/// its path: the project's own key reaches that project, a user's key the projects its user
/// belongs to (`@current`: the key's project, or the user's first). Anything else is 401/404
/// without revealing whether another project's ids exist.
#[derive(Debug, Clone)]
pub struct ManagedProject {
    /// The project the request is about.
    pub project: Project,
    /// Who is acting, for the activity log.
    pub actor: Actor,
    /// Whose key it is.
    pub holder: KeyHolder,
}

impl FromRequestParts<AppState> for ManagedProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let holder = KeyHolder::of(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("Project"))?;
        let wanted = params
            .iter()
            .find(|(name, _)| *name == "project_id")
            .map(|(_, v)| v.to_owned());
        let project = holder
            .project(state, wanted.as_deref())
            .await?
            .ok_or_else(|| ApiError::not_found("Project"))?;
        state.overload.check(Bucket::Management, project.id).await?;
        let actor = holder.actor(bearer(&parts.headers).unwrap_or_default());
        Ok(ManagedProject {
            project,
            actor,
            holder,
        })
    }
}

/// Whether `credential` is `project`'s key of this kind, or (a personal key) the key of a user
/// who belongs to `project`.
async fn verify(
    state: &AppState,
    project: ProjectId,
    kind: KeyKind,
    credential: &str,
) -> Result<bool, vexil_store::StoreError> {
    if state.store.verify_key(project, kind, credential).await? {
        return Ok(true);
    }
    if kind != KeyKind::Personal {
        return Ok(false);
    }
    let now = state.settings.clock.now();
    Ok(state
        .store
        .user_by_key(credential, now)
        .await?
        .is_some_and(|(user, _)| user.access.allows(project)))
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
            let holder = KeyHolder::find(state, credential)
                .await?
                .ok_or_else(|| ApiError::authentication_failed("Personal API key is invalid."))?;
            holder
                .project(state, None)
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
    let accepted = match verify(state, project, kind, credential).await {
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
