//! account-baseline's scheduled sweep against the emulator: the seeded organization (a dev
//! account baselined and then drifted, prod and agents never baselined, sandbox in an OU no
//! environment names) swept in legs that hand over through Lambda's asynchronous `Invoke`,
//! which the emulator keeps and this test delivers as Lambda would.

use chrono::{Duration, Utc};
use guardrail::aws::{SweepTable, Taken};
use guardrail::pipeline::{Invocation, Outcome, Report};
use guardrail::policy::Policy;
use guardrail::rules::Function;
use guardrail::sweep::{INPUT_KEY, Progress, Request, Sweeper};
use guardrail_tests::World;
use guardrail_tests::agents::{agent_role, agent_user};
use guardrail_tests::emulator::MANAGEMENT_ACCOUNT;
use guardrail_tests::events::{disable_ebs_encryption, event_id};
use guardrail_tests::world::{create_account, create_table, execution_identity};
use serde_json::{Value, json};

/// The built-in policy, checking `parallel` accounts at a time.
fn policy(parallel: u32) -> Policy {
    let mut p = Policy::builtin().expect("built-in policy");
    // Quick enough for a test; the pacing itself is unit-tested.
    p.sweep.writes_per_second = 50;
    p.sweep.parallel_accounts = parallel;
    p
}

/// An invocation with `seconds` left before its time limit.
fn invocation(seconds: i64) -> Invocation {
    let now = Utc::now();
    Invocation {
        request_id: event_id(),
        now,
        deadline: now + Duration::seconds(seconds),
    }
}

/// A scheduled start, as EventBridge Scheduler sends it, with `extra` fields.
fn start(name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "time": Utc::now().to_rfc3339()});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    json!({ INPUT_KEY: body })
}

/// One leg: the input handled by the sweeper with `seconds` left.
async fn leg(sweeper: &Sweeper, input: &Value, seconds: i64) -> Report {
    let request = Request::from_input(input).expect("a sweep request");
    let report = sweeper.handle(request, &invocation(seconds)).await;
    assert_eq!(report.events.len(), 1, "{report:?}");
    report
}

fn outcome(report: &Report) -> &Outcome {
    &report.events[0].outcome
}

/// The follow-up invocation the last leg sent: exactly one, to account-baseline, by its
/// execution role.
fn follow_up(world: &World) -> Value {
    let mut kept = world.emulator.take_invocations();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let invocation = kept.remove(0);
    assert_eq!(invocation["function"], "guardrail-account-baseline");
    let caller = invocation["caller"].as_str().unwrap_or_default();
    assert!(
        caller.ends_with(&format!(":user/{}", execution_identity(Function::AccountBaseline))),
        "{caller}"
    );
    invocation["payload"].clone()
}

/// How often the account's EBS setting was read since `mark`: twice (two regions) per check.
fn checks_of(world: &World, mark: usize, account: &str) -> usize {
    world
        .emulator
        .calls_in(mark, account)
        .iter()
        .filter(|c| *c == "ec2.GetEbsEncryptionByDefault")
        .count()
        / 2
}

/// The sweep's record, as the table holds it.
async fn record(world: &World, id: &str) -> Progress {
    let item = world
        .item(&format!("sweep#account-baseline#{id}"))
        .await
        .unwrap_or_else(|| panic!("no record of {id}"));
    let text = item["progress"].as_s().expect("progress is a string");
    serde_json::from_str(text).expect("progress JSON")
}

/// dev baselined by a sweep of its own, then its EBS default encryption turned off in us-west-2.
async fn drifted_dev(world: &World, sweeper: &Sweeper) -> String {
    let dev = world.org.account("dev").to_string();
    let report = leg(sweeper, &start("dev-only", json!({"accounts": [dev]})), 60).await;
    assert!(matches!(outcome(&report), Outcome::Swept { .. }), "{report:?}");
    assert_eq!(world.alerts().await.len(), 1, "one summary for the dev-only sweep");
    disable_ebs_encryption(&world.emulator, &dev, "us-west-2").await;
    dev
}

#[tokio::test]
async fn a_sweep_in_legs_fixes_exactly_what_is_not_compliant_alerts_once_and_a_second_sweep_writes_nothing() {
    let world = World::start().await;
    let sweeper = world.sweeper(Function::AccountBaseline, policy(3));
    let dev = drifted_dev(&world, &sweeper).await;
    let [prod, agents, sandbox] = ["prod", "agents", "sandbox"].map(|ou| world.org.account(ou).to_string());
    // A closed account stays listed for 90 days; no role can be assumed in it.
    let closed = create_account(&world.config, "closed-app").await;
    aws_sdk_organizations::Client::new(&world.config)
        .close_account()
        .account_id(&closed)
        .send()
        .await
        .expect("CloseAccount");

    // Legs of one second: each checks one batch of three accounts at once, saves its place and
    // hands over.
    let mark = world.emulator.call_lines().len();
    let daily = start("daily", json!({}));
    let id = Request::from_input(&daily).expect("request").expect("valid").id();
    let report = leg(&sweeper, &daily, 1).await;
    assert_eq!(
        outcome(&report),
        &Outcome::Continued { done: 3, total: 4 },
        "{report:?}"
    );
    assert_eq!(record(&world, &id).await.next, 3);
    assert!(world.alerts().await.is_empty(), "no alert before the sweep ends");
    let input = follow_up(&world);
    assert_eq!(input, json!({ INPUT_KEY: {"continue": id} }));
    let report = leg(&sweeper, &input, 1).await;
    let Outcome::Swept { summary } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert_eq!(
        summary,
        "swept 4 account(s): 3 changed, 1 to review, 0 failed, 0 in place"
    );
    assert!(
        world.emulator.take_invocations().is_empty(),
        "the last leg hands over to nobody"
    );

    // Each account was checked once, in one leg, and exactly what was off was changed: dev's
    // one region, both regions of prod and agents; sandbox's OU is no environment's.
    for account in [&dev, &prod, &agents, &sandbox] {
        assert_eq!(checks_of(&world, mark, account), 1, "{account}");
    }
    assert_eq!(
        world.emulator.writes_in(mark, &dev),
        ["ec2.EnableEbsEncryptionByDefault"]
    );
    for account in [&prod, &agents] {
        let writes = world.emulator.writes_in(mark, account);
        assert_eq!(
            writes
                .iter()
                .filter(|c| *c == "ec2.EnableEbsEncryptionByDefault")
                .count(),
            2,
            "{account}: {writes:?}"
        );
    }
    assert_eq!(world.emulator.writes_in(mark, &sandbox), Vec::<String>::new());
    // The management account (where the emulator also runs Guardrail and the management role)
    // is never baselined: no setting of its own is written.
    let management: Vec<String> = world
        .emulator
        .writes_in(mark, MANAGEMENT_ACCOUNT)
        .into_iter()
        .filter(|c| ["ec2.", "iam.", "s3."].iter().any(|s| c.starts_with(s)))
        .collect();
    assert_eq!(management, Vec::<String>::new());

    // One summary for the whole sweep, with counts per account and rule.
    let alerts = world.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "{:?}",
        alerts.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
    let alert = &alerts[0];
    assert_eq!(alert.attributes["action"], "swept");
    assert_eq!(alert.attributes["severity"], "medium");
    assert_eq!(alert.attributes["event_id"], id);
    let why: Vec<&str> = alert.body["why"]
        .as_array()
        .expect("why")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(why.len(), 4, "{why:?}");
    assert!(
        why.iter()
            .any(|l| l.starts_with(&format!("{dev} ")) && l.contains("[dev]: baseline: 1 changed")),
        "{why:?}"
    );
    assert!(
        why.iter()
            .any(|l| l.starts_with(&format!("{sandbox} ")) && l.contains("need(s) a person")),
        "{why:?}"
    );
    let happened = alert.body["happened"].as_str().unwrap_or_default();
    assert!(
        happened.contains("4 account(s)") && happened.contains("in 2 invocation(s)"),
        "{happened}"
    );
    let notes = alert.body["notes"].to_string();
    assert!(
        notes.contains(&format!("management account {MANAGEMENT_ACCOUNT}")),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("account {closed} (closed-app) is closed or closing")),
        "{notes}"
    );
    assert_eq!(world.emulator.calls_in(mark, &closed), Vec::<String>::new());

    // The same scheduled run delivered again does nothing.
    let mark = world.emulator.call_lines().len();
    let report = leg(&sweeper, &daily, 60).await;
    assert!(matches!(outcome(&report), Outcome::Duplicate { .. }), "{report:?}");
    assert_eq!(
        world.emulator.calls_since(mark),
        ["dynamodb.UpdateItem"],
        "one look at the record"
    );
    assert!(world.alerts().await.is_empty());

    // The next day's sweep finds everything that can comply in place and writes nothing.
    let mark = world.emulator.call_lines().len();
    let report = leg(&sweeper, &start("daily-2", json!({})), 60).await;
    let Outcome::Swept { summary } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert_eq!(
        summary,
        "swept 4 account(s): 0 changed, 1 to review, 0 failed, 3 in place"
    );
    for account in [&dev, &prod, &agents, &sandbox] {
        assert_eq!(
            world.emulator.writes_in(mark, account),
            Vec::<String>::new(),
            "{account}"
        );
    }
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].attributes["severity"], "medium",
        "sandbox still needs a person"
    );
}

#[tokio::test]
async fn an_interrupted_sweep_resumes_where_it_stopped() {
    let world = World::start().await;
    let sweeper = world.sweeper(Function::AccountBaseline, policy(1));
    let ous = json!({"ous": ["prod", "dev"]});
    let [prod, dev] = ["prod", "dev"].map(|ou| world.org.account(ou).to_string());

    // The hand-over fails (Lambda's Invoke is down): the leg fails, so that Lambda retries it,
    // with its one account done and saved.
    world
        .emulator
        .inject_fault(json!({"service": "lambda", "action": "Invoke", "status": 503, "code": "ServiceException"}));
    let mark = world.emulator.call_lines().len();
    let input = start("nightly", ous);
    let id = Request::from_input(&input).expect("request").expect("valid").id();
    let report = leg(&sweeper, &input, 1).await;
    assert!(
        matches!(outcome(&report), Outcome::Failed { error_type, .. } if *error_type == "Guardrail.Transient"),
        "{report:?}"
    );
    assert!(report.error.is_some(), "the invocation fails, for Lambda to retry it");
    let saved = record(&world, &id).await;
    assert_eq!((saved.next, saved.accounts.len()), (1, 2));
    let first = saved.accounts[0].to_string();
    let second = saved.accounts[1].to_string();
    assert_eq!(
        [&first, &second]
            .map(|a| a.as_str())
            .iter()
            .filter(|a| [prod.as_str(), dev.as_str()].contains(a))
            .count(),
        2
    );
    assert_eq!(checks_of(&world, mark, &first), 1);
    assert_eq!(checks_of(&world, mark, &second), 0);
    assert!(
        world.alerts().await.is_empty(),
        "a transient failure is retried, not alerted"
    );

    // Lambda's retry of the same input carries on with the second account only.
    world.emulator.clear_faults();
    let mark = world.emulator.call_lines().len();
    let report = leg(&sweeper, &input, 60).await;
    assert!(matches!(outcome(&report), Outcome::Swept { .. }), "{report:?}");
    assert_eq!(
        checks_of(&world, mark, &first),
        0,
        "the account done before is not checked again"
    );
    assert_eq!(checks_of(&world, mark, &second), 1);
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    let happened = alerts[0].body["happened"].as_str().unwrap_or_default();
    assert!(
        happened.contains("2 account(s)") && happened.contains("in 2 invocation(s)"),
        "{happened}"
    );

    // While one invocation holds a sweep, another delivery of it stands back.
    let table = SweepTable::new(
        world.function_config(Function::AccountBaseline),
        &world.stack.table,
        Function::AccountBaseline,
    );
    let now = Utc::now();
    let held = table
        .take("other@2026-11-23T00:00:00Z", "a", now, now + Duration::seconds(60))
        .await;
    assert!(matches!(held, Ok(Taken::Missing)), "{held:?}");
    let mut progress = Progress::new("held@2026-11-23T00:00:00Z".into(), false, now, Vec::new());
    assert!(
        table
            .begin(&progress, "a", now + Duration::seconds(60))
            .await
            .expect("begin")
    );
    assert!(
        !table
            .begin(&progress, "b", now + Duration::seconds(60))
            .await
            .expect("begin")
    );
    let busy = table.take(&progress.id, "b", now, now + Duration::seconds(60)).await;
    assert!(matches!(busy, Ok(Taken::Busy)), "{busy:?}");
    progress.next = 0;
    assert!(
        !table
            .save(&progress, "b", guardrail::aws::Save::Keep)
            .await
            .expect("save"),
        "b does not hold it"
    );
    let later = now + Duration::seconds(61);
    let taken = table
        .take(&progress.id, "b", later, later + Duration::seconds(60))
        .await;
    assert!(
        matches!(taken, Ok(Taken::Held(_))),
        "a lease that ran out is taken over: {taken:?}"
    );
    assert!(
        !table
            .save(&progress, "a", guardrail::aws::Save::Keep)
            .await
            .expect("save"),
        "a lost it"
    );
}

#[tokio::test]
async fn unusable_sweep_requests_are_rejected_or_alerted_and_never_retried() {
    let world = World::start().await;
    let sweeper = world.sweeper(Function::AccountBaseline, policy(1));
    let mark = world.emulator.call_lines().len();

    // Stale: a scheduled run replayed the next day.
    let old = json!({ INPUT_KEY: {"name": "daily", "time": (Utc::now() - Duration::days(1)).to_rfc3339()} });
    let report = leg(&sweeper, &old, 60).await;
    assert!(
        matches!(outcome(&report), Outcome::Rejected { code: "stale", .. }),
        "{report:?}"
    );
    // Malformed: named with the reason.
    let report = sweeper
        .handle(
            Request::from_input(&json!({ INPUT_KEY: {"time": Utc::now().to_rfc3339(), "ou": ["dev"]} }))
                .expect("a sweep"),
            &invocation(60),
        )
        .await;
    let Outcome::Rejected { reason, .. } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(reason.contains("unknown key \"ou\""), "{reason}");
    assert_eq!(world.emulator.call_lines().len(), mark, "rejected before any call");

    // A follow-up for a sweep nobody recorded.
    let report = leg(
        &sweeper,
        &json!({ INPUT_KEY: {"continue": "ghost@2026-11-23T00:00:00Z"} }),
        60,
    )
    .await;
    let Outcome::Rejected { reason, .. } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert!(
        reason.contains("no sweep ghost@2026-11-23T00:00:00Z is recorded"),
        "{reason}"
    );

    // An OU the organization does not have: alerted once, not retried.
    let report = leg(&sweeper, &start("typo", json!({"ous": ["prdo"]})), 60).await;
    assert!(matches!(outcome(&report), Outcome::Failed { .. }), "{report:?}");
    assert!(report.error.is_none(), "a retry cannot fix the schedule's input");
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].attributes["severity"], "high");
    assert_eq!(alerts[0].attributes["action"], "failed");
    assert!(
        alerts[0].body["why"].to_string().contains("no OU named \\\"prdo\\\""),
        "{:?}",
        alerts[0].body
    );
    assert!(world.emulator.take_invocations().is_empty());
}

/// The tags of the resource `arn` as the account's Tagging API reads them now.
async fn tags_of(config: &aws_config::SdkConfig, arn: &str) -> std::collections::BTreeMap<String, String> {
    aws_sdk_resourcegroupstagging::Client::new(config)
        .get_resources()
        .resource_arn_list(arn)
        .send()
        .await
        .expect("GetResources")
        .resource_tag_mapping_list()
        .iter()
        .flat_map(|m| m.tags())
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn topic(config: &aws_config::SdkConfig, name: &str, tags: &[(&str, &str)]) -> String {
    let sns = aws_sdk_sns::Client::new(config);
    let arn = sns
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("topic ARN");
    let tags = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_sns::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("tag")
        })
        .collect();
    sns.tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(tags))
        .send()
        .await
        .expect("TagResource");
    arn
}

async fn bucket(config: &aws_config::SdkConfig, name: &str, tags: &[(&str, &str)]) -> String {
    let client = aws_sdk_resourcegroupstagging::Client::new(config);
    aws_sdk_s3::Client::new(config)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("CreateBucket");
    let arn = format!("arn:aws:s3:::{name}");
    client
        .tag_resources()
        .resource_arn_list(&arn)
        .set_tags(Some(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
        .send()
        .await
        .expect("TagResources");
    arn
}

#[tokio::test]
async fn a_tag_sweep_fixes_exactly_the_non_compliant_resources_alerts_once_and_a_second_sweep_writes_nothing() {
    let world = World::start().await;
    let [dev, prod, agents, sandbox] = ["dev", "prod", "agents", "sandbox"].map(|ou| world.org.account(ou).to_string());

    // dev: one compliant bucket; a topic labelled prod (an ABAC grab); an instance (with its
    // volume and interface) tagged with a misspelled key; a role nobody owns; a protected
    // role; and, in the second region, a table without Environment.
    let in_dev = world.emulator.config_as(&dev).await;
    let ok_bucket = bucket(&in_dev, "dev-reports", &[("Environment", "dev"), ("Owner", "alice")]).await;
    let grab = topic(&in_dev, "dev-alerts", &[("Environment", "prod"), ("Owner", "bob")]).await;
    let instance = guardrail_tests::events::run_instance(&in_dev, &[("env", "dev"), ("Owner", "carol")]).await;
    agent_role(&in_dev, "dev-builder", "/", &[("Environment", "dev")]).await;
    agent_role(&in_dev, "break-glass-oncall", "/", &[]).await;
    agent_user(&in_dev, "dev-ci", &[("Environment", "dev"), ("Owner", "ops")], 0).await;
    let in_dev_west = in_dev.to_builder().region(aws_config::Region::new("us-west-2")).build();
    let table = create_table(&in_dev_west, "dev-orders").await;
    aws_sdk_dynamodb::Client::new(&in_dev_west)
        .tag_resource()
        .resource_arn(&table)
        .tags(
            aws_sdk_dynamodb::types::Tag::builder()
                .key("Owner")
                .value("dan")
                .build()
                .expect("tag"),
        )
        .send()
        .await
        .expect("TagResource");

    // prod: a queue claiming dev (tagged through SQS's own call, as the sweep must write it).
    let in_prod = world.emulator.config_as(&prod).await;
    let queue_url = aws_sdk_sqs::Client::new(&in_prod)
        .create_queue()
        .queue_name("prod-jobs")
        .tags("Environment", "dev")
        .tags("Owner", "erin")
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("queue URL");
    // agents: compliant. sandbox: no environment's OU, so nothing there is touched.
    let in_agents = world.emulator.config_as(&agents).await;
    bucket(
        &in_agents,
        "agents-scratch",
        &[("Environment", "agents"), ("Owner", "bot")],
    )
    .await;
    let in_sandbox = world.emulator.config_as(&sandbox).await;
    let loose = bucket(&in_sandbox, "sandbox-anything", &[("Environment", "prod")]).await;

    // Legs of one second, two accounts at a time: two legs, handing over once.
    let sweeper = world.sweeper(Function::TagEnforcer, policy(2));
    let mark = world.emulator.call_lines().len();
    let daily = start("daily", json!({}));
    let id = Request::from_input(&daily).expect("request").expect("valid").id();
    let report = leg(&sweeper, &daily, 1).await;
    assert_eq!(
        outcome(&report),
        &Outcome::Continued { done: 2, total: 4 },
        "{report:?}"
    );
    let mut kept = world.emulator.take_invocations();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["function"], "guardrail-tag-enforcer");
    let report = leg(&sweeper, &kept.remove(0)["payload"], 1).await;
    let Outcome::Swept { summary } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert_eq!(
        summary,
        "swept 4 account(s): 2 changed, 1 to review, 0 failed, 1 in place"
    );

    // Exactly the non-compliant resources were written, each with the call its kind takes.
    let mut dev_writes = world.emulator.writes_in(mark, &dev);
    dev_writes.sort();
    assert_eq!(
        dev_writes,
        [
            "dynamodb.TagResource",
            "ec2.CreateTags",
            "ec2.DeleteTags",
            "sns.TagResource"
        ]
    );
    assert_eq!(world.emulator.writes_in(mark, &prod), ["sqs.TagQueue"]);
    for account in [&agents, &sandbox] {
        assert_eq!(
            world.emulator.writes_in(mark, account),
            Vec::<String>::new(),
            "{account}"
        );
    }
    assert_eq!(tags_of(&in_dev, &grab).await["Environment"], "dev");
    assert_eq!(tags_of(&in_dev, &ok_bucket).await.len(), 2);
    let instance_tags = guardrail_tests::events::ec2_tags(&in_dev, &instance).await;
    assert_eq!(
        (
            instance_tags.get("Environment").map(String::as_str),
            instance_tags.get("env")
        ),
        (Some("dev"), None),
        "{instance_tags:?}"
    );
    assert_eq!(tags_of(&in_dev_west, &table).await["Environment"], "dev");
    let queue_tags = aws_sdk_sqs::Client::new(&in_prod)
        .list_queue_tags()
        .queue_url(&queue_url)
        .send()
        .await
        .expect("ListQueueTags")
        .tags
        .unwrap_or_default();
    assert_eq!(queue_tags["Environment"], "prod");
    assert_eq!(tags_of(&in_sandbox, &loose).await["Environment"], "prod");
    let break_glass = aws_sdk_iam::Client::new(&in_dev)
        .list_role_tags()
        .role_name("break-glass-oncall")
        .send()
        .await
        .expect("ListRoleTags");
    assert!(break_glass.tags().is_empty(), "a protected role is never tagged");

    // The audit ledger holds each change, with the sweep as its event and the values it
    // replaced.
    let in_prod_ledger = world.ledger_of(&prod).await;
    assert_eq!(in_prod_ledger.len(), 1, "{in_prod_ledger:#?}");
    let queue = &in_prod_ledger[0];
    assert_eq!(
        (
            queue.outcome,
            queue.event.as_str(),
            queue.rule.as_str(),
            queue.function.as_str()
        ),
        (
            guardrail::ledger::Outcome::Applied,
            format!("sweep#{id}").as_str(),
            "tags",
            "tag-enforcer"
        )
    );
    assert_eq!(queue.before.get("Environment"), Some(&Some("dev".to_string())));
    assert_eq!(queue.after.get("Environment"), Some(&Some("prod".to_string())));
    let in_dev_ledger = world.ledger_of(&dev).await;
    let topic_entry = in_dev_ledger
        .iter()
        .find(|e| e.resource == grab)
        .unwrap_or_else(|| panic!("{in_dev_ledger:#?}"));
    assert_eq!(topic_entry.before.get("Environment"), Some(&Some("prod".to_string())));
    assert!(world.ledger_of(&sandbox).await.is_empty() && world.ledger_of(&agents).await.is_empty());

    // One summary, the tag rule's, counting resources.
    let alerts = world.alerts().await;
    assert_eq!(
        alerts.len(),
        1,
        "{:?}",
        alerts.iter().map(|a| &a.subject).collect::<Vec<_>>()
    );
    let alert = &alerts[0];
    assert_eq!(
        (
            alert.attributes["action"].as_str(),
            alert.attributes["rule"].as_str(),
            alert.attributes["event_id"].as_str()
        ),
        ("swept", "tags", id.as_str())
    );
    let why = alert.body["why"].to_string();
    // The topic, the table, the instance and its volume (moto leaves the interface untagged at
    // launch, so the Tagging API does not list it); the unowned role needs a person.
    assert!(
        why.contains(&format!("{dev} ")) && why.contains("tags: 4 changed, 1 need(s) a person"),
        "{why}"
    );
    assert!(
        why.contains(&format!("{prod} ")) && why.contains("tags: 1 changed"),
        "{why}"
    );
    assert!(why.contains(&format!("{sandbox} ")), "{why}");
    assert!(world.emulator.take_invocations().is_empty());

    // The next sweep, of the four OUs by name, finds what can comply in place and writes
    // nothing; so does one of dev alone.
    let mark = world.emulator.call_lines().len();
    let ous = json!({"ous": ["dev", "prod", "agents", "sandbox"]});
    let report = leg(&sweeper, &start("daily-2", ous), 60).await;
    let Outcome::Swept { summary } = outcome(&report) else {
        panic!("{report:?}")
    };
    assert_eq!(
        summary,
        "swept 4 account(s): 0 changed, 2 to review, 0 failed, 2 in place"
    );
    let report = leg(&sweeper, &start("dev-only", json!({"accounts": [dev]})), 60).await;
    assert_eq!(
        outcome(&report),
        &Outcome::Swept {
            summary: "swept 1 account(s): 0 changed, 1 to review, 0 failed, 0 in place".into()
        }
    );
    for account in [&dev, &prod, &agents, &sandbox] {
        assert_eq!(
            world.emulator.writes_in(mark, account),
            Vec::<String>::new(),
            "{account}"
        );
    }
    assert_eq!(world.alerts().await.len(), 2);
    assert_eq!(
        world.ledger_of(&dev).await.len(),
        in_dev_ledger.len(),
        "nothing changed, nothing recorded"
    );
}
