//! The tag rule: new resources carry the required tags, and `Environment` tells the truth.

use std::collections::BTreeMap;

use crate::alert::Severity;
use crate::event::{CloudTrailEvent, Rejection};
use crate::facts::Placement;
use crate::ids::Region;
use crate::plan::{Action, Decision, Ignored, Plan, Tag, Violation};
use crate::policy::{ENVIRONMENT_TAG, OWNER_TAG, Policy, Rule};

use super::resources::{Created, ResourceType, TagApi};

/// Longest tag value AWS accepts.
const MAX_TAG_VALUE: usize = 256;

/// Plans the tags of the resources an API call created.
pub fn plan(
    call: &CloudTrailEvent,
    resource_type: &ResourceType,
    placement: &Placement,
    policy: &Policy,
) -> Result<Decision, Rejection> {
    let account = call
        .account
        .clone()
        .ok_or(Rejection::MissingField { field: "account" })?;
    let region = call
        .region
        .clone()
        .ok_or(Rejection::MissingField { field: "awsRegion" })?;
    let Some(environment) = placement
        .environment
        .as_deref()
        .and_then(|e| policy.environment(e))
    else {
        return Ok(Decision::Ignore {
            reason: Ignored::UnmanagedAccount {
                account: account.to_string(),
                ou: placement.ou_name.clone(),
            },
        });
    };
    let mode = environment.mode(Rule::Tags);
    if mode == crate::policy::Mode::Off {
        return Ok(Decision::Ignore {
            reason: Ignored::RuleOff {
                rule: Rule::Tags,
                environment: environment.name.clone(),
            },
        });
    }

    let created = (resource_type.created)(call)?;
    let owner = call.principal.owner().map(tag_value);
    let mut violations = Vec::new();
    // Resources needing the same change (same new values, same old values) share one action.
    let mut changes: BTreeMap<Vec<Change>, Vec<String>> = BTreeMap::new();
    for resource in &created {
        let change = required_changes(
            resource,
            &environment.name,
            owner.as_deref(),
            policy,
            &mut violations,
        );
        if !change.is_empty() {
            changes.entry(change).or_default().push(resource.id.clone());
        }
    }
    if violations.is_empty() {
        return Ok(Decision::Ignore {
            reason: Ignored::Compliant {
                checked: created.len(),
            },
        });
    }

    let abac = violations
        .iter()
        .any(|v| v.problem.starts_with(&format!("tag {ENVIRONMENT_TAG}")));
    let mut plan = Plan::new(
        Rule::Tags,
        mode,
        account,
        format!(
            "{} {} created by {}",
            created.len(),
            plural(resource_type.noun, created.len()),
            call.event_name
        ),
    );
    // A wrong Environment is an attempt to win ABAC access; a missing tag is hygiene.
    plan.severity = if abac { Severity::High } else { Severity::Low };
    plan.environment = Some(environment.name.clone());
    plan.cause = call.principal.describe();
    plan.violations = violations;
    if mode.fixes() {
        (plan.actions, plan.undo) = changes
            .into_iter()
            .map(|(change, ids)| action_for(resource_type.api, &region, &change, ids))
            .unzip();
    }
    plan.region = Some(region);
    Ok(Decision::Act {
        plan: Box::new(plan),
    })
}

/// One tag to set, with the value it replaces (`None`: the tag was missing).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    key: String,
    value: String,
    previous: Option<String>,
}

fn required_changes(
    resource: &Created,
    environment: &str,
    owner: Option<&str>,
    policy: &Policy,
    violations: &mut Vec<Violation>,
) -> Vec<Change> {
    let current = |key: &str| {
        resource
            .tags
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
    };
    let mut changes = Vec::new();
    let mut violation = |problem: String, fixable: bool| {
        violations.push(Violation {
            resource: resource.id.clone(),
            problem,
            fixable,
        })
    };
    for key in &policy.required_tags {
        let derived = match key.as_str() {
            ENVIRONMENT_TAG => Some(environment),
            OWNER_TAG => owner,
            _ => None,
        };
        match (current(key), derived) {
            (Some(have), Some(want)) if key == ENVIRONMENT_TAG && have != want => {
                violation(
                    format!(
                        "tag {key} is {:?} but the account is in environment {want}",
                        crate::ids::clip(have, 64)
                    ),
                    true,
                );
                changes.push(Change {
                    key: key.clone(),
                    value: want.to_string(),
                    previous: Some(have.to_string()),
                });
            }
            (Some(_), _) => {}
            (None, Some(want)) => {
                violation(format!("required tag {key} is missing"), true);
                changes.push(Change {
                    key: key.clone(),
                    value: want.to_string(),
                    previous: None,
                });
            }
            (None, None) => violation(
                format!(
                    "required tag {key} is missing and cannot be derived from the event; set it by hand"
                ),
                false,
            ),
        }
    }
    changes
}

fn action_for(
    api: TagApi,
    region: &Region,
    change: &[Change],
    ids: Vec<String>,
) -> (Action, String) {
    let resources = ids.join(" ");
    let mut undo = Vec::new();
    let added: Vec<String> = change
        .iter()
        .filter(|c| c.previous.is_none())
        .map(|c| format!("Key={}", shell_quote(&c.key)))
        .collect();
    if !added.is_empty() {
        undo.push(match api {
            TagApi::Ec2 => format!(
                "aws ec2 delete-tags --region {region} --resources {resources} --tags {}",
                added.join(" ")
            ),
        });
    }
    let restored: Vec<String> = change
        .iter()
        .filter_map(|c| {
            let old = c.previous.as_ref()?;
            Some(shell_quote(&format!("Key={},Value={}", c.key, old)))
        })
        .collect();
    if !restored.is_empty() {
        undo.push(match api {
            TagApi::Ec2 => format!(
                "aws ec2 create-tags --region {region} --resources {resources} --tags {}",
                restored.join(" ")
            ),
        });
    }
    let tags = change.iter().map(|c| Tag::new(&c.key, &c.value)).collect();
    let action = match api {
        TagApi::Ec2 => Action::TagEc2 {
            region: region.clone(),
            resources: ids,
            tags,
        },
    };
    (action, undo.join(" && "))
}

/// A tag value every service accepts: letters, digits, spaces and `_ . : / = + - @`, at most
/// 256 characters. Anything else in a principal's name becomes `_`.
pub fn tag_value(s: &str) -> String {
    s.chars()
        .take(MAX_TAG_VALUE)
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Quotes a word for a POSIX shell, so an undo command built from event values is safe to paste.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/=+-@,%".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn plural(noun: &str, n: usize) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_keep_arns_and_drop_the_rest() {
        assert_eq!(
            tag_value("arn:aws:sts::1:assumed-role/Dev/alice@example.com"),
            "arn:aws:sts::1:assumed-role/Dev/alice@example.com"
        );
        assert_eq!(tag_value("a$(b)\n"), "a__b__");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn shell_quote_makes_hostile_values_inert() {
        assert_eq!(shell_quote("Key=Owner"), "Key=Owner");
        assert_eq!(shell_quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
