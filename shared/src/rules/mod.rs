//! Pure rules: (event, facts, policy) → [`Decision`]. No I/O and no clock, so the Lambda
//! functions, dry runs and the offline CLI all reach the same decision.

pub mod baseline;
pub mod resources;
pub mod tags;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Rejection};
use crate::facts::{AccountFacts, Placement};
use crate::ids::AccountId;
use crate::plan::{Decision, Ignored};
use crate::policy::{Policy, Rule};

/// The Lambda functions; each runs its own rules over the events it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    AccountBaseline,
    TagEnforcer,
    AgentQuarantine,
}

/// What a function must know, beyond the event, to decide.
#[derive(Clone, Debug, PartialEq)]
pub enum Needs {
    Nothing,
    /// The account's place in the organization (the directory).
    Placement(AccountId),
    /// The account's current state (Organizations and the account itself).
    Account(AccountId),
}

/// What the pipeline found out, as [`Needs`] asked.
#[derive(Clone, Debug)]
pub enum Known {
    Nothing,
    Placement(Placement),
    Account(Box<AccountFacts>),
}

impl Function {
    pub const ALL: [Function; 3] = [
        Function::AccountBaseline,
        Function::TagEnforcer,
        Function::AgentQuarantine,
    ];

    /// The package, binary and deployed function name.
    pub fn name(self) -> &'static str {
        match self {
            Function::AccountBaseline => "account-baseline",
            Function::TagEnforcer => "tag-enforcer",
            Function::AgentQuarantine => "agent-quarantine",
        }
    }

    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The policy rule the function runs.
    pub fn rule(self) -> Rule {
        match self {
            Function::AccountBaseline => Rule::Baseline,
            Function::TagEnforcer => Rule::Tags,
            Function::AgentQuarantine => Rule::Quarantine,
        }
    }

    /// Whether this function has a rule for the event. Asked before any AWS read, so events
    /// that are not ours cost nothing.
    pub fn handles(self, event: &Event) -> bool {
        match (self, event) {
            (Function::TagEnforcer, Event::ApiCall(call)) => {
                resources::for_event(&call.event_source, &call.event_name)
                    .next()
                    .is_some()
                    || resources::change_for(&call.event_source, &call.event_name).is_some()
            }
            (Function::AccountBaseline, Event::AccountCreation(_)) => true,
            (Function::AccountBaseline, Event::Lifecycle(l)) => l.name == baseline::CREATE_MANAGED_ACCOUNT,
            _ => false,
        }
    }

    /// What the function must know to decide on an event it handles.
    pub fn needs(self, event: &Event) -> Result<Needs, Rejection> {
        match (self, event) {
            (Function::TagEnforcer, _) => event
                .account()
                .cloned()
                .map(Needs::Placement)
                .ok_or(Rejection::MissingField { field: "account" }),
            (Function::AccountBaseline, _) => baseline::needs(event),
            _ => Ok(Needs::Nothing),
        }
    }

    /// Decides what to do about an event this function handles, from what it needed to know.
    pub fn decide(self, event: &Event, known: &Known, policy: &Policy) -> Result<Decision, Rejection> {
        match (self, event, known) {
            (Function::TagEnforcer, Event::ApiCall(call), Known::Placement(placement)) => {
                match resources::change_for(&call.event_source, &call.event_name) {
                    Some(change) => tags::plan_change(call, change, placement, policy),
                    None => tags::plan_created(call, placement, policy),
                }
            }
            (Function::AccountBaseline, _, _) => baseline::decide(event, known, policy),
            _ => Ok(not_handled(event)),
        }
    }
}

impl Function {
    /// The EventBridge rule pattern that sends this function exactly the events it handles,
    /// generated from the same tables the function decides with. Failed calls never match.
    pub fn event_pattern(self) -> Option<serde_json::Value> {
        use std::collections::BTreeSet;
        match self {
            Function::TagEnforcer => {
                let mut sources = BTreeSet::new();
                let mut names = BTreeSet::new();
                let pairs = resources::RESOURCE_TYPES
                    .iter()
                    .map(|r| (r.event_source, r.event_name))
                    .chain(resources::TAG_CHANGES.iter().map(|c| (c.event_source, c.event_name)));
                for (source, name) in pairs {
                    sources.insert(format!("aws.{}", source.trim_end_matches(".amazonaws.com")));
                    names.insert(name);
                }
                Some(serde_json::json!({
                    "source": sources,
                    "detail-type": ["AWS API Call via CloudTrail"],
                    "detail": {
                        "eventName": names,
                        "errorCode": [{"exists": false}]
                    }
                }))
            }
            Function::AccountBaseline => Some(serde_json::json!({
                "source": ["aws.controltower", "aws.organizations"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {"eventName": ["CreateAccountResult", baseline::CREATE_MANAGED_ACCOUNT]}
            })),
            Function::AgentQuarantine => None,
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The decision for an event the function has no rule for.
pub fn not_handled(event: &Event) -> Decision {
    Decision::Ignore {
        reason: Ignored::NotHandled { event: event.label() },
    }
}
