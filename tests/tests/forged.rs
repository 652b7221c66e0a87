//! Forged and replayed events (issue 7, item 5): a non-AWS source, an account outside the
//! organization, a timestamp beyond the freshness window and an exact replay after completion
//! are each turned away with their own reason, counted as metrics, and change nothing.

use chrono::{Duration, SecondsFormat, Utc};
use guardrail::metrics;
use guardrail::pipeline::{Outcome, Report};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{launch, launch_event};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::{Value, json};

/// The metric reason each report counted.
fn counted(report: &Report) -> Vec<String> {
    metrics::embedded(report, Utc::now())
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["Outcome"].as_str().unwrap_or("?"),
                m["Reason"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn with_id(mut event: Value) -> Value {
    let id = guardrail_tests::events::event_id();
    event["id"] = json!(id);
    event["detail"]["eventID"] = json!(id);
    event
}

#[tokio::test]
async fn forged_stale_and_replayed_events_are_turned_away_each_for_its_own_reason() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let tags = [("Environment", "prod")];
    let launched = launch(&member, &tags).await;
    let genuine = launch_event(&account, &[&launched], &tags);

    let report = p.handle(genuine.clone(), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let mark = world.emulator.calls().len();

    let mut custom = with_id(genuine.clone());
    custom["source"] = json!("my.app");
    let mut outsider = with_id(genuine.clone());
    outsider["account"] = json!("999999999999");
    outsider["detail"]["recipientAccountId"] = json!("999999999999");
    let mut stale = with_id(genuine.clone());
    let old = (Utc::now() - Duration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    stale["time"] = json!(old);
    stale["detail"]["eventTime"] = json!(old);
    let replay = genuine;

    let mut reasons = Vec::new();
    for event in [custom, outsider, stale, replay] {
        let report = p.handle(event, &invocation()).await;
        assert!(report.error.is_none(), "{report:?}");
        reasons.extend(counted(&report));
    }
    assert_eq!(
        reasons,
        [
            "rejected/untrusted-source",
            "rejected/not-in-organization",
            "rejected/stale",
            "duplicate/duplicate"
        ]
    );
    let writes: Vec<String> = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.starts_with("ec2.") || c.starts_with("sns.") || c.starts_with("dynamodb.PutItem"))
        .filter(|c| !c.starts_with("ec2.Describe"))
        .collect();
    assert_eq!(writes, Vec::<String>::new(), "turned-away events wrote");
    assert_eq!(world.alerts().await.len(), 1, "the genuine event's alert only");
}
