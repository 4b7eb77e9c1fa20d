//! The applications of the paper's evaluation, written with the `beldi` facade as a user
//! would, with their data generators, invariant checkers and the workload driver.
//!
//! - [`movie`]: movie review (compose-review: parallel fan-out, async fan-in).
//! - [`travel`]: travel reservation (search, recommend, login, reserve transaction).
//! - [`social`]: social media (compose-post, mentions, URL shortening, timelines).
//! - [`app`]: what they share (workloads, requests, invariants).
//! - [`driver`]: closed- and open-loop workload driver with crash injection.
//! - [`bench`]: the benchmarks (report and plots).

pub mod app;
pub mod bench;
pub mod driver;
pub mod movie;
pub mod social;
pub mod travel;
