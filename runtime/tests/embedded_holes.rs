//! The guarantee-holes suite (each test reproduces a hole found in review, now closed) on
//! the embedded backend.

mod holes;
mod protocol;

use protocol::Backend;

async fn backend(_test: &str) -> Option<Backend> {
    Some(Backend::embedded())
}

holes_suite!(backend);
