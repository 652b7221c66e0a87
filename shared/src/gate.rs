//! The gate every event passes before any read or write: freshness, failed calls (for the
//! functions that act on what calls changed), and calls made by Guardrail itself.

use chrono::{DateTime, Utc};

use crate::event::{Event, Rejection};
use crate::plan::Ignored;
use crate::policy::Policy;
use crate::rules::Function;

/// `Err` rejects the event (unusable or stale); `Ok(Some)` ignores it with a reason; `Ok(None)`
/// lets it through to `function`'s rules.
pub fn check(
    function: Function,
    event: &Event,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Option<Ignored>, Rejection> {
    let time = event.time().ok_or(Rejection::MissingField {
        field: match event {
            Event::Finding(_) => "updatedAt",
            Event::Alarm(_) => "state.timestamp",
            _ => "eventTime",
        },
    })?;
    fresh(time, policy, now)?;

    let Some(trail) = event.trail() else {
        return Ok(None);
    };
    if let Some(code) = trail.error_code.as_ref().filter(|_| !function.counts_failed_calls()) {
        return Ok(Some(if code.ends_with("DryRunOperation") {
            Ignored::DryRun
        } else {
            Ignored::FailedCall {
                error_code: crate::ids::clip(code, 64),
            }
        }));
    }
    if let Some(arn) = trail.principal.arn().filter(|arn| policy.is_guardrail(arn)) {
        return Ok(Some(Ignored::SelfCaused {
            principal: arn.to_string(),
        }));
    }
    Ok(None)
}

/// Rejects a time older than the policy's freshness window or further ahead than its clock skew.
pub fn fresh(time: DateTime<Utc>, policy: &Policy, now: DateTime<Utc>) -> Result<(), Rejection> {
    let age = now.signed_duration_since(time).num_seconds();
    let window = secs(policy.freshness);
    let skew = secs(policy.clock_skew);
    if age > window {
        return Err(Rejection::Stale {
            age_secs: age,
            window_secs: window,
        });
    }
    if -age > skew {
        return Err(Rejection::FromFuture {
            ahead_secs: -age,
            skew_secs: skew,
        });
    }
    Ok(())
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_value;
    use serde_json::json;

    fn event(time: &str, extra: serde_json::Value) -> Event {
        let mut record = json!({
            "eventID": "e", "eventTime": time, "eventSource": "ec2.amazonaws.com", "eventName": "RunInstances",
            "awsRegion": "us-east-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/dev/alice",
                             "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/dev"}}}
        });
        if let (Some(r), Some(e)) = (record.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        decode_value(record).remove(0).unwrap_or_else(|r| panic!("{r}"))
    }

    fn now() -> DateTime<Utc> {
        crate::event::time::parse("2026-01-01T12:00:00Z").unwrap_or_default()
    }

    #[test]
    fn freshness_window_and_clock_skew_are_enforced() {
        let policy = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        let check_at =
            |t: &str| check(Function::TagEnforcer, &event(t, json!({})), &policy, now()).map_err(|r| r.code());
        assert_eq!(check_at("2026-01-01T11:30:00Z"), Ok(None));
        assert_eq!(check_at("2026-01-01T10:59:59Z"), Err("stale"));
        assert_eq!(check_at("2026-01-01T12:04:00Z"), Ok(None));
        assert_eq!(check_at("2026-01-01T12:06:00Z"), Err("from-future"));
    }

    #[test]
    fn failed_dry_run_and_self_caused_calls_are_ignored() {
        let policy = Policy::builtin().unwrap_or_else(|e| panic!("{e}"));
        let t = "2026-01-01T11:59:00Z";
        let failed = check(
            Function::TagEnforcer,
            &event(t, json!({"errorCode": "Client.UnauthorizedOperation"})),
            &policy,
            now(),
        );
        assert!(matches!(failed, Ok(Some(Ignored::FailedCall { .. }))), "{failed:?}");
        let dry = check(
            Function::TagEnforcer,
            &event(t, json!({"errorCode": "Client.DryRunOperation"})),
            &policy,
            now(),
        );
        assert_eq!(dry, Ok(Some(Ignored::DryRun)));
        // An agent's failed calls count against its budget: probing is runaway behaviour too.
        let probe = check(
            Function::AgentQuarantine,
            &event(t, json!({"errorCode": "AccessDenied"})),
            &policy,
            now(),
        );
        assert_eq!(probe, Ok(None));
        let own = json!({"userIdentity": {"type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/guardrail-tag-enforcer/anything",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/guardrail-tag-enforcer"}}}});
        let own = check(Function::TagEnforcer, &event(t, own), &policy, now());
        assert!(matches!(own, Ok(Some(Ignored::SelfCaused { .. }))), "{own:?}");
        // A session *named* like Guardrail is not Guardrail: only the role counts.
        let imposter = json!({"userIdentity": {"type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/agent/guardrail-tag-enforcer",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/agent"}}}});
        assert_eq!(
            check(Function::TagEnforcer, &event(t, imposter), &policy, now()),
            Ok(None)
        );
    }
}
