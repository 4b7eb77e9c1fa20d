//! Every attribute name the protocol stores, by the kind of table it appears in. The
//! names are short because they are stored in every item (DynamoDB bills by item size).

/// Partition key of a DAAL row, a shadow item and a plain (baseline) item: the logical key
/// (for a shadow item, the transaction id).
pub const DAAL_KEY: &str = "K";
/// Sort key of a DAAL row (the row id) and of a shadow item (the [`ShadowEntry`]).
///
/// [`ShadowEntry`]: super::ShadowEntry
pub const DAAL_ROW: &str = "R";
/// Partition key of a log item and an intent: the instance id.
pub const INSTANCE: &str = "I";
/// Sort key of a log item: the step ([`super::step_key`]).
pub const STEP: &str = "S";

/// DAAL row, shadow item and plain item: the value (absent: no value).
pub const VALUE: &str = "V";
/// DAAL row: map of log entry id ([`super::entry_id`]) → outcome code.
pub const LOGS: &str = "L";
/// DAAL row: number of entries ever added to [`LOGS`].
pub const LOG_COUNT: &str = "LN";
/// DAAL row: number of entries collected by the GC.
pub const GC_COUNT: &str = "GN";
/// DAAL row: id of the next row, once this row is full.
pub const NEXT: &str = "NX";
/// DAAL row: the lock holder (a transaction id).
pub const HOLDER: &str = "H";
/// DAAL row: the lock holder's start time (its wait-die age).
pub const HOLDER_TS: &str = "HT";
/// DAAL row: the lock holder's coordinator (function and instance).
pub const HOLDER_COORDINATOR: &str = "HC";
/// DAAL row: when the GC unlinked the row from its chain (ms since the epoch).
pub const UNLINKED_AT: &str = "UT";
/// DAAL row: the capacity N the row was created with. Every writer of the row holds it to
/// this N, whatever its own configured capacity, so processes configured with different
/// capacities agree on when the row is full.
pub const CAPACITY: &str = "N";

/// Log item: the operation kind ([`super::OpKind`]).
pub const LOG_KIND: &str = "K";
/// Log item: the operation's target (`table/key`, a table, a function).
pub const LOG_TARGET: &str = "T";
/// Log item: the logged result.
pub const LOG_VALUE: &str = "V";
/// Field of a logged call's value holding the callee's result.
pub const CALL_RESULT: &str = "result";
/// Field of a logged call's value holding the callee's instance id.
pub const CALLEE: &str = "callee";
/// Field of a logged read's value holding the value read (absent: none).
pub const READ_VALUE: &str = "v";
/// Field of a logged write's value: the DAAL entry code it applied (`w`, `d`, `c1`, `c0`).
pub const WRITE_ENTRY: &str = "e";
/// Field of a logged transactional write: whether its condition held.
pub const TXN_WRITE_HELD: &str = "ok";
/// Field of a logged transactional write: the version of the buffered write.
pub const TXN_WRITE_VERSION: &str = "sv";

/// Intent: the input.
pub const INTENT_INPUT: &str = "IN";
/// Intent: the caller ([`super::CallerRef`]).
pub const INTENT_CALLER: &str = "C";
/// Intent: whether the instance was started asynchronously.
pub const INTENT_ASYNC: &str = "A";
/// Intent: when its latest execution started (ms since the epoch).
pub const INTENT_START: &str = "ST";
/// Intent: whether it is done.
pub const INTENT_DONE: &str = "D";
/// Intent: the stored result ([`super::Outcome`]).
pub const INTENT_RESULT: &str = "R";
/// Intent: when it was done (ms since the epoch).
pub const INTENT_DONE_AT: &str = "DT";
/// Intent: how many times the intent collector restarted it.
pub const INTENT_RESTARTS: &str = "RS";

/// Shadow item of a buffered write: its version (1 for the transaction's first write of
/// the key, one more for each later one).
pub const SHADOW_VERSION: &str = "SV";
/// Shadow finish marker: when the function's part of the transaction finished.
pub const FINISHED_AT: &str = "FT";
/// Shadow finish marker: the entries (their sort keys) the finish covered; any other entry
/// was added after, by a lagging copy.
pub const FINISHED_ENTRIES: &str = "FE";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_keep_their_stored_form() {
        // Stored data holds these names: they must never change.
        let names = [
            (DAAL_KEY, "K"),
            (DAAL_ROW, "R"),
            (INSTANCE, "I"),
            (STEP, "S"),
            (VALUE, "V"),
            (LOGS, "L"),
            (LOG_COUNT, "LN"),
            (GC_COUNT, "GN"),
            (NEXT, "NX"),
            (HOLDER, "H"),
            (HOLDER_TS, "HT"),
            (HOLDER_COORDINATOR, "HC"),
            (UNLINKED_AT, "UT"),
            (CAPACITY, "N"),
            (LOG_KIND, "K"),
            (LOG_TARGET, "T"),
            (LOG_VALUE, "V"),
            (CALL_RESULT, "result"),
            (CALLEE, "callee"),
            (READ_VALUE, "v"),
            (WRITE_ENTRY, "e"),
            (TXN_WRITE_HELD, "ok"),
            (TXN_WRITE_VERSION, "sv"),
            (INTENT_INPUT, "IN"),
            (INTENT_CALLER, "C"),
            (INTENT_ASYNC, "A"),
            (INTENT_START, "ST"),
            (INTENT_DONE, "D"),
            (INTENT_RESULT, "R"),
            (INTENT_DONE_AT, "DT"),
            (INTENT_RESTARTS, "RS"),
            (SHADOW_VERSION, "SV"),
            (FINISHED_AT, "FT"),
            (FINISHED_ENTRIES, "FE"),
        ];
        for (name, stored) in names {
            assert_eq!(name, stored);
        }
    }
}
