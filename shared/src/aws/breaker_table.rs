//! Blast-radius breakers in Guardrail's table: one item per rule and account holding each
//! counted event's changes (an idempotent `SET`), and the trip, which only a reset removes.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracing::warn;

use super::{aws_error, number};
use crate::breaker::{Breaker, Count, State, Tally, Trip, Verdict, judge, key};
use crate::error::{Error, Result};
use crate::ids::AccountId;
use crate::policy::Rule;

type Item = HashMap<String, AttributeValue>;

/// Tallies of events counted before the window are removed once an item holds this many.
const PRUNE_AFTER: usize = 16;
/// Attribute names of event tallies start with this.
const TALLY: &str = "e_";

/// The breakers, in Guardrail's table (keys `breaker#<rule>#<account>`).
#[derive(Clone, Debug)]
pub struct BreakerTable {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl BreakerTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        BreakerTable {
            ddb: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// A rule's breaker in an account, as stored (empty when it never counted anything).
    pub async fn status(&self, rule: Rule, account: &AccountId) -> Result<State> {
        Ok(self
            .item(&key(rule, account))
            .await?
            .map(|i| state_of(&i))
            .unwrap_or_default())
    }

    /// Closes a rule's breaker in an account and forgets its counts, recording who did it and
    /// why; returns the state it had.
    pub async fn reset(
        &self,
        rule: Rule,
        account: &AccountId,
        by: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<State> {
        let out = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key(rule, account)))
            .item("reset_at", number(now.timestamp_millis()))
            .item("reset_by", AttributeValue::S(crate::ids::clip(by, 300)))
            .item("reset_reason", AttributeValue::S(crate::ids::clip(reason, 500)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| aws_error("dynamodb", "PutItem", e))?;
        Ok(out.attributes.map(|i| state_of(&i)).unwrap_or_default())
    }

    async fn item(&self, pk: &str) -> Result<Option<Item>> {
        super::get_item(&self.ddb, &self.table, pk).await
    }

    /// The verdict once another writer changed the item under us: read it and judge again.
    async fn reread(&self, count: &Count<'_>) -> Result<Verdict> {
        let state = self.item(&count.key()).await?.map(|i| state_of(&i)).unwrap_or_default();
        match state.trip {
            Some(_) => Ok(judge(&state, count)),
            None => Err(Error::Aws {
                service: "dynamodb",
                operation: "UpdateItem",
                code: "BreakerChanged".into(),
                message: format!(
                    "the {} breaker of account {} was reset while this event was counted; the retry counts it again",
                    count.rule.name(),
                    count.account
                ),
                transient: true,
            }),
        }
    }

    /// Records the trip; `false` when another event recorded one first.
    async fn trip(&self, pk: &str, trip: &Trip) -> Result<bool> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .update_expression("SET tripped_at = :at, tripped_by = :event, tripped_count = :n")
            .condition_expression("attribute_not_exists(tripped_at)")
            .expression_attribute_values(":at", number(trip.at.timestamp_millis()))
            .expression_attribute_values(":event", AttributeValue::S(trip.event.clone()))
            .expression_attribute_values(":n", number(i64::from(trip.count)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(aws_error("dynamodb", "UpdateItem", e)),
        }
    }

    /// Forgets tallies that no longer count; a failure only leaves them for the next time.
    async fn prune(&self, pk: &str, stale: &[String]) {
        for chunk in stale.chunks(100) {
            let mut request = self
                .ddb
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.into()));
            let names: Vec<String> = (0..chunk.len()).map(|i| format!("#s{i}")).collect();
            for (name, attribute) in names.iter().zip(chunk) {
                request = request.expression_attribute_names(name, attribute);
            }
            request = request.update_expression(format!("REMOVE {}", names.join(", ")));
            if let Err(e) = request.send().await {
                warn!(error = %aws_error("dynamodb", "UpdateItem", e), pk, "could not prune the breaker's old counts");
            }
        }
    }
}

impl Breaker for BreakerTable {
    async fn count(&self, count: &Count<'_>) -> Result<Verdict> {
        let pk = count.key();
        let tally = format!("{}:{}", count.now.timestamp_millis(), count.changes);
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.clone()))
            .update_expression("SET #e = if_not_exists(#e, :tally)")
            .condition_expression("attribute_not_exists(tripped_at) OR tripped_by = :event")
            .expression_attribute_names("#e", tally_name(count.event))
            .expression_attribute_values(":tally", AttributeValue::S(tally))
            .expression_attribute_values(":event", AttributeValue::S(count.event.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let state = match result {
            Ok(out) => state_of(&out.attributes.unwrap_or_default()),
            Err(e) if condition_failed(&e) => return self.reread(count).await,
            Err(e) => return Err(aws_error("dynamodb", "UpdateItem", e)),
        };
        let stale = state.stale(count.now, count.window);
        if stale.len() >= PRUNE_AFTER {
            self.prune(&pk, &stale).await;
        }
        let verdict = judge(&state, count);
        if let Verdict::Tripped(trip) = &verdict
            && state.trip.is_none()
            && !self.trip(&pk, trip).await?
        {
            return self.reread(count).await;
        }
        Ok(verdict)
    }
}

fn condition_failed<R>(e: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(UpdateItemError::ConditionalCheckFailedException(_))
    )
}

/// The attribute holding an event's tally: a digest, as event ids are the sender's text.
fn tally_name(event: &str) -> String {
    let digest = Sha256::digest(event.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("{TALLY}{hex}")
}

fn state_of(item: &Item) -> State {
    let s = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
    };
    let tallies = item
        .iter()
        .filter(|(k, _)| k.starts_with(TALLY))
        .filter_map(|(k, v)| {
            let (at, changes) = v.as_s().ok()?.split_once(':')?;
            Some((
                k.clone(),
                Tally {
                    at: DateTime::from_timestamp_millis(at.parse().ok()?)?,
                    changes: changes.parse().ok()?,
                },
            ))
        })
        .collect();
    let trip = match (
        n("tripped_at").and_then(DateTime::from_timestamp_millis),
        s("tripped_by"),
    ) {
        (Some(at), Some(event)) => Some(Trip {
            at,
            event,
            count: n("tripped_count").and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
        }),
        _ => None,
    };
    let reset = match (n("reset_at").and_then(DateTime::from_timestamp_millis), s("reset_by")) {
        (Some(at), Some(by)) => Some(format!(
            "reset by {by} at {}: {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            s("reset_reason").unwrap_or_default()
        )),
        _ => None,
    };
    State { tallies, trip, reset }
}
