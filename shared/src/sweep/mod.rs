//! Sweeps: the baseline, and every listed resource's tags, checked (and, per mode, restored) in
//! many accounts, from the CLI (`guardrail sweep`) or on a schedule in account-baseline and
//! tag-enforcer, whose progress is kept in DynamoDB so that a follow-up invocation carries on
//! where the last one stopped. One summary per sweep.

#[cfg(feature = "aws")]
mod account;
#[cfg(feature = "aws")]
mod run;
#[cfg(feature = "aws")]
mod tags;

#[cfg(feature = "aws")]
pub use account::{AccountRun, Apply, Runner, StepRow, apply_steps, ledger_entries};
#[cfg(feature = "aws")]
pub use run::Sweeper;
#[cfg(feature = "aws")]
pub use tags::{TagRun, TagRunner};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alert::{Alert, Severity};
use crate::event::Rejection;
use crate::ids::{AccountId, clip};
use crate::policy::Rule;
use crate::rules::Function;

/// The top-level key of a sweep request; every other input is an event.
pub const INPUT_KEY: &str = "guardrail-sweep";
/// Accounts with findings listed one by one in a sweep's record and summary; the rest are
/// counted. Keeps the record within DynamoDB's item size and the alert within SNS's.
const MAX_ROWS: usize = 200;
/// OUs one sweep request may name.
const MAX_OUS: usize = 50;
/// The keys a request to start a sweep may have.
const START_KEYS: [&str; 5] = ["name", "time", "accounts", "ous", "dry_run"];

/// What a sweep invocation is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Start a sweep (EventBridge Scheduler, or a person invoking the function).
    Start(Start),
    /// Carry on with a recorded sweep (the follow-up invocation a sweep sends itself).
    Continue { id: String },
}

/// A sweep to start: `{"guardrail-sweep": {"name": "daily", "time": "2026-11-23T03:00:00Z",
/// "accounts": [...], "ous": [...], "dry_run": false}}`. Without accounts and OUs, every
/// account of the organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// The schedule's name: with `time`, it names the sweep, so a retried delivery of one
    /// scheduled run is the same sweep.
    pub name: String,
    /// When the sweep was scheduled; too old (the policy's freshness window) is rejected.
    pub time: DateTime<Utc>,
    pub accounts: Vec<AccountId>,
    pub ous: Vec<String>,
    pub dry_run: bool,
}

impl Request {
    /// The sweep request in `input`; `None` when the input is not one (an event).
    pub fn from_input(input: &Value) -> Option<Result<Request, Rejection>> {
        input.as_object()?.get(INPUT_KEY).map(parse)
    }

    /// The sweep this request is about.
    pub fn id(&self) -> String {
        match self {
            Request::Start(s) => format!("{}@{}", s.name, s.time.to_rfc3339_opts(SecondsFormat::Secs, true)),
            Request::Continue { id } => id.clone(),
        }
    }

    /// The input that makes this request.
    pub fn to_input(&self) -> Value {
        let body = match self {
            Request::Continue { id } => json!({ "continue": id }),
            Request::Start(s) => json!({
                "name": s.name,
                "time": s.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                "accounts": s.accounts,
                "ous": s.ous,
                "dry_run": s.dry_run,
            }),
        };
        json!({ INPUT_KEY: body })
    }
}

fn parse(body: &Value) -> Result<Request, Rejection> {
    let bad = |detail: String| Rejection::MalformedRecord {
        detail: format!("{INPUT_KEY}: {detail}"),
    };
    let Some(fields) = body.as_object() else {
        return Err(bad("not an object".into()));
    };
    if let Some(id) = fields.get("continue") {
        if fields.len() > 1 {
            return Err(bad("\"continue\" takes no other keys".into()));
        }
        return match id.as_str().filter(|id| is_sweep_id(id)) {
            Some(id) => Ok(Request::Continue { id: id.to_string() }),
            None => Err(bad(format!(
                "\"continue\" is {}, not a sweep id (NAME@TIME)",
                clip(&id.to_string(), 80)
            ))),
        };
    }
    if let Some(key) = fields.keys().find(|k| !START_KEYS.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown key {:?}; a sweep takes {}, or \"continue\" alone",
            clip(key, 64),
            START_KEYS.join(", ")
        )));
    }
    let name = match fields.get("name") {
        None => "sweep".to_string(),
        Some(v) => match v.as_str().filter(|n| is_name(n)) {
            Some(n) => n.to_string(),
            None => {
                return Err(bad(format!(
                    "\"name\" is {}, not 1-64 letters, digits, '-', '_' or '.'",
                    clip(&v.to_string(), 80)
                )));
            }
        },
    };
    let field = "guardrail-sweep.time";
    let time = match fields.get("time") {
        None => return Err(Rejection::MissingField { field }),
        Some(v) => v
            .as_str()
            .and_then(crate::event::time::parse)
            .ok_or_else(|| Rejection::BadTimestamp {
                field,
                value: clip(&v.to_string(), 80),
            })?,
    };
    let strings = |key: &str| -> Result<Vec<&str>, Rejection> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) if items.len() <= 1000 => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .ok_or_else(|| bad(format!("\"{key}\" holds {}, not a string", clip(&i.to_string(), 80))))
                })
                .collect(),
            Some(_) => Err(bad(format!("\"{key}\" is not a list of at most 1000 strings"))),
        }
    };
    let accounts = strings("accounts")?
        .into_iter()
        .map(|a| {
            AccountId::parse(a).ok_or_else(|| Rejection::BadAccountId {
                field: "guardrail-sweep.accounts",
                value: clip(a, 80),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ous = strings("ous")?;
    // Each OU is a walk of the organization's tree: a request must not make thousands.
    if ous.len() > MAX_OUS {
        return Err(bad(format!("\"ous\" names {} OUs; at most {MAX_OUS}", ous.len())));
    }
    if let Some(ou) = ous.iter().find(|ou| ou.trim().is_empty() || ou.chars().count() > 128) {
        return Err(bad(format!("\"ous\" holds {:?}, not an OU name", clip(ou, 80))));
    }
    let dry_run = match fields.get("dry_run") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| bad("\"dry_run\" is not true or false".into()))?,
    };
    Ok(Request::Start(Start {
        name,
        time,
        accounts,
        ous: ous.into_iter().map(str::to_string).collect(),
        dry_run,
    }))
}

fn is_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `NAME@TIME`, as [`Request::id`] makes them.
fn is_sweep_id(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(name, time)| is_name(name) && crate::event::time::parse(time).is_some())
}

/// What one account's check came to, per rule: the columns of a sweep's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub in_place: usize,
    pub changed: usize,
    /// Changes a dry run or `detect` mode left unmade.
    pub would_change: usize,
    pub needs_a_person: usize,
    /// Steps that failed and checks that could not be made.
    pub failed: usize,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.in_place += other.in_place;
        self.changed += other.changed;
        self.would_change += other.would_change;
        self.needs_a_person += other.needs_a_person;
        self.failed += other.failed;
    }

    /// Nothing to report: everything was in place.
    pub fn clean(&self) -> bool {
        self.changed + self.would_change + self.needs_a_person + self.failed == 0
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.changed, "changed"),
            (self.would_change, "would change"),
            (self.needs_a_person, "need(s) a person"),
            (self.failed, "failed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            parts.push(format!("{} in place", self.in_place));
        }
        parts.join(", ")
    }
}

/// One account of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub account: String,
    pub name: String,
    pub environment: Option<String>,
    /// Per rule (`baseline`, ...).
    pub rules: BTreeMap<String, Tally>,
    /// The first thing a person should read: a failure, what needs a person, or why there
    /// was nothing to do.
    pub note: String,
}

impl Row {
    /// The account's counts over every rule.
    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for r in self.rules.values() {
            t.add(r);
        }
        t
    }

    /// An account that could not be checked at all.
    pub fn failed(account: &AccountId, name: &str, rule: Rule, reason: &str) -> Row {
        Row {
            account: account.to_string(),
            name: name.to_string(),
            environment: None,
            rules: BTreeMap::from([(
                rule.name().to_string(),
                Tally {
                    failed: 1,
                    ..Tally::default()
                },
            )]),
            note: reason.lines().next().unwrap_or_default().to_string(),
        }
    }
}

/// How many accounts ended which way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// Everything in place.
    pub clean: usize,
    /// Something changed, nothing failed.
    pub changed: usize,
    /// Something would change or needs a person; nothing changed or failed.
    pub to_review: usize,
    pub failed: usize,
}

/// A sweep's record: what it covers, how far it got, and what it found so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub id: String,
    pub dry_run: bool,
    pub started: DateTime<Utc>,
    /// The accounts to check, in order (never the management account).
    pub accounts: Vec<AccountId>,
    /// How many of `accounts` are done.
    pub next: usize,
    /// Invocations that worked on it.
    pub legs: u32,
    /// Counts per rule over every account done.
    pub totals: BTreeMap<String, Tally>,
    pub tally: Accounts,
    /// Accounts with something to report, in order, at most [`MAX_ROWS`].
    pub rows: Vec<Row>,
    /// Accounts with something to report beyond [`MAX_ROWS`], counted only.
    pub unlisted: usize,
    /// What the reader should know about the sweep as a whole (accounts skipped, say).
    pub notes: Vec<String>,
    pub finished: Option<DateTime<Utc>>,
}

impl Progress {
    pub fn new(id: String, dry_run: bool, started: DateTime<Utc>, accounts: Vec<AccountId>) -> Progress {
        Progress {
            id,
            dry_run,
            started,
            accounts,
            next: 0,
            legs: 0,
            totals: BTreeMap::new(),
            tally: Accounts::default(),
            rows: Vec::new(),
            unlisted: 0,
            notes: Vec::new(),
            finished: None,
        }
    }

    /// The next account to check, if any.
    pub fn pending(&self) -> Option<&AccountId> {
        self.accounts.get(self.next)
    }

    /// Records the next account's result.
    pub fn record(&mut self, row: Row) {
        self.next += 1;
        for (rule, t) in &row.rules {
            self.totals.entry(rule.clone()).or_default().add(t);
        }
        let total = row.total();
        let bucket = if total.failed > 0 {
            &mut self.tally.failed
        } else if total.changed > 0 {
            &mut self.tally.changed
        } else if total.clean() {
            &mut self.tally.clean
        } else {
            &mut self.tally.to_review
        };
        *bucket += 1;
        if total.clean() {
            return;
        }
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        } else {
            self.unlisted += 1;
        }
    }

    /// One line: how the sweep ended (or stands).
    pub fn headline(&self) -> String {
        let a = &self.tally;
        format!(
            "swept {} account(s){}: {} changed, {} to review, {} failed, {} in place",
            self.next,
            if self.dry_run { " (dry run)" } else { "" },
            a.changed,
            a.to_review,
            a.failed,
            a.clean
        )
    }

    /// The one alert a finished sweep sends: counts per account and rule, not one per finding.
    pub fn summary(&self, function: Function, now: DateTime<Utc>) -> Alert {
        let a = &self.tally;
        let severity = if a.failed > 0 {
            Severity::High
        } else if a.changed > 0 || self.totals.values().any(|t| t.needs_a_person > 0) {
            Severity::Medium
        } else if a.to_review > 0 {
            Severity::Low
        } else {
            Severity::Info
        };
        let why = self
            .rows
            .iter()
            .map(|r| {
                let rules: Vec<String> = r
                    .rules
                    .iter()
                    .filter(|(_, t)| !t.clean())
                    .map(|(rule, t)| format!("{rule}: {}", t.describe()))
                    .collect();
                let note = if r.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.note)
                };
                format!(
                    "{} {} [{}]: {}{note}",
                    r.account,
                    r.name,
                    r.environment.as_deref().unwrap_or("no environment"),
                    rules.join("; ")
                )
            })
            .collect();
        let done = self
            .totals
            .iter()
            .map(|(rule, t)| {
                format!(
                    "{rule}: {} in place, {} changed, {} would change, {} need(s) a person, {} failed",
                    t.in_place, t.changed, t.would_change, t.needs_a_person, t.failed
                )
            })
            .collect();
        let mut notes = self.notes.clone();
        if self.unlisted > 0 {
            notes.push(format!(
                "{} more account(s) with findings are counted above but not listed",
                self.unlisted
            ));
        }
        if !self.rows.is_empty() {
            notes.push(
                "look at one account again with `guardrail sweep --account ID` (add --dry-run to change nothing)"
                    .into(),
            );
        }
        Alert {
            function,
            severity,
            rule: function.rule().name().to_string(),
            action: "swept".into(),
            title: self.headline(),
            account: None,
            environment: None,
            region: None,
            resources: Vec::new(),
            happened: format!(
                "Sweep {} checked {} account(s) between {} and {} in {} invocation(s){}.",
                self.id,
                self.next,
                self.started.to_rfc3339_opts(SecondsFormat::Secs, true),
                now.to_rfc3339_opts(SecondsFormat::Secs, true),
                self.legs,
                if self.dry_run {
                    "; a dry run, so nothing was changed"
                } else {
                    ""
                }
            ),
            cause: None,
            why,
            done,
            in_place: if a.clean > 0 {
                vec![format!("{} account(s) had everything in place", a.clean)]
            } else {
                Vec::new()
            },
            undo: Vec::new(),
            notes,
            event_id: Some(self.id.clone()),
            time: now,
        }
        .fit()
    }
}

/// The alert for a sweep stopped by a failure that a retry cannot fix (a configuration or
/// permission problem).
pub fn failure_alert(function: Function, id: &str, error: &crate::Error, now: DateTime<Utc>) -> Alert {
    Alert {
        function,
        severity: Severity::High,
        rule: function.rule().name().to_string(),
        action: "failed".into(),
        title: format!("sweep {id} stopped"),
        account: None,
        environment: None,
        region: None,
        resources: Vec::new(),
        happened: format!("Sweep {id} stopped and will not be retried as is."),
        cause: None,
        why: vec![error.to_string()],
        done: Vec::new(),
        in_place: Vec::new(),
        undo: Vec::new(),
        notes: vec![
            "fix the cause (the schedule's input, permissions), then run `guardrail sweep` or wait for the next scheduled sweep".into(),
        ],
        event_id: Some(id.to_string()),
        time: now,
    }
    .fit()
}

/// Spaces a sweep's write calls in one account: an action that makes `n` writes holds the
/// next one back `n / per_second` seconds. Over any stretch of time, the account sees at most
/// `per_second` writes a second plus one action's worth.
#[derive(Debug)]
pub struct Pace {
    per_second: u32,
    free_at: Option<Instant>,
}

impl Pace {
    pub fn new(per_second: u32) -> Pace {
        Pace {
            per_second: per_second.max(1),
            free_at: None,
        }
    }

    /// How long an action making `writes` calls must wait at `now` before it starts; books
    /// its calls.
    pub fn delay(&mut self, now: Instant, writes: u32) -> Duration {
        let start = self.free_at.filter(|f| *f > now).unwrap_or(now);
        self.free_at = Some(start + Duration::from_secs_f64(f64::from(writes) / f64::from(self.per_second)));
        start - now
    }
}

#[cfg(test)]
mod tests;
