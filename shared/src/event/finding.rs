//! A GuardDuty finding, from the camelCase event shape or the PascalCase `GetFindings` shape.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::cloudtrail::parse_account;
use super::json::{bool_any, f64_any, obj_any, str_any, string_any};
use super::{Rejection, Via, time};
use crate::ids::{AccountId, Region, clip};

/// The parts of a finding Guardrail decides on.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub id: String,
    /// `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS`, ...
    pub finding_type: String,
    pub severity: f64,
    /// The member account the finding is about (not the administrator account that sent it).
    pub account: Option<AccountId>,
    pub region: Option<Region>,
    pub arn: Option<String>,
    pub title: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub resource_type: Option<String>,
    pub access_key: Option<AccessKey>,
    pub instance_id: Option<String>,
    /// GuardDuty's generated sample findings say so in `service.additionalInfo.sample`.
    pub sample: bool,
    pub archived: bool,
    pub via: Via,
}

/// `resource.accessKeyDetails`: the credentials the finding is about.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessKey {
    pub access_key_id: Option<String>,
    pub principal_id: Option<String>,
    pub user_name: Option<String>,
    /// `AssumedRole`, `IAMUser`, `Root`, `FederatedUser`, ...
    pub user_type: Option<String>,
}

impl Finding {
    pub(crate) fn from_detail(
        detail: &Value,
        envelope_time: Option<DateTime<Utc>>,
        via: Via,
    ) -> Result<Self, Rejection> {
        if !detail.is_object() {
            return Err(Rejection::MalformedRecord {
                detail: "a GuardDuty finding must be a JSON object".into(),
            });
        }
        let id = string_any(detail, &["id", "Id"]).ok_or(Rejection::MissingField { field: "id" })?;
        let finding_type = string_any(detail, &["type", "Type"]).ok_or(Rejection::MissingField { field: "type" })?;
        let severity = f64_any(detail, &["severity", "Severity"])
            .filter(|s| s.is_finite())
            .ok_or(Rejection::MissingField { field: "severity" })?;
        let account = str_any(detail, &["accountId", "AccountId"])
            .map(|a| parse_account("accountId", a))
            .transpose()?;
        let region = match str_any(detail, &["region", "Region"]) {
            Some(r) => Some(Region::parse(r).ok_or_else(|| Rejection::BadRegion { value: clip(r, 40) })?),
            None => None,
        };
        let created_at = timestamp(detail, "createdAt", &["createdAt", "CreatedAt"])?;
        let updated_at = timestamp(detail, "updatedAt", &["updatedAt", "UpdatedAt"])?.or(envelope_time);

        let resource = obj_any(detail, &["resource", "Resource"]);
        let access_key = resource
            .and_then(|r| obj_any(r, &["accessKeyDetails", "AccessKeyDetails"]))
            .map(|k| AccessKey {
                access_key_id: string_any(k, &["accessKeyId", "AccessKeyId"]),
                principal_id: string_any(k, &["principalId", "PrincipalId"]),
                user_name: string_any(k, &["userName", "UserName"]),
                user_type: string_any(k, &["userType", "UserType"]),
            });
        let instance_id = resource
            .and_then(|r| obj_any(r, &["instanceDetails", "InstanceDetails"]))
            .and_then(|i| string_any(i, &["instanceId", "InstanceId"]));
        let service = obj_any(detail, &["service", "Service"]);

        Ok(Finding {
            arn: string_any(detail, &["arn", "Arn"]),
            title: string_any(detail, &["title", "Title"]),
            resource_type: resource.and_then(|r| string_any(r, &["resourceType", "ResourceType"])),
            sample: service.is_some_and(is_sample),
            archived: service
                .and_then(|s| bool_any(s, &["archived", "Archived"]))
                .unwrap_or(false),
            id,
            finding_type,
            severity,
            account,
            region,
            created_at,
            updated_at,
            access_key,
            instance_id,
            via,
        })
    }
}

fn timestamp(detail: &Value, field: &'static str, keys: &[&str]) -> Result<Option<DateTime<Utc>>, Rejection> {
    match str_any(detail, keys) {
        None => Ok(None),
        Some(s) => time::parse(s).map(Some).ok_or_else(|| Rejection::BadTimestamp {
            field,
            value: clip(s, 40),
        }),
    }
}

/// `additionalInfo.sample` in events; `AdditionalInfo.Value` holds the same as a JSON string
/// in the API shape.
fn is_sample(service: &Value) -> bool {
    let Some(info) = obj_any(service, &["additionalInfo", "AdditionalInfo"]) else {
        return false;
    };
    if let Some(sample) = bool_any(info, &["sample", "Sample"]) {
        return sample;
    }
    str_any(info, &["Value", "value"])
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| bool_any(&v, &["sample"]))
        .unwrap_or(false)
}
