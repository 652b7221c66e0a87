//! `guardrail plan FILE`: the same decode → gate → plan path as the functions, offline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use guardrail::apply::Session;
use guardrail::event::{self, Event, Rejection};
use guardrail::facts::StaticFacts;
use guardrail::plan::{Decision, Ignored, Plan};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use serde::Serialize;
use serde_json::json;

use crate::{Format, unusable};

const COMMAND: &str = "plan";

#[derive(clap::Args)]
pub struct Args {
    /// An event file: EventBridge event, CloudTrail record or log file, GuardDuty finding, SNS or
    /// SQS message.
    file: PathBuf,
    /// Policy file; without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The environment of the event's account (offline there is no Organizations to ask).
    #[arg(long = "env", value_name = "NAME")]
    environment: Option<String>,
    /// Only this function's rules (default: every function that handles the event).
    #[arg(long, value_parser = parse_function)]
    function: Option<Function>,
    /// Judge freshness as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "any_age")]
    at: Option<DateTime<Utc>>,
    /// Skip the freshness check: plan an old sample event as if it had just happened.
    #[arg(long)]
    any_age: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn parse_function(s: &str) -> Result<Function, String> {
    Function::from_name(s).ok_or_else(|| "expected account-baseline, tag-enforcer or agent-quarantine".to_string())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    event::time::parse(s).ok_or_else(|| format!("{s:?} is not a time such as 2026-11-22T09:15:07Z"))
}

/// What became of one event of the file.
#[derive(Serialize)]
struct Item {
    event: Option<String>,
    id: Option<String>,
    account: Option<String>,
    region: Option<String>,
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Rejected { code: &'static str, reason: String },
    Decisions(Vec<FunctionDecision>),
}

#[derive(Serialize)]
struct FunctionDecision {
    function: Function,
    #[serde(flatten)]
    decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

pub fn run(args: &Args) -> ExitCode {
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(Path::to_str)) {
        Ok((policy, _)) => policy,
        Err(e) => return unusable(COMMAND, e),
    };
    if let Some(env) = &args.environment
        && policy.environment(env).is_none()
    {
        return unusable(
            COMMAND,
            format!(
                "--env {env}: the policy has no such environment ({})",
                environments(&policy)
            ),
        );
    }
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => return unusable(COMMAND, format!("{}: {e}", args.file.display())),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(r) => r,
        Err(e) => return unusable(COMMAND, format!("cannot start: {e}")),
    };
    let items = runtime.block_on(decide_all(args, &policy, &bytes));
    if args.format == Format::Json {
        println!("{}", json!({"file": args.file.display().to_string(), "events": items}));
    }
    let rejections: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|i| match &i.verdict {
            Verdict::Rejected { code, reason } => Some((*code, reason.as_str())),
            Verdict::Decisions(_) => None,
        })
        .collect();
    if rejections.len() == items.len() {
        let (code, reason) = rejections[0];
        let hint = if code == "stale" {
            " (plan it anyway with --any-age)"
        } else {
            ""
        };
        let what = match items.len() {
            1 => "rejected".to_string(),
            n => format!("all {n} events rejected; the first"),
        };
        return unusable(
            COMMAND,
            format!("{}: {what} ({code}): {reason}{hint}", args.file.display()),
        );
    }
    if args.format == Format::Text {
        print!("{}", text(&args.file, &items));
    }
    ExitCode::SUCCESS
}

fn environments(policy: &Policy) -> String {
    policy
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

async fn decide_all(args: &Args, policy: &Policy, bytes: &[u8]) -> Vec<Item> {
    let facts = StaticFacts {
        default_environment: args.environment.clone(),
        ..StaticFacts::default()
    };
    let mut items = Vec::new();
    for decoded in event::decode(bytes) {
        let event = match decoded {
            Ok(e) => e,
            Err(r) => {
                items.push(Item {
                    event: None,
                    id: None,
                    account: None,
                    region: None,
                    verdict: rejected(&r),
                });
                continue;
            }
        };
        let verdict = decide_one(args, policy, &facts, &event).await;
        items.push(Item {
            event: Some(event.label()),
            id: event.id().map(str::to_string),
            account: event.account().map(ToString::to_string),
            region: event.region().map(ToString::to_string),
            verdict,
        });
    }
    items
}

async fn decide_one(args: &Args, policy: &Policy, facts: &StaticFacts, event: &Event) -> Verdict {
    let now = match (args.any_age, args.at) {
        (true, _) => event.time().unwrap_or_else(Utc::now),
        (false, Some(at)) => at,
        (false, None) => Utc::now(),
    };
    let functions: Vec<Function> = match args.function {
        Some(f) => vec![f],
        None => {
            let interested: Vec<Function> = Function::ALL.into_iter().filter(|f| f.handles(event)).collect();
            if interested.is_empty() {
                vec![Function::TagEnforcer]
            } else {
                interested
            }
        }
    };
    let mut decisions = Vec::new();
    for function in functions {
        let session = Session::new(function.name(), event.id().unwrap_or("event"));
        let decision = match guardrail::pipeline::decide(function, policy, facts, &session, event, now).await {
            Ok(Ok(d)) => d,
            Ok(Err(r)) => return rejected(&r),
            Err(e) => {
                return Verdict::Rejected {
                    code: "error",
                    reason: e.to_string(),
                };
            }
        };
        let note = (args.environment.is_none()
            && matches!(
                &decision,
                Decision::Ignore {
                    reason: Ignored::UnmanagedAccount { .. }
                }
            ))
        .then(|| {
            format!(
                "offline, the account's environment is unknown: pass --env {}",
                environments(policy)
            )
        });
        let note = note.or_else(|| match &decision {
            Decision::Act { plan } => {
                let needs = guardrail::approval::needed(plan, policy);
                (!needs.is_empty()).then(|| {
                    format!(
                        "{} needs a person's approval in environment {}: the function changes nothing and alerts with `guardrail approve ID`",
                        needs.join(" and "),
                        plan.environment.as_deref().unwrap_or("-")
                    )
                })
            }
            Decision::Ignore { .. } => None,
        });
        decisions.push(FunctionDecision {
            function,
            decision,
            note,
        });
    }
    Verdict::Decisions(decisions)
}

fn rejected(r: &Rejection) -> Verdict {
    Verdict::Rejected {
        code: r.code(),
        reason: r.to_string(),
    }
}

fn text(file: &Path, items: &[Item]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{}: {} event(s)", file.display(), items.len());
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for (n, item) in items.iter().enumerate() {
        let n = n + 1;
        let label = item.event.clone().unwrap_or_else(|| "input".into());
        match &item.verdict {
            Verdict::Rejected { code, reason } => {
                let _ = writeln!(t, "event {n}: {label}: rejected ({code}): {reason}");
            }
            Verdict::Decisions(decisions) => {
                let _ = writeln!(
                    t,
                    "event {n}: {label} (id {}, account {}, region {})",
                    or(&item.id),
                    or(&item.account),
                    or(&item.region)
                );
                for d in decisions {
                    match &d.decision {
                        Decision::Ignore { reason } => {
                            let _ = writeln!(t, "  {}: nothing to do, because {reason}", d.function);
                        }
                        Decision::Act { plan } => plan_text(&mut t, d.function, plan),
                    }
                    if let Some(note) = &d.note {
                        let _ = writeln!(t, "  note: {note}");
                    }
                }
            }
        }
    }
    t
}

fn plan_text(t: &mut String, function: Function, plan: &Plan) {
    let _ = writeln!(
        t,
        "  {function}: act on {} (rule {}, mode {}, environment {})",
        plan.subject,
        plan.rule.name(),
        plan.mode.name(),
        plan.environment.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(t, "    caused by {}", plan.cause);
    let _ = writeln!(t, "    violations:");
    for v in &plan.violations {
        let _ = writeln!(t, "      - {}: {}", v.resource, v.problem);
    }
    if plan.actions.is_empty() {
        let _ = writeln!(t, "    actions: none (mode {})", plan.mode.name());
        return;
    }
    let _ = writeln!(t, "    actions:");
    for a in &plan.actions {
        let _ = writeln!(t, "      - {a}");
    }
    let _ = writeln!(t, "    undo:");
    for u in &plan.undo {
        let _ = writeln!(t, "      {u}");
    }
}
