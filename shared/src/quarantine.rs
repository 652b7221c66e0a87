//! Quarantine state: the principal contained, what it looked like before, and what Guardrail
//! added, as stored in the table so that a release restores exactly what was there.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, is_iam_name};
use crate::plan::Tag;
use crate::policy::Response;

/// The tag Guardrail puts on a quarantined principal: response, time and trigger.
pub const QUARANTINE_TAG: &str = "guardrail:quarantine";

/// The managed policy (deny everything) the member-roles StackSet creates in every account, which
/// Guardrail sets as an isolated role's permissions boundary: the one slot an agent cannot fill
/// beforehand (it may fill its inline policy quota so that the inline deny cannot go on).
pub const ISOLATION_BOUNDARY: &str = "guardrail-isolate";

/// The isolation boundary's ARN in an account.
pub fn isolation_boundary_arn(partition: &str, account: &AccountId) -> String {
    format!("arn:{partition}:iam::{account}:policy/{ISOLATION_BOUNDARY}")
}

/// Whether a boundary ARN is Guardrail's isolation boundary (in any account or partition).
pub fn is_isolation_boundary(arn: &str) -> bool {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split_once(":policy/"))
        .is_some_and(|(head, name)| name == ISOLATION_BOUNDARY && head.contains(":iam::"))
}

/// An IAM role or user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    Role,
    User,
}

impl PrincipalKind {
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::Role => "role",
            PrincipalKind::User => "user",
        }
    }
}

/// A role or user in an account, by name (the path is not part of its identity in IAM calls).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrincipalRef {
    pub account: AccountId,
    pub kind: PrincipalKind,
    pub name: String,
}

impl PrincipalRef {
    /// `None` unless `name` is a valid IAM name (names come from untrusted events and tags).
    pub fn new(account: AccountId, kind: PrincipalKind, name: &str) -> Option<Self> {
        is_iam_name(name).then(|| PrincipalRef {
            account,
            kind,
            name: name.to_string(),
        })
    }

    /// From an IAM ARN: `arn:aws:iam::<account>:role/<path/><name>` or `...:user/...`.
    pub fn from_arn(arn: &str) -> Option<Self> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", _, "iam", "", account, resource] = parts.as_slice() else {
            return None;
        };
        let account = AccountId::parse(account)?;
        let (kind, rest) = if let Some(rest) = resource.strip_prefix("role/") {
            (PrincipalKind::Role, rest)
        } else if let Some(rest) = resource.strip_prefix("user/") {
            (PrincipalKind::User, rest)
        } else {
            return None;
        };
        PrincipalRef::new(account, kind, rest.rsplit('/').next()?)
    }

    /// The key of its quarantine record in the table.
    pub fn record_key(&self) -> String {
        format!("quarantine#{}#{}#{}", self.account, self.kind.name(), self.name)
    }

    /// The command that releases it.
    pub fn release_command(&self) -> String {
        format!(
            "guardrail release --account {} --{} {} --reason \"<why it is safe>\"",
            self.account,
            self.kind.name(),
            self.name
        )
    }
}

impl fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)
    }
}

/// One access key of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyState {
    pub id: String,
    pub active: bool,
}

/// A principal as IAM describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrincipalState {
    /// The ARN, with the path.
    pub arn: String,
    pub inline_policies: Vec<String>,
    /// Managed policy ARNs.
    pub attached_policies: Vec<String>,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
    /// A user's access keys (roles have none).
    #[serde(default)]
    pub access_keys: Vec<AccessKeyState>,
}

impl PrincipalState {
    /// The state without what Guardrail adds (its inline policy, quarantine tag and isolation
    /// boundary): what a release must leave behind.
    pub fn without_guardrail(&self, policy_name: &str) -> PrincipalState {
        PrincipalState {
            inline_policies: self
                .inline_policies
                .iter()
                .filter(|p| *p != policy_name)
                .cloned()
                .collect(),
            tags: self.tags.iter().filter(|t| !t.is(QUARANTINE_TAG)).cloned().collect(),
            permissions_boundary: self.permissions_boundary.clone().filter(|b| !is_isolation_boundary(b)),
            ..self.clone()
        }
    }

    /// How `now` differs from this (prior) state, apart from Guardrail's own additions and the
    /// keys a release reactivates: one line per difference.
    pub fn changes_since(&self, now: &PrincipalState, policy_name: &str) -> Vec<String> {
        let (before, after) = (self.without_guardrail(policy_name), now.without_guardrail(policy_name));
        let mut out = Vec::new();
        let mut diff = |what: &str, a: &[String], b: &[String]| {
            for x in a.iter().filter(|x| !b.contains(x)) {
                out.push(format!("{what} {x} was removed"));
            }
            for x in b.iter().filter(|x| !a.contains(x)) {
                out.push(format!("{what} {x} was added"));
            }
        };
        diff("inline policy", &before.inline_policies, &after.inline_policies);
        diff("managed policy", &before.attached_policies, &after.attached_policies);
        let tags = |s: &PrincipalState| {
            s.tags
                .iter()
                .map(|t| format!("{}={}", t.key, t.value))
                .collect::<Vec<_>>()
        };
        diff("tag", &tags(&before), &tags(&after));
        let keys = |s: &PrincipalState| s.access_keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        diff("access key", &keys(&before), &keys(&after));
        // Guardrail's isolation boundary stands in for the prior one, which a release puts back.
        let isolated = now.permissions_boundary.as_deref().is_some_and(is_isolation_boundary);
        if !isolated && before.permissions_boundary != after.permissions_boundary {
            out.push(format!(
                "permissions boundary changed from {} to {}",
                before.permissions_boundary.as_deref().unwrap_or("none"),
                after.permissions_boundary.as_deref().unwrap_or("none")
            ));
        }
        out
    }
}

/// What started a quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerSource {
    /// A GuardDuty finding.
    GuardDuty,
    /// API calls over the agent's budget.
    Rate,
    /// A CloudWatch alarm watching the agent.
    Alarm,
    /// A name that breaks the naming rule, in `enforce`.
    Naming,
}

impl TriggerSource {
    pub fn name(self) -> &'static str {
        match self {
            TriggerSource::GuardDuty => "guardduty",
            TriggerSource::Rate => "rate",
            TriggerSource::Alarm => "alarm",
            TriggerSource::Naming => "naming",
        }
    }
}

/// One reason a principal is quarantined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub source: TriggerSource,
    /// The finding id, CloudTrail event id or alarm ARN.
    pub id: String,
    /// One line: `UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS, severity 8`.
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Who released a principal, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// What Guardrail did to a principal and what was there before: one record per principal,
/// kept after release as its last history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    pub principal: PrincipalRef,
    pub response: Response,
    /// When the current quarantine began.
    pub since: DateTime<Utc>,
    /// For `revoke-sessions`: sessions issued before this are denied.
    pub revoked_before: Option<DateTime<Utc>>,
    /// The inline policy Guardrail added.
    pub policy_name: String,
    /// What caused it, oldest first.
    pub triggers: Vec<Trigger>,
    /// The principal before Guardrail touched it.
    pub prior: PrincipalState,
    /// Access keys Guardrail deactivated (a release reactivates exactly these).
    pub deactivated_keys: Vec<String>,
    /// Bumped on every write; writes are conditional on the version they replace.
    pub version: u64,
    pub released: Option<Release>,
    /// Written before Guardrail replaces what IAM would not give back (the role's permissions
    /// boundary), so that a retry after a failed step still knows the prior state; the record of
    /// a finished quarantine is not pending.
    #[serde(default)]
    pub pending: bool,
}

impl QuarantineRecord {
    /// A finished quarantine, not released: later events see the principal as contained.
    pub fn is_active(&self) -> bool {
        self.released.is_none() && !self.pending
    }

    /// A quarantine begun (finished or not) and not released: what a release undoes.
    pub fn is_open(&self) -> bool {
        self.released.is_none()
    }

    /// A quarantine begun and not finished: its prior state is the one to keep.
    pub fn is_pending(&self) -> bool {
        self.released.is_none() && self.pending
    }

    /// The value of the [`QUARANTINE_TAG`]: `isolate 2026-11-22T10:00:00Z guardduty:<finding id>`,
    /// within IAM's 256 characters and its tag-value alphabet.
    pub fn tag_value(&self) -> String {
        let trigger = self
            .triggers
            .last()
            .map(|t| format!("{}:{}", t.source.name(), t.id))
            .unwrap_or_default();
        let raw = format!(
            "{} {} {trigger}",
            self.response.name(),
            self.since.format("%Y-%m-%dT%H:%M:%SZ")
        );
        raw.chars()
            .map(|c| {
                if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(256)
            .collect()
    }
}

/// The inline policy that contains a principal: deny every action on every resource, to sessions
/// issued before `issued_before` (credentials already out there die, fresh ones work), or to all.
pub fn deny_document(issued_before: Option<DateTime<Utc>>) -> String {
    let mut statement = serde_json::json!({
        "Sid": "GuardrailQuarantine",
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
    });
    if let Some(t) = issued_before {
        statement["Condition"] = serde_json::json!({
            "DateLessThan": {"aws:TokenIssueTime": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}
        });
    }
    serde_json::json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_come_from_iam_arns_only() {
        let role = PrincipalRef::from_arn("arn:aws:iam::111122223333:role/agents/runner").expect("role");
        assert_eq!((role.kind, role.name.as_str()), (PrincipalKind::Role, "runner"));
        assert_eq!(role.record_key(), "quarantine#111122223333#role#runner");
        let user = PrincipalRef::from_arn("arn:aws-us-gov:iam::111122223333:user/bob").expect("user");
        assert_eq!(user.kind, PrincipalKind::User);
        for bad in [
            "arn:aws:sts::111122223333:assumed-role/runner/s",
            "arn:aws:iam::1111:role/runner",
            "arn:aws:iam::111122223333:policy/p",
            "arn:aws:iam::111122223333:role/",
            "arn:aws:iam::111122223333:role/has space",
        ] {
            assert_eq!(PrincipalRef::from_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn changes_ignore_what_guardrail_added() {
        let prior = PrincipalState {
            arn: "arn:aws:iam::111122223333:role/r".into(),
            inline_policies: vec!["app".into()],
            attached_policies: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            tags: vec![Tag::new("team", "a")],
            ..PrincipalState::default()
        };
        let mut now = prior.clone();
        now.inline_policies.push("guardrail-quarantine".into());
        now.tags.push(Tag::new(QUARANTINE_TAG, "isolate"));
        assert!(prior.changes_since(&now, "guardrail-quarantine").is_empty());
        now.attached_policies.clear();
        assert_eq!(
            prior.changes_since(&now, "guardrail-quarantine"),
            ["managed policy arn:aws:iam::aws:policy/ReadOnlyAccess was removed"]
        );
    }
}
