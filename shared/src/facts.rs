//! Facts the rules need beyond the event itself, and the port that reads them: where an account
//! sits in the organization (the directory), and the current state of an account being baselined.

use std::future::Future;

use serde::Serialize;

use crate::apply::Session;
use crate::error::Result;
use crate::ids::{AccountId, Region};
use crate::plan::Tag;
use crate::policy::{PasswordPolicy, Policy};

/// An account's place in the organization.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Placement {
    pub account: AccountId,
    /// The OU that decided the environment, or the account's direct parent OU when none did.
    pub ou_id: Option<String>,
    pub ou_name: Option<String>,
    /// The environment's name, when an OU on the way up to the root is one the policy names.
    pub environment: Option<String>,
}

/// Whether an account belongs to the organization.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "membership", rename_all = "kebab-case")]
pub enum Membership {
    Member(Placement),
    /// Organizations does not know the account: an event about it is not ours to act on.
    Outsider,
}

/// An organizational unit or the root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OuRef {
    pub id: String,
    pub name: String,
    pub is_root: bool,
}

/// A read that failed: the check it served cannot be made, and the event is retried.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadError {
    pub error: String,
    pub transient: bool,
}

impl From<&crate::Error> for ReadError {
    fn from(e: &crate::Error) -> Self {
        ReadError {
            transient: e.is_transient(),
            error: e.to_string(),
        }
    }
}

impl From<crate::Error> for ReadError {
    fn from(e: crate::Error) -> Self {
        ReadError::from(&e)
    }
}

/// One setting as read from AWS.
pub type Reading<T> = std::result::Result<T, ReadError>;

/// S3 Block Public Access at account level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct S3PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl S3PublicAccessBlock {
    pub const ALL: S3PublicAccessBlock = S3PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// The account-level IMDS defaults for new instances.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImdsDefaults {
    /// `required` for IMDSv2 only; `None`: no account default.
    pub http_tokens: Option<String>,
    pub hop_limit: Option<i32>,
}

/// A default VPC and everything that must go before it can be deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DefaultVpc {
    pub id: String,
    pub internet_gateways: Vec<String>,
    pub subnets: Vec<String>,
    /// Route tables other than the main one (deleted with the VPC).
    pub route_tables: Vec<String>,
    /// Network ACLs other than the default one.
    pub network_acls: Vec<String>,
    /// Security groups other than the default one.
    pub security_groups: Vec<String>,
    /// Instances in the VPC: while there are any, it is left in place.
    pub instances: Vec<String>,
    /// Network interfaces in the VPC: while there are any, it is left in place.
    pub network_interfaces: Vec<String>,
}

/// The default EBS key next to the one the policy wants, both resolved to key ARNs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EbsKey {
    pub current: Option<String>,
    pub wanted: String,
}

/// One region's baseline settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionFacts {
    pub region: Region,
    pub ebs_encryption: Reading<bool>,
    /// The default EBS key and the policy's key, both as ARNs; read only when the policy names
    /// a key.
    pub ebs_kms_key: Reading<Option<EbsKey>>,
    pub imds: Reading<ImdsDefaults>,
    /// `unblocked`, `block-new-sharing` or `block-all-sharing`.
    pub snapshot_block: Reading<String>,
    /// `unblocked` or `block-new-sharing`.
    pub image_block: Reading<String>,
    pub default_vpc: Reading<Option<DefaultVpc>>,
}

/// What an account looks like now, as the baseline needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountFacts {
    pub account: AccountId,
    /// The organization's management account (never baselined).
    pub management_account: Option<AccountId>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`.
    pub state: Option<String>,
    /// The account's direct parent.
    pub parent: Option<OuRef>,
    pub tags: Vec<Tag>,
    /// The OUs the policy's environments name, as found in the organization.
    pub environment_ous: Vec<OuRef>,
    pub alias: Reading<Option<String>>,
    pub password_policy: Reading<Option<PasswordPolicy>>,
    pub s3_public_access_block: Reading<Option<S3PublicAccessBlock>>,
    pub regions: Vec<RegionFacts>,
}

/// Where facts come from: the account directory, and reads of an account's current state.
pub trait Facts: Send + Sync {
    /// The account's place in the organization.
    fn membership(&self, account: &AccountId) -> impl Future<Output = Result<Membership>> + Send;
    /// The account's current state, read with the policy's bootstrap and management roles, or
    /// `None` when Organizations does not know the account. Organizations reads must succeed;
    /// each other setting carries its own [`Reading`].
    fn account(
        &self,
        session: &Session,
        account: &AccountId,
        policy: &Policy,
    ) -> impl Future<Output = Result<Option<AccountFacts>>> + Send;
    /// Records where an account now belongs (after the baseline moved it).
    fn remember(&self, placement: &Placement) -> impl Future<Output = Result<()>> + Send;
}

/// Facts with fixed contents: for the offline CLI and unit tests. Accounts it does not list are
/// members whose environment is `default_environment` (unknown when `None`); it cannot read
/// account state.
#[derive(Clone, Debug, Default)]
pub struct StaticFacts {
    pub placements: Vec<Placement>,
    pub default_environment: Option<String>,
    pub accounts: Vec<AccountFacts>,
}

impl Facts for StaticFacts {
    async fn membership(&self, account: &AccountId) -> Result<Membership> {
        if let Some(p) = self.placements.iter().find(|p| &p.account == account) {
            return Ok(Membership::Member(p.clone()));
        }
        Ok(Membership::Member(Placement {
            account: account.clone(),
            ou_id: None,
            ou_name: self.default_environment.clone(),
            environment: self.default_environment.clone(),
        }))
    }

    async fn account(&self, _session: &Session, account: &AccountId, _policy: &Policy) -> Result<Option<AccountFacts>> {
        self.accounts
            .iter()
            .find(|a| &a.account == account)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                crate::Error::config(format!(
                    "account {account}'s current state is not known offline: use `guardrail baseline --account {account} --dry-run` against AWS"
                ))
            })
    }

    async fn remember(&self, _placement: &Placement) -> Result<()> {
        Ok(())
    }
}
