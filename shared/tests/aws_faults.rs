//! What the emulator cannot produce: throttling and 5xx storms. The real DynamoDB adapter with a
//! mocked HTTP layer (aws-smithy-mocks) shows which failures Guardrail retries and reports as
//! transient (Lambda retries the event) and which it treats as permanent.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{Duration, Utc};
use guardrail::aws::DynamoReplayStore;
use guardrail::replay::{Claim, ClaimRequest, ReplayStore};

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#;
const DENIED: &str = r#"{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User is not authorized to perform: dynamodb:UpdateItem"}"#;
const BROKEN: &str =
    r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#;

async fn claim(store: &DynamoReplayStore) -> guardrail::Result<Claim> {
    let now = Utc::now();
    store
        .claim(&ClaimRequest {
            key: "k",
            owner: "me",
            now,
            lease_until: now + Duration::seconds(30),
            expires_at: now + Duration::days(1),
        })
        .await
}

fn claimed_output() -> UpdateItemOutput {
    let item: HashMap<String, AttributeValue> = [
        ("pk", AttributeValue::S("replay#k".into())),
        ("state", AttributeValue::S("InProgress".into())),
        ("expires_at", AttributeValue::N("4102444800".into())),
        ("attempts", AttributeValue::N("1".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    UpdateItemOutput::builder().set_attributes(Some(item)).build()
}

macro_rules! store_with {
    ($rule:expr) => {
        DynamoReplayStore::with_client(
            mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [$rule], |c| c.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(std::time::Duration::from_millis(1))
            )),
            "guardrail",
        )
    };
}

#[tokio::test]
async fn a_throttling_storm_is_retried_then_reported_transient() {
    let rule = mock!(Client::update_item)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(3)
        .build();
    let error = claim(&store_with!(&rule)).await.expect_err("throttled");
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.error_type(), "Guardrail.Transient");
    assert!(error.to_string().contains("ThrottlingException"), "{error}");
    assert_eq!(rule.num_calls(), 3, "the SDK retries throttling up to max_attempts");
}

#[tokio::test]
async fn a_5xx_storm_is_transient() {
    let rule = mock!(Client::update_item)
        .sequence()
        .http_status(500, Some(BROKEN.into()))
        .times(3)
        .build();
    let error = claim(&store_with!(&rule)).await.expect_err("5xx");
    assert_eq!(error.error_type(), "Guardrail.Transient", "{error}");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn access_denied_is_permanent_and_not_retried() {
    let rule = mock!(Client::update_item)
        .sequence()
        .http_status(400, Some(DENIED.into()))
        .times(3)
        .build();
    let error = claim(&store_with!(&rule)).await.expect_err("denied");
    assert!(!error.is_transient(), "{error}");
    assert_eq!(error.error_type(), "Guardrail.AwsError");
    assert!(error.to_string().contains("AccessDeniedException"), "{error}");
    assert_eq!(rule.num_calls(), 1, "a permanent error is not retried");
}

#[tokio::test]
async fn one_throttle_then_success_claims() {
    let rule = mock!(Client::update_item)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .output(claimed_output)
        .build();
    let claimed = claim(&store_with!(&rule)).await.expect("claimed after one retry");
    assert!(matches!(claimed, Claim::Claimed { attempt: 1, .. }), "{claimed:?}");
    assert_eq!(rule.num_calls(), 2);
}
