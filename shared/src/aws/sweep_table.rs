//! Sweep records in DynamoDB: a sweep's progress under `pk = sweep#<function>#<id>`, held by one
//! invocation at a time through a lease, so a duplicate delivery never runs it twice at once and
//! a follow-up (or a retry) takes over where the last holder stopped.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::{aws_error, number, written};
use crate::error::{Error, Result};
use crate::rules::Function;
use crate::sweep::Progress;

/// How long a sweep's record is kept after it started.
const KEEP: Duration = Duration::days(7);
const RUNNING: &str = "running";
const FINISHED: &str = "finished";

/// What [`SweepTable::take`] found.
#[derive(Debug)]
pub enum Taken {
    /// The sweep is this invocation's until its lease runs out.
    Held(Box<Progress>),
    /// No such sweep.
    Missing,
    /// Another invocation holds it.
    Busy,
    /// It is over.
    Finished(Box<Progress>),
}

/// How a save leaves the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Save {
    /// Still held.
    Keep,
    /// Let go, for the follow-up invocation.
    Release,
    /// Over.
    Finish,
}

#[derive(Clone, Debug)]
pub struct SweepTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    function: Function,
}

impl SweepTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>, function: Function) -> Self {
        SweepTable {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
            function,
        }
    }

    fn pk(&self, id: &str) -> AttributeValue {
        AttributeValue::S(format!("sweep#{}#{id}", self.function))
    }

    /// Takes the sweep for `owner` until `lease_until`: a running sweep nobody holds, whose
    /// holder's lease ran out, or that `owner` already holds.
    pub async fn take(&self, id: &str, owner: &str, now: DateTime<Utc>, lease_until: DateTime<Utc>) -> Result<Taken> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(id))
            .update_expression("SET #owner = :owner, lease_until = :lease, updated_at = :now_text")
            .condition_expression(
                "attribute_exists(pk) AND #state = :running \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now OR #owner = :owner)",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":lease", number(lease_until.timestamp_millis()))
            .expression_attribute_values(":now", number(now.timestamp_millis()))
            .expression_attribute_values(":running", AttributeValue::S(RUNNING.into()))
            .expression_attribute_values(":now_text", text_time(now))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Taken::Held(Box::new(progress(out.attributes())?))),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(match c.item() {
                    None => Taken::Missing,
                    Some(item)
                        if item.get("state").and_then(|s| s.as_s().ok()).map(String::as_str) == Some(FINISHED) =>
                    {
                        Taken::Finished(Box::new(progress(Some(item))?))
                    }
                    Some(_) => Taken::Busy,
                }),
                _ => Err(aws_error("dynamodb", "UpdateItem", e)),
            },
        }
    }

    /// Records a new sweep, held by `owner`. `false`: another invocation recorded it first.
    pub async fn begin(&self, progress: &Progress, owner: &str, lease_until: DateTime<Utc>) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", self.pk(&progress.id))
            .item("progress", AttributeValue::S(encode(progress)?))
            .item("state", AttributeValue::S(RUNNING.into()))
            .item("owner", AttributeValue::S(owner.to_string()))
            .item("lease_until", number(lease_until.timestamp_millis()))
            .item("expires_at", number((progress.started + KEEP).timestamp()))
            .item("updated_at", text_time(Utc::now()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        written(result, "PutItem")
    }

    /// Saves the sweep's progress, if `owner` still holds it. `false`: it lost the sweep (its
    /// lease ran out and another invocation took over).
    pub async fn save(&self, progress: &Progress, owner: &str, how: Save) -> Result<bool> {
        let expression = match how {
            Save::Keep => "SET progress = :progress, updated_at = :now_text",
            Save::Release => "SET progress = :progress, updated_at = :now_text REMOVE lease_until",
            Save::Finish => "SET progress = :progress, updated_at = :now_text, #state = :finished REMOVE lease_until",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", self.pk(&progress.id))
            .update_expression(expression)
            .condition_expression("#owner = :owner AND #state = :running")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":running", AttributeValue::S(RUNNING.into()))
            .expression_attribute_values(":progress", AttributeValue::S(encode(progress)?))
            .expression_attribute_values(":now_text", text_time(Utc::now()));
        if how == Save::Finish {
            request = request.expression_attribute_values(":finished", AttributeValue::S(FINISHED.into()));
        }
        written(request.send().await, "UpdateItem")
    }
}

fn text_time(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn encode(progress: &Progress) -> Result<String> {
    serde_json::to_string(progress).map_err(|e| Error::Corrupt {
        what: "sweep record",
        detail: e.to_string(),
    })
}

fn progress(item: Option<&HashMap<String, AttributeValue>>) -> Result<Progress> {
    super::json_attribute(item, "progress", "sweep record")
}
