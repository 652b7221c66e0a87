//! Human approval for high-risk actions: which plans wait for a person (an environment's
//! `approval` list), the pending approval Guardrail keeps for each, and how it ends (approved
//! and applied, rejected, or expired).
//!
//! An approval keeps the event as it came, not the plan: `guardrail approve` decides on the
//! event again with the state of the accounts at that moment (its rate count as it was), so
//! what is applied is what is true when a person says yes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::alert::{Alert, Severity};
use crate::error::{Error, Result};
use crate::facts::RateCount;
use crate::ids::clip;
use crate::ledger::{self, Entry};
use crate::plan::{Hold, Plan};
use crate::policy::{Policy, Rule};
use crate::rules::Function;

/// Hex digits of an approval id after the function's name.
const ID_DIGITS: usize = 10;
/// The largest event an approval keeps (DynamoDB items are at most 400 KB).
pub const MAX_EVENT_BYTES: usize = 128 * 1024;
/// The ledger entries an approval keeps, to record how it ended, and the actions it lists, in
/// bytes and lines: with the event, an approval stays well inside a DynamoDB item (400 KB).
const MAX_ENTRY_BYTES: usize = 128 * 1024;
const MAX_PLANNED: usize = 100;

/// The approval id of an event's plan: the function's name and a digest of the event's replay
/// key, so every delivery of the event asks for the same approval.
pub fn id(function: Function, event_key: &str) -> String {
    let digest = Sha256::digest(format!("{function}#{event_key}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{function}-{}", &hex[..ID_DIGITS])
}

/// Checks an id a person typed; `Err` says what an id looks like.
pub fn parse_id(text: &str) -> std::result::Result<Function, String> {
    let text = text.trim();
    Function::ALL
        .into_iter()
        .find(|f| {
            text.strip_prefix(f.name())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|hex| {
                    hex.len() == ID_DIGITS && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                })
        })
        .ok_or_else(|| {
            format!(
                "{:?} is not an approval id (such as agent-quarantine-0123456789, as the alert and `guardrail approvals` give it)",
                clip(text, 80)
            )
        })
}

/// The approval's key in Guardrail's table.
pub fn key(id: &str) -> String {
    format!("approval#{id}")
}

/// The high-risk actions a rule's plans can hold.
fn risks(rule: Rule) -> &'static [&'static str] {
    match rule {
        Rule::Tags => &["stop-instances"],
        Rule::Baseline => &["delete-default-vpc", "move-account"],
        Rule::Quarantine => &["isolate", "revoke-sessions", "deactivate-keys"],
    }
}

/// Whether some environment may make a plan of `rule` wait for a person, so that the events it
/// decides on are kept as they came.
pub fn possible(rule: Rule, policy: &Policy) -> bool {
    policy
        .environments
        .iter()
        .flat_map(|e| &e.approval)
        .any(|item| item == rule.name() || risks(rule).contains(&item.as_str()))
}

/// What in the plan waits for a person in its environment: the environment's `approval`
/// entries that name the plan's rule or one of its actions' kinds. Empty: the plan may act.
pub fn needed(plan: &Plan, policy: &Policy) -> Vec<String> {
    let Some(environment) = plan.environment.as_deref().and_then(|e| policy.environment(e)) else {
        return Vec::new();
    };
    if plan.actions.is_empty() {
        return Vec::new();
    }
    environment
        .approval
        .iter()
        .filter(|item| *item == plan.rule.name() || plan.actions.iter().any(|a| a.risk() == Some(item.as_str())))
        .cloned()
        .collect()
}

/// Holds a plan back until a person approves it, saying how.
pub fn hold(plan: &mut Plan, id: &str, needs: &[String], deadline: DateTime<Utc>) {
    let environment = plan.environment.clone().unwrap_or_default();
    plan.hold_back(
        Hold::Pending,
        format!(
            "waiting for approval: {} needs a person's approval in environment {environment}, so nothing was changed. Approve with `guardrail approve {id} --reason TEXT` before {}, or reject with `guardrail reject {id} --reason TEXT`",
            needs.join(" and "),
            stamp(deadline)
        ),
    );
}

/// Keeps a plan detect-only when its event is too large to keep for approval: its problems are
/// detected, and a person acts by hand.
pub fn too_large(plan: &mut Plan, needs: &[String], bytes: usize) {
    plan.actions.clear();
    plan.undo.clear();
    plan.placement = None;
    plan.mode = crate::policy::Mode::Detect;
    plan.notes.insert(
        0,
        format!(
            "{} needs a person's approval, but the event ({bytes} bytes) is too large to keep for `guardrail approve` (at most {MAX_EVENT_BYTES}): nothing was changed; act by hand if the plan is right",
            needs.join(" and ")
        ),
    );
}

/// The last moment a plan decided at `now` may be approved (`safety.approval_expiry` later).
pub fn deadline(policy: &Policy, now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(policy.safety.approval_expiry).unwrap_or(chrono::Duration::hours(24))
}

/// How approvals show times: to the second.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Where an approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting for a person.
    Pending,
    /// A person approved it; its plan is being applied (or failed and may be approved again).
    Approved,
    /// Approved and applied (or nothing was left to do).
    Done,
    Rejected,
    /// Nobody approved it in time.
    Expired,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Done => "done",
            State::Rejected => "rejected",
            State::Expired => "expired",
        }
    }
}

/// Who decided, when and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decided {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A plan waiting for (or past) a person's approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub function: Function,
    /// The event's replay key: its ledger entries are under it.
    pub event_key: String,
    pub event_id: Option<String>,
    /// The event as it came, to decide on again.
    pub event: Value,
    /// When the event was decided on: its freshness is judged as of then on approval.
    pub requested_at: DateTime<Utc>,
    /// The last moment it may be approved.
    pub deadline: DateTime<Utc>,
    pub account: String,
    pub rule: String,
    pub environment: Option<String>,
    pub subject: String,
    pub severity: Severity,
    pub cause: String,
    /// The environment's `approval` entries the plan matched.
    pub needs: Vec<String>,
    /// The actions planned, in words.
    pub planned: Vec<String>,
    /// The agent's call count the decision used, given back when it is decided again.
    pub count: Option<RateCount>,
    /// The ledger's `pending` entries of the plan, restated when the approval ends unapplied.
    pub entries: Vec<Entry>,
    pub state: State,
    pub decided: Option<Decided>,
    /// How the approved plan ended: the outcome, in words.
    pub result: Option<String>,
}

impl Approval {
    /// A new pending approval of `plan` (held back already, until `deadline`), for the event
    /// `raw` decided at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        id: String,
        function: Function,
        event_key: &str,
        event_id: Option<&str>,
        raw: Value,
        plan: &Plan,
        needs: Vec<String>,
        count: Option<RateCount>,
        now: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> Approval {
        Approval {
            id,
            function,
            event_key: event_key.to_string(),
            event_id: event_id.map(str::to_string),
            event: raw,
            requested_at: now,
            deadline,
            account: plan.account.to_string(),
            rule: plan.rule.name().to_string(),
            environment: plan.environment.clone(),
            subject: plan.subject.clone(),
            severity: plan.severity,
            cause: clip(&plan.cause, 512),
            needs,
            planned: plan
                .withheld
                .iter()
                .take(MAX_PLANNED)
                .map(|a| clip(&a.to_string(), 500))
                .collect(),
            count,
            entries: Vec::new(),
            state: State::Pending,
            decided: None,
            result: None,
        }
    }

    /// Keeps the plan's pending ledger entries, as many as fit [`MAX_ENTRY_BYTES`] (the
    /// ledger itself has them all).
    pub fn keep_entries(&mut self, entries: &[Entry]) {
        let mut bytes = 0;
        self.entries = entries
            .iter()
            .filter(|e| e.outcome == ledger::Outcome::Pending)
            .take_while(|e| {
                bytes += serde_json::to_vec(e).map_or(usize::MAX / 2, |v| v.len());
                bytes <= MAX_ENTRY_BYTES
            })
            .cloned()
            .collect();
    }

    /// The approval as a person's decision leaves it (approved or rejected).
    pub fn decide(&self, state: State, decided: Decided) -> Approval {
        Approval {
            state,
            decided: Some(decided),
            ..self.clone()
        }
    }

    /// Where it stands at `now`: a pending approval past its deadline has expired.
    pub fn standing(&self, now: DateTime<Utc>) -> State {
        if self.state == State::Pending && now > self.deadline {
            State::Expired
        } else {
            self.state
        }
    }

    /// Why it can no longer be approved or rejected at `now`, if it cannot.
    pub fn closed(&self, now: DateTime<Utc>) -> Option<String> {
        let who = |d: &Option<Decided>| {
            d.as_ref()
                .map(|d| format!(" by {} at {}: {}", d.by, stamp(d.at), d.reason))
                .unwrap_or_default()
        };
        match self.standing(now) {
            State::Pending | State::Approved => None,
            State::Expired => Some(format!(
                "approval {} expired at {}: nobody approved it in time, and nothing was changed",
                self.id,
                stamp(self.deadline)
            )),
            State::Rejected => Some(format!("approval {} was rejected{}", self.id, who(&self.decided))),
            State::Done => Some(format!(
                "approval {} was approved{} and is done ({})",
                self.id,
                who(&self.decided),
                self.result.as_deref().unwrap_or("applied")
            )),
        }
    }

    /// The ledger entries that say how an unapplied approval ended: its pending entries again,
    /// with the new outcome and why.
    pub fn closing_entries(&self, outcome: ledger::Outcome, detail: &str, now: DateTime<Utc>) -> Vec<Entry> {
        self.entries
            .iter()
            .map(|e| Entry {
                outcome,
                detail: clip(detail, 2000),
                recorded: now,
                ..e.clone()
            })
            .collect()
    }

    /// The alert for a person's decision that changes nothing (rejected).
    pub fn alert(&self, action: &str, happened: String, now: DateTime<Utc>) -> Alert {
        Alert {
            function: self.function,
            severity: Severity::Low,
            rule: self.rule.clone(),
            action: action.to_string(),
            title: format!("{action}: {}", self.subject),
            account: Some(self.account.clone()),
            environment: self.environment.clone(),
            region: None,
            resources: self
                .entries
                .iter()
                .map(|e| e.resource.clone())
                .fold(Vec::new(), |mut v, r| {
                    if !v.contains(&r) {
                        v.push(r);
                    }
                    v
                }),
            happened,
            cause: (!self.cause.is_empty()).then(|| self.cause.clone()),
            why: Vec::new(),
            done: self.planned.iter().map(|a| format!("not done: {a}")).collect(),
            in_place: Vec::new(),
            undo: Vec::new(),
            notes: vec![format!("approval {}", self.id)],
            event_id: self.event_id.clone(),
            time: now,
        }
    }

    /// The record as stored: JSON, refused when it would not fit an item.
    pub fn to_json(&self) -> Result<String> {
        let json = serde_json::to_string(self).map_err(|e| Error::Corrupt {
            what: "approval",
            detail: e.to_string(),
        })?;
        if json.len() > 3 * MAX_EVENT_BYTES {
            return Err(Error::Corrupt {
                what: "approval",
                detail: format!("{} bytes, more than an item holds", json.len()),
            });
        }
        Ok(json)
    }
}

/// Where pending approvals are kept (Guardrail's table in Lambda; memory in unit tests). The
/// functions only ask; people decide, with the CLI.
pub trait Approvals: Send + Sync {
    /// Keeps a new pending approval; asking again for the same id changes nothing.
    fn request(&self, approval: &Approval) -> impl Future<Output = Result<()>> + Send;
}

/// Approvals kept in memory.
#[derive(Debug, Default)]
pub struct MemoryApprovals(Mutex<BTreeMap<String, Approval>>);

impl MemoryApprovals {
    pub fn get(&self, id: &str) -> Option<Approval> {
        self.0.lock().ok()?.get(id).cloned()
    }
}

impl Approvals for MemoryApprovals {
    async fn request(&self, approval: &Approval) -> Result<()> {
        let mut all = self.0.lock().map_err(|_| Error::config("approvals lock poisoned"))?;
        all.entry(approval.id.clone()).or_insert_with(|| approval.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Region};
    use crate::plan::Action;
    use crate::policy::{APPROVAL_ACTIONS, Mode};
    use crate::quarantine::{PrincipalKind, PrincipalRef};

    fn policy() -> Policy {
        let text = crate::policy::BUILTIN_POLICY
            .replace("approval = [\"quarantine\"]", "approval = [\"isolate\", \"baseline\"]");
        Policy::from_toml(&text, "test").unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan(environment: &str, issued_before: Option<DateTime<Utc>>) -> Plan {
        let account = AccountId::parse("111122223333").unwrap_or_else(|| panic!("account"));
        let mut plan = Plan::new(Rule::Quarantine, Mode::Enforce, account.clone(), "role agent-1");
        plan.environment = Some(environment.into());
        let principal = PrincipalRef::new(account, PrincipalKind::Role, "agent-1").unwrap_or_else(|| panic!("role"));
        plan.actions.push(Action::Deny {
            principal,
            policy_name: "guardrail-quarantine".into(),
            issued_before,
        });
        plan
    }

    #[test]
    fn ids_are_stable_per_event_and_checked_when_typed() {
        let a = id(Function::AgentQuarantine, "finding#abc#1");
        assert_eq!(a, id(Function::AgentQuarantine, "finding#abc#1"));
        assert_ne!(a, id(Function::AgentQuarantine, "finding#abc#2"));
        assert!(a.starts_with("agent-quarantine-") && a.len() == "agent-quarantine-".len() + ID_DIGITS);
        assert_eq!(parse_id(&a), Ok(Function::AgentQuarantine));
        assert_eq!(
            parse_id(&id(Function::TagEnforcer, "cloudtrail#x")),
            Ok(Function::TagEnforcer)
        );
        for bad in [
            "",
            "agent-quarantine",
            "agent-quarantine-XYZ",
            "agent-quarantine-0123456789a",
            "tagger-0123456789",
        ] {
            let e = parse_id(bad).expect_err(bad);
            assert!(e.contains("not an approval id"), "{e}");
        }
    }

    #[test]
    fn only_what_the_environment_lists_waits_for_a_person() {
        let p = policy();
        assert_eq!(needed(&plan("prod", None), &p), ["isolate"]);
        let revoke = plan("prod", Some(Utc::now()));
        assert!(needed(&revoke, &p).is_empty(), "revoking sessions is not listed");
        assert!(needed(&plan("dev", None), &p).is_empty(), "dev lists nothing");
        let mut nothing = plan("prod", None);
        nothing.actions.clear();
        assert!(
            needed(&nothing, &p).is_empty(),
            "a plan that changes nothing waits for nobody"
        );
        let mut baseline = plan("prod", Some(Utc::now()));
        baseline.rule = Rule::Baseline;
        baseline.actions = vec![Action::EnableEbsEncryption {
            region: Region::parse("us-east-1").unwrap_or_else(|| panic!("region")),
        }];
        assert_eq!(needed(&baseline, &p), ["baseline"], "a rule name takes every change");
    }

    #[test]
    fn each_high_risk_action_belongs_to_one_rule_so_events_are_kept_only_where_needed() {
        for action in APPROVAL_ACTIONS {
            let owners: Vec<Rule> = Rule::ALL.into_iter().filter(|r| risks(*r).contains(&action)).collect();
            assert_eq!(owners.len(), 1, "{action}: {owners:?}");
        }
        let p = policy();
        assert!(possible(Rule::Quarantine, &p) && possible(Rule::Baseline, &p));
        assert!(!possible(Rule::Tags, &p), "prod lists isolate and baseline only");
        let builtin = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Rule::ALL.map(|r| possible(r, &builtin)), [false, false, true]);
    }

    #[test]
    fn a_held_plan_says_how_to_approve_and_an_approval_ends_once() {
        let p = policy();
        let mut held = plan("prod", None);
        let now = Utc::now();
        let approval_id = id(Function::AgentQuarantine, "finding#f#1");
        hold(&mut held, &approval_id, &["isolate".into()], now);
        assert_eq!((held.held, held.mode), (Some(Hold::Pending), Mode::Detect));
        assert!(held.actions.is_empty() && held.withheld.len() == 1);
        assert!(
            held.notes[0].contains(&format!("guardrail approve {approval_id} --reason")),
            "{:?}",
            held.notes
        );
        let approval = Approval::request(
            approval_id,
            Function::AgentQuarantine,
            "finding#f#1",
            Some("f"),
            Value::Null,
            &held,
            vec!["isolate".into()],
            None,
            now,
            deadline(&p, now),
        );
        assert_eq!(approval.deadline, now + chrono::Duration::hours(24));
        assert_eq!(approval.planned.len(), 1);
        assert_eq!(approval.standing(now), State::Pending);
        assert!(approval.closed(now).is_none());
        let late = approval.deadline + chrono::Duration::seconds(1);
        assert_eq!(approval.standing(late), State::Expired);
        assert!(approval.closed(late).is_some_and(|c| c.contains("expired")));
        let rejected = approval.decide(
            State::Rejected,
            Decided {
                by: "arn:aws:iam::1:role/oncall".into(),
                reason: "false positive".into(),
                at: now,
            },
        );
        assert!(
            rejected
                .closed(now)
                .is_some_and(|c| c.contains("rejected by arn:aws:iam::1:role/oncall") && c.contains("false positive"))
        );
    }
}
