//! Alerts to ops: a subject readable at a glance, a body a person reads, a JSON form for machines,
//! and message attributes for SNS subscription filter policies.

use std::fmt::Write as _;
use std::future::Future;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::event::Event;
use crate::ids::clip;
use crate::plan::{Hold, Plan};
use crate::rules::Function;

/// The most an alert's JSON may take: an SNS message is at most 256 KB and carries the alert
/// seven times (text and JSON per protocol, the JSON escaped once more).
const MAX_ALERT_JSON: usize = 24 * 1024;

/// SNS caps subjects at 100 characters.
pub const MAX_SUBJECT: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One alert about one event. Its JSON form ([`Alert::json`]) reads back into an `Alert`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Alert {
    pub function: Function,
    pub severity: Severity,
    /// The rule (`tags`, `baseline`, ...); a message attribute.
    pub rule: String,
    /// One word for what Guardrail did: `tagged`, `detected`, `failed`; a message attribute.
    pub action: String,
    /// A few words: `tagged 2 EC2 instances`.
    pub title: String,
    pub account: Option<String>,
    pub environment: Option<String>,
    pub region: Option<String>,
    pub resources: Vec<String>,
    /// One sentence: what happened.
    pub happened: String,
    /// Who caused it.
    pub cause: Option<String>,
    /// Why Guardrail cares: the violations.
    pub why: Vec<String>,
    /// What Guardrail did (or, in detect mode, would do).
    pub done: Vec<String>,
    /// What was found already in place.
    #[serde(default)]
    pub in_place: Vec<String>,
    /// Commands that undo what was done.
    pub undo: Vec<String>,
    /// More for the reader: how to re-run, what to do by hand.
    #[serde(default)]
    pub notes: Vec<String>,
    pub event_id: Option<String>,
    pub time: DateTime<Utc>,
}

impl Alert {
    /// The alert for a plan, once applied (`applied`) or only detected.
    pub fn for_plan(
        function: Function,
        plan: &Plan,
        applied: bool,
        event_id: Option<&str>,
        time: DateTime<Utc>,
    ) -> Self {
        if applied && !plan.actions.is_empty() {
            let verb = plan.verb;
            let done = plan.actions.iter().map(ToString::to_string).collect();
            let title = format!("{verb} {}", plan.subject);
            return Alert::assemble(function, plan, verb, title, done, plan.undo.clone(), event_id, time);
        }
        if plan.held.is_some() {
            let held = if plan.held == Some(Hold::Pending) {
                "waiting for approval"
            } else {
                "held back"
            };
            let lines = plan.withheld.iter().map(|a| format!("{held}: {a}")).collect();
            let (action, title) = match plan.held {
                Some(Hold::Tripped) => (
                    "tripped",
                    format!("breaker tripped: {} rule stopped in {}", plan.rule.name(), plan.account),
                ),
                Some(Hold::Waived) => ("waived", format!("waived: {}", plan.subject)),
                Some(Hold::Pending) => ("pending", format!("approval needed: {}", plan.subject)),
                _ => ("detected", format!("problems with {}", plan.subject)),
            };
            return Alert::assemble(function, plan, action, title, lines, Vec::new(), event_id, time);
        }
        let lines = vec![if plan.mode.fixes() {
            "nothing could be changed automatically".to_string()
        } else {
            format!("mode is {}: nothing was changed", plan.mode.name())
        }];
        let title = format!("problems with {}", plan.subject);
        Alert::assemble(function, plan, "detected", title, lines, Vec::new(), event_id, time)
    }

    /// The alert for an event whose facts could not be read, once the failure is final.
    pub fn for_error(function: Function, event: &Event, error: &Error, attempt: u32, time: DateTime<Utc>) -> Self {
        Alert {
            function,
            severity: Severity::High,
            rule: function.rule().name().to_string(),
            action: "failed".into(),
            title: format!("could not handle {}", event.label()),
            // A new account's alert is about the new account, not the management account that
            // reported its creation: that is the account a person has to look at.
            account: event.subject_account().map(ToString::to_string),
            environment: None,
            region: event.region().map(ToString::to_string),
            resources: Vec::new(),
            happened: format!(
                "Guardrail could not read what it needs to decide on {} (attempt {attempt}).",
                event.label()
            ),
            cause: event.trail().map(|t| t.principal.describe()),
            why: vec![error.to_string()],
            done: Vec::new(),
            in_place: Vec::new(),
            undo: Vec::new(),
            notes: Vec::new(),
            event_id: event.id().map(str::to_string),
            time,
        }
        .fit()
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        function: Function,
        plan: &Plan,
        action: &str,
        title: String,
        done: Vec<String>,
        undo: Vec<String>,
        event_id: Option<&str>,
        time: DateTime<Utc>,
    ) -> Self {
        Alert {
            function,
            severity: plan.severity,
            rule: plan.rule.name().to_string(),
            action: action.to_string(),
            title,
            account: Some(plan.account.to_string()),
            environment: plan.environment.clone(),
            region: plan.region.as_ref().map(ToString::to_string),
            resources: plan.resources(),
            happened: plan.happened.clone().unwrap_or_else(|| {
                format!(
                    "{} did not meet the {} rule ({} violation(s)).",
                    plan.subject,
                    plan.rule.name(),
                    plan.violations.len()
                )
            }),
            cause: (!plan.cause.is_empty()).then(|| plan.cause.clone()),
            why: plan
                .violations
                .iter()
                .map(|v| format!("{}: {}", v.resource, v.problem))
                .collect(),
            done,
            in_place: plan.in_place.clone(),
            undo,
            notes: plan.notes.clone(),
            event_id: event_id.map(str::to_string),
            time,
        }
        .fit()
    }

    /// Cuts the alert down until its JSON takes at most [`MAX_ALERT_JSON`] bytes: the longest
    /// text loses half, or, when every text is short, the longest list keeps half its lines and
    /// says how many it dropped. Event fields are the attacker's: an alert must still be sent.
    pub(crate) fn fit(mut self) -> Self {
        while serde_json::to_vec(&self).map_or(0, |v| v.len()) > MAX_ALERT_JSON {
            let Alert {
                title,
                happened,
                cause,
                event_id,
                resources,
                why,
                done,
                in_place,
                undo,
                notes,
                ..
            } = &mut self;
            let mut lists = [resources, why, done, in_place, undo, notes];
            let longest = [title, happened]
                .into_iter()
                .chain(cause.as_mut())
                .chain(event_id.as_mut())
                .chain(lists.iter_mut().flat_map(|l| l.iter_mut()))
                .max_by_key(|t| t.len());
            if let Some(text) = longest.filter(|t| t.chars().count() > 80) {
                let keep = text.chars().count() / 2;
                *text = clip(text, keep);
                continue;
            }
            let Some(list) = lists.into_iter().max_by_key(|l| l.len()).filter(|l| l.len() > 2) else {
                break;
            };
            let dropped = list.len() - list.len() / 2;
            list.truncate(list.len() / 2);
            list.push(format!("… and {dropped} more, left out to fit the alert"));
        }
        self
    }

    /// `Guardrail HIGH 111122223333 dev: tagged 1 EC2 instance created by RunInstances`, cut to
    /// 100 printable ASCII characters as SNS requires.
    pub fn subject(&self) -> String {
        // Where comes before what, so that a long title is what gets cut.
        let mut s = format!("Guardrail {}", self.severity.name().to_uppercase());
        if let Some(account) = &self.account {
            let _ = write!(s, " {account}");
            if let Some(env) = &self.environment {
                let _ = write!(s, " {env}");
            }
        }
        let _ = write!(s, ": {}", self.title);
        let ascii: String = s
            .chars()
            .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
            .collect();
        if ascii.len() <= MAX_SUBJECT {
            ascii
        } else {
            format!("{}...", &ascii[..MAX_SUBJECT - 3])
        }
    }

    /// The body a person reads (email, chat).
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "Guardrail {}: {}", self.function, self.title);
        let _ = writeln!(t, "Severity: {}", self.severity.name());
        let _ = writeln!(t);
        let _ = writeln!(t, "What happened: {}", self.happened);
        let region = self
            .region
            .as_deref()
            .map(|r| format!(", region {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "Where: account {}, environment {}{region}",
            self.account.as_deref().unwrap_or("unknown"),
            self.environment.as_deref().unwrap_or("none"),
        );
        if !self.resources.is_empty() {
            let _ = writeln!(t, "Resources: {}", self.resources.join(", "));
        }
        if let Some(cause) = &self.cause {
            let _ = writeln!(t, "Caused by: {cause}");
        }
        section(&mut t, "Why", &self.why);
        section(&mut t, "What Guardrail did", &self.done);
        section(&mut t, "Already in place", &self.in_place);
        section(&mut t, "How to undo", &self.undo);
        section(&mut t, "Notes", &self.notes);
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Event {} at {}, handled by {}.",
            self.event_id.as_deref().unwrap_or("(no id)"),
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.function
        );
        t
    }

    /// The machine-readable form.
    pub fn json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("schema".into(), json!("guardrail.alert/1"));
            m.insert("subject".into(), json!(self.subject()));
        }
        v
    }

    /// The SNS `Message` for `MessageStructure=json`: the readable text by default (email, SMS,
    /// chat), the JSON form for SQS, Lambda and HTTP(S) subscribers.
    pub fn sns_message(&self) -> String {
        let machine = self.json().to_string();
        json!({
            "default": self.text(),
            "email": self.text(),
            "sqs": machine,
            "lambda": machine,
            "http": machine,
            "https": machine,
            "firehose": machine,
        })
        .to_string()
    }

    /// Message attributes for subscription filter policies. Values are never empty.
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let or_none = |v: &Option<String>| v.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "none".into());
        vec![
            ("severity", self.severity.name().to_string()),
            ("account", or_none(&self.account)),
            ("environment", or_none(&self.environment)),
            ("rule", self.rule.clone()),
            ("action", self.action.clone()),
            // Alerts are delivered at least once (a publish whose answer is lost is sent again):
            // subscribers deduplicate on this.
            ("event_id", or_none(&self.event_id)),
        ]
    }
}

/// What happens next to an event whose failure is final (failure alerts are sent only then).
pub fn final_advice(error: &Error) -> String {
    if error.is_transient() {
        "Lambda's retries are used up, so the event goes to the dead-letter queue: redrive it once the cause has passed"
            .to_string()
    } else {
        "not retryable as is: fix the cause (permissions, configuration), then redrive the event from the dead-letter queue".to_string()
    }
}

fn section(t: &mut String, title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(t, "{title}:");
    for l in lines {
        let _ = writeln!(t, "  - {}", clip(l, 1000));
    }
}

/// Sends alerts (SNS in Lambda; a list in tests and the CLI).
pub trait Notifier: Send + Sync {
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(title: &str) -> Alert {
        Alert {
            function: Function::TagEnforcer,
            severity: Severity::High,
            rule: "tags".into(),
            action: "tagged".into(),
            title: title.into(),
            account: Some("111122223333".into()),
            environment: None,
            region: Some("us-east-1".into()),
            resources: vec!["i-1".into()],
            happened: "x".into(),
            cause: None,
            why: vec![],
            done: vec!["set Environment=dev on i-1".into()],
            in_place: vec![],
            undo: vec![],
            notes: vec![],
            event_id: Some("e".into()),
            time: DateTime::default(),
        }
    }

    #[test]
    fn a_hostile_event_still_gets_an_alert_sns_accepts() {
        let mut a = alert(&"t".repeat(300_000));
        a.resources = (0..20_000).map(|i| format!("i-{i:017x}")).collect();
        a.why = vec!["w".repeat(100_000); 3];
        let a = a.fit();
        assert!(serde_json::to_vec(&a).map_or(0, |v| v.len()) <= MAX_ALERT_JSON);
        assert!(a.sns_message().len() <= 256 * 1024, "{}", a.sns_message().len());
        assert!(
            a.resources.last().is_some_and(|r| r.contains("more, left out")),
            "{:?}",
            a.resources.last()
        );
        assert!(a.title.starts_with("ttt") && a.title.ends_with('…'));
    }

    #[test]
    fn a_new_accounts_failure_alert_names_the_new_account() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/account-baseline/create-account-result.json"
        ))
        .expect("sample");
        let event = crate::event::decode(text.as_bytes())
            .into_iter()
            .next()
            .expect("one")
            .expect("decodes");
        assert_eq!(
            event.account().map(crate::ids::AccountId::as_str),
            Some("111122223333"),
            "reported by management"
        );
        let error = Error::Config("unreadable".into());
        let alert = Alert::for_error(Function::AccountBaseline, &event, &error, 3, DateTime::default());
        assert_eq!(alert.account.as_deref(), Some("444455556666"));
        assert!(alert.subject().contains("444455556666"), "{}", alert.subject());
    }

    #[test]
    fn subjects_are_short_printable_ascii() {
        let long = alert(&format!("tagged {} \u{1F600}\n", "x".repeat(200)));
        let s = long.subject();
        assert!(s.len() <= MAX_SUBJECT && s.ends_with("..."), "{s}");
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
        assert_eq!(alert("tagged i-1").subject(), "Guardrail HIGH 111122223333: tagged i-1");
    }

    #[test]
    fn sns_message_carries_text_and_json_and_attributes_are_never_empty() {
        let a = alert("t");
        let msg: Value = serde_json::from_str(&a.sns_message()).unwrap_or_default();
        assert!(
            msg["default"]
                .as_str()
                .is_some_and(|t| t.contains("What Guardrail did"))
        );
        let machine: Value = serde_json::from_str(msg["sqs"].as_str().unwrap_or("")).unwrap_or_default();
        assert_eq!(machine["schema"], "guardrail.alert/1");
        assert_eq!(machine["account"], "111122223333");
        assert!(a.attributes().iter().all(|(_, v)| !v.is_empty()));
        assert!(a.attributes().contains(&("environment", "none".to_string())));
    }
}
