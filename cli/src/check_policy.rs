//! `guardrail check-policy [FILE]`: validate a policy and show what it means.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use guardrail::policy::{Policy, Rule};
use serde_json::json;

use crate::Format;

pub fn run(path: Option<&Path>, format: Format) -> ExitCode {
    let path_text = path.map(|p| p.to_string_lossy().into_owned());
    let (policy, origin) = match guardrail::config::load_policy(path_text.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            match format {
                Format::Json => println!("{}", json!({"valid": false, "error": e.to_string()})),
                Format::Text => eprintln!("guardrail check-policy: {e}"),
            }
            return ExitCode::FAILURE;
        }
    };
    match format {
        Format::Json => println!("{}", json!({"valid": true, "origin": origin, "policy": policy})),
        Format::Text => print!("{}", summary(&policy, &origin)),
    }
    ExitCode::SUCCESS
}

fn summary(policy: &Policy, origin: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "{origin}: valid");
    let _ = writeln!(
        t,
        "events: rejected when older than {} or more than {} in the future",
        humantime::format_duration(policy.freshness),
        humantime::format_duration(policy.clock_skew)
    );
    let _ = writeln!(t, "required tags: {}", policy.tags.required.join(", "));
    let _ = writeln!(t, "member role: {}", policy.member_role);
    let _ = writeln!(t);
    let _ = write!(t, "{:<12} {:<12}", "environment", "OU");
    for rule in Rule::ALL {
        let _ = write!(t, " {:<11}", rule.name());
    }
    let _ = writeln!(t);
    for env in &policy.environments {
        let _ = write!(t, "{:<12} {:<12}", env.name, env.ou);
        for rule in Rule::ALL {
            let _ = write!(t, " {:<11}", env.mode(rule).name());
        }
        let _ = writeln!(t);
    }
    let _ = writeln!(t);
    let patterns = |p: &[guardrail::policy::Pattern]| p.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        t,
        "Guardrail's own principals (ignored): {}",
        patterns(&policy.guardrail_principals)
    );
    let _ = writeln!(t, "protected principals: {}", patterns(&policy.protected_principals));
    let _ = writeln!(
        t,
        "kill switch: {}",
        policy.safety.pause_parameter.as_deref().unwrap_or("none")
    );
    let breaker = &policy.safety.breaker;
    let limits: Vec<String> = Rule::ALL
        .iter()
        .map(|r| match breaker.limit(*r) {
            Some(n) => format!("{} {n}", r.name()),
            None => format!("{} off", r.name()),
        })
        .collect();
    let _ = writeln!(
        t,
        "blast-radius breaker: changes per account within {}: {}",
        humantime::format_duration(breaker.window),
        limits.join(", ")
    );
    let waivers = &policy.safety.waivers;
    let _ = if waivers.setters.is_empty() {
        writeln!(t, "waivers: none honoured (no safety.waivers.setters)")
    } else {
        writeln!(
            t,
            "waivers: set by {}, at most {} days ahead",
            patterns(&waivers.setters),
            waivers.max_days
        )
    };
    let approvals: Vec<String> = policy
        .environments
        .iter()
        .filter(|e| !e.approval.is_empty())
        .map(|e| format!("{}: {}", e.name, e.approval.join(", ")))
        .collect();
    let _ = if approvals.is_empty() {
        writeln!(t, "human approval: nothing waits for a person")
    } else {
        writeln!(
            t,
            "human approval (expires after {}): {}",
            humantime::format_duration(policy.safety.approval_expiry),
            approvals.join("; ")
        )
    };
    t
}
