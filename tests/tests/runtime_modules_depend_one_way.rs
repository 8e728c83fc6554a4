//! The runtime's modules import each other in one direction only (a
//! layered structure a newcomer can walk), except for the error type that
//! every module uses; and nothing outside the simulator names it, so the
//! simulator sits on top of the runtime rather than inside it.
//!
//! Read from the sources: a module depends on another when its code (not
//! its comments, nor its unit tests) names `crate::<other>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn runtime_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a source file without its comments and its unit tests.
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each top-level module of the runtime, and the top-level modules its
/// code names, with the file that names each.
fn dependencies() -> BTreeMap<String, BTreeMap<String, String>> {
    let root = runtime_src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under the root");
        let name = relative.to_string_lossy().replace('\\', "/");
        // Unit tests in files of their own are not the module's code.
        if name == "lib.rs" || name.ends_with("/tests.rs") {
            continue;
        }
        let module = name
            .split('/')
            .next()
            .expect("a path")
            .trim_end_matches(".rs")
            .to_owned();
        let code = code(&std::fs::read_to_string(&file).expect("readable source"));
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let other: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !other.is_empty() && other != module {
                uses.entry(other).or_insert_with(|| name.clone());
            }
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for uses in graph.values_mut() {
        uses.retain(|other, _| modules.contains(other));
    }
    graph
}

/// A path of imports from `from` back to itself, if there is one.
fn cycle_through(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    from: &str,
    skip: &str,
) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        for next in graph[last].keys().filter(|m| *m != skip) {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn the_runtime_modules_import_each_other_in_one_direction_except_for_the_error_type() {
    let graph = dependencies();
    println!(
        "modules={} imports={}",
        graph.len(),
        graph.values().map(BTreeMap::len).sum::<usize>()
    );
    assert!(graph.len() > 20, "the runtime's modules were found");
    let cycles: Vec<String> = graph
        .keys()
        .filter(|m| *m != "error")
        .filter_map(|m| cycle_through(&graph, m, "error"))
        .map(|cycle| {
            // Name the file behind each step.
            cycle
                .windows(2)
                .map(|step| format!("{} -> {} ({})", step[0], step[1], graph[&step[0]][&step[1]]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn nothing_in_the_runtime_names_the_simulator_but_the_simulator() {
    let graph = dependencies();
    let naming: Vec<String> = graph
        .iter()
        .filter(|(module, uses)| *module != "sim" && uses.contains_key("sim"))
        .map(|(module, uses)| format!("{module} ({})", uses["sim"]))
        .collect();
    assert!(
        naming.is_empty(),
        "modules naming the simulator: {naming:?}"
    );
}
