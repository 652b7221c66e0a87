//! Quarantine records and agents' rate counters in Guardrail's table. Records are written only if
//! they still hold the version the write replaces; counters are atomic `ADD`s that count each
//! CloudTrail event once.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::aws_error;
use crate::error::{Error, Result};
use crate::facts::{RateCount, RateKey};
use crate::quarantine::{PrincipalRef, QuarantineRecord};

/// How long a counter outlives its window.
const COUNTER_MARGIN_SECS: i64 = 3600;
/// Event ids are kept (to count each once) until a window holds this many calls; past it, the
/// budget is long broken and an approximate count is enough. Keeps items far below 400 KB.
const EXACT_COUNT_CAP: u64 = 2_000;

#[derive(Clone, Debug)]
pub struct QuarantineTable {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

impl QuarantineTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        QuarantineTable {
            ddb: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// The principal's record, active or released.
    pub async fn get(&self, principal: &PrincipalRef) -> Result<Option<QuarantineRecord>> {
        let item = self.item(&principal.record_key()).await?;
        item.map(|i| record_of(&i)).transpose()
    }

    async fn item(&self, pk: &str) -> Result<Option<Item>> {
        super::get_item(&self.ddb, &self.table, pk).await
    }

    /// Writes the record if the table still holds the version before it; writing the same
    /// record twice is writing it once.
    pub async fn save(&self, record: &QuarantineRecord) -> Result<()> {
        let pk = record.principal.record_key();
        let json = serde_json::to_string(record).map_err(|e| Error::Corrupt {
            what: "quarantine record",
            detail: e.to_string(),
        })?;
        let mut request = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk.clone()))
            .item("record", AttributeValue::S(json))
            .item("version", AttributeValue::N(record.version.to_string()))
            .item("active", AttributeValue::Bool(record.is_active()));
        request = if record.version <= 1 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :before")
                .expression_attribute_values(":before", AttributeValue::N((record.version - 1).to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                match self.item(&pk).await?.map(|i| record_of(&i)).transpose()? {
                    Some(stored) if &stored == record => Ok(()),
                    stored => Err(Error::Aws {
                        service: "dynamodb",
                        operation: "PutItem",
                        code: "QuarantineRecordChanged".into(),
                        message: format!(
                            "the quarantine record of {} is at version {}, not {}: another event changed it first; the retry plans again",
                            record.principal,
                            stored.map_or(0, |s| s.version),
                            record.version - 1
                        ),
                        transient: true,
                    }),
                }
            }
            Err(e) => Err(aws_error("dynamodb", "PutItem", e)),
        }
    }

    /// Counts one call in its window, once per event id, and returns the window's counts.
    pub async fn count(&self, key: &RateKey) -> Result<RateCount> {
        let pk = format!("rate#{}#{}", key.principal_arn, key.window_start.timestamp());
        let expires = key.window_start.timestamp() + key.window_secs + COUNTER_MARGIN_SECS;
        let by_name = key.counted_by_name.then(|| format!("e_{}", key.event_name));
        let add = if by_name.is_some() { ", #name :one" } else { "" };
        let mut request = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression(format!(
                "ADD calls :one, seen :ids{add} SET expires_at = if_not_exists(expires_at, :expires)"
            ))
            .condition_expression("attribute_not_exists(pk) OR (NOT contains(seen, :id) AND calls < :cap)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":ids", AttributeValue::Ss(vec![key.event_id.clone()]))
            .expression_attribute_values(":id", AttributeValue::S(key.event_id.clone()))
            .expression_attribute_values(":cap", AttributeValue::N(EXACT_COUNT_CAP.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(name) = &by_name {
            request = request.expression_attribute_names("#name", name);
        }
        let item = match request.send().await {
            Ok(out) => out.attributes.unwrap_or_default(),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                let stored = self.item(&pk).await?.unwrap_or_default();
                let seen = stored
                    .get("seen")
                    .and_then(|v| v.as_ss().ok())
                    .is_some_and(|s| s.contains(&key.event_id));
                if seen {
                    stored // a repeated delivery: already counted
                } else {
                    self.count_beyond_cap(&pk, by_name.as_deref()).await?
                }
            }
            Err(e) => return Err(aws_error("dynamodb", "UpdateItem", e)),
        };
        let n = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok(RateCount {
            calls: n("calls"),
            event_calls: by_name.as_deref().map_or(0, n),
        })
    }

    async fn count_beyond_cap(&self, pk: &str, by_name: Option<&str>) -> Result<Item> {
        let add = if by_name.is_some() { ", #name :one" } else { "" };
        let mut request = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .update_expression(format!("ADD calls :one{add}"))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(name) = by_name {
            request = request.expression_attribute_names("#name", name);
        }
        Ok(request
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "UpdateItem", e))?
            .attributes
            .unwrap_or_default())
    }
}

fn record_of(item: &Item) -> Result<QuarantineRecord> {
    super::json_attribute(Some(item), "record", "quarantine record")
}
