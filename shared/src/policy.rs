//! The policy: environments (matched by OU name) with a mode per rule, required tags, principals,
//! roles and event freshness; loaded from TOML and validated with errors naming key and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use wildmatch::WildMatch;

/// The default policy, compiled in from `infra/policy.toml`.
pub const BUILTIN_POLICY: &str = include_str!("../../infra/policy.toml");

/// A rule Guardrail can run; each environment gives each rule a [`Mode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Required tags and their values on new resources.
    Tags,
    /// The baseline of new accounts.
    Baseline,
    /// Quarantine of runaway or compromised roles.
    Quarantine,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::Tags, Rule::Baseline, Rule::Quarantine];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Tags => "tags",
            Rule::Baseline => "baseline",
            Rule::Quarantine => "quarantine",
        }
    }
}

/// How hard a rule acts in an environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Not evaluated.
    Off,
    /// Evaluated; violations are alerted, nothing is changed.
    Detect,
    /// Corrective changes (tags, settings).
    Fix,
    /// Fix plus containment (isolate a role, stop an instance).
    Enforce,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Detect => "detect",
            Mode::Fix => "fix",
            Mode::Enforce => "enforce",
        }
    }

    /// Whether corrective changes are made.
    pub fn fixes(self) -> bool {
        matches!(self, Mode::Fix | Mode::Enforce)
    }

    fn parse(s: &str) -> Option<Mode> {
        [Mode::Off, Mode::Detect, Mode::Fix, Mode::Enforce]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// A group of accounts (an OU) with its own autonomy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Environment {
    /// The environment's name, also the value of the `Environment` tag.
    pub name: String,
    /// The name of the OU whose accounts belong to this environment.
    pub ou: String,
    modes: BTreeMap<Rule, Mode>,
}

impl Environment {
    /// The rule's mode here; rules the policy does not mention run in `detect`.
    pub fn mode(&self, rule: Rule) -> Mode {
        self.modes.get(&rule).copied().unwrap_or(Mode::Detect)
    }
}

/// An ARN pattern with `*` and `?` wildcards.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    matcher: WildMatch,
}

impl Pattern {
    pub fn matches(&self, arn: &str) -> bool {
        self.matcher.matches(arn)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A validated policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    pub freshness: Duration,
    pub clock_skew: Duration,
    /// Role name assumed in member accounts; `{function}` stands for the function's name.
    pub member_role: String,
    /// Role to read Organizations through, if not the function's own.
    pub organizations_role: Option<String>,
    pub guardrail_principals: Vec<Pattern>,
    pub protected_principals: Vec<Pattern>,
    pub required_tags: Vec<String>,
    pub environments: Vec<Environment>,
}

/// The tag holding a resource's environment; derived from the account's OU.
pub const ENVIRONMENT_TAG: &str = "Environment";
/// The tag naming who created a resource; derived from the caller.
pub const OWNER_TAG: &str = "Owner";

impl Policy {
    /// The policy compiled in from `infra/policy.toml`.
    pub fn builtin() -> Result<Policy, PolicyError> {
        Policy::from_toml(BUILTIN_POLICY, "built-in policy (infra/policy.toml)")
    }

    /// Parses and validates a policy; `origin` names the file in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| PolicyError::from_toml(&e, text, origin))?;
        Validator { text, origin }.policy(raw)
    }

    /// The environment whose OU has this name (case-insensitively).
    pub fn environment_for_ou(&self, ou_name: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .find(|e| e.ou.eq_ignore_ascii_case(ou_name))
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Whether the ARN is one of Guardrail's own principals (its events are ignored).
    pub fn is_guardrail(&self, arn: &str) -> bool {
        self.guardrail_principals.iter().any(|p| p.matches(arn))
    }

    /// Whether the ARN is protected (never quarantined or modified).
    pub fn is_protected(&self, arn: &str) -> bool {
        self.is_guardrail(arn) || self.protected_principals.iter().any(|p| p.matches(arn))
    }

    /// The role a function assumes in `account`.
    pub fn member_role_arn(&self, partition: &str, account: &str, function: &str) -> String {
        let name = self.member_role.replace("{function}", function);
        format!("arn:{partition}:iam::{account}:role/{name}")
    }
}

/// A policy that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}{}: {key}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
pub struct PolicyError {
    pub origin: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl PolicyError {
    fn from_toml(e: &toml::de::Error, text: &str, origin: &str) -> Self {
        let line = e.span().map(|s| line_of(text, s.start));
        // The key is what the offending line assigns to, or the table it opens.
        let key = e
            .span()
            .and_then(|s| text.get(line_start(text, s.start)..))
            .and_then(|rest| rest.lines().next())
            .map(|l| {
                l.split('=')
                    .next()
                    .unwrap_or(l)
                    .trim()
                    .trim_matches(['[', ']'])
                    .to_string()
            })
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "(document)".to_string());
        PolicyError {
            origin: origin.to_string(),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    }
}

fn line_start(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

// ---------------------------------------------------------------------------------- raw form

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<i64>,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    roles: RawRoles,
    #[serde(default)]
    principals: RawPrincipals,
    #[serde(default)]
    tags: RawTags,
    environments: Spanned<BTreeMap<Spanned<String>, RawEnvironment>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    freshness: Option<Spanned<String>>,
    clock_skew: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoles {
    member: Option<Spanned<String>>,
    organizations: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPrincipals {
    #[serde(default)]
    guardrail: Vec<Spanned<String>>,
    #[serde(default)]
    protected: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTags {
    required: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    ou: Option<Spanned<String>>,
    #[serde(default)]
    modes: BTreeMap<Spanned<String>, Spanned<String>>,
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn err(
        &self,
        key: impl Into<String>,
        span: Range<usize>,
        message: impl fmt::Display,
    ) -> PolicyError {
        PolicyError {
            origin: self.origin.to_string(),
            line: Some(line_of(self.text, span.start)),
            key: key.into(),
            message: message.to_string(),
        }
    }

    fn policy(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        if *raw.version.get_ref() != 1 {
            return Err(self.err(
                "version",
                raw.version.span(),
                "only version 1 is understood",
            ));
        }
        let freshness = self.duration(
            "events.freshness",
            raw.events.freshness,
            "1h",
            60..=7 * 86_400,
        )?;
        let clock_skew =
            self.duration("events.clock_skew", raw.events.clock_skew, "5m", 0..=3_600)?;

        let member_role = match raw.roles.member {
            None => "guardrail-{function}".to_string(),
            Some(m) => {
                let span = m.span();
                let name = m.into_inner();
                let sample = name.replace("{function}", "tag-enforcer");
                if !is_role_name(&sample) {
                    return Err(self.err(
                        "roles.member",
                        span,
                        format!("{name:?} is not a role name (letters, digits and +=,.@_- only, up to 64)"),
                    ));
                }
                name
            }
        };
        let organizations_role = match raw.roles.organizations {
            Some(r) if r.get_ref().is_empty() => None,
            Some(r) => {
                if !is_role_arn(r.get_ref()) {
                    return Err(self.err(
                        "roles.organizations",
                        r.span(),
                        format!(
                            "{:?} is not a role ARN (arn:aws:iam::123456789012:role/name)",
                            r.get_ref()
                        ),
                    ));
                }
                Some(r.into_inner())
            }
            None => None,
        };

        let guardrail_principals =
            self.patterns("principals.guardrail", raw.principals.guardrail)?;
        let protected_principals =
            self.patterns("principals.protected", raw.principals.protected)?;

        let required_tags = match raw.tags.required {
            None => vec![ENVIRONMENT_TAG.to_string(), OWNER_TAG.to_string()],
            Some(keys) => {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for key in keys {
                    let k = key.get_ref();
                    if k.is_empty()
                        || k.chars().count() > 128
                        || k.to_ascii_lowercase().starts_with("aws:")
                    {
                        return Err(self.err(
                            "tags.required",
                            key.span(),
                            format!(
                                "{k:?} is not a tag key (1-128 characters, not starting with aws:)"
                            ),
                        ));
                    }
                    if !seen.insert(k.to_ascii_lowercase()) {
                        return Err(self.err(
                            "tags.required",
                            key.span(),
                            format!("{k:?} is listed twice"),
                        ));
                    }
                    out.push(key.into_inner());
                }
                out
            }
        };

        let env_span = raw.environments.span();
        let mut environments = Vec::new();
        let mut ous = BTreeSet::new();
        // Validate (and keep) environments in the order the document lists them.
        let mut listed: Vec<_> = raw.environments.into_inner().into_iter().collect();
        listed.sort_by_key(|(name, _)| name.span().start);
        for (name, env) in listed {
            let key = format!("environments.{}", name.get_ref());
            if !is_environment_name(name.get_ref()) {
                return Err(self.err(
                    key,
                    name.span(),
                    "environment names are 1-64 letters, digits, '-' or '_' (they become the Environment tag value)",
                ));
            }
            let ou = match env.ou {
                Some(ou) if ou.get_ref().trim().is_empty() => {
                    return Err(self.err(format!("{key}.ou"), ou.span(), "the OU name is empty"));
                }
                Some(ou) => ou,
                None => Spanned::new(name.span(), name.get_ref().clone()),
            };
            if !ous.insert(ou.get_ref().to_ascii_lowercase()) {
                return Err(self.err(
                    format!("{key}.ou"),
                    ou.span(),
                    format!(
                        "OU {:?} is already mapped to another environment",
                        ou.get_ref()
                    ),
                ));
            }
            let mut modes = BTreeMap::new();
            for (rule, mode) in env.modes {
                let rule_key = format!("{key}.modes.{}", rule.get_ref());
                let Some(r) = Rule::ALL.into_iter().find(|r| r.name() == rule.get_ref()) else {
                    return Err(self.err(
                        rule_key,
                        rule.span(),
                        format!(
                            "unknown rule {:?}; rules are tags, baseline, quarantine",
                            rule.get_ref()
                        ),
                    ));
                };
                let Some(m) = Mode::parse(mode.get_ref()) else {
                    return Err(self.err(
                        rule_key,
                        mode.span(),
                        format!(
                            "unknown mode {:?}; modes are off, detect, fix, enforce",
                            mode.get_ref()
                        ),
                    ));
                };
                modes.insert(r, m);
            }
            environments.push(Environment {
                name: name.into_inner(),
                ou: ou.into_inner(),
                modes,
            });
        }
        if environments.is_empty() {
            return Err(self.err(
                "environments",
                env_span,
                "at least one environment is needed",
            ));
        }

        Ok(Policy {
            freshness,
            clock_skew,
            member_role,
            organizations_role,
            guardrail_principals,
            protected_principals,
            required_tags,
            environments,
        })
    }

    fn duration(
        &self,
        key: &str,
        value: Option<Spanned<String>>,
        default: &str,
        seconds: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, PolicyError> {
        let Some(value) = value else {
            return humantime::parse_duration(default).map_err(|e| self.err(key, 0..0, e));
        };
        let d = humantime::parse_duration(value.get_ref()).map_err(|e| {
            self.err(
                key,
                value.span(),
                format!(
                    "{:?} is not a duration such as \"15m\" or \"1h\": {e}",
                    value.get_ref()
                ),
            )
        })?;
        if !seconds.contains(&d.as_secs()) {
            return Err(self.err(
                key,
                value.span(),
                format!(
                    "{:?} is outside the allowed {}..{}",
                    value.get_ref(),
                    humantime::format_duration(Duration::from_secs(*seconds.start())),
                    humantime::format_duration(Duration::from_secs(*seconds.end()))
                ),
            ));
        }
        Ok(d)
    }

    fn patterns(&self, key: &str, raw: Vec<Spanned<String>>) -> Result<Vec<Pattern>, PolicyError> {
        raw.into_iter()
            .map(|p| {
                let text = p.get_ref();
                if !text.starts_with("arn:")
                    || text.chars().any(char::is_whitespace)
                    || text.len() > 512
                {
                    return Err(self.err(
                        key,
                        p.span(),
                        format!(
                            "{text:?} is not an ARN pattern (arn:..., with * and ? as wildcards)"
                        ),
                    ));
                }
                Ok(Pattern {
                    matcher: WildMatch::new(text),
                    text: p.into_inner(),
                })
            })
            .collect()
    }
}

fn is_role_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", account, resource]
        if crate::ids::AccountId::parse(account).is_some()
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

fn is_environment_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_policy_is_valid_and_maps_the_three_ous() {
        let p = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        for ou in ["prod", "dev", "agents"] {
            assert!(p.environment_for_ou(ou).is_some(), "{ou}");
        }
        assert_eq!(p.required_tags, ["Environment", "Owner"]);
        assert!(p.is_guardrail("arn:aws:iam::111122223333:role/guardrail-tag-enforcer"));
        assert!(p.is_protected("arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"));
        assert!(!p.is_protected("arn:aws:iam::111122223333:role/agent-runner"));
    }

    const MINIMAL: &str = "version = 1\n[environments.prod]\n";

    #[test]
    fn defaults_fill_what_a_minimal_policy_leaves_out() {
        let p = Policy::from_toml(MINIMAL, "p.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.freshness, Duration::from_secs(3600));
        assert_eq!(p.environments[0].ou, "prod");
        assert_eq!(p.environments[0].mode(Rule::Tags), Mode::Detect);
        assert_eq!(
            p.member_role_arn("aws", "111122223333", "tag-enforcer"),
            "arn:aws:iam::111122223333:role/guardrail-tag-enforcer"
        );
    }

    #[test]
    fn errors_name_the_key_and_the_line() {
        let cases = [
            (
                "version = 1\n[environments.prod.modes]\ntags = \"fixx\"\n",
                "environments.prod.modes.tags",
                3,
                "unknown mode",
            ),
            (
                "version = 1\n[environments.prod.modes]\nnaming = \"fix\"\n",
                "environments.prod.modes.naming",
                3,
                "unknown rule",
            ),
            (
                "version = 1\n[events]\nfreshness = \"soon\"\n[environments.prod]\n",
                "events.freshness",
                3,
                "not a duration",
            ),
            (
                "version = 1\n[events]\nfreshness = \"30d\"\n[environments.prod]\n",
                "events.freshness",
                3,
                "outside",
            ),
            (
                "version = 1\n[principals]\nguardrail = [\"guardrail-*\"]\n[environments.prod]\n",
                "principals.guardrail",
                3,
                "not an ARN",
            ),
            (
                "version = 1\n[environments.prod]\n[environments.live]\nou = \"PROD\"\n",
                "environments.live.ou",
                4,
                "already mapped",
            ),
            (
                "version = 1\n[tags]\nrequired = [\"aws:x\"]\n[environments.prod]\n",
                "tags.required",
                3,
                "not a tag key",
            ),
            (
                "version = 2\n[environments.prod]\n",
                "version",
                1,
                "version 1",
            ),
            (
                "version = 1\n[environments.prod]\nou = \"prod\"\nfreshnes = 1\n",
                "freshnes",
                4,
                "unknown field",
            ),
            (
                "version = 1\n[roles]\norganizations = \"guardrail\"\n[environments.prod]\n",
                "roles.organizations",
                3,
                "role ARN",
            ),
            (
                "version = 1\n\n[environments.prod\n",
                "environments.prod",
                3,
                "",
            ),
        ];
        for (text, key, line, needle) in cases {
            let e = Policy::from_toml(text, "p.toml").expect_err(text);
            assert_eq!((e.key.as_str(), e.line), (key, Some(line)), "{e}");
            assert!(e.message.contains(needle), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("p.toml, line {line}: {key}: ")),
                "{e}"
            );
        }
    }
}
