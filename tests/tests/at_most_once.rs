//! At most once under concurrency (issue 7, item 1): 200 distinct events, each delivered 10
//! times at once, through one pipeline against the emulator. Every event's actions happen once,
//! one alert each, and no replay record is left in progress.

use std::collections::BTreeMap;
use std::sync::Arc;

use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{launch, launch_event};
use guardrail_tests::{World, invocation, outcomes};
use tokio::sync::Semaphore;

const EVENTS: usize = 200;
const DELIVERIES: usize = 10;
/// Deliveries in flight at once: one event's ten copies racing each other.
const IN_FLIGHT: usize = 10;

/// The tag writes the tag enforcer made so far.
fn tag_writes(world: &World) -> usize {
    world
        .emulator
        .call_lines()
        .iter()
        .filter(|l| l.starts_with("ec2.CreateTags ") && l.contains(":assumed-role/guardrail-tag-enforcer/"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_event_delivered_ten_times_at_once_acts_once_and_alerts_once() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let pipeline = Arc::new(world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy")));
    let tags = [("Environment", "prod")];

    // One event alone first: how many tag writes one launch takes.
    let alone = launch(&member, &tags).await;
    let before = tag_writes(&world);
    let report = pipeline
        .handle(launch_event(&account, &[&alone], &tags), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let per_event = tag_writes(&world) - before;
    assert!(per_event >= 1);
    assert_eq!(world.alerts().await.len(), 1);

    let mut events = Vec::new();
    for _ in 0..EVENTS {
        let launched = launch(&member, &tags).await;
        events.push(launch_event(&account, &[&launched], &tags));
    }
    let before = tag_writes(&world);
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    for (n, event) in events.iter().enumerate() {
        for _ in 0..DELIVERIES {
            let (pipeline, gate, event) = (pipeline.clone(), gate.clone(), event.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire_owned().await.expect("semaphore");
                let report = pipeline.handle(event, &invocation()).await;
                (n, report)
            }));
        }
    }
    let mut by_event: BTreeMap<usize, Vec<&'static str>> = BTreeMap::new();
    for task in tasks {
        let (n, report) = task.await.expect("delivery task");
        for outcome in outcomes(&report) {
            by_event.entry(n).or_default().push(outcome.name());
        }
    }

    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, names) in &by_event {
        assert_eq!(names.len(), DELIVERIES);
        assert_eq!(
            names.iter().filter(|o| **o == "applied").count(),
            1,
            "event {n}: {names:?}"
        );
        assert!(
            names
                .iter()
                .all(|o| ["applied", "duplicate", "in-progress"].contains(o)),
            "event {n}: {names:?}"
        );
        for name in names {
            *totals.entry(name).or_default() += 1;
        }
    }
    assert_eq!(by_event.len(), EVENTS);
    assert_eq!(tag_writes(&world) - before, EVENTS * per_event, "tag writes");
    assert_eq!(world.alerts().await.len(), EVENTS, "one alert per event");
    for event in &events {
        let id = event["detail"]["eventID"].as_str().expect("eventID");
        let item = world
            .item(&format!("replay#tag-enforcer#cloudtrail#{id}"))
            .await
            .expect("replay record");
        assert_eq!(
            item.get("state").and_then(|s| s.as_s().ok()).map(String::as_str),
            Some("Completed")
        );
    }
    println!(
        "figure: at most once: {EVENTS} events x {DELIVERIES} deliveries: {totals:?}, {per_event} tag write(s) per event"
    );
}
