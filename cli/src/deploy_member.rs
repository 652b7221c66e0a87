//! `guardrail deploy-member` (what `make deploy-member` runs): the member accounts' StackSets,
//! `guardrail-member-roles` (us-east-1: IAM is global) and `guardrail-forwarding` (every policy
//! Region), created or brought up to date, with stack instances added where an OU or Region has
//! none. Run twice, the second run changes nothing. Runs from the management account or, with
//! `--call-as DELEGATED_ADMIN`, a StackSets delegated administrator.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::DisplayErrorContext;
use aws_sdk_cloudformation::types::{
    AutoDeployment, CallAs, Capability, ConcurrencyMode, DeploymentTargets, Parameter, RegionConcurrencyType,
    StackSetOperationPreferences, StackSetOperationStatus,
};
use serde::Serialize;

use crate::{Format, unusable};

/// IAM and Organizations send their CloudTrail events to us-east-1's default bus only
/// (CloudTrail User Guide, "Global service events"): forwarding must run there.
const GLOBAL_EVENTS_REGION: &str = "us-east-1";

#[derive(clap::Args)]
pub struct Args {
    /// The OUs (or the root, r-xxxx) whose accounts get the member stacks, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    ous: Vec<String>,
    /// The security account (Guardrail's stack).
    #[arg(long)]
    security_account: String,
    /// The central bus (the stack's BusArn output).
    #[arg(long)]
    bus_arn: String,
    /// The policy's Regions (baseline.regions); us-east-1 must be one of them.
    #[arg(long, value_delimiter = ',', num_args = 1.., required = true)]
    regions: Vec<String>,
    /// A role of the security account allowed to release quarantines and approve plans.
    #[arg(long, default_value = "")]
    incident_response_role: String,
    /// A role of the security account allowed to run `guardrail sweep --rules tags`.
    #[arg(long, default_value = "")]
    sweep_operator_role: String,
    /// Forward every role's and user's calls (with quarantine.rate.tagged_agents = true only).
    #[arg(long)]
    count_tagged_agents: bool,
    /// Forward agents' read-only calls too (make deploy's COUNT_READ_ONLY_CALLS=true).
    #[arg(long)]
    count_read_only_calls: bool,
    /// SELF from the management account, DELEGATED_ADMIN from a StackSets delegated administrator.
    #[arg(long, value_parser = ["SELF", "DELEGATED_ADMIN"], default_value = "SELF")]
    call_as: String,
    /// Accounts per Region that may fail before an operation stops, in percent: one bad account
    /// does not hold up the rest.
    #[arg(long, default_value_t = 10)]
    failure_tolerance_percentage: i32,
    /// Accounts per Region deployed at once, in percent.
    #[arg(long, default_value_t = 25)]
    max_concurrent_percentage: i32,
    /// Where member-roles.yaml and forwarding.yaml are.
    #[arg(long, default_value = "infra")]
    templates: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One StackSet's outcome.
#[derive(Debug, Serialize)]
struct Row {
    stack_set: String,
    /// created, updated or unchanged.
    stack_set_change: &'static str,
    /// Where stack instances were added: OU/Region.
    instances_added: Vec<String>,
    /// The last operation's status (SUCCEEDED, FAILED, ...), or "none" when nothing ran.
    operation: String,
}

/// One StackSet as it should be.
struct Wanted {
    name: &'static str,
    template: String,
    parameters: Vec<(&'static str, String)>,
    regions: Vec<String>,
}

pub fn run(args: &Args) -> ExitCode {
    if let Err(why) = validate(args) {
        return unusable("deploy-member", why);
    }
    let read = |file: &str| std::fs::read_to_string(args.templates.join(file));
    let (roles, forwarding) = match (read("member-roles.yaml"), read("forwarding.yaml")) {
        (Ok(r), Ok(f)) => (r, f),
        (Err(e), _) | (_, Err(e)) => {
            return unusable(
                "deploy-member",
                format!(
                    "{}: {e} (run it from the checkout, or pass --templates)",
                    args.templates.display()
                ),
            );
        }
    };
    let wanted = [
        Wanted {
            name: "guardrail-member-roles",
            template: roles,
            parameters: vec![
                ("SecurityAccountId", args.security_account.clone()),
                ("IncidentResponseRoleName", args.incident_response_role.clone()),
                ("SweepOperatorRoleName", args.sweep_operator_role.clone()),
            ],
            regions: vec![GLOBAL_EVENTS_REGION.to_string()],
        },
        Wanted {
            name: "guardrail-forwarding",
            template: forwarding,
            parameters: vec![
                ("CentralBusArn", args.bus_arn.clone()),
                ("CountTaggedAgents", args.count_tagged_agents.to_string()),
                ("CountReadOnlyCalls", args.count_read_only_calls.to_string()),
                // GuardDuty's findings in the security account's other Regions cross too.
                ("SecurityAccountId", args.security_account.clone()),
                ("CentralRegion", bus_region(&args.bus_arn).to_string()),
            ],
            regions: args.regions.clone(),
        },
    ];
    let runtime = match crate::runtime("deploy-member") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let cfn = Client::new(&sdk);
        let mut rows = Vec::new();
        for w in &wanted {
            eprintln!("deploy-member: {}", w.name);
            match deploy(&cfn, args, w).await {
                Ok(row) => rows.push(row),
                Err(e) => {
                    print(args.format, &rows);
                    return unusable(
                        "deploy-member",
                        format!(
                            "{}: {e}\n(fix the cause and run it again: what is done stays done)",
                            w.name
                        ),
                    );
                }
            }
        }
        print(args.format, &rows);
        if rows.iter().all(|r| r.operation == "none" || r.operation == "SUCCEEDED") {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    })
}

fn validate(args: &Args) -> Result<(), String> {
    if !args.regions.iter().any(|r| r == GLOBAL_EVENTS_REGION) {
        return Err(format!(
            "--regions {} lacks {GLOBAL_EVENTS_REGION}: IAM and Organizations events reach only us-east-1's bus, so without it no role or user creation is ever seen; add it",
            args.regions.join(",")
        ));
    }
    if let Some(r) = args.regions.iter().find(|r| {
        !r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || r.is_empty()
    }) {
        return Err(format!("--regions: {r:?} is not a Region name (us-west-2)"));
    }
    if guardrail::ids::AccountId::parse(&args.security_account).is_none() {
        return Err(format!(
            "--security-account {:?} is not a 12-digit account id",
            args.security_account
        ));
    }
    if !args.bus_arn.starts_with("arn:") || !args.bus_arn.contains(":event-bus/") {
        return Err(format!(
            "--bus-arn {:?} is not an event bus ARN (the stack's BusArn output)",
            args.bus_arn
        ));
    }
    if let Some(ou) = args.ous.iter().find(|o| !(o.starts_with("r-") || o.starts_with("ou-"))) {
        return Err(format!("--ous: {ou:?} is not an OU id (ou-...) or the root (r-...)"));
    }
    for p in [args.failure_tolerance_percentage, args.max_concurrent_percentage] {
        if !(0..=100).contains(&p) {
            return Err(format!("{p} is not a percentage"));
        }
    }
    Ok(())
}

/// The Region of an event bus ARN (`arn:aws:events:REGION:ACCOUNT:event-bus/NAME`).
fn bus_region(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap_or_default()
}

fn call_as(args: &Args) -> CallAs {
    CallAs::from(args.call_as.as_str())
}

/// How StackSets roll out: Regions in parallel, a share of accounts at once, and a failure
/// tolerance that lets the rest go on past one bad account (CloudFormation API Reference,
/// StackSetOperationPreferences; its defaults are one account at a time, stopping at the first
/// failure).
fn preferences(args: &Args) -> StackSetOperationPreferences {
    StackSetOperationPreferences::builder()
        .region_concurrency_type(RegionConcurrencyType::Parallel)
        .failure_tolerance_percentage(args.failure_tolerance_percentage)
        .max_concurrent_percentage(args.max_concurrent_percentage)
        .concurrency_mode(ConcurrencyMode::SoftFailureTolerance)
        .build()
}

async fn deploy(cfn: &Client, args: &Args, w: &Wanted) -> Result<Row, String> {
    let parameters: Vec<Parameter> = w
        .parameters
        .iter()
        .map(|(k, v)| Parameter::builder().parameter_key(*k).parameter_value(v).build())
        .collect();
    let existing = cfn
        .describe_stack_set()
        .stack_set_name(w.name)
        .call_as(call_as(args))
        .send()
        .await;
    let mut operation = None;
    // The last operation's final status.
    let mut ended: Option<StackSetOperationStatus> = None;
    let change = match existing {
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_stack_set_not_found_exception()) =>
        {
            cfn.create_stack_set()
                .stack_set_name(w.name)
                .template_body(&w.template)
                .set_parameters(Some(parameters.clone()))
                .permission_model(aws_sdk_cloudformation::types::PermissionModels::ServiceManaged)
                .auto_deployment(
                    AutoDeployment::builder()
                        .enabled(true)
                        .retain_stacks_on_account_removal(false)
                        .build(),
                )
                .capabilities(Capability::CapabilityNamedIam)
                .call_as(call_as(args))
                .send()
                .await
                .map_err(|e| format!("CreateStackSet: {}", DisplayErrorContext(e)))?;
            "created"
        }
        Err(e) => return Err(format!("DescribeStackSet: {}", DisplayErrorContext(e))),
        Ok(found) => {
            let set = found.stack_set();
            let current: BTreeSet<(String, String)> = set
                .map(|s| s.parameters())
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    (
                        p.parameter_key().unwrap_or_default().to_string(),
                        p.parameter_value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            let wanted: BTreeSet<(String, String)> =
                w.parameters.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            if set.and_then(|s| s.template_body()) == Some(w.template.as_str()) && current == wanted {
                "unchanged"
            } else {
                let updated = cfn
                    .update_stack_set()
                    .stack_set_name(w.name)
                    .template_body(&w.template)
                    .set_parameters(Some(parameters.clone()))
                    .capabilities(Capability::CapabilityNamedIam)
                    .operation_preferences(preferences(args))
                    .call_as(call_as(args))
                    .send()
                    .await
                    .map_err(|e| format!("UpdateStackSet: {}", DisplayErrorContext(e)))?;
                operation = updated.operation_id().map(str::to_string);
                "updated"
            }
        }
    };
    if let Some(id) = &operation {
        ended = Some(wait(cfn, &call_as(args), w.name, id).await?);
    }
    // Instances are added where an OU given has none in a Region (summaries name the OU they
    // were deployed to); where the summaries name no OU, a Region with instances counts as done.
    let mut have: Vec<(String, Option<String>)> = Vec::new();
    let mut pages = cfn
        .list_stack_instances()
        .stack_set_name(w.name)
        .call_as(call_as(args))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| format!("ListStackInstances: {}", DisplayErrorContext(e)))?;
        have.extend(page.summaries().iter().map(|s| {
            (
                s.region().unwrap_or_default().to_string(),
                s.organizational_unit_id().map(str::to_string),
            )
        }));
    }
    let mut added = BTreeSet::new();
    for ou in &args.ous {
        let regions = missing_regions(&have, ou, &w.regions);
        if regions.is_empty() {
            continue;
        }
        let created = cfn
            .create_stack_instances()
            .stack_set_name(w.name)
            .deployment_targets(DeploymentTargets::builder().organizational_unit_ids(ou).build())
            .set_regions(Some(regions.clone()))
            .operation_preferences(preferences(args))
            .call_as(call_as(args))
            .send()
            .await
            .map_err(|e| format!("CreateStackInstances: {}", DisplayErrorContext(e)))?;
        if let Some(id) = created.operation_id() {
            ended = Some(wait(cfn, &call_as(args), w.name, id).await?);
        }
        added.extend(regions.into_iter().map(|r| format!("{ou}/{r}")));
    }
    let status = ended.map_or_else(|| "none".to_string(), |s| s.as_str().to_string());
    Ok(Row {
        stack_set: w.name.to_string(),
        stack_set_change: change,
        instances_added: added.into_iter().collect(),
        operation: status,
    })
}

/// Waits for a StackSet operation to end, with a progress line every 15 s, and answers how it
/// ended (SUCCEEDED, FAILED, STOPPED).
pub(crate) async fn wait(
    cfn: &Client,
    call_as: &CallAs,
    name: &str,
    id: &str,
) -> Result<StackSetOperationStatus, String> {
    let started = std::time::Instant::now();
    loop {
        let status = cfn
            .describe_stack_set_operation()
            .stack_set_name(name)
            .operation_id(id)
            .call_as(call_as.clone())
            .send()
            .await
            .map_err(|e| format!("DescribeStackSetOperation: {}", DisplayErrorContext(e)))?
            .stack_set_operation()
            .and_then(|o| o.status())
            .cloned()
            .ok_or_else(|| format!("operation {id} has no status"))?;
        match status {
            StackSetOperationStatus::Running | StackSetOperationStatus::Queued | StackSetOperationStatus::Stopping => {
                eprintln!(
                    "{name}: operation {id} {} after {} s",
                    status.as_str(),
                    started.elapsed().as_secs()
                );
                tokio::time::sleep(Duration::from_secs(15)).await;
            }
            _ => return Ok(status),
        }
    }
}

/// The Regions of `wanted` where `ou` has no stack instance among `have` (Region, OU).
fn missing_regions(have: &[(String, Option<String>)], ou: &str, wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|region| {
            let here: Vec<&Option<String>> = have.iter().filter(|(r, _)| r == *region).map(|(_, o)| o).collect();
            here.is_empty() || (here.iter().any(|o| o.is_some()) && !here.iter().any(|o| o.as_deref() == Some(ou)))
        })
        .cloned()
        .collect()
}

fn print(format: Format, rows: &[Row]) {
    match format {
        Format::Json => println!("{}", serde_json::json!({ "stack_sets": rows })),
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.stack_set.clone(),
                        r.stack_set_change.to_string(),
                        if r.instances_added.is_empty() {
                            "-".into()
                        } else {
                            r.instances_added.join(" ")
                        },
                        r.operation.clone(),
                    ]
                })
                .collect();
            crate::steps::table(&["stack set", "change", "instances added in", "operation"], &cells);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_added_where_an_ou_has_none_in_a_region() {
        let wanted = ["us-east-1".to_string(), "us-west-2".to_string()];
        let have = vec![("us-east-1".to_string(), Some("ou-a".to_string()))];
        assert_eq!(missing_regions(&have, "ou-a", &wanted), ["us-west-2"]);
        assert_eq!(missing_regions(&have, "ou-b", &wanted), ["us-east-1", "us-west-2"]);
        // Summaries without the OU (an emulator): a Region with instances is done.
        let have = vec![("us-east-1".to_string(), None)];
        assert_eq!(missing_regions(&have, "ou-b", &wanted), ["us-west-2"]);
        assert!(missing_regions(&[], "ou-a", &[]).is_empty());
    }
}
