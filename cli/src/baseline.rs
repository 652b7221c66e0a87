//! `guardrail baseline --account ID [--dry-run]`: the account baseline, on demand, for accounts
//! that existed before Guardrail. Same reads, same plan and same actions as `account-baseline`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::apply::Session;
use guardrail::aws::{AwsActuator, AwsInspector, MemberAccess};
use guardrail::ids::AccountId;
use guardrail::plan::Decision;
use guardrail::rules::Function;
use guardrail::rules::baseline::plan_account;
use serde_json::json;

use crate::{Format, unusable};

const COMMAND: &str = "baseline";
use crate::steps::{self, Step};

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
        .account(&session, &account, &guardrail::facts::Scope::All, &policy)
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => {
            return unusable(
                COMMAND,
                format!("account {account} is not a member of the organization"),
            );
        }
        Err(e) => {
            return unusable(
                COMMAND,
                format!(
                    "{e}\n(run with credentials of the management account or a delegated administrator; see README, Troubleshooting)"
                ),
            );
        }
    };
    let plan = match plan_account(&facts, false, &policy) {
        Decision::Ignore { reason } => {
            print_result(args, &account, None, &[], &format!("nothing to do: {reason}"));
            return ExitCode::SUCCESS;
        }
        Decision::Act { plan } => plan,
    };

    let mut steps: Vec<Step> = plan.in_place.iter().map(|c| Step::new(c, "in place", "")).collect();
    steps.extend(
        plan.unchecked
            .iter()
            .map(|u| Step::new(&u.check, "not checked", &u.error)),
    );
    let actuator = AwsActuator::new(access);
    let failed = steps::apply(
        &actuator,
        &session,
        &account,
        &plan.actions,
        args.dry_run,
        false,
        &mut steps,
    )
    .await
        || !plan.unchecked.is_empty();
    // What no action fixes needs a person; in detect mode, the rest would change.
    let detects = !plan.mode.fixes();
    for v in &plan.violations {
        if !v.fixable || detects {
            let status = if v.fixable { "would change" } else { "needs a person" };
            steps.push(Step::new(&v.resource, status, &v.problem));
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
