//! The inspector's listings as text: aligned columns, ages in the largest unit that fits.

use beldi_runtime::inspect::{
    CallNode, FunctionInfo, FunctionStats, InstanceDetail, InstanceSummary, LockView,
};
use beldi_runtime::platform::Rerun;

/// `ms` as an age: `850ms`, `12.5s`, `4m10s`, `3h02m`, `2d05h`.
pub(crate) fn age(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", s / 60, s % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// Rows as columns, the first row a header.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

/// A caller as `function/instance@step`.
pub(crate) fn caller(s: &InstanceSummary) -> String {
    s.caller.as_ref().map_or_else(
        || "-".to_owned(),
        |c| {
            format!(
                "{}/{}@{}{}",
                c.function,
                c.instance,
                c.step,
                if c.is_async { " (async)" } else { "" }
            )
        },
    )
}

pub(crate) fn functions(list: &[FunctionInfo]) -> String {
    let mut rows = vec![strings(&["FUNCTION", "DATA TABLES"])];
    for f in list {
        rows.push(vec![f.name.clone(), f.tables.join(", ")]);
    }
    table(&rows)
}

pub(crate) fn instances(list: &[InstanceSummary]) -> String {
    if list.is_empty() {
        return "no instances match\n".to_owned();
    }
    let mut rows = vec![strings(&[
        "FUNCTION", "INSTANCE", "STATE", "AGE", "RESULT", "CALLER", "RESTARTS",
    ])];
    for s in list {
        rows.push(vec![
            s.function.clone(),
            s.instance.clone(),
            s.state.to_string(),
            age(s.age_ms),
            s.result.as_ref().map_or("-", |r| r.kind).to_owned(),
            caller(s),
            s.restarts.to_string(),
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!("{} instance(s)\n", list.len()));
    out
}

pub(crate) fn instance(d: &InstanceDetail) -> String {
    let s = &d.summary;
    let mut out = format!(
        "instance  {}/{}\nstate     {}\nstarted   {} ago{}\ncaller    {}\nrestarts  {}\ninput     {}\n",
        s.function,
        s.instance,
        s.state,
        age(s.age_ms),
        if s.is_async { " (async)" } else { "" },
        caller(s),
        s.restarts,
        d.input,
    );
    match &s.result {
        Some(r) => out.push_str(&format!("result    {}: {}\n", r.kind, r.value)),
        None => out.push_str("result    (not finished)\n"),
    }
    out.push_str(&format!("\nsteps ({}):\n", d.steps.len()));
    if d.steps.is_empty() {
        out.push_str("  (none logged, or collected by the GC)\n");
    } else {
        let mut rows = vec![strings(&["  STEP", "KIND", "TARGET", "VALUE"])];
        for st in &d.steps {
            rows.push(vec![
                format!(
                    "  {}",
                    st.step.map_or_else(|| st.key.clone(), |n| n.to_string())
                ),
                st.kind.clone(),
                st.target.clone(),
                st.value
                    .as_ref()
                    .map_or_else(String::new, |v| clip(&v.to_string(), 100)),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push_str("\ncalls:\n");
    tree(&d.calls, 1, &mut out);
    out
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

fn tree(node: &CallNode, depth: usize, out: &mut String) {
    out.push_str(&format!(
        "{}{}{}/{} [{}]{}\n",
        "  ".repeat(depth),
        node.step.map_or_else(String::new, |s| format!("@{s} ")),
        node.function,
        node.instance,
        node.state,
        if node.is_async && node.step.is_some() {
            " (async)"
        } else {
            ""
        },
    ));
    for c in &node.calls {
        tree(c, depth + 1, out);
    }
}

pub(crate) fn locks(list: &[LockView]) -> String {
    if list.is_empty() {
        return "no locks held\n".to_owned();
    }
    let mut rows = vec![strings(&[
        "FUNCTION",
        "TABLE",
        "KEY",
        "HOLDER",
        "SINCE",
        "COORDINATOR",
    ])];
    for l in list {
        rows.push(vec![
            l.function.clone(),
            l.table.clone(),
            l.key.clone(),
            l.holder.clone(),
            l.held_ms
                .map_or_else(|| "-".into(), |t| format!("{} ago", age(t))),
            l.coordinator
                .as_ref()
                .map_or_else(|| "-".into(), |c| format!("{}/{}", c.function, c.instance)),
        ]);
    }
    table(&rows)
}

pub(crate) fn stats(list: &[FunctionStats]) -> String {
    let mut rows = vec![strings(&[
        "FUNCTION",
        "RUNNING",
        "DONE",
        "FAILED",
        "DIED",
        "LOG ITEMS",
    ])];
    let mut chains = vec![strings(&[
        "FUNCTION",
        "TABLE",
        "KEYS",
        "ROWS",
        "MAX ROWS/KEY",
        "ENTRIES",
    ])];
    for f in list {
        let n = |s: beldi_runtime::inspect::InstanceState| {
            f.instances.get(&s).copied().unwrap_or(0).to_string()
        };
        use beldi_runtime::inspect::InstanceState as S;
        rows.push(vec![
            f.function.clone(),
            n(S::Running),
            n(S::Done),
            n(S::Failed),
            n(S::Died),
            f.log_items.to_string(),
        ]);
        for t in &f.tables {
            chains.push(vec![
                f.function.clone(),
                t.table.clone(),
                t.keys.to_string(),
                t.rows.to_string(),
                t.max_rows_per_key.to_string(),
                t.entries.to_string(),
            ]);
        }
    }
    format!("{}\n{}", table(&rows), table(&chains))
}

pub(crate) fn rerun(r: &Rerun) -> String {
    format!("{}\n", super::rerun_line(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_unit_that_fits() {
        assert_eq!(age(-5), "0ms");
        assert_eq!(age(850), "850ms");
        assert_eq!(age(12_500), "12.5s");
        assert_eq!(age(250_000), "4m10s");
        assert_eq!(age(3 * 3_600_000 + 120_000), "3h02m");
        assert_eq!(age(2 * 86_400_000 + 5 * 3_600_000), "2d05h");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&[strings(&["A", "BB"]), strings(&["ccc", "d"])]);
        assert_eq!(t, "A    BB\nccc  d\n");
    }
}
