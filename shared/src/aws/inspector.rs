//! Reads an account's current state for the baseline: its place, name and tags in Organizations
//! (management role), and its settings in the account and each region (the baseline's member
//! role, or the bootstrap role), as far as the [`Scope`] reaches. A failed read fails only the
//! check it serves.

use std::collections::VecDeque;
use std::future::Future;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::ParentType;

use super::{MemberAccess, aws_error, s3control};
use crate::apply::Session;
use crate::error::Result;
use crate::facts::{
    AccountFacts, DefaultVpc, EbsKey, ImdsDefaults, OuRef, ReadError, Reading, RegionFacts, S3PublicAccessBlock, Scope,
};
use crate::ids::{AccountId, Region};
use crate::plan::Tag;
use crate::policy::{PasswordPolicy, Policy, Step};

/// How deep under the root environment OUs are looked for.
const OU_SEARCH_DEPTH: usize = 3;

/// Reads account state through the roles of [`MemberAccess`].
#[derive(Clone, Debug)]
pub struct AwsInspector {
    access: MemberAccess,
}

fn reading<T>(r: Result<T>) -> Reading<T> {
    r.map_err(ReadError::from)
}

impl AwsInspector {
    pub fn new(access: MemberAccess) -> Self {
        AwsInspector { access }
    }

    /// The account's state within `scope`, or `None` when Organizations does not know it.
    #[tracing::instrument(skip_all, fields(account = %account))]
    pub async fn account(
        &self,
        session: &Session,
        account: &AccountId,
        scope: &Scope,
        policy: &Policy,
    ) -> Result<Option<AccountFacts>> {
        let orgs = aws_sdk_organizations::Client::new(&self.access.management(session).await?);
        let described = match orgs.describe_account().account_id(account.as_str()).send().await {
            Ok(out) => out.account,
            Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("AccountNotFoundException") => {
                return Ok(None);
            }
            Err(e) => return Err(aws_error("organizations", "DescribeAccount", e)),
        };
        let management_account = super::organization::management_account(&orgs).await?;
        let parent = parent_of(&orgs, account).await?;
        let tags = orgs
            .list_tags_for_resource()
            .resource_id(account.as_str())
            .send()
            .await
            .map_err(|e| aws_error("organizations", "ListTagsForResource", e))?
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| Tag::new(t.key, t.value))
            .collect();
        let environment_ous = if scope.covers(Step::Placement) {
            let wanted: Vec<String> = policy.environments.iter().map(|e| e.ou.to_lowercase()).collect();
            find_ous(&orgs, &wanted).await?
        } else {
            Vec::new()
        };

        let account_wide = [Step::Alias, Step::PasswordPolicy, Step::S3PublicAccessBlock];
        let (alias, password_policy, s3_public_access_block) = if account_wide.iter().any(|s| scope.covers(*s)) {
            let home = policy
                .baseline
                .regions
                .first()
                .cloned()
                .unwrap_or_else(|| Region::parse("us-east-1").unwrap_or_else(|| unreachable!()));
            match self.access.config(session, account, &home).await {
                Ok(config) => (
                    read_if(scope, Step::Alias, alias(&config)).await,
                    read_if(scope, Step::PasswordPolicy, password_policy(&config)).await,
                    read_if(scope, Step::S3PublicAccessBlock, s3_block(&config, account)).await,
                ),
                Err(e) => {
                    let failed = ReadError::from(e);
                    (Err(failed.clone()), Err(failed.clone()), Err(failed))
                }
            }
        } else {
            (
                Err(ReadError::not_read()),
                Err(ReadError::not_read()),
                Err(ReadError::not_read()),
            )
        };
        let mut region_facts = Vec::new();
        for region in scope.regions(policy) {
            region_facts.push(match self.access.config(session, account, region).await {
                Ok(config) => region_state(&config, region, scope, policy).await,
                Err(e) => unreadable_region(region, ReadError::from(&e)),
            });
        }

        let described = described.unwrap_or_else(|| aws_sdk_organizations::types::Account::builder().build());
        Ok(Some(AccountFacts {
            account: account.clone(),
            management_account,
            name: described.name,
            email: described.email,
            state: described.state.map(|s| s.as_str().to_string()),
            parent,
            tags,
            environment_ous,
            alias,
            password_policy,
            s3_public_access_block,
            regions: region_facts,
        }))
    }
}

fn unreadable_region(region: &Region, e: ReadError) -> RegionFacts {
    RegionFacts {
        region: region.clone(),
        ebs_encryption: Err(e.clone()),
        ebs_kms_key: Err(e.clone()),
        imds: Err(e.clone()),
        snapshot_block: Err(e.clone()),
        image_block: Err(e.clone()),
        default_vpc: Err(e),
    }
}

async fn parent_of(orgs: &aws_sdk_organizations::Client, account: &AccountId) -> Result<Option<OuRef>> {
    let parents = orgs
        .list_parents()
        .child_id(account.as_str())
        .send()
        .await
        .map_err(|e| aws_error("organizations", "ListParents", e))?
        .parents
        .unwrap_or_default();
    let Some(parent) = parents.into_iter().next() else {
        return Ok(None);
    };
    let Some(id) = parent.id else { return Ok(None) };
    if parent.r#type != Some(ParentType::OrganizationalUnit) {
        return Ok(Some(OuRef {
            id,
            name: "the root".into(),
            is_root: true,
        }));
    }
    let name = orgs
        .describe_organizational_unit()
        .organizational_unit_id(&id)
        .send()
        .await
        .map_err(|e| aws_error("organizations", "DescribeOrganizationalUnit", e))?
        .organizational_unit
        .and_then(|o| o.name)
        .unwrap_or_default();
    Ok(Some(OuRef {
        id,
        name,
        is_root: false,
    }))
}

/// The OUs with the wanted names (lowercase), breadth-first from the root.
async fn find_ous(orgs: &aws_sdk_organizations::Client, wanted: &[String]) -> Result<Vec<OuRef>> {
    let roots = orgs
        .list_roots()
        .send()
        .await
        .map_err(|e| aws_error("organizations", "ListRoots", e))?
        .roots
        .unwrap_or_default();
    let mut queue: VecDeque<(String, usize)> = roots.into_iter().filter_map(|r| r.id).map(|id| (id, 0)).collect();
    let mut found: Vec<OuRef> = Vec::new();
    while let Some((parent, depth)) = queue.pop_front() {
        if depth >= OU_SEARCH_DEPTH || found.len() == wanted.len() {
            break;
        }
        for (id, name) in super::organization::children(orgs, &parent).await? {
            if wanted.contains(&name.to_lowercase()) && !found.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
                found.push(OuRef {
                    id: id.clone(),
                    name,
                    is_root: false,
                });
            }
            queue.push_back((id, depth + 1));
        }
    }
    Ok(found)
}

async fn alias(config: &SdkConfig) -> Result<Option<String>> {
    let out = aws_sdk_iam::Client::new(config)
        .list_account_aliases()
        .send()
        .await
        .map_err(|e| aws_error("iam", "ListAccountAliases", e))?;
    Ok(out.account_aliases.into_iter().next())
}

async fn password_policy(config: &SdkConfig) -> Result<Option<PasswordPolicy>> {
    match aws_sdk_iam::Client::new(config)
        .get_account_password_policy()
        .send()
        .await
    {
        Ok(out) => Ok(out.password_policy.map(|p| PasswordPolicy {
            minimum_length: p.minimum_password_length.unwrap_or(8),
            require_symbols: p.require_symbols,
            require_numbers: p.require_numbers,
            require_uppercase: p.require_uppercase_characters,
            require_lowercase: p.require_lowercase_characters,
            allow_users_to_change: p.allow_users_to_change_password,
            max_age_days: p.max_password_age.filter(|d| *d > 0),
            reuse_prevention: p.password_reuse_prevention.filter(|r| *r > 0),
            hard_expiry: p.hard_expiry.unwrap_or(false),
        })),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity") => Ok(None),
        Err(e) => Err(aws_error("iam", "GetAccountPasswordPolicy", e)),
    }
}

async fn s3_block(config: &SdkConfig, account: &AccountId) -> Result<Option<S3PublicAccessBlock>> {
    match s3control::client(config)
        .get_public_access_block()
        .account_id(account.as_str())
        .send()
        .await
    {
        Ok(out) => Ok(out.public_access_block_configuration.map(|c| S3PublicAccessBlock {
            block_public_acls: c.block_public_acls.unwrap_or(false),
            ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
            block_public_policy: c.block_public_policy.unwrap_or(false),
            restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
        })),
        Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchPublicAccessBlockConfiguration") => {
            Ok(None)
        }
        Err(e) => Err(aws_error("s3control", "GetPublicAccessBlock", e)),
    }
}

/// The setting when `scope` covers `step`; [`ReadError::not_read`] without a call otherwise.
async fn read_if<T>(scope: &Scope, step: Step, read: impl Future<Output = Result<T>>) -> Reading<T> {
    if scope.covers(step) {
        reading(read.await)
    } else {
        Err(ReadError::not_read())
    }
}

async fn region_state(config: &SdkConfig, region: &Region, scope: &Scope, policy: &Policy) -> RegionFacts {
    let ec2 = aws_sdk_ec2::Client::new(config);
    RegionFacts {
        region: region.clone(),
        ebs_encryption: read_if(scope, Step::EbsEncryption, async {
            ec2.get_ebs_encryption_by_default()
                .send()
                .await
                .map(|o| o.ebs_encryption_by_default.unwrap_or(false))
                .map_err(|e| aws_error("ec2", "GetEbsEncryptionByDefault", e))
        })
        .await,
        ebs_kms_key: match &policy.baseline.ebs_kms_key {
            None => Ok(None),
            Some(wanted) => {
                read_if(scope, Step::EbsDefaultKey, async {
                    ebs_key(config, &ec2, wanted).await.map(Some)
                })
                .await
            }
        },
        imds: read_if(scope, Step::Imds, async {
            ec2.get_instance_metadata_defaults()
                .send()
                .await
                .map(|o| {
                    let level = o.account_level;
                    ImdsDefaults {
                        http_tokens: level
                            .as_ref()
                            .and_then(|l| l.http_tokens.as_ref())
                            .map(|t| t.as_str().to_string()),
                        hop_limit: level.and_then(|l| l.http_put_response_hop_limit),
                    }
                })
                .map_err(|e| aws_error("ec2", "GetInstanceMetadataDefaults", e))
        })
        .await,
        snapshot_block: read_if(scope, Step::SnapshotBlock, async {
            ec2.get_snapshot_block_public_access_state()
                .send()
                .await
                .map(|o| {
                    o.state
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_else(|| "unblocked".into())
                })
                .map_err(|e| aws_error("ec2", "GetSnapshotBlockPublicAccessState", e))
        })
        .await,
        image_block: read_if(scope, Step::ImageBlock, async {
            ec2.get_image_block_public_access_state()
                .send()
                .await
                .map(|o| o.image_block_public_access_state.unwrap_or_else(|| "unblocked".into()))
                .map_err(|e| aws_error("ec2", "GetImageBlockPublicAccessState", e))
        })
        .await,
        default_vpc: if policy.baseline.delete_default_vpcs {
            read_if(scope, Step::DefaultVpc, default_vpc(&ec2)).await
        } else {
            Ok(None)
        },
    }
}

/// The current default EBS key and the policy's key (an id, alias or ARN) as an ARN.
async fn ebs_key(config: &SdkConfig, ec2: &aws_sdk_ec2::Client, wanted: &str) -> Result<EbsKey> {
    let current = ec2
        .get_ebs_default_kms_key_id()
        .send()
        .await
        .map_err(|e| aws_error("ec2", "GetEbsDefaultKmsKeyId", e))?
        .kms_key_id;
    let wanted = if wanted.starts_with("arn:") && wanted.contains(":key/") {
        wanted.to_string()
    } else {
        aws_sdk_kms::Client::new(config)
            .describe_key()
            .key_id(wanted)
            .send()
            .await
            .map_err(|e| aws_error("kms", "DescribeKey", e))?
            .key_metadata
            .and_then(|m| m.arn)
            .unwrap_or_else(|| wanted.to_string())
    };
    Ok(EbsKey { current, wanted })
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The default VPC and everything in it, or `None`.
pub(crate) async fn default_vpc(ec2: &aws_sdk_ec2::Client) -> Result<Option<DefaultVpc>> {
    let vpcs = ec2
        .describe_vpcs()
        .filters(filter("is-default", "true"))
        .send()
        .await
        .map_err(|e| aws_error("ec2", "DescribeVpcs", e))?;
    let Some(id) = vpcs.vpcs.unwrap_or_default().into_iter().find_map(|v| v.vpc_id) else {
        return Ok(None);
    };
    let in_vpc = || filter("vpc-id", &id);
    // Every page of a describe call, reduced to the ids of the items that qualify.
    macro_rules! ids {
        ($request:expr, $operation:literal, $keep:expr, $id:expr) => {
            $request
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| aws_error("ec2", $operation, e))?
                .into_iter()
                .filter($keep)
                .filter_map($id)
                .collect()
        };
    }
    let internet_gateways = ids!(
        ec2.describe_internet_gateways()
            .filters(filter("attachment.vpc-id", &id)),
        "DescribeInternetGateways",
        |_| true,
        |g| g.internet_gateway_id
    );
    let subnets = ids!(
        ec2.describe_subnets().filters(in_vpc()),
        "DescribeSubnets",
        |_| true,
        |s| s.subnet_id
    );
    let route_tables = ids!(
        ec2.describe_route_tables().filters(in_vpc()),
        "DescribeRouteTables",
        |t| !t.associations().iter().any(|a| a.main() == Some(true)),
        |t| t.route_table_id
    );
    let network_acls = ids!(
        ec2.describe_network_acls().filters(in_vpc()),
        "DescribeNetworkAcls",
        |a| a.is_default != Some(true),
        |a| a.network_acl_id
    );
    let security_groups = ids!(
        ec2.describe_security_groups().filters(in_vpc()),
        "DescribeSecurityGroups",
        |g| g.group_name() != Some("default"),
        |g| g.group_id
    );
    let instances = ec2
        .describe_instances()
        .filters(in_vpc())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .values("shutting-down")
                .build(),
        )
        .send()
        .await
        .map_err(|e| aws_error("ec2", "DescribeInstances", e))?
        .reservations
        .unwrap_or_default()
        .into_iter()
        .flat_map(|r| r.instances.unwrap_or_default())
        .filter_map(|i| i.instance_id)
        .collect();
    let network_interfaces = ec2
        .describe_network_interfaces()
        .filters(in_vpc())
        .send()
        .await
        .map_err(|e| aws_error("ec2", "DescribeNetworkInterfaces", e))?
        .network_interfaces
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.network_interface_id)
        .collect();
    Ok(Some(DefaultVpc {
        id,
        internet_gateways,
        subnets,
        route_tables,
        network_acls,
        security_groups,
        instances,
        network_interfaces,
    }))
}
