//! Counts of what happened to each event, as CloudWatch embedded metrics: one JSON document per
//! event on stdout, which Lambda turns into the `Guardrail` metric `Events` by function, outcome
//! and reason (a rejection's code, a failure's error type), with no API call.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::pipeline::{Outcome, Report};

/// The metric namespace.
pub const NAMESPACE: &str = "Guardrail";

/// The reason dimension: a bounded set of names, never free text from the event.
fn reason(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Rejected { code, .. } => code,
        Outcome::Failed { error_type, .. } => error_type,
        other => other.name(),
    }
}

/// One embedded-metric document per event of the report.
pub fn embedded(report: &Report, now: DateTime<Utc>) -> Vec<Value> {
    report
        .events
        .iter()
        .map(|e| {
            json!({
                "_aws": {
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Function", "Outcome"], ["Function", "Outcome", "Reason"]],
                        "Metrics": [{"Name": "Events", "Unit": "Count"}]
                    }]
                },
                "Function": report.function.name(),
                "Outcome": e.outcome.name(),
                "Reason": reason(&e.outcome),
                "Events": 1
            })
        })
        .collect()
}

/// Writes the report's metrics to stdout, where Lambda's log agent finds them.
pub fn emit(report: &Report, now: DateTime<Utc>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for doc in embedded(report, now) {
        let _ = writeln!(out, "{doc}");
    }
}
