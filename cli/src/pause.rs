//! `guardrail pause --reason TEXT` and `guardrail resume`: the kill switch (README, Safety
//! rails). Paused, every function only detects, org-wide, within a minute.

use std::path::PathBuf;
use std::process::ExitCode;

use guardrail::aws::SsmSwitch;
use guardrail::pause::{active_value, paused_value};

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
        let by = match crate::caller(&sdk).await {
            Ok(by) => by,
            Err(e) => return unusable(command, e),
        };
        let now = chrono::Utc::now();
        let value = match reason {
            Some(r) => paused_value(r, &by, now),
            None => active_value(&by, now),
        };
        if let Err(e) = SsmSwitch::new(&sdk, Some(name.clone())).set(&value).await {
            return unusable(
                command,
                format!("{e}\n(the SCP lets only break-glass-* roles change {name}; see README, Safety rails)"),
            );
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
