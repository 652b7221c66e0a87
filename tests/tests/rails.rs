//! Operator safety rails against the emulator. The kill switch: a pause written to the SSM
//! parameter turns the functions and the sweep into detect mode once a container's cached read
//! runs out (a second here, a minute deployed), each alert says so and why, and a resume lets
//! them act again.

use std::time::Duration;

use guardrail::aws::SsmSwitch;
use guardrail::pause::{active_value, paused_value};
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail::sweep::{INPUT_KEY, Request};
use guardrail_tests::events::{ec2_tags, mislabelled_launch};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::json;

const SWITCH: &str = "/guardrail/pause";

#[tokio::test]
async fn a_pause_turns_every_plan_into_detect_within_the_cache_period_and_a_resume_undoes_it() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let in_dev = world.emulator.config_as(&dev).await;
    let operator = SsmSwitch::new(&world.config, Some(SWITCH.into()));
    let mut p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    // A container that trusts its read for one second instead of a minute.
    p.switch = SsmSwitch::new(world.function_config(Function::TagEnforcer), Some(SWITCH.into()))
        .with_fresh(Duration::from_secs(1));

    // No parameter yet: Guardrail acts.
    let (instance, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(ec2_tags(&in_dev, &instance).await["Environment"], "dev");
    world.alerts().await;

    // Paused: once the container's read is older than its second, it only detects.
    let now = chrono::Utc::now();
    operator
        .set(&paused_value(
            "bad policy push INC-42",
            "arn:aws:iam::123456789012:role/break-glass-ops",
            now,
        ))
        .await
        .expect("pause");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (instance_2, event) = mislabelled_launch(&world, "dev").await;
    let mark = world.emulator.calls().len();
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "paused: {report:?}"
    );
    assert_eq!(
        world.emulator.writes_in(mark, &dev),
        Vec::<String>::new(),
        "nothing written"
    );
    assert_eq!(ec2_tags(&in_dev, &instance_2).await["Environment"], "prod");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    let notes = alerts[0].body["notes"].to_string();
    assert!(
        notes.contains("paused org-wide") && notes.contains("bad policy push INC-42"),
        "{notes}"
    );
    assert_eq!(alerts[0].attributes["action"], "detected");
    // A container started now sees the pause at once.
    let fresh = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let (_, event) = mislabelled_launch(&world, "dev").await;
    let report = fresh.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "{report:?}"
    );
    world.alerts().await;

    // A sweep while paused reports what it would change, changes nothing, and says why.
    let sweeper = world.sweeper(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let input = json!({ INPUT_KEY: {"name": "paused", "time": chrono::Utc::now().to_rfc3339(), "accounts": [dev]} });
    let mark = world.emulator.calls().len();
    let report = sweeper
        .handle(Request::from_input(&input).expect("a sweep"), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Swept { .. }]), "{report:?}");
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].body["notes"].to_string().contains("Guardrail was paused"),
        "{:?}",
        alerts[0].body
    );
    assert!(
        alerts[0].body["why"].to_string().contains("would change"),
        "{:?}",
        alerts[0].body
    );

    // Resumed: after the cached second, the container acts again.
    operator
        .set(&active_value(
            "arn:aws:iam::123456789012:role/break-glass-ops",
            chrono::Utc::now(),
        ))
        .await
        .expect("resume");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (instance_3, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Applied { .. }]),
        "resumed: {report:?}"
    );
    assert_eq!(ec2_tags(&in_dev, &instance_3).await["Environment"], "dev");
}
