//! Capture endpoints against a live server.
