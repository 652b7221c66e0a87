//! The AWS actuator: each planned action as the API calls that perform it, in the account (or, for
//! the account's place and tags, in Organizations). Every action is safe to repeat.

use aws_config::SdkConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    ImageBlockPublicAccessEnabledState, MetadataDefaultHttpTokensState, SnapshotBlockPublicAccessState,
};
use aws_sdk_s3control::types::PublicAccessBlockConfiguration;

use super::{MemberAccess, QuarantineTable, aws_error, inspector, principals, s3control, tagging};
use crate::apply::{Actuator, Session};
use crate::error::{Error, Result};
use crate::facts::DefaultVpc;
use crate::ids::{AccountId, Region};
use crate::plan::{Action, Tag};
use crate::policy::{PasswordPolicy, SnapshotBlock};
use crate::quarantine::deny_document;

/// Applies actions through the function's roles.
#[derive(Clone, Debug)]
pub struct AwsActuator {
    access: MemberAccess,
    table: Option<QuarantineTable>,
}

impl AwsActuator {
    /// Acts through `access`.
    pub fn new(access: MemberAccess) -> Self {
        AwsActuator { access, table: None }
    }

    /// Writes quarantine records to `table`.
    pub fn with_table(self, table: QuarantineTable) -> Self {
        AwsActuator {
            table: Some(table),
            ..self
        }
    }

    async fn in_account(&self, session: &Session, account: &AccountId, region: Option<&Region>) -> Result<SdkConfig> {
        let region = match region {
            Some(r) => r.clone(),
            // Global services (IAM, S3 Control): the function's own region.
            None => self
                .access
                .base()
                .region()
                .and_then(|r| Region::parse(r.as_ref()))
                .unwrap_or_else(|| Region::parse("us-east-1").unwrap_or_else(|| unreachable!())),
        };
        self.access.config(session, account, &region).await
    }
}

impl Actuator for AwsActuator {
    #[tracing::instrument(skip_all, fields(account = %account, action = %action.id()))]
    async fn apply(&self, session: &Session, account: &AccountId, action: &Action) -> Result<()> {
        if let Action::SaveQuarantine { record } = action {
            return match &self.table {
                Some(table) => table.save(record).await,
                None => Err(Error::config(
                    "quarantine records need Guardrail's table (GUARDRAIL_TABLE)",
                )),
            };
        }
        if action.in_organizations() {
            let orgs = aws_sdk_organizations::Client::new(&self.access.management(session).await?);
            return match action {
                Action::MoveAccount { from_id, to_id, .. } => move_account(&orgs, account, from_id, to_id).await,
                Action::TagAccount { tags } => tag_account(&orgs, account, tags).await,
                _ => Ok(()),
            };
        }
        let config = self.in_account(session, account, action.region()).await?;
        match action {
            Action::Tag {
                api,
                resources,
                set,
                remove,
                ..
            } => tagging::apply(&config, *api, resources, set, remove).await,
            Action::StopInstances { instances, .. } => {
                ec2(&config)
                    .stop_instances()
                    .set_instance_ids(Some(instances.clone()))
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "StopInstances", e))?;
                Ok(())
            }
            Action::SetAccountAlias { alias } => set_alias(&config, alias).await,
            Action::SetPasswordPolicy { policy } => set_password_policy(&config, policy).await,
            Action::BlockS3PublicAccess => block_s3(&config, account).await,
            Action::EnableEbsEncryption { .. } => {
                ec2(&config)
                    .enable_ebs_encryption_by_default()
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "EnableEbsEncryptionByDefault", e))?;
                Ok(())
            }
            Action::SetEbsDefaultKey { key, .. } => {
                ec2(&config)
                    .modify_ebs_default_kms_key_id()
                    .kms_key_id(key)
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "ModifyEbsDefaultKmsKeyId", e))?;
                Ok(())
            }
            Action::RequireImdsV2 { hop_limit, .. } => {
                ec2(&config)
                    .modify_instance_metadata_defaults()
                    .http_tokens(MetadataDefaultHttpTokensState::Required)
                    .http_put_response_hop_limit(*hop_limit)
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "ModifyInstanceMetadataDefaults", e))?;
                Ok(())
            }
            Action::BlockSnapshotSharing { state, .. } => {
                let state = match state {
                    SnapshotBlock::BlockAllSharing => SnapshotBlockPublicAccessState::BlockAllSharing,
                    SnapshotBlock::BlockNewSharing => SnapshotBlockPublicAccessState::BlockNewSharing,
                };
                ec2(&config)
                    .enable_snapshot_block_public_access()
                    .state(state)
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "EnableSnapshotBlockPublicAccess", e))?;
                Ok(())
            }
            Action::BlockImageSharing { .. } => {
                ec2(&config)
                    .enable_image_block_public_access()
                    .image_block_public_access_state(ImageBlockPublicAccessEnabledState::BlockNewSharing)
                    .send()
                    .await
                    .map_err(|e| aws_error("ec2", "EnableImageBlockPublicAccess", e))?;
                Ok(())
            }
            Action::DeleteDefaultVpc { vpc, .. } => delete_default_vpc(&ec2(&config), vpc).await,
            Action::Deny {
                principal,
                policy_name,
                issued_before,
            } => principals::put_policy(&config, principal, policy_name, &deny_document(*issued_before)).await,
            Action::RemoveDeny { principal, policy_name } => {
                principals::delete_policy(&config, principal, policy_name).await
            }
            Action::SetBoundary { principal, boundary } => {
                principals::set_boundary(&config, principal, boundary.as_deref()).await
            }
            Action::SetAccessKeys { user, keys, active } => {
                principals::set_access_keys(&config, user, keys, *active).await
            }
            Action::MoveAccount { .. } | Action::TagAccount { .. } | Action::SaveQuarantine { .. } => Ok(()),
        }
    }
}

fn ec2(config: &SdkConfig) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(config)
}

fn code<E: ProvideErrorMetadata>(
    e: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

/// Moves the account, unless it already is where it should be (a retry after the move).
async fn move_account(orgs: &aws_sdk_organizations::Client, account: &AccountId, from: &str, to: &str) -> Result<()> {
    let result = orgs
        .move_account()
        .account_id(account.as_str())
        .source_parent_id(from)
        .destination_parent_id(to)
        .send()
        .await;
    let Err(e) = result else { return Ok(()) };
    let error = aws_error("organizations", "MoveAccount", e);
    let parents = orgs
        .list_parents()
        .child_id(account.as_str())
        .send()
        .await
        .map_err(|e| aws_error("organizations", "ListParents", e))?;
    if parents.parents().iter().any(|p| p.id() == Some(to)) {
        return Ok(());
    }
    Err(error)
}

async fn tag_account(orgs: &aws_sdk_organizations::Client, account: &AccountId, tags: &[Tag]) -> Result<()> {
    let tags = tags
        .iter()
        .map(|t| {
            aws_sdk_organizations::types::Tag::builder()
                .key(&t.key)
                .value(&t.value)
                .build()
                .map_err(|e| Error::Corrupt {
                    what: "account tag",
                    detail: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    orgs.tag_resource()
        .resource_id(account.as_str())
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| aws_error("organizations", "TagResource", e))?;
    Ok(())
}

async fn set_alias(config: &SdkConfig, alias: &str) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    match iam.create_account_alias().account_alias(alias).send().await {
        Ok(_) => Ok(()),
        // A retry after success: the alias is already this account's.
        Err(e) if code(&e) == Some("EntityAlreadyExists") => {
            let current = iam
                .list_account_aliases()
                .send()
                .await
                .map_err(|e| aws_error("iam", "ListAccountAliases", e))?;
            if current.account_aliases().iter().any(|a| a == alias) {
                Ok(())
            } else {
                Err(aws_error("iam", "CreateAccountAlias", e))
            }
        }
        Err(e) => Err(aws_error("iam", "CreateAccountAlias", e)),
    }
}

async fn set_password_policy(config: &SdkConfig, p: &PasswordPolicy) -> Result<()> {
    aws_sdk_iam::Client::new(config)
        .update_account_password_policy()
        .minimum_password_length(p.minimum_length)
        .require_symbols(p.require_symbols)
        .require_numbers(p.require_numbers)
        .require_uppercase_characters(p.require_uppercase)
        .require_lowercase_characters(p.require_lowercase)
        .allow_users_to_change_password(p.allow_users_to_change)
        .set_max_password_age(p.max_age_days)
        .set_password_reuse_prevention(p.reuse_prevention)
        .hard_expiry(p.hard_expiry)
        .send()
        .await
        .map_err(|e| aws_error("iam", "UpdateAccountPasswordPolicy", e))?;
    Ok(())
}

async fn block_s3(config: &SdkConfig, account: &AccountId) -> Result<()> {
    let all = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3control::client(config)
        .put_public_access_block()
        .account_id(account.as_str())
        .public_access_block_configuration(all)
        .send()
        .await
        .map_err(|e| aws_error("s3control", "PutPublicAccessBlock", e))?;
    Ok(())
}

/// Deletes a default VPC after checking, again, that nothing runs in it. Parts already gone (a
/// retry) are skipped.
async fn delete_default_vpc(ec2: &aws_sdk_ec2::Client, planned: &DefaultVpc) -> Result<()> {
    let Some(vpc) = inspector::default_vpc(ec2).await? else {
        return Ok(()); // already deleted
    };
    if vpc.id != planned.id {
        return Ok(()); // a different default VPC now: not the one planned
    }
    if !vpc.instances.is_empty() || !vpc.network_interfaces.is_empty() {
        return Err(Error::Aws {
            service: "ec2",
            operation: "DeleteVpc",
            code: "DefaultVpcInUse".into(),
            message: format!(
                "default VPC {} now holds {} instance(s) and {} network interface(s); left in place",
                vpc.id,
                vpc.instances.len(),
                vpc.network_interfaces.len()
            ),
            transient: false,
        });
    }
    let gone = |c: Option<&str>| c.is_some_and(|c| c.ends_with(".NotFound") || c == "Gateway.NotAttached");
    // Runs a delete call, taking "already gone" (a retry) for success.
    macro_rules! delete {
        ($call:expr, $operation:literal) => {
            if let Err(e) = $call.send().await
                && !gone(code(&e))
            {
                return Err(aws_error("ec2", $operation, e));
            }
        };
    }
    for igw in &vpc.internet_gateways {
        delete!(
            ec2.detach_internet_gateway().internet_gateway_id(igw).vpc_id(&vpc.id),
            "DetachInternetGateway"
        );
        delete!(
            ec2.delete_internet_gateway().internet_gateway_id(igw),
            "DeleteInternetGateway"
        );
    }
    for subnet in &vpc.subnets {
        delete!(ec2.delete_subnet().subnet_id(subnet), "DeleteSubnet");
    }
    for table in &vpc.route_tables {
        delete!(ec2.delete_route_table().route_table_id(table), "DeleteRouteTable");
    }
    for acl in &vpc.network_acls {
        delete!(ec2.delete_network_acl().network_acl_id(acl), "DeleteNetworkAcl");
    }
    for group in &vpc.security_groups {
        delete!(ec2.delete_security_group().group_id(group), "DeleteSecurityGroup");
    }
    match ec2.delete_vpc().vpc_id(&vpc.id).send().await {
        Ok(_) => Ok(()),
        Err(e) if gone(code(&e)) => Ok(()),
        Err(e) => Err(aws_error("ec2", "DeleteVpc", e)),
    }
}
