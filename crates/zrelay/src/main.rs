//! The `zrelay` command line.
fn main() {}
