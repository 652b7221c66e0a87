//! The baseline a new account gets.

use serde::Serialize;

use crate::ids::Region;

/// What every account gets, in every listed region.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    pub regions: Vec<Region>,
    /// Role assumed in the new account (it exists from the start in accounts Organizations creates).
    pub bootstrap_role: String,
    /// Role in the management account for `MoveAccount` and account tags; `None`: own credentials.
    pub management_role: Option<String>,
    /// OUs (besides the root) an account may be moved out of into its environment's OU.
    pub landing_ous: Vec<String>,
    /// OUs an account may be moved into out of its environment's OU (a suspended or closing
    /// OU): Guardrail leaves such a move alone instead of moving the account back.
    pub allowed_ous: Vec<String>,
    /// Alias template: `{name}` (the account name made alias-safe), `{env}`, `{account}`.
    /// `None`: aliases are not managed.
    pub account_alias: Option<String>,
    /// KMS key for EBS default encryption; `None`: the AWS-managed `aws/ebs` key.
    pub ebs_kms_key: Option<String>,
    /// IMDSv2 response hop limit set with the account default.
    pub imds_hop_limit: i32,
    pub snapshot_block: SnapshotBlock,
    /// Whether default VPCs are deleted (only ever when they hold no instances or interfaces).
    pub delete_default_vpcs: bool,
    pub password_policy: PasswordPolicy,
}

impl Baseline {
    /// The alias an account should have, or `None` when aliases are unmanaged or the template
    /// yields nothing valid (3-63 of a-z, 0-9 and inner hyphens).
    pub fn alias_for(&self, account_name: &str, environment: &str, account: &str) -> Option<String> {
        let template = self.account_alias.as_deref()?;
        let raw = template
            .replace("{name}", account_name)
            .replace("{env}", environment)
            .replace("{account}", account);
        let mut alias = String::new();
        for c in raw.to_lowercase().chars() {
            let c = if c.is_ascii_alphanumeric() { c } else { '-' };
            if !(c == '-' && (alias.is_empty() || alias.ends_with('-'))) {
                alias.push(c);
            }
        }
        let alias = alias.trim_end_matches('-').chars().take(63).collect::<String>();
        let alias = alias.trim_end_matches('-').to_string();
        (alias.len() >= 3).then_some(alias)
    }
}

/// One step of the baseline: what a drift event undoes, and what a scoped read covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The account in its environment's OU.
    Placement,
    AccountTags,
    Alias,
    PasswordPolicy,
    S3PublicAccessBlock,
    EbsEncryption,
    EbsDefaultKey,
    Imds,
    SnapshotBlock,
    ImageBlock,
    DefaultVpc,
}

impl Step {
    /// Whether the setting is per region (the others are account-wide or in Organizations).
    pub fn regional(self) -> bool {
        matches!(
            self,
            Step::EbsEncryption
                | Step::EbsDefaultKey
                | Step::Imds
                | Step::SnapshotBlock
                | Step::ImageBlock
                | Step::DefaultVpc
        )
    }

    /// What the step keeps true, for alerts: `EBS encryption by default`.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Placement => "the account's place in its environment's OU",
            Step::AccountTags => "the account's tags",
            Step::Alias => "the account alias",
            Step::PasswordPolicy => "the IAM password policy",
            Step::S3PublicAccessBlock => "S3 Block Public Access for the account",
            Step::EbsEncryption => "EBS encryption by default",
            Step::EbsDefaultKey => "the default EBS key",
            Step::Imds => "IMDSv2 required by default",
            Step::SnapshotBlock => "blocked public sharing of EBS snapshots",
            Step::ImageBlock => "blocked public sharing of AMIs",
            Step::DefaultVpc => "no default VPC",
        }
    }
}

/// EBS snapshot block public access: `block-all-sharing` is the stronger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotBlock {
    BlockNewSharing,
    BlockAllSharing,
}

impl SnapshotBlock {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotBlock::BlockNewSharing => "block-new-sharing",
            SnapshotBlock::BlockAllSharing => "block-all-sharing",
        }
    }

    pub fn parse(s: &str) -> Option<SnapshotBlock> {
        [SnapshotBlock::BlockNewSharing, SnapshotBlock::BlockAllSharing]
            .into_iter()
            .find(|b| b.as_str() == s)
    }
}

/// The IAM account password policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PasswordPolicy {
    pub minimum_length: i32,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub allow_users_to_change: bool,
    /// Days before a password expires; `None`: never (NIST advises against forced rotation).
    pub max_age_days: Option<i32>,
    /// How many previous passwords cannot be reused.
    pub reuse_prevention: Option<i32>,
    pub hard_expiry: bool,
}

impl PasswordPolicy {
    /// The policy to set over `current`: each setting the stronger of the two, so a baseline
    /// never weakens a stricter policy someone already set.
    pub fn strengthen(&self, current: &PasswordPolicy) -> PasswordPolicy {
        let shorter_age = match (self.max_age_days, current.max_age_days) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let longer_memory = match (self.reuse_prevention, current.reuse_prevention) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        PasswordPolicy {
            minimum_length: self.minimum_length.max(current.minimum_length),
            require_symbols: self.require_symbols || current.require_symbols,
            require_numbers: self.require_numbers || current.require_numbers,
            require_uppercase: self.require_uppercase || current.require_uppercase,
            require_lowercase: self.require_lowercase || current.require_lowercase,
            allow_users_to_change: self.allow_users_to_change,
            max_age_days: shorter_age,
            reuse_prevention: longer_memory,
            hard_expiry: self.hard_expiry || current.hard_expiry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline(alias: &str) -> Baseline {
        Baseline {
            regions: vec![],
            bootstrap_role: "OrganizationAccountAccessRole".into(),
            management_role: None,
            landing_ous: vec![],
            allowed_ous: vec![],
            account_alias: Some(alias.into()),
            ebs_kms_key: None,
            imds_hop_limit: 2,
            snapshot_block: SnapshotBlock::BlockAllSharing,
            delete_default_vpcs: true,
            password_policy: PasswordPolicy {
                minimum_length: 14,
                require_symbols: true,
                require_numbers: true,
                require_uppercase: true,
                require_lowercase: true,
                allow_users_to_change: true,
                max_age_days: None,
                reuse_prevention: Some(24),
                hard_expiry: false,
            },
        }
    }

    #[test]
    fn aliases_are_made_valid_from_any_account_name() {
        let b = baseline("acme-{name}");
        assert_eq!(
            b.alias_for("Dev Payments_API", "dev", "1").as_deref(),
            Some("acme-dev-payments-api")
        );
        assert_eq!(baseline("{name}").alias_for("--", "dev", "1"), None);
        assert_eq!(
            baseline("{env}-{account}")
                .alias_for("x", "prod", "111122223333")
                .as_deref(),
            Some("prod-111122223333")
        );
        let long = baseline("{name}")
            .alias_for(&"a".repeat(100), "dev", "1")
            .unwrap_or_default();
        assert_eq!(long.len(), 63);
    }

    #[test]
    fn strengthening_never_weakens() {
        let want = baseline("x").password_policy;
        let stricter = PasswordPolicy {
            minimum_length: 20,
            max_age_days: Some(60),
            reuse_prevention: Some(5),
            hard_expiry: true,
            require_symbols: false,
            ..want.clone()
        };
        let merged = want.strengthen(&stricter);
        assert_eq!(merged.minimum_length, 20);
        assert_eq!(merged.max_age_days, Some(60));
        assert_eq!(merged.reuse_prevention, Some(24));
        assert!(merged.hard_expiry && merged.require_symbols);
        assert_eq!(want.strengthen(&merged), merged, "applying twice changes nothing");
    }
}
