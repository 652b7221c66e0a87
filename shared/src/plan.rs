//! What a rule decided: ignore the event (and why), or a plan of violations and actions.

use std::fmt;

use serde::Serialize;

use crate::ids::{AccountId, Region, clip};
use crate::policy::{Mode, Rule};

/// The decision for one event, before anything is applied.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// Nothing to do.
    Ignore { reason: Ignored },
    /// Something is wrong; the plan says what and what to do about it.
    Act { plan: Plan },
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
            Ignored::NotHandled { event } => write!(f, "this function has no rule for {event}"),
            Ignored::UnmanagedAccount {
                account,
                ou: Some(ou),
            } => {
                write!(
                    f,
                    "account {account} is in OU {ou:?}, which no environment in the policy names"
                )
            }
            Ignored::UnmanagedAccount { account, ou: None } => {
                write!(f, "account {account} is in no OU that the policy names")
            }
            Ignored::RuleOff { rule, environment } => {
                write!(
                    f,
                    "rule {} is off in environment {environment}",
                    rule.name()
                )
            }
            Ignored::Compliant { checked } => write!(f, "all {checked} resource(s) already comply"),
        }
    }
}

/// A key and value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
}

/// Something a rule found wrong with one resource.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Violation {
    pub resource: String,
    /// One sentence: `tag Environment is "prod" but account 1111 is in dev`.
    pub problem: String,
}

/// A change Guardrail makes. Every action is idempotent: applying it twice is applying it once.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Set tags (create or overwrite) on EC2 resources with one `CreateTags` call.
    TagEc2 {
        resources: Vec<String>,
        tags: Vec<Tag>,
    },
}

impl Action {
    /// A stable id for recording progress: the same action always gets the same id.
    pub fn id(&self) -> String {
        match self {
            Action::TagEc2 { resources, tags } => {
                let keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
                format!("tag-ec2:{}:{}", resources.join(","), keys.join(","))
            }
        }
    }

    /// A one-word verb for alert filters (`action` message attribute).
    pub fn verb(&self) -> &'static str {
        match self {
            Action::TagEc2 { .. } => "tagged",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::TagEc2 { resources, tags } => {
                let tags: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{}={}", t.key, clip(&t.value, 120)))
                    .collect();
                write!(f, "set {} on {}", tags.join(", "), resources.join(", "))
            }
        }
    }
}

/// What to do about one event.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub rule: Rule,
    pub mode: Mode,
    pub account: AccountId,
    pub region: Region,
    pub environment: String,
    /// Who caused the event, for the alert.
    pub cause: String,
    /// One line per resource kind: `EC2 instance(s) created by RunInstances`.
    pub subject: String,
    pub violations: Vec<Violation>,
    /// Empty in `detect` mode.
    pub actions: Vec<Action>,
    /// Shell commands that undo the actions.
    pub undo: Vec<String>,
}

impl Plan {
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
}
