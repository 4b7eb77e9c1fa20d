//! The stored result of an instance (in its intent, and in its caller's log once the caller
//! logged it): the body's output or error, a participant's wait-die death, or a terminal
//! failure. Stored as a one-field map, `{"ok": v}`, `{"err": e}`, `{"died": reason}` or
//! `{"failed": message}`.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::error::BeldiError;
use crate::store::AttrValue;
use crate::value::from_attr;

const OK: &str = "ok";
const ERR: &str = "err";
/// The field of a participant's stored result when it died under wait-die.
const DIED: &str = "died";
/// The field of a stored result that records a terminal failure.
const FAILED: &str = "failed";

/// How an instance ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The body returned `Ok` with this (serialized) output.
    Ok(AttrValue),
    /// The body returned `Err` with this (serialized) error.
    Err(AttrValue),
    /// A transaction participant died under wait-die, for this reason: its caller turns it
    /// back into the death.
    Died(String),
    /// The instance failed for good (a failure every re-execution would meet again), with
    /// this description.
    Failed(String),
}

impl Outcome {
    /// The stored form.
    pub fn to_attr(&self) -> AttrValue {
        let (field, value) = match self {
            Outcome::Ok(v) => (OK, v.clone()),
            Outcome::Err(e) => (ERR, e.clone()),
            Outcome::Died(why) => (DIED, AttrValue::S(why.clone())),
            Outcome::Failed(message) => (FAILED, AttrValue::S(message.clone())),
        };
        AttrValue::M(BTreeMap::from([(field.to_owned(), value)]))
    }

    /// Reads a stored result; `what` names it in the error if it is not one.
    pub fn from_attr(v: &AttrValue, what: &str) -> Result<Outcome, BeldiError> {
        let corrupt = |message: &str| BeldiError::Corrupt {
            what: what.to_owned(),
            message: message.to_owned(),
        };
        let m = v.as_m().ok_or_else(|| corrupt("not a map"))?;
        let text = |v: &AttrValue| v.as_s().unwrap_or("").to_owned();
        if let Some(f) = m.get(FAILED) {
            return Ok(Outcome::Failed(text(f)));
        }
        if let Some(why) = m.get(DIED) {
            return Ok(Outcome::Died(text(why)));
        }
        if let Some(v) = m.get(OK) {
            return Ok(Outcome::Ok(v.clone()));
        }
        if let Some(e) = m.get(ERR) {
            return Ok(Outcome::Err(e.clone()));
        }
        Err(corrupt("neither ok nor err"))
    }

    /// The death a stored result reports, if it is one (cheap: no copy of the value).
    pub fn death(v: &AttrValue) -> Option<&str> {
        v.as_m()?.get(DIED).map(|why| why.as_s().unwrap_or(""))
    }

    /// The body's result, deserialized: `Ok`/`Err` as it returned; a terminal failure is
    /// [`BeldiError::Failed`] of `instance` of `function`, a death [`BeldiError::TxnAborted`].
    pub fn decode<O: DeserializeOwned, E: DeserializeOwned>(
        self,
        function: &str,
        instance: &str,
    ) -> Result<Result<O, E>, BeldiError> {
        match self {
            Outcome::Ok(v) => Ok(Ok(from_attr(&v, &format!("output of `{function}`"))?)),
            Outcome::Err(e) => Ok(Err(from_attr(&e, &format!("error of `{function}`"))?)),
            Outcome::Failed(message) => Err(BeldiError::Failed {
                function: function.to_owned(),
                instance: instance.to_owned(),
                message,
            }),
            Outcome::Died(reason) => Err(BeldiError::TxnAborted {
                txn: String::new(),
                reason,
                wait_die: true,
            }),
        }
    }
}

/// Decodes the stored result of `instance` of `function` into the body's result.
pub fn decode_result<O: DeserializeOwned, E: DeserializeOwned>(
    function: &str,
    instance: &str,
    result: &AttrValue,
) -> Result<Result<O, E>, BeldiError> {
    Outcome::from_attr(result, &format!("result of `{function}`"))?.decode(function, instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_their_stored_form() {
        // Stored data holds these forms: they must never change.
        let cases = [
            (Outcome::Ok(AttrValue::from(1)), "ok"),
            (Outcome::Err(AttrValue::S("no".into())), "err"),
            (Outcome::Died("old".into()), "died"),
            (Outcome::Failed("bad".into()), "failed"),
        ];
        for (o, field) in cases {
            let stored = o.to_attr();
            assert!(
                stored
                    .as_m()
                    .is_some_and(|m| m.len() == 1 && m.contains_key(field))
            );
            assert_eq!(Outcome::from_attr(&stored, "r").ok(), Some(o));
        }
        assert!(Outcome::from_attr(&AttrValue::S("x".into()), "r").is_err());
        assert_eq!(
            Outcome::death(&Outcome::Died("d".into()).to_attr()),
            Some("d")
        );
    }
}
