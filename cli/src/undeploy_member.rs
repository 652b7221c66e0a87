//! `guardrail undeploy-member` (what `make undeploy-member` runs): the member accounts'
//! StackSets taken down, instances first (an instance's stack is deleted, not kept), then the
//! StackSets themselves. Run it after the SCPs are detached (README, Teardown): while attached,
//! they deny deleting the forwarding rules and member roles to everyone but the exempt roles.

use std::process::ExitCode;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::DisplayErrorContext;
use aws_sdk_cloudformation::types::{CallAs, DeploymentTargets, StackSetOperationStatus};
use serde::Serialize;

use crate::{Format, unusable};

/// The member StackSets `guardrail deploy-member` creates.
const STACK_SETS: [&str; 2] = ["guardrail-forwarding", "guardrail-member-roles"];

#[derive(clap::Args)]
pub struct Args {
    /// The OUs (or the root) deploy-member was given, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    ous: Vec<String>,
    /// The Regions deploy-member was given, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    regions: Vec<String>,
    /// SELF from the management account, DELEGATED_ADMIN from a StackSets delegated administrator.
    #[arg(long, value_parser = ["SELF", "DELEGATED_ADMIN"], default_value = "SELF")]
    call_as: String,
    /// Show what would be deleted and delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Serialize)]
struct Row {
    stack_set: String,
    /// Stack instances found (and, unless a dry run, deleted).
    instances: usize,
    /// deleted, would delete, or absent.
    outcome: &'static str,
}

pub fn run(args: &Args) -> ExitCode {
    let runtime = match crate::runtime("undeploy-member") {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let sdk = guardrail::aws::load().await;
        let cfn = Client::new(&sdk);
        let mut rows = Vec::new();
        for name in STACK_SETS {
            eprintln!("undeploy-member: {name}");
            match take_down(&cfn, args, name).await {
                Ok(row) => rows.push(row),
                Err(e) => {
                    print(args.format, &rows);
                    return unusable(
                        "undeploy-member",
                        format!("{name}: {e}\n(are the SCPs detached? README, Teardown; run it again once fixed)"),
                    );
                }
            }
        }
        print(args.format, &rows);
        ExitCode::SUCCESS
    })
}

async fn take_down(cfn: &Client, args: &Args, name: &str) -> Result<Row, String> {
    let call_as = CallAs::from(args.call_as.as_str());
    match cfn
        .describe_stack_set()
        .stack_set_name(name)
        .call_as(call_as.clone())
        .send()
        .await
    {
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_stack_set_not_found_exception()) =>
        {
            return Ok(Row {
                stack_set: name.to_string(),
                instances: 0,
                outcome: "absent",
            });
        }
        Err(e) => return Err(format!("DescribeStackSet: {}", DisplayErrorContext(e))),
        Ok(_) => {}
    }
    let mut regions = std::collections::BTreeSet::new();
    let mut instances = 0;
    let mut pages = cfn
        .list_stack_instances()
        .stack_set_name(name)
        .call_as(call_as.clone())
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for s in page
            .map_err(|e| format!("ListStackInstances: {}", DisplayErrorContext(e)))?
            .summaries()
        {
            instances += 1;
            regions.extend(s.region().map(str::to_string));
        }
    }
    // Every Region that has instances, and those the operator names (a Region whose instances
    // all failed to create still holds the StackSet).
    regions.extend(args.regions.iter().cloned());
    if args.dry_run {
        return Ok(Row {
            stack_set: name.to_string(),
            instances,
            outcome: "would delete",
        });
    }
    if instances > 0 {
        let operation = cfn
            .delete_stack_instances()
            .stack_set_name(name)
            .deployment_targets(
                DeploymentTargets::builder()
                    .set_organizational_unit_ids(Some(args.ous.clone()))
                    .build(),
            )
            .set_regions(Some(regions.into_iter().collect()))
            .retain_stacks(false)
            .call_as(call_as.clone())
            .send()
            .await
            .map_err(|e| format!("DeleteStackInstances: {}", DisplayErrorContext(e)))?;
        if let Some(id) = operation.operation_id() {
            let ended = crate::deploy_member::wait(cfn, &call_as, name, id).await?;
            if ended != StackSetOperationStatus::Succeeded {
                return Err(format!("deleting its instances ended {}", ended.as_str()));
            }
        }
    }
    cfn.delete_stack_set()
        .stack_set_name(name)
        .call_as(call_as)
        .send()
        .await
        .map_err(|e| format!("DeleteStackSet: {}", DisplayErrorContext(e)))?;
    Ok(Row {
        stack_set: name.to_string(),
        instances,
        outcome: "deleted",
    })
}

fn print(format: Format, rows: &[Row]) {
    match format {
        Format::Json => println!("{}", serde_json::json!({ "stack_sets": rows })),
        Format::Text => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| vec![r.stack_set.clone(), r.instances.to_string(), r.outcome.to_string()])
                .collect();
            crate::steps::table(&["stack set", "instances", "outcome"], &cells);
        }
    }
}
