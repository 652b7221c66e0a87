//! End to end: the real `agent-quarantine` binary serving the Lambda runtime API of `cargo lambda
//! watch`, invoked with the GuardDuty sample from `events/`, quarantining a role in the emulator.

use guardrail_tests::World;
use guardrail_tests::agents::{EXFILTRATION, agent_role, finding, role_snapshot};
use guardrail_tests::lambda::WatchedFunction;

#[tokio::test(flavor = "multi_thread")]
async fn agent_quarantine_binary_contains_the_role_records_it_and_alerts_once() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(&member, "agent-runner", "/agents/", &[("team", "ml")]).await;
    let event = finding(&account, "AssumedRole", "agent-runner", EXFILTRATION, 8.0);

    let env = world.function_env();
    let function = tokio::task::block_in_place(|| WatchedFunction::start(env!("CARGO_BIN_EXE_agent-quarantine"), &env));
    let response = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response[0]["outcome"], "applied", "{response}");

    let after = role_snapshot(&member, "agent-runner").await;
    assert!(
        after.inline_policies.contains(&"guardrail-quarantine".to_string()),
        "{after:?}"
    );
    assert!(after.tags.contains_key("guardrail:quarantine"), "{after:?}");
    assert!(
        world
            .item(&format!("quarantine#{account}#role#agent-runner"))
            .await
            .is_some()
    );
    let finding_id = event["detail"]["id"].as_str().expect("id");
    let updated = event["detail"]["updatedAt"]
        .as_str()
        .and_then(guardrail::event::time::parse)
        .expect("updatedAt");
    let replay = world
        .item(&format!(
            "replay#agent-quarantine#finding#{finding_id}#{}",
            updated.timestamp_millis()
        ))
        .await
        .expect("replay record");
    assert_eq!(replay["state"].as_s().ok().map(String::as_str), Some("Completed"));
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].body["function"], "agent-quarantine");
    assert_eq!(alerts[0].attributes.get("severity").map(String::as_str), Some("high"));

    let again = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again[0]["outcome"], "ignored", "{again}");
    assert!(world.alerts().await.is_empty(), "one alert per finding");
    let logs = function.logs();
    assert!(
        !logs.contains("testing") && !logs.contains("SessionToken") && !logs.contains("\"Effect\""),
        "credentials or policy documents in the log: {logs}"
    );
}
