//! The security account's checks (run them with its credentials): the central stack, Lambda's
//! concurrency quota,
//! the artifact bucket, who receives the alerts, the kill switch and the roles the SCPs spare.

use guardrail::pause::{Pause, Switch};

use super::{Context, Finding, Progress, Status};

/// The executions `ReservedConcurrency=on` reserves (infra/template.yaml: 5 + 50 + 20).
pub const RESERVED: i32 = 75;
/// What Lambda keeps unreserved (Lambda Developer Guide, "Configuring reserved concurrency").
const UNRESERVED_MINIMUM: i32 = 100;
const SECURITY: &str = "the security account";

pub async fn checks(c: &Context, p: &mut Progress) -> Vec<Finding> {
    let mut out = Vec::new();
    p.step("central stack");
    out.push(central_stack(c).await);
    p.step("Lambda concurrency quota");
    out.push(concurrency(c).await);
    if let Some(bucket) = &c.bucket {
        p.step("artifact bucket");
        out.push(artifact_bucket(c, bucket).await);
    }
    p.step("alert subscriptions");
    out.push(alerts(c).await);
    p.step("kill switch");
    out.push(kill_switch(c).await);
    p.step("roles the SCPs spare");
    out.push(exempt_roles(c).await);
    out
}

/// Guardrail's stack is deployed and settled: a failed or rolled-back one does less than it says.
async fn central_stack(c: &Context) -> Finding {
    const CHECK: &str = "central stack";
    let cfn = aws_sdk_cloudformation::Client::new(&c.sdk);
    let stack = match cfn.describe_stacks().stack_name(&c.stack).send().await {
        Ok(s) => s.stacks().first().cloned(),
        // CloudFormation answers a stack that does not exist with ValidationError.
        Err(e)
            if e.as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("does not exist")) =>
        {
            None
        }
        Err(e) => {
            return Finding::unreadable(
                CHECK,
                "cloudformation:DescribeStacks",
                aws_sdk_cloudformation::error::DisplayErrorContext(e),
                SECURITY,
            );
        }
    };
    let Some(stack) = stack else {
        return Finding::not(
            CHECK,
            Status::Missing,
            format!("no stack {} in {}", c.stack, c.region),
            "make deploy (README, Deploy step 2)",
        );
    };
    let status = stack.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default();
    match status.as_str() {
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" => {
            Finding::ok(CHECK, format!("{}: {status}", c.stack))
        }
        s if s.ends_with("_IN_PROGRESS") => Finding::not(
            CHECK,
            Status::Wrong,
            format!("{}: {status}", c.stack),
            "wait for it to end, then run doctor again",
        ),
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => Finding::not(
            CHECK,
            Status::Wrong,
            format!("{}: {status}: its first create failed", c.stack),
            format!(
                "aws cloudformation delete-stack --stack-name {}, then make deploy (README, Deploy step 2)",
                c.stack
            ),
        ),
        _ => Finding::not(
            CHECK,
            Status::Wrong,
            format!(
                "{}: {status}: {}",
                c.stack,
                stack.stack_status_reason().unwrap_or("see its events")
            ),
            format!(
                "fix the cause (aws cloudformation describe-stack-events --stack-name {}) and make deploy again",
                c.stack
            ),
        ),
    }
}

async fn concurrency(c: &Context) -> Finding {
    const CHECK: &str = "Lambda concurrency quota";
    let settings = match aws_sdk_lambda::Client::new(&c.sdk).get_account_settings().send().await {
        Ok(s) => s,
        Err(e) => {
            return Finding::unreadable(
                CHECK,
                "lambda:GetAccountSettings",
                aws_sdk_lambda::error::DisplayErrorContext(e),
                SECURITY,
            );
        }
    };
    let limit = settings
        .account_limit()
        .map(|l| l.concurrent_executions())
        .unwrap_or_default();
    concurrency_state(limit, c.reserve_concurrency)
}

fn concurrency_state(limit: i32, reserve: bool) -> Finding {
    const CHECK: &str = "Lambda concurrency quota";
    if !reserve {
        return Finding::ok(CHECK, format!("{limit}; RESERVED_CONCURRENCY=off reserves nothing"));
    }
    if limit >= RESERVED + UNRESERVED_MINIMUM {
        return Finding::ok(
            CHECK,
            format!("{limit}, room for the {RESERVED} reserved and {UNRESERVED_MINIMUM} unreserved"),
        );
    }
    Finding::not(
        CHECK,
        Status::Wrong,
        format!("{limit}: reserving {RESERVED} must leave {UNRESERVED_MINIMUM} unreserved, so the deploy would fail"),
        format!(
            "make deploy ... RESERVED_CONCURRENCY=off, or aws service-quotas request-service-quota-increase --service-code lambda --quota-code L-B99A9384 --desired-value {}",
            (RESERVED + UNRESERVED_MINIMUM).max(1000)
        ),
    )
}

/// `make deploy` packages into BUCKET, which must be named so the SCP guards it and be in the
/// functions' Region (CloudFormation reads Lambda code from a bucket of its own Region).
async fn artifact_bucket(c: &Context, bucket: &str) -> Finding {
    const CHECK: &str = "artifact bucket";
    if !bucket.starts_with("guardrail-artifacts-") {
        return Finding::not(
            CHECK,
            Status::Wrong,
            format!("{bucket} is not named guardrail-artifacts-*: the security account's SCP does not guard it"),
            format!(
                "aws s3 mb s3://guardrail-artifacts-{}-{} and make deploy BUCKET=that",
                c.security_account, c.region
            ),
        );
    }
    match aws_sdk_s3::Client::new(&c.sdk)
        .get_bucket_location()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(l) => {
            // An empty location constraint is us-east-1 (S3 API Reference, GetBucketLocation).
            let region = l
                .location_constraint()
                .map(|r| r.as_str())
                .filter(|r| !r.is_empty())
                .unwrap_or("us-east-1");
            if region == c.region {
                Finding::ok(CHECK, format!("{bucket} in {region}"))
            } else {
                Finding::not(
                    CHECK,
                    Status::Wrong,
                    format!("{bucket} is in {region}, the functions deploy to {}", c.region),
                    format!(
                        "aws s3 mb s3://guardrail-artifacts-{}-{} --region {}",
                        c.security_account, c.region, c.region
                    ),
                )
            }
        }
        Err(e) => Finding::not(
            CHECK,
            Status::Missing,
            format!(
                "s3:GetBucketLocation failed: {}",
                aws_sdk_s3::error::DisplayErrorContext(e)
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
            ),
            format!("aws s3 mb s3://{bucket} --region {}", c.region),
        ),
    }
}

/// Someone confirmed a subscription to the alert topic: prod approvals exist only in alerts.
async fn alerts(c: &Context) -> Finding {
    const CHECK: &str = "alert subscriptions";
    let sns = aws_sdk_sns::Client::new(&c.sdk);
    let mut topic = None;
    let mut pages = sns.list_topics().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                topic = topic.or(page
                    .topics()
                    .iter()
                    .filter_map(|t| t.topic_arn())
                    .find(|a| a.ends_with(":guardrail-alerts"))
                    .map(str::to_string));
            }
            Err(e) => {
                return Finding::unreadable(
                    CHECK,
                    "sns:ListTopics",
                    aws_sdk_sns::error::DisplayErrorContext(e),
                    SECURITY,
                );
            }
        }
    }
    let Some(topic) = topic else {
        return Finding::not(
            CHECK,
            Status::Missing,
            format!("no topic guardrail-alerts in {}", c.region),
            "make deploy (README, Deploy step 2)",
        );
    };
    let subscriptions = match sns.list_subscriptions_by_topic().topic_arn(&topic).send().await {
        Ok(s) => s.subscriptions().to_vec(),
        Err(e) => {
            return Finding::unreadable(
                CHECK,
                "sns:ListSubscriptionsByTopic",
                aws_sdk_sns::error::DisplayErrorContext(e),
                SECURITY,
            );
        }
    };
    let confirmed: Vec<String> = subscriptions
        .iter()
        .filter(|s| s.subscription_arn().is_some_and(|a| a.starts_with("arn:")))
        .map(|s| {
            format!(
                "{} {}",
                s.protocol().unwrap_or_default(),
                s.endpoint().unwrap_or_default()
            )
        })
        .collect();
    let pending = subscriptions.len() - confirmed.len();
    if !confirmed.is_empty() {
        let also = if pending > 0 {
            format!("; {pending} still to confirm")
        } else {
            String::new()
        };
        Finding::ok(CHECK, format!("{}{also}", confirmed.join(", ")))
    } else if pending > 0 {
        Finding::not(
            CHECK,
            Status::Wrong,
            format!("{pending} subscription(s), none confirmed"),
            "open the confirmation mail AWS sent and follow its link",
        )
    } else {
        Finding::not(
            CHECK,
            Status::Missing,
            "nobody receives alerts (prod approvals exist only there)",
            "make deploy ... ALERT_EMAIL=ops@example.com, then confirm the mail",
        )
    }
}

async fn kill_switch(c: &Context) -> Finding {
    const CHECK: &str = "kill switch";
    let Some(name) = c.policy.safety.pause_parameter.clone() else {
        return Finding::not(
            CHECK,
            Status::Missing,
            "the policy has none",
            "set safety.pause_parameter in the policy (README, Safety rails)",
        );
    };
    match guardrail::aws::SsmSwitch::new(&c.sdk, Some(name.clone())).state().await {
        Ok(Pause::Active) => Finding::ok(CHECK, format!("{name}: active")),
        Ok(Pause::Paused { detail }) => Finding::not(
            CHECK,
            Status::Wrong,
            format!("{name}: {detail}: every function only detects"),
            "guardrail resume, once what paused it is dealt with",
        ),
        Err(e) => Finding::unreadable(CHECK, "ssm:GetParameter", e, SECURITY),
    }
}

/// Once the SCPs are attached only `guardrail-*` and `break-glass-*` roles may change
/// Guardrail: a deployer of that name and a break-glass role must exist first (README, Deploy
/// step 5).
async fn exempt_roles(c: &Context) -> Finding {
    const CHECK: &str = "roles the SCPs spare";
    let iam = aws_sdk_iam::Client::new(&c.sdk);
    let mut names = Vec::new();
    let mut pages = iam.list_roles().into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => names.extend(page.roles().iter().map(|r| r.role_name().to_string())),
            Err(e) => {
                return Finding::unreadable(
                    CHECK,
                    "iam:ListRoles",
                    aws_sdk_iam::error::DisplayErrorContext(e),
                    SECURITY,
                );
            }
        }
    }
    exempt_state(&names)
}

fn exempt_state(names: &[String]) -> Finding {
    const CHECK: &str = "roles the SCPs spare";
    let deployers: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("guardrail-") && !guardrails_own(n))
        .collect();
    let break_glass: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("break-glass-"))
        .collect();
    let mut lacking = Vec::new();
    if deployers.is_empty() {
        lacking.push("a deployer role named guardrail-* (say guardrail-deployer)");
    }
    if break_glass.is_empty() {
        lacking.push("a break-glass-* role");
    }
    if lacking.is_empty() {
        return Finding::ok(CHECK, format!("{}; {}", deployers.join(", "), break_glass.join(", ")));
    }
    Finding::not(
        CHECK,
        Status::Missing,
        format!(
            "no {}: after the SCPs nobody else may deploy or change Guardrail",
            lacking.join(" and no ")
        ),
        "aws iam create-role --role-name guardrail-deployer (trusted by your pipeline or an MFA permission set), and a break-glass-* role, before attaching the SCPs",
    )
}

/// The roles Guardrail's own templates create (functions, forwarding, management, member roles).
fn guardrails_own(name: &str) -> bool {
    name.ends_with("-lambda")
        || name.starts_with("guardrail-forwarding-")
        || matches!(
            name,
            "guardrail-findings-to-bus"
                | "guardrail-management"
                | "guardrail-management-forwarding"
                | "guardrail-account-baseline"
                | "guardrail-tag-enforcer"
                | "guardrail-agent-quarantine"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_concurrency_needs_a_quota_that_leaves_a_hundred() {
        assert_eq!(concurrency_state(175, true).status, Status::Ok);
        let low = concurrency_state(174, true);
        assert_eq!(low.status, Status::Wrong);
        assert!(low.fix.unwrap_or_default().contains("RESERVED_CONCURRENCY=off"));
        assert_eq!(concurrency_state(10, false).status, Status::Ok);
    }

    #[test]
    fn guardrails_own_roles_are_not_a_deployer() {
        let own = [
            "guardrail-tag-enforcer-lambda",
            "guardrail-tag-enforcer",
            "guardrail-forwarding-us-east-1",
            "guardrail-findings-to-bus",
        ];
        let mut names: Vec<String> = own.map(String::from).to_vec();
        names.push("break-glass-admin".into());
        let found = exempt_state(&names);
        assert_eq!(found.status, Status::Missing);
        assert!(found.detail.contains("deployer"), "{}", found.detail);
        names.push("guardrail-deployer".into());
        assert_eq!(exempt_state(&names).status, Status::Ok);
    }
}
