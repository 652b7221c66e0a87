//! `guardrail baseline --account ID [--dry-run]`: the account baseline, on demand, for accounts
//! that existed before Guardrail. Same reads, same plan and same actions as `account-baseline`,
//! through the sweeps' [`Runner`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::apply::Session;
use guardrail::aws::{AwsActuator, AwsInspector, MemberAccess};
use guardrail::ids::AccountId;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail::sweep::{Runner, StepRow};
use serde_json::json;

use crate::record::Record;
use crate::{Format, steps, unusable};

const COMMAND: &str = "baseline";

#[derive(clap::Args)]
pub struct Args {
    /// The account to baseline (12 digits).
    #[arg(long)]
    account: String,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Policy file; without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The audit ledger the changes are recorded in; default GUARDRAIL_LEDGER_TABLE, else
    /// guardrail-ledger.
    #[arg(long)]
    ledger_table: Option<String>,
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
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => Arc::new(p),
        Err(e) => return unusable(COMMAND, e),
    };
    let runtime = match crate::runtime(COMMAND) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(baseline(args, account, policy))
}

async fn baseline(args: &Args, account: AccountId, policy: Arc<Policy>) -> ExitCode {
    let sdk = guardrail::aws::load().await;
    let policy = crate::operator::policy(&sdk, policy).await;
    let access = MemberAccess::new(&sdk, policy.clone(), Function::AccountBaseline);
    eprintln!(
        "reading account {account}: Organizations, then the account in {} region(s)…",
        policy.baseline.regions.len()
    );
    // What a person changes is in the ledger too; a dry run changes nothing.
    let record = match Record::unless_dry_run(args.dry_run, &sdk, COMMAND, args.ledger_table.as_deref(), &policy).await
    {
        Ok(r) => r,
        Err(e) => return unusable(COMMAND, e),
    };
    let source = record.as_ref().map(|r| r.source(Function::AccountBaseline));
    let inspector = AwsInspector::new(access.clone());
    let runner = Runner {
        inspector: &inspector,
        actuator: &AwsActuator::new(access),
        policy: &policy,
        dry_run: args.dry_run,
        pace: None,
        log: &|line| eprintln!("{line}"),
        record: source.as_ref(),
        // A person runs this: what the environment's approval list names is applied.
        approvals: false,
    };
    let run = match runner
        .account(&Session::new("cli-baseline", account.as_str()), &account)
        .await
    {
        Ok(run) => run,
        Err(reason) => return unusable(COMMAND, reason),
    };
    if let Some(reason) = &run.nothing {
        print_result(args, &account, None, &[], &format!("nothing to do: {reason}"));
        return ExitCode::SUCCESS;
    }
    let planned = run.count("would change");
    let unrecorded = match &record {
        Some(record) if !run.entries.is_empty() => record.append(&run.entries).await.err(),
        _ => None,
    };
    let headline = if let Some(mode) = run.detects {
        format!("the policy runs the baseline in {mode} mode here: {planned} change(s) found, nothing changed")
    } else if args.dry_run {
        format!("dry run: {planned} change(s) planned, nothing changed")
    } else if run.failed {
        "baseline incomplete: fix the failures and run it again".to_string()
    } else {
        "baseline applied".to_string()
    };
    let headline = match &unrecorded {
        Some(e) => format!("{headline}; {e}"),
        None => headline,
    };
    print_result(args, &account, run.environment.as_deref(), &run.steps, &headline);
    if run.failed || unrecorded.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_result(args: &Args, account: &AccountId, environment: Option<&str>, steps: &[StepRow], headline: &str) {
    let fields = json!({"account": account, "environment": environment, "dry_run": args.dry_run});
    let heading = format!("account {account}, environment {}", environment.unwrap_or("unknown"));
    steps::print(
        args.format,
        fields.as_object().cloned().unwrap_or_default(),
        headline,
        &heading,
        steps,
    );
}
