//! Writing tags: each resource type's own tagging call, or the Resource Groups Tagging API.
//! Tags are set first, then misspelled keys removed, so a rename never loses the value; a key
//! that differs from a set one only in case goes first, because IAM treats such keys as one.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;

use super::aws_error;
use crate::error::{Error, Result};
use crate::plan::Tag;
use crate::rules::resources::TagApi;

/// Sets `set` and removes `remove` on every resource.
pub(crate) async fn apply(
    config: &SdkConfig,
    api: TagApi,
    resources: &[String],
    set: &[Tag],
    remove: &[String],
) -> Result<()> {
    let resources = match api {
        TagApi::Ec2VolumesOf => attached_volumes(config, resources).await?,
        TagApi::Ec2AndVolumes => {
            let instances: Vec<String> = resources.iter().filter(|r| r.starts_with("i-")).cloned().collect();
            let mut all = resources.to_vec();
            all.extend(attached_volumes(config, &instances).await?);
            all
        }
        _ => resources.to_vec(),
    };
    if resources.is_empty() {
        return Ok(());
    }
    // Tagging `Environment` replaces `environment` on IAM users, roles and policies; removing
    // `environment` afterwards would remove the new tag too.
    let (same_key, other_keys): (Vec<String>, Vec<String>) = remove
        .iter()
        .cloned()
        .partition(|k| set.iter().any(|t| t.key.eq_ignore_ascii_case(k)));
    if !same_key.is_empty() {
        untag(config, api, &resources, &same_key).await?;
    }
    if !set.is_empty() {
        tag(config, api, &resources, set).await?;
    }
    if !other_keys.is_empty() {
        untag(config, api, &resources, &other_keys).await?;
    }
    Ok(())
}

/// The EBS volumes attached to the instances.
async fn attached_volumes(config: &SdkConfig, instances: &[String]) -> Result<Vec<String>> {
    let volumes = aws_sdk_ec2::Client::new(config)
        .describe_volumes()
        .filters(
            Filter::builder()
                .name("attachment.instance-id")
                .set_values(Some(instances.to_vec()))
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("ec2", "DescribeVolumes", e))?;
    Ok(volumes.into_iter().filter_map(|v| v.volume_id).collect())
}

fn map(tags: &[Tag]) -> HashMap<String, String> {
    tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect()
}

fn built<T, E: std::fmt::Display>(r: std::result::Result<T, E>) -> Result<T> {
    r.map_err(|e| Error::Corrupt {
        what: "tag",
        detail: e.to_string(),
    })
}

async fn tag(config: &SdkConfig, api: TagApi, resources: &[String], set: &[Tag]) -> Result<()> {
    match api {
        TagApi::Ec2 | TagApi::Ec2VolumesOf | TagApi::Ec2AndVolumes => {
            let tags = set
                .iter()
                .map(|t| aws_sdk_ec2::types::Tag::builder().key(&t.key).value(&t.value).build())
                .collect();
            aws_sdk_ec2::Client::new(config)
                .create_tags()
                .set_resources(Some(resources.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| aws_error("ec2", "CreateTags", e))?;
        }
        TagApi::IamRole | TagApi::IamUser | TagApi::IamPolicy => {
            let iam = aws_sdk_iam::Client::new(config);
            let tags: Vec<aws_sdk_iam::types::Tag> = set
                .iter()
                .map(|t| built(aws_sdk_iam::types::Tag::builder().key(&t.key).value(&t.value).build()))
                .collect::<Result<_>>()?;
            for id in resources {
                let result = match api {
                    TagApi::IamRole => iam
                        .tag_role()
                        .role_name(id)
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "TagRole", e)),
                    TagApi::IamUser => iam
                        .tag_user()
                        .user_name(id)
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "TagUser", e)),
                    _ => iam
                        .tag_policy()
                        .policy_arn(id)
                        .set_tags(Some(tags.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "TagPolicy", e)),
                };
                result?;
            }
        }
        TagApi::Sns => {
            let sns = aws_sdk_sns::Client::new(config);
            let tags: Vec<aws_sdk_sns::types::Tag> = set
                .iter()
                .map(|t| built(aws_sdk_sns::types::Tag::builder().key(&t.key).value(&t.value).build()))
                .collect::<Result<_>>()?;
            for id in resources {
                sns.tag_resource()
                    .resource_arn(id)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("sns", "TagResource", e))?;
            }
        }
        TagApi::DynamoDb => {
            let ddb = aws_sdk_dynamodb::Client::new(config);
            let tags: Vec<aws_sdk_dynamodb::types::Tag> = set
                .iter()
                .map(|t| {
                    built(
                        aws_sdk_dynamodb::types::Tag::builder()
                            .key(&t.key)
                            .value(&t.value)
                            .build(),
                    )
                })
                .collect::<Result<_>>()?;
            for id in resources {
                ddb.tag_resource()
                    .resource_arn(id)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("dynamodb", "TagResource", e))?;
            }
        }
        TagApi::Sqs => {
            let sqs = aws_sdk_sqs::Client::new(config);
            for id in resources {
                sqs.tag_queue()
                    .queue_url(id)
                    .set_tags(Some(map(set)))
                    .send()
                    .await
                    .map_err(|e| aws_error("sqs", "TagQueue", e))?;
            }
        }
        TagApi::Kms => {
            let kms = aws_sdk_kms::Client::new(config);
            let tags: Vec<aws_sdk_kms::types::Tag> = set
                .iter()
                .map(|t| {
                    built(
                        aws_sdk_kms::types::Tag::builder()
                            .tag_key(&t.key)
                            .tag_value(&t.value)
                            .build(),
                    )
                })
                .collect::<Result<_>>()?;
            for id in resources {
                kms.tag_resource()
                    .key_id(id)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("kms", "TagResource", e))?;
            }
        }
        TagApi::Tagging => {
            let out = aws_sdk_resourcegroupstagging::Client::new(config)
                .tag_resources()
                .set_resource_arn_list(Some(resources.to_vec()))
                .set_tags(Some(map(set)))
                .send()
                .await
                .map_err(|e| aws_error("tagging", "TagResources", e))?;
            tagging_failures(out.failed_resources_map(), "TagResources")?;
        }
    }
    Ok(())
}

async fn untag(config: &SdkConfig, api: TagApi, resources: &[String], keys: &[String]) -> Result<()> {
    let keys = keys.to_vec();
    match api {
        TagApi::Ec2 | TagApi::Ec2VolumesOf | TagApi::Ec2AndVolumes => {
            let tags = keys
                .iter()
                .map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build())
                .collect();
            aws_sdk_ec2::Client::new(config)
                .delete_tags()
                .set_resources(Some(resources.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| aws_error("ec2", "DeleteTags", e))?;
        }
        TagApi::IamRole | TagApi::IamUser | TagApi::IamPolicy => {
            let iam = aws_sdk_iam::Client::new(config);
            for id in resources {
                let result = match api {
                    TagApi::IamRole => iam
                        .untag_role()
                        .role_name(id)
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "UntagRole", e)),
                    TagApi::IamUser => iam
                        .untag_user()
                        .user_name(id)
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "UntagUser", e)),
                    _ => iam
                        .untag_policy()
                        .policy_arn(id)
                        .set_tag_keys(Some(keys.clone()))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| aws_error("iam", "UntagPolicy", e)),
                };
                result?;
            }
        }
        TagApi::Sns => {
            let sns = aws_sdk_sns::Client::new(config);
            for id in resources {
                sns.untag_resource()
                    .resource_arn(id)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("sns", "UntagResource", e))?;
            }
        }
        TagApi::DynamoDb => {
            let ddb = aws_sdk_dynamodb::Client::new(config);
            for id in resources {
                ddb.untag_resource()
                    .resource_arn(id)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("dynamodb", "UntagResource", e))?;
            }
        }
        TagApi::Sqs => {
            let sqs = aws_sdk_sqs::Client::new(config);
            for id in resources {
                sqs.untag_queue()
                    .queue_url(id)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("sqs", "UntagQueue", e))?;
            }
        }
        TagApi::Kms => {
            let kms = aws_sdk_kms::Client::new(config);
            for id in resources {
                kms.untag_resource()
                    .key_id(id)
                    .set_tag_keys(Some(keys.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("kms", "UntagResource", e))?;
            }
        }
        TagApi::Tagging => {
            let out = aws_sdk_resourcegroupstagging::Client::new(config)
                .untag_resources()
                .set_resource_arn_list(Some(resources.to_vec()))
                .set_tag_keys(Some(keys))
                .send()
                .await
                .map_err(|e| aws_error("tagging", "UntagResources", e))?;
            tagging_failures(out.failed_resources_map(), "UntagResources")?;
        }
    }
    Ok(())
}

/// The Tagging API answers 200 with per-resource failures; any failure fails the action.
fn tagging_failures(
    failed: Option<&HashMap<String, aws_sdk_resourcegroupstagging::types::FailureInfo>>,
    operation: &'static str,
) -> Result<()> {
    let Some((arn, info)) = failed.and_then(|f| f.iter().next()) else {
        return Ok(());
    };
    let code = info
        .error_code()
        .map(|c| c.as_str().to_string())
        .unwrap_or_else(|| "Failed".into());
    Err(Error::Aws {
        service: "tagging",
        operation,
        transient: code == "InternalServiceException" || code == "ThrottlingException",
        message: format!("{arn}: {}", info.error_message().unwrap_or_default()),
        code,
    })
}
