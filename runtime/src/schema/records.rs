//! The records that travel with invocations and sit in the log.

use std::collections::BTreeMap;

use super::StepKind;
use super::names::{LOG_KIND, LOG_TARGET, LOG_VALUE};
use crate::store::{AttrValue, Item};

/// Who invoked an instance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallerRef {
    /// The calling function.
    pub function: String,
    /// The calling instance.
    pub instance: String,
    /// The caller's step that made the call.
    pub step: u64,
    /// Whether the call was asynchronous (the caller does not wait for the result).
    pub is_async: bool,
}

impl CallerRef {
    /// The stored form (in an intent).
    pub fn to_attr(&self) -> AttrValue {
        let mut m = BTreeMap::new();
        m.insert("f".to_owned(), AttrValue::S(self.function.clone()));
        m.insert("i".to_owned(), AttrValue::S(self.instance.clone()));
        m.insert("s".to_owned(), AttrValue::from(self.step as i64));
        m.insert("a".to_owned(), AttrValue::Bool(self.is_async));
        AttrValue::M(m)
    }
    /// Reads the stored form.
    pub fn from_attr(v: &AttrValue) -> Option<CallerRef> {
        let m = v.as_m()?;
        Some(CallerRef {
            function: m.get("f")?.as_s()?.to_owned(),
            instance: m.get("i")?.as_s()?.to_owned(),
            step: m.get("s")?.as_i64()? as u64,
            is_async: m.get("a")?.as_bool()?,
        })
    }
}

/// One logged step.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// The operation kind, as stored (a [`StepKind`] name; kept as text so a record written
    /// by other code is still described in a non-determinism report).
    pub kind: String,
    /// The operation's target (`table/key`, a table, a function).
    pub target: String,
    /// The logged result, if any.
    pub value: Option<AttrValue>,
}

impl LogRecord {
    /// A record of a step of kind `kind` on `target`.
    pub fn new(kind: StepKind, target: impl Into<String>, value: Option<AttrValue>) -> Self {
        LogRecord {
            kind: kind.as_str().to_owned(),
            target: target.into(),
            value,
        }
    }
    /// Whether it records a step of kind `kind` on `target`.
    pub fn is(&self, kind: StepKind, target: &str) -> bool {
        self.kind == kind.as_str() && self.target == target
    }
    /// Reads a log item.
    pub fn from_item(item: &Item) -> LogRecord {
        let s = |a: &str| {
            item.get(a)
                .and_then(AttrValue::as_s)
                .unwrap_or("")
                .to_owned()
        };
        LogRecord {
            kind: s(LOG_KIND),
            target: s(LOG_TARGET),
            value: item.get(LOG_VALUE).cloned(),
        }
    }
    /// The field `field` of the logged value, when it is a map.
    pub fn field(&self, field: &str) -> Option<&AttrValue> {
        self.value.as_ref()?.as_m()?.get(field)
    }
    /// `kind of target`, for messages.
    pub fn describe(&self) -> String {
        format!("{} of `{}`", self.kind, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_stored_form() {
        let caller = CallerRef {
            function: "f".into(),
            instance: "i".into(),
            step: 7,
            is_async: true,
        };
        let stored = caller.to_attr();
        let m = stored.as_m().expect("a map");
        assert_eq!(m.get("f"), Some(&AttrValue::S("f".into())));
        assert_eq!(m.get("i"), Some(&AttrValue::S("i".into())));
        assert_eq!(m.get("s"), Some(&AttrValue::from(7)));
        assert_eq!(m.get("a"), Some(&AttrValue::Bool(true)));
        assert_eq!(CallerRef::from_attr(&stored), Some(caller));
        let rec = LogRecord::new(StepKind::Read, "t/k", None);
        assert_eq!((rec.kind.as_str(), rec.target.as_str()), ("read", "t/k"));
        assert!(rec.is(StepKind::Read, "t/k") && !rec.is(StepKind::Write, "t/k"));
    }
}
