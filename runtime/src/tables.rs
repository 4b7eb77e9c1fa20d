//! The tables of one SSF and how their names are derived.
//!
//! An SSF named `s` in namespace `ns` owns `ns` + `s.log`, `s.intent`, `s.shadow` and one
//! `s.data.<table>` per declared data table. SSF and table names may use only
//! `A-Z a-z 0-9 _ -`, so the separator `.` can never appear inside a user name and two SSFs
//! can never derive the same table name.

use crate::error::BeldiError;
use crate::schema::names::{DAAL_KEY, DAAL_ROW, INSTANCE, STEP};
use crate::store::{KeyType, TableSpec};

/// The separator between the parts of a derived table name.
pub const SEPARATOR: char = '.';
/// Longest SSF or data table name.
pub const MAX_NAME: usize = 64;

/// Checks an SSF or data table name.
pub fn validate_name(what: &'static str, name: &str) -> Result<(), BeldiError> {
    let bad = |message: String| BeldiError::InvalidName {
        what,
        name: name.to_owned(),
        message,
    };
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(bad(format!("must be 1 to {MAX_NAME} characters long")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(bad(format!(
            "may contain only A-Z, a-z, 0-9, `_` and `-`, found {c:?}"
        )));
    }
    Ok(())
}

/// Checks a namespace (a prefix of every table name, e.g. `test42_`): empty, or what
/// [`validate_name`] accepts.
pub fn validate_namespace(ns: &str) -> Result<(), BeldiError> {
    if ns.is_empty() {
        return Ok(());
    }
    validate_name("namespace", ns)
}

/// The derived table names of one SSF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsfTables {
    ssf: String,
    prefix: String,
    data: Vec<String>,
}

impl SsfTables {
    /// The tables of SSF `ssf` with data tables `data`, in namespace `ns`.
    pub fn new(ns: &str, ssf: &str, data: &[&str]) -> Result<SsfTables, BeldiError> {
        validate_namespace(ns)?;
        validate_name("function name", ssf)?;
        for t in data {
            validate_name("table name", t)?;
        }
        let mut names: Vec<String> = data.iter().map(|s| s.to_string()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(BeldiError::InvalidName {
                what: "table name",
                name: w[0].clone(),
                message: format!("declared twice by function `{ssf}`"),
            });
        }
        Ok(SsfTables {
            ssf: ssf.to_owned(),
            prefix: format!("{ns}{ssf}{SEPARATOR}"),
            data: names,
        })
    }
    /// The SSF's name.
    pub fn ssf(&self) -> &str {
        &self.ssf
    }
    /// The read/invoke log table.
    pub fn log(&self) -> String {
        format!("{}log", self.prefix)
    }
    /// The intent table.
    pub fn intent(&self) -> String {
        format!("{}intent", self.prefix)
    }
    /// The transaction shadow table.
    pub fn shadow(&self) -> String {
        format!("{}shadow", self.prefix)
    }
    /// The store table of the data table `table`, if the SSF declared it.
    pub fn data(&self, table: &str) -> Result<String, BeldiError> {
        if self.data.iter().any(|t| t == table) {
            Ok(format!("{}data{SEPARATOR}{table}", self.prefix))
        } else {
            Err(BeldiError::UnknownTable {
                function: self.ssf.clone(),
                table: table.to_owned(),
                declared: if self.data.is_empty() {
                    "none".into()
                } else {
                    self.data.join(", ")
                },
            })
        }
    }
    /// The plain table of the data table `table` in baseline mode (no DAAL: one item per
    /// key), if the SSF declared it.
    pub fn plain(&self, table: &str) -> Result<String, BeldiError> {
        self.data(table)?;
        Ok(format!("{}plain{SEPARATOR}{table}", self.prefix))
    }
    /// Every table the SSF needs in baseline mode: one plain table per data table.
    pub fn plain_specs(&self) -> Vec<TableSpec> {
        self.data
            .iter()
            .map(|t| {
                TableSpec::new(format!("{}plain{SEPARATOR}{t}", self.prefix), DAAL_KEY)
                    .with_key_types(KeyType::S, None)
            })
            .collect()
    }
    /// The declared data tables.
    pub fn data_tables(&self) -> &[String] {
        &self.data
    }
    /// Every table the SSF needs, with its schema.
    pub fn specs(&self) -> Vec<TableSpec> {
        let mut out = vec![
            TableSpec::new(self.log(), INSTANCE).with_sort_key(STEP),
            TableSpec::new(self.intent(), INSTANCE),
            TableSpec::new(self.shadow(), DAAL_KEY).with_sort_key(DAAL_ROW),
        ];
        for t in &self.data {
            out.push(
                TableSpec::new(format!("{}data{SEPARATOR}{t}", self.prefix), DAAL_KEY)
                    .with_sort_key(DAAL_ROW)
                    .with_key_types(KeyType::S, Some(KeyType::S)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_and_never_collide() {
        let t = SsfTables::new("ns_", "hotel", &["rooms", "rates"]).unwrap();
        assert_eq!(t.log(), "ns_hotel.log");
        assert_eq!(t.data("rooms").unwrap(), "ns_hotel.data.rooms");
        assert_eq!(t.plain("rooms").unwrap(), "ns_hotel.plain.rooms");
        assert!(t.plain("nope").is_err());
        assert_eq!(t.plain_specs().len(), 2);
        assert!(matches!(
            t.data("nope"),
            Err(BeldiError::UnknownTable { .. })
        ));
        let err = SsfTables::new("", "a.b", &[]).unwrap_err();
        assert!(err.to_string().contains("`a.b`"), "{err}");
        assert!(SsfTables::new("", "ok", &["x y"]).is_err());
        assert!(SsfTables::new("", "ok", &["x", "x"]).is_err());
        assert!(SsfTables::new("", "", &[]).is_err());
    }
}
