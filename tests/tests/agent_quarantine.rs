//! agent-quarantine against the emulator, through the pipeline the Lambda runs: GuardDuty
//! findings, runaway call rates and alarms contain real roles and users, protected principals
//! are left alone, and every event acts at most once.

use chrono::Utc;
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::quarantine::{QUARANTINE_TAG, QuarantineRecord};
use guardrail::rules::Function;
use guardrail_tests::agents::{
    EXFILTRATION, agent_call, agent_role, agent_user, alarm_event, finding, put_alarm, role_policy, role_snapshot,
    user_snapshot,
};
use guardrail_tests::{World, invocation, outcomes};

fn builtin() -> Policy {
    Policy::builtin().expect("built-in policy")
}

async fn stored(world: &World, account: &str, kind: &str, name: &str) -> Option<QuarantineRecord> {
    let item = world.item(&format!("quarantine#{account}#{kind}#{name}")).await?;
    let text = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .expect("record attribute");
    Some(serde_json::from_str(text).expect("record JSON"))
}

/// IAM writes since `mark`: what a protected principal must never see.
fn iam_writes(world: &World, mark: usize) -> Vec<String> {
    world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.starts_with("iam.") && !c.starts_with("iam.Get") && !c.starts_with("iam.List"))
        .collect()
}

#[tokio::test]
async fn a_credential_exfiltration_finding_revokes_the_roles_sessions_and_records_its_prior_state() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(
        &member,
        "agent-runner",
        "/agents/",
        &[("team", "ml"), ("Environment", "dev")],
    )
    .await;
    let before = role_snapshot(&member, "agent-runner").await;
    let event = finding(&account, "AssumedRole", "agent-runner", EXFILTRATION, 8.0);
    let p = world.pipeline(Function::AgentQuarantine, builtin());

    let started = Utc::now();
    let report = p.handle(event.clone(), &invocation()).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");

    // The deny applies to sessions issued before the decision, not before the finding.
    let deny = role_policy(&member, "agent-runner", "guardrail-quarantine").await;
    let statement = &deny["Statement"][0];
    assert_eq!(
        (statement["Effect"].as_str(), statement["Action"].as_str()),
        (Some("Deny"), Some("*"))
    );
    let cutoff = statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .and_then(guardrail::event::time::parse)
        .expect("a TokenIssueTime cut-off");
    assert!(
        cutoff >= started - chrono::Duration::seconds(1),
        "{cutoff} is before the decision at {started}"
    );

    let after = role_snapshot(&member, "agent-runner").await;
    let tag = after.tags.get(QUARANTINE_TAG).expect("quarantine tag");
    let finding_id = event["detail"]["id"].as_str().expect("id");
    assert!(
        tag.starts_with("revoke-sessions ") && tag.ends_with(&format!("guardduty:{finding_id}")),
        "{tag}"
    );
    let record = stored(&world, &account, "role", "agent-runner")
        .await
        .expect("quarantine record");
    assert!(record.is_active());
    assert_eq!(record.prior.arn, before.arn);
    assert_eq!(record.prior.inline_policies, before.inline_policies);
    assert_eq!(record.prior.attached_policies, before.attached_policies);
    assert_eq!(record.prior.permissions_boundary, before.boundary);
    let prior_tags: std::collections::BTreeMap<String, String> = record
        .prior
        .tags
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    assert_eq!(prior_tags, before.tags);

    // One alert saying everything ops needs.
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.attributes.get("rule").map(String::as_str), Some("quarantine"));
    assert_eq!(alert.attributes.get("action").map(String::as_str), Some("quarantined"));
    assert_eq!(alert.attributes.get("environment").map(String::as_str), Some("dev"));
    assert_eq!(
        alert.attributes.get("account").map(String::as_str),
        Some(account.as_str())
    );
    let body = alert.body.to_string();
    for needle in [
        "role agent-runner",
        EXFILTRATION,
        "severity 8",
        "revoke the sessions of role agent-runner issued before",
        &format!("fId={finding_id}"),
        &format!("guardrail release --account {account} --role agent-runner"),
    ] {
        assert!(body.contains(needle), "the alert lacks {needle:?}: {body}");
    }

    // The same finding delivered again: nothing happens, nothing is sent (the role is seen to be
    // quarantined already, before the replay guard is even asked).
    let again = p.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&again)[..], [Outcome::Ignored { reason }] if reason.contains("already quarantined")),
        "{again:?}"
    );
    assert!(world.alerts().await.is_empty(), "a duplicate must not alert");

    // A new, graver finding about the agent escalates to isolation; the prior state stays the
    // one from before Guardrail touched the role.
    let graver = finding(
        &account,
        "AssumedRole",
        "agent-runner",
        "CredentialAccess:IAMUser/AnomalousBehavior",
        5.0,
    );
    let report = p.handle(graver, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let deny = role_policy(&member, "agent-runner", "guardrail-quarantine").await;
    assert!(
        deny["Statement"][0].get("Condition").is_none(),
        "isolation denies every session: {deny}"
    );
    let escalated = stored(&world, &account, "role", "agent-runner").await.expect("record");
    assert_eq!((escalated.version, escalated.prior.clone()), (2, record.prior));
    assert_eq!(world.alerts().await.len(), 1);
}

#[tokio::test]
async fn protected_principals_are_never_touched_and_the_alert_says_why() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(&member, "break-glass-admin", "/", &[]).await;
    agent_role(&member, "guardrail-tag-enforcer", "/", &[]).await;
    let p = world.pipeline(Function::AgentQuarantine, builtin());
    for (name, why) in [
        (
            "OrganizationAccountAccessRole",
            "how the organization reaches the account",
        ),
        ("break-glass-admin", "principals.protected"),
        ("guardrail-tag-enforcer", "one of Guardrail's own roles"),
    ] {
        let mark = world.emulator.calls().len();
        let report = p
            .handle(finding(&account, "AssumedRole", name, EXFILTRATION, 8.0), &invocation())
            .await;
        assert!(
            matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
            "{name}: {report:?}"
        );
        assert_eq!(iam_writes(&world, mark), Vec::<String>::new(), "{name} was modified");
        let alerts = world.alerts().await;
        assert_eq!(alerts.len(), 1, "{name}: {alerts:?}");
        assert!(alerts[0].body.to_string().contains(why), "{name}: {}", alerts[0].body);
        assert!(stored(&world, &account, "role", name).await.is_none());
    }
    // The management account's roles are as untouchable.
    let management = guardrail_tests::emulator::MANAGEMENT_ACCOUNT;
    agent_role(&world.config, "agent-admin", "/agents/", &[]).await;
    let mark = world.emulator.calls().len();
    let report = p
        .handle(
            finding(management, "AssumedRole", "agent-admin", EXFILTRATION, 8.0),
            &invocation(),
        )
        .await;
    // The management account sits in the root, in no environment: unmanaged, and untouched.
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("no OU that the policy names")),
        "{report:?}"
    );
    assert_eq!(iam_writes(&world, mark), Vec::<String>::new());
}

#[tokio::test]
async fn an_agent_is_isolated_by_the_call_over_its_budget_and_not_before() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    let arn = agent_role(&member, "planner", "/agents/", &[]).await;
    let policy = Policy::from_toml(
        &guardrail::policy::BUILTIN_POLICY
            .replacen("calls = 300", "calls = 50", 1)
            .replacen("RunInstances = 20,", "RunInstances = 3,", 1),
        "test",
    )
    .expect("policy");
    let p = world.pipeline(Function::AgentQuarantine, policy);
    // One instant for every call, so that all fall in one window.
    let at = Utc::now();
    let mut calls: Vec<_> = (0..4).map(|_| agent_call(&account, &arn, "RunInstances", at)).collect();
    // A refused call counts too: an agent probing what it may do is as runaway as one that succeeds.
    calls[1]["detail"]["errorCode"] = serde_json::json!("Client.UnauthorizedOperation");
    for (n, call) in calls.iter().take(3).enumerate() {
        let report = p.handle(call.clone(), &invocation()).await;
        assert!(
            matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("within its budget")),
            "call {}: {report:?}",
            n + 1
        );
    }
    // Redelivering the third call does not count it twice.
    let report = p.handle(calls[2].clone(), &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { .. }]),
        "{report:?}"
    );
    // Calls of other kinds count only against the overall budget.
    let listing = agent_call(&account, &arn, "DescribeInstances", at);
    assert!(matches!(
        &outcomes(&p.handle(listing, &invocation()).await)[..],
        [Outcome::Ignored { .. }]
    ));
    assert_eq!(role_snapshot(&member, "planner").await.inline_policies, ["app-access"]);
    assert!(world.alerts().await.is_empty(), "nothing to say within the budget");

    let report = p.handle(calls[3].clone(), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let deny = role_policy(&member, "planner", "guardrail-quarantine").await;
    assert!(deny["Statement"][0].get("Condition").is_none(), "{deny}");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].body.to_string().contains("4 RunInstances calls"),
        "{}",
        alerts[0].body
    );

    // Once isolated, more calls change nothing and say nothing.
    let fifth = agent_call(&account, &arn, "RunInstances", at);
    let report = p.handle(fifth, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("already quarantined")),
        "{report:?}"
    );
    assert!(world.alerts().await.is_empty());
}

#[tokio::test]
async fn with_tagged_agents_counted_a_tagged_role_is_isolated_over_budget_and_others_are_not_counted() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    // Neither role matches the agent_roles patterns; one carries the agent tag.
    let builder = agent_role(&member, "builder", "/apps/", &[("guardrail:agent", "true")]).await;
    let deployer = agent_role(&member, "deployer", "/apps/", &[("guardrail:agent", "false")]).await;
    let policy = Policy::from_toml(
        &guardrail::policy::BUILTIN_POLICY
            .replacen("calls = 300", "calls = 2", 1)
            .replacen("tagged_agents = false", "tagged_agents = true", 1),
        "test",
    )
    .expect("policy");
    let p = world.pipeline(Function::AgentQuarantine, policy);
    let at = Utc::now();

    let mark = world.emulator.calls().len();
    for n in 1..=3 {
        let report = p
            .handle(agent_call(&account, &deployer, "ListBuckets", at), &invocation())
            .await;
        assert!(
            matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("is not an agent")),
            "call {n}: {report:?}"
        );
    }
    let reads: Vec<_> = world.emulator.calls_since(mark);
    assert_eq!(
        reads.iter().filter(|c| c.starts_with("iam.GetRole")).count(),
        1,
        "the caller's tags are read once and remembered: {reads:?}"
    );
    assert!(
        !reads.iter().any(|c| c.starts_with("dynamodb.UpdateItem")),
        "a caller that is not an agent is never counted: {reads:?}"
    );

    for n in 1..=2 {
        let report = p
            .handle(agent_call(&account, &builder, "ListBuckets", at), &invocation())
            .await;
        assert!(
            matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("within its budget")),
            "call {n}: {report:?}"
        );
    }
    let report = p
        .handle(agent_call(&account, &builder, "ListBuckets", at), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let deny = role_policy(&member, "builder", "guardrail-quarantine").await;
    assert!(deny["Statement"][0].get("Condition").is_none(), "isolated: {deny}");
    assert_eq!(role_snapshot(&member, "deployer").await.inline_policies, ["app-access"]);
}

#[tokio::test]
async fn an_alarm_tagged_with_a_role_isolates_it_and_an_untagged_one_is_reported() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(&member, "agent-runner", "/agents/", &[]).await;
    put_alarm(
        &world.emulator,
        &member,
        "runner-tokens",
        &[("guardrail:agent-role", "agent-runner")],
    )
    .await;
    put_alarm(&world.emulator, &member, "someone-elses", &[("team", "data")]).await;
    let p = world.pipeline(Function::AgentQuarantine, builtin());

    let report = p.handle(alarm_event(&account, "runner-tokens"), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let record = stored(&world, &account, "role", "agent-runner").await.expect("record");
    assert_eq!(record.response, guardrail::policy::Response::Isolate);
    assert!(
        record.triggers[0].detail.contains("alarm runner-tokens entered ALARM"),
        "{:?}",
        record.triggers
    );
    assert_eq!(world.alerts().await.len(), 1);

    let mark = world.emulator.calls().len();
    let report = p.handle(alarm_event(&account, "someone-elses"), &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { .. }]),
        "{report:?}"
    );
    assert_eq!(iam_writes(&world, mark), Vec::<String>::new());
    let alerts = world.alerts().await;
    assert!(
        alerts[0].body.to_string().contains("has no tag guardrail:agent-role"),
        "{}",
        alerts[0].body
    );
}

#[tokio::test]
async fn an_isolated_user_loses_its_access_keys() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    let keys = agent_user(&member, "agent-ci", &[("guardrail:agent", "true")], 2).await;
    let p = world.pipeline(Function::AgentQuarantine, builtin());
    let event = finding(
        &account,
        "IAMUser",
        "agent-ci",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let after = user_snapshot(&member, "agent-ci").await;
    assert!(after.inline_policies.contains(&"guardrail-quarantine".to_string()));
    for key in &keys {
        assert_eq!(after.keys.get(key).map(String::as_str), Some("Inactive"), "{after:?}");
    }
    let record = stored(&world, &account, "user", "agent-ci").await.expect("record");
    let mut deactivated = record.deactivated_keys.clone();
    deactivated.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(deactivated, want);
}

#[tokio::test]
async fn the_quarantine_tag_goes_on_before_the_deny_policy_so_the_deny_is_never_unprotected() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(&member, "agent-runner", "/agents/", &[]).await;
    let event = finding(&account, "AssumedRole", "agent-runner", EXFILTRATION, 8.0);
    let p = world.pipeline(Function::AgentQuarantine, builtin());

    // The SCP (QuarantineStaysUntilReleased) protects the policies of a principal tagged
    // guardrail:quarantine: with the tagging call failing, no deny policy may go on untagged.
    world.emulator.inject_fault(
        serde_json::json!({"service": "iam", "action": "TagRole", "status": 503, "code": "ServiceUnavailable", "count": -1}),
    );
    let mark = world.emulator.calls().len();
    let failed = p.handle(event.clone(), &invocation()).await;
    assert!(
        failed.error.is_some(),
        "the event fails so Lambda retries it: {failed:?}"
    );
    let role = role_snapshot(&member, "agent-runner").await;
    assert!(
        !role.inline_policies.iter().any(|p| p == "guardrail-quarantine"),
        "a deny without its protecting tag: {:?}",
        role.inline_policies
    );
    assert!(
        iam_writes(&world, mark)
            .iter()
            .all(|c| !c.starts_with("iam.PutRolePolicy"))
    );
    assert!(stored(&world, &account, "role", "agent-runner").await.is_none());

    // The retry quarantines it completely, tag first.
    world.emulator.clear_faults();
    let mark = world.emulator.calls().len();
    let retried = p.handle(event, &invocation()).await;
    assert!(
        matches!(outcomes(&retried)[..], [Outcome::Applied { .. }]),
        "{retried:?}"
    );
    let writes = iam_writes(&world, mark);
    let position = |action: &str| writes.iter().position(|c| c.starts_with(action));
    assert!(
        matches!((position("iam.TagRole"), position("iam.PutRolePolicy")), (Some(t), Some(d)) if t < d),
        "{writes:?}"
    );
    let record = stored(&world, &account, "role", "agent-runner").await.expect("record");
    assert!(record.is_active());
    assert!(
        record.prior.tags.iter().all(|t| !t.is(QUARANTINE_TAG)),
        "the prior state is the role's own, without the tag the failed attempt left: {:?}",
        record.prior.tags
    );
}

#[tokio::test]
async fn an_agent_that_filled_its_tag_slots_is_still_denied_and_the_failure_is_not_silent() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    // IAM keeps at most 50 tags on a role (the emulator enforces it as IAM does): the agent
    // filled them, so the quarantine tag cannot go on.
    let names: Vec<String> = (0..50).map(|i| format!("k{i:02}")).collect();
    let tags: Vec<(&str, &str)> = names.iter().map(|k| (k.as_str(), "x")).collect();
    agent_role(&member, "agent-runner", "/agents/", &tags).await;
    let event = finding(&account, "AssumedRole", "agent-runner", EXFILTRATION, 8.0);
    let p = world.pipeline(Function::AgentQuarantine, builtin());

    let report = p.handle(event.clone(), &invocation()).await;
    let error = report
        .error
        .as_ref()
        .expect("the event fails: the containment is incomplete");
    assert!(error.to_string().contains("LimitExceeded"), "{error}");
    // Contained but unprotected beats free: the deny is on.
    let role = role_snapshot(&member, "agent-runner").await;
    assert!(
        role.inline_policies.iter().any(|p| p == "guardrail-quarantine"),
        "{:?}",
        role.inline_policies
    );
    assert!(!role.tags.contains_key(QUARANTINE_TAG));
    // No record: the quarantine is not taken for complete, and a retry tries the tag again.
    assert!(stored(&world, &account, "role", "agent-runner").await.is_none());
    let again = p.handle(event, &invocation()).await;
    assert!(
        again
            .error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("LimitExceeded")),
        "{again:?}"
    );
}
