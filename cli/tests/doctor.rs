//! `guardrail doctor` against the emulator: a fresh organization reports what a deployment still
//! lacks, each with its fix; once an operator has done what the fixes say, every check is ok; a
//! paused kill switch, an outdated SCP or a bucket in the wrong Region are reported as wrong.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use guardrail_tests::World;
use serde_json::Value;

fn doctor(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .arg("doctor")
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail doctor")
}

/// Each check's status, and the whole report.
fn statuses(out: &Output) -> (BTreeMap<String, String>, Value) {
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut by_check = BTreeMap::new();
    for c in report["checks"].as_array().expect("checks") {
        let check = c["check"].as_str().expect("check").to_string();
        let status = c["status"].as_str().expect("status").to_string();
        // Two SCPs go on the root: the worse of the two stands for both.
        let entry = by_check.entry(check).or_insert(status.clone());
        if status != "ok" {
            *entry = status;
        }
    }
    (by_check, report)
}

fn fix_of<'a>(report: &'a Value, check: &str) -> &'a str {
    report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == check && c["status"] != "ok")
        .and_then(|c| c["fix"].as_str())
        .unwrap_or_default()
}

fn minified(file: &str) -> String {
    let path = guardrail_tests::emulator::workspace().join("infra/scp").join(file);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("SCP")).expect("JSON");
    v.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_what_a_deployment_lacks_and_is_satisfied_once_it_is_done() {
    let world = World::start().await;
    let security = world.org.account("sandbox").to_string();
    let orgs = aws_sdk_organizations::Client::new(&world.config);

    // A fresh organization: what Deploy's steps add is missing, with the command that adds it.
    let out = tokio::task::block_in_place(|| doctor(&world, &["--security-account", &security, "--format", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let (found, report) = statuses(&out);
    let expected: BTreeMap<String, String> = [
        ("organization has all features", "ok"),
        ("StackSets trusted access", "missing"),
        ("GuardDuty delegated administrator", "missing"),
        ("the policy's OUs exist", "missing"),
        ("SCP attached to the root", "missing"),
        ("SCP attached to the security account", "missing"),
        ("Lambda concurrency quota", "ok"),
        ("alert subscriptions", "ok"),
        ("kill switch", "ok"),
        ("roles the SCPs spare", "missing"),
        ("central stack", "missing"),
        ("Organizations delegation", "missing"),
        ("the policy's Regions", "ok"),
        ("organization trail", "missing"),
        ("member StackSet", "missing"),
    ]
    .into_iter()
    .map(|(c, s)| (c.to_string(), s.to_string()))
    .collect();
    assert_eq!(found, expected, "{report:#}");
    assert!(fix_of(&report, "StackSets trusted access").contains("activate-organizations-access"));
    assert!(fix_of(&report, "GuardDuty delegated administrator").contains(&format!("--admin-account-id {security}")));
    // The executions the doctor leaves room for are the ones the template reserves.
    let template = guardrail_tests::infra::template("template.yaml");
    let reserved: u64 = guardrail_tests::infra::resources(&template)
        .iter()
        .filter_map(|(_, r)| r["Properties"]["ReservedConcurrentExecutions"]["Fn::If"][1].as_u64())
        .sum();
    let quota = report["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["check"] == "Lambda concurrency quota");
    let detail = quota.and_then(|c| c["detail"].as_str()).unwrap_or_default();
    assert!(detail.contains(&format!("the {reserved} reserved")), "{detail}");
    let ous = fix_of(&report, "the policy's OUs exist");
    assert!(
        ous.contains("--name Landing") && ous.contains("--name Suspended") && !ous.contains("--name prod"),
        "{ous}"
    );

    // The operator does what the fixes say.
    orgs.enable_aws_service_access()
        .service_principal("member.org.stacksets.cloudformation.amazonaws.com")
        .send()
        .await
        .expect("EnableAWSServiceAccess");
    orgs.enable_aws_service_access()
        .service_principal("guardduty.amazonaws.com")
        .send()
        .await
        .expect("EnableAWSServiceAccess");
    orgs.register_delegated_administrator()
        .account_id(&security)
        .service_principal("guardduty.amazonaws.com")
        .send()
        .await
        .expect("RegisterDelegatedAdministrator");
    for ou in ["Landing", "Suspended"] {
        orgs.create_organizational_unit()
            .parent_id(&world.org.root_id)
            .name(ou)
            .send()
            .await
            .expect("CreateOrganizationalUnit");
    }
    let mut scp_ids = BTreeMap::new();
    for (file, target) in [
        ("protect-guardrail.json", world.org.root_id.clone()),
        ("protect-organization.json", world.org.root_id.clone()),
        ("protect-security-account.json", security.clone()),
    ] {
        let created = orgs
            .create_policy()
            .name(format!("guardrail-{file}").trim_end_matches(".json"))
            .description("Guardrail")
            .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
            .content(minified(file))
            .send()
            .await
            .expect("CreatePolicy");
        let id = created
            .policy()
            .and_then(|p| p.policy_summary())
            .and_then(|s| s.id())
            .expect("policy id")
            .to_string();
        orgs.attach_policy()
            .policy_id(&id)
            .target_id(target)
            .send()
            .await
            .expect("AttachPolicy");
        scp_ids.insert(file, id);
    }
    let iam = aws_sdk_iam::Client::new(&world.config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    for role in [
        "guardrail-tag-enforcer-lambda",
        "guardrail-deployer",
        "break-glass-admin",
    ] {
        iam.create_role()
            .role_name(role)
            .assume_role_policy_document(trust)
            .send()
            .await
            .expect("CreateRole");
    }
    // Deploy step 3's delegation, as infra/management-role.yaml writes it.
    let template = guardrail_tests::infra::template("management-role.yaml");
    let content = template["Resources"]["ReadDelegation"]["Properties"]["Content"].to_string();
    let content = content.replace(
        r#"{"Fn::Sub":"arn:${AWS::Partition}:iam::${SecurityAccountId}:root"}"#,
        &format!("\"arn:aws:iam::{security}:root\""),
    );
    assert!(!content.contains("SecurityAccountId"), "{content}");
    orgs.put_resource_policy()
        .content(content)
        .send()
        .await
        .expect("PutResourcePolicy");
    let cfn = aws_sdk_cloudformation::Client::new(&world.config);
    cfn.create_stack()
        .stack_name("guardrail")
        .template_body(r#"{"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}}"#)
        .send()
        .await
        .expect("CreateStack");
    let templates = guardrail_tests::emulator::workspace().join("infra");
    let bus = format!("arn:aws:events:us-east-1:{security}:event-bus/guardrail");
    let deployed = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_guardrail"))
            .args([
                "deploy-member",
                "--templates",
                templates.to_str().expect("path"),
                "--ous",
                &world.org.root_id,
            ])
            .args([
                "--security-account",
                &security,
                "--bus-arn",
                &bus,
                "--regions",
                "us-east-1",
            ])
            .env_clear()
            .envs(world.function_env())
            .output()
            .expect("deploy-member")
    });
    assert_eq!(
        deployed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let s3 = aws_sdk_s3::Client::new(&world.config);
    s3.create_bucket()
        .bucket("guardrail-artifacts-test")
        .send()
        .await
        .expect("CreateBucket");
    s3.create_bucket()
        .bucket("organization-trail")
        .send()
        .await
        .expect("CreateBucket");
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&world.config);
    cloudtrail
        .create_trail()
        .name("organization")
        .s3_bucket_name("organization-trail")
        .is_organization_trail(true)
        .is_multi_region_trail(true)
        .send()
        .await
        .expect("CreateTrail");
    // Made, not yet logging: wrong, with the command that starts it.
    let out = tokio::task::block_in_place(|| doctor(&world, &["--security-account", &security, "--format", "json"]));
    let (found, report) = statuses(&out);
    assert_eq!(
        found.get("organization trail").map(String::as_str),
        Some("wrong"),
        "{report:#}"
    );
    assert!(fix_of(&report, "organization trail").contains("start-logging"));
    cloudtrail
        .start_logging()
        .name("organization")
        .send()
        .await
        .expect("StartLogging");

    let out = tokio::task::block_in_place(|| {
        doctor(
            &world,
            &[
                "--security-account",
                &security,
                "--bucket",
                "guardrail-artifacts-test",
                "--format",
                "json",
            ],
        )
    });
    let (found, report) = statuses(&out);
    assert!(found.values().all(|s| s == "ok"), "{report:#}");
    assert_eq!(found.get("artifact bucket").map(String::as_str), Some("ok"));
    assert_eq!(out.status.code(), Some(0), "{report:#}");

    // What drifts afterwards is wrong, with its fix: a pause, an SCP older than this release,
    // an artifact bucket the SCP does not guard.
    guardrail::aws::SsmSwitch::new(&world.config, Some("/guardrail/pause".into()))
        .set(&guardrail::pause::paused_value(
            "INC-7",
            "arn:aws:iam::123456789012:user/oncall",
            chrono::Utc::now(),
        ))
        .await
        .expect("pause");
    let mut older: Value = serde_json::from_str(&minified("protect-organization.json")).expect("JSON");
    older["Statement"].as_array_mut().expect("statements").pop();
    orgs.update_policy()
        .policy_id(&scp_ids["protect-organization.json"])
        .content(older.to_string())
        .send()
        .await
        .expect("UpdatePolicy");
    let out = tokio::task::block_in_place(|| {
        doctor(
            &world,
            &[
                "--security-account",
                &security,
                "--bucket",
                "my-builds",
                "--format",
                "json",
            ],
        )
    });
    assert_eq!(out.status.code(), Some(1));
    let (found, report) = statuses(&out);
    for check in ["kill switch", "SCP attached to the root", "artifact bucket"] {
        assert_eq!(
            found.get(check).map(String::as_str),
            Some("wrong"),
            "{check}: {report:#}"
        );
    }
    assert!(fix_of(&report, "kill switch").contains("guardrail resume"));
    assert!(fix_of(&report, "SCP attached to the root").contains(&format!(
        "update-policy --policy-id {}",
        scp_ids["protect-organization.json"]
    )));

    // A policy whose Regions lack us-east-1 would never see a role created.
    let west = std::env::temp_dir().join(format!("guardrail-doctor-{}.toml", std::process::id()));
    std::fs::write(
        &west,
        guardrail::policy::BUILTIN_POLICY
            .replace(r#"regions = ["us-east-1", "us-west-2"]"#, r#"regions = ["us-west-2"]"#),
    )
    .expect("policy");
    let out = tokio::task::block_in_place(|| {
        doctor(
            &world,
            &[
                "--security-account",
                &security,
                "--policy",
                west.to_str().expect("path"),
                "--format",
                "json",
            ],
        )
    });
    let (found, report) = statuses(&out);
    assert_eq!(
        found.get("the policy's Regions").map(String::as_str),
        Some("wrong"),
        "{report:#}"
    );
    let _ = std::fs::remove_file(&west);

    // For people: a table, then what to run.
    let out = tokio::task::block_in_place(|| doctor(&world, &["--security-account", &security]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("status"), "{text}");
    assert!(
        text.contains("\nto fix:\n") && text.contains("\n  kill switch: guardrail resume"),
        "{text}"
    );
    assert!(text.contains("\ndoctor (") && text.contains(" wrong, "), "{text}");
}
