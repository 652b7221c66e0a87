//! `guardrail approve ID`, `guardrail reject ID` and `guardrail approvals`: the plans that wait
//! for a person (README, Human approval). Approving decides on the event again with the
//! accounts' state now and applies that plan once; rejecting and expiring change nothing. Each
//! end is recorded in the audit ledger.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use guardrail::alert::Notifier;
use guardrail::approval::{self, Approval, Decided, State, stamp};
use guardrail::aws::ApprovalTable;
use guardrail::config::Config;
use guardrail::lambda::AwsPipeline;
use guardrail::ledger::{Ledger, Outcome as Entry};
use guardrail::pipeline::{Invocation, Outcome};
use guardrail::plan::Decision;
use guardrail::sweep::StepRow;
use serde_json::json;

use crate::{Format, steps, unusable};

#[derive(clap::Args)]
pub struct DecideArgs {
    /// The approval's id, as the alert and `guardrail approvals` give it.
    id: String,
    /// Why (a ticket, what was checked): recorded in the ledger and alerted. Not needed with
    /// --dry-run.
    #[arg(long)]
    reason: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    decide: DecideArgs,
    /// Show what approving would do now; change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Also list approvals that expired within this long (default 7d).
    #[arg(long, default_value = "7d")]
    expired: humantime::Duration,
    /// Guardrail's table; default GUARDRAIL_TABLE, else guardrail.
    #[arg(long)]
    table: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// What a person asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Approve { dry_run: bool },
    Reject,
}

impl Verdict {
    fn command(self) -> &'static str {
        match self {
            Verdict::Approve { .. } => "approve",
            Verdict::Reject => "reject",
        }
    }
}

pub fn approve(args: &ApproveArgs) -> ExitCode {
    decide(&args.decide, Verdict::Approve { dry_run: args.dry_run })
}

pub fn reject(args: &DecideArgs) -> ExitCode {
    decide(args, Verdict::Reject)
}

fn decide(args: &DecideArgs, verdict: Verdict) -> ExitCode {
    let command = verdict.command();
    let function = match approval::parse_id(&args.id) {
        Ok(f) => f,
        Err(e) => return unusable(command, e),
    };
    let reason = args.reason.as_deref().map(str::trim).unwrap_or_default().to_string();
    if reason.is_empty() && verdict != (Verdict::Approve { dry_run: true }) {
        return unusable(command, "--reason must say why (a ticket, what was checked)");
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            return unusable(
                command,
                format!(
                    "{e}\n({command} reads the approval from Guardrail's table, records in the ledger and alerts: set the same GUARDRAIL_TABLE, GUARDRAIL_LEDGER_TABLE, GUARDRAIL_TOPIC_ARN and GUARDRAIL_POLICY as the functions)"
                ),
            );
        }
    };
    let runtime = match crate::runtime(command) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let who = match crate::caller(&sdk).await {
            Ok(w) => w,
            Err(e) => return unusable(command, e),
        };
        let table = config.table.clone();
        // The function's own adapters, so the approved plan acts through its member roles.
        let pipeline = guardrail::lambda::aws_pipeline(function, config, &sdk);
        let id = args.id.trim();
        let now = Utc::now();
        let approval = match pipeline.approvals.get(id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                return unusable(
                    command,
                    format!(
                        "no approval {id} in table {table}: check the id (`guardrail approvals` lists those waiting); ended approvals are removed 30 days after their deadline"
                    ),
                );
            }
            Err(e) => {
                return unusable(
                    command,
                    format!("{e}\n(approvals are in Guardrail's table {table}: use the security account's credentials)"),
                );
            }
        };
        if let Some(why) = approval.closed(now) {
            if approval.standing(now) == State::Expired {
                expire(&pipeline, &approval, now).await;
            }
            return unusable(command, why);
        }
        let decided = Decided {
            by: who,
            reason,
            at: now,
        };
        match verdict {
            Verdict::Reject => reject_it(&pipeline, approval, decided, args.format).await,
            Verdict::Approve { dry_run: true } => preview(&pipeline, &approval, args.format).await,
            Verdict::Approve { dry_run: false } => approve_it(&pipeline, approval, decided, args.format).await,
        }
    })
}

/// Records that nobody approved it in time: its state, and its pending entries again as expired.
async fn expire(pipeline: &AwsPipeline, approval: &Approval, now: DateTime<Utc>) {
    let expired = Approval {
        state: State::Expired,
        ..approval.clone()
    };
    if matches!(pipeline.approvals.update(&expired, State::Pending).await, Ok(true)) {
        let detail = format!("nobody approved it by {}", stamp(approval.deadline));
        if let Err(e) = pipeline
            .ledger
            .append(&approval.closing_entries(Entry::Expired, &detail, now))
            .await
        {
            eprintln!("the audit ledger could not record the expiry: {e}");
        }
    }
}

/// What approving would apply now.
async fn preview(pipeline: &AwsPipeline, approval: &Approval, format: Format) -> ExitCode {
    let (_, decision) = match pipeline.redecide(approval).await {
        Ok(d) => d,
        Err(e) => return unusable("approve", format!("could not decide on its event again: {e}")),
    };
    let (headline, rows) = match decision {
        Err(r) => (
            format!("nothing to approve: the event is now rejected: {r}"),
            Vec::new(),
        ),
        Ok(Decision::Ignore { reason }) => (format!("nothing left to do: {reason}"), Vec::new()),
        Ok(Decision::Act { plan }) => (
            format!(
                "dry run: approving now makes {} change(s), nothing changed",
                plan.actions.len()
            ),
            plan.actions
                .iter()
                .map(|a| StepRow::new(a.to_string(), "would change", ""))
                .chain(plan.notes.iter().map(|n| StepRow::new(n, "note", "")))
                .collect(),
        ),
    };
    report(format, approval, &headline, &rows, None);
    ExitCode::SUCCESS
}

async fn approve_it(pipeline: &AwsPipeline, approval: Approval, decided: Decided, format: Format) -> ExitCode {
    let approved = if approval.state == State::Pending {
        let approved = approval.decide(State::Approved, decided);
        match pipeline.approvals.update(&approved, State::Pending).await {
            Ok(true) => approved,
            Ok(false) => return moved("approve", pipeline, &approval.id).await,
            Err(e) => return unusable("approve", e),
        }
    } else {
        // Approved before, and its run did not finish: this run carries on with it.
        if let Some(first) = &approval.decided {
            eprintln!(
                "approved earlier by {} at {}; applying it again",
                first.by,
                stamp(first.at)
            );
        }
        approval
    };
    let now = Utc::now();
    let invocation = Invocation {
        request_id: format!("approve-{}-{}", approved.id, now.timestamp_millis()),
        now,
        deadline: now + chrono::Duration::minutes(5),
    };
    eprintln!("deciding on {} again and applying the plan…", approved.subject);
    let outcome = pipeline.run_approved(&approved, &invocation).await;
    let by = approved.decided.as_ref().map_or("", |d| d.by.as_str()).to_string();
    let (result, rows, code) = match &outcome {
        Ok(Outcome::Applied { actions }) => (
            format!("applied {} change(s)", actions.len()),
            actions.iter().map(|a| StepRow::new(a, "done", "")).collect(),
            ExitCode::SUCCESS,
        ),
        Ok(Outcome::Duplicate { summary }) => (format!("applied already: {summary}"), Vec::new(), ExitCode::SUCCESS),
        Ok(Outcome::InProgress) => {
            return unusable(
                "approve",
                "another run is applying this approval right now; check `guardrail approvals` in a minute",
            );
        }
        Ok(other @ (Outcome::Ignored { .. } | Outcome::Rejected { .. })) => {
            let why = match other {
                Outcome::Ignored { reason } => reason.clone(),
                Outcome::Rejected { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            let detail = format!("approved by {by}; nothing left to do: {why}");
            if let Err(e) = pipeline
                .ledger
                .append(&approved.closing_entries(Entry::NotRun, &detail, now))
                .await
            {
                eprintln!("the audit ledger could not record it: {e}");
            }
            (format!("nothing left to do: {why}"), Vec::new(), ExitCode::SUCCESS)
        }
        Ok(other) => (
            format!("{}: nothing changed", other.name()),
            Vec::new(),
            ExitCode::SUCCESS,
        ),
        Err(e) => {
            let headline = format!(
                "approved, but applying failed: {e}. Fix the cause and run `guardrail approve {} --reason TEXT` again (it is safe to repeat)",
                approved.id
            );
            report(format, &approved, &headline, &[], Some(&by));
            return ExitCode::FAILURE;
        }
    };
    let done = Approval {
        state: State::Done,
        result: Some(guardrail::ids::clip(&result, 500)),
        ..approved
    };
    if let Err(e) = pipeline.approvals.update(&done, State::Approved).await {
        eprintln!("the approval could not be marked done: {e}");
    }
    report(format, &done, &result, &rows, Some(&by));
    code
}

async fn reject_it(pipeline: &AwsPipeline, approval: Approval, decided: Decided, format: Format) -> ExitCode {
    if approval.state != State::Pending {
        return unusable(
            "reject",
            format!(
                "approval {} was approved already{}: what it applied is undone by hand (the alert's undo commands, or `guardrail release`)",
                approval.id,
                approval
                    .decided
                    .as_ref()
                    .map(|d| format!(" by {} at {}", d.by, stamp(d.at)))
                    .unwrap_or_default()
            ),
        );
    }
    let rejected = approval.decide(State::Rejected, decided.clone());
    match pipeline.approvals.update(&rejected, State::Pending).await {
        Ok(true) => {}
        Ok(false) => return moved("reject", pipeline, &approval.id).await,
        Err(e) => return unusable("reject", e),
    }
    let detail = format!("rejected by {}: {}", decided.by, decided.reason);
    let mut headline = "rejected: nothing was changed".to_string();
    if let Err(e) = pipeline
        .ledger
        .append(&rejected.closing_entries(Entry::Rejected, &detail, decided.at))
        .await
    {
        headline.push_str(&format!(" (the audit ledger could not record it: {e})"));
    }
    let alert = rejected.alert(
        "rejected",
        format!(
            "{} rejected the plan for {} in account {}: {}",
            decided.by, rejected.subject, rejected.account, decided.reason
        ),
        decided.at,
    );
    if let Err(e) = pipeline.notifier.publish(&alert).await {
        headline.push_str(&format!(" (the alert could not be sent: {e})"));
    }
    let rows: Vec<StepRow> = rejected
        .planned
        .iter()
        .map(|a| StepRow::new(a, "not done", ""))
        .collect();
    report(format, &rejected, &headline, &rows, Some(&decided.by));
    ExitCode::SUCCESS
}

/// Another person moved the approval on between our read and our write.
async fn moved(command: &str, pipeline: &AwsPipeline, id: &str) -> ExitCode {
    let now = Utc::now();
    let why = match pipeline.approvals.get(id).await {
        Ok(Some(a)) => a
            .closed(now)
            .unwrap_or_else(|| format!("approval {id} is {}", a.state.name())),
        _ => format!("approval {id} changed meanwhile"),
    };
    unusable(command, format!("{why} (someone else decided first)"))
}

fn report(format: Format, approval: &Approval, headline: &str, rows: &[StepRow], by: Option<&str>) {
    let fields = json!({
        "id": approval.id,
        "function": approval.function,
        "account": approval.account,
        "environment": approval.environment,
        "rule": approval.rule,
        "state": approval.state.name(),
        "decided_by": by,
    });
    let heading = format!(
        "approval {} ({} in account {}, environment {})",
        approval.id,
        approval.subject,
        approval.account,
        approval.environment.as_deref().unwrap_or("unknown")
    );
    steps::print(
        format,
        fields.as_object().cloned().unwrap_or_default(),
        headline,
        &heading,
        rows,
    );
}

/// `guardrail approvals`: those waiting, soonest deadline first, and those recently expired.
pub fn list(args: &ListArgs) -> ExitCode {
    let table = crate::table_name(args.table.as_deref(), guardrail::config::TABLE_VAR, "guardrail");
    let runtime = match crate::runtime("approvals") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let now = Utc::now();
        let since = now - chrono::Duration::from_std(*args.expired).unwrap_or_default();
        let approvals = match ApprovalTable::new(&sdk, &table).pending(since).await {
            Ok(a) => a,
            Err(e) => {
                return unusable(
                    "approvals",
                    format!("{e}\n(approvals are in Guardrail's table {table}: set --table or GUARDRAIL_TABLE, with the security account's credentials)"),
                );
            }
        };
        match args.format {
            Format::Json => {
                let rows: Vec<serde_json::Value> = approvals
                    .iter()
                    .map(|a| {
                        json!({
                            "id": a.id, "state": a.standing(now).name(), "function": a.function,
                            "account": a.account, "environment": a.environment, "rule": a.rule,
                            "needs": a.needs, "subject": a.subject, "cause": a.cause,
                            "severity": a.severity, "planned": a.planned,
                            "requested_at": stamp(a.requested_at), "deadline": stamp(a.deadline),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            }
            Format::Text if approvals.is_empty() => println!("no approval is waiting"),
            Format::Text => {
                let rows: Vec<Vec<String>> = approvals
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.clone(),
                            a.standing(now).name().to_string(),
                            a.account.clone(),
                            a.environment.clone().unwrap_or_default(),
                            a.needs.join("+"),
                            deadline(a.deadline, now),
                            a.subject.clone(),
                        ]
                    })
                    .collect();
                steps::table(
                    &["ID", "STATE", "ACCOUNT", "ENV", "NEEDS", "DEADLINE", "SUBJECT"],
                    &rows,
                );
                let waiting = approvals.iter().filter(|a| a.standing(now) == State::Pending).count();
                println!(
                    "{waiting} waiting, {} expired. `guardrail approve ID --dry-run` shows what approving does now.",
                    approvals.len() - waiting
                );
            }
        }
        ExitCode::SUCCESS
    })
}

/// `in 3h 20m`, or `12m ago`.
fn deadline(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (at - now).num_minutes();
    let text = |m: i64| {
        if m >= 60 {
            format!("{}h {}m", m / 60, m % 60)
        } else {
            format!("{m}m")
        }
    };
    if minutes >= 0 {
        format!("in {}", text(minutes))
    } else {
        format!("{} ago", text(-minutes))
    }
}
