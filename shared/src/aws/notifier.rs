//! Alerts published to the ops SNS topic.

use aws_sdk_sns::types::MessageAttributeValue;

use super::aws_error;
use crate::alert::{Alert, Notifier};
use crate::error::{Error, Result};

/// Publishes alerts to one topic, with the readable and JSON forms and filterable attributes.
#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client: aws_sdk_sns::Client::new(config),
            topic_arn: topic_arn.into(),
        }
    }
}

impl Notifier for SnsNotifier {
    #[tracing::instrument(skip_all, fields(rule = %alert.rule, action = %alert.action))]
    async fn publish(&self, alert: &Alert) -> Result<()> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message_structure("json")
            .message(alert.sns_message());
        for (name, value) in alert.attributes() {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| Error::Corrupt {
                    what: "SNS message attribute",
                    detail: e.to_string(),
                })?;
            request = request.message_attributes(name, attribute);
        }
        request.send().await.map_err(|e| aws_error("sns", "Publish", e))?;
        Ok(())
    }
}
