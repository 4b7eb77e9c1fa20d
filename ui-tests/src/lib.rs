//! Compile-pass and compile-fail tests of Beldi's public API (see `tests/ui.rs`).
