//! `guardrail sweep` against the emulator: several seeded accounts, some baselined and some not,
//! swept as an operator runs it.

use std::process::{Command, Output};

use guardrail_tests::World;
use serde_json::Value;

fn guardrail(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .env_clear()
        .envs(world.emulator.env())
        .output()
        .expect("run guardrail")
}

/// The sweep's JSON rows by account id.
fn sweep(world: &World, args: &[&str]) -> (Option<i32>, std::collections::BTreeMap<String, Value>, String) {
    let mut all = vec!["sweep", "--format", "json"];
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

/// Calls since `mark` that change something (no reads, no role assumption).
fn writes(world: &World, mark: usize) -> Vec<String> {
    world
        .emulator
        .calls_since(mark)
        .into_iter()
        .filter(|c| ![".Get", ".List", ".Describe", ".GET:"].iter().any(|r| c.contains(r)) && c != "sts.AssumeRole")
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
    let member = world.emulator.config_as(&dev).await;
    let west = member
        .to_builder()
        .region(aws_sdk_ec2::config::Region::new("us-west-2"))
        .build();
    aws_sdk_ec2::Client::new(&west)
        .disable_ebs_encryption_by_default()
        .send()
        .await
        .expect("disable");

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

    // Everything that can comply does: a second sweep writes nothing.
    let mark = world.emulator.calls().len();
    let (code, rows, stderr) = sweep(&world, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(rows.values().all(|r| r["changed"] == 0), "{rows:?}");
    assert_eq!(writes(&world, mark), Vec::<String>::new());

    // One OU, and the table for people.
    let out = tokio::task::block_in_place(|| guardrail(&world, &["sweep", "--ou", "dev", "--dry-run"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("account "), "{text}");
    assert!(text.contains(&dev) && !text.contains(&prod), "{text}");
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
