//! The blast-radius breaker: the changes a rule made in one account within a sliding window, and
//! what a tripped breaker does to a plan (held back; one high-severity alert asks a person).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

use crate::alert::Severity;
use crate::error::{Error, Result};
use crate::ids::AccountId;
use crate::plan::{Hold, Plan};
use crate::policy::Rule;

/// One plan's changes, to count against its rule's breaker in its account.
#[derive(Clone, Debug)]
pub struct Count<'a> {
    pub rule: Rule,
    pub account: &'a AccountId,
    /// The event's replay key: an event is counted once, however often it is delivered.
    pub event: &'a str,
    pub changes: u32,
    pub now: DateTime<Utc>,
    pub window: Duration,
    pub limit: u32,
}

impl Count<'_> {
    /// The breaker's key in Guardrail's table.
    pub fn key(&self) -> String {
        key(self.rule, self.account)
    }
}

/// The table key of a rule's breaker in an account.
pub fn key(rule: Rule, account: &AccountId) -> String {
    format!("breaker#{}#{account}", rule.name())
}

/// How the breaker tripped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trip {
    pub at: DateTime<Utc>,
    /// The replay key of the event whose plan took the count past the limit.
    pub event: String,
    /// Changes in the window, that plan's included.
    pub count: u32,
}

/// What the breaker says about a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: the plan may act. `count` includes its changes.
    Closed { count: u32 },
    /// This plan's changes took the count past the limit: it is held, and its alert is the one
    /// that asks a person to look.
    Tripped(Trip),
    /// Tripped earlier by another event: the plan is held, and its alert says why.
    Open(Trip),
}

/// One event's changes, when they were counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub at: DateTime<Utc>,
    pub changes: u32,
}

/// A breaker's stored state: the events counted, and the trip if it tripped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// By the event's replay key (or a digest of it).
    pub tallies: BTreeMap<String, Tally>,
    pub trip: Option<Trip>,
    /// Who last reset it, when and why.
    pub reset: Option<String>,
}

impl State {
    /// Changes counted within the window that ends at `now`.
    pub fn counted(&self, now: DateTime<Utc>, window: Duration) -> u32 {
        self.tallies
            .values()
            .filter(|t| t.at > now - window)
            .map(|t| t.changes)
            .fold(0, u32::saturating_add)
    }

    /// Events counted before the window: they no longer count and may be forgotten.
    pub fn stale(&self, now: DateTime<Utc>, window: Duration) -> Vec<String> {
        self.tallies
            .iter()
            .filter(|(_, t)| t.at <= now - window)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The verdict on `count`, from a state that already holds its tally. `Tripped` with no trip in
/// `state` yet: the caller records the trip, and the first to record it is the one that
/// tripped it.
pub fn judge(state: &State, count: &Count<'_>) -> Verdict {
    if let Some(trip) = &state.trip {
        return if trip.event == count.event {
            Verdict::Tripped(trip.clone())
        } else {
            Verdict::Open(trip.clone())
        };
    }
    let n = state.counted(count.now, count.window);
    if n > count.limit {
        Verdict::Tripped(Trip {
            at: count.now,
            event: count.event.to_string(),
            count: n,
        })
    } else {
        Verdict::Closed { count: n }
    }
}

/// The changes a plan makes, as the breaker counts them: each resource its actions change once
/// (a role it denies and whose keys it deactivates is one change), each account-wide step once.
pub fn changes(plan: &Plan) -> u32 {
    let mut seen = BTreeSet::new();
    for action in &plan.actions {
        match action.targets() {
            Some(targets) => seen.extend(targets),
            None => {
                seen.insert(action.id());
            }
        }
    }
    u32::try_from(seen.len()).unwrap_or(u32::MAX)
}

/// Holds a plan back because its rule's breaker is tripped (by it, `now`, or earlier), saying
/// why and how to let the rule act again.
pub fn hold(plan: &mut Plan, verdict: &Verdict, limit: u32, window: Duration) {
    let (trip, now) = match verdict {
        Verdict::Closed { .. } => return,
        Verdict::Tripped(trip) => (trip, true),
        Verdict::Open(trip) => (trip, false),
    };
    let (rule, account) = (plan.rule.name(), plan.account.to_string());
    let window = humantime::format_duration(window.to_std().unwrap_or_default());
    let reset = format!(
        "check what it did (`guardrail audit --account {account} --since {window}`), then `guardrail breaker reset --rule {rule} --account {account} --reason TEXT` lets it act again"
    );
    if now {
        plan.severity = plan.severity.max(Severity::High);
        let why = format!(
            "the blast-radius breaker tripped: the {rule} rule would have made {} changes in account {account} within {window}, past its limit of {limit}; it now only detects there. A person must {reset}",
            trip.count
        );
        plan.hold_back(Hold::Tripped, why);
    } else {
        let why = format!(
            "the blast-radius breaker for the {rule} rule in account {account} is open since {} ({} changes within {window}, limit {limit}): nothing was changed; {reset}",
            trip.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            trip.count
        );
        plan.hold_back(Hold::Open, why);
    }
}

/// Counts plans' changes and says whether their rule may act (DynamoDB in Lambda; memory in
/// unit tests).
pub trait Breaker: Send + Sync {
    /// Counts `count.changes` for its event (once, whatever the deliveries) and returns the
    /// verdict. Open, nothing is counted.
    fn count(&self, count: &Count<'_>) -> impl Future<Output = Result<Verdict>> + Send;
}

/// Breakers held in memory.
#[derive(Debug, Default)]
pub struct MemoryBreaker(Mutex<BTreeMap<String, State>>);

impl MemoryBreaker {
    pub fn state(&self, rule: Rule, account: &AccountId) -> Option<State> {
        self.0.lock().ok()?.get(&key(rule, account)).cloned()
    }
}

impl Breaker for MemoryBreaker {
    async fn count(&self, count: &Count<'_>) -> Result<Verdict> {
        let mut all = self.0.lock().map_err(|_| Error::config("breaker lock poisoned"))?;
        let state = all.entry(count.key()).or_default();
        if let Some(trip) = &state.trip
            && trip.event != count.event
        {
            return Ok(Verdict::Open(trip.clone()));
        }
        state.tallies.entry(count.event.to_string()).or_insert(Tally {
            at: count.now,
            changes: count.changes,
        });
        let verdict = judge(state, count);
        if let Verdict::Tripped(trip) = &verdict {
            state.trip = Some(trip.clone());
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Region;
    use crate::plan::Action;
    use crate::policy::Mode;
    use crate::quarantine::PrincipalRef;

    fn account() -> AccountId {
        AccountId::parse("111122223333").expect("id")
    }

    fn count<'a>(account: &'a AccountId, event: &'a str, changes: u32, now: DateTime<Utc>) -> Count<'a> {
        Count {
            rule: Rule::Tags,
            account,
            event,
            changes,
            now,
            window: Duration::hours(1),
            limit: 3,
        }
    }

    #[tokio::test]
    async fn trips_past_the_limit_not_at_it_and_counts_each_event_once() {
        let (a, b) = (account(), MemoryBreaker::default());
        let now = Utc::now();
        for (i, event) in ["e1", "e2", "e3"].into_iter().enumerate() {
            let v = b.count(&count(&a, event, 1, now)).await.expect("count");
            assert_eq!(v, Verdict::Closed { count: i as u32 + 1 }, "{event}");
        }
        // A repeated delivery of a counted event counts nothing more.
        let again = b.count(&count(&a, "e3", 1, now)).await.expect("count");
        assert_eq!(again, Verdict::Closed { count: 3 });
        // The fourth change trips it; that event's retries see the same trip, others an open one.
        let tripped = b.count(&count(&a, "e4", 1, now)).await.expect("count");
        let Verdict::Tripped(trip) = &tripped else {
            panic!("{tripped:?}")
        };
        assert_eq!((trip.event.as_str(), trip.count), ("e4", 4));
        assert_eq!(b.count(&count(&a, "e4", 1, now)).await.expect("count"), tripped);
        let later = now + Duration::hours(5);
        assert_eq!(
            b.count(&count(&a, "e5", 1, later)).await.expect("count"),
            Verdict::Open(trip.clone()),
            "a trip outlives the window: only a person closes it"
        );
        // Another account and another rule have breakers of their own.
        let other = AccountId::parse("444455556666").expect("id");
        assert_eq!(
            b.count(&count(&other, "e5", 1, now)).await.expect("count"),
            Verdict::Closed { count: 1 }
        );
    }

    #[test]
    fn the_window_slides() {
        let now = Utc::now();
        let mut state = State::default();
        for (event, minutes_ago, changes) in [("old", 61, 5), ("edge", 60, 7), ("new", 59, 2), ("now", 0, 1)] {
            state.tallies.insert(
                event.into(),
                Tally {
                    at: now - Duration::minutes(minutes_ago),
                    changes,
                },
            );
        }
        assert_eq!(state.counted(now, Duration::hours(1)), 3);
        assert_eq!(state.stale(now, Duration::hours(1)), ["edge", "old"]);
        let a = account();
        let c = Count {
            limit: 2,
            ..count(&a, "now", 1, now)
        };
        assert!(matches!(judge(&state, &c), Verdict::Tripped(t) if t.count == 3));
        let c = Count { limit: 3, ..c };
        assert_eq!(judge(&state, &c), Verdict::Closed { count: 3 });
    }

    #[test]
    fn a_resource_counts_once_and_an_account_wide_step_once() {
        let a = account();
        let mut plan = Plan::new(Rule::Quarantine, Mode::Enforce, a.clone(), "a role");
        let role = PrincipalRef::from_arn("arn:aws:iam::111122223333:role/agents/a").expect("role");
        plan.actions.push(Action::Deny {
            principal: role.clone(),
            policy_name: "guardrail-quarantine".into(),
            issued_before: None,
        });
        plan.actions.push(Action::StopInstances {
            region: Region::parse("us-east-1").expect("region"),
            instances: vec!["i-1".into(), "i-2".into()],
        });
        plan.actions.push(Action::SetAccountAlias { alias: "x".into() });
        assert_eq!(changes(&plan), 4);
    }

    #[test]
    fn a_held_plan_says_who_must_do_what() {
        let a = account();
        let mut plan = Plan::new(Rule::Tags, Mode::Fix, a.clone(), "1 EC2 instance");
        plan.actions.push(Action::SetAccountAlias { alias: "x".into() });
        let trip = Trip {
            at: Utc::now(),
            event: "e".into(),
            count: 501,
        };
        let mut tripped = plan.clone();
        hold(&mut tripped, &Verdict::Tripped(trip.clone()), 500, Duration::hours(1));
        assert_eq!((tripped.held, tripped.severity), (Some(Hold::Tripped), Severity::High));
        assert!(tripped.actions.is_empty() && tripped.withheld.len() == 1);
        assert!(
            tripped.notes[0].contains("501 changes")
                && tripped.notes[0].contains("guardrail breaker reset --rule tags --account 111122223333"),
            "{}",
            tripped.notes[0]
        );
        let mut open = plan.clone();
        hold(&mut open, &Verdict::Open(trip), 500, Duration::hours(1));
        assert_eq!((open.held, open.severity), (Some(Hold::Open), Severity::Low));
        assert!(open.notes[0].contains("is open since"), "{}", open.notes[0]);
        let mut closed = plan.clone();
        hold(&mut closed, &Verdict::Closed { count: 1 }, 500, Duration::hours(1));
        assert_eq!((closed.actions.len(), closed.held, closed.notes.len()), (1, None, 0));
    }
}
