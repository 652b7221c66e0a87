//! End to end: the real `account-baseline` binary serving the Lambda runtime API of `cargo lambda
//! watch`, invoked with `events/account-baseline/create-account-result.json` for an account just
//! created in the emulator, then with a sweep request.

use guardrail_tests::World;
use guardrail_tests::emulator::MANAGEMENT_ACCOUNT;
use guardrail_tests::events::{default_vpc_id, fresh, load, with_created_account};
use guardrail_tests::lambda::WatchedFunction;
use guardrail_tests::world::create_account;

#[tokio::test(flavor = "multi_thread")]
async fn account_baseline_binary_baselines_a_new_account_once() {
    let world = World::start().await;
    let account = create_account(&world.config, "agents-sandbox-3").await;
    let event = with_created_account(
        fresh(load("account-baseline/create-account-result.json"), MANAGEMENT_ACCOUNT),
        &account,
        "agents-sandbox-3",
    );
    let env = world.function_env();
    let function = tokio::task::block_in_place(|| WatchedFunction::start(env!("CARGO_BIN_EXE_account-baseline"), &env));

    let response = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response[0]["outcome"], "applied", "{response}");
    assert_eq!(response[0]["actions"].as_array().map(Vec::len), Some(15), "{response}");

    let parents = aws_sdk_organizations::Client::new(&world.config)
        .list_parents()
        .child_id(&account)
        .send()
        .await
        .expect("ListParents");
    assert_eq!(parents.parents()[0].id(), Some(world.org.ous["agents"].as_str()));
    let member = world.emulator.config_as(&account).await;
    let ec2 = aws_sdk_ec2::Client::new(&member);
    assert_eq!(default_vpc_id(&ec2).await, None);
    let encrypted = ec2.get_ebs_encryption_by_default().send().await.expect("ebs");
    assert_eq!(encrypted.ebs_encryption_by_default, Some(true));
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].attributes.get("action").map(String::as_str),
        Some("baselined")
    );

    let again = tokio::task::block_in_place(|| function.invoke(&event)).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again[0]["outcome"] == "duplicate" || again[0]["outcome"] == "ignored",
        "a replay does nothing: {again}"
    );
    assert!(world.alerts().await.is_empty());

    // A sweep request to the same binary goes to its sweeper: the account is found in place,
    // and the one summary says so.
    let summary = tokio::task::block_in_place(|| function.dry_run_sweep(&account));
    assert_eq!(
        summary,
        "swept 1 account(s) (dry run): 0 changed, 0 to review, 0 failed, 1 in place"
    );
    let alerts = world.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].attributes.get("action").map(String::as_str), Some("swept"));

    // The log holds no credentials: not the emulator's key, not the sessions the baseline
    // assumed through the management role (temporary keys start ASIA), no session token.
    let logs = function.logs();
    assert!(
        !logs.contains("testing") && !logs.contains("ASIA") && !logs.contains("SessionToken"),
        "credentials in the log: {logs}"
    );
}
