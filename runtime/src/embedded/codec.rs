//! A compact, self-describing binary encoding of items for the embedded store.
//!
//! Layout: a value is a tag byte followed by its payload; lengths and counts are LEB128
//! varints. Numbers are stored as their canonical decimal text.

use crate::store::{AttrValue, Item, Number, StoreError};

const S: u8 = 0;
const N: u8 = 1;
const B: u8 = 2;
const FALSE: u8 = 3;
const TRUE: u8 = 4;
const NULL: u8 = 5;
const L: u8 = 6;
const M: u8 = 7;

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::S(s) => {
            out.push(S);
            put_bytes(out, s.as_bytes());
        }
        AttrValue::N(n) => {
            out.push(N);
            put_bytes(out, n.to_string().as_bytes());
        }
        AttrValue::B(b) => {
            out.push(B);
            put_bytes(out, b);
        }
        AttrValue::Bool(false) => out.push(FALSE),
        AttrValue::Bool(true) => out.push(TRUE),
        AttrValue::Null => out.push(NULL),
        AttrValue::L(l) => {
            out.push(L);
            put_len(out, l.len());
            l.iter().for_each(|e| put_value(out, e));
        }
        AttrValue::M(m) => {
            out.push(M);
            put_map(out, m);
        }
    }
}

fn put_map(out: &mut Vec<u8>, m: &Item) {
    put_len(out, m.len());
    for (k, v) in m {
        put_bytes(out, k.as_bytes());
        put_value(out, v);
    }
}

/// Encodes an item.
pub fn encode(item: &Item) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    put_map(&mut out, item);
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Io {
        message: format!("corrupt item in the embedded store: {what}"),
        source: None,
    }
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }
    fn len(&mut self) -> Result<usize, StoreError> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= ((b & 0x7f) as usize) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("bad length"))
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| corrupt("bad length"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos = end;
        Ok(s)
    }
    fn string(&mut self) -> Result<String, StoreError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt("invalid UTF-8"))
    }
    fn value(&mut self) -> Result<AttrValue, StoreError> {
        Ok(match self.byte()? {
            S => AttrValue::S(self.string()?),
            N => AttrValue::N(Number::parse(&self.string()?)?),
            B => AttrValue::B(self.bytes()?.to_vec()),
            FALSE => AttrValue::Bool(false),
            TRUE => AttrValue::Bool(true),
            NULL => AttrValue::Null,
            L => {
                let n = self.len()?;
                let mut l = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    l.push(self.value()?);
                }
                AttrValue::L(l)
            }
            M => AttrValue::M(self.map()?),
            t => return Err(corrupt(&format!("unknown tag {t}"))),
        })
    }
    fn map(&mut self) -> Result<Item, StoreError> {
        let n = self.len()?;
        let mut m = Item::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value()?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// Decodes an item written by [`encode`].
pub fn decode(buf: &[u8]) -> Result<Item, StoreError> {
    let mut r = Reader { buf, pos: 0 };
    let m = r.map()?;
    if r.pos != buf.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_type() {
        let mut inner = Item::new();
        inner.insert("k".into(), AttrValue::Null);
        let mut item = Item::new();
        item.insert("s".into(), "héllo".into());
        item.insert("n".into(), AttrValue::N(Number::parse("-12.5e-3").unwrap()));
        item.insert("b".into(), AttrValue::B(vec![0, 255, 7]));
        item.insert("t".into(), true.into());
        item.insert("f".into(), false.into());
        item.insert(
            "l".into(),
            AttrValue::L(vec![1.into(), "x".into(), AttrValue::L(vec![])]),
        );
        item.insert("m".into(), AttrValue::M(inner));
        item.insert("big".into(), "x".repeat(300).into());
        assert_eq!(decode(&encode(&item)).unwrap(), item);
        assert!(decode(&encode(&item)[..10]).is_err());
    }
}
