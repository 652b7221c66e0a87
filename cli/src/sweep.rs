//! `guardrail sweep [--account ID | --ou NAME] [--rules baseline,tags] [--dry-run]`: the account
//! baseline and every listed resource's tags checked (and, per mode, restored) in every account
//! of the organization or of one OU, with progress on stderr and a table of findings per account
//! and rule.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use guardrail::apply::Session;
use guardrail::aws::organization::{self, Selection};
use guardrail::aws::{AwsActuator, AwsDirectory, AwsInspector, Inventory, MemberAccess};
use guardrail::ids::AccountId;
use guardrail::policy::{Policy, Rule};
use guardrail::rules::Function;
use guardrail::sweep::{Row, Runner, TagRunner, Tally};
use serde::Serialize;

use crate::record::Record;
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
    /// What to check: the account baseline, every listed resource's tags, or both.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Check::Baseline, Check::Tags])]
    rules: Vec<Check>,
    /// Show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Policy file; without it, the built-in infra/policy.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// The audit ledger the changes are recorded in; default GUARDRAIL_LEDGER_TABLE, else
    /// guardrail-ledger.
    #[arg(long)]
    ledger_table: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// A rule a sweep can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Check {
    /// The account baseline, through `guardrail-account-baseline`.
    Baseline,
    /// Every listed resource's tags, through `guardrail-tag-enforcer`.
    Tags,
}

impl Check {
    fn rule(self) -> Rule {
        match self {
            Check::Baseline => Rule::Baseline,
            Check::Tags => Rule::Tags,
        }
    }
}

/// One account's line of the summary, for one rule.
#[derive(Serialize)]
struct Line {
    account: String,
    name: String,
    rule: &'static str,
    environment: String,
    #[serde(flatten)]
    tally: Tally,
    note: String,
}

impl Line {
    fn new(row: Row, rule: Rule) -> Line {
        Line {
            tally: row.total(),
            account: row.account,
            name: row.name,
            rule: rule.name(),
            environment: row.environment.unwrap_or_else(|| "-".into()),
            note: row.note,
        }
    }
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
    let policy = crate::operator::policy(&sdk, policy).await;
    let access = MemberAccess::new(&sdk, policy.clone(), Function::AccountBaseline);
    let session = guardrail::apply::Session::new("cli-sweep", "list");
    let listed = match access.management(&session).await {
        Ok(organizations) => organization::members(&organizations, std::slice::from_ref(selection)).await,
        Err(e) => Err(e),
    };
    let members = match listed {
        Ok(m) => m,
        Err(e) => {
            return unusable(
                COMMAND,
                format!("{e}\n(run with credentials of the management account or a delegated administrator)"),
            );
        }
    };
    if let (Selection::Account(id), true) = (selection, members.accounts.is_empty()) {
        return unusable(COMMAND, format!("account {id} is not a member of the organization"));
    }
    // What a person changes is in the ledger too; a dry run changes nothing.
    let record = match Record::unless_dry_run(args.dry_run, &sdk, COMMAND, args.ledger_table.as_deref(), &policy).await
    {
        Ok(r) => r,
        Err(e) => return unusable(COMMAND, e),
    };
    let baseline_source = record.as_ref().map(|r| r.source(Function::AccountBaseline));
    let tags_source = record.as_ref().map(|r| r.source(Function::TagEnforcer));
    let cause = record
        .as_ref()
        .map_or_else(|| "guardrail sweep".to_string(), |r| r.by.clone());
    let inspector = AwsInspector::new(access.clone());
    let log = |line: &str| eprintln!("{line}");
    let baseline = Runner {
        inspector: &inspector,
        actuator: &AwsActuator::new(access.clone()),
        policy: &policy,
        dry_run: args.dry_run,
        pace: Some(policy.sweep.writes_per_second),
        log: &log,
        record: baseline_source.as_ref(),
        // A person runs this: what the environment's approval list names is applied.
        approvals: false,
    };
    let tag_access = MemberAccess::new(&sdk, policy.clone(), Function::TagEnforcer);
    let directory = AwsDirectory::without_table(Function::TagEnforcer, &sdk, policy.clone());
    let inventory = Inventory::new(tag_access.clone());
    let tag_actuator = AwsActuator::new(tag_access);
    let tags = TagRunner {
        directory: &directory,
        inventory: &inventory,
        actuator: &tag_actuator,
        policy: &policy,
        dry_run: args.dry_run,
        pace: Some(policy.sweep.writes_per_second),
        log: &log,
        cause: &cause,
        record: tags_source.as_ref(),
        now: chrono::Utc::now(),
        // A person runs this: what the environment's approval list names is applied.
        approvals: false,
    };
    let total = members.accounts.len();
    let mut rows = Vec::new();
    for (i, m) in members.accounts.iter().enumerate() {
        eprintln!("== [{}/{total}] account {} ({})", i + 1, m.account, m.name);
        if let Some(note) = members.skipped(m) {
            rows.push(Line {
                account: m.account.to_string(),
                name: m.name.clone(),
                rule: "-",
                environment: "-".into(),
                tally: Tally::default(),
                note,
            });
            continue;
        }
        let session = Session::new("cli-sweep", m.account.as_str());
        for check in &args.rules {
            let run = match check {
                Check::Baseline => baseline
                    .account(&session, &m.account)
                    .await
                    .map(|run| (run.row(&m.account, &m.name), run.entries)),
                Check::Tags => tags
                    .account(&session, &m.account)
                    .await
                    .map(|run| (run.row(&m.account, &m.name), run.entries)),
            };
            let (row, entries) =
                run.unwrap_or_else(|reason| (Row::failed(&m.account, &m.name, check.rule(), &reason), Vec::new()));
            let mut line = Line::new(row, check.rule());
            if let (Some(record), false) = (&record, entries.is_empty())
                && let Err(e) = record.append(&entries).await
            {
                eprintln!("{e}");
                line.tally.failed += 1;
                line.note = format!("could not record {} change(s) in the audit ledger", entries.len());
            }
            rows.push(line);
        }
    }
    print(&rows, args.format, args.dry_run);
    if rows.iter().any(|r| r.tally.failed > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print(rows: &[Line], format: Format, dry_run: bool) {
    let sum = |f: fn(&Tally) -> usize| rows.iter().map(|r| f(&r.tally)).sum::<usize>();
    let totals = serde_json::json!({
        "accounts": rows.iter().map(|r| r.account.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
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
                r.rule.to_string(),
                r.environment.clone(),
                r.tally.in_place.to_string(),
                r.tally.changed.to_string(),
                r.tally.would_change.to_string(),
                r.tally.needs_a_person.to_string(),
                r.tally.failed.to_string(),
                r.note.clone(),
            ]
        })
        .collect();
    crate::steps::table(
        &[
            "account",
            "name",
            "rule",
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
    let accounts: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.account.as_str()).collect();
    println!(
        "{} account(s){}: {} changed, {} would change, {} need a person, {} failed",
        accounts.len(),
        if dry_run { " (dry run)" } else { "" },
        sum(|r| r.changed),
        sum(|r| r.would_change),
        sum(|r| r.needs_a_person),
        sum(|r| r.failed)
    );
}
