//! Test helpers shared by Vexil's test suites (the server's integration tests and the binary's
//! cluster tests). Not part of the product.

pub mod sse;
