//! An account's taggable resources with their tags, for the sweep: the Resource Groups Tagging
//! API's `GetResources` per region (every resource tagged now or before), and IAM roles and
//! users (which that API does not list), through the function's member role.

use aws_sdk_iam::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use futures_util::{StreamExt, stream};

use super::{MemberAccess, aws_error};
use crate::apply::Session;
use crate::error::Result;
use crate::ids::{AccountId, Region};
use crate::plan::Tag;
use crate::rules::resources::{Listed, listed_types};

/// Lists resources in member accounts.
#[derive(Clone, Debug)]
pub struct Inventory {
    access: MemberAccess,
}

impl Inventory {
    pub fn new(access: MemberAccess) -> Self {
        Inventory { access }
    }

    /// The resources of the table's kinds in one region, with their tags, page by page.
    pub async fn region(&self, session: &Session, account: &AccountId, region: &Region) -> Result<Vec<Listed>> {
        let config = self.access.config(session, account, region).await?;
        let pages = aws_sdk_resourcegroupstagging::Client::new(&config)
            .get_resources()
            .set_resource_type_filters(Some(listed_types().into_iter().map(str::to_string).collect()))
            .resources_per_page(100)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("tagging", "GetResources", e))?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.resource_tag_mapping_list.unwrap_or_default())
            .filter_map(|m| {
                Some(Listed {
                    tags: m.tags().iter().map(|t| Tag::new(t.key(), t.value())).collect(),
                    arn: m.resource_arn?,
                })
            })
            .collect())
    }

    /// Every IAM role and user of the account with its tags: `ListRoles`/`ListUsers` do not
    /// return tags, so each one's are read with `ListRoleTags`/`ListUserTags`, [`TAG_READS`] at a
    /// time. A principal deleted between the two calls is left out.
    pub async fn principals(&self, session: &Session, account: &AccountId, region: &Region) -> Result<Vec<Listed>> {
        let config = self.access.config(session, account, region).await?;
        let iam = aws_sdk_iam::Client::new(&config);
        let roles: Vec<aws_sdk_iam::types::Role> = iam
            .list_roles()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("iam", "ListRoles", e))?;
        let users: Vec<aws_sdk_iam::types::User> = iam
            .list_users()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error("iam", "ListUsers", e))?;
        let roles = roles.into_iter().map(|r| (r.role_name, r.arn));
        let mut listed = with_tags(roles, |name| async {
            let read = iam.list_role_tags().role_name(name).into_paginator().items().send();
            read.try_collect().await.map_err(|e| missing_or("ListRoleTags", e))
        })
        .await?;
        let users = users.into_iter().map(|u| (u.user_name, u.arn));
        listed.extend(
            with_tags(users, |name| async {
                let read = iam.list_user_tags().user_name(name).into_paginator().items().send();
                read.try_collect().await.map_err(|e| missing_or("ListUserTags", e))
            })
            .await?,
        );
        Ok(listed)
    }
}

/// IAM tag reads in flight at once for one account: quick enough for an account with a few
/// thousand roles within a sweep's time per account, gentle on IAM's per-account call rate.
const TAG_READS: usize = 8;

/// `None` for a principal IAM no longer knows, else the error.
fn missing_or<E>(operation: &'static str, e: SdkError<E, HttpResponse>) -> Option<crate::Error>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let gone = e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity");
    (!gone).then(|| aws_error("iam", operation, e))
}

/// Each `(name, arn)` with the tags `read(name)` gives, in order, [`TAG_READS`] at a time;
/// a principal whose read says it is gone (`Err(None)`) is left out.
async fn with_tags<F, Fut>(principals: impl Iterator<Item = (String, String)>, read: F) -> Result<Vec<Listed>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = std::result::Result<Vec<aws_sdk_iam::types::Tag>, Option<crate::Error>>>,
{
    let reads: Vec<_> = stream::iter(principals)
        .map(|(name, arn)| {
            let tags = read(name);
            async move { (arn, tags.await) }
        })
        .buffered(TAG_READS)
        .collect()
        .await;
    let mut listed = Vec::with_capacity(reads.len());
    for (arn, tags) in reads {
        match tags {
            Ok(tags) => listed.push(Listed {
                arn,
                tags: tags.iter().map(|t| Tag::new(t.key(), t.value())).collect(),
            }),
            Err(None) => {}
            Err(Some(e)) => return Err(e),
        }
    }
    Ok(listed)
}
