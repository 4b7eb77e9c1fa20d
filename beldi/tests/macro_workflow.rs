//! A workflow written with the macros, as a user writes it: registration by name, typed
//! handles, call-site step identity (also under `join!` and in loops), logged `now` and
//! `uuid`, and the crash-point explorer over all of it.

use std::sync::Arc;

use beldi::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Order {
    pub item: String,
    pub qty: i64,
}

/// Takes stock of an item, if there is enough.
#[beldi::function(tables = ["stock"], timeout = "10s")]
pub async fn take_stock(ctx: &Ctx, order: Order) -> Result<bool, UserError> {
    let have: i64 = ctx.read_as("stock", &order.item).await?.unwrap_or(0);
    if have < order.qty {
        return Ok(false);
    }
    ctx.write_as("stock", &order.item, &(have - order.qty))
        .await?;
    Ok(true)
}

/// Records an order under a logged id, after checking stock.
#[beldi::function(tables = ["orders", "audit"])]
pub async fn place_order(ctx: &Ctx, order: Order) -> Result<String, UserError> {
    let (id, at) = tokio::join!(ctx.uuid(), ctx.now());
    let (id, at) = (id?, at?);
    let ok = take_stock.call(ctx, &order).await??;
    if !ok {
        return Err(UserError("out of stock".into()));
    }
    for i in 0..2 {
        ctx.update(
            "audit",
            "events",
            vec![UpdateAction::add(Path::root(), 1 + i - i)],
        )
        .await?;
    }
    let stamp = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    ctx.write_as("orders", &id.to_string(), &(order.clone(), stamp))
        .await?;
    Ok(id.to_string())
}

async fn runtime(dir: &std::path::Path) -> Result<Runtime, BeldiError> {
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    runtime_on(
        Arc::new(EmbeddedStore::open_with(dir, opts)?),
        String::new(),
    )
    .await
}

async fn runtime_on(store: Arc<dyn Store>, namespace: String) -> Result<Runtime, BeldiError> {
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            namespace,
            ..Default::default()
        },
    )?;
    assert!(rt.register_all()? >= 2);
    rt.provision().await?;
    let seed = beldi::value::to_attr(&5i64, "seed")?;
    let stock = rt.tables("take_stock")?.data("stock")?;
    beldi_runtime::__internals::Daal::new(&**rt.store(), &stock, rt.config().row_capacity)
        .write(
            "apple",
            "seed#0",
            beldi_runtime::__internals::Entry::Write,
            &[UpdateAction::set("V", seed)],
            None,
        )
        .await?;
    Ok(rt)
}

async fn check(rt: &Runtime) -> Result<(), String> {
    let e = |e: BeldiError| e.to_string();
    let stock = beldi::explorer::current_value(rt, "take_stock", "stock", "apple")
        .await
        .map_err(e)?;
    let orders = beldi::explorer::current_values(rt, "place_order", "orders")
        .await
        .map_err(e)?;
    let audit = beldi::explorer::current_value(rt, "place_order", "audit", "events")
        .await
        .map_err(e)?;
    if stock != Some(3.into()) || orders.len() != 1 || audit != Some(2.into()) {
        return Err(format!(
            "stock {stock:?}, {} orders, audit {audit:?}",
            orders.len()
        ));
    }
    Ok(())
}

fn order() -> Order {
    Order {
        item: "apple".into(),
        qty: 2,
    }
}

#[tokio::test]
async fn handles_invoke_by_type_and_repeat_returns_the_stored_result() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).await.unwrap();
    let first = place_order
        .invoke(&rt, "client-key-1", &order())
        .await
        .unwrap()
        .unwrap();
    let again = place_order
        .invoke(&rt, "client-key-1", &order())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first, again,
        "the same idempotency key returns the stored result"
    );
    let stock = beldi::explorer::current_value(&rt, "take_stock", "stock", "apple")
        .await
        .unwrap();
    assert_eq!(stock, Some(3.into()));
    let too_many = Order {
        item: "apple".into(),
        qty: 10,
    };
    let out = place_order
        .invoke(&rt, "client-key-2", &too_many)
        .await
        .unwrap();
    assert_eq!(out, Err(UserError("out of stock".into())));
}

#[tokio::test]
async fn explorer_passes_on_a_macro_written_workflow() {
    let base = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    let report = beldi::explorer::explore_with(
        beldi::explorer::ExploreOptions {
            compare_with_crash_free: false,
        },
        "place_order",
        &order(),
        async || {
            runtime(
                &base.path().join(
                    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        .to_string(),
                ),
            )
            .await
        },
        check,
    )
    .await
    .unwrap();
    println!(
        "[embedded] macro workflow: {} instances, {} crash points, {} violations",
        report.instances,
        report.crash_points,
        report.failures.len()
    );
    assert_eq!(report.instances, 2);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

/// The same explorer test on DynamoDB Local.
#[cfg(feature = "dynamodb")]
#[tokio::test]
async fn explorer_passes_on_a_macro_written_workflow_on_dynamodb() {
    let Some(endpoint) = beldi::dynamodb::test_endpoint() else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(beldi::dynamodb::DynamoDbStore::local(endpoint).await);
    let run = format!(
        "m{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let n = std::sync::atomic::AtomicUsize::new(0);
    let report = beldi::explorer::explore_with(
        beldi::explorer::ExploreOptions {
            compare_with_crash_free: false,
        },
        "place_order",
        &order(),
        async || {
            runtime_on(
                store.clone(),
                format!(
                    "{run}_{}_",
                    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                ),
            )
            .await
        },
        check,
    )
    .await
    .unwrap();
    println!(
        "[dynamodb] macro workflow: {} instances, {} crash points, {} violations",
        report.instances,
        report.crash_points,
        report.failures.len()
    );
    assert_eq!(report.instances, 2);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

/// Reports whether its body ran in a transaction scope, inside and outside a txn block.
#[beldi::function(tables = ["t"])]
pub async fn scopes(ctx: &Ctx, _input: ()) -> Result<(bool, bool, bool), UserError> {
    let outside = ctx.in_transaction();
    let inside: Result<bool, UserError> = #[beldi::txn]
    {
        ctx.write_as("t", "k", &1).await?;
        Ok(ctx.in_transaction())
    };
    Ok((outside, inside?, ctx.in_transaction()))
}

#[tokio::test]
async fn txn_blocks_scope_the_context_and_registrations_record_types() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).await.unwrap();
    assert_eq!(
        scopes.invoke(&rt, "s1", &()).await.unwrap(),
        Ok((false, true, false))
    );
    let reg = beldi::__private::inventory::iter::<beldi::platform::Registration>
        .into_iter()
        .find(|r| r.name == "place_order")
        .unwrap();
    assert_eq!(
        (reg.input, reg.output, reg.error),
        ("Order", "String", "UserError")
    );
}
