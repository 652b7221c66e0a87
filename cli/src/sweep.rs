//! `guardrail sweep [--account ID | --ou NAME] [--dry-run]`: the account baseline checked (and,
//! per mode, restored) in every account of the organization or of one OU, with progress on
//! stderr and a table of findings per account.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::aws::MemberAccess;
use guardrail::aws::organization::{self, Selection};
use guardrail::ids::AccountId;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use serde::Serialize;

use crate::baseline::run_account;
use crate::{Format, unusable};

const COMMAND: &str = "sweep";

#[derive(clap::Args)]
pub struct Args {
    /// Only this account (12 digits).
    #[arg(long, conflicts_with = "ou")]
    account: Option<String>,
    /// Only the accounts under this OU, at any depth (its name, as the policy's environments
    /// name OUs).
    #[arg(long)]
    ou: Option<String>,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Policy file; without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One account's line of the summary.
#[derive(Serialize)]
struct Row {
    account: String,
    name: String,
    environment: String,
    in_place: usize,
    changed: usize,
    /// Changes a dry run or `detect` mode left unmade.
    would_change: usize,
    needs_a_person: usize,
    failed: usize,
    note: String,
}

pub fn run(args: &Args) -> ExitCode {
    let selection = match (&args.account, &args.ou) {
        (Some(raw), _) => match AccountId::parse(raw) {
            Some(id) => Selection::Account(id),
            None => return unusable(COMMAND, format!("--account {raw:?} is not a 12-digit account id")),
        },
        (None, Some(ou)) => Selection::Ou(ou.clone()),
        (None, None) => Selection::All,
    };
    let policy = match guardrail::config::load_policy(args.policy.as_deref().and_then(|p| p.to_str())) {
        Ok((p, _)) => Arc::new(p),
        Err(e) => return unusable(COMMAND, e),
    };
    let runtime = match crate::runtime(COMMAND) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(sweep(args, &selection, policy))
}

async fn sweep(args: &Args, selection: &Selection, policy: Arc<Policy>) -> ExitCode {
    let sdk = guardrail::aws::load().await;
    let access = MemberAccess::new(&sdk, policy.clone(), Function::AccountBaseline);
    let session = guardrail::apply::Session::new("cli-sweep", "list");
    let (management, members) = match organization::members(&access, &session, selection).await {
        Ok(m) => (m.management, m.accounts),
        Err(e) => {
            return unusable(
                COMMAND,
                format!("{e}\n(run with credentials of the management account or a delegated administrator)"),
            );
        }
    };
    if let (Selection::Account(id), true) = (selection, members.is_empty()) {
        return unusable(COMMAND, format!("account {id} is not a member of the organization"));
    }
    let total = members.len();
    let mut rows = Vec::new();
    for (i, m) in members.iter().enumerate() {
        eprintln!("== [{}/{total}] account {} ({})", i + 1, m.account, m.name);
        let mut row = Row {
            account: m.account.to_string(),
            name: m.name.clone(),
            environment: "-".into(),
            in_place: 0,
            changed: 0,
            would_change: 0,
            needs_a_person: 0,
            failed: 0,
            note: String::new(),
        };
        if management.as_ref() == Some(&m.account) {
            row.note = "the organization's management account: Guardrail does not baseline it".into();
            rows.push(row);
            continue;
        }
        match run_account(&access, &m.account, &policy, args.dry_run).await {
            Err(reason) => {
                row.failed = 1;
                row.note = reason.lines().next().unwrap_or_default().to_string();
            }
            Ok(run) => {
                row.environment = run.environment.clone().unwrap_or_else(|| "-".into());
                row.in_place = run.in_place;
                row.changed = run.count("done");
                row.would_change = run.count("would change");
                row.needs_a_person = run.count("needs a person");
                row.failed = run.count("failed") + run.count("not checked");
                row.note = match (&run.nothing, run.detects) {
                    (Some(reason), _) => reason.clone(),
                    (None, Some(mode)) => format!("{mode} mode: nothing changed"),
                    (None, None) => run
                        .steps
                        .iter()
                        .find(|s| s.status == "needs a person" || s.status == "failed")
                        .map(|s| format!("{}: {}", s.step, s.detail))
                        .unwrap_or_default(),
                };
            }
        }
        rows.push(row);
    }
    print(&rows, args.format, args.dry_run);
    if rows.iter().any(|r| r.failed > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print(rows: &[Row], format: Format, dry_run: bool) {
    let sum = |f: fn(&Row) -> usize| rows.iter().map(f).sum::<usize>();
    let totals = serde_json::json!({
        "accounts": rows.len(),
        "in_place": sum(|r| r.in_place),
        "changed": sum(|r| r.changed),
        "would_change": sum(|r| r.would_change),
        "needs_a_person": sum(|r| r.needs_a_person),
        "failed": sum(|r| r.failed),
    });
    if format == Format::Json {
        println!(
            "{}",
            serde_json::json!({"dry_run": dry_run, "accounts": rows, "totals": totals})
        );
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.account.clone(),
                r.name.clone(),
                r.environment.clone(),
                r.in_place.to_string(),
                r.changed.to_string(),
                r.would_change.to_string(),
                r.needs_a_person.to_string(),
                r.failed.to_string(),
                r.note.clone(),
            ]
        })
        .collect();
    crate::steps::table(
        &[
            "account",
            "name",
            "environment",
            "in place",
            "changed",
            "would change",
            "needs a person",
            "failed",
            "note",
        ],
        &table,
    );
    println!(
        "{} account(s){}: {} changed, {} would change, {} need a person, {} failed",
        rows.len(),
        if dry_run { " (dry run)" } else { "" },
        sum(|r| r.changed),
        sum(|r| r.would_change),
        sum(|r| r.needs_a_person),
        sum(|r| r.failed)
    );
}
