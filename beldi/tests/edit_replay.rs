//! Editing a function while instances are in flight: with call-site step identity, an
//! instance started by the old code replays under the new code (which inserted an unrelated
//! logged call before the existing ones) and gets its logged results back; with plain
//! sequential steps the same edit is reported as non-determinism. Never a silent mix.

use std::sync::Arc;

use beldi::prelude::*;

mod v1 {
    use beldi::prelude::*;

    #[beldi::function(name = "sum", tables = ["t"])]
    pub async fn sum(ctx: &Ctx, _input: ()) -> Result<i64, UserError> {
        let a: i64 = ctx.read_as("t", "a").await?.unwrap_or(0);
        let b: i64 = ctx.read_as("t", "b").await?.unwrap_or(0);
        ctx.write_as("t", "sum", &(a + b)).await?;
        Ok(a + b)
    }
}

mod v2 {
    use beldi::prelude::*;

    #[beldi::function(name = "sum", tables = ["t"])]
    pub async fn sum(ctx: &Ctx, _input: ()) -> Result<i64, UserError> {
        // The edit: a new logged call before the existing ones.
        let _audit: Option<i64> = ctx.read_as("t", "audit").await?;
        let a: i64 = ctx.read_as("t", "a").await?.unwrap_or(0);
        let b: i64 = ctx.read_as("t", "b").await?.unwrap_or(0);
        ctx.write_as("t", "sum", &(a + b)).await?;
        Ok(a + b)
    }
}

async fn set(rt: &Runtime, key: &str, v: i64) {
    let t = rt.tables("sum").unwrap().data("t").unwrap();
    let v = beldi::value::to_attr(&v, "v").unwrap();
    beldi_runtime::__internals::Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .write(
            key,
            &format!("seed#{key}{v:?}"),
            beldi_runtime::__internals::Entry::Write,
            &[UpdateAction::set("V", v)],
            None,
        )
        .await
        .unwrap();
}

fn version(rt: &Runtime, module: &str) {
    rt.register_where(|r| r.path.contains(module)).unwrap();
}

#[tokio::test]
async fn macro_sites_survive_an_unrelated_edit() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let old = Runtime::new(store.clone());
    version(&old, "::v1::");
    old.provision().await.unwrap();
    set(&old, "a", 1).await;
    set(&old, "b", 2).await;
    // In flight: the old code read `a` and `b`, then crashed.
    let plan = FaultPlan::crash_at(CrashPoint::BeforeDone);
    let e = old
        .execute(
            "sum",
            "in-flight",
            beldi::value::to_attr(&(), "in").unwrap(),
            plan,
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }));
    // Meanwhile the data changes and the code is redeployed with the edit.
    set(&old, "a", 100).await;
    let new = Runtime::new(store.clone());
    version(&new, "::v2::");
    let out = new
        .invoke::<_, i64, UserError>("sum", "in-flight", &())
        .await
        .unwrap();
    assert_eq!(
        out,
        Ok(3),
        "the replay returns the logged reads, not the new data"
    );
    let sum = beldi::explorer::current_value(&new, "sum", "t", "sum")
        .await
        .unwrap();
    assert_eq!(
        sum,
        Some(3.into()),
        "the write was not repeated with other values"
    );
    // A fresh instance under the new code sees the new data.
    assert_eq!(
        new.invoke::<_, i64, UserError>("sum", "fresh", &())
            .await
            .unwrap(),
        Ok(102)
    );
}

#[tokio::test]
async fn sequential_steps_report_the_same_edit_as_non_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let old = Runtime::new(store.clone());
    old.register("sum", &["t"], |ctx: Ctx, _: ()| async move {
        let a: i64 = ctx.read_as("t", "a").await?.unwrap_or(0);
        ctx.write_as("t", "sum", &a).await?;
        Ok::<_, UserError>(a)
    })
    .unwrap();
    old.provision().await.unwrap();
    old.execute(
        "sum",
        "in-flight",
        beldi::value::to_attr(&(), "in").unwrap(),
        // After the write, which made the read's record durable with it.
        FaultPlan::crash_at(CrashPoint::After(1)),
        0,
    )
    .await
    .unwrap_err();
    let new = Runtime::new(store.clone());
    new.register("sum", &["t"], |ctx: Ctx, _: ()| async move {
        let _audit: Option<i64> = ctx.read_as("t", "audit").await?;
        let a: i64 = ctx.read_as("t", "a").await?.unwrap_or(0);
        ctx.write_as("t", "sum", &a).await?;
        Ok::<_, UserError>(a)
    })
    .unwrap();
    let e = new
        .invoke::<_, i64, UserError>("sum", "in-flight", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::NonDeterminism { step: 0, logged, requested, .. } if logged.contains("t/a") && requested.contains("t/audit")),
        "{e}"
    );
}

#[test]
fn two_declarations_of_one_name_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
    let e = rt.register_all().unwrap_err();
    assert!(
        e.to_string().contains("declared twice")
            && e.to_string().contains("v1::sum")
            && e.to_string().contains("v2::sum"),
        "{e}"
    );
}
