//! Every event in `../shared/corpus` (real events written by others; CI has `../shared` beside the
//! clone) decodes to the expected event kind or the expected named rejection, and never panics.
//! A file added to the corpus fails this test until the table says what it should become.

use std::collections::BTreeMap;
use std::path::PathBuf;

use guardrail::event::{Decoded, Event, decode};

/// File → what each of its events must decode to: `event:<label>` or `reject:<code>`.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "car__organizations__CreateAccountResult-FAILED__awsdocs-orgs__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "car__organizations__CreateAccountResult-SUCCEEDED-2018__awsdocs-orgs__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "car__organizations__CreateAccountResult-SUCCEEDED__awsdocs-orgs.json",
        &["event:account-creation SUCCEEDED"],
    ),
    (
        "ct__ec2__AuthorizeSecurityGroupIngress__nuvibit-blog.json",
        &["event:api-call ec2:AuthorizeSecurityGroupIngress"],
    ),
    (
        "ct__ec2__DeleteTransitGatewayVpcAttachment__c7n.json",
        &["event:api-call ec2:DeleteTransitGatewayVpcAttachment"],
    ),
    (
        "ct__elasticloadbalancing__AddTags__c7n.json",
        &["event:api-call elasticloadbalancing:AddTags"],
    ),
    (
        "ct__guardduty__CreateSampleFindings__sumologic.json",
        &["event:api-call guardduty:CreateSampleFindings"],
    ),
    (
        "ct__organizations__CreateOrganizationalUnit__awsdocs-orgs-tutorial__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    ("ct__s3__CreateBucket__c7n.json", &["event:api-call s3:CreateBucket"]),
    (
        "gd__AttackSequence-IAM-CompromisedCredentials__panther.json",
        &["event:finding AttackSequence:IAM/CompromisedCredentials"],
    ),
    (
        "gd__AttackSequence-S3-CompromisedData-sample__panther.json",
        &["event:finding AttackSequence:S3/CompromisedData"],
    ),
    (
        "gd__Backdoor-EC2-CnCActivity.B-DNS__c7n.json",
        &["event:finding Backdoor:EC2/C&CActivity.B!DNS"],
    ),
    (
        "gd__CredentialAccess-IAMUser-AnomalousBehavior-PascalCase__gdsoar.json",
        &["event:finding CredentialAccess:IAMUser/AnomalousBehavior"],
    ),
    (
        "gd__Recon-EC2-PortProbeUnprotectedPort-minimal__notify-slack.json",
        &["reject:malformed-envelope"],
    ),
    (
        "gd__UnauthorizedAccess-EC2-SSHBruteForce-PascalCase__gdsoar.json",
        &["reject:bad-account-id"],
    ),
    (
        "other__controltower__CreateManagedAccount-lifecycle__awsdocs-ct__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "other__controltower__DisableGuardrail-lifecycle__awsdocs-ct.json",
        &["reject:bad-account-id"],
    ),
    (
        "other__ec2__EBSVolumeNotification-createVolume-available__awsdocs-ec2.json",
        &["reject:unsupported-detail-type"],
    ),
    (
        "other__ec2__EBSVolumeNotification-createVolume-failed__awsdocs-ec2__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "raw__bedrock__CreateModelCustomizationJob__c7n.json",
        &["event:api-call bedrock:CreateModelCustomizationJob"],
    ),
    (
        "raw__controltower__CreateManagedAccount-AssumedRole-SSO__rust-runtime.json",
        &["event:api-call controltower:CreateManagedAccount"],
    ),
    (
        "raw__dynamodb__UpdateTable__awsdocs-ddb.json",
        &["event:api-call dynamodb:UpdateTable"],
    ),
    (
        "raw__ec2-instance-connect__SendSSHPublicKey-trailingspace__awsdocs-ec2.json",
        &["reject:bad-account-id"],
    ),
    (
        "raw__ec2__CreateSecurityGroup__panther-sgchanges.json",
        &["event:api-call ec2:CreateSecurityGroup"],
    ),
    (
        "raw__ec2__CreateVpc-UnknownParameter__panther-vpcmod.json",
        &["event:api-call ec2:CreateVpc"],
    ),
    (
        "raw__ec2__CreateVpc__panther-vpcmod.json",
        &["event:api-call ec2:CreateVpc"],
    ),
    (
        "raw__ec2__RunInstances-AssumedRole__c7n.json",
        &["event:api-call ec2:RunInstances"],
    ),
    (
        "raw__ec2__RunInstances-DryRun__panther-ec2monitoring.json",
        &["event:api-call ec2:RunInstances"],
    ),
    (
        "raw__ec2__RunInstances-IAMUser-console__c7n.json",
        &["event:api-call ec2:RunInstances"],
    ),
    (
        "raw__ec2__RunInstances-UnauthorizedOperation__panther-unusual.json",
        &["reject:bad-region"],
    ),
    (
        "raw__ec2__RunInstances__panther-ec2monitoring.json",
        &["event:api-call ec2:RunInstances"],
    ),
    (
        "raw__ec2__TerminateInstances-Root__awsdocs-ec2.json",
        &["event:api-call ec2:TerminateInstances"],
    ),
    (
        "raw__efs__CreateMountTarget__c7n.json",
        &["event:api-call elasticfilesystem:CreateMountTarget"],
    ),
    (
        "raw__elb__CreateLoadBalancerPolicy-respnull__c7n.json",
        &["event:api-call elasticloadbalancing:CreateLoadBalancerPolicy"],
    ),
    (
        "raw__iam__AttachRolePolicy-Admin__panther.json",
        &["event:api-call iam:AttachRolePolicy"],
    ),
    (
        "raw__iam__AttachRolePolicy-NoSuchEntity__panther.json",
        &["event:api-call iam:AttachRolePolicy"],
    ),
    (
        "raw__iam__CreateRole-Records__awsdocs-cloudtrail__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "raw__iam__CreateServiceLinkedRole-Root__panther.json",
        &["event:api-call s3:CreateServiceLinkedRole"],
    ),
    (
        "raw__iam__CreateUser-EntityAlreadyExists__panther.json",
        &["event:api-call iam:CreateUser"],
    ),
    ("raw__iam__CreateUser__panther.json", &["event:api-call iam:CreateUser"]),
    (
        "raw__lambda__UpdateFunctionConfiguration-FederatedUser__panther.json",
        &["event:api-call lambda:UpdateFunctionConfiguration20150331v2"],
    ),
    (
        "raw__organizations__CloseAccountResult__awsdocs-orgs.json",
        &["event:service-event organizations:CloseAccountResult"],
    ),
    (
        "raw__organizations__CloseAccount__awsdocs-orgs.json",
        &["event:api-call organizations:CloseAccount"],
    ),
    (
        "raw__organizations__CreateAccount-2018__awsdocs-orgs.json",
        &["event:api-call organizations:CreateAccount"],
    ),
    (
        "raw__organizations__CreateAccount__awsdocs-orgs.json",
        &["event:api-call organizations:CreateAccount"],
    ),
    (
        "raw__organizations__LeaveOrganization-AccessDenied__panther.json",
        &["event:api-call organizations:LeaveOrganization"],
    ),
    (
        "raw__rds__CreateDBInstance__c7n.json",
        &["event:api-call rds:CreateDBInstance"],
    ),
    (
        "raw__s3__GetObject-AWSAccount-VpceAccessDenied__panther.json",
        &["event:api-call s3:GetObject"],
    ),
    (
        "raw__signin__ConsoleLogin-Root-failed-minimal__panther.json",
        &["event:api-call signin:ConsoleLogin"],
    ),
    (
        "raw__signin__ConsoleLogin-Root__panther.json",
        &["event:api-call signin:ConsoleLogin"],
    ),
    (
        "raw__signin__UserAuthentication-Unknown__rust-runtime.json",
        &["event:service-event signin:UserAuthentication"],
    ),
    (
        "raw__sns__ListTopics-CreateTopic-DeleteTopic-Records__awsdocs-sns__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
    (
        "raw__ssm__UpdateInstanceInformation-Records-2__awsdocs-cloudtrail.json",
        &["reject:unsupported-event-type", "reject:unsupported-event-type"],
    ),
    (
        "raw__sso__CreateToken-Unknown__panther.json",
        &["reject:bad-account-id"],
    ),
    (
        "raw__sso__Federate-Unknown__rust-runtime.json",
        &["event:service-event sso:Federate"],
    ),
    (
        "raw__sts__AssumeRole-AWSAccount-crossaccount__awsdocs-iam.json",
        &["event:api-call sts:AssumeRole"],
    ),
    (
        "raw__sts__AssumeRole-AWSService__panther.json",
        &["event:api-call sts:AssumeRole"],
    ),
    (
        "raw__sts__AssumeRoleWithSAML-SAMLUser__awsdocs-iam__INVALIDJSON.json",
        &["reject:invalid-json"],
    ),
];

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus")
}

fn kind(decoded: &Decoded) -> String {
    match decoded {
        Ok(event) => format!("event:{}", event.label()),
        Err(rejection) => format!("reject:{}", rejection.code()),
    }
}

#[test]
fn every_corpus_file_decodes_to_its_expected_kind() {
    let dir = corpus();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the corpus lives in ../shared beside the checkout)",
                dir.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let expected: BTreeMap<&str, &[&str]> = EXPECTED.iter().copied().collect();
    let mut problems = Vec::new();
    for file in &files {
        let bytes = std::fs::read(dir.join(file)).expect("readable corpus file");
        let got: Vec<String> = decode(&bytes).iter().map(kind).collect();
        match expected.get(file.as_str()) {
            None => problems.push(format!("{file}: not in the table; it decodes to {got:?}")),
            Some(want) if got != *want => problems.push(format!("{file}: expected {want:?}, got {got:?}")),
            Some(_) => {}
        }
        let marked_invalid = file.contains("INVALIDJSON");
        let parses = serde_json::from_slice::<serde_json::Value>(&bytes).is_ok();
        assert_eq!(
            marked_invalid, !parses,
            "{file}: the INVALIDJSON mark and the bytes disagree"
        );
    }
    for file in expected.keys() {
        if !files.iter().any(|f| f == file) {
            problems.push(format!("{file}: in the table but not in the corpus"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn rejections_read_as_one_specific_line() {
    for (file, _) in EXPECTED {
        let bytes = std::fs::read(corpus().join(file)).expect("readable corpus file");
        for decoded in decode(&bytes) {
            if let Err(r) = decoded {
                let line = r.to_string();
                assert!(!line.is_empty() && !line.contains('\n'), "{file}: {line:?}");
            }
        }
    }
}

#[test]
fn principals_of_every_identity_type_in_the_corpus_are_recognised() {
    let mut seen = BTreeMap::new();
    for (file, _) in EXPECTED {
        let bytes = std::fs::read(corpus().join(file)).expect("readable corpus file");
        for event in decode(&bytes).into_iter().flatten() {
            if let Some(t) = event.trail() {
                let kind = t.principal.describe().split(' ').next().unwrap_or_default().to_string();
                seen.entry(kind).or_insert(*file);
            }
        }
    }
    for kind in [
        "IAMUser",
        "AssumedRole",
        "Root",
        "FederatedUser",
        "AWSService",
        "AWSAccount",
        "Unknown",
        "no",
    ] {
        assert!(
            seen.contains_key(kind),
            "no {kind} principal decoded from the corpus: {seen:?}"
        );
    }
}

#[test]
fn pascal_case_and_camel_case_findings_decode_alike() {
    let read = |f: &str| {
        let bytes = std::fs::read(corpus().join(f)).expect("readable corpus file");
        match decode(&bytes).remove(0) {
            Ok(Event::Finding(finding)) => finding,
            other => panic!("{f}: {other:?}"),
        }
    };
    let pascal = read("gd__CredentialAccess-IAMUser-AnomalousBehavior-PascalCase__gdsoar.json");
    assert_eq!(pascal.finding_type, "CredentialAccess:IAMUser/AnomalousBehavior");
    assert_eq!(
        pascal.access_key.as_ref().and_then(|k| k.user_name.as_deref()),
        Some("GeneratedFindingUserName")
    );
    assert!(pascal.sample, "AdditionalInfo.Value says sample");
    let camel = read("gd__AttackSequence-S3-CompromisedData-sample__panther.json");
    assert!(camel.sample);
    let real = read("gd__AttackSequence-IAM-CompromisedCredentials__panther.json");
    assert!(!real.sample && real.severity >= 9.0 && real.updated_at.is_some());
}
