//! The CloudFormation templates of `infra/` as JSON values, with their event rules and the IAM
//! statements of their roles, for the tests that hold them to the code.

use serde_json::{Map, Value};
use serde_yaml_ng::value::TaggedValue;

use crate::emulator::workspace;

/// The templates, by file name.
pub const TEMPLATES: [&str; 4] = [
    "template.yaml",
    "member-roles.yaml",
    "management-role.yaml",
    "forwarding.yaml",
];

/// A template, with short-form intrinsics (`!Sub x`) in their long form (`{"Fn::Sub": x}`).
pub fn template(name: &str) -> Value {
    let path = workspace().join("infra").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    to_json(yaml)
}

fn to_json(yaml: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.as_str().map(str::to_string).unwrap_or_default(), to_json(v)))
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let TaggedValue { tag, value } = *tagged;
            let name = tag.to_string();
            let name = name.trim_start_matches('!');
            let key = if name == "Ref" {
                "Ref".to_string()
            } else {
                format!("Fn::{name}")
            };
            let value = match (name, to_json(value)) {
                ("GetAtt", Value::String(s)) => Value::Array(s.split('.').map(|p| Value::String(p.into())).collect()),
                (_, v) => v,
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    }
}

/// The resources of a template, by logical id.
pub fn resources(template: &Value) -> Vec<(String, &Value)> {
    template["Resources"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

/// One EventBridge rule: where it is, and its pattern.
#[derive(Debug)]
pub struct RuleInTemplate {
    pub file: &'static str,
    /// The rule's name (`guardrail-tag-enforcer`).
    pub name: String,
    pub pattern: Value,
    /// The template condition and its value under which the rule has this pattern, for a
    /// pattern written `!If [Condition, when_true, when_false]`.
    pub condition: Option<(String, bool)>,
}

/// One rule per pattern a rule can have: the pattern with its condition (at most one, used in
/// any `Fn::If` of it) true, and false; `AWS::NoValue` drops the list member or field.
fn rule_variants(file: &'static str, name: &Value, pattern: &Value) -> Vec<RuleInTemplate> {
    let name = name.as_str().unwrap_or_default().to_string();
    let mut conditions = std::collections::BTreeSet::new();
    conditions_in(pattern, &mut conditions);
    assert!(
        conditions.len() <= 1,
        "{file}: rule {name} depends on {conditions:?}; the test reads one condition"
    );
    match conditions.into_iter().next() {
        Some(condition) => [true, false]
            .into_iter()
            .map(|value| RuleInTemplate {
                file,
                name: name.clone(),
                pattern: resolve_if(pattern, value).unwrap_or(Value::Null),
                condition: Some((condition.clone(), value)),
            })
            .collect(),
        None => vec![RuleInTemplate {
            file,
            name,
            pattern: pattern.clone(),
            condition: None,
        }],
    }
}

fn conditions_in(value: &Value, found: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(c)) = map.get("Fn::If").and_then(|f| f.get(0)) {
                found.insert(c.clone());
            }
            map.values().for_each(|v| conditions_in(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| conditions_in(v, found)),
        _ => {}
    }
}

/// `value` with every `Fn::If` taken as `condition` says; `None` for `AWS::NoValue`.
fn resolve_if(value: &Value, condition: bool) -> Option<Value> {
    match value {
        Value::Object(map) if map.get("Ref") == Some(&Value::from("AWS::NoValue")) => None,
        Value::Object(map) => match map.get("Fn::If").and_then(Value::as_array) {
            Some(branches) => resolve_if(&branches[if condition { 1 } else { 2 }], condition),
            None => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| resolve_if(v, condition).map(|v| (k.clone(), v)))
                    .collect(),
            )),
        },
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|v| resolve_if(v, condition)).collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Every rule of every template: `AWS::Events::Rule` resources and SAM `EventBridgeRule` events.
pub fn rules() -> Vec<RuleInTemplate> {
    let mut out = Vec::new();
    for file in TEMPLATES {
        let t = template(file);
        for (_, resource) in resources(&t) {
            let properties = &resource["Properties"];
            match resource["Type"].as_str() {
                Some("AWS::Events::Rule") => {
                    out.extend(rule_variants(file, &properties["Name"], &properties["EventPattern"]))
                }
                Some("AWS::Serverless::Function") => {
                    for event in properties["Events"].as_object().into_iter().flat_map(|m| m.values()) {
                        if event["Type"] == "EventBridgeRule" {
                            let p = &event["Properties"];
                            out.extend(rule_variants(file, &p["RuleName"], &p["Pattern"]));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// One statement of an identity or resource policy in a template.
#[derive(Debug, Clone)]
pub struct Statement {
    pub file: &'static str,
    /// The role's name (or logical id when it has none), or the resource policy's logical id.
    pub owner: String,
    pub sid: String,
    pub allow: bool,
    pub actions: Vec<String>,
    /// Resources as written: strings, or `{"Fn::Sub": ...}` objects.
    pub resources: Vec<Value>,
    /// The `Condition` block as written (`Null` when there is none).
    pub condition: Value,
}

impl Statement {
    /// Whether the statement's `dynamodb:LeadingKeys` condition, if it has one, admits an item's
    /// partition key: `Err` for an operator this check does not know.
    pub fn admits_key(&self, key: &str) -> Result<bool, String> {
        let Some(operators) = self.condition.as_object() else {
            return Ok(true);
        };
        for (operator, keys) in operators {
            let Some(patterns) = keys.get("dynamodb:LeadingKeys") else {
                continue;
            };
            let patterns: Vec<String> = list(patterns)
                .iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            let admitted = match operator.trim_start_matches("ForAllValues:") {
                "StringLike" => patterns.iter().any(|p| wildmatch::WildMatch::new(p).matches(key)),
                "StringEquals" => patterns.iter().any(|p| p == key),
                other => {
                    return Err(format!(
                        "{} {}: condition operator {other} on dynamodb:LeadingKeys",
                        self.owner, self.sid
                    ));
                }
            };
            if !admitted {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The statements of every IAM role's inline policies in every template.
pub fn role_statements() -> Vec<Statement> {
    let mut out = Vec::new();
    for file in TEMPLATES {
        let t = template(file);
        for (id, resource) in resources(&t) {
            if resource["Type"] != "AWS::IAM::Role" {
                continue;
            }
            let owner = resource["Properties"]["RoleName"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(id);
            for policy in resource["Properties"]["Policies"].as_array().into_iter().flatten() {
                for s in list(&policy["PolicyDocument"]["Statement"]) {
                    out.push(statement(file, &owner, &s));
                }
            }
        }
    }
    out
}

/// The statements of a JSON policy file (the SCP).
pub fn policy_file(name: &str) -> (Value, Vec<Statement>) {
    let path = workspace().join("infra").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let statements = list(&doc["Statement"])
        .iter()
        .map(|s| statement("scp", name, s))
        .collect();
    (doc, statements)
}

fn statement(file: &'static str, owner: &str, s: &Value) -> Statement {
    let strings = |v: &Value| list(v).iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
    Statement {
        file,
        owner: owner.to_string(),
        sid: s["Sid"].as_str().unwrap_or_default().to_string(),
        allow: s["Effect"] == "Allow",
        actions: strings(&s["Action"]),
        resources: list(&s["Resource"]).to_vec(),
        condition: s["Condition"].clone(),
    }
}

/// A policy element that may be one value or a list.
fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Whether an IAM action pattern (`ec2:Describe*`) covers an action (`ec2:DescribeVolumes`),
/// case-insensitively as IAM compares them.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    wildmatch::WildMatch::new(&pattern.to_ascii_lowercase()).matches(&action.to_ascii_lowercase())
}
