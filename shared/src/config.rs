//! Function configuration from the environment: `GUARDRAIL_TABLE`, `GUARDRAIL_LEDGER_TABLE`,
//! `GUARDRAIL_TOPIC_ARN` and `GUARDRAIL_POLICY`. Anything missing or invalid fails the init, naming the variable.

use crate::error::{Error, Result};
use crate::policy::Policy;

pub const TABLE_VAR: &str = "GUARDRAIL_TABLE";
pub const TOPIC_VAR: &str = "GUARDRAIL_TOPIC_ARN";
pub const POLICY_VAR: &str = "GUARDRAIL_POLICY";
pub const LEDGER_VAR: &str = "GUARDRAIL_LEDGER_TABLE";
/// Where Lambda unpacked the function's package: a relative `GUARDRAIL_POLICY` is found there.
pub const TASK_ROOT_VAR: &str = "LAMBDA_TASK_ROOT";

/// What every function needs besides its AWS clients.
#[derive(Clone, Debug)]
pub struct Config {
    /// The DynamoDB table (replay records, account directory).
    pub table: String,
    /// The audit ledger's DynamoDB table.
    pub ledger_table: String,
    /// The SNS topic alerts go to.
    pub topic_arn: String,
    pub policy: Policy,
    /// Where the policy came from, for logs.
    pub policy_origin: String,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Config::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let table = get(TABLE_VAR)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::config(format!("{TABLE_VAR} is not set: set it to the DynamoDB table's name")))?;
        if !is_table_name(&table) {
            return Err(Error::config(format!(
                "{TABLE_VAR}={table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"
            )));
        }
        let ledger_table = get(LEDGER_VAR).filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::config(format!(
                "{LEDGER_VAR} is not set: set it to the audit ledger table's name"
            ))
        })?;
        if !is_table_name(&ledger_table) {
            return Err(Error::config(format!(
                "{LEDGER_VAR}={ledger_table:?} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)"
            )));
        }
        let topic_arn = get(TOPIC_VAR)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::config(format!("{TOPIC_VAR} is not set: set it to the alert topic's ARN")))?;
        if !is_topic_arn(&topic_arn) {
            return Err(Error::config(format!(
                "{TOPIC_VAR}={topic_arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            )));
        }
        // A relative path is inside the function's package: Lambda unpacks it at LAMBDA_TASK_ROOT
        // ("Defined runtime environment variables", AWS Lambda Developer Guide).
        let policy_path = get(POLICY_VAR)
            .filter(|p| !p.is_empty())
            .map(|p| match get(TASK_ROOT_VAR) {
                Some(root) if !root.is_empty() && std::path::Path::new(&p).is_relative() => {
                    std::path::Path::new(&root).join(&p).display().to_string()
                }
                _ => p,
            });
        let (policy, policy_origin) = load_policy(policy_path.as_deref())?;
        Ok(Config {
            table,
            ledger_table,
            topic_arn,
            policy,
            policy_origin,
        })
    }
}

/// The policy at `path`, or the built-in one; errors name `GUARDRAIL_POLICY`, the file, key and line.
pub fn load_policy(path: Option<&str>) -> Result<(Policy, String)> {
    match path {
        None => Ok((Policy::builtin()?, "built-in".to_string())),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::config(format!("{POLICY_VAR}={path}: cannot read the policy file: {e}")))?;
            let policy = Policy::from_toml(&text, path)?;
            Ok((policy, path.to_string()))
        }
    }
}

fn is_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

fn is_topic_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
        if partition.starts_with("aws")
            && crate::ids::Region::parse(region).is_some()
            && crate::ids::AccountId::parse(account).is_some()
            && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:guardrail-alerts";

    #[test]
    fn complete_configuration_uses_the_builtin_policy() {
        let c = Config::from_vars(vars(&[
            (TABLE_VAR, "guardrail"),
            (LEDGER_VAR, "guardrail-ledger"),
            (TOPIC_VAR, TOPIC),
        ]));
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.policy_origin, "built-in");
    }

    #[test]
    fn a_relative_policy_path_is_read_from_the_package() {
        let root = std::env::temp_dir().join(format!("guardrail-task-root-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("dir");
        let text = crate::policy::BUILTIN_POLICY.replace(
            "management_role = \"\"",
            "management_role = \"arn:aws:iam::111111111111:role/guardrail-management\"",
        );
        std::fs::write(root.join("policy.toml"), text).expect("write");
        let base = [
            (TABLE_VAR, "guardrail"),
            (LEDGER_VAR, "guardrail-ledger"),
            (TOPIC_VAR, TOPIC),
            (POLICY_VAR, "policy.toml"),
        ];
        let root_text = root.display().to_string();
        let mut with_root = base.to_vec();
        with_root.push((TASK_ROOT_VAR, root_text.as_str()));
        let c = Config::from_vars(vars(&with_root)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.policy.baseline.management_role.as_deref(),
            Some("arn:aws:iam::111111111111:role/guardrail-management")
        );
        assert_eq!(c.policy_origin, root.join("policy.toml").display().to_string());
        // Without a task root the path is the process's own: here, no such file.
        let e = Config::from_vars(vars(&base)).expect_err("no policy.toml in the test's directory");
        assert!(e.to_string().contains("GUARDRAIL_POLICY=policy.toml"), "{e}");
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn every_problem_names_its_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![(TOPIC_VAR, TOPIC), (LEDGER_VAR, "l-l")], TABLE_VAR),
            (
                vec![(TABLE_VAR, "t t"), (TOPIC_VAR, TOPIC), (LEDGER_VAR, "l-l")],
                TABLE_VAR,
            ),
            (vec![(TABLE_VAR, "guardrail"), (TOPIC_VAR, TOPIC)], LEDGER_VAR),
            (
                vec![(TABLE_VAR, "guardrail"), (TOPIC_VAR, TOPIC), (LEDGER_VAR, "a b")],
                LEDGER_VAR,
            ),
            (vec![(TABLE_VAR, "guardrail"), (LEDGER_VAR, "l-l")], TOPIC_VAR),
            (
                vec![
                    (TABLE_VAR, "guardrail"),
                    (LEDGER_VAR, "l-l"),
                    (TOPIC_VAR, "guardrail-alerts"),
                ],
                TOPIC_VAR,
            ),
            (
                vec![
                    (TABLE_VAR, "guardrail"),
                    (LEDGER_VAR, "l-l"),
                    (TOPIC_VAR, TOPIC),
                    (POLICY_VAR, "/nonexistent/p.toml"),
                ],
                POLICY_VAR,
            ),
        ];
        for (pairs, var) in cases {
            let e = Config::from_vars(vars(&pairs)).expect_err(var);
            assert!(e.to_string().contains(var), "{e}");
        }
    }
}
