//! Every id the protocol derives, and its format: instance ids as users give them, the
//! entry id a DAAL write logs, the sort key of a logged step, and the derived ids of
//! callees, transactions and commit propagation. A re-execution derives the same ids, which
//! is what makes its effects land on the records of the first execution.

use crate::error::BeldiError;

/// The separator between instance id and step in a DAAL log entry id.
pub const CID_SEPARATOR: char = '#';

/// Longest instance id. With the default row capacity of 1,000 entries, a DAAL row's log
/// map stays under about 145 KB even with ids this long, leaving more than 250 KB of the
/// 400 KB item for the value.
pub const MAX_INSTANCE_ID: usize = 128;

/// Checks an instance id given by a user or a caller.
pub fn validate_instance(instance: &str) -> Result<(), BeldiError> {
    if instance.is_empty()
        || instance.len() > MAX_INSTANCE_ID
        || instance.contains(CID_SEPARATOR)
        || instance.chars().any(char::is_control)
    {
        return Err(BeldiError::InvalidName {
            what: "instance id",
            name: instance.to_owned(),
            message: format!(
                "must be 1 to {MAX_INSTANCE_ID} characters, without `{CID_SEPARATOR}` or control characters"
            ),
        });
    }
    Ok(())
}

/// The id of the DAAL log entry a write of `instance` at `step` adds: `"<instance>#<step>"`.
pub fn entry_id(instance: &str, step: u64) -> String {
    format!("{instance}{CID_SEPARATOR}{step}")
}

/// The instance of a DAAL log entry id (the whole id if it has no separator).
pub fn instance_of_entry(entry: &str) -> &str {
    entry
        .rsplit_once(CID_SEPARATOR)
        .map_or(entry, |(instance, _)| instance)
}

/// The sort key of a step in the log table.
pub fn step_key(step: u64) -> String {
    format!("{step:016x}")
}

/// The sort key of the lock outcome of `step` in the log table (next to the step's own
/// record).
pub fn lock_outcome_key(step: u64) -> String {
    format!("{}.LK", step_key(step))
}

/// The instance id of the callee of `step` of `instance` of `function`: a UUID (v5) of the
/// three, so every execution of the caller names the same callee instance.
pub fn callee_id(function: &str, instance: &str, step: u64) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6265_6c64_6921_4c6f_6761_6c6c_6564_2121);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{function}\u{0}{instance}\u{0}{step}").as_bytes(),
    )
    .to_string()
}

/// The id of the transaction a `#[beldi::txn]` block of `function` begins at `step` of
/// `instance`.
pub fn txn_id(function: &str, instance: &str, step: u64) -> String {
    callee_id(&format!("{function}>txn"), instance, step)
}

/// The instance id of the commit or abort that `function` (at `step` of `instance`)
/// propagates to its participant `participant`.
pub fn finish_id(function: &str, participant: &str, instance: &str, step: u64) -> String {
    callee_id(&format!("{function}>{participant}"), instance, step)
}

/// The id of the DAAL entry with which the commit (`commit`) or abort logged at `step`
/// of `instance` applies or releases `table/key`. Keyed by the item, not by its position
/// among the shadow entries: a replay that finds other entries (one re-created by a
/// lagging copy, say) still names each item's commit the same way.
pub fn finish_entry_id(instance: &str, step: u64, commit: bool, table: &str, key: &str) -> String {
    format!(
        "{}.{}{}",
        entry_id(instance, step),
        if commit { 'C' } else { 'A' },
        item_tag(table, key)
    )
}

/// A short stable tag (FNV-1a) of `table/key`.
fn item_tag(table: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in table.bytes().chain([0]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_round_trip_to_their_instance() {
        let id = entry_id("req-1", 42);
        assert_eq!(id, "req-1#42");
        assert_eq!(instance_of_entry(&id), "req-1");
        assert_eq!(
            instance_of_entry(&finish_entry_id("r", 3, true, "t", "k")),
            "r"
        );
    }

    #[test]
    fn instance_ids_are_checked() {
        assert!(validate_instance("req-1").is_ok());
        for bad in ["", "a#b", "a\nb", &"x".repeat(MAX_INSTANCE_ID + 1)] {
            assert!(validate_instance(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_ids_are_stable() {
        // Stored data names these ids: they must never change.
        // Computed independently (Python's uuid5 with the same namespace and name; FNV-1a).
        assert_eq!(
            callee_id("f", "i", 1),
            "869a9096-28b8-5b6c-aebb-40a2a3315de5"
        );
        assert_eq!(txn_id("f", "i", 1), "570c49c8-cd5b-5929-95f0-bb539b9bdcc7");
        assert_eq!(
            finish_entry_id("r", 3, true, "t", "k"),
            "r#3.C566dcf1943ee4616"
        );
        assert_eq!(
            finish_entry_id("r", 3, false, "t", "k"),
            "r#3.A566dcf1943ee4616"
        );
        assert_eq!(finish_id("f", "p", "i", 1), callee_id("f>p", "i", 1));
        assert_ne!(callee_id("f", "i", 1), callee_id("f", "i", 2));
        assert_eq!(txn_id("f", "i", 1), callee_id("f>txn", "i", 1));
        assert_eq!(step_key(255), "00000000000000ff");
        assert_eq!(lock_outcome_key(1), "0000000000000001.LK");
    }
}
