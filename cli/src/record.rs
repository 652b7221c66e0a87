//! The audit ledger's record of what a person's CLI command changed (`guardrail baseline`,
//! `guardrail sweep`, `guardrail pause`): who ran it, under which event key, and where the entries go.

use chrono::{DateTime, Utc};
use guardrail::aws::{LedgerTable, SdkConfig};
use guardrail::ledger::{Entry, Ledger, Source, stamp};
use guardrail::policy::Policy;
use guardrail::rules::Function;

/// Who ran the command and where its changes are recorded.
pub struct Record {
    ledger: LedgerTable,
    table: String,
    /// `<command>#<time>`: the ledger's event of every entry the run writes.
    event: String,
    /// `guardrail <command> run by <ARN>`: the cause and detail of its entries.
    pub by: String,
    /// The caller's ARN.
    pub who: String,
    pub time: DateTime<Utc>,
}

impl Record {
    /// The record of one run of `command` by the shell's credentials, into `--ledger-table`,
    /// else `GUARDRAIL_LEDGER_TABLE`, else `guardrail-ledger`.
    pub async fn start(sdk: &SdkConfig, command: &str, table: Option<&str>, policy: &Policy) -> Result<Record, String> {
        let who = crate::caller(sdk).await?;
        let table = crate::table_name(table, guardrail::config::LEDGER_VAR, "guardrail-ledger");
        let time = Utc::now();
        Ok(Record {
            ledger: LedgerTable::new(sdk, &table, policy.safety.ledger_days),
            table,
            event: format!("cli-{command}#{}", stamp(time)),
            by: format!("guardrail {command} run by {who}"),
            who,
            time,
        })
    }

    /// The account the caller's credentials belong to (the security account).
    pub fn account(&self) -> String {
        self.who.split(':').nth(4).unwrap_or_default().to_string()
    }

    /// The ledger's event of the run's entries.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The record of a run that may change something; `None` for a dry run, which does not.
    pub async fn unless_dry_run(
        dry_run: bool,
        sdk: &SdkConfig,
        command: &str,
        table: Option<&str>,
        policy: &Policy,
    ) -> Result<Option<Record>, String> {
        if dry_run {
            return Ok(None);
        }
        Record::start(sdk, command, table, policy).await.map(Some)
    }

    /// The source of the entries of one function's changes.
    pub fn source(&self, function: Function) -> Source<'_> {
        Source {
            function,
            event: &self.event,
            time: self.time,
            recorded: Utc::now(),
            attempt: 1,
            note: Some(&self.by),
        }
    }

    /// Writes the entries; `Err` says what was not recorded and what to do.
    pub async fn append(&self, entries: &[Entry]) -> Result<(), String> {
        match self.ledger.append(entries).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "{} change(s) were made but not recorded in the audit ledger {}: {e} (set --ledger-table or GUARDRAIL_LEDGER_TABLE; it needs dynamodb:PutItem on the table); note them in your ticket",
                entries.len(),
                self.table
            )),
        }
    }
}
