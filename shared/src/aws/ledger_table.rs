//! The audit ledger in DynamoDB: conditional puts only, so an entry is written once and never
//! changed. Table contract: partition key `account`, sort key `entry`, TTL attribute
//! `expires_at`; index `by-resource` (`resource`, `entry`) and `by-day` (`day`, `entry`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{aws_error, number, written};
use crate::error::{Error, Result};
use crate::ledger::{Entry, Ledger, Outcome, Query, Values, expires_at, stamp};

/// Puts at the same time, per append.
const PARALLEL_PUTS: usize = 8;

/// The ledger table.
#[derive(Clone, Debug)]
pub struct LedgerTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Days an entry is kept.
    days: u32,
}

impl LedgerTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>, days: u32) -> Self {
        LedgerTable {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
            days,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn item(&self, e: &Entry) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_string());
        let json = |v: &Values| AttributeValue::S(serde_json::to_string(v).unwrap_or_else(|_| "{}".into()));
        let mut item = HashMap::from([
            ("account".to_string(), s(&e.account)),
            ("entry".to_string(), s(&e.key())),
            ("day".to_string(), s(&e.day())),
            ("time".to_string(), s(&stamp(e.time))),
            ("recorded".to_string(), s(&stamp(e.recorded))),
            ("function".to_string(), s(&e.function)),
            ("rule".to_string(), s(&e.rule)),
            ("mode".to_string(), s(&e.mode)),
            ("event".to_string(), s(&e.event)),
            ("resource".to_string(), s(&e.resource)),
            ("before".to_string(), json(&e.before)),
            ("after".to_string(), json(&e.after)),
            ("outcome".to_string(), s(e.outcome.name())),
            ("attempt".to_string(), number(i64::from(e.attempt))),
            (
                "expires_at".to_string(),
                number(expires_at(e.recorded, self.days).timestamp()),
            ),
        ]);
        // DynamoDB refuses empty strings in index keys only, but empty attributes say nothing.
        for (name, value) in [("cause", &e.cause), ("action", &e.action), ("detail", &e.detail)] {
            if !value.is_empty() {
                item.insert(name.to_string(), s(value));
            }
        }
        item
    }

    async fn put(&self, e: &Entry) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item(e)))
            .condition_expression("attribute_not_exists(#entry)")
            .expression_attribute_names("#entry", "entry")
            .send()
            .await;
        written(result, "PutItem")
    }

    /// The entries `query` asks for, newest first. Without an account or a resource, it reads
    /// the days from `since` (which is then required) to `now`.
    pub async fn query(&self, query: &Query, now: DateTime<Utc>) -> Result<Vec<Entry>> {
        let since = query.since.map(stamp);
        let mut keys: Vec<(Option<&'static str>, &'static str, String)> = Vec::new();
        if let Some(account) = &query.account {
            keys.push((None, "account", account.clone()));
        } else if let Some(resource) = &query.resource {
            keys.push((Some("by-resource"), "resource", resource.clone()));
        } else {
            let from = query.since.ok_or_else(|| {
                Error::config("a ledger query without an account or resource needs a start time (--since)")
            })?;
            let mut day = now.date_naive();
            while day >= from.date_naive() {
                keys.push((Some("by-day"), "day", day.format("%Y-%m-%d").to_string()));
                day -= Duration::days(1);
            }
        }
        let mut out = Vec::new();
        for (index, name, value) in keys {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .expression_attribute_names("#k", name)
                .expression_attribute_values(":k", AttributeValue::S(value))
                .scan_index_forward(false);
            // Keys begin with the entry's time, so a start time is a key condition.
            request = match &since {
                Some(since) => request
                    .key_condition_expression("#k = :k AND #entry >= :since")
                    .expression_attribute_names("#entry", "entry")
                    .expression_attribute_values(":since", AttributeValue::S(since.clone())),
                None => request.key_condition_expression("#k = :k"),
            };
            if let Some(limit) = query.limit {
                request = request.limit(i32::try_from(limit).unwrap_or(i32::MAX).max(1));
            }
            let mut pages = request.into_paginator().items().send();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| aws_error("dynamodb", "Query", e))?;
                let entry = from_item(&item)?;
                if query.matches(&entry) {
                    out.push(entry);
                }
                if query.limit.is_some_and(|l| out.len() >= l) {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }
}

impl Ledger for LedgerTable {
    #[tracing::instrument(skip_all, fields(entries = entries.len()))]
    async fn append(&self, entries: &[Entry]) -> Result<usize> {
        let puts: Vec<_> = entries.iter().map(|e| self.put(e)).collect();
        let written: Vec<bool> = stream::iter(puts).buffer_unordered(PARALLEL_PUTS).try_collect().await?;
        Ok(written.into_iter().filter(|w| *w).count())
    }
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Entry> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    let time = |name: &str| {
        DateTime::parse_from_rfc3339(&text(name))
            .map(|t| t.to_utc())
            .map_err(|_| Error::config(format!("ledger entry {:?} has no valid {name}", text("entry"))))
    };
    let values = |name: &str| serde_json::from_str::<Values>(&text(name)).unwrap_or_default();
    Ok(Entry {
        account: text("account"),
        time: time("time")?,
        recorded: time("recorded")?,
        function: text("function"),
        rule: text("rule"),
        mode: text("mode"),
        event: text("event"),
        cause: text("cause"),
        resource: text("resource"),
        action: text("action"),
        before: values("before"),
        after: values("after"),
        outcome: Outcome::parse(&text("outcome"))
            .ok_or_else(|| Error::config(format!("ledger entry {:?} has an unknown outcome", text("entry"))))?,
        detail: text("detail"),
        attempt: item
            .get("attempt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or_default(),
    })
}
