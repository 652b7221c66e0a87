//! Decoding: any input Guardrail may receive → typed [`Event`]s, or a named [`Rejection`] each.
//!
//! Accepted shapes: EventBridge envelopes (CloudTrail API calls and service events, GuardDuty
//! findings, Control Tower lifecycle events, CloudWatch alarm state changes), a raw CloudTrail record, a CloudTrail log file
//! `{"Records": [...]}`, a raw GuardDuty finding, and SNS notifications or SQS messages (or Lambda
//! batches of either) wrapping any of these. Decoding is lenient about shape and strict about
//! the values decisions use: an account id, region or timestamp that is present but malformed
//! rejects the event.

mod alarm;
mod cloudtrail;
mod finding;
pub mod json;
mod principal;
pub mod time;

use std::fmt;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use alarm::AlarmChange;
pub use cloudtrail::CloudTrailEvent;
use cloudtrail::EnvelopeFacts;
pub(crate) use cloudtrail::parse_account;
pub use finding::{AccessKey, Finding};
use json::{obj_any, str_any, string_any};
pub use principal::Principal;

use crate::ids::{AccountId, Region, clip};

/// Inputs larger than this are rejected unread (EventBridge caps events at 256 KiB; CloudTrail
/// log files are larger but still well below this).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;
/// How many SNS/SQS wrappers may nest around an event.
const MAX_WRAPPERS: usize = 3;

/// Everything Guardrail acts on.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A CloudTrail API call or console sign-in.
    ApiCall(CloudTrailEvent),
    /// Organizations `CreateAccountResult`.
    AccountCreation(AccountCreation),
    /// A Control Tower lifecycle event (`CreateManagedAccount`, `DisableGuardrail`, ...).
    Lifecycle(Lifecycle),
    /// Any other `AwsServiceEvent` record.
    ServiceEvent(CloudTrailEvent),
    /// A GuardDuty finding.
    Finding(Finding),
    /// A CloudWatch alarm changing state.
    Alarm(AlarmChange),
}

/// How the event reached us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    EventBridge,
    CloudTrailRecord,
    CloudTrailLogFile,
    RawFinding,
}

/// Organizations reporting the outcome of `CreateAccount`.
#[derive(Clone, Debug, Serialize)]
pub struct AccountCreation {
    pub trail: CloudTrailEvent,
    /// The `car-...` request id.
    pub request_id: Option<String>,
    /// `SUCCEEDED`, `FAILED` or `IN_PROGRESS`.
    pub state: String,
    /// The new account; absent when creation failed.
    pub account_id: Option<AccountId>,
    pub account_name: Option<String>,
    pub failure_reason: Option<String>,
}

/// A Control Tower lifecycle event.
#[derive(Clone, Debug, Serialize)]
pub struct Lifecycle {
    pub trail: CloudTrailEvent,
    /// The event name, e.g. `CreateManagedAccount`.
    pub name: String,
    pub state: Option<String>,
    pub message: Option<String>,
    pub account_id: Option<AccountId>,
    pub account_name: Option<String>,
    pub ou_id: Option<String>,
    pub ou_name: Option<String>,
}

/// Why an input cannot be used. Every variant is a specific, loggable reason; none is retried.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "rejection", rename_all = "kebab-case")]
pub enum Rejection {
    InvalidJson {
        detail: String,
    },
    TooLarge {
        bytes: usize,
        limit: usize,
    },
    UnknownShape {
        keys: String,
    },
    EmptyBatch,
    TooDeeplyWrapped,
    MalformedEnvelope {
        detail: String,
    },
    UntrustedSource {
        source: String,
    },
    UnsupportedDetailType {
        detail_type: String,
    },
    UnsupportedEventType {
        event_type: String,
    },
    MalformedRecord {
        detail: String,
    },
    MissingField {
        field: &'static str,
    },
    BadAccountId {
        field: &'static str,
        value: String,
    },
    BadRegion {
        value: String,
    },
    BadTimestamp {
        field: &'static str,
        value: String,
    },
    AccountMismatch {
        envelope: String,
        detail: String,
    },
    Stale {
        age_secs: i64,
        window_secs: i64,
    },
    FromFuture {
        ahead_secs: i64,
        skew_secs: i64,
    },
    /// The event is about an account Organizations does not know.
    NotInOrganization {
        account: String,
    },
}

impl Rejection {
    /// A stable short code, for metrics and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidJson { .. } => "invalid-json",
            Rejection::TooLarge { .. } => "too-large",
            Rejection::UnknownShape { .. } => "unknown-shape",
            Rejection::EmptyBatch => "empty-batch",
            Rejection::TooDeeplyWrapped => "too-deeply-wrapped",
            Rejection::MalformedEnvelope { .. } => "malformed-envelope",
            Rejection::UntrustedSource { .. } => "untrusted-source",
            Rejection::UnsupportedDetailType { .. } => "unsupported-detail-type",
            Rejection::UnsupportedEventType { .. } => "unsupported-event-type",
            Rejection::MalformedRecord { .. } => "malformed-record",
            Rejection::MissingField { .. } => "missing-field",
            Rejection::BadAccountId { .. } => "bad-account-id",
            Rejection::BadRegion { .. } => "bad-region",
            Rejection::BadTimestamp { .. } => "bad-timestamp",
            Rejection::AccountMismatch { .. } => "account-mismatch",
            Rejection::Stale { .. } => "stale",
            Rejection::FromFuture { .. } => "from-future",
            Rejection::NotInOrganization { .. } => "not-in-organization",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::InvalidJson { detail } => write!(f, "not valid JSON: {detail}"),
            Rejection::TooLarge { bytes, limit } => {
                write!(f, "input is {bytes} bytes, over the {limit}-byte limit")
            }
            Rejection::UnknownShape { keys } => write!(
                f,
                "not an EventBridge event, CloudTrail record or log file, GuardDuty finding, SNS or SQS message (top-level keys: {keys})"
            ),
            Rejection::EmptyBatch => write!(f, "the batch holds no records"),
            Rejection::TooDeeplyWrapped => write!(f, "more than {MAX_WRAPPERS} SNS/SQS wrappers around the event"),
            Rejection::MalformedEnvelope { detail } => {
                write!(f, "malformed EventBridge envelope: {detail}")
            }
            Rejection::UntrustedSource { source } => {
                write!(
                    f,
                    "source {source:?} is not an AWS service (only aws.* sources are trusted)"
                )
            }
            Rejection::UnsupportedDetailType { detail_type } => {
                write!(f, "unsupported detail-type {detail_type:?}")
            }
            Rejection::UnsupportedEventType { event_type } => {
                write!(f, "unsupported CloudTrail eventType {event_type:?}")
            }
            Rejection::MalformedRecord { detail } => write!(f, "malformed record: {detail}"),
            Rejection::MissingField { field } => {
                write!(f, "required field {field} is missing or empty")
            }
            Rejection::BadAccountId { field, value } => {
                write!(f, "{field} {value:?} is not a 12-digit account id")
            }
            Rejection::BadRegion { value } => {
                write!(f, "region {value:?} is not an AWS region name")
            }
            Rejection::BadTimestamp { field, value } => {
                write!(f, "{field} {value:?} is not a timestamp")
            }
            Rejection::AccountMismatch { envelope, detail } => write!(
                f,
                "envelope account {envelope} differs from the record's recipientAccountId {detail}"
            ),
            Rejection::Stale { age_secs, window_secs } => write!(
                f,
                "event is {age_secs} s old, beyond the {window_secs} s freshness window"
            ),
            Rejection::FromFuture { ahead_secs, skew_secs } => write!(
                f,
                "event is dated {ahead_secs} s in the future, beyond the {skew_secs} s clock-skew allowance"
            ),
            Rejection::NotInOrganization { account } => {
                write!(f, "account {account} is not a member of the organization")
            }
        }
    }
}

/// One decoded item: an event or the reason it is unusable.
pub type Decoded = Result<Event, Rejection>;

/// Decodes raw bytes. Always returns at least one item.
pub fn decode(bytes: &[u8]) -> Vec<Decoded> {
    if bytes.len() > MAX_INPUT_BYTES {
        return vec![Err(Rejection::TooLarge {
            bytes: bytes.len(),
            limit: MAX_INPUT_BYTES,
        })];
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => decode_value(v),
        Err(e) => vec![Err(Rejection::InvalidJson { detail: e.to_string() })],
    }
}

/// Decodes an already parsed input (what the Lambda runtime hands over). Always returns at least
/// one item.
pub fn decode_value(value: Value) -> Vec<Decoded> {
    items(value).into_iter().map(|i| i.and_then(decode_item)).collect()
}

/// One event as it came, unwrapped from its SNS/SQS wrappers and log file, not yet decoded: what
/// an approval keeps to decide on it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub value: Value,
    /// A record of a CloudTrail log file, without an envelope.
    in_log_file: bool,
}

/// Unwraps an input into its events, undecoded. Always returns at least one item.
pub fn items(value: Value) -> Vec<Result<Item, Rejection>> {
    let mut out = Vec::new();
    unwrap_into(value, 0, &mut out);
    if out.is_empty() {
        out.push(Err(Rejection::EmptyBatch));
    }
    out
}

/// Decodes one unwrapped event.
pub fn decode_item(item: Item) -> Decoded {
    let decoded = if item.in_log_file {
        decode_record(item.value, EnvelopeFacts::default(), Via::CloudTrailLogFile)
    } else {
        decode_single(item.value)
    };
    decoded.and_then(bounded_keys)
}

/// The longest event id accepted: CloudTrail and EventBridge ids are UUIDs, GuardDuty's 32 hex
/// digits.
const MAX_ID: usize = 128;
/// The longest alarm ARN accepted (alarm names are at most 255 characters).
const MAX_ALARM_ARN: usize = 512;

/// An event whose id or alarm ARN could not be a replay key (DynamoDB keys are at most 2 KB,
/// and an id goes into every alert) is malformed.
fn bounded_keys(event: Event) -> Decoded {
    if let Some(id) = event.id()
        && (id.is_empty()
            || id.len() > MAX_ID
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
    {
        return Err(Rejection::MalformedRecord {
            detail: format!("event id {:?} is not an event id", crate::ids::clip(id, 70)),
        });
    }
    if let Event::Alarm(a) = &event
        && a.arn.len() > MAX_ALARM_ARN
    {
        return Err(Rejection::MalformedRecord {
            detail: format!(
                "alarm ARN {:?} is longer than an alarm ARN can be",
                crate::ids::clip(&a.arn, 70)
            ),
        });
    }
    Ok(event)
}

fn unwrap_into(mut v: Value, wrappers: usize, out: &mut Vec<Result<Item, Rejection>>) {
    if wrappers > MAX_WRAPPERS {
        out.push(Err(Rejection::TooDeeplyWrapped));
        return;
    }
    if !v.is_object() {
        out.push(Err(Rejection::UnknownShape {
            keys: format!("not an object but {}", kind_of(&v)),
        }));
        return;
    }
    if let Some(Value::Array(records)) = v.get_mut("Records") {
        let records = std::mem::take(records);
        if records.is_empty() {
            out.push(Err(Rejection::EmptyBatch));
        }
        for record in records {
            match wrapped_message(&record) {
                Some(Ok(inner)) => unwrap_into(inner, wrappers + 1, out),
                Some(Err(rejection)) => out.push(Err(rejection)),
                None => out.push(Ok(Item {
                    value: record,
                    in_log_file: true,
                })),
            }
        }
        return;
    }
    if let Some(inner) = wrapped_message(&v) {
        match inner {
            Ok(inner) => unwrap_into(inner, wrappers + 1, out),
            Err(rejection) => out.push(Err(rejection)),
        }
        return;
    }
    out.push(Ok(Item {
        value: v,
        in_log_file: false,
    }));
}

/// The inner event of an SNS notification, an SNS/SQS Lambda record, or `None` if `v` is not
/// a wrapper.
fn wrapped_message(v: &Value) -> Option<Result<Value, Rejection>> {
    let (text, what) = if let Some(sns) = obj_any(v, &["Sns"]) {
        (str_any(sns, &["Message"]), "SNS message")
    } else if str_any(v, &["Type"]) == Some("Notification") && v.get("TopicArn").is_some() {
        (str_any(v, &["Message"]), "SNS message")
    } else if str_any(v, &["eventSource", "EventSource"]) == Some("aws:sqs") {
        (str_any(v, &["body"]), "SQS body")
    } else {
        return None;
    };
    Some(match text {
        None => Err(Rejection::MissingField { field: "Message/body" }),
        Some(text) => serde_json::from_str(text).map_err(|e| Rejection::InvalidJson {
            detail: format!("{what}: {e}"),
        }),
    })
}

fn decode_single(v: Value) -> Decoded {
    if v.get("detail-type").is_some() || v.get("detail").is_some() {
        return decode_envelope(v);
    }
    if v.get("eventName").is_some() || v.get("eventSource").is_some() {
        return decode_record(v, EnvelopeFacts::default(), Via::CloudTrailRecord);
    }
    let looks_like_finding = |keys: [&str; 3]| keys.iter().all(|k| v.get(*k).is_some());
    if looks_like_finding(["schemaVersion", "type", "severity"])
        || looks_like_finding(["SchemaVersion", "Type", "Severity"])
    {
        return Finding::from_detail(&v, None, Via::RawFinding).map(Event::Finding);
    }
    Err(Rejection::UnknownShape { keys: top_keys(&v) })
}

fn decode_envelope(v: Value) -> Decoded {
    // Check what decides trust and relevance first, so the reason given is the most specific one.
    let detail_type = str_any(&v, &["detail-type"]).ok_or_else(|| Rejection::MalformedEnvelope {
        detail: "missing field `detail-type`".into(),
    })?;
    let source = str_any(&v, &["source"]).ok_or_else(|| Rejection::MalformedEnvelope {
        detail: "missing field `source`".into(),
    })?;
    if !source.starts_with("aws.") {
        return Err(Rejection::UntrustedSource {
            source: clip(source, 64),
        });
    }
    if !SUPPORTED_DETAIL_TYPES.contains(&detail_type) {
        return Err(Rejection::UnsupportedDetailType {
            detail_type: clip(detail_type, 64),
        });
    }
    let expected_source = match detail_type {
        "GuardDuty Finding" => Some("aws.guardduty"),
        ALARM_STATE_CHANGE => Some("aws.cloudwatch"),
        _ => None,
    };
    if expected_source.is_some_and(|s| s != source) {
        return Err(Rejection::UntrustedSource {
            source: clip(source, 64),
        });
    }
    if let Some(t) = v
        .get("time")
        .filter(|t| !t.is_null() && t.as_str().and_then(time::parse).is_none())
    {
        return Err(Rejection::BadTimestamp {
            field: "time",
            value: clip(&t.to_string(), 40),
        });
    }
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(v).map_err(|e| Rejection::MalformedEnvelope { detail: e.to_string() })?;
    if envelope.detail_type == "GuardDuty Finding" {
        return Finding::from_detail(&envelope.detail, envelope.time, Via::EventBridge).map(Event::Finding);
    }
    if envelope.detail_type == ALARM_STATE_CHANGE {
        return AlarmChange::from_envelope(
            envelope.id.as_deref(),
            envelope.account.as_deref(),
            envelope.region.as_deref(),
            envelope.time,
            &envelope.detail,
        )
        .map(Event::Alarm);
    }
    let facts = EnvelopeFacts {
        account: envelope.account.as_deref(),
        region: envelope.region.as_deref(),
        time: envelope.time,
    };
    if facts.account.is_none() {
        return Err(Rejection::MissingField { field: "account" });
    }
    decode_record(envelope.detail, facts, Via::EventBridge)
}

const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// The EventBridge detail-types Guardrail decodes.
const SUPPORTED_DETAIL_TYPES: &[&str] = &[
    "AWS API Call via CloudTrail",
    "AWS Service Event via CloudTrail",
    "AWS Console Sign In via CloudTrail",
    "GuardDuty Finding",
    ALARM_STATE_CHANGE,
];

fn decode_record(record: Value, envelope: EnvelopeFacts<'_>, via: Via) -> Decoded {
    let trail = CloudTrailEvent::from_record(record, envelope, via)?;
    let is_service_event = trail.event_type.as_deref() == Some("AwsServiceEvent");
    if trail.event_source == "organizations.amazonaws.com" && trail.event_name == "CreateAccountResult" {
        return account_creation(trail).map(Event::AccountCreation);
    }
    if trail.event_source == "controltower.amazonaws.com" && is_service_event {
        return lifecycle(trail).map(Event::Lifecycle);
    }
    Ok(if is_service_event {
        Event::ServiceEvent(trail)
    } else {
        Event::ApiCall(trail)
    })
}

fn account_creation(trail: CloudTrailEvent) -> Result<AccountCreation, Rejection> {
    let status = obj_any(&trail.service_event_details, &["createAccountStatus"]).ok_or(Rejection::MissingField {
        field: "serviceEventDetails.createAccountStatus",
    })?;
    let state = string_any(status, &["state"]).ok_or(Rejection::MissingField {
        field: "createAccountStatus.state",
    })?;
    let account_id = str_any(status, &["accountId"])
        .map(|a| parse_account("createAccountStatus.accountId", a))
        .transpose()?;
    Ok(AccountCreation {
        request_id: string_any(status, &["id"]),
        account_name: string_any(status, &["accountName"]),
        failure_reason: string_any(status, &["failureReason"]),
        state,
        account_id,
        trail,
    })
}

fn lifecycle(trail: CloudTrailEvent) -> Result<Lifecycle, Rejection> {
    // serviceEventDetails holds one object named after the event: createManagedAccountStatus, ...
    let status = trail
        .service_event_details
        .as_object()
        .and_then(|m| m.values().find(|v| v.is_object()))
        .cloned()
        .unwrap_or(Value::Null);
    let account = obj_any(&status, &["account"]);
    let ou = obj_any(&status, &["organizationalUnit"]);
    let account_id = account
        .and_then(|a| str_any(a, &["accountId"]))
        .map(|a| parse_account("account.accountId", a))
        .transpose()?;
    Ok(Lifecycle {
        name: trail.event_name.clone(),
        state: string_any(&status, &["state"]),
        message: string_any(&status, &["message"]),
        account_name: account.and_then(|a| string_any(a, &["accountName"])),
        ou_id: ou.and_then(|o| string_any(o, &["organizationalUnitId"])),
        ou_name: ou.and_then(|o| string_any(o, &["organizationalUnitName"])),
        account_id,
        trail,
    })
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn top_keys(v: &Value) -> String {
    match v.as_object() {
        Some(m) if m.is_empty() => "none".to_string(),
        Some(m) => clip(&m.keys().take(8).cloned().collect::<Vec<_>>().join(", "), 120),
        None => kind_of(v).to_string(),
    }
}

impl Event {
    /// A short name for logs and the CLI: `api-call ec2:RunInstances`, `finding Recon:EC2/...`.
    pub fn label(&self) -> String {
        match self {
            Event::ApiCall(t) => format!("api-call {}:{}", t.service(), t.event_name),
            Event::ServiceEvent(t) => format!("service-event {}:{}", t.service(), t.event_name),
            Event::AccountCreation(a) => format!("account-creation {}", a.state),
            Event::Lifecycle(l) => {
                format!("lifecycle {} {}", l.name, l.state.as_deref().unwrap_or("?"))
            }
            Event::Finding(f) => format!("finding {}", f.finding_type),
            Event::Alarm(a) => format!("alarm {} {}", a.state, clip(&a.name, 60)),
        }
    }

    /// The CloudTrail record carrying the event, when there is one.
    pub fn trail(&self) -> Option<&CloudTrailEvent> {
        match self {
            Event::ApiCall(t) | Event::ServiceEvent(t) => Some(t),
            Event::AccountCreation(a) => Some(&a.trail),
            Event::Lifecycle(l) => Some(&l.trail),
            Event::Finding(_) | Event::Alarm(_) => None,
        }
    }

    /// When the event happened (a finding: when it was last updated).
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            Event::Finding(f) => f.updated_at,
            Event::Alarm(a) => a.time,
            _ => self.trail().and_then(|t| t.event_time),
        }
    }

    /// The account the event is about.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            Event::Finding(f) => f.account.as_ref(),
            Event::Alarm(a) => Some(&a.account),
            _ => self.trail().and_then(|t| t.account.as_ref()),
        }
    }

    /// The account the event is about: a new account's id for its successful creation (reported
    /// by the management account), else [`Event::account`].
    pub fn subject_account(&self) -> Option<&AccountId> {
        match self {
            Event::AccountCreation(a) if self.is_successful_creation() => a.account_id.as_ref().or(self.account()),
            Event::Lifecycle(l) if self.is_successful_creation() => l.account_id.as_ref().or(self.account()),
            _ => self.account(),
        }
    }

    pub fn region(&self) -> Option<&Region> {
        match self {
            Event::Finding(f) => f.region.as_ref(),
            Event::Alarm(a) => Some(&a.region),
            _ => self.trail().and_then(|t| t.region.as_ref()),
        }
    }

    /// The identifier of this delivery's event (CloudTrail `eventID`, the finding id, or the
    /// EventBridge id of an alarm change).
    pub fn id(&self) -> Option<&str> {
        match self {
            Event::Finding(f) => Some(&f.id),
            Event::Alarm(a) => a.event_id.as_deref(),
            _ => self.trail().and_then(|t| t.event_id.as_deref()),
        }
    }

    /// The semantic key under which the replay guard records this event: the CloudTrail
    /// `eventID`; a finding's id plus `updatedAt` (an updated finding is a new event); an
    /// alarm's ARN plus the time it changed state; a new account's id (however many times, and
    /// by whichever service, its creation is reported).
    pub fn replay_key(&self) -> Result<String, Rejection> {
        let created = match self {
            Event::AccountCreation(a) if self.is_successful_creation() => a.account_id.as_ref(),
            // Account Factory causes both events for one account: they share the key.
            Event::Lifecycle(l) if self.is_successful_creation() => l.account_id.as_ref(),
            _ => None,
        };
        if let Some(id) = created {
            return Ok(format!("account-created#{id}"));
        }
        match self {
            Event::Finding(f) => {
                let updated = f.updated_at.ok_or(Rejection::MissingField { field: "updatedAt" })?;
                Ok(format!("finding#{}#{}", f.id, updated.timestamp_millis()))
            }
            Event::Alarm(a) => {
                let changed = a.time.ok_or(Rejection::MissingField {
                    field: "state.timestamp",
                })?;
                Ok(format!("alarm#{}#{}", a.arn, changed.timestamp_millis()))
            }
            _ => self
                .id()
                .map(|id| format!("cloudtrail#{id}"))
                .ok_or(Rejection::MissingField { field: "eventID" }),
        }
    }

    /// Whether the event reports an account created (by Organizations or Account Factory).
    pub fn is_successful_creation(&self) -> bool {
        match self {
            Event::AccountCreation(a) => a.state == "SUCCEEDED",
            Event::Lifecycle(l) => l.name == "CreateManagedAccount" && l.state.as_deref() == Some("SUCCEEDED"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Value) -> Decoded {
        let mut all = decode_value(v);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn record() -> Value {
        json!({
            "eventVersion": "1.08", "eventID": "e-1", "eventTime": "2026-01-01T00:00:00Z",
            "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333", "eventType": "AwsApiCall",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"}
        })
    }

    fn envelope(detail: Value) -> Value {
        json!({"version": "0", "id": "x", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
               "account": "111122223333", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
               "resources": [], "detail": detail})
    }

    #[test]
    fn envelope_raw_record_log_file_sns_and_sqs_all_decode_to_the_same_call() {
        let env = envelope(record());
        let sns = json!({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": env.to_string()});
        let sqs_of_sns = json!({"Records": [{"eventSource": "aws:sqs", "body": sns.to_string()}]});
        let lambda_sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": record().to_string()}}]});
        let log_file = json!({"Records": [record(), record()]});
        for input in [env, record(), sns, sqs_of_sns, lambda_sns, log_file] {
            for decoded in decode_value(input.clone()) {
                let event = decoded.unwrap_or_else(|r| panic!("{r} for {input}"));
                assert_eq!(event.label(), "api-call ec2:RunInstances");
                assert_eq!(event.account().map(AccountId::as_str), Some("111122223333"));
                assert_eq!(event.replay_key().as_deref(), Ok("cloudtrail#e-1"));
            }
        }
    }

    #[test]
    fn forged_and_malformed_inputs_are_rejected_by_name() {
        let mut custom = envelope(record());
        custom["source"] = json!("my.app");
        let mut mismatch = record();
        mismatch["recipientAccountId"] = json!("999999999999");
        let mut bad_region = record();
        bad_region["awsRegion"] = json!("us-east-1.evil.example");
        let mut bad_time = record();
        bad_time["eventTime"] = json!("yesterday");
        let mut unknown_type = envelope(record());
        unknown_type["detail-type"] = json!("EC2 Instance State-change Notification");
        let cases = [
            (custom, "untrusted-source"),
            (envelope(mismatch), "account-mismatch"),
            (bad_region, "bad-region"),
            (bad_time, "bad-timestamp"),
            (unknown_type, "unsupported-detail-type"),
            (
                json!({"detail-type": "GuardDuty Finding", "detail": {}}),
                "malformed-envelope",
            ),
            (json!({"Records": []}), "empty-batch"),
            (json!({"hello": "world"}), "unknown-shape"),
            (json!([1, 2]), "unknown-shape"),
            (
                json!({"Records": [{"eventSource": "aws:sqs", "body": "{not json"}]}),
                "invalid-json",
            ),
        ];
        for (input, code) in cases {
            match one(input.clone()) {
                Err(r) => assert_eq!(r.code(), code, "{r} for {input}"),
                Ok(e) => panic!("{} decoded from {input}", e.label()),
            }
        }
        assert_eq!(
            decode(b"{").first().map(|d| d.as_ref().err().map(Rejection::code)),
            Some(Some("invalid-json"))
        );
    }

    #[test]
    fn wrappers_cannot_nest_forever() {
        let mut v = record();
        for _ in 0..5 {
            v = json!({"Type": "Notification", "TopicArn": "t", "Message": v.to_string()});
        }
        assert_eq!(one(v).err().map(|r| r.code()), Some("too-deeply-wrapped"));
    }

    #[test]
    fn finding_replay_key_changes_when_the_finding_is_updated() {
        let finding = |updated: &str| {
            json!({"version": "0", "id": "x", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
                   "account": "999999999999", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
                   "detail": {"schemaVersion": "2.0", "id": "f1", "type": "Recon:IAMUser/MaliciousIPCaller",
                              "severity": 5, "accountId": "111122223333", "region": "us-east-1", "updatedAt": updated}})
        };
        let a = one(finding("2026-01-01T00:00:00Z")).and_then(|e| e.replay_key());
        let b = one(finding("2026-01-01T00:05:00Z")).and_then(|e| e.replay_key());
        assert!(a.is_ok() && b.is_ok() && a != b, "{a:?} {b:?}");
    }

    #[test]
    fn control_tower_lifecycle_and_account_creation_are_typed() {
        let lifecycle = json!({
            "version": "0", "id": "x", "detail-type": "AWS Service Event via CloudTrail", "source": "aws.controltower",
            "account": "111122223333", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"eventVersion": "1.05", "userIdentity": {"accountId": "111122223333", "invokedBy": "AWS Internal"},
                "eventTime": "2026-01-01T00:00:00Z", "eventSource": "controltower.amazonaws.com",
                "eventName": "CreateManagedAccount", "awsRegion": "us-east-1", "eventID": "e-2",
                "eventType": "AwsServiceEvent",
                "serviceEventDetails": {"createManagedAccountStatus": {
                    "organizationalUnit": {"organizationalUnitName": "dev", "organizationalUnitId": "ou-ab12-cdef3456"},
                    "account": {"accountName": "dev-payments", "accountId": "444455556666"},
                    "state": "SUCCEEDED", "message": "AWS Control Tower successfully created a managed account."}}}
        });
        let Ok(Event::Lifecycle(l)) = one(lifecycle) else {
            panic!("not a lifecycle event")
        };
        assert_eq!(
            (l.name.as_str(), l.state.as_deref()),
            ("CreateManagedAccount", Some("SUCCEEDED"))
        );
        assert_eq!(l.account_id.as_ref().map(AccountId::as_str), Some("444455556666"));
        assert_eq!(l.ou_name.as_deref(), Some("dev"));

        let mut failed = record();
        failed["eventSource"] = json!("organizations.amazonaws.com");
        failed["eventName"] = json!("CreateAccountResult");
        failed["eventType"] = json!("AwsServiceEvent");
        failed["serviceEventDetails"] =
            json!({"createAccountStatus": {"id": "car-1", "state": "FAILED", "failureReason": "EMAIL_ALREADY_EXISTS"}});
        let Ok(Event::AccountCreation(a)) = one(failed.clone()) else {
            panic!("not an account creation")
        };
        assert_eq!(
            (a.state.as_str(), a.failure_reason.as_deref()),
            ("FAILED", Some("EMAIL_ALREADY_EXISTS"))
        );
        assert!(a.account_id.is_none());
        failed["serviceEventDetails"]["createAccountStatus"]["accountId"] = json!("4444");
        assert_eq!(one(failed).err().map(|r| r.code()), Some("bad-account-id"));
    }
}
