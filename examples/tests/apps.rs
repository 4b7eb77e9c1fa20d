//! Each application at small scale under crashes, on the embedded store and on DynamoDB
//! Local: every request finishes and every invariant holds. Plus: baseline mode runs the
//! same apps, and a double-applied operation is caught by each app's checker.

use std::sync::Arc;

use beldi::platform::Mode;
use beldi::prelude::*;
use beldi_examples::app::{App, Invariant, Mix, Workload};
use beldi_examples::driver::{self, DriverOptions, Load, Outcome};

fn workload(app: App, requests: u32) -> Workload {
    Workload {
        seed: 7,
        requests,
        // Travel: reservations only, over few hotels and flights, so transactions contend.
        mix: if app == App::Travel {
            Mix::ReserveHeavy
        } else {
            Mix::Paper
        },
        targets: 4,
    }
}

fn config(mode: Mode, namespace: String) -> RuntimeConfig {
    RuntimeConfig {
        namespace,
        mode,
        timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    }
}

fn embedded(mode: Mode) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), opts).unwrap();
    let rt = Runtime::with_config(Arc::new(store), config(mode, String::new())).unwrap();
    (rt, dir)
}

/// Installs `app`, drives `w` with crashes at `crash_rate`, and returns the outcome and the
/// invariants.
async fn run(
    app: App,
    rt: &Runtime,
    w: &Workload,
    clients: usize,
    crash_rate: f64,
) -> (Outcome, Vec<Invariant>) {
    app.register(rt).unwrap();
    app.install(rt, w.seed).await.unwrap();
    let opts = DriverOptions {
        load: Load::Closed { clients },
        crash_rate,
        progress: false,
    };
    let outcome = driver::drive(app, rt, w, &opts).await.unwrap();
    let invariants = app.check(rt, w).await.unwrap();
    (outcome, invariants)
}

fn assert_all_hold(app: App, outcome: &Outcome, invariants: &[Invariant], crashes: bool) {
    assert_eq!(outcome.unfinished, 0, "{app:?}: unfinished instances");
    assert!(invariants.len() >= 2, "{app:?}: {invariants:?}");
    for inv in invariants {
        assert!(inv.holds(), "{app:?}: {}: {:?}", inv.name, inv.violations);
    }
    if crashes {
        assert!(
            outcome.crashes > 0,
            "{app:?}: crashes were injected ({outcome:?})"
        );
    }
}

async fn app_under_crashes_on_embedded(app: App) {
    let (rt, _dir) = embedded(Mode::Beldi);
    let w = workload(app, 60);
    let (outcome, invariants) = run(app, &rt, &w, 8, 0.05).await;
    assert_all_hold(app, &outcome, &invariants, true);
    assert_eq!(outcome.kinds.values().sum::<u64>(), 60);
    assert_eq!(outcome.latencies.len() as u64 + outcome.already_done, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn movie_under_crashes_on_embedded() {
    app_under_crashes_on_embedded(App::Movie).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn travel_under_crashes_on_embedded() {
    app_under_crashes_on_embedded(App::Travel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn social_under_crashes_on_embedded() {
    app_under_crashes_on_embedded(App::Social).await;
}

#[cfg(feature = "dynamodb")]
async fn app_under_crashes_on_dynamodb(app: App) {
    let Some(endpoint) = beldi::dynamodb::test_endpoint() else {
        return;
    };
    let store = beldi::dynamodb::DynamoDbStore::local(endpoint).await;
    let ns = format!(
        "apps_{}_{}_",
        app.name(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let rt = Runtime::with_config(Arc::new(store), config(Mode::Beldi, ns)).unwrap();
    let w = workload(app, 25);
    let (outcome, invariants) = run(app, &rt, &w, 6, 0.05).await;
    assert_all_hold(app, &outcome, &invariants, true);
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn movie_under_crashes_on_dynamodb_local() {
    app_under_crashes_on_dynamodb(App::Movie).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn travel_under_crashes_on_dynamodb_local() {
    app_under_crashes_on_dynamodb(App::Travel).await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn social_under_crashes_on_dynamodb_local() {
    app_under_crashes_on_dynamodb(App::Social).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn baseline_mode_runs_every_app_and_one_client_keeps_the_invariants() {
    for app in App::ALL {
        let (rt, _dir) = embedded(Mode::Baseline);
        // One client, no crashes and (travel) nothing sold out: nothing races and nothing
        // aborts, so even the baseline keeps the data invariants. It promises nothing under
        // concurrency, crashes or aborts: a reservation that finds the flight full keeps
        // its hotel room, as there is no rollback.
        let w = Workload {
            targets: 100,
            ..workload(app, 30)
        };
        let (outcome, invariants) = run(app, &rt, &w, 1, 0.5).await;
        assert_all_hold(app, &outcome, &invariants, false);
        assert_eq!(outcome.crashes, 0, "baseline mode injects no crashes");
        assert_eq!(outcome.executions, 30, "{app:?}: one execution per request");
    }
}

/// After a clean run, one operation is applied a second time under a fresh instance id (as
/// at-least-once delivery without Beldi would): the app's checker names the damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_applied_operation_is_caught_by_each_checker() {
    use beldi_examples::{movie, social, travel};
    for app in App::ALL {
        let (rt, _dir) = embedded(Mode::Beldi);
        let w = workload(app, 10);
        let (outcome, invariants) = run(app, &rt, &w, 4, 0.0).await;
        assert_all_hold(app, &outcome, &invariants, false);
        let (broken, offender) = match app {
            App::Movie => {
                let part = movie::Upload::Part(movie::Part {
                    req_id: "req-3".into(),
                    value: movie::PartValue::Rating(4),
                });
                rt.invoke::<_, (), UserError>(movie::compose.name(), "dup", &part)
                    .await
                    .unwrap()
                    .unwrap();
                ("every request's part counter is exactly 5", "req-3")
            }
            App::Travel => {
                let req: travel::ReserveReq =
                    beldi::value::from_attr(&app.request(&w, 2).unwrap().input, "reservation")
                        .unwrap();
                let took = rt
                    .invoke::<_, bool, UserError>(travel::hotel.name(), "dup", &req.hotel)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(took, "a room was left to take twice");
                ("hotel bookings = flight bookings = orders", "hotel h")
            }
            App::Social => {
                let posts = beldi_examples::app::values::<social::Post>(
                    &rt,
                    social::store_post.name(),
                    "posts",
                )
                .await
                .unwrap();
                let post = posts.values().next().unwrap().clone();
                let entry = (post.author.clone(), post.id.clone());
                rt.invoke::<_, (), UserError>(social::user_timeline.name(), "dup", &entry)
                    .await
                    .unwrap()
                    .unwrap();
                ("each post once in its author's timeline", "appears 2 times")
            }
        };
        let invariants = app.check(&rt, &w).await.unwrap();
        let failed: Vec<&Invariant> = invariants.iter().filter(|i| !i.holds()).collect();
        assert!(
            failed
                .iter()
                .any(|i| i.name == broken && i.violations.iter().any(|v| v.contains(offender))),
            "{app:?}: expected `{broken}` to name {offender}, got {failed:?}"
        );
    }
}

#[test]
fn every_example_function_has_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
    let n = rt.register_all().unwrap();
    let per_app: usize = App::ALL
        .iter()
        .map(|a| {
            let other = Runtime::new(rt.store().clone());
            a.register(&other).unwrap()
        })
        .sum();
    let benchmarks = Runtime::new(rt.store().clone())
        .register_where(|r| r.path.starts_with("beldi_examples::bench::"))
        .unwrap();
    assert_eq!(
        n,
        per_app + benchmarks,
        "every registered function belongs to one app or to the benchmarks"
    );
}
