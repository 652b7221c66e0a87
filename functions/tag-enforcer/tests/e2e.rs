//! End to end: the real `tag-enforcer` binary serving the Lambda runtime API of `cargo lambda
//! watch`, invoked with the sample event from `events/`, acting on the emulator, then with a
//! sweep request.

use guardrail_tests::World;
use guardrail_tests::events::{ec2_tags, launch, launch_event};
use guardrail_tests::lambda::WatchedFunction;

#[tokio::test(flavor = "multi_thread")]
async fn tag_enforcer_binary_fixes_tags_records_the_event_and_alerts_once() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let tags = [("Name", "build-cache"), ("Environment", "prod")];
    let launched = launch(&member, &tags).await;
    let instance = launched.instance.clone();
    let event = launch_event(&account, &[&launched], &tags);

    let env = world.function_env();
    let function = tokio::task::block_in_place(|| WatchedFunction::start(env!("CARGO_BIN_EXE_tag-enforcer"), &env));

    let response = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response[0]["outcome"], "applied", "{response}");

    let found = ec2_tags(&member, &instance).await;
    assert_eq!(found.get("Environment").map(String::as_str), Some("dev"), "{found:?}");
    assert_eq!(
        found.get("Owner").map(String::as_str),
        Some(format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a").as_str())
    );
    let event_id = event["detail"]["eventID"].as_str().expect("eventID");
    let record = world
        .item(&format!("replay#tag-enforcer#cloudtrail#{event_id}"))
        .await
        .expect("replay record");
    assert_eq!(record["state"].as_s().ok().map(String::as_str), Some("Completed"));
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes.get("environment").map(String::as_str), Some("dev"));
    assert_eq!(alerts[0].body["function"], "tag-enforcer");

    // The duplicate delivery does nothing and sends nothing.
    let again = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again[0]["outcome"], "duplicate", "{again}");
    assert!(world.alerts().await.is_empty());

    // The function logged JSON lines with the structured fields, and no credentials.
    let logs = function.logs();
    let handled: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "event handled")
        .collect();
    assert_eq!(handled.len(), 2, "{logs}");
    assert_eq!(handled[0]["outcome"], "applied");
    assert_eq!(handled[0]["account"], account.as_str());
    assert!(
        !logs.contains("testing") && !logs.contains("SessionToken"),
        "credentials in the log: {logs}"
    );
    // And one embedded metric per event, counted by outcome.
    let counted: Vec<String> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Guardrail")
        .map(|l| {
            format!(
                "{}/{}",
                l["Outcome"].as_str().unwrap_or("?"),
                l["Reason"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(counted, ["applied/applied", "duplicate/duplicate"], "{logs}");

    // A sweep request to the same binary goes to its sweeper: the instance and its volume,
    // fixed above, are found in place, and the one summary says so.
    let summary = tokio::task::block_in_place(|| function.dry_run_sweep(&account));
    assert_eq!(
        summary,
        "swept 1 account(s) (dry run): 0 changed, 0 to review, 0 failed, 1 in place"
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (
            alerts[0].attributes.get("action").map(String::as_str),
            alerts[0].attributes.get("rule").map(String::as_str)
        ),
        (Some("swept"), Some("tags"))
    );
}
