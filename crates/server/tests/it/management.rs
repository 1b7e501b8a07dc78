//! Management API against a live server.
