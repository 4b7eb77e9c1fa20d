//! The kinds of logged steps, as the log records them and traces show them.

/// The kind of a logged step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// `Ctx::read` (and `read_as`).
    Read,
    /// `Ctx::write`, `write_as` and `update`.
    Write,
    /// `Ctx::cond_write`.
    CondWrite,
    /// `Ctx::delete`.
    Delete,
    /// `Ctx::scan`.
    Scan,
    /// `Ctx::call`.
    Call,
    /// `Ctx::spawn`.
    Spawn,
    /// `Ctx::side_effect`, `now`, `random`, `uuid` and `sleep`.
    SideEffect,
    /// The start of a transaction block.
    TxnBegin,
    /// A transaction's commit.
    Commit,
    /// A transaction's abort.
    Abort,
    /// The outcome of taking a lock (a sub-record of a transactional read or write).
    Lock,
}

impl StepKind {
    /// Every kind.
    pub const ALL: [StepKind; 12] = [
        StepKind::Read,
        StepKind::Write,
        StepKind::CondWrite,
        StepKind::Delete,
        StepKind::Scan,
        StepKind::Call,
        StepKind::Spawn,
        StepKind::SideEffect,
        StepKind::TxnBegin,
        StepKind::Commit,
        StepKind::Abort,
        StepKind::Lock,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Read => "read",
            StepKind::Write => "write",
            StepKind::CondWrite => "cond_write",
            StepKind::Delete => "delete",
            StepKind::Scan => "scan",
            StepKind::Call => "call",
            StepKind::Spawn => "spawn",
            StepKind::SideEffect => "side_effect",
            StepKind::TxnBegin => "txn_begin",
            StepKind::Commit => "commit",
            StepKind::Abort => "abort",
            StepKind::Lock => "lock",
        }
    }

    /// The kind with stored name `s`.
    pub fn parse(s: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in StepKind::ALL {
            assert_eq!(StepKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(StepKind::parse("nope"), None);
        // Stored in every log record: the names must never change.
        let names: Vec<&str> = StepKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "read",
                "write",
                "cond_write",
                "delete",
                "scan",
                "call",
                "spawn",
                "side_effect",
                "txn_begin",
                "commit",
                "abort",
                "lock"
            ]
        );
        assert_eq!(StepKind::CondWrite.to_string(), "cond_write");
    }
}
