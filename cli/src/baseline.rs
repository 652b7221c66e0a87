//! `guardrail baseline --account ID [--dry-run]`: the account baseline, on demand, for accounts
//! that existed before Guardrail. Same reads, same plan and same actions as `account-baseline`;
//! [`run_account`] is also each account's step of `guardrail sweep`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::apply::Session;
use guardrail::aws::{AwsActuator, AwsInspector, MemberAccess};
use guardrail::facts::Scope;
use guardrail::ids::AccountId;
use guardrail::plan::{Decision, Ignored};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail::rules::baseline::plan_account;
use serde_json::json;

use crate::steps::{self, Step};
use crate::{Format, unusable};

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
    let access = MemberAccess::new(&sdk, policy.clone(), Function::AccountBaseline);
    eprintln!(
        "reading account {account}: Organizations, then the account in {} region(s)…",
        policy.baseline.regions.len()
    );
    let run = match run_account(&access, &account, &policy, args.dry_run).await {
        Ok(run) => run,
        Err(reason) => return unusable(COMMAND, reason),
    };
    if let Some(reason) = &run.nothing {
        print_result(args, &account, None, &[], &format!("nothing to do: {reason}"));
        return ExitCode::SUCCESS;
    }
    let planned = run.count("would change");
    let headline = if let Some(mode) = run.detects {
        format!("the policy runs the baseline in {mode} mode here: {planned} change(s) found, nothing changed")
    } else if args.dry_run {
        format!("dry run: {planned} change(s) planned, nothing changed")
    } else if run.failed {
        "baseline incomplete: fix the failures and run it again".to_string()
    } else {
        "baseline applied".to_string()
    };
    print_result(args, &account, run.environment.as_deref(), &run.steps, &headline);
    if run.failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One account's baseline run: what was in place, changed, left for a person, or failed.
pub struct AccountRun {
    pub environment: Option<String>,
    pub steps: Vec<Step>,
    /// A step failed or a check could not be made.
    pub failed: bool,
    /// `None` when something was planned; the reason when there was nothing to do.
    pub nothing: Option<String>,
    /// The policy runs the baseline in a mode that only reports.
    pub detects: Option<&'static str>,
    /// Checks found in place.
    pub in_place: usize,
}

impl AccountRun {
    /// How many steps ended with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

/// Reads one account, plans its baseline and applies it (or, in a dry run, lists it), with
/// per-step progress on stderr. `Err`: the account cannot be baselined, with the reason.
pub async fn run_account(
    access: &MemberAccess,
    account: &AccountId,
    policy: &Policy,
    dry_run: bool,
) -> Result<AccountRun, String> {
    let session = Session::new("cli-baseline", account.as_str());
    let facts = match AwsInspector::new(access.clone())
        .account(&session, account, &Scope::All, policy)
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => return Err(format!("account {account} is not a member of the organization")),
        Err(e) => {
            return Err(format!(
                "{e}\n(run with credentials of the management account or a delegated administrator; see README, Troubleshooting)"
            ));
        }
    };
    let plan = match plan_account(&facts, false, policy) {
        Decision::Ignore { reason } => {
            let in_place = match reason {
                Ignored::Compliant { checked } => checked,
                _ => 0,
            };
            return Ok(AccountRun {
                environment: None,
                steps: Vec::new(),
                failed: false,
                nothing: Some(reason.to_string()),
                detects: None,
                in_place,
            });
        }
        Decision::Act { plan } => plan,
    };
    let mut steps: Vec<Step> = plan.in_place.iter().map(|c| Step::new(c, "in place", "")).collect();
    steps.extend(
        plan.unchecked
            .iter()
            .map(|u| Step::new(&u.check, "not checked", &u.error)),
    );
    let actuator = AwsActuator::new(access.clone());
    let failed = steps::apply(&actuator, &session, account, &plan.actions, dry_run, false, &mut steps).await
        || !plan.unchecked.is_empty();
    // What no action fixes needs a person; in detect mode, the rest would change.
    let detects = !plan.mode.fixes();
    for v in &plan.violations {
        if !v.fixable || detects {
            let status = if v.fixable { "would change" } else { "needs a person" };
            steps.push(Step::new(&v.resource, status, &v.problem));
        }
    }
    Ok(AccountRun {
        environment: plan.environment.clone(),
        in_place: plan.in_place.len(),
        steps,
        failed,
        nothing: None,
        detects: detects.then(|| plan.mode.name()),
    })
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
