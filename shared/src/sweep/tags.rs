//! One account's resources checked against the tag rule on demand: each region's resources
//! (and, once, the account's IAM roles and users) listed, planned, then tagged (or, in a dry
//! run, listed), paced. tag-enforcer's scheduled sweep and `guardrail sweep --rules tags` run
//! accounts through [`TagRunner`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::account::{Apply, Log, StepRow, apply_steps, ledger_entries};
use super::{Row, Tally};
use crate::apply::{Actuator, Session};
use crate::aws::{AwsDirectory, Inventory};
use crate::facts::{Membership, Placement};
use crate::ids::AccountId;
use crate::ledger::{Entry, Source};
use crate::plan::{Action, Decision, Ignored, Plan};
use crate::policy::{Policy, Rule};
use crate::rules::resources::{Found, from_listed};
use crate::rules::tags::{managed, plan_listed};

/// One account's tag check: counts of resources, and what a person should look at.
#[derive(Clone, Debug, Default)]
pub struct TagRun {
    pub environment: Option<String>,
    /// Resources: in place, changed, would change, needing a person, in a failed call; a region
    /// that could not be listed counts as one failure.
    pub tally: Tally,
    /// Resources needing a person, failed calls, regions not listed and resources a waiver
    /// exempts.
    pub findings: Vec<StepRow>,
    /// Why nothing was checked (an account outside every environment, the rule off), if so.
    pub nothing: Option<String>,
    /// What to write to the audit ledger (when the runner records).
    pub entries: Vec<Entry>,
}

impl TagRun {
    /// The run as a row of a sweep.
    pub fn row(&self, account: &AccountId, name: &str) -> Row {
        let note = match &self.nothing {
            Some(reason) => reason.clone(),
            None => self
                .findings
                .iter()
                // Failures first, then what needs a person, then what is waived.
                .min_by_key(|s| match s.status {
                    "needs a person" => 1,
                    "waived" => 2,
                    _ => 0,
                })
                .map(|s| format!("{}: {}", s.step, s.detail))
                .unwrap_or_default(),
        };
        Row {
            account: account.to_string(),
            name: name.to_string(),
            environment: self.environment.clone(),
            rules: BTreeMap::from([(Rule::Tags.name().to_string(), self.tally)]),
            note,
        }
    }
}

/// Checks accounts' resources with one directory, inventory, actuator and policy.
pub struct TagRunner<'a, A: Actuator> {
    pub directory: &'a AwsDirectory,
    pub inventory: &'a Inventory,
    pub actuator: &'a A,
    pub policy: &'a Policy,
    pub dry_run: bool,
    /// Write calls per second in one account; `None`: unpaced.
    pub pace: Option<u32>,
    pub log: Log<'a>,
    /// Who the alert and plans name as the cause: the sweep.
    pub cause: &'a str,
    /// What the audit ledger names as the source of the changes; `None`: not recorded.
    pub record: Option<&'a Source<'a>>,
    /// When waivers are judged: the sweep's start.
    pub now: DateTime<Utc>,
    /// Whether a plan the environment's `approval` list names is only reported (the scheduled
    /// sweep) rather than applied (`guardrail sweep`, which a person runs).
    pub approvals: bool,
}

impl<A: Actuator> TagRunner<'_, A> {
    /// Lists, plans and tags one account's resources. `Err`: the account cannot be checked.
    pub async fn account(&self, session: &Session, account: &AccountId) -> Result<TagRun, String> {
        let placement = match self.directory.lookup(account).await {
            Ok(Membership::Member(p)) => p,
            Ok(Membership::Outsider) => return Err(format!("account {account} is not a member of the organization")),
            Err(e) => return Err(e.to_string()),
        };
        let regions = &self.policy.baseline.regions;
        let Some(home) = regions.first() else {
            return Err("baseline.regions is empty: no region to list".into());
        };
        let mut run = TagRun {
            environment: placement.environment.clone(),
            ..TagRun::default()
        };
        // An account outside every environment, or with the rule off, is not listed at all; the
        // first needs a person to place it (as the baseline's sweep says too).
        if let Err(reason) = managed(account, &placement, self.policy) {
            if matches!(reason, Ignored::UnmanagedAccount { .. }) {
                run.tally.needs_a_person = 1;
            }
            run.nothing = Some(reason.to_string());
            return Ok(run);
        }
        for region in regions {
            let mut listed = match self.inventory.region(session, account, region).await {
                Ok(l) => l,
                Err(e) => {
                    run.tally.failed += 1;
                    run.findings.push(StepRow::new(
                        format!("resources in {region}"),
                        "not checked",
                        e.to_string(),
                    ));
                    continue;
                }
            };
            if region == home {
                match self.inventory.principals(session, account, region).await {
                    Ok(principals) => listed.extend(principals),
                    Err(e) => {
                        run.tally.failed += 1;
                        run.findings
                            .push(StepRow::new("IAM roles and users", "not checked", e.to_string()));
                    }
                }
            }
            let found: Vec<Found> = listed.iter().filter_map(|l| from_listed(l, account.as_str())).collect();
            (self.log)(&format!("{account} {region}: {} resource(s) listed", found.len()));
            self.region(session, account, &placement, region, &found, &mut run)
                .await;
        }
        Ok(run)
    }

    /// Plans one region's resources and applies the plan, counting resources into `run`.
    async fn region(
        &self,
        session: &Session,
        account: &AccountId,
        placement: &Placement,
        region: &crate::ids::Region,
        found: &[Found],
        run: &mut TagRun,
    ) {
        let plan: Plan = match plan_listed(account, region, placement, found, self.policy, self.cause, self.now) {
            // Only compliance here: `account` checked that the rule runs in the account.
            Decision::Ignore { reason } => {
                if let Ignored::Compliant { checked } = reason {
                    run.tally.in_place += checked;
                }
                return;
            }
            Decision::Act { plan } => *plan,
        };
        run.tally.in_place += plan.in_place.len();
        let waits =
            super::account::waits_for_approval(self.approvals, &plan, self.policy, account, "sweep --rules tags");
        if let Some(row) = &waits {
            run.tally.needs_a_person += 1;
            run.findings.push(row.clone());
        }
        let how = Apply {
            dry_run: self.dry_run || waits.is_some(),
            stop_at_failure: false,
            pace: self.pace,
            log: self.log,
        };
        let mut steps = Vec::new();
        apply_steps(self.actuator, session, account, &plan.actions, &how, &mut steps).await;
        run.entries.extend(ledger_entries(self.record, &plan, &steps));
        for (action, step) in plan.actions.iter().zip(&steps) {
            let Action::Tag { resources, .. } = action else {
                continue;
            };
            match step.status {
                "done" => run.tally.changed += resources.len(),
                "would change" => run.tally.would_change += resources.len(),
                _ => {
                    run.tally.failed += resources.len();
                    run.findings.push(step.clone());
                }
            }
        }
        // In detect mode nothing is planned to change: each fixable resource would change.
        if !plan.mode.fixes() {
            let fixable: BTreeSet<&str> = plan
                .violations
                .iter()
                .filter(|v| v.fixable)
                .map(|v| v.resource.as_str())
                .collect();
            run.tally.would_change += fixable.len();
        }
        let mut people: BTreeSet<&str> = BTreeSet::new();
        for v in plan.violations.iter().filter(|v| !v.fixable) {
            if people.insert(v.resource.as_str()) {
                run.findings
                    .push(StepRow::new(v.resource.clone(), "needs a person", v.problem.clone()));
            }
        }
        run.tally.needs_a_person += people.len();
        for w in &plan.waived {
            run.findings.push(StepRow::new(
                w.resource.clone(),
                "waived",
                format!("{}: {}", w.waiver, w.problems),
            ));
        }
    }
}
