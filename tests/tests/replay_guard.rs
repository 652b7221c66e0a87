//! The replay guard's semantics, checked against the DynamoDB adapter (on the emulator) and the
//! in-memory store with the same script, so the two cannot drift apart.

use chrono::{DateTime, Duration, Utc};
use guardrail::aws::DynamoReplayStore;
use guardrail::replay::{Claim, ClaimRequest, MemoryReplayStore, ReplayStore};
use guardrail_tests::World;

fn request<'a>(key: &'a str, owner: &'a str, now: DateTime<Utc>) -> ClaimRequest<'a> {
    ClaimRequest {
        key,
        owner,
        now,
        lease_until: now + Duration::seconds(60),
        expires_at: now + Duration::days(1),
    }
}

fn claimed(attempt: u32, done: &[&str], failure_alerted: bool) -> Claim {
    Claim::Claimed {
        attempt,
        done: done.iter().map(|s| s.to_string()).collect(),
        failure_alerted,
    }
}

async fn conformance(store: &impl ReplayStore) {
    let t0 = Utc::now();
    let done = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();

    // First claim wins; a concurrent delivery sees it in progress; only the holder writes.
    assert_eq!(
        store.claim(&request("a", "one", t0)).await.expect("claim"),
        claimed(1, &[], false)
    );
    assert!(matches!(
        store.claim(&request("a", "two", t0)).await.expect("claim"),
        Claim::InProgress { .. }
    ));
    assert!(!store.progress("a", "two", &done(&["x"])).await.expect("progress"));
    assert!(store.progress("a", "one", &done(&["x"])).await.expect("progress"));
    assert!(!store.complete("a", "two", "no", &done(&["x"])).await.expect("complete"));
    assert!(
        store
            .complete("a", "one", "tagged i-1", &done(&["x", "y"]))
            .await
            .expect("complete")
    );
    assert_eq!(
        store.claim(&request("a", "three", t0)).await.expect("claim"),
        Claim::Completed {
            summary: "tagged i-1".into()
        }
    );

    // A failure lets the retry claim, resuming after the finished steps.
    store.claim(&request("b", "one", t0)).await.expect("claim");
    assert!(store.fail("b", "one", "boom", &done(&["x"]), true).await.expect("fail"));
    assert!(
        !store
            .fail("b", "one", "again", &done(&[]), false)
            .await
            .expect("fail twice")
    );
    assert_eq!(
        store.claim(&request("b", "two", t0)).await.expect("claim"),
        claimed(2, &["x"], true)
    );

    // A holder that outlives its lease loses the claim to the next delivery.
    let mut short = request("c", "one", t0);
    short.lease_until = t0 + Duration::seconds(1);
    store.claim(&short).await.expect("claim");
    let later = t0 + Duration::seconds(5);
    assert_eq!(
        store.claim(&request("c", "two", later)).await.expect("claim"),
        claimed(2, &[], false)
    );
    assert!(!store.complete("c", "one", "late", &[]).await.expect("complete"));
    assert!(store.complete("c", "two", "done", &[]).await.expect("complete"));

    // The holder's own claim again (its first answer was lost, or Lambda retries the same
    // request after the holder died) carries on where it was, and counts no new attempt.
    store.claim(&request("e", "one", t0)).await.expect("claim");
    assert!(store.progress("e", "one", &done(&["x"])).await.expect("progress"));
    assert_eq!(
        store.claim(&request("e", "one", t0)).await.expect("claim"),
        claimed(1, &["x"], false)
    );
    assert!(matches!(
        store.claim(&request("e", "two", t0)).await.expect("claim"),
        Claim::InProgress { .. }
    ));

    // A record past its expiry (DynamoDB deletes lazily) no longer blocks.
    let mut brief = request("d", "one", t0);
    brief.expires_at = t0 + Duration::seconds(2);
    store.claim(&brief).await.expect("claim");
    store.complete("d", "one", "done", &[]).await.expect("complete");
    assert!(matches!(
        store
            .claim(&request("d", "two", t0 + Duration::seconds(3)))
            .await
            .expect("claim"),
        Claim::Claimed { .. }
    ));
}

#[tokio::test]
async fn dynamodb_store_follows_the_replay_semantics() {
    let world = World::start().await;
    conformance(&DynamoReplayStore::new(&world.config, &world.stack.table)).await;
}

#[tokio::test]
async fn memory_store_follows_the_replay_semantics() {
    conformance(&MemoryReplayStore::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_of_one_event_have_exactly_one_winner() {
    let world = World::start().await;
    let store = std::sync::Arc::new(DynamoReplayStore::new(&world.config, &world.stack.table));
    let now = Utc::now();
    let mut tasks = Vec::new();
    for event in 0..10 {
        for delivery in 0..12 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let key = format!("event-{event}");
                let owner = format!("delivery-{delivery}");
                let claim = store.claim(&request(&key, &owner, now)).await.expect("claim");
                (event, matches!(claim, Claim::Claimed { .. }))
            }));
        }
    }
    let mut winners = [0; 10];
    for t in tasks {
        let (event, won) = t.await.expect("task");
        winners[event] += usize::from(won);
    }
    assert_eq!(winners, [1; 10], "each event must have exactly one winning delivery");
}
