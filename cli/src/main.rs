//! The `scribe` command with the standard actors registered.
//!
//! `cargo run -p scribe-cli --bin scribe -- --help`

fn main() -> std::process::ExitCode {
    scribe_cli::main(scribe_cli::settings::Registry::standard())
}
