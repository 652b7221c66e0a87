//! The EventBridge rule patterns, generated from the tables and the policy the functions decide
//! with: one rule per function and kind of event on the central bus, one forwarding rule per
//! member account for every API call any function wants, and no event matched by two rules
//! that lead to the same function.
//!
//! EventBridge invokes a rule's targets once per matching event, however many of its `$or`
//! alternatives match ("$or matching", Amazon EventBridge User Guide, *Comparison operators for
//! use in event patterns*); two rules that both match send the event twice. So patterns that
//! can match the same event, and that lead to one function, are alternatives of one rule.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Function, baseline, drift, resources};
use crate::policy::{Policy, Step};

/// The detail type of every CloudTrail API-call event.
pub const API_CALL: &str = "AWS API Call via CloudTrail";

/// EventBridge's default quota on an event pattern's size, in characters ("Event pattern size",
/// Amazon EventBridge quotas; 4096 only after a quota increase). Every generated pattern fits it.
pub const PATTERN_SIZE_QUOTA: usize = 2048;

/// The patterns (one rule each) that send `function` the events it handles.
pub fn for_function(function: Function, policy: &Policy) -> Vec<Value> {
    match function {
        Function::TagEnforcer => vec![tag_changes()],
        Function::AccountBaseline => vec![
            json!({
                "source": ["aws.controltower", "aws.organizations"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {"eventName": ["CreateAccountResult", baseline::CREATE_MANAGED_ACCOUNT]}
            }),
            undoing_calls(false),
            undoing_calls(true),
        ],
        Function::AgentQuarantine => vec![
            json!({
                "source": ["aws.guardduty"],
                "detail-type": ["GuardDuty Finding"],
                "detail": {"resource": {"resourceType": ["AccessKey"]}}
            }),
            json!({
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"state": {"value": ["ALARM"]}}
            }),
            // An agent's CreateRole is a creation and an agent's call: one rule, one delivery.
            any_of(
                &[creations(), agent_calls(policy)]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>(),
            ),
        ],
    }
}

/// The one rule each member account forwards its API calls to the central bus with: every
/// API-call pattern of every function, but the Organizations calls that only the management
/// account sees (its own rules forward those). One rule, so one call crosses to the bus once.
pub fn member_api_calls(policy: &Policy) -> Value {
    let wanted: Vec<Value> = Function::ALL
        .into_iter()
        .flat_map(|f| for_function(f, policy))
        .filter(|p| p["detail-type"] == json!([API_CALL]))
        .filter(|p| p.get("source") != Some(&json!(["aws.organizations"])))
        .collect();
    any_of(&wanted)
}

/// Resource creations and tag changes (tag-enforcer). Failed calls changed nothing, so they
/// never match.
fn tag_changes() -> Value {
    let mut sources = BTreeSet::new();
    let mut names = BTreeSet::new();
    let pairs = resources::RESOURCE_TYPES
        .iter()
        .map(|r| (r.event_source, r.event_name))
        .chain(resources::TAG_CHANGES.iter().map(|c| (c.event_source, c.event_name)));
    for (source, name) in pairs {
        sources.insert(source_of(source));
        names.insert(name);
    }
    json!({
        "source": sources,
        "detail-type": [API_CALL],
        "detail": {"eventName": names, "errorCode": [{"exists": false}]}
    })
}

/// Calls that can undo a baseline step, by anyone: the settings' (forwarded from member
/// accounts) or the moves' (from the management account).
fn undoing_calls(moves: bool) -> Value {
    let mut sources = BTreeSet::new();
    let mut names = BTreeSet::new();
    for c in drift::UNDOING_CALLS
        .iter()
        .filter(|c| (c.step == Step::Placement) == moves)
    {
        sources.insert(source_of(c.event_source));
        names.insert(c.event_name);
    }
    json!({
        "source": sources,
        "detail-type": [API_CALL],
        "detail": {"eventName": names, "errorCode": [{"exists": false}]}
    })
}

/// Roles and users created by anyone: isolated in enforce when misnamed (the tag enforcer marks
/// them; its member role cannot put policies on principals).
fn creations() -> Vec<Value> {
    vec![json!({
        "source": ["aws.iam"],
        "detail-type": [API_CALL],
        "detail": {"eventName": ["CreateRole", "CreateUser"], "errorCode": [{"exists": false}]}
    })]
}

/// Every call an agent makes, failed ones too: an agent probing what it may do is as runaway as
/// one that succeeds. None without a rate budget.
fn agent_calls(policy: &Policy) -> Vec<Value> {
    let agents: Vec<Value> = policy
        .quarantine
        .agent_roles
        .iter()
        .map(|p| json!({"wildcard": p.as_str()}))
        .collect();
    match &policy.quarantine.rate {
        // EventBridge cannot match IAM tags: every role's and user's calls go to the function,
        // which looks the caller's tags up.
        Some(rate) if rate.tagged_agents => vec![json!({
            "detail-type": [API_CALL],
            "detail": {"userIdentity": {"type": ["AssumedRole", "IAMUser"]}}
        })],
        // By the role a session was issued for, or the role or user that called.
        Some(_) if !agents.is_empty() => vec![
            json!({
                "detail-type": [API_CALL],
                "detail": {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": agents}}}}
            }),
            json!({"detail-type": [API_CALL], "detail": {"userIdentity": {"arn": agents}}}),
        ],
        _ => Vec::new(),
    }
}

/// One pattern matching what any of `patterns` matches: fields every pattern has alike are kept,
/// the rest become the alternatives of a top-level `$or` (each pattern's own `$or` flattened
/// into it, and an alternative another one already covers left out). A single pattern is
/// returned as it is.
fn any_of(patterns: &[Value]) -> Value {
    let flat: Vec<Value> = patterns.iter().flat_map(alternatives).map(Value::Object).collect();
    let mut unique: Vec<Map<String, Value>> = Vec::new();
    for (i, alternative) in flat.iter().enumerate() {
        let covered = flat
            .iter()
            .enumerate()
            .any(|(j, other)| j != i && covers(other, alternative) && (j < i || !covers(alternative, other)));
        if !covered {
            unique.extend(alternative.as_object().cloned());
        }
    }
    if let [only] = unique.as_slice() {
        return Value::Object(only.clone());
    }
    let shared: Map<String, Value> = unique
        .first()
        .map(|first| {
            first
                .iter()
                .filter(|(k, v)| unique.iter().all(|a| a.get(*k) == Some(*v)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let rest: Vec<Value> = unique
        .into_iter()
        .map(|a| Value::Object(a.into_iter().filter(|(k, _)| !shared.contains_key(k)).collect()))
        .collect();
    let mut out = shared;
    out.insert("$or".into(), Value::Array(rest));
    Value::Object(out)
}

/// Whether pattern `wide` matches every event `narrow` matches (a sufficient test: every field
/// `wide` names, `narrow` names too, with a subset of its plain values or the same operators).
fn covers(wide: &Value, narrow: &Value) -> bool {
    match (wide, narrow) {
        (Value::Object(w), Value::Object(n)) => w.iter().all(|(k, wv)| n.get(k).is_some_and(|nv| covers(wv, nv))),
        (Value::Array(w), Value::Array(n)) if n.iter().all(|v| !v.is_object() && !v.is_array()) => {
            n.iter().all(|v| w.contains(v))
        }
        _ => wide == narrow,
    }
}

/// A pattern as the flat alternatives its top-level `$or` stands for.
fn alternatives(pattern: &Value) -> Vec<Map<String, Value>> {
    let mut base = pattern.as_object().cloned().unwrap_or_default();
    match base.remove("$or") {
        Some(Value::Array(branches)) => branches
            .iter()
            .map(|b| {
                let mut whole = base.clone();
                for (key, value) in b.as_object().cloned().unwrap_or_default() {
                    // The patterns here never name a field both outside and inside their `$or`.
                    debug_assert!(!whole.contains_key(&key), "{key} both outside and inside $or");
                    whole.insert(key, value);
                }
                whole
            })
            .collect(),
        _ => vec![base],
    }
}

/// The event source of a service's endpoint: `ec2.amazonaws.com` is `aws.ec2`.
fn source_of(endpoint: &str) -> String {
    format!("aws.{}", endpoint.trim_end_matches(".amazonaws.com"))
}
