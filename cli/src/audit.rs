//! `guardrail audit`: what Guardrail did or planned, from the audit ledger (README, Audit
//! ledger), as a table, JSON lines' array or CSV.

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use guardrail::aws::LedgerTable;
use guardrail::ledger::{Entry, Outcome, Query, Values, stamp};

use crate::unusable;

const COMMAND: &str = "audit";

/// How the entries are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
pub struct Args {
    /// Only entries of this member account.
    #[arg(long)]
    account: Option<String>,
    /// Only entries of this resource, as the ledger names it: an id (i-..., sg-...), an ARN,
    /// or a baseline step (`ebs-encryption us-east-1`).
    #[arg(long)]
    resource: Option<String>,
    /// Only entries from this long ago (`7d`, `12h`) or this time (RFC 3339); without an
    /// account or a resource, 7d.
    #[arg(long)]
    since: Option<String>,
    /// Only entries of this rule: tags, baseline, quarantine, or kill-switch.
    #[arg(long)]
    rule: Option<String>,
    /// Only entries with these outcomes (comma-separated): applied, failed, not-run, detected,
    /// paused, held, waived, pending, rejected, expired.
    #[arg(long, value_delimiter = ',')]
    outcome: Vec<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// The ledger table; default GUARDRAIL_LEDGER_TABLE, else guardrail-ledger.
    #[arg(long)]
    table: Option<String>,
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    format: AuditFormat,
}

pub fn run(args: &Args) -> ExitCode {
    let now = Utc::now();
    let since = match args.since.as_deref().map(|s| since(s, now)) {
        Some(Err(e)) => return unusable(COMMAND, e),
        Some(Ok(t)) => Some(t),
        None if args.account.is_none() && args.resource.is_none() => Some(now - chrono::Duration::days(7)),
        None => None,
    };
    if let Some(account) = &args.account
        && guardrail::ids::AccountId::parse(account).is_none()
    {
        return unusable(COMMAND, format!("--account {account:?} is not a 12-digit account id"));
    }
    let mut outcomes = Vec::new();
    for name in &args.outcome {
        match Outcome::parse(name.trim()) {
            Some(o) => outcomes.push(o),
            None => {
                let known: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
                return unusable(
                    COMMAND,
                    format!("--outcome {name:?} is not an outcome; use {}", known.join(", ")),
                );
            }
        }
    }
    let table = crate::table_name(args.table.as_deref(), guardrail::config::LEDGER_VAR, "guardrail-ledger");
    let query = Query {
        account: args.account.clone(),
        resource: args.resource.clone(),
        since,
        rule: args.rule.clone(),
        outcomes,
        limit: Some(args.limit.max(1)),
    };
    let runtime = match crate::runtime(COMMAND) {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let ledger = LedgerTable::new(&sdk, &table, 1);
        let entries = match ledger.query(&query, now).await {
            Ok(e) => e,
            Err(e) => {
                return unusable(
                    COMMAND,
                    format!(
                        "{e}\n(reading {table} needs dynamodb:Query on the table and its indexes in the security account; see README, Audit ledger)"
                    ),
                );
            }
        };
        print(&entries, args.format);
        if args.format == AuditFormat::Table {
            eprintln!("{} entr{} from {table}", entries.len(), if entries.len() == 1 { "y" } else { "ies" });
        }
        ExitCode::SUCCESS
    })
}

/// `7d`, `12h`, `30m` ago, or an RFC 3339 time.
fn since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.to_utc());
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now - d)
        .ok_or_else(|| format!("--since {text:?} is neither a duration (7d, 12h) nor an RFC 3339 time"))
}

/// `Environment=prod, Owner=∅` for a table cell.
fn values(v: &Values) -> String {
    v.iter()
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("∅")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of the table and the CSV.
const HEADERS: [&str; 10] = [
    "time", "account", "rule", "outcome", "resource", "action", "before", "after", "cause", "event",
];

fn row(e: &Entry) -> [String; 10] {
    [
        stamp(e.time),
        e.account.clone(),
        e.rule.clone(),
        e.outcome.name().to_string(),
        e.resource.clone(),
        if e.action.is_empty() {
            e.detail.clone()
        } else {
            e.action.clone()
        },
        values(&e.before),
        values(&e.after),
        e.cause.clone(),
        e.event.clone(),
    ]
}

fn print(entries: &[Entry], format: AuditFormat) {
    match format {
        AuditFormat::Json => println!("{}", serde_json::to_string(entries).unwrap_or_default()),
        AuditFormat::Csv => {
            let mut out = csv::Writer::from_writer(std::io::stdout());
            let _ = out.write_record(HEADERS);
            for e in entries {
                let _ = out.write_record(row(e));
            }
            let _ = out.flush();
        }
        AuditFormat::Table => {
            // The table keeps to what a person scans; JSON and CSV carry every field in full.
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let [time, account, rule, outcome, resource, action, before, after, cause, _] = row(e);
                    vec![
                        time,
                        account,
                        rule,
                        outcome,
                        guardrail::ids::clip(&resource, 60),
                        guardrail::ids::clip(&action, 80),
                        guardrail::ids::clip(&format!("{before} → {after}"), 80),
                        cause,
                    ]
                })
                .collect();
            crate::steps::table(
                &[
                    "time",
                    "account",
                    "rule",
                    "outcome",
                    "resource",
                    "action",
                    "before → after",
                    "cause",
                ],
                &rows,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time_and_says_what_it_wanted() {
        let now = Utc::now();
        assert_eq!(since("7d", now), Ok(now - chrono::Duration::days(7)));
        assert_eq!(
            since("2026-11-01T00:00:00Z", now).map(stamp),
            Ok("2026-11-01T00:00:00.000Z".to_string())
        );
        assert!(since("last week", now).is_err_and(|e| e.contains("RFC 3339")));
    }
}
