//! One account's baseline on demand: read, plan, then apply step by step (or list, in a dry
//! run), paced when a sweep asks. `guardrail baseline`, `guardrail sweep` and the scheduled
//! sweep all run accounts through [`Runner`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Pace, Row, Tally};
use crate::apply::{Actuator, Session};
use crate::aws::AwsInspector;
use crate::facts::Scope;
use crate::ids::AccountId;
use crate::ledger::{self, Entry, Ran, Source};
use crate::plan::{Action, Decision, Ignored, Plan};
use crate::policy::{Policy, Rule};
use crate::rules::baseline::plan_account;

/// Where a run's progress lines go: stderr in the CLI, the log in Lambda.
pub type Log<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// One step of a run and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct StepRow {
    pub step: String,
    /// `in place`, `done`, `would change`, `needs a person`, `failed`, `not checked`, `not tried`.
    pub status: &'static str,
    pub detail: String,
}

impl StepRow {
    pub fn new(step: impl Into<String>, status: &'static str, detail: impl Into<String>) -> StepRow {
        StepRow {
            step: step.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// How [`apply_steps`] goes about it.
pub struct Apply<'a> {
    /// List the actions as `would change`; change nothing.
    pub dry_run: bool,
    /// Leave the actions after a failed one untried (they depend on it).
    pub stop_at_failure: bool,
    /// Write calls per second in the account; `None`: as fast as the actions go.
    pub pace: Option<u32>,
    pub log: Log<'a>,
}

/// Applies `actions` in order, a `[i/n]` progress line per action, each ending as a row of
/// `steps`. Returns whether an action failed.
pub async fn apply_steps(
    actuator: &impl Actuator,
    session: &Session,
    account: &AccountId,
    actions: &[Action],
    how: &Apply<'_>,
    steps: &mut Vec<StepRow>,
) -> bool {
    let total = actions.len();
    let mut pace = how.pace.map(Pace::new);
    let mut failed = false;
    for (i, action) in actions.iter().enumerate() {
        if how.dry_run {
            steps.push(StepRow::new(action.to_string(), "would change", ""));
            continue;
        }
        if failed && how.stop_at_failure {
            steps.push(StepRow::new(action.to_string(), "not tried", "an earlier step failed"));
            continue;
        }
        if let Some(pace) = pace.as_mut() {
            let wait = pace.delay(std::time::Instant::now(), action.writes());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        let (status, detail) = match actuator.apply(session, account, action).await {
            Ok(()) => ("done", String::new()),
            Err(e) => {
                failed = true;
                ("failed", e.to_string())
            }
        };
        (how.log)(&format!("[{}/{total}] {action}: {status}", i + 1));
        steps.push(StepRow::new(action.to_string(), status, detail));
    }
    failed
}

/// The audit ledger's entries for what a plan's steps changed or tried to (`steps` are the
/// rows [`apply_steps`] made for `plan.actions`, in order): none in a dry run, and none for
/// what a sweep only reports, which its summary carries instead.
pub fn ledger_entries(source: Option<&Source<'_>>, plan: &Plan, steps: &[StepRow]) -> Vec<Entry> {
    let Some(source) = source else {
        return Vec::new();
    };
    let ran: Vec<(&Action, Ran)> = plan
        .actions
        .iter()
        .zip(steps)
        .filter_map(|(action, step)| match step.status {
            "done" => Some((action, Ran::Applied)),
            "failed" => Some((action, Ran::Failed(step.detail.clone()))),
            "not tried" => Some((action, Ran::NotRun(step.detail.clone()))),
            _ => None,
        })
        .collect();
    if ran.is_empty() {
        return Vec::new();
    }
    // What a sweep leaves alone under a waiver is in its summary, not the ledger: every sweep
    // would record it again.
    ledger::entries(source, plan, &ran)
        .into_iter()
        .filter(|e| e.outcome != ledger::Outcome::Waived)
        .collect()
}

/// The row saying that a sweep only reports `plan` because its environment makes it wait for
/// a person's approval (when `approvals` is on), and how to apply it.
pub(crate) fn waits_for_approval(
    approvals: bool,
    plan: &Plan,
    policy: &Policy,
    account: &AccountId,
    command: &str,
) -> Option<StepRow> {
    let needs = if approvals {
        crate::approval::needed(plan, policy)
    } else {
        Vec::new()
    };
    (!needs.is_empty()).then(|| {
        StepRow::new(
            format!("{} change(s)", plan.actions.len()),
            "needs a person",
            format!(
                "{} needs a person's approval in environment {}: only reported; `guardrail {command} --account {account}` applies it",
                needs.join(" and "),
                plan.environment.as_deref().unwrap_or("-")
            ),
        )
    })
}

/// One account's baseline run: what was in place, changed, left for a person, or failed.
#[derive(Clone, Debug)]
pub struct AccountRun {
    pub name: Option<String>,
    pub environment: Option<String>,
    pub steps: Vec<StepRow>,
    /// A step failed or a check could not be made.
    pub failed: bool,
    /// `None` when something was planned; the reason when there was nothing to do.
    pub nothing: Option<String>,
    /// The policy runs the baseline in a mode that only reports.
    pub detects: Option<&'static str>,
    /// Checks found in place.
    pub in_place: usize,
    /// What to write to the audit ledger (when the runner records).
    pub entries: Vec<Entry>,
}

impl AccountRun {
    /// How many steps ended with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// The run as a row of a sweep.
    pub fn row(&self, account: &AccountId, listed_name: &str) -> Row {
        let tally = Tally {
            in_place: self.in_place,
            changed: self.count("done"),
            would_change: self.count("would change"),
            needs_a_person: self.count("needs a person"),
            failed: self.count("failed") + self.count("not checked"),
        };
        let note = match (&self.nothing, self.detects) {
            (Some(reason), _) => reason.clone(),
            (None, Some(mode)) => format!("{mode} mode: nothing changed"),
            (None, None) => self
                .steps
                .iter()
                .find(|s| matches!(s.status, "failed" | "not checked" | "needs a person"))
                .map(|s| format!("{}: {}", s.step, s.detail))
                .unwrap_or_default(),
        };
        Row {
            account: account.to_string(),
            name: self.name.clone().unwrap_or_else(|| listed_name.to_string()),
            environment: self.environment.clone(),
            rules: BTreeMap::from([(Rule::Baseline.name().to_string(), tally)]),
            note,
        }
    }
}

/// Runs accounts' baselines with one inspector, actuator and policy.
pub struct Runner<'a, A: Actuator> {
    pub inspector: &'a AwsInspector,
    pub actuator: &'a A,
    pub policy: &'a Policy,
    pub dry_run: bool,
    /// Write calls per second in one account; `None`: unpaced.
    pub pace: Option<u32>,
    pub log: Log<'a>,
    /// What the audit ledger names as the source of the changes; `None`: not recorded.
    pub record: Option<&'a Source<'a>>,
    /// Whether a plan the environment's `approval` list names is only reported (the scheduled
    /// sweep, which no person watches) rather than applied (`guardrail sweep` and `baseline`,
    /// which a person runs).
    pub approvals: bool,
}

impl<A: Actuator> Runner<'_, A> {
    /// Reads one account, plans its baseline and applies it (or, in a dry run, lists it).
    /// `Err`: the account cannot be baselined, with the reason.
    pub async fn account(&self, session: &Session, account: &AccountId) -> Result<AccountRun, String> {
        let facts = match self.inspector.account(session, account, &Scope::All, self.policy).await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(format!("account {account} is not a member of the organization")),
            Err(e) => {
                return Err(format!(
                    "{e}\n(run with credentials of the management account or a delegated administrator; see README, Troubleshooting)"
                ));
            }
        };
        let name = facts.name.clone();
        let plan = match plan_account(&facts, false, self.policy) {
            Decision::Ignore { reason } => {
                let in_place = match reason {
                    Ignored::Compliant { checked } => checked,
                    _ => 0,
                };
                return Ok(AccountRun {
                    name,
                    environment: None,
                    steps: Vec::new(),
                    failed: false,
                    nothing: Some(reason.to_string()),
                    detects: None,
                    in_place,
                    entries: Vec::new(),
                });
            }
            Decision::Act { plan } => plan,
        };
        let mut steps: Vec<StepRow> = plan.in_place.iter().map(|c| StepRow::new(c, "in place", "")).collect();
        steps.extend(
            plan.unchecked
                .iter()
                .map(|u| StepRow::new(&u.check, "not checked", &u.error)),
        );
        let waits = waits_for_approval(self.approvals, &plan, self.policy, account, "baseline");
        let how = Apply {
            dry_run: self.dry_run || waits.is_some(),
            stop_at_failure: false,
            pace: self.pace,
            log: self.log,
        };
        steps.extend(waits);
        let first = steps.len();
        let failed = apply_steps(self.actuator, session, account, &plan.actions, &how, &mut steps).await
            || !plan.unchecked.is_empty();
        let entries = ledger_entries(self.record, &plan, &steps[first..]);
        // What no action fixes needs a person; in detect mode, the rest would change.
        let detects = !plan.mode.fixes();
        for v in &plan.violations {
            if !v.fixable || detects {
                let status = if v.fixable { "would change" } else { "needs a person" };
                steps.push(StepRow::new(&v.resource, status, &v.problem));
            }
        }
        Ok(AccountRun {
            name,
            environment: plan.environment.clone(),
            in_place: plan.in_place.len(),
            steps,
            failed,
            nothing: None,
            detects: detects.then(|| plan.mode.name()),
            entries,
        })
    }
}
