//! The EventBridge patterns in `infra/patterns/` are the ones generated from the functions'
//! tables, and every sample EventBridge event in `events/<function>/` matches one of its
//! function's patterns, and every sample is handled by that function. No event reaches a
//! function by two rules, or crosses from a member account by two, and every pattern fits
//! EventBridge's default size quota.

#[path = "support/samples.rs"]
mod samples;

use std::path::PathBuf;

use guardrail::event::decode;
use guardrail::policy::Policy;
use guardrail::rules::{Function, patterns};
use serde_json::Value;
use wildmatch::WildMatch;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policy() -> Policy {
    Policy::builtin().expect("built-in policy")
}

/// EventBridge matching for the pattern shapes used here: lists of values, `exists: false`,
/// `wildcard`, and `$or`.
fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        if key == "$or" {
            return want
                .as_array()
                .is_some_and(|alternatives| alternatives.iter().any(|p| matches(p, event)));
        }
        let have = event.get(key);
        match want {
            Value::Object(_) => have.is_some_and(|h| matches(want, h)),
            Value::Array(options) => options.iter().any(|o| match o {
                Value::Object(rule) if rule.get("exists") == Some(&Value::Bool(false)) => have.is_none(),
                Value::Object(rule) if rule.get("wildcard").is_some() => {
                    let wanted = rule.get("wildcard").and_then(Value::as_str).unwrap_or_default();
                    have.and_then(Value::as_str)
                        .is_some_and(|h| WildMatch::new(wanted).matches(h))
                }
                value => have == Some(value),
            }),
            _ => false,
        }
    })
}

/// Whether any of a function's rules matches.
fn any_matches(patterns: &[Value], event: &Value) -> bool {
    patterns.iter().any(|p| matches(p, event))
}

/// A policy that counts tagged agents: the calls patterns' other shape.
fn tagged() -> Policy {
    Policy::from_toml(
        &guardrail::policy::BUILTIN_POLICY.replace("tagged_agents = false", "tagged_agents = true"),
        "test",
    )
    .expect("policy")
}

/// Every set of rules: each function's, and the member accounts' forwarding rule.
fn rule_sets(policy: &Policy) -> Vec<(&'static str, Vec<Value>)> {
    Function::ALL
        .into_iter()
        .map(|f| (f.name(), f.event_patterns(policy)))
        .chain([("member-forwarding", vec![patterns::member_api_calls(policy)])])
        .collect()
}

#[test]
fn infra_patterns_are_generated_from_the_tables() {
    for (name, generated) in rule_sets(&policy()) {
        let file = root().join(format!("infra/patterns/{name}.json"));
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("pattern file")).expect("JSON");
        assert_eq!(
            stored,
            Value::from(generated),
            "{} is stale: run `guardrail pattern {name} > {}`",
            file.display(),
            file.display()
        );
    }
}

#[test]
fn every_pattern_fits_the_default_size_quota() {
    for policy in [policy(), tagged()] {
        for (name, rules) in rule_sets(&policy) {
            for pattern in rules {
                let size = serde_json::to_string(&pattern).expect("JSON").len();
                assert!(
                    size <= patterns::PATTERN_SIZE_QUOTA,
                    "a {name} pattern is {size} characters, over EventBridge's default quota of {}",
                    patterns::PATTERN_SIZE_QUOTA
                );
            }
        }
    }
}

/// An agent's call as CloudTrail records it.
fn agent_call(source: &str, name: &str) -> Value {
    serde_json::json!({"source": source, "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventName": name, "userIdentity": {
            "type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/agent-runner/s",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/agent-runner"}}}}})
}

#[test]
fn no_event_reaches_a_function_by_two_rules_or_crosses_twice() {
    let mut events: Vec<(String, Value)> = samples::fresh();
    events.extend(
        [
            ("aws.ec2", "RunInstances"),
            ("aws.iam", "CreateRole"),
            ("aws.iam", "CreateUser"),
            ("aws.s3", "PutAccountPublicAccessBlock"),
            ("aws.s3", "ListBuckets"),
        ]
        .map(|(source, name)| (format!("an agent's {name}"), agent_call(source, name))),
    );
    for policy in [policy(), tagged()] {
        for (name, rules) in rule_sets(&policy) {
            let mut reached = 0;
            for (file, event) in &events {
                let matching = rules.iter().filter(|p| matches(p, event)).count();
                assert!(matching <= 1, "{file} matches {matching} of {name}'s rules");
                reached += matching;
            }
            assert!(reached > 0, "no sample reaches {name}: the check is vacuous");
        }
    }
}

#[test]
fn a_member_account_forwards_every_api_call_a_function_wants_but_moves() {
    for policy in [policy(), tagged()] {
        let forwarding = patterns::member_api_calls(&policy);
        for (file, event) in samples::fresh() {
            if event.get("detail-type") != Some(&Value::from(patterns::API_CALL)) {
                continue;
            }
            let wanted = Function::ALL
                .into_iter()
                .any(|f| f.event_patterns(&policy).iter().any(|p| matches(p, &event)));
            // Organizations' calls are the management account's to forward (an agent's are
            // forwarded as its calls); every other call a function wants crosses, and no other.
            let moves = event.get("source") == Some(&Value::from("aws.organizations"));
            let forwarded = matches(&forwarding, &event);
            assert!(
                forwarded == wanted || (moves && !forwarded),
                "{file}: forwarded {forwarded}, wanted {wanted}"
            );
        }
        for (source, name) in [("aws.ec2", "RunInstances"), ("aws.s3", "ListBuckets")] {
            assert!(matches(&forwarding, &agent_call(source, name)), "an agent's {name}");
        }
        let mut by_person = agent_call("aws.s3", "ListBuckets");
        by_person["detail"]["userIdentity"] =
            serde_json::json!({"type": "Root", "arn": "arn:aws:iam::111122223333:root"});
        assert!(!matches(&forwarding, &by_person), "root's ListBuckets is no function's");
    }
}

#[test]
fn every_sample_event_matches_its_pattern_and_is_handled() {
    for function in Function::ALL {
        let patterns = function.event_patterns(&policy());
        let dir = root().join("events").join(function.name());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("events dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        assert!(!files.is_empty());
        for file in files {
            let bytes = std::fs::read(&file).expect("event file");
            let value: Value = serde_json::from_slice(&bytes).expect("JSON");
            // Raw findings (the API's PascalCase shape) reach a function directly, not by a rule.
            let enveloped = value.get("detail-type").is_some();
            assert!(
                !enveloped || any_matches(&patterns, &value),
                "{} does not match {}'s pattern",
                file.display(),
                function.name()
            );
            for event in decode(&bytes) {
                let event = event.unwrap_or_else(|r| panic!("{}: {r}", file.display()));
                assert!(
                    function.handles(&event),
                    "{} is not handled by {}",
                    file.display(),
                    function.name()
                );
            }
        }
    }
}

#[test]
fn the_pattern_matcher_rejects_what_it_should() {
    let patterns = Function::TagEnforcer.event_patterns(&policy());
    let run = serde_json::json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
                                 "detail": {"eventName": "RunInstances"}});
    assert!(any_matches(&patterns, &run));
    let mut failed = run.clone();
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    assert!(!any_matches(&patterns, &failed));
    let mut other = run.clone();
    other["detail"]["eventName"] = "TerminateInstances".into();
    assert!(!any_matches(&patterns, &other));
}

#[test]
fn agent_calls_match_by_role_path_or_name_and_other_calls_do_not() {
    let patterns = Function::AgentQuarantine.event_patterns(&policy());
    let call = |issuer: &str| {
        serde_json::json!({"source": "aws.s3", "detail-type": "AWS API Call via CloudTrail",
            "detail": {"eventName": "ListBuckets", "errorCode": "AccessDenied", "userIdentity": {
                "type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/x/s",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer}}}}})
    };
    assert!(any_matches(
        &patterns,
        &call("arn:aws:iam::111122223333:role/agents/planner")
    ));
    assert!(any_matches(
        &patterns,
        &call("arn:aws:iam::111122223333:role/agent-runner")
    ));
    assert!(!any_matches(
        &patterns,
        &call("arn:aws:iam::111122223333:role/deployer")
    ));
    let alarm_ok = serde_json::json!({"source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
        "detail": {"state": {"value": "OK"}}});
    assert!(!any_matches(&patterns, &alarm_ok));

    // Counting tagged agents: every role's and user's call matches, AWS services' and root's do not.
    let patterns = Function::AgentQuarantine.event_patterns(&tagged());
    assert!(any_matches(&patterns, &call("arn:aws:iam::111122223333:role/deployer")));
    for identity in ["AWSService", "Root"] {
        let mut other = call("arn:aws:iam::111122223333:role/deployer");
        other["detail"]["userIdentity"]["type"] = identity.into();
        assert!(!any_matches(&patterns, &other), "{identity}");
    }
}
