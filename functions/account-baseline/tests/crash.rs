//! A crash mid-event (issue 7, item 3): the real binary claims a new account's baseline, does
//! some steps, and is killed while a call hangs. The retry after the lease has run out finishes
//! the baseline without repeating a step: the writes before and after the crash add up to the
//! writes of one uninterrupted baseline.

use std::time::{Duration, Instant};

use chrono::Utc;
use guardrail::pipeline::{Invocation, Outcome};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::World;
use guardrail_tests::emulator::MANAGEMENT_ACCOUNT;
use guardrail_tests::events::{event_id, fresh, furnish_default_vpc, load, with_created_account};
use guardrail_tests::faults::FaultProxy;
use guardrail_tests::lambda::WatchedFunction;
use guardrail_tests::world::create_account;
use serde_json::Value;

/// The call the first process is stuck in when it is killed.
const HUNG_CALL: &str = "ModifyInstanceMetadataDefaults";

/// Writes the baseline made in member and management accounts (its assumed-role sessions).
fn baseline_writes(world: &World) -> usize {
    write_calls(world).len()
}

fn write_calls(world: &World) -> Vec<String> {
    world
        .emulator
        .call_lines()
        .into_iter()
        .filter(|l| {
            let mut parts = l.split(' ');
            let action = parts
                .next()
                .and_then(|c| c.split_once('.'))
                .map(|(_, a)| a)
                .unwrap_or("");
            let caller = parts.nth(1).unwrap_or("");
            !["Get", "List", "Describe", "Assume", "GET:", "HEAD:"]
                .iter()
                .any(|p| action.starts_with(p))
                && (caller.contains(":assumed-role/guardrail-management/")
                    || (caller.contains(":assumed-role/OrganizationAccountAccessRole/")
                        && !caller.ends_with("/test-harness")))
        })
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect()
}

async fn new_account(world: &World, name: &str) -> Value {
    let account = create_account(&world.config, name).await;
    let member = world.emulator.config_as(&account).await;
    for region in ["us-east-1", "us-west-2"] {
        furnish_default_vpc(&member.to_builder().region(aws_config::Region::new(region)).build()).await;
    }
    with_created_account(
        fresh(load("account-baseline/create-account-result.json"), MANAGEMENT_ACCOUNT),
        &account,
        name,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_mid_baseline_is_finished_by_the_retry_without_repeating_a_step() {
    let world = World::start().await;
    let pipeline = world.pipeline(Function::AccountBaseline, Policy::builtin().expect("policy"));

    // One uninterrupted baseline: how many writes it takes.
    let clean = new_account(&world, "agents-sandbox-1").await;
    let before = baseline_writes(&world);
    let report = pipeline.handle(clean, &guardrail_tests::invocation()).await;
    assert!(
        matches!(guardrail_tests::outcomes(&report)[..], [Outcome::Applied { .. }]),
        "{report:?}"
    );
    let whole = baseline_writes(&world) - before;

    // The binary, behind a proxy that never answers one call of the baseline.
    let event = new_account(&world, "agents-sandbox-2").await;
    let proxy = FaultProxy::holding(&world.emulator.endpoint, HUNG_CALL).await;
    // The binary places accounts through the management role too, as deployed.
    let policy = std::env::temp_dir().join(format!("guardrail-crash-policy-{}.toml", event_id()));
    std::fs::write(
        &policy,
        guardrail::policy::BUILTIN_POLICY.replacen(
            "management_role = \"\"",
            &format!("management_role = \"{}\"", guardrail_tests::world::MANAGEMENT_ROLE),
            1,
        ),
    )
    .expect("policy file");
    let mut env: Vec<(String, String)> = world
        .function_env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .collect();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint.clone()));
    env.push(("GUARDRAIL_POLICY".into(), policy.display().to_string()));
    let start = baseline_writes(&world);
    let function = tokio::task::block_in_place(|| WatchedFunction::start(env!("CARGO_BIN_EXE_account-baseline"), &env));
    let mut invoke = function.invoke_detached(&event);
    let waited = Instant::now();
    while proxy.held() == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "never reached {HUNG_CALL}: {}",
            function.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(function); // the process dies mid-event
    let _ = invoke.kill();
    let _ = invoke.wait();
    let first = baseline_writes(&world) - start;
    assert!(first > 0, "the killed process did some steps first");
    let account = event["detail"]["serviceEventDetails"]["createAccountStatus"]["accountId"]
        .as_str()
        .expect("account id")
        .to_string();
    let record = world
        .item(&format!("replay#account-baseline#account-created#{account}"))
        .await
        .expect("the claim");
    assert_eq!(
        record.get("state").and_then(|s| s.as_s().ok()).map(String::as_str),
        Some("InProgress")
    );

    // Lambda's retry, a new request after the dead one's lease has run out.
    let now = Utc::now() + chrono::Duration::minutes(2);
    let retry = Invocation {
        request_id: event_id(),
        now,
        deadline: now + chrono::Duration::seconds(60),
    };
    let report = pipeline.handle(event, &retry).await;
    assert!(
        matches!(guardrail_tests::outcomes(&report)[..], [Outcome::Applied { .. }]),
        "{report:?}"
    );
    let second = baseline_writes(&world) - start - first;
    assert_eq!(
        first + second,
        whole,
        "{first} writes before the crash and {second} after, against {whole} for one baseline: {:?}",
        &write_calls(&world)[start..]
    );
    let _ = std::fs::remove_file(&policy);
    println!(
        "figure: crash mid-event: {first} of {whole} writes done before the kill, {second} after the retry, none repeated"
    );
}
