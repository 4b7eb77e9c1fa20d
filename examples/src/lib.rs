//! The applications of the paper's evaluation, written with the `beldi` facade as a user
//! would, with their data generators and invariant checkers.

pub mod travel;
