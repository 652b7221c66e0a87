//! How runaway or compromised agent roles are recognised and contained.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Pattern;
use crate::plan::Tag;

/// What to do to a principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Response {
    /// Deny everything to sessions issued before now: stolen temporary credentials stop
    /// working, and the workload gets fresh ones.
    RevokeSessions,
    /// Deny everything to every session, old and new (and deactivate a user's access keys).
    Isolate,
}

impl Response {
    pub fn name(self) -> &'static str {
        match self {
            Response::RevokeSessions => "revoke-sessions",
            Response::Isolate => "isolate",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Response> {
        [Response::RevokeSessions, Response::Isolate]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// One line of the finding table: the first that matches decides the response.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FindingRule {
    /// GuardDuty finding types, with `*` wildcards.
    pub types: Vec<Pattern>,
    pub min_severity: f64,
    /// Only for principals recognised as agents.
    pub agents_only: bool,
    pub response: Response,
}

/// The budget of API calls an agent role may make in a window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateBudget {
    pub window: Duration,
    /// Calls of any kind.
    pub calls: u64,
    /// Calls of one event name (`RunInstances`, `CreateUser`).
    pub per_event: BTreeMap<String, u64>,
    /// Count principals recognised only by `agent_tag` too. EventBridge cannot match IAM tags,
    /// so this forwards every role's and user's calls and looks each caller's tags up (cached).
    pub tagged_agents: bool,
}

/// The `[quarantine]` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quarantine {
    /// Role ARNs of agents (path or name patterns).
    pub agent_roles: Vec<Pattern>,
    /// A tag that marks a role or user as an agent (any value but `false`).
    pub agent_tag: Option<String>,
    /// The tag on a CloudWatch alarm naming the role it watches.
    pub alarm_tag: String,
    /// The name of the inline policy Guardrail adds.
    pub inline_policy: String,
    pub findings: Vec<FindingRule>,
    pub rate: Option<RateBudget>,
}

impl Quarantine {
    /// Whether a principal is an agent: by its ARN, or by its tag.
    pub fn is_agent(&self, arn: &str, tags: &[Tag]) -> bool {
        self.agent_roles.iter().any(|p| p.matches(arn))
            || self
                .agent_tag
                .as_ref()
                .is_some_and(|key| tags.iter().any(|t| t.is(key) && !t.value.eq_ignore_ascii_case("false")))
    }

    /// The response the finding table gives, if any.
    pub fn response_for(&self, finding_type: &str, severity: f64, agent: bool) -> Option<Response> {
        self.findings
            .iter()
            .find(|r| {
                severity >= r.min_severity
                    && (agent || !r.agents_only)
                    && r.types.iter().any(|t| t.matches(finding_type))
            })
            .map(|r| r.response)
    }
}
