// The store API as a user writes it: typed keys, conditions and update actions.
use beldi::prelude::*;

async fn withdraw(store: &dyn Store, account: &str, amount: i64) -> Result<bool, StoreError> {
    let res = store
        .update(
            Update::new("accounts", Key::new(account))
                .action(UpdateAction::add("balance", -amount))
                .condition(Condition::Ge(Path::attr("balance"), amount.into())),
        )
        .await;
    match res {
        Ok(_) => Ok(true),
        Err(e) if e.is_condition_failed() => Ok(false),
        Err(e) => Err(e),
    }
}

fn main() {
    let _ = withdraw;
}
