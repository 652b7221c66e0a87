//! `guardrail release` against the emulator: a principal quarantined by the function is
//! released by an operator, exactly as it was before, and only deliberately.

use std::process::{Command, Output};

use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::agents::{TRUST, agent_role, agent_user, finding, role_snapshot, user_snapshot};
use guardrail_tests::{World, invocation, outcomes};

fn guardrail(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn release_restores_the_role_exactly_and_only_a_new_finding_quarantines_it_again() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    agent_role(&member, "agent-runner", "/agents/", &[("team", "ml")]).await;
    let before = role_snapshot(&member, "agent-runner").await;
    let p = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let old = finding(
        &account,
        "AssumedRole",
        "agent-runner",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    let report = p.handle(old.clone(), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_ne!(role_snapshot(&member, "agent-runner").await, before);
    world.alerts().await;

    let release = ["release", "--account", &account, "--role", "agent-runner"];
    let dry = tokio::task::block_in_place(|| {
        guardrail(
            &world,
            &[&release[..], &["--reason", "x", "--dry-run", "--format", "json"]].concat(),
        )
    });
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    let would: Vec<&str> = v["steps"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["status"] == "would change")
                .filter_map(|s| s["step"].as_str())
                .collect()
        })
        .unwrap_or_default();
    // The deny, the isolation boundary (the agent's own put back), the tag, the record.
    assert_eq!(would.len(), 4, "{v}");
    assert!(
        would[0].starts_with("remove inline policy guardrail-quarantine"),
        "{would:?}"
    );
    assert!(
        world.alerts().await.is_empty(),
        "a dry run changes nothing and says nothing"
    );

    let out = tokio::task::block_in_place(|| {
        guardrail(
            &world,
            &[&release[..], &["--reason", "prompt injection ruled out; key rotated"]].concat(),
        )
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("[4/4]"),
        "progress: {}",
        text(&out)
    );
    assert_eq!(
        role_snapshot(&member, "agent-runner").await,
        before,
        "release restores exactly"
    );

    let item = world
        .item(&format!("quarantine#{account}#role#agent-runner"))
        .await
        .expect("record");
    let record: guardrail::quarantine::QuarantineRecord =
        serde_json::from_str(item["record"].as_s().expect("record")).expect("JSON");
    let released = record.released.expect("released");
    assert_eq!(released.reason, "prompt injection ruled out; key rotated");
    assert!(released.by.starts_with("arn:aws:"), "who released it: {}", released.by);
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("released"));
    assert!(alerts[0].body.to_string().contains(&released.by));
    // The ledger records each step of the release, with who and why; the dry run recorded none.
    let released_steps: Vec<guardrail::ledger::Entry> = world
        .ledger_of(&account)
        .await
        .into_iter()
        .filter(|e| e.event.starts_with("release#"))
        .collect();
    assert_eq!(released_steps.len(), 4, "{released_steps:#?}");
    assert!(
        released_steps
            .iter()
            .all(|e| e.outcome == guardrail::ledger::Outcome::Applied
                && e.cause.contains("prompt injection ruled out")
                && e.cause.contains(&released.by)),
        "{released_steps:#?}"
    );

    // The old finding replayed does nothing; the role stays released.
    let replay = p.handle(old, &invocation()).await;
    assert!(
        matches!(outcomes(&replay)[..], [Outcome::Duplicate { .. }]),
        "{replay:?}"
    );
    assert_eq!(role_snapshot(&member, "agent-runner").await, before);
    // A new finding quarantines it again.
    let new = finding(
        &account,
        "AssumedRole",
        "agent-runner",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    let report = p.handle(new, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert!(
        role_snapshot(&member, "agent-runner")
            .await
            .inline_policies
            .contains(&"guardrail-quarantine".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_user_gets_back_exactly_the_keys_guardrail_took() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    let keys = agent_user(&member, "agent-ci", &[("guardrail:agent", "true")], 2).await;
    // One key was already off before the quarantine: it must stay off.
    aws_sdk_iam::Client::new(&member)
        .update_access_key()
        .user_name("agent-ci")
        .access_key_id(&keys[1])
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .expect("UpdateAccessKey");
    let before = user_snapshot(&member, "agent-ci").await;
    let p = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let event = finding(
        &account,
        "IAMUser",
        "agent-ci",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    assert!(matches!(
        outcomes(&p.handle(event, &invocation()).await)[..],
        [Outcome::Applied { .. }]
    ));
    assert!(
        user_snapshot(&member, "agent-ci")
            .await
            .keys
            .values()
            .all(|s| s == "Inactive")
    );

    let args = [
        "release",
        "--account",
        &account,
        "--user",
        "agent-ci",
        "--reason",
        "pipeline fixed",
    ];
    let out = tokio::task::block_in_place(|| guardrail(&world, &args));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(user_snapshot(&member, "agent-ci").await, before);

    let again = tokio::task::block_in_place(|| guardrail(&world, &args));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(
        text(&again).contains("is not quarantined (released by"),
        "{}",
        text(&again)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn release_refuses_what_it_cannot_do_with_a_reason() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    for (args, needle) in [
        (
            vec!["release", "--account", "12", "--role", "r", "--reason", "x"],
            "not a 12-digit account id",
        ),
        (
            vec!["release", "--account", &account, "--role", "a b", "--reason", "x"],
            "not an IAM role name",
        ),
        (
            vec![
                "release",
                "--account",
                &account,
                "--role",
                "never-quarantined",
                "--reason",
                "x",
            ],
            "not quarantined",
        ),
    ] {
        let o = tokio::task::block_in_place(|| guardrail(&world, &args));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(needle), "{needle}: {}", text(&o));
    }
    let no_table = Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["release", "--account", &account, "--role", "r", "--reason", "x"])
        .env_clear()
        .envs(world.emulator.env())
        .output()
        .expect("run guardrail");
    assert_eq!(no_table.status.code(), Some(2));
    assert!(
        text(&no_table).contains("GUARDRAIL_TABLE is not set"),
        "{}",
        text(&no_table)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_that_filled_its_inline_quota_is_isolated_by_its_boundary_and_released_exactly() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let iam = aws_sdk_iam::Client::new(&member);
    // An agent role without a permissions boundary that filled its inline policy quota (10,240
    // characters in all; the emulator enforces IAM's quota), so that no deny policy fits.
    iam.create_role()
        .role_name("agent-runner")
        .path("/agents/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .expect("CreateRole");
    let document = |n: usize| {
        let statements: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"Sid":"S{i:03}","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-{i:0>40}/*"}}"#))
            .collect();
        format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","))
    };
    let n = (1..).find(|n| document(n + 1).len() >= 10_240).expect("a size");
    let padding = document(n);
    assert!((10_150..10_240).contains(&padding.len()), "{}", padding.len());
    iam.put_role_policy()
        .role_name("agent-runner")
        .policy_name("padding")
        .policy_document(&padding)
        .send()
        .await
        .expect("PutRolePolicy");
    let before = role_snapshot(&member, "agent-runner").await;
    let p = world.pipeline(Function::AgentQuarantine, Policy::builtin().expect("policy"));
    let event = finding(
        &account,
        "AssumedRole",
        "agent-runner",
        "Discovery:IAMUser/AnomalousBehavior",
        5.0,
    );
    let report = p.handle(event, &invocation()).await;
    let error = report
        .error
        .as_ref()
        .expect("the deny could not go on: the event fails and alerts");
    assert!(error.to_string().contains("LimitExceeded"), "{error}");
    // Isolated all the same, through the one slot the agent could not fill.
    let isolated = role_snapshot(&member, "agent-runner").await;
    assert_eq!(
        isolated.boundary.as_deref(),
        Some(format!("arn:aws:iam::{account}:policy/guardrail-isolate").as_str())
    );
    assert!(!isolated.inline_policies.iter().any(|p| p == "guardrail-quarantine"));
    let item = world
        .item(&format!("quarantine#{account}#role#agent-runner"))
        .await
        .expect("the pending record, written before the boundary was replaced");
    let record: guardrail::quarantine::QuarantineRecord =
        serde_json::from_str(item["record"].as_s().expect("record")).expect("JSON");
    assert!(
        record.is_pending() && record.prior.permissions_boundary.is_none(),
        "{record:?}"
    );

    // A person releases the half-done quarantine: the role is exactly as it was.
    let args = [
        "release",
        "--account",
        &account,
        "--role",
        "agent-runner",
        "--reason",
        "padding removed by the owner",
    ];
    let out = tokio::task::block_in_place(|| guardrail(&world, &args));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(role_snapshot(&member, "agent-runner").await, before);
}
