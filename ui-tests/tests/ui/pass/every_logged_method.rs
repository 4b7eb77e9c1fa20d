// Every logged `Ctx` method, called inside a `#[beldi::function]`. The test
// `beldi-macros/src/tests.rs` fails when the methods called here and the macro's list of
// logged methods (`beldi-macros/src/symbol.rs`) differ, or when the runtime's `Ctx` gains a
// public method neither list classifies: add a new logged method here too.
use beldi::prelude::*;

#[beldi::function]
async fn callee(_ctx: &Ctx, n: i64) -> Result<i64, UserError> {
    Ok(n)
}

#[beldi::function(tables = ["t"])]
async fn every_logged_method(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _value: Option<AttrValue> = ctx.read("t", "k").await?;
    let _typed: Option<i64> = ctx.read_as("t", "k").await?;
    ctx.write("t", "k", AttrValue::from(1)).await?;
    ctx.write_as("t", "k", &2).await?;
    ctx.update("t", "k", vec![UpdateAction::add(Path::root(), 1)]).await?;
    let _held: bool = ctx
        .cond_write(
            "t",
            "k",
            vec![UpdateAction::set(Path::root(), 3)],
            Condition::not_exists(Path::root()),
        )
        .await?;
    ctx.delete("t", "k").await?;
    let _all: Vec<(String, AttrValue)> = ctx.scan("t").await?;
    let _result: Result<i64, UserError> = ctx.call("callee", &4).await?;
    let _instance: String = ctx.spawn("callee", &5).await?;
    let _now: std::time::SystemTime = ctx.now().await?;
    let _drawn: u64 = ctx.random().await?;
    let _id = ctx.uuid().await?;
    ctx.sleep(std::time::Duration::from_millis(1)).await?;
    let _once: u32 = ctx.side_effect(|| 6).await?;
    Ok(())
}

fn main() {
    let _ = (callee, every_logged_method);
}
