// A store request must be awaited: dropping the future is a mistake the compiler reports.
#![deny(unused_must_use)]
use beldi::prelude::*;

fn main() {
    let dir = std::env::temp_dir();
    let store = EmbeddedStore::open(dir).unwrap();
    store.get("t_1", &Key::new("k"));
}
