//! Facts the rules need beyond the event itself, and the port that reads them: where an account
//! sits in the organization (the directory), the current state of an account being baselined,
//! the state of a principal under suspicion, and agents' API-call counts.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::apply::Session;
use crate::error::Result;
use crate::event::AlarmChange;
use crate::ids::{AccountId, Region};
use crate::plan::Tag;
use crate::policy::{PasswordPolicy, Policy, Step};
use crate::quarantine::{PrincipalRef, PrincipalState, QuarantineRecord};

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

impl ReadError {
    /// A setting the read left out, being outside its [`Scope`]: no check may use it.
    pub fn not_read() -> Self {
        ReadError {
            error: "not read: outside the scope of this check".into(),
            transient: false,
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

/// Which of an account's settings a read covers and the baseline checks: every step in every
/// policy region for a new account or a re-baseline, one step for a drift event.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(tag = "scope", rename_all = "kebab-case")]
pub enum Scope {
    #[default]
    All,
    /// One step: in `region` when the step is regional (`None` for the others).
    Step { step: Step, region: Option<Region> },
}

impl Scope {
    pub fn covers(&self, step: Step) -> bool {
        match self {
            Scope::All => true,
            Scope::Step { step: s, .. } => *s == step,
        }
    }

    /// Whether the scope reaches into `region`: every region for `All`, the step's region for
    /// a regional step, none for an account-wide step.
    pub fn reaches(&self, region: &Region) -> bool {
        match self {
            Scope::All => true,
            Scope::Step { region: Some(r), step } => step.regional() && r == region,
            Scope::Step { region: None, .. } => false,
        }
    }

    /// The policy regions the scope reaches.
    pub fn regions<'p>(&self, policy: &'p Policy) -> Vec<&'p Region> {
        policy.baseline.regions.iter().filter(|r| self.reaches(r)).collect()
    }
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
    /// The regions the read's [`Scope`] reaches; settings outside it hold
    /// [`ReadError::not_read`].
    pub regions: Vec<RegionFacts>,
}

/// What the quarantine rule knows about a principal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrincipalFacts {
    pub principal: PrincipalRef,
    /// The account's place, for the environment and mode.
    pub placement: Placement,
    /// The organization's management account (its principals are never quarantined).
    pub management_account: Option<AccountId>,
    /// `None`: IAM does not know the principal (it was deleted).
    pub state: Option<PrincipalState>,
    /// The principal's quarantine record, active or released.
    pub record: Option<QuarantineRecord>,
    /// When the state was read: `revoke-sessions` denies sessions issued before this.
    pub read_at: DateTime<Utc>,
}

/// One API call to count against an agent's budget, in the fixed window it falls in.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateKey {
    /// The caller's role (or user) ARN.
    pub principal_arn: String,
    pub event_name: String,
    /// Counted once, however often the event is delivered.
    pub event_id: String,
    pub window_start: DateTime<Utc>,
    pub window_secs: i64,
    /// Whether the event name has a budget of its own (and so a counter).
    pub counted_by_name: bool,
    /// The caller matched no `agent_roles` pattern, so its tags must show it is an agent
    /// before the call is counted (`quarantine.rate.tagged_agents`).
    pub by_tag: bool,
}

/// The calls counted in a window, this one included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RateCount {
    pub calls: u64,
    /// Calls of this event name (0 when the name has no budget of its own).
    pub event_calls: u64,
}

/// Where facts come from: the account directory, and reads of an account's current state.
pub trait Facts: Send + Sync {
    /// The account's place in the organization.
    fn membership(&self, account: &AccountId) -> impl Future<Output = Result<Membership>> + Send;
    /// The account's current state within `scope`, read with the baseline's member role (or
    /// the bootstrap role through the management role), or `None` when Organizations does not
    /// know the account. Organizations reads must succeed; each other setting carries its own
    /// [`Reading`].
    fn account(
        &self,
        session: &Session,
        account: &AccountId,
        scope: &Scope,
        policy: &Policy,
    ) -> impl Future<Output = Result<Option<AccountFacts>>> + Send;
    /// Records where an account now belongs (after the baseline moved it).
    fn remember(&self, placement: &Placement) -> impl Future<Output = Result<()>> + Send;
    /// A principal's state and quarantine record, read through the function's member role, or
    /// `None` when Organizations does not know its account.
    fn principal(
        &self,
        session: &Session,
        principal: &PrincipalRef,
    ) -> impl Future<Output = Result<Option<PrincipalFacts>>> + Send;
    /// A principal's tags, read through the function's member role and cached in the container;
    /// `None` when the principal does not exist.
    fn principal_tags(
        &self,
        session: &Session,
        principal: &PrincipalRef,
    ) -> impl Future<Output = Result<Option<Vec<Tag>>>> + Send;
    /// Counts one call atomically and returns the window's counts; a call already counted (a
    /// repeated delivery) is not counted again.
    fn count_call(&self, key: &RateKey) -> impl Future<Output = Result<RateCount>> + Send;
    /// The value of the alarm's tag `key` (which names the role it watches), if it has one.
    fn alarm_tag(
        &self,
        session: &Session,
        alarm: &AlarmChange,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send;
}

/// Facts with fixed contents: for the offline CLI and unit tests. Accounts it does not list are
/// members whose environment is `default_environment` (unknown when `None`); it cannot read
/// account state.
#[derive(Clone, Debug, Default)]
pub struct StaticFacts {
    pub placements: Vec<Placement>,
    pub default_environment: Option<String>,
    pub accounts: Vec<AccountFacts>,
    pub principals: Vec<PrincipalFacts>,
    /// Alarm ARN → the value of its role tag.
    pub alarm_tags: Vec<(String, String)>,
    /// Rate counters in memory: counter → the event ids counted.
    pub counts: Arc<Mutex<HashMap<String, Vec<String>>>>,
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

    async fn account(
        &self,
        _session: &Session,
        account: &AccountId,
        _scope: &Scope,
        _policy: &Policy,
    ) -> Result<Option<AccountFacts>> {
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

    async fn principal(&self, _session: &Session, principal: &PrincipalRef) -> Result<Option<PrincipalFacts>> {
        self.principals
            .iter()
            .find(|p| &p.principal == principal)
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                crate::Error::config(format!(
                    "the state of {principal} in account {} is not known offline: only AWS can tell",
                    principal.account
                ))
            })
    }

    async fn principal_tags(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<Vec<Tag>>> {
        let facts = self.principal(session, principal).await?;
        Ok(facts.and_then(|f| f.state).map(|s| s.tags))
    }

    async fn count_call(&self, key: &RateKey) -> Result<RateCount> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| crate::Error::config("rate counters poisoned"))?;
        let mut count = |counter: String| {
            let ids = counts.entry(counter).or_default();
            if !ids.contains(&key.event_id) {
                ids.push(key.event_id.clone());
            }
            ids.len() as u64
        };
        let window = format!("{}#{}", key.principal_arn, key.window_start.timestamp());
        Ok(RateCount {
            event_calls: if key.counted_by_name {
                count(format!("{window}#{}", key.event_name))
            } else {
                0
            },
            calls: count(window),
        })
    }

    async fn alarm_tag(&self, _session: &Session, alarm: &AlarmChange, _key: &str) -> Result<Option<String>> {
        Ok(self
            .alarm_tags
            .iter()
            .find(|(arn, _)| arn == &alarm.arn)
            .map(|(_, v)| v.clone()))
    }
}

/// Facts as `inner` reads them, except that an agent's call is counted at most once: the first
/// count is remembered and given back. An approval stores the count its event was decided with
/// and decides on it again from the same count, however long ago its window ended.
pub struct Remembered<'a, F> {
    inner: &'a F,
    count: Mutex<Option<RateCount>>,
}

impl<'a, F: Facts> Remembered<'a, F> {
    /// `count`: the count to give back, when one was remembered earlier.
    pub fn new(inner: &'a F, count: Option<RateCount>) -> Self {
        Remembered {
            inner,
            count: Mutex::new(count),
        }
    }

    /// The count the decision used, if it counted a call.
    pub fn count(&self) -> Option<RateCount> {
        self.count.lock().ok().and_then(|c| *c)
    }
}

impl<F: Facts> Facts for Remembered<'_, F> {
    async fn membership(&self, account: &AccountId) -> Result<Membership> {
        self.inner.membership(account).await
    }

    async fn account(
        &self,
        session: &Session,
        account: &AccountId,
        scope: &Scope,
        policy: &Policy,
    ) -> Result<Option<AccountFacts>> {
        self.inner.account(session, account, scope, policy).await
    }

    async fn remember(&self, placement: &Placement) -> Result<()> {
        self.inner.remember(placement).await
    }

    async fn principal(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<PrincipalFacts>> {
        self.inner.principal(session, principal).await
    }

    async fn principal_tags(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<Vec<Tag>>> {
        self.inner.principal_tags(session, principal).await
    }

    async fn count_call(&self, key: &RateKey) -> Result<RateCount> {
        if let Some(count) = self.count() {
            return Ok(count);
        }
        let count = self.inner.count_call(key).await?;
        if let Ok(mut remembered) = self.count.lock() {
            *remembered = Some(count);
        }
        Ok(count)
    }

    async fn alarm_tag(&self, session: &Session, alarm: &AlarmChange, key: &str) -> Result<Option<String>> {
        self.inner.alarm_tag(session, alarm, key).await
    }
}
