//! Revert on change: the CloudTrail calls that can undo a baseline step, and the decision on
//! one: the step re-read (in the event's region) and restored through the baseline's own plan.

use crate::alert::Severity;
use crate::event::json::str_any;
use crate::event::{CloudTrailEvent, Rejection};
use crate::facts::Scope;
use crate::ids::clip;
use crate::plan::{Decision, Ignored};
use crate::policy::{Policy, Step};

use super::baseline::{Move, plan_scoped};
use super::{Known, Needs};

/// A call that can undo a baseline step. Calls that can also strengthen it (`Put...`,
/// `Update...`, `Modify...`) are re-checked the same way: a step still in place is left alone.
pub struct UndoingCall {
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub step: Step,
}

const fn call(event_source: &'static str, event_name: &'static str, step: Step) -> UndoingCall {
    UndoingCall {
        event_source,
        event_name,
        step,
    }
}

const EC2: &str = "ec2.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";
const S3: &str = "s3.amazonaws.com";
const ORGANIZATIONS: &str = "organizations.amazonaws.com";

/// Every call that can undo a baseline step. `MoveAccount` happens in the management account;
/// the others in the account whose setting they change.
pub const UNDOING_CALLS: [UndoingCall; 15] = [
    call(EC2, "DisableEbsEncryptionByDefault", Step::EbsEncryption),
    call(EC2, "ResetEbsDefaultKmsKeyId", Step::EbsDefaultKey),
    call(EC2, "ModifyEbsDefaultKmsKeyId", Step::EbsDefaultKey),
    call(EC2, "ModifyInstanceMetadataDefaults", Step::Imds),
    call(EC2, "DisableSnapshotBlockPublicAccess", Step::SnapshotBlock),
    call(EC2, "EnableSnapshotBlockPublicAccess", Step::SnapshotBlock),
    call(EC2, "DisableImageBlockPublicAccess", Step::ImageBlock),
    call(EC2, "CreateDefaultVpc", Step::DefaultVpc),
    call(S3, "DeleteAccountPublicAccessBlock", Step::S3PublicAccessBlock),
    call(S3, "PutAccountPublicAccessBlock", Step::S3PublicAccessBlock),
    call(IAM, "DeleteAccountPasswordPolicy", Step::PasswordPolicy),
    call(IAM, "UpdateAccountPasswordPolicy", Step::PasswordPolicy),
    call(IAM, "DeleteAccountAlias", Step::Alias),
    call(IAM, "CreateAccountAlias", Step::Alias),
    call(ORGANIZATIONS, "MoveAccount", Step::Placement),
];

/// The step a call can undo, if it is one of [`UNDOING_CALLS`].
pub fn step_for(event_source: &str, event_name: &str) -> Option<Step> {
    UNDOING_CALLS
        .iter()
        .find(|c| c.event_source == event_source && c.event_name == event_name)
        .map(|c| c.step)
}

/// What a drift event is about: the account, the step, and for a move, where from and to.
struct Drift {
    account: crate::ids::AccountId,
    scope: Scope,
    step: Step,
    moved: Option<Move>,
}

fn drift(call: &CloudTrailEvent) -> Result<Drift, Rejection> {
    let step = step_for(&call.event_source, &call.event_name).ok_or_else(|| Rejection::MalformedRecord {
        detail: format!("{} undoes no baseline step", call.event_name),
    })?;
    let params = &call.request_parameters;
    let (account, moved) = if step == Step::Placement {
        let account = str_any(params, &["accountId"]).ok_or(Rejection::MissingField {
            field: "requestParameters.accountId",
        })?;
        let parent = |field: &'static str| {
            str_any(params, &[field])
                .filter(|p| is_parent_id(p))
                .map(str::to_string)
                .ok_or(Rejection::MissingField { field })
        };
        let moved = Move {
            from: parent("sourceParentId")?,
            to: parent("destinationParentId")?,
        };
        (
            crate::event::parse_account("requestParameters.accountId", account)?,
            Some(moved),
        )
    } else {
        (
            call.account
                .clone()
                .ok_or(Rejection::MissingField { field: "account" })?,
            None,
        )
    };
    let region = step.regional().then(|| call.region.clone()).flatten();
    if step.regional() && region.is_none() {
        return Err(Rejection::MissingField { field: "awsRegion" });
    }
    Ok(Drift {
        account,
        scope: Scope::Step { step, region },
        step,
        moved,
    })
}

/// `r-...` or `ou-...-...`, as Organizations names parents.
fn is_parent_id(id: &str) -> bool {
    let body = id.strip_prefix("r-").or_else(|| id.strip_prefix("ou-"));
    body.is_some_and(|b| !b.is_empty() && b.len() <= 70 && b.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The account's state within the one step the call can undo.
pub fn needs(call: &CloudTrailEvent) -> Result<Needs, Rejection> {
    let d = drift(call)?;
    Ok(Needs::Account {
        account: d.account,
        scope: d.scope,
    })
}

/// The step re-checked against the policy: restored in `fix` and `enforce` (alerting who undid
/// it, from where, and what was restored), alerted in `detect`, left alone when still in place.
pub fn decide(call: &CloudTrailEvent, known: &Known, policy: &Policy) -> Result<Decision, Rejection> {
    let d = drift(call)?;
    let Known::Account(facts) = known else {
        return Err(Rejection::MissingField { field: "account state" });
    };
    if facts.management_account.as_ref() == Some(&d.account) {
        return Ok(Decision::Ignore {
            reason: Ignored::NotBaselined {
                what: format!("account {} is the organization's management account", d.account),
            },
        });
    }
    if let Scope::Step { region: Some(r), .. } = &d.scope
        && !policy.baseline.regions.contains(r)
    {
        return Ok(Decision::Ignore {
            reason: Ignored::NotBaselined {
                what: format!("region {r} is not in baseline.regions"),
            },
        });
    }
    let mut plan = match plan_scoped(facts, false, &d.scope, d.moved.as_ref(), policy) {
        Decision::Act { plan } => plan,
        ignore => return Ok(ignore),
    };
    let region = match &d.scope {
        Scope::Step { region: Some(r), .. } => format!(" in {r}"),
        _ => String::new(),
    };
    let who = call.principal.describe();
    let from = match (&call.source_ip, &call.user_agent) {
        (Some(ip), Some(agent)) => format!(" from {} ({})", clip(ip, 64), clip(agent, 120)),
        (Some(ip), None) => format!(" from {}", clip(ip, 64)),
        _ => String::new(),
    };
    let when = call
        .event_time
        .map(|t| format!(" at {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or_default();
    plan.subject = format!("{}{region} ({})", d.step.describe(), call.event_name);
    plan.verb = "restored";
    plan.region = call.region.clone();
    plan.cause = format!("{who}{from}");
    plan.happened = Some(format!(
        "{who} called {}{when}{from} in account {}, undoing {}{region}.",
        call.event_name,
        d.account,
        d.step.describe()
    ));
    // Someone turned a control off: a person should know, whether or not it was restored.
    plan.severity = plan.severity.max(Severity::Medium);
    Ok(Decision::Act { plan })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::facts::{AccountFacts, ImdsDefaults};
    use crate::rules::baseline::tests::{action_ids, baselined, ou, planned, policy};

    /// A CloudTrail record of `name` by a person in account 444455556666 (the fixtures' account).
    fn event(source: &str, name: &str, region: &str, params: Value) -> CloudTrailEvent {
        let account = if source == ORGANIZATIONS {
            "111122223333"
        } else {
            "444455556666"
        };
        let record = json!({
            "eventID": "drift-1", "eventTime": "2026-01-01T12:00:00Z", "eventSource": source,
            "eventName": name, "eventType": "AwsApiCall", "awsRegion": region,
            "recipientAccountId": account, "sourceIPAddress": "203.0.113.9", "userAgent": "aws-cli/2.15",
            "userIdentity": {"type": "AssumedRole", "arn": format!("arn:aws:sts::{account}:assumed-role/admin/mallory"),
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": format!("arn:aws:iam::{account}:role/admin")}}},
            "requestParameters": params
        });
        match crate::event::decode_value(record).remove(0) {
            Ok(crate::event::Event::ApiCall(call)) => call,
            other => panic!("{other:?}"),
        }
    }

    fn decided(call: &CloudTrailEvent, facts: AccountFacts, p: &Policy) -> Decision {
        decide(call, &Known::Account(Box::new(facts)), p).unwrap_or_else(|r| panic!("{r}"))
    }

    fn ignored(decision: Decision) -> Ignored {
        match decision {
            Decision::Ignore { reason } => reason,
            Decision::Act { plan } => panic!("acted: {plan:?}"),
        }
    }

    fn moved(from: &str, to: &str) -> CloudTrailEvent {
        event(
            ORGANIZATIONS,
            "MoveAccount",
            "us-east-1",
            json!({"accountId": "444455556666", "sourceParentId": from, "destinationParentId": to}),
        )
    }

    #[test]
    fn each_undoing_call_names_one_step_and_is_found_by_source_and_name() {
        for c in &UNDOING_CALLS {
            assert_eq!(step_for(c.event_source, c.event_name), Some(c.step), "{}", c.event_name);
        }
        assert_eq!(step_for(EC2, "EnableEbsEncryptionByDefault"), None);
        assert_eq!(step_for(IAM, "DisableEbsEncryptionByDefault"), None);
    }

    #[test]
    fn a_disabled_setting_is_restored_in_its_region_only_and_the_alert_says_who_and_from_where() {
        let p = policy(|t| t);
        let call = event(EC2, "DisableEbsEncryptionByDefault", "us-west-2", json!(null));
        assert_eq!(
            needs(&call),
            Ok(Needs::Account {
                account: crate::ids::AccountId::parse("444455556666").expect("id"),
                scope: Scope::Step {
                    step: Step::EbsEncryption,
                    region: crate::ids::Region::parse("us-west-2"),
                },
            })
        );
        let mut facts = baselined("dev-payments");
        facts.regions[1].ebs_encryption = Ok(false);
        // Out of scope, so neither read nor checked: another step in the same region, and the
        // same step in another region.
        facts.regions[1].imds = Ok(ImdsDefaults::default());
        facts.regions[0].ebs_encryption = Ok(false);
        let plan = planned(decided(&call, facts, &p));
        assert_eq!(action_ids(&plan), ["ebs-encryption:us-west-2"]);
        assert_eq!(plan.verb, "restored");
        assert_eq!(plan.severity, Severity::Medium);
        assert_eq!(
            plan.subject,
            "EBS encryption by default in us-west-2 (DisableEbsEncryptionByDefault)"
        );
        assert!(
            plan.cause.contains("mallory") && plan.cause.contains("203.0.113.9"),
            "{}",
            plan.cause
        );
        let happened = plan.happened.as_deref().unwrap_or_default();
        assert!(
            happened.contains(
                "called DisableEbsEncryptionByDefault at 2026-01-01T12:00:00Z from 203.0.113.9 (aws-cli/2.15)"
            ),
            "{happened}"
        );
    }

    #[test]
    fn a_step_still_in_place_after_the_call_is_left_alone() {
        let p = policy(|t| t);
        // Someone set an even stronger password policy.
        let call = event(
            IAM,
            "UpdateAccountPasswordPolicy",
            "us-east-1",
            json!({"minimumPasswordLength": 20}),
        );
        let reason = ignored(decided(&call, baselined("dev-payments"), &p));
        assert_eq!(reason, Ignored::Compliant { checked: 1 });
    }

    #[test]
    fn detect_mode_alerts_without_restoring() {
        let p = policy(|t| t.replace("baseline = \"fix\"", "baseline = \"detect\""));
        let call = event(
            S3,
            "DeleteAccountPublicAccessBlock",
            "us-east-1",
            json!({"accountId": "444455556666"}),
        );
        let mut facts = baselined("dev-payments");
        facts.s3_public_access_block = Ok(None);
        let plan = planned(decided(&call, facts, &p));
        assert_eq!(plan.mode, crate::policy::Mode::Detect, "{:?}", plan.environment);
        assert!(plan.actions.is_empty());
        assert_eq!(plan.violations.len(), 1);
        assert_eq!(plan.severity, Severity::Medium);
    }

    #[test]
    fn an_account_moved_out_of_its_environment_ou_is_moved_back_unless_the_policy_allows_the_destination() {
        let p = policy(|t| t);
        let mut facts = baselined("dev-payments");
        facts.parent = Some(ou("ou-sbx", "sandbox"));
        facts.environment_ous.push(ou("ou-sus", "Suspended"));
        let plan = planned(decided(&moved("ou-dev", "ou-sbx"), facts.clone(), &p));
        assert_eq!(action_ids(&plan), ["move-account:ou-dev"]);
        assert!(
            plan.violations[0]
                .problem
                .contains("moved out of its environment's OU dev into sandbox")
        );
        assert_eq!(plan.placement.as_ref().and_then(|p| p.ou_id.as_deref()), Some("ou-dev"));

        // Into an allowed OU: left there.
        facts.parent = Some(ou("ou-sus", "Suspended"));
        let reason = ignored(decided(&moved("ou-dev", "ou-sus"), facts.clone(), &p));
        assert_eq!(reason, Ignored::Compliant { checked: 1 });

        // Moved again since: the later move's own event decides.
        facts.parent = Some(ou("ou-prod", "prod"));
        let reason = ignored(decided(&moved("ou-dev", "ou-sbx"), facts.clone(), &p));
        assert_eq!(reason, Ignored::Compliant { checked: 1 });

        // Into its environment's OU: nothing to undo.
        facts.parent = Some(ou("ou-dev", "dev"));
        let reason = ignored(decided(&moved("r-root", "ou-dev"), facts, &p));
        assert_eq!(reason, Ignored::Compliant { checked: 1 });
    }

    #[test]
    fn the_management_account_and_other_regions_are_not_baselined() {
        let p = policy(|t| t);
        let mut facts = baselined("dev-payments");
        facts.management_account = Some(facts.account.clone());
        let call = event(EC2, "CreateDefaultVpc", "us-east-1", json!({}));
        assert!(matches!(
            ignored(decided(&call, facts, &p)),
            Ignored::NotBaselined { .. }
        ));
        let call = event(EC2, "CreateDefaultVpc", "eu-west-1", json!({}));
        let reason = ignored(decided(&call, baselined("dev-payments"), &p));
        assert_eq!(
            reason.to_string(),
            "region eu-west-1 is not in baseline.regions, which the baseline does not cover"
        );
    }

    #[test]
    fn a_move_without_its_parents_is_rejected_with_the_field() {
        let call = event(
            ORGANIZATIONS,
            "MoveAccount",
            "us-east-1",
            json!({"accountId": "444455556666", "sourceParentId": "ou-dev-12345678"}),
        );
        assert_eq!(
            needs(&call),
            Err(Rejection::MissingField {
                field: "destinationParentId"
            })
        );
        let call = event(
            ORGANIZATIONS,
            "MoveAccount",
            "us-east-1",
            json!({"accountId": "4444", "sourceParentId": "r-1", "destinationParentId": "r-1"}),
        );
        assert!(matches!(needs(&call), Err(Rejection::BadAccountId { .. })));
    }

    #[test]
    fn parent_ids_are_checked() {
        assert!(is_parent_id("r-ab12"));
        assert!(is_parent_id("ou-ab12-cd34ef56"));
        assert!(!is_parent_id("ou-"));
        assert!(!is_parent_id("ou-ab12/../x"));
        assert!(!is_parent_id("p-123"));
    }
}
