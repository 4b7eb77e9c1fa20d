//! The runtime's layering, checked: every module of `runtime/src` sits in one layer (the
//! table below, written out in the crate docs) and may use only modules of its own layer or
//! below; and no two modules use each other, directly or through others. Fails naming the
//! file and the import that breaks the order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first.
const LAYERS: &[&[&str]] = &[
    &["store", "embedded", "dynamodb", "counting", "faulty"],
    &["value", "error", "crash", "schema", "tables", "telemetry"],
    &["daal", "log", "deferred", "intent", "invoke", "format"],
    &["invocation"],
    &["engine"],
    &["logged", "txn", "baseline", "collector", "gc"],
    &["calls"],
    &["ctx"],
    &["remote"],
    &["platform"],
    &[
        "handle",
        "macro_support",
        "data",
        "inspect",
        "explorer",
        "lambda",
    ],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("runtime/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src` belongs to (`None`: the crate root).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (name != "lib").then_some(name)
}

/// The top-level modules a file's code (not its comments) names as `crate::<module>`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // module → imported module → a file that imports it
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        let shown = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .display()
            .to_string();
        let edges = graph.entry(module.clone()).or_default();
        for imported in imports(&text) {
            if imported != module {
                edges.entry(imported).or_insert_with(|| shown.clone());
            }
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: Vec<String> = graph()
        .keys()
        .filter(|m| layer_of(m).is_none())
        .cloned()
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules with no layer in tests/layering.rs (and the crate docs): {unplaced:?}"
    );
}

#[test]
fn no_module_imports_a_higher_layer() {
    let mut wrong = Vec::new();
    for (module, edges) in graph() {
        let Some(mine) = layer_of(&module) else {
            continue;
        };
        for (imported, file) in edges {
            match layer_of(&imported) {
                Some(theirs) if theirs > mine => wrong.push(format!(
                    "{file}: `{module}` (layer {mine}) imports `{imported}` (layer {theirs})"
                )),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer order:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_cycle_between_modules() {
    let graph = graph();
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for next in graph.get(m).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("a cycle between modules: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_check_sees_imports_and_skips_comments() {
    let found = imports(
        "use crate::daal::Daal; // see crate::platform\n/// [`crate::ctx`]\nlet x = crate::txn::f();",
    );
    assert_eq!(found, BTreeSet::from(["daal".to_owned(), "txn".to_owned()]));
}
