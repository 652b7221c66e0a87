//! `guardrail pause --reason TEXT` and `guardrail resume`: the kill switch (README, Safety
//! rails). Paused, every function only detects, org-wide, within a minute.

use std::path::PathBuf;
use std::process::ExitCode;

use guardrail::aws::SsmSwitch;
use guardrail::ids::clip;
use guardrail::ledger::{Entry, Outcome, Values};
use guardrail::pause::{Pause, Switch, active_value, paused_value};

use crate::record::Record;
use crate::{Format, unusable};

#[derive(clap::Args)]
pub struct PauseArgs {
    /// Why (an incident, a bad policy push): every alert while paused quotes it.
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
pub struct Common {
    /// Policy file (its safety.pause_parameter); without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The audit ledger the switch's change is recorded in; default GUARDRAIL_LEDGER_TABLE,
    /// else guardrail-ledger.
    #[arg(long)]
    ledger_table: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn pause(args: &PauseArgs) -> ExitCode {
    if args.reason.trim().is_empty() {
        return unusable("pause", "--reason must say why");
    }
    set("pause", Some(&args.reason), &args.common)
}

pub fn resume(args: &Common) -> ExitCode {
    set("resume", None, args)
}

/// Writes the switch: paused with `reason`, or active.
fn set(command: &str, reason: Option<&str>, args: &Common) -> ExitCode {
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => p,
        Err(e) => return unusable(command, e),
    };
    let Some(name) = policy.safety.pause_parameter.clone() else {
        return unusable(command, "the policy has no kill switch: set safety.pause_parameter");
    };
    let runtime = match crate::runtime(command) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let record = match Record::start(&sdk, command, args.ledger_table.as_deref(), &policy).await {
            Ok(r) => r,
            Err(e) => return unusable(command, e),
        };
        let by = record.who.clone();
        let now = record.time;
        let value = match reason {
            Some(r) => paused_value(r, &by, now),
            None => active_value(&by, now),
        };
        let switch = SsmSwitch::new(&sdk, Some(name.clone()));
        // What it was, for the ledger; unreadable, the ledger says so.
        let before = match switch.state().await {
            Ok(Pause::Paused { detail }) => detail,
            Ok(Pause::Active) => "active".to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        if let Err(e) = switch.set(&value).await {
            return unusable(
                command,
                format!("{e}\n(the SCP lets only break-glass-* roles change {name}; see README, Safety rails)"),
            );
        }
        // The switch is set whatever the ledger says: in an emergency, pausing comes first.
        let entry = switch_entry(&record, &name, reason, &before, &value);
        if let Err(e) = record.append(&[entry]).await {
            eprintln!("guardrail {command}: {e}");
        }
        let paused = reason.is_some();
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::json!({"parameter": name, "paused": paused, "value": value})
            ),
            Format::Text if paused => println!(
                "Guardrail is paused: every function only detects, org-wide, within a minute.\n{name} = {value}\n`guardrail resume` lets it act again."
            ),
            Format::Text => println!(
                "Guardrail acts again within a minute, per the policy's modes.\n{name} = {value}"
            ),
        }
        ExitCode::SUCCESS
    })
}

/// The ledger's record of the switch's change: who, why, and its value before and after.
fn switch_entry(record: &Record, parameter: &str, reason: Option<&str>, before: &str, after: &str) -> Entry {
    let (action, cause) = match reason {
        Some(r) => (
            "pause Guardrail org-wide",
            format!("paused by {}: {}", record.who, r.trim()),
        ),
        None => ("resume Guardrail", format!("resumed by {}", record.who)),
    };
    Entry {
        account: record.account(),
        time: record.time,
        recorded: record.time,
        function: "guardrail".into(),
        rule: "kill-switch".into(),
        mode: "manual".into(),
        event: record.event().to_string(),
        cause: clip(&cause, 512),
        resource: parameter.to_string(),
        action: action.into(),
        before: Values::from([("value".to_string(), Some(clip(before, 500)))]),
        after: Values::from([("value".to_string(), Some(clip(after, 500)))]),
        outcome: Outcome::Applied,
        detail: clip(reason.unwrap_or_default().trim(), 2000),
        attempt: 1,
    }
}
