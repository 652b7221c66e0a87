//! Facts the rules need beyond the event itself, and the port that reads them: where an account
//! sits in the organization and which environment that makes it.

use std::future::Future;

use serde::Serialize;

use crate::error::Result;
use crate::ids::AccountId;

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

/// Reads account placements (the account directory).
pub trait Directory: Send + Sync {
    fn lookup(&self, account: &AccountId) -> impl Future<Output = Result<Membership>> + Send;
}

/// A directory with fixed contents: for the offline CLI and unit tests. Accounts it does not list
/// are members whose environment is `default_environment` (unknown when `None`).
#[derive(Clone, Debug, Default)]
pub struct StaticDirectory {
    pub placements: Vec<Placement>,
    pub default_environment: Option<String>,
}

impl Directory for StaticDirectory {
    async fn lookup(&self, account: &AccountId) -> Result<Membership> {
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
}
