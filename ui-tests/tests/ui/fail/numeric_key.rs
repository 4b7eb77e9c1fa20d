// Keys are strings or bytes: a number is rejected at compile time.
use beldi::prelude::*;

fn main() {
    let _ = Key::new(42);
}
