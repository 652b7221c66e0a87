//! Checks the calls Guardrail's identities made during a test run (the emulator's call logs in
//! `GUARDRAIL_CALL_LOG_DIR`) against the IAM policies of `infra/`: every call must be granted to
//! the role that made it (or the run fails), and the granted actions no test made (apart from
//! those the emulator cannot see, listed below with the reason) are reported, for a test to
//! cover or the grant to go. A DynamoDB call on an item must also fall within the
//! `dynamodb:LeadingKeys` of a statement that grants it. `make test` runs it after the tests.
//!
//! Usage: iam-coverage DIR [--format json]

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use guardrail_tests::infra::{Statement, action_matches, role_statements};

/// Granted actions no emulator call shows, and why they are needed.
const UNSEEN: [(&str, &str); 11] = [
    ("logs:CreateLogStream", "the Lambda runtime writes the function's logs"),
    ("logs:PutLogEvents", "the Lambda runtime writes the function's logs"),
    (
        "sqs:SendMessage",
        "Lambda sends failed events to the OnFailure destination",
    ),
    (
        "kms:Decrypt",
        "DynamoDB, SNS and SQS use the key on the caller's behalf",
    ),
    (
        "kms:GenerateDataKey",
        "DynamoDB, SNS and SQS use the key on the caller's behalf",
    ),
    (
        "sts:SetSourceIdentity",
        "authorized with AssumeRole when it sets SourceIdentity",
    ),
    (
        "s3:GetBucketTagging",
        "the Tagging API reads a bucket's tags before TagResources",
    ),
    ("s3:PutBucketTagging", "the Tagging API's TagResources on a bucket"),
    ("lambda:TagResource", "the Tagging API's TagResources on a function"),
    ("lambda:UntagResource", "the Tagging API's UntagResources on a function"),
    ("lambda:ListTags", "the Tagging API reads a function's tags"),
];

/// The roles of `infra/` whose calls are checked: execution roles, member roles, management role.
const ROLES: [&str; 7] = [
    "guardrail-account-baseline-lambda",
    "guardrail-tag-enforcer-lambda",
    "guardrail-agent-quarantine-lambda",
    "guardrail-account-baseline",
    "guardrail-tag-enforcer",
    "guardrail-agent-quarantine",
    "guardrail-management",
];

/// The role whose policy governs a caller, or `None` for callers that are not Guardrail's.
fn role_of(caller: &str) -> Option<String> {
    let (_, rest) = caller
        .split_once(":user/")
        .or_else(|| caller.split_once(":assumed-role/"))?;
    let name = rest.split('/').next()?;
    let session = rest.split('/').nth(1).unwrap_or_default();
    if ROLES.contains(&name) {
        Some(name.to_string())
    } else if session.starts_with("guardrail-account-baseline") {
        // The bootstrap role is the account's administrator; its use is reported, not checked.
        Some(format!("bootstrap:{name}"))
    } else {
        None
    }
}

/// `service.Action` as the emulator logs it → the IAM action that authorizes it.
fn iam_action(call: &str) -> Option<String> {
    let (service, action) = call.split_once('.')?;
    let prefix = match service {
        "tagging" => "tag",
        "monitoring" => "cloudwatch",
        other => other,
    };
    match (service, action) {
        ("s3", "GET:/v20180820/configuration/publicAccessBlock") => Some("s3:GetAccountPublicAccessBlock".into()),
        ("s3", "PUT:/v20180820/configuration/publicAccessBlock") => Some("s3:PutAccountPublicAccessBlock".into()),
        ("lambda", "Invoke") => Some("lambda:InvokeFunction".into()),
        (_, a) if a.contains(':') || a.contains('/') => None,
        _ => Some(format!("{prefix}:{action}")),
    }
}

/// Items touched outside every `dynamodb:LeadingKeys` that grants the call, one line per role,
/// action and kind of key (the key up to its last `#`, where the ids begin).
fn outside_leading_keys(statements: &[Statement], keys: &BTreeSet<(String, String, String)>) -> BTreeSet<String> {
    let mut problems = BTreeSet::new();
    for (role, action, key) in keys {
        let granting: Vec<&Statement> = statements
            .iter()
            .filter(|s| s.owner == *role && s.allow && s.actions.iter().any(|a| action_matches(a, action)))
            .collect();
        let mut admitted = granting.is_empty(); // ungranted calls are reported above
        for s in granting {
            match s.admits_key(key) {
                Ok(true) => admitted = true,
                Ok(false) => {}
                Err(e) => {
                    problems.insert(e);
                    admitted = true;
                }
            }
        }
        if !admitted {
            let kind = key.rsplit_once('#').map_or(key.as_str(), |(k, _)| k);
            problems.insert(format!(
                "{role} called {action} on item {kind}#…, outside the dynamodb:LeadingKeys its policy allows"
            ));
        }
    }
    problems
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: iam-coverage DIR [--format json]   (DIR: the GUARDRAIL_CALL_LOG_DIR of a test run)");
        return ExitCode::from(2);
    };
    let json = args.iter().any(|a| a == "json");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot read {dir}: {e}; run the tests with GUARDRAIL_CALL_LOG_DIR={dir} first (make test does)");
            return ExitCode::from(2);
        }
    };
    // role → IAM action → calls
    let mut used: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut unnamed: BTreeSet<String> = BTreeSet::new();
    // role, IAM action, partition key: each DynamoDB item a Guardrail identity touched.
    let mut keys: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut logs = 0;
    for entry in entries.flatten() {
        logs += 1;
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(call), Some(_status), Some(caller)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let Some(role) = role_of(caller) else { continue };
            match iam_action(call) {
                Some(action) => {
                    if let Some(key) = fields.next().and_then(|f| f.strip_prefix("pk=")) {
                        keys.insert((role.clone(), action.clone(), key.to_string()));
                    }
                    *used.entry(role).or_default().entry(action).or_default() += 1;
                }
                None => {
                    unnamed.insert(format!("{role}: {call}"));
                }
            }
        }
    }
    let statements = role_statements();
    let mut problems = Vec::new();
    let mut rows = Vec::new();
    for role in ROLES {
        let grants: Vec<_> = statements.iter().filter(|s| s.owner == role).collect();
        let allowed: BTreeSet<&str> = grants
            .iter()
            .filter(|s| s.allow)
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        let calls = used.get(role).cloned().unwrap_or_default();
        for action in calls.keys() {
            if !allowed.iter().any(|a| action_matches(a, action)) {
                problems.push(format!("{role} called {action}, which its policy does not grant"));
            }
        }
        let mut unused = Vec::new();
        for granted in &allowed {
            let seen = calls.keys().any(|a| action_matches(granted, a));
            let unseen = UNSEEN.iter().any(|(a, _)| a == granted);
            if !seen && !unseen {
                unused.push(granted.to_string());
            }
        }
        rows.push((role, calls.values().sum::<usize>(), calls.len(), allowed.len(), unused));
    }
    problems.extend(outside_leading_keys(&statements, &keys));
    for u in &unnamed {
        problems.push(format!("cannot name the IAM action of {u}: add it to iam_action()"));
    }
    let bootstrap: BTreeMap<&String, usize> = used
        .iter()
        .filter(|(r, _)| r.starts_with("bootstrap:"))
        .map(|(r, a)| (r, a.len()))
        .collect();
    if json {
        let report = serde_json::json!({
            "logs": logs,
            "roles": rows.iter().map(|(r, c, a, g, u)| serde_json::json!({
                "role": r, "calls": c, "actions_used": a, "actions_granted": g, "granted_untested": u
            })).collect::<Vec<_>>(),
            "bootstrap_actions": bootstrap,
            "problems": problems,
        });
        println!("{report:#}");
    } else {
        println!("IAM coverage: {logs} emulator logs");
        println!(
            "{:<40} {:>6} {:>8} {:>8}  granted, no test calls it yet",
            "role", "calls", "actions", "granted"
        );
        for (role, calls, actions, granted, unused) in &rows {
            println!(
                "{role:<40} {calls:>6} {actions:>8} {granted:>8}  {}",
                if unused.is_empty() {
                    "-".to_string()
                } else {
                    unused.join(" ")
                }
            );
        }
        for (role, n) in &bootstrap {
            println!(
                "{role:<40} {:>6} {n:>8} {:>8}  (the account's administrator role)",
                "-", "admin"
            );
        }
        for p in &problems {
            println!("NOT GRANTED: {p}");
        }
    }
    if logs == 0 {
        eprintln!("{dir} holds no call logs: run the tests with GUARDRAIL_CALL_LOG_DIR={dir} first");
        return ExitCode::from(2);
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
