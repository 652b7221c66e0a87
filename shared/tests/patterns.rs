//! The EventBridge patterns in `infra/patterns/` are the ones generated from the functions'
//! tables, and every sample event in `events/<function>/` matches its function's pattern and is
//! handled by that function.

use std::path::PathBuf;

use guardrail::event::decode;
use guardrail::rules::Function;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// EventBridge matching for the pattern shapes used here: lists of values, and `exists: false`.
fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        let have = event.get(key);
        match want {
            Value::Object(_) => have.is_some_and(|h| matches(want, h)),
            Value::Array(options) => options.iter().any(|o| match o {
                Value::Object(rule) if rule.get("exists") == Some(&Value::Bool(false)) => have.is_none(),
                value => have == Some(value),
            }),
            _ => false,
        }
    })
}

#[test]
fn infra_patterns_are_generated_from_the_tables() {
    for function in [Function::TagEnforcer, Function::AccountBaseline] {
        let file = root().join(format!("infra/patterns/{}.json", function.name()));
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("pattern file")).expect("JSON");
        let generated = function.event_pattern().expect("a pattern");
        assert_eq!(
            stored,
            generated,
            "{} is stale: run `guardrail pattern {} > {}`",
            file.display(),
            function.name(),
            file.display()
        );
    }
}

#[test]
fn every_sample_event_matches_its_pattern_and_is_handled() {
    for function in [Function::TagEnforcer, Function::AccountBaseline] {
        let pattern = function.event_pattern().expect("a pattern");
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
            assert!(
                matches(&pattern, &value),
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
    let pattern = Function::TagEnforcer.event_pattern().expect("a pattern");
    let run = serde_json::json!({"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
                                 "detail": {"eventName": "RunInstances"}});
    assert!(matches(&pattern, &run));
    let mut failed = run.clone();
    failed["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
    assert!(!matches(&pattern, &failed));
    let mut other = run.clone();
    other["detail"]["eventName"] = "TerminateInstances".into();
    assert!(!matches(&pattern, &other));
}
