//! List envelopes: `limit`/`offset` lists (`{count, next, previous, results}`) and the
//! activity log's `limit`/`page` lists (`{results, next, previous, total_count}`), with
//! absolute `next`/`previous` URLs that keep every other query parameter.

use axum::http::{header, HeaderMap, Uri};
use serde_json::{json, Value};
use vexil_store::Page;

use crate::extract::Params;

/// Largest page a client may ask for; a larger `limit` is clamped (the `next` link still walks
/// the whole list).
pub const MAX_LIMIT: u32 = 1_000;

/// The request's absolute URL, to derive `next`/`previous` links from.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
    params: Vec<(String, String)>,
}

impl Links {
    /// The URL the client called: scheme from `X-Forwarded-Proto` (default `http`), host from
    /// the `Host` header.
    pub fn new(headers: &HeaderMap, uri: &Uri, params: &Params) -> Links {
        let header_str = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let scheme = header_str("x-forwarded-proto")
            .and_then(|p| p.split(',').next())
            .map(str::trim)
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        let host = header_str(header::HOST.as_str())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_owned());
        Links {
            base: format!("{scheme}://{host}{}", uri.path()),
            params: params.0.clone(),
        }
    }

    /// This URL with `changes` replacing (or adding) parameters.
    pub fn with(&self, changes: &[(&str, String)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            if !changes.iter().any(|(name, _)| name == k) {
                query.append_pair(k, v);
            }
        }
        for (k, v) in changes {
            query.append_pair(k, v);
        }
        format!("{}?{}", self.base, query.finish())
    }
}

fn parse_u32(params: &Params, name: &str) -> Option<u32> {
    params.non_empty(name)?.parse().ok()
}

/// `limit` (default `default_limit`, at most [`MAX_LIMIT`], at least 1) and `offset`
/// (default 0). Unparseable values fall back to the defaults, as DRF does.
pub fn offset_page(params: &Params, default_limit: u32) -> Page {
    let limit = parse_u32(params, "limit")
        .unwrap_or(default_limit)
        .clamp(1, MAX_LIMIT);
    Page::new(limit, parse_u32(params, "offset").unwrap_or(0))
}

/// `{count, next, previous, results}` for one `limit`/`offset` window of `total` rows.
pub fn offset_envelope(results: Vec<Value>, total: u64, page: Page, links: &Links) -> Value {
    let end = u64::from(page.offset) + u64::from(page.limit);
    let next = (end < total).then(|| {
        links.with(&[
            ("limit", page.limit.to_string()),
            ("offset", end.to_string()),
        ])
    });
    let previous = (page.offset > 0).then(|| {
        let prev = page.offset.saturating_sub(page.limit);
        links.with(&[
            ("limit", page.limit.to_string()),
            ("offset", prev.to_string()),
        ])
    });
    json!({"count": total, "next": next, "previous": previous, "results": results})
}

/// `limit` (default `default_limit`) and the 1-based `page` of the activity endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberedPage {
    /// Rows per page.
    pub limit: u32,
    /// 1-based page number.
    pub page: u32,
}

impl NumberedPage {
    /// Reads `limit` and `page` from the query.
    pub fn from_params(params: &Params, default_limit: u32) -> NumberedPage {
        NumberedPage {
            limit: parse_u32(params, "limit")
                .unwrap_or(default_limit)
                .clamp(1, MAX_LIMIT),
            page: parse_u32(params, "page").unwrap_or(1).max(1),
        }
    }

    /// The store window of this page (`None` past the addressable range).
    pub fn window(self) -> Option<Page> {
        let offset = (self.page - 1).checked_mul(self.limit)?;
        Some(Page::new(self.limit, offset))
    }

    /// `{results, next, previous, total_count}`.
    pub fn envelope(self, results: Vec<Value>, total: u64, links: &Links) -> Value {
        let end = u64::from(self.page) * u64::from(self.limit);
        let link = |page: u32| {
            links.with(&[
                ("limit", self.limit.to_string()),
                ("page", page.to_string()),
            ])
        };
        let next = (end < total).then(|| link(self.page.saturating_add(1)));
        let previous = (self.page > 1).then(|| link(self.page - 1));
        json!({"results": results, "next": next, "previous": previous, "total_count": total})
    }
}
