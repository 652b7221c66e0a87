//! `guardrail`: the operator CLI. Ask what Guardrail would do with an event, check a policy, run
//! the local demo.

mod baseline;
mod check_policy;
mod demo;
mod plan;

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
    /// Print the EventBridge rule pattern of a function, generated from the tables it decides
    /// with (infra/patterns/ holds the same, checked by the tests).
    Pattern {
        /// account-baseline or tag-enforcer.
        function: String,
    },
    /// Validate a policy file (default: the built-in policy) and summarise it.
    CheckPolicy {
        /// The policy file; without it, the built-in infra/policy.toml.
        policy: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
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
        Command::CheckPolicy { policy, format } => check_policy::run(policy.as_deref(), format),
        Command::Pattern { function } => pattern(&function),
        Command::Demo(args) => demo::run(&args),
    }
}

fn pattern(function: &str) -> ExitCode {
    match guardrail::rules::Function::from_name(function).and_then(|f| f.event_pattern()) {
        Some(p) => {
            println!("{}", serde_json::to_string_pretty(&p).unwrap_or_default());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("guardrail pattern: no event pattern for {function:?}; use account-baseline or tag-enforcer");
            ExitCode::from(2)
        }
    }
}
