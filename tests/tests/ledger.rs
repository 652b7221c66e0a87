//! The audit ledger against the emulator: one entry per resource of each action, with the
//! values before and after, the event and its principal; a replayed event adds nothing; a
//! paused plan is recorded as planned and held; the three ways of reading it agree.

use chrono::{Duration, Utc};
use guardrail::aws::SsmSwitch;
use guardrail::ledger::{Entry, Outcome, Query};
use guardrail::pause::paused_value;
use guardrail::pipeline::Outcome as Handled;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::mislabelled_launch;
use guardrail_tests::{World, invocation, outcomes};

fn of(entries: &[Entry], resource: &str) -> Vec<Entry> {
    entries.iter().filter(|e| e.resource == resource).cloned().collect()
}

#[tokio::test]
async fn each_action_is_recorded_once_with_before_and_after_and_a_replay_adds_nothing() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));

    let (instance, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event.clone(), &invocation()).await;
    let Handled::Applied { actions } = &outcomes(&report)[0] else {
        panic!("{report:?}");
    };
    let by_account = Query {
        account: Some(dev.clone()),
        ..Query::default()
    };
    let entries = world.ledger(&by_account).await;
    let mine = of(&entries, &instance);
    assert!(!mine.is_empty(), "{entries:#?}");
    assert!(mine.iter().all(|e| e.outcome == Outcome::Applied), "{mine:#?}");
    let relabel = mine
        .iter()
        .find(|e| e.after.contains_key("Environment"))
        .unwrap_or_else(|| panic!("the relabelling of {instance}: {mine:#?}"));
    assert_eq!(relabel.before["Environment"].as_deref(), Some("prod"));
    assert_eq!(relabel.after["Environment"].as_deref(), Some("dev"));
    assert_eq!((relabel.rule.as_str(), relabel.mode.as_str()), ("tags", "fix"));
    let event_id = event["detail"]["eventID"].as_str().expect("id");
    assert_eq!(relabel.event, format!("cloudtrail#{event_id}"));
    // The principal as the alert names it: its type, then its ARN.
    let caller = event["detail"]["userIdentity"]["arn"].as_str().expect("caller");
    assert!(relabel.cause.ends_with(caller), "{} is not {caller}", relabel.cause);
    // One entry per resource of each action the event reported as applied, no more.
    let per_action: usize = actions.len();
    assert!(entries.len() >= per_action, "{entries:#?}");
    let mut keys: Vec<(String, String)> = entries.iter().map(|e| (e.resource.clone(), e.action.clone())).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), entries.len(), "no entry twice: {entries:#?}");

    // The same event again: a duplicate, and the ledger is unchanged.
    let replay = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&replay)[..], [Handled::Duplicate { .. }]),
        "{replay:?}"
    );
    assert_eq!(world.ledger(&by_account).await, entries);

    // By resource and by day, the same entries.
    let by_resource = world
        .ledger(&Query {
            resource: Some(instance.clone()),
            ..Query::default()
        })
        .await;
    assert_eq!(by_resource, mine);
    let by_day = world
        .ledger(&Query {
            since: Some(Utc::now() - Duration::hours(1)),
            ..Query::default()
        })
        .await;
    assert_eq!(by_day.len(), entries.len());
    let later = world
        .ledger(&Query {
            account: Some(dev.clone()),
            since: Some(Utc::now() + Duration::hours(1)),
            ..Query::default()
        })
        .await;
    assert!(later.is_empty(), "{later:#?}");
}

#[tokio::test]
async fn a_paused_plan_is_recorded_as_planned_and_held() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    SsmSwitch::new(&world.config, Some("/guardrail/pause".into()))
        .set(&paused_value(
            "INC-7",
            "arn:aws:iam::123456789012:role/break-glass-ops",
            Utc::now(),
        ))
        .await
        .expect("pause");
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let (instance, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Handled::Detected { .. }]),
        "{report:?}"
    );
    let entries = world
        .ledger(&Query {
            account: Some(dev),
            ..Query::default()
        })
        .await;
    let held = of(&entries, &instance);
    assert!(!held.is_empty(), "{entries:#?}");
    for e in &held {
        assert_eq!(e.outcome, Outcome::Paused, "{e:#?}");
        assert!(e.detail.contains("INC-7"), "the pause's reason: {e:#?}");
        assert_eq!(e.mode, "detect");
    }
    assert!(
        held.iter()
            .any(|e| e.after.get("Environment").is_some_and(|v| v.as_deref() == Some("dev"))),
        "what it would have done: {held:#?}"
    );
}
