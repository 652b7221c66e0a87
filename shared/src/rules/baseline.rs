//! The account baseline: from a new account's current state, the steps that bring it in line
//! with the policy. Every check reads the current state first and plans only what differs.

use std::collections::BTreeMap;

use crate::alert::Severity;
use crate::event::{Event, Rejection};
use crate::facts::{AccountFacts, OuRef, Placement, Reading, RegionFacts, S3PublicAccessBlock, Scope};
use crate::ids::AccountId;
use crate::plan::{Action, Decision, Ignored, Plan, Tag, Unchecked};
use crate::policy::{ENVIRONMENT_TAG, Environment, Mode, OWNER_TAG, PasswordPolicy, Policy, Rule, SnapshotBlock, Step};

use super::tags::{shell_quote, tag_value};
use super::{Known, Needs};

/// The Control Tower lifecycle event of an Account Factory account.
pub const CREATE_MANAGED_ACCOUNT: &str = "CreateManagedAccount";

/// What an event asks of the baseline.
enum Trigger<'a> {
    /// A new account exists: baseline it.
    Created { account: AccountId, control_tower: bool },
    /// Creation failed: tell ops why, do nothing else.
    Failed {
        name: Option<&'a str>,
        reason: &'a str,
        request: Option<&'a str>,
    },
    /// Still under way (`IN_PROGRESS`).
    Unfinished { state: &'a str },
}

fn trigger(event: &Event) -> Result<Trigger<'_>, Rejection> {
    let (state, account, name, reason, request, control_tower) = match event {
        Event::AccountCreation(a) => (
            a.state.as_str(),
            a.account_id.clone(),
            a.account_name.as_deref(),
            a.failure_reason.as_deref(),
            a.request_id.as_deref(),
            false,
        ),
        Event::Lifecycle(l) if l.name == CREATE_MANAGED_ACCOUNT => (
            l.state.as_deref().unwrap_or("UNKNOWN"),
            l.account_id.clone(),
            l.account_name.as_deref(),
            l.message.as_deref(),
            None,
            true,
        ),
        _ => {
            return Err(Rejection::MalformedRecord {
                detail: "not an account creation event".into(),
            });
        }
    };
    match state {
        "SUCCEEDED" => Ok(Trigger::Created {
            account: account.ok_or(Rejection::MissingField { field: "accountId" })?,
            control_tower,
        }),
        "FAILED" => Ok(Trigger::Failed {
            name,
            reason: reason.unwrap_or("no reason given"),
            request,
        }),
        other => Ok(Trigger::Unfinished { state: other }),
    }
}

/// A successful creation needs the new account's state; the rest needs nothing.
pub fn needs(event: &Event) -> Result<Needs, Rejection> {
    Ok(match trigger(event)? {
        Trigger::Created { account, .. } => Needs::Account {
            account,
            scope: Scope::All,
        },
        _ => Needs::Nothing,
    })
}

pub fn decide(event: &Event, known: &Known, policy: &Policy) -> Result<Decision, Rejection> {
    match trigger(event)? {
        Trigger::Unfinished { state } => Ok(Decision::Ignore {
            reason: Ignored::NotFinished {
                state: state.to_string(),
            },
        }),
        Trigger::Failed { name, reason, request } => {
            let account = event
                .account()
                .cloned()
                .ok_or(Rejection::MissingField { field: "account" })?;
            let what = match (name, request) {
                (Some(n), Some(r)) => format!("the creation of account {n:?} ({r})"),
                (Some(n), None) => format!("the creation of account {n:?}"),
                (None, Some(r)) => format!("account creation request {r}"),
                (None, None) => "an account creation".to_string(),
            };
            let mut plan = Plan::new(Rule::Baseline, Mode::Fix, account, what.clone());
            plan.severity = Severity::Medium;
            plan.region = event.region().cloned();
            plan.cause = "AWS Organizations".into();
            plan.violation(&what, format!("failed: {reason}"));
            plan.notes.push(format!(
                "Organizations did not create the account, so there is nothing to baseline. Fix the cause ({reason}) and create it again."
            ));
            Ok(Decision::Act { plan: Box::new(plan) })
        }
        Trigger::Created { control_tower, .. } => match known {
            Known::Account(facts) => Ok(plan_account(facts, control_tower, policy)),
            _ => Err(Rejection::MissingField { field: "account state" }),
        },
    }
}

/// How the environment was worked out, for the alert.
fn environment_of<'p>(facts: &AccountFacts, policy: &'p Policy) -> Option<(&'p Environment, String)> {
    if let Some(tag) = facts.tags.iter().find(|t| t.key == ENVIRONMENT_TAG)
        && let Some(env) = policy.environment(&tag.value)
    {
        return Some((env, format!("the account's {ENVIRONMENT_TAG} tag says {}", env.name)));
    }
    if let Some(name) = &facts.name
        && let Some(env) = policy
            .naming
            .account
            .environment_of(name)
            .and_then(|e| policy.environment(e))
    {
        return Some((
            env,
            format!("its name {name:?} follows the {} naming convention", env.name),
        ));
    }
    let parent = facts.parent.as_ref().filter(|p| !p.is_root)?;
    let env = policy.environment_for_ou(&parent.name)?;
    Some((env, format!("it is in OU {}", parent.name)))
}

/// A move of an account between parents, as `MoveAccount` reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct Move {
    pub from: String,
    pub to: String,
}

/// The whole baseline for one account, as a plan (or nothing, when everything is in place).
pub fn plan_account(facts: &AccountFacts, control_tower: bool, policy: &Policy) -> Decision {
    plan_scoped(facts, control_tower, &Scope::All, None, policy)
}

/// The baseline for one account within `scope`, as a plan (or nothing, when everything in it
/// is in place). `moved` is the move a `MoveAccount` event reported, for the placement check.
pub fn plan_scoped(
    facts: &AccountFacts,
    control_tower: bool,
    scope: &Scope,
    moved: Option<&Move>,
    policy: &Policy,
) -> Decision {
    let id = facts.account.clone();
    let label = match &facts.name {
        Some(name) => format!("account {id} ({name})"),
        None => format!("account {id}"),
    };
    let origin = if control_tower {
        "Control Tower Account Factory"
    } else {
        "AWS Organizations"
    };
    let rerun = format!("Check or re-apply any time: guardrail baseline --account {id} [--dry-run]");

    if facts.management_account.as_ref() == Some(&id) {
        let mut plan = Plan::new(Rule::Baseline, Mode::Fix, id, label);
        plan.severity = Severity::Medium;
        plan.cause = origin.into();
        plan.violation(
            "account",
            "this is the organization's management account: Guardrail does not baseline it",
        );
        return Decision::Act { plan: Box::new(plan) };
    }
    if let Some(state) = facts.state.as_deref().filter(|s| *s != "ACTIVE") {
        return Decision::Ignore {
            reason: Ignored::NotFinished {
                state: state.to_string(),
            },
        };
    }
    let Some((environment, because)) = environment_of(facts, policy) else {
        let mut plan = Plan::new(Rule::Baseline, Mode::Fix, id.clone(), label);
        plan.severity = Severity::Medium;
        plan.cause = origin.into();
        plan.violation(
            "environment",
            format!(
                "cannot tell the account's environment: no {ENVIRONMENT_TAG} tag naming one, its name {:?} does not match {:?} for any environment, and its OU is none of theirs",
                facts.name.as_deref().unwrap_or(""),
                policy.naming.account.pattern()
            ),
        );
        plan.notes.push(format!(
            "Tag the account {ENVIRONMENT_TAG}=<environment> (or rename it), then run: guardrail baseline --account {id}"
        ));
        return Decision::Act { plan: Box::new(plan) };
    };
    let mode = environment.mode(Rule::Baseline);
    if mode == Mode::Off {
        return Decision::Ignore {
            reason: Ignored::RuleOff {
                rule: Rule::Baseline,
                environment: environment.name.clone(),
            },
        };
    }

    let mut b = Builder {
        plan: Plan::new(Rule::Baseline, mode, id.clone(), label),
        checked: 0,
        scope: scope.clone(),
    };
    b.plan.environment = Some(environment.name.clone());
    b.plan.cause = origin.into();
    b.plan
        .notes
        .push(format!("Environment {}: {because}.", environment.name));
    if b.scope.covers(Step::AccountTags) {
        b.account_tags(facts, environment, policy);
    }
    b.member_settings(facts, environment, policy);
    for region in facts.regions.iter().filter(|r| scope.reaches(&r.region)) {
        b.region(region, policy);
    }
    // The move comes last: guardrail-management may assume the bootstrap role only in accounts
    // still in the root or a landing OU (aws:ResourceOrgPaths in infra/management-role.yaml),
    // so every step inside the account runs before it leaves, and a failed step keeps it there.
    if b.scope.covers(Step::Placement) {
        b.placement(facts, environment, control_tower, moved, policy);
    }

    let mut plan = b.plan;
    if plan.violations.is_empty() && plan.unchecked.is_empty() {
        return Decision::Ignore {
            reason: Ignored::Compliant { checked: b.checked },
        };
    }
    if !mode.fixes() {
        plan.actions.clear();
        plan.undo.clear();
        plan.placement = None;
    }
    // Routine when everything could be fixed; a person should look when something could not.
    let unfixed = plan.violations.iter().any(|v| !v.fixable) || !mode.fixes();
    plan.severity = if unfixed { Severity::Medium } else { Severity::Info };
    plan.notes.push(rerun);
    Decision::Act { plan: Box::new(plan) }
}

/// Accumulates checks into a plan.
struct Builder {
    plan: Plan,
    checked: usize,
    /// The steps checked; the facts hold nothing outside them.
    scope: Scope,
}

impl Builder {
    fn covers(&self, step: Step) -> bool {
        self.scope.covers(step)
    }

    fn ok(&mut self, what: impl Into<String>) {
        self.checked += 1;
        self.plan.in_place.push(what.into());
    }

    fn fix(&mut self, what: &str, problem: impl Into<String>, action: Action, undo: Option<String>) {
        self.checked += 1;
        let problem = problem.into();
        self.plan.actions.push(action);
        self.plan.record_before([(
            what.to_string(),
            BTreeMap::from([("state".to_string(), Some(problem.clone()))]),
        )]);
        self.plan.fixable_violation(what, problem);
        self.plan.undo.extend(undo);
    }

    fn report(&mut self, what: &str, problem: impl Into<String>) {
        self.checked += 1;
        self.plan.violation(what, problem);
    }

    /// Reads that failed: the check is retried with the event.
    fn readable<'r, T>(&mut self, check: &str, reading: &'r Reading<T>) -> Option<&'r T> {
        match reading {
            Ok(v) => Some(v),
            Err(e) => {
                self.plan.unchecked.push(Unchecked {
                    check: check.to_string(),
                    error: e.error.clone(),
                    transient: e.transient,
                });
                None
            }
        }
    }

    /// The account moves from the root or a landing OU into its environment's OU, and back into
    /// it when `moved` took it out (unless into an OU of `baseline.allowed_ous`).
    fn placement(
        &mut self,
        facts: &AccountFacts,
        env: &Environment,
        control_tower: bool,
        moved: Option<&Move>,
        policy: &Policy,
    ) {
        let id = facts.account.clone();
        let Some(target) = facts
            .environment_ous
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(&env.ou))
        else {
            self.report(
                "OU",
                format!(
                    "environment {}'s OU {:?} does not exist in the organization",
                    env.name, env.ou
                ),
            );
            return;
        };
        let placed = |ou: &OuRef| Placement {
            account: id.clone(),
            ou_id: Some(ou.id.clone()),
            ou_name: Some(ou.name.clone()),
            environment: Some(env.name.clone()),
        };
        let Some(parent) = &facts.parent else {
            self.report("OU", "the account's parent could not be found");
            return;
        };
        if parent.id == target.id {
            self.ok(format!("the account is in OU {}", target.name));
            self.plan.placement = Some(placed(target));
            return;
        }
        let moved_out = moved.filter(|m| m.from == target.id);
        if let Some(m) = moved.filter(|m| m.to != parent.id) {
            self.ok(format!(
                "the account has moved on from {} to {}; that move is checked on its own event",
                m.to, parent.name
            ));
            return;
        }
        if moved_out.is_some()
            && policy
                .baseline
                .allowed_ous
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&parent.name))
        {
            self.ok(format!(
                "the account was moved from OU {} to {}, which baseline.allowed_ous allows",
                target.name, parent.name
            ));
            self.plan.placement = Some(Placement {
                account: id.clone(),
                ou_id: Some(parent.id.clone()),
                ou_name: Some(parent.name.clone()),
                environment: policy.environment_for_ou(&parent.name).map(|e| e.name.clone()),
            });
            return;
        }
        let movable = parent.is_root
            || moved_out.is_some()
            || policy
                .baseline
                .landing_ous
                .iter()
                .any(|l| l.eq_ignore_ascii_case(&parent.name));
        if control_tower {
            self.report(
                "OU",
                format!(
                    "Control Tower placed the account in {}, not {}; Guardrail does not move Control Tower-managed accounts (re-enrol it in the right OU)",
                    parent.name, target.name
                ),
            );
        } else if movable {
            self.fix(
                "OU",
                if moved_out.is_some() {
                    format!(
                        "the account was moved out of its environment's OU {} into {}",
                        target.name, parent.name
                    )
                } else {
                    format!(
                        "the account is in {}, not in its environment's OU {}",
                        parent.name, target.name
                    )
                },
                Action::MoveAccount {
                    from_id: parent.id.clone(),
                    from_name: parent.name.clone(),
                    to_id: target.id.clone(),
                    to_name: target.name.clone(),
                },
                Some(format!(
                    "aws organizations move-account --account-id {id} --source-parent-id {} --destination-parent-id {}",
                    target.id, parent.id
                )),
            );
            self.plan.placement = Some(placed(target));
        } else {
            self.report(
                "OU",
                format!(
                    "the account is in OU {}, which is neither the root nor a landing OU, so it is not moved to {}",
                    parent.name, target.name
                ),
            );
        }
    }

    /// `Environment` must name the environment; `Owner` defaults to the account's email.
    fn account_tags(&mut self, facts: &AccountFacts, env: &Environment, policy: &Policy) {
        let id = &facts.account;
        let current = |key: &str| facts.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str());
        let mut set = Vec::new();
        let mut added = Vec::new();
        let mut restore = Vec::new();
        let mut problems = Vec::new();
        for key in &policy.tags.required {
            let derived = match key.as_str() {
                ENVIRONMENT_TAG => Some(env.name.clone()),
                OWNER_TAG => facts.email.as_deref().map(tag_value),
                _ => None,
            };
            match (current(key), derived) {
                (Some(have), Some(want)) if key == ENVIRONMENT_TAG && have != want => {
                    problems.push(format!("tag {key} is {have:?}, not {want}"));
                    restore.push(shell_quote(&format!("Key={key},Value={have}")));
                    set.push(Tag::new(key, want));
                }
                (Some(_), _) => {}
                (None, Some(want)) => {
                    problems.push(format!("tag {key} is missing"));
                    added.push(shell_quote(key));
                    set.push(Tag::new(key, want));
                }
                (None, None) => self.report(
                    "account tags",
                    format!("required tag {key} is missing and cannot be derived; set it by hand"),
                ),
            }
        }
        if set.is_empty() {
            self.ok("the account's tags");
            return;
        }
        let mut undo = Vec::new();
        if !added.is_empty() {
            undo.push(format!(
                "aws organizations untag-resource --resource-id {id} --tag-keys {}",
                added.join(" ")
            ));
        }
        if !restore.is_empty() {
            undo.push(format!(
                "aws organizations tag-resource --resource-id {id} --tags {}",
                restore.join(" ")
            ));
        }
        self.fix(
            "account tags",
            problems.join("; "),
            Action::TagAccount { tags: set },
            (!undo.is_empty()).then(|| undo.join(" && ")),
        );
    }

    /// Alias, password policy and S3 Block Public Access, in the account itself.
    fn member_settings(&mut self, facts: &AccountFacts, env: &Environment, policy: &Policy) {
        let id = facts.account.as_str();
        let name = facts.name.as_deref().unwrap_or(id);
        if self.covers(Step::Alias)
            && let Some(want) = policy.baseline.alias_for(name, &env.name, id)
            && let Some(alias) = self.readable("account alias", &facts.alias)
        {
            match alias {
                Some(a) if *a == want => self.ok(format!("the account alias is {a}")),
                Some(a) => self.report(
                    "account alias",
                    format!("the alias is {a}; the naming convention says {want}. Aliases are what people sign in with, so it is left as is"),
                ),
                None => self.fix(
                    "account alias",
                    "the account has no alias",
                    Action::SetAccountAlias { alias: want.clone() },
                    Some(format!("aws iam delete-account-alias --account-alias {want}")),
                ),
            }
        }

        let wanted = &policy.baseline.password_policy;
        if self.covers(Step::PasswordPolicy)
            && let Some(current) = self.readable("password policy", &facts.password_policy)
        {
            match current {
                None => self.fix(
                    "password policy",
                    "the account has no IAM password policy",
                    Action::SetPasswordPolicy { policy: wanted.clone() },
                    Some("aws iam delete-account-password-policy".into()),
                ),
                Some(current) => {
                    let merged = wanted.strengthen(current);
                    if merged == *current {
                        self.ok("the IAM password policy");
                    } else {
                        self.fix(
                            "password policy",
                            weaker_settings(current, &merged),
                            Action::SetPasswordPolicy { policy: merged },
                            Some(password_policy_command(current)),
                        );
                    }
                }
            }
        }

        if self.covers(Step::S3PublicAccessBlock)
            && let Some(block) = self.readable("S3 Block Public Access", &facts.s3_public_access_block)
        {
            match block {
                Some(b) if *b == S3PublicAccessBlock::ALL => self.ok("S3 Block Public Access for the account"),
                other => self.fix(
                    "S3 Block Public Access",
                    "S3 Block Public Access is not fully on for the account",
                    Action::BlockS3PublicAccess,
                    Some(match other {
                        None => format!("aws s3control delete-public-access-block --account-id {id}"),
                        Some(b) => format!(
                            "aws s3control put-public-access-block --account-id {id} --public-access-block-configuration BlockPublicAcls={},IgnorePublicAcls={},BlockPublicPolicy={},RestrictPublicBuckets={}",
                            b.block_public_acls, b.ignore_public_acls, b.block_public_policy, b.restrict_public_buckets
                        ),
                    }),
                ),
            }
        }
    }

    fn region(&mut self, facts: &RegionFacts, policy: &Policy) {
        let region = &facts.region;
        let name = |what: &str| format!("{what} {region}");

        if self.covers(Step::EbsEncryption)
            && let Some(on) = self.readable(&name("EBS encryption"), &facts.ebs_encryption)
        {
            if *on {
                self.ok(format!("EBS encryption by default in {region}"));
            } else {
                self.fix(
                    &name("EBS encryption"),
                    "EBS encryption by default is off",
                    Action::EnableEbsEncryption { region: region.clone() },
                    Some(format!("aws ec2 disable-ebs-encryption-by-default --region {region}")),
                );
            }
        }
        if let Some(want) = &policy.baseline.ebs_kms_key
            && self.covers(Step::EbsDefaultKey)
            && let Some(Some(key)) = self.readable(&name("EBS default key"), &facts.ebs_kms_key)
        {
            if key.current.as_deref() == Some(key.wanted.as_str()) {
                self.ok(format!("the default EBS key in {region}"));
            } else {
                self.fix(
                    &name("EBS default key"),
                    format!(
                        "the default EBS key is {}, not {want} ({})",
                        key.current.as_deref().unwrap_or("unknown"),
                        key.wanted
                    ),
                    Action::SetEbsDefaultKey {
                        region: region.clone(),
                        key: want.clone(),
                    },
                    Some(format!("aws ec2 reset-ebs-default-kms-key-id --region {region}")),
                );
            }
        }
        if self.covers(Step::Imds)
            && let Some(imds) = self.readable(&name("IMDSv2"), &facts.imds)
        {
            if imds.http_tokens.as_deref() == Some("required") {
                self.ok(format!("IMDSv2 required by default in {region}"));
            } else {
                self.fix(
                    &name("IMDSv2"),
                    "new instances may use IMDSv1 (no account default requires tokens)",
                    Action::RequireImdsV2 {
                        region: region.clone(),
                        hop_limit: policy.baseline.imds_hop_limit,
                    },
                    Some(format!(
                        "aws ec2 modify-instance-metadata-defaults --region {region} --http-tokens no-preference --http-put-response-hop-limit -1"
                    )),
                );
            }
        }
        if self.covers(Step::SnapshotBlock)
            && let Some(state) = self.readable(&name("snapshot block public access"), &facts.snapshot_block)
        {
            let want = policy.baseline.snapshot_block;
            if SnapshotBlock::parse(state).is_some_and(|s| s >= want) {
                self.ok(format!("EBS snapshot public sharing blocked in {region} ({state})"));
            } else {
                self.fix(
                    &name("snapshot block public access"),
                    format!("EBS snapshot public sharing is {state}"),
                    Action::BlockSnapshotSharing {
                        region: region.clone(),
                        state: want,
                    },
                    Some(format!(
                        "aws ec2 disable-snapshot-block-public-access --region {region}"
                    )),
                );
            }
        }
        if self.covers(Step::ImageBlock)
            && let Some(state) = self.readable(&name("AMI block public access"), &facts.image_block)
        {
            if state == "block-new-sharing" {
                self.ok(format!("AMI public sharing blocked in {region}"));
            } else {
                self.fix(
                    &name("AMI block public access"),
                    format!("AMI public sharing is {state}"),
                    Action::BlockImageSharing { region: region.clone() },
                    Some(format!("aws ec2 disable-image-block-public-access --region {region}")),
                );
            }
        }
        if policy.baseline.delete_default_vpcs
            && self.covers(Step::DefaultVpc)
            && let Some(vpc) = self.readable(&name("default VPC"), &facts.default_vpc)
        {
            match vpc {
                None => self.ok(format!("no default VPC in {region}")),
                Some(v) if !v.instances.is_empty() || !v.network_interfaces.is_empty() => self.report(
                    &name("default VPC"),
                    format!(
                        "default VPC {} holds {} instance(s) and {} network interface(s), so it is left in place",
                        v.id,
                        v.instances.len(),
                        v.network_interfaces.len()
                    ),
                ),
                Some(v) => self.fix(
                    &name("default VPC"),
                    format!("default VPC {} exists", v.id),
                    Action::DeleteDefaultVpc {
                        region: region.clone(),
                        vpc: v.clone(),
                    },
                    Some(format!("aws ec2 create-default-vpc --region {region}")),
                ),
            }
        }
    }
}

/// Which settings of `current` are weaker than `merged`.
fn weaker_settings(current: &PasswordPolicy, merged: &PasswordPolicy) -> String {
    let mut weaker = Vec::new();
    if current.minimum_length < merged.minimum_length {
        weaker.push(format!(
            "minimum length {} < {}",
            current.minimum_length, merged.minimum_length
        ));
    }
    for (name, have, want) in [
        ("symbols", current.require_symbols, merged.require_symbols),
        ("numbers", current.require_numbers, merged.require_numbers),
        ("uppercase", current.require_uppercase, merged.require_uppercase),
        ("lowercase", current.require_lowercase, merged.require_lowercase),
    ] {
        if want && !have {
            weaker.push(format!("{name} not required"));
        }
    }
    if current.reuse_prevention != merged.reuse_prevention {
        weaker.push(format!(
            "remembers {} previous passwords, not {}",
            current.reuse_prevention.unwrap_or(0),
            merged.reuse_prevention.unwrap_or(0)
        ));
    }
    if current.max_age_days != merged.max_age_days || current.hard_expiry != merged.hard_expiry {
        weaker.push("expiry differs".into());
    }
    if current.allow_users_to_change != merged.allow_users_to_change {
        weaker.push("users' right to change their password differs".into());
    }
    format!(
        "the IAM password policy is weaker than the baseline: {}",
        weaker.join(", ")
    )
}

/// The command that sets a password policy back to `p`.
fn password_policy_command(p: &PasswordPolicy) -> String {
    let flag = |on: bool, name: &str| format!("--{}{name}", if on { "" } else { "no-" });
    let mut c = format!(
        "aws iam update-account-password-policy --minimum-password-length {} {} {} {} {} {}",
        p.minimum_length,
        flag(p.require_symbols, "require-symbols"),
        flag(p.require_numbers, "require-numbers"),
        flag(p.require_uppercase, "require-uppercase-characters"),
        flag(p.require_lowercase, "require-lowercase-characters"),
        flag(p.allow_users_to_change, "allow-users-to-change-password"),
    );
    if let Some(age) = p.max_age_days {
        c.push_str(&format!(" --max-password-age {age}"));
    }
    if let Some(reuse) = p.reuse_prevention {
        c.push_str(&format!(" --password-reuse-prevention {reuse}"));
    }
    c.push(' ');
    c.push_str(&flag(p.hard_expiry, "hard-expiry"));
    c
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::facts::{DefaultVpc, ImdsDefaults, ReadError};
    use crate::ids::Region;

    pub(crate) fn policy(text_edit: impl Fn(String) -> String) -> Policy {
        let text = text_edit(crate::policy::BUILTIN_POLICY.to_string());
        Policy::from_toml(&text, "test").unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) fn ou(id: &str, name: &str) -> OuRef {
        OuRef {
            id: id.into(),
            name: name.into(),
            is_root: false,
        }
    }

    fn root() -> OuRef {
        OuRef {
            id: "r-root".into(),
            name: "the root".into(),
            is_root: true,
        }
    }

    fn region_state(region: &str, vpc: Option<DefaultVpc>) -> RegionFacts {
        RegionFacts {
            region: Region::parse(region).expect("region"),
            ebs_encryption: Ok(false),
            ebs_kms_key: Ok(None),
            imds: Ok(ImdsDefaults::default()),
            snapshot_block: Ok("unblocked".into()),
            image_block: Ok("unblocked".into()),
            default_vpc: Ok(vpc),
        }
    }

    fn empty_vpc() -> DefaultVpc {
        DefaultVpc {
            id: "vpc-1".into(),
            subnets: vec!["subnet-1".into()],
            ..DefaultVpc::default()
        }
    }

    /// A brand-new account, as Organizations creates it: in the root, nothing set.
    pub(crate) fn new_account(name: &str) -> AccountFacts {
        AccountFacts {
            account: AccountId::parse("444455556666").expect("id"),
            management_account: AccountId::parse("111122223333"),
            name: Some(name.into()),
            email: Some(format!("{name}@example.com")),
            state: Some("ACTIVE".into()),
            parent: Some(root()),
            tags: vec![],
            environment_ous: vec![ou("ou-prod", "prod"), ou("ou-dev", "dev"), ou("ou-agents", "agents")],
            alias: Ok(None),
            password_policy: Ok(None),
            s3_public_access_block: Ok(None),
            regions: vec![
                region_state("us-east-1", Some(empty_vpc())),
                region_state("us-west-2", Some(empty_vpc())),
            ],
        }
    }

    /// The same account once every step is done.
    pub(crate) fn baselined(name: &str) -> AccountFacts {
        let p = policy(|t| t);
        let mut a = new_account(name);
        a.parent = Some(ou("ou-dev", "dev"));
        a.tags = vec![Tag::new("Environment", "dev"), Tag::new("Owner", "someone@example.com")];
        a.alias = Ok(Some(name.into()));
        a.password_policy = Ok(Some(p.baseline.password_policy.clone()));
        a.s3_public_access_block = Ok(Some(S3PublicAccessBlock::ALL));
        for r in &mut a.regions {
            r.ebs_encryption = Ok(true);
            r.imds = Ok(ImdsDefaults {
                http_tokens: Some("required".into()),
                hop_limit: Some(2),
            });
            r.snapshot_block = Ok("block-all-sharing".into());
            r.image_block = Ok("block-new-sharing".into());
            r.default_vpc = Ok(None);
        }
        a
    }

    pub(crate) fn planned(decision: Decision) -> Plan {
        match decision {
            Decision::Act { plan } => *plan,
            Decision::Ignore { reason } => panic!("ignored: {reason}"),
        }
    }

    pub(crate) fn action_ids(plan: &Plan) -> Vec<String> {
        plan.actions.iter().map(Action::id).collect()
    }

    #[test]
    fn a_new_account_gets_every_step_in_every_region() {
        let plan = planned(plan_account(&new_account("dev-payments"), false, &policy(|t| t)));
        assert_eq!(
            action_ids(&plan),
            [
                "tag-account:Environment,Owner",
                "account-alias:dev-payments",
                "password-policy",
                "s3-block-public-access",
                "ebs-encryption:us-east-1",
                "imds-v2:us-east-1",
                "snapshot-block-public-access:us-east-1",
                "image-block-public-access:us-east-1",
                "delete-default-vpc:us-east-1:vpc-1",
                "ebs-encryption:us-west-2",
                "imds-v2:us-west-2",
                "snapshot-block-public-access:us-west-2",
                "image-block-public-access:us-west-2",
                "delete-default-vpc:us-west-2:vpc-1",
                "move-account:ou-dev",
            ]
        );
        assert_eq!(plan.environment.as_deref(), Some("dev"));
        assert_eq!(
            plan.severity,
            Severity::Info,
            "routine: everything is fixed automatically"
        );
        assert_eq!(plan.undo.len(), plan.actions.len());
        assert_eq!(plan.placement.as_ref().and_then(|p| p.ou_id.as_deref()), Some("ou-dev"));
        let Action::TagAccount { tags } = &plan.actions[0] else {
            panic!("{:?}", plan.actions[0])
        };
        assert!(tags.contains(&Tag::new("Owner", "dev-payments@example.com")));
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("guardrail baseline --account 444455556666"))
        );
    }

    #[test]
    fn a_baselined_account_needs_nothing() {
        let decision = plan_account(&baselined("dev-payments"), false, &policy(|t| t));
        assert!(
            matches!(decision, Decision::Ignore { reason: Ignored::Compliant { checked } } if checked == 15),
            "{decision:?}"
        );
    }

    #[test]
    fn detect_mode_reports_and_changes_nothing() {
        let p = policy(|t| {
            t.replace(
                "[environments.dev.modes]\ntags = \"fix\"\nbaseline = \"fix\"",
                "[environments.dev.modes]\ntags = \"fix\"\nbaseline = \"detect\"",
            )
        });
        let plan = planned(plan_account(&new_account("dev-payments"), false, &p));
        assert!(plan.actions.is_empty() && plan.undo.is_empty() && plan.placement.is_none());
        assert_eq!(plan.violations.len(), 15);
        assert_eq!(plan.severity, Severity::Medium);
    }

    #[test]
    fn a_default_vpc_in_use_is_left_alone_and_a_failed_read_is_retried() {
        let mut account = new_account("dev-payments");
        account.regions[0].default_vpc = Ok(Some(DefaultVpc {
            instances: vec!["i-0123456789abcdef0".into()],
            ..empty_vpc()
        }));
        account.regions[1].imds = Err(ReadError {
            error: "ec2 GetInstanceMetadataDefaults failed: Throttling".into(),
            transient: true,
        });
        let plan = planned(plan_account(&account, false, &policy(|t| t)));
        let ids = action_ids(&plan);
        assert!(
            !ids.iter().any(|i| i.starts_with("delete-default-vpc:us-east-1")),
            "{ids:?}"
        );
        assert!(ids.contains(&"delete-default-vpc:us-west-2:vpc-1".to_string()));
        assert!(!ids.contains(&"imds-v2:us-west-2".to_string()));
        assert!(
            plan.violations
                .iter()
                .any(|v| v.problem.contains("holds 1 instance(s)"))
        );
        assert_eq!(plan.unchecked.len(), 1);
        assert_eq!(plan.unchecked[0].check, "IMDSv2 us-west-2");
        assert_eq!(plan.severity, Severity::Medium, "something needs a person");
    }

    #[test]
    fn accounts_are_moved_only_out_of_the_root_or_a_landing_ou() {
        let p = policy(|t| t);
        let mut landing = new_account("dev-payments");
        landing.parent = Some(ou("ou-landing", "Landing"));
        assert!(action_ids(&planned(plan_account(&landing, false, &p))).contains(&"move-account:ou-dev".into()));

        let mut elsewhere = new_account("dev-payments");
        elsewhere.parent = Some(ou("ou-x", "Finance"));
        let plan = planned(plan_account(&elsewhere, false, &p));
        assert!(!action_ids(&plan).iter().any(|i| i.starts_with("move-account")));
        assert!(
            plan.violations
                .iter()
                .any(|v| v.problem.contains("neither the root nor a landing OU"))
        );

        let plan = planned(plan_account(&new_account("dev-payments"), true, &p));
        assert!(
            !action_ids(&plan).iter().any(|i| i.starts_with("move-account")),
            "never move Control Tower accounts"
        );
        assert!(plan.violations.iter().any(|v| v.problem.contains("Control Tower")));
    }

    #[test]
    fn the_environment_comes_from_the_tag_then_the_name_then_the_ou() {
        let p = policy(|t| t);
        let mut tagged = new_account("dev-payments");
        tagged.tags = vec![Tag::new("Environment", "prod")];
        assert_eq!(
            planned(plan_account(&tagged, false, &p)).environment.as_deref(),
            Some("prod")
        );
        let mut placed = new_account("payments");
        placed.parent = Some(ou("ou-agents", "agents"));
        assert_eq!(
            planned(plan_account(&placed, false, &p)).environment.as_deref(),
            Some("agents")
        );

        let unknown = planned(plan_account(&new_account("payments"), false, &p));
        assert!(unknown.actions.is_empty());
        assert!(
            unknown.violations[0]
                .problem
                .contains("cannot tell the account's environment")
        );
        assert!(unknown.notes.iter().any(|n| n.contains("Environment=<environment>")));
    }

    #[test]
    fn the_management_account_is_never_baselined() {
        let mut management = new_account("dev-root");
        management.account = AccountId::parse("111122223333").expect("id");
        let plan = planned(plan_account(&management, false, &policy(|t| t)));
        assert!(plan.actions.is_empty());
        assert!(plan.violations[0].problem.contains("management account"));
    }

    #[test]
    fn a_stricter_password_policy_is_kept_where_stricter() {
        let p = policy(|t| t);
        let mut account = baselined("dev-payments");
        let mut current = p.baseline.password_policy.clone();
        current.minimum_length = 20;
        current.require_symbols = false;
        account.password_policy = Ok(Some(current));
        let plan = planned(plan_account(&account, false, &p));
        let [Action::SetPasswordPolicy { policy: set }] = plan.actions.as_slice() else {
            panic!("{:?}", plan.actions)
        };
        assert_eq!((set.minimum_length, set.require_symbols), (20, true));
        assert!(plan.violations[0].problem.contains("symbols not required"));
        assert!(plan.undo[0].contains("--minimum-password-length 20") && plan.undo[0].contains("--no-require-symbols"));
    }

    #[test]
    fn a_failed_creation_is_reported_and_needs_nothing() {
        let event = crate::event::decode_value(serde_json::json!({
            "eventID": "e", "eventTime": "2026-01-01T00:00:00Z", "eventSource": "organizations.amazonaws.com",
            "eventName": "CreateAccountResult", "eventType": "AwsServiceEvent", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333",
            "serviceEventDetails": {"createAccountStatus": {"id": "car-1", "state": "FAILED", "accountName": "dev-x",
                                                            "failureReason": "EMAIL_ALREADY_EXISTS"}}
        }))
        .remove(0)
        .expect("event");
        assert_eq!(needs(&event), Ok(Needs::Nothing));
        let plan = planned(decide(&event, &Known::Nothing, &policy(|t| t)).expect("decision"));
        assert!(plan.actions.is_empty());
        assert!(plan.violations[0].problem.contains("EMAIL_ALREADY_EXISTS"));
        assert_eq!(plan.account.as_str(), "111122223333");
    }
}
