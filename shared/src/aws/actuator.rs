//! The AWS actuator: each planned action as the API call that performs it, in the member account.

use aws_sdk_ec2::types::Tag as Ec2Tag;

use super::{MemberAccess, aws_error};
use crate::apply::{Actuator, Session, Target};
use crate::error::Result;
use crate::plan::Action;

/// Applies actions through the function's member role.
#[derive(Clone, Debug)]
pub struct AwsActuator {
    access: MemberAccess,
}

impl AwsActuator {
    pub fn new(access: MemberAccess) -> Self {
        AwsActuator { access }
    }
}

impl Actuator for AwsActuator {
    #[tracing::instrument(skip_all, fields(account = %target.account, region = %target.region, action = action.verb()))]
    async fn apply(&self, session: &Session, target: &Target, action: &Action) -> Result<()> {
        let config = self
            .access
            .config(session, &target.account, &target.region)
            .await?;
        match action {
            Action::TagEc2 { resources, tags } => {
                let tags = tags
                    .iter()
                    .map(|t| Ec2Tag::builder().key(&t.key).value(&t.value).build())
                    .collect();
                aws_sdk_ec2::Client::new(&config)
                    .create_tags()
                    .set_resources(Some(resources.clone()))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "CreateTags", e))?;
            }
        }
        Ok(())
    }
}
