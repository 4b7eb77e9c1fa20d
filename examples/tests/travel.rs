//! The travel app at small scale under crashes: invariants hold.

use std::sync::Arc;

use beldi::prelude::*;
use beldi_examples::travel::{self, ReserveReq};

async fn runtime(dir: &std::path::Path) -> Runtime {
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    let rt = Runtime::new(Arc::new(EmbeddedStore::open_with(dir, opts).unwrap()));
    rt.register_all().unwrap();
    rt.provision().await.unwrap();
    rt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reserve_heavy_load_with_crashes_keeps_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).await;
    let sem = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = Vec::new();
    for i in 0..150usize {
        let (rt, sem) = (rt.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let req = ReserveReq {
                user: format!("u{i}"),
                hotel: format!("h{}", i % 4),
                flight: format!("f{}", (i * 3) % 5),
            };
            let input = beldi::value::to_attr(&req, "req").unwrap();
            for attempt in 0..100 {
                let plan = if attempt < 3 {
                    FaultPlan::random(5, 0.02)
                } else {
                    FaultPlan::none()
                };
                match rt
                    .execute(
                        travel::reserve.name(),
                        &format!("r{i}"),
                        input.clone(),
                        plan,
                        attempt,
                    )
                    .await
                {
                    Ok(_) => return,
                    Err(BeldiError::Crashed { .. }) => continue,
                    Err(e) => panic!("reserve {i}: {e}"),
                }
            }
            panic!("reserve {i} never finished");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(beldi::explorer::quiesce(&rt, 20).await.unwrap(), 0);
    let violations = travel::check(&rt).await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    let s = travel::state(&rt).await.unwrap();
    // 4 hotels × 10 rooms and 5 flights × 10 seats: at most 40 bookings.
    assert!(
        !s.orders.is_empty() && s.orders.len() <= 40,
        "{} orders",
        s.orders.len()
    );
    assert!(s.rooms.values().all(|v| *v >= 0));
    // Search works on the same runtime.
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
}

#[tokio::test]
async fn the_checker_catches_a_double_booking() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).await;
    let req = ReserveReq {
        user: "ann".into(),
        hotel: "h1".into(),
        flight: "f1".into(),
    };
    assert!(
        travel::reserve
            .invoke(&rt, "ok", &req)
            .await
            .unwrap()
            .unwrap()
            .is_some()
    );
    assert!(travel::check(&rt).await.unwrap().is_empty());
    // A bug that takes a room twice for one order: the checker names the hotel.
    travel::hotel
        .invoke(&rt, "stray-extra-booking", &"h1".to_string())
        .await
        .unwrap()
        .unwrap();
    let violations = travel::check(&rt).await.unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.contains("hotel h1: 2 places booked but 1 orders")),
        "{violations:#?}"
    );
}
