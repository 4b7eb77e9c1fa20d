//! The protocol suite on the embedded backend.

mod protocol;

use protocol::Backend;

async fn backend(_test: &str) -> Option<Backend> {
    Some(Backend::embedded())
}

protocol_suite!(backend);
