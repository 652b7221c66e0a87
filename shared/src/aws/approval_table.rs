//! Approvals in Guardrail's table (keys `approval#<id>`): the functions only put new ones;
//! people move them on with conditional writes, and list the pending ones through the sparse
//! `pending` index (`queue`, `deadline`), which holds an approval only while it waits.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use super::{aws_error, number};
use crate::approval::{Approval, Approvals, State, key};
use crate::error::Result;

/// The sparse index of pending approvals, and its key attributes.
pub const PENDING_INDEX: &str = "pending";
pub const QUEUE: &str = "queue";
pub const DEADLINE: &str = "deadline";
/// How long an ended approval stays readable after its deadline (DynamoDB TTL removes it).
const KEPT_DAYS: i64 = 30;

#[derive(Clone, Debug)]
pub struct ApprovalTable {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl ApprovalTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        ApprovalTable {
            ddb: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    /// An approval by id.
    pub async fn get(&self, id: &str) -> Result<Option<Approval>> {
        super::get_item(&self.ddb, &self.table, &key(id))
            .await?
            .map(|item| approval_of(&item))
            .transpose()
    }

    /// Writes `approval` if the stored one is still in state `from`; `false` when another
    /// person moved it first.
    pub async fn update(&self, approval: &Approval, from: State) -> Result<bool> {
        let request = self
            .put(approval)?
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", AttributeValue::S(from.name().into()));
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(aws_error("dynamodb", "PutItem", e)),
        }
    }

    /// Pending approvals whose deadline is after `since`, soonest deadline first (those past
    /// their deadline are expired).
    pub async fn pending(&self, since: DateTime<Utc>) -> Result<Vec<Approval>> {
        let mut pages = self
            .ddb
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("#q = :pending AND #d > :since")
            .expression_attribute_names("#q", QUEUE)
            .expression_attribute_names("#d", DEADLINE)
            .expression_attribute_values(":pending", AttributeValue::S(State::Pending.name().into()))
            .expression_attribute_values(":since", number(since.timestamp()))
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| aws_error("dynamodb", "Query", e))?;
            out.push(approval_of(&item)?);
        }
        Ok(out)
    }

    /// The put of an approval as it now stands: in the pending index only while pending.
    fn put(
        &self,
        approval: &Approval,
    ) -> Result<aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder> {
        let mut request = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key(&approval.id)))
            .item("record", AttributeValue::S(approval.to_json()?))
            .item("state", AttributeValue::S(approval.state.name().into()))
            .item(DEADLINE, number(approval.deadline.timestamp()))
            .item(
                "expires_at",
                number((approval.deadline + Duration::days(KEPT_DAYS)).timestamp()),
            );
        if approval.state == State::Pending {
            request = request.item(QUEUE, AttributeValue::S(State::Pending.name().into()));
        }
        Ok(request)
    }
}

impl Approvals for ApprovalTable {
    #[tracing::instrument(skip_all, fields(approval = %approval.id))]
    async fn request(&self, approval: &Approval) -> Result<()> {
        let request = self.put(approval)?.condition_expression("attribute_not_exists(pk)");
        match request.send().await {
            Ok(_) => Ok(()),
            // Asked already: by an earlier delivery, or decided since.
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(aws_error("dynamodb", "PutItem", e)),
        }
    }
}

fn condition_failed<R>(e: &aws_sdk_dynamodb::error::SdkError<PutItemError, R>) -> bool {
    matches!(
        e.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

fn approval_of(item: &HashMap<String, AttributeValue>) -> Result<Approval> {
    super::json_attribute(Some(item), "record", "approval")
}
