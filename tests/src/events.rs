//! Sample events from `events/`, re-aimed at the emulator's accounts and resources and made fresh.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::emulator::workspace;

/// Reads `events/<path>`.
pub fn load(path: &str) -> Value {
    let file = workspace().join("events").join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A fresh id in the shape of a CloudTrail `eventID`.
pub fn event_id() -> String {
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let n = crate::emulator::unique();
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (nanos >> 32) as u32,
        (nanos >> 16) as u16,
        n & 0xfff,
        std::process::id() & 0xfff,
        nanos & 0xffff_ffff_ffff
    )
}

/// Makes a CloudTrail event (EventBridge envelope or raw record) happen now, in `account`, under a
/// new id. Every account id of the caller's identity is moved along with it.
pub fn fresh(mut event: Value, account: &str) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let enveloped = event.get("detail").is_some();
    if enveloped {
        event["account"] = json!(account);
        event["time"] = json!(now);
        event["id"] = json!(event_id());
    }
    let old = if enveloped { &event["detail"] } else { &event }["recipientAccountId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let detail = if enveloped { &mut event["detail"] } else { &mut event };
    detail["eventTime"] = json!(now);
    detail["eventID"] = json!(event_id());
    detail["recipientAccountId"] = json!(account);
    if !old.is_empty() {
        let identity = detail["userIdentity"].to_string().replace(&old, account);
        detail["userIdentity"] = serde_json::from_str(&identity).unwrap_or(Value::Null);
    }
    event
}

/// The CloudTrail record inside an event.
pub fn detail(event: &mut Value) -> &mut Value {
    if event.get("detail").is_some() {
        &mut event["detail"]
    } else {
        event
    }
}

/// An instance launched in the emulator, with the network interfaces it got.
pub struct Launched {
    pub instance: String,
    pub interfaces: Vec<String>,
}

/// The resource types a `RunInstances` call tags at creation.
const LAUNCH_TAGGED: [&str; 3] = ["instance", "volume", "network-interface"];

/// Launches an instance whose instance, volumes and interfaces carry these tags, in the account
/// `config` acts in.
pub async fn launch(config: &SdkConfig, tags: &[(&str, &str)]) -> Launched {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut request = aws_sdk_ec2::Client::new(config)
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1);
    if !tags.is_empty() {
        for kind in LAUNCH_TAGGED {
            let spec = TagSpecification::builder()
                .resource_type(ResourceType::from(kind))
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                        .collect(),
                ))
                .build();
            request = request.tag_specifications(spec);
        }
    }
    let out = request.send().await.expect("RunInstances");
    let instance = out.instances().first().expect("an instance");
    Launched {
        instance: instance.instance_id().expect("instance id").to_string(),
        interfaces: instance
            .network_interfaces()
            .iter()
            .filter_map(|n| n.network_interface_id().map(str::to_string))
            .collect(),
    }
}

/// Launches an instance and returns its id.
pub async fn run_instance(config: &SdkConfig, tags: &[(&str, &str)]) -> String {
    launch(config, tags).await.instance
}

/// `events/tag-enforcer/run-instances.json` as CloudTrail would record these launches in
/// `account` now, with these creation tags.
pub fn launch_event(account: &str, launched: &[&Launched], tags: &[(&str, &str)]) -> Value {
    let mut event = fresh(load("tag-enforcer/run-instances.json"), account);
    let template = detail(&mut event)["responseElements"]["instancesSet"]["items"][0].take();
    let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
    let instances: Vec<Value> = launched
        .iter()
        .map(|l| {
            let mut item = template.clone();
            item["instanceId"] = json!(l.instance);
            let interfaces: Vec<Value> = l
                .interfaces
                .iter()
                .map(|eni| json!({"networkInterfaceId": eni, "status": "in-use"}))
                .collect();
            item["networkInterfaceSet"] = json!({"items": interfaces});
            item["tagSet"] = json!({"items": tags});
            item
        })
        .collect();
    let d = detail(&mut event);
    d["responseElements"]["instancesSet"]["items"] = json!(instances);
    let specs: Vec<Value> = LAUNCH_TAGGED
        .iter()
        .filter(|_| !tags.is_empty())
        .map(|kind| json!({"resourceType": kind, "tags": tags}))
        .collect();
    d["requestParameters"]["tagSpecificationSet"] = json!({"items": specs});
    event
}

/// The tags of an EC2 resource, read back from the emulator.
pub async fn ec2_tags(config: &SdkConfig, id: &str) -> BTreeMap<String, String> {
    use aws_sdk_ec2::types::Filter;
    let out = aws_sdk_ec2::Client::new(config)
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .send()
        .await
        .expect("DescribeTags");
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Points an account-creation event (Organizations or Control Tower) at a created account.
pub fn with_created_account(mut event: Value, account: &str, name: &str) -> Value {
    let details = &mut detail(&mut event)["serviceEventDetails"];
    if details.get("createAccountStatus").is_some() {
        details["createAccountStatus"]["accountId"] = json!(account);
        details["createAccountStatus"]["accountName"] = json!(name);
    } else {
        details["createManagedAccountStatus"]["account"] = json!({"accountId": account, "accountName": name});
    }
    event
}

/// Gives the default VPC of the account and region `config` acts in what an AWS default VPC
/// has and moto's lacks: an internet gateway; plus a security group, a route table and a network
/// ACL of its own, so that deleting it has everything to take down.
pub async fn furnish_default_vpc(config: &SdkConfig) -> String {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpc = default_vpc_id(&ec2).await.expect("a default VPC");
    let igw = ec2
        .create_internet_gateway()
        .send()
        .await
        .expect("CreateInternetGateway")
        .internet_gateway()
        .and_then(|g| g.internet_gateway_id())
        .expect("igw id")
        .to_string();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&igw)
        .vpc_id(&vpc)
        .send()
        .await
        .expect("AttachInternetGateway");
    ec2.create_security_group()
        .group_name("web")
        .description("left behind by someone")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateSecurityGroup");
    ec2.create_route_table()
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateRouteTable");
    ec2.create_network_acl()
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateNetworkAcl");
    vpc
}

/// The default VPC's id, if there is one.
pub async fn default_vpc_id(ec2: &aws_sdk_ec2::Client) -> Option<String> {
    use aws_sdk_ec2::types::Filter;
    ec2.describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .map(str::to_string)
}

/// A person's call that can undo a baseline step, made now in `account` and `region`, on the
/// sample event `events/account-baseline/disable-ebs-encryption-by-default.json`.
pub fn undoing_call(account: &str, event_source: &str, event_name: &str, region: &str, params: Value) -> Value {
    let mut event = fresh(load("account-baseline/disable-ebs-encryption-by-default.json"), account);
    event["source"] = json!(format!("aws.{}", event_source.trim_end_matches(".amazonaws.com")));
    event["region"] = json!(region);
    let d = detail(&mut event);
    d["eventSource"] = json!(event_source);
    d["eventName"] = json!(event_name);
    d["awsRegion"] = json!(region);
    d["requestParameters"] = params;
    d["responseElements"] = Value::Null;
    event
}

/// `MoveAccount` of `account` from one parent to another, by a person in the management account.
pub fn move_account_event(management: &str, account: &str, from: &str, to: &str) -> Value {
    let mut event = fresh(load("account-baseline/move-account.json"), management);
    detail(&mut event)["requestParameters"] =
        json!({"accountId": account, "sourceParentId": from, "destinationParentId": to});
    event
}

/// Turns EBS encryption by default off in `account`'s `region`, as a person in the console would.
pub async fn disable_ebs_encryption(emulator: &crate::Emulator, account: &str, region: &'static str) {
    let member = emulator.config_as(account).await;
    let regional = member.to_builder().region(aws_config::Region::new(region)).build();
    aws_sdk_ec2::Client::new(&regional)
        .disable_ebs_encryption_by_default()
        .send()
        .await
        .expect("DisableEbsEncryptionByDefault");
}

/// An agent's launch in `ou`'s account, labelled `Environment=prod`: what the tag rule relabels
/// (the instance and its volume). Returns the instance and its CloudTrail event.
pub async fn mislabelled_launch(world: &crate::World, ou: &str) -> (String, Value) {
    let account = world.org.account(ou).to_string();
    let member = world.emulator.config_as(&account).await;
    let tags = [("Environment", "prod")];
    let launched = launch(&member, &tags).await;
    let event = launch_event(&account, &[&launched], &tags);
    (launched.instance, event)
}
