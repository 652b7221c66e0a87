//! Operator safety rails against the emulator. The kill switch: a pause written to the SSM
//! parameter turns the functions and the sweep into detect mode once a container's cached read
//! runs out (a second here, a minute deployed), each alert says so and why, and a resume lets
//! them act again. The blast-radius breaker: past its limit a rule only detects in that account,
//! until a person resets it. Waivers: a setter's waiver exempts a resource or principal until its
//! last day, and no longer. Human approval: a plan that waits for a person changes nothing until
//! it is approved, and then acts once.

use std::time::Duration;

use guardrail::approval::{Decided, State};
use guardrail::aws::{ApprovalTable, BreakerTable, SsmSwitch};
use guardrail::ids::AccountId;
use guardrail::ledger::Outcome as LedgerOutcome;
use guardrail::pause::{active_value, paused_value};
use guardrail::pipeline::Outcome;
use guardrail::plan::Decision;
use guardrail::policy::{Policy, Rule};
use guardrail::rules::Function;
use guardrail::sweep::{INPUT_KEY, Request};
use guardrail::waiver::WAIVER_TAG;
use guardrail_tests::agents::{EXFILTRATION, agent_role, finding, role_snapshot};
use guardrail_tests::events::{ec2_tags, launch, launch_event, mislabelled_launch};
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

/// The blast-radius breaker, with a limit of two launches' changes an hour for the tag rule: the
/// first two launches in an account are tagged, the third trips the breaker (nothing written, one high
/// alert with the reset command), later plans in that account are held quietly, also in
/// another container, other accounts act, and only a reset lets the rule act there again.
#[tokio::test]
async fn the_breaker_trips_at_n_plus_one_not_at_n_and_holds_the_rule_until_a_person_resets_it() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let in_dev = world.emulator.config_as(&dev).await;
    // A launch changes its instance and its network interface (the volumes' tags count with
    // their instance): the limit is two launches' changes.
    let (instance, first) = mislabelled_launch(&world, "dev").await;
    let builtin = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let session = guardrail::apply::Session::new("tag-enforcer", "test");
    let event = guardrail::event::decode_value(first.clone()).remove(0).expect("event");
    let Ok(Ok(Decision::Act { plan })) = builtin.decide(&session, &event, chrono::Utc::now()).await else {
        panic!("a plan")
    };
    let per_launch = guardrail::breaker::changes(&plan);
    assert_eq!(per_launch, 2, "{:?}", plan.actions);
    let limit = 2 * per_launch;
    let text = guardrail::policy::BUILTIN_POLICY.replace("\ntags = 500\n", &format!("\ntags = {limit}\n"));
    let policy = Policy::from_toml(&text, "breaker.toml").expect("policy");
    assert_eq!(policy.safety.breaker.limit(Rule::Tags), Some(limit));
    let p = world.pipeline(Function::TagEnforcer, policy.clone());

    // N changes: made.
    let report = p.handle(first, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(ec2_tags(&in_dev, &instance).await["Environment"], "dev");
    let (instance, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Applied { .. }]),
        "at N: {report:?}"
    );
    assert_eq!(ec2_tags(&in_dev, &instance).await["Environment"], "dev");
    let alerts = world.alerts().await;
    assert_eq!(
        alerts
            .iter()
            .map(|a| a.attributes["action"].as_str())
            .collect::<Vec<_>>(),
        ["tagged", "tagged"]
    );

    // N+1: held. Nothing is written, and one high-severity alert asks a person to look.
    let (third, event) = mislabelled_launch(&world, "dev").await;
    let mark = world.emulator.calls().len();
    let report = p.handle(event.clone(), &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "{report:?}"
    );
    assert_eq!(
        world.emulator.writes_in(mark, &dev),
        Vec::<String>::new(),
        "nothing written"
    );
    assert_eq!(ec2_tags(&in_dev, &third).await["Environment"], "prod");
    // Delivered again, the event is a duplicate: still one alert.
    let again = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&again)[..], [Outcome::Duplicate { .. }]), "{again:?}");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        (
            alerts[0].attributes["action"].as_str(),
            alerts[0].attributes["severity"].as_str()
        ),
        ("tripped", "high")
    );
    let notes = alerts[0].body["notes"].to_string();
    assert!(
        notes.contains(&format!("{} changes", 3 * per_launch))
            && notes.contains(&format!("guardrail breaker reset --rule tags --account {dev}")),
        "{notes}"
    );
    assert!(
        alerts[0].body["done"]
            .to_string()
            .contains("held back: set Environment=dev"),
        "{:?}",
        alerts[0].body
    );

    // Open: a later plan in that account is held too, in another container as well, and its
    // alert says why without asking again.
    let other_container = world.pipeline(Function::TagEnforcer, policy.clone());
    let (fourth, event) = mislabelled_launch(&world, "dev").await;
    let report = other_container.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "{report:?}"
    );
    assert_eq!(ec2_tags(&in_dev, &fourth).await["Environment"], "prod");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (
            alerts[0].attributes["action"].as_str(),
            alerts[0].attributes["severity"].as_str()
        ),
        ("detected", plan.severity.name()),
        "the plan's own severity: only the trip is raised"
    );
    assert!(
        alerts[0].body["notes"].to_string().contains("is open since"),
        "{:?}",
        alerts[0].body
    );

    // The breaker is per account: the agents account acts.
    let (elsewhere, event) = mislabelled_launch(&world, "agents").await;
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let in_agents = world.emulator.config_as(world.org.account("agents")).await;
    assert_eq!(ec2_tags(&in_agents, &elsewhere).await["Environment"], "agents");
    world.alerts().await;

    // The ledger holds what the breaker held back.
    let held = world.ledger_of(&dev).await;
    let outcome_of = |resource: &str| {
        held.iter()
            .filter(|e| e.resource == resource)
            .map(|e| e.outcome)
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome_of(&third), [LedgerOutcome::Held], "{held:#?}");
    assert_eq!(outcome_of(&fourth), [LedgerOutcome::Held]);

    // A sweep does not act where the breaker stopped the rule: it reports what it would change.
    let sweeper = world.sweeper(Function::TagEnforcer, policy.clone());
    let input = json!({ INPUT_KEY: {"name": "tripped", "time": chrono::Utc::now().to_rfc3339(), "accounts": [dev]} });
    let mark = world.emulator.calls().len();
    let report = sweeper
        .handle(Request::from_input(&input).expect("a sweep"), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Swept { .. }]), "{report:?}");
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    let alerts = world.alerts().await;
    assert!(
        alerts.len() == 1 && alerts[0].body.to_string().contains("blast-radius breaker is open here"),
        "{alerts:#?}"
    );

    // A person resets it: the counts are forgotten and the rule acts again.
    let table = BreakerTable::new(&world.config, &world.stack.table);
    let account = AccountId::parse(&dev).expect("id");
    let before = table
        .reset(
            Rule::Tags,
            &account,
            "arn:aws:iam::123456789012:role/break-glass-ops",
            "checked the 3 changes: INC-7",
            chrono::Utc::now(),
        )
        .await
        .expect("reset");
    assert_eq!(before.trip.map(|t| t.count), Some(3 * per_launch));
    let status = table.status(Rule::Tags, &account).await.expect("status");
    assert!(status.trip.is_none() && status.tallies.is_empty(), "{status:?}");
    assert!(status.reset.is_some_and(|r| r.contains("INC-7")));
    let (fifth, event) = mislabelled_launch(&world, "dev").await;
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(ec2_tags(&in_dev, &fifth).await["Environment"], "dev");
}

/// A waiver tag, valid for `days` from today (negative: expired that many days ago).
fn waiver(rules: &str, days: i64, ticket: &str) -> String {
    let until = chrono::Utc::now().date_naive() + chrono::Duration::days(days);
    format!("rules={rules} until={until} ticket={ticket}")
}

/// An agent's mislabelled launch in dev carrying `waiver`, in a call made by `issuer`.
async fn waived_launch(world: &World, issuer: &str, waiver: &str) -> (String, serde_json::Value) {
    let dev = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&dev).await;
    let tags = [("Environment", "prod"), (WAIVER_TAG, waiver)];
    let launched = launch(&member, &tags).await;
    let mut event = launch_event(&dev, &[&launched], &tags);
    event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        json!(issuer.replace("{account}", &dev));
    (launched.instance, event)
}

const SETTER: &str = "arn:aws:iam::{account}:role/security-waivers/alice";

/// Waivers: a resource or principal a setter waived is left alone (a ledger entry, no change,
/// for a finding an alert saying so); once the waiver's last day has passed the rules apply
/// again and the sweep reports the stale tag; a waiver set by anyone else is removed.
#[tokio::test]
async fn a_waiver_exempts_until_its_last_day_and_an_expired_one_no_longer_does() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let in_dev = world.emulator.config_as(&dev).await;
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));

    // Waived by a setter: nothing written, no alert, the ledger says what was waived.
    let (waived, event) = waived_launch(&world, SETTER, &waiver("tags+quarantine", 30, "SEC-7")).await;
    let mark = world.emulator.calls().len();
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Waived { .. }]), "{report:?}");
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    assert_eq!(ec2_tags(&in_dev, &waived).await["Environment"], "prod");
    assert!(world.alerts().await.is_empty());
    let ledger = world.ledger_of(&dev).await;
    let entry = ledger
        .iter()
        .find(|e| e.resource == waived)
        .unwrap_or_else(|| panic!("no entry for {waived}: {ledger:#?}"));
    assert_eq!(entry.outcome, LedgerOutcome::Waived);
    assert!(
        entry.detail.contains("waiver SEC-7 until") && entry.detail.contains("Environment"),
        "{}",
        entry.detail
    );

    // Expired yesterday: relabelled as if there were no waiver, and the alert says why.
    let (expired, event) = waived_launch(&world, SETTER, &waiver("tags", -1, "SEC-8")).await;
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(ec2_tags(&in_dev, &expired).await["Environment"], "dev");
    let alerts = world.alerts().await;
    assert!(
        alerts[0].body.to_string().contains("waiver SEC-8 until") && alerts[0].body.to_string().contains("expired"),
        "{:?}",
        alerts[0].body
    );

    // Set by an agent: not honoured, and removed with the rest of the fix.
    let (forged, event) = waived_launch(
        &world,
        "arn:aws:iam::{account}:role/agents/agent-runner",
        &waiver("tags", 30, "SEC-9"),
    )
    .await;
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let tags = ec2_tags(&in_dev, &forged).await;
    assert_eq!(tags["Environment"], "dev");
    assert!(!tags.contains_key(WAIVER_TAG), "{tags:?}");
    world.alerts().await;

    // The sweep leaves the waived instance alone and reports the expired waiver for a person.
    let sweeper = world.sweeper(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let input = json!({ INPUT_KEY: {"name": "waivers", "time": chrono::Utc::now().to_rfc3339(), "accounts": [dev]} });
    let report = sweeper
        .handle(Request::from_input(&input).expect("a sweep"), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Swept { .. }]), "{report:?}");
    assert_eq!(ec2_tags(&in_dev, &waived).await["Environment"], "prod");
    let alerts = world.alerts().await;
    let body = alerts[0].body.to_string();
    assert!(
        body.contains(expired.as_str()) && body.contains("waiver SEC-8") && body.contains("expired"),
        "{body}"
    );

    // A principal waived from quarantine: the finding is alerted as waived, nothing changes.
    let q = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let tag = waiver("quarantine", 30, "SEC-10");
    agent_role(&in_dev, "agent-waived", "/agents/", &[(WAIVER_TAG, &tag)]).await;
    let mark = world.emulator.calls().len();
    let report = q
        .handle(
            finding(&dev, "AssumedRole", "agent-waived", EXFILTRATION, 8.0),
            &invocation(),
        )
        .await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "{report:?}"
    );
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    let alerts = world.alerts().await;
    assert_eq!(alerts[0].attributes["action"], "waived");
    assert!(
        alerts[0].body.to_string().contains("waiver SEC-10 until"),
        "{:?}",
        alerts[0].body
    );
    let ledger = world.ledger_of(&dev).await;
    assert!(
        ledger
            .iter()
            .any(|e| e.outcome == LedgerOutcome::Waived && e.resource.contains("agent-waived")),
        "{ledger:#?}"
    );
    // Once expired, the next finding contains it.
    aws_sdk_iam::Client::new(&in_dev)
        .tag_role()
        .role_name("agent-waived")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(WAIVER_TAG)
                .value(waiver("quarantine", -1, "SEC-10"))
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("TagRole");
    let report = q
        .handle(
            finding(&dev, "AssumedRole", "agent-waived", EXFILTRATION, 8.0),
            &invocation(),
        )
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
}

/// prod's shipped policy makes quarantine wait for a person: a finding on an agent there plans
/// the isolation, changes nothing in the account, keeps the approval with the event, records the
/// plan as pending and alerts with the approve command; a replay adds nothing; once approved,
/// the plan decided again with the role's state now is applied, once, however often it is run.
#[tokio::test]
async fn a_pending_approval_does_nothing_until_approved_and_then_acts_once() {
    let world = World::start().await;
    let prod = world.org.account("prod").to_string();
    let in_prod = world.emulator.config_as(&prod).await;
    agent_role(&in_prod, "agent-payments", "/agents/", &[]).await;
    let before = role_snapshot(&in_prod, "agent-payments").await;
    let p = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let event = finding(
        &prod,
        "AssumedRole",
        "agent-payments",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    let mark = world.emulator.calls().len();
    let report = p.handle(event.clone(), &invocation()).await;
    let [Outcome::Pending { approval: id }] = &outcomes(&report)[..] else {
        panic!("the plan waits: {report:?}");
    };
    assert_eq!(
        world.emulator.writes_in(mark, &prod),
        Vec::<String>::new(),
        "nothing written in the account"
    );
    assert_eq!(role_snapshot(&in_prod, "agent-payments").await, before);
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes["action"], "pending");
    let body = alerts[0].body.to_string();
    assert!(
        body.contains(&format!("guardrail approve {id} --reason TEXT")) && body.contains("isolate role agent-payments"),
        "{body}"
    );
    let pending = world.ledger_of(&prod).await;
    assert!(!pending.is_empty());
    assert!(
        pending.iter().all(|e| e.outcome == LedgerOutcome::Pending),
        "{pending:#?}"
    );
    assert!(
        pending
            .iter()
            .any(|e| e.action.starts_with("isolate role agent-payments"))
    );
    let table = ApprovalTable::new(&world.config, &world.stack.table);
    let listed = table.pending(chrono::Utc::now()).await.expect("pending approvals");
    assert_eq!(listed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    let approval = listed[0].clone();
    assert_eq!(
        (approval.state, approval.needs.as_slice()),
        (State::Pending, &["quarantine".to_string()][..])
    );

    // The same finding again: a duplicate, with no second approval, alert or entry.
    let again = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&again)[..], [Outcome::Duplicate { .. }]), "{again:?}");
    assert_eq!(world.ledger_of(&prod).await.len(), pending.len());
    assert!(world.alerts().await.is_empty());

    // Approved: the isolation is applied, recorded with who approved it, and out of the list.
    let approved = approval.decide(
        State::Approved,
        Decided {
            by: "arn:aws:iam::123456789012:role/security-oncall".into(),
            reason: "INC-7: agent exfiltrating".into(),
            at: chrono::Utc::now(),
        },
    );
    assert!(table.update(&approved, State::Pending).await.expect("approve"));
    assert!(
        !table.update(&approved, State::Pending).await.expect("update"),
        "a second person's approval finds it moved on"
    );
    assert!(table.pending(chrono::Utc::now()).await.expect("pending").is_empty());
    let outcome = p.run_approved(&approved, &invocation()).await.expect("applied");
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    let after = role_snapshot(&in_prod, "agent-payments").await;
    assert!(
        after.inline_policies.contains(&"guardrail-quarantine".to_string()),
        "{after:?}"
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes["action"], "quarantined");
    assert!(
        alerts[0]
            .body
            .to_string()
            .contains("approved by arn:aws:iam::123456789012:role/security-oncall")
    );
    let ledger = world.ledger_of(&prod).await;
    let applied: Vec<_> = ledger.iter().filter(|e| e.outcome == LedgerOutcome::Applied).collect();
    assert_eq!(
        applied.len(),
        pending.len(),
        "one applied entry per planned one: {ledger:#?}"
    );
    assert!(
        applied
            .iter()
            .all(|e| e.detail.contains("INC-7") && e.event == pending[0].event)
    );

    // Run again (a retry, a second operator): decided again, the role is contained already.
    let mark = world.emulator.calls().len();
    let twice = p.run_approved(&approved, &invocation()).await.expect("decided");
    assert!(
        matches!(&twice, Outcome::Ignored { reason } if reason.contains("already quarantined")),
        "{twice:?}"
    );
    assert_eq!(world.emulator.writes_in(mark, &prod), Vec::<String>::new());
    assert_eq!(world.ledger_of(&prod).await.len(), ledger.len());
}

/// Approval is per environment and per rule or action: where dev asks a person before the tag
/// rule changes anything, a mislabelled launch is left labelled prod until approved, and then
/// relabelled through the tag enforcer's own member role.
#[tokio::test]
async fn a_tag_fix_that_waits_for_approval_is_applied_through_the_functions_role_once_approved() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let in_dev = world.emulator.config_as(&dev).await;
    let text = guardrail::policy::BUILTIN_POLICY.replacen(
        "[environments.dev.modes]",
        "approval = [\"tags\"]\n[environments.dev.modes]",
        1,
    );
    let p = world.pipeline(Function::TagEnforcer, Policy::from_toml(&text, "test").expect("policy"));
    let (instance, event) = mislabelled_launch(&world, "dev").await;
    let mark = world.emulator.calls().len();
    let report = p.handle(event, &invocation()).await;
    let [Outcome::Pending { approval: id }] = &outcomes(&report)[..] else {
        panic!("the relabelling waits: {report:?}");
    };
    assert!(id.starts_with("tag-enforcer-"), "{id}");
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    assert_eq!(ec2_tags(&in_dev, &instance).await["Environment"], "prod");
    assert_eq!(world.alerts().await[0].attributes["action"], "pending");

    let table = ApprovalTable::new(&world.config, &world.stack.table);
    let approval = table.get(id).await.expect("read").expect("kept");
    assert_eq!(
        (approval.needs.as_slice(), approval.rule.as_str()),
        (&["tags".to_string()][..], "tags")
    );
    let approved = approval.decide(
        State::Approved,
        Decided {
            by: "arn:aws:iam::123456789012:role/security-oncall".into(),
            reason: "checked".into(),
            at: chrono::Utc::now(),
        },
    );
    assert!(table.update(&approved, State::Pending).await.expect("approve"));
    let outcome = p.run_approved(&approved, &invocation()).await.expect("applied");
    assert!(matches!(outcome, Outcome::Applied { .. }), "{outcome:?}");
    assert_eq!(ec2_tags(&in_dev, &instance).await["Environment"], "dev");
    assert!(
        world
            .ledger_of(&dev)
            .await
            .iter()
            .any(|e| e.resource == instance && e.outcome == LedgerOutcome::Applied && e.detail.contains("approved by")),
        "the relabelling is in the ledger with who approved it"
    );

    // The scheduled sweep, which no person watches, only reports what waits for approval.
    let (second, _) = mislabelled_launch(&world, "dev").await;
    world.alerts().await;
    let sweeper = world.sweeper(Function::TagEnforcer, Policy::from_toml(&text, "test").expect("policy"));
    let input = json!({ INPUT_KEY: {"name": "approval", "time": chrono::Utc::now().to_rfc3339(), "accounts": [dev]} });
    let mark = world.emulator.calls().len();
    let report = sweeper
        .handle(Request::from_input(&input).expect("a sweep"), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Swept { .. }]), "{report:?}");
    assert_eq!(world.emulator.writes_in(mark, &dev), Vec::<String>::new());
    assert_eq!(ec2_tags(&in_dev, &second).await["Environment"], "prod");
    let alerts = world.alerts().await;
    assert!(
        alerts[0]
            .body
            .to_string()
            .contains("needs a person's approval in environment dev"),
        "{:?}",
        alerts[0].body
    );
}
