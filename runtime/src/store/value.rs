//! Typed attribute values, items and keys, shaped like DynamoDB's data model.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// An item: a map from attribute name to value.
pub type Item = BTreeMap<String, AttrValue>;

/// One attribute value. Mirrors the DynamoDB types the protocols use
/// (sets are not supported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttrValue {
    /// A UTF-8 string.
    S(String),
    /// A decimal number of at most 38 significant digits.
    N(Number),
    /// Raw bytes.
    B(Vec<u8>),
    /// A boolean.
    Bool(bool),
    /// The null value.
    Null,
    /// An ordered list of values.
    L(Vec<AttrValue>),
    /// A map from string keys to values.
    M(BTreeMap<String, AttrValue>),
}

impl AttrValue {
    /// The string, if this is an `S`.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttrValue::S(s) => Some(s),
            _ => None,
        }
    }
    /// The number, if this is an `N`.
    pub fn as_n(&self) -> Option<&Number> {
        match self {
            AttrValue::N(n) => Some(n),
            _ => None,
        }
    }
    /// The number as an `i64`, if this is an integral `N` that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_n().and_then(Number::as_i64)
    }
    /// The bytes, if this is a `B`.
    pub fn as_b(&self) -> Option<&[u8]> {
        match self {
            AttrValue::B(b) => Some(b),
            _ => None,
        }
    }
    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The list, if this is an `L`.
    pub fn as_l(&self) -> Option<&[AttrValue]> {
        match self {
            AttrValue::L(l) => Some(l),
            _ => None,
        }
    }
    /// The map, if this is an `M`.
    pub fn as_m(&self) -> Option<&BTreeMap<String, AttrValue>> {
        match self {
            AttrValue::M(m) => Some(m),
            _ => None,
        }
    }
    /// The DynamoDB type descriptor of this value (`S`, `N`, `B`, `BOOL`, `NULL`, `L`, `M`).
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::S(_) => "S",
            AttrValue::N(_) => "N",
            AttrValue::B(_) => "B",
            AttrValue::Bool(_) => "BOOL",
            AttrValue::Null => "NULL",
            AttrValue::L(_) => "L",
            AttrValue::M(_) => "M",
        }
    }
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::S(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::S(s)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}
impl From<Vec<u8>> for AttrValue {
    fn from(b: Vec<u8>) -> Self {
        AttrValue::B(b)
    }
}
impl From<Number> for AttrValue {
    fn from(n: Number) -> Self {
        AttrValue::N(n)
    }
}
impl From<Vec<AttrValue>> for AttrValue {
    fn from(l: Vec<AttrValue>) -> Self {
        AttrValue::L(l)
    }
}
impl From<BTreeMap<String, AttrValue>> for AttrValue {
    fn from(m: BTreeMap<String, AttrValue>) -> Self {
        AttrValue::M(m)
    }
}
macro_rules! int_into_attr {
    ($($t:ty),*) => {$(
        impl From<$t> for AttrValue {
            fn from(n: $t) -> Self { AttrValue::N(Number::from(n)) }
        }
        impl From<$t> for Number {
            fn from(n: $t) -> Self { Number::from_i128(n as i128) }
        }
    )*};
}
int_into_attr!(i8, i16, i32, i64, u8, u16, u32, u64, usize, isize);

/// Maximum number of significant digits of a [`Number`], as in DynamoDB.
pub const MAX_NUMBER_DIGITS: u32 = 38;

/// An exact decimal number: `mantissa × 10^exponent`, normalized so that equal
/// numbers compare equal (`1.0 == 1`). Up to 38 significant digits, as in DynamoDB.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    mantissa: i128,
    exponent: i32,
}

impl Number {
    /// Zero.
    pub const ZERO: Number = Number {
        mantissa: 0,
        exponent: 0,
    };

    fn from_i128(m: i128) -> Number {
        Number::normalized(m, 0)
    }

    fn normalized(mut mantissa: i128, mut exponent: i32) -> Number {
        if mantissa == 0 {
            return Number::ZERO;
        }
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        Number { mantissa, exponent }
    }

    fn digits(&self) -> u32 {
        if self.mantissa == 0 {
            1
        } else {
            self.mantissa.unsigned_abs().ilog10() + 1
        }
    }

    /// Parses a decimal such as `-12.5`, `3e10` or `0.001`.
    pub fn parse(text: &str) -> Result<Number, StoreError> {
        let bad = |why: &str| StoreError::validation(text, format!("not a valid number: {why}"));
        let t = text.trim();
        let (neg, rest) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (mant, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mant.find('.') {
            Some(i) => (&mant[..i], &mant[i + 1..]),
            None => (mant, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad("no digits"));
        }
        if !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
        {
            return Err(bad("unexpected character"));
        }
        let mut exponent: i64 = match exp {
            Some(e) => e.parse::<i64>().map_err(|_| bad("bad exponent"))?,
            None => 0,
        };
        exponent -= frac_part.len() as i64;
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let trimmed = digits.trim_end_matches('0');
        exponent += (digits.len() - trimmed.len()) as i64;
        if trimmed.is_empty() {
            return Ok(Number::ZERO);
        }
        if trimmed.len() as u32 > MAX_NUMBER_DIGITS {
            return Err(bad("more than 38 significant digits"));
        }
        let mut mantissa: i128 = trimmed.parse().map_err(|_| bad("too many digits"))?;
        if neg {
            mantissa = -mantissa;
        }
        let n = Number {
            mantissa,
            exponent: i32::try_from(exponent).map_err(|_| bad("exponent out of range"))?,
        };
        n.check_range()
            .map_err(|_| bad("magnitude out of range (1e-130 ..= 9.9e125)"))?;
        Ok(n)
    }

    fn check_range(&self) -> Result<(), StoreError> {
        if self.mantissa == 0 {
            return Ok(());
        }
        // Order of magnitude of the leading digit.
        let magnitude = self.exponent as i64 + self.digits() as i64 - 1;
        if !(-130..=125).contains(&magnitude) {
            return Err(StoreError::validation(
                self.to_string(),
                "number magnitude out of range (1e-130 ..= 9.9e125)",
            ));
        }
        Ok(())
    }

    /// A finite `f64` as a number (shortest round-trip representation).
    pub fn from_f64(f: f64) -> Result<Number, StoreError> {
        if !f.is_finite() {
            return Err(StoreError::validation(f.to_string(), "not a finite number"));
        }
        Number::parse(&format!("{f:e}"))
    }

    /// The value as an `i64`, if it is integral and fits.
    pub fn as_i64(&self) -> Option<i64> {
        if self.exponent < 0 {
            return None;
        }
        let scale = 10i128.checked_pow(self.exponent as u32)?;
        i64::try_from(self.mantissa.checked_mul(scale)?).ok()
    }

    /// The value as an `f64` (may round).
    pub fn as_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Exact sum; fails when the result needs more than 38 significant digits.
    pub fn checked_add(&self, other: &Number) -> Result<Number, StoreError> {
        let overflow = || {
            StoreError::validation(
                format!("{self} + {other}"),
                "number overflow: the result needs more than 38 significant digits",
            )
        };
        let e = self.exponent.min(other.exponent);
        let scale = |n: &Number| -> Option<i128> {
            let shift = u32::try_from(n.exponent - e).ok()?;
            n.mantissa.checked_mul(10i128.checked_pow(shift)?)
        };
        let a = scale(self).ok_or_else(overflow)?;
        let b = scale(other).ok_or_else(overflow)?;
        let sum = Number::normalized(a.checked_add(b).ok_or_else(overflow)?, e);
        if sum.digits() > MAX_NUMBER_DIGITS {
            return Err(overflow());
        }
        sum.check_range()?;
        Ok(sum)
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |n: &Number| n.mantissa.signum();
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal => {}
            o => return o,
        }
        if self.mantissa == 0 {
            return Ordering::Equal;
        }
        // Same sign: compare magnitudes by leading-digit exponent, then by digits.
        let mag = |n: &Number| n.exponent as i64 + n.digits() as i64;
        let by_magnitude = mag(self).cmp(&mag(other)).then_with(|| {
            let widen =
                |n: &Number| n.mantissa.unsigned_abs() * 10u128.pow(MAX_NUMBER_DIGITS - n.digits());
            widen(self).cmp(&widen(other))
        });
        if self.mantissa > 0 {
            by_magnitude
        } else {
            by_magnitude.reverse()
        }
    }
}
impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mantissa < 0;
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if neg { "-" } else { "" };
        if self.exponent >= 0 {
            write!(f, "{sign}{digits}{}", "0".repeat(self.exponent as usize))
        } else {
            let frac = (-self.exponent) as usize;
            if digits.len() > frac {
                let (i, r) = digits.split_at(digits.len() - frac);
                write!(f, "{sign}{i}.{r}")
            } else {
                write!(f, "{sign}0.{}{digits}", "0".repeat(frac - digits.len()))
            }
        }
    }
}
impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}
impl FromStr for Number {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Number::parse(s)
    }
}
impl Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Number::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The type of a key attribute. Keys are strings or bytes (numeric keys are not
/// supported, so that both backends order sort keys identically).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    /// A string key, ordered by its UTF-8 bytes.
    S,
    /// A binary key, ordered as unsigned bytes.
    B,
}

/// The value of one key attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyValue {
    /// A string key value.
    S(String),
    /// A binary key value.
    B(Vec<u8>),
}

impl KeyValue {
    /// The type of this key value.
    pub fn key_type(&self) -> KeyType {
        match self {
            KeyValue::S(_) => KeyType::S,
            KeyValue::B(_) => KeyType::B,
        }
    }
    /// The raw bytes, as DynamoDB orders them.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeyValue::S(s) => s.as_bytes(),
            KeyValue::B(b) => b,
        }
    }
    /// The key value as an attribute value.
    pub fn to_attr(&self) -> AttrValue {
        match self {
            KeyValue::S(s) => AttrValue::S(s.clone()),
            KeyValue::B(b) => AttrValue::B(b.clone()),
        }
    }
    /// The key value of an attribute value, if it is a string or bytes.
    pub fn from_attr(v: &AttrValue) -> Option<KeyValue> {
        match v {
            AttrValue::S(s) => Some(KeyValue::S(s.clone())),
            AttrValue::B(b) => Some(KeyValue::B(b.clone())),
            _ => None,
        }
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::S(s) => write!(f, "{s:?}"),
            KeyValue::B(b) => {
                write!(f, "0x")?;
                b.iter().try_for_each(|x| write!(f, "{x:02x}"))
            }
        }
    }
}
impl From<&str> for KeyValue {
    fn from(s: &str) -> Self {
        KeyValue::S(s.to_owned())
    }
}
impl From<String> for KeyValue {
    fn from(s: String) -> Self {
        KeyValue::S(s)
    }
}
impl From<&String> for KeyValue {
    fn from(s: &String) -> Self {
        KeyValue::S(s.clone())
    }
}
impl From<Vec<u8>> for KeyValue {
    fn from(b: Vec<u8>) -> Self {
        KeyValue::B(b)
    }
}

/// The primary key of an item: a partition key and, for tables that have one, a sort key.
/// Attribute names come from the table's [`TableSpec`](super::TableSpec).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    /// The partition key value.
    pub partition: KeyValue,
    /// The sort key value, for tables with a sort key.
    pub sort: Option<KeyValue>,
}

impl Key {
    /// A key of a table without sort key.
    pub fn new(partition: impl Into<KeyValue>) -> Key {
        Key {
            partition: partition.into(),
            sort: None,
        }
    }
    /// A key of a table with a sort key.
    pub fn with_sort(partition: impl Into<KeyValue>, sort: impl Into<KeyValue>) -> Key {
        Key {
            partition: partition.into(),
            sort: Some(sort.into()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sort {
            Some(s) => write!(f, "({}, {})", self.partition, s),
            None => write!(f, "({})", self.partition),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalize_and_compare() {
        let n = |s: &str| Number::parse(s).unwrap();
        assert_eq!(n("1.0"), n("1"));
        assert_eq!(n("-0"), Number::ZERO);
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("0.0012").to_string(), "0.0012");
        assert_eq!(n("-12.50").to_string(), "-12.5");
        assert!(n("2") > n("1.999"));
        assert!(n("-2") < n("-1.999"));
        assert!(n("0.5") < n("5"));
        assert!(n("-5") < n("0"));
        assert_eq!(n("0.1").checked_add(&n("0.2")).unwrap(), n("0.3"));
        assert_eq!(n("7").checked_add(&n("-10")).unwrap().as_i64(), Some(-3));
        assert!(Number::parse("1.2.3").is_err());
        assert!(Number::parse("").is_err());
        assert!(Number::parse("1e200").is_err());
        assert!(Number::parse(&"9".repeat(39)).is_err());
        let big = n(&"9".repeat(38));
        assert!(
            big.checked_add(&n("1")).is_err() || big.checked_add(&n("1")).unwrap() == n("1e38")
        );
        assert!(big.checked_add(&n("0.5")).is_err());
        assert_eq!(Number::from_f64(0.25).unwrap(), n("0.25"));
    }
}
