//! `scribe acls` derives, without touching Kafka, exactly the bindings a
//! deployment needs: per node, Write on what its actors own, Read on what
//! they read (a pattern by its literal prefix), their groups and, for
//! exactly-once actors, their transactional ids. It refuses a node whose
//! principal cannot be told, and a pattern no ACL can express.

use std::path::PathBuf;
use std::process::{Command, Output};

fn scribe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scribe"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("scribe runs")
}

/// A directory of node files for one test, removed when it ends.
struct Files(PathBuf);

impl Files {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("scribe-acls-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node file for `user` holding `actors`; nothing listens at its address.
fn node(name: &str, user: Option<&str>, actors: &str) -> String {
    let security = user.map_or(String::new(), |u| {
        format!(
            "[kafka.security]\nprotocol = \"sasl_plaintext\"\nsasl_mechanism = \"PLAIN\"\n\
             sasl_username = \"{u}\"\nsasl_password = \"pw\"\n"
        )
    });
    format!(
        "[node]\nname = \"{name}\"\n[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n{security}{actors}"
    )
}

const SAMPLER: &str = r#"
[[actors]]
name = "sampler"
kind = "host-sampler"
output = "metrics.host"
"#;

const RELAY: &str = r#"
[[actors]]
name = "copier"
kind = "relay.host-metrics"
output = "copies.host"
params = { pattern = 'metrics\.h.*' }
delivery = "exactly-once"
"#;

/// The command lines of `out` for `principal`, without the comments.
fn lines_of<'a>(out: &'a str, principal: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.contains(&format!("--allow-principal {principal} ")))
        .map(|l| l.split("   #").next().unwrap().trim())
        .collect()
}

#[test]
fn each_node_may_write_what_it_owns_and_read_what_it_reads() {
    let files = Files::new("derive");
    let sampler = files.write("sampler.toml", &node("edge", Some("edge-node"), SAMPLER));
    let relay = files.write("relay.toml", &node("hub", Some("hub-node"), RELAY));
    let out = scribe(&[
        "acls",
        sampler.to_str().unwrap(),
        relay.to_str().unwrap(),
        "--bootstrap",
        "kafka:9092",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = "kafka-acls.sh --bootstrap-server kafka:9092 --add --allow-principal";
    // A source actor reads nothing: no group, no dead letters.
    assert_eq!(
        lines_of(&text, "User:edge-node"),
        [format!(
            "{head} User:edge-node --operation Write --operation Create --operation Describe --topic metrics.host"
        )],
        "{text}"
    );
    let hub = lines_of(&text, "User:hub-node");
    let expected = [
        "--operation Write --operation Create --operation Describe --topic copies.host",
        "--operation Read --operation Write --operation Create --operation Describe --topic copies.host.dlq",
        "--operation Read --operation Describe --topic metrics.h --resource-pattern-type prefixed",
        "--operation Read --group copier",
        "--operation Read --group copier.dlq-replay",
        "--operation Write --operation Describe --transactional-id scribe.hub.copier",
        "--operation Write --operation Describe --transactional-id scribe.hub.copier.dlq-replay",
    ];
    let expected: Vec<String> = expected
        .iter()
        .map(|rest| format!("{head} User:hub-node {rest}"))
        .collect();
    assert_eq!(hub, expected, "{text}");
    assert!(
        text.contains("# "),
        "each node's lines say whose they are: {text}"
    );
}

#[test]
fn a_node_without_a_principal_or_with_a_pattern_acls_cannot_express_is_refused() {
    let files = Files::new("refuse");
    let anonymous = files.write("anonymous.toml", &node("anon", None, SAMPLER));
    let out = scribe(&["acls", anonymous.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("kafka.security.principal: missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("anonymous.toml"),
        "names the file: {stderr}"
    );

    let suffix = RELAY.replace(r"metrics\.h.*", r".*metrics\.host");
    let unanchored = files.write("suffix.toml", &node("hub", Some("hub-node"), &suffix));
    let out = scribe(&["acls", unanchored.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("actor `copier` reads pattern") && stderr.contains("no literal"),
        "{stderr}"
    );
}
