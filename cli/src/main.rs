//! `guardrail`: the operator CLI. Ask what Guardrail would do with an event, check a policy,
//! baseline an account, sweep the organization, release a quarantine, pause Guardrail, approve
//! what waits for a person, run the local demo.

mod approve;
mod audit;
mod baseline;
mod breaker;
mod check_policy;
mod demo;
mod deploy_member;
mod doctor;
mod operator;
mod pause;
mod plan;
mod record;
mod redrive;
mod release;
mod steps;
mod sweep;
mod undeploy_member;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "guardrail",
    version,
    about = "Guardrail operator CLI",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decide, offline, what Guardrail would do with the event(s) in FILE (decode → gate → plan).
    ///
    /// Exit 0 when it decided (including "ignored, because ..."); 2 when the input is unusable.
    Plan(plan::Args),
    /// Apply (or, with --dry-run, show) the account baseline to an existing account, with the
    /// AWS credentials of this shell (the management account or a delegated administrator).
    ///
    /// Exit 0 when done, 1 when some step failed, 2 when the account or policy is unusable.
    Baseline(baseline::Args),
    /// Check the account baseline in every account of the organization (or one account, or the
    /// accounts under one OU) and restore it where the policy's mode says so, with progress on
    /// stderr and a table of findings per account (or --format json). Same reads, plan and
    /// actions as account-baseline.
    ///
    /// Exit 0 when every account was checked (and, unless --dry-run, fixed as far as the policy
    /// allows), 1 when some account failed, 2 when the organization cannot be read.
    Sweep(sweep::Args),
    /// End a quarantine: remove what Guardrail added to the role or user, reactivate the access
    /// keys it deactivated, record who released it and why, and alert. Reads GUARDRAIL_TABLE and
    /// GUARDRAIL_TOPIC_ARN like the functions.
    ///
    /// Exit 0 when released, 1 when a step failed (run it again), 2 when nothing can be released.
    Release(release::Args),
    /// Print the EventBridge rule patterns of a function (a list: one rule each), generated
    /// from the tables and the policy it decides with (infra/patterns/ holds the same for the
    /// built-in policy, checked by the tests). `member-forwarding` prints the one rule a member
    /// account forwards API calls to the central bus with.
    Pattern {
        /// account-baseline, tag-enforcer, agent-quarantine or member-forwarding.
        function: String,
        /// Policy file; without it, the built-in infra/policy.toml.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Validate a policy file (default: the built-in policy) and summarise it.
    CheckPolicy {
        /// The policy file; without it, the built-in infra/policy.toml.
        policy: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Send dead-lettered events back through the function they failed in (lambda:Invoke, so
    /// the replay guard still decides), deleting each message once the function has dealt with
    /// it; with progress on stderr and a summary table (or --format json).
    ///
    /// Exit 0 when every message was redriven, 1 when some are left in the queue, 2 when the
    /// queue cannot be read.
    Redrive(redrive::Args),
    /// Pause Guardrail org-wide (the kill switch): every function only detects, within a
    /// minute, and every alert says so and why. Needs the security account's credentials.
    ///
    /// Exit 0 when paused, 2 when the switch cannot be written.
    Pause(pause::PauseArgs),
    /// End a pause: the functions act again, per the policy's modes, within a minute.
    Resume(pause::Common),
    /// A rule's blast-radius breaker in one account: `status`, or `reset` once a person has
    /// checked what tripped it. Needs the security account's credentials.
    Breaker {
        #[command(subcommand)]
        command: breaker::Command,
    },
    /// Approve a plan that waits for a person (README, Human approval): its event is decided on
    /// again with the accounts' state now, and that plan applied once, through the function's
    /// member roles; recorded in the audit ledger and alerted. Reads GUARDRAIL_TABLE,
    /// GUARDRAIL_LEDGER_TABLE, GUARDRAIL_TOPIC_ARN and GUARDRAIL_POLICY like the functions.
    ///
    /// Exit 0 when applied (or nothing was left to do), 1 when applying failed (run it again),
    /// 2 when it cannot be approved (unknown, expired, decided already, paused).
    Approve(approve::ApproveArgs),
    /// Reject a plan that waits for a person: nothing is changed; recorded in the audit ledger
    /// and alerted.
    ///
    /// Exit 0 when rejected, 2 when it cannot be (unknown, expired, decided already).
    Reject(approve::DecideArgs),
    /// List the plans waiting for a person's approval, soonest deadline first, and those that
    /// expired lately (or --format json).
    ///
    /// Exit 0 when listed, 2 when the table cannot be read.
    Approvals(approve::ListArgs),
    /// Show what Guardrail did or planned, from the audit ledger: every action taken, failed,
    /// held back or detected, per resource, with its values before and after and who caused it.
    /// Needs dynamodb:Query on the ledger table in the security account.
    ///
    /// Exit 0 when the ledger could be read, 2 when not.
    Audit(audit::Args),
    /// Create or bring up to date the member accounts' StackSets (member roles in us-east-1,
    /// forwarding in every policy Region) and add stack instances where an OU or Region has
    /// none, with operation preferences that go on past one bad account; what `make
    /// deploy-member` runs. A second run changes nothing.
    ///
    /// Exit 0 when every operation succeeded, 1 when one did not, 2 when the input is unusable
    /// or a call failed (run it again once fixed).
    DeployMember(deploy_member::Args),
    /// Take the member accounts' StackSets down: their stack instances (the stacks deleted),
    /// then the StackSets; what `make undeploy-member` runs, after the SCPs are detached
    /// (README, Teardown). --dry-run shows what it would delete.
    ///
    /// Exit 0 when both are gone, 2 when a call failed (run it again once fixed).
    UndeployMember(undeploy_member::Args),
    /// Check, read-only, what a deployment needs and whether it is in place (README, Deploy):
    /// one line per check, ok, missing, wrong or unknown, with the command that fixes it (or
    /// --format json). The organization's checks need the management account's credentials, the
    /// stack's the security account's.
    ///
    /// Exit 0 when every check is ok, 1 when something is missing, wrong or unreadable, 2 when
    /// it cannot start (no credentials, a bad policy).
    Doctor(doctor::Args),
    /// Start a local AWS emulator, seed an organization, replay events/ through the functions and
    /// show what happened and which alerts went out.
    Demo(demo::Args),
}

/// Output for people or for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Baseline(args) => baseline::run(&args),
        Command::Sweep(args) => sweep::run(&args),
        Command::Release(args) => release::run(&args),
        Command::CheckPolicy { policy, format } => check_policy::run(policy.as_deref(), format),
        Command::Pattern { function, policy } => pattern(&function, policy.as_deref()),
        Command::Demo(args) => demo::run(&args),
        Command::Doctor(args) => doctor::run(&args),
        Command::DeployMember(args) => deploy_member::run(&args),
        Command::UndeployMember(args) => undeploy_member::run(&args),
        Command::Redrive(args) => redrive::run(&args),
        Command::Pause(args) => pause::pause(&args),
        Command::Resume(args) => pause::resume(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Approve(args) => approve::approve(&args),
        Command::Reject(args) => approve::reject(&args),
        Command::Approvals(args) => approve::list(&args),
        Command::Breaker { command } => breaker::run(&command),
    }
}

fn pattern(function: &str, policy: Option<&std::path::Path>) -> ExitCode {
    let forwarding = function == "member-forwarding";
    let function = guardrail::rules::Function::from_name(function);
    if function.is_none() && !forwarding {
        eprintln!(
            "guardrail pattern: no such rules; use account-baseline, tag-enforcer, agent-quarantine or member-forwarding"
        );
        return ExitCode::from(2);
    }
    match guardrail::config::load_policy(policy.and_then(|p| p.to_str())) {
        Ok((policy, _)) => {
            let patterns = match function {
                Some(function) => function.event_patterns(&policy),
                None => vec![guardrail::rules::patterns::member_api_calls(&policy)],
            };
            println!("{}", serde_json::to_string_pretty(&patterns).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => unusable("pattern", e),
    }
}

/// Fails a command with a one-line reason on stderr and exit status 2.
fn unusable(command: &str, reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("guardrail {command}: {reason}");
    ExitCode::from(2)
}

/// A table's name: the flag, else the environment variable the functions read, else the name
/// `infra/template.yaml` gives it.
fn table_name(flag: Option<&str>, var: &str, default: &str) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var(var).ok().filter(|t| !t.is_empty()))
        .unwrap_or_else(|| default.to_string())
}

/// The ARN of the credentials this shell runs with, for records of who did what.
async fn caller(sdk: &guardrail::aws::SdkConfig) -> Result<String, String> {
    match aws_sdk_sts::Client::new(sdk).get_caller_identity().send().await {
        Ok(me) => Ok(me.arn().unwrap_or("unknown").to_string()),
        Err(e) => Err(format!(
            "{}\n(run with credentials of the security account)",
            aws_sdk_sts::error::DisplayErrorContext(e)
        )),
    }
}

/// The runtime of a command that calls AWS, or the exit status when none can start.
fn runtime(command: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| unusable(command, format!("cannot start: {e}")))
}
