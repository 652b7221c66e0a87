//! The organization's accounts, for the sweep: every account, those under one OU at any depth,
//! or one account.

use std::collections::{BTreeSet, VecDeque};

use aws_sdk_organizations::Client;

use aws_sdk_organizations::error::ProvideErrorMetadata;

use aws_config::SdkConfig;

use super::aws_error;
use crate::error::{Error, Result};
use crate::ids::AccountId;

/// The accounts a sweep covers, and the management account (never baselined).
#[derive(Clone, Debug, Default)]
pub struct Members {
    pub management: Option<AccountId>,
    /// Each selected account once, in the order the selections found them.
    pub accounts: Vec<Member>,
    /// Accounts selected by id that are not in the organization.
    pub missing: Vec<AccountId>,
}

/// Which accounts a sweep covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    /// The accounts under the OU of this name, at any depth.
    Ou(String),
    /// One account: described, not found by listing the organization.
    Account(AccountId),
}

/// The accounts of every selection, read with `organizations` (the management role for
/// account-baseline, the directory's Organizations access for tag-enforcer).
pub async fn members(organizations: &SdkConfig, selections: &[Selection]) -> Result<Members> {
    let orgs = Client::new(organizations);
    let mut found = Members {
        management: management_account(&orgs).await?,
        ..Members::default()
    };
    let mut seen = BTreeSet::new();
    for selection in selections {
        let accounts = match selection {
            Selection::All => all_accounts(&orgs).await?,
            Selection::Ou(ou) => accounts_under(&orgs, ou).await?,
            Selection::Account(id) => match orgs.describe_account().account_id(id.as_str()).send().await {
                Ok(out) => out.account.and_then(member).into_iter().collect(),
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("AccountNotFoundException") => {
                    found.missing.push(id.clone());
                    Vec::new()
                }
                Err(e) => return Err(aws_error("organizations", "DescribeAccount", e)),
            },
        };
        found
            .accounts
            .extend(accounts.into_iter().filter(|m| seen.insert(m.account.clone())));
    }
    Ok(found)
}

/// An account as Organizations lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub account: AccountId,
    pub name: String,
    /// `ACTIVE`; a `SUSPENDED` or `PENDING_CLOSURE` account is closed or closing, and no role
    /// can be assumed in it.
    pub active: bool,
}

fn member(a: aws_sdk_organizations::types::Account) -> Option<Member> {
    Some(Member {
        account: AccountId::parse(a.id()?)?,
        name: a.name().unwrap_or_default().to_string(),
        active: a.status().is_none_or(|s| s.as_str() == "ACTIVE"),
    })
}

impl Members {
    /// Why a sweep leaves `m` out, if it does: the management account, where Guardrail never
    /// acts, and closed or closing accounts.
    pub fn skipped(&self, m: &Member) -> Option<String> {
        if self.management.as_ref() == Some(&m.account) {
            return Some(format!(
                "the management account {} is left out: Guardrail never acts in it",
                m.account
            ));
        }
        (!m.active).then(|| format!("account {} ({}) is closed or closing: not checked", m.account, m.name))
    }
}

/// The organization's management account.
pub(crate) async fn management_account(orgs: &Client) -> Result<Option<AccountId>> {
    Ok(orgs
        .describe_organization()
        .send()
        .await
        .map_err(|e| aws_error("organizations", "DescribeOrganization", e))?
        .organization
        .and_then(|o| o.master_account_id)
        .and_then(|id| AccountId::parse(&id)))
}

/// Every account of the organization, in Organizations' order.
async fn all_accounts(orgs: &Client) -> Result<Vec<Member>> {
    let pages = orgs
        .list_accounts()
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("organizations", "ListAccounts", e))?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.accounts.unwrap_or_default())
        .filter_map(member)
        .collect())
}

/// The accounts under the OU named `ou` (case-insensitive, anywhere in the tree), at any depth.
async fn accounts_under(orgs: &Client, ou: &str) -> Result<Vec<Member>> {
    let roots = orgs
        .list_roots()
        .send()
        .await
        .map_err(|e| aws_error("organizations", "ListRoots", e))?;
    let mut queue: VecDeque<String> = roots
        .roots()
        .iter()
        .filter_map(|r| r.id().map(str::to_string))
        .collect();
    let mut start = None;
    while let Some(parent) = queue.pop_front() {
        for child in children(orgs, &parent).await? {
            if child.1.eq_ignore_ascii_case(ou) {
                start = Some(child.0.clone());
                break;
            }
            queue.push_back(child.0);
        }
        if start.is_some() {
            break;
        }
    }
    let Some(start) = start else {
        return Err(Error::config(format!(
            "the organization has no OU named {ou:?}; `aws organizations list-organizational-units-for-parent` lists them"
        )));
    };
    let mut found = Vec::new();
    let mut queue = VecDeque::from([start]);
    while let Some(parent) = queue.pop_front() {
        let pages = orgs
            .list_accounts_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("organizations", "ListAccountsForParent", e))?;
        found.extend(
            pages
                .into_iter()
                .flat_map(|p| p.accounts.unwrap_or_default())
                .filter_map(member),
        );
        queue.extend(children(orgs, &parent).await?.into_iter().map(|(id, _)| id));
    }
    Ok(found)
}

/// The OUs directly under `parent`: id and name.
pub(crate) async fn children(orgs: &Client, parent: &str) -> Result<Vec<(String, String)>> {
    let pages = orgs
        .list_organizational_units_for_parent()
        .parent_id(parent)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| aws_error("organizations", "ListOrganizationalUnitsForParent", e))?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.organizational_units.unwrap_or_default())
        .filter_map(|o| Some((o.id?, o.name.unwrap_or_default())))
        .collect())
}
