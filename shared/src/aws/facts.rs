//! The facts port on AWS: the account directory, and account state read by the inspector.

use super::{AwsDirectory, AwsInspector};
use crate::apply::Session;
use crate::error::Result;
use crate::facts::{AccountFacts, Facts, Membership, Placement};
use crate::ids::AccountId;
use crate::policy::Policy;

#[derive(Debug)]
pub struct AwsFacts {
    pub directory: AwsDirectory,
    pub inspector: AwsInspector,
}

impl Facts for AwsFacts {
    async fn membership(&self, account: &AccountId) -> Result<Membership> {
        self.directory.lookup(account).await
    }

    async fn account(&self, session: &Session, account: &AccountId, policy: &Policy) -> Result<Option<AccountFacts>> {
        self.inspector.account(session, account, policy).await
    }

    async fn remember(&self, placement: &Placement) -> Result<()> {
        self.directory.remember(placement).await
    }
}
