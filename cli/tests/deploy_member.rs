//! `guardrail deploy-member` against the emulator: the member StackSets are created with their
//! instances, a second run changes nothing, a changed parameter updates one StackSet only, a new
//! Region gets its instances, and Regions without us-east-1 are refused before any call; and
//! `guardrail undeploy-member` takes both StackSets down again.

use std::process::{Command, Output};

use guardrail_tests::World;
use guardrail_tests::emulator::workspace;
use serde_json::Value;

fn deploy_member(world: &World, args: &[&str]) -> Output {
    let templates = workspace().join("infra");
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .arg("deploy-member")
        .args(["--templates", templates.to_str().expect("path"), "--format", "json"])
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail deploy-member")
}

/// Each StackSet's row: (change, instances added, operation).
fn rows(out: &Output) -> Vec<(String, String, Vec<String>, String)> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["stack_sets"]
        .as_array()
        .expect("stack sets")
        .iter()
        .map(|r| {
            (
                r["stack_set"].as_str().unwrap_or_default().to_string(),
                r["stack_set_change"].as_str().unwrap_or_default().to_string(),
                r["instances_added"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                r["operation"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_member_creates_then_changes_only_what_changed() {
    let world = World::start().await;
    let root = world.org.root_id.clone();
    let security = world.org.account("sandbox").to_string();
    let bus = format!("arn:aws:events:us-east-1:{security}:event-bus/guardrail");
    let base = ["--ous", &root, "--security-account", &security, "--bus-arn", &bus];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        tokio::task::block_in_place(|| deploy_member(&world, &args))
    };

    let first = rows(&run(&["--regions", "us-east-1,us-west-2"]));
    assert_eq!(
        first,
        [
            (
                "guardrail-member-roles".into(),
                "created".into(),
                vec![format!("{root}/us-east-1")],
                "SUCCEEDED".into()
            ),
            (
                "guardrail-forwarding".into(),
                "created".into(),
                vec![format!("{root}/us-east-1"), format!("{root}/us-west-2")],
                "SUCCEEDED".into()
            ),
        ]
    );

    let again = rows(&run(&["--regions", "us-east-1,us-west-2"]));
    for (name, change, added, operation) in &again {
        assert_eq!(
            (change.as_str(), added.len(), operation.as_str()),
            ("unchanged", 0, "none"),
            "{name}: {again:?}"
        );
    }

    let tagged = rows(&run(&["--regions", "us-east-1,us-west-2", "--count-tagged-agents"]));
    assert_eq!(tagged[0].1, "unchanged", "{tagged:?}");
    assert_eq!(
        (tagged[1].1.as_str(), tagged[1].3.as_str()),
        ("updated", "SUCCEEDED"),
        "{tagged:?}"
    );
    let cfn = aws_sdk_cloudformation::Client::new(&world.config);
    let set = cfn
        .describe_stack_set()
        .stack_set_name("guardrail-forwarding")
        .send()
        .await
        .expect("DescribeStackSet");
    let parameters: Vec<(String, String)> = set
        .stack_set()
        .map(|s| s.parameters())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().into(),
                p.parameter_value().unwrap_or_default().into(),
            )
        })
        .collect();
    assert!(
        parameters.contains(&("CountTaggedAgents".into(), "true".into())),
        "{parameters:?}"
    );
    // The security account forwards its other Regions' GuardDuty findings (forwarding.yaml).
    assert!(
        parameters.contains(&("SecurityAccountId".into(), security.clone())),
        "{parameters:?}"
    );
    assert!(
        parameters.contains(&("CentralRegion".into(), "us-east-1".into())),
        "{parameters:?}"
    );

    let wider = rows(&run(&[
        "--regions",
        "us-east-1,us-west-2,eu-west-1",
        "--count-tagged-agents",
    ]));
    assert_eq!(wider[1].2, [format!("{root}/eu-west-1")], "{wider:?}");
    assert!(wider[0].2.is_empty(), "member roles stay in us-east-1: {wider:?}");

    let refused = run(&["--regions", "us-west-2"]);
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("lacks us-east-1") && why.contains("IAM and Organizations events"),
        "{why}"
    );
}

fn undeploy_member(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .arg("undeploy-member")
        .args(["--format", "json"])
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail undeploy-member")
}

#[tokio::test(flavor = "multi_thread")]
async fn undeploy_member_empties_and_deletes_both_stack_sets() {
    let world = World::start().await;
    let root = world.org.root_id.clone();
    let security = world.org.account("sandbox").to_string();
    let bus = format!("arn:aws:events:us-east-1:{security}:event-bus/guardrail");
    let regions = "us-east-1,us-west-2";
    let deployed = tokio::task::block_in_place(|| {
        deploy_member(
            &world,
            &[
                "--ous",
                &root,
                "--security-account",
                &security,
                "--bus-arn",
                &bus,
                "--regions",
                regions,
            ],
        )
    });
    rows(&deployed);
    let cfn = aws_sdk_cloudformation::Client::new(&world.config);
    let instances = |name: &'static str| {
        let cfn = cfn.clone();
        async move {
            cfn.list_stack_instances()
                .stack_set_name(name)
                .send()
                .await
                .map(|o| o.summaries().len())
                .unwrap_or(0)
        }
    };
    let before = instances("guardrail-forwarding").await;
    assert!(before >= 2, "{before}");

    let outcome = |out: &Output| -> Vec<(String, u64, String)> {
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["stack_sets"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["stack_set"].as_str().unwrap_or_default().to_string(),
                    r["instances"].as_u64().unwrap_or_default(),
                    r["outcome"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let dry = outcome(&tokio::task::block_in_place(|| {
        undeploy_member(&world, &["--ous", &root, "--regions", regions, "--dry-run"])
    }));
    assert_eq!(
        dry[0],
        ("guardrail-forwarding".into(), before as u64, "would delete".into()),
        "{dry:?}"
    );
    assert_eq!(
        instances("guardrail-forwarding").await,
        before,
        "a dry run deletes nothing"
    );

    let done = outcome(&tokio::task::block_in_place(|| {
        undeploy_member(&world, &["--ous", &root, "--regions", regions])
    }));
    assert!(done.iter().all(|(_, _, o)| o == "deleted"), "{done:?}");
    for name in ["guardrail-forwarding", "guardrail-member-roles"] {
        let gone = cfn.describe_stack_set().stack_set_name(name).send().await;
        assert!(gone.is_err(), "{name} is still there");
    }
    let again = outcome(&tokio::task::block_in_place(|| {
        undeploy_member(&world, &["--ous", &root, "--regions", regions])
    }));
    assert!(again.iter().all(|(_, n, o)| *n == 0 && o == "absent"), "{again:?}");
}
