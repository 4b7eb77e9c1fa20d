//! What the code the macros generate calls, re-exported by the facade as
//! `::beldi::__private`. Not a public API: it changes with the macros.

pub use crate::ctx::txn::{__is_ok as txn_is_ok, TxnBlock, TxnEnd};
pub use crate::handle::Handle;
pub use crate::platform::Registration;
