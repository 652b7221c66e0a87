//! `guardrail baseline --account ID [--dry-run]`: the account baseline, on demand, for accounts
//! that existed before Guardrail. Same reads, same plan and same actions as `account-baseline`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::apply::{Actuator, Session};
use guardrail::aws::{AwsActuator, AwsInspector, MemberAccess};
use guardrail::ids::AccountId;
use guardrail::plan::Decision;
use guardrail::rules::Function;
use guardrail::rules::baseline::plan_account;
use serde::Serialize;
use serde_json::json;

use crate::Format;

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
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One row of the summary.
#[derive(Serialize)]
struct Step {
    step: String,
    status: &'static str,
    detail: String,
}

fn unusable(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("guardrail baseline: {reason}");
    ExitCode::from(2)
}

pub fn run(args: &Args) -> ExitCode {
    let Some(account) = AccountId::parse(&args.account) else {
        return unusable(format!("--account {:?} is not a 12-digit account id", args.account));
    };
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => Arc::new(p),
        Err(e) => return unusable(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return unusable(format!("cannot start: {e}")),
    };
    runtime.block_on(baseline(args, account, policy))
}

async fn baseline(args: &Args, account: AccountId, policy: Arc<guardrail::policy::Policy>) -> ExitCode {
    let sdk = guardrail::aws::load().await;
    let access = MemberAccess::new(&sdk, policy.clone(), Function::AccountBaseline);
    let session = Session::new("cli-baseline", account.as_str());
    eprintln!(
        "reading account {account}: Organizations, then {} in {} region(s)…",
        policy.baseline.bootstrap_role,
        policy.baseline.regions.len()
    );
    let facts = match AwsInspector::new(access.clone())
        .account(&session, &account, &policy)
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => {
            return unusable(format!("account {account} is not a member of the organization"));
        }
        Err(e) => {
            return unusable(format!(
                "{e}\n(run with credentials of the management account or a delegated administrator; see README, Troubleshooting)"
            ));
        }
    };
    let plan = match plan_account(&facts, false, &policy) {
        Decision::Ignore { reason } => {
            print_result(args, &account, None, &[], &format!("nothing to do: {reason}"));
            return ExitCode::SUCCESS;
        }
        Decision::Act { plan } => plan,
    };

    let mut steps: Vec<Step> = plan
        .in_place
        .iter()
        .map(|c| Step {
            step: c.clone(),
            status: "in place",
            detail: String::new(),
        })
        .collect();
    steps.extend(plan.unchecked.iter().map(|u| Step {
        step: u.check.clone(),
        status: "not checked",
        detail: u.error.clone(),
    }));
    let mut failed = !plan.unchecked.is_empty();
    let actuator = AwsActuator::new(access);
    let total = plan.actions.len();
    for (i, action) in plan.actions.iter().enumerate() {
        if args.dry_run {
            steps.push(Step {
                step: action.to_string(),
                status: "would change",
                detail: String::new(),
            });
            continue;
        }
        eprint!("[{}/{total}] {action} … ", i + 1);
        match actuator.apply(&session, &account, action).await {
            Ok(()) => {
                eprintln!("done");
                steps.push(Step {
                    step: action.to_string(),
                    status: "done",
                    detail: String::new(),
                });
            }
            Err(e) => {
                eprintln!("FAILED");
                failed = true;
                steps.push(Step {
                    step: action.to_string(),
                    status: "failed",
                    detail: e.to_string(),
                });
            }
        }
    }
    // What no action fixes needs a person; in detect mode, the rest would change.
    let detects = !plan.mode.fixes();
    for v in &plan.violations {
        if !v.fixable || detects {
            steps.push(Step {
                step: v.resource.clone(),
                status: if v.fixable { "would change" } else { "needs a person" },
                detail: v.problem.clone(),
            });
        }
    }
    let planned = steps.iter().filter(|s| s.status == "would change").count();
    let headline = if detects {
        format!(
            "the policy runs the baseline in {} mode here: {planned} change(s) found, nothing changed",
            plan.mode.name()
        )
    } else if args.dry_run {
        format!("dry run: {planned} change(s) planned, nothing changed")
    } else if failed {
        "baseline incomplete: fix the failures and run it again".to_string()
    } else {
        "baseline applied".to_string()
    };
    print_result(args, &account, plan.environment.as_deref(), &steps, &headline);
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn print_result(args: &Args, account: &AccountId, environment: Option<&str>, steps: &[Step], headline: &str) {
    match args.format {
        Format::Json => println!(
            "{}",
            json!({"account": account, "environment": environment, "dry_run": args.dry_run, "result": headline, "steps": steps})
        ),
        Format::Text => {
            println!(
                "account {account}, environment {}: {headline}",
                environment.unwrap_or("unknown")
            );
            for s in steps {
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.detail)
                };
                println!("  {:<14}  {}{detail}", s.status, s.step);
            }
        }
    }
}
