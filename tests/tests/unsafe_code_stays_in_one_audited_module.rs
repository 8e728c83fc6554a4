//! `unsafe` code lives in one audited module: reading a consumed record's
//! header keys from librdkafka, which rust-rdkafka's accessors panic on
//! when they are not UTF-8 (`runtime/src/wire/headers/raw.rs`). The
//! workspace denies `unsafe_code` everywhere; this test fails when another
//! file allows it or writes `unsafe`.

use std::path::{Path, PathBuf};

/// The only file that may allow `unsafe_code`.
const AUDITED: &str = "runtime/src/wire/headers/raw.rs";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_audited_module_allows_unsafe_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for crate_dir in ["runtime", "cli", "actors", "schemas", "examples", "tests"] {
        for dir in ["src", "tests", "benches"] {
            let dir = root.join(crate_dir).join(dir);
            if dir.is_dir() {
                rust_files(&dir, &mut files);
            }
        }
    }
    assert!(files.len() > 100, "the workspace's files were found");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let name = file
            .strip_prefix(&root)
            .expect("under the workspace")
            .to_string_lossy()
            .replace('\\', "/");
        if name == "tests/tests/unsafe_code_stays_in_one_audited_module.rs" {
            continue;
        }
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        let allows = code.iter().any(|l| l.contains("allow(unsafe_code)"));
        let writes = code.iter().any(|l| {
            l.contains("unsafe {") || l.contains("unsafe fn") || l.contains("unsafe impl")
        });
        if (allows || writes) && name != AUDITED {
            found.push(name);
        }
    }
    println!("files={} unsafe outside {AUDITED}: {found:?}", files.len());
    assert!(found.is_empty(), "unsafe code outside {AUDITED}: {found:?}");
    let audited = std::fs::read_to_string(root.join(AUDITED)).expect("the audited module");
    assert!(
        audited.contains("#![allow(unsafe_code)]"),
        "{AUDITED} is where unsafe code is allowed"
    );
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).expect("the workspace");
    assert!(
        workspace.contains("unsafe_code = \"deny\""),
        "the workspace denies unsafe code"
    );
}
