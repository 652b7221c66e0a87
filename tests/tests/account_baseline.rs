//! account-baseline against the emulator: a new account made through Organizations, the matching
//! `CreateAccountResult` event from `events/`, and every step checked in the account and region.

use aws_config::SdkConfig;
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::emulator::{MANAGEMENT_ACCOUNT, is_read};
use guardrail_tests::events::{fresh, furnish_default_vpc, load, run_instance, with_created_account};
use guardrail_tests::world::create_account;
use guardrail_tests::{World, invocation, outcomes};
use serde_json::{Value, json};

const REGIONS: [&str; 2] = ["us-east-1", "us-west-2"];

fn builtin() -> Policy {
    Policy::builtin().expect("built-in policy")
}

fn in_region(config: &SdkConfig, region: &'static str) -> SdkConfig {
    config.to_builder().region(aws_config::Region::new(region)).build()
}

/// A new account as Organizations makes it, its default VPCs furnished as AWS's are, and the
/// `CreateAccountResult` event announcing it.
async fn new_account(world: &World, name: &str) -> (String, Value) {
    let account = create_account(&world.config, name).await;
    let member = world.emulator.config_as(&account).await;
    for region in REGIONS {
        furnish_default_vpc(&in_region(&member, region)).await;
    }
    let event = with_created_account(
        fresh(load("account-baseline/create-account-result.json"), MANAGEMENT_ACCOUNT),
        &account,
        name,
    );
    (account, event)
}

/// The baseline's settings as they are now in the account.
struct State {
    ou: String,
    tags: Vec<(String, String)>,
    alias: Option<String>,
    min_password_length: Option<i32>,
    s3_blocked: bool,
    /// Per region: EBS encryption, IMDS tokens, snapshot and AMI public access, default VPC.
    regions: Vec<(bool, Option<String>, String, String, bool)>,
}

async fn state(world: &World, account: &str) -> State {
    let orgs = aws_sdk_organizations::Client::new(&world.config);
    let parent = orgs.list_parents().child_id(account).send().await.expect("ListParents");
    let parent_id = parent.parents()[0].id().expect("parent id").to_string();
    let ou = world
        .org
        .ous
        .iter()
        .find(|(_, id)| **id == parent_id)
        .map(|(name, _)| name.clone())
        .unwrap_or_else(|| "root".into());
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(account)
        .send()
        .await
        .expect("ListTagsForResource")
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    let member = world.emulator.config_as(account).await;
    let iam = aws_sdk_iam::Client::new(&member);
    let alias = iam
        .list_account_aliases()
        .send()
        .await
        .expect("aliases")
        .account_aliases()
        .first()
        .cloned();
    let min_password_length = iam
        .get_account_password_policy()
        .send()
        .await
        .ok()
        .and_then(|p| p.password_policy.and_then(|p| p.minimum_password_length));
    let s3_blocked = guardrail::aws::s3control_client(&member)
        .get_public_access_block()
        .account_id(account)
        .send()
        .await
        .ok()
        .and_then(|o| o.public_access_block_configuration)
        .is_some_and(|c| {
            c.block_public_acls == Some(true)
                && c.ignore_public_acls == Some(true)
                && c.block_public_policy == Some(true)
                && c.restrict_public_buckets == Some(true)
        });
    let mut regions = Vec::new();
    for region in REGIONS {
        let ec2 = aws_sdk_ec2::Client::new(&in_region(&member, region));
        let ebs = ec2
            .get_ebs_encryption_by_default()
            .send()
            .await
            .expect("ebs")
            .ebs_encryption_by_default
            == Some(true);
        let imds = ec2
            .get_instance_metadata_defaults()
            .send()
            .await
            .expect("imds")
            .account_level
            .and_then(|l| l.http_tokens)
            .map(|t| t.as_str().to_string());
        let snapshots = ec2
            .get_snapshot_block_public_access_state()
            .send()
            .await
            .expect("snapshots")
            .state
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let images = ec2
            .get_image_block_public_access_state()
            .send()
            .await
            .expect("images")
            .image_block_public_access_state
            .unwrap_or_default();
        let default_vpc = guardrail_tests::events::default_vpc_id(&ec2).await.is_some();
        regions.push((ebs, imds, snapshots, images, default_vpc));
    }
    State {
        ou,
        tags,
        alias,
        min_password_length,
        s3_blocked,
        regions,
    }
}

fn baselined_region() -> (bool, Option<String>, String, String, bool) {
    (
        true,
        Some("required".into()),
        "block-all-sharing".into(),
        "block-new-sharing".into(),
        false,
    )
}

#[tokio::test]
async fn a_new_account_is_baselined_completely_and_once() {
    let world = World::start().await;
    let (account, event) = new_account(&world, "dev-payments").await;
    let p = world.pipeline(Function::AccountBaseline, builtin());

    let report = p.handle(event.clone(), &invocation()).await;
    assert!(report.error.is_none(), "{report:?}");
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert_eq!(actions.len(), 15, "{actions:#?}");
    // Organizations moves the account only after the last call inside it.
    let calls = world.emulator.calls();
    let moved = calls
        .iter()
        .rposition(|c| c == "organizations.MoveAccount")
        .expect("moved");
    let last_inside = calls
        .iter()
        .rposition(|c| c.starts_with("ec2.") || c.starts_with("iam.") || c.starts_with("s3control."))
        .expect("configured");
    assert!(last_inside < moved, "{calls:#?}");

    let s = state(&world, &account).await;
    assert_eq!(s.ou, "dev");
    assert!(s.tags.contains(&("Environment".into(), "dev".into())), "{:?}", s.tags);
    assert!(
        s.tags.contains(&("Owner".into(), "dev-payments@example.com".into())),
        "{:?}",
        s.tags
    );
    assert_eq!(s.alias.as_deref(), Some("dev-payments"));
    assert_eq!(s.min_password_length, Some(14));
    assert!(s.s3_blocked);
    assert_eq!(s.regions, vec![baselined_region(), baselined_region()]);

    // Every reader's directory now knows the account, so neither the tag enforcer nor
    // agent-quarantine needs an Organizations call for it.
    for reader in ["tag-enforcer", "agent-quarantine"] {
        let record = world
            .item(&format!("account#{reader}#{account}"))
            .await
            .unwrap_or_else(|| panic!("{reader}'s directory record"));
        assert_eq!(record["environment"].as_s().ok().map(String::as_str), Some("dev"));
    }

    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.attributes.get("action").map(String::as_str), Some("baselined"));
    assert_eq!(a.attributes.get("severity").map(String::as_str), Some("info"));
    assert_eq!(a.attributes.get("environment").map(String::as_str), Some("dev"));
    assert_eq!(a.attributes.get("account").map(String::as_str), Some(account.as_str()));
    assert_eq!(a.body["done"].as_array().map(Vec::len), Some(15));
    assert!(
        a.body["notes"]
            .to_string()
            .contains(&format!("guardrail baseline --account {account}"))
    );

    // A replay: nothing sent, nothing changed.
    let mark = world.emulator.calls().len();
    let again = p.handle(event, &invocation()).await;
    assert!(again.error.is_none(), "{again:?}");
    assert!(
        matches!(
            outcomes(&again)[..],
            [Outcome::Duplicate { .. }] | [Outcome::Ignored { .. }]
        ),
        "{again:?}"
    );
    let writes: Vec<String> = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| !is_read(c) && c != "sts.AssumeRole")
        .collect();
    assert!(
        writes.iter().all(|c| c.starts_with("dynamodb.")),
        "a replay writes nothing: {writes:?}"
    );
    assert!(world.alerts().await.is_empty());
}

#[tokio::test]
async fn a_region_that_fails_leaves_the_rest_done_and_the_retry_finishes_it() {
    let world = World::start().await;
    let (account, event) = new_account(&world, "agents-runner-7").await;
    world.emulator.inject_fault(
        json!({"service": "ec2", "action": "EnableEbsEncryptionByDefault", "region": "us-west-2",
                             "status": 503, "code": "Unavailable", "count": -1}),
    );
    let p = world.pipeline(Function::AccountBaseline, builtin());

    let first = p.handle(event.clone(), &invocation()).await;
    let error = first.error.as_ref().expect("the event fails so Lambda retries it");
    assert_eq!(error.error_type(), "Guardrail.Partial", "{error}");
    let s = state(&world, &account).await;
    assert_eq!(
        s.ou, "root",
        "the account leaves the root, where the bootstrap role is reachable, only fully baselined"
    );
    assert_eq!(s.regions[0], baselined_region(), "us-east-1 is done");
    assert!(!s.regions[1].0, "us-west-2's EBS step failed");
    assert_eq!(
        (s.regions[1].1.as_deref(), s.regions[1].4),
        (Some("required"), false),
        "us-west-2's other steps are done"
    );
    assert!(
        world.alerts().await.is_empty(),
        "a transient failure alerts only when retries run out"
    );
    let record = world
        .item(&format!("replay#account-baseline#account-created#{account}"))
        .await
        .expect("record");
    assert_eq!(record["state"].as_s().ok().map(String::as_str), Some("Failed"));

    // Lambda's two retries fail the same way; the last one alerts, naming the failed step.
    for attempt in 2..=3 {
        let retry = p.handle(event.clone(), &invocation()).await;
        assert!(retry.error.is_some(), "attempt {attempt}");
    }
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "one alert, when the failure is final");
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("failed"));
    let done = alerts[0].body["done"].to_string();
    assert!(
        done.contains("FAILED: turn on EBS encryption by default in us-west-2"),
        "{done}"
    );
    assert!(done.contains("dead-letter"), "{done}");
    assert!(done.contains("FAILED: move the account from"), "{done}");

    // A redrive after the region recovers: only the missing step is written.
    world.emulator.clear_faults();
    let mark = world.emulator.calls().len();
    let retry = p.handle(event, &invocation()).await;
    assert!(retry.error.is_none(), "{retry:?}");
    assert!(
        matches!(outcomes(&retry)[..], [Outcome::Applied { actions }] if actions.len() == 2),
        "{retry:?}"
    );
    let writes: Vec<String> = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| c.starts_with("ec2.") && !is_read(c))
        .collect();
    assert_eq!(writes, ["ec2.EnableEbsEncryptionByDefault"]);
    let s = state(&world, &account).await;
    assert_eq!(s.regions, vec![baselined_region(), baselined_region()]);
    assert_eq!(s.ou, "agents", "then it moves");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].body["in_place"].as_array().is_some_and(|l| l.len() == 13)
            && alerts[0].body["done"].as_array().is_some_and(|l| l.len() == 2),
        "{}",
        alerts[0].body
    );
}

#[tokio::test]
async fn the_policy_kms_key_becomes_the_default_ebs_key_in_every_region() {
    let world = World::start().await;
    let (account, event) = new_account(&world, "prod-vault").await;
    let member = world.emulator.config_as(&account).await;
    let mut keys = Vec::new();
    for region in REGIONS {
        let kms = aws_sdk_kms::Client::new(&in_region(&member, region));
        let key = kms.create_key().send().await.expect("CreateKey");
        let arn = key.key_metadata().and_then(|m| m.arn()).expect("key ARN").to_string();
        kms.create_alias()
            .alias_name("alias/guardrail-ebs")
            .target_key_id(&arn)
            .send()
            .await
            .expect("CreateAlias");
        keys.push(arn);
    }
    let text = guardrail::policy::BUILTIN_POLICY.replace("ebs_kms_key = \"\"", "ebs_kms_key = \"alias/guardrail-ebs\"");
    let policy = Policy::from_toml(&text, "kms.toml").expect("policy");
    let report = world
        .pipeline(Function::AccountBaseline, policy.clone())
        .handle(event, &invocation())
        .await;
    assert!(report.error.is_none(), "{report:?}");

    // Read again, the alias resolves to the key now in use: nothing left to write.
    let policy = std::sync::Arc::new(policy);
    let access = guardrail::aws::MemberAccess::new(&world.config, policy.clone(), Function::AccountBaseline);
    let session = guardrail::apply::Session::new("test", "kms");
    let account_id = guardrail::ids::AccountId::parse(&account).expect("id");
    let facts = guardrail::aws::AwsInspector::new(access)
        .account(&session, &account_id, &guardrail::facts::Scope::All, &policy)
        .await
        .expect("read")
        .expect("a member");
    let again = guardrail::rules::baseline::plan_account(&facts, false, &policy);
    assert!(
        matches!(again, guardrail::plan::Decision::Ignore { .. }),
        "a baselined account with the policy's key needs nothing: {again:?}"
    );
    for (region, key) in REGIONS.iter().zip(keys) {
        let ec2 = aws_sdk_ec2::Client::new(&in_region(&member, region));
        let default = ec2
            .get_ebs_default_kms_key_id()
            .send()
            .await
            .expect("GetEbsDefaultKmsKeyId");
        assert_eq!(default.kms_key_id(), Some(key.as_str()), "{region}");
    }
}

#[tokio::test]
async fn a_failed_creation_alerts_with_the_reason_and_changes_nothing() {
    let world = World::start().await;
    let event = fresh(
        load("account-baseline/create-account-result-failed.json"),
        MANAGEMENT_ACCOUNT,
    );
    let mark = world.emulator.calls().len();
    let report = world
        .pipeline(Function::AccountBaseline, builtin())
        .handle(event, &invocation())
        .await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { violations: 1 }]),
        "{report:?}"
    );
    let calls = world.emulator.calls_since(mark);
    assert!(
        calls.iter().all(|c| c.starts_with("dynamodb.") || c == "sns.Publish"),
        "only the claim, the alert and the record: {calls:?}"
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].body["why"].to_string().contains("EMAIL_ALREADY_EXISTS"),
        "{}",
        alerts[0].body
    );
    assert!(alerts[0].subject.contains("dev-ledger"), "{}", alerts[0].subject);
}

#[tokio::test]
async fn detect_mode_lists_what_would_change_and_changes_nothing() {
    let world = World::start().await;
    let text = guardrail::policy::BUILTIN_POLICY.replace(
        "[environments.prod.modes]\ntags = \"fix\"\nbaseline = \"fix\"",
        "[environments.prod.modes]\ntags = \"fix\"\nbaseline = \"detect\"",
    );
    let policy = Policy::from_toml(&text, "detect.toml").expect("policy");
    let (account, event) = new_account(&world, "prod-ledger").await;
    let report = world
        .pipeline(Function::AccountBaseline, policy)
        .handle(event, &invocation())
        .await;
    assert!(
        matches!(outcomes(&report)[..], [Outcome::Detected { violations: 15 }]),
        "{report:?}"
    );
    let s = state(&world, &account).await;
    assert_eq!(s.ou, "root");
    assert!(s.regions.iter().all(|r| !r.0 && r.4), "nothing changed in any region");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("detected"));
    assert_eq!(alerts[0].attributes.get("severity").map(String::as_str), Some("medium"));
}

#[tokio::test]
async fn a_control_tower_account_is_baselined_in_place_and_its_other_event_is_a_duplicate() {
    let world = World::start().await;
    let account = create_account(&world.config, "dev-analytics").await;
    // Account Factory has already placed it in its OU.
    aws_sdk_organizations::Client::new(&world.config)
        .move_account()
        .account_id(&account)
        .source_parent_id(&world.org.root_id)
        .destination_parent_id(&world.org.ous["dev"])
        .send()
        .await
        .expect("MoveAccount");
    let lifecycle = with_created_account(
        fresh(load("account-baseline/create-managed-account.json"), MANAGEMENT_ACCOUNT),
        &account,
        "dev-analytics",
    );
    let p = world.pipeline(Function::AccountBaseline, builtin());
    let report = p.handle(lifecycle, &invocation()).await;
    let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
        panic!("{report:?}")
    };
    assert!(
        !actions.iter().any(|a| a.starts_with("move the account")),
        "{actions:?}"
    );
    assert_eq!(state(&world, &account).await.ou, "dev");

    // Organizations reports the same account's creation too: one account, one baseline.
    let organizations = with_created_account(
        fresh(load("account-baseline/create-account-result.json"), MANAGEMENT_ACCOUNT),
        &account,
        "dev-analytics",
    );
    let again = p.handle(organizations, &invocation()).await;
    assert!(
        matches!(
            outcomes(&again)[..],
            [Outcome::Duplicate { .. }] | [Outcome::Ignored { .. }]
        ),
        "{again:?}"
    );
    assert_eq!(world.alerts().await.len(), 1);
}

#[tokio::test]
async fn a_default_vpc_with_an_instance_is_left_in_place_and_said_so() {
    let world = World::start().await;
    let (account, event) = new_account(&world, "dev-build").await;
    run_instance(&world.emulator.config_as(&account).await, &[]).await;
    let report = world
        .pipeline(Function::AccountBaseline, builtin())
        .handle(event, &invocation())
        .await;
    assert!(report.error.is_none(), "{report:?}");
    let s = state(&world, &account).await;
    assert!(
        s.regions[0].4,
        "us-east-1 keeps its default VPC: an instance runs in it"
    );
    assert!(!s.regions[1].4, "us-west-2's is deleted");
    let alerts = world.alerts().await;
    assert_eq!(alerts[0].attributes.get("severity").map(String::as_str), Some("medium"));
    assert!(
        alerts[0].body["why"].to_string().contains("left in place"),
        "{}",
        alerts[0].body
    );
}

/// A new account, baselined by its creation event; the alert of that drained.
async fn baselined_account(world: &World, p: &guardrail::lambda::AwsPipeline, name: &str) -> String {
    let (account, event) = new_account(world, name).await;
    let report = p.handle(event, &invocation()).await;
    assert!(report.error.is_none(), "{report:?}");
    assert_eq!(world.alerts().await.len(), 1);
    account
}

#[tokio::test]
async fn every_call_that_undoes_a_step_is_reverted_once_and_alerted_with_who_and_from_where() {
    let world = World::start().await;
    let p = world.pipeline(Function::AccountBaseline, builtin());
    let account = baselined_account(&world, &p, "dev-ledger").await;
    let member = world.emulator.config_as(&account).await;
    let east = aws_sdk_ec2::Client::new(&in_region(&member, "us-east-1"));
    let west = aws_sdk_ec2::Client::new(&in_region(&member, "us-west-2"));
    let iam = aws_sdk_iam::Client::new(&member);

    // Someone undoes every step.
    west.disable_ebs_encryption_by_default()
        .send()
        .await
        .expect("disable EBS");
    east.modify_instance_metadata_defaults()
        .http_tokens(aws_sdk_ec2::types::MetadataDefaultHttpTokensState::Optional)
        .send()
        .await
        .expect("IMDS");
    east.disable_snapshot_block_public_access()
        .send()
        .await
        .expect("snapshots");
    west.disable_image_block_public_access().send().await.expect("images");
    guardrail::aws::s3control_client(&member)
        .delete_public_access_block()
        .account_id(&account)
        .send()
        .await
        .expect("S3");
    iam.delete_account_password_policy()
        .send()
        .await
        .expect("password policy");
    iam.delete_account_alias()
        .account_alias("dev-ledger")
        .send()
        .await
        .expect("alias");
    east.create_default_vpc().send().await.expect("default VPC");
    let undone = state(&world, &account).await;
    assert_ne!(undone.regions, vec![baselined_region(), baselined_region()]);
    assert_eq!(
        (undone.alias, undone.min_password_length, undone.s3_blocked),
        (None, None, false)
    );

    let ec2 = "ec2.amazonaws.com";
    let calls = [
        (ec2, "DisableEbsEncryptionByDefault", "us-west-2", json!({})),
        (
            ec2,
            "ModifyInstanceMetadataDefaults",
            "us-east-1",
            json!({"HttpTokens": "optional"}),
        ),
        (ec2, "DisableSnapshotBlockPublicAccess", "us-east-1", json!({})),
        (ec2, "DisableImageBlockPublicAccess", "us-west-2", json!({})),
        (
            "s3.amazonaws.com",
            "DeleteAccountPublicAccessBlock",
            "us-east-1",
            json!({"accountId": account}),
        ),
        (
            "iam.amazonaws.com",
            "DeleteAccountPasswordPolicy",
            "us-east-1",
            json!(null),
        ),
        (
            "iam.amazonaws.com",
            "DeleteAccountAlias",
            "us-east-1",
            json!({"accountAlias": "dev-ledger"}),
        ),
        (ec2, "CreateDefaultVpc", "us-east-1", json!({})),
    ];
    let mut events = Vec::new();
    for (source, name, region, params) in calls {
        let event = guardrail_tests::events::undoing_call(&account, source, name, region, params);
        let mark = world.emulator.call_lines().len();
        let report = p.handle(event.clone(), &invocation()).await;
        assert!(report.error.is_none(), "{name}: {report:?}");
        let [Outcome::Applied { actions }] = &outcomes(&report)[..] else {
            panic!("{name}: {report:?}")
        };
        assert_eq!(actions.len(), 1, "{name} restores its one step: {actions:?}");
        if name == "DisableEbsEncryptionByDefault" {
            // Only the step's own setting is read, in the event's region.
            let inside = world.emulator.calls_in(mark, &account);
            assert_eq!(
                inside,
                ["ec2.GetEbsEncryptionByDefault", "ec2.EnableEbsEncryptionByDefault"],
                "{name}"
            );
        }
        let alerts = world.alerts().await;
        assert_eq!(alerts.len(), 1, "{name}: {alerts:?}");
        let a = &alerts[0];
        assert_eq!(
            a.attributes.get("action").map(String::as_str),
            Some("restored"),
            "{name}"
        );
        assert_eq!(
            a.attributes.get("severity").map(String::as_str),
            Some("medium"),
            "{name}"
        );
        assert_eq!(
            a.attributes.get("environment").map(String::as_str),
            Some("dev"),
            "{name}"
        );
        let cause = a.body["cause"].as_str().unwrap_or_default();
        assert!(
            cause.contains("jane.doe") && cause.contains("203.0.113.7"),
            "{name}: {cause}"
        );
        let happened = a.body["happened"].as_str().unwrap_or_default();
        assert!(happened.contains(&format!("called {name}")), "{happened}");
        events.push(event);
    }
    let restored = state(&world, &account).await;
    assert_eq!(restored.regions, vec![baselined_region(), baselined_region()]);
    assert_eq!(restored.alias.as_deref(), Some("dev-ledger"));
    assert_eq!(restored.min_password_length, Some(14));
    assert!(restored.s3_blocked);

    // Each event acts once: replays (the step now in place, or the event already done) write
    // nothing in the account and alert nothing.
    let mark = world.emulator.call_lines().len();
    for event in events {
        let again = p.handle(event, &invocation()).await;
        assert!(
            matches!(
                outcomes(&again)[..],
                [Outcome::Duplicate { .. }] | [Outcome::Ignored { .. }]
            ),
            "{again:?}"
        );
    }
    assert_eq!(world.emulator.writes_in(mark, &account), Vec::<String>::new());
    assert!(world.alerts().await.is_empty());
}

#[tokio::test]
async fn an_account_moved_out_of_its_environment_ou_is_moved_back_and_guardrails_own_move_is_ignored() {
    let world = World::start().await;
    let p = world.pipeline(Function::AccountBaseline, builtin());
    let account = baselined_account(&world, &p, "agents-crawler").await;
    let (agents, sandbox) = (world.org.ous["agents"].clone(), world.org.ous["sandbox"].clone());
    aws_sdk_organizations::Client::new(&world.config)
        .move_account()
        .account_id(&account)
        .source_parent_id(&agents)
        .destination_parent_id(&sandbox)
        .send()
        .await
        .expect("MoveAccount");

    let event = guardrail_tests::events::move_account_event(MANAGEMENT_ACCOUNT, &account, &agents, &sandbox);
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Applied { actions }] if actions.len() == 1),
        "{report:?}"
    );
    assert_eq!(state(&world, &account).await.ou, "agents");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("restored"));
    let why = alerts[0].body["why"].to_string();
    assert!(
        why.contains("moved out of its environment's OU agents into sandbox"),
        "{why}"
    );
    assert!(alerts[0].body["cause"].to_string().contains("sam.roe"));

    // The move back is Guardrail's own (guardrail-management): its event is ignored unread.
    let mut own = guardrail_tests::events::move_account_event(MANAGEMENT_ACCOUNT, &account, &sandbox, &agents);
    guardrail_tests::events::detail(&mut own)["userIdentity"] = json!({
        "type": "AssumedRole",
        "arn": format!("arn:aws:sts::{MANAGEMENT_ACCOUNT}:assumed-role/guardrail-management/guardrail-account-baseline-x"),
        "sessionContext": {"sessionIssuer": {"type": "Role",
            "arn": format!("arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/guardrail-management")}}
    });
    let mark = world.emulator.calls().len();
    let report = p.handle(own, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Ignored { reason }] if reason.contains("Guardrail's own role")),
        "{report:?}"
    );
    assert_eq!(world.emulator.calls_since(mark), Vec::<String>::new());
    assert!(world.alerts().await.is_empty());
}

#[tokio::test]
async fn the_member_role_is_used_where_it_exists_and_the_bootstrap_role_where_it_does_not_yet() {
    let world = World::start().await;
    let p = world.pipeline(Function::AccountBaseline, builtin());
    // The StackSet has not reached the new account: its member role refuses.
    world
        .emulator
        .inject_fault(json!({"service": "sts", "action": "AssumeRole",
        "body": "role/guardrail-account-baseline", "status": 403, "code": "AccessDenied", "count": -1}));
    let mark = world.emulator.call_lines().len();
    let account = baselined_account(&world, &p, "prod-ledger").await;
    let callers = |mark: usize| -> Vec<String> {
        world.emulator.call_lines()[mark..]
            .iter()
            .filter(|l| l.starts_with("ec2.") || l.starts_with("iam."))
            .filter_map(|l| l.split_whitespace().nth(2))
            .map(|c| c.split('/').nth(1).unwrap_or_default().to_string())
            .collect()
    };
    let used = callers(mark);
    assert!(!used.is_empty());
    assert!(used.iter().all(|r| r == "OrganizationAccountAccessRole"), "{used:?}");
    let refused = world.emulator.call_lines()[mark..]
        .iter()
        .filter(|l| l.starts_with("sts.AssumeRole 403-injected"))
        .count();
    assert_eq!(refused, 1, "the refusal is remembered for the event");

    // Once the StackSet has run, the member role does the work, under the source identity.
    world.emulator.clear_faults();
    aws_sdk_ec2::Client::new(&in_region(&world.emulator.config_as(&account).await, "us-east-1"))
        .disable_ebs_encryption_by_default()
        .send()
        .await
        .expect("disable");
    let event = guardrail_tests::events::undoing_call(
        &account,
        "ec2.amazonaws.com",
        "DisableEbsEncryptionByDefault",
        "us-east-1",
        json!({}),
    );
    let mark = world.emulator.call_lines().len();
    let report = p.handle(event, &invocation()).await;
    assert!(
        matches!(&outcomes(&report)[..], [Outcome::Applied { .. }]),
        "{report:?}"
    );
    let used = callers(mark);
    assert_eq!(
        used,
        ["guardrail-account-baseline", "guardrail-account-baseline"],
        "{used:?}"
    );
}

/// Where the environment makes deleting a default VPC wait for a person, a new account's whole
/// baseline waits (its steps are one plan): nothing is written in the account or Organizations
/// until the approval, and the approved run baselines it completely, through the same roles.
#[tokio::test]
async fn a_baseline_that_waits_for_approval_changes_nothing_until_approved() {
    use guardrail::approval::{Decided, State as Standing};
    let world = World::start().await;
    let (account, event) = new_account(&world, "dev-ledgers").await;
    let text = guardrail::policy::BUILTIN_POLICY.replacen(
        "[environments.dev.modes]",
        "approval = [\"delete-default-vpc\"]\n[environments.dev.modes]",
        1,
    );
    let p = world.pipeline(
        Function::AccountBaseline,
        Policy::from_toml(&text, "test").expect("policy"),
    );
    let mark = world.emulator.calls().len();
    let report = p.handle(event, &invocation()).await;
    let [Outcome::Pending { approval: id }] = &outcomes(&report)[..] else {
        panic!("the baseline waits: {report:?}")
    };
    assert_eq!(world.emulator.writes_in(mark, &account), Vec::<String>::new());
    assert!(
        !world
            .emulator
            .calls_since(mark)
            .contains(&"organizations.MoveAccount".to_string()),
        "the account stays where it is"
    );
    let before = state(&world, &account).await;
    assert_eq!((before.ou.as_str(), before.alias.as_deref()), ("root", None));
    let alert = &world.alerts().await[0];
    assert_eq!(alert.attributes["action"], "pending");
    assert!(
        alert
            .body
            .to_string()
            .contains("delete-default-vpc needs a person's approval")
    );

    let table = guardrail::aws::ApprovalTable::new(&world.config, &world.stack.table);
    let approval = table.get(id).await.expect("read").expect("kept");
    let approved = approval.decide(
        Standing::Approved,
        Decided {
            by: "arn:aws:iam::123456789012:role/platform-oncall".into(),
            reason: "new ledger account, default VPCs unused".into(),
            at: chrono::Utc::now(),
        },
    );
    assert!(table.update(&approved, Standing::Pending).await.expect("approve"));
    let outcome = p.run_approved(&approved, &invocation()).await.expect("applied");
    let Outcome::Applied { actions } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(actions.len(), 15, "{actions:#?}");
    let after = state(&world, &account).await;
    assert_eq!(after.ou, "dev");
    assert_eq!(after.regions, vec![baselined_region(), baselined_region()]);
}
