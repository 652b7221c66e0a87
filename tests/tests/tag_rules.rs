//! The tag rules beyond missing tags, against the emulator: drift after creation, key spelling,
//! naming conventions, allowed values and exemptions.

use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{ec2_tags, fresh, launch, launch_event, load};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::json;

fn policy(edit: impl Fn(String) -> String) -> Policy {
    Policy::from_toml(&edit(guardrail::policy::BUILTIN_POLICY.to_string()), "test.toml").expect("policy")
}

/// Adds a TOML section before the first environment.
fn with_section(section: &str) -> impl Fn(String) -> String + '_ {
    move |p: String| p.replacen("[environments.prod]", &format!("{section}\n\n[environments.prod]"), 1)
}

async fn iam_role_tags(config: &aws_config::SdkConfig, role: &str) -> std::collections::BTreeMap<String, String> {
    let out = aws_sdk_iam::Client::new(config)
        .list_role_tags()
        .role_name(role)
        .send()
        .await
        .expect("ListRoleTags");
    out.tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test]
async fn tag_drift_on_environment_is_reverted_and_guardrails_own_writes_are_ignored() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let owner = format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a");
    let instance = launch(&member, &[("Environment", "dev"), ("Owner", &owner)])
        .await
        .instance;
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let ec2 = aws_sdk_ec2::Client::new(&member);

    // The agent relabels its instance prod (the call happened; CloudTrail reports it).
    ec2.create_tags()
        .resources(&instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("Environment")
                .value("prod")
                .build(),
        )
        .send()
        .await
        .expect("CreateTags");
    let mut relabel = fresh(load("tag-enforcer/create-tags.json"), &account);
    relabel["detail"]["requestParameters"]["resourcesSet"]["items"][0]["resourceId"] = json!(instance);
    let report = p.handle(relabel, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(
        ec2_tags(&member, &instance)
            .await
            .get("Environment")
            .map(String::as_str),
        Some("dev")
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts[0].attributes.get("severity").map(String::as_str), Some("high"));

    // Guardrail's own CreateTags comes back through CloudTrail: ignored, nothing written.
    let mut own = fresh(load("tag-enforcer/create-tags.json"), &account);
    own["detail"]["requestParameters"]["resourcesSet"]["items"][0]["resourceId"] = json!(instance);
    own["detail"]["requestParameters"]["tagSet"]["items"][0]["value"] = json!("dev");
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        json!(format!("arn:aws:iam::{account}:role/guardrail-tag-enforcer"));
    let mark = world.emulator.calls().len();
    let report = p.handle(own, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("own role")),
        "{report:?}"
    );
    assert!(world.emulator.calls_since(mark).is_empty(), "no read, no write");

    // The agent deletes the tag instead: it comes back.
    ec2.delete_tags()
        .resources(&instance)
        .tags(aws_sdk_ec2::types::Tag::builder().key("Environment").build())
        .send()
        .await
        .expect("DeleteTags");
    let mut delete = fresh(load("tag-enforcer/delete-tags.json"), &account);
    delete["detail"]["requestParameters"]["resourcesSet"]["items"][0]["resourceId"] = json!(instance);
    let report = p.handle(delete, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    assert_eq!(
        ec2_tags(&member, &instance)
            .await
            .get("Environment")
            .map(String::as_str),
        Some("dev")
    );
}

#[tokio::test]
async fn a_misspelled_key_is_renamed_at_creation_and_after() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));

    // Created with environment=dev (lowercase): IAM conditions would match it as Environment.
    let launched = launch(&member, &[("environment", "dev")]).await;
    let report = p
        .handle(
            launch_event(&account, &[&launched], &[("environment", "dev")]),
            &invocation(),
        )
        .await;
    assert!(report.error.is_none(), "{report:?}");
    let tags = ec2_tags(&member, &launched.instance).await;
    assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"), "{tags:?}");
    assert!(!tags.contains_key("environment"), "{tags:?}");

    // Later, `env=prod` on a queue: renamed and corrected.
    let sqs = aws_sdk_sqs::Client::new(&member);
    let url = sqs
        .create_queue()
        .queue_name("build-jobs")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .map(str::to_string);
    let url = url.expect("queue URL");
    sqs.tag_queue()
        .queue_url(&url)
        .tags("env", "prod")
        .send()
        .await
        .expect("TagQueue");
    let mut event = fresh(load("tag-enforcer/tag-queue.json"), &account);
    event["detail"]["requestParameters"]["queueUrl"] = json!(url);
    event["detail"]["requestParameters"]["tags"] = json!({"env": "prod"});
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .expect("tags")
        .tags()
        .cloned()
        .unwrap_or_default();
    assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"), "{tags:?}");
    assert!(!tags.contains_key("env"), "{tags:?}");
}

#[tokio::test]
async fn names_are_fixed_where_they_are_tags_and_marked_where_they_cannot_change() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let naming = policy(with_section(
        "[naming.resources]\n\"ec2:instance\" = \"^{env}-[a-z0-9-]{3,48}$\"\n\"iam:role\" = \"^{env}-[a-z0-9-]{3,48}$\"",
    ));
    let p = world.pipeline(Function::TagEnforcer, naming);
    let owner = format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a");
    let tags = [
        ("Name", "Build Cache"),
        ("Environment", "dev"),
        ("Owner", owner.as_str()),
    ];

    let launched = launch(&member, &tags).await;
    let report = p
        .handle(launch_event(&account, &[&launched], &tags), &invocation())
        .await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let found = ec2_tags(&member, &launched.instance).await;
    assert_eq!(
        found.get("Name").map(String::as_str),
        Some("dev-build-cache"),
        "{found:?}"
    );

    let iam = aws_sdk_iam::Client::new(&member);
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    iam.create_role()
        .role_name("build-helper")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    let report = p
        .handle(fresh(load("tag-enforcer/create-role.json"), &account), &invocation())
        .await;
    assert!(report.error.is_none(), "{report:?}");
    let role_tags = iam_role_tags(&member, "build-helper").await;
    assert_eq!(
        role_tags.get("guardrail:violation").map(String::as_str),
        Some("naming"),
        "{role_tags:?}"
    );
    let alerts = world.alerts().await;
    let why = alerts.last().map(|a| a.body["why"].to_string()).unwrap_or_default();
    assert!(
        why.contains("for example dev-build-helper") && why.contains("cannot be changed"),
        "{why}"
    );

    // Removing the marker is drift on a protected tag: reported (its value is not derivable).
    let mut untag = fresh(load("tag-enforcer/untag-role.json"), &account);
    untag["detail"]["requestParameters"]["tagKeys"] = json!(["guardrail:violation"]);
    let report = p.handle(untag, &invocation()).await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { violations: 1 }]),
        "{report:?}"
    );
}

#[tokio::test]
async fn in_enforce_mode_a_misnamed_instance_is_stopped() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    let naming = policy(with_section(
        "[naming.resources]\n\"ec2:instance\" = \"^{env}-[a-z]{3,8}$\"",
    ));
    let p = world.pipeline(Function::TagEnforcer, naming);
    // A name that cannot be made to fit (too long after the prefix): stopped, not renamed.
    let tags = [("Name", "crypto-miner-number-one-thousand")];
    let launched = launch(&member, &tags).await;
    let report = p
        .handle(launch_event(&account, &[&launched], &tags), &invocation())
        .await;
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert!(actions.iter().any(|a| a.starts_with("stop ")), "{actions:?}");
    let state = aws_sdk_ec2::Client::new(&member)
        .describe_instances()
        .instance_ids(&launched.instance)
        .send()
        .await
        .expect("DescribeInstances");
    let name = state.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string());
    assert!(matches!(name.as_deref(), Some("stopping" | "stopped")), "{name:?}");
}

#[tokio::test]
async fn in_enforce_mode_a_misnamed_role_or_user_is_marked_by_the_tag_enforcer_and_isolated_by_agent_quarantine() {
    let world = World::start().await;
    let account = world.org.account("agents").to_string();
    let member = world.emulator.config_as(&account).await;
    let naming = || {
        policy(with_section(
            "[naming.resources]\n\"iam:role\" = \"^{env}-[a-z0-9-]{3,48}$\"\n\"iam:user\" = \"^{env}-[a-z0-9-]{3,48}$\"",
        ))
    };
    let tagger = world.pipeline(Function::TagEnforcer, naming());
    let quarantine = world.pipeline(Function::AgentQuarantine, naming());
    let iam = aws_sdk_iam::Client::new(&member);
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    iam.create_role()
        .role_name("build-helper")
        .assume_role_policy_document(trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("team")
                .value("ci")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("CreateRole");
    let mut event = fresh(load("tag-enforcer/create-role.json"), &account);
    event["detail"]["responseElements"]["role"]["arn"] = json!(format!("arn:aws:iam::{account}:role/build-helper"));

    // The tag enforcer marks the name and leaves containment to agent-quarantine: its role
    // cannot put policies on principals.
    let report = tagger.handle(event.clone(), &invocation()).await;
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert!(!actions.iter().any(|a| a.starts_with("isolate")), "{actions:?}");
    let notes = world
        .alerts()
        .await
        .pop()
        .map(|a| a.body["notes"].to_string())
        .unwrap_or_default();
    assert!(
        notes.contains("agent-quarantine isolates IAM role build-helper"),
        "{notes}"
    );
    assert_eq!(
        iam_role_tags(&member, "build-helper")
            .await
            .get("guardrail:violation")
            .map(String::as_str),
        Some("naming")
    );

    // agent-quarantine, sent the same event, isolates the role as IAM has it now.
    let report = quarantine.handle(event, &invocation()).await;
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert!(
        actions.iter().any(|a| a.starts_with("isolate role build-helper")),
        "{actions:?}"
    );
    let policies = iam
        .list_role_policies()
        .role_name("build-helper")
        .send()
        .await
        .expect("ListRolePolicies");
    assert_eq!(policies.policy_names(), ["guardrail-quarantine"]);
    let tags = iam_role_tags(&member, "build-helper").await;
    assert!(
        tags.get("guardrail:quarantine")
            .is_some_and(|v| v.starts_with("isolate ") && v.contains("naming:")),
        "{tags:?}"
    );
    let alert = world.alerts().await.pop().expect("an alert");
    assert_eq!(alert.attributes.get("rule").map(String::as_str), Some("quarantine"));
    assert!(
        alert.body["happened"]
            .to_string()
            .contains("breaks the naming convention"),
        "{}",
        alert.body
    );
    // The record holds the role as IAM had it, so `guardrail release` can restore it.
    let item = world
        .item(&format!("quarantine#{account}#role#build-helper"))
        .await
        .expect("quarantine record");
    let record: guardrail::quarantine::QuarantineRecord =
        serde_json::from_str(item["record"].as_s().expect("record")).expect("JSON");
    assert!(record.prior.inline_policies.is_empty());
    assert_eq!(record.prior.arn, format!("arn:aws:iam::{account}:role/build-helper"));
    assert!(record.prior.tags.iter().any(|t| t.key == "team" && t.value == "ci"));
    assert_eq!(record.triggers[0].source, guardrail::quarantine::TriggerSource::Naming);

    // A user: the same deny, through the user's own inline policy.
    iam.create_user().user_name("ci-bot").send().await.expect("CreateUser");
    let event = fresh(load("tag-enforcer/create-user.json"), &account);
    let report = quarantine.handle(event, &invocation()).await;
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert!(
        actions.iter().any(|a| a.starts_with("isolate user ci-bot")),
        "{actions:?}"
    );
    let policies = iam
        .list_user_policies()
        .user_name("ci-bot")
        .send()
        .await
        .expect("ListUserPolicies");
    assert_eq!(policies.policy_names(), ["guardrail-quarantine"]);
    assert!(world.item(&format!("quarantine#{account}#user#ci-bot")).await.is_some());

    // A conforming name is left alone, without reading the role.
    iam.create_role()
        .role_name("agents-builder")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    let mut event = fresh(load("tag-enforcer/create-role.json"), &account);
    event["detail"]["requestParameters"]["roleName"] = json!("agents-builder");
    let mark = world.emulator.calls().len();
    let report = quarantine.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("comply")),
        "{report:?}"
    );
    let iam_calls: Vec<_> = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.starts_with("iam."))
        .collect();
    assert!(iam_calls.is_empty(), "{iam_calls:?}");
}

#[tokio::test]
async fn disallowed_values_get_the_environment_default_and_exempt_principals_are_left_alone() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let rules = policy(|p| {
        let p = with_section("[tags.allowed]\nDataClass = [\"public\", \"internal\", \"confidential\"]")(p);
        let p = p.replace(
            "[environments.dev.modes]",
            "[environments.dev.tag_defaults]\nDataClass = \"internal\"\n\n[environments.dev.modes]",
        );
        p.replace(
            "exempt = []",
            "exempt = [\"arn:aws:iam::*:role/aws-service-role/autoscaling.amazonaws.com/*\"]",
        )
    });
    let p = world.pipeline(Function::TagEnforcer, rules);
    let owner = format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a");
    let tags = [
        ("Environment", "dev"),
        ("Owner", owner.as_str()),
        ("DataClass", "top-secret"),
    ];
    let launched = launch(&member, &tags).await;
    let report = p
        .handle(launch_event(&account, &[&launched], &tags), &invocation())
        .await;
    assert!(report.error.is_none(), "{report:?}");
    let found = ec2_tags(&member, &launched.instance).await;
    assert_eq!(
        found.get("DataClass").map(String::as_str),
        Some("internal"),
        "{found:?}"
    );

    // Instances the Auto Scaling service-linked role launches are exempt.
    let bare = launch(&member, &[]).await;
    let mut event = launch_event(&account, &[&bare], &[]);
    event["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(format!(
        "arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    ));
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("exempts")),
        "{report:?}"
    );
    assert!(ec2_tags(&member, &bare.instance).await.is_empty());
}
