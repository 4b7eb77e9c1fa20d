//! The records of a transaction: the context that travels with invocations, and the
//! entries a function's shadow table holds for it.

use crate::store::AttrValue;

/// What a call inside a transaction asks the callee to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Instruction {
    /// Run the body as part of the transaction.
    Execute,
    /// Apply the buffered writes and release the locks.
    Commit,
    /// Drop the buffered writes and release the locks.
    Abort,
}

/// The transaction context that travels with invocations.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnCtx {
    /// The transaction id.
    pub id: String,
    /// Its start time (ms since the epoch): the wait-die age.
    pub ts: i64,
    /// What the callee is asked to do.
    pub instruction: Instruction,
    /// The instance that began the transaction (recorded with its locks, so a contender
    /// can have it restarted when it no longer runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<Coordinator>,
}

impl TxnCtx {
    /// The same transaction with another instruction.
    pub fn with(&self, instruction: Instruction) -> TxnCtx {
        TxnCtx {
            instruction,
            ..self.clone()
        }
    }
    /// Whether `self` is older than a holder with start time `ts` and id `id` (the
    /// wait-die order: start time, ties broken by id).
    pub fn older_than(&self, ts: i64, id: &str) -> bool {
        (self.ts, self.id.as_str()) < (ts, id)
    }
    /// Whether it asks for a commit or an abort (not to run the body).
    pub fn is_finish(&self) -> bool {
        self.instruction != Instruction::Execute
    }
}

/// The function and instance that began a transaction.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coordinator {
    /// The function.
    pub function: String,
    /// The instance.
    pub instance: String,
}

impl Coordinator {
    /// The stored form (the lock holder's coordinator on a DAAL row).
    pub fn to_attr(&self) -> AttrValue {
        AttrValue::M(
            [
                ("f".to_owned(), AttrValue::S(self.function.clone())),
                ("i".to_owned(), AttrValue::S(self.instance.clone())),
            ]
            .into(),
        )
    }
    /// Reads the stored form.
    pub fn from_attr(v: &AttrValue) -> Option<Coordinator> {
        let m = v.as_m()?;
        Some(Coordinator {
            function: m.get("f")?.as_s()?.to_owned(),
            instance: m.get("i")?.as_s()?.to_owned(),
        })
    }
}

/// What a shadow item records for a transaction (its sort key; the partition key is the
/// transaction id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ShadowEntry {
    /// The value `table/key` will have once the transaction commits (in the item).
    Write {
        /// The function's data table.
        table: String,
        /// The key.
        key: String,
    },
    /// A lock the transaction holds on `table/key` (read or write).
    Lock {
        /// The function's data table.
        table: String,
        /// The key.
        key: String,
    },
    /// A function the transaction called: it gets the commit or abort.
    Participant {
        /// The called function.
        function: String,
    },
    /// The marker the function's part of the transaction leaves once finished.
    Finished,
}

/// Separator of the parts of a shadow sort key.
const SEP: char = '\u{0}';
/// Sort key of the finish marker.
const FINISHED: &str = "F";

impl ShadowEntry {
    /// The sort key: `W\0table\0key`, `L\0table\0key`, `P\0function\0` or `F`.
    pub fn sort_key(&self) -> String {
        match self {
            ShadowEntry::Write { table, key } => format!("W{SEP}{table}{SEP}{key}"),
            ShadowEntry::Lock { table, key } => format!("L{SEP}{table}{SEP}{key}"),
            ShadowEntry::Participant { function } => format!("P{SEP}{function}{SEP}"),
            ShadowEntry::Finished => FINISHED.to_owned(),
        }
    }

    /// Reads a sort key (`None`: not one of ours).
    pub fn parse(sort: &str) -> Option<ShadowEntry> {
        if sort == FINISHED {
            return Some(ShadowEntry::Finished);
        }
        let mut parts = sort.splitn(3, SEP);
        let kind = parts.next()?;
        let (a, b) = (
            parts.next()?.to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        match kind {
            "W" => Some(ShadowEntry::Write { table: a, key: b }),
            "L" => Some(ShadowEntry::Lock { table: a, key: b }),
            "P" => Some(ShadowEntry::Participant { function: a }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_entries_keep_their_sort_keys() {
        // Stored data holds these keys: they must never change.
        let cases = [
            (
                ShadowEntry::Write {
                    table: "t".into(),
                    key: "k\u{0}x".into(),
                },
                "W\u{0}t\u{0}k\u{0}x",
            ),
            (
                ShadowEntry::Lock {
                    table: "t".into(),
                    key: "k".into(),
                },
                "L\u{0}t\u{0}k",
            ),
            (
                ShadowEntry::Participant {
                    function: "f".into(),
                },
                "P\u{0}f\u{0}",
            ),
            (ShadowEntry::Finished, "F"),
        ];
        for (entry, sort) in cases {
            assert_eq!(entry.sort_key(), sort);
            assert_eq!(ShadowEntry::parse(sort), Some(entry));
        }
        assert_eq!(ShadowEntry::parse("X\u{0}a\u{0}b"), None);
        let c = Coordinator {
            function: "f".into(),
            instance: "i".into(),
        };
        let stored = c.to_attr();
        let m = stored.as_m().expect("a map");
        assert_eq!(m.get("f"), Some(&AttrValue::S("f".into())));
        assert_eq!(m.get("i"), Some(&AttrValue::S("i".into())));
        assert_eq!(Coordinator::from_attr(&stored), Some(c));
    }
}
