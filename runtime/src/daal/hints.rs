//! Where each key's tail row was last seen by this process, so that a logged write goes
//! straight to it in one conditional update instead of querying the chain first.
//!
//! A hint is only a guess and never needed for correctness: a write to a row that is no
//! longer the tail is refused (a full row is frozen: every write needs `LN < N`), and one
//! to a row that is gone finds nothing; either way the writer learns where the tail is and
//! writes there ([`Daal::write_at`](super::Daal::write_at)). Without a hint a write first
//! tries to create the key's first row.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many keys' tails are remembered; past that the map starts over (a cold key then
/// costs one extra round trip on its next write).
const MAX_HINTS: usize = 100_000;

/// The tail rows last seen, by (DAAL table, key). Shared by every execution of a runtime.
#[derive(Debug, Default)]
pub struct TailHints {
    rows: Mutex<HashMap<(String, String), String>>,
}

impl TailHints {
    /// The row id where the tail of `key` in `table` was last seen, if any.
    pub fn get(&self, table: &str, key: &str) -> Option<String> {
        let rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        rows.get(&(table.to_owned(), key.to_owned())).cloned()
    }

    /// Remembers that the tail of `key` in `table` was row `row`.
    pub fn set(&self, table: &str, key: &str, row: &str) {
        let mut rows = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rows.len() >= MAX_HINTS {
            rows.clear();
        }
        rows.insert((table.to_owned(), key.to_owned()), row.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_per_table_and_key_and_the_latest_wins() {
        let h = TailHints::default();
        assert_eq!(h.get("t", "k"), None);
        h.set("t", "k", "00000000");
        h.set("t", "k", "00000003");
        h.set("u", "k", "00000001");
        assert_eq!(h.get("t", "k").as_deref(), Some("00000003"));
        assert_eq!(h.get("u", "k").as_deref(), Some("00000001"));
        assert_eq!(h.get("t", "other"), None);
    }
}
