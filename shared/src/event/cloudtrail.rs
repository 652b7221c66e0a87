//! One CloudTrail record (`detail` of an EventBridge CloudTrail event, or a log-file record).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::json::{bool_any, obj_any, str_any, string_any, take};
use super::{Principal, Rejection, Via, time};
use crate::ids::{AccountId, Region, clip};

/// A CloudTrail record with the fields Guardrail decides on, typed; the service-specific parts
/// (`requestParameters`, `responseElements`, `serviceEventDetails`) stay JSON for the rules.
#[derive(Clone, Debug, Serialize)]
pub struct CloudTrailEvent {
    pub event_id: Option<String>,
    /// `eventName`, trimmed (a published sample has a trailing space).
    pub event_name: String,
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub event_source: String,
    /// `AwsApiCall`, `AwsServiceEvent`, `AwsConsoleSignIn`, ...
    pub event_type: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    /// The account the event happened in (envelope `account`, else `recipientAccountId`).
    pub account: Option<AccountId>,
    pub region: Option<Region>,
    pub principal: Principal,
    /// Set when the call failed (`AccessDenied`, `Client.DryRunOperation`, ...).
    pub error_code: Option<String>,
    pub read_only: Option<bool>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub request_parameters: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub response_elements: Value,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub service_event_details: Value,
    pub via: Via,
}

/// What the envelope around a record said, to fill gaps and to cross-check the record.
#[derive(Default)]
pub(crate) struct EnvelopeFacts<'a> {
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    pub time: Option<DateTime<Utc>>,
}

impl CloudTrailEvent {
    /// Builds the typed record, taking the bulky JSON parts out of `record` without copying.
    pub(crate) fn from_record(mut record: Value, envelope: EnvelopeFacts<'_>, via: Via) -> Result<Self, Rejection> {
        if !record.is_object() {
            return Err(Rejection::MalformedRecord {
                detail: "a CloudTrail record must be a JSON object".into(),
            });
        }
        // Insights records describe a rate, not a call: their eventName sits in insightDetails.
        if let Some(t) = str_any(&record, &["eventType"]).filter(|t| *t == "AwsCloudTrailInsight") {
            return Err(Rejection::UnsupportedEventType {
                event_type: t.to_string(),
            });
        }
        let event_name = str_any(&record, &["eventName"])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or(Rejection::MissingField { field: "eventName" })?
            .to_string();
        let event_source = str_any(&record, &["eventSource"])
            .ok_or(Rejection::MissingField { field: "eventSource" })?
            .to_string();

        let recipient = str_any(&record, &["recipientAccountId"]);
        let account = match (envelope.account, recipient) {
            (Some(env), Some(rec)) if env != rec => {
                return Err(Rejection::AccountMismatch {
                    envelope: clip(env, 20),
                    detail: clip(rec, 20),
                });
            }
            (Some(a), _) => Some(parse_account("account", a)?),
            (None, Some(a)) => Some(parse_account("recipientAccountId", a)?),
            (None, None) => None,
        };
        let region = match str_any(&record, &["awsRegion"]).or(envelope.region) {
            Some(r) => Some(Region::parse(r).ok_or_else(|| Rejection::BadRegion { value: clip(r, 40) })?),
            None => None,
        };
        let event_time = match str_any(&record, &["eventTime"]) {
            Some(t) => Some(time::parse(t).ok_or_else(|| Rejection::BadTimestamp {
                field: "eventTime",
                value: clip(t, 40),
            })?),
            None => envelope.time,
        };

        Ok(CloudTrailEvent {
            event_id: string_any(&record, &["eventID"]),
            event_type: string_any(&record, &["eventType"]),
            principal: Principal::from_user_identity(obj_any(&record, &["userIdentity"])),
            error_code: string_any(&record, &["errorCode"]),
            read_only: bool_any(&record, &["readOnly"]),
            source_ip: string_any(&record, &["sourceIPAddress"]),
            user_agent: string_any(&record, &["userAgent"]),
            request_parameters: take(&mut record, "requestParameters"),
            response_elements: take(&mut record, "responseElements"),
            service_event_details: take(&mut record, "serviceEventDetails"),
            event_name,
            event_source,
            event_time,
            account,
            region,
            via,
        })
    }

    /// The service part of `eventSource`: `ec2.amazonaws.com` → `ec2`.
    pub fn service(&self) -> &str {
        self.event_source.split('.').next().unwrap_or_default()
    }
}

pub(crate) fn parse_account(field: &'static str, value: &str) -> Result<AccountId, Rejection> {
    AccountId::parse(value).ok_or_else(|| Rejection::BadAccountId {
        field,
        value: clip(value, 20),
    })
}
