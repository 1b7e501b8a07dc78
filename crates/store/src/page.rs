//! Pagination: what a list call asks for and what it returns.

/// A window into a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Maximum rows returned.
    pub limit: u32,
    /// Rows skipped first.
    pub offset: u32,
}

impl Page {
    /// A page of `limit` rows after `offset`.
    pub fn new(limit: u32, offset: u32) -> Self {
        Page { limit, offset }
    }
}

impl Default for Page {
    /// The management API's default flag page: the first 100 rows.
    fn default() -> Self {
        Page {
            limit: 100,
            offset: 0,
        }
    }
}

/// One page of results plus the total number of matching rows (for `count` / `next` links).
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The rows of the requested page, in the list's order.
    pub items: Vec<T>,
    /// How many rows match in total, ignoring the page window.
    pub total: u64,
}
