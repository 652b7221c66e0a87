//! Deploy-time faults of `infra/template.yaml` and `make deploy` that no linter sees (issue: a
//! first deployment that works): every rule's dead letters admitted by their queue, reserved
//! concurrency that a new account can deploy, data that outlives the stack, and a `make deploy`
//! that passes every parameter the template takes.

use std::collections::{BTreeMap, BTreeSet};

use guardrail_tests::emulator::workspace;
use guardrail_tests::infra::{resources, template};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The queue a `DeadLetterConfig` or `Queues` entry names (`!GetAtt X.Arn` or `!Ref X`).
fn queue_id(v: &Value) -> Option<String> {
    v.get("Fn::GetAtt")
        .and_then(|a| a.get(0))
        .or_else(|| v.get("Ref"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// EventBridge drops what it cannot deliver unless the rule's dead-letter queue lets it in for
/// that rule (EventBridge User Guide, "Using dead-letter queues to process undelivered events";
/// SAM adds the permission only to a queue it creates itself).
#[test]
fn every_rules_dead_letter_queue_admits_eventbridge_for_exactly_its_rules() {
    let t = template("template.yaml");
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, r) in resources(&t) {
        for (_, event) in r["Properties"]["Events"].as_object().into_iter().flatten() {
            let p = &event["Properties"];
            if event["Type"] != "EventBridgeRule" {
                continue;
            }
            let queue = queue_id(&p["DeadLetterConfig"]["Arn"]).expect("every rule has a dead-letter queue");
            let bus = p["EventBusName"]["Ref"]
                .as_str()
                .expect("rules are on the Guardrail bus");
            let rule = p["RuleName"].as_str().expect("rules are named");
            wanted.entry(queue).or_default().insert(format!(
                "arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:rule/${{{bus}}}/{rule}"
            ));
        }
    }
    assert_eq!(wanted.len(), 3, "one dead-letter queue per function: {wanted:?}");
    let mut admitted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, r) in resources(&t) {
        if r["Type"] != "AWS::SQS::QueuePolicy" {
            continue;
        }
        let queues: Vec<String> = r["Properties"]["Queues"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(queue_id)
            .collect();
        for s in r["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if s["Effect"] != "Allow" || strings(&s["Principal"]["Service"]) != ["events.amazonaws.com"] {
                continue;
            }
            assert_eq!(strings(&s["Action"]), ["sqs:SendMessage"], "{id}: only SendMessage");
            let sources: Vec<String> = s["Condition"]["ArnEquals"]["aws:SourceArn"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["Fn::Sub"].as_str().unwrap_or_default().to_string())
                .collect();
            assert!(!sources.is_empty(), "{id}: EventBridge admitted for any rule at all");
            for q in &queues {
                admitted.entry(q.clone()).or_default().extend(sources.iter().cloned());
            }
        }
    }
    assert_eq!(
        admitted, wanted,
        "each queue's policy names exactly the rules that dead-letter into it"
    );
}

/// Lambda keeps 100 executions unreserved (Lambda Developer Guide, "Configuring reserved
/// concurrency"), and new accounts start with reduced quotas: `ReservedConcurrency=off` must
/// deploy without reserving anything, and `on` reserves what the parameter says.
#[test]
fn reserved_concurrency_is_the_deployers_choice() {
    let t = template("template.yaml");
    let parameter = &t["Parameters"]["ReservedConcurrency"];
    assert_eq!(parameter["Default"], "on");
    assert_eq!(strings(&parameter["AllowedValues"]), ["on", "off"]);
    assert_eq!(
        t["Conditions"]["ReserveConcurrency"],
        serde_json::json!({"Fn::Equals": [{"Ref": "ReservedConcurrency"}, "on"]})
    );
    let mut reserved = 0;
    for (id, r) in resources(&t) {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let value = &r["Properties"]["ReservedConcurrentExecutions"]["Fn::If"];
        assert_eq!(
            value[0], "ReserveConcurrency",
            "{id}: reserves whatever the deployer chose"
        );
        assert_eq!(
            value[2],
            serde_json::json!({"Ref": "AWS::NoValue"}),
            "{id}: off reserves nothing"
        );
        reserved += value[1].as_u64().expect("a number of executions");
    }
    let described = parameter["Description"].as_str().unwrap_or_default();
    assert!(
        described.contains(&format!("at least {}", reserved + 100)),
        "the parameter names the quota \"on\" needs ({} + 100): {described}",
        reserved
    );
}

/// DynamoDB makes a table whose key is unusable inaccessible and archives it after seven days
/// (DynamoDB Developer Guide, "How encryption at rest works"): the key outlives the stack with
/// the tables it encrypts.
#[test]
fn the_key_outlives_the_stack_with_the_tables_it_encrypts() {
    let t = template("template.yaml");
    let all = resources(&t);
    for (id, r) in &all {
        if r["Type"] != "AWS::DynamoDB::Table" {
            continue;
        }
        assert_eq!(r["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{id}");
        let key = queue_id(&r["Properties"]["SSESpecification"]["KMSMasterKeyId"]).expect("a key of the stack");
        let (_, k) = all.iter().find(|(i, _)| *i == key).expect("the key is in the template");
        assert_eq!(
            k["DeletionPolicy"], "Retain",
            "{id}'s key {key} is deleted with the stack"
        );
        assert_eq!(k["UpdateReplacePolicy"], "Retain", "{id}'s key {key} is replaced away");
    }
}

/// `make deploy` passes every parameter `infra/template.yaml` takes, so a deployer can set each
/// without editing the Makefile, and keeps a failed deploy's resources for the next run.
#[test]
fn make_deploy_passes_every_parameter_of_the_template() {
    let t = template("template.yaml");
    let parameters: BTreeSet<String> = t["Parameters"]
        .as_object()
        .expect("parameters")
        .keys()
        .cloned()
        .collect();
    let makefile = std::fs::read_to_string(workspace().join("Makefile")).expect("Makefile");
    let recipe: String = makefile
        .split("\ndeploy-stack:\n")
        .nth(1)
        .expect("a deploy-stack target")
        .lines()
        .take_while(|l| l.starts_with('\t') || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let overrides = recipe
        .split("--parameter-overrides")
        .nth(1)
        .expect("parameter overrides");
    let passed: BTreeSet<String> = overrides
        .split_whitespace()
        .filter_map(|w| w.trim_start_matches('"').split_once('='))
        .map(|(k, _)| k.to_string())
        .filter(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(passed, parameters, "make deploy-stack --parameter-overrides");
    assert!(
        recipe.contains("--disable-rollback"),
        "a failed deploy keeps what it made"
    );
    // A template body over 51,200 bytes must go by S3 (CloudFormation quotas); the packaged
    // template is within a few hundred bytes of it.
    assert!(
        recipe.contains("--s3-bucket $(BUCKET)"),
        "deploy uploads the template to the artifact bucket"
    );
    assert!(
        recipe.contains("ROLLBACK_COMPLETE"),
        "a stack deploy cannot update is explained"
    );
}

/// An organization has one delegation policy (PutResourcePolicy creates or replaces it): the
/// deployer can leave it to another team's stack, and deleting Guardrail's stack never deletes
/// it (Organizations User Guide: a deleted delegation policy cannot be recovered).
#[test]
fn the_organizations_delegation_policy_is_optional_and_outlives_the_stack() {
    let t = template("management-role.yaml");
    let (_, policy) = resources(&t)
        .into_iter()
        .find(|(_, r)| r["Type"] == "AWS::Organizations::ResourcePolicy")
        .expect("the delegation policy");
    assert_eq!(policy["Condition"], "ManageDelegationPolicy");
    assert_eq!(policy["DeletionPolicy"], "Retain");
    assert_eq!(policy["UpdateReplacePolicy"], "Retain");
    assert_eq!(t["Parameters"]["ManageDelegationPolicy"]["Default"], "true");
}

/// Agents' read-only calls count only when the deployer asks (cost against coverage): the rules
/// that carry agents' calls, the member accounts' forwarding and agent-quarantine's on the bus,
/// receive CloudTrail's read-only management events exactly when `CountReadOnlyCalls` is true
/// (EventBridge User Guide, "Receiving read-only management events from AWS services").
#[test]
fn agents_reads_are_carried_exactly_when_the_deployer_asks() {
    let state = serde_json::json!({"Fn::If": ["CountReadOnlyCalls", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", "ENABLED"]});
    let forwarding = template("forwarding.yaml");
    let central = template("template.yaml");
    for t in [&forwarding, &central] {
        assert_eq!(t["Parameters"]["CountReadOnlyCalls"]["Default"], "false");
        assert_eq!(
            t["Conditions"]["CountReadOnlyCalls"],
            serde_json::json!({"Fn::Equals": [{"Ref": "CountReadOnlyCalls"}, "true"]})
        );
    }
    let api_calls = resources(&forwarding)
        .into_iter()
        .find(|(_, r)| r["Properties"]["Name"] == "guardrail-api-calls")
        .map(|(_, r)| r["Properties"]["State"].clone());
    assert_eq!(api_calls, Some(state.clone()));
    let mut with_state = Vec::new();
    for (_, r) in resources(&central) {
        for (_, event) in r["Properties"]["Events"].as_object().into_iter().flatten() {
            if event["Type"] == "EventBridgeRule" && event["Properties"]["State"] != Value::Null {
                with_state.push((
                    event["Properties"]["RuleName"].clone(),
                    event["Properties"]["State"].clone(),
                ));
            }
        }
    }
    assert_eq!(
        with_state,
        [(serde_json::json!("guardrail-agent-quarantine-calls"), state)]
    );
}
