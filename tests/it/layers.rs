//! The layering ARCHITECTURE.md describes, held by tests rather than by review:
//! the core package names no runtime, driver, AWS, HTTP or CLI crate; only
//! `src/cli.rs` knows clap; no import cycle between the app's top-level modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without its test module (`#[cfg(test)]` to the end, the
/// convention here) and without `//` comments: what the shipped binary compiles.
fn shipped_code(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |cut| &text[..cut]);
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_core_package_names_no_runtime_driver_aws_http_or_cli_crate() {
    let manifest =
        std::fs::read_to_string(root().join("core/Cargo.toml")).expect("core/Cargo.toml");
    let deps = dependency_names(&manifest, "dependencies");
    assert!(
        deps.contains("serde"),
        "the parser found no dependency at all: {deps:?}"
    );
    let forbidden = |name: &str| {
        [
            "tokio", "sqlx", "postgres", "aws-", "reqwest", "hyper", "clap", "rustls", "tracing",
        ]
        .iter()
        .any(|f| name.starts_with(f) || name.contains(&format!("-{f}")))
    };
    let bad: Vec<&String> = deps.iter().filter(|d| forbidden(d)).collect();
    assert!(
        bad.is_empty(),
        "core/Cargo.toml depends on {bad:?}: the core does no IO"
    );
}

/// The crate names of one `[section]` of a Cargo manifest.
fn dependency_names(manifest: &str, section: &str) -> BTreeSet<String> {
    let header = format!("[{section}]");
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == header;
            continue;
        }
        if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn dependency_names_reads_only_its_section() {
    let toml = "[package]\nname = \"x\"\n[dependencies]\ntokio = \"1\"\n# c = 1\n[dev-dependencies]\nclap = \"4\"\n";
    let names = dependency_names(toml, "dependencies");
    assert_eq!(names, BTreeSet::from(["tokio".to_string()]));
}

#[test]
fn only_the_cli_module_knows_clap() {
    let marks = ["clap::", "ValueEnum", "#[arg(", "#[command(", "use clap"];
    let mut offenders = Vec::new();
    for dir in ["src", "core/src"] {
        for path in rust_files(&root().join(dir)) {
            if path.ends_with("src/cli.rs") && !path.starts_with(root().join("core")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let code: String = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for mark in marks {
                if code.contains(mark) {
                    offenders.push(format!("{}: {mark}", path.display()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "clap outside src/cli.rs:\n{}",
        offenders.join("\n")
    );
}

/// `crate::NAME` paths and `use crate::{a, b::c}` groups: the top-level modules
/// a file's shipped code refers to.
fn referenced_modules(code: &str, tops: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find("};").unwrap_or(group.len());
            // Names at the group's top level: the first word of each item.
            let mut depth = 0;
            let mut word = String::new();
            let mut at_item_start = true;
            for c in group[..end].chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_item_start = true,
                    c if at_item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        word.push(c)
                    }
                    _ if !word.is_empty() => {
                        found.insert(std::mem::take(&mut word));
                        at_item_start = false;
                    }
                    _ => {}
                }
            }
            if !word.is_empty() {
                found.insert(word);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|n| tops.contains(n));
    found
}

/// A cycle in a directed graph, as the list of its nodes, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let top_of = |path: &Path| -> Option<String> {
        let rel = path.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?.to_string();
        let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        (name != "lib" && name != "main").then_some(name)
    };
    let files = rust_files(src);
    let tops: BTreeSet<String> = files.iter().filter_map(|p| top_of(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> =
        tops.iter().map(|t| (t.clone(), BTreeSet::new())).collect();
    for path in &files {
        let Some(top) = top_of(path) else { continue };
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let code = shipped_code(&std::fs::read_to_string(path).expect("read"));
        for used in referenced_modules(&code, &tops) {
            if used != top {
                edges.get_mut(&top).expect("top").insert(used);
            }
        }
    }
    edges
}

#[test]
fn no_import_cycle_between_the_top_level_modules() {
    let edges = module_graph(&root().join("src"));
    assert!(
        edges.len() >= 8 && edges.values().map(BTreeSet::len).sum::<usize>() >= 10,
        "the reader found too little to judge: {edges:?}"
    );
    assert!(
        edges["commands"].contains("engine") && edges["engine"].contains("db"),
        "known edges missing: {edges:?}"
    );
    if let Some(cycle) = find_cycle(&edges) {
        panic!(
            "import cycle between top-level modules of src/: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let tops: BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    let a = referenced_modules("use crate::{b::X, c};\nfn f() { crate::c::g() }", &tops);
    assert_eq!(a, BTreeSet::from(["b".to_string(), "c".to_string()]));
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), a);
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    edges.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
    edges.get_mut("c").unwrap().insert("a".to_string());
    let cycle = find_cycle(&edges).expect("a -> c -> a");
    assert!(cycle.contains(&"a".to_string()) && cycle.contains(&"c".to_string()));
}
