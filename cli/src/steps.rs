//! The steps of a CLI run that changes AWS (`baseline`, `release`): applied one by one with
//! progress on stderr, then printed as a summary table or JSON.

use guardrail::apply::{Actuator, Session};
use guardrail::ids::AccountId;
use guardrail::plan::Action;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::Format;

/// One row of the summary.
#[derive(Serialize)]
pub struct Step {
    pub step: String,
    pub status: &'static str,
    pub detail: String,
}

impl Step {
    pub fn new(step: impl Into<String>, status: &'static str, detail: impl Into<String>) -> Step {
        Step {
            step: step.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// Applies `actions` in order (or, in a dry run, lists them), with `[i/n]` progress on stderr.
/// With `stop_at_failure`, the steps after a failed one are not tried (they depend on it).
/// Returns whether a step failed.
pub async fn apply(
    actuator: &impl Actuator,
    session: &Session,
    account: &AccountId,
    actions: &[Action],
    dry_run: bool,
    stop_at_failure: bool,
    steps: &mut Vec<Step>,
) -> bool {
    let total = actions.len();
    let mut failed = false;
    for (i, action) in actions.iter().enumerate() {
        if dry_run {
            steps.push(Step::new(action.to_string(), "would change", ""));
            continue;
        }
        if failed && stop_at_failure {
            steps.push(Step::new(action.to_string(), "not tried", "an earlier step failed"));
            continue;
        }
        eprint!("[{}/{total}] {action} … ", i + 1);
        match actuator.apply(session, account, action).await {
            Ok(()) => {
                eprintln!("done");
                steps.push(Step::new(action.to_string(), "done", ""));
            }
            Err(e) => {
                eprintln!("FAILED");
                failed = true;
                steps.push(Step::new(action.to_string(), "failed", e.to_string()));
            }
        }
    }
    failed
}

/// Prints the result: a headline and a table for people, one JSON object for scripts.
pub fn print(format: Format, mut fields: Map<String, Value>, headline: &str, heading: &str, steps: &[Step]) {
    match format {
        Format::Json => {
            fields.insert("result".into(), headline.into());
            fields.insert("steps".into(), serde_json::to_value(steps).unwrap_or_default());
            println!("{}", Value::Object(fields));
        }
        Format::Text => {
            println!("{heading}: {headline}");
            for s in steps {
                let detail = if s.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.detail)
                };
                println!("  {:<14}  {}{detail}", s.status, s.step);
            }
        }
    }
}

/// Prints a table: a header line and one line per row, each column as wide as its widest cell
/// (the last column is not padded).
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
