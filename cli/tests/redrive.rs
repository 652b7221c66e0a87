//! `guardrail redrive` against the emulator and a function's real binary behind the Lambda
//! Invoke API (`cargo lambda watch`): dead letters of both shapes go back through the function,
//! the replay guard still decides, handled letters are deleted and unreadable ones stay.

use std::path::PathBuf;
use std::process::Command;

use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::events::{launch, launch_event};
use guardrail_tests::lambda::WatchedFunction;
use guardrail_tests::{World, invocation, outcomes};
use serde_json::{Value, json};

/// The tag-enforcer binary of this build (a workspace test run builds every binary; alone, this
/// test builds it).
fn tag_enforcer_binary() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_guardrail")).with_file_name("tag-enforcer");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--locked", "-p", "tag-enforcer"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build -p tag-enforcer failed");
    }
    binary
}

fn failure_record(event: &Value) -> Value {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-22T10:00:00.000Z",
        "requestContext": {
            "requestId": "7a1c2f0e-5b9d-4c3e-8f21-6d0a9e4b7c55",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:guardrail-tag-enforcer:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorType": "Guardrail.Transient", "errorMessage": "ec2 CreateTags: Throttling"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_go_back_through_the_function_once_and_unreadable_ones_stay() {
    let world = World::start().await;
    let account = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&account).await;
    let tags = [("Environment", "prod")];
    let mut events = Vec::new();
    for _ in 0..3 {
        let launched = launch(&member, &tags).await;
        events.push((launched.instance.clone(), launch_event(&account, &[&launched], &tags)));
    }
    // The third was handled after all, by a retry that succeeded late.
    let p = world.pipeline(Function::TagEnforcer, Policy::builtin().expect("policy"));
    let report = p.handle(events[2].1.clone(), &invocation()).await;
    assert!(matches!(outcomes(&report)[..], [Outcome::Applied { .. }]), "{report:?}");

    let sqs = aws_sdk_sqs::Client::new(&world.config);
    let queue = sqs
        .create_queue()
        .queue_name("guardrail-tag-enforcer-dlq")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue URL");
    for body in [
        failure_record(&events[0].1).to_string(),
        events[1].1.to_string(), // an EventBridge rule's dead letter: the event itself
        failure_record(&events[2].1).to_string(),
        "hello".to_string(),
    ] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    let function = WatchedFunction::start(&tag_enforcer_binary().to_string_lossy(), &world.function_env());
    let out = Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(["redrive", "--queue", &queue, "--lambda-name", "_", "--format", "json"])
        .env_clear()
        .envs(world.function_env())
        .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{}", function.port))
        .output()
        .expect("run guardrail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one letter is left: {stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON summary");
    assert_eq!(
        summary["totals"],
        json!({"applied": 2, "duplicate": 1, "unreadable": 1}),
        "{summary}\n{stderr}\n{}",
        function.logs()
    );
    assert!(stderr.contains("[4]"), "progress on stderr: {stderr}");

    for (instance, _) in &events {
        let found = guardrail_tests::events::ec2_tags(&member, instance).await;
        assert_eq!(
            found.get("Environment").map(String::as_str),
            Some("dev"),
            "{instance}: {found:?}"
        );
    }
    assert_eq!(
        world.alerts().await.len(),
        3,
        "one alert per event, none for the duplicate"
    );
    let left = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage")
        .messages
        .unwrap_or_default();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].body(), Some("hello"));
}
