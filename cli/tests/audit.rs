//! `guardrail audit` and `guardrail breaker` against the emulator: the ledger entries tag-enforcer
//! wrote, by account and by resource, as a table, JSON and CSV (a bad --since is refused with what
//! to write instead); a tripped breaker's status, and a reset that says who and why.

use std::process::{Command, Output};

use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{launch, launch_event};
use guardrail_tests::{World, invocation};
use serde_json::Value;

/// `guardrail ARGS` with the functions' environment.
/// `guardrail audit ARGS`.
fn guardrail(world: &World, args: &[&str]) -> Output {
    run(world, &[&["audit"][..], args].concat())
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_lists_what_guardrail_did_by_account_and_resource_in_three_formats() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&dev).await;
    let tags = [("Environment", "prod")];
    let launched = launch(&member, &tags).await;
    let event = launch_event(&dev, &[&launched], &tags);
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let report = p.handle(event, &invocation()).await;
    assert!(report.error.is_none(), "{report:?}");
    let instance = launched.instance.as_str();

    let json: Value =
        serde_json::from_str(&stdout(&guardrail(&world, &["--account", &dev, "--format", "json"]))).expect("JSON");
    let entries = json.as_array().expect("an array of entries");
    let relabel = entries
        .iter()
        .find(|e| e["resource"] == instance && e["after"]["Environment"] == "dev")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(relabel["before"]["Environment"], "prod");
    assert_eq!(relabel["outcome"], "applied");

    let csv = stdout(&guardrail(&world, &["--resource", instance, "--format", "csv"]));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("time,account,rule,outcome,resource,action,before,after,cause,event")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty() && rows.iter().all(|r| r.contains(instance)), "{csv}");
    assert!(rows.iter().any(|r| r.contains("Environment=prod")), "{csv}");

    // Without an account or resource: the last 7 days of every account.
    let table = stdout(&guardrail(&world, &[]));
    assert!(table.starts_with("time"), "{table}");
    assert!(table.contains(instance) && table.contains("applied"), "{table}");

    let bad = guardrail(&world, &["--since", "last week"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("(7d, 12h)"));
}

fn run(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail")
}

#[tokio::test(flavor = "multi_thread")]
async fn breaker_status_shows_a_trip_and_reset_records_who_and_why_and_closes_it() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&dev).await;
    let text = guardrail::policy::BUILTIN_POLICY.replace("\ntags = 500\n", "\ntags = 1\n");
    let file = std::env::temp_dir().join(format!("guardrail-breaker-{}.toml", std::process::id()));
    std::fs::write(&file, &text).expect("write the policy");
    let policy_file = file.to_str().expect("path");
    let p = world.pipeline(
        Function::TagEnforcer,
        Policy::from_toml(&text, "breaker.toml").expect("policy"),
    );
    let tags = [("Environment", "prod")];
    let launched = launch(&member, &tags).await;
    p.handle(launch_event(&dev, &[&launched], &tags), &invocation()).await;

    let target = ["--rule", "tags", "--account", dev.as_str(), "--policy", policy_file];
    let status = |format: &str| {
        let out = run(
            &world,
            &[&["breaker", "status"][..], &target, &["--format", format]].concat(),
        );
        stdout(&out)
    };
    let json: Value = serde_json::from_str(&status("json")).expect("JSON");
    assert_eq!(
        (json["limit"].as_u64(), json["window"].as_str()),
        (Some(1), Some("1h")),
        "{json:#}"
    );
    assert!(json["tripped"]["changes"].as_u64() > Some(1), "{json:#}");
    let text_status = status("text");
    assert!(
        text_status.contains("tripped:  yes")
            && text_status.contains(&format!("guardrail breaker reset --rule tags --account {dev}")),
        "{text_status}"
    );

    // A reset must say what was checked.
    let refused = run(&world, &[&["breaker", "reset", "--reason", " "][..], &target].concat());
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--reason must say"));
    let reset = run(
        &world,
        &[
            &["breaker", "reset", "--reason", "INC-9 checked", "--format", "json"][..],
            &target,
        ]
        .concat(),
    );
    let json: Value = serde_json::from_str(&stdout(&reset)).expect("JSON");
    assert_eq!(json["reset"], true);
    assert!(json["tripped"].is_object(), "the state it closed: {json:#}");
    let json: Value = serde_json::from_str(&status("json")).expect("JSON");
    assert!(json["tripped"].is_null() && json["counted"] == 0, "{json:#}");
    let last = json["last_reset"].as_str().unwrap_or_default();
    assert!(last.contains("INC-9 checked") && last.contains("arn:aws:"), "{last}");
    let resets: Vec<guardrail::ledger::Entry> = world
        .ledger_of(&dev)
        .await
        .into_iter()
        .filter(|e| e.event.starts_with("breaker-reset#"))
        .collect();
    let [reset] = resets.as_slice() else {
        panic!("one ledger entry for the reset: {resets:#?}")
    };
    assert_eq!(reset.resource, format!("breaker#tags#{dev}"));
    assert!(
        reset.cause.contains("INC-9 checked") && reset.cause.contains("arn:aws:"),
        "{reset:?}"
    );
    assert!(reset.before["tripped"].is_some(), "{reset:?}");

    let unknown = run(&world, &["breaker", "status", "--rule", "tag", "--account", &dev]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("use tags, baseline or quarantine"));
    let _ = std::fs::remove_file(file);
}
