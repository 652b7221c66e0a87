//! The follow-up invocation a sweep sends itself before the Lambda time limit: an asynchronous
//! `Invoke` of the function's own name, carrying only the sweep's id.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

use super::aws_error;
use crate::error::Result;

#[derive(Clone, Debug)]
pub struct LambdaContinuation {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaContinuation {
    pub fn new(config: &aws_config::SdkConfig, function_name: impl Into<String>) -> Self {
        LambdaContinuation {
            client: aws_sdk_lambda::Client::new(config),
            function_name: function_name.into(),
        }
    }

    /// Queues `input` for a new invocation of the function (Lambda retries it twice on error).
    pub async fn send(&self, input: &Value) -> Result<()> {
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(input.to_string()))
            .send()
            .await
            .map_err(|e| aws_error("lambda", "Invoke", e))?;
        Ok(())
    }
}
