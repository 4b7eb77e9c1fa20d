//! The travel app's functions do what they say: search, login, recommend, and a
//! reservation that stops at capacity.

use std::sync::Arc;

use beldi::prelude::*;
use beldi_examples::app::App;
use beldi_examples::travel::{self, ReserveReq};

#[tokio::test]
async fn travel_functions_answer_and_reservations_stop_at_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
    App::Travel.register(&rt).unwrap();
    App::Travel.install(&rt, 1).await.unwrap();
    let found = travel::search
        .invoke(&rt, "s1", &(500, 500))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 5);
    assert!(found.windows(2).all(|w| w[0].1 <= w[1].1), "cheapest first");
    let ok = travel::login
        .invoke(&rt, "l1", &("u7".to_string(), "pw7".to_string()))
        .await
        .unwrap();
    let bad = travel::login
        .invoke(&rt, "l2", &("u7".to_string(), "nope".to_string()))
        .await
        .unwrap();
    assert_eq!((ok, bad), (Ok(true), Ok(false)));
    let picks = travel::recommend
        .invoke(&rt, "rec1", &"u3".to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(picks.len(), 3);
    // One hotel, one flight: exactly CAPACITY reservations get an order, the rest none.
    let mut orders = 0;
    for i in 0..travel::CAPACITY + 3 {
        let req = ReserveReq {
            user: format!("u{i}"),
            hotel: "h1".into(),
            flight: "f1".into(),
        };
        let got = travel::reserve
            .invoke(&rt, &format!("r{i}"), &req)
            .await
            .unwrap()
            .unwrap();
        orders += got.is_some() as i64;
    }
    assert_eq!(orders, travel::CAPACITY);
    let s = travel::state(&rt).await.unwrap();
    assert_eq!((s.rooms["h1"], s.seats["f1"]), (0, 0));
    let invariants = travel::check(&rt).await.unwrap();
    assert!(invariants.iter().all(|i| i.holds()), "{invariants:?}");
}
