//! The `scribe` command with the standard actors and the test actors
//! registered: scenario tests run node processes of actors that fail on
//! purpose.

fn main() -> std::process::ExitCode {
    let mut registry = scribe_cli::settings::Registry::standard();
    registry.register::<scribe_tests::actors::Crasher>("test.crasher");
    registry.register::<scribe_tests::actors::Tally>("test.tally");
    scribe_cli::main(registry)
}
