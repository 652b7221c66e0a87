//! No loops: every write Guardrail made in a run of all three functions comes back as the
//! CloudTrail event it would cause, under the identity that made it, and every function ignores
//! it without writing anything. The policy lists no `principals.guardrail`, so what is shown is
//! that Guardrail knows its own roles whatever the policy says.

use chrono::{SecondsFormat, Utc};
use guardrail::pipeline::Outcome;
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail_tests::agents::{agent_role, finding};
use guardrail_tests::emulator::MANAGEMENT_ACCOUNT;
use guardrail_tests::events::{event_id, fresh, furnish_default_vpc, launch, launch_event, load, with_created_account};
use guardrail_tests::world::create_account;
use guardrail_tests::{World, invocation, outcomes};
use serde_json::{Value, json};

/// Calls that change nothing, so CloudTrail's event for them is no one's trigger.
fn is_read(action: &str) -> bool {
    ["Get", "List", "Describe", "Head"]
        .iter()
        .any(|p| action.starts_with(p))
}

/// The identity CloudTrail records for a caller in the emulator's log, as deployed: an
/// assumed-role session (`sessionIssuer` the role), or for a function's own identity (an IAM
/// user `guardrail-<function>-lambda` here) the Lambda's session of its execution role. `None`
/// for callers that are not Guardrail: the test harness and unsigned calls.
fn identity(caller: &str) -> Option<(String, Value)> {
    if let Some(rest) = caller.strip_prefix("arn:aws:sts::") {
        let (account, path) = rest.split_once(":assumed-role/")?;
        let (role, session) = path.split_once('/')?;
        if session == "test-harness" {
            return None;
        }
        return Some((account.to_string(), assumed(account, role, session)));
    }
    let rest = caller.strip_prefix("arn:aws:iam::")?;
    let (account, user) = rest.split_once(":user/")?;
    let function = user.strip_prefix("guardrail-")?.strip_suffix("-lambda")?;
    Some((account.to_string(), assumed(account, user, function)))
}

fn assumed(account: &str, role: &str, session: &str) -> Value {
    json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLE:{session}"),
        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
        "accountId": account,
        "sessionContext": {"sessionIssuer": {
            "type": "Role",
            "arn": format!("arn:aws:iam::{account}:role/{role}"),
            "accountId": account,
            "userName": role
        }}
    })
}

/// The EventBridge event CloudTrail would send for one logged call.
fn echo(service: &str, action: &str, account: &str, user_identity: Value) -> Value {
    let source = match service {
        "s3control" => "s3",
        other => other,
    };
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "version": "0",
        "id": event_id(),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{source}"),
        "account": account,
        "time": now,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": user_identity,
            "eventTime": now,
            "eventSource": format!("{source}.amazonaws.com"),
            "eventName": action,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-sdk-rust",
            "requestParameters": {},
            "responseElements": null,
            "requestID": event_id(),
            "eventID": event_id(),
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": account
        }
    })
}

#[tokio::test]
async fn every_write_guardrail_makes_comes_back_ignored_and_writes_nothing() {
    let world = World::start().await;
    let policy = Policy::from_toml(
        &guardrail::policy::BUILTIN_POLICY.replace("guardrail = [\"arn:aws:iam::*:role/guardrail-*\"]", ""),
        "test",
    )
    .expect("policy");
    assert!(policy.guardrail_principals.is_empty());
    let pipelines: Vec<_> = Function::ALL
        .iter()
        .map(|f| (*f, world.pipeline(*f, policy.clone())))
        .collect();
    let pipeline = |f: Function| &pipelines.iter().find(|(g, _)| *g == f).expect("pipeline").1;

    // Work for every function: tags fixed on a launch and a relabelled role, an agent role
    // quarantined, a new account baselined.
    let dev = world.org.account("dev").to_string();
    let member = world.emulator.config_as(&dev).await;
    let launched = launch(&member, &[("Environment", "prod"), ("env", "prod")]).await;
    let tags = [("Environment", "prod"), ("env", "prod")];
    let mut events = vec![(Function::TagEnforcer, launch_event(&dev, &[&launched], &tags))];
    let agents = world.org.account("agents").to_string();
    let in_agents = world.emulator.config_as(&agents).await;
    agent_role(&in_agents, "agent-runner", "/agents/", &[("Environment", "agents")]).await;
    events.push((
        Function::AgentQuarantine,
        finding(
            &agents,
            "AssumedRole",
            "agent-runner",
            "Backdoor:IAMUser/AnomalousBehavior",
            8.0,
        ),
    ));
    let account = create_account(&world.config, "dev-payments").await;
    furnish_default_vpc(&world.emulator.config_as(&account).await).await;
    events.push((
        Function::AccountBaseline,
        with_created_account(
            fresh(load("account-baseline/create-account-result.json"), MANAGEMENT_ACCOUNT),
            &account,
            "dev-payments",
        ),
    ));
    for (function, event) in events {
        let report = pipeline(function).handle(event, &invocation()).await;
        assert!(
            matches!(outcomes(&report)[..], [Outcome::Applied { .. }]),
            "{function}: {report:?}"
        );
    }

    // Each write by a Guardrail identity, echoed to every function.
    let writes: Vec<(String, String, String, Value)> = world
        .emulator
        .call_lines()
        .iter()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (call, _status, caller) = (parts.next()?, parts.next()?, parts.next()?);
            let (service, action) = call.split_once('.')?;
            // REST calls are logged by method and path, which names no event.
            if is_read(action) || action.contains(':') {
                return None;
            }
            let (account, user_identity) = identity(caller)?;
            Some((service.to_string(), action.to_string(), account, user_identity))
        })
        .collect();
    let kinds: std::collections::BTreeSet<String> = writes.iter().map(|(s, a, _, _)| format!("{s}.{a}")).collect();
    for expected in [
        "ec2.CreateTags",
        "ec2.DeleteTags",
        "iam.PutRolePolicy",
        "iam.TagRole",
        "organizations.MoveAccount",
        "dynamodb.UpdateItem",
        "sns.Publish",
    ] {
        assert!(kinds.contains(expected), "no {expected} among {kinds:?}");
    }

    let mark = world.emulator.calls().len();
    let mut answers = Vec::new();
    for (service, action, account, user_identity) in &writes {
        let event = echo(service, action, account, user_identity.clone());
        for (function, p) in &pipelines {
            let report = p.handle(event.clone(), &invocation()).await;
            match &outcomes(&report)[..] {
                [Outcome::Ignored { reason }] => answers.push(reason.clone()),
                other => panic!("{function} acted on Guardrail's own {service}.{action}: {other:?}"),
            }
        }
    }
    let after: Vec<String> = world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| {
            c.split(' ')
                .next()
                .and_then(|c| c.split_once('.'))
                .is_some_and(|(_, a)| !is_read(a))
        })
        .collect();
    assert_eq!(after, Vec::<String>::new(), "writes caused by Guardrail's own events");
    assert!(
        world.alerts().await.len() == 3,
        "one alert per piece of work, none from the echoes"
    );
    // Calls by the member, execution and management roles are recognised as Guardrail's own;
    // those through the organization's bootstrap role are not, and are ignored by the rules.
    let own = answers.iter().filter(|r| r.starts_with("Guardrail's own role")).count();
    assert!(own * 2 > answers.len(), "{answers:#?}");
    println!(
        "figure: no loops: {} writes echoed to {} functions: {own} ignored as Guardrail's own, {} by the rules",
        writes.len(),
        pipelines.len(),
        answers.len() - own
    );
}
