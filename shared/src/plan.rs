//! What a rule decided: ignore the event (and why), or a plan of violations and actions.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use crate::alert::Severity;
use crate::facts::{DefaultVpc, Placement};
use crate::ids::{AccountId, Region, clip};
use crate::policy::{Mode, PasswordPolicy, Rule, SnapshotBlock};
use crate::quarantine::{PrincipalRef, QuarantineRecord};
use crate::rules::resources::TagApi;

/// The decision for one event, before anything is applied.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Nothing to do.
    Ignore { reason: Ignored },
    /// Something is wrong (or only to report); the plan says what and what to do about it.
    Act { plan: Box<Plan> },
}

/// Why an event needs nothing from Guardrail.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "ignored", rename_all = "kebab-case")]
pub enum Ignored {
    /// The call failed (`errorCode`), so it changed nothing.
    FailedCall { error_code: String },
    /// A dry run (`Client.DryRunOperation`) creates nothing.
    DryRun,
    /// Guardrail's own principal made the call (loop prevention).
    SelfCaused { principal: String },
    /// This function has no rule for this kind of event.
    NotHandled { event: String },
    /// The account belongs to no environment in the policy.
    UnmanagedAccount { account: String, ou: Option<String> },
    /// The rule is `off` in the account's environment.
    RuleOff { rule: Rule, environment: String },
    /// Everything already complies.
    Compliant { checked: usize },
    /// The event reports something still under way (an account being created).
    NotFinished { state: String },
    /// The policy exempts the principal that made the call.
    Exempt { principal: String },
    /// GuardDuty generated the finding as a sample.
    SampleFinding,
    /// The finding was archived (suppressed) in GuardDuty.
    ArchivedFinding,
    /// The finding or event names nothing Guardrail can contain (root, a deleted role, ...).
    NotContainable { what: String },
    /// The caller is not an agent, so its calls are not counted.
    NotAnAgent { principal: String },
    /// The agent's calls are within its budget.
    WithinBudget { principal: String, calls: String },
    /// No line of the policy's finding table matches.
    NoFindingRule { finding_type: String, severity: f64 },
    /// The principal is already contained at least this hard.
    AlreadyQuarantined { principal: String, response: String },
    /// The alarm is not in the `ALARM` state.
    AlarmNotFiring { state: String },
    /// The resource is a principal the policy protects, which Guardrail never modifies.
    Protected { principal: String },
    /// The account or region is outside what the baseline covers.
    NotBaselined { what: String },
    /// Containment of this kind is for `enforce`, and the rule runs in a milder mode here.
    NotEnforced {
        rule: Rule,
        environment: String,
        mode: Mode,
    },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::FailedCall { error_code } => {
                write!(f, "the call failed ({error_code}), so it changed nothing")
            }
            Ignored::DryRun => write!(f, "it was a dry run, which creates nothing"),
            Ignored::SelfCaused { principal } => {
                write!(f, "Guardrail's own role {principal} made the call")
            }
            Ignored::Protected { principal } => {
                write!(
                    f,
                    "{principal} is a protected principal, which Guardrail leaves as it is"
                )
            }
            Ignored::NotHandled { event } => write!(f, "this function has no rule for {event}"),
            Ignored::UnmanagedAccount { account, ou: Some(ou) } => {
                write!(
                    f,
                    "account {account} is in OU {ou:?}, which no environment in the policy names"
                )
            }
            Ignored::UnmanagedAccount { account, ou: None } => {
                write!(f, "account {account} is in no OU that the policy names")
            }
            Ignored::RuleOff { rule, environment } => {
                write!(f, "rule {} is off in environment {environment}", rule.name())
            }
            Ignored::Compliant { checked } => {
                write!(f, "all {checked} checked item(s) already comply")
            }
            Ignored::Exempt { principal } => write!(f, "the policy exempts {principal}"),
            Ignored::NotFinished { state } => {
                write!(f, "it reports state {state}, not a finished outcome")
            }
            Ignored::SampleFinding => write!(f, "GuardDuty generated the finding as a sample"),
            Ignored::ArchivedFinding => write!(f, "the finding is archived in GuardDuty"),
            Ignored::NotContainable { what } => write!(f, "{what}: nothing Guardrail can contain"),
            Ignored::NotAnAgent { principal } => {
                write!(
                    f,
                    "{principal} is not an agent (quarantine.agent_roles, or quarantine.agent_tag when rate.tagged_agents is on), so its calls are not counted"
                )
            }
            Ignored::WithinBudget { principal, calls } => write!(f, "{principal} is within its budget: {calls}"),
            Ignored::NoFindingRule { finding_type, severity } => write!(
                f,
                "no line of quarantine.findings matches {finding_type} at severity {severity} for this principal"
            ),
            Ignored::AlreadyQuarantined { principal, response } => {
                write!(f, "{principal} is already quarantined ({response})")
            }
            Ignored::NotBaselined { what } => write!(f, "{what}, which the baseline does not cover"),
            Ignored::AlarmNotFiring { state } => write!(f, "the alarm changed to {state}, not ALARM"),
            Ignored::NotEnforced {
                rule,
                environment,
                mode,
            } => write!(
                f,
                "rule {} is in {} mode in environment {environment}; only enforce contains",
                rule.name(),
                mode.name()
            ),
        }
    }
}

/// A key and value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Whether this is the tag `key` (one of Guardrail's, such as `guardrail:waiver`).
    pub fn is(&self, key: &str) -> bool {
        same_key(&self.key, key)
    }
}

/// Whether two tag keys name the same tag for Guardrail. IAM compares a principal's tag keys
/// without regard to case (`Guardrail:Quarantine` and `guardrail:quarantine` are one tag there),
/// and the SCPs deny Guardrail's keys in any case, so Guardrail reads its own keys that way too.
pub fn same_key(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Something a rule found wrong.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    /// What is wrong: a resource id, or a setting such as `ebs-encryption us-east-1`.
    pub resource: String,
    /// One sentence: `tag Environment is "prod" but account 1111 is in dev`.
    pub problem: String,
    /// Whether one of the rule's actions fixes it (in `fix` mode); if not, a person must.
    pub fixable: bool,
}

/// A check that could not be made because reading the current state failed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Unchecked {
    pub check: String,
    pub error: String,
    pub transient: bool,
}

/// A change Guardrail makes. Every action is idempotent: applying it twice is applying it once.
/// Actions in a region say so; the others act account-wide (or, for the account's place and
/// tags, in Organizations).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Set tags (create or overwrite), then remove misspelled keys, with the resource type's
    /// tagging call.
    Tag {
        api: TagApi,
        region: Region,
        resources: Vec<String>,
        set: Vec<Tag>,
        remove: Vec<String>,
    },
    /// Stop instances (containment in `enforce` mode; they can be started again).
    StopInstances {
        region: Region,
        instances: Vec<String>,
    },
    /// Move the account from the root or a landing OU into its environment's OU.
    MoveAccount {
        from_id: String,
        from_name: String,
        to_id: String,
        to_name: String,
    },
    /// Tag the account in Organizations.
    TagAccount {
        tags: Vec<Tag>,
    },
    SetAccountAlias {
        alias: String,
    },
    SetPasswordPolicy {
        policy: PasswordPolicy,
    },
    /// All four account-level S3 Block Public Access settings on.
    BlockS3PublicAccess,
    EnableEbsEncryption {
        region: Region,
    },
    SetEbsDefaultKey {
        region: Region,
        key: String,
    },
    RequireImdsV2 {
        region: Region,
        hop_limit: i32,
    },
    BlockSnapshotSharing {
        region: Region,
        state: SnapshotBlock,
    },
    BlockImageSharing {
        region: Region,
    },
    /// Delete the default VPC and what hangs off it; re-checked for instances and interfaces
    /// right before deleting.
    DeleteDefaultVpc {
        region: Region,
        vpc: DefaultVpc,
    },
    /// Put Guardrail's inline deny-everything policy on a role or user: for sessions issued
    /// before `issued_before` (revoke sessions), or for every session (isolate).
    Deny {
        principal: PrincipalRef,
        policy_name: String,
        issued_before: Option<DateTime<Utc>>,
    },
    /// Delete Guardrail's inline policy (release).
    RemoveDeny {
        principal: PrincipalRef,
        policy_name: String,
    },
    /// Set a role's permissions boundary: Guardrail's isolation boundary (isolate), or back to
    /// what it was (release; `None` removes it).
    SetBoundary {
        principal: PrincipalRef,
        boundary: Option<String>,
    },
    /// Set a user's access keys inactive (quarantine) or active again (release).
    SetAccessKeys {
        user: PrincipalRef,
        keys: Vec<String>,
        active: bool,
    },
    /// Write the quarantine record to Guardrail's table, if it still holds the version before.
    SaveQuarantine {
        record: Box<QuarantineRecord>,
    },
}

impl Action {
    /// A stable id for recording progress: the same action always gets the same id.
    pub fn id(&self) -> String {
        match self {
            Action::Tag {
                api,
                region,
                resources,
                set,
                remove,
            } => {
                // The API is part of it: the same ids can be instances or their volumes.
                let keys: Vec<&str> = set.iter().map(|t| t.key.as_str()).collect();
                format!(
                    "tag:{}:{region}:{}:{}:-{}",
                    api.name(),
                    resources.join(","),
                    keys.join(","),
                    remove.join(",")
                )
            }
            Action::StopInstances { region, instances } => {
                format!("stop:{region}:{}", instances.join(","))
            }
            Action::MoveAccount { to_id, .. } => format!("move-account:{to_id}"),
            Action::TagAccount { tags } => {
                let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
                format!("tag-account:{}", keys.join(","))
            }
            Action::SetAccountAlias { alias } => format!("account-alias:{alias}"),
            Action::SetPasswordPolicy { .. } => "password-policy".into(),
            Action::BlockS3PublicAccess => "s3-block-public-access".into(),
            Action::EnableEbsEncryption { region } => format!("ebs-encryption:{region}"),
            Action::SetEbsDefaultKey { region, .. } => format!("ebs-default-key:{region}"),
            Action::RequireImdsV2 { region, .. } => format!("imds-v2:{region}"),
            Action::BlockSnapshotSharing { region, .. } => {
                format!("snapshot-block-public-access:{region}")
            }
            Action::BlockImageSharing { region } => format!("image-block-public-access:{region}"),
            Action::DeleteDefaultVpc { region, vpc } => {
                format!("delete-default-vpc:{region}:{}", vpc.id)
            }
            Action::Deny {
                principal,
                policy_name,
                issued_before,
            } => format!(
                "deny:{}:{policy_name}:{}",
                principal.record_key(),
                issued_before.map_or("all".to_string(), |t| t.timestamp().to_string())
            ),
            Action::RemoveDeny { principal, policy_name } => {
                format!("remove-deny:{}:{policy_name}", principal.record_key())
            }
            Action::SetBoundary { principal, boundary } => {
                format!(
                    "boundary:{}:{}",
                    principal.record_key(),
                    boundary.as_deref().unwrap_or("none")
                )
            }
            Action::SetAccessKeys { user, keys, active } => {
                format!("access-keys:{}:{active}:{}", user.record_key(), keys.join(","))
            }
            Action::SaveQuarantine { record } => {
                format!("save:{}:v{}", record.principal.record_key(), record.version)
            }
        }
    }

    /// How many write calls the action makes at most, for pacing a sweep's writes per account.
    pub fn writes(&self) -> u32 {
        let n = |len: usize| u32::try_from(len).unwrap_or(u32::MAX);
        match self {
            // A tagging call per resource, and one more to remove misspelled keys.
            Action::Tag { resources, remove, .. } => n(resources.len().max(1)) * if remove.is_empty() { 1 } else { 2 },
            Action::SetAccessKeys { keys, .. } => n(keys.len()),
            // Detach and delete each gateway, then each part, then the VPC.
            Action::DeleteDefaultVpc { vpc, .. } => n(2 * vpc.internet_gateways.len()
                + vpc.subnets.len()
                + vpc.route_tables.len()
                + vpc.network_acls.len()
                + vpc.security_groups.len()
                + 1),
            // Guardrail's own table, not the account.
            Action::SaveQuarantine { .. } => 0,
            _ => 1,
        }
    }

    /// The region the action runs in, when it runs in one.
    pub fn region(&self) -> Option<&Region> {
        match self {
            Action::Tag { region, .. }
            | Action::StopInstances { region, .. }
            | Action::EnableEbsEncryption { region }
            | Action::SetEbsDefaultKey { region, .. }
            | Action::RequireImdsV2 { region, .. }
            | Action::BlockSnapshotSharing { region, .. }
            | Action::BlockImageSharing { region }
            | Action::DeleteDefaultVpc { region, .. } => Some(region),
            _ => None,
        }
    }

    /// The resources the action changes, as the ledger names them: the ids it tags or stops,
    /// the principal's ARN; `None` for account-wide steps, which the rule names.
    pub fn targets(&self) -> Option<Vec<String>> {
        let principal = |p: &PrincipalRef| vec![format!("arn:aws:iam::{}:{}/{}", p.account, p.kind.name(), p.name)];
        match self {
            Action::Tag { resources, .. } => Some(resources.clone()),
            Action::StopInstances { instances, .. } => Some(instances.clone()),
            Action::Deny { principal: p, .. }
            | Action::RemoveDeny { principal: p, .. }
            | Action::SetBoundary { principal: p, .. } => Some(principal(p)),
            Action::SetAccessKeys { user, .. } => Some(principal(user)),
            Action::SaveQuarantine { record } => Some(principal(&record.principal)),
            _ => None,
        }
    }

    /// What the action leaves in place, as the ledger's "after" (`None`: removed).
    pub fn after(&self) -> BTreeMap<String, Option<String>> {
        let one = |k: &str, v: String| BTreeMap::from([(k.to_string(), Some(v))]);
        match self {
            Action::Tag { set, remove, .. } => set
                .iter()
                .map(|t| (t.key.clone(), Some(t.value.clone())))
                .chain(remove.iter().map(|k| (k.clone(), None)))
                .collect(),
            Action::TagAccount { tags } => tags.iter().map(|t| (t.key.clone(), Some(t.value.clone()))).collect(),
            Action::StopInstances { .. } => one("state", "stopped".into()),
            Action::MoveAccount { to_id, to_name, .. } => one("ou", format!("{to_name} ({to_id})")),
            Action::SetAccountAlias { alias } => one("alias", alias.clone()),
            Action::Deny { policy_name, .. } => one(&format!("inline policy {policy_name}"), self.to_string()),
            Action::RemoveDeny { policy_name, .. } => BTreeMap::from([(format!("inline policy {policy_name}"), None)]),
            Action::SetBoundary { boundary, .. } => {
                BTreeMap::from([("permissions boundary".to_string(), boundary.clone())])
            }
            Action::SetAccessKeys { keys, active, .. } => {
                let status = if *active { "Active" } else { "Inactive" };
                keys.iter().map(|k| (k.clone(), Some(status.to_string()))).collect()
            }
            other => one("state", other.to_string()),
        }
    }

    /// The high-risk kind of action this is, as an environment's `approval` list names it
    /// ([`crate::policy::APPROVAL_ACTIONS`]); `None` for the others.
    pub fn risk(&self) -> Option<&'static str> {
        match self {
            Action::Deny {
                issued_before: None, ..
            } => Some("isolate"),
            Action::SetBoundary { boundary: Some(b), .. } if crate::quarantine::is_isolation_boundary(b) => {
                Some("isolate")
            }
            Action::Deny { .. } => Some("revoke-sessions"),
            Action::SetAccessKeys { active: false, .. } => Some("deactivate-keys"),
            Action::StopInstances { .. } => Some("stop-instances"),
            Action::DeleteDefaultVpc { .. } => Some("delete-default-vpc"),
            Action::MoveAccount { .. } => Some("move-account"),
            _ => None,
        }
    }

    /// Whether the action may run only once every action and check before it succeeded: the
    /// account leaves the root (where the bootstrap role is reachable) only fully baselined; a
    /// deny policy goes on only once the quarantine tag that protects it (SCP
    /// `QuarantineStaysUntilReleased`) is on; and the quarantine record, which makes later
    /// events see the principal as contained, is written only once it is.
    pub fn needs_all_before(&self) -> bool {
        matches!(
            self,
            Action::MoveAccount { .. }
                | Action::Deny { .. }
                | Action::SetBoundary { .. }
                | Action::SaveQuarantine { .. }
        )
    }

    /// Whether the action runs although an earlier step failed with `earlier`: the isolation
    /// boundary and the deny policy go on even when a step before them hit a quota (an agent that
    /// filled its 50 tag slots, or its inline policy quota, so that its quarantine would fail).
    /// Contained but unprotected beats free; the event still fails, alerts and is retried, and
    /// the record of a finished quarantine is not written.
    pub fn runs_despite(&self, earlier: &crate::error::Error) -> bool {
        let containment = match self {
            Action::Deny { .. } | Action::SetBoundary { .. } => true,
            // The record that keeps the prior boundary, before the boundary is replaced.
            Action::SaveQuarantine { record } => record.pending,
            _ => false,
        };
        containment && earlier.is_quota()
    }

    /// Whether the action runs in Organizations (the management account) rather than in the
    /// account itself.
    pub fn in_organizations(&self) -> bool {
        matches!(self, Action::MoveAccount { .. } | Action::TagAccount { .. })
    }
}

fn tag_list(tags: &[Tag]) -> String {
    tags.iter()
        .map(|t| format!("{}={}", t.key, clip(&t.value, 120)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Tag {
                api,
                resources,
                set,
                remove,
                ..
            } => {
                let mut parts = Vec::new();
                if !set.is_empty() {
                    parts.push(format!("set {}", tag_list(set)));
                }
                if !remove.is_empty() {
                    parts.push(format!("remove {}", remove.join(", ")));
                }
                let resources = resources.join(", ");
                match api {
                    TagApi::Ec2VolumesOf => write!(f, "{} on the volumes of {resources}", parts.join(" and ")),
                    TagApi::Ec2AndVolumes => {
                        write!(f, "{} on {resources} and the volumes attached", parts.join(" and "))
                    }
                    _ => write!(f, "{} on {resources}", parts.join(" and ")),
                }
            }
            Action::StopInstances { instances, .. } => write!(f, "stop {}", instances.join(", ")),
            Action::MoveAccount {
                from_name,
                to_name,
                to_id,
                ..
            } => write!(f, "move the account from {from_name} to OU {to_name} ({to_id})"),
            Action::TagAccount { tags } => write!(f, "tag the account {}", tag_list(tags)),
            Action::SetAccountAlias { alias } => write!(f, "set the account alias {alias}"),
            Action::SetPasswordPolicy { policy } => write!(
                f,
                "set the IAM password policy (at least {} characters, reuse of the last {} refused)",
                policy.minimum_length,
                policy.reuse_prevention.unwrap_or(0)
            ),
            Action::BlockS3PublicAccess => {
                write!(f, "turn on S3 Block Public Access for the account")
            }
            Action::EnableEbsEncryption { region } => {
                write!(f, "turn on EBS encryption by default in {region}")
            }
            Action::SetEbsDefaultKey { region, key } => {
                write!(f, "make {key} the default EBS key in {region}")
            }
            Action::RequireImdsV2 { region, hop_limit } => {
                write!(
                    f,
                    "require IMDSv2 for new instances in {region} (hop limit {hop_limit})"
                )
            }
            Action::BlockSnapshotSharing { region, state } => {
                write!(
                    f,
                    "block public sharing of EBS snapshots in {region} ({})",
                    state.as_str()
                )
            }
            Action::BlockImageSharing { region } => {
                write!(f, "block public sharing of AMIs in {region}")
            }
            Action::Deny {
                principal,
                policy_name,
                issued_before: Some(t),
            } => write!(
                f,
                "revoke the sessions of {principal} issued before {} (inline policy {policy_name})",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Action::Deny {
                principal,
                policy_name,
                issued_before: None,
            } => write!(
                f,
                "isolate {principal}: deny everything to every session (inline policy {policy_name})"
            ),
            Action::RemoveDeny { principal, policy_name } => {
                write!(f, "remove inline policy {policy_name} from {principal}")
            }
            Action::SetBoundary {
                principal,
                boundary: Some(b),
            } if crate::quarantine::is_isolation_boundary(b) => write!(
                f,
                "isolate {principal} through the permissions boundary {}",
                crate::quarantine::ISOLATION_BOUNDARY
            ),
            Action::SetBoundary {
                principal,
                boundary: Some(b),
            } => write!(f, "set the permissions boundary of {principal} back to {b}"),
            Action::SetBoundary {
                principal,
                boundary: None,
            } => write!(f, "remove the permissions boundary Guardrail set on {principal}"),
            Action::SetAccessKeys { user, keys, active } => write!(
                f,
                "{} access key(s) {} of {user}",
                if *active { "reactivate" } else { "deactivate" },
                keys.join(", ")
            ),
            Action::SaveQuarantine { record } if record.pending => write!(
                f,
                "record that the quarantine of {} has begun, with its prior state (permissions boundary {})",
                record.principal,
                record.prior.permissions_boundary.as_deref().unwrap_or("none")
            ),
            Action::SaveQuarantine { record } => match &record.released {
                None => write!(
                    f,
                    "record the quarantine of {} with its prior state ({} inline and {} managed policies, {} tags)",
                    record.principal,
                    record.prior.inline_policies.len(),
                    record.prior.attached_policies.len(),
                    record.prior.tags.len()
                ),
                Some(r) => write!(f, "record the release of {} by {}", record.principal, r.by),
            },
            Action::DeleteDefaultVpc { region, vpc } => write!(
                f,
                "delete default VPC {} in {region} ({} internet gateway(s), {} subnet(s), {} route table(s), {} network ACL(s), {} security group(s))",
                vpc.id,
                vpc.internet_gateways.len(),
                vpc.subnets.len(),
                vpc.route_tables.len(),
                vpc.network_acls.len(),
                vpc.security_groups.len()
            ),
        }
    }
}

/// What to do about one event.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub rule: Rule,
    /// One word for what applying the plan did (`baselined`, `restored`): the alert's action.
    pub verb: &'static str,
    pub mode: Mode,
    pub severity: Severity,
    pub account: AccountId,
    /// The event's region, when the plan is about one.
    pub region: Option<Region>,
    pub environment: Option<String>,
    /// Who caused the event, for the alert.
    pub cause: String,
    /// What the plan is about: `1 EC2 instance created by RunInstances`, `new account 1111`.
    pub subject: String,
    /// The alert's "what happened", when the rule says it better than "<subject> did not meet
    /// the rule".
    pub happened: Option<String>,
    pub violations: Vec<Violation>,
    /// Empty in `detect` mode.
    pub actions: Vec<Action>,
    /// Shell commands that undo the actions.
    pub undo: Vec<String>,
    /// Checks found already in place.
    pub in_place: Vec<String>,
    /// Checks that could not be made; the event fails so they are retried.
    pub unchecked: Vec<Unchecked>,
    /// More for the person reading the alert: how to re-run, what to do by hand.
    pub notes: Vec<String>,
    /// Where the account belongs once the plan is applied, for the account directory.
    pub placement: Option<Placement>,
    /// What each action replaces on each of its resources, for the ledger.
    pub before: Vec<Before>,
    /// Actions held back instead of taken, and why: the ledger records them as planned.
    pub withheld: Vec<Action>,
    pub held: Option<Hold>,
    /// Resources a waiver exempts from what the rule found: the ledger records them as waived.
    pub waived: Vec<Waived>,
}

/// A resource the rule would have changed or reported, left alone under a waiver.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Waived {
    pub resource: String,
    /// `waiver SEC-123 until 2026-12-31`.
    pub waiver: String,
    /// What the rule found, in one line.
    pub problems: String,
}

/// The values one action replaces on one resource (`None`: the value was not set).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Before {
    /// The action's [`Action::id`].
    pub action: String,
    pub resource: String,
    pub values: BTreeMap<String, Option<String>>,
}

/// Why a plan's actions were held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hold {
    /// The kill switch is on.
    Paused,
    /// This plan's changes tripped its rule's blast-radius breaker.
    Tripped,
    /// Its rule's breaker was tripped earlier.
    Open,
    /// A waiver on the principal exempts it from the rule.
    Waived,
    /// The environment makes it wait for a person's approval.
    Pending,
}

impl Hold {
    pub fn name(self) -> &'static str {
        match self {
            Hold::Paused => "paused",
            Hold::Tripped => "tripped",
            Hold::Open => "breaker-open",
            Hold::Waived => "waived",
            Hold::Pending => "pending",
        }
    }
}

impl Plan {
    /// An empty plan for a rule, to fill in.
    pub fn new(rule: Rule, mode: Mode, account: AccountId, subject: impl Into<String>) -> Plan {
        Plan {
            rule,
            verb: rule.verb(),
            mode,
            severity: Severity::Low,
            account,
            region: None,
            environment: None,
            cause: String::new(),
            subject: subject.into(),
            happened: None,
            violations: Vec::new(),
            actions: Vec::new(),
            undo: Vec::new(),
            in_place: Vec::new(),
            unchecked: Vec::new(),
            notes: Vec::new(),
            placement: None,
            before: Vec::new(),
            withheld: Vec::new(),
            held: None,
            waived: Vec::new(),
        }
    }

    /// Records what the last action pushed replaces on each of its resources.
    pub fn record_before(&mut self, values: impl IntoIterator<Item = (String, BTreeMap<String, Option<String>>)>) {
        let Some(action) = self.actions.last().map(Action::id) else {
            return;
        };
        self.before.extend(values.into_iter().map(|(resource, values)| Before {
            action: action.clone(),
            resource,
            values,
        }));
    }

    /// Holds every action back (`hold`), keeping them for the ledger: the plan only reports,
    /// and its first note says why. Notes that say how to undo what is now not done go.
    pub fn hold_back(&mut self, hold: Hold, why: String) {
        self.withheld.append(&mut self.actions);
        self.held = Some(hold);
        self.mode = Mode::Detect;
        let undo = std::mem::take(&mut self.undo);
        self.notes.retain(|n| !undo.iter().any(|u| n.contains(u.as_str())));
        self.placement = None;
        self.notes.insert(0, why);
    }

    /// Resources the plan is about, each once, in order.
    pub fn resources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in &self.violations {
            if !out.contains(&v.resource) {
                out.push(v.resource.clone());
            }
        }
        out
    }

    /// A violation no action fixes: a person must.
    pub fn violation(&mut self, resource: impl Into<String>, problem: impl Into<String>) {
        self.violations.push(Violation {
            resource: resource.into(),
            problem: problem.into(),
            fixable: false,
        });
    }

    /// A violation the rule's actions fix.
    pub fn fixable_violation(&mut self, resource: impl Into<String>, problem: impl Into<String>) {
        self.violations.push(Violation {
            resource: resource.into(),
            problem: problem.into(),
            fixable: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::quarantine::PrincipalKind;

    fn aws(code: &str, transient: bool) -> Error {
        Error::Aws {
            service: "iam",
            operation: "TagRole",
            code: code.into(),
            message: "x".into(),
            transient,
        }
    }

    #[test]
    fn a_deny_goes_on_despite_a_full_tag_quota_and_nothing_else() {
        let principal = PrincipalRef::new(
            AccountId::parse("111122223333").expect("id"),
            PrincipalKind::Role,
            "agent-runner",
        )
        .expect("principal");
        let deny = Action::Deny {
            principal,
            policy_name: "guardrail-quarantine".into(),
            issued_before: None,
        };
        assert!(deny.needs_all_before());
        assert!(deny.runs_despite(&aws("LimitExceeded", false)));
        for other in [aws("Throttling", true), aws("AccessDenied", false)] {
            assert!(!deny.runs_despite(&other), "{other}");
        }
        let tag = Action::Tag {
            api: TagApi::IamRole,
            region: Region::parse("us-east-1").expect("region"),
            resources: vec!["agent-runner".into()],
            set: vec![Tag::new("guardrail:quarantine", "isolate")],
            remove: Vec::new(),
        };
        assert!(!tag.needs_all_before() && !tag.runs_despite(&aws("LimitExceeded", false)));
    }
}
