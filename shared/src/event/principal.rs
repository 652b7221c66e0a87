//! Who made a CloudTrail call: the principal behind `userIdentity`, in every shape AWS writes.

use serde::Serialize;
use serde_json::Value;

use super::json::{obj_any, str_any, string_any};

/// The caller of an API, as far as the event tells.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Principal {
    IamUser {
        arn: Option<String>,
        account: Option<String>,
        name: Option<String>,
    },
    /// A role session. `role_arn` comes from `sessionContext.sessionIssuer.arn`; when the event
    /// lacks it, it is rebuilt from the session ARN (without the role's path).
    AssumedRole {
        role_arn: Option<String>,
        session_arn: Option<String>,
        session_name: Option<String>,
        account: Option<String>,
    },
    Root {
        arn: Option<String>,
        account: Option<String>,
    },
    FederatedUser {
        arn: Option<String>,
        account: Option<String>,
        /// The IAM user that called `GetFederationToken`.
        issuer_arn: Option<String>,
    },
    AwsService {
        service: Option<String>,
    },
    /// A principal of another account (cross-account calls), known only by account and id.
    AwsAccount {
        account: Option<String>,
        principal_id: Option<String>,
    },
    /// `Unknown`, `SAMLUser`, `WebIdentityUser`, `IdentityCenterUser` and anything newer.
    Other {
        kind: String,
        arn: Option<String>,
        account: Option<String>,
    },
    /// No `userIdentity` at all.
    Missing,
}

impl Principal {
    /// Reads `userIdentity` (or its absence).
    pub fn from_user_identity(ui: Option<&Value>) -> Self {
        let Some(ui) = ui.filter(|v| v.is_object()) else {
            return Principal::Missing;
        };
        let arn = string_any(ui, &["arn"]);
        let account = string_any(ui, &["accountId"]);
        match str_any(ui, &["type"]) {
            Some("IAMUser") => Principal::IamUser {
                name: string_any(ui, &["userName"]).or_else(|| arn.as_deref().and_then(last_segment)),
                arn,
                account,
            },
            Some("AssumedRole") => {
                let issuer = obj_any(ui, &["sessionContext"]).and_then(|c| obj_any(c, &["sessionIssuer"]));
                let role_arn = issuer
                    .filter(|i| str_any(i, &["type"]).is_none_or(|t| t == "Role"))
                    .and_then(|i| string_any(i, &["arn"]))
                    .or_else(|| arn.as_deref().and_then(role_arn_from_session_arn));
                Principal::AssumedRole {
                    role_arn,
                    session_name: arn.as_deref().and_then(session_name_of),
                    session_arn: arn,
                    account,
                }
            }
            Some("Root") => Principal::Root { arn, account },
            Some("FederatedUser") => Principal::FederatedUser {
                issuer_arn: obj_any(ui, &["sessionContext"])
                    .and_then(|c| obj_any(c, &["sessionIssuer"]))
                    .and_then(|i| string_any(i, &["arn"])),
                arn,
                account,
            },
            Some("AWSService") => Principal::AwsService {
                service: string_any(ui, &["invokedBy"]),
            },
            Some("AWSAccount") => Principal::AwsAccount {
                account,
                principal_id: string_any(ui, &["principalId"]),
            },
            Some(other) => Principal::Other {
                kind: other.to_string(),
                arn,
                account,
            },
            // Service events carry only {accountId, invokedBy}.
            None if ui.get("invokedBy").is_some() => Principal::AwsService {
                service: string_any(ui, &["invokedBy"]),
            },
            None => Principal::Other {
                kind: "untyped".to_string(),
                arn,
                account,
            },
        }
    }

    /// The ARN that policies match against: the role for a role session (never the session
    /// name, which the caller chooses), the user, root or federated user otherwise.
    pub fn arn(&self) -> Option<&str> {
        match self {
            Principal::AssumedRole { role_arn, .. } => role_arn.as_deref(),
            Principal::IamUser { arn, .. }
            | Principal::Root { arn, .. }
            | Principal::FederatedUser { arn, .. }
            | Principal::Other { arn, .. } => arn.as_deref(),
            Principal::AwsService { .. } | Principal::AwsAccount { .. } | Principal::Missing => None,
        }
    }

    /// Who to name as a resource's owner: the role session ARN (role plus session name), the
    /// user ARN, or the service. `None` when the event does not say.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Principal::AssumedRole {
                session_arn, role_arn, ..
            } => session_arn.as_deref().or(role_arn.as_deref()),
            Principal::AwsService { service } => service.as_deref(),
            _ => self.arn(),
        }
    }

    /// A short human label: `AssumedRole arn:aws:sts::…:assumed-role/Dev/alice`.
    pub fn describe(&self) -> String {
        let kind = match self {
            Principal::IamUser { .. } => "IAMUser",
            Principal::AssumedRole { .. } => "AssumedRole",
            Principal::Root { .. } => "Root",
            Principal::FederatedUser { .. } => "FederatedUser",
            Principal::AwsService { .. } => "AWSService",
            Principal::AwsAccount { .. } => "AWSAccount",
            Principal::Other { kind, .. } => kind.as_str(),
            Principal::Missing => return "no identity".to_string(),
        };
        let who = match self {
            Principal::AwsAccount { account, .. } => account.as_deref(),
            _ => self.owner(),
        };
        match who {
            Some(who) => format!("{kind} {}", crate::ids::clip(who, 200)),
            None => kind.to_string(),
        }
    }
}

fn last_segment(arn: &str) -> Option<String> {
    arn.rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_string)
}

/// `arn:aws:sts::1:assumed-role/Role/session` → `session`.
fn session_name_of(session_arn: &str) -> Option<String> {
    let (_, rest) = session_arn.split_once(":assumed-role/")?;
    let (_, session) = rest.split_once('/')?;
    (!session.is_empty()).then(|| session.to_string())
}

/// `arn:aws:sts::1:assumed-role/Role/session` → `arn:aws:iam::1:role/Role`.
fn role_arn_from_session_arn(session_arn: &str) -> Option<String> {
    let (head, rest) = session_arn.split_once(":assumed-role/")?;
    let (role, _) = rest.split_once('/')?;
    let mut parts = head.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sts"), Some(_), Some(account)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!role.is_empty()).then(|| format!("arn:{partition}:iam::{account}:role/{role}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn assumed_role_uses_the_session_issuer() {
        let p = Principal::from_user_identity(Some(&json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/Dev/alice",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/team/Dev"}}
        })));
        assert_eq!(p.arn(), Some("arn:aws:iam::111122223333:role/team/Dev"));
        assert_eq!(p.owner(), Some("arn:aws:sts::111122223333:assumed-role/Dev/alice"));
        let Principal::AssumedRole { session_name, .. } = &p else {
            panic!("{p:?}")
        };
        assert_eq!(session_name.as_deref(), Some("alice"));
    }

    #[test]
    fn assumed_role_without_issuer_rebuilds_the_role_arn() {
        let p = Principal::from_user_identity(Some(&json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/Dev/alice"
        })));
        assert_eq!(p.arn(), Some("arn:aws:iam::111122223333:role/Dev"));
    }

    #[test]
    fn every_identity_type_is_recognised() {
        let cases = [
            (
                json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"}),
                "IAMUser arn:aws:iam::1:user/bob",
            ),
            (
                json!({"type": "Root", "arn": "arn:aws:iam::1:root"}),
                "Root arn:aws:iam::1:root",
            ),
            (
                json!({"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/x"}),
                "FederatedUser arn:aws:sts::1:federated-user/x",
            ),
            (
                json!({"type": "AWSService", "invokedBy": "lambda.amazonaws.com"}),
                "AWSService lambda.amazonaws.com",
            ),
            (
                json!({"type": "AWSAccount", "accountId": "777788889999"}),
                "AWSAccount 777788889999",
            ),
            (json!({"type": "Unknown", "arn": ""}), "Unknown"),
            (
                json!({"accountId": "1", "invokedBy": "AWS Internal"}),
                "AWSService AWS Internal",
            ),
            (json!({"type": 7}), "untyped"),
        ];
        for (ui, want) in cases {
            assert_eq!(Principal::from_user_identity(Some(&ui)).describe(), want, "{ui}");
        }
        assert_eq!(Principal::from_user_identity(None), Principal::Missing);
        assert_eq!(Principal::from_user_identity(Some(&json!(null))), Principal::Missing);
    }
}
