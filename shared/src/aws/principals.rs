//! A role's or user's IAM state in its account (through the function's member role): read it,
//! put and remove Guardrail's inline policy, switch access keys; and the tag by which a
//! CloudWatch alarm names the role it watches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_iam::error::ProvideErrorMetadata;

use super::{MemberAccess, aws_error};
use crate::apply::Session;
use crate::error::Result;
use crate::event::AlarmChange;
use crate::ids::Region;
use crate::plan::Tag;
use crate::quarantine::{AccessKeyState, PrincipalKind, PrincipalRef, PrincipalState};

/// How long a container trusts a principal's tags (an agent tag added now counts within this).
const TAGS_FRESH: Duration = Duration::from_secs(5 * 60);
/// Principals whose tags a container remembers before it starts afresh.
const TAGS_REMEMBERED: usize = 10_000;

/// A principal's tags as last read (`None`: it did not exist), and when.
type TagMemory = HashMap<PrincipalRef, (Option<Vec<Tag>>, Instant)>;

/// Reads principals and alarm tags in member accounts.
#[derive(Clone, Debug)]
pub struct AwsPrincipals {
    access: MemberAccess,
    tags: Arc<Mutex<TagMemory>>,
}

impl AwsPrincipals {
    pub fn new(access: MemberAccess) -> Self {
        AwsPrincipals {
            access,
            tags: Arc::default(),
        }
    }

    /// The principal's tags (`None` when IAM does not know it), from one `GetRole`/`GetUser`
    /// call, remembered for [`TAGS_FRESH`]: with `quarantine.rate.tagged_agents` every call by
    /// any role arrives here, and most callers are not agents.
    #[tracing::instrument(skip_all, fields(account = %principal.account, principal = %principal))]
    pub async fn tags(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<Vec<Tag>>> {
        if let Ok(memory) = self.tags.lock()
            && let Some((tags, at)) = memory.get(principal)
            && at.elapsed() < TAGS_FRESH
        {
            return Ok(tags.clone());
        }
        let config = self.iam_config(session, principal).await?;
        let iam = aws_sdk_iam::Client::new(&config);
        let read = match principal.kind {
            PrincipalKind::Role => match iam.get_role().role_name(&principal.name).send().await {
                Ok(out) => out.role.map(|r| tags(r.tags()).collect()),
                Err(e) if not_found(&e) => None,
                Err(e) => return Err(aws_error("iam", "GetRole", e)),
            },
            PrincipalKind::User => match iam.get_user().user_name(&principal.name).send().await {
                Ok(out) => out.user.map(|u| tags(u.tags()).collect()),
                Err(e) if not_found(&e) => None,
                Err(e) => return Err(aws_error("iam", "GetUser", e)),
            },
        };
        if let Ok(mut memory) = self.tags.lock() {
            if memory.len() >= TAGS_REMEMBERED {
                memory.clear();
            }
            memory.insert(principal.clone(), (read.clone(), Instant::now()));
        }
        Ok(read)
    }

    /// The principal's state, or `None` when IAM does not know it.
    #[tracing::instrument(skip_all, fields(account = %principal.account, principal = %principal))]
    pub async fn state(&self, session: &Session, principal: &PrincipalRef) -> Result<Option<PrincipalState>> {
        let config = self.iam_config(session, principal).await?;
        let iam = aws_sdk_iam::Client::new(&config);
        match principal.kind {
            PrincipalKind::Role => role_state(&iam, &principal.name).await,
            PrincipalKind::User => user_state(&iam, &principal.name).await,
        }
    }

    /// IAM is global: the function's own region signs the calls.
    async fn iam_config(&self, session: &Session, principal: &PrincipalRef) -> Result<SdkConfig> {
        let region = self
            .access
            .base()
            .region()
            .and_then(|r| Region::parse(r.as_ref()))
            .or_else(|| Region::parse("us-east-1"))
            .unwrap_or_else(|| unreachable!("us-east-1 is a region"));
        self.access.config(session, &principal.account, &region).await
    }

    /// The value of the alarm's tag `key`, read with the Resource Groups Tagging API in the
    /// alarm's account and region.
    pub async fn alarm_tag(&self, session: &Session, alarm: &AlarmChange, key: &str) -> Result<Option<String>> {
        let config = self.access.config(session, &alarm.account, &alarm.region).await?;
        let out = aws_sdk_resourcegroupstagging::Client::new(&config)
            .get_resources()
            .resource_arn_list(&alarm.arn)
            .send()
            .await
            .map_err(|e| aws_error("tagging", "GetResources", e))?;
        Ok(out
            .resource_tag_mapping_list()
            .iter()
            .filter(|m| m.resource_arn() == Some(alarm.arn.as_str()))
            .flat_map(|m| m.tags())
            .find(|t| crate::plan::same_key(t.key(), key))
            .map(|t| t.value().to_string()))
    }
}

/// Puts (or replaces) an inline policy on the role or user.
pub(super) async fn put_policy(config: &SdkConfig, principal: &PrincipalRef, name: &str, document: &str) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    match principal.kind {
        PrincipalKind::Role => iam
            .put_role_policy()
            .role_name(&principal.name)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "PutRolePolicy", e)),
        PrincipalKind::User => iam
            .put_user_policy()
            .user_name(&principal.name)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "PutUserPolicy", e)),
    }
}

/// Deletes an inline policy; one already gone is fine.
pub(super) async fn delete_policy(config: &SdkConfig, principal: &PrincipalRef, name: &str) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    let result = match principal.kind {
        PrincipalKind::Role => iam
            .delete_role_policy()
            .role_name(&principal.name)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| (not_found(&e), aws_error("iam", "DeleteRolePolicy", e))),
        PrincipalKind::User => iam
            .delete_user_policy()
            .user_name(&principal.name)
            .policy_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| (not_found(&e), aws_error("iam", "DeleteUserPolicy", e))),
    };
    match result {
        Ok(()) | Err((true, _)) => Ok(()),
        Err((false, e)) => Err(e),
    }
}

/// Sets the permissions boundary of a role or user, or removes it (`None`).
pub(super) async fn set_boundary(config: &SdkConfig, principal: &PrincipalRef, boundary: Option<&str>) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    match (principal.kind, boundary) {
        (PrincipalKind::Role, Some(b)) => iam
            .put_role_permissions_boundary()
            .role_name(&principal.name)
            .permissions_boundary(b)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "PutRolePermissionsBoundary", e)),
        (PrincipalKind::Role, None) => iam
            .delete_role_permissions_boundary()
            .role_name(&principal.name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "DeleteRolePermissionsBoundary", e)),
        (PrincipalKind::User, Some(b)) => iam
            .put_user_permissions_boundary()
            .user_name(&principal.name)
            .permissions_boundary(b)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "PutUserPermissionsBoundary", e)),
        (PrincipalKind::User, None) => iam
            .delete_user_permissions_boundary()
            .user_name(&principal.name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error("iam", "DeleteUserPermissionsBoundary", e)),
    }
}

/// Sets a user's access keys active or inactive.
pub(super) async fn set_access_keys(
    config: &SdkConfig,
    user: &PrincipalRef,
    keys: &[String],
    active: bool,
) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    let status = if active {
        aws_sdk_iam::types::StatusType::Active
    } else {
        aws_sdk_iam::types::StatusType::Inactive
    };
    for key in keys {
        iam.update_access_key()
            .user_name(&user.name)
            .access_key_id(key)
            .status(status.clone())
            .send()
            .await
            .map_err(|e| aws_error("iam", "UpdateAccessKey", e))?;
    }
    Ok(())
}

fn not_found<E: ProvideErrorMetadata>(
    e: &aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity")
}

/// Every item of a paginated IAM listing: `pages!(paginator, "Operation", |page| items)`.
macro_rules! pages {
    ($paginator:expr, $op:literal, |$page:ident| $items:expr) => {{
        let mut out = Vec::new();
        let mut pages = $paginator.into_paginator().send();
        while let Some(page) = pages.next().await {
            let $page = page.map_err(|e| aws_error("iam", $op, e))?;
            out.extend($items);
        }
        out
    }};
}

fn policy_arns(attached: &[aws_sdk_iam::types::AttachedPolicy]) -> impl Iterator<Item = String> + '_ {
    attached.iter().filter_map(|p| p.policy_arn().map(str::to_string))
}

fn tags(tags: &[aws_sdk_iam::types::Tag]) -> impl Iterator<Item = Tag> + '_ {
    tags.iter().map(|t| Tag::new(t.key(), t.value()))
}

async fn role_state(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<PrincipalState>> {
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(aws_error("iam", "GetRole", e)),
    };
    let Some(role) = role else { return Ok(None) };
    // GetRole returns every tag (a role has at most 50): no ListRoleTags.
    let role_tags = tags(role.tags()).collect();
    Ok(Some(PrincipalState {
        arn: role.arn,
        inline_policies: pages!(iam.list_role_policies().role_name(name), "ListRolePolicies", |p| p
            .policy_names),
        attached_policies: pages!(
            iam.list_attached_role_policies().role_name(name),
            "ListAttachedRolePolicies",
            |p| policy_arns(p.attached_policies()).collect::<Vec<_>>()
        ),
        permissions_boundary: role.permissions_boundary.and_then(|b| b.permissions_boundary_arn),
        tags: role_tags,
        access_keys: Vec::new(),
    }))
}

async fn user_state(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<PrincipalState>> {
    let user = match iam.get_user().user_name(name).send().await {
        Ok(out) => out.user,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(aws_error("iam", "GetUser", e)),
    };
    let Some(user) = user else { return Ok(None) };
    // GetUser returns every tag (a user has at most 50): no ListUserTags.
    let user_tags = tags(user.tags()).collect();
    Ok(Some(PrincipalState {
        arn: user.arn,
        inline_policies: pages!(iam.list_user_policies().user_name(name), "ListUserPolicies", |p| p
            .policy_names),
        attached_policies: pages!(
            iam.list_attached_user_policies().user_name(name),
            "ListAttachedUserPolicies",
            |p| policy_arns(p.attached_policies()).collect::<Vec<_>>()
        ),
        permissions_boundary: user.permissions_boundary.and_then(|b| b.permissions_boundary_arn),
        tags: user_tags,
        access_keys: pages!(iam.list_access_keys().user_name(name), "ListAccessKeys", |p| p
            .access_key_metadata()
            .iter()
            .filter_map(|k| {
                Some(AccessKeyState {
                    id: k.access_key_id()?.to_string(),
                    active: k.status().is_some_and(|s| s.as_str() == "Active"),
                })
            })
            .collect::<Vec<_>>()),
    }))
}
