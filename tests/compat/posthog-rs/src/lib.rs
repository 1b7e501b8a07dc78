//! Nothing here: the compatibility tests are in `tests/sdk.rs`; `src/main.rs` writes the test
//! GeoIP database.
