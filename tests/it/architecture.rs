//! The house's layers, checked from the source: top-level modules of `src/` import each
//! other one way only, renderers import nothing above the report seam, and only `main.rs`
//! ends the process. A text scan (like `duplicates`), not a compiler plugin: it reads
//! `crate::NAME` paths, which is how every module here names another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module name → the top-level modules its code (tests excluded) names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let top = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if top == "main" || top == "lib" {
            continue;
        }
        if rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        // Comments (doc links among them) name modules without depending on them.
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        let entry = edges.entry(top.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::cancelled()` and friends are lib.rs items, not modules.
            let is_module = src.join(format!("{name}.rs")).is_file() || src.join(&name).is_dir();
            if is_module && name != top {
                entry.insert(name);
            }
        }
    }
    edges
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The groups of modules that reach each other (strongly connected components with more
/// than one member): empty exactly when the graph has no cycle.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let reach = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|k| (k, reach(k))).collect();
    let mut groups = BTreeSet::new();
    for (a, from_a) in &reaches {
        let group: Vec<String> = from_a
            .iter()
            .filter(|b| reaches.get(b).is_some_and(|r| r.contains(*a)))
            .cloned()
            .collect();
        if group.len() > 1 {
            groups.insert(group.join(", "));
        }
    }
    groups.into_iter().collect()
}

#[test]
fn top_level_modules_import_each_other_one_way() {
    let edges = imports();
    let cycles = cycles(&edges);
    assert!(
        cycles.is_empty(),
        "modules that import each other, directly or through others (layers must point one way):\n  {}\nimports:\n{}",
        cycles.join("\n  "),
        edges
            .iter()
            .map(|(k, v)| format!("  {k} → {}", v.iter().cloned().collect::<Vec<_>>().join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Renderers format events and the data they carry; they never reach into the engine,
/// the database, the pipeline or the CLI (STYLE.md: render ─► report, nothing above it).
#[test]
fn renderers_and_the_report_seam_import_nothing_above_them() {
    let edges = imports();
    // Everything above the seam, by today's names (and the engine's old top-level
    // names, so a module moved back out of engine/ is caught too).
    let above = [
        "cli",
        "pipeline",
        "engine",
        "db",
        "environments",
        "ephemeral",
        "execute",
        "rollback",
        "drift",
        "migtest",
        "backup",
        "lint_run",
    ];
    for module in ["render", "report"] {
        let Some(uses) = edges.get(module) else {
            panic!("no src/{module}: the renderers and the report seam live there")
        };
        let bad: Vec<&String> = uses
            .iter()
            .filter(|u| above.contains(&u.as_str()))
            .collect();
        assert!(bad.is_empty(), "{module} imports {bad:?}");
    }
    // The report seam is definitions only: it imports no renderer.
    assert!(!edges["report"].contains("render"), "report imports render");
}

/// `exit()` ends the process without running `Drop` (the lock guard, a throwaway server):
/// only `main.rs` may decide the process is over.
#[test]
fn only_main_ends_the_process() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let offenders: Vec<String> = rust_files(&src)
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("process::exit(")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "process::exit outside main.rs: {offenders:?}"
    );
}

/// The checks themselves can fail: a two-way import is a cycle, a one-way chain is not.
#[test]
fn the_cycle_finder_finds_cycles() {
    let g = |pairs: &[(&str, &str)]| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            m.entry(a.to_string()).or_default().insert(b.to_string());
        }
        m
    };
    assert_eq!(cycles(&g(&[("a", "b"), ("b", "a")])), vec!["a, b"]);
    assert_eq!(
        cycles(&g(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        vec!["a, b, c"]
    );
    assert!(cycles(&g(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
}
