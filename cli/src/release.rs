//! `guardrail release --account ID --role NAME --reason TEXT`: ends a quarantine deliberately.
//! Removes only what Guardrail added, reactivates the keys it deactivated, records who released
//! the principal and why, and alerts.

use std::process::ExitCode;

use chrono::Utc;
use guardrail::alert::{Alert, Notifier};
use guardrail::apply::Session;
use guardrail::config::Config;
use guardrail::facts::Facts;
use guardrail::ids::{AccountId, Region};
use guardrail::ledger::{Ledger, Source};
use guardrail::quarantine::{PrincipalKind, PrincipalRef};
use guardrail::rules::Function;
use guardrail::rules::quarantine::plan_release;
use guardrail::sweep::{Apply, StepRow, apply_steps, ledger_entries};
use serde_json::json;

use crate::{Format, steps, unusable};

const COMMAND: &str = "release";

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("principal").required(true).args(["role", "user"])))]
pub struct Args {
    /// The account the principal is in (12 digits).
    #[arg(long)]
    account: String,
    /// The quarantined role's name.
    #[arg(long)]
    role: Option<String>,
    /// The quarantined user's name.
    #[arg(long)]
    user: Option<String>,
    /// Why it is safe again; recorded and alerted.
    #[arg(long)]
    reason: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: &Args) -> ExitCode {
    let Some(account) = AccountId::parse(&args.account) else {
        return unusable(
            COMMAND,
            format!("--account {:?} is not a 12-digit account id", args.account),
        );
    };
    let (kind, name) = match (&args.role, &args.user) {
        (Some(r), _) => (PrincipalKind::Role, r),
        (None, Some(u)) => (PrincipalKind::User, u),
        (None, None) => return unusable(COMMAND, "name the principal with --role or --user"),
    };
    let Some(principal) = PrincipalRef::new(account, kind, name) else {
        return unusable(COMMAND, format!("{name:?} is not an IAM {} name", kind.name()));
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            return unusable(
                COMMAND,
                format!(
                    "{e}\n(release reads the quarantine record from Guardrail's table and alerts on its topic: set the same GUARDRAIL_TABLE, GUARDRAIL_LEDGER_TABLE and GUARDRAIL_TOPIC_ARN as the functions)"
                ),
            );
        }
    };
    let runtime = match crate::runtime(COMMAND) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(release(args, principal, config))
}

async fn release(args: &Args, principal: PrincipalRef, config: Config) -> ExitCode {
    let sdk = guardrail::aws::load().await;
    let who = match aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await {
        Ok(out) => out.arn.unwrap_or_else(|| "unknown caller".into()),
        Err(e) => return unusable(COMMAND, format!("cannot tell who you are (sts:GetCallerIdentity): {e}")),
    };
    let region = sdk
        .region()
        .and_then(|r| Region::parse(r.as_ref()))
        .or_else(|| Region::parse("us-east-1"))
        .unwrap_or_else(|| unreachable!("us-east-1 is a region"));
    // The same adapters as the function, so release acts through the same member role.
    let pipeline = guardrail::lambda::aws_pipeline(Function::AgentQuarantine, config, &sdk);
    let session = Session::new("release", &principal.name);
    eprintln!(
        "reading {principal} in account {} and its quarantine record…",
        principal.account
    );
    let facts = match pipeline.facts.principal(&session, &principal).await {
        Ok(Some(f)) => f,
        Ok(None) => {
            return unusable(
                COMMAND,
                format!("account {} is not a member of the organization", principal.account),
            );
        }
        Err(e) => {
            return unusable(
                COMMAND,
                format!(
                    "{e}\n(you need to assume the member role guardrail-agent-quarantine in the account and read Guardrail's table; see README, Troubleshooting)"
                ),
            );
        }
    };
    let now = Utc::now();
    let plan = match plan_release(&facts, region, &who, &args.reason, now) {
        Ok(p) => p,
        Err(refused) => return unusable(COMMAND, refused),
    };
    let mut steps = Vec::new();
    let how = Apply {
        dry_run: args.dry_run,
        stop_at_failure: true,
        pace: None,
        log: &|line| eprintln!("{line}"),
    };
    let failed = apply_steps(
        &pipeline.actuator,
        &session,
        &principal.account,
        &plan.actions,
        &how,
        &mut steps,
    )
    .await;
    // The release is Guardrail's change too: the ledger records each step made or tried.
    let event = format!("release#{}", guardrail::ledger::stamp(now));
    let source = Source {
        function: Function::AgentQuarantine,
        event: &event,
        time: now,
        recorded: now,
        attempt: 1,
        note: None,
    };
    let entries = ledger_entries(Some(&source), &plan, &steps);
    let (recorded, unrecorded) = match pipeline.ledger.append(&entries).await {
        Ok(_) => (entries.len(), None),
        Err(e) => (
            0,
            Some(format!(
                " (the audit ledger could not record it: {e}; see README, Troubleshooting)"
            )),
        ),
    };
    steps.extend(plan.notes.iter().map(|n| StepRow::new(n, "note", "")));

    let mut headline = if args.dry_run {
        format!("dry run: {} step(s) planned, nothing changed", plan.actions.len())
    } else if failed {
        "release incomplete: fix the failure and run the same command again (it is safe to repeat)".to_string()
    } else {
        let mut alert = Alert::for_plan(Function::AgentQuarantine, &plan, true, None, now);
        alert.action = "released".into();
        alert.title = format!("released {}", plan.subject);
        alert.happened = format!(
            "{who} released {principal} in account {}: {}",
            principal.account, args.reason
        );
        match pipeline.notifier.publish(&alert).await {
            Ok(()) => format!("released {principal}"),
            Err(e) => format!("released {principal}, but the alert could not be sent: {e}"),
        }
    };
    if let Some(unrecorded) = unrecorded {
        headline.push_str(&unrecorded);
    }
    let fields = json!({
        "recorded": recorded,
        "account": principal.account, "principal": principal.name, "kind": principal.kind,
        "environment": plan.environment, "released_by": who, "dry_run": args.dry_run,
    });
    let heading = format!(
        "{principal} in account {}, environment {}",
        principal.account,
        plan.environment.as_deref().unwrap_or("unknown")
    );
    steps::print(
        args.format,
        fields.as_object().cloned().unwrap_or_default(),
        &headline,
        &heading,
        &steps,
    );
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
