//! The tag enforcer's RunInstances slice against the emulator, through the same pipeline the
//! Lambda runs: tags fixed in the member account, replay record written, one alert.

use chrono::{Duration, Utc};
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{Launched, ec2_tags, launch, launch_event};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::Value;

fn builtin() -> Policy {
    Policy::builtin().expect("built-in policy")
}

/// An agent launches an instance in the account of `ou` with these creation tags.
async fn agent_launch(world: &World, ou: &str, tags: &[(&str, &str)]) -> (String, Value) {
    let account = world.org.account(ou).to_string();
    let member = world.emulator.config_as(&account).await;
    let launched = launch(&member, tags).await;
    let event = launch_event(&account, &[&launched], tags);
    (launched.instance, event)
}

#[tokio::test]
async fn run_instances_gets_environment_corrected_and_owner_added_once() {
    let world = World::start().await;
    let (instance, event) = agent_launch(&world, "dev", &[("Name", "build-cache"), ("Environment", "prod")]).await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let p = world.pipeline(Function::TagEnforcer, builtin());

    let mark = world.emulator.calls().len();
    let report = p.handle(event.clone(), &invocation()).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let creates = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c == "ec2.CreateTags")
        .count();
    assert_eq!(creates, 1, "the instance, its interface and its volume in one call");

    let tags = ec2_tags(&member, &instance).await;
    assert_eq!(tags.get("Environment").map(String::as_str), Some("dev"), "{tags:?}");
    let volumes = aws_sdk_ec2::Client::new(&member)
        .describe_volumes()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("attachment.instance-id")
                .values(&instance)
                .build(),
        )
        .send()
        .await
        .expect("DescribeVolumes");
    assert!(!volumes.volumes().is_empty(), "the emulator attaches a root volume");
    for v in volumes.volumes() {
        let on_volume = ec2_tags(&member, v.volume_id().expect("id")).await;
        assert_eq!(
            on_volume.get("Environment").map(String::as_str),
            Some("dev"),
            "{on_volume:?}"
        );
    }
    assert_eq!(
        tags.get("Owner").map(String::as_str),
        Some(format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a").as_str())
    );
    assert_eq!(tags.get("Name").map(String::as_str), Some("build-cache"));

    let event_id = event["detail"]["eventID"].as_str().expect("eventID");
    let record = world
        .item(&format!("replay#tag-enforcer#cloudtrail#{event_id}"))
        .await
        .expect("replay record");
    assert_eq!(record["state"].as_s().ok().map(String::as_str), Some("Completed"));
    assert!(record.contains_key("expires_at"));

    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert!(alert.subject.len() <= 100, "{}", alert.subject);
    assert!(alert.subject.contains(&account), "{}", alert.subject);
    assert_eq!(alert.attributes.get("severity").map(String::as_str), Some("high"));
    assert_eq!(
        alert.attributes.get("account").map(String::as_str),
        Some(account.as_str())
    );
    assert_eq!(alert.attributes.get("environment").map(String::as_str), Some("dev"));
    assert_eq!(alert.attributes.get("rule").map(String::as_str), Some("tags"));
    assert_eq!(alert.attributes.get("action").map(String::as_str), Some("tagged"));
    assert_eq!(alert.body["schema"], "guardrail.alert/1");
    assert_eq!(alert.body["resources"][0], instance.as_str());
    let undo = alert.body["undo"].to_string();
    assert!(
        undo.contains("Key=Environment,Value=prod") && undo.contains("delete-tags"),
        "{undo}"
    );

    // The same event again, as EventBridge's at-least-once delivery may do: nothing happens.
    let again = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&again)[..], [Outcome::Duplicate { .. }]), "{again:?}");
    assert!(world.alerts().await.is_empty(), "a duplicate must not alert");
    assert_eq!(ec2_tags(&member, &instance).await, tags);
}

#[tokio::test]
async fn a_compliant_instance_costs_no_write_and_no_alert() {
    let world = World::start().await;
    let account = world.org.account("prod").to_string();
    let owner = format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a");
    let (_, event) = agent_launch(&world, "prod", &[("Environment", "prod"), ("Owner", &owner)]).await;
    let p = world.pipeline(Function::TagEnforcer, builtin());
    let mark = world.emulator.calls().len();
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("comply")),
        "{report:?}"
    );
    // Only the directory, the first time: its record, Organizations, and the record written
    // back. No claim, no tag write, no publish.
    assert_eq!(
        world.emulator.calls_since(mark),
        [
            "dynamodb.GetItem",
            "organizations.ListParents",
            "organizations.DescribeOrganizationalUnit",
            "dynamodb.PutItem"
        ]
    );
    assert!(world.alerts().await.is_empty());

    // A second compliant event in the same container reads nothing at all (directory cached).
    let (_, event) = agent_launch(&world, "prod", &[("Environment", "prod"), ("Owner", &owner)]).await;
    let mark = world.emulator.calls().len();
    p.handle(event, &invocation()).await;
    assert_eq!(world.emulator.calls_since(mark), Vec::<String>::new());
}

#[tokio::test]
async fn another_functions_directory_records_do_not_steer_the_tag_enforcer() {
    let world = World::start().await;
    let account = world.org.account("prod").to_string();
    // A false placement where agent-quarantine keeps its records, and under the key every
    // function once shared: prod made to look like dev.
    let now = Utc::now().to_rfc3339();
    for pk in [
        format!("account#agent-quarantine#{account}"),
        format!("account#{account}"),
    ] {
        world
            .put_item(&[
                ("pk", &pk),
                ("environment", "dev"),
                ("ou_name", "Dev"),
                ("resolved_at", &now),
            ])
            .await;
    }
    let (instance, event) = agent_launch(&world, "prod", &[]).await;
    let p = world.pipeline(Function::TagEnforcer, builtin());
    let report = p.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");
    let member = world.emulator.config_as(&account).await;
    let tags = ec2_tags(&member, &instance).await;
    assert_eq!(tags.get("Environment").map(String::as_str), Some("prod"), "{tags:?}");
    // It asked Organizations and kept the answer in its own record.
    let own = world
        .item(&format!("account#tag-enforcer#{account}"))
        .await
        .expect("the tag enforcer's own record");
    assert_eq!(own["environment"].as_s().ok().map(String::as_str), Some("prod"));
}

#[tokio::test]
async fn ignored_events_change_nothing() {
    let world = World::start().await;
    let p = world.pipeline(Function::TagEnforcer, builtin());
    let dev = world.org.account("dev").to_string();

    let (instance, mut failed) = agent_launch(&world, "dev", &[]).await;
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    let (_, mut own) = agent_launch(&world, "dev", &[]).await;
    own["detail"]["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] =
        format!("arn:aws:iam::{dev}:role/guardrail-tag-enforcer").into();
    let (_, unmanaged) = agent_launch(&world, "sandbox", &[]).await;
    let mut stale = failed.clone();
    stale["detail"]["errorCode"] = Value::Null;
    stale["detail"]["eventTime"] = (Utc::now() - Duration::hours(2)).to_rfc3339().into();
    let stranger = Launched {
        instance: "i-0123456789abcdef0".into(),
        interfaces: Vec::new(),
    };
    let outsider = launch_event("999999999999", &[&stranger], &[]);

    let cases = [
        (failed, "ignored", "failed"),
        (own, "ignored", "Guardrail's own role"),
        (unmanaged, "ignored", "sandbox"),
        (stale, "rejected", "freshness window"),
        (outsider, "rejected", "not a member"),
    ];
    for (event, outcome, needle) in cases {
        let report = p.handle(event, &invocation()).await;
        let text = serde_json::to_string(&report).expect("report JSON");
        assert_eq!(report.events[0].outcome.name(), outcome, "{text}");
        assert!(text.contains(needle), "{text}");
    }
    let member = world.emulator.config_as(&dev).await;
    assert!(ec2_tags(&member, &instance).await.is_empty());
    assert!(world.alerts().await.is_empty());
}

#[tokio::test]
async fn detect_mode_alerts_without_changing_tags() {
    let world = World::start().await;
    let text = guardrail::policy::BUILTIN_POLICY.replace(
        "[environments.dev.modes]\ntags = \"fix\"",
        "[environments.dev.modes]\ntags = \"detect\"",
    );
    let policy = Policy::from_toml(&text, "detect.toml").expect("policy");
    let (instance, event) = agent_launch(&world, "dev", &[("Environment", "prod")]).await;
    let report = world
        .pipeline(Function::TagEnforcer, policy)
        .handle(event, &invocation())
        .await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { violations: 6 }]),
        "{report:?}"
    );
    let member = world.emulator.config_as(world.org.account("dev")).await;
    assert_eq!(
        ec2_tags(&member, &instance)
            .await
            .get("Environment")
            .map(String::as_str),
        Some("prod")
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("detected"));
    assert!(alerts[0].body["done"].to_string().contains("mode is detect"));
}

#[tokio::test]
async fn a_failed_alert_fails_the_event_and_the_retry_finishes_it() {
    let world = World::start().await;
    let (instance, event) = agent_launch(&world, "agents", &[]).await;
    let mut config = world.guardrail_config(builtin());
    config.topic_arn = format!("{}-missing", world.stack.topic_arn);
    let broken = guardrail::lambda::aws_pipeline(
        Function::TagEnforcer,
        config,
        world.function_config(Function::TagEnforcer),
    );

    let report = broken.handle(event.clone(), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Failed { .. }]), "{report:?}");
    let error = report
        .into_result()
        .expect_err("the invocation fails so Lambda retries");
    assert_eq!(error.error_type(), "Guardrail.AwsError");
    let event_id = event["detail"]["eventID"].as_str().expect("id").to_string();
    let record = world
        .item(&format!("replay#tag-enforcer#cloudtrail#{event_id}"))
        .await
        .expect("record");
    assert_eq!(record["state"].as_s().ok().map(String::as_str), Some("Failed"));

    // Lambda's retry, now with a working topic: the tags (already set) are not written again,
    // the alert goes out, the event completes.
    let member = world.emulator.config_as(world.org.account("agents")).await;
    assert_eq!(
        ec2_tags(&member, &instance)
            .await
            .get("Environment")
            .map(String::as_str),
        Some("agents")
    );
    let fixed = world.pipeline(Function::TagEnforcer, builtin());
    let mark = world.emulator.calls().len();
    let retry = fixed.handle(event, &invocation()).await;
    assert!(matches!(outcomes(&retry)[..], [Outcome::Applied { .. }]), "{retry:?}");
    // Finished steps are not repeated: the kill switch (a new container reads it once), the
    // breaker (the event was counted before: counted once), claim, the ledger entries of the
    // steps done (put again, stored once), publish, complete; no AssumeRole, no CreateTags.
    let calls = world.emulator.calls_since(mark);
    assert_eq!(
        calls
            .iter()
            .filter(|c| !c.starts_with("dynamodb.GetItem") && !c.starts_with("organizations."))
            .collect::<Vec<_>>(),
        [
            "ssm.GetParameter",
            "dynamodb.UpdateItem",
            "dynamodb.UpdateItem",
            "dynamodb.PutItem",
            "dynamodb.PutItem",
            "sns.Publish",
            "dynamodb.UpdateItem"
        ],
        "{calls:?}"
    );
    assert_eq!(world.alerts().await.len(), 1);
    let record = world
        .item(&format!("replay#tag-enforcer#cloudtrail#{event_id}"))
        .await
        .expect("record");
    assert_eq!(record["state"].as_s().ok().map(String::as_str), Some("Completed"));
    assert_eq!(record["attempts"].as_n().ok().map(String::as_str), Some("2"));
    // The two deliveries are one event to the breaker.
    let agents = guardrail::ids::AccountId::parse(world.org.account("agents")).expect("id");
    let breaker = guardrail::aws::BreakerTable::new(&world.config, &world.stack.table)
        .status(guardrail::policy::Rule::Tags, &agents)
        .await
        .expect("breaker");
    assert_eq!(breaker.tallies.len(), 1, "{breaker:?}");
}

#[tokio::test]
async fn a_log_file_of_many_records_is_handled_record_by_record() {
    let world = World::start().await;
    let p = world.pipeline(Function::TagEnforcer, builtin());
    let (a, first) = agent_launch(&world, "dev", &[]).await;
    let (b, second) = agent_launch(&world, "agents", &[]).await;
    let log_file = serde_json::json!({"Records": [first["detail"], second["detail"]]});
    let report = p.handle(log_file, &invocation()).await;
    assert!(
        matches!(
            outcomes(&report)[..],
            [Outcome::Applied { .. }, Outcome::Applied { .. }]
        ),
        "{report:?}"
    );
    for (ou, id) in [("dev", a), ("agents", b)] {
        let member = world.emulator.config_as(world.org.account(ou)).await;
        assert_eq!(
            ec2_tags(&member, &id).await.get("Environment").map(String::as_str),
            Some(ou)
        );
    }
    assert_eq!(world.alerts().await.len(), 2);
}
