//! One invocation, end to end: decode → gate → facts → plan → claim → apply → notify → record.
//!
//! Generic over the ports, so the Lambda functions (AWS adapters), the CLI and unit tests (fakes)
//! run the same path.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::alert::{Alert, Notifier, Severity};
use crate::apply::{Actuator, Session};
use crate::approval::{self, Approval, Approvals};
use crate::breaker::{self, Breaker};
use crate::error::{Error, Result};
use crate::event::{self, Event, Rejection};
use crate::facts::{Facts, Membership, PrincipalFacts, RateKey, Remembered};
use crate::gate;
use crate::ids::clip;
use crate::ledger::{self, Ledger, Ran};
use crate::pause::{Pause, Switch};
use crate::plan::{Decision, Ignored, Plan};
use crate::policy::Policy;
use crate::quarantine::PrincipalRef;
use crate::replay::{Claim, ClaimRequest, ReplayStore};
use crate::rules::quarantine::{self, Suspect};
use crate::rules::{Function, Known, Needs};

/// Deliveries of one event that may fail before its failure is final (Lambda's async invoke
/// makes one attempt and two retries).
pub const MAX_ATTEMPTS: u32 = 3;
/// How long replay records outlive the freshness window, so a replay is always caught by one of
/// the two.
const RECORD_MARGIN: Duration = Duration::days(1);

/// The adapters a pipeline runs on.
pub trait Ports {
    type Store: ReplayStore;
    type Notifier: Notifier;
    type Facts: Facts;
    type Actuator: Actuator;
    type Switch: Switch;
    type Ledger: Ledger;
    type Breaker: Breaker;
    type Approvals: Approvals;
}

/// One function wired to its ports.
pub struct Pipeline<P: Ports> {
    pub function: Function,
    pub policy: Arc<Policy>,
    pub store: P::Store,
    pub notifier: P::Notifier,
    pub facts: P::Facts,
    pub actuator: P::Actuator,
    /// The kill switch, asked before any plan that would change something.
    pub switch: P::Switch,
    /// The audit ledger: every action taken or planned.
    pub ledger: P::Ledger,
    /// The blast-radius breaker, which counts the changes of every plan allowed to act.
    pub breaker: P::Breaker,
    /// Where plans that wait for a person's approval are kept.
    pub approvals: P::Approvals,
}

/// How one plan is applied and recorded: under which claim, for which event, and why.
struct Run<'a> {
    /// The event's replay key (the ledger's event).
    event_key: &'a str,
    /// The replay guard's key of this run: the event's, or an approval's.
    claim: String,
    /// The approval to ask for, when the plan waits for a person.
    request: Option<Approval>,
    /// Who approved the plan and why, for the ledger.
    approved: Option<String>,
}

/// A claim this delivery holds.
struct Claimed {
    attempt: u32,
    done: Vec<String>,
    failure_alerted: bool,
}

/// The invocation being handled.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Unique per delivery: the owner of replay claims.
    pub request_id: String,
    pub now: DateTime<Utc>,
    /// When the invocation times out; claims are leased until then.
    pub deadline: DateTime<Utc>,
}

/// What happened to each event of an invocation.
#[derive(Debug, Serialize)]
pub struct Report {
    pub function: Function,
    pub events: Vec<EventReport>,
    /// The first error, when some event failed: the invocation then fails so Lambda retries it
    /// (events already completed are skipped by the replay guard).
    #[serde(skip)]
    pub error: Option<Error>,
}

#[derive(Debug, Serialize)]
pub struct EventReport {
    /// `api-call ec2:RunInstances`, ...; absent when the input could not be decoded.
    pub event: Option<String>,
    pub id: Option<String>,
    pub account: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The end of one event's path.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Unusable input: not retried.
    Rejected { code: &'static str, reason: String },
    /// Nothing to do.
    Ignored { reason: String },
    /// Already handled by an earlier delivery.
    Duplicate { summary: String },
    /// Another delivery is handling it right now.
    InProgress,
    /// Violations alerted, nothing changed (detect mode, or nothing could be changed).
    Detected { violations: usize },
    /// Violations fixed and alerted.
    Applied { actions: Vec<String> },
    /// Only resources a waiver exempts: recorded in the ledger, not alerted.
    Waived { resources: usize },
    /// The plan waits for a person's approval (`guardrail approve <approval>`).
    Pending { approval: String },
    /// Work failed: recorded, alerted when final, retried by Lambda.
    Failed { error_type: &'static str, error: String },
    /// Part of a sweep done; a follow-up invocation carries on with the rest.
    Continued { done: usize, total: usize },
    /// A sweep finished and sent its summary.
    Swept { summary: String },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Rejected { .. } => "rejected",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::InProgress => "in-progress",
            Outcome::Detected { .. } => "detected",
            Outcome::Applied { .. } => "applied",
            Outcome::Waived { .. } => "waived",
            Outcome::Pending { .. } => "pending",
            Outcome::Failed { .. } => "failed",
            Outcome::Continued { .. } => "continued",
            Outcome::Swept { .. } => "swept",
        }
    }
}

impl Report {
    /// `Err` when an event failed, for the Lambda runtime to retry the invocation.
    pub fn into_result(self) -> Result<Value> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(serde_json::to_value(&self.events).unwrap_or(Value::Null)),
        }
    }
}

pub(crate) fn rejected(r: &Rejection) -> Outcome {
    Outcome::Rejected {
        code: r.code(),
        reason: r.to_string(),
    }
}

fn ignored(reason: &Ignored) -> Outcome {
    Outcome::Ignored {
        reason: reason.to_string(),
    }
}

/// The decision path shared by the functions and the offline CLI: gate, the function's interest,
/// the facts it needs, then the pure rules. Reads only; writes nothing.
pub async fn decide(
    function: Function,
    policy: &Policy,
    facts: &impl Facts,
    session: &Session,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Decision, Rejection>> {
    match gate::check(function, event, policy, now) {
        Err(r) => return Ok(Err(r)),
        Ok(Some(reason)) => return Ok(Ok(Decision::Ignore { reason })),
        Ok(None) => {}
    }
    if !function.handles(event) {
        return Ok(Ok(crate::rules::not_handled(event)));
    }
    let known = match function.needs(event, policy) {
        Err(r) => return Ok(Err(r)),
        Ok(Needs::Nothing) => Known::Nothing,
        Ok(Needs::Placement(account)) => match facts.membership(&account).await? {
            Membership::Member(p) => Known::Placement(p),
            Membership::Outsider => {
                return Ok(Err(Rejection::NotInOrganization {
                    account: account.to_string(),
                }));
            }
        },
        Ok(Needs::Account { account, scope }) => match facts.account(session, &account, &scope, policy).await? {
            Some(a) => Known::Account(Box::new(a)),
            None => {
                return Ok(Err(Rejection::NotInOrganization {
                    account: account.to_string(),
                }));
            }
        },
        Ok(Needs::Principal(principal)) => match principal_facts(facts, session, &principal).await? {
            Ok(p) => Known::Suspect(Box::new(Suspect {
                principal: Some(p),
                ..Suspect::default()
            })),
            Err(r) => return Ok(Err(r)),
        },
        Ok(Needs::Rate(key)) => {
            let mut suspect = Suspect::default();
            match counted(facts, session, policy, key, &mut suspect).await? {
                Some(Err(r)) => return Ok(Err(r)),
                Some(Ok(reason)) => return Ok(Ok(Decision::Ignore { reason })),
                None => Known::Suspect(Box::new(suspect)),
            }
        }
        Ok(Needs::Created { principal, rate }) => {
            let mut suspect = Suspect::default();
            if let Some(key) = rate
                && let Some(Err(r)) = counted(facts, session, policy, key, &mut suspect).await?
            {
                return Ok(Err(r));
            }
            let placement = match facts.membership(&principal.account).await? {
                Membership::Member(p) => p,
                Membership::Outsider => {
                    return Ok(Err(Rejection::NotInOrganization {
                        account: principal.account.to_string(),
                    }));
                }
            };
            // The created principal is read only when its name is to be contained and the
            // caller itself is not.
            let mut created = None;
            if suspect.principal.is_none()
                && let Event::ApiCall(call) = event
                && quarantine::misnamed(call, &placement, policy).is_ok()
            {
                match principal_facts(facts, session, &principal).await? {
                    Ok(p) => created = Some(p),
                    Err(r) => return Ok(Err(r)),
                }
            }
            suspect.created = Some((placement, created));
            Known::Suspect(Box::new(suspect))
        }
        Ok(Needs::AlarmRole) => {
            let mut suspect = Suspect::default();
            if let Event::Alarm(alarm) = event {
                let tag = facts.alarm_tag(session, alarm, &policy.quarantine.alarm_tag).await?;
                match quarantine::alarm_suspect(alarm, tag.as_deref(), policy) {
                    Err(problem) => suspect.problem = Some(problem),
                    Ok(principal) => match principal_facts(facts, session, &principal).await? {
                        Ok(p) => suspect.principal = Some(p),
                        Err(r) => return Ok(Err(r)),
                    },
                }
            }
            Known::Suspect(Box::new(suspect))
        }
    };
    Ok(function.decide(event, &known, policy))
}

/// Counts an agent's call into `suspect`, with the caller's facts when it broke its budget.
/// `Some(Ok)`: not an agent after all (by its tags); `Some(Err)`: the event is rejected.
async fn counted(
    facts: &impl Facts,
    session: &Session,
    policy: &Policy,
    key: RateKey,
    suspect: &mut Suspect,
) -> Result<Option<std::result::Result<Ignored, Rejection>>> {
    if key.by_tag
        && let Some(principal) = PrincipalRef::from_arn(&key.principal_arn)
    {
        let tags = facts.principal_tags(session, &principal).await?;
        if let Some(reason) = quarantine::untagged_caller(&key, tags.as_deref(), policy) {
            return Ok(Some(Ok(reason)));
        }
    }
    let count = facts.count_call(&key).await?;
    if quarantine::over_budget(&key, &count, policy).is_some()
        && let Some(principal) = PrincipalRef::from_arn(&key.principal_arn)
    {
        match principal_facts(facts, session, &principal).await? {
            Ok(p) => suspect.principal = Some(p),
            Err(r) => return Ok(Some(Err(r))),
        }
    }
    suspect.rate = Some((key, count));
    Ok(None)
}

/// A principal's facts, or the event's rejection when its account is not in the organization.
async fn principal_facts(
    facts: &impl Facts,
    session: &Session,
    principal: &PrincipalRef,
) -> Result<std::result::Result<PrincipalFacts, Rejection>> {
    Ok(facts
        .principal(session, principal)
        .await?
        .ok_or_else(|| Rejection::NotInOrganization {
            account: principal.account.to_string(),
        }))
}

impl<P: Ports> Pipeline<P> {
    /// Handles every event in `input` (one for EventBridge; many for log files and batches).
    pub async fn handle(&self, input: Value, invocation: &Invocation) -> Report {
        let mut report = Report {
            function: self.function,
            events: Vec::new(),
            error: None,
        };
        // The events as they came are kept only when some plan may wait for approval.
        let keep = approval::possible(self.function.rule(), &self.policy);
        for item in event::items(input) {
            let raw = match (&item, keep) {
                (Ok(item), true) => Some(item.value.clone()),
                _ => None,
            };
            let decoded = item.and_then(event::decode_item);
            let (event_report, error) = match decoded {
                Err(r) => (
                    EventReport {
                        event: None,
                        id: None,
                        account: None,
                        outcome: rejected(&r),
                    },
                    None,
                ),
                Ok(event) => {
                    // Boxed: the per-event future is deep, and boxing keeps the runtime's future small.
                    let (outcome, error) = match Box::pin(self.handle_event(&event, raw, invocation)).await {
                        Ok(outcome) => (outcome, None),
                        Err(e) => (
                            Outcome::Failed {
                                error_type: e.error_type(),
                                error: e.to_string(),
                            },
                            Some(e),
                        ),
                    };
                    (
                        EventReport {
                            event: Some(event.label()),
                            id: event.id().map(str::to_string),
                            account: event.account().map(ToString::to_string),
                            outcome,
                        },
                        error,
                    )
                }
            };
            info!(
                function = %self.function,
                event = event_report.event.as_deref().unwrap_or("undecodable"),
                event_id = event_report.id.as_deref().unwrap_or("-"),
                account = event_report.account.as_deref().unwrap_or("-"),
                outcome = event_report.outcome.name(),
                detail = ?event_report.outcome,
                "event handled"
            );
            report.events.push(event_report);
            if report.error.is_none() {
                report.error = error;
            }
        }
        report
    }

    /// Everything up to the decision: no writes happen here.
    pub async fn decide(
        &self,
        session: &Session,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Decision, Rejection>> {
        decide(self.function, &self.policy, &self.facts, session, event, now).await
    }

    async fn handle_event(&self, event: &Event, raw: Option<Value>, invocation: &Invocation) -> Result<Outcome> {
        let session = Session::new(self.function.name(), event.id().unwrap_or("event"));
        let facts = Remembered::new(&self.facts, None);
        let decision = match decide(self.function, &self.policy, &facts, &session, event, invocation.now).await {
            Ok(d) => d,
            Err(e) => return self.fail_before_plan(event, e, invocation).await,
        };
        match decision {
            Err(r) => Ok(rejected(&r)),
            Ok(Decision::Ignore { reason }) => Ok(ignored(&reason)),
            Ok(Decision::Act { mut plan }) => match event.replay_key() {
                Err(r) => Ok(rejected(&r)),
                Ok(key) => {
                    if let Err(e) = self.hold_if_paused(&mut plan).await {
                        return self.fail_before_plan(event, e, invocation).await;
                    }
                    let request = self.ask_approval(&mut plan, event, raw, &key, facts.count(), invocation.now);
                    if request.is_none()
                        && let Err(e) = self.count_changes(&mut plan, &key, invocation.now).await
                    {
                        return self.fail_before_plan(event, e, invocation).await;
                    }
                    let run = Run {
                        event_key: &key,
                        claim: format!("{}#{key}", self.function),
                        request,
                        approved: None,
                    };
                    self.act(event, &plan, run, &session, invocation).await
                }
            },
        }
    }

    /// Holds a plan that would change something while the kill switch says paused.
    async fn hold_if_paused(&self, plan: &mut Plan) -> Result<()> {
        if plan.actions.is_empty() {
            return Ok(());
        }
        if let Pause::Paused { detail } = self.switch.state().await? {
            crate::pause::hold(plan, &detail);
        }
        Ok(())
    }

    /// Holds a plan whose environment makes it wait for a person, and returns the approval to
    /// ask for (`None`: the plan may act, or its event is too large to keep).
    fn ask_approval(
        &self,
        plan: &mut Plan,
        event: &Event,
        raw: Option<Value>,
        key: &str,
        count: Option<crate::facts::RateCount>,
        now: DateTime<Utc>,
    ) -> Option<Approval> {
        let needs = approval::needed(plan, &self.policy);
        if needs.is_empty() {
            return None;
        }
        let raw = raw.unwrap_or(Value::Null);
        let bytes = serde_json::to_vec(&raw).map_or(usize::MAX, |v| v.len());
        if raw.is_null() || bytes > approval::MAX_EVENT_BYTES {
            approval::too_large(plan, &needs, bytes);
            return None;
        }
        let id = approval::id(self.function, key);
        let deadline = approval::deadline(&self.policy, now);
        approval::hold(plan, &id, &needs, deadline);
        Some(Approval::request(
            id,
            self.function,
            key,
            event.id(),
            raw,
            plan,
            needs,
            count,
            now,
            deadline,
        ))
    }

    /// An approval's event decided on again with the accounts' state now: its rate count as it
    /// was, its freshness as when it came. Reads only: `guardrail approve --dry-run` shows it.
    pub async fn redecide(&self, approval: &Approval) -> Result<(Event, std::result::Result<Decision, Rejection>)> {
        let mut events = event::decode_value(approval.event.clone());
        let event = match (events.pop(), events.is_empty()) {
            (Some(Ok(e)), true) => e,
            (Some(Err(r)), true) => {
                return Err(Error::Corrupt {
                    what: "approval",
                    detail: format!("its event no longer decodes: {r}"),
                });
            }
            _ => {
                return Err(Error::Corrupt {
                    what: "approval",
                    detail: "it does not hold exactly one event".into(),
                });
            }
        };
        let session = Session::new(self.function.name(), event.id().unwrap_or("approval"));
        let facts = Remembered::new(&self.facts, approval.count);
        let decision = decide(
            self.function,
            &self.policy,
            &facts,
            &session,
            &event,
            approval.requested_at,
        )
        .await?;
        Ok((event, decision))
    }

    /// Applies the plan of an approved approval ([`Pipeline::redecide`]), under a claim of the
    /// approval's own, so approving twice acts once. The kill switch still holds it back; the
    /// breaker does not count a person's decision.
    pub async fn run_approved(&self, approval: &Approval, invocation: &Invocation) -> Result<Outcome> {
        let decided = approval.decided.as_ref().ok_or_else(|| Error::Corrupt {
            what: "approval",
            detail: "it is not approved".into(),
        })?;
        let (event, decision) = self.redecide(approval).await?;
        let mut plan = match decision {
            Err(r) => return Ok(rejected(&r)),
            Ok(Decision::Ignore { reason }) => return Ok(ignored(&reason)),
            Ok(Decision::Act { plan }) => plan,
        };
        let session = Session::new(self.function.name(), event.id().unwrap_or("approval"));
        if let Pause::Paused { detail } = self.switch.state().await? {
            return Err(Error::Aws {
                service: "guardrail",
                operation: "approve",
                code: "Paused".into(),
                message: format!(
                    "Guardrail is paused org-wide ({detail}): approve again once `guardrail resume` has run"
                ),
                transient: true,
            });
        }
        let note = format!(
            "approved by {} at {}: {} (approval {})",
            decided.by,
            decided.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            clip(&decided.reason, 300),
            approval.id
        );
        plan.notes.insert(0, note.clone());
        let run = Run {
            event_key: &approval.event_key,
            claim: format!("{}#approved#{}", self.function, approval.id),
            request: None,
            approved: Some(note),
        };
        self.act(&event, &plan, run, &session, invocation).await
    }

    /// Counts a plan's changes against its rule's breaker in its account, and holds the plan
    /// back when the breaker is tripped.
    async fn count_changes(&self, plan: &mut Plan, event_key: &str, now: DateTime<Utc>) -> Result<()> {
        let limits = &self.policy.safety.breaker;
        let Some(limit) = limits.limit(plan.rule).filter(|_| !plan.actions.is_empty()) else {
            return Ok(());
        };
        let window = Duration::from_std(limits.window).unwrap_or(Duration::hours(1));
        let account = plan.account.clone();
        let verdict = self
            .breaker
            .count(&breaker::Count {
                rule: plan.rule,
                account: &account,
                event: event_key,
                changes: breaker::changes(plan),
                now,
                window,
                limit,
            })
            .await?;
        if let breaker::Verdict::Tripped(trip) = &verdict {
            warn!(rule = plan.rule.name(), account = %account, changes = trip.count, limit, "blast-radius breaker tripped");
        }
        breaker::hold(plan, &verdict, limit, window);
        Ok(())
    }

    /// Claims the event; `Err` holds the outcome when another delivery has it or had it.
    async fn claim(
        &self,
        event: &Event,
        key: &str,
        invocation: &Invocation,
    ) -> Result<std::result::Result<Claimed, Outcome>> {
        let now = invocation.now;
        let event_time = event.time().unwrap_or(now);
        let freshness = Duration::from_std(self.policy.freshness).unwrap_or(Duration::hours(1));
        let claim = self
            .store
            .claim(&ClaimRequest {
                key,
                owner: &invocation.request_id,
                now,
                lease_until: invocation.deadline.max(now + Duration::seconds(30)),
                expires_at: event_time.max(now) + freshness + RECORD_MARGIN,
            })
            .await?;
        Ok(match claim {
            Claim::Completed { summary } => Err(Outcome::Duplicate { summary }),
            Claim::InProgress { .. } => Err(Outcome::InProgress),
            Claim::Claimed {
                attempt,
                done,
                failure_alerted,
            } => Ok(Claimed {
                attempt,
                done,
                failure_alerted,
            }),
        })
    }

    /// Records a failed attempt, alerting once when the failure is final (permanent, or out
    /// of retries), and fails the invocation so Lambda retries it.
    async fn record_failure(
        &self,
        key: &str,
        owner: &str,
        error: Error,
        done: &[String],
        claimed: &Claimed,
        alert: impl FnOnce() -> Alert,
    ) -> Result<Outcome> {
        let final_failure = !error.is_transient() || claimed.attempt >= MAX_ATTEMPTS;
        let alert_now = final_failure && !claimed.failure_alerted;
        if alert_now {
            let mut alert = alert();
            alert.done.push(crate::alert::final_advice(&error));
            if let Err(e) = self.notifier.publish(&alert).await {
                warn!(error = %e, "could not send the failure alert");
            }
        }
        self.store.fail(key, owner, &error.to_string(), done, alert_now).await?;
        Err(error)
    }

    /// Reading the facts failed: the event is claimed anyway so its attempts are counted and
    /// its failure is alerted once, when final.
    async fn fail_before_plan(&self, event: &Event, error: Error, invocation: &Invocation) -> Result<Outcome> {
        let Ok(key) = event.replay_key() else {
            return Err(error);
        };
        let key = format!("{}#{key}", self.function);
        let claimed = match self.claim(event, &key, invocation).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(outcome),
        };
        let alert = Alert::for_error(self.function, event, &error, claimed.attempt, invocation.now);
        self.record_failure(&key, &invocation.request_id, error, &claimed.done, &claimed, || alert)
            .await
    }

    async fn act(
        &self,
        event: &Event,
        plan: &Plan,
        run: Run<'_>,
        session: &Session,
        invocation: &Invocation,
    ) -> Result<Outcome> {
        let event_key = run.event_key;
        let key = run.claim.as_str();
        let owner = invocation.request_id.as_str();
        let event_time = event.time().unwrap_or(invocation.now);
        let claimed = match self.claim(event, key, invocation).await? {
            Ok(c) => c,
            Err(outcome) => return Ok(outcome),
        };
        let mut done = claimed.done.clone();

        let mut failures: Vec<(String, Error)> = Vec::new();
        // Steps done by an earlier attempt are in the ledger already, unless writing it failed:
        // recording them again stores nothing twice.
        let mut ran: Vec<(&crate::plan::Action, Ran)> = Vec::new();
        let (earlier, remaining): (Vec<_>, Vec<_>) = plan.actions.iter().partition(|a| done.contains(&a.id()));
        ran.extend(earlier.into_iter().map(|a| (a, Ran::Applied)));
        for (i, action) in remaining.iter().enumerate() {
            let held = !plan.unchecked.is_empty() || failures.iter().any(|(_, e)| !action.runs_despite(e));
            if action.needs_all_before() && held {
                let message = "not run: it runs once every step before it has succeeded";
                ran.push((action, Ran::NotRun(message.into())));
                failures.push((
                    action.to_string(),
                    Error::Aws {
                        service: "guardrail",
                        operation: "apply",
                        code: "WaitingForEarlierSteps".into(),
                        message: message.into(),
                        transient: true,
                    },
                ));
                continue;
            }
            match self.actuator.apply(session, &plan.account, action).await {
                Ok(()) => {
                    done.push(action.id());
                    ran.push((action, Ran::Applied));
                    // The last step's completion is saved with the final record.
                    if i + 1 < remaining.len() {
                        self.store.progress(key, owner, &done).await?;
                    }
                }
                Err(e) => {
                    warn!(function = %self.function, action = %action, error = %e, "action failed");
                    ran.push((action, Ran::Failed(e.to_string())));
                    failures.push((action.to_string(), e));
                }
            }
        }
        let source = ledger::Source {
            function: self.function,
            event: event_key,
            time: event_time,
            recorded: invocation.now,
            attempt: claimed.attempt,
            note: run.approved.as_deref(),
        };
        let entries = ledger::entries(&source, plan, &ran);
        let mut requested = None;
        let asked = run.request.is_some();
        if let Some(mut approval) = run.request {
            approval.keep_entries(&entries);
            match self.approvals.request(&approval).await {
                Ok(()) => requested = Some(approval.id),
                Err(e) => {
                    warn!(function = %self.function, error = %e, "could not keep the approval");
                    failures.push((format!("keep approval {}", approval.id), e));
                }
            }
        }
        let mut ledger_failed = false;
        if let Err(e) = self.ledger.append(&entries).await {
            warn!(function = %self.function, error = %e, "could not write the audit ledger");
            ledger_failed = true;
            failures.push((format!("record {} audit ledger entries", entries.len()), e));
        }
        for u in &plan.unchecked {
            failures.push((
                format!("check {}", u.check),
                Error::Aws {
                    service: "read",
                    operation: "current state",
                    code: "Unreadable".into(),
                    message: u.error.clone(),
                    transient: u.transient,
                },
            ));
        }

        if failures.is_empty() {
            let applied = plan.mode.fixes() && !plan.actions.is_empty();
            let alert = Alert::for_plan(self.function, plan, applied, event.id(), event_time);
            // A plan of waived resources only is for the ledger: someone chose to exempt them.
            let waived_only = plan.violations.is_empty() && !plan.waived.is_empty();
            if !waived_only && let Err(e) = self.notifier.publish(&alert).await {
                self.store.fail(key, owner, &e.to_string(), &done, false).await?;
                return Err(e);
            }
            if let Some(placement) = &plan.placement
                && let Err(e) = self.facts.remember(placement).await
            {
                warn!(error = %e, account = %placement.account, "could not record the account's placement");
            }
            let summary = format!("{}: {}", alert.action, alert.done.join("; "));
            if !self
                .store
                .complete(key, owner, &crate::ids::clip(&summary, 1000), &done)
                .await?
            {
                warn!(
                    key,
                    "claim was lost before completion; another delivery finished the event"
                );
            }
            return Ok(if let Some(approval) = requested {
                Outcome::Pending { approval }
            } else if waived_only {
                Outcome::Waived {
                    resources: plan.waived.len(),
                }
            } else if applied {
                Outcome::Applied {
                    actions: plan.actions.iter().map(ToString::to_string).collect(),
                }
            } else {
                Outcome::Detected {
                    violations: plan.violations.len(),
                }
            });
        }

        let total = plan.actions.len() + plan.unchecked.len() + usize::from(ledger_failed) + usize::from(asked);
        let failed = failures.len();
        // Written down before the failures are turned into the event's error.
        let failed_lines: Vec<String> = failures.iter().map(|(a, e)| format!("FAILED: {a}: {e}")).collect();
        let error = if failed == 1 && total == 1 {
            failures.remove(0).1
        } else {
            let transient = failures.iter().all(|(_, e)| e.is_transient());
            let first = failures[0].1.to_string();
            if transient {
                Error::Partial { failed, total, first }
            } else {
                Error::Aws {
                    service: "guardrail",
                    operation: "apply",
                    code: "PartialPermanentFailure".into(),
                    message: format!("{failed} of {total} steps failed; first: {first}"),
                    transient: false,
                }
            }
        };
        self.record_failure(key, owner, error, &done, &claimed, || {
            failure_alert(self.function, plan, &done, failed_lines, event, event_time)
        })
        .await
    }
}

fn failure_alert(
    function: Function,
    plan: &Plan,
    done: &[String],
    failed: Vec<String>,
    event: &Event,
    time: DateTime<Utc>,
) -> Alert {
    let mut alert = Alert::for_plan(function, plan, false, event.id(), time);
    alert.severity = Severity::High;
    alert.action = "failed".into();
    alert.title = format!("could not finish {}", plan.subject);
    alert.done = plan
        .actions
        .iter()
        .filter(|a| done.contains(&a.id()))
        .map(|a| format!("done: {a}"))
        .chain(failed)
        .collect();
    alert
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::apply::RecordingActuator;
    use crate::facts::StaticFacts;
    use crate::ids::AccountId;
    use crate::plan::Action;
    use crate::replay::{MemoryReplayStore, State};
    use crate::rules::resources::TagApi;

    /// Records alerts instead of sending them.
    #[derive(Default)]
    struct Alerts(Mutex<Vec<Alert>>);

    impl Notifier for Alerts {
        async fn publish(&self, alert: &Alert) -> Result<()> {
            self.0
                .lock()
                .map(|mut a| a.push(alert.clone()))
                .map_err(|_| Error::config("poisoned"))
        }
    }

    /// Fails every tagging call of the `broken` kind with a throttling error, and records the rest.
    struct Flaky {
        broken: Mutex<Option<TagApi>>,
        inner: RecordingActuator,
    }

    impl Actuator for Flaky {
        async fn apply(&self, session: &Session, account: &AccountId, action: &Action) -> Result<()> {
            let broken = self.broken.lock().ok().and_then(|b| *b);
            if broken.is_some_and(|b| matches!(action, Action::Tag { api, .. } if *api == b)) {
                return Err(Error::Aws {
                    service: "ec2",
                    operation: "CreateTags",
                    code: "RequestLimitExceeded".into(),
                    message: "slow down".into(),
                    transient: true,
                });
            }
            self.inner.apply(session, account, action).await
        }
    }

    struct Fakes;

    impl Ports for Fakes {
        type Store = MemoryReplayStore;
        type Notifier = Alerts;
        type Facts = StaticFacts;
        type Actuator = Flaky;
        type Switch = Pause;
        type Ledger = crate::ledger::MemoryLedger;
        type Breaker = crate::breaker::MemoryBreaker;
        type Approvals = crate::approval::MemoryApprovals;
    }

    fn pipeline(broken: Option<TagApi>) -> Pipeline<Fakes> {
        pipeline_with(broken, Policy::builtin().expect("policy"))
    }

    fn pipeline_with(broken: Option<TagApi>, policy: Policy) -> Pipeline<Fakes> {
        Pipeline {
            function: Function::TagEnforcer,
            policy: Arc::new(policy),
            store: MemoryReplayStore::default(),
            notifier: Alerts::default(),
            facts: StaticFacts {
                default_environment: Some("dev".into()),
                ..StaticFacts::default()
            },
            actuator: Flaky {
                broken: Mutex::new(broken),
                inner: RecordingActuator::default(),
            },
            switch: Pause::Active,
            ledger: crate::ledger::MemoryLedger::default(),
            breaker: crate::breaker::MemoryBreaker::default(),
            approvals: crate::approval::MemoryApprovals::default(),
        }
    }

    /// Two instances needing the same change (one mislabelled prod, one untagged) and their
    /// volumes, requested with Environment, another: two actions.
    fn event(now: DateTime<Utc>) -> Value {
        json!({
            "eventID": "e-1", "eventTime": now.to_rfc3339(), "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances", "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"},
            "requestParameters": {"tagSpecificationSet": {"items": [
                {"resourceType": "volume", "tags": [{"key": "Environment", "value": "dev"}]}
            ]}},
            "responseElements": {"instancesSet": {"items": [
                {"instanceId": "i-00000000000000001", "tagSet": {"items": [{"key": "Environment", "value": "prod"}]}},
                {"instanceId": "i-00000000000000002"}
            ]}}
        })
    }

    fn invocation(n: u32, now: DateTime<Utc>) -> Invocation {
        Invocation {
            request_id: format!("delivery-{n}"),
            now,
            deadline: now + Duration::seconds(30),
        }
    }

    #[tokio::test]
    async fn transient_failures_alert_once_when_final_and_retries_resume() {
        let now = Utc::now();
        let p = pipeline(Some(TagApi::Ec2VolumesOf));
        for attempt in 1..=MAX_ATTEMPTS {
            let report = p.handle(event(now), &invocation(attempt, now)).await;
            let error = report
                .error
                .unwrap_or_else(|| panic!("attempt {attempt} fails: {:?}", report.events));
            assert_eq!(error.error_type(), "Guardrail.Partial", "{error}");
            let alerts = p.notifier.0.lock().map(|a| a.len()).unwrap_or_default();
            let want = usize::from(attempt == MAX_ATTEMPTS);
            assert_eq!(alerts, want, "attempt {attempt}: alert only when retries are exhausted");
        }
        let alert = p
            .notifier
            .0
            .lock()
            .ok()
            .and_then(|a| a.first().cloned())
            .expect("failure alert");
        assert_eq!(
            (alert.action.as_str(), alert.severity),
            ("failed", crate::alert::Severity::High)
        );
        let set = "set Environment=dev, Owner=arn:aws:iam::111122223333:user/bob on";
        assert!(
            alert
                .done
                .contains(&format!("done: {set} i-00000000000000001, i-00000000000000002")),
            "{:?}",
            alert.done
        );
        assert!(
            alert.done.iter().any(|d| d.starts_with(
                "FAILED: set Owner=arn:aws:iam::111122223333:user/bob on the volumes of i-00000000000000001, i-00000000000000002"
            )),
            "{:?}",
            alert.done
        );
        // The working action ran once; its retries were skipped.
        assert_eq!(p.actuator.inner.applied().len(), 1);

        // A redrive after the cause is gone: only the missing step runs, and it completes with
        // the one success alert and no further failure alert.
        if let Ok(mut b) = p.actuator.broken.lock() {
            *b = None;
        }
        let report = p.handle(event(now), &invocation(9, now)).await;
        assert!(report.error.is_none(), "{:?}", report.error);
        assert_eq!(p.actuator.inner.applied().len(), 2);
        let record = p.store.get("tag-enforcer#cloudtrail#e-1").expect("record");
        assert_eq!((record.state, record.attempts), (State::Completed, MAX_ATTEMPTS + 1));
        let actions: Vec<String> = p
            .notifier
            .0
            .lock()
            .map(|a| a.iter().map(|x| x.action.clone()).collect())
            .unwrap_or_default();
        assert_eq!(actions, ["failed", "tagged"]);

        // The ledger: each resource's step once as applied, whatever the attempt that recorded
        // it, and each failed attempt of the volumes' step on its own.
        let entries = p.ledger.entries();
        let count = |outcome, resource: &str| {
            entries
                .iter()
                .filter(|e| e.outcome == outcome && e.resource == resource)
                .count()
        };
        use crate::ledger::Outcome as Entry;
        assert_eq!(count(Entry::Applied, "i-00000000000000001"), 2, "{entries:#?}");
        assert_eq!(count(Entry::Failed, "i-00000000000000002"), 3);
        assert_eq!(entries.len(), 4 + 6);
        let relabelled = entries
            .iter()
            .find(|e| e.resource == "i-00000000000000001" && e.action.starts_with("set Environment=dev"))
            .expect("the instance's entry");
        assert_eq!(relabelled.before.get("Environment"), Some(&Some("prod".to_string())));
        assert_eq!(relabelled.before.get("Owner"), Some(&None));
        assert_eq!(relabelled.after.get("Environment"), Some(&Some("dev".to_string())));
        assert_eq!(
            (relabelled.event.as_str(), relabelled.cause.as_str()),
            ("cloudtrail#e-1", "IAMUser arn:aws:iam::111122223333:user/bob")
        );
    }

    fn alerts(p: &Pipeline<Fakes>) -> Vec<Alert> {
        p.notifier.0.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// dev asks a person before the tag rule changes anything: the plan waits, its approval
    /// holds the event, and only the approved run acts, once, however often it is run.
    #[tokio::test]
    async fn a_plan_that_needs_approval_waits_and_acts_once_when_approved() {
        let text = crate::policy::BUILTIN_POLICY.replace(
            "[environments.dev.modes]",
            "approval = [\"tags\"]\n[environments.dev.modes]",
        );
        let p = pipeline_with(None, Policy::from_toml(&text, "test").expect("policy"));
        let now = Utc::now();
        let report = p.handle(event(now), &invocation(1, now)).await;
        let id = crate::approval::id(Function::TagEnforcer, "cloudtrail#e-1");
        assert_eq!(
            report.events[0].outcome,
            Outcome::Pending { approval: id.clone() },
            "{report:?}"
        );
        assert!(p.actuator.inner.applied().is_empty(), "nothing changes before approval");
        let alert = alerts(&p).pop().expect("an alert");
        assert_eq!(alert.action, "pending");
        assert!(alert.title.starts_with("approval needed: "), "{}", alert.title);
        assert!(
            alert.notes[0].contains(&format!("guardrail approve {id} --reason TEXT")),
            "{:?}",
            alert.notes
        );
        assert!(alert.done.iter().all(|d| d.starts_with("waiting for approval: ")));
        let pending = p.approvals.get(&id).expect("the approval is kept");
        assert_eq!(pending.state, crate::approval::State::Pending);
        assert_eq!(pending.planned.len(), 2, "{:?}", pending.planned);
        assert_eq!(pending.event["eventID"], "e-1", "the event as it came");
        let entries = p.ledger.entries();
        assert!(!entries.is_empty());
        assert!(entries.iter().all(|e| e.outcome == crate::ledger::Outcome::Pending));
        assert_eq!(pending.entries.len(), entries.len());

        // A second delivery is a duplicate: no second approval, alert or entry.
        let again = p.handle(event(now), &invocation(2, now)).await;
        assert!(
            matches!(again.events[0].outcome, Outcome::Duplicate { .. }),
            "{again:?}"
        );
        assert_eq!(p.ledger.entries().len(), entries.len());

        // Approved two hours later: the event is past its freshness window, yet it is decided
        // as of when it came, and applied once.
        let approved = pending.decide(
            crate::approval::State::Approved,
            crate::approval::Decided {
                by: "arn:aws:iam::111122223333:role/oncall".into(),
                reason: "checked".into(),
                at: now + Duration::hours(2),
            },
        );
        let later = invocation(3, now + Duration::hours(2));
        let outcome = p.run_approved(&approved, &later).await.expect("applied");
        assert!(
            matches!(outcome, Outcome::Applied { ref actions } if actions.len() == 2),
            "{outcome:?}"
        );
        assert_eq!(p.actuator.inner.applied().len(), 2);
        let applied: Vec<_> = p
            .ledger
            .entries()
            .into_iter()
            .filter(|e| e.outcome == crate::ledger::Outcome::Applied)
            .collect();
        assert_eq!(applied.len(), entries.len(), "one applied entry per pending one");
        assert!(applied.iter().all(|e| {
            e.event == "cloudtrail#e-1"
                && e.detail
                    .starts_with("approved by arn:aws:iam::111122223333:role/oncall")
        }));
        let alert = alerts(&p).pop().expect("an alert");
        assert_eq!(alert.action, "tagged");
        assert!(alert.notes[0].contains("approved by"), "{:?}", alert.notes);

        let twice = p
            .run_approved(&approved, &invocation(4, now + Duration::hours(2)))
            .await;
        assert!(matches!(twice, Ok(Outcome::Duplicate { .. })), "{twice:?}");
        assert_eq!(p.actuator.inner.applied().len(), 2, "approving twice acts once");
    }

    /// An agent's count is taken once and given back, so an approval decided again sees the
    /// count its event was decided with.
    #[tokio::test]
    async fn remembered_facts_count_a_call_once() {
        let inner = StaticFacts::default();
        let key = RateKey {
            principal_arn: "arn:aws:iam::111122223333:role/agents/a".into(),
            event_name: "RunInstances".into(),
            event_id: "e-1".into(),
            window_start: Utc::now(),
            window_secs: 60,
            counted_by_name: false,
            by_tag: false,
        };
        let facts = Remembered::new(&inner, None);
        assert_eq!(facts.count(), None);
        let first = facts.count_call(&key).await.expect("count");
        assert_eq!(first.calls, 1);
        assert_eq!(facts.count(), Some(first));
        let stored = crate::facts::RateCount {
            calls: 301,
            event_calls: 0,
        };
        let again = Remembered::new(&inner, Some(stored));
        assert_eq!(
            again.count_call(&key).await.ok(),
            Some(stored),
            "the stored count, not a new one"
        );
    }
}
