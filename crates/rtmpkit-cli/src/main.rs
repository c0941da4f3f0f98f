//! The `rtmpkit` command line.
fn main() {}
