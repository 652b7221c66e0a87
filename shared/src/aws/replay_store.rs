//! Replay records in DynamoDB: claims are conditional writes, so two deliveries of one event can
//! never both act. Table contract: string partition key `pk`, TTL attribute `expires_at`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, SecondsFormat, Utc};

use super::{aws_error, number, written};
use crate::error::{Error, Result};
use crate::replay::{Claim, ClaimRequest, Record, ReplayStore, State};

/// Replay records under `pk = replay#<function>#<event key>`.
#[derive(Clone, Debug)]
pub struct DynamoReplayStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoReplayStore {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_dynamodb::Client::new(config), table)
    }

    pub fn with_client(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoReplayStore {
            client,
            table: table.into(),
        }
    }

    fn pk(key: &str) -> AttributeValue {
        AttributeValue::S(format!("replay#{key}"))
    }

    /// An update that only the claim's holder may make. `release` also drops the lease (the
    /// record leaves `InProgress`).
    async fn holder_update(
        &self,
        key: &str,
        owner: &str,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
        release: bool,
    ) -> Result<bool> {
        let remove = if release { " REMOVE lease_until" } else { "" };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::pk(key))
            .update_expression(format!("SET {set}, updated_at = :now{remove}"))
            .condition_expression("#owner = :owner AND #state = :in_progress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":in_progress", AttributeValue::S(State::InProgress.as_str().into()))
            .expression_attribute_values(":now", AttributeValue::S(now_text()));
        if set.contains("#error") {
            // `error` is a reserved word in DynamoDB expressions.
            request = request.expression_attribute_names("#error", "error");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        written(request.send().await, "UpdateItem")
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn list(items: &[String]) -> AttributeValue {
    AttributeValue::L(items.iter().map(|s| AttributeValue::S(s.clone())).collect())
}

impl ReplayStore for DynamoReplayStore {
    #[tracing::instrument(skip_all, fields(key = req.key))]
    async fn claim(&self, req: &ClaimRequest<'_>) -> Result<Claim> {
        // Claimable: absent, expired, failed, or in progress with its lease run out.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", Self::pk(req.key))
            .update_expression(
                "SET #state = :in_progress, #owner = :owner, lease_until = :lease, expires_at = :expires, \
                 attempts = if_not_exists(attempts, :zero) + :one, updated_at = :now_text",
            )
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s OR #state = :failed \
                 OR (#state = :in_progress AND lease_until < :now_ms)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":in_progress", AttributeValue::S(State::InProgress.as_str().into()))
            .expression_attribute_values(":failed", AttributeValue::S(State::Failed.as_str().into()))
            .expression_attribute_values(":owner", AttributeValue::S(req.owner.to_string()))
            .expression_attribute_values(":lease", number(req.lease_until.timestamp_millis()))
            .expression_attribute_values(":expires", number(req.expires_at.timestamp()))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now_s", number(req.now.timestamp()))
            .expression_attribute_values(":now_ms", number(req.now.timestamp_millis()))
            .expression_attribute_values(":now_text", AttributeValue::S(now_text()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let record = parse(out.attributes().ok_or_else(|| Error::Corrupt {
                    what: "replay record",
                    detail: "claim returned no attributes".into(),
                })?)?;
                Ok(Claim::Claimed {
                    attempt: record.attempts,
                    done: record.done,
                    failure_alerted: record.failure_alerted,
                })
            }
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => match c.item() {
                    Some(item) => Ok(parse(item)?.refusal(req.owner)),
                    None => Err(Error::Corrupt {
                        what: "replay record",
                        detail: "refused claim returned no record".into(),
                    }),
                },
                _ => Err(aws_error("dynamodb", "UpdateItem", e)),
            },
        }
    }

    async fn progress(&self, key: &str, owner: &str, done: &[String]) -> Result<bool> {
        self.holder_update(key, owner, "done = :done", vec![(":done", list(done))], false)
            .await
    }

    async fn complete(&self, key: &str, owner: &str, summary: &str, done: &[String]) -> Result<bool> {
        self.holder_update(
            key,
            owner,
            "#state = :completed, summary = :summary, done = :done",
            vec![
                (":completed", AttributeValue::S(State::Completed.as_str().into())),
                (":summary", AttributeValue::S(summary.to_string())),
                (":done", list(done)),
            ],
            true,
        )
        .await
    }

    async fn fail(&self, key: &str, owner: &str, error: &str, done: &[String], alerted: bool) -> Result<bool> {
        let set = if alerted {
            "#state = :failed, #error = :error, done = :done, failure_alerted = :true"
        } else {
            "#state = :failed, #error = :error, done = :done"
        };
        let mut values = vec![
            (":failed", AttributeValue::S(State::Failed.as_str().into())),
            (":error", AttributeValue::S(crate::ids::clip(error, 1000))),
            (":done", list(done)),
        ];
        if alerted {
            values.push((":true", AttributeValue::Bool(true)));
        }
        self.holder_update(key, owner, set, values, true).await
    }
}

/// Reads a stored record; an item that does not have the shape written above is corrupt.
fn parse(item: &HashMap<String, AttributeValue>) -> Result<Record> {
    let corrupt = |detail: &str| Error::Corrupt {
        what: "replay record",
        detail: detail.to_string(),
    };
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let state = s("state")
        .and_then(|st| State::parse(&st))
        .ok_or_else(|| corrupt("no valid state"))?;
    let expires_at = n("expires_at")
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or_else(|| corrupt("no expires_at"))?;
    Ok(Record {
        state,
        owner: s("owner").unwrap_or_default(),
        lease_until: n("lease_until").and_then(DateTime::from_timestamp_millis),
        expires_at,
        attempts: n("attempts").and_then(|a| u32::try_from(a).ok()).unwrap_or(0),
        done: item
            .get("done")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|v| v.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        summary: s("summary"),
        error: s("error"),
        failure_alerted: item
            .get("failure_alerted")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
    })
}
