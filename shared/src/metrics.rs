//! Counts of what happened to each event, as CloudWatch embedded metrics: one JSON document per
//! event on stdout, which Lambda turns into `Guardrail` metrics with no API call:
//! - `Events` by function, outcome and reason (a rejection's code, a failure's error type);
//! - per rule, `Decided` (a plan was made), `Applied` (actions taken), `Rejected` and `Failed`:
//!   the counters of `infra/template.yaml`'s dashboard.

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

/// The per-rule counters, as the dashboard names them.
pub const RULE_METRICS: [&str; 4] = ["Decided", "Applied", "Rejected", "Failed"];

/// What one event adds to its rule's counters.
#[derive(Debug, Default, PartialEq)]
pub struct RuleCounters {
    /// A plan was made (violations detected or fixed).
    pub decided: usize,
    /// Actions taken.
    pub applied: usize,
    pub rejected: usize,
    pub failed: usize,
}

impl RuleCounters {
    pub fn of(outcome: &Outcome) -> RuleCounters {
        match outcome {
            Outcome::Detected { .. } | Outcome::Waived { .. } | Outcome::Pending { .. } => RuleCounters {
                decided: 1,
                ..RuleCounters::default()
            },
            Outcome::Applied { actions } => RuleCounters {
                decided: 1,
                applied: actions.len(),
                ..RuleCounters::default()
            },
            Outcome::Rejected { .. } => RuleCounters {
                rejected: 1,
                ..RuleCounters::default()
            },
            Outcome::Failed { .. } => RuleCounters {
                failed: 1,
                ..RuleCounters::default()
            },
            _ => RuleCounters::default(),
        }
    }
}

/// One embedded-metric document per event of the report.
pub fn embedded(report: &Report, now: DateTime<Utc>) -> Vec<Value> {
    report
        .events
        .iter()
        .map(|e| {
            let counters = RuleCounters::of(&e.outcome);
            json!({
                "_aws": {
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Function", "Outcome"], ["Function", "Outcome", "Reason"]],
                        "Metrics": [{"Name": "Events", "Unit": "Count"}]
                    }, {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["Rule"]],
                        "Metrics": RULE_METRICS.map(|name| json!({"Name": name, "Unit": "Count"}))
                    }]
                },
                "Function": report.function.name(),
                "Outcome": e.outcome.name(),
                "Reason": reason(&e.outcome),
                "Rule": report.function.rule().name(),
                "Events": 1,
                "Decided": counters.decided,
                "Applied": counters.applied,
                "Rejected": counters.rejected,
                "Failed": counters.failed
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::EventReport;
    use crate::rules::Function;

    fn report(outcomes: Vec<Outcome>) -> Report {
        Report {
            function: Function::TagEnforcer,
            events: outcomes
                .into_iter()
                .map(|outcome| EventReport {
                    event: None,
                    id: None,
                    account: None,
                    outcome,
                })
                .collect(),
            error: None,
        }
    }

    #[test]
    fn each_event_counts_once_for_its_rule_and_actions_count_as_applied() {
        let docs = embedded(
            &report(vec![
                Outcome::Applied {
                    actions: vec!["a".into(), "b".into()],
                },
                Outcome::Detected { violations: 3 },
                Outcome::Rejected {
                    code: "StaleEvent",
                    reason: "old".into(),
                },
                Outcome::Ignored { reason: "fine".into() },
            ]),
            Utc::now(),
        );
        let sum = |name: &str| docs.iter().map(|d| d[name].as_u64().unwrap_or(99)).sum::<u64>();
        assert_eq!(
            RULE_METRICS.map(sum),
            [2, 2, 1, 0],
            "Decided, Applied, Rejected, Failed"
        );
        assert!(docs.iter().all(|d| d["Rule"] == "tags"));
        // Every metric a directive names is a number at the root, as EMF requires.
        for d in &docs {
            for directive in d["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
                for m in directive["Metrics"].as_array().into_iter().flatten() {
                    let name = m["Name"].as_str().unwrap_or_default();
                    assert!(d[name].is_number(), "{name} in {d}");
                }
            }
        }
    }
}
