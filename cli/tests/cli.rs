//! The `guardrail` binary as an operator runs it: exit codes, one-line errors, and no panic
//! whatever the input file holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn guardrail(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .current_dir(workspace())
        .output()
        .expect("run guardrail")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SAMPLE: &str = "events/tag-enforcer/run-instances.json";

#[test]
fn plan_shows_the_fix_for_the_sample_event() {
    let o = guardrail(&["plan", SAMPLE, "--any-age", "--env", "dev"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("tag Environment is \"prod\" but the account is in environment dev"),
        "{out}"
    );
    assert!(
        out.contains("set Environment=dev, Owner=arn:aws:sts::111122223333:assumed-role/agent-runner/run-7f3a"),
        "{out}"
    );
    assert!(out.contains("aws ec2 delete-tags"), "{out}");
}

#[test]
fn plan_json_is_one_parseable_document() {
    let o = guardrail(&["plan", SAMPLE, "--any-age", "--env", "agents", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let decision = &v["events"][0]["decisions"][0];
    assert_eq!(decision["function"], "tag-enforcer");
    assert_eq!(decision["decision"], "act");
    assert_eq!(decision["plan"]["mode"], "enforce");
    assert_eq!(decision["plan"]["actions"][0]["action"], "tag");
    // The sample's instance, interface and volume need the same tags: one EC2 call.
    assert_eq!(decision["plan"]["actions"][0]["api"], "ec2-and-volumes");
}

#[test]
fn plan_says_why_it_decided_nothing() {
    let o = guardrail(&["plan", SAMPLE, "--any-age"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("pass --env prod|dev|agents"), "{}", stdout(&o));

    let detect = std::env::temp_dir().join(format!("guardrail-cli-detect-{}.toml", std::process::id()));
    std::fs::write(&detect, "version = 1\n[environments.dev.modes]\ntags = \"off\"\n").expect("write policy");
    let o = guardrail(&[
        "plan",
        SAMPLE,
        "--any-age",
        "--env",
        "dev",
        "--policy",
        detect.to_str().expect("path"),
    ]);
    let _ = std::fs::remove_file(&detect);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("rule tags is off in environment dev"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn unusable_input_exits_2_with_one_line_on_stderr() {
    let cases: &[(&[&str], &str)] = &[
        (&["plan", SAMPLE], "stale"),
        (
            &["plan", SAMPLE, "--at", "2026-11-22T09:20:00Z", "--env", "qa"],
            "no such environment",
        ),
        (&["plan", "/nonexistent/event.json"], "No such file"),
        (&["plan", "Cargo.toml"], "invalid-json"),
        (
            &["plan", SAMPLE, "--policy", "/nonexistent/policy.toml"],
            "GUARDRAIL_POLICY",
        ),
    ];
    for (args, needle) in cases {
        let o = guardrail(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}");
    }
    let o = guardrail(&["plan", SAMPLE, "--at", "2026-11-22T09:20:00Z", "--env", "dev"]);
    assert_eq!(o.status.code(), Some(0), "a time inside the window: {}", stderr(&o));
}

#[test]
fn plan_never_panics_whatever_the_file_holds() {
    let dir = std::env::temp_dir().join(format!("guardrail-cli-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", (0..=255u8).collect()),
        ("deep", deep.into_bytes()),
        ("null", b"null".to_vec()),
        ("string", b"\"hello\"".to_vec()),
        ("records-of-junk", br#"{"Records": [1, "x", null, {"eventName": 5}]}"#.to_vec()),
        ("sqs-garbage", br#"{"Records": [{"eventSource": "aws:sqs", "body": "{\"detail-type\": 7}"}]}"#.to_vec()),
        ("sns-loop", br#"{"Type": "Notification", "TopicArn": "t", "Message": "{\"Type\": \"Notification\", \"TopicArn\": \"t\", \"Message\": \"[]\"}"}"#.to_vec()),
        ("envelope-nulls", br#"{"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "account": null, "time": null, "detail": null}"#.to_vec()),
        ("finding-strings", br#"{"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": 1, "type": [], "severity": "high"}}"#.to_vec()),
    ];
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, bytes) in hostile {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        files.push(path);
    }
    let corpus = workspace().join("../shared/corpus");
    let mut corpus_files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    corpus_files.sort();
    assert!(corpus_files.len() > 40, "the corpus is missing");
    files.extend(corpus_files);
    for file in &files {
        for extra in [&["--any-age", "--env", "dev"][..], &[][..], &["--format", "json"][..]] {
            let mut args = vec!["plan", file.to_str().expect("path")];
            args.extend_from_slice(extra);
            let o = guardrail(&args);
            let code = o.status.code();
            assert!(matches!(code, Some(0 | 2)), "{args:?} exited {code:?}: {}", stderr(&o));
            if code == Some(2) {
                assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_policy_accepts_the_shipped_policy_and_points_at_errors() {
    for args in [&["check-policy"][..], &["check-policy", "infra/policy.toml"][..]] {
        let o = guardrail(args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stdout(&o).contains("agents       agents       enforce"),
            "{}",
            stdout(&o)
        );
        assert!(
            stdout(&o)
                .contains("blast-radius breaker: changes per account within 1h: tags 500, baseline 100, quarantine 10"),
            "{}",
            stdout(&o)
        );
        assert!(
            stdout(&o).contains("waivers: set by arn:aws:iam::*:role/security-waivers/*, at most 90 days ahead"),
            "{}",
            stdout(&o)
        );
    }
    let bad = std::env::temp_dir().join(format!("guardrail-cli-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "version = 1\n\n[environments.prod.modes]\ntags = \"fixx\"\n").expect("write policy");
    let o = guardrail(&["check-policy", bad.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("line 4: environments.prod.modes.tags: unknown mode \"fixx\""),
        "{}",
        stderr(&o)
    );
    let o = guardrail(&["check-policy", bad.to_str().expect("path"), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["valid"], false);
    let _ = std::fs::remove_file(&bad);
}

#[test]
fn pattern_prints_the_stored_rules_and_names_the_choices_on_a_typo() {
    for rules in ["agent-quarantine", "member-forwarding"] {
        let o = guardrail(&["pattern", rules]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let printed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
        let stored: serde_json::Value = serde_json::from_slice(
            &std::fs::read(workspace().join(format!("infra/patterns/{rules}.json"))).expect("stored"),
        )
        .expect("JSON");
        assert_eq!(printed, stored, "{rules}");
    }
    let o = guardrail(&["pattern", "member-forwardin"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("use account-baseline, tag-enforcer, agent-quarantine or member-forwarding"),
        "{}",
        stderr(&o)
    );
}
