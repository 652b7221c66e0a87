//! The templates in `infra/` against the code: event rules equal to the patterns the functions
//! decode, no wildcard grants but where an API requires one, SCPs in step with the policy's
//! principals and tag keys, the audit ledger's table and the dashboard as the code writes and
//! emits them. What the policies allow and deny is judged by the IAM evaluator (tests/iam).

use std::collections::BTreeSet;

use guardrail::policy::Policy;
use guardrail::rules::{Function, patterns};
use guardrail_tests::infra::{policy_file, role_statements, rules};
use serde_json::{Value, json};

/// Which function each rule name feeds, and which of the function's patterns it must carry
/// (`None` for the member accounts' one rule of API calls).
fn expected(name: &str) -> Option<Option<(Function, &'static str)>> {
    if name == "guardrail-api-calls" {
        return Some(None);
    }
    Some(Some(match name {
        "guardrail-account-baseline" | "guardrail-account-creation" => {
            (Function::AccountBaseline, "CreateAccountResult")
        }
        "guardrail-account-baseline-drift" => (Function::AccountBaseline, "DisableEbsEncryptionByDefault"),
        "guardrail-account-baseline-moves" => (Function::AccountBaseline, "MoveAccount"),
        "guardrail-tag-enforcer" => (Function::TagEnforcer, "aws.ec2"),
        "guardrail-agent-quarantine-findings" | "guardrail-findings-to-bus" => {
            (Function::AgentQuarantine, "GuardDuty Finding")
        }
        "guardrail-agent-quarantine-alarms" => (Function::AgentQuarantine, "CloudWatch Alarm State Change"),
        "guardrail-agent-quarantine-calls" => (Function::AgentQuarantine, "CreateUser"),
        _ => return None,
    }))
}

/// The policy a template condition stands for: `CountTaggedAgents` is
/// `quarantine.rate.tagged_agents`.
fn policy_for(condition: &Option<(String, bool)>) -> Policy {
    let text = match condition {
        None => guardrail::policy::BUILTIN_POLICY.to_string(),
        Some((name, value)) => {
            assert_eq!(name, "CountTaggedAgents", "a condition the test does not know");
            guardrail::policy::BUILTIN_POLICY.replace("tagged_agents = false", &format!("tagged_agents = {value}"))
        }
    };
    Policy::from_toml(&text, "test").expect("policy")
}

#[test]
fn every_rule_in_the_templates_is_a_pattern_the_function_generates() {
    let policy = Policy::builtin().expect("policy");
    let found = rules();
    assert!(found.len() >= 10, "{found:#?}");
    assert_eq!(
        found.iter().filter(|r| r.condition.is_some()).count(),
        4,
        "the calls rule, in both templates, both ways: {found:#?}"
    );
    let mut central: BTreeSet<String> = BTreeSet::new();
    for rule in &found {
        let expected =
            expected(&rule.name).unwrap_or_else(|| panic!("{}: rule {} feeds no known function", rule.file, rule.name));
        let policy = policy_for(&rule.condition);
        let Some((function, marker)) = expected else {
            assert_eq!(
                rule.pattern,
                patterns::member_api_calls(&policy),
                "{}: rule {} differs from `guardrail pattern member-forwarding`",
                rule.file,
                rule.name
            );
            continue;
        };
        let generated = function.event_patterns(&policy);
        let want = generated
            .iter()
            .find(|p| p.to_string().contains(marker))
            .unwrap_or_else(|| panic!("{} has no pattern with {marker}", function.name()));
        assert_eq!(
            &rule.pattern,
            want,
            "{}: rule {} differs from `guardrail pattern {}`",
            rule.file,
            rule.name,
            function.name()
        );
        if rule.file == "template.yaml" && !matches!(rule.condition, Some((_, true))) {
            central.insert(serde_json::to_string(&rule.pattern).unwrap_or_default());
        }
    }
    // The functions' own rules on the central bus carry every pattern each function decodes.
    for function in Function::ALL {
        for pattern in function.event_patterns(&policy) {
            assert!(
                central.contains(&serde_json::to_string(&pattern).unwrap_or_default()),
                "template.yaml has no rule for {}'s pattern {pattern}",
                function.name()
            );
        }
    }
}

/// Actions that AWS authorizes only on `Resource: "*"` (no resource types in the Service
/// Authorization Reference). Anything else granted on `*` fails the test.
const STAR_ONLY: [&str; 33] = [
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:EnableEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "ec2:ModifyEbsDefaultKmsKeyId",
    "ec2:GetInstanceMetadataDefaults",
    "ec2:ModifyInstanceMetadataDefaults",
    "ec2:GetSnapshotBlockPublicAccessState",
    "ec2:EnableSnapshotBlockPublicAccess",
    "ec2:GetImageBlockPublicAccessState",
    "ec2:EnableImageBlockPublicAccess",
    "iam:ListAccountAliases",
    "iam:CreateAccountAlias",
    "iam:GetAccountPasswordPolicy",
    "iam:UpdateAccountPasswordPolicy",
    "s3:GetAccountPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "tag:TagResources",
    "tag:UntagResources",
    "tag:GetResources",
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListAccounts",
    "iam:ListRoles",
    "iam:ListUsers",
];

#[test]
fn no_role_is_granted_a_wildcard_but_where_the_api_requires_it() {
    let statements = role_statements();
    assert!(statements.len() > 20, "{statements:#?}");
    for s in statements.iter().filter(|s| s.allow) {
        for action in &s.actions {
            assert!(
                !action.contains('*'),
                "{} {} {}: grants the wildcard action {action}",
                s.file,
                s.owner,
                s.sid
            );
        }
        if s.resources.iter().any(|r| r == "*") {
            for action in &s.actions {
                assert!(
                    STAR_ONLY.contains(&action.as_str()),
                    "{} {} {}: grants {action} on Resource \"*\"; name the resources",
                    s.file,
                    s.owner,
                    s.sid
                );
            }
        }
    }
    // Each function's role may assume only its own member role (or the management role).
    for s in statements
        .iter()
        .filter(|s| s.actions.iter().any(|a| a == "sts:AssumeRole"))
    {
        let text = Value::Array(s.resources.clone()).to_string();
        let own = match s.owner.as_str() {
            "guardrail-tag-enforcer-lambda" => text.contains("role/guardrail-tag-enforcer\""),
            "guardrail-agent-quarantine-lambda" => text.contains("role/guardrail-agent-quarantine\""),
            "guardrail-account-baseline-lambda" => {
                text.contains("role/guardrail-management\"") || text.contains("role/guardrail-account-baseline\"")
            }
            "guardrail-management" => text.contains("role/${BootstrapRoleName}"),
            other => panic!("{other} may assume roles: {text}"),
        };
        assert!(own && s.resources.len() == 1, "{} {}: assumes {text}", s.owner, s.sid);
    }
}

/// A statement of an SCP file of `infra/scp`, by Sid.
fn scp_statement(file: &str, sid: &str) -> Value {
    let (doc, _) = policy_file(&format!("scp/{file}"));
    doc["Statement"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["Sid"] == sid))
        .cloned()
        .unwrap_or_else(|| panic!("{sid} is missing from infra/scp/{file}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// What the SCPs decide is judged by the IAM evaluator (`make iam-judge`, tests/iam); this test
/// keeps them in step with the policy the functions run: whoever the policy protects, spares or
/// lets set waivers by name is a role nobody else may create or change, and every tag key the
/// code gives meaning to is denied to others in any case.
#[test]
fn the_scps_keep_in_step_with_the_policys_principals_and_tag_keys() {
    let policy = Policy::builtin().expect("the builtin policy");
    // Roles nobody but the exempt may create: those of ExemptRolesStayExempt (nor change), and
    // the service-linked path (AWS itself refuses changes to service-linked roles).
    let exempt_roles = [
        strings(&scp_statement("protect-guardrail.json", "ExemptRolesStayExempt")["Resource"]),
        strings(&scp_statement("protect-organization.json", "ServiceLinkedPathStaysAws")["Resource"]),
    ]
    .concat();
    let mut by_name: Vec<String> = policy
        .protected_principals
        .iter()
        .chain(&policy.guardrail_principals)
        .chain(&policy.safety.waivers.setters)
        .map(|p| p.as_str().to_string())
        .collect();
    by_name.push(format!("arn:aws:iam::*:role/{}", policy.baseline.bootstrap_role));
    by_name.push(format!(
        "arn:aws:iam::*:role/{}",
        policy.member_role.replace("{function}", "*")
    ));
    for pattern in &by_name {
        assert!(
            exempt_roles.contains(pattern),
            "{pattern}: the policy treats these roles specially, so ExemptRolesStayExempt must keep others from creating or changing them"
        );
    }
    // The waiver setters: held to waivers, and spared by the waiver statements.
    let setters: Vec<String> = policy
        .safety
        .waivers
        .setters
        .iter()
        .map(|p| p.as_str().to_string())
        .collect();
    assert!(!setters.is_empty(), "the builtin policy names waiver setters");
    let only_waivers = scp_statement("protect-guardrail.json", "WaiverSettersSetOnlyWaivers");
    assert_eq!(
        strings(&only_waivers["Condition"]["ArnLike"]["aws:PrincipalArn"]),
        setters
    );
    for sid in ["GuardrailTagsAreGuardrails", "WaiverTagAnyCase"] {
        let spared =
            strings(&scp_statement("protect-guardrail.json", sid)["Condition"]["ArnNotLike"]["aws:PrincipalArn"]);
        assert!(setters.iter().all(|s| spared.contains(s)), "{sid}: {spared:?}");
    }
    // Every key the code reads is denied to others whatever its case.
    let any_case = |sid: &str| {
        strings(
            &scp_statement("protect-guardrail.json", sid)["Condition"]["ForAnyValue:StringEqualsIgnoreCase"]["aws:TagKeys"],
        )
    };
    let keys = [any_case("GuardrailTagsAnyCase"), any_case("WaiverTagAnyCase")].concat();
    for key in [
        guardrail::quarantine::QUARANTINE_TAG.to_string(),
        guardrail::rules::tags::VIOLATION_TAG.to_string(),
        guardrail::waiver::WAIVER_TAG.to_string(),
        policy.quarantine.agent_tag.clone().expect("an agent tag"),
        policy.quarantine.alarm_tag.clone(),
    ] {
        assert!(keys.contains(&key), "{key} may be set by others in another case");
    }
    assert_eq!(any_case("WaiverTagAnyCase"), [guardrail::waiver::WAIVER_TAG]);
}

#[test]
fn leading_keys_conditions_admit_each_functions_own_items_only() {
    let statements = guardrail_tests::infra::role_statements();
    let on_ledger =
        |s: &&guardrail_tests::infra::Statement| Value::Array(s.resources.clone()).to_string().contains("Ledger");
    // Guardrail's table, not the ledger (below).
    let admits = |role: &str, action: &str, key: &str| {
        statements
            .iter()
            .filter(|s| s.owner == role && s.allow && s.actions.iter().any(|a| a == action))
            .filter(|s| !on_ledger(s))
            .any(|s| s.admits_key(key).expect("a known operator"))
    };
    // The ledger: each function may put new entries and do nothing else with it.
    for role in [
        "guardrail-tag-enforcer-lambda",
        "guardrail-agent-quarantine-lambda",
        "guardrail-account-baseline-lambda",
    ] {
        let grants: Vec<&String> = statements
            .iter()
            .filter(|s| s.owner == role && s.allow)
            .filter(on_ledger)
            .flat_map(|s| &s.actions)
            .collect();
        assert_eq!(grants, ["dynamodb:PutItem"], "{role} on the ledger");
    }
    let enforcer = "guardrail-tag-enforcer-lambda";
    assert!(admits(
        enforcer,
        "dynamodb:PutItem",
        "replay#tag-enforcer#cloudtrail#e-1"
    ));
    assert!(admits(
        enforcer,
        "dynamodb:GetItem",
        "account#tag-enforcer#111122223333"
    ));
    // The quarantine records and another function's directory are agent-quarantine's.
    assert!(!admits(
        enforcer,
        "dynamodb:PutItem",
        "quarantine#111122223333#role#runner"
    ));
    assert!(!admits(
        enforcer,
        "dynamodb:GetItem",
        "account#agent-quarantine#111122223333"
    ));
    assert!(admits(
        "guardrail-agent-quarantine-lambda",
        "dynamodb:PutItem",
        "quarantine#111122223333#role#runner"
    ));
    assert!(!admits(
        "guardrail-account-baseline-lambda",
        "dynamodb:PutItem",
        "account#111122223333"
    ));
    // Approvals: each function asks for its own, and none may approve, reject or read one.
    for function in Function::ALL {
        let role = format!("guardrail-{function}-lambda");
        let own = guardrail::approval::key(&guardrail::approval::id(function, "finding#f#1"));
        assert!(admits(&role, "dynamodb:PutItem", &own), "{role} asks for {own}");
        for action in ["dynamodb:UpdateItem", "dynamodb:GetItem"] {
            assert!(!admits(&role, action, &own), "{role} may not {action} {own}");
        }
        for other in Function::ALL.into_iter().filter(|f| *f != function) {
            let theirs = guardrail::approval::key(&guardrail::approval::id(other, "finding#f#1"));
            assert!(!admits(&role, "dynamodb:PutItem", &theirs), "{role} on {theirs}");
        }
    }
}

#[test]
fn the_ledger_table_is_the_one_the_code_writes_and_nobody_may_rewrite_it() {
    let t = guardrail_tests::infra::template("template.yaml");
    let ledger = &t["Resources"]["Ledger"]["Properties"];
    let strings = |v: &Value, field: &str| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x[field].as_str().map(str::to_string))
            .collect()
    };
    let mut attributes = strings(&ledger["AttributeDefinitions"], "AttributeName");
    attributes.sort();
    let mut expected = guardrail::ledger::ATTRIBUTES.map(str::to_string).to_vec();
    expected.sort();
    assert_eq!(attributes, expected);
    assert_eq!(strings(&ledger["KeySchema"], "AttributeName"), ["account", "entry"]);
    let indexes: Vec<(String, Vec<String>)> = ledger["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["IndexName"].as_str().unwrap_or_default().to_string(),
                strings(&i["KeySchema"], "AttributeName"),
            )
        })
        .collect();
    // The names and keys `LedgerTable::query` and the test world use.
    assert_eq!(
        indexes,
        [
            (
                "by-resource".to_string(),
                vec!["resource".to_string(), "entry".to_string()]
            ),
            ("by-day".to_string(), vec!["day".to_string(), "entry".to_string()]),
        ]
    );
    assert_eq!(ledger["TimeToLiveSpecification"]["AttributeName"], "expires_at");
    assert_eq!(
        ledger["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(ledger["DeletionProtectionEnabled"], true);
    let deny = &ledger["ResourcePolicy"]["PolicyDocument"]["Statement"][0];
    assert_eq!((&deny["Effect"], &deny["Principal"]), (&json!("Deny"), &json!("*")));
    for action in ["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"] {
        assert!(
            deny["Action"].as_array().is_some_and(|a| a.contains(&json!(action))),
            "{action} must be denied: {deny}"
        );
    }
    assert_eq!(
        t["Globals"]["Function"]["Environment"]["Variables"][guardrail::config::LEDGER_VAR],
        json!({"Ref": "Ledger"})
    );
}

#[test]
fn guardrails_table_has_the_pending_approvals_index_the_code_queries() {
    use guardrail::aws::{DEADLINE, PENDING_INDEX, QUEUE};
    let t = guardrail_tests::infra::template("template.yaml");
    let table = &t["Resources"]["Table"]["Properties"];
    let definitions: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap_or_default().to_string(),
                a["AttributeType"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [("pk", "S"), (QUEUE, "S"), (DEADLINE, "N")]
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .into();
    assert_eq!(definitions, expected);
    let index = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(index["IndexName"], PENDING_INDEX);
    assert_eq!(
        index["KeySchema"],
        json!([{"AttributeName": QUEUE, "KeyType": "HASH"}, {"AttributeName": DEADLINE, "KeyType": "RANGE"}])
    );
    assert_eq!(index["Projection"]["ProjectionType"], "ALL");
    assert_eq!(table["GlobalSecondaryIndexes"].as_array().map(Vec::len), Some(1));
}

#[test]
fn the_dashboard_shows_the_counters_the_functions_emit() {
    let t = guardrail_tests::infra::template("template.yaml");
    let body = t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("a !Sub body");
    let body: Value = serde_json::from_str(&body.replace("${AWS::Region}", "us-east-1")).expect("JSON body");
    let mut shown = BTreeSet::new();
    for widget in body["widgets"].as_array().into_iter().flatten() {
        for m in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let m: Vec<&str> = m.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            assert_eq!(m.first(), Some(&guardrail::metrics::NAMESPACE), "{m:?}");
            assert_eq!(m.get(2), Some(&"Rule"), "{m:?}");
            shown.insert((m[1].to_string(), m[3].to_string()));
        }
    }
    let mut emitted = BTreeSet::new();
    for metric in guardrail::metrics::RULE_METRICS {
        for rule in guardrail::policy::Rule::ALL {
            emitted.insert((metric.to_string(), rule.name().to_string()));
        }
    }
    assert_eq!(
        shown, emitted,
        "every counter of every rule, and nothing the code does not emit"
    );
}
