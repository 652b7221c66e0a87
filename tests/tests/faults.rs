//! Faults (issue 7, item 2): the tag enforcer runs behind a proxy that throttles, fails (500,
//! 503), slows or drops 10% and then 30% of its requests, and each event is delivered as Lambda
//! would: up to three attempts, a minute apart. Every event must end applied exactly once, or
//! failed (its replay record `Failed`, so a redrive resumes it) with its failure alert; none lost,
//! none acted on twice. Alerts are at least once: a publish whose answer was lost is sent again
//! by the SDK, so duplicates are counted, not forbidden (they carry `event_id` to deduplicate).
//! The counts per rate are printed (`--nocapture`) for docs/RELIABILITY.md.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use guardrail::pipeline::{Invocation, MAX_ATTEMPTS};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{ec2_tags, event_id, launch, launch_event};
use guardrail_tests::faults::FaultProxy;
use guardrail_tests::{World, outcomes};

const EVENTS: usize = 30;

/// How one event ended.
#[derive(Debug, Default)]
struct Summary {
    applied: usize,
    dead_lettered: usize,
    attempts: usize,
    failure_alerts_lost: usize,
    duplicate_alerts: usize,
}

async fn run_at(rate: f64, seed: u64) -> (Summary, guardrail_tests::faults::Tally) {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let tags = [("Environment", "prod")];
    let mut events = Vec::new();
    for _ in 0..EVENTS {
        let launched = launch(&member, &tags).await;
        events.push((launched.instance.clone(), launch_event(&account, &[&launched], &tags)));
    }
    let proxy = FaultProxy::start(&world.emulator.endpoint, rate, seed).await;
    let through_proxy = world
        .function_config(Function::TagEnforcer)
        .to_builder()
        .endpoint_url(&proxy.endpoint)
        .build();
    let pipeline = guardrail::lambda::aws_pipeline(
        Function::TagEnforcer,
        world.guardrail_config(Policy::builtin().expect("policy")),
        &through_proxy,
    );

    let mut summary = Summary::default();
    let mut ended: BTreeMap<String, &'static str> = BTreeMap::new();
    let start = Utc::now();
    for (instance, event) in &events {
        let id = event["detail"]["eventID"].as_str().expect("eventID").to_string();
        let mut names = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            // Lambda retries a failed asynchronous invocation after about one and two minutes.
            let now = start + Duration::seconds(70 * i64::from(attempt));
            let invocation = Invocation {
                request_id: event_id(),
                now,
                deadline: now + Duration::seconds(60),
            };
            let report = pipeline.handle(event.clone(), &invocation).await;
            names.extend(outcomes(&report).iter().map(|o| o.name()));
            summary.attempts += 1;
            if report.error.is_none() {
                break;
            }
        }
        assert!(
            names.iter().filter(|n| **n == "applied").count() <= 1,
            "{id} acted twice: {names:?}"
        );
        let record = world.item(&format!("replay#tag-enforcer#cloudtrail#{id}")).await;
        let state = record
            .as_ref()
            .and_then(|r| r.get("state"))
            .and_then(|s| s.as_s().ok())
            .cloned()
            .unwrap_or_default();
        match names.last().copied() {
            // Applied, or applied by an attempt whose answer was lost and found done by the next.
            Some("applied" | "duplicate") => {
                assert_eq!(state, "Completed", "{id}: {names:?}");
                let found = ec2_tags(&member, instance).await;
                assert_eq!(found.get("Environment").map(String::as_str), Some("dev"), "{id}");
                summary.applied += 1;
                ended.insert(id, "applied");
            }
            Some("failed") => {
                assert_eq!(state, "Failed", "{id} must be resumable: {names:?}");
                summary.dead_lettered += 1;
                ended.insert(id, "failed");
            }
            other => panic!("{id} ended {other:?} after {names:?}: lost"),
        }
    }

    // Alerts, read directly from the emulator: one per event, the failure alert for failed ones.
    let mut alerts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in world.alerts().await {
        let id = alert.body["event_id"].as_str().unwrap_or_default().to_string();
        alerts
            .entry(id)
            .or_default()
            .push(alert.body["action"].as_str().unwrap_or_default().to_string());
    }
    for (id, how) in &ended {
        let got = alerts.get(id).cloned().unwrap_or_default();
        match *how {
            "applied" => {
                assert!(
                    got.iter().any(|a| a == "tagged"),
                    "{id}: no alert for the applied event: {got:?}"
                );
                summary.duplicate_alerts += got.iter().filter(|a| *a == "tagged").count() - 1;
            }
            _ => {
                if !got.iter().any(|a| a == "failed") {
                    summary.failure_alerts_lost += 1;
                }
            }
        }
    }
    (summary, proxy.tally())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_injected_faults_every_event_is_applied_once_or_failed_resumably() {
    for (rate, seed) in [(0.10, 7), (0.30, 11)] {
        let (summary, tally) = run_at(rate, seed).await;
        println!(
            "figure: fault rate {:.0}%: {EVENTS} events, {} attempts, {} applied once, {} failed (resumable), {} failure alerts lost, {} duplicate alerts; proxy: {} requests, faults {:?}",
            rate * 100.0,
            summary.attempts,
            summary.applied,
            summary.dead_lettered,
            summary.failure_alerts_lost,
            summary.duplicate_alerts,
            tally.requests,
            tally.faults
        );
        assert_eq!(summary.applied + summary.dead_lettered, EVENTS);
        assert!(tally.faults.values().sum::<usize>() > 0, "the proxy injected nothing");
        assert!(summary.applied > 0, "nothing got through at {rate}");
    }
}
