//! Planner benchmarks (filled in by the planner work).
fn main() {}
