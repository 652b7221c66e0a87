//! `guardrail baseline` against the emulator, with the shell's credentials as an operator runs it.

use std::process::{Command, Output};

use guardrail_tests::World;
use guardrail_tests::events::furnish_default_vpc;
use guardrail_tests::world::create_account;

fn guardrail(world: &World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guardrail"))
        .args(args)
        .env_clear()
        .envs(world.emulator.env())
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

    let again = tokio::task::block_in_place(|| guardrail(&world, &["baseline", "--account", &account]));
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do: all 15 checked item(s) already comply"));
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
