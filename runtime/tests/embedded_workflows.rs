//! The workflow suite (invocations, intent collector, garbage collector) on the embedded
//! backend.

mod protocol;
mod workflows;

use protocol::Backend;

async fn backend(_test: &str) -> Option<Backend> {
    Some(Backend::embedded())
}

workflow_suite!(backend);
