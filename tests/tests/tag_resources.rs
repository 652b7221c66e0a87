//! Every resource type of the tag enforcer's table, against the emulator: the resource is created
//! for real in a member account, its event from `events/tag-enforcer/` is aimed at it, and its tags
//! are read back through the service's own API (not the call Guardrail wrote them with).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{fresh, launch, load};
use guardrail_tests::{World, invocation, outcomes};
use serde_json::{Value, json};

/// One resource type: its sample event, and how the test makes and reads it.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Volume,
    Snapshot,
    Snapshots,
    Image,
    SecurityGroup,
    Vpc,
    Subnet,
    LaunchTemplate,
    Role,
    User,
    Policy,
    Topic,
    Table,
    Bucket,
    Function,
    Queue,
    Key,
}

const KINDS: [Kind; 17] = [
    Kind::Volume,
    Kind::Snapshot,
    Kind::Snapshots,
    Kind::Image,
    Kind::SecurityGroup,
    Kind::Vpc,
    Kind::Subnet,
    Kind::LaunchTemplate,
    Kind::Role,
    Kind::User,
    Kind::Policy,
    Kind::Topic,
    Kind::Table,
    Kind::Bucket,
    Kind::Function,
    Kind::Queue,
    Kind::Key,
];

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Volume => "create-volume",
            Kind::Snapshot => "create-snapshot",
            Kind::Snapshots => "create-snapshots",
            Kind::Image => "create-image",
            Kind::SecurityGroup => "create-security-group",
            Kind::Vpc => "create-vpc",
            Kind::Subnet => "create-subnet",
            Kind::LaunchTemplate => "create-launch-template",
            Kind::Role => "create-role",
            Kind::User => "create-user",
            Kind::Policy => "create-policy",
            Kind::Topic => "create-topic",
            Kind::Table => "create-table",
            Kind::Bucket => "create-bucket",
            Kind::Function => "create-function",
            Kind::Queue => "create-queue",
            Kind::Key => "create-key",
        }
    }
}

fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    // A loopback endpoint has no bucket subdomains.
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(config).force_path_style(true).build())
}

/// Creates the resource in the account `config` acts in; returns the id the event names and
/// the field(s) of the event to set to it.
async fn create(kind: Kind, config: &SdkConfig, account: &str) -> (String, Vec<(&'static str, Value)>) {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let iam = aws_sdk_iam::Client::new(config);
    let id = |s: Option<&str>| s.expect("an id from the emulator").to_string();
    match kind {
        Kind::Volume => {
            let v = ec2
                .create_volume()
                .availability_zone("us-east-1a")
                .size(20)
                .send()
                .await
                .expect("CreateVolume");
            let id = id(v.volume_id());
            (id.clone(), vec![("responseElements.volumeId", json!(id))])
        }
        Kind::Snapshot | Kind::Snapshots => {
            let v = ec2
                .create_volume()
                .availability_zone("us-east-1a")
                .size(8)
                .send()
                .await
                .expect("CreateVolume");
            let s = ec2
                .create_snapshot()
                .volume_id(id(v.volume_id()))
                .send()
                .await
                .expect("CreateSnapshot");
            let id = id(s.snapshot_id());
            let at = match kind {
                Kind::Snapshot => "responseElements.snapshotId",
                _ => "responseElements.CreateSnapshotsResponse.snapshotSet.item[0].snapshotId",
            };
            (id.clone(), vec![(at, json!(id))])
        }
        Kind::Image => {
            let instance = launch(config, &[]).await.instance;
            let i = ec2
                .create_image()
                .instance_id(instance)
                .name("build-cache-image")
                .send()
                .await
                .expect("CreateImage");
            let id = id(i.image_id());
            (id.clone(), vec![("responseElements.imageId", json!(id))])
        }
        Kind::SecurityGroup => {
            let g = ec2
                .create_security_group()
                .group_name("build-cache")
                .description("agent build cache")
                .send()
                .await
                .expect("CreateSecurityGroup");
            let id = id(g.group_id());
            (id.clone(), vec![("responseElements.groupId", json!(id))])
        }
        Kind::Vpc => {
            let v = ec2
                .create_vpc()
                .cidr_block("10.20.0.0/16")
                .send()
                .await
                .expect("CreateVpc");
            let id = id(v.vpc().and_then(|v| v.vpc_id()));
            (id.clone(), vec![("responseElements.vpc.vpcId", json!(id))])
        }
        Kind::Subnet => {
            let v = ec2
                .create_vpc()
                .cidr_block("10.30.0.0/16")
                .send()
                .await
                .expect("CreateVpc");
            let s = ec2
                .create_subnet()
                .vpc_id(id(v.vpc().and_then(|v| v.vpc_id())))
                .cidr_block("10.30.1.0/24")
                .send()
                .await
                .expect("CreateSubnet");
            let id = id(s.subnet().and_then(|s| s.subnet_id()));
            (id.clone(), vec![("responseElements.subnet.subnetId", json!(id))])
        }
        Kind::LaunchTemplate => {
            let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build();
            let t = ec2
                .create_launch_template()
                .launch_template_name("build-cache")
                .launch_template_data(data)
                .send()
                .await
                .expect("CreateLaunchTemplate");
            let id = id(t.launch_template().and_then(|t| t.launch_template_id()));
            (
                id.clone(),
                vec![(
                    "responseElements.CreateLaunchTemplateResponse.launchTemplate.launchTemplateId",
                    json!(id),
                )],
            )
        }
        Kind::Role => {
            create_role(&iam, "build-helper").await;
            ("build-helper".into(), Vec::new())
        }
        Kind::User => {
            iam.create_user().user_name("ci-bot").send().await.expect("CreateUser");
            ("ci-bot".into(), Vec::new())
        }
        Kind::Policy => {
            let p = iam
                .create_policy()
                .policy_name("read-build-cache")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
                .send()
                .await
                .expect("CreatePolicy");
            let arn = id(p.policy().and_then(|p| p.arn()));
            (arn.clone(), vec![("responseElements.policy.arn", json!(arn))])
        }
        Kind::Topic => {
            let t = aws_sdk_sns::Client::new(config)
                .create_topic()
                .name("build-events")
                .send()
                .await
                .expect("CreateTopic");
            let arn = id(t.topic_arn());
            (arn.clone(), vec![("responseElements.topicArn", json!(arn))])
        }
        Kind::Table => {
            let arn = guardrail_tests::world::create_table(config, "build-cache").await;
            (
                arn.clone(),
                vec![("responseElements.tableDescription.tableArn", json!(arn))],
            )
        }
        Kind::Bucket => {
            let name = format!("dev-build-cache-{account}");
            s3(config)
                .create_bucket()
                .bucket(&name)
                .send()
                .await
                .expect("CreateBucket");
            (
                format!("arn:aws:s3:::{name}"),
                vec![("requestParameters.bucketName", json!(name))],
            )
        }
        Kind::Function => {
            let role = create_role(&iam, "build-notifier-role").await;
            let code = aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_smithy_types::Blob::new(zip_with_handler()))
                .build();
            let f = aws_sdk_lambda::Client::new(config)
                .create_function()
                .function_name("build-notifier")
                .runtime(aws_sdk_lambda::types::Runtime::Python312)
                .role(role)
                .handler("app.handler")
                .code(code)
                .send()
                .await
                .expect("CreateFunction");
            let arn = id(f.function_arn());
            (arn.clone(), vec![("responseElements.functionArn", json!(arn))])
        }
        Kind::Queue => {
            let q = aws_sdk_sqs::Client::new(config)
                .create_queue()
                .queue_name("build-jobs")
                .send()
                .await
                .expect("CreateQueue");
            let url = id(q.queue_url());
            (url.clone(), vec![("responseElements.queueUrl", json!(url))])
        }
        Kind::Key => {
            let k = aws_sdk_kms::Client::new(config)
                .create_key()
                .send()
                .await
                .expect("CreateKey");
            let arn = id(k.key_metadata().and_then(|m| m.arn()));
            (arn.clone(), vec![("responseElements.keyMetadata.arn", json!(arn))])
        }
    }
}

async fn create_role(iam: &aws_sdk_iam::Client, name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let r = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
    r.role().map(|r| r.arn().to_string()).expect("role ARN")
}

/// A zip archive (stored, not compressed) holding `app.py`.
fn zip_with_handler() -> Vec<u8> {
    let body = b"def handler(event, context):\n    return event\n";
    let name = b"app.py";
    let crc = crc32(body);
    let mut zip = Vec::new();
    let local = zip.len() as u32;
    zip.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&(body.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(body.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&[0, 0]);
    zip.extend_from_slice(name);
    zip.extend_from_slice(body);
    let central = zip.len() as u32;
    zip.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    zip.extend_from_slice(&crc.to_le_bytes());
    zip.extend_from_slice(&(body.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(body.len() as u32).to_le_bytes());
    zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
    zip.extend_from_slice(&[0; 12]);
    zip.extend_from_slice(&local.to_le_bytes());
    zip.extend_from_slice(name);
    let size = zip.len() as u32 - central;
    zip.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&size.to_le_bytes());
    zip.extend_from_slice(&central.to_le_bytes());
    zip.extend_from_slice(&[0, 0]);
    zip
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The resource's tags, through the service's own read call.
async fn tags(kind: Kind, config: &SdkConfig, id: &str) -> BTreeMap<String, String> {
    let pairs: Vec<(String, String)> = match kind {
        Kind::Volume
        | Kind::Snapshot
        | Kind::Snapshots
        | Kind::Image
        | Kind::SecurityGroup
        | Kind::Vpc
        | Kind::Subnet
        | Kind::LaunchTemplate => return guardrail_tests::events::ec2_tags(config, id).await,
        Kind::Role => {
            let out = aws_sdk_iam::Client::new(config)
                .list_role_tags()
                .role_name(id)
                .send()
                .await
                .expect("ListRoleTags");
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::User => {
            let out = aws_sdk_iam::Client::new(config)
                .list_user_tags()
                .user_name(id)
                .send()
                .await
                .expect("ListUserTags");
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::Policy => {
            let out = aws_sdk_iam::Client::new(config)
                .list_policy_tags()
                .policy_arn(id)
                .send()
                .await
                .expect("ListPolicyTags");
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::Topic => {
            let out = aws_sdk_sns::Client::new(config)
                .list_tags_for_resource()
                .resource_arn(id)
                .send()
                .await
                .expect("SNS tags");
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::Table => {
            let out = aws_sdk_dynamodb::Client::new(config)
                .list_tags_of_resource()
                .resource_arn(id)
                .send()
                .await
                .expect("DynamoDB tags");
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::Bucket => {
            let bucket = id.trim_start_matches("arn:aws:s3:::");
            let out = s3(config)
                .get_bucket_tagging()
                .bucket(bucket)
                .send()
                .await
                .expect("GetBucketTagging");
            out.tag_set()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        }
        Kind::Function => {
            let out = aws_sdk_lambda::Client::new(config)
                .list_tags()
                .resource(id)
                .send()
                .await
                .expect("Lambda ListTags");
            out.tags().cloned().unwrap_or_default().into_iter().collect()
        }
        Kind::Queue => {
            let out = aws_sdk_sqs::Client::new(config)
                .list_queue_tags()
                .queue_url(id)
                .send()
                .await
                .expect("ListQueueTags");
            out.tags().cloned().unwrap_or_default().into_iter().collect()
        }
        Kind::Key => {
            let out = aws_sdk_kms::Client::new(config)
                .list_resource_tags()
                .key_id(id)
                .send()
                .await
                .expect("KMS tags");
            out.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
                .collect()
        }
    };
    pairs.into_iter().collect()
}

/// Renames every `Environment` tag the event's record carries to `environment` (any of the
/// three tag shapes CloudTrail records), giving the event one if it takes tags in
/// `requestParameters.tags` and carries none; returns the value, so that the resource can be
/// given the same misspelled tag (`None`: the event cannot carry one).
fn misspell(kind: Kind, event: &mut Value) -> Option<String> {
    fn walk(v: &mut Value, found: &mut Option<String>) {
        match v {
            Value::Object(map) => {
                for (key, value) in [("key", "value"), ("tagKey", "tagValue")] {
                    if map.get(key).and_then(Value::as_str) == Some("Environment") {
                        map.insert(key.into(), json!("environment"));
                        *found = map.get(value).and_then(Value::as_str).map(str::to_string);
                    }
                }
                if let Some(value) = map.remove("Environment") {
                    *found = value.as_str().map(str::to_string);
                    map.insert("environment".into(), value);
                }
                map.values_mut().for_each(|v| walk(v, found));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = None;
    walk(guardrail_tests::events::detail(event), &mut found);
    match (found, kind) {
        (Some(value), _) => Some(value),
        (None, Kind::Policy) => {
            set(
                event,
                "requestParameters.tags",
                json!([{"key": "environment", "value": "prod"}]),
            );
            Some("prod".into())
        }
        // CreateBucket records no tags; CreateSnapshots records them where the sample has none.
        (None, _) => None,
    }
}

/// Tags the resource through the service's own API.
async fn tag(kind: Kind, config: &SdkConfig, id: &str, key: &str, value: &str) {
    match kind {
        Kind::Volume
        | Kind::Snapshot
        | Kind::Snapshots
        | Kind::Image
        | Kind::SecurityGroup
        | Kind::Vpc
        | Kind::Subnet
        | Kind::LaunchTemplate => {
            aws_sdk_ec2::Client::new(config)
                .create_tags()
                .resources(id)
                .tags(aws_sdk_ec2::types::Tag::builder().key(key).value(value).build())
                .send()
                .await
                .expect("CreateTags");
        }
        Kind::Role | Kind::User | Kind::Policy => {
            let iam = aws_sdk_iam::Client::new(config);
            let t = aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .expect("tag");
            let done = match kind {
                Kind::Role => iam.tag_role().role_name(id).tags(t).send().await.is_ok(),
                Kind::User => iam.tag_user().user_name(id).tags(t).send().await.is_ok(),
                _ => iam.tag_policy().policy_arn(id).tags(t).send().await.is_ok(),
            };
            assert!(done, "IAM tag on {id}");
        }
        Kind::Topic => {
            let t = aws_sdk_sns::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .expect("tag");
            aws_sdk_sns::Client::new(config)
                .tag_resource()
                .resource_arn(id)
                .tags(t)
                .send()
                .await
                .expect("SNS TagResource");
        }
        Kind::Table => {
            let t = aws_sdk_dynamodb::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .expect("tag");
            aws_sdk_dynamodb::Client::new(config)
                .tag_resource()
                .resource_arn(id)
                .tags(t)
                .send()
                .await
                .expect("DynamoDB TagResource");
        }
        Kind::Bucket => unreachable!("CreateBucket records no tags to misspell"),
        Kind::Function => {
            aws_sdk_lambda::Client::new(config)
                .tag_resource()
                .resource(id)
                .tags(key, value)
                .send()
                .await
                .expect("Lambda TagResource");
        }
        Kind::Queue => {
            aws_sdk_sqs::Client::new(config)
                .tag_queue()
                .queue_url(id)
                .tags(key, value)
                .send()
                .await
                .expect("TagQueue");
        }
        Kind::Key => {
            let t = aws_sdk_kms::types::Tag::builder()
                .tag_key(key)
                .tag_value(value)
                .build()
                .expect("tag");
            aws_sdk_kms::Client::new(config)
                .tag_resource()
                .key_id(id)
                .tags(t)
                .send()
                .await
                .expect("KMS TagResource");
        }
    }
}

/// Sets a dotted path (with `name[0]` for the first element of a list) inside an event's record.
fn set(event: &mut Value, path: &str, value: Value) {
    let mut at = guardrail_tests::events::detail(event);
    for segment in path.split('.') {
        at = match segment.strip_suffix("[0]") {
            Some(name) => &mut at[name][0],
            None => &mut at[segment],
        };
    }
    *at = value;
}

/// Created with `environment=...` (a misspelling IAM conditions would match as `Environment`):
/// the canonical key is written and the misspelled one removed, through each service's API.
#[tokio::test]
async fn every_resource_type_gets_its_tags_fixed_through_its_own_api() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let pipeline = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let owner = format!("arn:aws:sts::{account}:assumed-role/agent-runner/run-7f3a");
    let mut failures = Vec::new();
    let mut renamed = Vec::new();
    for kind in KINDS {
        let (id, fields) = create(kind, &member, &account).await;
        let mut event = fresh(load(&format!("tag-enforcer/{}.json", kind.file())), &account);
        for (path, value) in fields {
            set(&mut event, path, value);
        }
        let misspelled = misspell(kind, &mut event);
        if let Some(value) = &misspelled {
            tag(kind, &member, &id, "environment", value).await;
            renamed.push(kind);
        }
        let report = pipeline.handle(event, &invocation()).await;
        if !matches!(outcomes(&report)[..], [Outcome::Applied { .. }]) {
            failures.push(format!("{kind:?}: {:?}", report.events));
            continue;
        }
        let found = tags(kind, &member, &id).await;
        if found.get("Environment").map(String::as_str) != Some("dev")
            || found.get("Owner") != Some(&owner)
            || found.contains_key("environment")
        {
            failures.push(format!("{kind:?}: tags {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        renamed.len(),
        KINDS.len() - 2,
        "all but the bucket and CreateSnapshots: {renamed:?}"
    );
    // One alert per event.
    assert_eq!(world.alerts().await.len(), KINDS.len());
}
