//! The runtime's subsystems (its folders) form layers: each imports only
//! from the layers below it, so a newcomer can read the house from the
//! ground up; inside them, no file imports itself through others; and
//! nothing outside the simulator names it, so the simulator sits on top of
//! the runtime rather than inside it. The error type is the one exception:
//! every subsystem uses it, and it names a few of their types.
//!
//! Read from the sources with a Rust parser (`scribe_tests::layers`): a
//! file depends on another when its code (not its comments, nor its unit
//! tests) names a path into it, `crate::Name` through the crate root's
//! re-exports included.

use std::collections::BTreeMap;
use std::path::Path;

use scribe_tests::layers::{self, Imports};

/// The runtime's subsystems from the bottom up, as ARCHITECTURE.md draws
/// them. A subsystem may import from those before it in this list; a new
/// folder must take its place here.
const LAYERS: &[&str] = &[
    "error",
    "wire",
    "kafka",
    "delivery",
    "ops",
    "state",
    "publisher",
    "actor",
    "ask",
    "topology",
    "handling",
    "feed",
    "supervisor",
    "node",
    "sim",
];

fn runtime() -> Imports {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    Imports::of(&layers::read_dir(&src))
}

/// Every import that goes up the layers (or to a subsystem not in the
/// list), as `from -> to (file names path)`.
fn upward(subsystems: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let rank = |s: &str| LAYERS.iter().position(|l| *l == s);
    let mut out = Vec::new();
    for (from, uses) in subsystems {
        for (to, why) in uses {
            let ok = match (rank(from), rank(to)) {
                // `error` names a few types of the subsystems that use it.
                _ if from == "error" => true,
                (Some(f), Some(t)) => t < f,
                _ => false,
            };
            if !ok {
                out.push(format!("{from} -> {to} ({why})"));
            }
        }
    }
    out
}

#[test]
fn the_runtime_subsystems_import_only_from_the_layers_below_them() {
    let imports = runtime();
    let subsystems = imports.subsystems();
    let chain = layers::longest_chain(&subsystems, "error");
    println!(
        "files={} imports={} subsystems={} longest chain of subsystems={} ({})",
        imports.files.len(),
        imports.files.values().map(BTreeMap::len).sum::<usize>(),
        subsystems.len(),
        chain.len(),
        chain.join(" -> ")
    );
    assert!(imports.files.len() > 40, "the runtime's files were found");
    let unknown: Vec<&String> = subsystems
        .keys()
        .filter(|s| !LAYERS.contains(&s.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "subsystems missing from LAYERS (and from ARCHITECTURE.md): {unknown:?}"
    );
    let upward = upward(&subsystems);
    assert!(upward.is_empty(), "imports up the layers: {upward:#?}");
}

#[test]
fn no_file_of_the_runtime_imports_itself_through_others_but_through_the_error_type() {
    let imports = runtime();
    let chain = layers::longest_chain(&imports.files, "error.rs");
    println!(
        "longest chain of files={} ({})",
        chain.len(),
        chain.join(" -> ")
    );
    let cycles = layers::cycles(&imports.files, "error.rs");
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn nothing_in_the_runtime_names_the_simulator_but_the_simulator() {
    let subsystems = runtime().subsystems();
    let naming: Vec<String> = subsystems
        .iter()
        .filter(|(module, uses)| *module != "sim" && uses.contains_key("sim"))
        .map(|(module, uses)| format!("{module} ({})", uses["sim"]))
        .collect();
    assert!(
        naming.is_empty(),
        "modules naming the simulator: {naming:?}"
    );
}

/// A crate of two subsystems, `low` below `high`, where `low` names a type
/// of `high` only through the crate root's re-export (`crate::Top`): the
/// cycle a reader of `crate::module` paths alone would miss.
fn crate_with_a_cycle_through_a_reexport() -> BTreeMap<String, String> {
    [
        (
            "lib.rs",
            "mod high;\nmod low;\npub use high::top::Top;\npub use low::Bottom;",
        ),
        ("high/mod.rs", "pub mod top;"),
        (
            "high/top.rs",
            "use crate::low::Bottom;\npub struct Top(Bottom);",
        ),
        (
            "low/mod.rs",
            "pub struct Bottom;\nimpl Bottom { pub fn up(&self) -> Option<crate::Top> { None } }",
        ),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_owned(), text.to_owned()))
    .collect()
}

#[test]
fn the_check_sees_an_import_written_through_a_crate_root_reexport() {
    let imports = Imports::of(&crate_with_a_cycle_through_a_reexport());
    assert_eq!(
        imports.files["low/mod.rs"].keys().collect::<Vec<_>>(),
        ["high/top.rs"],
        "crate::Top is high/top.rs's Top"
    );
    let subsystems = imports.subsystems();
    let cycles = layers::cycles(&subsystems, "error");
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(cycles[0].contains("low -> high"), "{cycles:?}");
    let files = layers::cycles(&imports.files, "error.rs");
    assert_eq!(files.len(), 1, "{files:?}");
}
