//! Conversions between serde values and stored [`AttrValue`]s.
//!
//! Values go through `serde_json::Value`: objects become maps, arrays lists, numbers exact
//! decimals, `null` the null value.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BeldiError;
use crate::store::{AttrValue, Number};

/// A JSON value as a stored value.
pub fn from_json(v: &serde_json::Value) -> Result<AttrValue, BeldiError> {
    Ok(match v {
        serde_json::Value::Null => AttrValue::Null,
        serde_json::Value::Bool(b) => AttrValue::Bool(*b),
        serde_json::Value::Number(n) => AttrValue::N(Number::parse(&n.to_string()).map_err(
            |e| BeldiError::Serialization {
                what: format!("number {n}"),
                message: e.to_string(),
            },
        )?),
        serde_json::Value::String(s) => AttrValue::S(s.clone()),
        serde_json::Value::Array(a) => {
            AttrValue::L(a.iter().map(from_json).collect::<Result<_, _>>()?)
        }
        serde_json::Value::Object(o) => AttrValue::M(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v)?)))
                .collect::<Result<BTreeMap<_, _>, BeldiError>>()?,
        ),
    })
}

/// A stored value as a JSON value (binary becomes an array of bytes).
pub fn to_json(v: &AttrValue) -> serde_json::Value {
    match v {
        AttrValue::Null => serde_json::Value::Null,
        AttrValue::Bool(b) => serde_json::Value::Bool(*b),
        AttrValue::N(n) => {
            let text = n.to_string();
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Ok(u) = text.parse::<u64>() {
                serde_json::Value::from(u)
            } else {
                serde_json::Number::from_f64(n.as_f64())
                    .map_or(serde_json::Value::String(text), serde_json::Value::Number)
            }
        }
        AttrValue::S(s) => serde_json::Value::String(s.clone()),
        AttrValue::B(b) => {
            serde_json::Value::Array(b.iter().map(|x| serde_json::Value::from(*x)).collect())
        }
        AttrValue::L(l) => serde_json::Value::Array(l.iter().map(to_json).collect()),
        AttrValue::M(m) => {
            serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Serializes any serde value into a stored value; `what` names it in errors.
pub fn to_attr<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<AttrValue, BeldiError> {
    let json = serde_json::to_value(value).map_err(|e| BeldiError::Serialization {
        what: what.to_owned(),
        message: e.to_string(),
    })?;
    from_json(&json)
}

/// Deserializes a stored value; `what` names it in errors.
pub fn from_attr<T: DeserializeOwned>(value: &AttrValue, what: &str) -> Result<T, BeldiError> {
    serde_json::from_value(to_json(value)).map_err(|e| BeldiError::Serialization {
        what: what.to_owned(),
        message: e.to_string(),
    })
}
