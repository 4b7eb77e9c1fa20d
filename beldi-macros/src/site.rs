//! Stable call-site ids: the step identity of every logged operation in a body.
//!
//! A site id is a hash of the function's name, the operation's method name and the tokens of
//! the call (receiver and arguments), plus the number of identical calls before it in the
//! body. Editing unrelated code — adding a statement, another call, a comment, moving lines —
//! leaves every other site's id unchanged; at run time the id is combined with the number
//! of operations the site already made in this execution (loops, `join!`).
//!
//! Ids are stored in the logs of running instances: the hash, and the words hashed, must
//! never change.

use std::collections::HashMap;

/// The word hashed into the id of a `#[beldi::txn]` block, in place of a method name.
pub const TXN_BLOCK: &str = "txn";

/// The site ids handed out in one function body, in visiting order.
pub struct Sites {
    /// The function's registered name.
    function: String,
    /// How many sites with each base hash were handed out.
    seen: HashMap<u32, u32>,
}

impl Sites {
    /// No site handed out yet in the body of function `function` (its registered name).
    pub fn new(function: String) -> Sites {
        Sites {
            function,
            seen: HashMap::new(),
        }
    }

    /// The id of the next site of operation `method` whose call has tokens `tokens`
    /// (never 0, which the runtime reserves for plain sequential numbering).
    pub fn next(&mut self, method: &str, tokens: &str) -> u32 {
        let base = fnv32(&[&self.function, method, tokens]);
        let n = self.seen.entry(base).or_insert(0);
        let id = if *n == 0 {
            base
        } else {
            fnv32(&[&base.to_string(), &n.to_string()])
        };
        *n += 1;
        id.max(1)
    }
}

/// 32-bit FNV-1a over the parts, each followed by a 0xff separator.
fn fnv32(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u32;
            h = h.wrapping_mul(0x01000193);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the hash: site ids are in stored logs, and a change would break their replay.
    #[test]
    fn ids_are_stable() {
        let mut s = Sites::new("order_b".into());
        let tokens = "\"t\" , \"k\" , & 1";
        assert_eq!(s.next("write_as", tokens), 907726039);
        // An identical second call: the hash of the first id and its number.
        assert_eq!(s.next("write_as", tokens), 603773895);
        assert_ne!(s.next("read", tokens), 907726039);
    }
}
