//! A CloudWatch alarm state change (`CloudWatch Alarm State Change`), as EventBridge delivers it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::json::{obj_any, str_any, string_any};
use super::{Rejection, time};
use crate::ids::{AccountId, Region, clip};

/// The parts of an alarm state change Guardrail decides on.
#[derive(Clone, Debug, Serialize)]
pub struct AlarmChange {
    /// The EventBridge event id.
    pub event_id: Option<String>,
    /// Built from the envelope's account and region and the alarm's name, never taken from the
    /// event's `resources`, so it cannot point outside the account that sent it.
    pub arn: String,
    pub name: String,
    pub account: AccountId,
    pub region: Region,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub previous_state: Option<String>,
    pub reason: Option<String>,
    /// When the alarm changed state (`state.timestamp`, else the envelope's time).
    pub time: Option<DateTime<Utc>>,
}

impl AlarmChange {
    pub(crate) fn from_envelope(
        id: Option<&str>,
        account: Option<&str>,
        region: Option<&str>,
        envelope_time: Option<DateTime<Utc>>,
        detail: &Value,
    ) -> Result<Self, Rejection> {
        let account = account.ok_or(Rejection::MissingField { field: "account" })?;
        let account = AccountId::parse(account).ok_or_else(|| Rejection::BadAccountId {
            field: "account",
            value: clip(account, 20),
        })?;
        let region = region.ok_or(Rejection::MissingField { field: "region" })?;
        let region = Region::parse(region).ok_or_else(|| Rejection::BadRegion {
            value: clip(region, 40),
        })?;
        let name = string_any(detail, &["alarmName"]).ok_or(Rejection::MissingField { field: "alarmName" })?;
        if name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(Rejection::MalformedRecord {
                detail: format!("alarm name {:?} is not a CloudWatch alarm name", clip(&name, 40)),
            });
        }
        let state = obj_any(detail, &["state"]).ok_or(Rejection::MissingField { field: "state" })?;
        let value = string_any(state, &["value"]).ok_or(Rejection::MissingField { field: "state.value" })?;
        let time = match str_any(state, &["timestamp"]) {
            Some(t) => Some(time::parse(t).ok_or_else(|| Rejection::BadTimestamp {
                field: "state.timestamp",
                value: clip(t, 40),
            })?),
            None => envelope_time,
        };
        Ok(AlarmChange {
            event_id: id.map(str::to_string),
            arn: format!("arn:{}:cloudwatch:{region}:{account}:alarm:{name}", region.partition()),
            previous_state: obj_any(detail, &["previousState"]).and_then(|p| string_any(p, &["value"])),
            reason: string_any(state, &["reason"]).map(|r| clip(&r, 300)),
            state: value,
            name,
            account,
            region,
            time,
        })
    }
}
