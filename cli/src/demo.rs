//! `guardrail demo`: a local AWS emulator, an organization, and the sample events of `events/`
//! replayed through the functions' handler code (the same pipeline the Lambda binaries run),
//! narrated.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{Duration, Utc};
use guardrail::alert::Alert;
use guardrail::lambda::AwsPipeline;
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::agents::{agent_role, finding, role_snapshot};
use guardrail_tests::events::{ec2_tags, event_id, fresh, launch, launch_event, load};
use guardrail_tests::{World, invocation};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("guardrail demo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("guardrail demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one event through the tag enforcer and says what became of it.
async fn replay(pipeline: &AwsPipeline, event: Value) -> Result<(), String> {
    let report = pipeline.handle(event, &invocation()).await;
    for e in &report.events {
        let line = match &e.outcome {
            Outcome::Applied { actions } if actions.len() > 2 => {
                format!(
                    "applied {} actions:\n      - {}",
                    actions.len(),
                    actions.join("\n      - ")
                )
            }
            Outcome::Applied { actions } => format!("applied: {}", actions.join("; ")),
            Outcome::Detected { violations } => {
                format!("detected {violations} violation(s), changed nothing")
            }
            Outcome::Waived { resources } => {
                format!("{resources} resource(s) left alone under a waiver, recorded in the ledger")
            }
            Outcome::Pending { approval } => {
                format!("waiting for a person: `guardrail approve {approval}` applies it")
            }
            Outcome::Duplicate { summary } => {
                format!("duplicate, nothing done (first delivery: {summary})")
            }
            Outcome::Ignored { reason } => format!("nothing to do, because {reason}"),
            Outcome::Rejected { code, reason } => format!("rejected ({code}): {reason}"),
            Outcome::InProgress => "another delivery is handling it".to_string(),
            Outcome::Failed { error, .. } => format!("FAILED: {error}"),
            Outcome::Continued { done, total } => format!("sweep: {done} of {total} accounts, continued"),
            Outcome::Swept { summary } => summary.clone(),
        };
        println!("   {}: {line}", pipeline.function);
    }
    match report.error {
        Some(e) => Err(format!("the demo expected no failures: {e}")),
        None => Ok(()),
    }
}

fn show_tags(tags: &BTreeMap<String, String>) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("  ")
}

async fn demo() -> Result<(), String> {
    let world = World::start().await;
    println!(
        "Guardrail demo: a local AWS emulator (moto) at {}; nothing leaves this machine.",
        world.emulator.endpoint
    );
    let policy = Policy::builtin().map_err(|e| e.to_string())?;
    println!();
    println!("Organization (policy: infra/policy.toml)");
    println!("   {:<9} {:<14} environment and tag rule mode", "OU", "account");
    for (ou, account) in &world.org.accounts {
        let env = policy
            .environment_for_ou(ou)
            .map(|e| format!("{} (tags: {})", e.name, e.mode(guardrail::policy::Rule::Tags).name()))
            .unwrap_or_else(|| "none: the policy names no such OU".into());
        println!("   {ou:<9} {account:<14} {env}");
    }
    let pipeline = world.pipeline(Function::TagEnforcer, policy);
    let sample = "tag-enforcer/run-instances.json";
    let mut steps = 0;
    let mut step = |text: &str| {
        steps += 1;
        println!();
        println!("{steps}. {text}");
    };

    let dev = world.org.account("dev").to_string();
    let dev_config = world.emulator.config_as(&dev).await;
    step(
        "An agent in the dev account launches an instance and labels it Environment=prod,\n   which would win it the access an ABAC policy grants to prod resources.",
    );
    let tags = [("Name", "build-cache"), ("Environment", "prod")];
    let launched = launch(&dev_config, &tags).await;
    let instance = launched.instance.clone();
    let first = launch_event(&dev, &[&launched], &tags);
    println!("   event: events/{sample}, re-aimed at account {dev} and instance {instance}");
    replay(&pipeline, first.clone()).await?;
    println!("   tags now: {}", show_tags(&ec2_tags(&dev_config, &instance).await));

    step("EventBridge delivers the same event again (it delivers at least once).");
    replay(&pipeline, first.clone()).await?;

    step("The agent tries again later: it relabels the instance Environment=prod with CreateTags.");
    aws_sdk_ec2::Client::new(&dev_config)
        .create_tags()
        .resources(&instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("Environment")
                .value("prod")
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("CreateTags: {e}"))?;
    let mut relabel = fresh(load("tag-enforcer/create-tags.json"), &dev);
    relabel["detail"]["requestParameters"]["resourcesSet"]["items"][0]["resourceId"] = instance.clone().into();
    println!("   event: events/tag-enforcer/create-tags.json");
    replay(&pipeline, relabel).await?;
    println!("   tags now: {}", show_tags(&ec2_tags(&dev_config, &instance).await));

    step(
        "The agent creates an IAM role named build-helper; the demo policy adds a naming convention\n   for roles (naming.resources \"iam:role\" = \"^{env}-[a-z0-9-]{3,48}$\"), and role names cannot change.",
    );
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    aws_sdk_iam::Client::new(&dev_config)
        .create_role()
        .role_name("build-helper")
        .assume_role_policy_document(trust)
        .send()
        .await
        .map_err(|e| format!("CreateRole: {e}"))?;
    let naming = Policy::from_toml(
        &guardrail::policy::BUILTIN_POLICY.replacen(
            "[environments.prod]",
            "[naming.resources]\n\"iam:role\" = \"^{env}-[a-z0-9-]{3,48}$\"\n\n[environments.prod]",
            1,
        ),
        "demo policy",
    )
    .map_err(|e| e.to_string())?;
    let named = world.pipeline(Function::TagEnforcer, naming);
    println!("   event: events/tag-enforcer/create-role.json");
    replay(&named, fresh(load("tag-enforcer/create-role.json"), &dev)).await?;

    let agents = world.org.account("agents").to_string();
    let agents_config = world.emulator.config_as(&agents).await;
    step("An agent in the agents account launches an instance with no tags at all.");
    let bare_launch = launch(&agents_config, &[]).await;
    let bare = bare_launch.instance.clone();
    replay(&pipeline, launch_event(&agents, &[&bare_launch], &[])).await?;
    println!("   tags now: {}", show_tags(&ec2_tags(&agents_config, &bare).await));

    step("The same agent tries a dry run first (errorCode Client.DryRunOperation).");
    let mut dry = launch_event(&agents, &[&bare_launch], &[]);
    dry["detail"]["errorCode"] = "Client.DryRunOperation".into();
    replay(&pipeline, dry).await?;

    let sandbox = world.org.account("sandbox").to_string();
    step("Someone launches an instance in the sandbox OU, which no environment names.");
    let loose = launch(&world.emulator.config_as(&sandbox).await, &[]).await;
    replay(&pipeline, launch_event(&sandbox, &[&loose], &[])).await?;

    step("Someone replays step 1's event two hours later, with a new id.");
    let mut old = first.clone();
    old["detail"]["eventID"] = event_id().into();
    old["detail"]["eventTime"] = (Utc::now() - Duration::hours(2)).to_rfc3339().into();
    replay(&pipeline, old).await?;

    step("Organizations creates a new account, dev-payments, in the root of the organization.");
    let account = guardrail_tests::world::create_account(&world.config, "dev-payments").await;
    let member = world.emulator.config_as(&account).await;
    guardrail_tests::events::furnish_default_vpc(&member).await;
    let created = guardrail_tests::events::with_created_account(
        fresh(
            load("account-baseline/create-account-result.json"),
            guardrail_tests::emulator::MANAGEMENT_ACCOUNT,
        ),
        &account,
        "dev-payments",
    );
    println!("   event: events/account-baseline/create-account-result.json, re-aimed at account {account}");
    let baseline = world.pipeline(Function::AccountBaseline, Policy::builtin().map_err(|e| e.to_string())?);
    let calls = world.emulator.calls().len();
    replay(&baseline, created.clone()).await?;
    println!(
        "   {} AWS calls: every setting read first, then only what differed written",
        world.emulator.calls_since(calls).len()
    );

    step("Organizations' event arrives again.");
    replay(&baseline, created).await?;

    step(
        "GuardDuty reports that the credentials of agent-runner, an agent role in the agents account,\n   are being used from outside AWS (severity 8).",
    );
    agent_role(&agents_config, "agent-runner", "/agents/", &[("team", "ml")]).await;
    let show_role = |s: &guardrail_tests::agents::Snapshot| {
        let tags: BTreeMap<String, String> = s.tags.clone();
        format!("inline policies {:?}; tags {}", s.inline_policies, show_tags(&tags))
    };
    println!(
        "   role before: {}",
        show_role(&role_snapshot(&agents_config, "agent-runner").await)
    );
    let quarantine = world.pipeline(Function::AgentQuarantine, Policy::builtin().map_err(|e| e.to_string())?);
    let exfiltration = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS";
    println!("   event: events/agent-quarantine/finding-credential-exfiltration.json, re-aimed at account {agents}");
    replay(
        &quarantine,
        finding(&agents, "AssumedRole", "agent-runner", exfiltration, 8.0),
    )
    .await?;
    println!(
        "   role now:    {}",
        show_role(&role_snapshot(&agents_config, "agent-runner").await)
    );

    step("After looking into it, the on-call engineer releases the role with the command the alert gave:");
    let release = [
        "release",
        "--account",
        agents.as_str(),
        "--role",
        "agent-runner",
        "--reason",
        "stolen session expired; instance rebuilt",
    ];
    println!(
        "   $ guardrail release --account {agents} --role agent-runner --reason \"{}\"",
        release[6]
    );
    cli(&world, &release)?;
    println!(
        "   role now:    {}",
        show_role(&role_snapshot(&agents_config, "agent-runner").await)
    );

    let prod = world.org.account("prod").to_string();
    let prod_config = world.emulator.config_as(&prod).await;
    step(
        "GuardDuty reports anomalous behaviour of agent-payments, an agent role in the prod account.\n   The policy runs quarantine in enforce there, but `approval = [\"quarantine\"]`: a person decides.",
    );
    agent_role(&prod_config, "agent-payments", "/agents/", &[("team", "payments")]).await;
    replay(
        &quarantine,
        finding(
            &prod,
            "AssumedRole",
            "agent-payments",
            "Discovery:IAMUser/AnomalousBehavior",
            5.0,
        ),
    )
    .await?;
    println!(
        "   role now:    {}",
        show_role(&role_snapshot(&prod_config, "agent-payments").await)
    );
    let waiting = guardrail::aws::ApprovalTable::new(&world.config, &world.stack.table)
        .pending(Utc::now())
        .await
        .map_err(|e| format!("approvals: {e}"))?;
    let Some(approval) = waiting.first() else {
        return Err("the demo expected an approval waiting for a person".into());
    };

    step("The on-call engineer checks it and approves it with the command the alert gave:");
    let approve = [
        "approve",
        approval.id.as_str(),
        "--reason",
        "INC-1207: agent looping on payouts API",
    ];
    println!("   $ guardrail approve {} --reason \"{}\"", approve[1], approve[3]);
    cli(&world, &approve)?;
    println!(
        "   role now:    {}",
        show_role(&role_snapshot(&prod_config, "agent-payments").await)
    );

    println!();
    let alerts = world.alerts().await;
    println!(
        "Alerts published to SNS: {} (as an SQS subscriber received them)",
        alerts.len()
    );
    for a in &alerts {
        println!("   {}", a.subject);
        let attributes: Vec<String> = a.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("      attributes for filter policies: {}", attributes.join(" "));
    }
    // A tag fix, the naming violation, and the new account's baseline, as people read them.
    let naming_alert = alerts.iter().find(|a| a.body["why"].to_string().contains("naming"));
    let with_action = |action: &str| {
        alerts
            .iter()
            .find(|a| a.attributes.get("action").is_some_and(|x| x == action))
    };
    let shown = [
        ("first", alerts.first()),
        ("naming", naming_alert),
        ("baseline", with_action("baselined")),
        ("quarantine", with_action("quarantined")),
        ("approval", with_action("pending")),
    ];
    for (which, received) in shown {
        let Some(received) = received else { continue };
        let alert: Alert = serde_json::from_value(received.body.clone()).map_err(|e| format!("alert JSON: {e}"))?;
        println!();
        println!("The {which} alert as an email subscriber reads it:");
        for line in alert.text().lines() {
            println!("   | {line}");
        }
    }
    println!();
    println!(
        "AWS calls the emulator answered during the demo: {} (setup included).",
        world.emulator.calls().len()
    );
    println!("The emulator stops now. `guardrail plan FILE --env dev --any-age` plans any event offline;");
    println!("`guardrail baseline --account ID --dry-run` shows an existing account's baseline;");
    println!("`guardrail release --account ID --role NAME --reason TEXT` ends a quarantine;");
    println!("`guardrail approvals` lists what waits for a person, `guardrail audit` what Guardrail did.");
    Ok(())
}

/// Runs this CLI against the demo's world, as an operator would, and shows its output.
fn cli(world: &World, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .map_err(|e| format!("guardrail {}: {e}", args[0]))?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("   | {line}");
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "guardrail {} failed: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
