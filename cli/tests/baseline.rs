//! `guardrail baseline` and `guardrail sweep` against the emulator, with the shell's credentials as
//! an operator runs them: one account, then several seeded accounts, some baselined and some not.

use std::process::{Command, Output};

use guardrail_tests::World;
use guardrail_tests::events::furnish_default_vpc;
use guardrail_tests::world::create_account;
use serde_json::Value;

fn guardrail(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .env_clear()
        .envs(world.function_env())
        .output()
        .expect("run guardrail")
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_the_plan_and_the_real_run_applies_it() {
    let world = World::start().await;
    let account = create_account(&world.config, "prod-reporting").await;
    furnish_default_vpc(&world.emulator.config_as(&account).await).await;

    let dry = tokio::task::block_in_place(|| {
        guardrail(
            &world,
            &["baseline", "--account", &account, "--dry-run", "--format", "json"],
        )
    });
    assert_eq!(dry.status.code(), Some(0), "{}", String::from_utf8_lossy(&dry.stderr));
    let v: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON");
    assert_eq!(v["environment"], "prod");
    let would = v["steps"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["status"] == "would change").count());
    assert_eq!(would, Some(15), "{v}");
    let parents = aws_sdk_organizations::Client::new(&world.config)
        .list_parents()
        .child_id(&account)
        .send()
        .await
        .expect("ListParents");
    assert_eq!(
        parents.parents()[0].id(),
        Some(world.org.root_id.as_str()),
        "a dry run moves nothing"
    );

    let real = tokio::task::block_in_place(|| guardrail(&world, &["baseline", "--account", &account]));
    let out = String::from_utf8_lossy(&real.stdout);
    assert_eq!(
        real.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert!(
        out.starts_with(&format!("account {account}, environment prod: baseline applied")),
        "{out}"
    );
    assert!(
        String::from_utf8_lossy(&real.stderr).contains("[15/15]"),
        "progress on stderr"
    );

    // The ledger has each change, with who ran the command; the dry run recorded nothing.
    let entries = recorded(&world, &account, "baseline").await;
    assert!(entries.len() >= 15, "{entries:#?}");
    assert!(
        entries.iter().all(|e| e.outcome == guardrail::ledger::Outcome::Applied
            && e.detail.starts_with("guardrail baseline run by arn:aws:")),
        "{entries:#?}"
    );

    let again = tokio::task::block_in_place(|| guardrail(&world, &["baseline", "--account", &account]));
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do: all 15 checked item(s) already comply"));
    assert_eq!(recorded(&world, &account, "baseline").await.len(), entries.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_accounts_exit_2_with_one_line() {
    let world = World::start().await;
    for (account, needle) in [
        ("12345", "not a 12-digit account id"),
        ("999999999999", "not a member of the organization"),
    ] {
        let o = tokio::task::block_in_place(|| guardrail(&world, &["baseline", "--account", account]));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.lines().last().is_some_and(|l| l.contains(needle)), "{err}");
    }
}

/// The baseline sweep's JSON rows by account id.
fn sweep(world: &World, args: &[&str]) -> (Option<i32>, std::collections::BTreeMap<String, Value>, String) {
    let mut all = vec!["sweep", "--rules", "baseline", "--format", "json"];
    all.extend_from_slice(args);
    let out = tokio::task::block_in_place(|| guardrail(world, &all));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let rows = v["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|r| (r["account"].as_str().unwrap_or_default().to_string(), r.clone()))
        .collect();
    (out.status.code(), rows, stderr)
}

/// Calls since `mark` that change something in the organization (no reads, no role
/// assumption, and not the audit ledger's entries in the security account).
fn writes(world: &World, mark: usize) -> Vec<String> {
    world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| ![".Get", ".List", ".Describe", ".GET:"].iter().any(|r| c.contains(r)))
        .filter(|c| c != "sts.AssumeRole" && c != "sts.GetCallerIdentity" && c != "dynamodb.PutItem")
        .collect()
}

/// The audit ledger's entries a CLI command wrote for an account.
async fn recorded(world: &World, account: &str, command: &str) -> Vec<guardrail::ledger::Entry> {
    world
        .ledger_of(account)
        .await
        .into_iter()
        .filter(|e| e.event.starts_with(&format!("cli-{command}#")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_fixes_exactly_what_is_not_compliant_and_a_second_sweep_writes_nothing() {
    let world = World::start().await;
    let dev = world.org.account("dev").to_string();
    let prod = world.org.account("prod").to_string();
    let sandbox = world.org.account("sandbox").to_string();
    // dev was baselined, then one setting drifted; prod and agents never were; sandbox's OU is
    // no environment's.
    let first = tokio::task::block_in_place(|| guardrail(&world, &["baseline", "--account", &dev]));
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    guardrail_tests::events::disable_ebs_encryption(&world.emulator, &dev, "us-west-2").await;

    // A dry run reports and writes nothing.
    let mark = world.emulator.calls().len();
    let (code, rows, stderr) = sweep(&world, &["--dry-run"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(writes(&world, mark), Vec::<String>::new());
    assert_eq!(rows[&dev]["would_change"], 1, "{:?}", rows[&dev]);
    assert!(rows[&prod]["would_change"].as_u64() > Some(5), "{:?}", rows[&prod]);
    assert!(stderr.contains("[1/"), "progress on stderr: {stderr}");

    // The sweep: dev gets exactly its one setting back; sandbox needs a person.
    let mark = world.emulator.calls().len();
    let (code, rows, stderr) = sweep(&world, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(rows.len(), 5, "four members and the management account: {rows:?}");
    assert_eq!(rows[&dev]["changed"], 1, "{:?}", rows[&dev]);
    assert!(rows[&prod]["changed"].as_u64() > Some(5), "{:?}", rows[&prod]);
    assert_eq!(rows[&prod]["environment"], "prod");
    assert_eq!(rows[&sandbox]["changed"], 0);
    assert_eq!(rows[&sandbox]["needs_a_person"], 1, "{:?}", rows[&sandbox]);
    let management = &rows[guardrail_tests::emulator::MANAGEMENT_ACCOUNT];
    assert_eq!(management["changed"], 0);
    let ebs = writes(&world, mark)
        .into_iter()
        .filter(|c| c == "ec2.EnableEbsEncryptionByDefault")
        .count();
    // dev's one region, and both regions of prod and agents.
    assert_eq!(ebs, 5);
    let dev_entries = recorded(&world, &dev, "sweep").await;
    assert_eq!(dev_entries.len(), 1, "dev's one change: {dev_entries:#?}");
    assert!(dev_entries[0].resource.contains("us-west-2"), "{dev_entries:#?}");
    assert_eq!(dev_entries[0].function, "account-baseline");
    assert!(recorded(&world, &sandbox, "sweep").await.is_empty());

    // Everything that can comply does: a second sweep writes nothing.
    let mark = world.emulator.calls().len();
    let (code, rows, stderr) = sweep(&world, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(rows.values().all(|r| r["changed"] == 0), "{rows:?}");
    assert_eq!(writes(&world, mark), Vec::<String>::new());

    // Resources' tags too: a bucket in dev labelled prod is put right, once.
    let in_dev = world.emulator.config_as(&dev).await;
    aws_sdk_s3::Client::new(&in_dev)
        .create_bucket()
        .bucket("dev-exports")
        .send()
        .await
        .expect("CreateBucket");
    aws_sdk_s3::Client::new(&in_dev)
        .put_bucket_tagging()
        .bucket("dev-exports")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("Environment")
                        .value("prod")
                        .build()
                        .expect("tag"),
                )
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("Owner")
                        .value("ops")
                        .build()
                        .expect("tag"),
                )
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("PutBucketTagging");
    for expected in [1, 0] {
        let mark = world.emulator.calls().len();
        let out = tokio::task::block_in_place(|| {
            guardrail(
                &world,
                &["sweep", "--rules", "tags", "--account", &dev, "--format", "json"],
            )
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        let row = &v["accounts"][0];
        assert_eq!(
            (row["rule"].as_str(), row["changed"].as_u64()),
            (Some("tags"), Some(expected)),
            "{v}"
        );
        let written = writes(&world, mark);
        assert_eq!(written.len(), expected as usize, "{written:?}");
    }
    let relabelled: Vec<_> = recorded(&world, &dev, "sweep")
        .await
        .into_iter()
        .filter(|e| e.rule == "tags")
        .collect();
    assert_eq!(relabelled.len(), 1, "{relabelled:#?}");
    assert_eq!(relabelled[0].before.get("Environment"), Some(&Some("prod".to_string())));
    assert!(
        relabelled[0].cause.starts_with("guardrail sweep run by arn:aws:"),
        "{relabelled:#?}"
    );

    // One OU, both rules, and the table for people.
    let out = tokio::task::block_in_place(|| guardrail(&world, &["sweep", "--ou", "dev", "--dry-run"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("account "), "{text}");
    assert!(text.contains(&dev) && !text.contains(&prod), "{text}");
    assert!(text.contains(" baseline ") && text.contains(" tags "), "{text}");
    assert!(
        text.contains("1 account(s) (dry run): 0 changed, 0 would change"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_ou_or_account_exits_2_with_what_to_do() {
    let world = World::start().await;
    for (args, needle) in [
        (vec!["sweep", "--ou", "nowhere"], "no OU named \"nowhere\""),
        (
            vec!["sweep", "--account", "999999999999"],
            "not a member of the organization",
        ),
        (vec!["sweep", "--account", "12"], "not a 12-digit account id"),
    ] {
        let o = tokio::task::block_in_place(|| guardrail(&world, &args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_and_resume_write_the_kill_switch_with_who_and_why() {
    use guardrail::pause::{Pause, Switch};
    let world = World::start().await;
    let read = || async {
        guardrail::aws::SsmSwitch::new(&world.config, Some("/guardrail/pause".into()))
            .state()
            .await
            .expect("read the switch")
    };
    let out = tokio::task::block_in_place(|| guardrail(&world, &["pause", "--reason", "bad policy push INC-42"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Guardrail is paused"));
    let Pause::Paused { detail } = read().await else {
        panic!("not paused")
    };
    assert!(
        detail.starts_with("paused by arn:aws:") && detail.ends_with(": bad policy push INC-42"),
        "{detail}"
    );

    let out = tokio::task::block_in_place(|| guardrail(&world, &["resume", "--format", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["paused"], false, "{v}");
    assert_eq!(read().await, Pause::Active);

    let out = tokio::task::block_in_place(|| guardrail(&world, &["pause", "--reason", " "]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason must say why"));

    // The ledger has both changes of the switch, with who, why, and its value before and after.
    let mut flips: Vec<guardrail::ledger::Entry> = world
        .ledger(&guardrail::ledger::Query {
            since: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
            ..Default::default()
        })
        .await
        .into_iter()
        .filter(|e| e.resource == "/guardrail/pause")
        .collect();
    flips.sort_by_key(|e| e.time);
    assert_eq!(flips.len(), 2, "{flips:#?}");
    assert_eq!(flips[0].action, "pause Guardrail org-wide");
    assert_eq!(flips[0].before["value"].as_deref(), Some("active"));
    assert!(flips[0].cause.ends_with(": bad policy push INC-42"), "{flips:#?}");
    assert_eq!(flips[1].action, "resume Guardrail");
    assert!(
        flips[1].before["value"]
            .as_deref()
            .is_some_and(|v| v.starts_with("paused by arn:aws:")),
        "{flips:#?}"
    );
    assert!(
        flips[1].after["value"]
            .as_deref()
            .is_some_and(|v| v.starts_with("active since")),
        "{flips:#?}"
    );
}

/// A deployed policy names `baseline.management_role`, which trusts only account-baseline's
/// execution role: a person in the management account runs `baseline` with their own
/// credentials instead of being refused by that role.
#[tokio::test(flavor = "multi_thread")]
async fn in_the_management_account_baseline_does_not_need_the_management_role() {
    let world = World::start().await;
    let account = create_account(&world.config, "dev-reports").await;
    let role = format!(
        "arn:aws:iam::{}:role/guardrail-management",
        guardrail_tests::emulator::MANAGEMENT_ACCOUNT
    );
    let policy = std::env::temp_dir().join(format!("guardrail-operator-{}.toml", std::process::id()));
    std::fs::write(
        &policy,
        guardrail::policy::BUILTIN_POLICY.replace(r#"management_role = """#, &format!(r#"management_role = "{role}""#)),
    )
    .expect("policy");
    // The role refuses everyone but account-baseline's execution role.
    world.emulator.inject_fault(serde_json::json!({
        "service": "sts", "action": "AssumeRole", "status": 403, "code": "AccessDenied",
        "message": "not authorized to perform sts:AssumeRole", "body": "guardrail-management"
    }));
    let out = tokio::task::block_in_place(|| {
        guardrail(
            &world,
            &[
                "baseline",
                "--account",
                &account,
                "--dry-run",
                "--policy",
                policy.to_str().expect("path"),
            ],
        )
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("in the management account: Organizations' calls use these credentials"),
        "{err}"
    );
    let _ = std::fs::remove_file(&policy);
}
