//! The policy: environments (matched by OU name) with a mode per rule, required tags, principals,
//! roles and event freshness; loaded from TOML and validated with errors naming key and line.

mod baseline;
mod quarantine;
mod tags;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use wildmatch::WildMatch;

pub use baseline::{Baseline, PasswordPolicy, SnapshotBlock, Step};
pub use quarantine::{FindingRule, Quarantine, RateBudget, Response};
pub use tags::{NamePattern, Naming, TagRules, ValuePattern};

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

    /// What the rule did once applied, one word for alert filters (`action` attribute).
    pub fn verb(self) -> &'static str {
        match self {
            Rule::Tags => "tagged",
            Rule::Baseline => "baselined",
            Rule::Quarantine => "quarantined",
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
    /// Values for tags that resources in this environment must carry and that cannot be derived.
    pub tag_defaults: BTreeMap<String, String>,
    /// What waits for a person's `guardrail approve` here: rule names (every change the rule
    /// makes) and high-risk action kinds ([`APPROVAL_ACTIONS`]).
    pub approval: Vec<String>,
}

/// The action kinds an environment's `approval` list may name, besides rule names.
pub const APPROVAL_ACTIONS: [&str; 6] = [
    "isolate",
    "revoke-sessions",
    "deactivate-keys",
    "stop-instances",
    "delete-default-vpc",
    "move-account",
];

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
    /// Principals (service-linked roles, say) whose resources the tag rules leave alone.
    pub exempt_principals: Vec<Pattern>,
    pub tags: TagRules,
    pub environments: Vec<Environment>,
    pub naming: Naming,
    pub baseline: Baseline,
    pub quarantine: Quarantine,
    pub sweep: Sweep,
    pub safety: Safety,
}

/// The rails that let people stop Guardrail acting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Safety {
    /// The SSM parameter of the kill switch (`guardrail pause`); `None`: no switch.
    pub pause_parameter: Option<String>,
    /// How long the audit ledger keeps an entry (DynamoDB TTL), in days.
    pub ledger_days: u32,
    pub breaker: BreakerLimits,
    pub waivers: Waivers,
    /// How long a plan waiting for approval may be approved.
    pub approval_expiry: Duration,
}

/// Who may exempt a resource or principal from rules with a `guardrail:waiver` tag, and for how
/// long at most.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Waivers {
    /// Principals (by ARN pattern) whose waiver tags count; none: no waiver is honoured.
    pub setters: Vec<Pattern>,
    /// Days ahead a waiver's last day may be when it is read.
    pub max_days: u32,
}

impl Waivers {
    /// Whether this principal may set a waiver.
    pub fn may_set(&self, arn: &str) -> bool {
        self.setters.iter().any(|p| p.matches(arn))
    }
}

/// The blast-radius breaker: how many changes each rule may make in one account within a
/// sliding window before it only detects there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerLimits {
    pub window: Duration,
    /// Changes per rule and account within the window; a rule not listed has no breaker.
    pub limits: BTreeMap<Rule, u32>,
}

impl BreakerLimits {
    /// The rule's limit, `None` when its breaker is off.
    pub fn limit(&self, rule: Rule) -> Option<u32> {
        self.limits.get(&rule).copied()
    }
}

/// How a sweep paces itself.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// Write calls a sweep makes per second in any one account, so that it never spends the
    /// account's own API budget (EC2 throttles mutating calls per account and region).
    pub writes_per_second: u32,
    /// Accounts one invocation checks at the same time.
    pub parallel_accounts: u32,
    /// Time an invocation keeps in hand to check one account: with less left before the Lambda
    /// time limit, the sweep continues in a follow-up invocation.
    pub account_time: Duration,
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
        validate::parse(text, origin)
    }

    /// The environment whose OU has this name (case-insensitively).
    pub fn environment_for_ou(&self, ou_name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.ou.eq_ignore_ascii_case(ou_name))
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// Whether the ARN is one of Guardrail's own principals (its events are ignored): those
    /// `principals.guardrail` lists, and always the roles Guardrail runs as, so that no policy
    /// can make it react to its own writes.
    pub fn is_guardrail(&self, arn: &str) -> bool {
        self.guardrail_principals.iter().any(|p| p.matches(arn)) || self.is_own_role(arn)
    }

    /// Each function's member role (`roles.member`) and execution role
    /// (`guardrail-<function>-lambda`, named so by `infra/template.yaml`) in any account, at the
    /// path the templates give them (`/`), and the management and Organizations roles. A role of
    /// that name at another path (`role/agents/guardrail-tag-enforcer`) is anyone's to create:
    /// the SCPs protect only `role/guardrail-*`, so it is nobody special here either.
    fn is_own_role(&self, arn: &str) -> bool {
        if [&self.baseline.management_role, &self.organizations_role]
            .into_iter()
            .flatten()
            .any(|role| role == arn)
        {
            return true;
        }
        let Some((prefix, path_and_name)) = arn.split_once(":role/") else {
            return false;
        };
        if !prefix.starts_with("arn:") || !prefix.contains(":iam::") {
            return false;
        }
        let name = path_and_name;
        crate::rules::Function::ALL.iter().any(|f| {
            name == self.member_role.replace("{function}", f.name()) || name == format!("guardrail-{}-lambda", f.name())
        })
    }

    /// Whether some environment makes a plan wait for approval (so events are kept to decide
    /// on again).
    pub fn asks_approval(&self) -> bool {
        self.environments.iter().any(|e| !e.approval.is_empty())
    }

    /// Whether the tag rules leave this principal's resources alone.
    pub fn is_exempt(&self, arn: &str) -> bool {
        self.exempt_principals.iter().any(|p| p.matches(arn))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_policy_is_valid_and_maps_the_three_ous() {
        let p = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        for ou in ["prod", "dev", "agents"] {
            assert!(p.environment_for_ou(ou).is_some(), "{ou}");
        }
        assert_eq!(p.tags.required, ["Environment", "Owner"]);
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
        assert_eq!(p.sweep.writes_per_second, 2);
        assert_eq!(p.sweep.parallel_accounts, 4);
        assert_eq!(p.sweep.account_time, Duration::from_secs(20));
        assert_eq!(p.safety.pause_parameter.as_deref(), Some("/guardrail/pause"));
        assert_eq!(p.safety.breaker.window, Duration::from_secs(3600));
        assert_eq!(
            Rule::ALL.map(|r| p.safety.breaker.limit(r)),
            [Some(500), Some(100), Some(10)]
        );
        assert!(
            p.safety.waivers.setters.is_empty(),
            "no waiver counts until the policy names setters"
        );
        assert_eq!(p.safety.waivers.max_days, 90);
        assert_eq!(p.safety.approval_expiry, Duration::from_secs(86_400));
        assert!(
            !p.asks_approval(),
            "nothing waits for a person unless an environment says so"
        );
        let builtin = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(builtin.asks_approval());
        assert_eq!(
            builtin.environment("prod").map(|e| e.approval.clone()),
            Some(vec!["quarantine".to_string()])
        );
        let off = Policy::from_toml(
            &MINIMAL.replace("version = 1\n", "version = 1\n[safety.breaker]\nquarantine = 0\n"),
            "p.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            off.safety.breaker.limit(Rule::Quarantine),
            None,
            "0 turns the rule's breaker off"
        );
        assert_eq!(
            p.member_role_arn("aws", "111122223333", "tag-enforcer"),
            "arn:aws:iam::111122223333:role/guardrail-tag-enforcer"
        );
    }

    #[test]
    fn guardrails_own_roles_are_recognised_whatever_principals_guardrail_lists() {
        let text = format!(
            "{MINIMAL}[roles]\nmember = \"sec-{{function}}\"\n[baseline]\nmanagement_role = \"arn:aws:iam::999988887777:role/org-writer\"\n"
        );
        let p = Policy::from_toml(&text, "p.toml").unwrap_or_else(|e| panic!("{e}"));
        assert!(p.guardrail_principals.is_empty());
        for own in [
            "arn:aws:iam::111122223333:role/sec-tag-enforcer",
            "arn:aws:iam::111122223333:role/sec-agent-quarantine",
            "arn:aws:iam::444455556666:role/guardrail-account-baseline-lambda",
            "arn:aws:iam::999988887777:role/org-writer",
        ] {
            assert!(p.is_guardrail(own) && p.is_protected(own), "{own}");
        }
        for other in [
            "arn:aws:iam::111122223333:role/sec-tag-enforcer-x",
            "arn:aws:iam::111122223333:role/guardrail-tag-enforcer",
            // The same names at another path: anyone may create those.
            "arn:aws:iam::111122223333:role/ops/sec-agent-quarantine",
            "arn:aws:iam::111122223333:role/agents/guardrail-agent-quarantine-lambda",
            "arn:aws:iam::111122223333:role/agents/sec-tag-enforcer",
            "arn:aws:iam::111122223333:user/sec-tag-enforcer",
            "arn:aws:sts::111122223333:assumed-role/agent/sec-tag-enforcer",
            "arn:aws:iam::111122223333:role/org-writer",
        ] {
            assert!(!p.is_guardrail(other), "{other}");
        }
    }

    #[test]
    fn the_shipped_quarantine_section_spells_out_the_defaults() {
        let shipped = Policy::builtin().unwrap_or_else(|e| panic!("{e}")).quarantine;
        let defaults = Policy::from_toml(MINIMAL, "p.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .quarantine;
        assert_eq!(shipped, defaults);
        assert_eq!(shipped.rate.as_ref().map(|r| r.calls), Some(300));
        assert_eq!(shipped.findings.len(), 3);
        let off = Policy::from_toml(&format!("{MINIMAL}[quarantine.rate]\nenabled = false\n"), "p.toml")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(off.quarantine.rate, None, "a switch, not a budget of zero");
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
                "version = 1\n[sweep]\nwrites_per_second = 0\n[environments.prod]\n",
                "sweep.writes_per_second",
                3,
                "outside 1..=100",
            ),
            (
                "version = 1\n[sweep]\naccount_time = \"1s\"\n[environments.prod]\n",
                "sweep.account_time",
                3,
                "outside",
            ),
            (
                "version = 1\n[safety]\npause_parameter = \"guardrail pause\"\n[environments.prod]\n",
                "safety.pause_parameter",
                3,
                "not an SSM parameter name",
            ),
            (
                "version = 1\n[safety.breaker]\ntags = 5000\n[environments.prod]\n",
                "safety.breaker.tags",
                3,
                "outside 0..=1000",
            ),
            (
                "version = 1\n[safety.breaker]\nwindow = \"10s\"\n[environments.prod]\n",
                "safety.breaker.window",
                3,
                "outside the allowed",
            ),
            (
                "version = 1\n[safety.waivers]\nmax_days = 400\n[environments.prod]\n",
                "safety.waivers.max_days",
                3,
                "outside 1..=366",
            ),
            (
                "version = 1\n[safety.waivers]\nsetters = [\"security-admins\"]\n[environments.prod]\n",
                "safety.waivers.setters",
                3,
                "not an ARN pattern",
            ),
            (
                "version = 1\n[environments.prod]\napproval = [\"isolation\"]\n",
                "environments.prod.approval",
                3,
                "neither a rule (tags, baseline, quarantine) nor a high-risk action (isolate, revoke-sessions",
            ),
            (
                "version = 1\n[environments.prod]\napproval = [\"isolate\", \"isolate\"]\n",
                "environments.prod.approval",
                3,
                "listed twice",
            ),
            (
                "version = 1\n[safety]\napproval_expiry = \"30d\"\n[environments.prod]\n",
                "safety.approval_expiry",
                3,
                "outside the allowed 10m..7days",
            ),
            (
                "version = 1\n[safety.breaker]\nrules = 1\n[environments.prod]\n",
                "rules",
                3,
                "unknown field",
            ),
            ("version = 2\n[environments.prod]\n", "version", 1, "version 1"),
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
                "version = 1\n[naming.resources]\n\"ec2:instanse\" = \"^{env}-x$\"\n[environments.prod]\n",
                "naming.resources.ec2:instanse",
                3,
                "unknown resource kind",
            ),
            (
                "version = 1\n[naming.resources]\n\"iam:role\" = \"^prod-x$\"\n[environments.prod]\n",
                "naming.resources.iam:role",
                3,
                "must contain {env}",
            ),
            (
                "version = 1\n[tags.patterns]\nCostCenter = \"^[0-9\"\n[environments.prod]\n",
                "tags.patterns.CostCenter",
                3,
                "not a regular expression",
            ),
            (
                "version = 1\n[tags]\nprotected = [\"*\"]\n[environments.prod]\n",
                "tags.protected",
                3,
                "prefix ending in *",
            ),
            (
                "version = 1\n[environments.prod.tag_defaults]\n\"aws:x\" = \"y\"\n",
                "environments.prod.tag_defaults",
                3,
                "not a tag key",
            ),
            (
                "version = 1\n[principals]\nexempt = [\"autoscaling\"]\n[environments.prod]\n",
                "principals.exempt",
                3,
                "not an ARN",
            ),
            ("version = 1\n\n[environments.prod\n", "environments.prod", 3, ""),
            (
                "version = 1\n[[quarantine.findings]]\ntypes = [\"*\"]\nresponse = \"delete\"\n[environments.prod]\n",
                "quarantine.findings.response",
                4,
                "revoke-sessions and isolate",
            ),
            (
                "version = 1\n[[quarantine.findings]]\ntypes = [\"*\"]\nmin_severity = 11.0\nresponse = \"isolate\"\n[environments.prod]\n",
                "quarantine.findings.min_severity",
                4,
                "0 to 10",
            ),
            (
                "version = 1\n[quarantine.rate]\ncalls = 10\nevents = { \"ec2:RunInstances\" = 1 }\n[environments.prod]\n",
                "quarantine.rate.events",
                4,
                "not a CloudTrail event name",
            ),
            (
                "version = 1\n[quarantine.rate]\ncalls = 0\n[environments.prod]\n",
                "quarantine.rate.calls",
                3,
                "positive number",
            ),
            (
                "version = 1\n[quarantine.rate]\nwindow = \"2h\"\ncalls = 10\n[environments.prod]\n",
                "quarantine.rate.window",
                3,
                "outside",
            ),
            (
                "version = 1\n[quarantine.rate]\nwindow = \"30s\"\n[environments.prod]\n",
                "quarantine.rate.calls",
                2,
                "enabled = false",
            ),
            (
                "version = 1\n[quarantine]\nagent_tag = \"\"\n[quarantine.rate]\ncalls = 5\ntagged_agents = true\n[environments.prod]\n",
                "quarantine.rate.tagged_agents",
                6,
                "needs quarantine.agent_tag",
            ),
            (
                "version = 1\n[quarantine]\ninline_policy = \"deny all\"\n[environments.prod]\n",
                "quarantine.inline_policy",
                3,
                "not a policy name",
            ),
        ];
        for (text, key, line, needle) in cases {
            let e = Policy::from_toml(text, "p.toml").expect_err(text);
            assert_eq!((e.key.as_str(), e.line), (key, Some(line)), "{e}");
            assert!(e.message.contains(needle), "{e}");
            assert!(
                e.to_string().starts_with(&format!("p.toml, line {line}: {key}: ")),
                "{e}"
            );
        }
    }
}
