//! Path ids and query parameters, as typed extractors.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;

use crate::error::ApiError;

/// The `{id}` of an item path, as text.
#[derive(Debug, Clone)]
pub struct RawId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RawId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("Object"))?;
        params
            .iter()
            .find(|(name, _)| *name == "id")
            .map(|(_, value)| RawId(value.to_owned()))
            .ok_or_else(|| ApiError::not_found("Object"))
    }
}

/// The numeric `{id}` of an item path. Anything else is a 404 (as for an unknown id).
#[derive(Debug, Clone, Copy)]
pub struct ItemId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for ItemId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawId(raw) = RawId::from_request_parts(parts, state).await?;
        raw.parse::<i64>()
            .map(ItemId)
            .map_err(|_| ApiError::not_found("Object"))
    }
}

/// The query string's parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-blank value of `name`.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params(
            query_pairs(parts.uri.query())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// The pairs of a query string.
pub(crate) fn query_pairs(query: Option<&str>) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
}
