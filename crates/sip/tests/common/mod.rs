//! Helpers shared by the integration tests (a directory, so Cargo does not build it as a test).

pub mod exercise;
