//! Pure rules: (event, facts, policy) → [`Decision`]. No I/O and no clock, so the Lambda
//! functions, dry runs and the offline CLI all reach the same decision.

pub mod baseline;
pub mod drift;
pub mod patterns;
pub mod quarantine;
pub mod resources;
pub mod tags;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Rejection};
use crate::facts::{AccountFacts, Placement, RateKey, Scope};
use crate::ids::AccountId;
use crate::plan::{Decision, Ignored};
use crate::policy::{Policy, Rule};
use crate::quarantine::PrincipalRef;

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
    /// The account's current state (Organizations and the account itself), within `scope`.
    Account {
        account: AccountId,
        scope: Scope,
    },
    /// A role's or user's state and quarantine record.
    Principal(PrincipalRef),
    /// The caller's API calls counted in the current window; its state too if over budget.
    Rate(RateKey),
    /// A role or user the call created: its account's place, and its state if its name must be
    /// contained; the caller counted as for `Rate` when it is an agent.
    Created {
        principal: PrincipalRef,
        rate: Option<RateKey>,
    },
    /// The role the alarm's tag names, and that role's state.
    AlarmRole,
}

/// What the pipeline found out, as [`Needs`] asked.
#[derive(Clone, Debug)]
pub enum Known {
    Nothing,
    Placement(Placement),
    Account(Box<AccountFacts>),
    Suspect(Box<quarantine::Suspect>),
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

    /// Whether failed API calls reach the function's rules: agent-quarantine counts an agent's
    /// failed calls against its budget (probing is runaway behaviour too); the others act on
    /// what calls changed, and a failed call changed nothing.
    pub fn counts_failed_calls(self) -> bool {
        self == Function::AgentQuarantine
    }

    /// Whether the function runs scheduled sweeps (`{"guardrail-sweep": ...}` inputs).
    pub fn sweeps(self) -> bool {
        matches!(self, Function::AccountBaseline | Function::TagEnforcer)
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
            (Function::AccountBaseline, Event::ApiCall(call)) => {
                drift::step_for(&call.event_source, &call.event_name).is_some()
            }
            (Function::AccountBaseline, Event::Lifecycle(l)) => l.name == baseline::CREATE_MANAGED_ACCOUNT,
            (Function::AgentQuarantine, _) => quarantine::handles(event),
            _ => false,
        }
    }

    /// What the function must know to decide on an event it handles.
    pub fn needs(self, event: &Event, policy: &Policy) -> Result<Needs, Rejection> {
        match (self, event) {
            (Function::TagEnforcer, _) => event
                .account()
                .cloned()
                .map(Needs::Placement)
                .ok_or(Rejection::MissingField { field: "account" }),
            (Function::AccountBaseline, Event::ApiCall(call)) => drift::needs(call),
            (Function::AccountBaseline, _) => baseline::needs(event),
            (Function::AgentQuarantine, _) => quarantine::needs(event, policy),
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
            (Function::AccountBaseline, Event::ApiCall(call), _) => drift::decide(call, known, policy),
            (Function::AccountBaseline, _, _) => baseline::decide(event, known, policy),
            (Function::AgentQuarantine, _, Known::Suspect(suspect)) => quarantine::decide(event, suspect, policy),
            (Function::AgentQuarantine, _, _) => quarantine::decide(event, &quarantine::Suspect::default(), policy),
            _ => Ok(not_handled(event)),
        }
    }
}

impl Function {
    /// The EventBridge rule patterns (one rule each) that send this function the events it
    /// handles, generated from the same tables and policy the function decides with.
    pub fn event_patterns(self, policy: &Policy) -> Vec<serde_json::Value> {
        patterns::for_function(self, policy)
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
