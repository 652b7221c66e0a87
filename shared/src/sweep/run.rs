//! The scheduled sweep in Lambda (account-baseline's baseline, tag-enforcer's resources). Each
//! invocation (a leg) takes the sweep's record, checks accounts (`sweep.parallel_accounts` at a
//! time) until the time limit draws near, saves its place and sends itself the follow-up
//! invocation; the leg that checks the last account sends the summary.

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{DateTime, Duration, Utc};
use futures_util::future::join_all;
use tracing::{info, warn};

use super::account::{Log, Runner};
use super::tags::TagRunner;
use super::{INPUT_KEY, Progress, Request, Row, Start};
use crate::alert::Notifier;
use crate::apply::Session;
use crate::aws::organization::{self, Selection};
use crate::aws::{
    AwsActuator, AwsDirectory, AwsInspector, BreakerTable, Inventory, LambdaContinuation, LedgerTable, MemberAccess,
    Save, SnsNotifier, SsmSwitch, SweepTable, Taken,
};
use crate::config::Config;
use crate::error::Result;
use crate::event::Rejection;
use crate::ids::AccountId;
use crate::ledger::{self, Ledger};
use crate::pause::{Pause, Switch};
use crate::pipeline::{EventReport, Invocation, Outcome, Report, rejected};
use crate::policy::Policy;
use crate::rules::Function;

/// Progress is saved at least this often (and at the end of every leg), so an invocation that
/// dies loses at most this much work.
const SAVE_EVERY: Duration = Duration::seconds(5);

/// A function's sweeps, wired to AWS.
pub struct Sweeper {
    pub function: Function,
    pub policy: Arc<Policy>,
    access: MemberAccess,
    checks: Checks,
    actuator: AwsActuator,
    table: SweepTable,
    notifier: SnsNotifier,
    continuation: LambdaContinuation,
    switch: SsmSwitch,
    breakers: BreakerTable,
    ledger: LedgerTable,
}

/// What a function's sweep checks in each account, and what it reads to do so.
enum Checks {
    /// account-baseline: the baseline, read by the inspector.
    Baseline(AwsInspector),
    /// tag-enforcer: every listed resource's tags; the directory gives the environment.
    Tags(Box<AwsDirectory>, Inventory),
}

impl Sweeper {
    /// Sweeps on the table, topic and policy of `config`; follow-ups invoke `function_name`.
    pub fn new(function: Function, config: &Config, sdk: &SdkConfig, function_name: &str) -> Sweeper {
        let policy = Arc::new(config.policy.clone());
        let access = MemberAccess::new(sdk, policy.clone(), function);
        let checks = match function {
            Function::TagEnforcer => Checks::Tags(
                Box::new(AwsDirectory::new(function, sdk, config.table.clone(), policy.clone())),
                Inventory::new(access.clone()),
            ),
            _ => Checks::Baseline(AwsInspector::new(access.clone())),
        };
        Sweeper {
            function,
            checks,
            actuator: AwsActuator::new(access.clone()),
            access,
            table: SweepTable::new(sdk, &config.table, function),
            notifier: SnsNotifier::new(sdk, &config.topic_arn),
            continuation: LambdaContinuation::new(sdk, function_name),
            switch: SsmSwitch::new(sdk, policy.safety.pause_parameter.clone()),
            breakers: BreakerTable::new(sdk, &config.table),
            ledger: LedgerTable::new(sdk, &config.ledger_table, policy.safety.ledger_days),
            policy,
        }
    }

    /// Why the rule's tripped breaker holds the account, if it does: a sweep does not count
    /// against the breaker, but it does not act where the breaker stopped the rule.
    async fn breaker_hold(&self, account: &AccountId) -> Result<Option<String>> {
        let rule = self.function.rule();
        if self.policy.safety.breaker.limit(rule).is_none() {
            return Ok(None);
        }
        let state = self.breakers.status(rule, account).await?;
        Ok(state.trip.map(|trip| {
            format!(
                "the {} rule's blast-radius breaker is open here since {}: only reported (guardrail breaker reset)",
                rule.name(),
                trip.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        }))
    }

    /// Checks one account: its row of the sweep. What it changed goes to the audit ledger as
    /// coming from `source` (the sweep), and plans name `cause`; a ledger that cannot be
    /// written fails the row.
    async fn check(
        &self,
        session: &Session,
        account: &AccountId,
        dry_run: bool,
        source: &ledger::Source<'_>,
        cause: &str,
        log: Log<'_>,
    ) -> Row {
        let held = if dry_run {
            None
        } else {
            match self.breaker_hold(account).await {
                Ok(held) => held,
                Err(e) => {
                    let reason = format!("could not read the blast-radius breaker: {e}");
                    return Row::failed(account, "", self.function.rule(), &reason);
                }
            }
        };
        let dry_run = dry_run || held.is_some();
        let (mut row, entries) = self.check_rule(session, account, dry_run, source, cause, log).await;
        if let Err(e) = self.ledger.append(&entries).await {
            warn!(account = %account, error = %e, "could not write the sweep's audit ledger entries");
            let tally = row.rules.entry(self.function.rule().name().to_string()).or_default();
            tally.failed += 1;
            row.note = format!("could not record {} change(s) in the audit ledger: {e}", entries.len());
        }
        if let Some(held) = held {
            row.note = if row.note.is_empty() {
                held
            } else {
                format!("{held}; {}", row.note)
            };
        }
        row
    }

    async fn check_rule(
        &self,
        session: &Session,
        account: &AccountId,
        dry_run: bool,
        source: &ledger::Source<'_>,
        cause: &str,
        log: Log<'_>,
    ) -> (Row, Vec<ledger::Entry>) {
        let pace = Some(self.policy.sweep.writes_per_second);
        let record = Some(source);
        let run = match &self.checks {
            Checks::Baseline(inspector) => Runner {
                inspector,
                actuator: &self.actuator,
                policy: &self.policy,
                dry_run,
                pace,
                log,
                record,
                approvals: true,
            }
            .account(session, account)
            .await
            .map(|run| (run.row(account, ""), run.entries)),
            Checks::Tags(directory, inventory) => TagRunner {
                directory,
                inventory,
                actuator: &self.actuator,
                policy: &self.policy,
                dry_run,
                pace,
                log,
                cause,
                record,
                now: source.time,
                approvals: true,
            }
            .account(session, account)
            .await
            .map(|run| (run.row(account, ""), run.entries)),
        };
        run.unwrap_or_else(|reason| (Row::failed(account, "", self.function.rule(), &reason), Vec::new()))
    }

    /// How the sweep reads Organizations: account-baseline through the management role,
    /// tag-enforcer as its directory does.
    async fn organizations(&self, session: &Session) -> Result<SdkConfig> {
        match &self.checks {
            Checks::Baseline(_) => self.access.management(session).await,
            Checks::Tags(directory, _) => directory.organizations_config().await,
        }
    }

    /// Handles one sweep request. A transient failure fails the invocation, so that Lambda
    /// retries it (the retry resumes from the saved progress); any other failure is alerted and
    /// not retried, since a retry cannot fix it.
    pub async fn handle(&self, request: std::result::Result<Request, Rejection>, invocation: &Invocation) -> Report {
        let (id, outcome, error) = match request {
            Err(r) => (None, rejected(&r), None),
            Ok(request) => {
                let id = request.id();
                match self.leg(&request, invocation).await {
                    Ok(outcome) => (Some(id), outcome, None),
                    Err(e) => {
                        let outcome = Outcome::Failed {
                            error_type: e.error_type(),
                            error: e.to_string(),
                        };
                        if e.is_transient() {
                            (Some(id), outcome, Some(e))
                        } else {
                            let alert = super::failure_alert(self.function, &id, &e, invocation.now);
                            if let Err(e) = self.notifier.publish(&alert).await {
                                warn!(error = %e, "could not send the sweep's failure alert");
                            }
                            (Some(id), outcome, None)
                        }
                    }
                }
            }
        };
        info!(
            function = %self.function,
            event = "sweep",
            event_id = id.as_deref().unwrap_or("-"),
            outcome = outcome.name(),
            detail = ?outcome,
            "event handled"
        );
        Report {
            function: self.function,
            events: vec![EventReport {
                event: Some("sweep".into()),
                id,
                account: None,
                outcome,
            }],
            error,
        }
    }

    async fn leg(&self, request: &Request, invocation: &Invocation) -> Result<Outcome> {
        let id = request.id();
        if let Request::Start(start) = request
            && let Err(r) = crate::gate::fresh(start.time, &self.policy, invocation.now)
        {
            return Ok(rejected(&r));
        }
        let owner = invocation.request_id.as_str();
        let session = Session::new(self.function.name(), &format!("sweep-{id}"));
        let mut progress = match self.table.take(&id, owner, invocation.now, invocation.deadline).await? {
            Taken::Held(p) => *p,
            Taken::Busy => return Ok(Outcome::InProgress),
            Taken::Finished(p) => return Ok(Outcome::Duplicate { summary: p.headline() }),
            Taken::Missing => match request {
                Request::Continue { .. } => {
                    return Ok(rejected(&Rejection::MalformedRecord {
                        detail: format!("{INPUT_KEY}: no sweep {id} is recorded (records are kept 7 days)"),
                    }));
                }
                Request::Start(start) => {
                    let progress = self.list(&session, start, &id, invocation.now).await?;
                    if !self.table.begin(&progress, owner, invocation.deadline).await? {
                        return Ok(Outcome::InProgress);
                    }
                    progress
                }
            },
        };
        progress.legs += 1;
        // Paused, a leg only reports, and the summary says so.
        let held = match self.switch.state().await? {
            Pause::Paused { detail } => Some(detail),
            Pause::Active => None,
        };
        if let Some(detail) = &held {
            let note = format!("Guardrail was paused ({detail}): the accounts checked meanwhile were only reported");
            if !progress.notes.contains(&note) {
                progress.notes.push(note);
            }
        }

        let log = |line: &str| info!(sweep = %id, "{line}");
        let event = format!("sweep#{id}");
        let cause = format!("sweep {id}");
        let keep = Duration::from_std(self.policy.sweep.account_time).unwrap_or(Duration::seconds(20));
        let parallel = usize::try_from(self.policy.sweep.parallel_accounts).unwrap_or(1).max(1);
        let mut checked = 0;
        let mut saved = Utc::now();
        while progress.pending().is_some() {
            // Each leg checks at least one batch, so that a sweep always moves on.
            if checked > 0 && Utc::now() + keep > invocation.deadline {
                if !self.table.save(&progress, owner, Save::Release).await? {
                    return Ok(Outcome::InProgress);
                }
                self.continuation
                    .send(&Request::Continue { id: id.clone() }.to_input())
                    .await?;
                info!(sweep = %id, done = progress.next, total = progress.accounts.len(), "continued in a follow-up invocation");
                return Ok(Outcome::Continued {
                    done: progress.next,
                    total: progress.accounts.len(),
                });
            }
            // The next accounts at once; their results are recorded in order.
            let batch: Vec<AccountId> = progress
                .accounts
                .iter()
                .skip(progress.next)
                .take(parallel)
                .cloned()
                .collect();
            log(&format!(
                "accounts {}-{} of {}",
                progress.next + 1,
                progress.next + batch.len(),
                progress.accounts.len()
            ));
            let dry_run = progress.dry_run || held.is_some();
            let source = ledger::Source {
                function: self.function,
                event: &event,
                time: progress.started,
                recorded: Utc::now(),
                attempt: progress.legs,
                note: None,
            };
            let rows = join_all(
                batch
                    .iter()
                    .map(|account| self.check(&session, account, dry_run, &source, &cause, &log)),
            )
            .await;
            for row in rows {
                progress.record(row);
            }
            checked += batch.len();
            if Utc::now() - saved >= SAVE_EVERY {
                if !self.table.save(&progress, owner, Save::Keep).await? {
                    return Ok(Outcome::InProgress);
                }
                saved = Utc::now();
            }
        }

        let now = Utc::now();
        progress.finished.get_or_insert(now);
        self.notifier.publish(&progress.summary(self.function, now)).await?;
        if !self.table.save(&progress, owner, Save::Finish).await? {
            warn!(sweep = %id, "the sweep's record was taken over before it could be marked finished");
        }
        Ok(Outcome::Swept {
            summary: progress.headline(),
        })
    }

    /// The accounts a new sweep covers, in the organization's order, each once; never the
    /// management account.
    async fn list(&self, session: &Session, start: &Start, id: &str, now: DateTime<Utc>) -> Result<Progress> {
        let selections: Vec<Selection> = if start.accounts.is_empty() && start.ous.is_empty() {
            vec![Selection::All]
        } else {
            start
                .accounts
                .iter()
                .cloned()
                .map(Selection::Account)
                .chain(start.ous.iter().cloned().map(Selection::Ou))
                .collect()
        };
        let members = organization::members(&self.organizations(session).await?, &selections).await?;
        let mut notes: Vec<String> = members
            .missing
            .iter()
            .map(|id| format!("account {id} is not a member of the organization: not checked"))
            .collect();
        let mut accounts = Vec::new();
        for m in &members.accounts {
            match members.skipped(m) {
                Some(why) => notes.push(why),
                None => accounts.push(m.account.clone()),
            }
        }
        info!(sweep = %id, accounts = accounts.len(), "sweep started");
        let mut progress = Progress::new(id.to_string(), start.dry_run, now, accounts);
        progress.notes = notes;
        Ok(progress)
    }
}
