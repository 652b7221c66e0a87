//! The facts port on AWS: the account directory, account state read by the inspector,
//! principals and alarm tags in member accounts, and quarantine records and rate counters.

use chrono::Utc;

use super::{AwsDirectory, AwsInspector, AwsPrincipals, QuarantineTable};
use crate::apply::Session;
use crate::error::Result;
use crate::event::AlarmChange;
use crate::facts::{AccountFacts, Facts, Membership, Placement, PrincipalFacts, RateCount, RateKey, Scope};
use crate::ids::AccountId;
use crate::plan::Tag;
use crate::policy::Policy;
use crate::quarantine::PrincipalRef;

#[derive(Debug)]
pub struct AwsFacts {
    pub directory: AwsDirectory,
    pub inspector: AwsInspector,
    pub principals: AwsPrincipals,
    pub table: QuarantineTable,
}

impl Facts for AwsFacts {
    async fn membership(&self, account: &AccountId) -> Result<Membership> {
        self.directory.lookup(account).await
    }

    async fn account(
        &self,
        session: &Session,
        account: &AccountId,
        scope: &Scope,
        policy: &Policy,
    ) -> Result<Option<AccountFacts>> {
        self.inspector.account(session, account, scope, policy).await
    }

    async fn remember(&self, placement: &Placement) -> Result<()> {
        self.directory.remember(placement).await
    }

    async fn principal(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<PrincipalFacts>> {
        let Membership::Member(placement) = self.directory.lookup(&principal.account).await? else {
            return Ok(None);
        };
        let management_account = self.directory.management_account().await?;
        let record = self.table.get(principal).await?;
        let read_at = Utc::now();
        let state = self.principals.state(session, principal).await?;
        Ok(Some(PrincipalFacts {
            principal: principal.clone(),
            placement,
            management_account,
            state,
            record,
            read_at,
        }))
    }

    async fn principal_tags(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<Vec<Tag>>> {
        // A principal outside the organization is no agent of ours (and its account has no
        // member role to read it through).
        match self.directory.lookup(&principal.account).await? {
            Membership::Member(_) => self.principals.tags(session, principal).await,
            Membership::Outsider => Ok(None),
        }
    }

    async fn count_call(&self, key: &RateKey) -> Result<RateCount> {
        self.table.count(key).await
    }

    async fn alarm_tag(&self, session: &Session, alarm: &AlarmChange, key: &str) -> Result<Option<String>> {
        self.principals.alarm_tag(session, alarm, key).await
    }
}
