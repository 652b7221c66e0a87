//! The `agent-quarantine` binary fails its init, loudly and specifically, on a bad configuration.

#[test]
fn init_fails_naming_what_to_fix() {
    guardrail_tests::lambda::assert_init_fails_loudly(env!("CARGO_BIN_EXE_agent-quarantine"));
}
