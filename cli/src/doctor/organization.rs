//! The organization's checks (run them with the management account's credentials): all
//! features, StackSets trusted access, the delegated administrators, the policy's OUs, the SCPs
//! and the member StackSets.

use std::collections::BTreeSet;

use aws_sdk_organizations::Client;
use aws_sdk_organizations::error::DisplayErrorContext;
use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
use serde_json::Value;

use super::{Context, Finding, Progress, Status};

const MANAGEMENT: &str = "the management account (or a delegated administrator of Organizations)";
const STACKSETS: &str = "member.org.stacksets.cloudformation.amazonaws.com";
const GUARDDUTY: &str = "guardduty.amazonaws.com";

/// The SCPs of this release (infra/scp/), where README Deploy step 5 attaches each.
const SCPS: [(&str, &str, Target); 3] = [
    (
        "protect-guardrail.json",
        include_str!("../../../infra/scp/protect-guardrail.json"),
        Target::Root,
    ),
    (
        "protect-organization.json",
        include_str!("../../../infra/scp/protect-organization.json"),
        Target::Root,
    ),
    (
        "protect-security-account.json",
        include_str!("../../../infra/scp/protect-security-account.json"),
        Target::SecurityAccount,
    ),
];

#[derive(Clone, Copy)]
enum Target {
    Root,
    SecurityAccount,
}

pub async fn checks(c: &Context, p: &mut Progress) -> Vec<Finding> {
    let orgs = Client::new(&c.sdk);
    let mut out = Vec::new();
    p.step("all features");
    out.push(all_features(&orgs).await);
    p.step("StackSets trusted access");
    out.push(trusted_access(&orgs).await);
    p.step("GuardDuty delegated administrator");
    out.push(guardduty_admin(&orgs, c).await);
    p.step("Organizations delegation");
    out.push(delegation(&orgs, c).await);
    p.step("organization trail");
    out.push(organization_trail(c).await);
    p.step("the policy's Regions");
    out.push(policy_regions(c));
    p.step("the policy's OUs");
    // One ListRoots for the checks that start from the root.
    let root = root_of(&orgs).await;
    out.push(policy_ous(&orgs, c, &root).await);
    p.step("SCPs attached");
    out.extend(scps(&orgs, c, &root).await);
    p.step("member StackSets");
    let cfn = aws_sdk_cloudformation::Client::new(&c.sdk);
    for name in MEMBER_STACK_SETS {
        out.push(stack_set(&cfn, name).await);
    }
    out
}

/// The member accounts' StackSets (make deploy-member).
const MEMBER_STACK_SETS: [&str; 2] = ["guardrail-member-roles", "guardrail-forwarding"];

/// A member StackSet exists and every instance is current (not OUTDATED or INOPERABLE).
async fn stack_set(cfn: &aws_sdk_cloudformation::Client, name: &str) -> Finding {
    const CHECK: &str = "member StackSet";
    let fix = "make deploy-member ... (README, Deploy step 4; CALL_AS=DELEGATED_ADMIN from a delegated administrator)";
    match cfn.describe_stack_set().stack_set_name(name).send().await {
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_stack_set_not_found_exception()) =>
        {
            return Finding::not(CHECK, Status::Missing, format!("{name}: none"), fix);
        }
        Err(e) => {
            return Finding::unreadable(
                CHECK,
                "cloudformation:DescribeStackSet",
                aws_sdk_cloudformation::error::DisplayErrorContext(e),
                MANAGEMENT,
            );
        }
        Ok(_) => {}
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let mut pages = cfn.list_stack_instances().stack_set_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for i in page.summaries() {
                    *statuses
                        .entry(i.status().map(|s| s.as_str().to_string()).unwrap_or_default())
                        .or_default() += 1;
                }
            }
            Err(e) => {
                return Finding::unreadable(
                    CHECK,
                    "cloudformation:ListStackInstances",
                    aws_sdk_cloudformation::error::DisplayErrorContext(e),
                    MANAGEMENT,
                );
            }
        }
    }
    let counted = statuses
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    if statuses.is_empty() {
        Finding::not(CHECK, Status::Missing, format!("{name}: no stack instances"), fix)
    } else if statuses.keys().all(|s| s == "CURRENT") {
        Finding::ok(CHECK, format!("{name}: {counted}"))
    } else {
        Finding::not(
            CHECK,
            Status::Wrong,
            format!("{name}: {counted}"),
            format!("{fix}; an INOPERABLE instance needs its account looked at"),
        )
    }
}

async fn all_features(orgs: &Client) -> Finding {
    const CHECK: &str = "organization has all features";
    match orgs.describe_organization().send().await {
        Ok(o) => match o.organization().and_then(|o| o.feature_set()) {
            Some(OrganizationFeatureSet::All) => Finding::ok(CHECK, "ALL"),
            other => Finding::not(
                CHECK,
                Status::Wrong,
                format!(
                    "{} (SCPs, delegated administrators and StackSets need ALL)",
                    other.map(|f| f.as_str()).unwrap_or("none")
                ),
                "aws organizations enable-all-features (management account; every member account must accept)",
            ),
        },
        Err(e) => Finding::unreadable(
            CHECK,
            "organizations:DescribeOrganization",
            DisplayErrorContext(e),
            "an account of the organization",
        ),
    }
}

/// StackSets' trusted access, activated as AWS advises: from CloudFormation, not Organizations
/// (Organizations User Guide, "AWS CloudFormation StackSets and AWS Organizations").
async fn trusted_access(orgs: &Client) -> Finding {
    const CHECK: &str = "StackSets trusted access";
    match orgs.list_aws_service_access_for_organization().send().await {
        Ok(o)
            if o.enabled_service_principals()
                .iter()
                .any(|s| s.service_principal() == Some(STACKSETS)) =>
        {
            Finding::ok(CHECK, STACKSETS)
        }
        Ok(_) => Finding::not(
            CHECK,
            Status::Missing,
            "the member StackSets (make deploy-member) cannot deploy",
            "aws cloudformation activate-organizations-access (management account)",
        ),
        Err(e) => Finding::unreadable(
            CHECK,
            "organizations:ListAWSServiceAccessForOrganization",
            DisplayErrorContext(e),
            MANAGEMENT,
        ),
    }
}

/// GuardDuty's findings reach Guardrail through the security account, which must be
/// GuardDuty's delegated administrator.
async fn guardduty_admin(orgs: &Client, c: &Context) -> Finding {
    const CHECK: &str = "GuardDuty delegated administrator";
    match orgs
        .list_delegated_administrators()
        .service_principal(GUARDDUTY)
        .send()
        .await
    {
        Ok(o) => {
            let admins: Vec<&str> = o.delegated_administrators().iter().filter_map(|a| a.id()).collect();
            let fix = format!(
                "aws guardduty enable-organization-admin-account --admin-account-id {} (management account, in every policy Region)",
                c.security_account
            );
            if admins.contains(&c.security_account.as_str()) {
                Finding::ok(CHECK, format!("account {}", c.security_account))
            } else if admins.is_empty() {
                Finding::not(CHECK, Status::Missing, "none: no findings reach agent-quarantine", fix)
            } else {
                Finding::not(
                    CHECK,
                    Status::Wrong,
                    format!("{}, not the security account {}", admins.join(", "), c.security_account),
                    fix,
                )
            }
        }
        Err(e) => Finding::unreadable(
            CHECK,
            "organizations:ListDelegatedAdministrators",
            DisplayErrorContext(e),
            MANAGEMENT,
        ),
    }
}

/// What infra/management-role.yaml's ReadDelegation lets the security account read.
pub const DELEGATED_READS: [&str; 8] = [
    "organizations:DescribeOrganizationalUnit",
    "organizations:ListParents",
    "organizations:DescribeAccount",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListAccounts",
];

/// The organization's delegation policy lets the security account make Guardrail's reads.
async fn delegation(orgs: &Client, c: &Context) -> Finding {
    const CHECK: &str = "Organizations delegation";
    match orgs.describe_resource_policy().send().await {
        Ok(p) => delegation_state(p.resource_policy().and_then(|p| p.content()), &c.security_account),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_policy_not_found_exception()) =>
        {
            delegation_state(None, &c.security_account)
        }
        Err(e) => Finding::unreadable(
            CHECK,
            "organizations:DescribeResourcePolicy",
            DisplayErrorContext(e),
            MANAGEMENT,
        ),
    }
}

fn delegation_state(content: Option<&str>, security: &str) -> Finding {
    const CHECK: &str = "Organizations delegation";
    let fix = "deploy infra/management-role.yaml (README, Deploy step 3); where the organization already has a delegation policy, deploy it with ManageDelegationPolicy=false and add its ReadDelegation statements to that policy";
    let Some(content) = content else {
        return Finding::not(CHECK, Status::Missing, "the organization has no delegation policy", fix);
    };
    let policy: Value = serde_json::from_str(content).unwrap_or_default();
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            _ => Vec::new(),
        }
    };
    let principal = format!("arn:aws:iam::{security}:root");
    let allowed: BTreeSet<String> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| {
            list(&s["Principal"]["AWS"])
                .iter()
                .any(|p| *p == principal || p == security)
        })
        .flat_map(|s| list(&s["Action"]))
        .collect();
    let lacking: Vec<&str> = DELEGATED_READS
        .iter()
        .copied()
        .filter(|a| !allowed.contains(*a))
        .collect();
    if lacking.is_empty() {
        Finding::ok(CHECK, format!("the security account {security} reads accounts and OUs"))
    } else {
        Finding::not(
            CHECK,
            Status::Missing,
            format!("the delegation policy does not let {security} {}", lacking.join(", ")),
            fix,
        )
    }
}

/// API-call events reach EventBridge only from a CloudTrail trail recording management events
/// (EventBridge User Guide, "Events from AWS services delivered via CloudTrail"): an organization
/// trail, in every Region and logging, covers every account.
async fn organization_trail(c: &Context) -> Finding {
    const CHECK: &str = "organization trail";
    let trail = aws_sdk_cloudtrail::Client::new(&c.sdk);
    let trails = match trail.describe_trails().include_shadow_trails(true).send().await {
        Ok(t) => t.trail_list().to_vec(),
        Err(e) => {
            return Finding::unreadable(
                CHECK,
                "cloudtrail:DescribeTrails",
                aws_sdk_cloudtrail::error::DisplayErrorContext(e),
                MANAGEMENT,
            );
        }
    };
    let fix = "aws cloudtrail create-trail --name organization --s3-bucket-name BUCKET --is-organization-trail --is-multi-region-trail, then aws cloudtrail start-logging --name organization (management account)";
    let mut seen = Vec::new();
    for t in trails.iter().filter(|t| t.is_organization_trail() == Some(true)) {
        let name = t.trail_arn().or(t.name()).unwrap_or_default().to_string();
        let logging = match trail.get_trail_status().name(&name).send().await {
            Ok(s) => s.is_logging() == Some(true),
            Err(e) => {
                return Finding::unreadable(
                    CHECK,
                    "cloudtrail:GetTrailStatus",
                    aws_sdk_cloudtrail::error::DisplayErrorContext(e),
                    MANAGEMENT,
                );
            }
        };
        if logging && t.is_multi_region_trail() == Some(true) {
            return Finding::ok(
                CHECK,
                format!("{} logging in every Region", t.name().unwrap_or_default()),
            );
        }
        seen.push(format!(
            "{}: {}{}",
            t.name().unwrap_or_default(),
            if logging { "logging" } else { "not logging" },
            if t.is_multi_region_trail() == Some(true) {
                ""
            } else {
                ", one Region only"
            }
        ));
    }
    if seen.is_empty() {
        Finding::not(CHECK, Status::Missing, "none: no API-call event reaches Guardrail", fix)
    } else {
        Finding::not(CHECK, Status::Wrong, seen.join("; "), fix)
    }
}

/// The policy's Regions are where forwarding runs (REGIONS of make deploy-member), and IAM and
/// Organizations events reach only us-east-1's bus (CloudTrail User Guide, "Global service
/// events"): without it no role, user or account creation is seen.
fn policy_regions(c: &Context) -> Finding {
    const CHECK: &str = "the policy's Regions";
    let regions: Vec<String> = c.policy.baseline.regions.iter().map(ToString::to_string).collect();
    if regions.iter().any(|r| r == "us-east-1") {
        Finding::ok(CHECK, regions.join(", "))
    } else {
        Finding::not(
            CHECK,
            Status::Wrong,
            format!(
                "{}: no us-east-1, where IAM and Organizations events arrive",
                regions.join(", ")
            ),
            "add \"us-east-1\" to baseline.regions, deploy with POLICY=, and give it to make deploy-member's REGIONS",
        )
    }
}

/// Every OU the policy names (environments, landing and allowed OUs) exists in the organization.
async fn policy_ous(orgs: &Client, c: &Context, root: &Result<String, String>) -> Finding {
    const CHECK: &str = "the policy's OUs exist";
    let wanted: BTreeSet<String> = c
        .policy
        .environments
        .iter()
        .map(|e| e.ou.clone())
        .chain(c.policy.baseline.landing_ous.iter().cloned())
        .chain(c.policy.baseline.allowed_ous.iter().cloned())
        .collect();
    let root = match root {
        Ok(r) => r,
        Err(e) => return Finding::unreadable(CHECK, "organizations:ListRoots", e, MANAGEMENT),
    };
    let names = match ou_names(orgs, root).await {
        Ok(found) => found,
        Err(e) => return Finding::unreadable(CHECK, "organizations:ListOrganizationalUnitsForParent", e, MANAGEMENT),
    };
    let missing = missing(&wanted, &names);
    if missing.is_empty() {
        Finding::ok(CHECK, wanted.into_iter().collect::<Vec<_>>().join(", "))
    } else {
        Finding::not(
            CHECK,
            Status::Missing,
            format!("no OU named {}", missing.join(", ")),
            missing
                .iter()
                .map(|ou| format!("aws organizations create-organizational-unit --parent-id {root} --name {ou}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// The names `wanted` has and `found` has not.
fn missing(wanted: &BTreeSet<String>, found: &BTreeSet<String>) -> Vec<String> {
    wanted.difference(found).cloned().collect()
}

/// The organization's root id.
async fn root_of(orgs: &Client) -> Result<String, String> {
    let roots = orgs
        .list_roots()
        .send()
        .await
        .map_err(|e| DisplayErrorContext(e).to_string())?;
    Ok(roots
        .roots()
        .first()
        .and_then(|r| r.id())
        .ok_or("the organization has no root")?
        .to_string())
}

/// The names of every OU under `root`, at any depth.
async fn ou_names(orgs: &Client, root: &str) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    let mut parents = vec![root.to_string()];
    while let Some(parent) = parents.pop() {
        let mut pages = orgs
            .list_organizational_units_for_parent()
            .parent_id(&parent)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DisplayErrorContext(e).to_string())?;
            for ou in page.organizational_units() {
                names.extend(ou.name().map(str::to_string));
                parents.extend(ou.id().map(str::to_string));
            }
        }
    }
    Ok(names)
}

/// Each SCP of this release attached where Deploy step 5 puts it, with this release's content.
async fn scps(orgs: &Client, c: &Context, root: &Result<String, String>) -> Vec<Finding> {
    let root = match root {
        Ok(r) => r.clone(),
        Err(e) => {
            return vec![Finding::unreadable(
                "SCPs attached",
                "organizations:ListRoots",
                e,
                MANAGEMENT,
            )];
        }
    };
    let mut out = Vec::new();
    for (file, content, target) in SCPS {
        let check = match target {
            Target::Root => "SCP attached to the root",
            Target::SecurityAccount => "SCP attached to the security account",
        };
        let target_id = match target {
            Target::Root => root.clone(),
            Target::SecurityAccount => c.security_account.clone(),
        };
        out.push(match attached(orgs, &target_id).await {
            Ok(policies) => scp_state(check, file, content, &target_id, &policies),
            Err(e) => Finding::unreadable(check, "organizations:ListPoliciesForTarget", e, MANAGEMENT),
        });
    }
    out
}

/// The SCPs attached to `target`: name, id and content.
async fn attached(orgs: &Client, target: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut pages = orgs
        .list_policies_for_target()
        .target_id(target)
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.map_err(|e| DisplayErrorContext(e).to_string())?.policies() {
            let id = p.id().unwrap_or_default().to_string();
            let described = orgs
                .describe_policy()
                .policy_id(&id)
                .send()
                .await
                .map_err(|e| DisplayErrorContext(e).to_string())?;
            let content = described
                .policy()
                .and_then(|p| p.content())
                .unwrap_or_default()
                .to_string();
            out.push((p.name().unwrap_or_default().to_string(), id, content));
        }
    }
    Ok(out)
}

/// Whether `file`'s SCP is among `policies`: by its statements' ids, then by its content.
fn scp_state(
    check: &'static str,
    file: &str,
    content: &str,
    target: &str,
    policies: &[(String, String, String)],
) -> Finding {
    let ours: Value = serde_json::from_str(content).unwrap_or_default();
    let sids = |v: &Value| -> BTreeSet<String> {
        v["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["Sid"].as_str().map(str::to_string))
            .collect()
    };
    let wanted = sids(&ours);
    if policies
        .iter()
        .any(|(_, _, c)| serde_json::from_str::<Value>(c).ok().as_ref() == Some(&ours))
    {
        return Finding::ok(check, format!("{file}, this release's"));
    }
    let older = policies.iter().find(|(_, _, c)| {
        serde_json::from_str::<Value>(c)
            .map(|v| !sids(&v).is_disjoint(&wanted))
            .unwrap_or(false)
    });
    match older {
        Some((name, id, _)) => Finding::not(
            check,
            Status::Wrong,
            format!("{name} ({id}) differs from this release's {file}"),
            format!(
                "make scps, then aws organizations update-policy --policy-id {id} --content file://$CARGO_TARGET_DIR/scp/{file} (management account)"
            ),
        ),
        None => Finding::not(
            check,
            Status::Missing,
            format!("{file} is not attached to {target}"),
            format!("README, Deploy step 5: make scps, create-policy with {file}, attach-policy --target-id {target}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_scp_is_recognised_by_content_and_an_older_version_by_its_statements() {
        let (file, content, _) = SCPS[0];
        let minified = serde_json::to_string(&serde_json::from_str::<Value>(content).expect("JSON")).expect("JSON");
        let current = [("guardrail-protect".to_string(), "p-1".to_string(), minified.clone())];
        assert_eq!(scp_state("c", file, content, "r-1", &current).status, Status::Ok);
        let mut older: Value = serde_json::from_str(content).expect("JSON");
        older["Statement"].as_array_mut().expect("statements").pop();
        let older = [("guardrail-protect".to_string(), "p-1".to_string(), older.to_string())];
        let found = scp_state("c", file, content, "r-1", &older);
        assert_eq!(found.status, Status::Wrong);
        assert!(found.fix.unwrap_or_default().contains("update-policy --policy-id p-1"));
        let other = [(
            "FullAWSAccess".to_string(),
            "p-FullAWSAccess".to_string(),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.to_string(),
        )];
        assert_eq!(scp_state("c", file, content, "r-1", &other).status, Status::Missing);
    }

    #[test]
    fn the_delegation_policy_must_let_the_security_account_make_every_read() {
        assert_eq!(delegation_state(None, "222222222222").status, Status::Missing);
        let statement = |principal: &str, actions: &[&str]| serde_json::json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"});
        let ours = serde_json::json!({"Version": "2012-10-17", "Statement": [
            statement("arn:aws:iam::999999999999:root", &["organizations:DescribeAccount"]),
            statement("arn:aws:iam::222222222222:root", &DELEGATED_READS[..5]),
            statement("arn:aws:iam::222222222222:root", &DELEGATED_READS[5..]),
        ]});
        assert_eq!(
            delegation_state(Some(&ours.to_string()), "222222222222").status,
            Status::Ok
        );
        let others_only = serde_json::json!({"Version": "2012-10-17", "Statement": [
            statement("arn:aws:iam::999999999999:root", &DELEGATED_READS),
            statement("arn:aws:iam::222222222222:root", &DELEGATED_READS[..7]),
        ]});
        let found = delegation_state(Some(&others_only.to_string()), "222222222222");
        assert_eq!(found.status, Status::Missing);
        assert!(found.detail.ends_with("organizations:ListAccounts"), "{}", found.detail);
    }

    #[test]
    fn missing_ous_are_the_wanted_names_not_found() {
        let wanted: BTreeSet<String> = ["prod", "dev", "Landing"].map(String::from).into();
        let found: BTreeSet<String> = ["prod", "dev", "sandbox"].map(String::from).into();
        assert_eq!(missing(&wanted, &found), ["Landing"]);
    }
}
