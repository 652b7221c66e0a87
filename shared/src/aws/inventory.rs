//! An account's taggable resources with their tags, for the sweep: the Resource Groups Tagging
//! API's `GetResources` per region (every resource tagged now or before), and IAM roles and
//! users (which that API does not list), through the function's member role.

use aws_sdk_iam::error::ProvideErrorMetadata;

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
    /// return tags, so each one's are read with `ListRoleTags`/`ListUserTags`. A principal
    /// deleted between the two calls is left out.
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
        let mut listed = Vec::with_capacity(roles.len() + users.len());
        for role in roles {
            let tags = match iam
                .list_role_tags()
                .role_name(role.role_name())
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
            {
                Ok(tags) => tags,
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity") => continue,
                Err(e) => return Err(aws_error("iam", "ListRoleTags", e)),
            };
            listed.push(Listed {
                arn: role.arn,
                tags: tags.iter().map(|t| Tag::new(t.key(), t.value())).collect(),
            });
        }
        for user in users {
            let tags = match iam
                .list_user_tags()
                .user_name(user.user_name())
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
            {
                Ok(tags) => tags,
                Err(e) if e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity") => continue,
                Err(e) => return Err(aws_error("iam", "ListUserTags", e)),
            };
            listed.push(Listed {
                arn: user.arn,
                tags: tags.iter().map(|t| Tag::new(t.key(), t.value())).collect(),
            });
        }
        Ok(listed)
    }
}
