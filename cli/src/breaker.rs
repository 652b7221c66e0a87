//! `guardrail breaker status|reset`: a rule's blast-radius breaker in one account (README,
//! Safety rails). Tripped, the rule only detects there until a person resets it.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use guardrail::aws::BreakerTable;
use guardrail::breaker::State;
use guardrail::ids::AccountId;
use guardrail::policy::{Policy, Rule};
use serde_json::json;

use crate::{Format, unusable};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show a rule's breaker in an account: changes counted in the window, the limit, and
    /// whether (when, by which event) it tripped.
    ///
    /// Exit 0 when shown, 2 when the table cannot be read.
    Status(Target),
    /// Close a tripped breaker and forget its counts: the rule acts again in the account.
    /// Check what it did first (`guardrail audit --account ID --since 1h`).
    ///
    /// Exit 0 when reset, 2 when the breaker cannot be written.
    Reset(ResetArgs),
}

#[derive(clap::Args)]
pub struct Target {
    /// The rule: tags, baseline or quarantine.
    #[arg(long)]
    rule: String,
    /// The member account.
    #[arg(long)]
    account: String,
    /// Policy file (its safety.breaker); without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Guardrail's table; default GUARDRAIL_TABLE, else guardrail.
    #[arg(long)]
    table: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(clap::Args)]
pub struct ResetArgs {
    /// What was checked (a ticket, what the changes were): kept with the breaker.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    target: Target,
}

pub fn run(command: &Command) -> ExitCode {
    match command {
        Command::Status(target) => act("breaker status", target, None),
        Command::Reset(args) if args.reason.trim().is_empty() => {
            unusable("breaker reset", "--reason must say what was checked")
        }
        Command::Reset(args) => act("breaker reset", &args.target, Some(args.reason.trim())),
    }
}

fn act(command: &str, target: &Target, reason: Option<&str>) -> ExitCode {
    let Some(rule) = Rule::ALL.into_iter().find(|r| r.name() == target.rule) else {
        return unusable(
            command,
            format!("no rule {:?}; use tags, baseline or quarantine", target.rule),
        );
    };
    let Some(account) = AccountId::parse(&target.account) else {
        return unusable(
            command,
            format!("--account {:?} is not a 12-digit account id", target.account),
        );
    };
    let policy = match guardrail::config::load_policy(target.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => p,
        Err(e) => return unusable(command, e),
    };
    let table = crate::table_name(target.table.as_deref(), guardrail::config::TABLE_VAR, "guardrail");
    let runtime = match crate::runtime(command) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let breakers = BreakerTable::new(&sdk, &table);
        let now = Utc::now();
        let (state, reset) = match reason {
            None => (breakers.status(rule, &account).await, false),
            Some(reason) => {
                let by = match crate::caller(&sdk).await {
                    Ok(by) => by,
                    Err(e) => return unusable(command, e),
                };
                (breakers.reset(rule, &account, &by, reason, now).await, true)
            }
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                return unusable(
                    command,
                    format!("{e}\n(the breakers are in Guardrail's table {table}: set --table or GUARDRAIL_TABLE, with the security account's credentials)"),
                );
            }
        };
        print(target.format, &policy, rule, &account, &state, reset, now);
        ExitCode::SUCCESS
    })
}

/// The breaker as read (status) or as it was before the reset.
fn print(
    format: Format,
    policy: &Policy,
    rule: Rule,
    account: &AccountId,
    state: &State,
    reset: bool,
    now: chrono::DateTime<Utc>,
) {
    let window = policy.safety.breaker.window;
    let counted = state.counted(now, chrono::Duration::from_std(window).unwrap_or_default());
    let limit = policy.safety.breaker.limit(rule);
    let window_text = humantime::format_duration(window).to_string();
    let trip = state.trip.as_ref();
    match format {
        Format::Json => println!(
            "{}",
            json!({
                "rule": rule.name(),
                "account": account.to_string(),
                "reset": reset,
                "window": window_text,
                "limit": limit,
                "counted": counted,
                "tripped": trip.map(|t| json!({
                    "at": t.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "event": t.event,
                    "changes": t.count,
                })),
                "last_reset": state.reset,
            })
        ),
        Format::Text => {
            let limit = limit.map_or("none (breaker off)".to_string(), |l| l.to_string());
            let tripped = trip.map_or("no".to_string(), |t| {
                format!(
                    "yes, at {} by event {} ({} changes)",
                    t.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                    t.event,
                    t.count
                )
            });
            let before = if reset { " before the reset" } else { "" };
            println!("breaker of the {} rule in account {account}{before}:", rule.name());
            println!("  tripped:  {tripped}");
            println!("  changes:  {counted} in the last {window_text} (limit {limit})");
            if let Some(r) = &state.reset {
                println!("  last:     {r}");
            }
            if reset {
                println!(
                    "Reset: the {} rule acts again in {account}, its counts start from zero.",
                    rule.name()
                );
            } else if trip.is_some() {
                println!(
                    "The {} rule only detects in {account}. Check `guardrail audit --account {account} --since {window_text}`, then `guardrail breaker reset --rule {} --account {account} --reason TEXT`.",
                    rule.name(),
                    rule.name()
                );
            }
        }
    }
}
