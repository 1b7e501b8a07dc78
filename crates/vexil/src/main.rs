//! The `vexil` binary.
fn main() {}
