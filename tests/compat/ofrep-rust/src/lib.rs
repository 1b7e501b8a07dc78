//! Nothing here: the compatibility tests are in `tests/provider.rs`.
