//! Which module of a crate imports which, read from its sources with a
//! Rust parser: what the layering test of the runtime checks.
//!
//! A module depends on another when its code (not its comments, nor items
//! under `#[cfg(test)]`) names a path into it: `crate::a::b::Name`,
//! `super::x`, `self::y`, a `use` of any of these, or such a path inside a
//! macro's tokens. A path is followed to the file that *defines* what it
//! names, through every re-export on the way (`pub use` in `lib.rs` or in
//! a folder's `mod.rs`), so `crate::Name` counts as an import of the file
//! where `Name` is defined, not of `lib.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use syn::visit::Visit;

/// Files that only re-export what other files define, for users: a path
/// through them is followed to where it leads, and they are no module of
/// the graph themselves.
pub const FACADES: &[&str] = &["lib.rs", "prelude.rs"];

/// A crate's modules and the imports between them, one node per file.
#[derive(Debug, Default)]
pub struct Imports {
    /// Each file (relative to the source root, `/`-separated), and the
    /// files it imports from, each with the path that names it first.
    pub files: BTreeMap<String, BTreeMap<String, String>>,
}

/// What a name in a module stands for.
#[derive(Debug, Clone)]
enum Target {
    /// An item defined in this module's file.
    Defined,
    /// A child module.
    Module(Vec<String>),
    /// A re-export of this absolute path.
    Use(Vec<String>),
}

#[derive(Debug, Default)]
struct Module {
    file: String,
    names: HashMap<String, Target>,
    /// Absolute paths of `use x::*` globs.
    globs: Vec<Vec<String>>,
}

/// Reads every `.rs` file under `root` (a crate's `src`).
pub fn read_dir(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("readable source");
                out.insert(name, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The module path of a file: `lib.rs` is the root, `a/mod.rs` and `a.rs`
/// are `a`, `a/b.rs` is `a::b`.
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.split('/').map(str::to_owned).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "lib" && stem != "mod" && stem != "main" {
        parts.push(stem.to_owned());
    }
    parts
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.parse_args::<syn::Meta>()
                .is_ok_and(|m| matches!(&m, syn::Meta::Path(p) if p.is_ident("test")))
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(i) => &i.attrs,
        syn::Item::Enum(i) => &i.attrs,
        syn::Item::ExternCrate(i) => &i.attrs,
        syn::Item::Fn(i) => &i.attrs,
        syn::Item::ForeignMod(i) => &i.attrs,
        syn::Item::Impl(i) => &i.attrs,
        syn::Item::Macro(i) => &i.attrs,
        syn::Item::Mod(i) => &i.attrs,
        syn::Item::Static(i) => &i.attrs,
        syn::Item::Struct(i) => &i.attrs,
        syn::Item::Trait(i) => &i.attrs,
        syn::Item::TraitAlias(i) => &i.attrs,
        syn::Item::Type(i) => &i.attrs,
        syn::Item::Union(i) => &i.attrs,
        syn::Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// Makes `path`, written in module `at`, absolute (starting at the crate
/// root), if it names something of this crate.
fn absolute(at: &[String], path: &[String], local: impl Fn(&str) -> bool) -> Option<Vec<String>> {
    let first = path.first()?;
    let mut out: Vec<String>;
    let mut rest = path;
    match first.as_str() {
        "crate" | "$crate" => {
            out = Vec::new();
            rest = &path[1..];
        }
        "self" => {
            out = at.to_vec();
            rest = &path[1..];
        }
        "super" => {
            out = at.to_vec();
            while rest.first().is_some_and(|s| s == "super") {
                out.pop()?;
                rest = &rest[1..];
            }
        }
        name if local(name) => out = at.to_vec(),
        _ => return None,
    }
    out.extend(rest.iter().cloned());
    Some(out)
}

/// Every name a `use` tree brings in, with the path it names.
fn flatten(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Option<String>, Vec<String>)>,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            if name != "self" {
                path.push(name.clone());
            }
            let bound = if name == "self" {
                prefix.last().cloned()
            } else {
                Some(name)
            };
            out.push((bound, path));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((Some(r.rename.to_string()), path));
        }
        syn::UseTree::Glob(_) => out.push((None, prefix.clone())),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                flatten(tree, prefix, out);
            }
        }
    }
}

/// The crate's module tree: every module (inline ones included) and what
/// each of its names stands for.
#[derive(Debug, Default)]
struct Tree {
    modules: BTreeMap<Vec<String>, Module>,
    /// Where each macro is defined, by name.
    macro_files: BTreeMap<String, String>,
}

impl Tree {
    fn declare(&mut self, file: &str, at: &[String], items: &[syn::Item]) {
        let module = self.modules.entry(at.to_vec()).or_default();
        module.file = file.to_owned();
        let mut uses = Vec::new();
        for item in items.iter().filter(|i| !is_cfg_test(item_attrs(i))) {
            let name = match item {
                syn::Item::Mod(m) => {
                    let mut child = at.to_vec();
                    child.push(m.ident.to_string());
                    self.modules
                        .entry(at.to_vec())
                        .or_default()
                        .names
                        .insert(m.ident.to_string(), Target::Module(child.clone()));
                    if let Some((_, items)) = &m.content {
                        self.declare(file, &child, items);
                    }
                    continue;
                }
                syn::Item::Use(u) => {
                    flatten(&u.tree, &mut Vec::new(), &mut uses);
                    continue;
                }
                syn::Item::Macro(m) => {
                    // `#[macro_export]` puts a macro at the crate root.
                    if let Some(ident) = &m.ident {
                        let exported = m.attrs.iter().any(|a| a.path().is_ident("macro_export"));
                        let home = if exported { Vec::new() } else { at.to_vec() };
                        let module = self.modules.entry(home).or_default();
                        module.names.insert(ident.to_string(), Target::Defined);
                        if exported && module.file.is_empty() {
                            module.file = "lib.rs".into();
                        }
                        self.macro_files.insert(ident.to_string(), file.to_owned());
                    }
                    continue;
                }
                syn::Item::Const(i) => i.ident.to_string(),
                syn::Item::Enum(i) => i.ident.to_string(),
                syn::Item::Fn(i) => i.sig.ident.to_string(),
                syn::Item::Static(i) => i.ident.to_string(),
                syn::Item::Struct(i) => i.ident.to_string(),
                syn::Item::Trait(i) => i.ident.to_string(),
                syn::Item::TraitAlias(i) => i.ident.to_string(),
                syn::Item::Type(i) => i.ident.to_string(),
                syn::Item::Union(i) => i.ident.to_string(),
                _ => continue,
            };
            self.modules
                .entry(at.to_vec())
                .or_default()
                .names
                .insert(name, Target::Defined);
        }
        // Uses last: a `use` may name a sibling declared after it.
        for (bound, path) in uses {
            let module = &self.modules[at];
            let local = |first: &str| module.names.contains_key(first);
            let Some(path) = absolute(at, &path, local) else {
                continue;
            };
            let module = self.modules.get_mut(at).expect("declared above");
            match bound {
                Some(name) => {
                    module.names.entry(name).or_insert(Target::Use(path));
                }
                None => module.globs.push(path),
            }
        }
    }

    /// The file that defines what absolute `path` names.
    fn resolve(&self, path: &[String], depth: usize) -> Option<String> {
        if depth > 16 {
            return None;
        }
        let mut at: Vec<String> = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let module = self.modules.get(&at)?;
            match module.names.get(segment) {
                Some(Target::Module(child)) => at = child.clone(),
                Some(Target::Defined) => {
                    if at.is_empty()
                        && let Some(file) = self.macro_files.get(segment)
                    {
                        return Some(file.clone());
                    }
                    return Some(module.file.clone());
                }
                Some(Target::Use(target)) => {
                    let mut whole = target.clone();
                    whole.extend(path[i + 1..].iter().cloned());
                    return self.resolve(&whole, depth + 1);
                }
                None => {
                    return module.globs.iter().find_map(|glob| {
                        let mut whole = glob.clone();
                        whole.extend(path[i..].iter().cloned());
                        self.resolve(&whole, depth + 1)
                    });
                }
            }
        }
        self.modules.get(&at).map(|m| m.file.clone())
    }
}

/// Collects the paths one file's code names, with the module each is
/// written in.
struct Paths<'a> {
    at: Vec<String>,
    tree: &'a Tree,
    found: Vec<Vec<String>>,
}

impl Paths<'_> {
    fn local(&self, first: &str) -> bool {
        self.tree
            .modules
            .get(&self.at)
            .is_some_and(|m| matches!(m.names.get(first), Some(Target::Module(_))))
    }

    fn push(&mut self, path: Vec<String>) {
        let local = |first: &str| self.local(first);
        if let Some(path) = absolute(&self.at, &path, local) {
            self.found.push(path);
        }
    }

    /// Paths written inside a macro's tokens: `crate :: a :: b`.
    fn tokens(&mut self, tokens: proc_macro2::TokenStream) {
        let mut words: Vec<String> = Vec::new();
        let mut colons = 0;
        let flush = |words: &mut Vec<String>, this: &mut Self| {
            if words.len() > 1 {
                this.push(std::mem::take(words));
            }
            words.clear();
        };
        for token in tokens {
            match token {
                proc_macro2::TokenTree::Ident(ident) => {
                    let word = ident.to_string();
                    if colons == 2 && !words.is_empty() {
                        words.push(word);
                    } else {
                        flush(&mut words, self);
                        if word == "crate" || word == "super" || word == "self" {
                            words.push(word);
                        }
                    }
                    colons = 0;
                }
                proc_macro2::TokenTree::Punct(p) if p.as_char() == ':' => colons += 1,
                proc_macro2::TokenTree::Punct(p) if p.as_char() == '$' => {
                    flush(&mut words, self);
                    colons = 0;
                }
                proc_macro2::TokenTree::Group(group) => {
                    flush(&mut words, self);
                    colons = 0;
                    self.tokens(group.stream());
                }
                _ => {
                    flush(&mut words, self);
                    colons = 0;
                }
            }
        }
        flush(&mut words, self);
    }
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if is_cfg_test(item_attrs(item)) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        self.at.push(m.ident.to_string());
        syn::visit::visit_item_mod(self, m);
        self.at.pop();
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        let mut uses = Vec::new();
        flatten(&u.tree, &mut Vec::new(), &mut uses);
        for (_, path) in uses {
            self.push(path);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let words: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.push(words);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {
        // Doc comments and attributes are not code.
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(super)` names who may see an item, not what it uses.
    }
}

impl Tree {
    fn new(sources: &BTreeMap<String, syn::File>) -> Self {
        let mut tree = Tree::default();
        for (file, parsed) in sources {
            tree.declare(file, &module_path(file), &parsed.items);
        }
        tree
    }
}

impl Imports {
    /// The imports between the files of a crate, from its sources (file
    /// name relative to `src`, text). Files under `#[cfg(test)] mod x;`
    /// declarations and files named `tests.rs` are left out.
    pub fn of(sources: &BTreeMap<String, String>) -> Self {
        let parsed: BTreeMap<String, syn::File> = sources
            .iter()
            .filter(|(name, _)| !name.ends_with("tests.rs") && *name != "tests.rs")
            .map(|(name, text)| {
                let file =
                    syn::parse_file(text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
                (name.clone(), file)
            })
            .collect();
        let tree = Tree::new(&parsed);
        let mut imports = Imports::default();
        for (file, syntax) in &parsed {
            let mut paths = Paths {
                at: module_path(file),
                tree: &tree,
                found: Vec::new(),
            };
            paths.visit_file(syntax);
            let uses = imports.files.entry(file.clone()).or_default();
            for path in paths.found {
                if let Some(target) = tree.resolve(&path, 0)
                    && target != *file
                    && !FACADES.contains(&target.as_str())
                    && parsed.contains_key(&target)
                {
                    uses.entry(target).or_insert_with(|| path.join("::"));
                }
            }
        }
        for facade in FACADES {
            imports.files.remove(*facade);
        }
        imports
    }

    /// The same imports between the top-level modules (a folder, or a
    /// file at the root): `subsystem -> subsystem -> file that imports`.
    pub fn subsystems(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (file, uses) in &self.files {
            let from = subsystem(file);
            let entry = out.entry(from.clone()).or_default();
            for (target, path) in uses {
                let to = subsystem(target);
                if to != from {
                    entry
                        .entry(to)
                        .or_insert_with(|| format!("{file} names {path}"));
                }
            }
        }
        out
    }
}

/// The top-level module a file belongs to: its folder, or its own name
/// for a file at the root.
pub fn subsystem(file: &str) -> String {
    file.split('/')
        .next()
        .expect("a path")
        .trim_end_matches(".rs")
        .to_owned()
}

/// The cycles of a graph once `skip` is taken out of it: each strongly
/// connected set of two or more nodes, as one cycle through it written
/// `a -> b (why) -> ... -> a`.
pub fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>, skip: &str) -> Vec<String> {
    let nodes: Vec<&String> = graph.keys().filter(|n| *n != skip).collect();
    let edges = |n: &str| -> Vec<&String> {
        graph
            .get(n)
            .map(|m| {
                m.keys()
                    .filter(|t| *t != skip && graph.contains_key(*t))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for start in nodes {
        if reported.contains(start) {
            continue;
        }
        // A shortest way back to `start`, breadth first.
        let mut came: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut closing = None;
        while let Some(n) = queue.pop_front() {
            for next in edges(n) {
                if next == start {
                    closing = Some(n);
                    break;
                }
                if !came.contains_key(next.as_str()) {
                    came.insert(next, n);
                    queue.push_back(next);
                }
            }
            if closing.is_some() {
                break;
            }
        }
        let Some(mut last) = closing else { continue };
        let mut cycle = vec![start.as_str()];
        let mut back = vec![last];
        while last != start.as_str() {
            match came.get(last) {
                Some(prev) if *prev != start.as_str() => {
                    back.push(prev);
                    last = prev;
                }
                _ => break,
            }
        }
        back.reverse();
        cycle.extend(back);
        cycle.push(start);
        for n in &cycle {
            reported.insert((*n).to_owned());
        }
        out.push(
            cycle
                .windows(2)
                .map(|s| format!("{} -> {} ({})", s[0], s[1], graph[s[0]][s[1]]))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    out
}

/// The longest chain of imports in an acyclic graph (with `skip` taken
/// out), from the importer down.
pub fn longest_chain(
    graph: &BTreeMap<String, BTreeMap<String, String>>,
    skip: &str,
) -> Vec<String> {
    fn down<'a>(
        n: &'a str,
        graph: &'a BTreeMap<String, BTreeMap<String, String>>,
        skip: &str,
        memo: &mut BTreeMap<&'a str, Vec<String>>,
        visiting: &mut BTreeSet<&'a str>,
    ) -> Vec<String> {
        if let Some(known) = memo.get(n) {
            return known.clone();
        }
        if !visiting.insert(n) {
            return Vec::new(); // a cycle: counted elsewhere
        }
        let mut best = Vec::new();
        if let Some(uses) = graph.get(n) {
            for next in uses.keys().filter(|t| *t != skip && graph.contains_key(*t)) {
                let chain = down(next, graph, skip, memo, visiting);
                if chain.len() > best.len() {
                    best = chain;
                }
            }
        }
        visiting.remove(n);
        let mut chain = vec![n.to_owned()];
        chain.extend(best);
        memo.insert(n, chain.clone());
        chain
    }
    let mut memo = BTreeMap::new();
    let mut best = Vec::new();
    for n in graph.keys().filter(|n| *n != skip) {
        let chain = down(n, graph, skip, &mut memo, &mut BTreeSet::new());
        if chain.len() > best.len() {
            best = chain;
        }
    }
    best
}
