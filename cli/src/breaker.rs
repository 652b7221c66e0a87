//! `guardrail breaker status|reset`: a rule's blast-radius breaker in one account (README,
//! Safety rails). Tripped, the rule only detects there until a person resets it.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use guardrail::aws::{BreakerTable, LedgerTable};
use guardrail::breaker::{self, State};
use guardrail::ids::{AccountId, clip};
use guardrail::ledger::{Entry, Ledger, Outcome, Values, stamp};
use guardrail::policy::{Policy, Rule};
use guardrail::rules::Function;
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
    /// Exit 0 when reset, 2 when the breaker cannot be written or the reset not recorded in
    /// the audit ledger.
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
    /// The audit ledger a reset is recorded in; default GUARDRAIL_LEDGER_TABLE, else
    /// guardrail-ledger.
    #[arg(long)]
    ledger_table: Option<String>,
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
        let mut by = None;
        let state = match reason {
            None => breakers.status(rule, &account).await,
            Some(reason) => match crate::caller(&sdk).await {
                Ok(caller) => breakers.reset(rule, &account, by.insert(caller), reason, now).await,
                Err(e) => return unusable(command, e),
            },
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
        print(target.format, &policy, rule, &account, &state, by.is_some(), now);
        if let (Some(by), Some(reason)) = (by, reason) {
            // Reopening a rule is a change to what Guardrail does: the ledger keeps who and why.
            let entry = reset_entry(&policy, rule, &account, &state, &by, reason, now);
            let ledger_table =
                crate::table_name(target.ledger_table.as_deref(), guardrail::config::LEDGER_VAR, "guardrail-ledger");
            let ledger = LedgerTable::new(&sdk, &ledger_table, policy.safety.ledger_days);
            if let Err(e) = ledger.append(&[entry]).await {
                eprintln!(
                    "guardrail breaker reset: the breaker is reset, but the audit ledger {ledger_table} could not record it: {e}\n(set --ledger-table or GUARDRAIL_LEDGER_TABLE; it needs dynamodb:PutItem on the table)"
                );
                return ExitCode::from(2);
            }
        }
        ExitCode::SUCCESS
    })
}

/// The ledger's record of a reset: the breaker's state before it, who and why.
fn reset_entry(
    policy: &Policy,
    rule: Rule,
    account: &AccountId,
    before: &State,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Entry {
    let window = chrono::Duration::from_std(policy.safety.breaker.window).unwrap_or_default();
    let function = Function::ALL
        .into_iter()
        .find(|f| f.rule() == rule)
        .unwrap_or(Function::TagEnforcer);
    let mut values = Values::new();
    values.insert("changes".into(), Some(before.counted(now, window).to_string()));
    values.insert(
        "tripped".into(),
        before
            .trip
            .as_ref()
            .map(|t| t.at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    Entry {
        account: account.to_string(),
        time: now,
        recorded: now,
        function: function.name().to_string(),
        rule: rule.name().to_string(),
        mode: "manual".into(),
        event: format!("breaker-reset#{}", stamp(now)),
        cause: clip(&format!("reset by {by}: {reason}"), 512),
        resource: breaker::key(rule, account),
        action: "reset the blast-radius breaker".into(),
        before: values,
        after: Values::from([
            ("changes".to_string(), Some("0".to_string())),
            ("tripped".to_string(), None),
        ]),
        outcome: Outcome::Applied,
        detail: clip(reason, 2000),
        attempt: 1,
    }
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
