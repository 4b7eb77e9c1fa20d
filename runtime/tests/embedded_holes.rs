//! The guarantee-holes suite (each test reproduces a hole found in review, now closed) on
//! the embedded backend.

mod holes;
mod protocol;

use protocol::Backend;

async fn backend(_test: &str) -> Option<Backend> {
    Some(Backend::embedded())
}

holes_suite!(backend);

/// Store-independent (the backoff sleep of `TxnBlock::end`), and timed against a short
/// timeout: run on the embedded store, where a replay's store work is far below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaying_many_wait_die_deaths_costs_no_backoff() {
    holes::replaying_many_wait_die_deaths_costs_no_backoff(&Backend::embedded()).await;
}
