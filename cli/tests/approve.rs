//! `guardrail approvals`, `approve` and `reject` against the emulator: prod's shipped policy makes
//! containment wait for a person; an operator lists what waits, previews it, approves it (the
//! event decided again, from the count it was decided with, and applied once), rejects it, or
//! finds it expired; each end is in the audit ledger.

use std::process::{Command, Output};

use chrono::{Duration, Utc};
use guardrail::approval::State;
use guardrail::aws::ApprovalTable;
use guardrail::ledger::Outcome as Entry;
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::agents::{agent_call, agent_role, finding, role_snapshot};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::Value;

fn guardrail(world: &World, policy: Option<&std::path::Path>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guardrail"));
    command.args(args).env_clear().envs(world.function_env());
    if let Some(path) = policy {
        command.env("GUARDRAIL_POLICY", path);
    }
    tokio::task::block_in_place(|| command.output().expect("run guardrail"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn pending_id(report: &guardrail::pipeline::Report) -> String {
    match &outcomes(report)[..] {
        [Outcome::Pending { approval }] => approval.clone(),
        other => panic!("the plan waits for a person: {other:?}"),
    }
}

/// An agent over its budget in prod: the isolation waits. The operator lists it, previews it and
/// approves it after its rate counter is gone (as TTL removes it): the count it was decided with
/// still decides, the role is isolated once, and approving again is refused.
#[tokio::test(flavor = "multi_thread")]
async fn an_approved_isolation_is_applied_once_from_the_count_it_was_decided_with() {
    let world = World::start().await;
    let prod = world.org.account("prod").to_string();
    let in_prod = world.emulator.config_as(&prod).await;
    let arn = agent_role(&in_prod, "planner", "/agents/", &[]).await;
    let text_policy = guardrail::policy::BUILTIN_POLICY.replacen("RunInstances = 20,", "RunInstances = 1,", 1);
    let path = std::env::temp_dir().join(format!("guardrail-approve-{}.toml", std::process::id()));
    std::fs::write(&path, &text_policy).expect("policy file");
    let p = world.pipeline(
        Function::AgentQuarantine,
        Policy::from_toml(&text_policy, "test").expect("policy"),
    );
    let at = Utc::now();
    let first = p
        .handle(agent_call(&prod, &arn, "RunInstances", at), &invocation())
        .await;
    assert!(matches!(outcomes(&first)[..], [Outcome::Ignored { .. }]), "{first:?}");
    let report = p
        .handle(agent_call(&prod, &arn, "RunInstances", at), &invocation())
        .await;
    let id = pending_id(&report);
    let before = role_snapshot(&in_prod, "planner").await;
    world.alerts().await;

    let list = guardrail(&world, Some(&path), &["approvals", "--format", "json"]);
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).expect("JSON");
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["state"], "pending");
    assert_eq!(listed[0]["needs"], serde_json::json!(["quarantine"]));
    let table = guardrail(&world, None, &["approvals"]);
    assert!(
        text(&table).contains(&id) && text(&table).contains("1 waiting, 0 expired"),
        "{}",
        text(&table)
    );

    // The window's counter is gone by the time a person looks.
    let window = at.timestamp() - at.timestamp().rem_euclid(60);
    world.delete_item(&format!("rate#{arn}#{window}")).await;

    let mark = world.emulator.calls().len();
    let dry = guardrail(&world, Some(&path), &["approve", &id, "--dry-run", "--format", "json"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let v: Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    let would: Vec<&str> = v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"] == "would change")
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert!(would.iter().any(|s| s.starts_with("isolate role planner")), "{v}");
    assert_eq!(world.emulator.writes_in(mark, &prod), Vec::<String>::new());
    assert_eq!(
        role_snapshot(&in_prod, "planner").await,
        before,
        "a dry run changes nothing"
    );

    let out = guardrail(
        &world,
        Some(&path),
        &["approve", &id, "--reason", "INC-9: runaway loop"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("applied"), "{}", text(&out));
    let after = role_snapshot(&in_prod, "planner").await;
    assert!(
        after.inline_policies.contains(&"guardrail-quarantine".to_string()),
        "{after:?}"
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes["action"], "quarantined");
    assert!(alerts[0].body.to_string().contains("INC-9: runaway loop"));
    let ledger = world.ledger_of(&prod).await;
    let applied: Vec<_> = ledger.iter().filter(|e| e.outcome == Entry::Applied).collect();
    assert!(!applied.is_empty(), "{ledger:#?}");
    assert!(
        applied
            .iter()
            .all(|e| e.detail.starts_with("approved by arn:aws:") && e.detail.contains("INC-9")),
        "{applied:#?}"
    );
    let stored = ApprovalTable::new(&world.config, &world.stack.table)
        .get(&id)
        .await
        .expect("read")
        .expect("approval");
    assert_eq!(stored.state, State::Done);

    for args in [
        vec!["approve", id.as_str(), "--reason", "again"],
        vec!["reject", id.as_str(), "--reason", "too late"],
    ] {
        let o = guardrail(&world, Some(&path), &args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("was approved by arn:aws:"), "{}", text(&o));
    }
    assert_eq!(world.ledger_of(&prod).await.len(), ledger.len());
    let _ = std::fs::remove_file(&path);
}

/// Rejected, a plan changes nothing and says so; past its deadline, it can no longer be
/// approved and the ledger says it expired; ids are checked.
#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_or_expired_approval_changes_nothing_and_the_ledger_says_how_it_ended() {
    let world = World::start().await;
    let prod = world.org.account("prod").to_string();
    let in_prod = world.emulator.config_as(&prod).await;
    let p = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let anomaly = "Discovery:IAMUser/AnomalousBehavior";
    agent_role(&in_prod, "agent-a", "/agents/", &[]).await;
    agent_role(&in_prod, "agent-b", "/agents/", &[]).await;
    let before = [
        role_snapshot(&in_prod, "agent-a").await,
        role_snapshot(&in_prod, "agent-b").await,
    ];
    let rejected = pending_id(
        &p.handle(finding(&prod, "AssumedRole", "agent-a", anomaly, 5.0), &invocation())
            .await,
    );
    let expired = pending_id(
        &p.handle(finding(&prod, "AssumedRole", "agent-b", anomaly, 5.0), &invocation())
            .await,
    );
    world.alerts().await;

    let mark = world.emulator.calls().len();
    let out = guardrail(
        &world,
        None,
        &["reject", &rejected, "--reason", "false positive: load test"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes["action"], "rejected");
    assert!(alerts[0].body.to_string().contains("false positive: load test"));
    let o = guardrail(&world, None, &["approve", &rejected, "--reason", "changed my mind"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("was rejected by arn:aws:"), "{}", text(&o));

    // agent-b's approval runs out.
    let table = ApprovalTable::new(&world.config, &world.stack.table);
    let mut late = table.get(&expired).await.expect("read").expect("approval");
    late.deadline = Utc::now() - Duration::minutes(5);
    assert!(table.update(&late, State::Pending).await.expect("update"));
    let list = guardrail(&world, None, &["approvals"]);
    assert!(text(&list).contains("0 waiting, 1 expired"), "{}", text(&list));
    let o = guardrail(&world, None, &["approve", &expired, "--reason", "INC-10"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("expired at"), "{}", text(&o));
    assert_eq!(
        table.get(&expired).await.expect("read").map(|a| a.state),
        Some(State::Expired)
    );
    assert!(
        table
            .pending(Utc::now() - Duration::days(7))
            .await
            .expect("list")
            .is_empty()
    );

    assert_eq!(world.emulator.writes_in(mark, &prod), Vec::<String>::new());
    assert_eq!(
        [
            role_snapshot(&in_prod, "agent-a").await,
            role_snapshot(&in_prod, "agent-b").await
        ],
        before
    );
    let ledger = world.ledger_of(&prod).await;
    let ended = |role: &str, outcome| {
        ledger
            .iter()
            .filter(|e| e.resource.ends_with(role) && e.outcome == outcome)
            .count()
    };
    assert!(ended("agent-a", Entry::Pending) > 0, "{ledger:#?}");
    assert_eq!(ended("agent-a", Entry::Rejected), ended("agent-a", Entry::Pending));
    assert_eq!(ended("agent-b", Entry::Expired), ended("agent-b", Entry::Pending));
    assert!(
        ledger
            .iter()
            .any(|e| e.outcome == Entry::Rejected && e.detail.contains("false positive: load test"))
    );
    assert_eq!(ended("agent-a", Entry::Applied) + ended("agent-b", Entry::Applied), 0);
    // `guardrail audit` picks them out by outcome and rule.
    let audit = guardrail(
        &world,
        None,
        &[
            "audit",
            "--account",
            &prod,
            "--rule",
            "quarantine",
            "--outcome",
            "rejected,expired",
            "--format",
            "json",
        ],
    );
    assert_eq!(audit.status.code(), Some(0), "{}", text(&audit));
    let rows: Value = serde_json::from_slice(&audit.stdout).expect("JSON");
    assert_eq!(
        rows.as_array().map(Vec::len),
        Some(ended("agent-a", Entry::Rejected) + ended("agent-b", Entry::Expired)),
        "{rows}"
    );
    let bad = guardrail(&world, None, &["audit", "--outcome", "approved"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("not an outcome; use applied, failed"),
        "{}",
        text(&bad)
    );

    for (id, needle) in [
        ("agent-quarantine-12", "not an approval id"),
        ("agent-quarantine-0123456789", "no approval agent-quarantine-0123456789"),
    ] {
        let o = guardrail(&world, None, &["approve", id, "--reason", "x"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(needle), "{needle}: {}", text(&o));
    }
    let o = guardrail(&world, None, &["reject", &expired]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--reason must say why"), "{}", text(&o));
}
