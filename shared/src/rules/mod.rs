//! Pure rules: (event, facts, policy) → [`Decision`]. No I/O and no clock, so the Lambda
//! functions, dry runs and the offline CLI all reach the same decision.

pub mod resources;
pub mod tags;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::{Event, Rejection};
use crate::facts::Placement;
use crate::plan::{Decision, Ignored};
use crate::policy::Policy;

/// The Lambda functions; each runs its own rules over the events it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    AccountBaseline,
    TagEnforcer,
    AgentQuarantine,
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

    /// Whether this function has a rule for the event. Asked before any AWS read, so events
    /// that are not ours cost nothing.
    pub fn handles(self, event: &Event) -> bool {
        match (self, event) {
            (Function::TagEnforcer, Event::ApiCall(call)) => {
                resources::lookup(&call.event_source, &call.event_name).is_some()
            }
            _ => false,
        }
    }

    /// Decides what to do about an event this function handles.
    pub fn decide(
        self,
        event: &Event,
        placement: &Placement,
        policy: &Policy,
    ) -> Result<Decision, Rejection> {
        match (self, event) {
            (Function::TagEnforcer, Event::ApiCall(call)) => {
                match resources::lookup(&call.event_source, &call.event_name) {
                    Some(resource_type) => tags::plan(call, resource_type, placement, policy),
                    None => Ok(not_handled(event)),
                }
            }
            _ => Ok(not_handled(event)),
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
        reason: Ignored::NotHandled {
            event: event.label(),
        },
    }
}
