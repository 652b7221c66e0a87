//! Tag and naming rules: required and protected keys, accepted spellings, allowed values, and name
//! patterns per resource kind.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Serialize;

use crate::plan::same_key;

/// What the policy says about tags.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TagRules {
    /// Keys every new resource must carry.
    pub required: Vec<String>,
    /// Keys (a trailing `*` matches any suffix) that nobody but Guardrail may remove or change,
    /// besides `Environment`.
    pub protected: Vec<String>,
    /// Canonical key → other spellings that are renamed to it. Keys that differ from a known key
    /// only by case or separators are renamed without being listed.
    pub aliases: BTreeMap<String, Vec<String>>,
    /// Key → the values it may take.
    pub allowed: BTreeMap<String, Vec<String>>,
    /// Key → a pattern its values must match.
    pub patterns: BTreeMap<String, ValuePattern>,
}

/// A regular expression a tag value must match.
#[derive(Clone, Debug)]
pub struct ValuePattern {
    pub(super) text: String,
    pub(super) regex: Regex,
}

impl PartialEq for ValuePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for ValuePattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A key reduced to what spelling does not change: lowercase, without `-`, `_`, `.`, spaces.
fn squash(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

impl TagRules {
    /// The keys the policy knows: required, aliased, and those with allowed values or patterns.
    fn known(&self) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .chain(self.aliases.keys())
            .chain(self.allowed.keys())
            .chain(self.patterns.keys())
            .map(String::as_str)
    }

    /// The canonical key a differently spelled key stands for: `environment`, `ENV` or an alias
    /// such as `env` → `Environment`. `None` for canonical keys and unrelated keys.
    pub fn canonical(&self, key: &str) -> Option<&str> {
        if self.known().any(|k| k == key) {
            return None;
        }
        let squashed = squash(key);
        self.known().find(|k| squash(k) == squashed).or_else(|| {
            self.aliases
                .iter()
                .find(|(_, spellings)| spellings.iter().any(|s| squash(s) == squashed))
                .map(|(k, _)| k.as_str())
        })
    }

    /// Whether removing or changing the key is drift Guardrail reverts or reports. Protected
    /// keys (`guardrail:*`) match in any case, as IAM matches a principal's tag keys.
    pub fn is_protected(&self, key: &str) -> bool {
        key == super::ENVIRONMENT_TAG
            || self.required.iter().any(|k| k == key)
            || self.protected.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => key.get(..prefix.len()).is_some_and(|start| same_key(start, prefix)),
                None => same_key(p, key),
            })
    }

    /// Why a value is not allowed for the key, if it is not.
    pub fn disallowed(&self, key: &str, value: &str) -> Option<String> {
        if let Some(values) = self.allowed.get(key)
            && !values.iter().any(|v| v == value)
        {
            return Some(format!("allowed values are {}", values.join(", ")));
        }
        if let Some(p) = self.patterns.get(key)
            && !p.regex.is_match(value)
        {
            return Some(format!("values must match {}", p.text));
        }
        None
    }
}

/// A naming pattern where `{env}` stands for an environment's name, compiled per environment.
#[derive(Clone, Debug)]
pub struct NamePattern {
    pub(super) pattern: String,
    pub(super) compiled: Vec<(String, Regex)>,
}

impl NamePattern {
    /// The environment whose instance of the pattern the name matches.
    pub fn environment_of(&self, name: &str) -> Option<&str> {
        self.compiled
            .iter()
            .find(|(_, re)| re.is_match(name))
            .map(|(env, _)| env.as_str())
    }

    /// Whether the name matches the pattern for this environment.
    pub fn matches(&self, environment: &str, name: &str) -> bool {
        self.compiled
            .iter()
            .any(|(env, re)| env == environment && re.is_match(name))
    }

    /// The pattern as written, with `{env}`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The pattern for one environment, as a person reads it.
    pub fn for_environment(&self, environment: &str) -> String {
        self.pattern.replace("{env}", environment)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Serialize for NamePattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.pattern)
    }
}

/// Naming conventions: accounts, and resources by kind (`ec2:instance`, `iam:role`, ...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Naming {
    pub account: NamePattern,
    pub resources: BTreeMap<String, NamePattern>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TagRules {
        TagRules {
            required: vec!["Environment".into(), "Owner".into()],
            protected: vec!["guardrail:*".into()],
            aliases: [("Environment".to_string(), vec!["env".to_string(), "stage".to_string()])].into(),
            allowed: [(
                "DataClass".to_string(),
                vec!["public".to_string(), "internal".to_string()],
            )]
            .into(),
            patterns: [(
                "CostCenter".to_string(),
                ValuePattern {
                    text: "^[0-9]{4}$".into(),
                    regex: Regex::new("^[0-9]{4}$").expect("regex"),
                },
            )]
            .into(),
        }
    }

    #[test]
    fn misspelled_keys_map_to_the_canonical_one() {
        let r = rules();
        for key in ["environment", "ENVIRONMENT", "env", "Env", "stage", "environ_ment"] {
            assert_eq!(r.canonical(key), Some("Environment"), "{key}");
        }
        assert_eq!(r.canonical("cost-center"), Some("CostCenter"));
        for key in ["Environment", "Name", "envoy", "Team"] {
            assert_eq!(r.canonical(key), None, "{key}");
        }
    }

    #[test]
    fn protection_and_allowed_values() {
        let r = rules();
        assert!(r.is_protected("Environment") && r.is_protected("Owner") && r.is_protected("guardrail:quarantine"));
        assert!(!r.is_protected("Name") && !r.is_protected("guardrailx"));
        for spelling in ["Guardrail:Quarantine", "GUARDRAIL:WAIVER", "guardrail:Agent"] {
            assert!(r.is_protected(spelling), "{spelling}: IAM takes it for Guardrail's key");
        }
        assert_eq!(r.disallowed("DataClass", "internal"), None);
        assert!(
            r.disallowed("DataClass", "secret")
                .is_some_and(|w| w.contains("public, internal"))
        );
        assert!(r.disallowed("CostCenter", "12a").is_some());
        assert_eq!(r.disallowed("Team", "anything"), None);
    }
}
