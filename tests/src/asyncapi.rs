//! The official AsyncAPI parser (`@asyncapi/parser` with
//! `@asyncapi/avro-schema-parser`, run by Node), for tests that check what
//! `scribe asyncapi` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The directory holding `node_modules` with the parser
/// (`SCRIBE_ASYNCAPI_PARSER_DIR`, else `~/.cache/scribe/asyncapi`, where
/// `.ci/run` installs it), or `None` to skip; with
/// `SCRIBE_REQUIRE_ASYNCAPI=1` (CI sets it) a missing parser fails.
pub fn parser_dir() -> Option<PathBuf> {
    let dir = std::env::var("SCRIBE_ASYNCAPI_PARSER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/scribe/asyncapi")
        });
    let found = dir.join("node_modules/@asyncapi/parser").is_dir()
        && dir
            .join("node_modules/@asyncapi/avro-schema-parser")
            .is_dir();
    let required = std::env::var("SCRIBE_REQUIRE_ASYNCAPI").is_ok_and(|v| v == "1");
    assert!(
        found || !required,
        "SCRIBE_REQUIRE_ASYNCAPI=1 but {} has no @asyncapi/parser (.ci/run installs it)",
        dir.display()
    );
    found.then_some(dir)
}

/// Parses `document` with the parser in `parser` (see [`parser_dir`]);
/// panics unless it is accepted without an error or a warning. Returns
/// what the parser read (`tests/asyncapi/validate.mjs`'s summary).
pub fn parse(parser: &Path, document: &Path) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("asyncapi/validate.mjs");
    // The script runs from the parser's directory, where Node finds its
    // packages.
    let local = parser.join("validate.mjs");
    std::fs::copy(&script, &local).unwrap();
    let parsed = Command::new("node")
        .arg(&local)
        .arg(document)
        .current_dir(parser)
        .output()
        .expect("node runs");
    assert!(
        parsed.status.success(),
        "the parser refused the document: {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let read: Value = serde_json::from_slice(&parsed.stdout).unwrap();
    assert_eq!(read["version"], "3.0.0");
    assert_eq!(
        read["warnings"],
        serde_json::json!([]),
        "no warnings either"
    );
    read
}
