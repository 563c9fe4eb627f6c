//! Platform tests.
fn main() {}
