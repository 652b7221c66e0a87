//! Agent roles and users in the emulator, snapshots of their IAM state, and the events about
//! them (GuardDuty findings, API calls, alarm state changes) made from the samples in `events/`.

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::events::{event_id, fresh, load};

/// Everything IAM holds about a principal that a quarantine may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub arn: String,
    pub inline_policies: Vec<String>,
    pub attached_policies: Vec<String>,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Access key id → status.
    pub keys: BTreeMap<String, String>,
}

/// A trust policy letting EC2 assume a role: what the tests' roles are created with.
pub const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
/// The GuardDuty finding type the tests quarantine on: severity 8 makes it a revoke.
pub const EXFILTRATION: &str = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
const APP_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// A customer-managed policy in the account `config` acts in, for roles to attach.
async fn tools_policy(iam: &aws_sdk_iam::Client, name: &str) -> String {
    iam.create_policy()
        .policy_name(format!("{name}-tools"))
        .policy_document(APP_POLICY)
        .send()
        .await
        .expect("CreatePolicy")
        .policy()
        .and_then(|p| p.arn())
        .expect("policy ARN")
        .to_string()
}

/// A role as an agent platform would set one up: an inline policy, a managed policy, a
/// permissions boundary and tags. Returns its ARN.
pub async fn agent_role(config: &SdkConfig, name: &str, path: &str, tags: &[(&str, &str)]) -> String {
    let iam = aws_sdk_iam::Client::new(config);
    let arn = iam
        .create_role()
        .role_name(name)
        .path(path)
        .assume_role_policy_document(TRUST)
        .set_tags(Some(iam_tags(tags)))
        .send()
        .await
        .expect("CreateRole")
        .role()
        .map(|r| r.arn().to_string())
        .expect("role");
    iam.put_role_policy()
        .role_name(name)
        .policy_name("app-access")
        .policy_document(APP_POLICY)
        .send()
        .await
        .expect("PutRolePolicy");
    let tools = tools_policy(&iam, name).await;
    iam.attach_role_policy()
        .role_name(name)
        .policy_arn(&tools)
        .send()
        .await
        .expect("AttachRolePolicy");
    iam.put_role_permissions_boundary()
        .role_name(name)
        .permissions_boundary(&tools)
        .send()
        .await
        .expect("PutRolePermissionsBoundary");
    arn
}

/// A user with an inline policy, tags and `keys` access keys. Returns the key ids.
pub async fn agent_user(config: &SdkConfig, name: &str, tags: &[(&str, &str)], keys: usize) -> Vec<String> {
    let iam = aws_sdk_iam::Client::new(config);
    iam.create_user()
        .user_name(name)
        .set_tags(Some(iam_tags(tags)))
        .send()
        .await
        .expect("CreateUser");
    iam.put_user_policy()
        .user_name(name)
        .policy_name("app-access")
        .policy_document(APP_POLICY)
        .send()
        .await
        .expect("PutUserPolicy");
    let mut ids = Vec::new();
    for _ in 0..keys {
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("CreateAccessKey");
        ids.push(key.access_key().map(|k| k.access_key_id().to_string()).expect("key"));
    }
    ids
}

fn iam_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("tag")
        })
        .collect()
}

/// A role's state, read back.
pub async fn role_snapshot(config: &SdkConfig, name: &str) -> Snapshot {
    let iam = aws_sdk_iam::Client::new(config);
    let role = iam.get_role().role_name(name).send().await.expect("GetRole");
    let role = role.role().expect("role");
    Snapshot {
        arn: role.arn().to_string(),
        inline_policies: iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("ListRolePolicies")
            .policy_names()
            .to_vec(),
        attached_policies: iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("ListAttachedRolePolicies")
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn().map(str::to_string)),
        tags: iam
            .list_role_tags()
            .role_name(name)
            .send()
            .await
            .expect("ListRoleTags")
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        keys: BTreeMap::new(),
    }
}

/// A user's state, read back.
pub async fn user_snapshot(config: &SdkConfig, name: &str) -> Snapshot {
    let iam = aws_sdk_iam::Client::new(config);
    let user = iam.get_user().user_name(name).send().await.expect("GetUser");
    Snapshot {
        arn: user.user().map(|u| u.arn().to_string()).expect("user"),
        inline_policies: iam
            .list_user_policies()
            .user_name(name)
            .send()
            .await
            .expect("ListUserPolicies")
            .policy_names()
            .to_vec(),
        attached_policies: Vec::new(),
        boundary: None,
        tags: iam
            .list_user_tags()
            .user_name(name)
            .send()
            .await
            .expect("ListUserTags")
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        keys: iam
            .list_access_keys()
            .user_name(name)
            .send()
            .await
            .expect("ListAccessKeys")
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap_or_default().to_string(),
                    k.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                )
            })
            .collect(),
    }
}

/// A role's inline policy document, decoded.
pub async fn role_policy(config: &SdkConfig, role: &str, policy: &str) -> Value {
    let out = aws_sdk_iam::Client::new(config)
        .get_role_policy()
        .role_name(role)
        .policy_name(policy)
        .send()
        .await
        .expect("GetRolePolicy");
    let text = out.policy_document();
    let decoded = percent_decode(text);
    serde_json::from_str(&decoded)
        .or_else(|_| serde_json::from_str(text))
        .expect("policy JSON")
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A fresh 32-hex-digit GuardDuty finding id.
pub fn finding_id() -> String {
    event_id().replace('-', "")
}

/// `events/agent-quarantine/finding-credential-exfiltration.json` about `name` (a role, or with
/// `user_type` `IAMUser` a user) in `account`, updated now, with a new id.
pub fn finding(account: &str, user_type: &str, name: &str, finding_type: &str, severity: f64) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut event = load("agent-quarantine/finding-credential-exfiltration.json");
    event["id"] = json!(event_id());
    event["time"] = json!(now);
    let d = &mut event["detail"];
    d["id"] = json!(finding_id());
    d["accountId"] = json!(account);
    d["type"] = json!(finding_type);
    d["severity"] = json!(severity);
    d["createdAt"] = json!(now);
    d["updatedAt"] = json!(now);
    d["resource"]["accessKeyDetails"]["userName"] = json!(name);
    d["resource"]["accessKeyDetails"]["userType"] = json!(user_type);
    event
}

/// `events/agent-quarantine/agent-run-instances.json` as `role_arn` in `account` calling
/// `event_name` at `time`, under a new event id.
pub fn agent_call(account: &str, role_arn: &str, event_name: &str, time: DateTime<Utc>) -> Value {
    let mut event = fresh(load("agent-quarantine/agent-run-instances.json"), account);
    let at = time.to_rfc3339_opts(SecondsFormat::Secs, true);
    event["time"] = json!(at);
    let d = &mut event["detail"];
    d["eventTime"] = json!(at);
    d["eventName"] = json!(event_name);
    d["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(role_arn);
    event
}

/// `events/agent-quarantine/alarm-state-change.json` for the alarm `name` in `account`, entering
/// ALARM now.
pub fn alarm_event(account: &str, name: &str) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut event = load("agent-quarantine/alarm-state-change.json");
    event["id"] = json!(event_id());
    event["account"] = json!(account);
    event["time"] = json!(now);
    event["resources"] = json!([format!("arn:aws:cloudwatch:us-east-1:{account}:alarm:{name}")]);
    event["detail"]["alarmName"] = json!(name);
    event["detail"]["state"]["timestamp"] = json!(now);
    event
}

/// Creates a CloudWatch alarm with these tags in the account `config` acts in, through the
/// emulator's query API (the tests have no CloudWatch SDK).
pub async fn put_alarm(emulator: &Emulator, config: &SdkConfig, name: &str, tags: &[(&str, &str)]) {
    let credentials = config
        .credentials_provider()
        .expect("credentials")
        .provide_credentials()
        .await
        .expect("credentials");
    let mut params = vec![
        ("Action".to_string(), "PutMetricAlarm".to_string()),
        ("Version".into(), "2010-08-01".into()),
        ("AlarmName".into(), name.into()),
        ("Namespace".into(), "AWS/Bedrock".into()),
        ("MetricName".into(), "OutputTokenCount".into()),
        ("Statistic".into(), "Sum".into()),
        ("Period".into(), "300".into()),
        ("EvaluationPeriods".into(), "1".into()),
        ("Threshold".into(), "1000000".into()),
        ("ComparisonOperator".into(), "GreaterThanThreshold".into()),
    ];
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("Tags.member.{}.Key", i + 1), k.to_string()));
        params.push((format!("Tags.member.{}.Value", i + 1), v.to_string()));
    }
    let answer = emulator.query("monitoring", credentials.access_key_id(), &params);
    assert!(answer.starts_with("HTTP/1.1 200"), "PutMetricAlarm: {answer}");
}
