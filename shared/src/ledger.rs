//! The audit ledger: one append-only entry per action Guardrail takes or plans, per resource,
//! with the values before and after, who caused it and how it ended.
//!
//! Entries are keyed by what they record, not by when they were written, so writing the same
//! entry twice (a retried or replayed event) stores it once. An applied step has one entry
//! whatever the attempt; each failed attempt has its own.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::ids::clip;
use crate::plan::{Action, Hold, Plan};
use crate::rules::Function;

/// How an entry's action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Made.
    Applied,
    /// Tried and failed (each attempt has its entry).
    Failed,
    /// Not tried: it waits for earlier steps that failed, or an approved plan found nothing
    /// left to do.
    NotRun,
    /// Found and reported; the rule's mode changes nothing.
    Detected,
    /// Planned, and held back by the kill switch.
    Paused,
    /// Planned, and held back by the rule's blast-radius breaker (tripped by this plan or earlier).
    Held,
    /// Found, and left alone under a waiver.
    Waived,
    /// Planned, and waiting for a person's approval.
    Pending,
    /// Planned, waited for approval, and a person rejected it.
    Rejected,
    /// Planned, waited for approval, and nobody approved it in time.
    Expired,
}

impl Outcome {
    pub const ALL: [Outcome; 10] = [
        Outcome::Applied,
        Outcome::Failed,
        Outcome::NotRun,
        Outcome::Detected,
        Outcome::Paused,
        Outcome::Held,
        Outcome::Waived,
        Outcome::Pending,
        Outcome::Rejected,
        Outcome::Expired,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Failed => "failed",
            Outcome::NotRun => "not-run",
            Outcome::Detected => "detected",
            Outcome::Paused => "paused",
            Outcome::Held => "held",
            Outcome::Waived => "waived",
            Outcome::Pending => "pending",
            Outcome::Rejected => "rejected",
            Outcome::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == s)
    }

    /// Whether the entry is the same however many attempts record it.
    fn settled(self) -> bool {
        !matches!(self, Outcome::Failed | Outcome::NotRun)
    }
}

/// Values of a resource by name; `None`: not set.
pub type Values = BTreeMap<String, Option<String>>;

/// One line of the ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub account: String,
    /// When the event happened (a sweep: when it started); entries sort by it.
    pub time: DateTime<Utc>,
    /// When the entry was written.
    pub recorded: DateTime<Utc>,
    pub function: String,
    pub rule: String,
    pub mode: String,
    /// The event's replay key (`cloudtrail#<id>`, `sweep#...`).
    pub event: String,
    /// Who caused it: the event's principal, or the sweep.
    pub cause: String,
    pub resource: String,
    /// The action, in words; empty for a detection.
    pub action: String,
    pub before: Values,
    pub after: Values,
    pub outcome: Outcome,
    /// The error, the reason it was not run, or what was found.
    pub detail: String,
    pub attempt: u32,
}

impl Entry {
    /// The sort key: the event's time, then a digest of what the entry records, so the same
    /// record always gets the same key.
    pub fn key(&self) -> String {
        let mut digest = Sha256::new();
        let attempt = self.attempt.to_string();
        let parts: [&str; 6] = [
            &self.function,
            &self.event,
            &self.action,
            &self.resource,
            self.outcome.name(),
            if self.outcome.settled() { "" } else { &attempt },
        ];
        for part in parts {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        let hex: String = digest.finalize()[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}#{hex}", stamp(self.time))
    }

    /// The day of its time (`2026-11-23`), which indexes entries across accounts.
    pub fn day(&self) -> String {
        self.time.format("%Y-%m-%d").to_string()
    }
}

/// How times are written in keys: sortable as text.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The event or sweep the entries belong to.
pub struct Source<'a> {
    pub function: Function,
    pub event: &'a str,
    pub time: DateTime<Utc>,
    pub recorded: DateTime<Utc>,
    pub attempt: u32,
    /// Why the actions ran, when a person decided it (`approved by ...`): the detail of the
    /// entries of applied actions.
    pub note: Option<&'a str>,
}

/// How one action ended in this attempt.
pub enum Ran {
    Applied,
    Failed(String),
    NotRun(String),
}

/// The ledger entries of a plan: one per resource of each action (with how it ran), of each
/// action held back, of each resource a waiver exempts, and, when the plan changes nothing, of
/// each resource found wrong.
pub fn entries(source: &Source<'_>, plan: &Plan, ran: &[(&Action, Ran)]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (action, how) in ran {
        let (outcome, detail) = match how {
            Ran::Applied => (Outcome::Applied, source.note.unwrap_or_default().to_string()),
            Ran::Failed(e) => (Outcome::Failed, e.clone()),
            Ran::NotRun(why) => (Outcome::NotRun, why.clone()),
        };
        action_entries(source, plan, action, outcome, &detail, &mut out);
    }
    if let Some(hold) = plan.held {
        let detail = plan.notes.first().cloned().unwrap_or_else(|| hold.name().to_string());
        let outcome = match hold {
            Hold::Paused => Outcome::Paused,
            Hold::Tripped | Hold::Open => Outcome::Held,
            Hold::Waived => Outcome::Waived,
            Hold::Pending => Outcome::Pending,
        };
        for action in &plan.withheld {
            action_entries(source, plan, action, outcome, &detail, &mut out);
        }
    }
    for w in &plan.waived {
        out.push(entry(
            source,
            plan,
            w.resource.clone(),
            String::new(),
            Values::new(),
            Values::new(),
            Outcome::Waived,
            format!("{}: {}", w.waiver, w.problems),
        ));
    }
    if ran.is_empty() && plan.withheld.is_empty() {
        for resource in plan.resources() {
            let problems = problems(plan, &resource);
            out.push(entry(
                source,
                plan,
                resource,
                String::new(),
                Values::new(),
                Values::new(),
                Outcome::Detected,
                problems,
            ));
        }
    }
    out
}

fn action_entries(
    source: &Source<'_>,
    plan: &Plan,
    action: &Action,
    outcome: Outcome,
    detail: &str,
    out: &mut Vec<Entry>,
) {
    let id = action.id();
    let recorded: Vec<&crate::plan::Before> = plan.before.iter().filter(|b| b.action == id).collect();
    let targets = action.targets().unwrap_or_else(|| {
        if recorded.is_empty() {
            vec![id.clone()]
        } else {
            recorded.iter().map(|b| b.resource.clone()).collect()
        }
    });
    let after = action.after();
    for resource in targets {
        let before = recorded
            .iter()
            .find(|b| b.resource == resource)
            .map(|b| b.values.clone())
            .unwrap_or_else(|| found(plan, &resource));
        out.push(entry(
            source,
            plan,
            resource,
            action.to_string(),
            before,
            after.clone(),
            outcome,
            detail.to_string(),
        ));
    }
}

/// What the plan found wrong with a resource, in one line.
fn problems(plan: &Plan, resource: &str) -> String {
    let problems: Vec<&str> = plan
        .violations
        .iter()
        .filter(|v| v.resource == resource)
        .map(|v| v.problem.as_str())
        .collect();
    problems.join("; ")
}

/// What the plan found wrong with a resource, when the rule recorded no values.
fn found(plan: &Plan, resource: &str) -> Values {
    let problems = problems(plan, resource);
    if problems.is_empty() {
        Values::new()
    } else {
        Values::from([("state".to_string(), Some(problems))])
    }
}

#[allow(clippy::too_many_arguments)]
fn entry(
    source: &Source<'_>,
    plan: &Plan,
    resource: String,
    action: String,
    before: Values,
    after: Values,
    outcome: Outcome,
    detail: String,
) -> Entry {
    Entry {
        account: plan.account.to_string(),
        time: source.time,
        recorded: source.recorded,
        function: source.function.name().to_string(),
        rule: plan.rule.name().to_string(),
        mode: plan.mode.name().to_string(),
        event: source.event.to_string(),
        cause: clip(&plan.cause, 512),
        resource: clip(&resource, 1024),
        action: clip(&action, 2000),
        before,
        after,
        outcome,
        detail: clip(&detail, 2000),
        attempt: source.attempt,
    }
}

/// Which entries a query wants.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub account: Option<String>,
    pub resource: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only entries of this rule (`tags`, ..., `kill-switch`).
    pub rule: Option<String>,
    /// Only entries with one of these outcomes; empty: any.
    pub outcomes: Vec<Outcome>,
    /// At most this many, newest first.
    pub limit: Option<usize>,
}

impl Query {
    pub fn matches(&self, e: &Entry) -> bool {
        self.account.as_ref().is_none_or(|a| *a == e.account)
            && self.resource.as_ref().is_none_or(|r| *r == e.resource)
            && self.since.is_none_or(|s| e.time >= s)
            && self.rule.as_ref().is_none_or(|r| *r == e.rule)
            && (self.outcomes.is_empty() || self.outcomes.contains(&e.outcome))
    }
}

/// The ledger table's key and index attributes (all strings): partition `account`, sort
/// `entry`; index `by-resource` on `resource`, index `by-day` on `day`, both sorted by `entry`.
pub const ATTRIBUTES: [&str; 4] = ["account", "entry", "resource", "day"];

/// How long entries are kept.
pub fn expires_at(recorded: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    recorded + Duration::days(i64::from(days))
}

/// Where entries go (DynamoDB in Lambda; memory in tests and the offline CLI).
pub trait Ledger: Send + Sync {
    /// Appends the entries, skipping those already there; returns how many were new.
    fn append(&self, entries: &[Entry]) -> impl Future<Output = Result<usize>> + Send;
}

/// Entries kept in memory.
#[derive(Default)]
pub struct MemoryLedger {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl MemoryLedger {
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .map(|e| e.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Ledger for MemoryLedger {
    async fn append(&self, entries: &[Entry]) -> Result<usize> {
        let mut stored = self
            .entries
            .lock()
            .map_err(|_| crate::Error::config("ledger lock poisoned"))?;
        let mut new = 0;
        for e in entries {
            if let std::collections::btree_map::Entry::Vacant(slot) = stored.entry((e.account.clone(), e.key())) {
                slot.insert(e.clone());
                new += 1;
            }
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Region};
    use crate::plan::{Hold, Tag};
    use crate::policy::{Mode, Rule};
    use crate::rules::resources::TagApi;

    fn account() -> AccountId {
        AccountId::parse("111122223333").unwrap_or_else(|| panic!("account"))
    }

    fn tag_plan() -> (Plan, Action) {
        let mut plan = Plan::new(Rule::Tags, Mode::Fix, account(), "1 EC2 instance");
        plan.cause = "arn:aws:iam::111122223333:role/agent-1".into();
        plan.fixable_violation(
            "i-1",
            "tag Environment is \"prod\" but the account is in environment dev",
        );
        let action = Action::Tag {
            api: TagApi::Ec2,
            region: Region::parse("us-east-1").unwrap_or_else(|| panic!("region")),
            resources: vec!["i-1".into(), "i-2".into()],
            set: vec![Tag::new("Environment", "dev")],
            remove: vec!["env".into()],
        };
        plan.actions.push(action.clone());
        plan.record_before([(
            "i-1".to_string(),
            Values::from([
                ("Environment".into(), Some("prod".into())),
                ("env".into(), Some("x".into())),
            ]),
        )]);
        (plan, action)
    }

    fn source(attempt: u32) -> Source<'static> {
        let t = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").map_or_else(|_| Utc::now(), |t| t.to_utc());
        Source {
            function: Function::TagEnforcer,
            event: "cloudtrail#e-1",
            time: t,
            recorded: t + Duration::seconds(attempt.into()),
            attempt,
            note: None,
        }
    }

    #[test]
    fn each_resource_of_an_action_has_its_entry_with_its_own_before_values() {
        let (plan, action) = tag_plan();
        let entries = entries(&source(1), &plan, &[(&action, Ran::Applied)]);
        let resources: Vec<&str> = entries.iter().map(|e| e.resource.as_str()).collect();
        assert_eq!(resources, ["i-1", "i-2"], "{entries:?}");
        let e = &entries[0];
        assert_eq!(e.before.get("Environment"), Some(&Some("prod".to_string())));
        assert_eq!(e.after.get("Environment"), Some(&Some("dev".to_string())));
        assert_eq!(e.after.get("env"), Some(&None), "a removed key is None after");
        assert_eq!(
            (e.outcome, e.rule.as_str(), e.mode.as_str()),
            (Outcome::Applied, "tags", "fix")
        );

        // Without recorded values, a resource gets the problems found as its state.
        assert!(
            entries[1].before.is_empty(),
            "nothing was found on i-2: {:?}",
            entries[1]
        );
        let mut bare = plan.clone();
        bare.before.clear();
        let entries = super::entries(&source(1), &bare, &[(&action, Ran::Applied)]);
        assert!(
            entries[0].before["state"]
                .as_deref()
                .is_some_and(|s| s.contains("prod"))
        );
    }

    #[test]
    fn keys_are_stable_for_settled_outcomes_and_per_attempt_for_failures() {
        let (plan, action) = tag_plan();
        let applied = |n| entries(&source(n), &plan, &[(&action, Ran::Applied)])[0].key();
        assert_eq!(
            applied(1),
            applied(2),
            "an applied step is one entry whatever the attempt"
        );
        let failed = |n| entries(&source(n), &plan, &[(&action, Ran::Failed("throttled".into()))])[0].key();
        assert_ne!(failed(1), failed(2));
        assert_ne!(failed(1), applied(1));
        assert!(applied(1).starts_with("2026-11-23T08:00:00.000Z#"), "{}", applied(1));
    }

    #[test]
    fn held_and_detect_only_plans_are_recorded_as_such() {
        let (mut plan, _) = tag_plan();
        plan.hold_back(Hold::Paused, "Guardrail is paused org-wide".into());
        let held = entries(&source(1), &plan, &[]);
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].outcome, Outcome::Paused);
        assert!(held[0].detail.contains("paused"), "{:?}", held[0]);
        assert_eq!(held[0].after.get("Environment"), Some(&Some("dev".to_string())));

        let (mut plan, _) = tag_plan();
        plan.actions.clear();
        plan.mode = Mode::Detect;
        let detected = entries(&source(1), &plan, &[]);
        assert_eq!(detected.len(), 1);
        assert_eq!(
            (detected[0].outcome, detected[0].action.as_str()),
            (Outcome::Detected, "")
        );
        assert!(detected[0].detail.contains("prod"));
    }

    #[tokio::test]
    async fn appending_the_same_entries_twice_stores_them_once() {
        let (plan, action) = tag_plan();
        let ledger = MemoryLedger::default();
        let batch = entries(&source(1), &plan, &[(&action, Ran::Applied)]);
        assert_eq!(ledger.append(&batch).await.ok(), Some(2));
        let again = entries(&source(2), &plan, &[(&action, Ran::Applied)]);
        assert_eq!(ledger.append(&again).await.ok(), Some(0));
        assert_eq!(ledger.entries().len(), 2);
    }

    #[test]
    fn queries_filter_by_account_resource_and_time() {
        let (plan, action) = tag_plan();
        let e = entries(&source(1), &plan, &[(&action, Ran::Applied)]).remove(0);
        assert!(Query::default().matches(&e));
        let q = |account: Option<&str>, resource: Option<&str>, since: Option<DateTime<Utc>>| Query {
            account: account.map(str::to_string),
            resource: resource.map(str::to_string),
            since,
            ..Query::default()
        };
        assert!(q(Some("111122223333"), Some("i-1"), Some(e.time)).matches(&e));
        assert!(!q(Some("444455556666"), None, None).matches(&e));
        assert!(!q(None, Some("i-2"), None).matches(&e));
        assert!(!q(None, None, Some(e.time + Duration::seconds(1))).matches(&e));
        let by = |rule: Option<&str>, outcomes: Vec<Outcome>| Query {
            rule: rule.map(str::to_string),
            outcomes,
            ..Query::default()
        };
        assert!(by(Some("tags"), vec![Outcome::Pending, Outcome::Applied]).matches(&e));
        assert!(!by(Some("quarantine"), Vec::new()).matches(&e));
        assert!(!by(None, vec![Outcome::Pending]).matches(&e));
    }
}
