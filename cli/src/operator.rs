//! A person's credentials for the commands that act like account-baseline (`baseline`,
//! `sweep`): in the management account they make Organizations' calls themselves, since
//! `baseline.management_role` trusts only account-baseline's execution role (README, Deploy
//! step 3) and a deployed policy names it.

use std::sync::Arc;

use guardrail::policy::Policy;

/// `policy` as this shell runs it: without the management role when these credentials are the
/// management account's (which needs no role to call Organizations).
pub async fn policy(sdk: &guardrail::aws::SdkConfig, policy: Arc<Policy>) -> Arc<Policy> {
    if policy.baseline.management_role.is_none() {
        return policy;
    }
    let me = aws_sdk_sts::Client::new(sdk)
        .get_caller_identity()
        .send()
        .await
        .ok()
        .and_then(|m| m.account().map(str::to_string));
    let management = aws_sdk_organizations::Client::new(sdk)
        .describe_organization()
        .send()
        .await
        .ok()
        .and_then(|o| o.organization().and_then(|o| o.master_account_id().map(str::to_string)));
    match (me, management) {
        (Some(me), Some(management)) if me == management => {
            eprintln!(
                "in the management account: Organizations' calls use these credentials, not baseline.management_role (it trusts only account-baseline)"
            );
            let mut own = (*policy).clone();
            own.baseline.management_role = None;
            Arc::new(own)
        }
        _ => policy,
    }
}
