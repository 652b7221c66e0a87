//! `guardrail doctor`: a read-only preflight of what a deployment needs and whether it is in
//! place, one line per check (`ok`, `missing`, `wrong`, or `unknown` when these credentials cannot
//! read it) with the command that fixes it. Run it before deploying and after, in the management
//! account for the organization's checks and in the security account for the stack's.

mod organization;
mod security_account;

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::{Format, unusable};

#[derive(clap::Args)]
pub struct Args {
    /// Policy file (its OUs, kill switch); without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The security account (Guardrail's stack, GuardDuty's delegated administrator, the
    /// security account's SCP); default: the account these credentials are in.
    #[arg(long)]
    security_account: Option<String>,
    /// Guardrail's stack in the security account (make deploy's STACK).
    #[arg(long, default_value = "guardrail")]
    stack: String,
    /// The artifact bucket `make deploy` packages into (BUCKET): checked for its name and Region.
    #[arg(long)]
    bucket: Option<String>,
    /// What `make deploy` is given as RESERVED_CONCURRENCY: `on` needs a concurrency quota that
    /// leaves Lambda's 100 unreserved.
    #[arg(long, value_parser = ["on", "off"], default_value = "on")]
    reserved_concurrency: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Missing,
    Wrong,
    /// These credentials cannot read it: run from the account the fix names.
    Unknown,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Missing => "missing",
            Status::Wrong => "wrong",
            Status::Unknown => "unknown",
        }
    }
}

/// One check's result: what was found and, unless it is ok, the command that fixes it.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn not(check: &'static str, status: Status, detail: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A check these credentials could not read, with the call that failed and where to run it.
    pub fn unreadable(check: &'static str, call: &str, error: impl std::fmt::Display, run_from: &str) -> Finding {
        let error = error.to_string();
        let error = error.lines().next().unwrap_or_default();
        Finding::not(
            check,
            Status::Unknown,
            format!("{call} failed: {}", guardrail::ids::clip(error, 200)),
            format!("run guardrail doctor with credentials of {run_from}"),
        )
    }
}

/// What every check may read.
pub struct Context {
    pub sdk: guardrail::aws::SdkConfig,
    pub policy: guardrail::policy::Policy,
    /// The account these credentials are in.
    pub account: String,
    pub security_account: String,
    pub region: String,
    pub bucket: Option<String>,
    pub reserve_concurrency: bool,
    pub stack: String,
}

pub fn run(args: &Args) -> ExitCode {
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => p,
        Err(e) => return unusable("doctor", e),
    };
    if let Some(a) = &args.security_account
        && guardrail::ids::AccountId::parse(a).is_none()
    {
        return unusable(
            "doctor",
            format!("--security-account {a:?} is not a 12-digit account id"),
        );
    }
    let runtime = match crate::runtime("doctor") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let me = match aws_sdk_sts::Client::new(&sdk).get_caller_identity().send().await {
            Ok(me) => me.account().unwrap_or_default().to_string(),
            Err(e) => {
                return unusable(
                    "doctor",
                    format!(
                        "no usable credentials ({}): set AWS_PROFILE or sign in, then run it again",
                        aws_sdk_sts::error::DisplayErrorContext(e)
                    ),
                );
            }
        };
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let context = Context {
            security_account: args.security_account.clone().unwrap_or_else(|| me.clone()),
            account: me,
            region,
            sdk,
            policy,
            bucket: args.bucket.clone(),
            reserve_concurrency: args.reserved_concurrency == "on",
            stack: args.stack.clone(),
        };
        let mut progress = Progress(0);
        let mut findings = organization::checks(&context, &mut progress).await;
        findings.extend(security_account::checks(&context, &mut progress).await);
        eprintln!("\r{:<72}", format!("guardrail doctor: {} checks run", progress.0));
        print(args.format, &context, &findings);
        if findings.iter().all(|f| f.status == Status::Ok) {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}

fn print(format: Format, context: &Context, findings: &[Finding]) {
    let count = |s: Status| findings.iter().filter(|f| f.status == s).count();
    let summary = format!(
        "{} ok, {} missing, {} wrong, {} unknown",
        count(Status::Ok),
        count(Status::Missing),
        count(Status::Wrong),
        count(Status::Unknown)
    );
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "account": context.account,
                "security_account": context.security_account,
                "region": context.region,
                "summary": summary,
                "checks": findings,
            })
        ),
        Format::Text => {
            let rows: Vec<Vec<String>> = findings
                .iter()
                .map(|f| vec![f.status.name().into(), f.check.into(), f.detail.clone()])
                .collect();
            crate::steps::table(&["status", "check", "found"], &rows);
            let fixes: Vec<&Finding> = findings.iter().filter(|f| f.fix.is_some()).collect();
            if !fixes.is_empty() {
                println!("\nto fix:");
                for f in fixes {
                    println!("  {}: {}", f.check, f.fix.as_deref().unwrap_or_default());
                }
            }
            println!("\ndoctor ({} in {}): {summary}", context.account, context.region);
        }
    }
}

/// Progress on stderr: which check runs now.
pub struct Progress(usize);

impl Progress {
    pub fn step(&mut self, check: &str) {
        self.0 += 1;
        eprint!("\rguardrail doctor: {:>2} {check:<56}", self.0);
    }
}
