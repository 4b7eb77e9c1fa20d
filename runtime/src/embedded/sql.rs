//! The SQL the embedded store runs: its schema, and items read, written and paged as
//! rows of one table keyed by (table, partition key, sort key).

use rusqlite::{Connection, OptionalExtension, params};

use super::writer::GroupTx;
use super::{Specs, codec};
use crate::store::eval::{apply_actions, eval_condition};
use crate::store::{Item, Key, Page, Query, Scan, StoreError, TableSpec, Update, validate};

/// Whether SQLite failed because another connection holds a lock (worth a retry).
pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _) if matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    )
}

/// An SQLite error as a store error (busy or locked: throttled, to be retried).
pub(super) fn sql_err(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        return StoreError::Throttled {
            message: format!("embedded store busy: {e}"),
        };
    }
    StoreError::io("embedded store (SQLite) failed", e)
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS beldi_tables (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS beldi_items (
    tbl TEXT NOT NULL, pk BLOB NOT NULL, sk BLOB NOT NULL, item BLOB NOT NULL,
    PRIMARY KEY (tbl, pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS beldi_tokens (
    token TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, at_ms INTEGER NOT NULL
);
";

/// The sort key's bytes (empty for a table without one).
fn sk_bytes(key: &Key) -> &[u8] {
    key.sort.as_ref().map_or(&[], |s| s.as_bytes())
}

/// The item at (`table`, `key`), decoded.
pub(super) fn load(conn: &Connection, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
    let raw: Option<Vec<u8>> = conn
        .prepare_cached("SELECT item FROM beldi_items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
        .map_err(sql_err)?
        .query_row(
            params![table, key.partition.as_bytes(), sk_bytes(key)],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    raw.map(|b| codec::decode(&b)).transpose()
}

/// Stores `item` at (`table`, `key`); `existed`: an item is there now.
pub(super) fn store_item(
    conn: &Connection,
    table: &str,
    key: &Key,
    item: &Item,
    existed: bool,
) -> Result<(), StoreError> {
    store_encoded(conn, table, key, &codec::encode(item), existed)
}

/// [`store_item`] of an item encoded already (puts encode theirs before they queue, so the
/// writer thread does not).
pub(super) fn store_encoded(
    conn: &Connection,
    table: &str,
    key: &Key,
    encoded: &[u8],
    existed: bool,
) -> Result<(), StoreError> {
    // An item that exists is rewritten in place (`INSERT OR REPLACE` would delete the row
    // and insert it again).
    let sql = if existed {
        "UPDATE beldi_items SET item = ?4 WHERE tbl = ?1 AND pk = ?2 AND sk = ?3"
    } else {
        "INSERT OR REPLACE INTO beldi_items (tbl, pk, sk, item) VALUES (?1, ?2, ?3, ?4)"
    };
    conn.prepare_cached(sql)
        .map_err(sql_err)?
        .execute(params![
            table,
            key.partition.as_bytes(),
            sk_bytes(key),
            encoded
        ])
        .map_err(sql_err)?;
    Ok(())
}

/// Deletes the item at (`table`, `key`).
pub(super) fn remove_item(conn: &Connection, table: &str, key: &Key) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM beldi_items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3")
        .map_err(sql_err)?
        .execute(params![table, key.partition.as_bytes(), sk_bytes(key)])
        .map_err(sql_err)?;
    Ok(())
}

fn condition_failed(table: &str, key: &Key, cur: Option<Item>, want: bool) -> StoreError {
    StoreError::ConditionFailed {
        table: table.to_owned(),
        key: key.to_string(),
        item: if want { cur.map(Box::new) } else { None },
    }
}

/// The item after an update, checked against the size limit.
pub(super) fn updated(
    spec: &TableSpec,
    key: &Key,
    cur: Option<&Item>,
    req: &Update,
) -> Result<Item, StoreError> {
    let mut item = cur.cloned().unwrap_or_else(|| spec.key_item(key));
    apply_actions(&mut item, &req.actions)?;
    validate::item_within_limit(&spec.name, &item)?;
    Ok(item)
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The names of the tables starting with `prefix`, in name order.
pub(super) fn table_names(conn: &Connection, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name FROM beldi_tables WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![prefix], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// Reads a table's schema, and caches it.
pub(super) fn load_spec(
    specs: &Specs,
    conn: &Connection,
    table: &str,
) -> Result<Option<TableSpec>, StoreError> {
    let raw: Option<String> = conn
        .prepare_cached("SELECT spec FROM beldi_tables WHERE name = ?1")
        .map_err(sql_err)?
        .query_row(params![table], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    let spec = raw
        .map(|s| serde_json::from_str::<TableSpec>(&s))
        .transpose()
        .map_err(|e| StoreError::io("corrupt table schema in the embedded store", e))?;
    if let (Some(s), Ok(mut m)) = (&spec, specs.write()) {
        m.insert(table.to_owned(), s.clone());
    }
    Ok(spec)
}

/// Inside a write transaction: checks the table, loads the item and evaluates the
/// condition on it. Returns the current item when the condition holds.
pub(super) fn load_if(
    specs: &Specs,
    tx: &GroupTx<'_>,
    table: &str,
    key: &Key,
    condition: Option<&crate::store::Condition>,
    return_item_on_failure: bool,
) -> Result<Option<Item>, StoreError> {
    let cur = load_checked(specs, tx, table, key)?;
    match condition {
        Some(c) if !eval_condition(cur.as_ref(), c) => {
            Err(condition_failed(table, key, cur, return_item_on_failure))
        }
        _ => Ok(cur),
    }
}

/// Inside a write transaction: checks the table, then loads the item.
pub(super) fn load_checked(
    specs: &Specs,
    tx: &GroupTx<'_>,
    table: &str,
    key: &Key,
) -> Result<Option<Item>, StoreError> {
    check_table(specs, tx, table)?;
    load(tx.read(), table, key)
}

/// Checks that a table still exists inside a write transaction (another process may have
/// deleted it), once per table and group.
fn check_table(specs: &Specs, tx: &GroupTx<'_>, table: &str) -> Result<(), StoreError> {
    if tx.table_checked(table) {
        return Ok(());
    }
    let found: Option<i64> = tx
        .read()
        .prepare_cached("SELECT 1 FROM beldi_tables WHERE name = ?1")
        .map_err(sql_err)?
        .query_row(params![table], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    if found.is_none() {
        if let Ok(mut m) = specs.write() {
            m.remove(table);
        }
        return Err(StoreError::TableNotFound {
            table: table.to_owned(),
        });
    }
    tx.mark_table_checked(table);
    Ok(())
}

/// A page of at most `limit` of `items`, with the key to start the next one after when
/// there were more.
fn finish_page(spec: &TableSpec, mut items: Vec<Item>, limit: usize) -> Result<Page, StoreError> {
    let last_key = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| spec.key_of(i)).transpose()?
    } else {
        None
    };
    Ok(Page { items, last_key })
}

/// One page of a query, in sort-key order.
pub(super) fn query_page(
    c: &Connection,
    spec: &TableSpec,
    req: &Query,
    limit: usize,
) -> Result<Page, StoreError> {
    let (sql, args) = query_sql(req, limit);
    let mut stmt = c.prepare_cached(&sql).map_err(sql_err)?;
    read_page(&mut stmt, &args, spec, limit)
}

/// Runs a page's statement and decodes its items (one more than `limit`, to tell whether a
/// page follows).
fn read_page(
    stmt: &mut rusqlite::CachedStatement<'_>,
    args: &[Box<dyn rusqlite::ToSql>],
    spec: &TableSpec,
    limit: usize,
) -> Result<Page, StoreError> {
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(sql_err)?;
    let mut items = Vec::new();
    for raw in rows {
        items.push(codec::decode(&raw.map_err(sql_err)?)?);
    }
    finish_page(spec, items, limit)
}

/// A query's statement and its arguments. Every parameter is wrapped in `CAST(? AS …)`:
/// compared bare to a column (or as the `LIMIT`), SQLite's planner makes the compiled
/// statement depend on the bound value, and compiles it again on every execution.
fn query_sql(req: &Query, limit: usize) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
    let mut sql = String::from(
        "SELECT item FROM beldi_items \
         WHERE tbl = CAST(?1 AS TEXT) AND pk = CAST(?2 AS BLOB)",
    );
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![
        Box::new(req.table.clone()),
        Box::new(req.partition.as_bytes().to_vec()),
    ];
    if let Some(p) = &req.sort_prefix {
        args.push(Box::new(p.as_bytes().to_vec()));
        sql += &format!(" AND sk >= CAST(?{} AS BLOB)", args.len());
        if let Some(end) = prefix_end(p.as_bytes()) {
            args.push(Box::new(end));
            sql += &format!(" AND sk < CAST(?{} AS BLOB)", args.len());
        }
    }
    if let Some(k) = &req.start_after {
        args.push(Box::new(sk_bytes(k).to_vec()));
        let op = if req.descending { "<" } else { ">" };
        sql += &format!(" AND sk {op} CAST(?{} AS BLOB)", args.len());
    }
    sql += if req.descending {
        " ORDER BY sk DESC"
    } else {
        " ORDER BY sk ASC"
    };
    args.push(Box::new(
        limit.saturating_add(1).min(i64::MAX as usize) as i64
    ));
    sql += &format!(" LIMIT CAST(?{} AS INTEGER)", args.len());
    (sql, args)
}

/// One page of a scan, in key order.
pub(super) fn scan_page(
    c: &Connection,
    spec: &TableSpec,
    req: &Scan,
    limit: usize,
) -> Result<Page, StoreError> {
    let page = limit.saturating_add(1).min(i64::MAX as usize) as i64;
    // A page after a key seeks to it (the index range starts there), so paging
    // through a table reads each item once. `CAST`: see `query`.
    let (mut stmt, args): (_, Vec<Box<dyn rusqlite::ToSql>>) = match &req.start_after {
        Some(k) => (
            c.prepare_cached(
                "SELECT item FROM beldi_items WHERE tbl = CAST(?1 AS TEXT) \
                 AND (pk, sk) > (CAST(?2 AS BLOB), CAST(?3 AS BLOB)) \
                 ORDER BY pk, sk LIMIT CAST(?4 AS INTEGER)",
            )
            .map_err(sql_err)?,
            vec![
                Box::new(req.table.clone()),
                Box::new(k.partition.as_bytes().to_vec()),
                Box::new(sk_bytes(k).to_vec()),
                Box::new(page),
            ],
        ),
        None => (
            c.prepare_cached(
                "SELECT item FROM beldi_items WHERE tbl = CAST(?1 AS TEXT) \
                 ORDER BY pk, sk LIMIT CAST(?2 AS INTEGER)",
            )
            .map_err(sql_err)?,
            vec![Box::new(req.table.clone()), Box::new(page)],
        ),
    };
    read_page(&mut stmt, &args, spec, limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyValue;
    use rusqlite::StatementStatus;

    /// A statement compiled again on every execution cost the store a parse per query
    /// (7% of a logged-write benchmark's CPU): queries of any shape run compiled once.
    #[test]
    fn queries_run_without_recompiling() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        let spec = TableSpec::new("t", "pk").with_sort_key("sk");
        for desc in [false, true] {
            let shape = |p: &str, limit| {
                let mut q = Query::new("t", KeyValue::from(p));
                q.sort_prefix = Some("r".into());
                q.start_after = Some(Key::with_sort(p, "r0"));
                q.descending = desc;
                q.limit = Some(limit);
                q
            };
            for (i, p) in ["a", "b", "c"].iter().enumerate() {
                query_page(&c, &spec, &shape(p, i + 1), i + 1).unwrap();
            }
            let stmt = c.prepare_cached(&query_sql(&shape("a", 1), 1).0).unwrap();
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
            assert_eq!(
                stmt.get_status(StatementStatus::Run),
                3,
                "one statement, cached"
            );
        }
    }
}
