//! Semantic scenarios from the spec, one behaviour each.
