//! Reading a policy: the TOML's raw form, defaults, and validation whose errors name key and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use wildmatch::WildMatch;

use regex::Regex;

use super::{
    APPROVAL_ACTIONS, Baseline, BreakerLimits, ENVIRONMENT_TAG, Environment, FindingRule, Mode, NamePattern, Naming,
    OWNER_TAG, PasswordPolicy, Pattern, Policy, PolicyError, Quarantine, RateBudget, Response, Rule, Safety,
    SnapshotBlock, Sweep, TagRules, ValuePattern, Waivers,
};
use crate::ids::Region;

/// Account names start with their environment: `prod-payments` belongs to `prod`.
const DEFAULT_ACCOUNT_NAMING: &str = "(?i)^{env}-.+$";

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
    #[serde(default)]
    naming: RawNaming,
    #[serde(default)]
    baseline: RawBaseline,
    #[serde(default)]
    quarantine: RawQuarantine,
    #[serde(default)]
    sweep: RawSweep,
    #[serde(default)]
    safety: RawSafety,
    environments: Spanned<BTreeMap<Spanned<String>, RawEnvironment>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawQuarantine {
    agent_roles: Option<Vec<Spanned<String>>>,
    agent_tag: Option<Spanned<String>>,
    alarm_tag: Option<Spanned<String>>,
    inline_policy: Option<Spanned<String>>,
    findings: Option<Vec<RawFindingRule>>,
    rate: Option<Spanned<RawRate>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFindingRule {
    types: Vec<Spanned<String>>,
    min_severity: Option<Spanned<f64>>,
    #[serde(default)]
    agents_only: bool,
    response: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    enabled: Option<bool>,
    tagged_agents: Option<Spanned<bool>>,
    window: Option<Spanned<String>>,
    calls: Option<Spanned<i64>>,
    #[serde(default)]
    events: BTreeMap<Spanned<String>, Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNaming {
    account: Option<Spanned<String>>,
    #[serde(default)]
    resources: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    regions: Option<Vec<Spanned<String>>>,
    bootstrap_role: Option<Spanned<String>>,
    management_role: Option<Spanned<String>>,
    landing_ous: Option<Vec<Spanned<String>>>,
    allowed_ous: Option<Vec<Spanned<String>>>,
    account_alias: Option<Spanned<String>>,
    ebs_kms_key: Option<Spanned<String>>,
    imds_hop_limit: Option<Spanned<i64>>,
    snapshot_block_public_access: Option<Spanned<String>>,
    delete_default_vpcs: Option<bool>,
    #[serde(default)]
    password_policy: RawPasswordPolicy,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPasswordPolicy {
    minimum_length: Option<Spanned<i64>>,
    require_symbols: Option<bool>,
    require_numbers: Option<bool>,
    require_uppercase: Option<bool>,
    require_lowercase: Option<bool>,
    allow_users_to_change: Option<bool>,
    max_age_days: Option<Spanned<i64>>,
    reuse_prevention: Option<Spanned<i64>>,
    hard_expiry: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    writes_per_second: Option<Spanned<i64>>,
    parallel_accounts: Option<Spanned<i64>>,
    account_time: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSafety {
    pause_parameter: Option<Spanned<String>>,
    ledger_days: Option<Spanned<i64>>,
    #[serde(default)]
    breaker: RawBreaker,
    #[serde(default)]
    waivers: RawWaivers,
    approval_expiry: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWaivers {
    #[serde(default)]
    setters: Vec<Spanned<String>>,
    max_days: Option<Spanned<i64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    window: Option<Spanned<String>>,
    tags: Option<Spanned<i64>>,
    baseline: Option<Spanned<i64>>,
    quarantine: Option<Spanned<i64>>,
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
    #[serde(default)]
    exempt: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTags {
    required: Option<Vec<Spanned<String>>>,
    protected: Option<Vec<Spanned<String>>>,
    aliases: Option<BTreeMap<Spanned<String>, Vec<Spanned<String>>>>,
    #[serde(default)]
    allowed: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    patterns: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvironment {
    ou: Option<Spanned<String>>,
    #[serde(default)]
    modes: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    tag_defaults: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    approval: Vec<Spanned<String>>,
}

/// Parses and validates a policy.
pub(super) fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::from_toml(&e, text, origin))?;
    Validator { text, origin }.policy(raw)
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
    text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn err(&self, key: impl Into<String>, span: Range<usize>, message: impl fmt::Display) -> PolicyError {
        PolicyError {
            origin: self.origin.to_string(),
            line: Some(line_of(self.text, span.start)),
            key: key.into(),
            message: message.to_string(),
        }
    }

    fn policy(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        if *raw.version.get_ref() != 1 {
            return Err(self.err("version", raw.version.span(), "only version 1 is understood"));
        }
        let freshness = self.duration("events.freshness", raw.events.freshness, "1h", 60..=7 * 86_400)?;
        let clock_skew = self.duration("events.clock_skew", raw.events.clock_skew, "5m", 0..=3_600)?;

        let member_role = match raw.roles.member {
            None => "guardrail-{function}".to_string(),
            Some(m) => {
                let span = m.span();
                let name = m.into_inner();
                let sample = name.replace("{function}", "tag-enforcer");
                if !crate::ids::is_iam_name(&sample) {
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

        let guardrail_principals = self.patterns("principals.guardrail", raw.principals.guardrail)?;
        let protected_principals = self.patterns("principals.protected", raw.principals.protected)?;

        let exempt_principals = self.patterns("principals.exempt", raw.principals.exempt)?;
        let tags = self.tags(raw.tags)?;

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
                    format!("OU {:?} is already mapped to another environment", ou.get_ref()),
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
                        format!("unknown mode {:?}; modes are off, detect, fix, enforce", mode.get_ref()),
                    ));
                };
                modes.insert(r, m);
            }
            let mut tag_defaults = BTreeMap::new();
            for (k, v) in env.tag_defaults {
                let tkey = format!("{key}.tag_defaults");
                self.tag_key(&tkey, &k)?;
                if v.get_ref().chars().count() > 256 {
                    return Err(self.err(tkey, v.span(), "tag values are at most 256 characters"));
                }
                tag_defaults.insert(k.into_inner(), v.into_inner());
            }
            let approval = self.approval(&format!("{key}.approval"), env.approval)?;
            environments.push(Environment {
                name: name.into_inner(),
                ou: ou.into_inner(),
                modes,
                tag_defaults,
                approval,
            });
        }
        if environments.is_empty() {
            return Err(self.err("environments", env_span, "at least one environment is needed"));
        }

        let naming = self.naming(raw.naming, &environments)?;
        let baseline = self.baseline(raw.baseline)?;
        let quarantine = self.quarantine(raw.quarantine)?;
        let sweep = Sweep {
            writes_per_second: self.count("sweep.writes_per_second", raw.sweep.writes_per_second, 2, 1..=100)?,
            parallel_accounts: self.count("sweep.parallel_accounts", raw.sweep.parallel_accounts, 4, 1..=32)?,
            account_time: self.duration("sweep.account_time", raw.sweep.account_time, "20s", 5..=600)?,
        };
        let safety = Safety {
            pause_parameter: self.parameter_name(
                "safety.pause_parameter",
                raw.safety.pause_parameter,
                "/guardrail/pause",
            )?,
            ledger_days: self.count("safety.ledger_days", raw.safety.ledger_days, 400, 1..=3650)?,
            breaker: self.breaker(raw.safety.breaker)?,
            waivers: Waivers {
                setters: self.patterns("safety.waivers.setters", raw.safety.waivers.setters)?,
                max_days: self.count("safety.waivers.max_days", raw.safety.waivers.max_days, 90, 1..=366)?,
            },
            approval_expiry: self.duration(
                "safety.approval_expiry",
                raw.safety.approval_expiry,
                "24h",
                600..=7 * 86_400,
            )?,
        };
        Ok(Policy {
            freshness,
            clock_skew,
            member_role,
            organizations_role,
            guardrail_principals,
            protected_principals,
            exempt_principals,
            tags,
            environments,
            naming,
            baseline,
            quarantine,
            sweep,
            safety,
        })
    }

    /// The breaker's window and per-rule limits; a limit of 0 turns the rule's breaker off. At
    /// most 1000, so that a window's counts fit one DynamoDB item.
    fn breaker(&self, raw: RawBreaker) -> Result<BreakerLimits, PolicyError> {
        let window = self.duration("safety.breaker.window", raw.window, "1h", 60..=7 * 86_400)?;
        let mut limits = BTreeMap::new();
        for (rule, value, default) in [
            (Rule::Tags, raw.tags, 500),
            (Rule::Baseline, raw.baseline, 100),
            (Rule::Quarantine, raw.quarantine, 10),
        ] {
            let n = self.count(&format!("safety.breaker.{}", rule.name()), value, default, 0..=1000)?;
            if n > 0 {
                limits.insert(rule, n);
            }
        }
        Ok(BreakerLimits { window, limits })
    }

    /// An environment's approval list: rule names and high-risk action kinds, each once.
    fn approval(&self, key: &str, raw: Vec<Spanned<String>>) -> Result<Vec<String>, PolicyError> {
        let mut out: Vec<String> = Vec::new();
        for item in raw {
            let name = item.get_ref();
            let known = Rule::ALL.iter().any(|r| r.name() == name) || APPROVAL_ACTIONS.contains(&name.as_str());
            if !known {
                return Err(self.err(
                    key,
                    item.span(),
                    format!(
                        "{name:?} is neither a rule (tags, baseline, quarantine) nor a high-risk action ({})",
                        APPROVAL_ACTIONS.join(", ")
                    ),
                ));
            }
            if out.contains(name) {
                return Err(self.err(key, item.span(), format!("{name:?} is listed twice")));
            }
            out.push(item.into_inner());
        }
        Ok(out)
    }

    /// An SSM parameter name (`/a/b`), `default` when absent; `None` when set empty.
    fn parameter_name(
        &self,
        key: &str,
        raw: Option<Spanned<String>>,
        default: &str,
    ) -> Result<Option<String>, PolicyError> {
        let Some(raw) = raw else {
            return Ok(Some(default.to_string()));
        };
        let span = raw.span();
        let name = raw.into_inner();
        if name.is_empty() {
            return Ok(None);
        }
        let shaped = name.starts_with('/')
            && name.len() <= 1011
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
        if !shaped {
            return Err(self.err(
                key,
                span,
                format!("{name:?} is not an SSM parameter name (/guardrail/pause); empty turns the switch off"),
            ));
        }
        Ok(Some(name))
    }

    fn naming(&self, raw: RawNaming, environments: &[Environment]) -> Result<Naming, PolicyError> {
        let account = match raw.account {
            Some(p) => self.name_pattern("naming.account", p.get_ref(), p.span(), environments)?,
            None => self.name_pattern("naming.account", DEFAULT_ACCOUNT_NAMING, 0..0, environments)?,
        };
        let mut resources = BTreeMap::new();
        for (kind, pattern) in raw.resources {
            let key = format!("naming.resources.{}", kind.get_ref());
            if !crate::rules::resources::named_kinds().contains(&kind.get_ref().as_str()) {
                return Err(self.err(
                    key,
                    kind.span(),
                    format!(
                        "unknown resource kind {:?}; kinds with names are {}",
                        kind.get_ref(),
                        crate::rules::resources::named_kinds().join(", ")
                    ),
                ));
            }
            let compiled = self.name_pattern(&key, pattern.get_ref(), pattern.span(), environments)?;
            resources.insert(kind.into_inner(), compiled);
        }
        Ok(Naming { account, resources })
    }

    /// A pattern with `{env}`, compiled once per environment.
    fn name_pattern(
        &self,
        key: &str,
        pattern: &str,
        span: Range<usize>,
        environments: &[Environment],
    ) -> Result<NamePattern, PolicyError> {
        if !pattern.contains("{env}") {
            return Err(self.err(key, span, "the pattern must contain {env}, the environment's name"));
        }
        let compiled = environments
            .iter()
            .map(|e| {
                let re = pattern.replace("{env}", &regex::escape(&e.name));
                Regex::new(&re)
                    .map(|r| (e.name.clone(), r))
                    .map_err(|err| self.err(key, span.clone(), format!("not a regular expression: {err}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(NamePattern {
            pattern: pattern.to_string(),
            compiled,
        })
    }

    fn quarantine(&self, raw: RawQuarantine) -> Result<Quarantine, PolicyError> {
        let agent_roles = match raw.agent_roles {
            None => ["arn:aws:iam::*:role/agents/*", "arn:aws:iam::*:role/agent-*"]
                .into_iter()
                .map(wild)
                .collect(),
            Some(list) => self.patterns("quarantine.agent_roles", list)?,
        };
        let agent_tag = match raw.agent_tag {
            None => Some("guardrail:agent".to_string()),
            Some(t) if t.get_ref().is_empty() => None,
            Some(t) => {
                self.tag_key("quarantine.agent_tag", &t)?;
                Some(t.into_inner())
            }
        };
        let alarm_tag = match raw.alarm_tag {
            None => "guardrail:agent-role".to_string(),
            Some(t) => {
                self.tag_key("quarantine.alarm_tag", &t)?;
                t.into_inner()
            }
        };
        let inline_policy = match raw.inline_policy {
            None => "guardrail-quarantine".to_string(),
            Some(n) if crate::ids::is_iam_name(n.get_ref()) => n.into_inner(),
            Some(n) => {
                return Err(self.err(
                    "quarantine.inline_policy",
                    n.span(),
                    format!(
                        "{:?} is not a policy name (letters, digits and +=,.@_- only)",
                        n.get_ref()
                    ),
                ));
            }
        };
        let findings = match raw.findings {
            None => vec![
                FindingRule {
                    types: vec![wild("*InstanceCredentialExfiltration*")],
                    min_severity: 0.0,
                    agents_only: false,
                    response: Response::RevokeSessions,
                },
                FindingRule {
                    types: vec![wild("*/AnomalousBehavior")],
                    min_severity: 0.0,
                    agents_only: true,
                    response: Response::Isolate,
                },
                FindingRule {
                    types: vec![wild("*")],
                    min_severity: 7.0,
                    agents_only: true,
                    response: Response::Isolate,
                },
            ],
            Some(rules) => {
                let mut out = Vec::new();
                for rule in rules {
                    let response = Response::parse(rule.response.get_ref()).ok_or_else(|| {
                        self.err(
                            "quarantine.findings.response",
                            rule.response.span(),
                            format!(
                                "{:?}: responses are revoke-sessions and isolate",
                                rule.response.get_ref()
                            ),
                        )
                    })?;
                    let mut types = Vec::new();
                    for t in rule.types {
                        if t.get_ref().is_empty() || t.get_ref().chars().any(char::is_whitespace) {
                            return Err(self.err(
                                "quarantine.findings.types",
                                t.span(),
                                format!("{:?} is not a finding type pattern", t.get_ref()),
                            ));
                        }
                        types.push(wild(t.get_ref()));
                    }
                    if types.is_empty() {
                        return Err(self.err(
                            "quarantine.findings.types",
                            rule.response.span(),
                            "list at least one finding type",
                        ));
                    }
                    let min_severity = match rule.min_severity {
                        None => 0.0,
                        Some(s) if (0.0..=10.0).contains(s.get_ref()) => *s.get_ref(),
                        Some(s) => {
                            return Err(self.err("quarantine.findings.min_severity", s.span(), "severity is 0 to 10"));
                        }
                    };
                    out.push(FindingRule {
                        types,
                        min_severity,
                        agents_only: rule.agents_only,
                        response,
                    });
                }
                out
            }
        };
        let rate = match raw.rate {
            None => Some(RateBudget {
                window: Duration::from_secs(60),
                calls: 300,
                per_event: [("RunInstances", 20), ("CreateUser", 2), ("CreateAccessKey", 2)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                tagged_agents: false,
            }),
            Some(r) if r.get_ref().enabled == Some(false) => None,
            Some(r) => {
                let span = r.span();
                let r = r.into_inner();
                let window = self.duration("quarantine.rate.window", r.window, "1m", 10..=3_600)?;
                let positive = |key: &str, n: &Spanned<i64>| {
                    u64::try_from(*n.get_ref())
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| self.err(key, n.span(), "a budget is a positive number of calls"))
                };
                let calls = match &r.calls {
                    Some(n) => positive("quarantine.rate.calls", n)?,
                    None => {
                        return Err(self.err(
                            "quarantine.rate.calls",
                            span,
                            "[quarantine.rate] needs `calls` (the budget per window), or `enabled = false` to count nothing",
                        ));
                    }
                };
                let mut per_event = BTreeMap::new();
                for (name, n) in r.events {
                    let text = name.get_ref();
                    if text.is_empty() || text.len() > 64 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(self.err(
                            "quarantine.rate.events",
                            name.span(),
                            format!("{text:?} is not a CloudTrail event name such as RunInstances"),
                        ));
                    }
                    per_event.insert(text.clone(), positive("quarantine.rate.events", &n)?);
                }
                let tagged_agents = match r.tagged_agents {
                    Some(t) if *t.get_ref() && agent_tag.is_none() => {
                        return Err(self.err(
                            "quarantine.rate.tagged_agents",
                            t.span(),
                            "counting tagged agents needs quarantine.agent_tag to name the tag",
                        ));
                    }
                    Some(t) => t.into_inner(),
                    None => false,
                };
                Some(RateBudget {
                    window,
                    calls,
                    per_event,
                    tagged_agents,
                })
            }
        };
        Ok(Quarantine {
            agent_roles,
            agent_tag,
            alarm_tag,
            inline_policy,
            findings,
            rate,
        })
    }

    fn tag_key(&self, key: &str, k: &Spanned<String>) -> Result<(), PolicyError> {
        let text = k.get_ref();
        if text.is_empty() || text.chars().count() > 128 || text.to_ascii_lowercase().starts_with("aws:") {
            return Err(self.err(
                key,
                k.span(),
                format!("{text:?} is not a tag key (1-128 characters, not starting with aws:)"),
            ));
        }
        Ok(())
    }

    fn tags(&self, raw: RawTags) -> Result<TagRules, PolicyError> {
        let required = match raw.required {
            None => vec![ENVIRONMENT_TAG.to_string(), OWNER_TAG.to_string()],
            Some(keys) => {
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for key in keys {
                    self.tag_key("tags.required", &key)?;
                    if !seen.insert(key.get_ref().to_ascii_lowercase()) {
                        return Err(self.err(
                            "tags.required",
                            key.span(),
                            format!("{:?} is listed twice", key.get_ref()),
                        ));
                    }
                    out.push(key.into_inner());
                }
                out
            }
        };
        let protected = match raw.protected {
            None => vec!["guardrail:*".to_string()],
            Some(keys) => keys
                .into_iter()
                .map(|k| {
                    let text = k.get_ref().trim_end_matches('*');
                    if text.is_empty() || text.contains('*') {
                        return Err(self.err(
                            "tags.protected",
                            k.span(),
                            format!("{:?}: give a key, or a prefix ending in *", k.get_ref()),
                        ));
                    }
                    Ok(k.into_inner())
                })
                .collect::<Result<_, _>>()?,
        };
        let aliases = match raw.aliases {
            None => [(ENVIRONMENT_TAG.to_string(), vec!["env".to_string()])].into(),
            Some(map) => {
                let mut out = BTreeMap::new();
                for (canonical, spellings) in map {
                    self.tag_key("tags.aliases", &canonical)?;
                    let mut list = Vec::new();
                    for sp in spellings {
                        self.tag_key(&format!("tags.aliases.{}", canonical.get_ref()), &sp)?;
                        list.push(sp.into_inner());
                    }
                    out.insert(canonical.into_inner(), list);
                }
                out
            }
        };
        let mut allowed = BTreeMap::new();
        for (k, values) in raw.allowed {
            self.tag_key("tags.allowed", &k)?;
            if values.is_empty() {
                return Err(self.err(
                    format!("tags.allowed.{}", k.get_ref()),
                    k.span(),
                    "list at least one value",
                ));
            }
            allowed.insert(k.into_inner(), values.into_iter().map(Spanned::into_inner).collect());
        }
        let mut patterns = BTreeMap::new();
        for (k, pattern) in raw.patterns {
            self.tag_key("tags.patterns", &k)?;
            let regex = Regex::new(pattern.get_ref()).map_err(|e| {
                self.err(
                    format!("tags.patterns.{}", k.get_ref()),
                    pattern.span(),
                    format!("not a regular expression: {e}"),
                )
            })?;
            patterns.insert(
                k.into_inner(),
                ValuePattern {
                    text: pattern.into_inner(),
                    regex,
                },
            );
        }
        Ok(TagRules {
            required,
            protected,
            aliases,
            allowed,
            patterns,
        })
    }

    fn baseline(&self, raw: RawBaseline) -> Result<Baseline, PolicyError> {
        let regions = match raw.regions {
            None => vec![Region::parse("us-east-1").unwrap_or_else(|| unreachable!())],
            Some(list) => {
                let mut out: Vec<Region> = Vec::new();
                for r in list {
                    let Some(region) = Region::parse(r.get_ref()) else {
                        return Err(self.err(
                            "baseline.regions",
                            r.span(),
                            format!("{:?} is not a region name", r.get_ref()),
                        ));
                    };
                    if out.contains(&region) {
                        return Err(self.err("baseline.regions", r.span(), format!("{region} is listed twice")));
                    }
                    out.push(region);
                }
                if out.is_empty() {
                    return Err(self.err("baseline.regions", 0..0, "list at least one region"));
                }
                out
            }
        };
        let bootstrap_role = match raw.bootstrap_role {
            None => "OrganizationAccountAccessRole".to_string(),
            Some(r) if crate::ids::is_iam_name(r.get_ref()) => r.into_inner(),
            Some(r) => {
                return Err(self.err(
                    "baseline.bootstrap_role",
                    r.span(),
                    format!("{:?} is not a role name", r.get_ref()),
                ));
            }
        };
        let management_role = match raw.management_role {
            Some(r) if r.get_ref().is_empty() => None,
            Some(r) if is_role_arn(r.get_ref()) => Some(r.into_inner()),
            Some(r) => {
                return Err(self.err(
                    "baseline.management_role",
                    r.span(),
                    format!(
                        "{:?} is not a role ARN (arn:aws:iam::123456789012:role/name)",
                        r.get_ref()
                    ),
                ));
            }
            None => None,
        };
        let landing_ous = self.ou_names("baseline.landing_ous", raw.landing_ous)?;
        let allowed_ous = self.ou_names("baseline.allowed_ous", raw.allowed_ous)?;
        let account_alias = match raw.account_alias {
            None => Some("{name}".to_string()),
            Some(a) if a.get_ref().is_empty() => None,
            Some(a) => {
                let unknown = a
                    .get_ref()
                    .replace("{name}", "")
                    .replace("{env}", "")
                    .replace("{account}", "");
                if unknown.contains('{') || unknown.contains('}') {
                    return Err(self.err(
                        "baseline.account_alias",
                        a.span(),
                        "placeholders are {name}, {env} and {account}",
                    ));
                }
                Some(a.into_inner())
            }
        };
        let ebs_kms_key = match raw.ebs_kms_key {
            Some(k) if k.get_ref().is_empty() => None,
            Some(k) if is_kms_key(k.get_ref()) => Some(k.into_inner()),
            Some(k) => {
                return Err(self.err(
                    "baseline.ebs_kms_key",
                    k.span(),
                    format!("{:?} is not a KMS key id, alias/..., or key or alias ARN", k.get_ref()),
                ));
            }
            None => None,
        };
        let imds_hop_limit = self.int("baseline.imds_hop_limit", raw.imds_hop_limit, 2, 1..=64)?;
        let snapshot_block = match raw.snapshot_block_public_access {
            None => SnapshotBlock::BlockAllSharing,
            Some(s) => SnapshotBlock::parse(s.get_ref()).ok_or_else(|| {
                self.err(
                    "baseline.snapshot_block_public_access",
                    s.span(),
                    format!("{:?}: use block-all-sharing or block-new-sharing", s.get_ref()),
                )
            })?,
        };
        let p = raw.password_policy;
        let key = |k: &str| format!("baseline.password_policy.{k}");
        let optional = |n: i32| (n > 0).then_some(n);
        let password_policy = PasswordPolicy {
            minimum_length: self.int(&key("minimum_length"), p.minimum_length, 14, 6..=128)?,
            require_symbols: p.require_symbols.unwrap_or(true),
            require_numbers: p.require_numbers.unwrap_or(true),
            require_uppercase: p.require_uppercase.unwrap_or(true),
            require_lowercase: p.require_lowercase.unwrap_or(true),
            allow_users_to_change: p.allow_users_to_change.unwrap_or(true),
            max_age_days: optional(self.int(&key("max_age_days"), p.max_age_days, 0, 0..=1095)?),
            reuse_prevention: optional(self.int(&key("reuse_prevention"), p.reuse_prevention, 24, 0..=24)?),
            hard_expiry: p.hard_expiry.unwrap_or(false),
        };
        Ok(Baseline {
            regions,
            bootstrap_role,
            management_role,
            landing_ous,
            allowed_ous,
            account_alias,
            ebs_kms_key,
            imds_hop_limit,
            snapshot_block,
            delete_default_vpcs: raw.delete_default_vpcs.unwrap_or(true),
            password_policy,
        })
    }

    /// A list of OU names, none empty.
    fn ou_names(&self, key: &str, names: Option<Vec<Spanned<String>>>) -> Result<Vec<String>, PolicyError> {
        let mut out = Vec::new();
        for ou in names.unwrap_or_default() {
            if ou.get_ref().trim().is_empty() {
                return Err(self.err(key, ou.span(), "an OU name is empty"));
            }
            out.push(ou.into_inner());
        }
        Ok(out)
    }

    fn int(
        &self,
        key: &str,
        value: Option<Spanned<i64>>,
        default: i32,
        range: std::ops::RangeInclusive<i32>,
    ) -> Result<i32, PolicyError> {
        let Some(v) = value else { return Ok(default) };
        i32::try_from(*v.get_ref())
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                self.err(
                    key,
                    v.span(),
                    format!("{} is outside {}..={}", v.get_ref(), range.start(), range.end()),
                )
            })
    }

    /// A whole number of things, at least one: [`Validator::int`] for a positive range.
    fn count(
        &self,
        key: &str,
        value: Option<Spanned<i64>>,
        default: u16,
        range: std::ops::RangeInclusive<u16>,
    ) -> Result<u32, PolicyError> {
        let range = i32::from(*range.start())..=i32::from(*range.end());
        let n = self.int(key, value, i32::from(default), range)?;
        Ok(n.unsigned_abs())
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
                format!("{:?} is not a duration such as \"15m\" or \"1h\": {e}", value.get_ref()),
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
                if !text.starts_with("arn:") || text.chars().any(char::is_whitespace) || text.len() > 512 {
                    return Err(self.err(
                        key,
                        p.span(),
                        format!("{text:?} is not an ARN pattern (arn:..., with * and ? as wildcards)"),
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

fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam", "", account, resource]
        if crate::ids::AccountId::parse(account).is_some()
            && resource.strip_prefix("role/").is_some_and(|r| !r.is_empty()))
}

/// A pattern with `*` and `?` wildcards (an ARN, a GuardDuty finding type).
fn wild(text: &str) -> Pattern {
    Pattern {
        text: text.to_string(),
        matcher: WildMatch::new(text),
    }
}

fn is_kms_key(s: &str) -> bool {
    s.len() <= 2048
        && !s.chars().any(char::is_whitespace)
        && (s.starts_with("arn:") || s.starts_with("alias/") || s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

fn is_environment_name(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
